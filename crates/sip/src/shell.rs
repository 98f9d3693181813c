//! The SIP shell: sockets, transactions and dialogs on rsipstack, turned into [`SipEvent`]s for
//! the platform and driven by its decisions. It holds no routing logic.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rsipstack::dialog::dialog::DialogStateSender;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{HostWithPort, StatusCode, Transport, Uri};
use rsipstack::transport::TransportLayer;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::{EndpointBuilder, platform::CancellationToken};
use secourir_config::Plan;
use secourir_core::{AgentId, CallId, RingFailure};
use secourir_throttle::Throttle;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::digest::{self, Nonces};
use crate::ingress::Ingress;
use crate::registrar::{Binding, Registrar};
use crate::screen::{ScreenStats, ScreenedUdp};

mod incoming;
mod legs;
mod messages;
mod register;

/// Where the shell listens.
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// UDP address.
    pub udp: SocketAddr,
    /// TCP address, if any.
    pub tcp: Option<SocketAddr>,
    /// SIP over TLS: its address and the platform's certificate.
    pub tls: Option<(SocketAddr, Arc<tokio_rustls::rustls::ServerConfig>)>,
    /// Happenings the platform has not taken yet; at the bound the SIP tasks wait.
    pub events: usize,
}

/// The platform's answer to a new emergency INVITE.
#[derive(Debug)]
pub enum Decision {
    /// Answer with this SDP and these extra headers (Call-Info…).
    Accept {
        /// SDP answer.
        sdp: String,
        /// Extra header lines, `(name, value)`.
        headers: Vec<(String, String)>,
    },
    /// Refuse.
    Reject {
        /// Status code.
        code: u16,
        /// Reason phrase.
        reason: String,
        /// Retry-After in seconds, for 503.
        retry_after_s: Option<u32>,
    },
}

/// Something that happened on the SIP side.
#[derive(Debug)]
pub enum SipEvent {
    /// An emergency INVITE arrived; answer through `decide`.
    Invite {
        /// Number given to the call.
        call: CallId,
        /// What it asks.
        ingress: Box<Ingress>,
        /// Where it came from.
        source: SocketAddr,
        /// The platform's decision goes here.
        decide: oneshot::Sender<Decision>,
    },
    /// The caller hung up (BYE, CANCEL, or no ACK).
    CallerGone {
        /// The call.
        call: CallId,
    },
    /// The call-taker's phone answered.
    AgentAnswered {
        /// The call.
        call: CallId,
        /// The call-taker.
        agent: AgentId,
        /// Their SDP answer.
        sdp: Vec<u8>,
    },
    /// The call-taker's phone did not answer.
    AgentFailed {
        /// The call.
        call: CallId,
        /// The call-taker.
        agent: AgentId,
        /// How.
        reason: RingFailure,
        /// SIP status seen, 0 when none came.
        status: u16,
    },
    /// The call-taker hung up.
    AgentGone {
        /// The call.
        call: CallId,
        /// The call-taker.
        agent: AgentId,
    },
    /// The partner service (15, 17) answered a handed-over call.
    PartnerAnswered {
        /// The call.
        call: CallId,
        /// Its SDP answer.
        sdp: Vec<u8>,
    },
    /// The partner service did not take the call.
    PartnerFailed {
        /// The call.
        call: CallId,
        /// SIP status seen, 0 when none came.
        status: u16,
    },
    /// The partner service hung up.
    PartnerGone {
        /// The call.
        call: CallId,
    },
    /// A call-taker's phone registered (or refreshed).
    Registered {
        /// The call-taker.
        agent: AgentId,
        /// Where it can be reached, and until when.
        binding: Binding,
    },
    /// A call-taker's phone unregistered.
    Unregistered {
        /// The call-taker.
        agent: AgentId,
    },
    /// An emergency MESSAGE arrived, already answered (202, or the refusal of a body that
    /// cannot be read, which still counts for its conversation): the answer goes before
    /// anything the platform writes back, so that the caller's side reads them in order.
    Text {
        /// What it brings.
        ingress: Box<crate::TextIngress>,
        /// Its body read, or why it could not be.
        read: Result<secourir_text::Message, secourir_text::Unreadable>,
        /// Where it came from; replies go back there.
        source: SocketAddr,
    },
    /// A text sent to a caller was not taken by their side.
    TextUndelivered {
        /// The conversation.
        call: CallId,
        /// SIP status seen, 0 when none came.
        status: u16,
    },
    /// Phone registrations were locked out after repeated wrong answers, for the supervisors'
    /// journal: what, in their words.
    LockedOut {
        /// A login from one address, an address, or a login from the addresses not known for
        /// it, said in French.
        what: String,
    },
}

#[derive(Debug, Clone, Copy)]
enum Leg {
    Caller(CallId),
    Peer(CallId, Peer),
}

/// Who the platform calls out to for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Peer {
    /// A call-taker's phone.
    Agent(AgentId),
    /// The partner service the call is handed to.
    Partner,
}

struct Inner {
    plan: Arc<Plan>,
    dialog_layer: Arc<DialogLayer>,
    state_sender: DialogStateSender,
    events: mpsc::Sender<SipEvent>,
    registrar: Mutex<Registrar>,
    nonces: Nonces,
    /// RFC 7339: the share of new calls peers are asked to send elsewhere.
    overload: Mutex<crate::overload::Overload>,
    /// The digest algorithms each challenge offers, most preferred first.
    offered: Vec<digest::Algorithm>,
    /// Nonce counts already taken: each digest answer is good once.
    counts: Mutex<digest::Counts>,
    /// How often a phone's digest may be tried, per login and per source.
    throttle: Mutex<Throttle>,
    legs: Mutex<HashMap<String, Leg>>,
    callers: Mutex<HashMap<CallId, InviteDialog>>,
    agents: Mutex<HashMap<(CallId, Peer), InviteDialog>>,
    /// Taken while a MESSAGE is answered and handed to the platform: two messages of one caller
    /// reach the platform in the order they were answered (the second is sent once the first
    /// is answered), though each is served by its own task.
    texts_in_order: tokio::sync::Mutex<()>,
    /// Each text conversation's messages to its caller, sent in order.
    outboxes: Mutex<
        HashMap<
            CallId,
            mpsc::UnboundedSender<(rsipstack::sip::Request, rsipstack::transport::SipAddr)>,
        >,
    >,
    next_call: AtomicU64,
    call_step: u64,
    contact: Uri,
    /// Contact of the platform on its SIP over TLS listener.
    tls_contact: Option<Uri>,
    local: SocketAddr,
    tls_local: Option<SocketAddr>,
    screen: Arc<ScreenStats>,
}

/// How the shell numbers the calls it takes in: `first`, then every `step` (nodes of a cluster
/// interleave their numbers so that no two give the same one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbering {
    /// The first number given.
    pub first: u64,
    /// The gap between two numbers given.
    pub step: u64,
}

/// Handle on the running SIP shell; cheap to clone.
#[derive(Clone)]
pub struct Sip {
    inner: Arc<Inner>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn now_s() -> u64 {
    now_ms() / 1000
}

fn status(code: u16, reason: &str) -> StatusCode {
    StatusCode::Other(code, reason.to_owned())
}

/// Errors starting the shell.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// A socket could not be bound.
    #[error("cannot listen for SIP on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The stack refused to start.
    #[error("SIP stack: {0}")]
    Stack(String),
}

impl Sip {
    /// Binds the sockets and starts serving; calls are numbered as `numbering` says.
    pub async fn start(
        config: &SipConfig,
        plan: Arc<Plan>,
        secret: [u8; 32],
        numbering: Numbering,
        cancel: CancellationToken,
    ) -> Result<(Sip, mpsc::Receiver<SipEvent>), SipError> {
        let transport_layer = TransportLayer::new(cancel.clone());
        let socket = tokio::net::UdpSocket::bind(config.udp)
            .await
            .map_err(|source| SipError::Bind {
                addr: config.udp,
                source,
            })?;
        let local = socket.local_addr().map_err(|source| SipError::Bind {
            addr: config.udp,
            source,
        })?;
        let screen = Arc::new(ScreenStats::default());
        let udp = UdpConnection::from_socket(
            Arc::new(ScreenedUdp::new(socket, screen.clone())),
            None,
            Some(cancel.child_token()),
        )
        .await
        .map_err(|e| SipError::Stack(e.to_string()))?;
        transport_layer.add_transport(udp.into());
        let endpoint = EndpointBuilder::new()
            .with_cancel_token(cancel.clone())
            .with_transport_layer(transport_layer)
            .with_user_agent("Secourir")
            .build();
        if let Some(tcp) = config.tcp {
            crate::stream::listen(
                tcp,
                endpoint.inner.clone(),
                screen.clone(),
                cancel.child_token(),
                None,
            )
            .await
            .map_err(|source| SipError::Bind { addr: tcp, source })?;
        }
        let tls_local = match &config.tls {
            Some((addr, server)) => Some(
                crate::stream::listen(
                    *addr,
                    endpoint.inner.clone(),
                    screen.clone(),
                    cancel.child_token(),
                    Some(tokio_rustls::TlsAcceptor::from(server.clone())),
                )
                .await
                .map_err(|source| SipError::Bind {
                    addr: *addr,
                    source,
                })?,
            ),
            None => None,
        };
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let dialog_layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let (state_sender, state_receiver) = dialog_layer.new_dialog_state_channel();
        let (events, events_rx) = mpsc::channel(config.events.max(1));
        let contact = Uri {
            scheme: Some(rsipstack::sip::Scheme::Sip),
            auth: Some(rsipstack::sip::Auth {
                user: "secourir".into(),
                password: None,
            }),
            host_with_port: HostWithPort::from(local),
            params: vec![],
            headers: vec![],
        };
        let tls_contact = tls_local.map(|addr| Uri {
            host_with_port: HostWithPort::from(addr),
            params: vec![rsipstack::sip::Param::Transport(Transport::Tls)],
            ..contact.clone()
        });
        let offered = digest::offered(
            plan.call_takers
                .iter()
                .map(|t| (t.sip_ha1.is_some(), t.sip_ha1_sha256.is_some())),
        );
        let sip = Sip {
            inner: Arc::new(Inner {
                plan,
                dialog_layer,
                state_sender,
                events,
                registrar: Mutex::new(Registrar::default()),
                nonces: Nonces::new(secret),
                offered,
                overload: Mutex::new(Default::default()),
                counts: Mutex::new(digest::Counts::default()),
                throttle: Mutex::new(Throttle::default()),
                legs: Mutex::new(HashMap::new()),
                callers: Mutex::new(HashMap::new()),
                agents: Mutex::new(HashMap::new()),
                outboxes: Mutex::new(HashMap::new()),
                texts_in_order: tokio::sync::Mutex::new(()),
                next_call: AtomicU64::new(numbering.first),
                call_step: numbering.step.max(1),
                contact,
                tls_contact,
                local,
                tls_local,
                screen,
            }),
        };
        tokio::spawn(async move { endpoint.serve().await });
        tokio::spawn(sip.clone().serve_transactions(incoming));
        tokio::spawn(sip.clone().follow_dialogs(state_receiver));
        info!(%local, tcp = ?config.tcp, tls = ?tls_local, "SIP listening");
        Ok((sip, events_rx))
    }

    /// A new call number, for calls that do not come through SIP (the demonstration's).
    pub fn next_call(&self) -> CallId {
        CallId(
            self.inner
                .next_call
                .fetch_add(self.inner.call_step, Ordering::Relaxed),
        )
    }

    /// How many calls the platform carries now against its national capacity (the current
    /// configuration's: it may have changed since start), which the answers' RFC 7339 advice
    /// follows.
    pub fn carrying(&self, live: usize, capacity: u32) {
        lock(&self.inner.overload).carrying(now_ms(), live, capacity);
    }

    /// The share of new calls peers are asked to send elsewhere now, percent.
    pub fn overload_loss(&self) -> u8 {
        lock(&self.inner.overload).advice().loss
    }

    /// The SIP over TLS address the shell listens on, if any.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.inner.tls_local
    }

    /// The UDP address the shell listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// What the input screen refused so far.
    pub fn screen_stats(&self) -> &ScreenStats {
        &self.inner.screen
    }

    async fn notify(&self, event: SipEvent) {
        let _ = self.inner.events.send(event).await;
    }
}

impl Sip {
    /// Where a request came from: its connection's remote address, else this shell's own (a
    /// request with no connection is the stack's own).
    fn source_of(&self, tx: &rsipstack::transaction::Transaction) -> SocketAddr {
        tx.connection
            .as_ref()
            .and_then(|c| c.get_remote_addr())
            .and_then(|a| a.get_socketaddr().ok())
            .unwrap_or(self.inner.local)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not take telephony down with it: the data stays usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

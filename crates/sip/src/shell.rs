//! The SIP shell: sockets, transactions and dialogs on rsipstack, turned into [`SipEvent`]s for
//! the platform and driven by its decisions. It holds no routing logic.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rsipstack::dialog::DialogId;
use rsipstack::dialog::dialog::{Dialog, DialogState, DialogStateReceiver, DialogStateSender};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::headers::make_header;
use rsipstack::sip::{Header, HostWithPort, Method, Request, StatusCode, Transport, Uri};
use rsipstack::transaction::Transaction;
use rsipstack::transport::TransportLayer;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::{EndpointBuilder, platform::CancellationToken};
use secourir_config::{Plan, SIP_REALM};
use secourir_core::{AgentId, CallId, RingFailure};
use secourir_throttle::{Lockout, Throttle, Verdict};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::digest::{self, NonceCheck, Nonces};
use crate::ingress::{Ingress, read_invite};
use crate::registrar::{Binding, Over, Registrar};
use crate::screen::{ScreenStats, ScreenedUdp};

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

    /// Takes in a phone registered on another node of the cluster, so that this node can
    /// ring it directly; an expiry in the past removes it.
    pub fn bind(&self, agent: AgentId, binding: Binding) {
        let mut registrar = lock(&self.inner.registrar);
        let now = now_s();
        let expires = binding.expires_at_s.saturating_sub(now);
        // Another node's TCP or TLS connection cannot be borrowed: the phone is reached at its
        // Contact.
        registrar.register(
            agent.0 as usize,
            binding.contact,
            binding.source,
            Over::Udp,
            expires,
            now,
        );
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

    /// RFC 7339: the answer to a peer whose Via asks for overload control carries the share of
    /// new calls it should send elsewhere, in that Via.
    fn advise_overload(&self, tx: &mut Transaction) {
        let Some(via) = tx
            .original
            .headers
            .iter_mut()
            .find(|h| matches!(h, Header::Via(_)))
        else {
            return;
        };
        let value = via.value().to_owned();
        if !crate::overload::asked(&value) {
            return;
        }
        let advice = lock(&self.inner.overload).advice();
        *via = make_header("Via", crate::overload::answered(&value, advice));
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

    /// Phones registered now.
    pub fn registered(&self) -> usize {
        lock(&self.inner.registrar).live(now_s())
    }

    /// Whether this call-taker's phone is registered.
    pub fn is_registered(&self, agent: AgentId) -> bool {
        lock(&self.inner.registrar)
            .lookup(agent.0 as usize, now_s())
            .is_some()
    }

    /// Rings a call-taker's phone with the platform's SDP offer. False when the phone is not
    /// registered, which the caller reports as unreachable.
    pub fn ring(
        &self,
        call: CallId,
        agent: AgentId,
        offer: String,
        headers: Vec<(String, String)>,
    ) -> bool {
        let binding = lock(&self.inner.registrar)
            .lookup(agent.0 as usize, now_s())
            .cloned();
        let Some(binding) = binding else {
            return false;
        };
        let Ok(callee) = Uri::try_from(binding.contact.as_str()) else {
            warn!(contact = %binding.contact, "unusable contact in a registration");
            return false;
        };
        // A phone registered over TLS is reached on its own connection (RFC 5923 reuse): the
        // platform's certificate proves who it is to the phone; the other way round, only the
        // phone's digest does.
        let flow = (binding.over == Over::Tls).then(|| rsipstack::transport::SipAddr {
            r#type: Some(Transport::Tls),
            addr: binding.source.into(),
        });
        self.invite(call, Peer::Agent(agent), callee, flow, offer, headers)
    }

    /// Hands a call to a partner service (SAMU 15, police 17): an INVITE to its URI with the
    /// platform's SDP offer. False when the URI or the INVITE is refused at once.
    pub fn call_partner(
        &self,
        call: CallId,
        uri: &str,
        offer: String,
        headers: Vec<(String, String)>,
    ) -> bool {
        match Uri::try_from(uri) {
            Ok(callee) => self.invite(call, Peer::Partner, callee, None, offer, headers),
            Err(_) => {
                warn!(%uri, "unusable partner URI");
                false
            }
        }
    }

    /// Hangs up the partner service's leg.
    pub fn hang_up_partner(&self, call: CallId) {
        self.hang_up_peer(call, Peer::Partner);
    }

    fn invite(
        &self,
        call: CallId,
        peer: Peer,
        callee: Uri,
        flow: Option<rsipstack::transport::SipAddr>,
        offer: String,
        headers: Vec<(String, String)>,
    ) -> bool {
        let contact = match (&flow, &self.inner.tls_contact) {
            (Some(_), Some(tls)) => tls.clone(),
            _ => self.inner.contact.clone(),
        };
        let mut caller = self.inner.contact.clone();
        caller.auth = Some(rsipstack::sip::Auth {
            user: "18".into(),
            password: None,
        });
        let option = InviteOption {
            callee,
            caller,
            // RFC 3261 §8.1.2: requests go to the registered Contact (phones on the CTA's own
            // network register their real address; no NAT sits between them and the platform),
            // or over TLS on the phone's own connection.
            destination: flow,
            content_type: Some("application/sdp".into()),
            offer: Some(offer.into_bytes()),
            contact,
            headers: Some(
                headers
                    .into_iter()
                    .map(|(n, v)| make_header(&n, v))
                    .collect(),
            ),
            ..Default::default()
        };
        let inner = self.inner.clone();
        match inner
            .dialog_layer
            .do_invite_async(option, inner.state_sender.clone())
        {
            Ok((dialog, outcome)) => {
                lock(&inner.agents).insert((call, peer), dialog.clone());
                tokio::spawn(async move {
                    let answered = match outcome.await {
                        Ok(Ok((id, Some(response)))) if response.status_code.code() / 100 == 2 => {
                            lock(&inner.legs).insert(id.to_string(), Leg::Peer(call, peer));
                            if let Some(Dialog::Invite(confirmed)) =
                                inner.dialog_layer.get_dialog(&id)
                            {
                                lock(&inner.agents).insert((call, peer), confirmed);
                            }
                            Ok(response.body.clone())
                        }
                        Ok(Ok((_, Some(response)))) => Err(response.status_code.code()),
                        Ok(Ok((_, None))) | Ok(Err(_)) | Err(_) => Err(0),
                    };
                    if answered.is_err() {
                        lock(&inner.agents).remove(&(call, peer));
                    }
                    let event = match (peer, answered) {
                        (Peer::Agent(agent), Ok(sdp)) => {
                            SipEvent::AgentAnswered { call, agent, sdp }
                        }
                        (Peer::Agent(agent), Err(code)) => SipEvent::AgentFailed {
                            call,
                            agent,
                            reason: match code {
                                408 | 480 | 487 => RingFailure::NoAnswer,
                                486 | 600 | 603 => RingFailure::Refused,
                                _ => RingFailure::Unreachable,
                            },
                            status: code,
                        },
                        (Peer::Partner, Ok(sdp)) => SipEvent::PartnerAnswered { call, sdp },
                        (Peer::Partner, Err(status)) => SipEvent::PartnerFailed { call, status },
                    };
                    let _ = inner.events.send(event).await;
                });
                true
            }
            Err(e) => {
                warn!(error = %e, "could not send an INVITE");
                false
            }
        }
    }

    /// Stops ringing, or hangs up the call-taker's leg if it was answered meanwhile.
    pub fn hang_up_agent(&self, call: CallId, agent: AgentId) {
        self.hang_up_peer(call, Peer::Agent(agent));
    }

    fn hang_up_peer(&self, call: CallId, peer: Peer) {
        let dialog = lock(&self.inner.agents).remove(&(call, peer));
        if let Some(dialog) = dialog {
            self.forget(&dialog.id());
            tokio::spawn(async move {
                if let Err(e) = dialog.hangup().await {
                    debug!(error = %e, "hang-up of a call-taker leg");
                }
            });
        }
    }

    /// Hangs up the caller's leg.
    pub fn hang_up_caller(&self, call: CallId) {
        let dialog = lock(&self.inner.callers).remove(&call);
        if let Some(dialog) = dialog {
            self.forget(&dialog.id());
            tokio::spawn(async move {
                if let Err(e) = dialog.hangup().await {
                    debug!(error = %e, "hang-up of a caller leg");
                }
            });
        }
    }

    fn forget(&self, id: &DialogId) {
        lock(&self.inner.legs).remove(&id.to_string());
    }

    async fn serve_transactions(self, mut incoming: rsipstack::transaction::TransactionReceiver) {
        while let Some(tx) = incoming.recv().await {
            let sip = self.clone();
            tokio::spawn(async move { sip.on_transaction(tx).await });
        }
    }

    async fn on_transaction(self, mut tx: Transaction) {
        let in_dialog = tx.original.headers.iter().any(
            |h| matches!(h, Header::To(to) if to.value().to_ascii_lowercase().contains(";tag=")),
        );
        let method = tx.original.method;
        let result = match method {
            Method::Register => self.on_register(&mut tx).await,
            Method::Invite if !in_dialog => self.on_invite(tx).await,
            Method::Options if !in_dialog => {
                tx.reply_with(
                    StatusCode::OK,
                    vec![
                        make_header("Allow", ALLOW.into()),
                        make_header("Accept", ACCEPT.into()),
                    ],
                    None,
                )
                .await
            }
            Method::Ack if !in_dialog => Ok(()),
            _ if in_dialog || matches!(method, Method::Bye | Method::Cancel | Method::Ack) => {
                match self.inner.dialog_layer.match_dialog(&tx) {
                    Some(mut dialog) => dialog.handle(&mut tx).await,
                    None if method == Method::Ack => Ok(()),
                    None => {
                        tx.reply(status(481, "Call/Transaction Does Not Exist"))
                            .await
                    }
                }
            }
            _ => {
                tx.reply_with(
                    status(
                        405,
                        "Method Not Allowed - this platform takes calls, not this request",
                    ),
                    vec![make_header("Allow", ALLOW.into())],
                    None,
                )
                .await
            }
        };
        if let Err(e) = result {
            debug!(?method, error = %e, "transaction ended with an error");
        }
    }

    async fn on_invite(&self, mut tx: Transaction) -> rsipstack::Result<()> {
        let ingress = match read_invite(&tx.original) {
            Ok(ingress) => ingress,
            Err(refusal) => {
                info!(
                    code = refusal.code,
                    reason = refusal.reason,
                    "INVITE refused"
                );
                let headers = match refusal.code {
                    415 => vec![make_header("Accept", ACCEPT.into())],
                    _ => vec![],
                };
                return tx
                    .reply_with(status(refusal.code, refusal.reason), headers, None)
                    .await;
            }
        };
        // Its body's problem, if any, is the answer the caller's equipment gets once the core
        // has the call on record.
        let unusable = ingress.unusable.clone();
        let call = self.next_call();
        let source = tx
            .connection
            .as_ref()
            .and_then(|c| c.get_remote_addr())
            .and_then(|a| a.get_socketaddr().ok())
            .unwrap_or(self.inner.local);
        let (decide, decision) = oneshot::channel();
        let event = SipEvent::Invite {
            call,
            ingress: Box::new(ingress),
            source,
            decide,
        };
        if self.inner.events.send(event).await.is_err() {
            return tx
                .reply_with(
                    status(503, "Service Unavailable - platform stopping"),
                    vec![make_header("Retry-After", "5".into())],
                    None,
                )
                .await;
        }
        let decision = decision.await;
        let refused = matches!(decision, Ok(Decision::Reject { code: 503, .. }));
        lock(&self.inner.overload).offered(now_ms(), refused);
        self.advise_overload(&mut tx);
        match decision {
            Ok(Decision::Accept { sdp, headers }) => {
                let dialog = match self.inner.dialog_layer.get_or_create_server_invite(
                    &tx,
                    self.inner.state_sender.clone(),
                    None,
                    Some(self.inner.contact.clone()),
                ) {
                    Ok(dialog) => dialog,
                    Err(e) => {
                        // The core admitted the call: it must end, and its caller be called
                        // back, rather than wait forever for a dialog that never opened.
                        warn!(?call, error = %e, "the caller's dialog could not open; call ended");
                        let _ = self.inner.events.send(SipEvent::CallerGone { call }).await;
                        return tx
                            .reply(status(
                                400,
                                "Bad Request - this INVITE cannot open a dialog",
                            ))
                            .await;
                    }
                };
                lock(&self.inner.legs).insert(dialog.id().to_string(), Leg::Caller(call));
                lock(&self.inner.callers).insert(call, dialog.clone());
                let mut headers: Vec<Header> = headers
                    .into_iter()
                    .map(|(n, v)| make_header(&n, v))
                    .collect();
                headers.push(make_header("Content-Type", "application/sdp".into()));
                dialog.accept(Some(headers), Some(sdp.into_bytes()))?;
                let mut dialog = dialog;
                dialog.handle(&mut tx).await
            }
            Ok(Decision::Reject {
                code,
                reason,
                retry_after_s,
            }) => match unusable {
                Some(refusal) => {
                    let headers = match refusal.code {
                        415 => vec![make_header("Accept", ACCEPT.into())],
                        _ => vec![],
                    };
                    tx.reply_with(status(refusal.code, refusal.reason), headers, None)
                        .await
                }
                None => {
                    let headers = retry_after_s
                        .map(|s| vec![make_header("Retry-After", s.to_string())])
                        .unwrap_or_default();
                    tx.reply_with(status(code, &reason), headers, None).await
                }
            },
            Err(_) => {
                tx.reply(status(500, "Server Internal Error - call not decided"))
                    .await
            }
        }
    }

    async fn on_register(&self, tx: &mut Transaction) -> rsipstack::Result<()> {
        let request = &tx.original;
        let Some(login) = to_user(request) else {
            return tx.reply(status(400, "Bad Request - no user in To")).await;
        };
        let from = tx
            .connection
            .as_ref()
            .and_then(|c| c.get_remote_addr())
            .and_then(|a| a.get_socketaddr().ok())
            .map_or(self.inner.local.ip(), |a| a.ip());
        // An unknown login is answered exactly as a wrong password, after the same work: the
        // answers tell nobody which logins exist.
        let account = self.inner.plan.call_taker(&login);
        let now = now_s();
        let authorization = request
            .headers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case("Authorization"))
            .map(|h| h.value().to_owned());
        let answer = authorization
            .as_deref()
            .and_then(digest::parse_authorization);
        let algorithm = answer
            .as_ref()
            .and_then(|a| a.algorithm())
            .unwrap_or(digest::Algorithm::Md5);
        let stored = account.and_then(|(_, t)| match algorithm {
            digest::Algorithm::Md5 => t.sip_ha1.clone(),
            digest::Algorithm::Sha256 => t.sip_ha1_sha256.clone(),
        });
        let known = stored.is_some();
        let ha1 = stored
            .unwrap_or_else(|| digest::ha1_with(algorithm, &login, SIP_REALM, "\u{0}no account"));
        // An answer is only checked at the pace the throttle allows this login from this
        // source: wrong answers from elsewhere never hold back a phone from where it registered.
        let held = match answer {
            Some(_) => {
                lock(&self.inner.throttle).check(&login, Some(from), std::time::Instant::now())
            }
            None => Verdict::Try,
        };
        if let Verdict::Wait(wait) = held {
            return tx
                .reply_with(
                    status(503, "Service Unavailable - too many failed attempts"),
                    vec![make_header(
                        "Retry-After",
                        wait.as_secs().max(1).to_string(),
                    )],
                    None,
                )
                .await;
        }
        let mut failed = false;
        let verdict = match &answer {
            None => Err(false),
            Some(a) if a.username != login || a.realm != SIP_REALM => Err(false),
            Some(a) => match self.inner.nonces.check(&a.nonce, now, from) {
                NonceCheck::Forged => Err(false),
                NonceCheck::Stale => Err(true),
                NonceCheck::Fresh if !digest::verify(a, &ha1, "REGISTER") || !known => {
                    warn!(%login, "REGISTER refused: unknown login or wrong password");
                    failed = true;
                    Err(false)
                }
                NonceCheck::Fresh
                    if !lock(&self.inner.counts).take(
                        &a.nonce,
                        a.nc.as_deref().unwrap_or(""),
                        now,
                    ) =>
                {
                    warn!(%login, %from, "REGISTER refused: an answer already used (replayed)");
                    failed = true;
                    Err(false)
                }
                NonceCheck::Fresh => Ok(()),
            },
        };
        let locked = {
            let mut throttle = lock(&self.inner.throttle);
            let at = std::time::Instant::now();
            if failed {
                throttle.failed(&login, Some(from), at)
            } else {
                if verdict.is_ok() {
                    // From now on, wrong answers from elsewhere cannot hold this phone back.
                    throttle.succeeded(&login, Some(from), at);
                }
                Vec::new()
            }
        };
        for lockout in locked {
            let what = match lockout {
                Lockout::LoginFrom { login, source } => format!(
                    "enregistrements du téléphone de {login} depuis {source} bloqués 15 min après des réponses fausses"
                ),
                Lockout::Source(ip) => format!(
                    "enregistrements de téléphones depuis {ip} bloqués 15 min après des réponses fausses"
                ),
                Lockout::LoginFromUnknown(login) => format!(
                    "enregistrements du téléphone de {login} depuis des adresses inconnues bloqués 15 min après des réponses fausses"
                ),
            };
            warn!(%what, "phone registration locked out");
            self.notify(SipEvent::LockedOut { what }).await;
        }
        let (Ok(()), Some((index, _))) = (verdict, account) else {
            let stale = verdict == Err(true);
            let nonce = self.inner.nonces.issue(now, from);
            let challenges = self
                .inner
                .offered
                .iter()
                .map(|a| {
                    make_header(
                        "WWW-Authenticate",
                        digest::challenge(*a, SIP_REALM, &nonce, stale),
                    )
                })
                .collect();
            return tx
                .reply_with(status(401, "Unauthorized"), challenges, None)
                .await;
        };
        let contact = request
            .headers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case("Contact"))
            .map(|h| h.value().to_owned());
        let Some(contact) = contact else {
            // A REGISTER without Contact asks for the current bindings (RFC 3261 §10.2.3).
            return tx.reply(StatusCode::OK).await;
        };
        let wildcard = contact.trim() == "*";
        let expires = contact_expires(&contact)
            .or_else(|| {
                request
                    .headers
                    .iter()
                    .find(|h| h.name().eq_ignore_ascii_case("Expires"))
                    .and_then(|h| h.value().trim().parse().ok())
            })
            .unwrap_or(3600);
        let uri = contact_uri(&contact);
        let source = tx
            .connection
            .as_ref()
            .and_then(|c| c.get_remote_addr())
            .and_then(|a| a.get_socketaddr().ok());
        let over = match tx.connection.as_ref().map(|c| c.get_addr().r#type) {
            Some(Some(Transport::Tls)) => Over::Tls,
            Some(Some(Transport::Tcp)) => Over::Tcp,
            _ => Over::Udp,
        };
        let (Some(uri), Some(source)) = (uri, source) else {
            if wildcard {
                lock(&self.inner.registrar).register(
                    index,
                    String::new(),
                    self.inner.local,
                    Over::Udp,
                    0,
                    now,
                );
                self.notify(SipEvent::Unregistered {
                    agent: AgentId(index as u32),
                })
                .await;
                return tx.reply(StatusCode::OK).await;
            }
            return tx
                .reply(status(400, "Bad Request - unreadable Contact"))
                .await;
        };
        let granted =
            lock(&self.inner.registrar).register(index, uri.clone(), source, over, expires, now);
        let agent = AgentId(index as u32);
        if granted == 0 {
            info!(%login, "phone unregistered");
            self.notify(SipEvent::Unregistered { agent }).await;
            return tx.reply(StatusCode::OK).await;
        }
        info!(%login, %source, expires = granted, "phone registered");
        let binding = lock(&self.inner.registrar).lookup(index, now).cloned();
        if let Some(binding) = binding {
            self.notify(SipEvent::Registered { agent, binding }).await;
        }
        tx.reply_with(
            StatusCode::OK,
            vec![
                make_header("Contact", format!("<{uri}>;expires={granted}")),
                make_header("Expires", granted.to_string()),
            ],
            None,
        )
        .await
    }

    async fn notify(&self, event: SipEvent) {
        let _ = self.inner.events.send(event).await;
    }

    async fn follow_dialogs(self, mut states: DialogStateReceiver) {
        while let Some(state) = states.recv().await {
            let DialogState::Terminated(id, reason) = state else {
                continue;
            };
            self.inner.dialog_layer.remove_dialog(&id);
            let leg = lock(&self.inner.legs).remove(&id.to_string());
            let event = match leg {
                Some(Leg::Caller(call)) => {
                    lock(&self.inner.callers).remove(&call);
                    debug!(?call, ?reason, "caller left");
                    SipEvent::CallerGone { call }
                }
                Some(Leg::Peer(call, peer)) => {
                    lock(&self.inner.agents).remove(&(call, peer));
                    debug!(?call, ?peer, ?reason, "called party left");
                    match peer {
                        Peer::Agent(agent) => SipEvent::AgentGone { call, agent },
                        Peer::Partner => SipEvent::PartnerGone { call },
                    }
                }
                None => continue,
            };
            self.notify(event).await;
        }
    }
}

/// Methods we answer, for Allow headers.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO";
/// Bodies we read, for Accept headers.
const ACCEPT: &str = "application/sdp, multipart/mixed, application/pidf+xml";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not take telephony down with it: the data stays usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn to_user(request: &Request) -> Option<String> {
    let to = request
        .headers
        .iter()
        .find(|h| matches!(h, Header::To(_)))?
        .value()
        .to_owned();
    let inner = match (to.find('<'), to.find('>')) {
        (Some(a), Some(b)) if a < b => to[a + 1..b].to_owned(),
        _ => to.split(';').next().unwrap_or(&to).to_owned(),
    };
    let rest = inner.split_once(':').map_or(inner.as_str(), |(_, r)| r);
    let user = rest.split(['@', ';']).next()?.trim();
    (!user.is_empty()).then(|| user.to_owned())
}

fn contact_uri(contact: &str) -> Option<String> {
    let contact = contact.split(',').next()?.trim();
    let uri = match (contact.find('<'), contact.find('>')) {
        (Some(a), Some(b)) if a < b => &contact[a + 1..b],
        _ => contact.split(';').next()?,
    };
    let uri = uri.trim();
    (uri.starts_with("sip:") || uri.starts_with("sips:")).then(|| uri.to_owned())
}

fn contact_expires(contact: &str) -> Option<u64> {
    let params = match contact.find('>') {
        Some(i) => &contact[i + 1..],
        None => contact,
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("expires")
            .then(|| v.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_read() {
        assert_eq!(
            contact_uri("\"ota\" <sip:ota-13-1@127.0.0.1:5071;transport=udp>;expires=60")
                .as_deref(),
            Some("sip:ota-13-1@127.0.0.1:5071;transport=udp")
        );
        assert_eq!(contact_expires("<sip:a@b>;expires=60"), Some(60));
        assert_eq!(contact_expires("<sip:a@b;expires=9>"), None);
        assert_eq!(contact_uri("sip:a@b;expires=3").as_deref(), Some("sip:a@b"));
        assert_eq!(contact_uri("*"), None);
    }
}

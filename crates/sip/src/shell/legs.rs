//! The legs the platform calls out (phones, partner services), hung up and followed to their end.

use rsipstack::dialog::DialogId;
use rsipstack::dialog::dialog::{Dialog, DialogState, DialogStateReceiver};
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::headers::make_header;
use rsipstack::sip::{Transport, Uri};
use secourir_core::{AgentId, CallId, RingFailure};
use tracing::{debug, warn};

use super::{Leg, Peer, Sip, SipEvent, lock, now_s};
use crate::registrar::Over;

impl Sip {
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

    pub(super) async fn follow_dialogs(self, mut states: DialogStateReceiver) {
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

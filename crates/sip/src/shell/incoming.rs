//! What peers send: transactions dispatched by method, emergency INVITEs put to the platform.

use rsipstack::sip::headers::make_header;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::Transaction;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::{Decision, Leg, Sip, SipEvent, lock, now_ms, status};
use crate::ingress::read_invite;

impl Sip {
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

    pub(super) async fn serve_transactions(
        self,
        mut incoming: rsipstack::transaction::TransactionReceiver,
    ) {
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
            Method::Message if !in_dialog => self.on_message(tx).await,
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
        let source = self.source_of(&tx);
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
}

/// Methods we answer, for Allow headers.
pub(super) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, MESSAGE";
/// Bodies we read, for Accept headers.
const ACCEPT: &str = "application/sdp, multipart/mixed, application/pidf+xml";

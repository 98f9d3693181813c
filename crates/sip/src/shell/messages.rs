//! Text to and from callers who write (SIP MESSAGE, RFC 3428, page mode): each MESSAGE
//! received is put to the platform and answered as it says; each text sent is a MESSAGE of its
//! own to where the caller's came from.

use std::net::SocketAddr;

use rsipstack::sip::headers::make_header;
use rsipstack::sip::{Header, Request, Transport, Uri};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::{make_tag, make_via_branch};
use rsipstack::transport::SipAddr;
use secourir_core::CallId;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::{Sip, SipEvent, lock, status};
use crate::ingress::read_message;

/// Bodies a MESSAGE may carry, for Accept headers.
const ACCEPT_TEXT: &str = "text/plain, multipart/mixed, application/pidf+xml";

impl Sip {
    pub(super) async fn on_message(&self, mut tx: Transaction) -> rsipstack::Result<()> {
        let ingress = match read_message(&tx.original) {
            Ok(ingress) => ingress,
            Err(refusal) => {
                info!(
                    code = refusal.code,
                    reason = refusal.reason,
                    "MESSAGE refused"
                );
                return tx.reply(status(refusal.code, refusal.reason)).await;
            }
        };
        if self.inner.events.is_closed() {
            return tx
                .reply_with(
                    status(503, "Service Unavailable - platform stopping"),
                    vec![make_header("Retry-After", "5".into())],
                    None,
                )
                .await;
        }
        let source = self.source_of(&tx);
        let read = secourir_text::read_message(&ingress.content_type, &ingress.body);
        let _turn = self.inner.texts_in_order.lock().await;
        let replied = match &read {
            Ok(_) => tx.reply(status(202, "Accepted")).await,
            Err(unreadable) => {
                let headers = match unreadable.code {
                    415 => vec![make_header("Accept", ACCEPT_TEXT.into())],
                    _ => vec![],
                };
                tx.reply_with(status(unreadable.code, unreadable.reason), headers, None)
                    .await
            }
        };
        let event = SipEvent::Text {
            ingress: Box::new(ingress),
            read,
            source,
        };
        if self.inner.events.send(event).await.is_err() {
            error!("a text message answered while the platform stopped is not taken");
        }
        replied
    }

    /// Sends `text` to the caller of conversation `call` at `to`, through `destination` (where
    /// their messages come from), with the Call-ID of their messages and the `cseq`-th number
    /// of the platform's; a refusal or no answer is reported as [`SipEvent::TextUndelivered`].
    /// A conversation's texts go one at a time, each once the one before is answered, so that
    /// the caller reads them in the order they were written.
    #[allow(clippy::too_many_arguments)]
    pub fn send_text(
        &self,
        call: CallId,
        to: &str,
        destination: SocketAddr,
        call_id: &str,
        cseq: u32,
        text: &str,
        headers: Vec<(String, String)>,
    ) {
        let Some(request) = self.text_request(to, call_id, cseq, text, headers) else {
            warn!(?call, "unusable address to reply to");
            let sip = self.clone();
            tokio::spawn(async move {
                sip.notify(SipEvent::TextUndelivered { call, status: 0 })
                    .await
            });
            return;
        };
        let destination = SipAddr {
            r#type: Some(Transport::Udp),
            addr: destination.into(),
        };
        let mut outboxes = lock(&self.inner.outboxes);
        let outbox = outboxes.entry(call).or_insert_with(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<(Request, SipAddr)>();
            let sip = self.clone();
            tokio::spawn(async move {
                while let Some((request, destination)) = rx.recv().await {
                    let status = sip.deliver(request, destination).await;
                    if status / 100 != 2 {
                        warn!(?call, status, "a text was not taken by the caller's side");
                        sip.notify(SipEvent::TextUndelivered { call, status }).await;
                    }
                }
            });
            tx
        });
        let _ = outbox.send((request, destination));
    }

    /// The conversation `call` is over: its texts still waiting go, then its sender stops.
    pub fn end_texts(&self, call: CallId) {
        lock(&self.inner.outboxes).remove(&call);
    }

    fn text_request(
        &self,
        to: &str,
        call_id: &str,
        cseq: u32,
        text: &str,
        headers: Vec<(String, String)>,
    ) -> Option<Request> {
        let target = Uri::try_from(to).ok()?;
        let endpoint = &self.inner.dialog_layer.endpoint;
        let mut from = self.inner.contact.clone();
        from.auth = Some(rsipstack::sip::Auth {
            user: "18".into(),
            password: None,
        });
        let via = endpoint.get_via(None, Some(make_via_branch())).ok()?;
        let mut request = endpoint.make_request(
            rsipstack::sip::Method::Message,
            target.clone(),
            via,
            rsipstack::sip::typed::From {
                display_name: Some("Secours".into()),
                uri: from,
                params: vec![rsipstack::sip::Param::Tag(make_tag())],
            },
            rsipstack::sip::typed::To {
                display_name: None,
                uri: target,
                params: vec![],
            },
            cseq,
            (!call_id.is_empty()).then(|| call_id.into()),
        );
        request
            .headers
            .push(Header::ContentType("text/plain;charset=UTF-8".into()));
        for (name, value) in headers {
            request.headers.push(make_header(&name, value));
        }
        request.body = text.as_bytes().to_vec();
        Some(request)
    }

    /// Sends one MESSAGE and waits for its final answer: its status, 0 when none came.
    async fn deliver(&self, request: Request, destination: SipAddr) -> u16 {
        let endpoint = self.inner.dialog_layer.endpoint.clone();
        let Ok(key) = TransactionKey::from_request(&request, TransactionRole::Client) else {
            return 0;
        };
        let mut tx = Transaction::new_client(key, request, endpoint, None);
        tx.destination = Some(destination);
        match tx.send().await {
            Ok(()) => final_status(&mut tx).await,
            Err(e) => {
                warn!(error = %e, "a text could not be sent");
                0
            }
        }
    }
}

/// The final status the MESSAGE got, 0 when none came before the transaction's end.
async fn final_status(tx: &mut Transaction) -> u16 {
    while let Some(message) = tx.receive().await {
        if let rsipstack::sip::SipMessage::Response(response) = message {
            let code = response.status_code.code();
            if code >= 200 {
                return code;
            }
        }
    }
    0
}

//! Cases handed to the SAMU and the police through the Hub Santé: the createCase built from
//! the call in hand, handed to the hub's outbox, and its delivery followed on the call, the
//! consoles and the record until the partner acknowledges it.
//!
//! - [`facts`]: a call (live or recorded) mapped to the case's facts and message;
//! - [`pump`]: the task owning the hub's handle, so that the driver never waits on it.

pub mod facts;
mod pump;

use std::collections::HashMap;

use secourir_cisu::{DeliveryEvent, Incoming, Kind, Received, Route};
use secourir_config::{Plan, Service};
use secourir_core::CallInfo;
use secourir_http::{CaseSent, CaseView, ReceivedView};
use secourir_privacy::Personal;
use secourir_store::Write;

pub(crate) use pump::{HubReport, Pump};

/// The partner in words, with its article, as the call-taker reads "reçu par le SAMU".
pub(crate) fn partner_words(to: &str) -> &'static str {
    match to {
        "15" => "le SAMU",
        "17" => "la police",
        _ => "le partenaire",
    }
}

/// What a case handed over leaves: the reply, the record's row, the consoles' view.
pub(crate) struct Handed {
    /// For the call-taker.
    pub(crate) sent: CaseSent,
    /// The store's row, with the JSON that goes on the wire.
    pub(crate) write: Write,
    /// For the consoles.
    pub(crate) view: CaseView,
    /// The trail's words.
    pub(crate) step: String,
}

/// Why a case could not be handed over, in the call-taker's words (the log has the detail).
pub(crate) type Refusal = &'static str;

/// The cases this node handed to the hub.
pub(crate) struct Cases {
    pump: Option<Pump>,
    /// Partners each call's case went to, for Update after the first Report.
    sent: HashMap<(u64, &'static str), u32>,
    /// The nature of fact last chosen for each call, kept for its next send.
    chosen: HashMap<u64, String>,
}

impl Cases {
    /// Cases sent through `pump`; None: no hub configured.
    pub(crate) fn new(pump: Option<Pump>) -> Cases {
        Cases {
            pump,
            sent: HashMap::new(),
            chosen: HashMap::new(),
        }
    }

    /// Builds the case of the call `login` holds and hands it to the hub's outbox.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn hand(
        &mut self,
        plan: &Plan,
        info: &CallInfo,
        login: &str,
        to: Service,
        qualification: Option<String>,
        note: String,
        now_ms: i64,
    ) -> Result<Handed, Refusal> {
        let pump = self.pump.as_ref().ok_or("aucun hub configuré")?;
        let hub = plan.hub.as_ref().ok_or("aucun hub configuré")?;
        let recipient = plan
            .partner_hub_id(to)
            .ok_or("ce partenaire n'a pas d'identifiant sur le hub")?;
        let call = info.call.0;
        let code = qualification.or_else(|| self.chosen.get(&call).cloned());
        let qualification = facts::qualification(plan, code.as_deref());
        let case =
            facts::of_call(info, plan, login, Some(note), qualification.clone()).map_err(|e| {
                tracing::warn!(call, error = %e, "case facts refused");
                "le dossier ne peut être constitué"
            })?;
        let to_word = secourir_http::service_name(to);
        let rank = self.sent.get(&(call, to_word)).copied().unwrap_or(0);
        let kind = if rank == 0 {
            Kind::Report
        } else {
            Kind::Update
        };
        let route = Route {
            sender_id: hub.client_id.clone(),
            recipient_id: recipient.to_owned(),
        };
        // The stamp keeps ids unique across nodes and restarts, the call and partner readable.
        let local_id = format!("{}-{now_ms}", facts::local_id(call, to, rank + 1));
        let message = facts::message(&route, local_id, kind, &case, now_ms).map_err(|e| {
            tracing::warn!(call, error = %e, "case message not built");
            "le dossier ne peut être constitué"
        })?;
        let id = message.distribution_id.clone();
        let body = String::from_utf8_lossy(&message.body).into_owned();
        pump.send(message)?;
        self.sent.insert((call, to_word), rank + 1);
        self.chosen.insert(call, qualification.code.clone());
        let kind_word = kind_word(kind);
        Ok(Handed {
            sent: CaseSent {
                distribution_id: id.clone(),
                kind: kind_word,
            },
            write: Write::CaseMessage {
                distribution_id: id.clone(),
                call: Some(call),
                direction: "sent",
                partner: recipient.to_owned(),
                kind: kind_word.to_owned(),
                state: "queued".to_owned(),
                at: now_ms,
                body: Personal::new(body),
            },
            view: CaseView {
                id,
                call,
                cta: plan.cta(info.cta).id.clone(),
                to: to_word,
                partner: partner_words(to_word),
                kind: kind_word,
                state: "queued",
                reason: None,
                sent_at: now_ms as u64,
                at: now_ms as u64,
            },
            step: format!(
                "dossier {} au {to_word} par {login} : {} ({})",
                if kind == Kind::Report {
                    "transmis"
                } else {
                    "mis à jour"
                },
                qualification.label,
                qualification.code
            ),
        })
    }

    /// A call ended: its case may still be updated by nobody.
    pub(crate) fn ended(&mut self, call: u64) {
        self.chosen.remove(&call);
        self.sent.retain(|(c, _), _| *c != call);
    }
}

/// `Report`, `Update`.
fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Report => "Report",
        Kind::Update => "Update",
        Kind::Cancel => "Cancel",
        Kind::Ack => "Ack",
        Kind::Error => "Error",
    }
}

/// A delivery event as a state: the message, its new state and the refusal's words.
pub(crate) fn delivery_state(event: &DeliveryEvent) -> (&str, &'static str, Option<String>) {
    match event {
        DeliveryEvent::Acked { id } => (id, "acked", None),
        DeliveryEvent::Refused { id, reason } => (id, "refused", Some(reason.clone())),
        DeliveryEvent::Overdue { id, .. } => (id, "overdue", None),
        DeliveryEvent::Expired { id, .. } => (id, "expired", None),
    }
}

/// What the trail and the journal say of a message's new state.
pub(crate) fn state_words(state: &str, to: &str, reason: Option<&str>) -> String {
    let partner = partner_words(to);
    match state {
        "acked" => format!("dossier reçu par {partner}"),
        "refused" => format!(
            "dossier refusé par {partner} ou le hub : {}",
            reason.unwrap_or("sans motif")
        ),
        "overdue" => format!("dossier sans accusé de réception de {partner}"),
        "expired" => format!("dossier expiré sans accusé de réception de {partner}"),
        _ => format!("dossier pour {partner} : {state}"),
    }
}

/// A partner's message, for the consoles and the record.
pub(crate) fn received(received: &Received, now_ms: i64) -> (Option<ReceivedView>, Write) {
    let view = match &received.message {
        Incoming::CreateCase(case) => Some(ReceivedView {
            at: now_ms as u64,
            from: received.sender_id.clone(),
            case_id: case.case_id.clone(),
            what: format!("{} ({})", case.whats_happen.1, case.whats_happen.0),
            place: case
                .location
                .commune
                .clone()
                .or_else(|| case.location.label.clone()),
        }),
        _ => None,
    };
    let kind = match &received.message {
        Incoming::CreateCase(_) => "createCase",
        Incoming::Reference(_) => "reference",
        Incoming::Error(_) => "error",
        Incoming::Other { .. } => "other",
    };
    let write = Write::CaseMessage {
        distribution_id: received.distribution_id.clone(),
        call: None,
        direction: "received",
        partner: received.sender_id.clone(),
        kind: kind.to_owned(),
        state: "received".to_owned(),
        at: now_ms,
        body: Personal::new(received.body.clone()),
    };
    (view, write)
}

//! Cases handed to the partners through the hub: asked by a call-taker, followed from the
//! hub's reports onto the call's record, the consoles and the supervisors' journal.

use secourir_config::Service;
use secourir_http::{CaseSent, CaseView, HubView};
use secourir_hub::HubEvent;
use secourir_store::Write;

use super::*;
use crate::cases::{HubReport, delivery_state, facts, partner_words, received, state_words};

impl Driver {
    /// Hands the case of the call `login` holds to partner `to`: Report the first time,
    /// Update after.
    pub(super) fn hand_case(
        &mut self,
        login: &str,
        call: CallId,
        to: Service,
        qualification: Option<String>,
        note: String,
    ) -> Result<CaseSent, ApiError> {
        let Some((index, _)) = self.plan.call_taker(login) else {
            return Err(ApiError::NotFound("opérateur inconnu"));
        };
        let agent = secourir_core::AgentId(index as u32);
        if self.core.agent(agent) != secourir_core::AgentStatus::Talking(call) {
            return Err(ApiError::Forbidden(
                "vous n'êtes pas en conversation avec cet appel",
            ));
        }
        let Some(info) = self.core.call(call) else {
            return Err(ApiError::NotFound("appel inconnu"));
        };
        let now = self.clock.now();
        let handed = self
            .cases
            .hand(
                &self.plan,
                &info,
                login,
                to,
                qualification,
                note,
                now.0 as i64,
            )
            .map_err(ApiError::Conflict)?;
        info!(%login, ?call, id = %handed.sent.distribution_id, "case handed to the hub");
        self.records.write(handed.write);
        self.records.trail(call, now, handed.step);
        self.records.board.case(handed.view);
        self.dirty = true;
        Ok(handed.sent)
    }

    /// What the hub reports: a delivery's outcome, a partner's case, the link's state.
    pub(super) fn on_hub(&mut self, report: HubReport) {
        let now = self.clock.now();
        self.dirty = true;
        match report {
            HubReport::Event(HubEvent::Delivery(event)) => {
                let (id, state, reason) = delivery_state(&event);
                self.case_state(id, state, reason, now);
            }
            HubReport::NotTaken { id, reason } => {
                self.case_state(&id, "refused", Some(reason), now);
            }
            HubReport::Event(HubEvent::Received(message)) => {
                let (view, write) = received(&message, now.0 as i64);
                self.records.write(write);
                if let Some(view) = view {
                    let place = view.place.as_deref().unwrap_or("lieu non précisé");
                    let what = format!("dossier reçu de {} : {}, {place}", view.from, view.what);
                    info!(from = %view.from, case = %view.case_id, "partner's case received");
                    self.records.board.note(now, "hub", what);
                    self.records.board.received(view);
                }
            }
            HubReport::Event(HubEvent::Unreadable { queue, reason }) => {
                warn!(%queue, %reason, "unreadable message from the hub");
                self.records.board.note(
                    now,
                    "hub",
                    format!("message illisible sur {queue} : {reason}"),
                );
            }
            HubReport::Event(HubEvent::Connected) => {
                if self
                    .records
                    .board
                    .hub
                    .as_ref()
                    .is_some_and(|h| !h.connected)
                {
                    self.records
                        .board
                        .note(now, "hub", "liaison avec le hub rétablie".into());
                }
                self.records.board.hub = Some(HubView {
                    connected: true,
                    since: now.0,
                    reason: None,
                });
            }
            HubReport::Event(HubEvent::Disconnected { reason }) => {
                // Said once when the link goes down, not at every attempt while it stays down.
                if self.records.board.hub.as_ref().is_none_or(|h| h.connected) {
                    self.records.board.note(
                        now,
                        "hub",
                        "hub injoignable : les dossiers attendent sur disque".into(),
                    );
                    self.records.board.hub = Some(HubView {
                        connected: false,
                        since: now.0,
                        reason: Some(reason),
                    });
                }
            }
        }
    }

    /// A message's new delivery state, on its call's record and on the consoles; a case the
    /// partner may not have is said in the supervisors' journal too.
    fn case_state(&mut self, id: &str, state: &'static str, reason: Option<String>, now: Instant) {
        self.records.write(Write::CaseState {
            distribution_id: id.to_owned(),
            state: state.to_owned(),
            reason: reason.clone(),
            at: now.0 as i64,
        });
        let Some((call, to)) = facts::call_of(id) else {
            warn!(%id, state, "delivery report for a message of no call");
            return;
        };
        let words = state_words(state, to, reason.as_deref());
        self.records.trail(CallId(call), now, words.clone());
        if state != "acked" {
            self.records
                .board
                .note(now, "hub", format!("appel {call} : {words}"));
        }
        let to: &'static str = match to {
            "15" => "15",
            "17" => "17",
            _ => "?",
        };
        match self.records.board.case_of(id) {
            Some(view) => {
                view.state = state;
                view.reason = reason;
                view.at = now.0;
            }
            // A message sent before a restart, followed from the outbox.
            None => self.records.board.case(CaseView {
                id: id.to_owned(),
                call,
                cta: String::new(),
                to,
                partner: partner_words(to),
                kind: "Report",
                state,
                reason,
                sent_at: now.0,
                at: now.0,
            }),
        }
    }
}

//! Requests of call-takers and machines (pick, call-back, hang-up, hand-back, transfer, state,
//! AML position), each answered by one `Reply` carrying the request's id, and the life of a
//! transfer to a partner service.

use std::sync::Arc;

use secourir_config::Service;

use super::Core;
use crate::types::*;

/// Longest summary line that travels to a partner service in the transfer's INVITE.
const SUBJECT_MAX_CHARS: usize = 300;

impl Core {
    pub(super) fn on_request(&mut self, id: RequestId, agent: AgentId, ask: Ask) {
        let result = match ask {
            Ask::Pick(call) => self
                .check_pick(agent, call)
                .map_err(Denied::Pick)
                .map(|()| {
                    // The answer goes before the ring, so that the shell replies first.
                    self.reply(id, Ok(Granted::Done));
                    self.pick(agent, call);
                }),
            Ask::CallbackTaken(call) => self
                .apply_callback(agent, call, false)
                .map_err(Denied::Callback)
                .map(|()| self.reply(id, Ok(Granted::Done))),
            Ask::CallbackDone(call) => self
                .apply_callback(agent, call, true)
                .map_err(Denied::Callback)
                .map(|()| self.reply(id, Ok(Granted::Done))),
            Ask::HangUp(call) => {
                if self.is_talking(agent, call) {
                    self.reply(id, Ok(Granted::Done));
                    self.on_agent_hung_up(agent, call);
                    Ok(())
                } else {
                    Err(Denied::NotTheirCall)
                }
            }
            Ask::HandBack { call, summary } => self.ask_hand_back(id, agent, call, summary),
            Ask::Transfer { call, to, summary } => self.ask_transfer(id, agent, call, to, &summary),
            Ask::State(wanted) => self.set_state(agent, wanted).map(|()| {
                let status = self.agent(agent);
                self.reply(id, Ok(Granted::Status(status)));
            }),
        };
        if let Err(denied) = result {
            self.reply(id, Err(denied));
        }
    }

    fn ask_hand_back(
        &mut self,
        id: RequestId,
        agent: AgentId,
        call: CallId,
        summary: Box<str>,
    ) -> Result<(), Denied> {
        self.check_hand_back(agent, call)
            .map_err(Denied::HandBack)?;
        if self.calls[&call].transfer.is_some() {
            return Err(Denied::TransferPending);
        }
        let home = self.calls[&call].home;
        self.reply(id, Ok(Granted::HandedBack(home)));
        self.hand_back(agent, call, summary);
        Ok(())
    }

    fn ask_transfer(
        &mut self,
        id: RequestId,
        agent: AgentId,
        call: CallId,
        to: Service,
        summary: &str,
    ) -> Result<(), Denied> {
        // A service without a partner is said first: no call could ever be handed to it.
        if self.plan.partner_service(to).is_none() {
            return Err(Denied::NoPartner(to));
        }
        if !self.is_talking(agent, call) {
            return Err(Denied::NotTheirCall);
        }
        let entry = self.calls.get_mut(&call).ok_or(Denied::CallEnded)?;
        if entry.transfer.is_some() {
            return Err(Denied::TransferPending);
        }
        entry.transfer = Some((id, agent, to));
        let subject: String = summary
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(SUBJECT_MAX_CHARS)
            .collect();
        self.trail(
            call,
            Step::TransferAsked {
                to,
                by: agent,
                summary: summary.into(),
            },
        );
        self.emit(Command::CallPartner {
            call,
            to,
            subject: subject.into(),
        });
        Ok(())
    }

    pub(super) fn on_partner_answered(&mut self, id: CallId) {
        if self.handed_over.contains(&id) {
            // A repeated answer (a retransmitted 200 OK): the caller is with the partner.
            return;
        }
        let Some((request, agent, to)) = self.calls.get_mut(&id).and_then(|c| c.transfer.take())
        else {
            // Nobody waits for this partner any more (the call ended as it answered).
            self.emit(Command::DropPartner { call: id });
            return;
        };
        // The transfer is only asked while talking, and ending the call clears it.
        debug_assert!(self.is_talking(agent, id));
        self.emit(Command::HandOver { call: id, agent });
        self.trail(id, Step::Transferred { to, by: agent });
        self.reply(request, Ok(Granted::Transferred(to)));
        self.handed_over.insert(id);
        self.end(id, Outcome::Transferred, EndReason::TransferredTo(to));
        self.after_call(agent);
    }

    pub(super) fn on_partner_failed(&mut self, id: CallId, status: u16) {
        let Some((request, _, to)) = self.calls.get_mut(&id).and_then(|c| c.transfer.take()) else {
            return;
        };
        self.emit(Command::DropPartner { call: id });
        self.trail(id, Step::TransferFailed { to, status });
        self.reply(request, Err(Denied::PartnerFailed(status)));
    }

    pub(super) fn on_partner_hung_up(&mut self, id: CallId) {
        if self.handed_over.remove(&id) {
            self.emit(Command::HangUp { call: id });
            self.emit(Command::DropPartner { call: id });
        } else {
            // Hung up before answering: the transfer failed.
            self.on_partner_failed(id, 0);
        }
    }

    /// Applies a handset position to the live call from that number that arrived last: the
    /// position replaces the one shown; the call's routing stays as it was.
    pub(super) fn on_located(&mut self, id: RequestId, caller: &str, place: Arc<Whereabouts>) {
        let wanted = national_number(caller);
        let found = self
            .calls
            .iter()
            .filter(|(_, c)| {
                c.caller
                    .as_deref()
                    .is_some_and(|n| national_number(n) == wanted)
            })
            .max_by_key(|(call, c)| (c.offered_at, **call))
            .map(|(call, _)| *call);
        let Some(call) = found else {
            self.reply(id, Err(Denied::NoLiveCall));
            return;
        };
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.place = Some(place);
        }
        self.trail(call, Step::Located);
        self.reply(id, Ok(Granted::Located(call)));
    }

    /// Moves a call-taker toward the state they asked for, logging them in at their seat of
    /// the plan when needed.
    fn set_state(&mut self, agent: AgentId, wanted: WantedState) -> Result<(), Denied> {
        let current = self.agent(agent);
        let seat = self
            .plan
            .call_takers
            .get(agent.0 as usize)
            .ok_or(Denied::UnknownAgent)?;
        let (cta, site, preference) = (seat.cta, seat.site, seat.dequeue_preference);
        match (wanted, current) {
            (WantedState::Available, AgentStatus::Offline) => {
                self.on_login(agent, cta, site, preference);
            }
            (WantedState::Paused, AgentStatus::Offline) => {
                // Logged in paused at once: no call is offered to them on the way.
                self.log_in_paused(agent, cta, site, preference);
            }
            // Also takes back a logout or a pause asked during the current call.
            (WantedState::Available, _) => self.on_ready(agent),
            (WantedState::Offline, AgentStatus::Offline) => {}
            (WantedState::Paused, _) => self.on_pause(agent),
            (WantedState::Offline, _) => self.on_logout(agent),
        }
        Ok(())
    }

    fn reply(&mut self, request: RequestId, result: Result<Granted, Denied>) {
        self.emit(Command::Reply { request, result });
    }
}

/// A French number in its national form (`0601020304`), whatever way it was written
/// (`+33 6…`, `0033 6…`, `33 6…`, with any separators).
pub fn national_number(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if let Some(rest) = digits.strip_prefix("0033") {
        return format!("0{rest}");
    }
    match digits.strip_prefix("33") {
        Some(rest) if number.trim_start().starts_with('+') || digits.len() == 11 => {
            format!("0{rest}")
        }
        _ => digits,
    }
}

#[cfg(test)]
mod tests {
    use super::national_number;

    #[test]
    fn numbers_are_compared_in_national_form() {
        for written in [
            "0601020304",
            "+33601020304",
            "+33 6 01 02 03 04",
            "33601020304",
            "06.01.02.03.04",
        ] {
            assert_eq!(national_number(written), "0601020304", "{written}");
        }
        assert_eq!(national_number("+3214567890"), "3214567890");
    }
}

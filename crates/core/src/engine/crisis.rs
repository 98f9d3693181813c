//! Crisis mode and queues out of service, and the caller's key at the crisis menu.

use super::*;

impl Core {
    pub(super) fn on_dtmf(&mut self, id: CallId, digit: u8) {
        // A key pressed is a person: a suspect leaves the suspects.
        self.on_heard(id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let in_crisis = self
            .crisis
            .get(usize::from(call.zone.0))
            .copied()
            .unwrap_or(false);
        if digit != b'1' || !in_crisis || call.crisis_related || call.state != CallState::Queued {
            return;
        }
        call.crisis_related = true;
        let priority = call.priority.min(PRIORITY_CRISIS_RELATED);
        let cta = call.cta;
        let old = call.key;
        call.priority = priority;
        call.key = (Reverse(priority), old.1, old.2);
        let new = call.key;
        let queue = &mut self.ctas[usize::from(cta.0)].waiting;
        queue.remove(&old);
        queue.insert(new, id);
        if self.overdue.remove(&(true, old)).is_some() {
            self.overdue.insert((true, new), id);
        }
        self.trail(id, Step::CrisisRelated);
    }

    pub(super) fn on_crisis(&mut self, zone: ZoneId, on: bool) {
        let Some(flag) = self.crisis.get_mut(usize::from(zone.0)) else {
            return;
        };
        if *flag != on {
            *flag = on;
            self.emit(Command::CrisisChanged { zone, on });
            // The zone's overdue calls change rank.
            let moved: Vec<(OverdueKey, CallId)> = self
                .overdue
                .iter()
                .filter(|(_, id)| self.calls.get(id).is_some_and(|c| c.zone == zone))
                .map(|(k, id)| (*k, *id))
                .collect();
            for ((_, key), id) in moved {
                self.overdue.remove(&(!on, key));
                self.overdue.insert((on, key), id);
            }
        }
    }

    pub(super) fn on_disabled(&mut self, cta: CtaId, disabled: bool) {
        let Some(state) = self.ctas.get_mut(usize::from(cta.0)) else {
            return;
        };
        if state.disabled == disabled {
            return;
        }
        state.disabled = disabled;
        if !disabled {
            self.spare_grew.push(cta);
        }
        if disabled {
            // Calls waiting in a queue taken out of service are routed again at once.
            let waiting: Vec<CallId> = state.waiting.values().copied().collect();
            for id in waiting {
                self.reroute(id, FailReason::Unreachable);
            }
        } else {
            self.dispatch(cta);
        }
    }
}

//! Suspects of a flood: behind every other caller while they wait, back among the others once
//! heard.

use super::*;

impl Core {
    /// A waiting call suspected after its arrival moves behind every other caller, keeping
    /// its seniority among the suspects; one already with a call-taker is left alone. It keeps
    /// the capacity it was admitted with.
    pub(super) fn on_suspected(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.suspected || call.state != CallState::Queued {
            return;
        }
        let cta = call.cta;
        self.leave_queue(id);
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.suspected = true;
        call.priority = PRIORITY_SUSPECTED;
        call.key.0 = Reverse(PRIORITY_SUSPECTED);
        call.wants_aid = false;
        call.mutual_aid = false;
        let (key, generation, entered_at) = (call.key, call.generation, call.entered_at);
        self.ctas[usize::from(cta.0)].waiting.insert(key, id);
        let cta_plan = self.plan.cta(cta);
        if cta_plan.mode == DequeueMode::Mixed {
            let due = entered_at.plus_ms(cta_plan.acd_after_ms).max(now);
            self.set_timer(due, Timer::Acd(id, generation));
        }
        self.dispatch(cta);
    }

    /// A waiting suspect who was heard takes back its place by arrival among the other
    /// callers, with the priority it came with. It keeps the capacity it was admitted with.
    pub(super) fn on_heard(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if !call.suspected || call.state != CallState::Queued {
            return;
        }
        let cta = call.cta;
        self.leave_queue(id);
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.suspected = false;
        call.priority = PRIORITY_NORMAL;
        call.key.0 = Reverse(PRIORITY_NORMAL);
        let (key, generation, entered_at) = (call.key, call.generation, call.entered_at);
        self.ctas[usize::from(cta.0)].waiting.insert(key, id);
        self.mark_overdue(id);
        let cta_plan = self.plan.cta(cta);
        if cta_plan.mode == DequeueMode::Mixed {
            let due = entered_at.plus_ms(cta_plan.acd_after_ms).max(now);
            self.set_timer(due, Timer::Acd(id, generation));
        }
        self.trail(id, Step::Heard);
        self.dispatch(cta);
    }
}

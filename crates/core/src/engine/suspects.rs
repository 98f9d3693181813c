//! Suspects of a flood: behind every other caller while they wait, back among the others once
//! heard.

use super::*;

impl Core {
    /// A waiting call suspected after its arrival moves behind every other caller, keeping
    /// its seniority among the suspects; one already with a call-taker is left alone. It keeps
    /// the capacity it was admitted with.
    pub(super) fn on_suspected(&mut self, id: CallId) {
        if let Some(cta) = self.regrade(id, true) {
            self.dispatch(cta);
        }
    }

    /// A waiting suspect who was heard takes back its place by arrival among the other
    /// callers, at normal priority. It keeps the capacity it was admitted with.
    pub(super) fn on_heard(&mut self, id: CallId) {
        if let Some(cta) = self.regrade(id, false) {
            self.trail(id, Step::Heard);
            self.dispatch(cta);
        }
    }

    /// Moves a waiting call among the suspects or out of them, in the same queue and with
    /// its seniority; its CTA, or None when it is not waiting or already so.
    fn regrade(&mut self, id: CallId, suspected: bool) -> Option<CtaId> {
        let call = self.calls.get(&id)?;
        if call.suspected == suspected || call.state != CallState::Queued {
            return None;
        }
        let cta = call.cta;
        self.leave_queue(id);
        let now = self.now;
        let call = self.calls.get_mut(&id)?;
        let priority = match suspected {
            true => PRIORITY_SUSPECTED,
            false => PRIORITY_NORMAL,
        };
        call.suspected = suspected;
        call.priority = priority;
        call.key.0 = Reverse(priority);
        if suspected {
            // A suspect is never lent to another CTA.
            call.wants_aid = false;
            call.mutual_aid = false;
        }
        let (key, generation, entered_at) = (call.key, call.generation, call.entered_at);
        self.ctas[usize::from(cta.0)].waiting.insert(key, id);
        self.mark_overdue(id);
        let cta_plan = self.plan.cta(cta);
        if cta_plan.mode == DequeueMode::Mixed {
            let due = entered_at.plus_ms(cta_plan.acd_after_ms).max(now);
            self.set_timer(due, Timer::Acd(id, generation));
        }
        Some(cta)
    }
}

//! What the shells and the pages read of the core, never changing it.

use super::*;

impl Core {
    /// The earliest instant at which a timer is due; a `Tick` then fires it.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// The latest `now` seen.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The plan this core runs.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// Calls admitted and not yet ended.
    pub fn live_calls(&self) -> usize {
        self.calls.len()
    }

    /// Whether a zone is in crisis mode.
    pub fn in_crisis(&self, zone: ZoneId) -> bool {
        crisis_of(&self.crisis, zone)
    }

    /// A live call.
    pub fn call(&self, call: CallId) -> Option<CallInfo> {
        self.calls.get(&call).map(|c| info(call, c))
    }

    /// The calls waiting in a CTA's queue, in the order the ACD would offer them.
    pub fn waiting(&self, cta: CtaId) -> impl Iterator<Item = CallInfo> + '_ {
        self.ctas
            .get(usize::from(cta.0))
            .into_iter()
            .flat_map(|state| state.waiting.values())
            .filter_map(|id| self.call(*id))
    }

    /// A call-taker's status (`Offline` when unknown).
    pub fn agent(&self, agent: AgentId) -> AgentStatus {
        self.agents
            .get(&agent)
            .map_or(AgentStatus::Offline, |a| a.status)
    }

    /// The CTA, site and dequeue preference of a logged-in call-taker.
    pub fn agent_seat(&self, agent: AgentId) -> Option<(CtaId, u16, u8)> {
        self.agents
            .get(&agent)
            .map(|a| (a.cta, a.site, a.preference))
    }

    /// The state of a CTA's queue and room.
    pub fn cta_status(&self, cta: CtaId) -> CtaStatus {
        let Some(state) = self.ctas.get(usize::from(cta.0)) else {
            return CtaStatus {
                state: QueueState::Disabled,
                waiting: 0,
                oldest_queued_at: None,
                logged_in: 0,
                available: 0,
                paused: 0,
                busy: 0,
                lent: 0,
                reserve: 0,
                lendable: 0,
            };
        };
        let available = len_u32(state.idle.len());
        CtaStatus {
            lent: state.lent,
            reserve: state.load.reserve(),
            lendable: self.lendable(cta),
            state: self.queue_state(cta),
            waiting: len_u32(state.waiting.len()),
            oldest_queued_at: state
                .waiting
                .values()
                .filter_map(|id| self.calls.get(id))
                .map(|c| c.queued_at)
                .min(),
            logged_in: state.logged_in,
            available,
            paused: state.paused,
            busy: state.logged_in.saturating_sub(available + state.paused),
        }
    }

    /// A CTA's call-back list.
    pub fn callbacks(&self, cta: CtaId) -> impl Iterator<Item = (CallId, &CallbackEntry)> + '_ {
        self.ctas
            .get(usize::from(cta.0))
            .into_iter()
            .flat_map(|s| s.callbacks.iter().map(|(id, e)| (*id, e)))
    }

    /// Call-backs beyond the in-memory bound (still emitted as commands for the store).
    pub fn callbacks_unindexed(&self) -> u64 {
        self.callbacks_unindexed
    }

    /// Calls handed to a partner service whose caller is still on the line with it.
    pub fn handed_over(&self) -> impl Iterator<Item = CallId> + '_ {
        self.handed_over.iter().copied()
    }

    /// Every live call, in no particular order.
    pub fn live_call_ids(&self) -> impl Iterator<Item = CallId> + '_ {
        self.calls.keys().copied()
    }

    /// Admission bookkeeping, read-only.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }
}

/// A call as the console shows it.
pub(super) fn info(id: CallId, c: &Call) -> CallInfo {
    CallInfo {
        call: id,
        zone: c.zone,
        cta: c.cta,
        home: c.home,
        service: c.service,
        priority: c.priority,
        caller: c.caller.clone(),
        offered_at: c.offered_at,
        queued_at: c.queued_at,
        overflowed_from: c.overflowed_from,
        mutual_aid: c.mutual_aid,
        crisis_related: c.crisis_related,
        place: c.place.clone(),
        summary: c.summary.clone(),
        transferring: c.transfer.map(|(_, _, to)| to),
        suspected: c.suspected,
        medium: c.medium,
        status: match c.state {
            CallState::Queued => CallStatus::Queued,
            CallState::Ringing(a) => CallStatus::Ringing(a),
            CallState::Talking(a) => CallStatus::Talking(a),
        },
    }
}

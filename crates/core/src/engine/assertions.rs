//! Invariants checked in production on the way in and out of every `handle`: only what the
//! event and its commands touched, so that they cost a few lookups, never a scan. A broken one
//! is a defect of the core: it stops the core rather than route calls from a corrupt state
//! (the shell's recovery then closes every open call onto the call-back lists).

use super::*;

impl Core {
    /// The calls and call-takers an event names.
    pub(super) fn named(event: &Event) -> (Option<CallId>, Option<AgentId>) {
        match event {
            Event::Offered(offer) => (Some(offer.call), None),
            Event::CallerHungUp { call }
            | Event::Dtmf { call, .. }
            | Event::Stopped { call }
            | Event::Withdrawn { call }
            | Event::PartnerAnswered { call }
            | Event::PartnerFailed { call, .. }
            | Event::PartnerHungUp { call }
            | Event::Suspected { call }
            | Event::Heard { call }
            | Event::CallbackRestored { call, .. } => (Some(*call), None),
            Event::AgentLogin { agent, .. }
            | Event::AgentLogout { agent }
            | Event::AgentReady { agent }
            | Event::AgentPause { agent } => (None, Some(*agent)),
            Event::AgentAnswered { agent, call }
            | Event::AgentRingFailed { agent, call, .. }
            | Event::AgentHungUp { agent, call } => (Some(*call), Some(*agent)),
            Event::Request { agent, ask, .. } => {
                let call = match ask {
                    Ask::Pick(call)
                    | Ask::CallbackTaken(call)
                    | Ask::CallbackDone(call)
                    | Ask::HangUp(call)
                    | Ask::HandBack { call, .. }
                    | Ask::Transfer { call, .. } => Some(*call),
                    Ask::State(_) => None,
                };
                (call, Some(*agent))
            }
            Event::Located { .. }
            | Event::SetCrisis { .. }
            | Event::SetDisabled { .. }
            | Event::Tick => (None, None),
        }
    }

    /// Checks the named call and call-taker, and on the way out the calls the pending commands
    /// hand to a call-taker (ring, bridge, hand-over); each pair is looked at once.
    pub(super) fn assert_touched(
        &self,
        call: Option<CallId>,
        agent: Option<AgentId>,
        leaving: bool,
    ) {
        assert!(
            self.admission.total_in_use() == self.calls.len() as u64
                && self.admission.within_capacity(),
            "admitted calls and live calls differ, or exceed the capacity"
        );
        let holder = call.and_then(|c| self.assert_call(c, leaving));
        if let Some(agent) = agent
            && holder != Some(agent)
        {
            self.assert_agent(agent);
        }
        if !leaving {
            return;
        }
        for command in &self.out {
            match command {
                Command::Ring { call: c, agent: a }
                | Command::Bridge {
                    call: c, agent: a, ..
                }
                | Command::HandOver { call: c, agent: a }
                    // The named call's holder and the named call-taker are checked above.
                    if Some(*c) != call && Some(*a) != agent =>
                {
                    self.assert_agent(*a);
                }
                Command::Ended { call: c, .. } | Command::Withdrawn { call: c, .. } => assert!(
                    !self.calls.contains_key(c),
                    "call {c:?} ended but still live"
                ),
                _ => {}
            }
        }
    }

    /// A live call is in exactly one place: its queue, or the one call-taker it rings or talks
    /// to, who holds it in turn; returns that call-taker.
    fn assert_call(&self, id: CallId, in_queue: bool) -> Option<AgentId> {
        let call = self.calls.get(&id)?;
        let (agent, status) = match call.state {
            CallState::Queued => {
                if in_queue {
                    assert!(
                        self.ctas[usize::from(call.cta.0)].waiting.get(&call.key) == Some(&id),
                        "queued call {id:?} missing from its queue"
                    );
                }
                return None;
            }
            CallState::Ringing(agent) => (agent, AgentStatus::Ringing(id)),
            CallState::Talking(agent) => (agent, AgentStatus::Talking(id)),
        };
        let held = self.agents.get(&agent);
        assert!(
            held.map(|a| a.status) == Some(status),
            "call {id:?} held by a call-taker who does not hold it"
        );
        if let Some(held) = held {
            self.assert_counts(held.cta);
        }
        Some(agent)
    }

    /// A call-taker holds at most one call, the one that names them as its holder.
    fn assert_agent(&self, id: AgentId) {
        let Some(agent) = self.agents.get(&id) else {
            return;
        };
        if let AgentStatus::Ringing(call) | AgentStatus::Talking(call) = agent.status {
            let held = self.calls.get(&call).map(|c| c.state);
            assert!(
                held == Some(CallState::Ringing(id)) || held == Some(CallState::Talking(id)),
                "call-taker {id:?} busy with call {call:?} that is not theirs"
            );
        }
        self.assert_counts(agent.cta);
    }

    /// The counts of a CTA stay within its logged-in call-takers.
    fn assert_counts(&self, cta: secourir_config::CtaId) {
        let state = &self.ctas[usize::from(cta.0)];
        assert!(
            state.idle.len() as u64 + u64::from(state.paused) <= u64::from(state.logged_in)
                && state.lent <= state.logged_in,
            "counts of a CTA exceed its logged-in call-takers"
        );
    }
}

impl Core {
    /// Checks every invariant against a recount of the state; panics naming the broken one.
    pub fn check_invariants(&self) {
        self.admission.check();
        assert_eq!(
            self.admission.total_in_use(),
            self.calls.len() as u64,
            "admitted calls and live calls differ"
        );
        let mut queued = 0usize;
        for (id, call) in &self.calls {
            match call.state {
                CallState::Queued => {
                    queued += 1;
                    assert_eq!(
                        self.ctas[usize::from(call.cta.0)].waiting.get(&call.key),
                        Some(id),
                        "queued call {id:?} missing from its queue"
                    );
                }
                CallState::Ringing(agent) => assert_eq!(
                    self.agents.get(&agent).map(|a| a.status),
                    Some(AgentStatus::Ringing(*id)),
                    "call {id:?} rings an agent who does not ring it"
                ),
                CallState::Talking(agent) => assert_eq!(
                    self.agents.get(&agent).map(|a| a.status),
                    Some(AgentStatus::Talking(*id)),
                    "call {id:?} talks to an agent who does not talk to it"
                ),
            }
        }
        let in_queues: usize = self.ctas.iter().map(|s| s.waiting.len()).sum();
        assert_eq!(queued, in_queues, "queues hold calls that are not queued");
        for (index, state) in self.ctas.iter().enumerate() {
            let agents: Vec<&Agent> = self
                .agents
                .values()
                .filter(|a| usize::from(a.cta.0) == index)
                .collect();
            assert_eq!(
                state.logged_in as usize,
                agents.len(),
                "logged-in count drifted"
            );
            let idle = agents
                .iter()
                .filter(|a| a.status == AgentStatus::Available)
                .count();
            assert_eq!(state.idle.len(), idle, "idle set drifted");
            let paused = agents
                .iter()
                .filter(|a| a.status == AgentStatus::Paused)
                .count();
            assert_eq!(state.paused as usize, paused, "paused count drifted");
            let lent = agents.iter().filter(|a| a.lent).count();
            assert_eq!(state.lent as usize, lent, "lent count drifted");
        }
        for ((crisis, key), id) in &self.overdue {
            let call = self.calls.get(id).expect("overdue call is live");
            assert!(
                call.state == CallState::Queued
                    && call.key == *key
                    && call.wants_aid
                    && *crisis == self.in_crisis(call.zone),
                "overdue call {id:?} is not a queued call wanting aid"
            );
        }
        for (id, agent) in &self.agents {
            if agent.lent {
                assert!(
                    matches!(
                        agent.status,
                        AgentStatus::Ringing(_) | AgentStatus::Talking(_) | AgentStatus::WrapUp
                    ),
                    "agent {id:?} counted as lent while {:?}",
                    agent.status
                );
            }
        }
        for (id, agent) in &self.agents {
            if let AgentStatus::Ringing(call) | AgentStatus::Talking(call) = agent.status {
                let state = self.calls.get(&call).map(|c| c.state);
                assert!(
                    state == Some(CallState::Ringing(*id))
                        || state == Some(CallState::Talking(*id)),
                    "agent {id:?} busy with call {call:?} that is not theirs"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secourir_config::{Service, ZoneId};

    fn core_with_a_queued_call() -> Core {
        let mut core = Core::new(crate::tests::plan());
        let offer = Offer {
            call: CallId(1),
            zone: ZoneId(0),
            service: Service::Fire,
            resource_priority: None,
            caller: None,
            source: None,
            place: None,
            suspected: false,
            refused: None,
            medium: Default::default(),
        };
        let _ = core.handle(Event::Offered(offer), Instant(1_000)).count();
        core
    }

    #[test]
    fn a_sound_state_passes() {
        let mut core = core_with_a_queued_call();
        let _ = core
            .handle(Event::CallerHungUp { call: CallId(1) }, Instant(2_000))
            .count();
    }

    #[test]
    #[should_panic(expected = "missing from its queue")]
    fn a_call_lost_from_its_queue_stops_the_core() {
        let mut core = core_with_a_queued_call();
        for state in &mut core.ctas {
            state.waiting.clear();
        }
        let _ = core
            .handle(
                Event::Dtmf {
                    call: CallId(1),
                    digit: b'1',
                },
                Instant(2_000),
            )
            .count();
    }

    #[test]
    #[should_panic(expected = "admitted calls and live calls differ")]
    fn a_call_admitted_twice_stops_the_core() {
        let mut core = core_with_a_queued_call();
        let _ = core.admission.admit(ZoneId(0));
        let _ = core.handle(Event::Tick, Instant(2_000)).count();
    }

    #[test]
    #[should_panic(expected = "held by a call-taker who does not hold it")]
    fn a_call_whose_call_taker_forgot_it_stops_the_core() {
        let mut core = core_with_a_queued_call();
        let login = Event::AgentLogin {
            agent: AgentId(1),
            cta: secourir_config::CtaId(0),
            site: 0,
            dequeue_preference: 3,
        };
        let _ = core.handle(login, Instant(1_500)).count();
        if let Some(agent) = core.agents.get_mut(&AgentId(1)) {
            agent.status = AgentStatus::Available;
        }
        let answer = Event::AgentAnswered {
            agent: AgentId(1),
            call: CallId(1),
        };
        let _ = core.handle(answer, Instant(2_000)).count();
    }
}

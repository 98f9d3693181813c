//! A call reaching a call-taker: picked or rung, answered or not, hung up, handed back.

use super::*;

impl Core {
    /// Carries out a pick that `check_pick` allowed.
    pub(super) fn pick(&mut self, agent_id: AgentId, id: CallId) {
        let agent_cta = self.agents[&agent_id].cta;
        let call_cta = self.calls[&id].cta;
        self.leave_queue(id);
        if agent_cta != call_cta {
            // Mutual aid by picking: the call now belongs to the picker's CTA.
            let call = self.calls.get_mut(&id).expect("checked by check_pick");
            call.overflowed_from = Some(call_cta);
            call.cta = agent_cta;
            self.trail(
                id,
                Step::Overflowed {
                    from: call_cta,
                    to: agent_cta,
                },
            );
        }
        self.trail(id, Step::Picked(agent_id));
        self.take_agent(agent_id);
        self.ring(id, agent_id);
    }

    pub(super) fn check_pick(&self, agent_id: AgentId, id: CallId) -> Result<(), PickRefusal> {
        let call = self.calls.get(&id).ok_or(PickRefusal::UnknownCall)?;
        let agent = self.agents.get(&agent_id).ok_or(PickRefusal::NotReady)?;
        let allowed = agent.cta == call.cta
            || (call.mutual_aid
                && self.may_lend[usize::from(call.home.0)][usize::from(agent.cta.0)])
            || (call.mutual_aid && agent.cta == call.home);
        if !allowed {
            return Err(PickRefusal::Forbidden);
        }
        if call.state != CallState::Queued {
            return Err(PickRefusal::AlreadyTaken);
        }
        match agent.status {
            AgentStatus::Available | AgentStatus::Paused | AgentStatus::WrapUp => Ok(()),
            AgentStatus::Ringing(_) | AgentStatus::Talking(_) | AgentStatus::Offline => {
                Err(PickRefusal::NotReady)
            }
        }
    }

    pub(super) fn on_answered(&mut self, agent_id: AgentId, id: CallId) {
        let ringing = self
            .calls
            .get(&id)
            .is_some_and(|c| c.state == CallState::Ringing(agent_id));
        if !ringing {
            if self.is_talking(agent_id, id) {
                // A repeated answer (a retransmitted 200 OK): the conversation goes on.
                return;
            }
            // The phone answered a call that is no longer offered to it: hang that leg up.
            self.emit(Command::CancelRing {
                call: id,
                agent: agent_id,
            });
            return;
        }
        let call = self.calls.get_mut(&id).expect("checked above");
        call.state = CallState::Talking(agent_id);
        call.generation += 1;
        call.conversations += 1;
        let conversation = call.conversations;
        self.set_agent_status(agent_id, AgentStatus::Talking(id));
        self.emit(Command::Bridge {
            call: id,
            agent: agent_id,
            conversation,
        });
        self.trail(id, Step::Answered(agent_id));
    }

    pub(super) fn on_ring_failed(&mut self, agent_id: AgentId, id: CallId, reason: RingFailure) {
        let ringing = self
            .calls
            .get(&id)
            .is_some_and(|c| c.state == CallState::Ringing(agent_id));
        if !ringing {
            return;
        }
        self.requeue(id, reason);
        self.mark_unavailable(agent_id);
    }

    pub(super) fn on_agent_hung_up(&mut self, agent_id: AgentId, id: CallId) {
        if !self.is_talking(agent_id, id) {
            return;
        }
        self.emit(Command::HangUp { call: id });
        self.end(id, Outcome::Completed, EndReason::AgentHungUp);
        self.after_call(agent_id);
    }

    /// Carries out a hand-back that `check_hand_back` allowed; returns the home CTA.
    pub(super) fn hand_back(&mut self, agent_id: AgentId, id: CallId, summary: Box<str>) -> CtaId {
        let from = self.agents[&agent_id].cta;
        let call = self.calls.get_mut(&id).expect("checked by check_hand_back");
        let home = call.home;
        call.summary = Some(summary.clone());
        // At the head of its home queue: its seniority, and one level above ordinary calls.
        call.priority = call.priority.max(PRIORITY_NORMAL.saturating_add(1));
        call.key = (Reverse(call.priority), call.key.1, call.key.2);
        call.pinned = true;
        call.mutual_aid = false;
        call.wants_aid = false;
        call.overflowed_from = Some(from);
        self.emit(Command::Unbridge {
            call: id,
            agent: agent_id,
        });
        self.trail(
            id,
            Step::HandedBack {
                from,
                by: agent_id,
                summary,
            },
        );
        self.after_call(agent_id);
        self.enqueue(id, home);
        home
    }

    pub(super) fn check_hand_back(
        &self,
        agent_id: AgentId,
        id: CallId,
    ) -> Result<(), HandBackRefusal> {
        if !self.is_talking(agent_id, id) {
            return Err(HandBackRefusal::NotTheirs);
        }
        let home = self.calls[&id].home;
        if self.agents[&agent_id].cta == home {
            return Err(HandBackRefusal::OwnCall);
        }
        match self.queue_state(home) {
            QueueState::Active | QueueState::Standby | QueueState::Full => Ok(()),
            QueueState::Inactive | QueueState::Disabled => Err(HandBackRefusal::HomeUnreachable),
        }
    }

    pub(super) fn ring(&mut self, id: CallId, agent_id: AgentId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.state = CallState::Ringing(agent_id);
        call.generation += 1;
        call.engaged_at = self.now;
        let generation = call.generation;
        let timeout = self.plan.cta(call.cta).ring_timeout_ms;
        let home = call.home;
        if let Some(agent) = self.agents.get_mut(&agent_id)
            && agent.cta != home
            && !agent.lent
        {
            agent.lent = true;
            self.ctas[usize::from(agent.cta.0)].lent += 1;
        }
        self.set_agent_status(agent_id, AgentStatus::Ringing(id));
        self.emit(Command::Ring {
            call: id,
            agent: agent_id,
        });
        self.trail(id, Step::Offered(agent_id));
        self.set_timer(self.now.plus_ms(timeout), Timer::Ring(id, generation));
    }
}

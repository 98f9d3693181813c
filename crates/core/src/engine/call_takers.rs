//! Call-takers: logging in and out, pauses, wrap-up, and the idle sets the ACD takes from.

use super::*;

impl Core {
    pub(super) fn on_login(&mut self, id: AgentId, cta: CtaId, site: u16, preference: u8) {
        if usize::from(cta.0) >= self.ctas.len() {
            return;
        }
        let preference = preference.clamp(1, 5);
        if let Some(agent) = self.agents.get_mut(&id) {
            if agent.status == AgentStatus::Available {
                // The idle set is ordered by preference: re-key the entry.
                let idle = &mut self.ctas[usize::from(agent.cta.0)].idle;
                idle.remove(&(Reverse(agent.preference), agent.idle_since, id));
                idle.insert((Reverse(preference), agent.idle_since, id));
            }
            agent.preference = preference;
            agent.after_call = AfterCall::WrapUp;
            if agent.cta == cta && agent.status == AgentStatus::Paused {
                self.make_available(id);
            }
            return;
        }
        self.seat(id, cta, site, preference);
        self.make_available(id);
    }

    /// A call-taker who was not logged in takes a seat, neither available nor paused yet.
    pub(super) fn seat(&mut self, id: AgentId, cta: CtaId, site: u16, preference: u8) {
        self.agents.insert(
            id,
            Agent {
                cta,
                site,
                preference,
                status: AgentStatus::Offline,
                idle_since: self.now,
                after_call: AfterCall::WrapUp,
                generation: 0,
                lent: false,
            },
        );
        self.ctas[usize::from(cta.0)].logged_in += 1;
    }

    /// Logs a call-taker in straight into pause (no call offered on the way).
    pub(super) fn log_in_paused(&mut self, id: AgentId, cta: CtaId, site: u16, preference: u8) {
        if self.agents.contains_key(&id) {
            self.on_login(id, cta, site, preference);
            self.on_pause(id);
            return;
        }
        if usize::from(cta.0) >= self.ctas.len() {
            return;
        }
        self.seat(id, cta, site, preference.clamp(1, 5));
        self.set_paused(id);
    }

    pub(super) fn on_logout(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        match agent.status {
            AgentStatus::Talking(_) => agent.after_call = AfterCall::Logout,
            AgentStatus::Ringing(call) => {
                self.emit(Command::CancelRing { call, agent: id });
                self.requeue(call, RingFailure::Unreachable);
                self.remove_agent(id);
            }
            _ => self.remove_agent(id),
        }
    }

    pub(super) fn on_ready(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        match agent.status {
            AgentStatus::Paused | AgentStatus::WrapUp => self.make_available(id),
            AgentStatus::Ringing(_) | AgentStatus::Talking(_) => {
                agent.after_call = AfterCall::WrapUp
            }
            AgentStatus::Available | AgentStatus::Offline => {}
        }
    }

    pub(super) fn on_pause(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        match agent.status {
            AgentStatus::Available | AgentStatus::WrapUp => self.set_paused(id),
            AgentStatus::Ringing(_) | AgentStatus::Talking(_) => {
                agent.after_call = AfterCall::Pause
            }
            AgentStatus::Paused | AgentStatus::Offline => {}
        }
    }

    pub(super) fn make_available(&mut self, id: AgentId) {
        let now = self.now;
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        if agent.status == AgentStatus::Paused {
            self.ctas[usize::from(agent.cta.0)].paused -= 1;
        }
        agent.idle_since = now;
        agent.generation += 1;
        let cta = agent.cta;
        let key = (Reverse(agent.preference), now, id);
        self.ctas[usize::from(cta.0)].idle.insert(key);
        self.end_loan(id);
        self.set_agent_status(id, AgentStatus::Available);
        self.dispatch(cta);
        self.lend_from(cta);
    }

    /// A call-taker lent to another CTA's zones is back to their own (idle, paused or gone).
    pub(super) fn end_loan(&mut self, id: AgentId) {
        if let Some(agent) = self.agents.get_mut(&id)
            && agent.lent
        {
            agent.lent = false;
            self.ctas[usize::from(agent.cta.0)].lent -= 1;
        }
    }

    /// Takes a call-taker out of the idle set (or out of pause or wrap-up) to ring them.
    pub(super) fn take_agent(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        let state = &mut self.ctas[usize::from(agent.cta.0)];
        state.forget(agent, id);
        agent.generation += 1;
        agent.after_call = AfterCall::WrapUp;
    }

    pub(super) fn set_paused(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        let state = &mut self.ctas[usize::from(agent.cta.0)];
        match agent.status {
            AgentStatus::Available => {
                state
                    .idle
                    .remove(&(Reverse(agent.preference), agent.idle_since, id));
            }
            AgentStatus::Paused => return,
            _ => {}
        }
        state.paused += 1;
        agent.generation += 1;
        self.end_loan(id);
        self.set_agent_status(id, AgentStatus::Paused);
    }

    /// A call-taker whose phone did not answer is paused until they say they are ready.
    pub(super) fn mark_unavailable(&mut self, id: AgentId) {
        let logout = self
            .agents
            .get(&id)
            .is_some_and(|a| a.after_call == AfterCall::Logout);
        if logout {
            self.remove_agent(id);
        } else {
            self.set_paused(id);
        }
    }

    /// A call-taker whose ringing call left before they answered goes back to idle, in place.
    pub(super) fn release_ringing_agent(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        match agent.after_call {
            AfterCall::Logout => self.remove_agent(id),
            AfterCall::Pause => self.set_paused(id),
            AfterCall::WrapUp => {
                let key = (Reverse(agent.preference), agent.idle_since, id);
                let cta = agent.cta;
                self.ctas[usize::from(cta.0)].idle.insert(key);
                self.end_loan(id);
                self.set_agent_status(id, AgentStatus::Available);
                self.dispatch(cta);
                self.lend_from(cta);
            }
        }
    }

    pub(super) fn after_call(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        match agent.after_call {
            AfterCall::Logout => self.remove_agent(id),
            AfterCall::Pause => self.set_paused(id),
            AfterCall::WrapUp => {
                agent.generation += 1;
                let generation = agent.generation;
                let wrap_up = self.plan.cta(agent.cta).wrap_up_ms;
                self.set_agent_status(id, AgentStatus::WrapUp);
                if wrap_up == 0 {
                    self.make_available(id);
                } else {
                    self.set_timer(self.now.plus_ms(wrap_up), Timer::WrapUp(id, generation));
                }
            }
        }
    }

    pub(super) fn remove_agent(&mut self, id: AgentId) {
        let Some(agent) = self.agents.remove(&id) else {
            return;
        };
        let state = &mut self.ctas[usize::from(agent.cta.0)];
        state.forget(&agent, id);
        state.logged_in -= 1;
        if agent.lent {
            state.lent -= 1;
        }
        let last_one_out = state.logged_in == 0;
        let waiting: Vec<CallId> = if last_one_out {
            state.waiting.values().copied().collect()
        } else {
            Vec::new()
        };
        self.emit(Command::AgentChanged {
            agent: id,
            status: AgentStatus::Offline,
        });
        if last_one_out {
            // The last call-taker left: the queue is unreachable, so its calls are routed again.
            for call in waiting {
                self.reroute(call, FailReason::Unreachable);
            }
        }
    }

    pub(super) fn set_agent_status(&mut self, id: AgentId, status: AgentStatus) {
        if let Some(agent) = self.agents.get_mut(&id) {
            agent.status = status;
            self.out.push(Command::AgentChanged { agent: id, status });
        }
    }

    pub(super) fn is_talking(&self, agent: AgentId, id: CallId) -> bool {
        self.calls
            .get(&id)
            .is_some_and(|c| c.state == CallState::Talking(agent))
    }
}

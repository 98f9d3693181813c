//! Timers: set with an instant, fired when `now` passes it, ignored once their call moved on.

use super::*;

impl Core {
    pub(super) fn set_timer(&mut self, at: Instant, timer: Timer) {
        self.timers.push(Reverse((at, timer)));
    }

    pub(super) fn fire_timers(&mut self) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > self.now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::NoAnswer(id, generation) => {
                    // A suspect waits at home, behind everyone, however long.
                    if self.current(id, generation, CallState::Queued) && !self.calls[&id].suspected
                    {
                        let cta = self.calls[&id].cta;
                        let reason =
                            route_failure(self.queue_state(cta)).unwrap_or(FailReason::NoAnswer);
                        if let Some(call) = self.calls.get_mut(&id) {
                            call.mutual_aid = true;
                        }
                        self.reroute(id, reason);
                    }
                }
                Timer::Acd(id, generation) => {
                    if self.current(id, generation, CallState::Queued) {
                        let cta = self.calls[&id].cta;
                        self.dispatch(cta);
                    }
                }
                Timer::Ring(id, generation) => {
                    if let Some(call) = self.calls.get(&id)
                        && call.generation == generation
                        && let CallState::Ringing(agent) = call.state
                    {
                        self.emit(Command::CancelRing { call: id, agent });
                        self.requeue(id, RingFailure::NoAnswer);
                        self.mark_unavailable(agent);
                    }
                }
                Timer::WrapUp(agent, generation) => {
                    let due = self.agents.get(&agent).is_some_and(|a| {
                        a.generation == generation && a.status == AgentStatus::WrapUp
                    });
                    if due {
                        self.make_available(agent);
                    }
                }
            }
        }
    }

    pub(super) fn current(&self, id: CallId, generation: u32, state: CallState) -> bool {
        self.calls
            .get(&id)
            .is_some_and(|c| c.generation == generation && c.state == state)
    }
}

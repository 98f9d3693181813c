//! How calls end: refused, abandoned, cut by a stop, withdrawn, completed; and the call-back
//! lists of those that ended unanswered.

use super::*;

impl Core {
    pub(super) fn on_caller_hung_up(&mut self, id: CallId) {
        self.cut(id, false);
    }

    pub(super) fn on_stopped(&mut self, id: CallId) {
        self.cut(id, true);
    }

    /// The call leaves: whoever it held is freed, and no outcome is given (nor any call-back
    /// entry made) here, where nobody carried out its legs.
    pub(super) fn on_withdrawn(&mut self, id: CallId) {
        if self.handed_over.remove(&id) {
            self.emit(Command::DropPartner { call: id });
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        match call.state {
            CallState::Queued => self.leave_queue(id),
            CallState::Ringing(agent) => {
                self.emit(Command::CancelRing { call: id, agent });
                self.release_ringing_agent(agent);
            }
            CallState::Talking(agent) => self.after_call(agent),
        }
        let Some(call) = self.take_out(id) else {
            return;
        };
        self.drop_transfer(id, &call);
        self.emit(Command::Withdrawn {
            call: id,
            cta: call.cta,
        });
    }

    /// Ends a call from outside: its caller hung up, or the platform stops (then the caller's
    /// leg is hung up too). A waiting caller goes to the call-back list either way.
    pub(super) fn cut(&mut self, id: CallId, stopping: bool) {
        if self.handed_over.remove(&id) {
            if stopping {
                self.emit(Command::HangUp { call: id });
            }
            self.emit(Command::DropPartner { call: id });
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let why = |left| {
            if stopping {
                EndReason::PlatformStopped
            } else {
                left
            }
        };
        match call.state {
            CallState::Queued => {
                self.leave_queue(id);
                self.end(id, Outcome::Abandoned, why(EndReason::CallerLeftQueue));
            }
            CallState::Ringing(agent) => {
                self.emit(Command::CancelRing { call: id, agent });
                self.release_ringing_agent(agent);
                self.end(id, Outcome::Abandoned, why(EndReason::CallerLeftRinging));
            }
            CallState::Talking(agent) => {
                if stopping {
                    self.emit(Command::HangUp { call: id });
                }
                self.end(id, Outcome::Completed, why(EndReason::CallerHungUp));
                self.after_call(agent);
            }
        }
    }

    pub(super) fn on_callback_restored(
        &mut self,
        id: CallId,
        zone: ZoneId,
        caller: Option<Box<str>>,
        at: Instant,
        taken_by: Option<AgentId>,
    ) {
        let Some(zone_plan) = self.plan.zones.get(usize::from(zone.0)) else {
            return;
        };
        self.index_callback(
            zone_plan.cta,
            id,
            CallbackEntry {
                zone,
                caller,
                at,
                state: taken_by.map_or(CallbackState::Pending, CallbackState::Taken),
            },
        );
    }

    pub(super) fn apply_callback(
        &mut self,
        agent_id: AgentId,
        id: CallId,
        done: bool,
    ) -> Result<(), CallbackRefusal> {
        let cta = self
            .agents
            .get(&agent_id)
            .ok_or(CallbackRefusal::NotLoggedIn)?
            .cta;
        let list = &mut self.ctas[usize::from(cta.0)].callbacks;
        let entry = list.get_mut(&id).ok_or(CallbackRefusal::Unknown)?;
        let state = if done {
            list.remove(&id);
            CallbackState::Done(agent_id)
        } else {
            entry.state = CallbackState::Taken(agent_id);
            entry.state
        };
        self.emit(Command::Callback {
            cta,
            call: id,
            state,
        });
        Ok(())
    }

    pub(super) fn reject(&mut self, id: CallId, zone: ZoneId, reason: EndReason) {
        self.emit(Command::Reject {
            call: id,
            reason: reason.clone(),
        });
        // Refused before it joined a queue: the CTA serving its zone, if the zone is known.
        let cta = self.plan.zones.get(usize::from(zone.0)).map(|z| z.cta);
        self.emit(Command::Ended {
            call: id,
            outcome: Outcome::Rejected,
            reason,
            cta,
        });
    }

    /// Takes a live call out of the core: out of the overdue index and the admitted count.
    pub(super) fn take_out(&mut self, id: CallId) -> Option<Call> {
        let call = self.calls.remove(&id)?;
        self.overdue.remove(&(self.in_crisis(call.zone), call.key));
        match call.admitted_suspected {
            true => self.admission.release_suspected(),
            false => self.admission.release(call.zone),
        }
        Some(call)
    }

    /// A call gone while its partner's phone rang for a transfer: the partner is dropped and
    /// the asking call-taker told.
    pub(super) fn drop_transfer(&mut self, id: CallId, call: &Call) {
        if let Some((request, _, _)) = call.transfer {
            self.emit(Command::DropPartner { call: id });
            self.emit(Command::Reply {
                request,
                result: Err(Denied::CallEnded),
            });
        }
    }

    pub(super) fn end(&mut self, id: CallId, outcome: Outcome, reason: EndReason) {
        let Some(call) = self.take_out(id) else {
            return;
        };
        if let CallState::Talking(_) = call.state {
            let held = self.now.since(call.engaged_at);
            self.ctas[usize::from(call.home.0)].load.handled(held);
        }
        if outcome == Outcome::Rejected {
            self.emit(Command::Reject {
                call: id,
                reason: reason.clone(),
            });
        }
        self.emit(Command::Ended {
            call: id,
            outcome,
            reason,
            cta: Some(call.cta),
        });
        self.drop_transfer(id, &call);
        if outcome == Outcome::Abandoned {
            self.add_callback(id, call);
        }
    }

    /// A call that ended unanswered (abandoned, or refused before it joined a queue) goes on
    /// its home CTA's call-back list.
    pub(super) fn call_back(
        &mut self,
        id: CallId,
        cta: CtaId,
        zone: ZoneId,
        caller: Option<Box<str>>,
    ) {
        self.index_callback(
            cta,
            id,
            CallbackEntry {
                zone,
                caller,
                at: self.now,
                state: CallbackState::Pending,
            },
        );
        self.emit(Command::Callback {
            cta,
            call: id,
            state: CallbackState::Pending,
        });
    }

    pub(super) fn add_callback(&mut self, id: CallId, call: Call) {
        self.call_back(id, call.home, call.zone, call.caller);
    }

    /// Puts an entry on a CTA's call-back list, within the list's bound.
    pub(super) fn index_callback(&mut self, cta: CtaId, id: CallId, entry: CallbackEntry) {
        let state = &mut self.ctas[usize::from(cta.0)];
        if state.callbacks.len() < self.plan.callback_max as usize {
            state.callbacks.insert(id, entry);
        } else {
            // The store keeps every entry; only the in-memory index is bounded.
            self.callbacks_unindexed += 1;
        }
    }
}

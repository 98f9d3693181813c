//! Queues: the rules choose a call's queue, the call waits in order, the ACD offers it to the
//! best idle call-taker.

use super::*;

impl Core {
    /// The queues as the policy reads them.
    pub(super) fn view(&self) -> View<'_> {
        View {
            ctas: &self.ctas,
            plan: &self.plan,
        }
    }

    pub(super) fn evaluate(&mut self, id: CallId, failed: Option<FailReason>) -> Decision {
        let plan = Arc::clone(&self.plan);
        let Some(call) = self.calls.get_mut(&id) else {
            return Decision::NoRoute;
        };
        let mut memory = std::mem::take(&mut call.memory);
        let facts = CallFacts {
            zone: call.zone,
            home: call.home,
            service: call.service,
            caller: call.caller.as_deref(),
            source: call.source.as_deref(),
            crisis: self
                .crisis
                .get(usize::from(call.zone.0))
                .copied()
                .unwrap_or(false),
            current: failed.map(|_| call.cta),
        };
        let view = View {
            ctas: &self.ctas,
            plan: &plan,
        };
        // Notes become commands as they come: no buffer to allocate for every evaluation.
        let mut wants_aid = false;
        let out = &mut self.out;
        let decision = policy::evaluate(
            &plan,
            &facts,
            &view,
            self.now,
            failed,
            &mut memory,
            &mut |note| match note {
                Note::NoLender => wants_aid = true,
                Note::Matched(rule) => out.push(Command::Trail {
                    call: id,
                    step: Step::RuleMatched(rule),
                }),
                Note::RouteFailed(cta, reason) => out.push(Command::Trail {
                    call: id,
                    step: Step::RouteFailed(cta, reason),
                }),
                Note::Announce(announcement) => out.push(Command::Play {
                    call: id,
                    announcement,
                }),
            },
        );
        if let Some(call) = self.calls.get_mut(&id) {
            call.memory = memory;
            // Suspects are never lent: a flood must not reach other CTAs' call-takers.
            call.wants_aid = wants_aid && !call.suspected;
        }
        decision
    }

    /// Runs the rules again for a waiting call and moves it if they say so; whether it moved.
    pub(super) fn try_move(&mut self, id: CallId, reason: Option<FailReason>) -> bool {
        let from = self.calls[&id].cta;
        if self.calls[&id].pinned {
            if reason != Some(FailReason::Unreachable) {
                return false;
            }
            // Its home lost every call-taker: it must be answered elsewhere after all.
            if let Some(call) = self.calls.get_mut(&id) {
                call.pinned = false;
            }
        }
        match self.evaluate(id, reason) {
            Decision::Queue(to) if to != from => {
                self.leave_queue(id);
                if let Some(call) = self.calls.get_mut(&id) {
                    call.memory.tried.push(from);
                    call.overflowed_from = Some(from);
                    // Moved to a lender, it no longer waits for one; moved back home (a lent
                    // ring that failed), it still does if the rules found no lender.
                    if to != call.home {
                        call.wants_aid = false;
                    }
                }
                self.trail(id, Step::Overflowed { from, to });
                self.enqueue(id, to);
                self.mark_overdue(id);
                true
            }
            // Admitted calls are never refused afterwards: a `busy` rule only applies to new calls.
            _ => {
                self.mark_overdue(id);
                false
            }
        }
    }

    /// Runs the rules again for a waiting call; moves it or leaves it and checks later.
    pub(super) fn reroute(&mut self, id: CallId, reason: FailReason) {
        let from = self.calls[&id].cta;
        if !self.try_move(id, Some(reason)) {
            let retry = self.plan.cta(from).retry_ms;
            let at = self.now.plus_ms(retry);
            if let Some(call) = self.calls.get_mut(&id) {
                call.no_answer_at = at;
                let generation = call.generation;
                self.set_timer(at, Timer::NoAnswer(id, generation));
            }
        }
    }

    pub(super) fn enqueue(&mut self, id: CallId, cta: CtaId) {
        let plan = Arc::clone(&self.plan);
        let cta_plan = plan.cta(cta);
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.cta = cta;
        call.state = CallState::Queued;
        call.entered_at = now;
        call.generation += 1;
        call.no_answer_at = now.plus_ms(cta_plan.no_answer_ms);
        let (key, generation, no_answer_at) = (call.key, call.generation, call.no_answer_at);
        self.ctas[usize::from(cta.0)].waiting.insert(key, id);
        self.trail(id, Step::Queued(cta));
        self.dispatch(cta);
        let still_waiting = self
            .calls
            .get(&id)
            .is_some_and(|c| c.state == CallState::Queued);
        if !still_waiting {
            // Rung at once, as most calls are: its queue timers would only be popped stale.
            return;
        }
        // Timers fire in the order of their instant and kind, whenever they were set.
        self.set_timer(no_answer_at, Timer::NoAnswer(id, generation));
        if cta_plan.mode == DequeueMode::Mixed {
            self.set_timer(
                now.plus_ms(cta_plan.acd_after_ms),
                Timer::Acd(id, generation),
            );
        }
        if let Some(announcement) = cta_plan.wait_announcement {
            self.emit(Command::Play {
                call: id,
                announcement,
            });
        }
    }

    /// Puts a call whose ring failed back in its queue, keeping its place.
    pub(super) fn requeue(&mut self, id: CallId, reason: RingFailure) {
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.state = CallState::Queued;
        call.generation += 1;
        let (key, cta, generation) = (call.key, call.cta, call.generation);
        let at = call.no_answer_at.max(now);
        call.no_answer_at = at;
        self.ctas[usize::from(cta.0)].waiting.insert(key, id);
        self.set_timer(at, Timer::NoAnswer(id, generation));
        if self.plan.cta(cta).mode == DequeueMode::Mixed {
            self.set_timer(now, Timer::Acd(id, generation));
        }
        self.trail(id, Step::Requeued(reason));
        self.dispatch(cta);
    }

    pub(super) fn leave_queue(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.state == CallState::Queued {
            self.ctas[usize::from(call.cta.0)].waiting.remove(&call.key);
            self.overdue
                .remove(&(crisis_of(&self.crisis, call.zone), call.key));
            call.generation += 1;
            self.spare_grew.push(call.cta);
        }
    }

    /// ACD: offers waiting calls to the best idle call-takers while both exist.
    pub(super) fn dispatch(&mut self, cta: CtaId) {
        let cta_plan = self.plan.cta(cta);
        let (mode, acd_after_ms) = (cta_plan.mode, cta_plan.acd_after_ms);
        if mode == DequeueMode::Picking {
            return;
        }
        loop {
            let state = &self.ctas[usize::from(cta.0)];
            if state.disabled {
                return;
            }
            let (Some((_, &call)), Some(&(_, _, agent))) =
                (state.waiting.first_key_value(), state.idle.first())
            else {
                return;
            };
            if state.idle.len() < 2 && self.calls.get(&call).is_some_and(|c| c.suspected) {
                // Only suspects wait: one call-taker stays free for the next real caller.
                return;
            }
            if mode == DequeueMode::Mixed {
                // In mixed mode the ACD offers only calls nobody picked in time, oldest first.
                let due = state
                    .waiting
                    .values()
                    .filter_map(|id| self.calls.get(id).map(|c| (*id, c)))
                    .filter(|(_, c)| !c.suspected || state.idle.len() >= 2)
                    .map(|(id, c)| (id, c.entered_at))
                    .find(|(_, entered)| self.now.since(*entered) >= acd_after_ms);
                let Some((call, _)) = due else {
                    return;
                };
                self.leave_queue(call);
                self.take_agent(agent);
                self.ring(call, agent);
                continue;
            }
            self.leave_queue(call);
            self.take_agent(agent);
            self.ring(call, agent);
        }
    }

    pub(super) fn queue_state(&self, cta: CtaId) -> QueueState {
        self.view().state(cta)
    }
}

pub(super) struct View<'a> {
    ctas: &'a [CtaState],
    plan: &'a Plan,
}

impl QueueView for View<'_> {
    fn state(&self, cta: CtaId) -> QueueState {
        let Some(state) = self.ctas.get(usize::from(cta.0)) else {
            return QueueState::Disabled;
        };
        if state.disabled {
            QueueState::Disabled
        } else if state.logged_in == 0 {
            QueueState::Inactive
        } else if state.waiting.len() >= self.plan.cta(cta).queue_max as usize {
            QueueState::Full
        } else if state.paused == state.logged_in {
            QueueState::Standby
        } else {
            QueueState::Active
        }
    }

    fn spare(&self, cta: CtaId) -> i64 {
        let Some(state) = self.ctas.get(usize::from(cta.0)) else {
            return 0;
        };
        if state.disabled {
            return 0;
        }
        let idle = state.idle.len() as i64;
        // Call-takers busy with the CTA's own callers already count toward its reserve; the
        // rest of the reserve must stay idle.
        let own_engaged =
            i64::from(state.logged_in) - idle - i64::from(state.paused) - i64::from(state.lent);
        let keep = (i64::from(state.load.reserve()) - own_engaged.max(0)).max(0);
        idle - state.waiting.len() as i64 - keep
    }

    fn expected_wait_ms(&self, cta: CtaId) -> u64 {
        let Some(state) = self.ctas.get(usize::from(cta.0)) else {
            return u64::MAX;
        };
        let active = state.logged_in.saturating_sub(state.paused);
        if state.disabled || active == 0 {
            return u64::MAX;
        }
        // A newcomer behind every waiting call: its turn comes when that many calls beyond
        // the idle call-takers have ended, at `active` ends per holding time.
        let ahead = state.waiting.len() as i64 + 1 - state.idle.len() as i64;
        if ahead <= 0 {
            return 0;
        }
        let holding = state.load.holding_ms(self.plan.cta(cta));
        (ahead as f64 * holding / f64::from(active)) as u64
    }
}

//! Mutual aid: calls that want help, lenders with a call-taker to spare beyond the reserve
//! their own zone needs, and the reserves sized from each CTA's own load.

use super::*;

impl Core {
    /// Idle call-takers a CTA can lend now, beyond its waiting calls and its reserve.
    pub fn lendable(&self, cta: CtaId) -> u32 {
        u32::try_from(self.spare(cta).max(0)).unwrap_or(u32::MAX)
    }

    /// Work conservation: the CTAs that could lend call-takers now while a call that one of
    /// their tiers covers has waited past its queue's `no_answer` threshold in another queue,
    /// with how many. Empty when mutual aid leaves nobody idle who could help.
    pub fn idle_lenders_while_late(&self) -> Vec<(CtaId, u32)> {
        let lenders: Vec<(CtaId, u32)> = (0..self.ctas.len())
            .map(|c| CtaId(u16::try_from(c).unwrap_or(u16::MAX)))
            .map(|c| (c, self.lendable(c)))
            .filter(|(_, spare)| *spare > 0)
            .collect();
        if lenders.is_empty() {
            return lenders;
        }
        let late: Vec<usize> = self
            .ctas
            .iter()
            .enumerate()
            .filter(|(c, state)| {
                let threshold = self.plan.ctas[*c].no_answer_ms;
                state
                    .waiting
                    .values()
                    .filter_map(|id| self.calls.get(id))
                    .any(|call| self.now.since(call.queued_at) >= threshold)
            })
            .map(|(c, _)| c)
            .collect();
        lenders
            .into_iter()
            .filter(|(lender, _)| {
                let l = usize::from(lender.0);
                late.iter().any(|&c| c != l && self.may_lend[c][l])
            })
            .collect()
    }

    /// Files a queued call that wants mutual aid among the overdue ones, or takes it out.
    pub(super) fn mark_overdue(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let key = (self.in_crisis(call.zone), call.key);
        if call.state == CallState::Queued && call.wants_aid {
            self.overdue.insert(key, id);
        } else {
            self.overdue.remove(&key);
        }
    }

    /// A lender got a call-taker to spare: it takes the longest-waiting overdue calls its
    /// tiers allow, while it has spare.
    pub(super) fn lend_from(&mut self, lender: CtaId) {
        if self.overdue.is_empty() || self.spare(lender) <= 0 {
            return;
        }
        let l = usize::from(lender.0);
        let candidates: Vec<CallId> = self
            .overdue
            .values()
            .filter(|id| {
                self.calls
                    .get(id)
                    .is_some_and(|c| c.cta != lender && self.may_lend[usize::from(c.home.0)][l])
            })
            .take(LEND_SCAN)
            .copied()
            .collect();
        for id in candidates {
            if self.spare(lender) <= 0 {
                break;
            }
            let Some(call) = self.calls.get(&id) else {
                continue;
            };
            if call.state != CallState::Queued || !call.wants_aid {
                continue;
            }
            let reason = call.mutual_aid.then_some(FailReason::NoAnswer);
            self.try_move(id, reason);
        }
    }

    /// After every event, a lender with spare takes the overdue calls it may: spare also
    /// appears when a lender's queue empties or its reserve shrinks, not only when a call-taker
    /// frees up, and no call may wait past its threshold while one that could take it is idle.
    pub(super) fn rebalance(&mut self) {
        if self.overdue.is_empty() {
            self.spare_grew.clear();
            return;
        }
        let mut grew = std::mem::take(&mut self.spare_grew);
        grew.sort_unstable();
        grew.dedup();
        for &lender in &grew {
            self.lend_from(lender);
            if self.overdue.is_empty() {
                break;
            }
        }
        // Lending may itself have grown some spare (a call moved out of a queue): the next
        // event sees it, and the retry timers bound how long that can wait.
    }

    pub(super) fn spare(&self, cta: CtaId) -> i64 {
        self.view().spare(cta)
    }

    /// One call offered to a CTA's zones; its reserve is sized again with the others, within
    /// `REFRESH_MS` (sizing at every arrival cost a fifth of the core's throughput).
    pub(super) fn note_arrival(&mut self, home: CtaId) {
        let now = self.now;
        self.ctas[usize::from(home.0)].load.arrival(now);
    }

    /// Sizes every reserve again every `REFRESH_MS`, as arrivals leave the load window.
    pub(super) fn size_reserves(&mut self) {
        let now = self.now;
        let started = *self.started.get_or_insert(now);
        if now < self.next_sizing {
            return;
        }
        self.next_sizing = now.plus_ms(crate::reserve::REFRESH_MS);
        let plan = Arc::clone(&self.plan);
        for (i, state) in self.ctas.iter_mut().enumerate() {
            if state.load.stale(now) {
                let before = state.load.reserve();
                state
                    .load
                    .size(now, started, self.prior_per_ms[i], &plan.ctas[i]);
                if state.load.reserve() < before {
                    self.spare_grew
                        .push(CtaId(u16::try_from(i).unwrap_or(u16::MAX)));
                }
            }
        }
    }
}

/// Which CTAs may lend to which (`may_lend[home][lender]`), and the expected calls per
/// millisecond of each CTA's zones before any is observed, as `plan` sets them.
pub(super) fn lending(plan: &Plan) -> (Vec<Vec<bool>>, Vec<f64>) {
    let n = plan.ctas.len();
    let mut may_lend = vec![vec![false; n]; n];
    for (home, cta) in plan.ctas.iter().enumerate() {
        for lender in &cta.lenders {
            may_lend[home][usize::from(lender.0)] = true;
        }
    }
    let population: u64 = plan.zones.iter().map(|z| z.population).sum::<u64>().max(1);
    let per_ms = plan.expected_calls_per_year / (365.0 * 86_400_000.0);
    let mut prior_per_ms = vec![0.0; n];
    for zone in &plan.zones {
        prior_per_ms[usize::from(zone.cta.0)] +=
            per_ms * zone.population as f64 / population as f64;
    }
    (may_lend, prior_per_ms)
}

//! Policy routing: the ordered rules of NENA i3's Policy Routing Function, evaluated as a pure
//! function of the call, the queues' states and the time.

use chrono::{Datelike, Timelike};
use secourir_config::{
    Action, AnnouncementId, Conditions, CtaId, FailReason, Plan, QueueState, Service, Target,
    ZoneId,
};

use crate::Instant;

/// What the rules need to know about a call.
pub(crate) struct CallFacts<'a> {
    pub zone: ZoneId,
    pub home: CtaId,
    pub service: Service,
    pub caller: Option<&'a str>,
    pub source: Option<&'a str>,
    pub crisis: bool,
    /// The queue the call waits in, if it waits already.
    pub current: Option<CtaId>,
}

/// What the rules need to know about the queues.
pub(crate) trait QueueView {
    /// NENA i3 state of a CTA's queue.
    fn state(&self, cta: CtaId) -> QueueState;
    /// Idle call-takers a CTA can lend beyond its own waiting calls and reserve.
    fn spare(&self, cta: CtaId) -> i64;
    /// Expected wait of a call joining a CTA's queue now, ms (`u64::MAX`: nobody to answer).
    fn expected_wait_ms(&self, cta: CtaId) -> u64;
}

/// Something the evaluation did along the way, for the event trail and the SVI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Note {
    Matched(u16),
    RouteFailed(CtaId, FailReason),
    Announce(AnnouncementId),
    /// An overflow rule held but no lender had a call-taker to spare: the call wants aid.
    NoLender,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Queue the call at this CTA.
    Queue(CtaId),
    /// Leave the call in the queue it is in.
    Stay,
    /// Refuse the call.
    Busy(String),
    /// No rule found a queue: the caller applies the fail-safe.
    NoRoute,
}

/// Per-call memory carried between evaluations.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Memory {
    /// Queues that failed or were left: never routed to again.
    pub tried: Vec<CtaId>,
    /// Announcements already played (bit per announcement index below 64).
    pub announced: u64,
}

impl Memory {
    fn has_tried(&self, cta: CtaId) -> bool {
        self.tried.contains(&cta)
    }

    fn announce(&mut self, id: AnnouncementId) -> bool {
        let Some(bit) = 1u64.checked_shl(u32::from(id.0)) else {
            return true;
        };
        let first = self.announced & bit == 0;
        self.announced |= bit;
        first
    }
}

/// Runs the rule set of the call's home CTA; a failed route runs it again from the top.
pub(crate) fn evaluate(
    plan: &Plan,
    call: &CallFacts<'_>,
    queues: &impl QueueView,
    now: Instant,
    mut failed: Option<FailReason>,
    memory: &mut Memory,
    notes: &mut impl FnMut(Note),
) -> Decision {
    let rules = &plan.rule_sets[usize::from(plan.cta(call.home).rule_set.0)].rules;
    let mut clock = LocalClock::new(plan, now);
    // Each pass either returns or adds a queue to `tried`, so passes are bounded by the CTAs.
    let passes_max = plan.ctas.len() + 2;
    'passes: for _ in 0..passes_max {
        for (index, rule) in rules.iter().enumerate() {
            if !matches(&rule.when, call, queues, failed, &mut clock) {
                continue;
            }
            let index = u16::try_from(index).unwrap_or(u16::MAX);
            match &rule.action {
                Action::Announce(id) => {
                    if memory.announce(*id) {
                        notes(Note::Matched(index));
                        notes(Note::Announce(*id));
                    }
                }
                Action::Busy(reason) => {
                    notes(Note::Matched(index));
                    return Decision::Busy(reason.clone());
                }
                Action::Route(target) => {
                    let mut any_failed = false;
                    for cta in candidates(plan, call, target) {
                        if Some(cta) == call.current {
                            notes(Note::Matched(index));
                            return Decision::Stay;
                        }
                        if memory.has_tried(cta) {
                            continue;
                        }
                        match route_failure(queues.state(cta)) {
                            None => {
                                notes(Note::Matched(index));
                                return Decision::Queue(cta);
                            }
                            Some(reason) => {
                                notes(Note::RouteFailed(cta, reason));
                                memory.tried.push(cta);
                                failed = Some(reason);
                                any_failed = true;
                            }
                        }
                    }
                    if any_failed {
                        continue 'passes;
                    }
                }
                Action::Overflow(target) => {
                    // A queue left before may take the call back: overflow only goes where a
                    // call-taker is free at once, so the call cannot circle.
                    for cta in candidates(plan, call, target) {
                        if Some(cta) == call.current {
                            continue;
                        }
                        if queues.spare(cta) > 0 && route_failure(queues.state(cta)).is_none() {
                            notes(Note::Matched(index));
                            return Decision::Queue(cta);
                        }
                    }
                    notes(Note::NoLender);
                }
            }
        }
        break;
    }
    Decision::NoRoute
}

fn route_failure(state: QueueState) -> Option<FailReason> {
    match state {
        QueueState::Active | QueueState::Standby => None,
        QueueState::Full => Some(FailReason::Full),
        QueueState::Inactive | QueueState::Disabled => Some(FailReason::Unreachable),
    }
}

fn candidates<'p>(
    plan: &'p Plan,
    call: &CallFacts<'_>,
    target: &'p Target,
) -> impl Iterator<Item = CtaId> + 'p {
    let (one, many): (Option<CtaId>, &'p [CtaId]) = match target {
        Target::Home => (Some(call.home), &[]),
        Target::Partners => (None, &plan.cta(call.home).lenders),
        Target::Ctas(ids) => (None, ids),
    };
    one.into_iter().chain(many.iter().copied())
}

fn matches(
    when: &Conditions,
    call: &CallFacts<'_>,
    queues: &impl QueueView,
    failed: Option<FailReason>,
    clock: &mut LocalClock<'_>,
) -> bool {
    if let Some(zones) = &when.zones
        && !zones.contains(&call.zone)
    {
        return false;
    }
    if let Some(services) = &when.services
        && !services.contains(&call.service)
    {
        return false;
    }
    if let Some(crisis) = when.crisis
        && crisis != call.crisis
    {
        return false;
    }
    if let Some(reasons) = &when.failed {
        match failed {
            Some(reason) if reasons.contains(&reason) => {}
            _ => return false,
        }
    }
    if let Some(states) = &when.queue_state {
        let queue = call.current.unwrap_or(call.home);
        if !states.contains(&queues.state(queue)) {
            return false;
        }
    }
    if let Some(prefixes) = &when.callers {
        let caller = call.caller.unwrap_or("");
        if !prefixes.iter().any(|p| caller.starts_with(p.as_str())) {
            return false;
        }
    }
    if let Some(sources) = &when.sources {
        let source = call.source.unwrap_or("");
        if !sources.iter().any(|s| s == source) {
            return false;
        }
    }
    if let Some(threshold) = when.expected_wait_ms {
        let queue = call.current.unwrap_or(call.home);
        if queues.expected_wait_ms(queue) <= threshold {
            return false;
        }
    }
    if let Some(period) = &when.period {
        let (weekday, minute) = clock.local();
        if !period.contains(weekday, minute) {
            return false;
        }
    }
    true
}

/// Local weekday and minute, computed once per evaluation and only if a rule asks.
struct LocalClock<'p> {
    plan: &'p Plan,
    now: Instant,
    cached: Option<(u8, u16)>,
}

impl<'p> LocalClock<'p> {
    fn new(plan: &'p Plan, now: Instant) -> Self {
        LocalClock {
            plan,
            now,
            cached: None,
        }
    }

    fn local(&mut self) -> (u8, u16) {
        if let Some(cached) = self.cached {
            return cached;
        }
        let millis = i64::try_from(self.now.0).unwrap_or(i64::MAX);
        let value = chrono::DateTime::from_timestamp_millis(millis)
            .map(|utc| {
                let local = utc.with_timezone(&self.plan.timezone);
                let weekday = u8::try_from(local.weekday().num_days_from_monday()).unwrap_or(0);
                let minute = u16::try_from(local.hour() * 60 + local.minute()).unwrap_or(0);
                (weekday, minute)
            })
            .unwrap_or((0, 0));
        self.cached = Some(value);
        value
    }
}

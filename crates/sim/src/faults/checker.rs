//! Safety rules read off the command stream alone, as a shell carrying the commands out would
//! see it: they hold whatever the core believes about itself, so they catch what its own
//! recount (`Core::check_invariants`) cannot, a wrong command.

mod commands;

use rustc_hash::{FxHashMap, FxHashSet};
use secourir_config::{Plan, ZoneId};
use secourir_core::{AgentId, Ask, CallId, Command, Core, Event, RequestId};

/// A broken rule: what the stream (or the core) did that it must not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Ok when `holds`, else the violation `message` describes (built only then).
fn ensure(
    checks: &mut u64,
    holds: bool,
    message: impl FnOnce() -> String,
) -> Result<(), Violation> {
    *checks += 1;
    if holds {
        Ok(())
    } else {
        Err(Violation(message()))
    }
}

/// Capacity spoken for: every zone's calls, or its guaranteed share if it uses less.
fn committed(live_in_zone: &[u32], guaranteed: &[u32]) -> u64 {
    live_in_zone
        .iter()
        .zip(guaranteed)
        .map(|(&u, &g)| u64::from(u.max(g)))
        .sum()
}

/// What the stream says of one admitted call.
#[derive(Debug, Clone, Copy)]
struct Live {
    zone: ZoneId,
    /// The call-taker rung or talking with it.
    holder: Option<AgentId>,
    bridged: bool,
    conversations: u32,
    partner_rung: bool,
    /// Admitted as a suspect of a flood: from the pool, in no zone's share.
    suspected: bool,
}

/// Follows the events fed and the commands out, and refuses any stream a correct core could
/// not produce.
#[derive(Debug, Default)]
pub struct Checker {
    capacity: u64,
    guaranteed: Vec<u32>,
    /// Zone of every call offered (first offer only: a repeat is a retransmission).
    offered: FxHashMap<CallId, ZoneId>,
    live: FxHashMap<CallId, Live>,
    live_in_zone: Vec<u32>,
    /// Calls offered as suspects of a flood.
    suspected: FxHashSet<CallId>,
    /// Suspects admitted and not ended, within their share and beyond it (on capacity nobody
    /// used), and the most there may be within it.
    live_suspected: [u64; 2],
    suspected_max: u64,
    answered: FxHashSet<CallId>,
    ended: FxHashSet<CallId>,
    abandoned: FxHashSet<CallId>,
    /// The call each call-taker is rung for or talks with.
    holds: FxHashMap<AgentId, CallId>,
    /// Callers bridged to a partner service after a handover.
    handed_over: FxHashSet<CallId>,
    /// Requests fed and not answered yet.
    open: FxHashSet<RequestId>,
    /// Whether the event being observed is the first offer of its call.
    first_offer: bool,
    checks: u64,
}

impl Checker {
    /// A checker for runs of this plan (its capacity and zone shares).
    pub fn new(plan: &Plan) -> Checker {
        Checker {
            capacity: u64::from(plan.capacity),
            guaranteed: plan.zones.iter().map(|z| z.guaranteed).collect(),
            live_in_zone: vec![0; plan.zones.len()],
            suspected_max: u64::from(plan.suspected_capacity),
            ..Checker::default()
        }
    }

    /// Rules evaluated so far.
    pub fn checks(&self) -> u64 {
        self.checks
    }

    /// Requests fed and not answered yet.
    pub fn open_requests(&self) -> usize {
        self.open.len()
    }

    /// Calls admitted and not ended, by the stream.
    pub fn live_calls(&self) -> usize {
        self.live.len()
    }

    /// Notes an event about to be fed: offers and request ids.
    pub fn fed(&mut self, event: &Event) -> Result<(), Violation> {
        self.first_offer = false;
        match event {
            Event::Offered(offer) => {
                if let std::collections::hash_map::Entry::Vacant(entry) =
                    self.offered.entry(offer.call)
                {
                    entry.insert(offer.zone);
                    if offer.suspected {
                        self.suspected.insert(offer.call);
                    }
                    self.first_offer = true;
                }
            }
            Event::Request { id, .. } | Event::Located { id, .. } => {
                let fresh = self.open.insert(*id);
                ensure(&mut self.checks, fresh, || {
                    format!("the driver reused request id {}", id.0)
                })?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks the commands one event caused, in order, then what the event itself demands.
    pub fn observe(&mut self, event: &Event, out: &[Command]) -> Result<(), Violation> {
        let mut rejected: Vec<CallId> = Vec::new();
        if let Event::AgentRingFailed { agent, call, .. } = event
            && let Some(live) = self.live.get_mut(call)
            && live.holder == Some(*agent)
            && !live.bridged
        {
            // The phone itself said the ring is over: no cancel follows, the leg is gone.
            live.holder = None;
            self.holds.remove(agent);
        }
        for command in out {
            self.command(command, &mut rejected)?;
        }
        self.answered_as_asked(event, out)
    }

    /// An offer is answered or refused at once, a request at once unless it rings a partner.
    fn answered_as_asked(&mut self, event: &Event, out: &[Command]) -> Result<(), Violation> {
        let c = &mut self.checks;
        match event {
            Event::Offered(offer) => {
                let decided = out
                    .iter()
                    .filter(|o| {
                        matches!(o, Command::Answer { call } | Command::Reject { call, .. } if *call == offer.call)
                    })
                    .count();
                let wanted = usize::from(self.first_offer);
                ensure(c, decided == wanted, || {
                    format!(
                        "offer of call {} answered or refused {decided} times (wanted {wanted})",
                        offer.call.0
                    )
                })?;
            }
            Event::Request { id, agent, ask } => {
                let replied = out
                    .iter()
                    .any(|o| matches!(o, Command::Reply { request, .. } if request == id));
                if let Ask::Pick(call) = ask {
                    let granted = out.iter().any(
                        |o| matches!(o, Command::Reply { request, result: Ok(_) } if request == id),
                    );
                    let rung = out.iter().any(|o| {
                        matches!(o, Command::Ring { call: c, agent: a } if c == call && a == agent)
                    });
                    // Not the converse: a timer firing after a refused pick may ring them.
                    ensure(c, !granted || rung, || {
                        format!(
                            "pick {} of call {} granted without ringing call-taker {}",
                            id.0, call.0, agent.0
                        )
                    })?;
                }
                let deferred = matches!(ask, Ask::Transfer { call, .. }
                    if out.iter().any(|o| matches!(o, Command::CallPartner { call: c, .. } if c == call)));
                ensure(c, replied != deferred, || {
                    format!(
                        "request {} {}",
                        id.0,
                        if replied {
                            "answered while its partner rings"
                        } else {
                            "left unanswered"
                        }
                    )
                })?;
            }
            Event::Located { id, .. } => {
                let replied = out
                    .iter()
                    .any(|o| matches!(o, Command::Reply { request, .. } if request == id));
                ensure(c, replied, || {
                    format!("position report {} left unanswered", id.0)
                })?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The stream and the core agree on live calls, capacity, who holds what, and partner legs.
    pub fn agree(&mut self, core: &Core) -> Result<(), Violation> {
        use secourir_core::{AgentStatus, CallStatus};
        let c = &mut self.checks;
        let (ours, theirs) = (self.live.len(), core.live_calls());
        ensure(c, ours == theirs, || {
            format!("the stream has {ours} live calls, the core {theirs}: one was lost or invented")
        })?;
        let admitted = core.admission().total_in_use();
        ensure(
            c,
            admitted == ours as u64 && core.admission().within_capacity(),
            || {
                format!(
                    "{admitted} calls admitted for {ours} live, capacity {}",
                    core.admission().capacity()
                )
            },
        )?;
        for (agent, call) in &self.holds {
            let bridged = self.live.get(call).is_some_and(|l| l.bridged);
            let expected = if bridged {
                CallStatus::Talking(*agent)
            } else {
                CallStatus::Ringing(*agent)
            };
            let status = core.call(*call).map(|i| i.status);
            ensure(c, status == Some(expected), || {
                format!(
                    "the stream has call {} {expected:?}, the core {status:?}",
                    call.0
                )
            })?;
            let agent_status = core.agent(*agent);
            let matches = matches!(agent_status, AgentStatus::Ringing(x) | AgentStatus::Talking(x) if x == *call);
            ensure(c, matches, || {
                format!(
                    "the stream has call-taker {} holding call {}, the core {agent_status:?}",
                    agent.0, call.0
                )
            })?;
        }
        let core_handed: Vec<CallId> = core.handed_over().collect();
        ensure(c, core_handed.len() == self.handed_over.len(), || {
            let mut ours: Vec<u64> = self.handed_over.iter().map(|c| c.0).collect();
            ours.sort_unstable();
            format!(
                "callers with a partner service: the stream says {ours:?}, the core {:?} \
                 (a partner leg was dropped while the core still bridges the caller to it)",
                core_handed.iter().map(|c| c.0).collect::<Vec<_>>()
            )
        })?;
        for call in core_handed {
            ensure(c, self.handed_over.contains(&call), || {
                format!(
                    "the core bridges call {} to a partner the stream dropped",
                    call.0
                )
            })?;
        }
        Ok(())
    }

    /// After the liveness phase: every call offered ended exactly once, every request was
    /// answered, no call-taker holds a call and no caller is left with a partner service.
    pub fn finish(&mut self, core: &Core) -> Result<(), Violation> {
        let c = &mut self.checks;
        let mut unended: Vec<u64> = self
            .offered
            .keys()
            .filter(|call| !self.ended.contains(call))
            .map(|call| call.0)
            .collect();
        unended.sort_unstable();
        ensure(c, unended.is_empty(), || {
            format!("calls never ended: {unended:?}")
        })?;
        let mut open: Vec<u64> = self.open.iter().map(|r| r.0).collect();
        open.sort_unstable();
        ensure(c, open.is_empty(), || {
            format!("requests never answered: {open:?}")
        })?;
        ensure(c, self.holds.is_empty() && self.live.is_empty(), || {
            format!("call-takers still holding calls: {:?}", self.holds)
        })?;
        let handed: Vec<u64> = core.handed_over().map(|c| c.0).collect();
        ensure(c, self.handed_over.is_empty() && handed.is_empty(), || {
            format!("callers left with a partner service: {handed:?}")
        })?;
        ensure(c, core.live_calls() == 0, || {
            format!("the core still holds {} calls", core.live_calls())
        })
    }
}

//! The core's state as a value, to restore another core from: every field written once.

use super::mutual_aid::lending;
use super::*;

impl Core {
    /// Its state, to restore another core from ([`Core::restore`]).
    pub fn snapshot(&self) -> Snapshot {
        // Every field named, none skipped with `..`: a field added to the core does not
        // compile until it is written here (or said to be derived), since one forgotten would
        // leave every node restored from a snapshot apart from the others.
        let Core {
            plan: _,
            now,
            admission,
            calls,
            agents,
            ctas,
            crisis,
            timers,
            sequence,
            out: _,
            callbacks_unindexed,
            overdue,
            may_lend: _,
            prior_per_ms: _,
            started,
            next_sizing,
            spare_grew: _,
            handed_over,
        } = self;
        // Maps in key order, so that two snapshots of equal states are equal.
        let mut calls: Vec<(CallId, Call)> = calls.iter().map(|(id, c)| (*id, c.clone())).collect();
        calls.sort_unstable_by_key(|(id, _)| *id);
        let mut agents: Vec<(AgentId, Agent)> =
            agents.iter().map(|(id, a)| (*id, a.clone())).collect();
        agents.sort_unstable_by_key(|(id, _)| *id);
        let mut timers: Vec<(Instant, Timer)> = timers.iter().map(|Reverse(t)| *t).collect();
        timers.sort_unstable();
        Snapshot {
            now: *now,
            admission: admission.clone(),
            calls,
            agents,
            ctas: ctas.clone(),
            crisis: crisis.clone(),
            timers,
            sequence: *sequence,
            callbacks_unindexed: *callbacks_unindexed,
            overdue: overdue.iter().map(|(k, id)| (*k, *id)).collect(),
            started: *started,
            next_sizing: *next_sizing,
            handed_over: handed_over.iter().copied().collect(),
        }
    }

    /// A core for `plan` in the state `snapshot` was taken in; refused when the snapshot
    /// does not fit the plan (other CTAs or zones).
    pub fn restore(plan: Arc<Plan>, snapshot: Snapshot) -> Result<Core, String> {
        if snapshot.ctas.len() != plan.ctas.len() || snapshot.crisis.len() != plan.zones.len() {
            return Err(format!(
                "the snapshot has {} CTAs and {} zones, the configuration {} and {}",
                snapshot.ctas.len(),
                snapshot.crisis.len(),
                plan.ctas.len(),
                plan.zones.len()
            ));
        }
        // Every field of both named: one added to either does not compile until it is read
        // back here.
        let Snapshot {
            now,
            admission,
            calls,
            agents,
            ctas,
            crisis,
            timers,
            sequence,
            callbacks_unindexed,
            overdue,
            started,
            next_sizing,
            handed_over,
        } = snapshot;
        let (may_lend, prior_per_ms) = lending(&plan);
        let core = Core {
            plan,
            now,
            admission,
            calls: calls.into_iter().collect(),
            agents: agents.into_iter().collect(),
            ctas,
            crisis,
            timers: timers.into_iter().map(Reverse).collect(),
            sequence,
            out: Vec::new(),
            callbacks_unindexed,
            overdue: overdue.into_iter().collect(),
            may_lend,
            prior_per_ms,
            started,
            next_sizing,
            spare_grew: Vec::new(),
            handed_over: handed_over.into_iter().collect(),
        };
        core.check_invariants();
        Ok(core)
    }
}

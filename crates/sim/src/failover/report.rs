//! What a seed's run did, what a failing one broke, and the batch's summary.

use super::{Fault, NodeCounts, STEP_MS};

/// What one seed did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedRun {
    /// The seed.
    pub seed: u64,
    /// Steps of simulated time, both phases.
    pub steps: u64,
    /// Calls offered.
    pub calls: u64,
    /// Calls a call-taker answered.
    pub answered: u64,
    /// Calls a core answered after their caller had hung up, unconnected: on record as
    /// answered, on no call-back list.
    pub answered_unconnected: u64,
    /// Calls whose node died before their offer reached the log: known to nobody after.
    pub died_unlogged: u64,
    /// Calls unanswered, on a call-back list.
    pub call_backs: u64,
    /// Entries of the log.
    pub entries: u64,
    /// Faults injected, by kind (in `Fault::ALL` order).
    pub faults: [u64; Fault::ALL.len()],
    /// Rings that found the phone busy (already ringing or talking).
    pub busy_rings: u64,
    /// Of those, rings of an island's core.
    pub busy_island_rings: u64,
    /// Safety checks evaluated.
    pub checks: u64,
    /// What the nodes' failover machines did, summed.
    pub counts: NodeCounts,
}

/// A seed that broke a rule: replay it with the same seed and settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// Simulated time of the break, ms.
    pub at_ms: u64,
    /// The rule broken.
    pub message: String,
    /// The run's last lines before it.
    pub trace: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {} broke a rule at {} ms: {}",
            self.seed, self.at_ms, self.message
        )?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

pub(super) fn add(total: &mut NodeCounts, more: &NodeCounts) {
    total.served_alone += more.served_alone;
    total.declared_lost += more.declared_lost;
    total.carried_on += more.carried_on;
    total.merges += more.merges;
    total.duplicates += more.duplicates;
}

/// One line per seed and a total, for the command line.
pub fn summary(runs: &[SeedRun]) -> String {
    let mut total = SeedRun::default();
    for run in runs {
        total.steps += run.steps;
        total.calls += run.calls;
        total.answered += run.answered;
        total.answered_unconnected += run.answered_unconnected;
        total.died_unlogged += run.died_unlogged;
        total.call_backs += run.call_backs;
        total.entries += run.entries;
        total.busy_rings += run.busy_rings;
        total.busy_island_rings += run.busy_island_rings;
        total.checks += run.checks;
        for (a, b) in total.faults.iter_mut().zip(run.faults) {
            *a += b;
        }
        add(&mut total.counts, &run.counts);
    }
    let faults: Vec<String> = Fault::ALL
        .iter()
        .map(|f| format!("{} {}", f.name(), total.faults[*f as usize]))
        .collect();
    format!(
        "{} seeds, {} steps of {STEP_MS} ms, {} log entries, {} checks: all passed\n\
         calls {} (answered {}, on a call-back list {}, on record as answered after the caller \
         hung up {}, dropped with their node before the log had them {}), none lost\n\
         faults: {}\n\
         failover: served alone {}, nodes declared lost {}, conversations carried on {}, \
         islands given back {}, redeliveries refused {}, rings to a busy phone {} ({} by an \
         island)",
        runs.len(),
        total.steps,
        total.entries,
        total.checks,
        total.calls,
        total.answered,
        total.call_backs,
        total.answered_unconnected,
        total.died_unlogged,
        faults.join(", "),
        total.counts.served_alone,
        total.counts.declared_lost,
        total.counts.carried_on,
        total.counts.merges,
        total.counts.duplicates,
        total.busy_rings,
        total.busy_island_rings,
    )
}

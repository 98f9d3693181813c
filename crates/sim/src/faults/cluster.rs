//! The cluster's side of fault injection: one seed's inputs, as the log holds them, are
//! delivered to follower nodes the way a replicated log's consumers may see them (twice after a
//! reconnect, out of order within a window, a node crashing and catching up from the start of
//! the log), and every follower's core must end with exactly the commands of the node that
//! produced the inputs.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use secourir_config::Plan;
use secourir_core::Core;
use secourir_journal::{Applier, Entry};
use sha2::{Digest, Sha256};

use super::{Cast, Settings, TraceLine, run_seed};

/// Entries that may overtake one another on the way to a follower.
const WINDOW: u64 = 8;

/// What one seed's cluster run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterRun {
    /// Entries of the log.
    pub entries: u64,
    /// Deliveries to followers, duplicates included.
    pub deliveries: u64,
    /// Deliveries the followers dropped as already applied or held.
    pub duplicates: u64,
    /// Followers crashed and caught up from the start of the log.
    pub crashes: u64,
}

/// Runs seed `seed` (as `run_seed` does) and delivers its inputs to `followers` nodes with the
/// faults of a replicated log; an error names the follower that diverged.
pub fn converge(
    seed: u64,
    settings: Settings,
    plan: &Arc<Plan>,
    cast: &Cast,
    followers: usize,
) -> Result<ClusterRun, String> {
    let mut log: Vec<Entry> = Vec::new();
    let mut leader = Sha256::new();
    let mut text = String::new();
    let mut record = |line: &TraceLine<'_>| {
        log.push(Entry {
            at: line.at,
            event: line.event.clone(),
        });
        for command in line.commands {
            text.clear();
            let _ = writeln!(text, "{command:?}");
            leader.update(text.as_bytes());
        }
    };
    run_seed(seed, settings, plan, cast, Some(&mut record)).map_err(|f| f.to_string())?;
    let leader: [u8; 32] = leader.finalize().into();
    let mut run = ClusterRun {
        entries: log.len() as u64,
        ..ClusterRun::default()
    };
    for node in 1..=followers {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (node as u64).wrapping_mul(0x9e37_79b9));
        let mut follower = Follower::new(plan);
        // Sequences (from 1) not delivered yet; the delivery picks among the first few.
        let mut undelivered: BTreeSet<u64> = (1..=log.len() as u64).collect();
        while !undelivered.is_empty() {
            let roll: u32 = rng.random_range(0..10_000);
            // About one crash per follower and seed, a redelivery every 20 deliveries.
            if roll < 3 {
                // The node dies: it starts again with an empty core and reads the log again
                // from its first entry.
                follower = Follower::new(plan);
                run.crashes += 1;
                undelivered = (1..=log.len() as u64).collect();
                continue;
            }
            let seq = if roll < 500 && follower.applier.next() > 1 {
                // A redelivery of something already applied.
                rng.random_range(1..follower.applier.next())
            } else {
                let ahead: Vec<u64> = undelivered.iter().take(WINDOW as usize).copied().collect();
                let pick = ahead[rng.random_range(0..ahead.len())];
                undelivered.remove(&pick);
                pick
            };
            run.deliveries += 1;
            follower.deliver(seq, log[(seq - 1) as usize].clone())?;
        }
        run.duplicates += follower.applier.duplicates();
        if follower.applier.next() != log.len() as u64 + 1 {
            return Err(format!(
                "seed {seed}: follower {node} stopped at entry {} of {}",
                follower.applier.next(),
                log.len()
            ));
        }
        let got = follower.digest();
        if got != leader {
            return Err(format!(
                "seed {seed}: follower {node} diverged from the node that produced the inputs"
            ));
        }
    }
    Ok(run)
}

/// A follower node: its core fed from the applier, and the digest of its commands.
struct Follower {
    core: Core,
    applier: Applier,
    hasher: Sha256,
    line: String,
}

impl Follower {
    fn new(plan: &Arc<Plan>) -> Follower {
        Follower {
            core: Core::new(Arc::clone(plan)),
            applier: Applier::new(1),
            hasher: Sha256::new(),
            line: String::new(),
        }
    }

    fn deliver(&mut self, seq: u64, entry: Entry) -> Result<(), String> {
        let ready = self
            .applier
            .offer(seq, entry)
            .map_err(|again| format!("follower had to read again from {}", again.from))?;
        for entry in ready {
            for command in self.core.handle(entry.event, entry.at) {
                self.line.clear();
                let _ = writeln!(self.line, "{command:?}");
                self.hasher.update(self.line.as_bytes());
            }
        }
        Ok(())
    }

    fn digest(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }
}

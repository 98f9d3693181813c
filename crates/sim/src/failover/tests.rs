use super::*;
use crate::faults::{fault_plan, prepare};

fn short() -> Settings {
    Settings {
        chaos_ms: 240_000,
        ..Settings::default()
    }
}

fn seeds(nodes: usize, range: std::ops::Range<u64>) -> Vec<SeedRun> {
    let (plan, cast) = prepare(fault_plan());
    let settings = Settings {
        nodes,
        ..Settings::default()
    };
    range
        .map(|seed| match run_seed(seed, settings, &plan, &cast, false) {
            Ok(run) => run,
            Err(failure) => panic!("{failure}"),
        })
        .collect()
}

#[test]
fn three_nodes_keep_every_caller_through_partitions_crashes_and_late_deliveries() {
    let runs = seeds(3, 0..20);
    let total: u64 = runs.iter().map(|r| r.calls).sum();
    assert!(total > 200, "{}", summary(&runs));
    // The faults that matter were injected, and the machine acted on them.
    let faults = |f: Fault| runs.iter().map(|r| r.faults[f as usize]).sum::<u64>();
    for fault in [
        Fault::NodeCut,
        Fault::SitesCut,
        Fault::QuorumLost,
        Fault::Crash,
    ] {
        assert!(faults(fault) > 0, "no {}: {}", fault.name(), summary(&runs));
    }
    let counts = |f: fn(&NodeCounts) -> u64| runs.iter().map(|r| f(&r.counts)).sum::<u64>();
    assert!(counts(|c| c.served_alone) > 0, "{}", summary(&runs));
    assert!(counts(|c| c.declared_lost) > 0, "{}", summary(&runs));
    assert!(counts(|c| c.merges) > 0, "{}", summary(&runs));
    assert!(counts(|c| c.duplicates) > 0, "{}", summary(&runs));
}

#[test]
fn two_nodes_keep_every_caller_too() {
    let runs = seeds(2, 0..20);
    assert!(runs.iter().all(|r| r.calls > 0));
}

#[test]
fn a_seed_replays_exactly() {
    let (plan, cast) = prepare(fault_plan());
    let a = run_seed(7, short(), &plan, &cast, false);
    let b = run_seed(7, short(), &plan, &cast, false);
    assert_eq!(a, b);
}

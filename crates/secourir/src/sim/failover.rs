//! `secourir sim --faults --failover`: the cluster's failover machine driven seed by seed over
//! a simulated log and network with partitions, crashes and late or repeated deliveries.

use std::process::ExitCode;
use std::sync::Arc;

use secourir_config::Plan;
use secourir_sim::failover::{self, Settings};
use secourir_sim::faults::Cast;

/// Runs `seeds` (or replays one, printing every line with `trace`).
pub(super) fn run(
    seeds: std::ops::Range<u64>,
    replay: Option<u64>,
    settings: Settings,
    plan: &Arc<Plan>,
    cast: &Cast,
    trace: bool,
) -> ExitCode {
    let shape = format!(
        "--nodes {} --minutes {}",
        settings.nodes,
        settings.chaos_ms / 60_000
    );
    println!(
        "failover: {} nodes, {} call-takers, {} min of faults then healing, per seed",
        settings.nodes,
        cast.roster.len(),
        settings.chaos_ms / 60_000
    );
    let started = std::time::Instant::now();
    let seeds = match replay {
        Some(seed) => seed..seed + 1,
        None => seeds,
    };
    let mut runs = Vec::new();
    for seed in seeds {
        match failover::run_seed(seed, settings, plan, cast, trace) {
            Ok(run) => runs.push(run),
            Err(failure) => {
                print!("{failure}");
                println!("replay: secourir sim --faults --failover --seed {seed} {shape} --trace");
                return ExitCode::from(1);
            }
        }
    }
    println!("{}", failover::summary(&runs));
    println!("wall time {:.2} s", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

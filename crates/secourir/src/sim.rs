//! `secourir sim`: run a scenario through the real core in virtual time and report per zone, or
//! (`--faults`) drive the core with every event it accepts and injected faults, seed by seed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use secourir_sim::Scenario;
use secourir_sim::faults::{self, Settings};

mod failover;

/// What to simulate and where to write the results.
#[derive(clap::Args)]
pub struct Args {
    /// The scenario file (see `scenarios/`).
    #[arg(required_unless_present = "faults")]
    scenario: Option<PathBuf>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also run the scenario without its surges and outages, and show the difference per zone.
    #[arg(long)]
    compare_baseline: bool,
    /// Draw answer time and queue length over time for the surging zones and a few others.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// This share of the demand writes instead of calling (0 to 1), with conversations of 5 min
    /// on average; in place of the scenario's `[text]`. Voice and text are reported apart.
    #[arg(long, value_parser = share)]
    text_share: Option<f64>,
    #[command(flatten)]
    faults: FaultArgs,
}

/// Fault injection: every event the core accepts, faults drawn from a seed, checked after each.
#[derive(clap::Args)]
struct FaultArgs {
    /// Run the fault-injection mode instead of a scenario.
    #[arg(long, conflicts_with_all = ["scenario", "json", "compare_baseline", "svg", "text_share"])]
    faults: bool,
    /// Number of seeds of the batch.
    #[arg(
        long,
        default_value_t = 100,
        requires = "faults",
        conflicts_with = "seed"
    )]
    seeds: u64,
    /// First seed of the batch.
    #[arg(
        long,
        default_value_t = 0,
        requires = "faults",
        conflicts_with = "seed"
    )]
    first_seed: u64,
    /// Replay exactly this seed, printing its result (and with `--trace` every event).
    #[arg(long, requires = "faults")]
    seed: Option<u64>,
    /// Random actions of each seed's chaos phase.
    #[arg(long, default_value_t = Settings::default().steps, requires = "faults")]
    steps: u32,
    /// The configuration to drive (default: a small built-in plan where capacity, queues and
    /// mutual aid are a few calls away).
    #[arg(long, requires = "faults")]
    config: Option<PathBuf>,
    /// With `--seed`: print every event fed and the commands it caused.
    #[arg(long, requires = "seed")]
    trace: bool,
    /// Threads of the batch; a seed's outcome does not depend on it.
    #[arg(long, default_value_t = 1, requires = "faults")]
    jobs: usize,
    /// Also deliver each seed's inputs to this many follower cores as a replicated log may
    /// (twice, out of order, after a crash from the start) and check they end alike.
    #[arg(
        long,
        default_value_t = 0,
        requires = "faults",
        conflicts_with = "seed"
    )]
    cluster: usize,
    /// Drive the cluster's failover machine instead: nodes over a simulated log and network
    /// with partitions, crashes and restarts, late and repeated deliveries.
    #[arg(long, requires = "faults", conflicts_with = "cluster")]
    failover: bool,
    /// With `--failover`: nodes of the cluster (2 or 3).
    #[arg(long, default_value_t = 3, requires = "failover", value_parser = clap::value_parser!(u8).range(2..=3))]
    nodes: u8,
    /// With `--failover`: minutes of faults in each seed before the network heals.
    #[arg(long, default_value_t = 10, requires = "failover")]
    minutes: u64,
}

/// A share, 0 to 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("{text:?} is not a share between 0 and 1")),
    }
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let Some(path) = args.scenario.as_deref().filter(|_| !args.faults.faults) else {
        return run_faults(&args.faults);
    };
    let scenario = match Scenario::load(path) {
        Ok(s) => Scenario {
            text: args
                .text_share
                .map(secourir_sim::TextDemand::with_share)
                .or(s.text),
            ..s
        },
        Err(error) => {
            eprintln!("secourir sim: {error}");
            return ExitCode::from(2);
        }
    };
    let plan = match crate::load_plan(&resolve_config(&scenario.config, path)) {
        Ok(plan) => Arc::new(plan),
        Err(message) => {
            eprintln!("secourir sim: {message}");
            return ExitCode::from(2);
        }
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(1000);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} simulation {wide_bar} {percent}% {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut progress = |share: f64| {
        if let Some(bar) = &bar {
            bar.set_position((share * 1000.0) as u64);
        }
    };
    let result = secourir_sim::run_scenario(
        &scenario,
        Arc::clone(&plan),
        args.compare_baseline,
        &mut progress,
    );
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let (report, run, _) = match result {
        Ok(r) => r,
        Err(error) => {
            eprintln!("secourir sim: {}: {error}", path.display());
            return ExitCode::from(2);
        }
    };
    print!("{}", secourir_sim::summary(&report));
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json + "\n").map_err(|e| e.to_string()));
        if let Err(error) = written {
            eprintln!("secourir sim: {}: {error}", path.display());
            return ExitCode::from(2);
        }
    }
    if let Some(path) = &args.svg
        && let Err(error) = secourir_sim::write_svg(path, &run, &plan, &scenario)
    {
        eprintln!("secourir sim: {}: {error}", path.display());
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

/// The scenario's `config` as written, else beside the scenario, else one level up.
fn resolve_config(config: &Path, scenario: &Path) -> PathBuf {
    if config.is_absolute() || config.exists() {
        return config.to_owned();
    }
    let dir = scenario.parent().unwrap_or(Path::new("."));
    for base in [Some(dir), dir.parent()].into_iter().flatten() {
        let candidate = base.join(config);
        if candidate.exists() {
            return candidate;
        }
    }
    config.to_owned()
}

/// Each seed's inputs delivered to follower cores with a replicated log's faults.
fn run_cluster(
    seeds: std::ops::Range<u64>,
    settings: Settings,
    plan: &std::sync::Arc<secourir_config::Plan>,
    cast: &faults::Cast,
    followers: usize,
) -> ExitCode {
    let started = std::time::Instant::now();
    let mut total = faults::cluster::ClusterRun::default();
    let count = seeds.end - seeds.start;
    for seed in seeds {
        match faults::cluster::converge(seed, settings, plan, cast, followers) {
            Ok(run) => {
                total.entries += run.entries;
                total.deliveries += run.deliveries;
                total.duplicates += run.duplicates;
                total.crashes += run.crashes;
            }
            Err(message) => {
                println!("{message}");
                println!(
                    "replay: secourir sim --faults --seed {seed} --steps {} --trace",
                    settings.steps
                );
                return ExitCode::from(1);
            }
        }
    }
    println!(
        "{count} seeds, {followers} followers each: {} log entries delivered {} times ({} duplicates dropped, {} follower crashes caught up from the start); every follower ended with the commands of the node that wrote the log",
        total.entries, total.deliveries, total.duplicates, total.crashes
    );
    println!("wall time {:.2} s", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

fn run_faults(args: &FaultArgs) -> ExitCode {
    let plan = match &args.config {
        Some(path) => match crate::load_plan(path) {
            Ok(plan) => plan,
            Err(message) => {
                eprintln!("secourir sim: {message}");
                return ExitCode::from(2);
            }
        },
        None => faults::fault_plan(),
    };
    let (plan, cast) = faults::prepare(plan);
    let settings = Settings {
        steps: args.steps,
        ..Settings::default()
    };
    // The flags that shape a run, to replay a seed of this batch exactly.
    let mut shape = format!("--steps {}", args.steps);
    if let Some(path) = &args.config {
        shape.push_str(&format!(" --config {}", path.display()));
    }
    println!(
        "fault injection: {} CTAs staffed, {} zones offered calls, {} call-takers, {shape}",
        cast.ctas.len(),
        cast.zones.len(),
        cast.roster.len()
    );
    faults::quiet_panics();
    if args.failover {
        let settings = secourir_sim::failover::Settings {
            nodes: usize::from(args.nodes),
            chaos_ms: args.minutes * 60_000,
            ..secourir_sim::failover::Settings::default()
        };
        let seeds = args.first_seed..args.first_seed.saturating_add(args.seeds);
        return failover::run(seeds, args.seed, settings, &plan, &cast, args.trace);
    }
    if let Some(seed) = args.seed {
        return replay(seed, settings, &plan, &cast, args.trace);
    }
    let seeds = args.first_seed..args.first_seed.saturating_add(args.seeds);
    if args.cluster > 0 {
        return run_cluster(seeds, settings, &plan, &cast, args.cluster);
    }
    let batch = faults::run_batch(seeds, settings, &plan, &cast, args.jobs);
    print!("{}", faults::summary(&batch));
    match batch.failures.first() {
        None => ExitCode::SUCCESS,
        Some(first) => {
            println!(
                "replay: secourir sim --faults --seed {} {shape} --trace",
                first.seed
            );
            ExitCode::from(1)
        }
    }
}

fn replay(
    seed: u64,
    settings: Settings,
    plan: &Arc<secourir_config::Plan>,
    cast: &faults::Cast,
    trace: bool,
) -> ExitCode {
    let mut print = |line: &faults::TraceLine<'_>| {
        println!(
            "#{} +{}.{:03}s {:?} {:?}",
            line.index,
            line.at_ms / 1000,
            line.at_ms % 1000,
            line.phase,
            line.event
        );
        for command in line.commands {
            println!("    {command:?}");
        }
    };
    let started = std::time::Instant::now();
    let outcome = faults::run_seed(
        seed,
        settings,
        plan,
        cast,
        trace.then_some(&mut print as &mut dyn FnMut(&faults::TraceLine<'_>)),
    );
    let wall = started.elapsed().as_secs_f64();
    match outcome {
        Ok(run) => {
            println!(
                "seed {seed} passed: {} events ({} in the liveness phase, {} rounds), {} \
                 commands, {} calls offered, {} invariant checks, {} faults injected, stream \
                 hash {:016x}, wall time {wall:.3} s",
                run.events,
                run.liveness_events,
                run.liveness_rounds,
                run.commands,
                run.calls,
                run.checks,
                run.faults.total(),
                run.hash
            );
            ExitCode::SUCCESS
        }
        Err(failure) => {
            println!("{failure}");
            ExitCode::from(1)
        }
    }
}

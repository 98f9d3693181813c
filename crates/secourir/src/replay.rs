//! `secourir replay`: a journal of the core's inputs fed through the core again.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use secourir_config::Plan;
use secourir_core::{Input, Instant, Outcome};

/// Options of `secourir replay`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["journal", "cluster"])))]
pub struct Args {
    /// The journal (DATA/journal/<start>.journal).
    pub journal: Option<PathBuf>,
    /// Replay a cluster's log instead: the NATS servers holding it, comma-separated.
    #[arg(long, value_name = "URLS")]
    pub cluster: Option<String>,
    /// With --cluster: the configuration the nodes ran (the shipped one by default).
    #[arg(long, default_value = "config/france.toml")]
    pub config: PathBuf,
    /// Replay with this configuration instead ("what if"): the same inputs, another plan.
    #[arg(long, value_name = "FILE")]
    pub with: Option<PathBuf>,
    /// Write every call's replayed outcome here, as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Answer the recorded calls with the simulator's call-takers, as many as the journal's
    /// configuration staffs (day and night), then as --with's does: the same real traffic,
    /// another staffing ("what if CTA 13 had had two more call-takers that night").
    #[arg(long)]
    pub model: bool,
}

/// What is replayed: its name, the plan it ran with, and its inputs.
struct Source {
    name: String,
    node: String,
    plan: Plan,
    inputs: Vec<(Instant, Input)>,
    torn_tail: bool,
}

fn journal_source(path: &std::path::Path) -> Result<Source, String> {
    let recorded = secourir_journal::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let header = &recorded.header;
    let simulated = header.simulated_call_takers;
    let read = |text: &str, name: &str| {
        let mut plan = crate::plan_from_text(text, name)?;
        if simulated {
            secourir_demo::add_simulated_call_takers(&mut plan);
        }
        Ok::<_, String>(plan)
    };
    let plan = read(&header.config, "journal configuration")?;
    // The configurations taken live keep their places among the inputs.
    let mut inputs = Vec::with_capacity(recorded.entries.len() + recorded.changes.len());
    let mut changes = recorded.changes.into_iter().peekable();
    for (i, entry) in recorded.entries.into_iter().enumerate() {
        while let Some(change) = changes.next_if(|c| c.after <= i) {
            let plan = read(&change.change.config, "configuration taken live")?;
            inputs.push((change.change.at, Input::Plan(Arc::new(plan))));
        }
        inputs.push((entry.at, Input::Event(entry.event)));
    }
    for change in changes {
        let plan = read(&change.change.config, "configuration taken live")?;
        inputs.push((change.change.at, Input::Plan(Arc::new(plan))));
    }
    Ok(Source {
        name: format!("journal {}", path.display()),
        node: format!(" of node {}", header.node),
        plan,
        torn_tail: recorded.torn_tail,
        inputs,
    })
}

fn cluster_source(urls: &str, config: &std::path::Path) -> Result<Source, String> {
    let plan = crate::load_plan(config)?;
    let name = config.display().to_string();
    let read = secourir_server::ConfigReader(Arc::new(move |text: &str| {
        crate::plan_from_text(text, &name)
    }));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let inputs = runtime
        .block_on(secourir_server::cluster_inputs(
            urls,
            Arc::new(plan.clone()),
            &read,
        ))
        .map_err(|e| format!("cluster log at {urls}: {e}"))?;
    Ok(Source {
        name: format!("cluster log at {urls}"),
        node: String::new(),
        plan,
        inputs,
        torn_tail: false,
    })
}

/// Runs the command: 0 on success, 2 when the journal cannot be read or its configuration is
/// refused.
pub fn run(args: &Args) -> ExitCode {
    let source = match (&args.journal, &args.cluster) {
        (Some(path), _) => journal_source(path),
        (None, Some(urls)) => cluster_source(urls, &args.config),
        (None, None) => Err("a journal or --cluster URLS".to_owned()),
    };
    let source = match source {
        Ok(source) => source,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if args.model {
        return model(args, source);
    }
    let plan = match &args.with {
        None => source.plan,
        Some(path) => match crate::load_plan(path) {
            Ok(plan) => {
                println!("replayed with the configuration {}", path.display());
                plan
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        },
    };
    let mut inputs = source.inputs;
    if args.with.is_some() {
        // A "what if" runs its own configuration throughout: the ones taken live are left out.
        let before = inputs.len();
        inputs.retain(|(_, input)| matches!(input, Input::Event(_)));
        if inputs.len() < before {
            println!(
                "{} configuration(s) taken live left out: --with holds for the whole replay",
                before - inputs.len()
            );
        }
    }
    let plan = Arc::new(plan);
    let replayed = secourir_sim::replay::replay(plan.clone(), inputs);
    let count = |o: Outcome| {
        replayed
            .calls
            .iter()
            .filter(|c| c.outcome == Some(o))
            .count()
    };
    let answered: Vec<u64> = replayed
        .calls
        .iter()
        .filter_map(|c| c.answered.map(|(_, ms)| ms))
        .collect();
    let within = |ms: u64| answered.iter().filter(|&&w| w <= ms).count();
    let share = |n: usize| {
        if replayed.calls.is_empty() {
            0.0
        } else {
            100.0 * n as f64 / replayed.calls.len() as f64
        }
    };
    let span_s = replayed
        .span
        .map_or(0, |(first, last)| last.since(first) / 1000);
    println!(
        "{}{}: {} inputs over {} s{}",
        source.name,
        source.node,
        replayed.events,
        span_s,
        if source.torn_tail {
            " (its last entry was cut short by a crash and left out)"
        } else {
            ""
        }
    );
    println!(
        "calls: {} offered, {} answered ({:.1}% of offered within 15 s, {:.1}% within 60 s), {} completed, {} transferred, {} abandoned, {} rejected, {} still live at the end",
        replayed.calls.len(),
        answered.len(),
        share(within(15_000)),
        share(within(60_000)),
        count(Outcome::Completed),
        count(Outcome::Transferred),
        count(Outcome::Abandoned),
        count(Outcome::Rejected),
        replayed
            .calls
            .iter()
            .filter(|c| c.outcome.is_none())
            .count(),
    );
    println!(
        "commands: {}, sha256 {}",
        replayed.commands, replayed.digest
    );
    if let Some(path) = &args.json {
        let calls: Vec<_> = replayed
            .calls
            .iter()
            .map(|c| {
                serde_json::json!({
                    "call": c.call.0,
                    "offered_at": c.offered_at.0,
                    "outcome": c.outcome.map(Outcome::as_str),
                    "cta": c.cta.map(|id| plan.cta(id).id.clone()),
                    "call_taker": c.answered.map(|(a, _)| plan
                        .call_takers
                        .get(a.0 as usize)
                        .map_or_else(|| format!("#{}", a.0), |t| t.login.clone())),
                    "answered_after_ms": c.answered.map(|(_, ms)| ms),
                })
            })
            .collect();
        let out = serde_json::json!({
            "events": replayed.events,
            "commands": replayed.commands,
            "sha256": replayed.digest,
            "torn_tail": source.torn_tail,
            "calls": calls,
        });
        if let Err(e) = std::fs::write(path, out.to_string()) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

/// `--model`: the calls of the recording offered again at their instants, each with its own
/// conversation time and, when its caller gave up, their patience; the simulator's
/// call-takers answer them, as many as each configuration staffs.
fn model(args: &Args, source: Source) -> ExitCode {
    let original = Arc::new(source.plan);
    let recorded = secourir_sim::replay::replay(original.clone(), source.inputs);
    let demand = secourir_sim::replay::recorded_demand(&recorded);
    let Some((first, last)) = recorded.span else {
        eprintln!("{}: no call to model", source.name);
        return ExitCode::from(2);
    };
    let talks: Vec<f64> = demand
        .iter()
        .filter_map(|c| c.talk_ms)
        .map(|ms| ms as f64 / 1000.0)
        .collect();
    let defaults = secourir_sim::Handling::default();
    let (mean_s, sd_s) = match talks.len() {
        0 | 1 => (defaults.mean_s, defaults.sd_s),
        n => {
            let mean = talks.iter().sum::<f64>() / n as f64;
            let var = talks.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (mean.max(1.0), var.sqrt())
        }
    };
    let calls = demand.len();
    let scenario = secourir_sim::Scenario {
        config: PathBuf::new(),
        // Room after the last call for those still waiting or talking to end.
        duration_ms: last.since(first) + 3_600_000,
        seed: 1,
        start_ms: first.0,
        demand: secourir_sim::Demand::Recorded(demand),
        handling: secourir_sim::Handling {
            mean_s,
            sd_s,
            ..defaults
        },
        staffing: secourir_sim::Staffing::Config,
        surges: Vec::new(),
        outages: Vec::new(),
        text: None,
    };
    let mut plans = vec![("the recording's configuration".to_owned(), original)];
    if let Some(path) = &args.with {
        let plan = match crate::load_plan(path) {
            Ok(plan) => plan,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        let zones = |p: &Plan| p.zones.iter().map(|z| z.code.clone()).collect::<Vec<_>>();
        if zones(&plan) != zones(&plans[0].1) {
            eprintln!(
                "{}: its départements differ from the recording's",
                path.display()
            );
            return ExitCode::from(2);
        }
        plans.push((path.display().to_string(), Arc::new(plan)));
    }
    println!(
        "{}{}: {calls} calls over {} s, answered by the simulator's call-takers as each \
         configuration staffs them (conversations from the recording, {mean_s:.0} s on average)",
        source.name,
        source.node,
        last.since(first) / 1000
    );
    for (label, plan) in plans {
        let report = match secourir_sim::run_scenario(&scenario, plan, false, &mut |_| {}) {
            Ok((report, _, _)) => report,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        println!("with {label}:");
        let line = |z: &secourir_sim::ZoneReport| {
            println!(
                "  {:<9} {} offered, {} answered ({:.1}% of offered within 15 s, {:.1}% within 60 s), {} abandoned, {} refused, answer p90 {:.1} s",
                z.zone,
                z.offered,
                z.answered,
                z.offered_answered_within_15s * 100.0,
                z.offered_answered_within_60s * 100.0,
                z.abandoned,
                z.rejected,
                z.answer_p90_s
            );
        };
        line(&report.national);
        for zone in report.zones.iter().filter(|z| z.offered > 0) {
            line(zone);
        }
    }
    ExitCode::SUCCESS
}

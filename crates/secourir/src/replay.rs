//! `secourir replay`: a journal of the core's inputs fed through the core again.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use secourir_core::Outcome;

/// Options of `secourir replay`.
#[derive(clap::Args)]
pub struct Args {
    /// The journal (DATA/journal/<start>.journal).
    pub journal: PathBuf,
    /// Write every call's replayed outcome here, as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs the command: 0 on success, 2 when the journal cannot be read or its configuration is
/// refused.
pub fn run(args: &Args) -> ExitCode {
    let recorded = match secourir_journal::read(&args.journal) {
        Ok(recorded) => recorded,
        Err(e) => {
            eprintln!("{}: {e}", args.journal.display());
            return ExitCode::from(2);
        }
    };
    let header = &recorded.header;
    let mut plan = match crate::plan_from_text(&header.config, "journal configuration") {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if header.simulated_call_takers {
        secourir_server::add_simulated_call_takers(&mut plan);
    }
    let plan = Arc::new(plan);
    let inputs = recorded.entries.into_iter().map(|e| (e.at, e.event));
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
        "journal {} of node {}: {} inputs over {} s{}",
        args.journal.display(),
        header.node,
        replayed.events,
        span_s,
        if recorded.torn_tail {
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
            "torn_tail": recorded.torn_tail,
            "calls": calls,
        });
        if let Err(e) = std::fs::write(path, out.to_string()) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

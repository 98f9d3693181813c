//! `secourir sim`: run a scenario through the real core in virtual time and report per zone.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use secourir_sim::Scenario;

/// What to simulate and where to write the results.
#[derive(clap::Args)]
pub struct Args {
    /// The scenario file (see `scenarios/`).
    scenario: PathBuf,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also run the scenario without its surges and outages, and show the difference per zone.
    #[arg(long)]
    compare_baseline: bool,
    /// Draw answer time and queue length over time for the surging zones and a few others.
    #[arg(long)]
    svg: Option<PathBuf>,
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let scenario = match Scenario::load(&args.scenario) {
        Ok(s) => s,
        Err(error) => {
            eprintln!("secourir sim: {error}");
            return ExitCode::from(2);
        }
    };
    let plan = match crate::load_plan(&resolve_config(&scenario.config, &args.scenario)) {
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
            eprintln!("secourir sim: {}: {error}", args.scenario.display());
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

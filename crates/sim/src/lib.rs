//! `secourir sim`: national traffic, crisis surges and outages simulated in virtual time through
//! the real routing core, so that what it reports is what the production logic would do.
//!
//! One seed reproduces a whole run. Callers arrive as a Poisson process per zone (population
//! weighted, shaped by an hourly profile, multiplied during surges), wait with an exponential
//! patience, talk for a log-normal time; call-takers log in and out with the shifts, answer their
//! phone after a delay or let it ring; supervisors turn crisis mode on during surges.

mod engine;
mod scenario;
mod stats;
mod svg;

use std::sync::Arc;

use secourir_config::Plan;

pub use engine::{Point, Run, SERIES_POINTS, SimError, simulate};
pub use scenario::{
    DAILY_PROFILE, Demand, Distribution, Handling, Outage, Scenario, ScenarioError, Staffing,
    Surge, parse_duration,
};
pub use stats::{Histogram, Report, ZoneReport, ZoneStats};
pub use svg::write_svg;

/// Builds the report of a run.
pub fn report(run: &Run, plan: &Plan, scenario: &Scenario, wall_seconds: f64) -> Report {
    let mut surging: Vec<String> = scenario
        .surges
        .iter()
        .flat_map(|s| s.zones.iter().cloned())
        .collect();
    surging.sort();
    surging.dedup();
    let mut zones: Vec<ZoneReport> = plan
        .zones
        .iter()
        .zip(&run.zones)
        .map(|(z, s)| ZoneReport::of(&z.code, s))
        .collect();
    zones.sort_by(|a, b| a.zone.cmp(&b.zone));
    Report {
        simulated_calls: run.calls,
        wall_seconds: (wall_seconds * 1000.0).round() / 1000.0,
        simulated_seconds: scenario.duration_ms as f64 / 1000.0,
        seed: scenario.seed,
        surging_zones: surging,
        national: ZoneReport::of("national", &run.national),
        zones,
    }
}

/// Puts the baseline's figures beside each zone's.
pub fn attach_baseline(report: &mut Report, baseline: &Report) {
    report.national.baseline = Some(Box::new(baseline.national.clone()));
    for zone in &mut report.zones {
        if let Some(b) = baseline.zones.iter().find(|b| b.zone == zone.zone) {
            zone.baseline = Some(Box::new(b.clone()));
        }
    }
}

/// Runs a scenario and, if asked, its baseline on a second thread, and reports both.
pub fn run_scenario(
    scenario: &Scenario,
    plan: Arc<Plan>,
    compare_baseline: bool,
    progress: &mut (dyn FnMut(f64) + Send),
) -> Result<(Report, Run, Option<Run>), SimError> {
    let started = std::time::Instant::now();
    let baseline_scenario = scenario.baseline();
    let (run, baseline) = std::thread::scope(|scope| {
        let baseline = compare_baseline.then(|| {
            let plan = Arc::clone(&plan);
            let scenario = &baseline_scenario;
            scope.spawn(move || simulate(scenario, plan, &mut |_| {}))
        });
        let run = simulate(scenario, Arc::clone(&plan), progress);
        let baseline = baseline.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        (run, baseline)
    });
    let run = run?;
    let baseline = baseline.transpose()?;
    let wall = started.elapsed().as_secs_f64();
    let mut report = report(&run, &plan, scenario, wall);
    if let Some(b) = &baseline {
        let b = self::report(b, &plan, &baseline_scenario, wall);
        attach_baseline(&mut report, &b);
    }
    Ok((report, run, baseline))
}

/// A readable table of the report: national line, surging zones, then every zone.
pub fn summary(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} calls simulated over {:.1} h in {:.1} s (seed {})",
        report.simulated_calls,
        report.simulated_seconds / 3600.0,
        report.wall_seconds,
        report.seed
    );
    let _ = writeln!(
        out,
        "{:<9} {:>9} {:>9} {:>8} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "zone",
        "offered",
        "answered",
        "abandon",
        "reject",
        "ovf-out",
        "ovf-in",
        "p50 s",
        "p90 s",
        "p95 s",
        "p99 s",
        "≤15s",
        "≤60s",
        "queue"
    );
    let line = |out: &mut String, z: &ZoneReport, label: &str| {
        let _ = writeln!(
            out,
            "{:<9} {:>9} {:>9} {:>8} {:>7} {:>7} {:>7} {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>5.1}% {:>5.1}% {:>6}",
            label,
            z.offered,
            z.answered,
            z.abandoned,
            z.rejected,
            z.overflow_out,
            z.overflow_in,
            z.answer_p50_s,
            z.answer_p90_s,
            z.answer_p95_s,
            z.answer_p99_s,
            z.answered_within_15s * 100.0,
            z.answered_within_60s * 100.0,
            z.longest_queue
        );
    };
    let compare = |out: &mut String, z: &ZoneReport| {
        if let Some(b) = &z.baseline {
            let _ = writeln!(
                out,
                "  vs baseline: offered {:+}, abandoned {:+}, rejected {:+}, p95 {:+.1} s, ≤15s {:+.1} pts",
                z.offered as i64 - b.offered as i64,
                z.abandoned as i64 - b.abandoned as i64,
                z.rejected as i64 - b.rejected as i64,
                z.answer_p95_s - b.answer_p95_s,
                (z.answered_within_15s - b.answered_within_15s) * 100.0
            );
        }
    };
    line(&mut out, &report.national, "national");
    compare(&mut out, &report.national);
    for z in &report.zones {
        let mark = if report.surging_zones.contains(&z.zone) {
            "*"
        } else {
            ""
        };
        line(&mut out, z, &format!("{}{}", z.zone, mark));
        if !mark.is_empty()
            || z.baseline
                .as_ref()
                .is_some_and(|b| (z.answer_p95_s - b.answer_p95_s).abs() >= 1.0)
        {
            compare(&mut out, z);
        }
    }
    if report.zones.iter().any(|z| z.baseline.is_some()) {
        let unaffected: Vec<&ZoneReport> = report
            .zones
            .iter()
            .filter(|z| !report.surging_zones.contains(&z.zone))
            .collect();
        let worst = unaffected
            .iter()
            .filter_map(|z| {
                z.baseline
                    .as_ref()
                    .map(|b| (z.zone.as_str(), z.answer_p95_s - b.answer_p95_s))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((zone, delta)) = worst {
            let _ = writeln!(
                out,
                "zones without surge: largest p95 change {delta:+.1} s (zone {zone}); rejected in all zones: {}",
                report.zones.iter().map(|z| z.rejected).sum::<u64>()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;

//! `secourir sim`: national traffic, crisis surges and outages simulated in virtual time through
//! the real routing core, so that what it reports is what the production logic would do.
//!
//! One seed reproduces a whole run. Callers arrive as a Poisson process per zone (population
//! weighted, shaped by an hourly profile, multiplied during surges), wait with an exponential
//! patience, talk for a log-normal time; call-takers log in and out with the shifts, answer their
//! phone after a delay or let it ring; supervisors turn crisis mode on during surges.

mod engine;
pub mod failover;
pub mod faults;
pub mod replay;
mod scenario;
mod stats;
mod svg;

use std::sync::Arc;

use secourir_config::Plan;

pub use engine::{Point, Run, SERIES_POINTS, SimError, simulate};
pub use scenario::{
    DAILY_PROFILE, Demand, Distribution, Handling, Outage, RecordedCall, Scenario, ScenarioError,
    Staffing, Surge, TextDemand, parse_duration,
};
pub use stats::{ByMedium, Goals, Histogram, Report, ZoneReport, ZoneStats};
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
    let mut crisis = surging.clone();
    for outage in &scenario.outages {
        if let Some(cta) = plan.cta_id(&outage.cta) {
            crisis.extend(plan.cta(cta).departements.iter().cloned());
        }
    }
    crisis.sort();
    crisis.dedup();
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
        crisis_zones: crisis,
        goals: None,
        national: ZoneReport::of("national", &run.national),
        by_medium: scenario.text.map(|_| ByMedium {
            voice: ZoneReport::of("voice", &run.by_medium[0]),
            text: ZoneReport::of("text", &run.by_medium[1]),
        }),
        zones,
    }
}

/// Reads the mutual-aid goals off a report whose baseline is attached.
pub fn goals(report: &Report) -> Goals {
    let crisis: Vec<&ZoneReport> = report
        .zones
        .iter()
        .filter(|z| report.crisis_zones.contains(&z.zone))
        .collect();
    let offered: u64 = crisis.iter().map(|z| z.offered).sum();
    let answered: u64 = crisis.iter().map(|z| z.answered).sum();
    let within: f64 = crisis
        .iter()
        .map(|z| z.offered_answered_within_15s * z.offered as f64)
        .sum();
    let share = |a: f64| {
        if offered == 0 {
            1.0
        } else {
            a / offered as f64
        }
    };
    let mut goals = Goals {
        rejected: report.zones.iter().map(|z| z.rejected).sum(),
        crisis_answered: share(answered as f64),
        crisis_within_15s: share(within),
        worst_p95_rise_s: 0.0,
        worst_p95_zone: String::new(),
        worst_within_15s_fall_pts: 0.0,
        worst_within_15s_zone: String::new(),
        lendable_idle_s: report.national.lendable_idle_s,
    };
    for z in &report.zones {
        let Some(b) = &z.baseline else { continue };
        if report.crisis_zones.contains(&z.zone) {
            continue;
        }
        let rise = z.answer_p95_s - b.answer_p95_s;
        if rise > goals.worst_p95_rise_s || goals.worst_p95_zone.is_empty() {
            goals.worst_p95_rise_s = rise;
            goals.worst_p95_zone = z.zone.clone();
        }
        let fall = (b.offered_answered_within_15s - z.offered_answered_within_15s) * 100.0;
        if fall > goals.worst_within_15s_fall_pts || goals.worst_within_15s_zone.is_empty() {
            goals.worst_within_15s_fall_pts = fall;
            goals.worst_within_15s_zone = z.zone.clone();
        }
    }
    let round = |x: f64, k: f64| (x * k).round() / k;
    goals.crisis_answered = round(goals.crisis_answered, 1000.0);
    goals.crisis_within_15s = round(goals.crisis_within_15s, 1000.0);
    goals.worst_p95_rise_s = round(goals.worst_p95_rise_s, 10.0);
    goals.worst_within_15s_fall_pts = round(goals.worst_within_15s_fall_pts, 10.0);
    goals
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
        report.goals = Some(goals(&report));
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
        "{:<9} {:>9} {:>9} {:>8} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>6} {:>8}",
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
        "off≤15s",
        "off≤60s",
        "queue",
        "lendable"
    );
    let line = |out: &mut String, z: &ZoneReport, label: &str| {
        let _ = writeln!(
            out,
            "{:<9} {:>9} {:>9} {:>8} {:>7} {:>7} {:>7} {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>5.1}% {:>5.1}% {:>6.1}% {:>6.1}% {:>6} {:>7.0}s",
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
            z.offered_answered_within_15s * 100.0,
            z.offered_answered_within_60s * 100.0,
            z.longest_queue,
            z.lendable_idle_s
        );
    };
    let compare = |out: &mut String, z: &ZoneReport| {
        if let Some(b) = &z.baseline {
            let _ = writeln!(
                out,
                "  vs baseline: offered {:+}, abandoned {:+}, rejected {:+}, p95 {:+.1} s, ≤15s of offered {:+.1} pts",
                z.offered as i64 - b.offered as i64,
                z.abandoned as i64 - b.abandoned as i64,
                z.rejected as i64 - b.rejected as i64,
                z.answer_p95_s - b.answer_p95_s,
                (z.offered_answered_within_15s - b.offered_answered_within_15s) * 100.0
            );
        }
    };
    line(&mut out, &report.national, "national");
    compare(&mut out, &report.national);
    if let Some(by) = &report.by_medium {
        line(&mut out, &by.voice, "voice");
        line(&mut out, &by.text, "text");
    }
    for z in &report.zones {
        let mark = if report.crisis_zones.contains(&z.zone) {
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
    if let Some(g) = &report.goals {
        let _ = writeln!(
            out,
            "goals {}: rejected {}; crisis zones answered {:.1}% of offered ({:.1}% within 15 s); \
             zones without crisis: worst p95 {:+.1} s (zone {}), worst ≤15s of offered {:+.1} pts \
             (zone {}); lendable idle {:.0} call-taker-s",
            if g.met() { "met" } else { "NOT met" },
            g.rejected,
            g.crisis_answered * 100.0,
            g.crisis_within_15s * 100.0,
            g.worst_p95_rise_s,
            g.worst_p95_zone,
            -g.worst_within_15s_fall_pts,
            g.worst_within_15s_zone,
            g.lendable_idle_s
        );
    }
    out
}

#[cfg(test)]
mod tests;

//! The simulator against queueing theory, and its reproducibility.

use std::path::Path;
use std::sync::Arc;

use secourir_config::{Departement, Plan};

use crate::*;

fn one_cta_plan(agents: u32) -> Arc<Plan> {
    let toml = format!(
        r#"
[national]
capacity = 100000
reserved_share = 0.5
rule_set = "r"
default_departement = "z"

[defaults]
mode = "acd"
wrap_up_s = 0
ring_timeout_s = 3600
no_answer_s = 3600
retry_s = 3600

[[cta]]
id = "cta-z"
name = "CTA Z"
departements = ["z"]
staffing = {{ day = {agents}, night = {agents} }}

[[rule_set]]
id = "r"

[[rule_set.rule]]
name = "défaut"
route = "home"
"#
    );
    let territory = [Departement {
        code: "z",
        population: 1,
    }];
    Arc::new(Plan::from_toml(&toml, &territory).expect("valid plan"))
}

fn erlang_scenario(calls_per_hour: f64, hours: u64, seed: u64) -> Scenario {
    let text = format!(
        r#"
duration = "{hours}h"
seed = {seed}
[demand.zones]
z = {calls_per_hour}
[handling]
distribution = "exponential"
mean_s = 90
patience_mean_s = 0
ring_no_answer = 0
answer_delay_s = 0
"#
    );
    Scenario::parse(&text, Path::new("erlang.toml")).expect("valid scenario")
}

/// One CTA, Poisson arrivals, exponential handling, no abandonment: the simulated probability
/// of waiting and mean wait must match Erlang C.
fn check_erlang(occupancy: f64, calls: f64, tolerance: f64) {
    let agents = 10;
    let load = occupancy * f64::from(agents);
    let per_hour = load / 90.0 * 3600.0;
    let hours = (calls / per_hour).ceil() as u64;
    let scenario = erlang_scenario(per_hour, hours, 7);
    let run = simulate(&scenario, one_cta_plan(agents), &mut |_| {}).expect("runs");
    let h = &run.zones[0].answers;
    let expected_pw = secourir_erlang::probability_of_waiting(agents, load);
    let expected_wait = secourir_erlang::mean_wait(agents, load, 90.0);
    let pw = h.share_waited();
    let wait = h.mean_s();
    eprintln!(
        "occupancy {occupancy}: {} calls, P(wait) {pw:.4} (Erlang C {expected_pw:.4}), mean wait {wait:.2} s (Erlang C {expected_wait:.2} s)",
        h.count()
    );
    assert!(
        (pw - expected_pw).abs() / expected_pw < tolerance,
        "occupancy {occupancy}: P(wait) {pw:.4} vs Erlang C {expected_pw:.4}"
    );
    assert!(
        (wait - expected_wait).abs() / expected_wait < tolerance,
        "occupancy {occupancy}: mean wait {wait:.2} s vs Erlang C {expected_wait:.2} s"
    );
    assert_eq!(run.zones[0].abandoned, 0);
    assert_eq!(run.zones[0].rejected, 0);
}

#[test]
fn matches_erlang_c_at_60_percent() {
    check_erlang(0.60, 200_000.0, 0.04);
}

#[test]
fn matches_erlang_c_at_80_percent() {
    check_erlang(0.80, 300_000.0, 0.04);
}

#[test]
fn matches_erlang_c_at_95_percent() {
    check_erlang(0.95, 4_000_000.0, 0.05);
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let scenario = erlang_scenario(300.0, 48, 3);
    let plan = one_cta_plan(8);
    let a = simulate(&scenario, Arc::clone(&plan), &mut |_| {}).expect("runs");
    let b = simulate(&scenario, Arc::clone(&plan), &mut |_| {}).expect("runs");
    let ra = serde_json::to_string(&report(&a, &plan, &scenario, 0.0)).expect("json");
    let rb = serde_json::to_string(&report(&b, &plan, &scenario, 0.0)).expect("json");
    assert_eq!(ra, rb);
    let other = erlang_scenario(300.0, 48, 4);
    let c = simulate(&other, Arc::clone(&plan), &mut |_| {}).expect("runs");
    let rc = serde_json::to_string(&report(&c, &plan, &other, 0.0)).expect("json");
    assert_ne!(ra, rc, "another seed gives another run");
}

#[test]
fn every_abandoned_call_is_on_a_call_back_list_and_none_is_lost() {
    let text = r#"
duration = "12h"
seed = 11
[demand.zones]
z = 600
[handling]
mean_s = 90
patience_mean_s = 40
"#;
    let scenario = Scenario::parse(text, Path::new("x.toml")).expect("valid");
    let run = simulate(&scenario, one_cta_plan(10), &mut |_| {}).expect("runs");
    let z = &run.zones[0];
    assert!(
        z.abandoned > 100,
        "overloaded on purpose: {} abandoned",
        z.abandoned
    );
    assert_eq!(z.callbacks, z.abandoned);
    // Every call offered is answered, abandoned, rejected, or still live at the end.
    assert!(z.answered + z.abandoned + z.rejected <= z.offered);
    assert!(z.offered - (z.answered + z.abandoned + z.rejected) <= u64::from(z.peak_simultaneous));
}

/// Recorded calls come at their own instants, with their own conversations: one call-taker,
/// three callers a second apart talking 60 s each, the third of whom gave up after 5 s in
/// the recording: the first is answered at once, the second waits for the first to end, the
/// third gives up again; nothing is drawn besides.
#[test]
fn recorded_calls_keep_their_instants_conversations_and_patience() {
    let mut scenario = erlang_scenario(0.0, 1, 7);
    scenario.handling.patience_mean_s = None;
    let call = |offset_ms, talk_ms, patience_ms| RecordedCall {
        offset_ms,
        zone: secourir_config::ZoneId(0),
        talk_ms,
        patience_ms,
    };
    scenario.demand = Demand::Recorded(vec![
        call(0, Some(60_000), None),
        call(1_000, Some(60_000), None),
        call(2_000, None, Some(5_000)),
    ]);
    let run = simulate(&scenario, one_cta_plan(1), &mut |_| {}).expect("runs");
    let report = report(&run, &one_cta_plan(1), &scenario, 0.0);
    assert_eq!(report.national.offered, 3);
    assert_eq!(report.national.answered, 2);
    assert_eq!(report.national.abandoned, 1);
    // The second caller waited for the first conversation to end, about 59 s.
    assert!(
        report.national.answer_p90_s >= 55.0,
        "{:?}",
        report.national
    );
}

//! The shipped crisis scenarios, with the shipped configuration: national mutual aid answers the
//! crisis zones and no other zone pays for it.

use std::path::Path;
use std::sync::Arc;

use secourir_config::{Departement, Plan};
use secourir_sim::Report;
use secourir_territory::Territory;

fn run(name: &str) -> Report {
    run_with(name, None)
}

/// The scenario, with `text_share` of its demand writing instead of calling if given.
fn run_with(name: &str, text_share: Option<f64>) -> Report {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut scenario = secourir_sim::Scenario::load(&root.join(format!("scenarios/{name}.toml")))
        .expect("scenario");
    if let Some(share) = text_share {
        scenario.text = Some(secourir_sim::TextDemand::with_share(share));
    }
    let text = std::fs::read_to_string(root.join("config/france.toml")).expect("config");
    let territory = Territory::france();
    let facts: Vec<Departement<'_>> = territory
        .departements()
        .iter()
        .map(|d| Departement {
            code: &d.code,
            population: d.population,
        })
        .collect();
    let plan = Arc::new(Plan::from_toml(&text, &facts).expect("valid config"));
    let (report, _, _) =
        secourir_sim::run_scenario(&scenario, plan, true, &mut |_| {}).expect("runs");
    report
}

/// The goals of national mutual aid, checked zone by zone so that a failure names the zone.
fn check(name: &str, crisis: &[&str]) {
    check_report(name, &run(name), crisis);
}

fn check_report(name: &str, report: &Report, crisis: &[&str]) {
    assert_eq!(report.crisis_zones, crisis, "{name}");
    let goals = report.goals.clone().expect("baseline compared");
    for zone in &report.zones {
        let baseline = zone.baseline.as_ref().expect("baseline");
        assert_eq!(
            zone.rejected, 0,
            "{name}: zone {} rejected calls",
            zone.zone
        );
        assert_eq!(
            zone.abandoned, zone.callbacks,
            "{name}: zone {}: an abandoned call is not on a call-back list",
            zone.zone
        );
        if report.crisis_zones.contains(&zone.zone) {
            continue;
        }
        assert!(
            zone.answer_p95_s - baseline.answer_p95_s <= 1.0,
            "{name}: zone {}: p95 {} s vs baseline {} s",
            zone.zone,
            zone.answer_p95_s,
            baseline.answer_p95_s
        );
        let fall =
            (baseline.offered_answered_within_15s - zone.offered_answered_within_15s) * 100.0;
        assert!(
            fall <= 1.0,
            "{name}: zone {}: within 15 s of offered {} vs baseline {}",
            zone.zone,
            zone.offered_answered_within_15s,
            baseline.offered_answered_within_15s
        );
    }
    assert!(
        goals.crisis_answered >= 0.85,
        "{name}: crisis zones answered {} of their calls",
        goals.crisis_answered
    );
    // Lendable call-takers left idle while a call waited past its threshold: under a minute of
    // one call-taker's time over the whole day and country.
    assert!(
        goals.lendable_idle_s < 60.0,
        "{name}: {} call-taker-s lendable left idle",
        goals.lendable_idle_s
    );
    assert!(goals.met(), "{name}: {goals:?}");
}

#[test]
fn a_storm_in_the_south_east_is_answered_by_the_country() {
    check("storm-south-east", &["13", "83", "84"]);
    let report = run("storm-south-east");
    for zone in ["13", "83", "84"] {
        let z = report.zones.iter().find(|z| z.zone == zone).expect("zone");
        let baseline = z.baseline.as_ref().expect("baseline");
        assert!(z.offered > baseline.offered * 3, "zone {zone} surged");
        assert!(z.overflow_out > 0, "zone {zone} got no mutual aid");
    }
}

/// One caller in twenty writes (conversations of 5 min on average, against 1.5 for voice): the
/// storm's goals still hold, and text and voice are counted apart.
#[test]
fn a_storm_with_one_caller_in_twenty_writing_meets_the_goals_and_reports_text_apart() {
    let report = run_with("storm-south-east", Some(0.05));
    check_report("storm-south-east with text", &report, &["13", "83", "84"]);
    let by = report.by_medium.as_ref().expect("voice and text apart");
    assert_eq!(by.voice.offered + by.text.offered, report.national.offered);
    assert_eq!(
        by.voice.answered + by.text.answered,
        report.national.answered
    );
    let share = by.text.offered as f64 / report.national.offered as f64;
    assert!((0.04..0.06).contains(&share), "text share {share}");
    assert!(
        by.text.answered as f64 >= 0.95 * by.text.offered as f64,
        "{:?}",
        by.text
    );
    assert_eq!(by.text.abandoned, by.text.callbacks, "{:?}", by.text);
}

#[test]
fn a_night_surge_is_answered_by_the_night_shift_of_the_country() {
    check("night-surge", &["76"]);
}

#[test]
fn a_surge_with_its_cta_evacuated_is_answered_by_the_country() {
    check("evacuated-cta", &["33"]);
}

#[test]
fn a_big_city_surge_that_fills_its_queue_overflows_nationally() {
    check("big-city-surge", &["69"]);
    let report = run("big-city-surge");
    let lyon = report.zones.iter().find(|z| z.zone == "69").expect("69");
    assert!(lyon.overflow_out > 1000, "{lyon:?}");
}

#[test]
fn an_overseas_surge_is_answered_over_ip_by_the_mainland() {
    check("overseas-cyclone", &["974"]);
}

#[test]
fn two_crises_far_apart_are_both_answered() {
    check("two-crises", &["06", "29"]);
}

#[test]
fn a_cta_outage_is_answered_by_the_country() {
    check("cta-outage", &["31"]);
}

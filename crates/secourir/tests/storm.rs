//! The storm in the south-east, with the shipped configuration: the targets of the simulator.

use std::path::Path;
use std::sync::Arc;

use secourir_config::{Departement, Plan};
use secourir_territory::Territory;

#[test]
fn a_storm_in_the_south_east_leaves_the_other_zones_untouched() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let scenario = secourir_sim::Scenario::load(&root.join("scenarios/storm-south-east.toml"))
        .expect("scenario");
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
    assert_eq!(report.surging_zones, vec!["13", "83", "84"]);
    for zone in &report.zones {
        let baseline = zone.baseline.as_ref().expect("baseline");
        assert_eq!(zone.rejected, 0, "zone {} rejected calls", zone.zone);
        if report.surging_zones.contains(&zone.zone) {
            assert!(
                zone.offered > baseline.offered * 3,
                "zone {} surged",
                zone.zone
            );
            assert_eq!(
                zone.abandoned, zone.callbacks,
                "zone {}: an abandoned call is not on a call-back list",
                zone.zone
            );
        } else {
            assert!(
                (zone.answer_p95_s - baseline.answer_p95_s).abs() <= 1.0,
                "zone {}: p95 {} s vs baseline {} s",
                zone.zone,
                zone.answer_p95_s,
                baseline.answer_p95_s
            );
        }
    }
}

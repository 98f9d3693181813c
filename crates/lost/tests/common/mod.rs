//! What the tests and the benchmark share: the shipped national plan, a server over it, and
//! request bodies.

#![allow(dead_code)] // Each test file uses its own part of it.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use secourir_config::{Departement, Plan};
use secourir_lost::Ecrf;
use secourir_territory::Territory;

/// This server's name in the tests.
pub const SOURCE: &str = "ecrf.secourir.example";

/// The shipped national configuration: one CTA per SDIS, the BSPP for 75, 92, 93 and 94.
pub fn france_plan() -> Arc<Plan> {
    let territory = Territory::france();
    let departements: Vec<Departement<'_>> = territory
        .departements()
        .iter()
        .map(|d| Departement {
            code: &d.code,
            population: d.population,
        })
        .collect();
    let text = include_str!("../../../../config/france.toml");
    Arc::new(Plan::from_toml(text, &departements).expect("config/france.toml is valid"))
}

/// A server over the national plan.
pub fn ecrf() -> Ecrf {
    Ecrf::new(
        france_plan(),
        Territory::france(),
        "127.0.0.1:5060".to_owned(),
        SOURCE.to_owned(),
    )
    .expect("valid names")
}

/// A fixed request time.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 10, 30, 0)
        .single()
        .expect("a valid date")
}

/// A findService for a point, with the boundary by reference or by value.
pub fn find_point(service: &str, lat: f64, lon: f64, by_value: bool) -> String {
    let boundary = if by_value { "value" } else { "reference" };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<findService xmlns="urn:ietf:params:xml:ns:lost1" xmlns:p2="http://www.opengis.net/gml" serviceBoundary="{boundary}" recursive="true">
  <location id="6020688f1ce1896d" profile="geodetic-2d">
    <p2:Point id="point1" srsName="urn:ogc:def:crs:EPSG::4326">
      <p2:pos>{lat} {lon}</p2:pos>
    </p2:Point>
  </location>
  <service>{service}</service>
</findService>"#
    )
}

/// A findService for a circle (RFC 5491), whose centre is used.
pub fn find_circle(lat: f64, lon: f64, radius_m: f64) -> String {
    format!(
        r#"<findService xmlns="urn:ietf:params:xml:ns:lost1" xmlns:gml="http://www.opengis.net/gml" xmlns:gs="http://www.opengis.net/pidflo/1.0">
  <location id="circle-1" profile="geodetic-2d">
    <gs:Circle srsName="urn:ogc:def:crs:EPSG::4326">
      <gml:pos>{lat} {lon}</gml:pos>
      <gs:radius uom="urn:ogc:def:uom:EPSG::9001">{radius_m}</gs:radius>
    </gs:Circle>
  </location>
  <service>urn:service:sos.fire</service>
</findService>"#
    )
}

/// A findService for a civic address with these RFC 5139 elements.
pub fn find_civic(fields: &str) -> String {
    format!(
        r#"<findService xmlns="urn:ietf:params:xml:ns:lost1">
  <location id="civic-1" profile="civic">
    <civicAddress xmlns="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr">{fields}</civicAddress>
  </location>
  <service>urn:service:sos.fire</service>
</findService>"#
    )
}

/// The text of the first element or attribute value after `marker` up to `end`.
pub fn between<'a>(body: &'a str, marker: &str, end: &str) -> Option<&'a str> {
    let start = body.find(marker)? + marker.len();
    let stop = body[start..].find(end)? + start;
    Some(&body[start..stop])
}

//! Every kind of answer this server writes, and the requests the tests send, validated against
//! RFC 5222's RELAX NG schema (`tests/schema/lost.rng`, see `SOURCE.md`) with Debian's
//! `xmllint` (package `libxml2-utils`).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{SOURCE, ecrf, find_circle, find_civic, find_point, now};
use secourir_lost::{ErrorKind, Outcome};

/// Validates one document; the error is xmllint's report.
fn validate(document: &[u8]) -> Result<(), String> {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema/lost.rng");
    let mut child = Command::new("xmllint")
        .arg("--noout")
        .arg("--relaxng")
        .arg(&schema)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run xmllint ({e}): install it with `apt-get install -y libxml2-utils`")
        })?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(document)
        .map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn requests() -> Vec<(String, &'static str)> {
    let marseille = find_point("urn:service:sos.fire", 43.2965, 5.3698, false);
    vec![
        (marseille.clone(), "mapping, boundary by reference"),
        (
            find_point("urn:service:sos", 42.6977, 9.4508, true),
            "mapping, boundary by value (Haute-Corse, several polygons)",
        ),
        (
            find_point("urn:service:sos.fire", 46.1591, -1.1520, true),
            "mapping, boundary by value (Charente-Maritime, islands)",
        ),
        (find_circle(41.9192, 8.7386, 850.0), "mapping from a circle"),
        (
            find_civic("<country>FR</country><A3>Marseille</A3><PC>13008</PC>"),
            "mapping from a civic address",
        ),
        (
            marseille.replace(
                "</service>",
                "</service><path><via source=\"esrp.operator.example\"/></path>",
            ),
            "mapping with a path",
        ),
        (
            r#"<listServices xmlns="urn:ietf:params:xml:ns:lost1"><service>urn:service:sos</service></listServices>"#.into(),
            "listServices",
        ),
        (
            r#"<listServicesByLocation xmlns="urn:ietf:params:xml:ns:lost1" xmlns:gml="http://www.opengis.net/gml"><location id="l1" profile="geodetic-2d"><gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>45.764 4.8357</gml:pos></gml:Point></location></listServicesByLocation>"#.into(),
            "listServicesByLocation",
        ),
        (
            r#"<getServiceBoundary xmlns="urn:ietf:params:xml:ns:lost1" key="departement-974"/>"#.into(),
            "getServiceBoundary",
        ),
        ("<<<".into(), "badRequest"),
        (
            marseille.replace("geodetic-2d", "geodetic-3d"),
            "locationProfileUnrecognized",
        ),
        (
            marseille.replace("43.2965 5.3698", "91 5"),
            "locationInvalid",
        ),
        (
            find_point("urn:service:sos.fire", 42.5, 5.0, false),
            "notFound at sea",
        ),
        (
            find_point("urn:service:sos.police", 43.2965, 5.3698, false),
            "notFound for the police",
        ),
        (
            find_point("urn:service:counseling", 43.2965, 5.3698, false),
            "serviceNotImplemented",
        ),
        (
            marseille.replace(
                "</service>",
                &format!("</service><path><via source=\"{SOURCE}\"/></path>"),
            ),
            "loop",
        ),
    ]
}

#[test]
fn every_answer_is_valid_lost() {
    let ecrf = ecrf();
    let mut kinds = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for (request, what) in requests() {
        let response = ecrf.handle_request(request.as_bytes(), now());
        if let Outcome::Error(kind) = response.outcome {
            kinds.insert(kind);
        }
        if let Err(report) = validate(&response.body) {
            failures.push(format!(
                "{what}: {report}\n{}",
                String::from_utf8_lossy(&response.body)
                    .chars()
                    .take(2_000)
                    .collect::<String>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    for kind in [
        ErrorKind::BadRequest,
        ErrorKind::LocationProfileUnrecognized,
        ErrorKind::LocationInvalid,
        ErrorKind::NotFound,
        ErrorKind::ServiceNotImplemented,
        ErrorKind::Loop,
    ] {
        assert!(kinds.contains(&kind), "no answer was a {kind:?}");
    }
}

#[test]
fn every_departement_boundary_is_valid_lost() {
    let ecrf = ecrf();
    let territory = secourir_territory::Territory::france();
    // Simplified outlines, islands and holes: every one of them must still be valid.
    let mut failures = Vec::new();
    for departement in territory.departements() {
        let request = format!(
            r#"<getServiceBoundary xmlns="urn:ietf:params:xml:ns:lost1" key="departement-{}"/>"#,
            departement.code
        );
        let response = ecrf.handle_request(request.as_bytes(), now());
        assert_eq!(response.outcome, Outcome::Boundary, "{}", departement.code);
        if let Err(report) = validate(&response.body) {
            failures.push(format!("{}: {report}", departement.code));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_test_requests_are_valid_lost() {
    for (request, what) in requests() {
        // The one built not to be XML.
        if what == "badRequest" {
            continue;
        }
        if let Err(report) = validate(request.as_bytes()) {
            panic!("request {what}: {report}\n{request}");
        }
    }
}

//! The ECRF over the shipped national plan: mappings for points and addresses, every error, the
//! routing of every commune, and arbitrary bytes.

mod common;

use common::{SOURCE, between, ecrf, find_circle, find_civic, find_point, france_plan, now};
use proptest::prelude::*;
use secourir_lost::{Ecrf, ErrorKind, Outcome, Service};
use secourir_territory::Territory;

fn answer(ecrf: &Ecrf, request: &str) -> (String, Outcome) {
    let response = ecrf.handle_request(request.as_bytes(), now());
    assert_eq!(response.status, 200);
    let body = String::from_utf8(response.body).expect("UTF-8");
    (body, response.outcome)
}

fn error_of(ecrf: &Ecrf, request: &str) -> (ErrorKind, String) {
    let (body, outcome) = answer(ecrf, request);
    match outcome {
        Outcome::Error(kind) => {
            assert!(
                body.contains(&format!(
                    "<errors xmlns=\"urn:ietf:params:xml:ns:lost1\" source=\"{SOURCE}\"><{} ",
                    kind.element()
                )),
                "{body}"
            );
            (kind, body)
        }
        other => panic!("not an error: {other:?}\n{body}"),
    }
}

#[test]
fn marseille_maps_to_cta_13() {
    let ecrf = ecrf();
    let plan = france_plan();
    let (body, outcome) = answer(
        &ecrf,
        &find_point("urn:service:sos.fire", 43.2965, 5.3698, false),
    );
    let cta = plan.cta_id("cta-13").expect("cta-13");
    assert_eq!(
        outcome,
        Outcome::Mapping {
            service: Service::Fire,
            departement: "13".into(),
            cta
        }
    );
    let name = &plan.cta(cta).name;
    let expected = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <findServiceResponse xmlns=\"urn:ietf:params:xml:ns:lost1\">\
         <mapping expires=\"2026-12-07T11:30:00Z\" lastUpdated=\"2026-12-07T10:30:00Z\" source=\"{SOURCE}\" sourceId=\"sos.fire-13\">\
         <displayName xml:lang=\"fr\">{name}</displayName>\
         <service>urn:service:sos.fire</service>\
         <serviceBoundaryReference source=\"{SOURCE}\" key=\"departement-13\"/>\
         <uri>sip:cta-13@127.0.0.1:5060</uri>\
         <serviceNumber>18</serviceNumber>\
         </mapping>\
         <path><via source=\"{SOURCE}\"/></path>\
         <locationUsed id=\"6020688f1ce1896d\"/>\
         </findServiceResponse>"
    );
    assert_eq!(body, expected);
}

#[test]
fn bastia_maps_to_haute_corse() {
    let ecrf = ecrf();
    let plan = france_plan();
    let (body, outcome) = answer(
        &ecrf,
        &find_point("urn:service:sos", 42.6977, 9.4508, false),
    );
    let Outcome::Mapping {
        service,
        departement,
        cta,
    } = outcome
    else {
        panic!("{body}");
    };
    assert_eq!((service, departement.as_str()), (Service::Sos, "2B"));
    assert_eq!(plan.cta(cta).id, "cta-2b");
    assert!(
        body.contains("<uri>sip:cta-2b@127.0.0.1:5060</uri>"),
        "{body}"
    );
    assert!(
        body.contains("<serviceNumber>112</serviceNumber>"),
        "{body}"
    );
    assert!(
        body.contains("<service>urn:service:sos</service>"),
        "{body}"
    );
    assert!(body.contains("Haute-Corse"), "{body}");
}

#[test]
fn a_circle_is_routed_by_its_centre() {
    let ecrf = ecrf();
    // Ajaccio, with an uncertainty of 850 m.
    let (body, outcome) = answer(&ecrf, &find_circle(41.9192, 8.7386, 850.24));
    assert!(
        matches!(&outcome, Outcome::Mapping { departement, .. } if departement == "2A"),
        "{body}"
    );
    assert!(body.contains("<locationUsed id=\"circle-1\"/>"), "{body}");
}

#[test]
fn civic_addresses() {
    let ecrf = ecrf();
    let plan = france_plan();
    let cta_of = |fields: &str| match answer(&ecrf, &find_civic(fields)) {
        (_, Outcome::Mapping { cta, .. }) => plan.cta(cta).id.clone(),
        (body, other) => panic!("{fields}: {other:?}\n{body}"),
    };
    // Postcode and city, as an operator's PIDF-LO gives them.
    assert_eq!(
        cta_of(
            "<country>FR</country><A1>Provence-Alpes-Côte d'Azur</A1><A3>Marseille</A3><RD>Rue Paradis</RD><HNO>12</HNO><PC>13008</PC>"
        ),
        "cta-13"
    );
    // The INSEE code in ADDCODE wins over the rest (Ajaccio).
    assert_eq!(
        cta_of("<ADDCODE>2A004</ADDCODE><A3>Marseille</A3>"),
        "cta-2a"
    );
    // An unknown ADDCODE falls back to the postcode and city.
    assert_eq!(
        cta_of("<ADDCODE>99999</ADDCODE><PC>69001</PC><A3>Lyon</A3>"),
        "cta-69"
    );
    // The city alone, accents and "Saint" folded.
    assert_eq!(cta_of("<A3>saint-etienne</A3>"), "cta-42");
    // Paris is the BSPP's.
    assert_eq!(cta_of("<PC>75011</PC><A3>Paris</A3>"), "bspp");
    // Overseas: Fort-de-France, country MQ.
    assert_eq!(cta_of("<country>MQ</country><PC>97200</PC>"), "cta-972");

    let (kind, _) = error_of(&ecrf, &find_civic("<country>DE</country><A3>Berlin</A3>"));
    assert_eq!(kind, ErrorKind::NotFound);
    let (kind, _) = error_of(&ecrf, &find_civic("<A3>Nulle-Part-sur-Mer</A3>"));
    assert_eq!(kind, ErrorKind::NotFound);
    let (kind, _) = error_of(&ecrf, &find_civic("<RD>Rue Paradis</RD>"));
    assert_eq!(kind, ErrorKind::LocationInvalid);
}

#[test]
fn boundary_by_value_and_by_reference() {
    let ecrf = ecrf();
    let (by_value, _) = answer(
        &ecrf,
        &find_point("urn:service:sos.fire", 43.2965, 5.3698, true),
    );
    assert!(
        by_value.contains("<serviceBoundary profile=\"geodetic-2d\"><gml:Polygon xmlns:gml=\"http://www.opengis.net/gml\" srsName=\"urn:ogc:def:crs:EPSG::4326\"><gml:exterior><gml:LinearRing><gml:posList>"),
        "{by_value}"
    );
    assert!(!by_value.contains("serviceBoundaryReference"));
    // Latitude first: Bouches-du-Rhône lies between 43.1 and 43.95 N, 4.2 and 5.85 E.
    let positions = between(&by_value, "<gml:posList>", "</gml:posList>").expect("a posList");
    let numbers: Vec<f64> = positions
        .split(' ')
        .map(|n| n.parse().expect("a number"))
        .collect();
    assert!(numbers.len() >= 8 && numbers.len().is_multiple_of(2));
    for pair in numbers.chunks_exact(2) {
        assert!(
            (43.0..44.0).contains(&pair[0]) && (4.0..6.0).contains(&pair[1]),
            "{pair:?}"
        );
    }
    assert_eq!(numbers[..2], numbers[numbers.len() - 2..], "closed ring");

    let (by_reference, _) = answer(
        &ecrf,
        &find_point("urn:service:sos.fire", 43.2965, 5.3698, false),
    );
    let key = between(&by_reference, "key=\"", "\"").expect("a key");
    let (boundary, outcome) = answer(
        &ecrf,
        &format!(r#"<getServiceBoundary xmlns="urn:ietf:params:xml:ns:lost1" key="{key}"/>"#),
    );
    assert_eq!(outcome, Outcome::Boundary);
    let polygons = between(&by_value, "<serviceBoundary ", "</serviceBoundary>");
    assert_eq!(
        polygons,
        between(&boundary, "<serviceBoundary ", "</serviceBoundary>")
    );
    assert!(boundary.ends_with(&format!(
        "</serviceBoundary><path><via source=\"{SOURCE}\"/></path></getServiceBoundaryResponse>"
    )));
}

#[test]
fn service_lists() {
    let ecrf = ecrf();
    let (body, outcome) = answer(
        &ecrf,
        r#"<listServices xmlns="urn:ietf:params:xml:ns:lost1"/>"#,
    );
    assert_eq!(outcome, Outcome::ServiceList);
    assert!(body.contains("<serviceList>urn:service:sos urn:service:sos.fire</serviceList>"));
    let (body, _) = answer(
        &ecrf,
        r#"<listServices xmlns="urn:ietf:params:xml:ns:lost1"><service>urn:service:sos</service></listServices>"#,
    );
    assert!(
        body.contains("<serviceList>urn:service:sos.fire</serviceList>"),
        "{body}"
    );

    let by_location = |lat: f64, lon: f64| {
        format!(
            r#"<listServicesByLocation xmlns="urn:ietf:params:xml:ns:lost1" xmlns:gml="http://www.opengis.net/gml" recursive="false">
  <location id="here" profile="geodetic-2d"><gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>{lat} {lon}</gml:pos></gml:Point></location>
  <path><via source="esrp.operator.example"/></path>
</listServicesByLocation>"#
        )
    };
    let (body, outcome) = answer(&ecrf, &by_location(48.8530, 2.3499));
    assert_eq!(outcome, Outcome::ServiceList);
    assert!(
        body.contains("<serviceList>urn:service:sos urn:service:sos.fire</serviceList>"),
        "{body}"
    );
    assert!(body.contains(&format!(
        "<path><via source=\"esrp.operator.example\"/><via source=\"{SOURCE}\"/></path><locationUsed id=\"here\"/>"
    )), "{body}");
    let (kind, _) = error_of(&ecrf, &by_location(42.5, 5.0));
    assert_eq!(kind, ErrorKind::NotFound);
}

#[test]
fn every_error() {
    let ecrf = ecrf();
    let marseille = find_point("urn:service:sos.fire", 43.2965, 5.3698, false);
    let cases: Vec<(String, ErrorKind)> = vec![
        ("not XML at all".into(), ErrorKind::BadRequest),
        ("<findService".into(), ErrorKind::BadRequest),
        (String::new(), ErrorKind::BadRequest),
        (
            marseille.replace("findService", "findServices"),
            ErrorKind::BadRequest,
        ),
        (
            marseille.replace("urn:ietf:params:xml:ns:lost1", "urn:example"),
            ErrorKind::BadRequest,
        ),
        (
            marseille.replace("<service>", "<colour>blue</colour><service>"),
            ErrorKind::BadRequest,
        ),
        (
            marseille.replace("<service>urn:service:sos.fire</service>", ""),
            ErrorKind::BadRequest,
        ),
        (
            marseille.replace("recursive=\"true\"", "recursive=\"maybe\""),
            ErrorKind::BadRequest,
        ),
        (
            marseille.replace("<location id", "<!DOCTYPE x><location id"),
            ErrorKind::BadRequest,
        ),
        (
            marseille.replace("geodetic-2d", "geodetic-3d"),
            ErrorKind::LocationProfileUnrecognized,
        ),
        (
            marseille.replace("43.2965 5.3698", "143.2965 5.3698"),
            ErrorKind::LocationInvalid,
        ),
        (
            find_point("urn:service:sos.fire", 42.5, 5.0, false),
            ErrorKind::NotFound,
        ),
        (
            find_point("urn:service:sos.fire", 40.4168, -3.7038, false),
            ErrorKind::NotFound,
        ),
        (
            find_point("urn:service:sos.ambulance", 43.2965, 5.3698, false),
            ErrorKind::NotFound,
        ),
        (
            find_point("urn:service:sos.police", 43.2965, 5.3698, false),
            ErrorKind::NotFound,
        ),
        (
            r#"<getServiceBoundary xmlns="urn:ietf:params:xml:ns:lost1" key="departement-00"/>"#
                .into(),
            ErrorKind::NotFound,
        ),
        (
            find_point("urn:service:counseling", 43.2965, 5.3698, false),
            ErrorKind::ServiceNotImplemented,
        ),
        (
            find_point("urn:service:sos.marine", 43.2965, 5.3698, false),
            ErrorKind::ServiceNotImplemented,
        ),
        (
            marseille.replace(
                "</service>",
                &format!(
                    "</service><path><via source=\"esrp.example\"/><via source=\"{}\"/></path>",
                    SOURCE.to_uppercase()
                ),
            ),
            ErrorKind::Loop,
        ),
    ];
    for (request, expected) in cases {
        let (kind, body) = error_of(&ecrf, &request);
        assert_eq!(kind, expected, "{request}\n{body}");
    }
    let (_, body) = error_of(&ecrf, &marseille.replace("geodetic-2d", "geodetic-3d"));
    assert!(
        body.contains("unsupportedProfiles=\"geodetic-3d\""),
        "{body}"
    );
}

#[test]
fn the_first_location_understood_is_used() {
    let ecrf = ecrf();
    let request = r#"<findService xmlns="urn:ietf:params:xml:ns:lost1" xmlns:gml="http://www.opengis.net/gml">
  <location id="first" profile="ellipsoid-3d"><x:y xmlns:x="urn:example"/></location>
  <location id="second" profile="geodetic-2d"><gml:Point><gml:pos>42.6977 9.4508</gml:pos></gml:Point></location>
  <service>urn:service:sos</service>
</findService>"#;
    let (body, outcome) = answer(&ecrf, request);
    assert!(matches!(outcome, Outcome::Mapping { .. }), "{body}");
    assert!(body.contains("<locationUsed id=\"second\"/>"), "{body}");
}

#[test]
fn a_departement_the_plan_does_not_serve_is_not_found() {
    let plan = secourir_config::fixtures::one_cta_plan("");
    let ecrf = Ecrf::new(
        plan,
        Territory::france(),
        "sip.example:5060".into(),
        SOURCE.into(),
    )
    .expect("valid names");
    let (_, outcome) = answer(
        &ecrf,
        &find_point("urn:service:sos", 43.2965, 5.3698, false),
    );
    assert!(matches!(outcome, Outcome::Mapping { .. }));
    let (kind, _) = error_of(
        &ecrf,
        &find_point("urn:service:sos", 48.8530, 2.3499, false),
    );
    assert_eq!(kind, ErrorKind::NotFound);
}

#[test]
fn expiry_and_last_update_can_be_set() {
    let at = now() - chrono::TimeDelta::days(3);
    let ecrf = ecrf().with_mapping_ttl_s(0).with_last_updated(at);
    let (body, _) = answer(
        &ecrf,
        &find_point("urn:service:sos", 43.2965, 5.3698, false),
    );
    assert!(
        body.contains("expires=\"NO-CACHE\" lastUpdated=\"2026-12-04T10:30:00Z\""),
        "{body}"
    );
}

/// The answer names, for the point of every commune of France, the CTA the platform routes
/// that commune's département to.
#[test]
fn every_commune_maps_to_the_cta_its_calls_ring() {
    let ecrf = ecrf();
    let plan = france_plan();
    let territory = Territory::france();
    let mut checked = 0;
    for commune in territory.communes() {
        let (Some(lat), Some(lon)) = (commune.lat, commune.lon) else {
            continue;
        };
        let zone = plan
            .zone_id(&commune.departement)
            .expect("the national plan serves every département");
        let expected = plan.home_cta(zone);
        let response = ecrf.handle_request(
            find_point("urn:service:sos.fire", lat, lon, false).as_bytes(),
            now(),
        );
        let body = String::from_utf8(response.body).expect("UTF-8");
        assert_eq!(
            response.outcome,
            Outcome::Mapping {
                service: Service::Fire,
                departement: commune.departement.clone(),
                cta: expected
            },
            "{} {}",
            commune.insee,
            commune.name
        );
        let uri = format!("<uri>sip:{}@127.0.0.1:5060</uri>", plan.cta(expected).id);
        assert!(body.contains(&uri), "{}: {body}", commune.insee);
        checked += 1;
    }
    assert!(checked > 34_000, "{checked}");
}

fn well_formed(body: &[u8]) -> bool {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(quick_xml::events::Event::Eof) => return depth == 0,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Arbitrary bytes: never a panic, always a LoST error in well-formed XML.
    #[test]
    fn arbitrary_bytes_get_a_lost_answer(bytes in proptest::collection::vec(any::<u8>(), 0..2_048)) {
        let ecrf = shared();
        let response = ecrf.handle_request(&bytes, now());
        prop_assert_eq!(response.status, 200);
        prop_assert!(well_formed(&response.body));
        prop_assert!(matches!(response.outcome, Outcome::Error(_)));
    }

    /// Valid requests with bytes changed, inserted or removed: never a panic, always well-formed.
    #[test]
    fn damaged_requests_get_a_lost_answer(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let ecrf = shared();
        let requests = [
            find_point("urn:service:sos.fire", 43.2965, 5.3698, true),
            find_circle(41.9192, 8.7386, 850.0),
            find_civic("<country>FR</country><A3>Marseille</A3><PC>13008</PC>"),
            r#"<getServiceBoundary xmlns="urn:ietf:params:xml:ns:lost1" key="departement-13"/>"#.to_owned(),
        ];
        let mut bytes = requests[which].clone().into_bytes();
        for (index, byte, operation) in edits {
            let at = index.index(bytes.len().max(1)).min(bytes.len());
            match operation {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => { bytes.remove(at); }
                _ => {}
            }
        }
        let response = ecrf.handle_request(&bytes, now());
        prop_assert_eq!(response.status, 200);
        prop_assert!(well_formed(&response.body), "{}", String::from_utf8_lossy(&response.body));
    }

    /// Any point: never a panic; a mapping exactly when the territory places the point.
    #[test]
    fn any_point(lat in -100.0f64..100.0, lon in -200.0f64..200.0) {
        let ecrf = shared();
        let response = ecrf.handle_request(find_point("urn:service:sos", lat, lon, false).as_bytes(), now());
        let located = (-90.0..=90.0).contains(&lat)
            && (-180.0..=180.0).contains(&lon)
            && Territory::france().locate(lat, lon).is_some();
        prop_assert_eq!(matches!(response.outcome, Outcome::Mapping { .. }), located);
    }
}

/// One server for all proptest cases: building it computes every boundary.
fn shared() -> &'static Ecrf {
    static ECRF: std::sync::OnceLock<Ecrf> = std::sync::OnceLock::new();
    ECRF.get_or_init(ecrf)
}

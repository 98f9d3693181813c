//! The messages this crate builds, checked against the official JSON Schemas of the Hub Santé
//! (`ansforge/SAMU-Hub-Modeles` at a pinned commit, kept unchanged under `tests/official/`: see
//! its `SOURCE.md`).
//! The official samples go through the same validator first, so a failure here is ours.

use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, TimeDelta};
use jsonschema::{Registry, Validator};
use secourir_cisu::envelope::{create_case_message, reference_message, wrap};
use secourir_cisu::facts::Commune;
use secourir_cisu::{
    CaseFacts, Channel, Incoming, Kind, Position, PositionSource, Qualification, Route, SendParams,
    Status, parse,
};
use serde_json::{Value, json};

/// Every schema declares the same `$id`; each is registered under its own name instead.
const BASE: &str = "classpath:/json-schema/";

/// The SHA-256 of the `sha256sum` listing of the official files, in `SOURCE.md`'s order: they
/// are the Hub Santé's own, unchanged.
const OFFICIAL_SHA256: &str = "13a0cd6668c36b7cafd12dd0c5d4e322c3d0f42922d40e634289c674b2d31c6f";

fn tools_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/official")
}

#[test]
fn the_official_files_are_the_hub_s_own_unchanged() {
    use sha2::{Digest, Sha256};
    let source = std::fs::read_to_string(tools_dir().join("SOURCE.md")).expect("SOURCE.md");
    let files: Vec<&str> = source
        .lines()
        .filter_map(|l| l.strip_prefix("- `").and_then(|l| l.strip_suffix('`')))
        .collect();
    assert_eq!(files.len(), 32, "{files:?}");
    let mut listing = String::new();
    for file in &files {
        let bytes = std::fs::read(tools_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        listing.push_str(&format!(
            "{}  {file}\n",
            hex::encode(Sha256::digest(&bytes))
        ));
    }
    assert_eq!(
        hex::encode(Sha256::digest(listing.as_bytes())),
        OFFICIAL_SHA256
    );
}

fn read(relative: &str) -> Value {
    let path = tools_dir().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Schemas {
    registry: Registry<'static>,
}

impl Schemas {
    fn load() -> Schemas {
        let dir = tools_dir().join("json-schema");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| {
                entry
                    .expect("a directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(".schema.json"))
            .collect();
        names.sort();
        assert!(names.len() >= 24, "only {names:?} under {}", dir.display());
        let mut registry = Registry::new();
        for name in &names {
            let mut schema = read(&format!("json-schema/{name}"));
            let uri = format!("{BASE}{name}");
            schema["$id"] = Value::String(uri.clone());
            registry = registry.add(uri, schema).expect("a schema registers");
        }
        Schemas {
            registry: registry.prepare().expect("the schemas resolve"),
        }
    }

    fn validator(&self, name: &str) -> Validator {
        jsonschema::options()
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .offline()
            .build(&json!({ "$ref": format!("{BASE}{name}") }))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn errors(&self, name: &str, instance: &Value) -> Vec<String> {
        let validator = self.validator(name);
        validator
            .iter_errors(instance)
            .map(|error| format!("{}: {error}", error.instance_path()))
            .collect()
    }

    fn assert_valid(&self, name: &str, instance: &Value) {
        let errors = self.errors(name, instance);
        assert!(
            errors.is_empty(),
            "{name} refuses:\n{}\n{instance:#}",
            errors.join("\n")
        );
    }
}

const ENVELOPE: &str = "EDXL-DE-full.schema.json";

fn at(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).expect("a test time")
}

fn located() -> CaseFacts {
    CaseFacts {
        call_id: "20260714-000042".into(),
        organisation: "sdis13".into(),
        received_at: at("2026-07-14T12:00:05+02:00"),
        caller_number: "0601020304".into(),
        channel: Channel::Voice,
        call_taker_login: "ota-13-1".into(),
        cta_id: "CTA13".into(),
        commune: Some(Commune {
            insee: "13055".into(),
            name: "Marseille".into(),
        }),
        departement: Some("13".into()),
        position: Some(Position {
            lat: 43.2965,
            lon: 5.3698,
            accuracy_m: Some(12.0),
            source: PositionSource::PidfLo,
        }),
        qualification: Qualification {
            code: "C01.01.05".into(),
            label: "Piéton".into(),
            nomenclature_version: "1.3.1".into(),
        },
        note: Some("Piéton renversé rue de Rome, conscient.".into()),
    }
}

fn send(kind: Kind, n: u32) -> (Route, SendParams) {
    let sent_at = at("2026-07-14T12:03:00+02:00") + TimeDelta::minutes(i64::from(n));
    let route = Route {
        sender_id: "fr.fire.secourir.sdis13".into(),
        recipient_id: "fr.health.samu13".into(),
    };
    let params = SendParams {
        local_id: format!("20260714-000042-{n}"),
        sent_at,
        expires_at: sent_at + TimeDelta::hours(1),
        kind,
        status: Status::Exercise,
    };
    (route, params)
}

fn body(facts: &CaseFacts, kind: Kind, n: u32) -> Value {
    let (route, params) = send(kind, n);
    let shared_at = at("2026-07-14T12:03:00+02:00");
    let out = create_case_message(&route, &params, facts, &shared_at).expect("the message builds");
    serde_json::from_slice(&out.body).expect("the body is JSON")
}

#[test]
fn a_located_call_is_valid() {
    Schemas::load().assert_valid(ENVELOPE, &body(&located(), Kind::Report, 1));
}

#[test]
fn a_call_with_the_default_position_is_valid() {
    let mut facts = located();
    facts.commune = None;
    facts.position = Some(Position {
        lat: 46.6,
        lon: 2.4,
        accuracy_m: None,
        source: PositionSource::Default,
    });
    facts.channel = Channel::Text;
    Schemas::load().assert_valid(ENVELOPE, &body(&facts, Kind::Report, 1));
}

#[test]
fn an_update_is_valid() {
    let mut facts = located();
    facts.note = Some("Second piéton blessé, SMUR demandé.".into());
    facts.position = Some(Position {
        lat: 43.2967,
        lon: 5.3701,
        accuracy_m: Some(400.0),
        source: PositionSource::Aml,
    });
    let update = body(&facts, Kind::Update, 2);
    assert_eq!(update["distributionKind"], "Update");
    Schemas::load().assert_valid(ENVELOPE, &update);
}

#[test]
fn a_corsican_unlocated_call_without_note_is_valid() {
    let mut facts = located();
    facts.commune = Some(Commune {
        insee: "2A004".into(),
        name: "Ajaccio".into(),
    });
    facts.departement = Some("2A".into());
    facts.position = None;
    facts.note = None;
    Schemas::load().assert_valid(ENVELOPE, &body(&facts, Kind::Report, 1));
}

#[test]
fn our_acknowledgement_is_valid() {
    let (route, params) = send(Kind::Ack, 3);
    let out = reference_message(&route, &params, "fr.health.samu13_abc-1").expect("builds");
    let ack: Value = serde_json::from_slice(&out.body).expect("JSON");
    Schemas::load().assert_valid(ENVELOPE, &ack);
}

#[test]
fn the_official_samples_are_valid_and_read() {
    let schemas = Schemas::load();
    let envelope = read("sample/valid/RC-EDA/RC-EDA.json");
    schemas.assert_valid(ENVELOPE, &envelope);
    let received = parse(envelope.to_string().as_bytes()).expect("the sample parses");
    let Incoming::CreateCase(case) = received.message else {
        panic!("{received:?}")
    };
    assert_eq!(case.case_id, "fr.health.samu690.DRFR15690240430050");
    assert_eq!(case.whats_happen.0, "C01.01.04");

    for name in [
        "RC-EDA-DouleurThoracique-PierreLegrand.json",
        "RC-EDA-FemmeEnceinte-DelphineVigneau.01.json",
        "RC-EDA-FuiteDeGaz-AliceGregoireNormand.01.json",
        "RC-EDA_Incendie_RaymondeLECCIA.01.json",
    ] {
        let sample = read(&format!("sample/examples/RC-EDA/{name}"));
        schemas.assert_valid("RC-EDA.schema.json", &sample["createCase"]);
    }

    let (route, params) = send(Kind::Ack, 4);
    let reference = read("sample/examples/RC-REF/RC-REF.json");
    schemas.assert_valid("RC-REF.schema.json", &reference["reference"]);
    let out = wrap(&route, &params, "reference", reference["reference"].clone()).expect("wraps");
    let Incoming::Reference(reference) = parse(&out.body).expect("parses").message else {
        panic!("not a reference")
    };
    assert_eq!(
        reference.distribution_id,
        "fr.health.samuB_2607723d-507d-4cbf-bf74-12345f7064cd"
    );

    let (route, params) = send(Kind::Error, 5);
    let error = read("sample/examples/RS-ERROR/RS-ERROR.json");
    schemas.assert_valid("RS-ERROR.schema.json", &error["error"]);
    let out = wrap(&route, &params, "error", error["error"].clone()).expect("wraps");
    let Incoming::Error(error) = parse(&out.body).expect("parses").message else {
        panic!("not an error")
    };
    assert_eq!(error.status, "DELIVERY_MODE_INCONSISTENCY");
    assert_eq!(error.status_code, 100);
}

#[test]
fn broken_messages_are_refused() {
    let schemas = Schemas::load();
    let broken = read("sample/failing/EDXL-DE/error-in-envelope.json");
    let errors = schemas.errors(ENVELOPE, &broken);
    assert!(
        errors.iter().any(|e| e.contains("dateTimeSent")),
        "{errors:#?}"
    );

    let good = body(&located(), Kind::Report, 1);
    let case = "/content/0/jsonContent/embeddedJsonContent/message/createCase";
    let mut no_case_id = good.clone();
    no_case_id
        .pointer_mut(case)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("caseId");
    assert!(
        !schemas.errors(ENVELOPE, &no_case_id).is_empty(),
        "caseId is required"
    );

    let mut bad_precision = good.clone();
    *bad_precision
        .pointer_mut(&format!("{case}/location/geometry/point/coord/precision"))
        .unwrap() = json!("PRECISE");
    assert!(
        !schemas.errors(ENVELOPE, &bad_precision).is_empty(),
        "precision is an enum"
    );

    let mut stray = good.clone();
    stray.pointer_mut(&format!("{case}/location")).unwrap()["departement"] = json!("13");
    assert!(
        !schemas.errors(ENVELOPE, &stray).is_empty(),
        "location takes no extra field"
    );

    let mut zulu = good;
    zulu["content"][0]["jsonContent"]["embeddedJsonContent"]["message"]["sentAt"] =
        json!("2026-07-14T10:03:00Z");
    assert!(
        !schemas.errors(ENVELOPE, &zulu).is_empty(),
        "RC-DE refuses the Z designator"
    );
}

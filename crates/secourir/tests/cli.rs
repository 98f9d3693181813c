//! The `secourir` command as a user runs it.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::cisu_validator;

fn secourir() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_secourir"));
    command.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    command
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = secourir().args(args).output().expect("secourir runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn locate_prints_one_json_object() {
    let (code, out, _) = run(&["locate", "--lat", "43.2965", "--lon", "5.3698"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "{\"departement\":\"13\",\"insee\":\"13055\",\"commune\":\"Marseille\"}\n"
    );
    let (_, out, _) = run(&["locate", "--lat", "48.1173", "--lon", "-1.6778"]);
    assert_eq!(
        out,
        "{\"departement\":\"35\",\"insee\":\"35238\",\"commune\":\"Rennes\"}\n"
    );
    let (_, out, _) = run(&["locate", "--lat", "42.5", "--lon", "5.0"]);
    assert_eq!(
        out,
        "{\"departement\":null,\"insee\":null,\"commune\":null}\n"
    );
}

#[test]
fn locate_reads_pidf_lo_and_aml() {
    let (code, out, _) = run(&["locate", "--pidf", "examples/pidf-marseille.xml"]);
    assert_eq!(code, 0);
    assert!(out.contains("\"insee\":\"13055\""), "{out}");
    let (code, out, _) = run(&[
        "locate",
        "--aml",
        "A\"ML=1;lt=+45.76400;lg=+4.83570;rd=12;top=20261122143000;lc=68;pm=G;mcc=208;mnc=15",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("\"insee\":\"69123\""), "{out}");
    let (code, _, err) = run(&["locate", "--aml", "A\"ML=1;lt=400;lg=5"]);
    assert_eq!(code, 1);
    assert!(err.contains("bad coordinates"), "{err}");
    let (code, out, _) = run(&[
        "locate",
        "--aml",
        "location_latitude=45.764&location_longitude=4.8357&location_accuracy=12",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("\"insee\":\"69123\""), "{out}");
}

#[test]
fn locate_refuses_a_point_off_the_earth() {
    let (code, out, err) = run(&["locate", "--lat", "400", "--lon", "5"]);
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("not a point on Earth"), "{err}");
}

#[test]
fn locate_csv_streams_lines() {
    let mut child = secourir()
        .args(["locate", "--csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"43.2965,5.3698\n42.5,5.0\n")
        .expect("write");
    let out = child.wait_with_output().expect("output");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "43.2965,5.3698,13,13055\n42.5,5.0,,\n"
    );
}

#[test]
fn check_config_accepts_the_shipped_file_and_names_the_line_of_a_bad_one() {
    let (code, out, _) = run(&["check-config", "config/france.toml"]);
    assert_eq!(code, 0, "{out}");
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/france.toml"
    ))
    .expect("shipped");
    let bad = shipped.replacen("partners = [\"cta-83\"", "partners = [\"cta-99\"", 1);
    assert_ne!(bad, shipped);
    let line = bad
        .lines()
        .position(|l| l.contains("cta-99"))
        .expect("line")
        + 1;
    let dir = std::env::temp_dir().join(format!("secourir-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.toml");
    std::fs::write(&path, bad).expect("write");
    let (code, _, err) = run(&["check-config", path.to_str().expect("utf8")]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("bad.toml:{line}:")), "{err}");
    assert!(err.contains("unknown queue \"cta-99\""), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_shipped_configuration_is_the_generated_one() {
    let (code, generated, _) = run(&["generate-config"]);
    assert_eq!(code, 0);
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/france.toml"
    ))
    .expect("shipped");
    assert!(
        generated == shipped,
        "config/france.toml differs from `secourir generate-config`: regenerate it"
    );
}

#[test]
fn cisu_prints_the_case_of_a_recorded_call_as_the_hub_schemas_want_it() {
    use secourir_store::{Store, Write};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("var");
    let mut store = Store::open(&data).expect("the store opens");
    store
        .apply(&[
            Write::Offered {
                call: 7,
                emergency_call_id: "urn:emergency:uid:callid:7:test".into(),
                caller: Some("0601020304".into()),
                service: "urn:service:sos.fire".into(),
                at: 1_784_023_205_000,
                lat: Some(43.2965.into()),
                lon: Some(5.3698.into()),
                radius_m: Some(50.0),
                location_source: "pidf-lo".into(),
                departement: "13".into(),
                commune: Some("Marseille".into()),
                insee: Some("13055".into()),
                trunk: None,
            },
            Write::Answered {
                call: 7,
                cta: "cta-13".into(),
                call_taker: "ota-13-1".into(),
                at: 1_784_023_210_000,
            },
        ])
        .expect("the call is written");
    drop(store);
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/france.toml"
    ))
    .expect("the shipped configuration");
    let config = dir.path().join("france.toml");
    std::fs::write(
        &config,
        format!(
            "{shipped}\n[[partner_service]]\nservice = \"15\"\nuri = \"sip:15@samu13.example\"\nhub_id = \"fr.health.samu13\"\n\n[hub]\nurl = \"amqp://127.0.0.1:5672/%2f\"\nclient_id = \"fr.fire.secourir.sdis13\"\n"
        ),
    )
    .expect("the configuration is written");
    let (data, config) = (
        data.to_str().expect("utf-8"),
        config.to_str().expect("utf-8"),
    );

    let (code, out, err) = run(&["cisu", "7", "--data-dir", data, "--config", config]);
    assert_eq!(code, 0, "{err}");
    let message: serde_json::Value = serde_json::from_str(&out).expect("the output is JSON");
    let errors: Vec<String> = cisu_validator()
        .iter_errors(&message)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}\n{message:#}", errors.join("\n"));
    assert_eq!(message["distributionID"], "fr.fire.secourir.sdis13_7-15-1");
    assert_eq!(
        message["descriptor"]["explicitAddress"]["explicitAddressValue"],
        "fr.health.samu13"
    );
    let case =
        &message["content"][0]["jsonContent"]["embeddedJsonContent"]["message"]["createCase"];
    assert_eq!(case["caseId"], "fr.fire.sdis13.7");
    assert_eq!(case["location"]["city"]["inseeCode"], "13055");
    assert_eq!(
        case["initialAlert"]["reception"],
        "2026-07-14T12:00:05+02:00"
    );

    let (code, _, err) = run(&["cisu", "8", "--data-dir", data, "--config", config]);
    assert_eq!(code, 2);
    assert!(err.contains("call 8 is not in the store"), "{err}");
    let (code, _, err) = run(&["cisu", "7", "--data-dir", data]);
    assert_eq!(code, 2);
    assert!(err.contains("no [hub] table"), "{err}");
}

//! The `secourir` command as a user runs it.

use std::io::Write;
use std::process::{Command, Stdio};

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

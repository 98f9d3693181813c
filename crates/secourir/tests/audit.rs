//! The signed, chained audit trail and the LoST server, as a user meets them: a routing proxy
//! asks which CTA serves Marseille, a caller is answered and recorded, the call's events are
//! read from the API, `secourir audit verify` finds the log whole, and names the first event
//! of a copy changed in one byte, one with an event removed, and one with two swapped.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const RNG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../lost/tests/schema/lost.rng");

/// `secourir audit verify --data-dir DIR`: its exit code and what it printed.
fn verify(data_dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_secourir"))
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("secourir runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A copy of the trail of `from` whose log's lines went through `change`.
fn tampered(from: &Path, change: impl FnOnce(&mut Vec<String>)) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("dir");
    let audit = copy.path().join("audit");
    std::fs::create_dir(&audit).expect("audit dir");
    std::fs::copy(from.join("audit/key.jwk"), audit.join("key.jwk")).expect("key");
    let text = std::fs::read_to_string(from.join("audit/events.log")).expect("log");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    change(&mut lines);
    std::fs::write(audit.join("events.log"), lines.join("\n") + "\n").expect("write");
    copy
}

#[test]
fn a_call_and_a_lost_query_are_signed_chained_and_any_change_is_named() {
    let mut platform = Platform::start();

    // A routing proxy asks which CTA serves a point in Marseille: CTA 13's queue here.
    let request = r#"<?xml version="1.0" encoding="UTF-8"?>
<findService xmlns="urn:ietf:params:xml:ns:lost1" xmlns:p2="http://www.opengis.net/gml" serviceBoundary="reference" recursive="true">
  <location id="l1" profile="geodetic-2d">
    <p2:Point id="point1" srsName="urn:ogc:def:crs:EPSG::4326"><p2:pos>43.2965 5.3698</p2:pos></p2:Point>
  </location>
  <service>urn:service:sos.fire</service>
</findService>"#;
    let mut answer = ureq::post(&platform.url("/lost"))
        .header("Content-Type", "application/lost+xml")
        .send(request)
        .expect("LoST answers");
    assert_eq!(answer.status().as_u16(), 200);
    let body = answer.body_mut().read_to_string().expect("body");
    let queue = format!("sip:cta-13@127.0.0.1:{}", platform.sip);
    assert!(body.contains(&format!("<uri>{queue}</uri>")), "{body}");
    assert!(body.contains("<serviceNumber>18</serviceNumber>"), "{body}");
    let file = platform.dir.path().join("lost-answer.xml");
    std::fs::write(&file, &body).expect("write");
    let checked = Command::new("xmllint")
        .args(["--noout", "--relaxng", RNG])
        .arg(&file)
        .output()
        .expect("xmllint runs (scripts/setup installs libxml2-utils)");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );

    // A caller from the same point is answered by CTA 13, recorded, and hangs up.
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let _answering = Reaped(platform.call_taker("ota-13-1", phone, 1));
    platform.set_state("ota-13-1", "available");
    let caller = platform.caller("0611111111", 43.2965, 5.3698, 2_000);
    wait_ok(caller, "the caller");
    let call = platform.wait_call("the call recorded", |c| c["recording_sha256"].is_string());
    assert_eq!(call["cta"], "cta-13");
    let id = call["call"].as_u64().expect("number");

    // The call's events, from the API, in order, its recording sealed with its hash.
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = platform.get(&format!("/api/calls/{id}/log"));
        let types: Vec<String> = events
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["event"]["logEventType"].as_str().unwrap_or("").to_owned())
            .collect();
        if types.iter().any(|t| t == "RecCallEndLogEvent") {
            break events;
        }
        assert!(Instant::now() < deadline, "no sealed recording: {types:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let events: Vec<&Value> = events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| &e["event"])
        .collect();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["logEventType"].as_str().expect("type"))
        .collect();
    assert_eq!(types.first(), Some(&"CallStartLogEvent"), "{types:?}");
    for wanted in [
        "RouteLogEvent",
        "CallStateChangeLogEvent",
        "CallEndLogEvent",
    ] {
        assert!(types.contains(&wanted), "{wanted} missing: {types:?}");
    }
    let sealed = events
        .iter()
        .find(|e| e["logEventType"] == "RecCallEndLogEvent")
        .expect("sealed");
    assert_eq!(sealed["sha256"], call["recording_sha256"]);
    let answered = events
        .iter()
        .find(|e| e["state"] == "answered")
        .expect("answered");
    assert_eq!(answered["agencyAgentId"], "ota-13-1");
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // Stopped, the whole trail verifies: the start's configuration, the LoST query, the call.
    platform.terminate();
    let data = platform.dir.path();
    let (code, out) = verify(data);
    assert_eq!(code, 0, "{out}");
    for kind in [
        "ConfigurationChangeLogEvent",
        "LostQueryLogEvent",
        "LostResponseLogEvent",
        "CallStartLogEvent",
        "RecCallEndLogEvent",
    ] {
        assert!(out.contains(kind), "{kind} not counted: {out}");
    }

    // One byte changed in the third event: named, as changed.
    let changed = tampered(data, |lines| {
        let mut bytes = lines[2].clone().into_bytes();
        let middle = bytes.len() / 2;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        lines[2] = String::from_utf8(bytes).expect("ascii");
    });
    let (code, out) = verify(changed.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 3") && out.contains("Changed"), "{out}");

    // The fourth event removed: named at the line where the gap is.
    let removed = tampered(data, |lines| {
        lines.remove(3);
    });
    let (code, out) = verify(removed.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 4") && out.contains("Removed"), "{out}");

    // The second and third swapped.
    let swapped = tampered(data, |lines| lines.swap(1, 2));
    let (code, out) = verify(swapped.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 2") && out.contains("Reordered"), "{out}");
}

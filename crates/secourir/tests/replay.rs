//! The journal of the core's inputs replays a run of the platform exactly: every call's
//! outcome, CTA and call-taker come out of the replay as the platform recorded them.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn replay(journal: &std::path::Path, out: &std::path::Path) -> (String, Value) {
    replay_with(journal, out, &[])
}

fn replay_with(
    journal: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> (String, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_secourir"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .arg("replay")
        .arg(journal)
        .arg("--json")
        .arg(out)
        .args(extra)
        .output()
        .expect("secourir replay runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = serde_json::from_str(&std::fs::read_to_string(out).expect("json")).expect("json");
    (text, json)
}

/// Two answered calls, one abandoned in the queue, then a stop: the replay of the journal gives
/// every call the outcome, CTA and call-taker of its record, and two replays the same digest.
#[test]
fn a_journal_replays_the_platforms_calls_exactly() {
    let mut platform = Platform::start();
    let mut phones = Vec::new();
    for login in ["ota-13-1", "ota-13-2"] {
        let phone = free_port();
        platform.register(login, phone);
        phones.push(platform.call_taker(login, phone, 1));
        platform.set_state(login, "available");
    }
    // Each caller stays a few seconds once answered; both call-takers answer one call each.
    let first = platform.caller("0611111111", 43.2965, 5.3698, 4_000);
    let second = platform.caller("0622222222", 43.2965, 5.3698, 4_000);
    wait_ok(first, "first caller");
    wait_ok(second, "second caller");
    for phone in phones {
        wait_ok(phone, "call-taker");
    }
    for login in ["ota-13-1", "ota-13-2"] {
        platform.set_state(login, "paused");
    }
    wait_ok(
        platform.caller("0633333333", 43.2965, 5.3698, 1_000),
        "caller who gives up",
    );
    platform.wait_call("the abandoned call", |c| {
        c["caller"] == "0633333333" && c["outcome"] == "abandoned"
    });
    let records = platform.calls();
    assert_eq!(records.len(), 3, "{records:?}");
    assert!(platform.terminate().success());

    let journals: Vec<_> = std::fs::read_dir(platform.dir.path().join("journal"))
        .expect("journal directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert_eq!(journals.len(), 1, "{journals:?}");
    let (text, replayed) = replay(&journals[0], &platform.dir.path().join("replay.json"));
    assert!(
        text.contains("3 offered, 2 answered") && text.contains("1 abandoned"),
        "{text}"
    );
    let calls = replayed["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 3, "{replayed}");
    for record in &records {
        let call = calls
            .iter()
            .find(|c| c["call"] == record["call"])
            .unwrap_or_else(|| panic!("call {} not replayed: {replayed}", record["call"]));
        assert_eq!(call["outcome"], record["outcome"], "{call} vs {record}");
        assert_eq!(call["cta"], record["cta"], "{call} vs {record}");
        assert_eq!(
            call["call_taker"], record["call_taker"],
            "{call} vs {record}"
        );
    }
    let (_, again) = replay(&journals[0], &platform.dir.path().join("again.json"));
    assert_eq!(again["sha256"], replayed["sha256"]);
    assert_eq!(replayed["torn_tail"], false);

    // What if the country had room for one call per zone (every share guaranteed, no pool):
    // the same inputs, another plan.
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/france.toml"
    ))
    .expect("the shipped configuration");
    let narrow: Vec<&str> = shipped
        .lines()
        .map(|l| {
            if l.starts_with("capacity = ") {
                "capacity = 101"
            } else {
                l
            }
        })
        .collect();
    let with = platform.dir.path().join("narrow.toml");
    std::fs::write(&with, narrow.join("\n")).expect("config written");
    let (text, what_if) = replay_with(
        &journals[0],
        &platform.dir.path().join("what-if.json"),
        &["--with", with.to_str().unwrap()],
    );
    assert!(text.contains("replayed with the configuration"), "{text}");
    assert_ne!(what_if["sha256"], replayed["sha256"]);
    let rejected = what_if["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|c| c["outcome"] == "rejected")
        .count();
    assert!(
        rejected > 0,
        "one call at a time, yet none refused: {what_if}"
    );
}

//! The journal of the core's inputs replays a run of the platform exactly: every call's
//! outcome, CTA and call-taker come out of the replay as the platform recorded them.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

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
    let out_arg = out.to_str().expect("a UTF-8 path");
    let mut args = vec!["--json", out_arg];
    args.extend_from_slice(extra);
    let text = replay_text(journal, &args);
    let json = serde_json::from_str(&std::fs::read_to_string(out).expect("json")).expect("json");
    (text, json)
}

/// What `secourir replay JOURNAL ARGS` prints; it must succeed.
fn replay_text(journal: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_secourir"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .arg("replay")
        .arg(journal)
        .args(args)
        .output()
        .expect("secourir replay runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
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
    let with = shipped_with_line(
        platform.dir.path(),
        "narrow.toml",
        "capacity = ",
        "capacity = 101",
    );
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

    // The same three calls, answered by the simulator's call-takers as the recording's
    // configuration staffs the country: the two who waited are answered, the one who gave up
    // after a second gives up again; with room for one call per zone, a caller who calls
    // while another talks is refused.
    let text = replay_text(
        &journals[0],
        &["--model", "--with", with.to_str().expect("a UTF-8 path")],
    );
    let national: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("national"))
        .collect();
    assert_eq!(national.len(), 2, "{text}");
    let count = |line: &str, what: &str| -> u64 {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| w.trim_end_matches(',') == what)
            .unwrap_or_else(|| panic!("no {what} in {line}"));
        words[at - 1].parse().expect("a count")
    };
    assert_eq!(count(national[0], "offered"), 3, "{text}");
    assert_eq!(count(national[0], "answered"), 2, "{text}");
    assert_eq!(count(national[0], "abandoned"), 1, "{text}");
    assert_eq!(count(national[1], "offered"), 3, "{text}");
    assert!(count(national[1], "refused") >= 1, "{text}");
    assert!(count(national[1], "answered") < 2, "{text}");
}

/// Waits until the platform's log says `text`.
fn wait_log(platform: &Platform, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !platform.full_log().contains(text) {
        assert!(
            Instant::now() < deadline,
            "never said {text:?}\n{}",
            platform.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A CTA evacuated at night: the supervisor routes its calls to a neighbour by editing the
/// configuration and sending SIGHUP. The next call goes there with nothing restarted; a
/// broken file or one that changes the accounts is refused with its reason and changes
/// nothing; the journal replays the change at its place.
#[test]
fn a_configuration_taken_on_sighup_reroutes_the_next_call_and_replays() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("france.toml");
    let shipped = shipped_with_rule("");
    std::fs::write(&config, &shipped).expect("config");
    let mut platform = Platform::with_config(&config);
    let mut phones = Vec::new();
    for login in ["ota-13-1", "ota-13-2", "ota-83-1"] {
        let phone = free_port();
        platform.register(login, phone);
        phones.push(Reaped(platform.call_taker(login, phone, 1)));
        platform.set_state(login, "available");
    }
    let health = platform.get("/api/health");
    let first_sha = health["config"]["sha256"].clone();
    assert_eq!(health["config"]["changes"], 0, "{health}");
    let answered = |number: &str| {
        wait_ok(platform.caller(number, 43.2965, 5.3698, 1_000), number);
        platform.wait_call(number, |c| {
            c["caller"] == number && c["outcome"].is_string()
        })
    };
    let before = answered("0611111111");
    assert_eq!(before["cta"], "cta-13", "{before}");

    // A file that does not read: refused with its line, the configuration in force stays.
    std::fs::write(
        &config,
        shipped_with_rule("[[rule_set.rule]]\nname = \"faux\"\nroute = [\"cta-99\"]\n"),
    )
    .expect("config");
    platform.hang_up();
    wait_log(&platform, "configuration refused");
    assert!(platform.full_log().contains("cta-99"), "{}", platform.log());
    // One that changes the accounts needs a restart: refused too.
    std::fs::write(
        &config,
        shipped.replacen("login = \"ota-bspp-2\"", "login = \"ota-x\"", 1),
    )
    .expect("config");
    platform.hang_up();
    wait_log(&platform, "the accounts changed");
    assert_eq!(platform.get("/api/health")["config"]["changes"], 0);

    // CTA 13 evacuated: its calls go to CTA 83.
    std::fs::write(&config, shipped_with_rule(EVACUATE_13)).expect("config");
    platform.hang_up();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = platform.get("/api/health");
        if health["config"]["changes"] == 1 {
            assert_ne!(health["config"]["sha256"], first_sha);
            break;
        }
        assert!(Instant::now() < deadline, "{health}\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = answered("0622222222");
    assert_eq!(after["cta"], "cta-83", "{after}");
    assert_eq!(after["call_taker"], "ota-83-1", "{after}");
    // The new rule is the sixth of the set (the catch-all now comes after it).
    let trail = platform.trail(&after["call"]);
    assert!(trail.iter().any(|s| s == "règle 5"), "{trail:?}");
    assert!(platform.terminate().success());
    drop(phones);

    let journals: Vec<_> = std::fs::read_dir(platform.dir.path().join("journal"))
        .expect("journal directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    let (_, replayed) = replay(&journals[0], &platform.dir.path().join("replay.json"));
    for record in [&before, &after] {
        let call = replayed["calls"]
            .as_array()
            .expect("calls")
            .iter()
            .find(|c| c["call"] == record["call"])
            .unwrap_or_else(|| panic!("call {} not replayed: {replayed}", record["call"]));
        assert_eq!(call["cta"], record["cta"], "{call} vs {record}");
        assert_eq!(
            call["call_taker"], record["call_taker"],
            "{call} vs {record}"
        );
    }
}

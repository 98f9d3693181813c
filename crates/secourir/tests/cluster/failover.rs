//! A node or a NATS server killed, under load or not: no record lost, every caller called back.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;
use crate::nats::NatsCluster;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[test]
fn a_killed_node_s_callers_land_on_the_survivor_s_call_back_list_and_new_calls_are_answered() {
    let nats = NatsCluster::start();
    let urls = nats.urls();
    let mut a = Platform::node(&urls, "node-a", "site-paris", &[]);
    let b = Platform::node(&urls, "node-b", "site-lyon", &[]);
    let port = free_port();
    b.register("ota-13-1", port);
    let phone = Reaped(b.phone("ota-13-1", port, 10));
    b.set_state("ota-13-1", "available");

    // Before the kill: a call held by node A, answered, completed and recorded.
    let before = a.caller("0600000001", 43.2965, 5.3698, 1_000);
    wait_ok(before, "the caller before the kill");
    let answered = wait_call_on(&b, "the call before the kill, on node B", |c| {
        c["caller"] == "0600000001" && c["outcome"] == "completed"
    });
    let recorded = wait_call_on(&a, "its recording on node A", |c| {
        c["caller"] == "0600000001" && c["recording_sha256"].is_string()
    });

    // Callers queued on node A while the call-taker is away.
    b.set_state("ota-13-1", "paused");
    let queued: Vec<String> = (2..=5).map(|i| format!("060000000{i}")).collect();
    let _callers: Vec<Reaped> = queued
        .iter()
        .map(|n| Reaped(a.caller_until_hung_up(n, 43.2965, 5.3698)))
        .collect();
    for number in &queued {
        wait_call_on(&b, "a caller queued on node A, seen on node B", |c| {
            c["caller"] == number.as_str() && c["queued_at"].is_i64()
        });
    }

    // Node A dies. The call-taker comes back, and new calls go to node B.
    a.kill();
    let killed_at = now_ms();
    b.set_state("ota-13-1", "available");
    let after = b.caller("0600000009", 43.2965, 5.3698, 5_000);
    wait_ok(after, "the caller on the survivor");
    let next = wait_call_on(&b, "the first call after the kill answered", |c| {
        c["caller"] == "0600000009" && c["answered_at"].is_i64()
    });
    let answered_after = next["answered_at"].as_i64().unwrap() - killed_at;
    println!("node A killed: next call answered on node B {answered_after} ms later");

    // Every caller queued on node A is on node B's call-back list, with their number.
    wait_call_backs(&b, "node A's queued callers on node B's list", |l| {
        queued
            .iter()
            .all(|n| l.iter().any(|c| c["caller"] == n.as_str()))
    });
    // The records written before the kill are all there, on the survivor too.
    let still = wait_call_on(&b, "the call before the kill, after it", |c| {
        c["call"] == answered["call"]
    });
    assert_eq!(still["outcome"], "completed");
    // Its recording too: the survivor has its own copy, with the same SHA-256.
    let copied = wait_call_on(&b, "the recording before the kill, on the survivor", |c| {
        c["call"] == answered["call"] && c["recording_sha256"].is_string()
    });
    assert_eq!(copied["recording_sha256"], recorded["recording_sha256"]);
    let copy = copied["recording_path"].as_str().unwrap();
    assert!(
        copy.starts_with(&b.dir.path().display().to_string()),
        "{copy}"
    );
    assert!(std::path::Path::new(copy).exists(), "{copy}");
    drop(phone);
}

/// The slot node's call numbers end with, as its log says.
fn slot_of(node: &Platform) -> u64 {
    let log = node.full_log();
    let line = log
        .lines()
        .find(|l| l.contains("cluster joined"))
        .expect("the node joined its cluster");
    let slot = line.split("slot=").nth(1).expect("a slot");
    slot.split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("a slot number")
}

/// The stream's leader among the NATS servers, `n0` to `n2`.
fn log_leader(urls: &str) -> String {
    on_log(urls, async |log| {
        log.leader()
            .await
            .expect("stream info")
            .0
            .expect("a leader")
    })
}

/// What one run under load measured.
#[derive(Debug, Default)]
struct Run {
    /// Calls on node A's records just before its death.
    on_record: usize,
    /// Calls node A held that were open when it died, as the survivor saw them.
    open_at_death: usize,
    /// Calls node A had on record before its death, missing from the survivor's records.
    lost: usize,
    /// Calls of node A open at its death that the survivor did not close.
    left_open: usize,
    /// Of those closed unanswered, the ones missing from the call-back list.
    not_called_back: usize,
    /// Milliseconds from the death to the survivor's next answered call.
    next_answer_ms: i64,
}

/// Load on both nodes (`rate` calls a second on each), node A SIGKILLed in the middle; what
/// the survivor has afterwards.
fn kill_under_load(rate: u32) -> Run {
    let nats = NatsCluster::start();
    let urls = nats.urls();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = no_wrap_up(dir.path());
    let mut a = Platform::node(&urls, "node-a", "site-paris", &["--config", &config]);
    let b = Platform::node(&urls, "node-b", "site-lyon", &["--config", &config]);
    let _phones = staff(&b);
    let slot = slot_of(&a);
    let slot_a = |c: &Value| c["call"].as_u64().is_some_and(|n| n % 1000 == slot);
    let _to_a = Reaped(load(&a, "load-a", rate, 1_000 * rate, 1_500));
    let to_b = load(&b, "load-b", rate, 14 * rate, 1_500);
    // Calls go on for a few seconds, some answered and recorded, some waiting.
    let deadline = Instant::now() + Duration::from_secs(30);
    while a
        .calls()
        .iter()
        .filter(|c| c["outcome"] == "completed")
        .count()
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "no call completed on node A\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = a.calls();
    let open_at_death = b
        .calls()
        .iter()
        .filter(|c| slot_a(c) && c["ended_at"].is_null())
        .count();
    a.kill();
    let killed_at = now_ms();
    wait_ok(to_b, "the survivor's callers");

    let mut run = Run {
        on_record: before.len(),
        open_at_death,
        ..Run::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let after = b.calls();
        let open = after
            .iter()
            .filter(|c| slot_a(c) && c["ended_at"].is_null())
            .count();
        if open == 0 || Instant::now() > deadline {
            run.left_open = open;
            break after;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    run.lost = before
        .iter()
        .filter(|c| !after.iter().any(|d| d["call"] == c["call"]))
        .count();
    let callbacks = b.get("/api/callbacks");
    run.not_called_back = after
        .iter()
        .filter(|c| slot_a(c) && c["answered_at"].is_null() && c["ended_at"].is_i64())
        .filter(|c| c["ended_at"].as_i64() >= Some(killed_at - 1_000))
        .filter(|c| {
            !callbacks
                .as_array()
                .is_some_and(|l| l.iter().any(|e| e["call"] == c["call"]))
        })
        .count();
    run.next_answer_ms = after
        .iter()
        .filter_map(|c| c["answered_at"].as_i64())
        .filter(|at| *at > killed_at)
        .min()
        .map_or(-1, |at| at - killed_at);
    if run.next_answer_ms < 0 {
        eprintln!("survivor's log:\n{}", b.full_log());
        eprintln!("survivor's call-takers: {}", b.get("/api/call-takers"));
    }
    run
}

#[test]
fn a_node_killed_under_load_loses_no_record_and_its_callers_are_called_back() {
    // The suite runs once; bench/cluster_kill.sh runs it 20 times and more.
    let runs: usize = env_number("SECOURIR_KILL_RUNS", 1);
    let rate: u32 = env_number("SECOURIR_KILL_RATE", 1);
    let mut answers = Vec::new();
    for i in 0..runs {
        let run = kill_under_load(rate);
        println!(
            "kill run {}: {} calls on node A's records, {} of its calls open at its death: {run:?}",
            i + 1,
            run.on_record,
            run.open_at_death
        );
        assert_eq!(run.lost, 0, "records lost: {run:?}");
        assert_eq!(
            run.left_open, 0,
            "calls of the dead node left open: {run:?}"
        );
        assert_eq!(run.not_called_back, 0, "callers not called back: {run:?}");
        assert!(
            run.next_answer_ms >= 0,
            "no call answered after the kill: {run:?}"
        );
        answers.push(run.next_answer_ms);
    }
    answers.sort_unstable();
    println!(
        "{{\"kill_runs\": {runs}, \"calls_per_second_per_node\": {rate}, \"records_lost\": 0, \"next_answer_ms_p50\": {}, \"next_answer_ms_max\": {}}}",
        answers[answers.len() / 2],
        answers[answers.len() - 1]
    );
}

#[test]
fn a_nats_server_killed_under_load_loses_nothing_and_both_nodes_keep_the_same_records() {
    let mut nats = NatsCluster::start();
    let urls = nats.urls();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = no_wrap_up(dir.path());
    // Two more call-takers of CTA 13, so that each site has two of them.
    let mut text = std::fs::read_to_string(&config).expect("config");
    for (login, ha1) in [
        ("ota-13-3", "834a53fc22a0d66589e39b96d762d827"),
        ("ota-13-4", "955078500da1d0c3ddc35b89de1cd193"),
    ] {
        text.push_str(&format!(
            "\n[[call_taker]]\nlogin = \"{login}\"\nname = \"{login}\"\ncta = \"cta-13\"\nsip_ha1 = \"{ha1}\"\n"
        ));
    }
    std::fs::write(&config, text).expect("config written");
    let a = Platform::node(&urls, "node-a", "site-paris", &["--config", &config]);
    let b = Platform::node(&urls, "node-b", "site-lyon", &["--config", &config]);
    // Each site's call-takers' phones register on their own node, as in production: a node
    // cut off while the servers elect a new leader serves its new calls with them.
    let _phones_a = staff_with(&a, &["ota-13-1", "ota-13-3"]);
    let _phones_b = staff_with(&b, &["ota-13-2", "ota-13-4", "ota-83-1"]);
    let to_a = load(&a, "load-a", 1, 12, 1_500);
    let to_b = load(&b, "load-b", 1, 12, 1_500);
    let deadline = Instant::now() + Duration::from_secs(30);
    while b
        .calls()
        .iter()
        .filter(|c| c["outcome"] == "completed")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "no call completed\n{}", b.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The server leading the stream dies: the others elect a new leader meanwhile.
    let leader = log_leader(&urls);
    nats.kill(&leader);
    let killed_at = now_ms();
    wait_ok(to_a, "callers of node A");
    wait_ok(to_b, "callers of node B");

    // Every call placed is on record on both nodes, closed, and the two records agree.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (on_a, on_b) = loop {
        let summary = |node: &Platform| {
            let mut calls: Vec<(u64, String, bool)> = node
                .calls()
                .iter()
                .map(|c| {
                    (
                        c["call"].as_u64().unwrap_or(0),
                        c["outcome"].as_str().unwrap_or("").to_owned(),
                        c["answered_at"].is_i64(),
                    )
                })
                .collect();
            calls.sort();
            calls
        };
        let (on_a, on_b) = (summary(&a), summary(&b));
        let closed = on_a.iter().all(|c| !c.1.is_empty());
        if (on_a.len() == 24 && closed && on_a == on_b) || Instant::now() > deadline {
            break (on_a, on_b);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(on_a.len(), 24, "calls on record on node A: {on_a:?}");
    assert_eq!(on_a, on_b, "the two nodes' records differ");
    let waits: Vec<i64> = b
        .calls()
        .iter()
        .filter(|c| c["offered_at"].as_i64() >= Some(killed_at - 1_000))
        .filter_map(|c| Some(c["answered_at"].as_i64()? - c["offered_at"].as_i64()?))
        .collect();
    // The calls whose offers the dying leader held did not wait for the election.
    let served_alone = [&a, &b]
        .iter()
        .map(|n| {
            n.full_log()
                .matches("offer not back from the cluster log")
                .count()
        })
        .sum::<usize>();
    assert!(
        served_alone > 0,
        "no call was served alone during the election\n{}",
        a.log()
    );
    println!(
        "stream leader {leader} killed: {} calls answered around it, longest wait {} ms, {served_alone} served alone meanwhile",
        waits.len(),
        waits.iter().max().copied().unwrap_or(0)
    );
}

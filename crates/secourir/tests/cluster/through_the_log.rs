//! What the nodes share through the log: configurations, snapshots, and its unreadable entries.

use std::time::Duration;

use super::*;
use crate::nats::NatsCluster;

#[test]
fn an_entry_this_version_cannot_read_stops_the_log_here_and_the_node_serves_alone() {
    let nats = NatsCluster::start();
    let urls = nats.urls();
    let a = Platform::node(&urls, "node-a", "site-paris", &[]);
    let port = free_port();
    a.register("ota-13-1", port);
    let _phone = Reaped(a.phone("ota-13-1", port, 5));
    a.set_state("ota-13-1", "available");
    wait_cut_off(&a, false);

    // An entry of another version: its items are no input this version knows.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let seq = runtime.block_on(async {
        let log = secourir_cluster_log::ClusterLog::connect(&urls, "secourir", 3)
            .await
            .expect("the log");
        log.append(
            "node-z-1",
            1,
            &("node-z", vec![0xFAu8]),
            secourir_cluster_log::Format::Named,
            Duration::from_secs(10),
        )
        .await
        .expect("appended")
        .seq
    });
    wait_for(
        "the node's health naming the entry it cannot read",
        Duration::from_secs(10),
        || a.get("/api/health")["cluster"]["unreadable_seq"] == seq,
        || format!("{}\n{}", a.get("/api/health"), a.log()),
    );
    assert_eq!(a.get("/api/health")["cluster"]["cut_off"], true);

    // Applying nothing more, the node still answers its callers, with its own call-takers.
    let caller = a.caller("0600000021", 43.2965, 5.3698, 1_000);
    let call = wait_call_on(&a, "the call served alone", |c| {
        c["caller"] == "0600000021" && c["answered_at"].is_i64()
    });
    wait_ok(caller, "the caller served alone");
    assert_eq!(call["call_taker"], "ota-13-1");
    assert!(
        a.full_log().contains("unreadable by this version"),
        "{}",
        a.log()
    );
}

/// A configuration sent by SIGHUP to node A goes through the log: node B takes it at the same
/// place among the inputs and routes the next call by it, and node C, started afterwards from
/// the old file, catches up to it from the log.
#[test]
fn a_configuration_sent_to_one_node_reaches_every_node_through_the_log() {
    let nats = NatsCluster::start();
    let urls = nats.urls();
    let dir = tempfile::tempdir().expect("dir");
    let (old, new) = (dir.path().join("old.toml"), dir.path().join("new.toml"));
    std::fs::write(&old, shipped_with_rule("")).expect("config");
    std::fs::write(&new, shipped_with_rule("")).expect("config");
    let config = |path: &std::path::Path| path.to_string_lossy().into_owned();
    let a = Platform::node(&urls, "node-a", "site-paris", &["--config", &config(&new)]);
    let b = Platform::node(&urls, "node-b", "site-lyon", &["--config", &config(&old)]);
    let first = a.get("/api/health")["config"]["sha256"].clone();
    assert_eq!(b.get("/api/health")["config"]["sha256"], first);

    // CTA 13 evacuated: the supervisor edits node A's file and sends it SIGHUP.
    std::fs::write(&new, shipped_with_rule(EVACUATE_13)).expect("config");
    a.hang_up();
    let changed = |node: &Platform| {
        let health = node.get("/api/health");
        health["config"]["changes"] == 1 && health["config"]["sha256"] != first
    };
    for (node, name) in [(&a, "A"), (&b, "B")] {
        wait_for(
            &format!("the new configuration on node {name}"),
            Duration::from_secs(20),
            || changed(node),
            || format!("{}\n{}", node.get("/api/health"), node.log()),
        );
    }
    let sha = a.get("/api/health")["config"]["sha256"].clone();
    assert_eq!(b.get("/api/health")["config"]["sha256"], sha);

    // A call-taker of CTA 13 on node A, one of CTA 83 on node B; a Marseille caller dials
    // node B: the new rule sends the call to CTA 83.
    let mut phones = Vec::new();
    for (node, login) in [(&a, "ota-13-1"), (&b, "ota-83-1")] {
        let port = free_port();
        node.register(login, port);
        phones.push(Reaped(node.phone(login, port, 1)));
        node.set_state(login, "available");
    }
    wait_available(&b, "ota-13-1");
    wait_available(&a, "ota-83-1");
    wait_ok(
        b.caller("0601020304", 43.2965, 5.3698, 1_000),
        "caller on node B",
    );
    for (node, name) in [(&a, "A"), (&b, "B")] {
        let call = wait_call_on(node, &format!("the call on node {name}"), |c| {
            c["outcome"] == "completed"
        });
        assert_eq!(call["cta"], "cta-83", "node {name}: {call}");
        assert_eq!(call["call_taker"], "ota-83-1", "node {name}: {call}");
    }

    // Node C starts late, from the old file: it takes the new configuration from the log.
    let c = Platform::node(&urls, "node-c", "site-lyon", &["--config", &config(&old)]);
    wait_for(
        "the new configuration on node C",
        Duration::from_secs(20),
        || changed(&c),
        || format!("{}\n{}", c.get("/api/health"), c.log()),
    );
    assert_eq!(c.get("/api/health")["config"]["sha256"], sha);
    let call = wait_call_on(&c, "the call on node C", |c| c["outcome"] == "completed");
    assert_eq!(call["cta"], "cta-83");

    // Node E starts from the new file: it still applies the log from the configuration the
    // log began with (the old one), then takes the new one at its place: two changes.
    let e = Platform::node(&urls, "node-e", "site-lyon", &["--config", &config(&new)]);
    let health = e.get("/api/health");
    assert_eq!(health["config"]["sha256"], sha, "{health}");
    assert_eq!(health["config"]["changes"], 2, "{health}");
    drop(e);

    // Node D's file has other accounts: it could not apply the log as the others do, and
    // refuses to start, saying so.
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        shipped_with_rule("").replacen("login = \"ota-bspp-2\"", "login = \"ota-x\"", 1),
    )
    .expect("config");
    let data = tempfile::tempdir().expect("dir");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_secourir"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(["serve", "--cluster", &urls, "--node", "node-d", "--config"])
        .arg(&other)
        .args(["--sip", &format!("127.0.0.1:{}", free_port())])
        .args(["--http", &format!("127.0.0.1:{}", free_port())])
        .args(["--api-token", "x", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("secourir serve runs");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("start this node with that configuration") && said.contains("accounts"),
        "{said}"
    );
}

/// Node B stops cleanly and starts again: it takes its snapshot, applies only the log's
/// entries after it, and its core holds what the others hold: a caller queued on node A
/// meanwhile is picked by a call-taker on node B and answered.
#[test]
fn a_node_restarted_after_a_clean_stop_starts_from_its_snapshot_and_holds_the_same_state() {
    let nats = NatsCluster::start();
    let urls = nats.urls();
    let a = Platform::node(&urls, "node-a", "site-paris", &[]);
    let mut b = Platform::node(&urls, "node-b", "site-lyon", &[]);
    let first = b.get("/api/health");
    assert!(first["cluster"]["snapshot_from"].is_null(), "{first}");
    let _waiting = Reaped(a.caller_until_hung_up("0600000051", 43.2965, 5.3698));
    let queued = wait_call_on(&b, "the caller queued on node A, seen on node B", |c| {
        c["caller"] == "0600000051" && c["queued_at"].is_i64()
    });
    assert!(b.terminate().success());
    b.start_again();
    let health = b.get("/api/health");
    let from = health["cluster"]["snapshot_from"].as_u64().unwrap_or(0);
    assert!(from > 0, "{health}\n{}", b.log());
    println!(
        "node B restarted from its snapshot at entry {from}: {} entries of the log applied at start",
        health["cluster"]["applied_seq"].as_u64().unwrap_or(0) - from
    );
    // The restored core still has the caller in CTA 13's queue.
    let phone = paused_phone(&b, &a, "ota-13-2");
    let status = console(
        &b,
        &session(&b, "ota-13-2"),
        &format!("/api/console/calls/{}/pick", queued["call"]),
    );
    assert_eq!(status, 200, "pick on the restarted node\n{}", b.log());
    for (node, name) in [(&a, "A"), (&b, "B")] {
        let call = wait_call_on(node, &format!("the pick answered, on node {name}"), |c| {
            c["call"] == queued["call"] && c["answered_at"].is_i64()
        });
        assert_eq!(call["call_taker"], "ota-13-2", "node {name}: {call}");
    }
    let status = console(
        &b,
        &session(&b, "ota-13-2"),
        &format!("/api/console/calls/{}/hangup", queued["call"]),
    );
    assert!(matches!(status, 200 | 204), "hang-up: {status}");
    wait_ok(phone, "the phone on node B");
}

/// `login`'s phone registered on `node`, answering one call, the call-taker paused there; once
/// `other` sees the phone too.
fn paused_phone(node: &Platform, other: &Platform, login: &str) -> std::process::Child {
    let port = free_port();
    node.register(login, port);
    let phone = node.phone(login, port, 1);
    node.set_state(login, "paused");
    wait_for(
        &format!("the other node seeing {login}'s phone"),
        Duration::from_secs(10),
        || {
            other.get("/api/call-takers").as_array().is_some_and(|l| {
                l.iter()
                    .any(|t| t["login"] == login && t["phone_registered"] == true)
            })
        },
        || other.log(),
    );
    phone
}

/// The first entry the cluster's log still holds.
fn log_first(urls: &str) -> u64 {
    on_log(urls, async |log| log.bounds().await.expect("stream info").0)
}

#[test]
fn a_new_node_starts_from_a_shared_snapshot_once_the_log_is_trimmed() {
    let nats = NatsCluster::start();
    let urls = nats.urls();
    let often = ["--snapshot-every", "20"];
    let a = Platform::node(&urls, "node-a", "site-paris", &often);
    let _b = Platform::node(&urls, "node-b", "site-lyon", &often);
    // A caller who gave up (to call back) and one still waiting, both on node A.
    wait_ok(
        a.caller("0600000061", 43.2965, 5.3698, 1_000),
        "the caller who gives up",
    );
    let _waiting = Reaped(a.caller_until_hung_up("0600000062", 43.2965, 5.3698));
    let queued = wait_call_on(&a, "the caller still waiting", |c| {
        c["caller"] == "0600000062" && c["queued_at"].is_i64()
    });
    wait_call_backs(&a, "the caller who gave up, to call back", |l| {
        l.iter().any(|c| c["caller"] == "0600000061")
    });
    let seen_at = a.get("/api/health")["cluster"]["applied_seq"]
        .as_u64()
        .expect("applied_seq");
    // Both nodes snapshot every 20 entries and share them; the log goes below the older.
    wait_for(
        "the log trimmed past both calls",
        Duration::from_secs(60),
        || log_first(&urls) > seen_at + 1,
        || format!("{}\n{}", a.get("/api/health"), a.log()),
    );
    let first = log_first(&urls);

    let c = Platform::node(&urls, "node-c", "site-lyon", &often);
    let health = c.get("/api/health");
    let cluster = &health["cluster"];
    assert_eq!(cluster["snapshot_shared"], true, "{health}\n{}", c.log());
    let from = cluster["snapshot_from"].as_u64().expect("snapshot_from");
    assert!(
        from + 1 >= first && from > seen_at,
        "{health}, log from {first}"
    );
    println!(
        "node C started from the snapshot shared at entry {from} (log trimmed below {first}): {} entries applied at start",
        cluster["applied_seq"].as_u64().unwrap_or(0) - from
    );
    // Its store has what it needs of the earlier calls: the waiting caller's record, where
    // they are, and the caller to call back with their number.
    let record = wait_call_on(&c, "the waiting caller's record on node C", |call| {
        call["call"] == queued["call"]
    });
    assert_eq!(record["caller"], "0600000062", "{record}");
    assert_eq!(record["departement"], "13", "{record}");
    assert!(record["lat"].is_f64(), "{record}");
    wait_call_backs(&c, "the caller to call back, on node C", |l| {
        l.iter()
            .any(|e| e["caller"] == "0600000061" && e["state"] == "pending")
    });
    // A call-taker whose phone registers on node C picks the caller node A holds.
    let phone = paused_phone(&c, &a, "ota-13-2");
    let cookie = session(&c, "ota-13-2");
    let pick = format!("/api/console/calls/{}/pick", queued["call"]);
    assert_eq!(console(&c, &cookie, &pick), 200, "pick\n{}", c.log());
    for (node, name) in [(&a, "A"), (&c, "C")] {
        let call = wait_call_on(node, &format!("the pick answered, on node {name}"), |x| {
            x["call"] == queued["call"] && x["answered_at"].is_i64()
        });
        assert_eq!(call["call_taker"], "ota-13-2", "node {name}: {call}");
    }
    let hangup = format!("/api/console/calls/{}/hangup", queued["call"]);
    assert!(matches!(console(&c, &cookie, &hangup), 200 | 204));
    wait_ok(phone, "the phone on node C");
}

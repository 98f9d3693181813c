//! Two Secourir nodes on two sites sharing one core through a log replicated on three real
//! NATS servers, all on loopback and stopped with the test: a call taken in by one node is
//! answered by a call-taker whose phone registered on the other, and both nodes record it.

mod common;

#[path = "../../cluster-log/tests/nats/mod.rs"]
mod nats;

use std::time::{Duration, Instant};

use common::*;
use nats::NatsCluster;
use serde_json::Value;

/// Waits until `node` lists a call satisfying `done`.
fn wait_call_on(node: &Platform, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(call) = node.calls().into_iter().find(|c| done(c)) {
            return call;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen; calls {:?}\n{}",
            node.calls(),
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_call_held_by_one_node_is_answered_by_a_phone_registered_on_the_other() {
    let nats = NatsCluster::start();
    let urls = nats.urls();
    let a = Platform::node(&urls, "node-a", "site-paris");
    let b = Platform::node(&urls, "node-b", "site-lyon");

    // The call-taker's phone registers on node B; they make themselves available there.
    let port = free_port();
    b.register("ota-13-1", port);
    // SIPp's own -timeout ends it if the test fails before it does.
    let phone = b.phone("ota-13-1", port, 1);
    b.set_state("ota-13-1", "available");
    // Node A learns of the phone and of the call-taker's state from the log alone.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let takers = a.get("/api/call-takers");
        let ready = takers.as_array().is_some_and(|l| {
            l.iter().any(|t| {
                t["login"] == "ota-13-1"
                    && t["status"] == "available"
                    && t["phone_registered"] == true
            })
        });
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node A never saw the call-taker: {takers}\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The caller dials node A.
    let caller = a.caller("0601020304", 43.2965, 5.3698, 3_000);
    wait_ok(caller, "caller on node A");
    wait_ok(phone, "call-taker's phone registered on node B");

    for (node, name) in [(&a, "A"), (&b, "B")] {
        let call = wait_call_on(node, &format!("the completed call on node {name}"), |c| {
            c["outcome"] == "completed"
        });
        assert_eq!(call["call_taker"], "ota-13-1", "node {name}");
        assert_eq!(call["caller"], "0601020304", "node {name}");
        assert_eq!(call["cta"], "cta-13", "node {name}");
    }
    // The conversation is recorded where the caller's media is anchored: on node A.
    let on_a = wait_call_on(&a, "the recording on node A", |c| {
        c["recording_sha256"].is_string()
    });
    let path = on_a["recording_path"].as_str().expect("a recording path");
    assert!(std::path::Path::new(path).exists(), "{path}");
}

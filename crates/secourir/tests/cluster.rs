//! Two Secourir nodes on two sites sharing one core through a log replicated on three real
//! NATS servers, all on loopback and stopped with the test: a call taken in by one node is
//! answered by a call-taker whose phone registered on the other, and both nodes record it.

mod common;

#[path = "../../cluster-log/tests/nats/mod.rs"]
mod nats;

// One test binary: its tests are in modules under cluster/, named by `#[path]` because a crate
// root's modules are looked up beside it, where Cargo would take each for a binary of its own.
#[path = "cluster/across_nodes.rs"]
mod across_nodes;
#[path = "cluster/failover.rs"]
mod failover;
#[path = "cluster/partitions.rs"]
mod partitions;
#[path = "cluster/through_the_log.rs"]
mod through_the_log;

use std::time::{Duration, Instant};

use common::*;
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

/// Waits until `done` holds; `context` tells what was seen when it never does.
fn wait_for(
    what: &str,
    within: Duration,
    mut done: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: never\n{}", context());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `node` says it is cut from the log (or, with `false`, joined to it again).
fn wait_cut_off(node: &Platform, cut: bool) {
    wait_for(
        &format!("the node's health saying cut_off {cut}"),
        Duration::from_secs(30),
        || node.get("/api/health")["cluster"]["cut_off"] == cut,
        || format!("{}\n{}", node.get("/api/health"), node.log()),
    );
}

/// Waits until CTA 13's call-back list on `node` satisfies `done`.
fn wait_call_backs(node: &Platform, what: &str, done: impl Fn(&[Value]) -> bool) {
    let list = || node.get("/api/callbacks?cta=cta-13");
    wait_for(
        what,
        Duration::from_secs(20),
        || list().as_array().is_some_and(|l| done(l)),
        || format!("{}\n{}", list(), node.log()),
    );
}

/// Waits until `node` sees `login` available, with a phone registered somewhere.
fn wait_available(node: &Platform, login: &str) {
    let takers = || node.get("/api/call-takers");
    wait_for(
        &format!("{login} available"),
        Duration::from_secs(10),
        || {
            takers().as_array().is_some_and(|l| {
                l.iter().any(|t| {
                    t["login"] == login
                        && t["status"] == "available"
                        && t["phone_registered"] == true
                })
            })
        },
        || format!("{}\n{}", takers(), node.log()),
    );
}

/// What `ask` gets from the cluster's log on the NATS servers at `urls`.
fn on_log<T>(urls: &str, ask: impl AsyncFnOnce(secourir_cluster_log::ClusterLog) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let log = secourir_cluster_log::ClusterLog::connect(urls, "secourir", 3)
            .await
            .expect("the log");
        ask(log).await
    })
}

/// POSTs to the console API with a session cookie; the status.
fn console(node: &Platform, cookie: &str, path: &str) -> u16 {
    let response = ureq::post(&node.url(path))
        .header("Cookie", cookie)
        .config()
        .http_status_as_error(false)
        .build()
        .send_empty()
        .expect("an answer");
    response.status().as_u16()
}

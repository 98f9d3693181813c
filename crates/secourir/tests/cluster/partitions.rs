//! Sites cut apart, or a node cut from the log's quorum: it serves alone, its records merge back.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::nats::NatsCluster;

#[test]
fn a_node_cut_from_the_log_s_quorum_answers_alone_and_merges_its_records_when_back() {
    let mut nats = NatsCluster::start();
    let urls = nats.urls();
    let a = Platform::node(&urls, "node-a", "site-paris", &[]);
    let b = Platform::node(&urls, "node-b", "site-lyon", &[]);
    let port = free_port();
    a.register("ota-13-1", port);
    let _phone = Reaped(a.phone("ota-13-1", port, 5));
    a.set_state("ota-13-1", "available");
    wait_available(&b, "ota-13-1");

    // Two servers of three die: the log has no quorum, node A is cut off.
    nats.kill("n1");
    nats.kill("n2");
    wait_cut_off(&a, true);
    // A caller of node A is answered by the call-taker whose phone registered there; a second
    // one, who gives up while the call-taker talks, is to be called back.
    let answered = a.caller("0600000011", 43.2965, 5.3698, 3_000);
    let local = wait_call_on(&a, "the call served alone", |c| {
        c["caller"] == "0600000011" && c["answered_at"].is_i64()
    });
    let gave_up = a.caller("0600000012", 43.2965, 5.3698, 500);
    wait_ok(answered, "the caller served alone");
    wait_ok(gave_up, "the caller who gave up");
    assert_eq!(local["call_taker"], "ota-13-1");

    // The quorum comes back: node B has both calls, and the caller who gave up is on its
    // call-back list.
    nats.restart("n1");
    nats.restart("n2");
    let merged = wait_call_on(&b, "the call served alone, merged", |c| {
        c["call"] == local["call"] && c["outcome"] == "completed"
    });
    assert_eq!(merged["call_taker"], "ota-13-1");
    wait_cut_off(&a, false);
    let health = a.get("/api/health");
    assert_eq!(health["cluster"]["node"], "node-a", "{health}");
    assert_eq!(health["cluster"]["site"], "site-paris", "{health}");
    assert_eq!(health["cluster"]["calls_alone"], 0, "{health}");
    wait_call_backs(&b, "the caller who gave up on node B's list", |l| {
        l.iter().any(|c| c["caller"] == "0600000012")
    });
    // Served alone, not twice: node B's core never offered the call to anyone.
    let trail = b.trail(&merged["call"]);
    assert!(
        trail.iter().any(|s| s.contains("servi localement")),
        "{trail:?}"
    );
}

#[test]
fn a_node_that_dies_while_serving_alone_gives_its_callers_back_when_it_starts_again() {
    let mut nats = NatsCluster::start();
    let urls = nats.urls();
    let mut a = Platform::node(&urls, "node-a", "site-paris", &[]);
    let b = Platform::node(&urls, "node-b", "site-lyon", &[]);
    let port = free_port();
    a.register("ota-13-1", port);
    let _phone = Reaped(a.phone("ota-13-1", port, 5));
    a.set_state("ota-13-1", "available");
    wait_available(&b, "ota-13-1");

    nats.kill("n1");
    nats.kill("n2");
    wait_cut_off(&a, true);
    // Node A serves alone: its call-taker talks with a first caller, a second one waits.
    let _talking = Reaped(a.caller("0600000021", 43.2965, 5.3698, 60_000));
    wait_call_on(&a, "the first caller answered alone", |c| {
        c["caller"] == "0600000021" && c["answered_at"].is_i64()
    });
    let _waiting = Reaped(a.caller("0600000022", 43.2965, 5.3698, 60_000));
    wait_call_on(&a, "the second caller waiting alone", |c| {
        c["caller"] == "0600000022"
    });
    // Node A dies with both callers on its lines, before the log could have them.
    a.kill();
    nats.restart("n1");
    nats.restart("n2");
    wait_cut_off(&b, false);
    // Started again, it gives them to the log: both callers are on node B's call-back list.
    a.start_again();
    wait_call_backs(
        &b,
        "both callers of node A's time alone on node B's list",
        |l| {
            ["0600000021", "0600000022"]
                .iter()
                .all(|n| l.iter().any(|c| c["caller"] == *n))
        },
    );
    let waited = wait_call_on(&b, "the waiting caller's record on node B", |c| {
        c["caller"] == "0600000022" && c["outcome"] == "abandoned"
    });
    let trail = b.trail(&waited["call"]);
    assert!(
        trail.iter().any(|s| s.contains("servi localement")),
        "{trail:?}"
    );
}

/// A TCP relay on loopback standing for the network between a site and the NATS servers:
/// cut, it closes every connection and refuses new ones; healed, it relays again.
struct Link {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Link {
    fn to(target: u16) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, o) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut held = o.lock().unwrap();
                for stream in [&client, &server] {
                    if let Ok(s) = stream.try_clone() {
                        held.push(s);
                    }
                }
                for (mut from, mut to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ]
                .into_iter()
                .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Link { port, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// A cuttable link to each NATS server of `nats`, and the servers' URLs through them.
fn linked(nats: &NatsCluster) -> (Vec<Link>, String) {
    let links: Vec<Link> = nats
        .urls()
        .split(',')
        .map(|u| Link::to(u.rsplit(':').next().unwrap().parse().unwrap()))
        .collect();
    let urls = links
        .iter()
        .map(|l| format!("nats://127.0.0.1:{}", l.port))
        .collect::<Vec<_>>()
        .join(",");
    (links, urls)
}

#[test]
fn a_partition_between_the_sites_loses_nothing_and_picks_nothing_twice() {
    let nats = NatsCluster::start();
    // Node A reaches the NATS servers through links the test can cut; node B directly.
    let (links, via_links) = linked(&nats);
    let a = Platform::node(&via_links, "node-a", "site-paris", &[]);
    let b = Platform::node(&nats.urls(), "node-b", "site-lyon", &[]);
    let port = free_port();
    a.register("ota-13-1", port);
    let _phone = Reaped(a.phone("ota-13-1", port, 5));
    a.set_state("ota-13-1", "paused");
    // A caller waits on node A while its call-taker is away.
    let _waiting = Reaped(a.caller_until_hung_up("0600000021", 43.2965, 5.3698));
    let queued = wait_call_on(&b, "the caller waiting on node A, seen on node B", |c| {
        c["caller"] == "0600000021" && c["queued_at"].is_i64()
    });
    a.set_state("ota-13-1", "available");
    let first = wait_call_on(&a, "the waiting caller answered on node A", |c| {
        c["call"] == queued["call"] && c["answered_at"].is_i64()
    });
    assert_eq!(first["call_taker"], "ota-13-1");
    // It ends; a second caller waits while the call-taker is away again.
    let status = console(
        &a,
        &session(&a, "ota-13-1"),
        &format!("/api/console/calls/{}/hangup", queued["call"]),
    );
    assert!(matches!(status, 200 | 204), "hang-up: {status}");
    a.set_state("ota-13-1", "paused");
    let _second = Reaped(a.caller_until_hung_up("0600000022", 43.2965, 5.3698));
    let stranded = wait_call_on(&b, "the second caller waiting on node A", |c| {
        c["caller"] == "0600000022" && c["queued_at"].is_i64()
    });

    // The sites are cut apart: node B declares node A lost and calls its caller back;
    // node A, cut from the log, serves a new caller alone.
    for link in &links {
        link.cut();
    }
    wait_call_backs(&b, "node A's caller on node B's list", |l| {
        l.iter().any(|c| c["call"] == stranded["call"])
    });
    wait_cut_off(&a, true);
    // Node A's shared core is frozen with the call-taker paused: the island seats nobody, the
    // caller is answered by the platform, queued, and gives up: to be called back.
    let alone = a.caller("0600000023", 43.2965, 5.3698, 1_000);
    wait_ok(alone, "the caller of the cut node");
    let island = wait_call_on(&a, "the call served alone", |c| {
        c["caller"] == "0600000023" && c["ended_at"].is_i64()
    });
    // The call-taker comes back meanwhile: the cut node seats them, and they answer the next
    // caller there.
    a.set_state("ota-13-1", "available");
    let answered_alone = a.caller("0600000024", 43.2965, 5.3698, 1_000);
    wait_ok(answered_alone, "the caller answered by the cut node");
    let island_answered = wait_call_on(&a, "the call answered alone", |c| {
        c["caller"] == "0600000024" && c["outcome"] == "completed"
    });
    assert_eq!(island_answered["call_taker"], "ota-13-1");

    // Healed: both nodes have every call, and agree on each.
    for link in &links {
        link.heal();
    }
    wait_call_on(&b, "the call served alone, merged", |c| {
        c["call"] == island["call"] && c["ended_at"].is_i64()
    });
    let merged = wait_call_on(&b, "the call answered alone, merged", |c| {
        c["call"] == island_answered["call"] && c["outcome"] == "completed"
    });
    assert_eq!(merged["call_taker"], "ota-13-1");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = |node: &Platform| {
            let mut calls: Vec<(u64, Option<String>, Option<String>)> = node
                .calls()
                .iter()
                .map(|c| {
                    (
                        c["call"].as_u64().unwrap_or(0),
                        c["outcome"].as_str().map(str::to_owned),
                        c["call_taker"].as_str().map(str::to_owned),
                    )
                })
                .collect();
            calls.sort();
            calls
        };
        let (on_a, on_b) = (view(&a), view(&b));
        if on_a == on_b && on_a.len() == 4 && on_a.iter().all(|c| c.1.is_some()) {
            // The two answered calls were each answered once, by the one call-taker.
            let answered: Vec<_> = on_a.iter().filter(|c| c.2.is_some()).collect();
            assert_eq!(answered.len(), 2, "{on_a:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the two sites' records differ after healing:\nA {on_a:?}\nB {on_b:?}\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let callbacks = b.get("/api/callbacks?cta=cta-13");
    for call in [&stranded["call"], &island["call"]] {
        assert!(
            callbacks
                .as_array()
                .is_some_and(|l| l.iter().any(|c| &c["call"] == call)),
            "call {call} not on node B's call-back list: {callbacks}"
        );
    }
}

/// A caller talking with a call-taker on node A when the sites are cut apart: node B declares
/// A lost and ends A's calls in the shared core, but when A hears of it after healing, the
/// conversation goes on until the caller hangs up, and both nodes record its real end with
/// its recording.
#[test]
fn a_conversation_on_a_node_declared_lost_while_cut_off_goes_on_until_it_ends() {
    let nats = NatsCluster::start();
    let (links, via_links) = linked(&nats);
    let a = Platform::node(&via_links, "node-a", "site-paris", &[]);
    let b = Platform::node(&nats.urls(), "node-b", "site-lyon", &[]);
    let port = free_port();
    a.register("ota-13-1", port);
    let phone = a.phone("ota-13-1", port, 1);
    a.set_state("ota-13-1", "available");
    wait_available(&b, "ota-13-1");
    // The caller talks 20 s from the platform's answer, then hangs up.
    let caller = a.caller("0600000031", 43.2965, 5.3698, 20_000);
    let talking = wait_call_on(&a, "the caller talking on node A", |c| {
        c["caller"] == "0600000031" && c["answered_at"].is_i64()
    });
    for link in &links {
        link.cut();
    }
    let ended_on_b = wait_call_on(&b, "node A's call ended by node B", |c| {
        c["call"] == talking["call"] && c["ended_at"].is_i64()
    });
    for link in &links {
        link.heal();
    }
    let carried_on = || {
        a.trail(&talking["call"])
            .iter()
            .any(|s| s.contains("conversation poursuivie"))
    };
    wait_for(
        "node A carrying the conversation on after hearing it was lost",
        Duration::from_secs(15),
        carried_on,
        || a.log(),
    );
    // Never cut: SIPp fails on a BYE it did not send first.
    wait_ok(caller, "the caller, who hung up when they chose to");
    wait_ok(phone, "the call-taker's phone");
    for (node, name) in [(&a, "A"), (&b, "B")] {
        let call = wait_call_on(
            node,
            &format!("the conversation's end on node {name}"),
            |c| {
                c["call"] == talking["call"]
                    && c["reason"] == "l'appelant a raccroché"
                    && c["recording_sha256"].is_string()
            },
        );
        assert_eq!(call["outcome"], "completed", "node {name}: {call}");
        assert_eq!(call["call_taker"], "ota-13-1", "node {name}: {call}");
        assert!(
            call["ended_at"].as_i64() > ended_on_b["ended_at"].as_i64(),
            "node {name}: {call} vs {ended_on_b}"
        );
        let trail = node.trail(&call["call"]);
        assert!(
            trail
                .iter()
                .any(|s| s.contains("fin de la conversation poursuivie")),
            "node {name}: {trail:?}"
        );
    }
}

/// A call-taker talking on node A when A is cut from the log's quorum: when the caller hangs
/// up, the call-taker's phone is hung up at once, and the next caller of the cut node is
/// answered by them, although the frozen shared core still has them busy.
#[test]
fn a_call_taker_freed_while_the_node_is_cut_off_answers_its_next_caller() {
    let mut nats = NatsCluster::start();
    let urls = nats.urls();
    let a = Platform::node(&urls, "node-a", "site-paris", &[]);
    let _b = Platform::node(&urls, "node-b", "site-lyon", &[]);
    let port = free_port();
    a.register("ota-13-1", port);
    let phone = a.phone("ota-13-1", port, 2);
    a.set_state("ota-13-1", "available");
    // The first caller talks 8 s from the platform's answer.
    let first = a.caller("0600000041", 43.2965, 5.3698, 8_000);
    let talking = wait_call_on(&a, "the first caller talking on node A", |c| {
        c["caller"] == "0600000041" && c["answered_at"].is_i64()
    });
    assert_eq!(talking["call_taker"], "ota-13-1");
    // Two servers of three die: node A is cut off while the conversation goes on.
    nats.kill("n1");
    nats.kill("n2");
    wait_cut_off(&a, true);
    wait_ok(first, "the first caller, who hung up");
    // The next caller of node A is answered by the call-taker freed meanwhile.
    wait_ok(
        a.caller("0600000042", 43.2965, 5.3698, 1_000),
        "the second caller",
    );
    wait_ok(phone, "the call-taker's phone, which answered both");
    let second = wait_call_on(&a, "the second call answered alone", |c| {
        c["caller"] == "0600000042" && c["ended_at"].is_i64()
    });
    assert_eq!(second["outcome"], "completed", "{second}");
    assert_eq!(second["call_taker"], "ota-13-1", "{second}");
    nats.restart("n1");
    nats.restart("n2");
}

//! The replicated log on a real three-server NATS JetStream cluster on loopback, started and
//! stopped by the tests: two nodes appending at the same instant read the same order, so two
//! picks of one call are decided alike everywhere; a server's death loses nothing.

use std::sync::Arc;
use std::time::{Duration, Instant as Clock};

use futures::StreamExt;
use secourir_cluster_log::{Appender, Batch, ClusterLog, Format};
use secourir_config::{Departement, Plan, ZoneId};
use secourir_core::{
    AgentId, Ask, CallId, Command as CoreCommand, Core, CtaId, Event, Instant, Offer, PickRefusal,
    RequestId, Service,
};
use secourir_journal::Entry;

#[path = "nats/mod.rs"]
mod nats;
use nats::NatsCluster;

/// A node's log once the cluster has elected its JetStream leaders.
async fn log_on(urls: &str) -> ClusterLog {
    let deadline = Clock::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout(
            Duration::from_secs(5),
            ClusterLog::connect(urls, "SECOURIR", 3),
        )
        .await
        {
            Ok(Ok(log)) => return log,
            Ok(Err(_)) | Err(_) if Clock::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("the cluster never came up: {:?}", other.map(|r| r.err())),
        }
    }
}

fn now() -> Instant {
    Instant(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

fn entry(event: Event) -> Entry {
    Entry { at: now(), event }
}

const GIVE_UP: Duration = Duration::from_secs(20);

/// One CTA whose call-takers pick their calls.
fn picking_plan() -> Arc<Plan> {
    let toml = r#"
[national]
capacity = 100
reserved_share = 0.5
rule_set = "national"
default_departement = "13"

[defaults]
mode = "picking"

[[cta]]
id = "cta-13"
name = "CTA 13"
departements = ["13"]
staffing = { day = 2, night = 2 }

[[rule_set]]
id = "national"

[[rule_set.rule]]
name = "par défaut"
route = "home"
"#;
    let territory = [Departement {
        code: "13",
        population: 2_000_000,
    }];
    Arc::new(Plan::from_toml(toml, &territory).expect("plan"))
}

async fn read(log: &ClusterLog, count: usize) -> Vec<(u64, Entry)> {
    let mut stream = Box::pin(log.follow(1).await.expect("follow"));
    let mut entries = Vec::with_capacity(count);
    while entries.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("the log went silent");
        let (seq, entry, _) = next.expect("stream open").expect("entry");
        entries.push((seq, entry));
    }
    entries
}

/// Two nodes, each on its own server, pick the same call at the same instant, 200 times: both
/// read one order, and the core fed with it lets exactly one pick win each time, alike on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_two_simultaneous_picks_wins_on_every_node() {
    let cluster = NatsCluster::start();
    let a = log_on(&cluster.url(0)).await;
    let b = log_on(&cluster.url(1)).await;
    let login = |agent| Event::AgentLogin {
        agent: AgentId(agent),
        cta: CtaId(0),
        site: 0,
        dequeue_preference: 3,
    };
    a.append("a", 0, &entry(login(0)), Format::Named, GIVE_UP)
        .await
        .expect("login");
    b.append("b", 0, &entry(login(1)), Format::Named, GIVE_UP)
        .await
        .expect("login");
    const CALLS: u64 = 200;
    for call in 1..=CALLS {
        let offer = Event::Offered(Offer {
            call: CallId(call),
            zone: ZoneId(0),
            service: Service::Fire,
            resource_priority: None,
            caller: None,
            source: None,
            place: None,
            suspected: false,
            refused: None,
            medium: Default::default(),
        });
        a.append("a", call * 10, &entry(offer), Format::Named, GIVE_UP)
            .await
            .expect("offer");
        let pick = |agent, id| Event::Request {
            id: RequestId(id),
            agent: AgentId(agent),
            ask: Ask::Pick(CallId(call)),
        };
        let (of_a, of_b) = (entry(pick(0, call * 2)), entry(pick(1, call * 2 + 1)));
        let (ra, rb) = tokio::join!(
            a.append("a", call * 10 + 1, &of_a, Format::Named, GIVE_UP),
            b.append("b", call * 10 + 1, &of_b, Format::Named, GIVE_UP),
        );
        ra.expect("pick of a");
        rb.expect("pick of b");
        let gone = Event::CallerHungUp { call: CallId(call) };
        a.append("a", call * 10 + 2, &entry(gone), Format::Named, GIVE_UP)
            .await
            .expect("hang-up");
    }
    let count = 2 + 4 * CALLS as usize;
    let (seen_a, seen_b) = tokio::join!(read(&a, count), read(&b, count));
    assert_eq!(seen_a, seen_b, "the two nodes read different orders");

    // Each node applies what it read to its own core.
    let mut outcomes = Vec::new();
    for seen in [&seen_a, &seen_b] {
        let mut core = Core::new(picking_plan());
        let mut replies = Vec::new();
        for (_, entry) in seen.iter().cloned() {
            for command in core.handle(entry.event, entry.at) {
                if let CoreCommand::Reply { request, result } = command {
                    replies.push((request, result));
                }
            }
        }
        outcomes.push(replies);
    }
    assert_eq!(outcomes[0], outcomes[1], "the nodes decided differently");
    let mut wins_of_b = 0;
    for call in 1..=CALLS {
        let of = |id| {
            outcomes[0]
                .iter()
                .find(|(r, _)| *r == RequestId(id))
                .map(|(_, r)| *r)
        };
        let (pa, pb) = (of(call * 2), of(call * 2 + 1));
        let won = [pa, pb].iter().filter(|r| matches!(r, Some(Ok(_)))).count();
        assert_eq!(won, 1, "call {call}: {pa:?} {pb:?}");
        let lost = [pa, pb]
            .into_iter()
            .find(|r| !matches!(r, Some(Ok(_))))
            .flatten();
        assert_eq!(
            lost,
            Some(Err(secourir_core::Denied::Pick(PickRefusal::AlreadyTaken))),
            "call {call}"
        );
        if matches!(pb, Some(Ok(_))) {
            wins_of_b += 1;
        }
    }
    eprintln!("node b won {wins_of_b} of {CALLS} simultaneous picks");
}

/// 2,000 appends from one node while the stream's leader is killed after the first 500: every
/// append is acknowledged, each entry is in the log once and in order, and the longest wait for
/// an acknowledgement is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_when_one_server_of_three_dies() {
    let mut cluster = NatsCluster::start();
    let log = log_on(&cluster.urls()).await;
    let reader = log_on(&cluster.urls()).await;
    const ENTRIES: u64 = 2_000;
    let mut longest = Duration::ZERO;
    let mut killed = None;
    for id in 1..=ENTRIES {
        if id == 500 {
            let leader = log
                .leader()
                .await
                .expect("stream info")
                .0
                .expect("a leader");
            cluster.kill(&leader);
            killed = Some(leader);
        }
        let started = Clock::now();
        let event = Event::CallerHungUp { call: CallId(id) };
        log.append("a", id, &entry(event), Format::Named, GIVE_UP)
            .await
            .unwrap_or_else(|e| panic!("append {id}: {e}"));
        longest = longest.max(started.elapsed());
    }
    let seen = read(&reader, ENTRIES as usize).await;
    let calls: Vec<u64> = seen
        .iter()
        .map(|(_, e)| match e.event {
            Event::CallerHungUp { call } => call.0,
            _ => 0,
        })
        .collect();
    assert_eq!(
        calls,
        (1..=ENTRIES).collect::<Vec<_>>(),
        "lost, doubled or reordered"
    );
    eprintln!(
        "leader {} killed after 499 appends; longest wait for an acknowledgement {} ms",
        killed.unwrap_or_default(),
        longest.as_millis()
    );
    // The figure is reported above; the bound only catches a cluster that never recovers.
    assert!(longest < Duration::from_secs(15), "a pause of {longest:?}");
}

/// Two nodes give 3,000 inputs each as fast as they can and the stream's leader is killed
/// before the second half is given, so that half needs the new leader and some of its
/// messages are published again: the log holds every input of each node once and in the
/// order the node gave it (a retried batch never lands behind a later one), in far fewer
/// messages than inputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_s_inputs_reach_the_log_once_and_in_its_order() {
    let mut cluster = NatsCluster::start();
    let a = Appender::<u64>::start(log_on(&cluster.urls()).await, "a", 1);
    let b = Appender::<u64>::start(log_on(&cluster.urls()).await, "b", 1);
    let reader = log_on(&cluster.urls()).await;
    const INPUTS: u64 = 3_000;
    let started = Clock::now();
    let mut killed = None;
    for n in 1..=INPUTS {
        assert!(a.send(n) && b.send(n), "appender stopped");
        if n == INPUTS / 2 {
            let leader = reader.leader().await.expect("stream info").0;
            if let Some(leader) = leader {
                cluster.kill(&leader);
                killed = Some(leader);
            }
        }
        if n % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut stream = Box::pin(reader.follow::<Batch<u64>>(1).await.expect("follow"));
    let (mut of_a, mut of_b, mut messages) = (Vec::new(), Vec::new(), 0);
    while of_a.len() + of_b.len() < 2 * INPUTS as usize {
        let next = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("the log went silent");
        let (_, batch, _) = next.expect("stream open").expect("batch");
        messages += 1;
        match batch.node.as_str() {
            "a" => of_a.extend(batch.items),
            "b" => of_b.extend(batch.items),
            other => panic!("a batch from {other}"),
        }
    }
    let elapsed = started.elapsed();
    let expected: Vec<u64> = (1..=INPUTS).collect();
    assert_eq!(of_a, expected, "node a's inputs lost, doubled or reordered");
    assert_eq!(of_b, expected, "node b's inputs lost, doubled or reordered");
    assert!(killed.is_some(), "no leader to kill");
    let retried = a.retried() + b.retried();
    // Without a retry the order of retried batches would not have been put to the test.
    assert!(retried > 0, "no message was published twice");
    eprintln!(
        "{} inputs in {messages} messages ({retried} published more than once) in {} ms, leader {} killed midway",
        2 * INPUTS,
        elapsed.as_millis(),
        killed.unwrap_or_default()
    );
}

/// An entry of a version before numbered formats (no format header) is refused, never
/// misread; the entries after it are read, each with the newest format its writer reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_of_a_version_before_numbered_formats_is_refused_not_misread() {
    let cluster = NatsCluster::start();
    let log = log_on(&cluster.urls()).await;
    let hung_up = |call| entry(Event::CallerHungUp { call: CallId(call) });
    // What a version before numbered formats wrote: its own bytes and no format header.
    let servers: Vec<async_nats::ServerAddr> = cluster
        .urls()
        .split(',')
        .map(|url| url.parse().expect("url"))
        .collect();
    let client = async_nats::connect(servers).await.expect("client");
    let js = async_nats::jetstream::new(client);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "old-1");
    js.publish_with_headers("secourir.inputs", headers, vec![0x01, 0x00, 0x07].into())
        .await
        .expect("published")
        .await
        .expect("stored");
    log.append("a", 2, &hung_up(2), Format::Named, GIVE_UP)
        .await
        .expect("append");
    let mut stream = Box::pin(log.follow::<Entry>(1).await.expect("follow"));
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("the log went silent")
            .expect("stream open")
    };
    match next().await {
        Err(secourir_cluster_log::LogError::Decode { seq: 1, reason }) => {
            assert!(reason.contains("format 1"), "{reason}")
        }
        other => panic!("the old entry was not refused: {other:?}"),
    }
    let (seq, entry, reads) = next().await.expect("readable");
    assert_eq!(
        (seq, entry.event, reads),
        (
            2,
            Event::CallerHungUp { call: CallId(2) },
            Format::NEWEST_NUMBER
        )
    );
}

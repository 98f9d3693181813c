//! The CISU delivery path end to end on a real RabbitMQ: N `createCase` messages built from
//! varied facts, checked against the Hub Santé's official JSON Schemas, sent through one `Hub`
//! and acknowledged (RC-REF) by a SAMU stand-in behind the hub's dispatcher stand-in, the same
//! ones the integration test uses. It fails unless every message is acknowledged exactly once,
//! then prints the rates and the CPU each message cost this process and the broker.
//!
//! `SECOURIR_BENCH_MESSAGES` sets N (20,000 by default; 200 when the test suite runs it).

// The integration test uses the rest of its helpers; the bench needs only some.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeDelta};
use futures::FutureExt;
use jsonschema::{Registry, Validator};
use secourir_cisu::envelope::create_case_message;
use secourir_cisu::facts::Commune;
use secourir_cisu::{
    CaseFacts, Channel, DeliveryEvent, Kind, Outgoing, Position, PositionSource, Qualification,
    Route, SendParams, Status,
};
use secourir_hub::config::DeliverySettings;
use secourir_hub::{Hub, HubConfig, HubEvent};
use serde_json::{Value, json};
use support::hub_role::{HubRole, PLATFORM, SAMU_ACKS, Seen, declare_topology, now};
use support::rabbit::Broker;

/// Messages sent when `SECOURIR_BENCH_MESSAGES` is not set.
const MESSAGES_DEFAULT: usize = 20_000;
/// Messages sent when the test suite runs the bench (`cargo test --all-targets`, without
/// `--bench`): enough to check that it still works end to end, not to measure.
const MESSAGES_SMOKE: usize = 200;
/// Sends awaited together: below the driver's command queue, so none waits for room in it.
const SEND_BATCH: usize = 128;
/// Bound on the delivery phase, first send to last acknowledgement: the default run delivers in
/// about a minute on two shared cores, this leaves room for a busier machine.
const DELIVERY_WAIT_MIN: Duration = Duration::from_secs(120);
/// The slowest delivery tolerated per message, for runs larger than the default.
const DELIVERY_WAIT_PER_MESSAGE: Duration = Duration::from_millis(6);
/// Bound on the link opening once the broker accepts connections.
const CONNECT_WAIT: Duration = Duration::from_secs(60);
/// `/proc` reports CPU time in USER_HZ ticks, fixed at 100 by the Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;
/// Name of the stand-ins' runtime threads, so that their CPU time can be told from the hub's.
const STANDIN_THREAD: &str = "standin";
/// The thread lapin runs each connection's socket on.
const LAPIN_IO_THREAD: &str = "lapin-io-loop";
/// The envelope schema every hub message is checked against.
const ENVELOPE: &str = "EDXL-DE-full.schema.json";
/// Every official schema declares the same `$id`; each is registered under its own name instead.
const SCHEMA_BASE: &str = "classpath:/json-schema/";

fn main() {
    let messages = std::env::var("SECOURIR_BENCH_MESSAGES")
        .ok()
        .map(|n| {
            n.parse::<usize>()
                .expect("SECOURIR_BENCH_MESSAGES is a count")
        })
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            MESSAGES_DEFAULT
        } else {
            MESSAGES_SMOKE
        });
    assert!(messages > 0, "SECOURIR_BENCH_MESSAGES must be at least 1");
    // Two workers each, as the integration test runs; the stand-ins on their own threads so that
    // their CPU time is not counted as the hub's.
    let hub_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hub")
        .enable_all()
        .build()
        .expect("the hub's runtime");
    let standin_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(STANDIN_THREAD)
        .enable_all()
        .build()
        .expect("the stand-ins' runtime");
    let standins = standin_runtime.handle().clone();
    hub_runtime.block_on(run(messages, standins));
}

async fn run(n: usize, standins: tokio::runtime::Handle) {
    let broker = Broker::start();
    let broker_pid = broker.pid().expect("the broker runs");
    declare_topology(&broker.uri()).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let io_before = threads_named(LAPIN_IO_THREAD);
    let uri = broker.uri();
    let role = standins
        .spawn({
            let seen = seen.clone();
            async move { HubRole::start(&uri, seen).await }
        })
        .await
        .expect("the stand-ins start");
    // The stand-ins' connection is the one lapin thread that appeared while they connected.
    let standin_io: Vec<u32> = threads_named(LAPIN_IO_THREAD)
        .difference(&io_before)
        .copied()
        .collect();
    assert!(
        !standin_io.is_empty(),
        "no {LAPIN_IO_THREAD} thread appeared for the stand-ins' connection"
    );

    let sent_at = now();
    let facts: Vec<CaseFacts> = (0..n).map(|i| varied_facts(i, sent_at)).collect();
    let started = Instant::now();
    let outgoing: Vec<Outgoing> = facts.iter().map(|facts| build(facts, sent_at)).collect();
    let built_in = started.elapsed();
    drop(facts);

    let schemas = Schemas::load();
    schemas.assert_refuses_broken(&outgoing[0]);
    let started = Instant::now();
    for message in &outgoing {
        schemas.check(message);
    }
    let validated_in = started.elapsed();

    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut hub =
        Hub::start(config(&broker, &dir.path().join("outbox.sqlite"), n)).expect("the hub starts");
    connected(&mut hub).await;

    let ids: Vec<String> = outgoing.iter().map(|m| m.distribution_id.clone()).collect();
    let mut tally = Tally::new(&ids);
    let cpu_before = Cpu::now(broker_pid, &standin_io);
    let started = Instant::now();
    let wait =
        DELIVERY_WAIT_MIN.max(DELIVERY_WAIT_PER_MESSAGE * u32::try_from(n).unwrap_or(u32::MAX));
    let deadline = tokio::time::Instant::now() + wait;
    let mut queue = outgoing.into_iter();
    loop {
        let batch: Vec<Outgoing> = queue.by_ref().take(SEND_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        for sent in futures::future::join_all(batch.into_iter().map(|m| hub.send(m))).await {
            sent.expect("the hub takes the message");
        }
        // A platform reads its events as they come; the channel would otherwise fill up.
        while let Some(Some(event)) = hub.next_event().now_or_never() {
            tally.record(event);
        }
    }
    let all_sent_in = started.elapsed();
    while tally.acked.len() < n {
        match tokio::time::timeout_at(deadline, hub.next_event()).await {
            Ok(Some(event)) => tally.record(event),
            Ok(None) => panic!("the hub driver stopped; {}", tally.missing(n)),
            Err(_) => panic!("{} within {wait:?}", tally.missing(n)),
        }
    }
    let delivered_in = started.elapsed();
    let cpu = Cpu::now(broker_pid, &standin_io).since(&cpu_before);

    hub.shutdown().await;
    standins
        .spawn(role.stop())
        .await
        .expect("the stand-ins stop");
    let received = seen.lock().unwrap().received.get(SAMU_ACKS).cloned();
    let received = received.unwrap_or_default();
    let report = tally.verify(n, &received);

    let rate = |took: Duration| n as f64 / took.as_secs_f64();
    let per_message = |seconds: f64| seconds / n as f64 * 1e6;
    let broker_comm =
        std::fs::read_to_string(format!("/proc/{broker_pid}/comm")).unwrap_or_default();
    println!(
        "CISU delivery, {n} createCase through one Hub to RabbitMQ {} ({} pid {broker_pid}), \
         acknowledged by a SAMU stand-in",
        broker.uri(),
        broker_comm.trim_end()
    );
    println!(
        "  built:      {:>9.0} messages/s ({:.3} s)",
        rate(built_in),
        built_in.as_secs_f64()
    );
    println!(
        "  validated:  {:>9.0} messages/s ({:.3} s, JSON parse + official EDXL-DE schema)",
        rate(validated_in),
        validated_in.as_secs_f64()
    );
    println!(
        "  delivered:  {:>9.0} messages/s ({:.3} s, first send to last RC-REF acknowledged; \
         all in the outbox after {:.3} s)",
        rate(delivered_in),
        delivered_in.as_secs_f64(),
        all_sent_in.as_secs_f64()
    );
    println!(
        "  CPU/message while delivering: this process {:.0} µs (hub {:.0} µs, stand-ins {:.0} µs), \
         broker {:.0} µs",
        per_message(cpu.process),
        per_message(cpu.process - cpu.standins),
        per_message(cpu.standins),
        per_message(cpu.broker)
    );
    println!("  {report}");
}

fn config(broker: &Broker, outbox: &Path, n: usize) -> HubConfig {
    HubConfig {
        uri: broker.uri(),
        client_id: PLATFORM.into(),
        exchange: "hubsante".into(),
        outbox: outbox.into(),
        tls: None,
        delivery: DeliverySettings {
            // Every message is followed at once, with the production delays otherwise.
            messages_max: n,
            ..DeliverySettings::default()
        },
        reconnect_first_ms: 200,
        reconnect_max_ms: 2_000,
        ack_valid_ms: 3_600_000,
        keep_ended_ms: 3_600_000,
        // Room for an overdue report and an acknowledgement per message: the driver, blocked on
        // a full channel, would stop taking the sends the bench is awaiting.
        events_max: 2 * n + 16,
    }
}

async fn connected(hub: &mut Hub) {
    let waited = tokio::time::timeout(CONNECT_WAIT, async {
        loop {
            match hub.next_event().await.expect("the driver runs") {
                HubEvent::Connected => return,
                HubEvent::Disconnected { reason } => eprintln!("hub link not yet open: {reason}"),
                other => panic!("unexpected before connecting: {other:?}"),
            }
        }
    });
    waited
        .await
        .unwrap_or_else(|_| panic!("the hub link did not open within {CONNECT_WAIT:?}"));
}

/// Communes with their département and a point in them, spread over France, Corsica included.
const PLACES: [(&str, &str, &str, f64, f64); 8] = [
    ("13055", "Marseille", "13", 43.2965, 5.3698),
    ("13001", "Aix-en-Provence", "13", 43.5297, 5.4474),
    ("2A004", "Ajaccio", "2A", 41.9192, 8.7386),
    ("69123", "Lyon", "69", 45.7640, 4.8357),
    ("97411", "Saint-Denis", "974", -20.8789, 55.4481),
    ("59350", "Lille", "59", 50.6292, 3.0573),
    ("31555", "Toulouse", "31", 43.6047, 1.4442),
    ("29019", "Brest", "29", 48.3904, -4.4861),
];

/// Qualifications of the official samples.
const QUALIFICATIONS: [(&str, &str); 6] = [
    ("C01.01.05", "Piéton"),
    ("C01.01.04", "2-roues"),
    ("C11.02.01", "Malaise/détresse vitale"),
    ("C02.05.02", "Obstétrique"),
    ("C09.03.00", "Fuite de gaz"),
    ("C04.02.01", "Incendie - Bâtiment d'habitation"),
];

const NOTES: [&str; 4] = [
    "Piéton renversé, conscient.",
    "Odeur de gaz dans la cage d'escalier, l'appelant est sorti de l'immeuble.",
    "Fumée visible au deuxième étage, deux personnes sur le balcon, pas de blessé signalé.",
    "Douleur thoracique depuis vingt minutes, antécédents cardiaques.",
];

/// The `i`th call: every field that the message carries varies, in the shapes a platform sends
/// (located or not, with the default position, with or without a note).
fn varied_facts(i: usize, sent_at: DateTime<FixedOffset>) -> CaseFacts {
    let (insee, name, departement, lat, lon) = PLACES[i % PLACES.len()];
    let (code, label) = QUALIFICATIONS[i % QUALIFICATIONS.len()];
    // Up to about half a kilometre around the commune's point.
    let jitter = |k: usize| ((i * k) % 1_000) as f64 / 1_000.0 - 0.5;
    let located = Position {
        lat: lat + jitter(37) * 0.01,
        lon: lon + jitter(53) * 0.01,
        accuracy_m: (!i.is_multiple_of(3)).then_some(5.0 + (i % 500) as f64),
        source: if i.is_multiple_of(2) {
            PositionSource::Aml
        } else {
            PositionSource::PidfLo
        },
    };
    let (commune, departement, position) = match i % 13 {
        // No position came with the call: the national default, no commune.
        0 => (
            None,
            None,
            Some(Position {
                lat: 46.6,
                lon: 2.4,
                accuracy_m: None,
                source: PositionSource::Default,
            }),
        ),
        // The commune only, the caller's position unknown.
        1 => (Some(commune(insee, name)), Some(departement.into()), None),
        _ => (
            Some(commune(insee, name)),
            Some(departement.into()),
            Some(located),
        ),
    };
    let note = match i % 5 {
        0 => None,
        k => Some(format!(
            "{} Appel n° {i}.",
            NOTES[k % NOTES.len()].repeat(k)
        )),
    };
    CaseFacts {
        call_id: format!("bench-{i:06}"),
        organisation: "sdis13".into(),
        received_at: sent_at - TimeDelta::seconds((i % 600) as i64),
        caller_number: format!("06{:08}", i % 100_000_000),
        channel: if i.is_multiple_of(7) {
            Channel::Text
        } else {
            Channel::Voice
        },
        call_taker_login: format!("ota-13-{}", i % 40),
        cta_id: "CTA13".into(),
        commune,
        departement,
        position,
        qualification: Qualification {
            code: code.into(),
            label: label.into(),
            nomenclature_version: "1.3.1".into(),
        },
        note,
    }
}

fn commune(insee: &str, name: &str) -> Commune {
    Commune {
        insee: insee.into(),
        name: name.into(),
    }
}

fn build(facts: &CaseFacts, sent_at: DateTime<FixedOffset>) -> Outgoing {
    let route = Route {
        sender_id: PLATFORM.into(),
        recipient_id: SAMU_ACKS.into(),
    };
    let params = SendParams {
        local_id: format!("{}-1", facts.call_id),
        sent_at,
        expires_at: sent_at + TimeDelta::hours(1),
        kind: Kind::Report,
        status: Status::Exercise,
    };
    create_case_message(&route, &params, facts, &sent_at)
        .unwrap_or_else(|e| panic!("{}: {e}", facts.call_id))
}

/// The official schemas, vendored by `secourir-cisu` for its own tests.
struct Schemas {
    envelope: Validator,
}

impl Schemas {
    fn load() -> Schemas {
        let dir = official_dir().join("json-schema");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".schema.json"))
            .collect();
        names.sort();
        let mut registry = Registry::new();
        for name in &names {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut schema: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let uri = format!("{SCHEMA_BASE}{name}");
            schema["$id"] = Value::String(uri.clone());
            registry = registry.add(uri, schema).expect("a schema registers");
        }
        let registry = registry.prepare().expect("the schemas resolve");
        let envelope = jsonschema::options()
            .with_registry(&registry)
            .should_validate_formats(true)
            .offline()
            .build(&json!({ "$ref": format!("{SCHEMA_BASE}{ENVELOPE}") }))
            .expect("the envelope schema builds");
        Schemas { envelope }
    }

    /// A validator that accepted anything would make the rate meaningless: one that refuses a
    /// message without its case id is a validator at work.
    fn assert_refuses_broken(&self, message: &Outgoing) {
        let mut broken: Value = serde_json::from_slice(&message.body).expect("the body is JSON");
        let case = "/content/0/jsonContent/embeddedJsonContent/message/createCase";
        let removed = broken
            .pointer_mut(case)
            .and_then(Value::as_object_mut)
            .and_then(|case| case.remove("caseId"));
        assert!(removed.is_some(), "no caseId at {case}");
        assert!(
            !self.envelope.is_valid(&broken),
            "the schemas accept a createCase without caseId"
        );
    }

    /// Panics, with the schema's complaints, on a message the hub would refuse.
    fn check(&self, message: &Outgoing) {
        let value: Value = serde_json::from_slice(&message.body).expect("the body is JSON");
        if !self.envelope.is_valid(&value) {
            let errors: Vec<String> = self
                .envelope
                .iter_errors(&value)
                .map(|error| format!("{}: {error}", error.instance_path()))
                .collect();
            panic!(
                "{} refused by {ENVELOPE}:\n{}",
                message.distribution_id,
                errors.join("\n")
            );
        }
    }
}

fn official_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cisu/tests/official")
}

/// What the hub reported during the delivery phase.
struct Tally {
    sent: HashSet<String>,
    acked: HashSet<String>,
    acked_twice: usize,
    acked_unknown: usize,
    overdue: usize,
    link_lost: usize,
}

impl Tally {
    fn new(ids: &[String]) -> Tally {
        let sent: HashSet<String> = ids.iter().cloned().collect();
        assert_eq!(sent.len(), ids.len(), "the bench built the same id twice");
        Tally {
            sent,
            acked: HashSet::with_capacity(ids.len()),
            acked_twice: 0,
            acked_unknown: 0,
            overdue: 0,
            link_lost: 0,
        }
    }

    fn record(&mut self, event: HubEvent) {
        match event {
            HubEvent::Delivery(DeliveryEvent::Acked { id }) => {
                if !self.sent.contains(&id) {
                    self.acked_unknown += 1;
                } else if !self.acked.insert(id) {
                    self.acked_twice += 1;
                }
            }
            // Reported, still followed: it ends acknowledged or the wait fails.
            HubEvent::Delivery(DeliveryEvent::Overdue { .. }) => self.overdue += 1,
            HubEvent::Delivery(ended @ DeliveryEvent::Refused { .. })
            | HubEvent::Delivery(ended @ DeliveryEvent::Expired { .. }) => {
                panic!("a message ended unacknowledged: {ended:?}")
            }
            HubEvent::Disconnected { reason } => {
                eprintln!("hub link lost during the run: {reason}");
                self.link_lost += 1;
            }
            HubEvent::Connected => {}
            other => panic!("unexpected event: {other:?}"),
        }
    }

    fn missing(&self, n: usize) -> String {
        let missing: BTreeSet<&String> = self.sent.difference(&self.acked).collect();
        let first: Vec<&&String> = missing.iter().take(5).collect();
        format!(
            "{} of {n} messages not acknowledged (first: {first:?})",
            missing.len()
        )
    }

    /// Checks that nothing was lost or repeated, end to end; says what was seen.
    fn verify(&self, n: usize, received: &[String]) -> String {
        let distinct: HashSet<&String> = received.iter().collect();
        let duplicates = received.len() - distinct.len();
        let strangers = distinct
            .iter()
            .filter(|id| !self.sent.contains(**id))
            .count();
        let report = format!(
            "checked: {} acknowledged of {n} sent, {} lost, {} distinct ids at the SAMU, \
             {duplicates} duplicates delivered, {} acknowledged twice, {} overdue reports, \
             {} link losses",
            self.acked.len(),
            n - self.acked.len(),
            distinct.len(),
            self.acked_twice,
            self.overdue,
            self.link_lost
        );
        assert_eq!(self.acked.len(), n, "{report}");
        assert_eq!(distinct.len(), n, "{report}");
        assert_eq!(strangers, 0, "unknown ids reached the SAMU; {report}");
        assert_eq!(self.acked_unknown, 0, "unknown ids acknowledged; {report}");
        assert_eq!(duplicates, 0, "{report}");
        assert_eq!(self.acked_twice, 0, "{report}");
        report
    }
}

/// CPU seconds (user + system) consumed so far.
struct Cpu {
    process: f64,
    standins: f64,
    broker: f64,
}

impl Cpu {
    fn now(broker_pid: u32, standin_io: &[u32]) -> Cpu {
        let own = std::process::id();
        let standins = std::fs::read_dir(format!("/proc/{own}/task"))
            .expect("this process's threads")
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|tid| {
                standin_io.contains(tid) || comm(own, *tid).as_deref() == Some(STANDIN_THREAD)
            })
            .map(|tid| cpu_seconds(&format!("/proc/{own}/task/{tid}/stat")).unwrap_or(0.0))
            .sum();
        Cpu {
            process: cpu_seconds("/proc/self/stat").expect("this process's CPU time"),
            standins,
            broker: cpu_seconds(&format!("/proc/{broker_pid}/stat"))
                .expect("the broker's CPU time"),
        }
    }

    fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            process: self.process - before.process,
            standins: self.standins - before.standins,
            broker: self.broker - before.broker,
        }
    }
}

/// utime + stime of a `/proc/…/stat` file, in seconds; `None` if the task is gone.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The command name may hold spaces and parentheses: the fields that follow start after the
    // last ')', with the state (field 3), so utime (14) and stime (15) are the 12th and 13th.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / TICKS_PER_SECOND)
}

fn comm(pid: u32, tid: u32) -> Option<String> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
    Some(name.trim_end().to_owned())
}

/// The ids of this process's threads with that name.
fn threads_named(name: &str) -> BTreeSet<u32> {
    let own = std::process::id();
    std::fs::read_dir(format!("/proc/{own}/task"))
        .expect("this process's threads")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|tid| comm(own, *tid).as_deref() == Some(name))
        .collect()
}

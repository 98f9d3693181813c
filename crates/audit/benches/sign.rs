//! What the audit trail costs per event: signing one (serialize, hash, Ed25519), verifying one
//! (signature and link), and writing them to a file with the writer's durability, one
//! `fdatasync` per `append`, or one per `append_batch` of 64 (a writer thread's group commit).

use std::hint::black_box;

use chrono::DateTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secourir_audit::*;

/// Events in the log the verification bench reads.
const LOG_EVENTS: usize = 1_000;
/// Events per `append_batch` in the group-commit bench.
const BATCH_EVENTS: usize = 64;

/// A call answered: the size of a typical event (about 700 bytes once signed).
fn event() -> LogEvent {
    let mut common = Common::new(
        DateTime::parse_from_rfc3339("2026-12-07T14:03:05.125+01:00").expect("an instant"),
        "node-1.secourir.example.fr",
        "sdis13.example.fr",
    );
    common.agency_agent_id = Some("ota-7@sdis13.example.fr".into());
    common.call_id = Some("urn:emergency:uid:callid:c-42:node-1.secourir.example.fr".into());
    common.incident_id = Some("urn:emergency:uid:incidentid:i-42:sdis13.example.fr".into());
    common.call_id_sip = Some("a84b4c76e66710@ingress".into());
    LogEvent::new(
        common,
        Body::CallStateChange(CallStateChange {
            state: CallState::Answered,
            direction: Direction::Incoming,
            leg_call_id: None,
            target_id: Some("ota-7@sdis13.example.fr".into()),
            change_reason: Some("picked".into()),
        }),
    )
}

fn key() -> SecretKey {
    SecretKey::from_bytes(&[7u8; 32])
}

fn sign(c: &mut Criterion) {
    let event = event();
    let mut chain = Chain::new(key());
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign one event", |b| {
        b.iter(|| black_box(chain.sign(black_box(&event))))
    });
    let line_bytes = chain.sign(&event).len();
    println!("one signed event: {line_bytes} bytes");

    let mut chain = Chain::new(key());
    let lines: Vec<String> = (0..LOG_EVENTS).map(|_| chain.sign(&event)).collect();
    let public = key().public();
    group.throughput(Throughput::Elements(LOG_EVENTS as u64));
    group.bench_function("verify a log of 1000 events", |b| {
        b.iter(|| verify(black_box(&lines), &public).expect("a whole log"))
    });
    group.finish();
}

fn write(c: &mut Criterion) {
    let event = event();
    let batch = vec![event.clone(); BATCH_EVENTS];
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut group = c.benchmark_group("audit write (fdatasync)");
    group.sample_size(20);

    let mut writer = Writer::open(&dir.path().join("each.log"), key()).expect("a new log");
    group.throughput(Throughput::Elements(1));
    group.bench_function("append, one sync per event", |b| {
        b.iter(|| writer.append(black_box(&event)).expect("appended"))
    });

    let mut writer = Writer::open(&dir.path().join("batch.log"), key()).expect("a new log");
    group.throughput(Throughput::Elements(BATCH_EVENTS as u64));
    group.bench_function("append_batch of 64, one sync per batch", |b| {
        b.iter(|| writer.append_batch(black_box(&batch)).expect("appended"))
    });
    group.finish();
}

criterion_group!(benches, sign, write);
criterion_main!(benches);

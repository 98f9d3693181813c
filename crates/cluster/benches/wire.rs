//! The cost of the log's wire format: a typical message (64 inputs, a quarter of them new calls
//! with their records) encoded and decoded in the named format (MessagePack with names), beside
//! the compact format of the versions before (postcard), and its size in each.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secourir_cluster::{Input, OfferedRecord};
use secourir_config::ZoneId;
use secourir_core::{AgentId, CallId, Event, Offer, Service, Whereabouts};
use secourir_wire::Format;

fn message() -> Vec<Input> {
    (0..64u64)
        .map(|i| {
            let at = 1_765_000_000_000 + i * 37;
            let call = CallId(1_000 + i);
            match i % 4 {
                0 => Input::Offered {
                    at,
                    record: Box::new(OfferedRecord {
                        call,
                        emergency_call_id: format!("urn:emergency:uid:callid:{i:016x}:paris-1"),
                        caller: Some("+33612345678".into()),
                        service: "urn:service:sos.fire".into(),
                        zone: ZoneId(12),
                        departement: "13".into(),
                        commune: Some("Marseille".into()),
                        insee: Some("13055".into()),
                        point: Some((43.2965, 5.3698)),
                        radius_m: Some(30.0),
                        location_source: "PIDF-LO".into(),
                        location_problem: None,
                        trunk: Some("orange-sud".into()),
                        repaired_headers: None,
                    }),
                    offer: Box::new(Offer {
                        call,
                        zone: ZoneId(12),
                        service: Service::Fire,
                        resource_priority: None,
                        caller: Some("+33612345678".into()),
                        source: Some("orange-sud".into()),
                        place: Some(Arc::new(Whereabouts {
                            departement: "13".into(),
                            commune: Some("Marseille".into()),
                            insee: Some("13055".into()),
                            point: Some((43.2965, 5.3698)),
                            radius_m: Some(30.0),
                            source: "PIDF-LO".into(),
                        })),
                        suspected: false,
                        refused: None,
                        medium: Default::default(),
                    }),
                },
                1 => Input::Core {
                    at,
                    event: Event::AgentAnswered {
                        agent: AgentId(i as u32),
                        call,
                    },
                },
                2 => Input::Alive { at },
                _ => Input::Core {
                    at,
                    event: Event::CallerHungUp { call },
                },
            }
        })
        .collect()
}

fn formats(c: &mut Criterion) {
    let message = message();
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(message.len() as u64));
    let named = Format::Named.encode(&message).expect("encoded");
    let compact = postcard::to_allocvec(&message).expect("encoded");
    eprintln!(
        "{} inputs: named {} bytes, compact {} bytes",
        message.len(),
        named.len(),
        compact.len()
    );
    group.bench_function("encode named", |b| {
        b.iter(|| Format::Named.encode(black_box(&message)).expect("encoded"))
    });
    group.bench_function("decode named", |b| {
        b.iter(|| {
            Format::Named
                .decode::<Vec<Input>>(black_box(&named))
                .expect("decoded")
        })
    });
    group.bench_function("encode compact", |b| {
        b.iter(|| postcard::to_allocvec(black_box(&message)).expect("encoded"))
    });
    group.bench_function("decode compact", |b| {
        b.iter(|| postcard::from_bytes::<Vec<Input>>(black_box(&compact)).expect("decoded"))
    });
    group.finish();
}

criterion_group!(benches, formats);
criterion_main!(benches);

//! The cost of the log's wire formats: a typical message (64 inputs, a quarter of them new
//! calls with their records) encoded and decoded in the compact format (postcard) and the named
//! one (MessagePack with names), and its size in each.

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
    for format in [Format::Compact, Format::Named] {
        let bytes = format.encode(&message).expect("encoded");
        eprintln!(
            "{format:?}: {} bytes for {} inputs",
            bytes.len(),
            message.len()
        );
        group.bench_function(format!("encode {format:?}"), |b| {
            b.iter(|| format.encode(black_box(&message)).expect("encoded"))
        });
        group.bench_function(format!("decode {format:?}"), |b| {
            b.iter(|| {
                format
                    .decode::<Vec<Input>>(black_box(&bytes))
                    .expect("decoded")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, formats);
criterion_main!(benches);

//! Load time of the embedded territory and look-ups per second of `locate`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secourir_territory::Territory;

/// 100,000 points: commune points moved by up to ~1 km, plus sea and foreign points.
pub fn points(territory: &Territory) -> Vec<(f64, f64)> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let base: Vec<(f64, f64)> = territory
        .departements()
        .iter()
        .flat_map(|d| territory.communes_by_postcode(&format!("{}000", &d.code[..2])))
        .filter_map(|c| Some((c.lat?, c.lon?)))
        .collect();
    (0..100_000)
        .map(|i| {
            if i % 10 == 0 {
                (41.0 + next() * 10.0, -6.0 + next() * 16.0)
            } else {
                let (lat, lon) = base[(next() * base.len() as f64) as usize % base.len().max(1)];
                (lat + (next() - 0.5) * 0.02, lon + (next() - 0.5) * 0.02)
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("territory");
    group.sample_size(10);
    group.bench_function("load", |b| b.iter(|| black_box(Territory::load_embedded())));
    let territory = Territory::france();
    let points = points(territory);
    group.throughput(Throughput::Elements(points.len() as u64));
    group.bench_function("locate", |b| {
        b.iter(|| {
            points
                .iter()
                .filter(|(lat, lon)| territory.locate(*lat, *lon).is_some())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

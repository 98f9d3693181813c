//! findService per second for points spread over the territory (criterion), then each
//! request's latency measured alone: p50, p99 and p99.9, on one thread and on two.
//!
//! `cargo bench -p secourir-lost --bench find_service`. The goal: 10,000 findService/s
//! on a 2-core machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use secourir_lost::{Ecrf, Outcome};
use secourir_territory::Territory;

#[path = "../tests/common/mod.rs"]
mod common;

/// Requests in one pass.
const REQUESTS: usize = 20_000;
/// Requests timed one by one for the percentiles, per thread.
const TIMED_REQUESTS: usize = 200_000;

/// findService bodies for commune points moved by up to ~1 km, one in ten at sea or abroad
/// (a `notFound`), from a fixed seed.
fn bodies(territory: &Territory) -> Vec<Vec<u8>> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let points: Vec<(f64, f64)> = territory
        .communes()
        .iter()
        .filter_map(|c| Some((c.lat?, c.lon?)))
        .collect();
    (0..REQUESTS)
        .map(|i| {
            let (lat, lon) = if i % 10 == 0 {
                (41.0 + next() * 10.0, -6.0 + next() * 16.0)
            } else {
                let (lat, lon) = points[(next() * points.len() as f64) as usize % points.len()];
                (lat + (next() - 0.5) * 0.02, lon + (next() - 0.5) * 0.02)
            };
            let service = if i % 2 == 0 {
                "urn:service:sos.fire"
            } else {
                "urn:service:sos"
            };
            common::find_point(service, lat, lon, false).into_bytes()
        })
        .collect()
}

fn throughput(c: &mut Criterion, ecrf: &Ecrf, bodies: &[Vec<u8>]) {
    let mut group = c.benchmark_group("lost");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(bodies.len() as u64));
    group.bench_function("find_service_points", |b| {
        b.iter(|| {
            bodies
                .iter()
                .filter(|body| {
                    let response = ecrf.handle_request(black_box(body), common::now());
                    matches!(response.outcome, Outcome::Mapping { .. })
                })
                .count()
        })
    });
    group.finish();
}

/// Each request timed alone on `threads` threads at once; prints requests per second and the
/// percentiles of latency.
// Measuring needs the clock the crate itself must never read.
#[allow(clippy::disallowed_methods)]
fn latency(ecrf: &Ecrf, bodies: &[Vec<u8>], threads: usize) {
    let started = Instant::now();
    let mut all: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut times = Vec::with_capacity(TIMED_REQUESTS);
                    for i in 0..TIMED_REQUESTS {
                        let body = &bodies[(i * threads + t) % bodies.len()];
                        let start = Instant::now();
                        let response = ecrf.handle_request(black_box(body), common::now());
                        black_box(&response);
                        times.push(start.elapsed());
                    }
                    times
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker thread"))
            .collect()
    });
    let elapsed = started.elapsed();
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    println!(
        "lost/find_service latency, {threads} thread(s): {} requests in {:.2} s = {:.0} findService/s; \
         p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        at(0.999).as_secs_f64() * 1e6,
        all[all.len() - 1].as_secs_f64() * 1e6,
    );
}

fn main() {
    let territory = Territory::france();
    let ecrf = common::ecrf();
    let bodies = bodies(territory);
    let mut criterion = Criterion::default().configure_from_args();
    throughput(&mut criterion, &ecrf, &bodies);
    criterion.final_summary();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and should not spend seconds timing requests.
    if std::env::args().any(|a| a == "--bench") {
        latency(&ecrf, &bodies, 1);
        latency(&ecrf, &bodies, 2);
    }
}

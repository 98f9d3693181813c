//! Prints `{"load_ms", "rss_mb", "peak_rss_mb", "locate_per_s"}` for the embedded territory.

use std::time::Instant;

use secourir_territory::Territory;

fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let started = Instant::now();
    let territory = match Territory::load_embedded() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    let rss = status_mb("VmRSS:");
    let peak = status_mb("VmHWM:");
    let points: Vec<(f64, f64)> = territory
        .departements()
        .iter()
        .filter_map(|d| territory.commune(&d.chef_lieu_insee))
        .filter_map(|c| Some((c.lat?, c.lon?)))
        .collect();
    let mut seed = 7u64;
    let mut n = 0u64;
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < 2.0 {
        for _ in 0..10_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let (lat, lon) = points[(seed >> 33) as usize % points.len()];
            let jitter = ((seed >> 20) & 0xfff) as f64 / 4096.0 - 0.5;
            std::hint::black_box(territory.locate(lat + jitter * 0.3, lon - jitter * 0.3));
            n += 1;
        }
    }
    let per_s = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "{{\"load_ms\": {load_ms:.1}, \"rss_mb\": {rss:.1}, \"peak_rss_mb\": {peak:.1}, \"locate_per_s\": {per_s:.0}}}"
    );
}

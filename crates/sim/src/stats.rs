//! Counters and answer-time histograms per zone, and the report made from them.

use serde::Serialize;

/// Width of a histogram bin, in milliseconds.
const BIN_MS: u64 = 100;
/// Bins up to one hour; longer answers go to the last bin.
const BINS: usize = 36_000;

/// Answer times in 100 ms bins: exact enough for percentiles, bounded in memory.
#[derive(Debug, Clone)]
pub struct Histogram {
    bins: Vec<u32>,
    count: u64,
    sum_ms: u64,
    within_15s: u64,
    within_60s: u64,
    waited: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            bins: vec![0; BINS],
            count: 0,
            sum_ms: 0,
            within_15s: 0,
            within_60s: 0,
            waited: 0,
        }
    }
}

impl Histogram {
    /// Records one answer time.
    pub fn record(&mut self, ms: u64) {
        let bin = usize::try_from(ms / BIN_MS)
            .unwrap_or(BINS - 1)
            .min(BINS - 1);
        self.bins[bin] += 1;
        self.count += 1;
        self.sum_ms += ms;
        self.within_15s += u64::from(ms <= 15_000);
        self.within_60s += u64::from(ms <= 60_000);
        self.waited += u64::from(ms > 0);
    }

    /// Adds another histogram into this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.bins.iter_mut().zip(&other.bins) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ms += other.sum_ms;
        self.within_15s += other.within_15s;
        self.within_60s += other.within_60s;
        self.waited += other.waited;
    }

    /// The answer time below which `q` of the answers fall, in seconds (upper edge of its bin).
    pub fn quantile_s(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, &n) in self.bins.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return ((i as u64 + 1) * BIN_MS) as f64 / 1000.0;
            }
        }
        (BINS as u64 * BIN_MS) as f64 / 1000.0
    }

    /// Mean answer time, seconds.
    pub fn mean_s(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ms as f64 / self.count as f64 / 1000.0
        }
    }

    /// Share of answers that had to wait at all.
    pub fn share_waited(&self) -> f64 {
        ratio(self.waited, self.count)
    }

    /// Answers counted.
    pub fn count(&self) -> u64 {
        self.count
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Counters of one zone (or of the nation).
#[derive(Debug, Clone, Default)]
pub struct ZoneStats {
    /// Calls offered.
    pub offered: u64,
    /// Calls answered by a call-taker.
    pub answered: u64,
    /// Callers who gave up before an answer.
    pub abandoned: u64,
    /// Calls refused (no capacity, busy rule).
    pub rejected: u64,
    /// Calls of this zone moved to another CTA.
    pub overflow_out: u64,
    /// Calls of other CTAs' zones moved to this zone's CTA (counted on the CTA's first zone).
    pub overflow_in: u64,
    /// Abandoned calls put on a call-back list.
    pub callbacks: u64,
    /// Answer times.
    pub answers: Histogram,
    /// Most calls waiting at once in the zone's CTA queue.
    pub longest_queue: u32,
    /// Most calls of this zone live at once.
    pub peak_simultaneous: u32,
    /// Calls of this zone live now.
    pub live: u32,
    /// Call-taker-milliseconds the zone's CTA could have lent (idle beyond its waiting calls and
    /// reserve) while a call that one of its tiers covers waited past its threshold elsewhere.
    pub lendable_idle_ms: u64,
}

/// One row of the report, with the field names of the JSON contract.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ZoneReport {
    /// Département code, or "national".
    pub zone: String,
    /// Calls offered.
    pub offered: u64,
    /// Calls answered.
    pub answered: u64,
    /// Calls abandoned before an answer.
    pub abandoned: u64,
    /// Calls refused.
    pub rejected: u64,
    /// Calls moved to another CTA.
    pub overflow_out: u64,
    /// Calls received from other CTAs.
    pub overflow_in: u64,
    /// Abandoned calls on a call-back list.
    pub callbacks: u64,
    /// Median answer time, seconds.
    pub answer_p50_s: f64,
    /// 90th percentile, seconds.
    pub answer_p90_s: f64,
    /// 95th percentile, seconds.
    pub answer_p95_s: f64,
    /// 99th percentile, seconds.
    pub answer_p99_s: f64,
    /// Mean answer time, seconds.
    pub answer_mean_s: f64,
    /// Share of answered calls answered within 15 s.
    pub answered_within_15s: f64,
    /// Share of answered calls answered within 60 s.
    pub answered_within_60s: f64,
    /// Share of offered calls answered within 15 s (NENA-STA-020's definition).
    pub offered_answered_within_15s: f64,
    /// Share of offered calls answered within 60 s.
    pub offered_answered_within_60s: f64,
    /// Share of offered calls answered at all.
    pub offered_answered: f64,
    /// Work conservation: call-taker-seconds lendable while a call it could take waited past
    /// its threshold (counted on the lending CTA's first zone). Near zero when no call-taker
    /// that could help sits idle.
    pub lendable_idle_s: f64,
    /// Most calls waiting at once in the queue.
    pub longest_queue: u32,
    /// Most calls live at once.
    pub peak_simultaneous: u32,
    /// The same figures without surges and outages, with `--compare-baseline`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Box<ZoneReport>>,
}

impl ZoneReport {
    /// The row of a zone's counters.
    pub fn of(zone: &str, s: &ZoneStats) -> ZoneReport {
        let h = &s.answers;
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        ZoneReport {
            zone: zone.to_owned(),
            offered: s.offered,
            answered: s.answered,
            abandoned: s.abandoned,
            rejected: s.rejected,
            overflow_out: s.overflow_out,
            overflow_in: s.overflow_in,
            callbacks: s.callbacks,
            answer_p50_s: h.quantile_s(0.50),
            answer_p90_s: h.quantile_s(0.90),
            answer_p95_s: h.quantile_s(0.95),
            answer_p99_s: h.quantile_s(0.99),
            answer_mean_s: round(h.mean_s()),
            answered_within_15s: round(ratio(h.within_15s, h.count)),
            answered_within_60s: round(ratio(h.within_60s, h.count)),
            offered_answered_within_15s: round(ratio(h.within_15s, s.offered)),
            offered_answered_within_60s: round(ratio(h.within_60s, s.offered)),
            offered_answered: round(ratio(s.answered, s.offered)),
            lendable_idle_s: round(s.lendable_idle_ms as f64 / 1000.0),
            longest_queue: s.longest_queue,
            peak_simultaneous: s.peak_simultaneous,
            baseline: None,
        }
    }
}

/// The whole report of a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Calls offered in the run (the baseline's not included).
    pub simulated_calls: u64,
    /// Wall-clock time of the run, seconds (the only figure that varies between identical runs).
    pub wall_seconds: f64,
    /// Simulated duration, seconds.
    pub simulated_seconds: f64,
    /// Seed used.
    pub seed: u64,
    /// Zones with a surge.
    pub surging_zones: Vec<String>,
    /// Zones in crisis: with a surge, or served by a CTA in outage.
    pub crisis_zones: Vec<String>,
    /// The mutual-aid goals against the baseline, with `--compare-baseline`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goals: Option<Goals>,
    /// National totals.
    pub national: ZoneReport,
    /// National totals of the voice calls and of the text conversations apart, when the
    /// scenario has callers who write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_medium: Option<ByMedium>,
    /// One row per zone, by département code.
    pub zones: Vec<ZoneReport>,
}

/// The national totals of each medium.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ByMedium {
    /// Voice calls.
    pub voice: ZoneReport,
    /// Text conversations.
    pub text: ZoneReport,
}

/// What national mutual aid must achieve in a crisis, read off a run and its baseline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Goals {
    /// Calls refused anywhere.
    pub rejected: u64,
    /// Share of the crisis zones' offered calls that were answered.
    pub crisis_answered: f64,
    /// Share of the crisis zones' offered calls answered within 15 s.
    pub crisis_within_15s: f64,
    /// Largest rise of answer-time p95 in a zone not in crisis, seconds, and that zone.
    pub worst_p95_rise_s: f64,
    /// Zone of `worst_p95_rise_s`.
    pub worst_p95_zone: String,
    /// Largest fall of the within-15 s share of offered calls in a zone not in crisis, points.
    pub worst_within_15s_fall_pts: f64,
    /// Zone of `worst_within_15s_fall_pts`.
    pub worst_within_15s_zone: String,
    /// Work conservation over the whole country, call-taker-seconds.
    pub lendable_idle_s: f64,
}

impl Goals {
    /// Whether the run meets the goals: nothing rejected, the crisis zones answer 85% of their
    /// calls, no other zone loses more than 1 s of p95 or 1 point of within-15 s.
    pub fn met(&self) -> bool {
        self.rejected == 0
            && self.crisis_answered >= 0.85
            && self.worst_p95_rise_s <= 1.0
            && self.worst_within_15s_fall_pts <= 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_bins() {
        let mut h = Histogram::default();
        for ms in 0..1000u64 {
            h.record(ms * 10);
        }
        assert_eq!(h.count(), 1000);
        // The 500th of 0, 10, … 9990 ms is 4990 ms, in the bin that ends at 5.0 s.
        assert_eq!(h.quantile_s(0.5), 5.0);
        assert_eq!(h.quantile_s(0.95), 9.5);
        assert!((h.mean_s() - 4.995).abs() < 1e-9);
        assert!((h.share_waited() - 0.999).abs() < 1e-12);
        h.record(10_000_000);
        assert_eq!(h.quantile_s(1.0), 3600.0);
    }
}

//! Tells a flood of calls (a telephony denial of service) from real callers, with no I/O and no
//! clock: the shell tells it each call that arrives and how each ended, with `now`.
//!
//! A suspected call is not refused (a real caller may be among them): the core queues it behind
//! every other caller, within a bounded share of capacity. So the signals must be strong enough
//! that a real surge (a storm, a fire seen by a whole town) is not suspected, and a flood is:
//! - a source address (or trunk) **bursting**: more calls a second than any real one sends
//!   ([`Policy::burst_per_s`]), and either **new** (first heard within
//!   [`Policy::new_for_ms`], and its calls naming no operator trunk of the configuration: an
//!   operator's SBC is known, even when a standby one takes over) or sending **short calls**
//!   (most of its last calls ended within [`Policy::short_ms`] without reaching a call-taker:
//!   silent callers who hang up, or who are hung up on);
//! - a caller number **repeating** far beyond a worried caller's redials
//!   ([`Policy::repeats`] calls within [`Policy::repeat_window_ms`]).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;

/// Thresholds of suspicion.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Calls a second from one source address, or one trunk, above which it is bursting.
    pub burst_per_s: u32,
    /// Window over which bursts are counted, in ms.
    pub burst_window_ms: u64,
    /// A source first heard this recently (ms) is new.
    pub new_for_ms: u64,
    /// A call ending within this many ms of its arrival, never having reached a call-taker,
    /// is short.
    pub short_ms: u64,
    /// Share of short calls among a source's last ended calls from which it sends short calls.
    pub short_share: f64,
    /// Ended calls a source's share is taken over (and the fewest that make a share).
    pub short_over: usize,
    /// Calls from one number within `repeat_window_ms` from which the number is repeating.
    pub repeats: u32,
    /// Window of repeats, in ms.
    pub repeat_window_ms: u64,
    /// Most sources, numbers and trunks kept each: beyond, the one heard least recently goes.
    pub keys_max: usize,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            burst_per_s: 5,
            burst_window_ms: 2_000,
            new_for_ms: 10 * 60_000,
            short_ms: 10_000,
            short_share: 0.6,
            short_over: 20,
            repeats: 6,
            repeat_window_ms: 60_000,
            keys_max: 10_000,
        }
    }
}

/// Why a call is suspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Its source address bursts and is new.
    NewSourceBurst,
    /// Its source address bursts and sends short calls.
    ShortCallsBurst,
    /// Its trunk bursts and sends short calls.
    TrunkBurst,
    /// Its number calls again and again.
    RepeatedNumber,
}

impl Reason {
    /// Name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NewSourceBurst => "new_source_burst",
            Reason::ShortCallsBurst => "short_calls_burst",
            Reason::TrunkBurst => "trunk_burst",
            Reason::RepeatedNumber => "repeated_number",
        }
    }

    /// What the supervision room reads.
    pub fn french(self) -> &'static str {
        match self {
            Reason::NewSourceBurst => "rafale d'une source inconnue",
            Reason::ShortCallsBurst => "rafale d'appels brefs d'une même source",
            Reason::TrunkBurst => "rafale d'appels brefs d'un même lien opérateur",
            Reason::RepeatedNumber => "numéro rappelant sans cesse",
        }
    }
}

/// One call as the shell saw it arrive.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// Address it came from.
    pub source: IpAddr,
    /// It names an operator trunk of the configuration: its source is never judged new (a
    /// standby SBC taking over in a storm is first heard then), only by its calls.
    pub trusted: bool,
    /// Caller's number, if any.
    pub number: Option<&'a str>,
    /// Ingress trunk, if named.
    pub trunk: Option<&'a str>,
}

/// What is known of one source, number or trunk.
#[derive(Debug, Default)]
struct Stats {
    first_at: u64,
    last_at: u64,
    /// Arrival instants within the longest window that counts, oldest first.
    arrivals: VecDeque<u64>,
    /// Whether each of the last ended calls was short, oldest first.
    ended: VecDeque<bool>,
}

impl Stats {
    fn arrived(&mut self, now: u64, keep_ms: u64, keep_max: usize) {
        if self.arrivals.is_empty() && self.ended.is_empty() && self.first_at == 0 {
            self.first_at = now;
        }
        self.last_at = now;
        self.arrivals.push_back(now);
        while self
            .arrivals
            .front()
            .is_some_and(|t| now.saturating_sub(*t) > keep_ms)
            || self.arrivals.len() > keep_max
        {
            self.arrivals.pop_front();
        }
    }

    fn within(&self, now: u64, ms: u64) -> usize {
        self.arrivals
            .iter()
            .rev()
            .take_while(|t| now.saturating_sub(**t) <= ms)
            .count()
    }

    fn ended(&mut self, short: bool, over: usize) {
        self.ended.push_back(short);
        while self.ended.len() > over {
            self.ended.pop_front();
        }
    }

    fn short_share(&self, over: usize) -> Option<f64> {
        // Too few ended calls say nothing yet.
        (self.ended.len() * 4 >= over)
            .then(|| self.ended.iter().filter(|s| **s).count() as f64 / self.ended.len() as f64)
    }
}

/// Statistics per key, bounded in number.
#[derive(Debug)]
struct Keyed<K> {
    stats: HashMap<K, Stats>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new() -> Keyed<K> {
        Keyed {
            stats: HashMap::new(),
        }
    }

    fn entry(&mut self, key: &K, max: usize) -> &mut Stats {
        if !self.stats.contains_key(key) && self.stats.len() >= max {
            // A flood of fresh addresses must not grow the table: the stalest goes.
            if let Some(stalest) = self
                .stats
                .iter()
                .min_by_key(|(_, s)| s.last_at)
                .map(|(k, _)| k.clone())
            {
                self.stats.remove(&stalest);
            }
        }
        self.stats.entry(key.clone()).or_default()
    }
}

/// Suspicion of every source, number and trunk heard.
#[derive(Debug)]
pub struct Detector {
    policy: Policy,
    sources: Keyed<IpAddr>,
    numbers: Keyed<String>,
    trunks: Keyed<String>,
}

impl Detector {
    /// A detector with these thresholds.
    pub fn new(policy: Policy) -> Detector {
        Detector {
            policy,
            sources: Keyed::new(),
            numbers: Keyed::new(),
            trunks: Keyed::new(),
        }
    }

    /// A call arrives at `now` (ms): why it is suspected, if it is.
    pub fn arrived(&mut self, call: Arrival<'_>, now: u64) -> Option<Reason> {
        let p = &self.policy;
        let keep_ms = p.burst_window_ms.max(p.repeat_window_ms);
        let burst_max = (p.burst_per_s as u64 * p.burst_window_ms / 1_000) as usize;
        let keep_max = burst_max.max(p.repeats as usize) * 4 + 1;
        let bursting = |s: &Stats| s.within(now, p.burst_window_ms) > burst_max;
        let short = |s: &Stats| {
            s.short_share(p.short_over)
                .is_some_and(|x| x >= p.short_share)
        };

        let source = self.sources.entry(&call.source, p.keys_max);
        source.arrived(now, keep_ms, keep_max);
        if bursting(source) {
            if !call.trusted && now.saturating_sub(source.first_at) < p.new_for_ms {
                return Some(Reason::NewSourceBurst);
            }
            if short(source) {
                return Some(Reason::ShortCallsBurst);
            }
        }
        if let Some(trunk) = call.trunk {
            let trunk = self.trunks.entry(&trunk.to_owned(), p.keys_max);
            trunk.arrived(now, keep_ms, keep_max);
            if bursting(trunk) && short(trunk) {
                return Some(Reason::TrunkBurst);
            }
        }
        if let Some(number) = call.number {
            let number = self.numbers.entry(&number.to_owned(), p.keys_max);
            number.arrived(now, keep_ms, keep_max);
            if number.within(now, p.repeat_window_ms) >= p.repeats as usize {
                return Some(Reason::RepeatedNumber);
            }
        }
        None
    }

    /// A call that arrived at `arrived_at` ended at `now`; `reached` tells whether a
    /// call-taker answered it.
    pub fn ended(&mut self, call: Arrival<'_>, arrived_at: u64, reached: bool, now: u64) {
        let p = &self.policy;
        let short = !reached && now.saturating_sub(arrived_at) < p.short_ms;
        if let Some(source) = self.sources.stats.get_mut(&call.source) {
            source.ended(short, p.short_over);
        }
        if let Some(trunk) = call.trunk.and_then(|t| self.trunks.stats.get_mut(t)) {
            trunk.ended(short, p.short_over);
        }
    }

    /// Sources, numbers and trunks followed now.
    pub fn followed(&self) -> usize {
        self.sources.stats.len() + self.numbers.stats.len() + self.trunks.stats.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(source: &str) -> Arrival<'_> {
        Arrival {
            source: source.parse().expect("address"),
            trusted: false,
            number: None,
            trunk: None,
        }
    }

    /// Calls from `source` at `per_s` a second from `start` for `ms`: the suspected ones.
    fn calls(d: &mut Detector, source: &str, per_s: u64, start: u64, ms: u64) -> usize {
        let every = 1_000 / per_s;
        (0..ms / every)
            .filter(|i| d.arrived(from(source), start + i * every).is_some())
            .count()
    }

    #[test]
    fn a_new_source_bursting_is_suspected_and_callers_elsewhere_are_not() {
        let mut d = Detector::new(Policy::default());
        // 50 calls a second from one new address, one a second from each of 30 others.
        let mut flood = 0;
        let mut genuine = 0;
        for second in 0..10u64 {
            let at = second * 1_000;
            flood += calls(&mut d, "127.0.0.2", 50, at, 1_000);
            for n in 0..30 {
                if d.arrived(from(&format!("127.0.1.{n}")), at + 7 * n)
                    .is_some()
                {
                    genuine += 1;
                }
            }
        }
        // Only the first 10 of the burst window (the allowed pace) went unsuspected.
        assert!(flood >= 480, "{flood} of 500 suspected");
        assert_eq!(genuine, 0);
    }

    #[test]
    fn an_old_trunk_surging_with_real_callers_is_not_suspected_but_short_calls_are() {
        let policy = Policy::default();
        let new_for = policy.new_for_ms;
        let mut d = Detector::new(policy);
        // An operator's SBC, heard for long at a calm pace.
        assert_eq!(calls(&mut d, "10.0.0.1", 1, 0, 5_000), 0);
        let later = new_for + 10_000;
        // A storm: 20 calls a second of real callers, who stay on the line.
        for i in 0..40u64 {
            let at = later + i * 50;
            assert_eq!(d.arrived(from("10.0.0.1"), at), None, "call {i}");
            d.ended(from("10.0.0.1"), at, true, at + 60_000);
        }
        // Then its calls turn short and silent: a flood through it.
        let flood_at = later + 5_000;
        for i in 0..40u64 {
            let at = flood_at + i * 50;
            d.arrived(from("10.0.0.1"), at);
            d.ended(from("10.0.0.1"), at, false, at + 1_500);
        }
        assert_eq!(
            d.arrived(from("10.0.0.1"), flood_at + 2_001),
            Some(Reason::ShortCallsBurst)
        );
    }

    #[test]
    fn a_new_source_naming_an_operator_trunk_is_judged_by_its_calls_only() {
        let mut d = Detector::new(Policy::default());
        let standby = |d: &mut Detector, at| {
            d.arrived(
                Arrival {
                    source: "10.0.0.2".parse().expect("address"),
                    trusted: true,
                    number: None,
                    trunk: Some("ingress-13"),
                },
                at,
            )
        };
        // A standby SBC taking over in a storm: 20 calls a second, at once.
        assert!((0..40u64).all(|i| standby(&mut d, i * 50).is_none()));
    }

    #[test]
    fn a_worried_caller_redialing_is_not_suspected_but_a_number_hammering_is() {
        let mut d = Detector::new(Policy::default());
        let call = |n| Arrival {
            source: "10.0.0.1".parse().expect("address"),
            trusted: false,
            number: Some(n),
            trunk: None,
        };
        for i in 0..5u64 {
            assert_eq!(d.arrived(call("0611111111"), i * 10_000), None);
        }
        assert_eq!(
            d.arrived(call("0611111111"), 50_000),
            Some(Reason::RepeatedNumber)
        );
        assert_eq!(d.arrived(call("0622222222"), 50_001), None);
    }

    #[test]
    fn fresh_addresses_by_the_thousand_keep_the_table_bounded() {
        let mut d = Detector::new(Policy {
            keys_max: 1_000,
            ..Policy::default()
        });
        for i in 0..20_000u32 {
            let source = IpAddr::from(i.to_be_bytes());
            d.arrived(
                Arrival {
                    source,
                    trusted: false,
                    number: None,
                    trunk: None,
                },
                u64::from(i),
            );
        }
        assert!(d.followed() <= 1_000, "{}", d.followed());
    }
}

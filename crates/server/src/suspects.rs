//! The shell around the flood detector: what it is told of each SIP call (where it came from,
//! whether a call-taker reached it, when it ended) and what the supervision room and the
//! metrics see of a flood.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use secourir_core::{CallId, Instant};
use secourir_flood::{Arrival, Detector, Policy, Reason};
use tracing::warn;

/// A suspected flood is written in the supervisors' journal at most this often per source.
const NOTE_EVERY_MS: u64 = 60_000;

/// One SIP call followed until it ends.
struct Followed {
    source: IpAddr,
    number: Option<String>,
    trunk: Option<String>,
    at: u64,
    reached: bool,
    trusted: bool,
}

impl Followed {
    /// What the call is known by, each a signal may point at.
    fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        std::iter::once(Key::Source(self.source))
            .chain(self.trunk.clone().map(Key::Trunk))
            .chain(self.number.clone().map(Key::Number))
    }
}

/// A source address, trunk or number, as a signal of the detector names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Source(IpAddr),
    Trunk(String),
    Number(String),
}

/// What the detector says of a call that arrives.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// Why it is suspected, if it is.
    pub(crate) reason: Option<Reason>,
    /// Earlier calls, still live and not yet with a call-taker, suspected now for the same
    /// reason.
    pub(crate) earlier: Vec<CallId>,
    /// What the supervisors' journal says, the first time in a while for this source.
    pub(crate) note: Option<String>,
}

/// Calls followed for the detector, and the floods already told to supervisors.
pub(crate) struct Suspects {
    detector: Detector,
    calls: HashMap<CallId, Followed>,
    /// The calls followed that are neither suspected nor with a call-taker, by what they are
    /// known by: a signal finds the earlier calls it points at without a scan of every call,
    /// which a flood makes many.
    open: HashMap<Key, HashSet<CallId>>,
    noted: HashMap<IpAddr, u64>,
}

impl Suspects {
    /// With the default thresholds.
    pub(crate) fn new() -> Suspects {
        Suspects {
            detector: Detector::new(Policy::default()),
            calls: HashMap::new(),
            open: HashMap::new(),
            noted: HashMap::new(),
        }
    }

    /// A SIP call arrived (`trusted`: naming an operator trunk of the configuration): why it is
    /// suspected, if it is, with the earlier calls still live that the same signal now points
    /// at (the first of a burst arrive before it shows), and a note for the supervisors (the
    /// first suspect of a source in a while).
    pub(crate) fn arrived(
        &mut self,
        call: CallId,
        source: IpAddr,
        number: Option<&str>,
        trunk: Option<&str>,
        trusted: bool,
        now: Instant,
    ) -> Verdict {
        let arrival = Arrival {
            source,
            trusted,
            number,
            trunk,
        };
        let reason = self.detector.arrived(arrival, now.0);
        let followed = Followed {
            source,
            number: number.map(str::to_owned),
            trunk: trunk.map(str::to_owned),
            at: now.0,
            reached: false,
            trusted,
        };
        if reason.is_none() {
            for key in followed.keys() {
                self.open.entry(key).or_default().insert(call);
            }
        }
        self.calls.insert(call, followed);
        let Some(reason) = reason else {
            return Verdict::default();
        };
        let pointed = match reason {
            Reason::NewSourceBurst | Reason::ShortCallsBurst => Some(Key::Source(source)),
            Reason::TrunkBurst => trunk.map(|t| Key::Trunk(t.to_owned())),
            Reason::RepeatedNumber => number.map(|n| Key::Number(n.to_owned())),
        };
        let mut earlier: Vec<CallId> = pointed
            .and_then(|key| self.open.remove(&key))
            .into_iter()
            .flatten()
            .collect();
        earlier.sort();
        for id in &earlier {
            self.close(*id);
        }
        metrics::counter!("secourir_calls_suspected_total", "reason" => reason.as_str())
            .increment(1 + earlier.len() as u64);
        let last = self.noted.get(&source).copied();
        let note = last.is_none_or(|at| now.0.saturating_sub(at) >= NOTE_EVERY_MS);
        let mut verdict = Verdict {
            reason: Some(reason),
            earlier,
            note: None,
        };
        if !note {
            return verdict;
        }
        if self.noted.len() > 10_000 {
            self.noted
                .retain(|_, at| now.0.saturating_sub(*at) < NOTE_EVERY_MS);
        }
        self.noted.insert(source, now.0);
        warn!(%source, reason = reason.as_str(), "calls suspected of a flood: queued behind every other caller");
        verdict.note = Some(format!(
            "afflux suspect ({}) depuis {source} : ses appels attendent derrière tous les autres",
            reason.french()
        ));
        verdict
    }

    /// A call-taker answered `call`.
    pub(crate) fn reached(&mut self, call: CallId) {
        if let Some(followed) = self.calls.get_mut(&call) {
            followed.reached = true;
        }
        self.close(call);
    }

    /// `call` is no longer one a signal may point at.
    fn close(&mut self, call: CallId) {
        let Some(f) = self.calls.get(&call) else {
            return;
        };
        for key in f.keys() {
            if let Some(set) = self.open.get_mut(&key) {
                set.remove(&call);
                if set.is_empty() {
                    self.open.remove(&key);
                }
            }
        }
    }

    /// `call` ended at `now`.
    pub(crate) fn ended(&mut self, call: CallId, now: Instant) {
        self.close(call);
        let Some(f) = self.calls.remove(&call) else {
            return;
        };
        let arrival = Arrival {
            source: f.source,
            trusted: f.trusted,
            number: f.number.as_deref(),
            trunk: f.trunk.as_deref(),
        };
        self.detector.ended(arrival, f.at, f.reached, now.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calls_of_a_burst_before_it_showed_are_suspected_with_it_once() {
        let mut suspects = Suspects::new();
        let flood: IpAddr = "127.0.0.2".parse().expect("address");
        let other: IpAddr = "127.0.0.1".parse().expect("address");
        let real = suspects.arrived(
            CallId(100),
            other,
            Some("0611111111"),
            None,
            false,
            Instant(0),
        );
        assert!(real.reason.is_none());
        // Call 1 of the source reaches a call-taker before the burst shows: not suspected.
        suspects.arrived(CallId(1), flood, None, None, false, Instant(50));
        suspects.reached(CallId(1));
        let mut first = None;
        for n in 2..=11u64 {
            let verdict = suspects.arrived(CallId(n), flood, None, None, false, Instant(n * 50));
            if verdict.reason.is_some() && first.is_none() {
                first = Some((n, verdict));
            }
        }
        let (n, verdict) = first.expect("the burst shows");
        assert!(verdict.note.is_some());
        // Every earlier call of the source, none of another source's.
        assert_eq!(verdict.earlier, (2..n).map(CallId).collect::<Vec<_>>());
        let next = suspects.arrived(CallId(12), flood, None, None, false, Instant(600));
        assert!(next.reason.is_some());
        assert!(next.earlier.is_empty(), "said once");
        assert!(next.note.is_none(), "noted once a minute");
        // Once every call ended, nothing is kept for them.
        for n in 1..=12u64 {
            suspects.ended(CallId(n), Instant(10_000));
        }
        suspects.ended(CallId(100), Instant(10_000));
        assert!(suspects.calls.is_empty() && suspects.open.is_empty());
    }
}

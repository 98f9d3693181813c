//! The shell around the flood detector: what it is told of each SIP call (where it came from,
//! whether a call-taker reached it, when it ended) and what the supervision room and the
//! metrics see of a flood.

use std::collections::HashMap;
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
}

/// Calls followed for the detector, and the floods already told to supervisors.
pub(crate) struct Suspects {
    detector: Detector,
    calls: HashMap<CallId, Followed>,
    noted: HashMap<IpAddr, u64>,
}

impl Suspects {
    /// With the default thresholds.
    pub(crate) fn new() -> Suspects {
        Suspects {
            detector: Detector::new(Policy::default()),
            calls: HashMap::new(),
            noted: HashMap::new(),
        }
    }

    /// A SIP call arrived: why it is suspected, if it is; `note` is set when the supervisors
    /// should be told (the first suspect of a source in a while).
    pub(crate) fn arrived(
        &mut self,
        call: CallId,
        source: IpAddr,
        number: Option<&str>,
        trunk: Option<&str>,
        now: Instant,
    ) -> (Option<Reason>, Option<String>) {
        let arrival = Arrival {
            source,
            number,
            trunk,
        };
        let reason = self.detector.arrived(arrival, now.0);
        self.calls.insert(
            call,
            Followed {
                source,
                number: number.map(str::to_owned),
                trunk: trunk.map(str::to_owned),
                at: now.0,
                reached: false,
            },
        );
        let Some(reason) = reason else {
            return (None, None);
        };
        metrics::counter!("secourir_calls_suspected_total", "reason" => reason.as_str())
            .increment(1);
        let last = self.noted.get(&source).copied();
        let note = last.is_none_or(|at| now.0.saturating_sub(at) >= NOTE_EVERY_MS);
        if !note {
            return (Some(reason), None);
        }
        if self.noted.len() > 10_000 {
            self.noted
                .retain(|_, at| now.0.saturating_sub(*at) < NOTE_EVERY_MS);
        }
        self.noted.insert(source, now.0);
        warn!(%source, reason = reason.as_str(), "calls suspected of a flood: queued behind every other caller");
        let text = format!(
            "afflux suspect ({}) depuis {source} : ses appels attendent derrière tous les autres",
            reason.french()
        );
        (Some(reason), Some(text))
    }

    /// A call-taker answered `call`.
    pub(crate) fn reached(&mut self, call: CallId) {
        if let Some(followed) = self.calls.get_mut(&call) {
            followed.reached = true;
        }
    }

    /// `call` ended at `now`.
    pub(crate) fn ended(&mut self, call: CallId, now: Instant) {
        let Some(f) = self.calls.remove(&call) else {
            return;
        };
        let arrival = Arrival {
            source: f.source,
            number: f.number.as_deref(),
            trunk: f.trunk.as_deref(),
        };
        self.detector.ended(arrival, f.at, f.reached, now.0);
    }
}

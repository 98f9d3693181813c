//! RFC 7339 overload control toward the peers that bring calls (operators' SBCs): the share of
//! new calls the platform asks them to send elsewhere (another site, another PSAP), with the
//! "loss" algorithm. The share comes from the calls the platform had to refuse for want of
//! capacity over the last seconds, and, before any is refused, from how full it is. Emergency
//! calls are never refused for being over a share: the platform still answers every INVITE it
//! can carry; the share is advice to a peer that has somewhere else to send them.
//!
//! No I/O and no clock: the shell gives `now`.

use std::collections::VecDeque;

/// How far back refusals count, ms.
pub const WINDOW_MS: u64 = 10_000;
/// How long a peer keeps applying a share it was given, ms (`oc-validity`).
pub const VALIDITY_MS: u64 = 5_000;
/// Offered calls in the window below which refusals say too little to ask for a share.
const FEW: usize = 5;
/// Occupancy of the national capacity from which the platform warns before refusing.
const EARLY_FROM: f64 = 0.9;
/// The share asked at full occupancy while nothing has been refused yet, percent.
const EARLY_AT_FULL: f64 = 20.0;

/// The platform's overload state, as the Via of its answers tells it.
#[derive(Debug, Default)]
pub struct Overload {
    /// Offered INVITEs in the window, and whether each was refused for want of capacity.
    recent: VecDeque<(u64, bool)>,
    occupancy: f64,
    loss: u8,
    /// When `loss` last changed, ms since the epoch: `oc-seq` grows with every change.
    changed_at_ms: u64,
}

/// What the answers to a peer that asked for overload control say now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advice {
    /// Percent of new calls to send elsewhere.
    pub loss: u8,
    /// When that share was set, ms since the epoch.
    pub since_ms: u64,
}

impl Overload {
    /// An INVITE offered at `now_ms`, refused for want of capacity or not.
    pub fn offered(&mut self, now_ms: u64, refused: bool) {
        self.recent.push_back((now_ms, refused));
        self.update(now_ms);
    }

    /// How many calls the platform carries, against its national capacity.
    pub fn carrying(&mut self, now_ms: u64, live: usize, capacity: u32) {
        self.occupancy = live as f64 / f64::from(capacity.max(1));
        self.update(now_ms);
    }

    fn update(&mut self, now_ms: u64) {
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now_ms.saturating_sub(*at) > WINDOW_MS)
        {
            self.recent.pop_front();
        }
        let offered = self.recent.len();
        let refused = self.recent.iter().filter(|(_, r)| *r).count();
        let refused_share = if offered >= FEW {
            100.0 * refused as f64 / offered as f64
        } else {
            0.0
        };
        let early = if self.occupancy >= EARLY_FROM {
            EARLY_AT_FULL * ((self.occupancy - EARLY_FROM) / (1.0 - EARLY_FROM)).min(1.0)
        } else {
            0.0
        };
        let loss = refused_share.max(early).round().clamp(0.0, 100.0) as u8;
        if loss != self.loss {
            self.loss = loss;
            self.changed_at_ms = now_ms;
        }
    }

    /// The share asked now.
    pub fn advice(&self) -> Advice {
        Advice {
            loss: self.loss,
            since_ms: self.changed_at_ms,
        }
    }
}

/// Whether a Via header value carries the `oc` parameter: its sender applies overload control.
pub fn asked(via: &str) -> bool {
    via.split(';').skip(1).any(|param| {
        let name = param.split('=').next().unwrap_or("").trim();
        name.eq_ignore_ascii_case("oc")
    })
}

/// The Via value of an answer to a request whose Via is `via`: its own parameters, an empty
/// `oc` replaced by the advice (RFC 7339 §5.2); with no share to ask, `oc-validity=0` tells the
/// peer to stop reducing.
pub fn answered(via: &str, advice: Advice) -> String {
    let kept: Vec<&str> = via
        .split(';')
        .enumerate()
        .filter(|(i, param)| {
            *i == 0 || {
                let name = param.split('=').next().unwrap_or("").trim();
                !name.eq_ignore_ascii_case("oc")
                    && !name.eq_ignore_ascii_case("oc-algo")
                    && !name.eq_ignore_ascii_case("oc-validity")
                    && !name.eq_ignore_ascii_case("oc-seq")
            }
        })
        .map(|(_, param)| param)
        .collect();
    let seq = format!("{}.{:03}", advice.since_ms / 1000, advice.since_ms % 1000);
    let validity = if advice.loss > 0 { VALIDITY_MS } else { 0 };
    format!(
        "{};oc={};oc-algo=\"loss\";oc-validity={validity};oc-seq={seq}",
        kept.join(";"),
        advice.loss
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nothing_is_asked_while_calls_are_carried() {
        let mut o = Overload::default();
        for t in 0..100 {
            o.offered(t * 100, false);
        }
        o.carrying(10_000, 50, 100);
        assert_eq!(o.advice().loss, 0);
    }

    #[test]
    fn the_share_refused_is_the_share_asked_and_it_fades_with_the_window() {
        let mut o = Overload::default();
        for t in 0..10 {
            o.offered(t * 100, t % 10 < 3);
        }
        assert_eq!(o.advice().loss, 30);
        let set_at = o.advice().since_ms;
        o.offered(WINDOW_MS + 1_000, false);
        assert_eq!(o.advice().loss, 0);
        assert!(
            o.advice().since_ms > set_at,
            "oc-seq grows with each change"
        );
    }

    #[test]
    fn a_full_platform_warns_before_it_refuses() {
        let mut o = Overload::default();
        o.carrying(0, 89, 100);
        assert_eq!(o.advice().loss, 0);
        o.carrying(1, 95, 100);
        assert_eq!(o.advice().loss, 10);
        o.carrying(2, 100, 100);
        assert_eq!(o.advice().loss, 20);
        o.carrying(3, 300, 100);
        assert_eq!(o.advice().loss, 20);
    }

    #[test]
    fn a_via_asks_with_its_oc_parameter_and_the_answer_fills_it() {
        let via = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1;oc;oc-algo=\"loss,A\"";
        assert!(asked(via));
        assert!(!asked("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1;ocx=1"));
        assert!(!asked("SIP/2.0/UDP oc.example:5060;branch=z9hG4bK-1"));
        let advice = Advice {
            loss: 30,
            since_ms: 1_282_321_615_782,
        };
        assert_eq!(
            answered(via, advice),
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1;oc=30;oc-algo=\"loss\";oc-validity=5000;oc-seq=1282321615.782"
        );
        let calm = answered(
            via,
            Advice {
                loss: 0,
                since_ms: 5,
            },
        );
        assert!(
            calm.ends_with(";oc=0;oc-algo=\"loss\";oc-validity=0;oc-seq=0.005"),
            "{calm}"
        );
    }

    proptest! {
        #[test]
        fn the_share_is_a_percentage_whatever_happens(
            events in proptest::collection::vec((0u64..2_000, any::<bool>(), 0usize..500), 0..200),
        ) {
            let mut o = Overload::default();
            let mut now = 0;
            let mut last = o.advice();
            for (step, refused, live) in events {
                now += step;
                o.offered(now, refused);
                o.carrying(now, live, 100);
                let advice = o.advice();
                prop_assert!(advice.loss <= 100);
                if advice.loss != last.loss {
                    prop_assert!(advice.since_ms >= last.since_ms);
                }
                last = advice;
            }
        }
    }
}

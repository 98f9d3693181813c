//! A CTA's reserve: the call-takers its own zones need to meet its own service target, sized
//! with Erlang C from their recent offered load. Only call-takers beyond it may be lent.

use std::collections::VecDeque;

use secourir_config::CtaPlan;

use crate::Instant;

/// Arrivals older than this no longer count in the offered load: long enough to smooth the
/// Poisson noise of a small département (a few calls an hour), short enough to follow a shift.
pub(crate) const WINDOW_MS: u64 = 30 * 60_000;
/// How stale a reserve may get before it is sized again: short beside the 30-minute window, so
/// the reserve follows the load, and long enough that sizing costs nothing per call.
pub(crate) const REFRESH_MS: u64 = 5_000;
/// Bound on the arrivals remembered per CTA: 10,000 in 30 min is 20 times the busiest CTA's
/// crisis rate; beyond it the oldest are forgotten and the load is read as at least that.
const MAX_ARRIVALS: usize = 10_000;
/// Weight of one observed handling time in the running mean (1/32: about the last 32 calls).
const HANDLING_WEIGHT: f64 = 1.0 / 32.0;

/// The recent offered load of one CTA's zones and the reserve it implies.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Load {
    arrivals: VecDeque<Instant>,
    /// Mean time a call holds a call-taker (ring and talk), ms.
    handling_ms: f64,
    /// Call-takers the CTA keeps for its own callers, as last sized.
    reserve: u32,
    sized_at: Option<Instant>,
}

impl Load {
    /// No arrival seen yet; handling time from the plan until calls are observed.
    pub(crate) fn new(handling_ms: u64) -> Load {
        Load {
            arrivals: VecDeque::new(),
            handling_ms: handling_ms as f64,
            reserve: 0,
            sized_at: None,
        }
    }

    /// One call offered to the CTA's zones.
    pub(crate) fn arrival(&mut self, now: Instant) {
        if self.arrivals.len() == MAX_ARRIVALS {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now);
    }

    /// One call that held a call-taker this long ended.
    pub(crate) fn handled(&mut self, ms: u64) {
        self.handling_ms += (ms as f64 - self.handling_ms) * HANDLING_WEIGHT;
    }

    /// Time a call keeps a call-taker from the next one, ms: handling and wrap-up.
    pub(crate) fn holding_ms(&self, plan: &CtaPlan) -> f64 {
        self.handling_ms + plan.wrap_up_ms as f64
    }

    /// The reserve as last sized.
    pub(crate) fn reserve(&self) -> u32 {
        self.reserve
    }

    /// Whether the reserve is older than [`REFRESH_MS`].
    pub(crate) fn stale(&self, now: Instant) -> bool {
        self.sized_at.is_none_or(|at| now.since(at) >= REFRESH_MS)
    }

    /// Sizes the reserve again at `now`. `prior_per_ms` is the expected rate used for the part
    /// of the window before `started` (the first instant the core saw), so that a fresh core
    /// neither lends a busy CTA's every call-taker nor keeps an idle one's.
    pub(crate) fn size(
        &mut self,
        now: Instant,
        started: Instant,
        prior_per_ms: f64,
        plan: &CtaPlan,
    ) {
        while self
            .arrivals
            .front()
            .is_some_and(|&at| now.since(at) >= WINDOW_MS)
        {
            self.arrivals.pop_front();
        }
        let observed_ms = now.since(started).min(WINDOW_MS);
        let unobserved_ms = WINDOW_MS - observed_ms;
        let rate_per_ms =
            (self.arrivals.len() as f64 + prior_per_ms * unobserved_ms as f64) / WINDOW_MS as f64;
        let holding_ms = self.holding_ms(plan);
        let erlangs = rate_per_ms * holding_ms;
        let needed = if erlangs > 0.0 {
            secourir_erlang::agents_for_service_level(
                erlangs,
                holding_ms / 1000.0,
                plan.reserve_within_ms as f64 / 1000.0,
                plan.reserve_share,
            )
        } else {
            0
        };
        self.reserve = needed.max(plan.keep_idle);
        self.sized_at = Some(now);
    }
}

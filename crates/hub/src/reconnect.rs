//! When to try the broker again: a doubling delay after each failed connection, reset by a
//! connection that held. Given the time, so that it is tested without waiting.

/// The reconnection schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconnect {
    first_ms: i64,
    max_ms: i64,
    failures: u32,
    next_at_ms: i64,
}

impl Reconnect {
    /// A schedule that allows an attempt at once.
    pub fn new(first_ms: i64, max_ms: i64) -> Reconnect {
        assert!(
            first_ms > 0 && max_ms >= first_ms,
            "a reconnection delay must be positive"
        );
        Reconnect {
            first_ms,
            max_ms,
            failures: 0,
            next_at_ms: i64::MIN,
        }
    }

    /// Whether an attempt may start now.
    pub fn due(&self, now_ms: i64) -> bool {
        now_ms >= self.next_at_ms
    }

    /// When the next attempt may start.
    pub fn next_at_ms(&self) -> i64 {
        self.next_at_ms
    }

    /// A connection attempt failed, or an open connection was lost.
    pub fn failed(&mut self, now_ms: i64) -> i64 {
        let doublings = self.failures.min(32);
        self.failures = self.failures.saturating_add(1);
        let delay_ms = self
            .first_ms
            .saturating_mul(1_i64 << doublings)
            .min(self.max_ms);
        self.next_at_ms = now_ms.saturating_add(delay_ms);
        self.next_at_ms
    }

    /// A connection opened with its queues: the next loss starts from the first delay again.
    pub fn connected(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_and_reset_on_success() {
        let mut reconnect = Reconnect::new(100, 1_000);
        assert!(reconnect.due(0));
        let delays: Vec<i64> = (0..6).map(|_| reconnect.failed(0)).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1_000, 1_000]);
        assert!(!reconnect.due(999));
        assert!(reconnect.due(1_000));
        reconnect.connected();
        assert_eq!(reconnect.failed(5_000), 5_100);
    }
}

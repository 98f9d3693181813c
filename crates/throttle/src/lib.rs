//! How often a secret may be tried (a console password, a phone's digest): per login and per
//! source address, a few free failures, then a delay that doubles with each further failure,
//! then a lock-out. A refused attempt is not checked at all, so guessing is bounded by the
//! policy, not by the speed of the check. The clock is given: the state machine has none of
//! its own.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One key's policy.
#[derive(Debug, Clone, Copy)]
struct Policy {
    /// Failures answered without delay.
    free: u32,
    /// Failures within `window` after which the key is locked for `window`.
    lock_after: u32,
}

/// Per login: a person mistyping gets three tries, then waits 1, 2, 4… s.
const PER_LOGIN: Policy = Policy {
    free: 3,
    lock_after: 10,
};

/// Per source: a CTA room behind one address may mistype more often, together.
const PER_SOURCE: Policy = Policy {
    free: 20,
    lock_after: 30,
};

/// How long failures are remembered, and a lock-out lasts.
const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Longest delay between two attempts before the lock-out.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// Keys remembered per kind at most: beyond, the oldest is forgotten (a flood of sources must
/// not grow memory without bound).
const MAX_KEYS: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
    /// No attempt before this instant.
    next: Instant,
}

#[derive(Debug)]
struct Keyed<K> {
    policy: Policy,
    failures: HashMap<K, Failures>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(policy: Policy) -> Keyed<K> {
        Keyed {
            policy,
            failures: HashMap::new(),
        }
    }

    fn wait(&mut self, key: &K, now: Instant) -> Option<Duration> {
        let f = self.failures.get(key)?;
        if now.duration_since(f.first) >= WINDOW && now >= f.next {
            self.failures.remove(key);
            return None;
        }
        (now < f.next).then(|| f.next - now)
    }

    /// Counts a failure; true when it locks the key.
    fn fail(&mut self, key: &K, now: Instant) -> bool {
        if self.failures.len() >= MAX_KEYS
            && !self.failures.contains_key(key)
            && let Some(oldest) = self
                .failures
                .iter()
                .min_by_key(|(_, f)| f.first)
                .map(|(k, _)| k.clone())
        {
            self.failures.remove(&oldest);
        }
        let f = self.failures.entry(key.clone()).or_insert(Failures {
            count: 0,
            first: now,
            next: now,
        });
        if now.duration_since(f.first) >= WINDOW {
            *f = Failures {
                count: 0,
                first: now,
                next: now,
            };
        }
        f.count += 1;
        let policy = self.policy;
        if f.count >= policy.lock_after {
            f.next = now + WINDOW;
            return f.count == policy.lock_after;
        }
        if f.count >= policy.free {
            let doubling = (f.count - policy.free).min(16);
            f.next = now + Duration::from_secs(1u64 << doubling).min(MAX_DELAY);
        }
        false
    }

    fn forget(&mut self, key: &K) {
        self.failures.remove(key);
    }
}

/// What the throttle says of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password.
    Try,
    /// Refuse without checking; try again after this long.
    Wait(Duration),
}

/// A lock-out to tell the supervisors of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lockout {
    /// A login, after its failures.
    Login(String),
    /// A source address, after the failures from it.
    Source(IpAddr),
}

/// A login throttle.
#[derive(Debug)]
pub struct Throttle {
    logins: Keyed<String>,
    sources: Keyed<IpAddr>,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle {
            logins: Keyed::new(PER_LOGIN),
            sources: Keyed::new(PER_SOURCE),
        }
    }
}

impl Throttle {
    /// Whether an attempt for `login` from `source` may be checked now.
    pub fn check(&mut self, login: &str, source: Option<IpAddr>, now: Instant) -> Verdict {
        let by_login = self.logins.wait(&login.to_owned(), now);
        let by_source = source.and_then(|s| self.sources.wait(&s, now));
        match by_login.max(by_source) {
            Some(wait) => Verdict::Wait(wait),
            None => Verdict::Try,
        }
    }

    /// A wrong password (or an unknown login): the lock-outs it starts.
    pub fn failed(&mut self, login: &str, source: Option<IpAddr>, now: Instant) -> Vec<Lockout> {
        let mut locked = Vec::new();
        if self.logins.fail(&login.to_owned(), now) {
            locked.push(Lockout::Login(login.to_owned()));
        }
        if let Some(source) = source
            && self.sources.fail(&source, now)
        {
            locked.push(Lockout::Source(source));
        }
        locked
    }

    /// A right password: the login's failures are forgotten (not its source's).
    pub fn succeeded(&mut self, login: &str) {
        self.logins.forget(&login.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_free_failures_then_a_doubling_delay_then_a_lock_out() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..2 {
            assert_eq!(t.check("ota", Some(ip), t0), Verdict::Try);
            assert!(t.failed("ota", Some(ip), t0).is_empty());
        }
        assert_eq!(t.check("ota", Some(ip), t0), Verdict::Try);
        t.failed("ota", Some(ip), t0);
        assert_eq!(
            t.check("ota", Some(ip), t0),
            Verdict::Wait(Duration::from_secs(1))
        );
        // Attempts allowed in the first 15 minutes: 10, then locked.
        let mut now = t0;
        let mut tried = 3;
        let mut locked = Vec::new();
        while locked.is_empty() {
            now += Duration::from_millis(100);
            if t.check("ota", Some(ip), now) == Verdict::Try {
                tried += 1;
                locked = t.failed("ota", Some(ip), now);
            }
        }
        assert_eq!(tried, 10);
        assert_eq!(locked, vec![Lockout::Login("ota".into())]);
        assert!(
            matches!(t.check("ota", Some(ip), now), Verdict::Wait(w) if w > Duration::from_secs(800))
        );
        // Another login from the same room is not held back.
        assert_eq!(t.check("ota-2", Some(ip), now), Verdict::Try);
        // After the window, the login may try again.
        assert_eq!(t.check("ota", Some(ip), now + WINDOW), Verdict::Try);
    }

    #[test]
    fn a_source_trying_many_logins_is_held_back() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        let mut locked = Vec::new();
        let mut now = t0;
        let mut i = 0;
        while !locked.contains(&Lockout::Source(ip)) {
            now += Duration::from_secs(1);
            i += 1;
            if t.check(&format!("guess-{i}"), Some(ip), now) == Verdict::Try {
                locked = t.failed(&format!("guess-{i}"), Some(ip), now);
            }
            assert!(i < 10_000, "never locked");
        }
        assert!(matches!(t.check("ota", Some(ip), now), Verdict::Wait(_)));
        assert_eq!(
            t.check("ota", Some("10.0.0.3".parse().unwrap()), now),
            Verdict::Try
        );
    }

    #[test]
    fn a_right_password_forgets_the_login_s_failures() {
        let mut t = Throttle::default();
        let now = Instant::now();
        for _ in 0..3 {
            t.failed("ota", None, now);
        }
        assert!(matches!(t.check("ota", None, now), Verdict::Wait(_)));
        t.succeeded("ota");
        assert_eq!(t.check("ota", None, now), Verdict::Try);
    }
}

//! How often a secret may be tried (a console password, a phone's digest): a few free
//! failures, then a delay that doubles with each further failure, then a lock-out. A refused
//! attempt is not checked at all, so guessing is bounded by the policy, not by the speed of
//! the check. The clock is given: the state machine has none of its own.
//!
//! Failures are counted per login and source together, per source, and per login from the
//! sources not known for it; never per login alone, for then anyone who reaches the port could
//! lock a call-taker out with a few wrong answers, and the owner's right password from their
//! own phone or console would be refused with them. A source is known for a login once the
//! login's right password came from it: an attempt from there is judged by its own failures
//! only, so nobody elsewhere can hold it back. A guesser spread over many sources still meets
//! the per-login count, which attempts from unknown sources alone meet.

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

/// Per login and source: a person mistyping gets three tries, then waits 1, 2, 4… s.
const PER_LOGIN_FROM: Policy = Policy {
    free: 3,
    lock_after: 10,
};

/// Per source: a CTA room behind one address may mistype more often, together.
const PER_SOURCE: Policy = Policy {
    free: 20,
    lock_after: 30,
};

/// Per login, from the sources not known for it: a guesser spread over many addresses gets
/// about what two addresses would, and the owner moving to a new address is held back only
/// while such a guess goes on.
const PER_LOGIN_FROM_UNKNOWN: Policy = Policy {
    free: 6,
    lock_after: 20,
};

/// How long failures are remembered, and a lock-out lasts.
const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Longest delay between two attempts before the lock-out.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// Keys remembered per kind at most: beyond, the oldest is forgotten (a flood of sources must
/// not grow memory without bound).
const MAX_KEYS: usize = 65_536;

/// Sources remembered as known per login: a phone, a console, a room or two; the least
/// recently right one is forgotten first.
const KNOWN_PER_LOGIN: usize = 4;

/// How long a source stays known after the last right password from it: long enough for a
/// call-taker back from leave to find their phone's address still known.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);

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

/// The sources each login's right password came from, the most recent first.
#[derive(Debug, Default)]
struct Known {
    sources: HashMap<String, Vec<(IpAddr, Instant)>>,
}

impl Known {
    fn contains(&self, login: &str, source: IpAddr, now: Instant) -> bool {
        self.sources.get(login).is_some_and(|known| {
            known
                .iter()
                .any(|&(ip, at)| ip == source && now.duration_since(at) < KNOWN_FOR)
        })
    }

    fn remember(&mut self, login: &str, source: IpAddr, now: Instant) {
        // Only right passwords come here, so only real logins; bounded all the same.
        if self.sources.len() >= MAX_KEYS
            && !self.sources.contains_key(login)
            && let Some(stalest) = self
                .sources
                .iter()
                .min_by_key(|(_, known)| known.first().map(|&(_, at)| at))
                .map(|(login, _)| login.clone())
        {
            self.sources.remove(&stalest);
        }
        let known = self.sources.entry(login.to_owned()).or_default();
        known.retain(|&(ip, at)| ip != source && now.duration_since(at) < KNOWN_FOR);
        known.insert(0, (source, now));
        known.truncate(KNOWN_PER_LOGIN);
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
    /// A login from one source, after the failures from there.
    LoginFrom {
        /// The login tried.
        login: String,
        /// Where the attempts came from.
        source: IpAddr,
    },
    /// A source address, after the failures from it, whatever the login.
    Source(IpAddr),
    /// A login from every source not known for it, after the failures from those: its known
    /// sources may still try.
    LoginFromUnknown(String),
}

/// A login throttle.
#[derive(Debug)]
pub struct Throttle {
    pairs: Keyed<(String, IpAddr)>,
    sources: Keyed<IpAddr>,
    logins: Keyed<String>,
    known: Known,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle {
            pairs: Keyed::new(PER_LOGIN_FROM),
            sources: Keyed::new(PER_SOURCE),
            logins: Keyed::new(PER_LOGIN_FROM_UNKNOWN),
            known: Known::default(),
        }
    }
}

impl Throttle {
    /// Whether an attempt for `login` from `source` may be checked now.
    pub fn check(&mut self, login: &str, source: Option<IpAddr>, now: Instant) -> Verdict {
        let by_pair = source.and_then(|s| self.pairs.wait(&(login.to_owned(), s), now));
        let wait = if self.is_known(login, source, now) {
            // The owner's right answer from where they are known is never held back by
            // failures from elsewhere, nor by other logins' failures from here.
            by_pair
        } else {
            let by_source = source.and_then(|s| self.sources.wait(&s, now));
            let by_login = self.logins.wait(&login.to_owned(), now);
            by_pair.max(by_source).max(by_login)
        };
        match wait {
            Some(wait) => Verdict::Wait(wait),
            None => Verdict::Try,
        }
    }

    /// A wrong password (or an unknown login): the lock-outs it starts.
    pub fn failed(&mut self, login: &str, source: Option<IpAddr>, now: Instant) -> Vec<Lockout> {
        let mut locked = Vec::new();
        let known = self.is_known(login, source, now);
        if let Some(source) = source {
            if self.pairs.fail(&(login.to_owned(), source), now) {
                locked.push(Lockout::LoginFrom {
                    login: login.to_owned(),
                    source,
                });
            }
            if self.sources.fail(&source, now) {
                locked.push(Lockout::Source(source));
            }
        }
        if !known && self.logins.fail(&login.to_owned(), now) {
            locked.push(Lockout::LoginFromUnknown(login.to_owned()));
        }
        locked
    }

    /// A right password: `source` becomes known for `login` and its failures there are
    /// forgotten. The source's failures with other logins, and the login's from unknown
    /// sources, are not: a guesser must not gain from the owner's phone registering again.
    pub fn succeeded(&mut self, login: &str, source: Option<IpAddr>, now: Instant) {
        if let Some(source) = source {
            self.pairs.forget(&(login.to_owned(), source));
            self.known.remember(login, source, now);
        }
    }

    fn is_known(&self, login: &str, source: Option<IpAddr>, now: Instant) -> bool {
        source.is_some_and(|s| self.known.contains(login, s, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn three_free_failures_then_a_doubling_delay_then_a_lock_out() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let ip = ip("10.0.0.1");
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
        assert_eq!(
            locked,
            vec![Lockout::LoginFrom {
                login: "ota".into(),
                source: ip
            }]
        );
        assert!(
            matches!(t.check("ota", Some(ip), now), Verdict::Wait(w) if w > Duration::from_secs(800))
        );
        // Another login from the same room is not held back.
        assert_eq!(t.check("ota-2", Some(ip), now), Verdict::Try);
        // After the window, the login may try again.
        assert_eq!(t.check("ota", Some(ip), now + WINDOW), Verdict::Try);
    }

    #[test]
    fn a_source_trying_many_logins_is_held_back_but_not_for_a_login_known_there() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let ip = ip("10.0.0.2");
        t.succeeded("ota", Some(ip), t0);
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
        assert!(matches!(t.check("ota-2", Some(ip), now), Verdict::Wait(_)));
        let elsewhere = super::tests::ip("10.0.0.3");
        assert_eq!(t.check("ota-2", Some(elsewhere), now), Verdict::Try);
        assert_eq!(t.check("ota", Some(ip), now), Verdict::Try);
    }

    #[test]
    fn a_right_password_forgets_the_failures_from_its_source_only() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let (here, there) = (ip("10.0.0.4"), ip("10.0.0.5"));
        for _ in 0..3 {
            t.failed("ota", Some(here), now);
            t.failed("ota", Some(there), now);
        }
        assert!(matches!(t.check("ota", Some(here), now), Verdict::Wait(_)));
        t.succeeded("ota", Some(here), now);
        assert_eq!(t.check("ota", Some(here), now), Verdict::Try);
        assert!(matches!(t.check("ota", Some(there), now), Verdict::Wait(_)));
    }

    /// The defect this design answers: wrong answers for a login from elsewhere refused the
    /// owner's right one from their own phone.
    #[test]
    fn the_owner_from_a_known_source_gets_try_whatever_another_source_does() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let (phone, attacker) = (ip("10.0.0.10"), ip("192.0.2.66"));
        t.succeeded("ota-13-1", Some(phone), t0);
        let mut now = t0;
        let (mut checked, mut locks) = (0, Vec::new());
        // Twenty minutes of wrong answers, ten a second: past the lock-out and its window.
        for _ in 0..12_000 {
            now += Duration::from_millis(100);
            assert_eq!(t.check("ota-13-1", Some(phone), now), Verdict::Try);
            if t.check("ota-13-1", Some(attacker), now) == Verdict::Try {
                checked += 1;
                locks.extend(t.failed("ota-13-1", Some(attacker), now));
            }
        }
        assert!(
            checked <= 2 * PER_LOGIN_FROM.lock_after,
            "{checked} checked"
        );
        assert!(
            locks.contains(&Lockout::LoginFrom {
                login: "ota-13-1".into(),
                source: attacker
            }),
            "{locks:?}"
        );
        assert!(matches!(
            t.check("ota-13-1", Some(attacker), now),
            Verdict::Wait(_)
        ));
        // The owner's own wrong answers are held back as anyone's are.
        for _ in 0..PER_LOGIN_FROM.free {
            t.failed("ota-13-1", Some(phone), now);
        }
        assert!(matches!(
            t.check("ota-13-1", Some(phone), now),
            Verdict::Wait(_)
        ));
    }

    #[test]
    fn a_guess_spread_over_many_sources_is_held_back_for_unknown_sources_only() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let phone = ip("10.0.0.10");
        t.succeeded("ota-13-1", Some(phone), t0);
        let source = |i: u32| IpAddr::from([198, 18, (i >> 8) as u8, i as u8]);
        let mut now = t0;
        let (mut checked, mut locks) = (0, Vec::new());
        // One new source a second, for a little less than the window.
        for i in 0..850 {
            now += Duration::from_secs(1);
            if t.check("ota-13-1", Some(source(i)), now) == Verdict::Try {
                checked += 1;
                locks.extend(t.failed("ota-13-1", Some(source(i)), now));
            }
        }
        assert_eq!(checked, PER_LOGIN_FROM_UNKNOWN.lock_after);
        assert_eq!(locks, vec![Lockout::LoginFromUnknown("ota-13-1".into())]);
        assert!(matches!(
            t.check("ota-13-1", Some(source(5_000)), now),
            Verdict::Wait(w) if w > MAX_DELAY
        ));
        assert_eq!(t.check("ota-13-1", Some(phone), now), Verdict::Try);
        assert_eq!(t.check("ota-13-2", Some(source(5_000)), now), Verdict::Try);
    }

    #[test]
    fn a_few_sources_stay_known_per_login_for_a_month() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let sources: Vec<IpAddr> = (1..=5).map(|i| IpAddr::from([10, 0, 1, i])).collect();
        for (i, &s) in sources.iter().enumerate() {
            t.succeeded("ota", Some(s), t0 + Duration::from_secs(i as u64));
        }
        let now = t0 + Duration::from_secs(10);
        assert!(!t.is_known("ota", Some(sources[0]), now), "five kept");
        assert!(
            sources[1..]
                .iter()
                .all(|&s| t.is_known("ota", Some(s), now))
        );
        assert!(!t.is_known("ota-2", Some(sources[1]), now));
        assert!(!t.is_known("ota", None, now));
        // Right again from an old one: the least recent of the others goes instead.
        t.succeeded("ota", Some(sources[1]), now);
        t.succeeded("ota", Some(sources[0]), now);
        assert!(t.is_known("ota", Some(sources[1]), now));
        assert!(!t.is_known("ota", Some(sources[2]), now));
        assert!(!t.is_known("ota", Some(sources[4]), now + KNOWN_FOR));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_sources_and_logins() {
        let mut t = Throttle::default();
        let mut now = Instant::now();
        let flood = MAX_KEYS as u32 + 100;
        for i in 0..flood {
            now += Duration::from_millis(1);
            let login = format!("guess-{i}");
            let source = Some(IpAddr::from(i.to_be_bytes()));
            t.check(&login, source, now);
            t.failed(&login, source, now);
            t.succeeded(&format!("ota-{i}"), source, now);
        }
        assert_eq!(t.pairs.failures.len(), MAX_KEYS);
        assert_eq!(t.sources.failures.len(), MAX_KEYS);
        assert_eq!(t.logins.failures.len(), MAX_KEYS);
        assert_eq!(t.known.sources.len(), MAX_KEYS);
        assert!(t.known.sources.values().all(|k| k.len() <= KNOWN_PER_LOGIN));
        // The newest are the ones kept.
        let last = flood - 1;
        let source = Some(IpAddr::from(last.to_be_bytes()));
        assert!(t.is_known(&format!("ota-{last}"), source, now));
    }

    /// A small deterministic generator for the random walks below (xorshift64).
    struct Walk(u64);

    impl Walk {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Random wrong answers from unknown sources against a few logins, the owner registering
    /// again now and then, all within one window: the owner is never held back, and no pair,
    /// source or login gets more checks than its policy allows.
    #[test]
    fn random_guessing_never_holds_the_owner_back_and_stays_within_the_policies() {
        let logins = ["ota-13-1", "ota-13-2", "nobody"];
        let phone = ip("10.0.0.10");
        for seed in 1..=200u64 {
            let mut walk = Walk(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut t = Throttle::default();
            let t0 = Instant::now();
            let mut now = t0;
            t.succeeded("ota-13-1", Some(phone), now);
            let mut by_pair: HashMap<(usize, u64), u32> = HashMap::new();
            let mut by_source: HashMap<u64, u32> = HashMap::new();
            let mut by_login: HashMap<usize, u32> = HashMap::new();
            for _ in 0..400 {
                // 400 steps of at most 2 s: within one window.
                now += Duration::from_millis(walk.below(2_000));
                let login = walk.below(logins.len() as u64) as usize;
                let s = walk.below(12);
                let source = Some(IpAddr::from([192, 0, 2, s as u8 + 1]));
                if t.check(logins[login], source, now) == Verdict::Try {
                    t.failed(logins[login], source, now);
                    *by_pair.entry((login, s)).or_default() += 1;
                    *by_source.entry(s).or_default() += 1;
                    *by_login.entry(login).or_default() += 1;
                }
                assert_eq!(
                    t.check("ota-13-1", Some(phone), now),
                    Verdict::Try,
                    "seed {seed}"
                );
                if walk.below(20) == 0 {
                    t.succeeded("ota-13-1", Some(phone), now);
                }
            }
            assert!(now.duration_since(t0) < WINDOW);
            let most = |counts: Vec<u32>| counts.into_iter().max().unwrap_or(0);
            assert!(most(by_pair.into_values().collect()) <= PER_LOGIN_FROM.lock_after);
            assert!(most(by_source.into_values().collect()) <= PER_SOURCE.lock_after);
            assert!(
                most(by_login.into_values().collect()) <= PER_LOGIN_FROM_UNKNOWN.lock_after,
                "seed {seed}"
            );
        }
    }
}

//! Admission with isolation between zones.
//!
//! Each zone owns a guaranteed share of the national capacity. A zone may go past its share by
//! borrowing from the pool, which is whatever no zone has reserved: the capacity minus, for every
//! zone, the larger of what it uses and what it is guaranteed. So a surge in one département can
//! take every idle channel of the pool but never a channel another zone is entitled to, and a call
//! is refused only when its zone has used its share and the pool is empty.

use secourir_config::{Plan, ZoneId};

/// Counts of admitted calls per zone against their guaranteed shares.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Admission {
    capacity: u64,
    guaranteed: Vec<u32>,
    in_use: Vec<u32>,
    /// Sum over zones of max(in_use, guaranteed): the capacity spoken for.
    committed: u64,
    /// Sum of `in_use`, kept so that the production checks cost nothing.
    total: u64,
    /// Calls suspected of a flood: counted in `total` and `committed`, in no zone's share.
    #[serde(default)]
    suspected: u64,
    /// The most of them at once.
    #[serde(default)]
    suspected_max: u64,
    /// Suspects admitted beyond their share, on capacity nobody uses: in no share, and not in
    /// `committed` or `total`, so that a real caller never finds capacity taken by them. A
    /// suspect is never refused for being suspected while capacity is free anywhere: a real
    /// caller may be among them (a flood arriving through the callers' own operator).
    #[serde(default)]
    beyond: u64,
}

/// Why a call was refused at admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The zone used its share and the pool has nothing left.
    NoCapacity,
}

impl Admission {
    /// Starts with no call admitted.
    pub fn new(plan: &Plan) -> Admission {
        let guaranteed: Vec<u32> = plan.zones.iter().map(|z| z.guaranteed).collect();
        let committed = guaranteed.iter().map(|&g| u64::from(g)).sum();
        Admission {
            capacity: u64::from(plan.capacity),
            in_use: vec![0; guaranteed.len()],
            guaranteed,
            committed,
            total: 0,
            suspected: 0,
            suspected_max: u64::from(plan.suspected_capacity),
            beyond: 0,
        }
    }

    /// Admits a call suspected of a flood: from the pool only (never a zone's share, which
    /// stays for its real callers), and within the suspects' capacity.
    pub fn admit_suspected(&mut self) -> Result<(), Refusal> {
        if self.suspected < self.suspected_max && self.committed < self.capacity {
            self.committed += 1;
            self.suspected += 1;
            self.total += 1;
            return Ok(());
        }
        if self.committed + self.beyond < self.capacity {
            self.beyond += 1;
            return Ok(());
        }
        Err(Refusal::NoCapacity)
    }

    /// Gives back the channel of an ended suspected call.
    pub fn release_suspected(&mut self) {
        if self.beyond > 0 {
            // Suspects are alike: one waiting beyond the share takes the place freed in it.
            self.beyond -= 1;
            return;
        }
        assert!(self.suspected > 0, "released more suspects than admitted");
        self.committed -= 1;
        self.suspected -= 1;
        self.total -= 1;
    }

    /// Suspected calls admitted and not yet ended, within their share and beyond it.
    pub fn suspected_in_use(&self) -> u64 {
        self.suspected + self.beyond
    }

    /// Suspected calls admitted beyond their share, on capacity nobody used.
    pub fn suspected_beyond_share(&self) -> u64 {
        self.beyond
    }

    /// Whether the calls admitted hold no more than the capacity: those within the shares and
    /// the pool, and apart, the suspects beyond their share.
    pub fn within_capacity(&self) -> bool {
        self.total <= self.capacity && self.beyond <= self.capacity
    }

    /// Admits one call of `zone`, or says why not.
    pub fn admit(&mut self, zone: ZoneId) -> Result<(), Refusal> {
        let z = usize::from(zone.0);
        let (Some(&used), Some(&share)) = (self.in_use.get(z), self.guaranteed.get(z)) else {
            return Err(Refusal::NoCapacity);
        };
        if used >= share {
            if self.committed >= self.capacity {
                return Err(Refusal::NoCapacity);
            }
            self.committed += 1;
            // Shares raised by a new plan may leave more spoken for than the capacity while
            // zones are past their old shares; borrowing then waits until they are back.
            debug_assert!(self.committed <= self.capacity);
        }
        self.in_use[z] = used + 1;
        self.total += 1;
        Ok(())
    }

    /// Takes the capacity and shares of `plan` (with the same zones), keeping the calls
    /// admitted; refused when the new capacity is below the calls admitted now.
    pub fn reshape(&mut self, plan: &Plan) -> Result<(), String> {
        if plan.zones.len() != self.in_use.len() {
            return Err("the zones differ".to_owned());
        }
        if u64::from(plan.capacity) < self.total {
            return Err(format!(
                "a capacity of {} is below the {} calls admitted now",
                plan.capacity, self.total
            ));
        }
        self.capacity = u64::from(plan.capacity);
        self.suspected_max = u64::from(plan.suspected_capacity);
        self.guaranteed = plan.zones.iter().map(|z| z.guaranteed).collect();
        self.committed = self
            .in_use
            .iter()
            .zip(&self.guaranteed)
            .map(|(&u, &g)| u64::from(u.max(g)))
            .sum::<u64>()
            + self.suspected;
        Ok(())
    }

    /// Gives back the channel of an ended call of `zone`.
    pub fn release(&mut self, zone: ZoneId) {
        let z = usize::from(zone.0);
        let Some(&used) = self.in_use.get(z) else {
            return;
        };
        assert!(used > 0, "released more calls than admitted in zone {z}");
        if used > self.guaranteed[z] {
            self.committed -= 1;
        }
        self.in_use[z] = used - 1;
        self.total -= 1;
    }

    /// Calls of this zone admitted and not yet ended.
    pub fn in_use(&self, zone: ZoneId) -> u32 {
        self.in_use.get(usize::from(zone.0)).copied().unwrap_or(0)
    }

    /// Calls admitted nationally and not yet ended, suspects beyond their share included.
    pub fn total_in_use(&self) -> u64 {
        self.total + self.beyond
    }

    /// Channels of the pool nobody has reserved or borrowed.
    pub fn pool_free(&self) -> u64 {
        self.capacity.saturating_sub(self.committed)
    }

    /// The national capacity.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Checks the bookkeeping against a recount; panics with the broken rule.
    pub fn check(&self) {
        let recount: u64 = self
            .in_use
            .iter()
            .zip(&self.guaranteed)
            .map(|(&u, &g)| u64::from(u.max(g)))
            .sum::<u64>()
            + self.suspected;
        assert_eq!(recount, self.committed, "committed capacity drifted");
        let admitted: u64 = self.in_use.iter().map(|&u| u64::from(u)).sum::<u64>() + self.suspected;
        assert_eq!(admitted, self.total, "admitted total drifted");
        assert!(
            self.within_capacity(),
            "more calls admitted ({} and {} suspects beyond their share) than the capacity ({})",
            self.total,
            self.beyond,
            self.capacity
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn admission(capacity: u64, guaranteed: &[u32]) -> Admission {
        Admission {
            capacity,
            in_use: vec![0; guaranteed.len()],
            guaranteed: guaranteed.to_vec(),
            committed: guaranteed.iter().map(|&g| u64::from(g)).sum(),
            total: 0,
            suspected: 0,
            suspected_max: capacity / 10,
            beyond: 0,
        }
    }

    #[test]
    fn suspects_beyond_their_share_wait_on_free_capacity_and_never_take_a_real_caller_s() {
        // Capacity 10, zone 0 guaranteed 4, the suspects' share 1.
        let mut a = admission(10, &[4]);
        for _ in 0..6 {
            a.admit_suspected().expect("the share, then free capacity");
        }
        assert_eq!((a.suspected, a.suspected_beyond_share()), (1, 5));
        assert_eq!(a.admit_suspected(), Err(Refusal::NoCapacity));
        // Every real caller still finds their place: the zone's share and the whole pool.
        for _ in 0..9 {
            a.admit(ZoneId(0)).expect("real callers first");
        }
        a.check();
        // A suspect leaving frees no real capacity while others wait beyond the share.
        a.release_suspected();
        assert_eq!((a.suspected, a.suspected_beyond_share()), (1, 4));
        assert_eq!(a.total_in_use(), 9 + 1 + 4);
        for _ in 0..5 {
            a.release_suspected();
        }
        assert_eq!(a.suspected_in_use(), 0);
        a.check();
    }

    #[test]
    fn surge_borrows_the_pool_but_not_the_others_share() {
        // Capacity 10: zone 0 and zone 1 are guaranteed 3 each, 4 channels in the pool.
        let mut a = admission(10, &[3, 3]);
        for _ in 0..7 {
            a.admit(ZoneId(0)).expect("share plus pool");
        }
        assert_eq!(a.admit(ZoneId(0)), Err(Refusal::NoCapacity));
        // The other zone still gets all of its share.
        for _ in 0..3 {
            a.admit(ZoneId(1)).expect("its guaranteed share");
        }
        assert_eq!(a.admit(ZoneId(1)), Err(Refusal::NoCapacity));
        a.check();
        a.release(ZoneId(0));
        a.admit(ZoneId(1)).expect("a freed pool channel");
        a.check();
    }

    #[test]
    fn no_refusal_while_pool_has_room() {
        let mut a = admission(5, &[1, 1]);
        for _ in 0..4 {
            a.admit(ZoneId(0)).expect("pool");
        }
        assert_eq!(a.pool_free(), 0);
        a.admit(ZoneId(1)).expect("share");
        assert_eq!(a.total_in_use(), 5);
        a.check();
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A refusal happens only when the zone used its share and the pool is empty, and a zone
        /// under its share is never refused, whatever the others do.
        #[test]
        fn refuses_only_when_no_capacity_exists_for_the_zone(
            shares in prop::collection::vec(0u32..5, 1..5),
            extra in 0u64..10,
            ops in prop::collection::vec((any::<bool>(), 0usize..5), 0..200),
        ) {
            let capacity = shares.iter().map(|&g| u64::from(g)).sum::<u64>() + extra;
            let mut a = super::tests::admission(capacity, &shares);
            a.suspected_max = capacity / 2;
            for (admit, zone) in ops {
                let zone = zone % shares.len();
                let id = ZoneId(zone as u16);
                if admit {
                    let under_share = a.in_use[zone] < shares[zone];
                    let pool = a.pool_free();
                    match a.admit(id) {
                        Ok(()) => {}
                        Err(Refusal::NoCapacity) => {
                            prop_assert!(!under_share, "refused under its share");
                            prop_assert_eq!(pool, 0, "refused while the pool had room");
                        }
                    }
                } else if a.in_use[zone] > 0 {
                    a.release(id);
                }
                a.check();
            }
        }

        /// Suspects of a flood, within their share or beyond it, never cost a real caller a
        /// place, and are refused only when no capacity is free anywhere.
        #[test]
        fn suspects_never_take_a_real_caller_s_place(
            shares in prop::collection::vec(0u32..5, 1..5),
            extra in 0u64..10,
            ops in prop::collection::vec((0u8..4, 0usize..5), 0..300),
        ) {
            let capacity = shares.iter().map(|&g| u64::from(g)).sum::<u64>() + extra;
            let mut a = super::tests::admission(capacity, &shares);
            a.suspected_max = capacity / 4;
            for (op, zone) in ops {
                let zone = zone % shares.len();
                let id = ZoneId(zone as u16);
                match op {
                    0 => {
                        let under_share = a.in_use[zone] < shares[zone];
                        let pool = a.pool_free();
                        if a.admit(id).is_err() {
                            prop_assert!(!under_share, "a real caller refused under its share");
                            prop_assert_eq!(pool, 0, "a real caller refused with the pool free");
                        }
                    }
                    1 => {
                        let free = a.pool_free();
                        let beyond = a.suspected_beyond_share();
                        if a.admit_suspected().is_err() {
                            prop_assert!(free <= beyond, "a suspect refused with capacity free");
                        }
                    }
                    2 if a.in_use[zone] > 0 => a.release(id),
                    3 if a.suspected_in_use() > 0 => a.release_suspected(),
                    _ => {}
                }
                a.check();
            }
        }
    }
}

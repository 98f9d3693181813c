//! Applying a replicated log in order: entries come numbered by the log, possibly twice (a
//! consumer redelivers after a reconnect) or out of order (two deliveries racing); each is
//! handed to the core once, in sequence.

use std::collections::BTreeMap;

use crate::Entry;

/// Entries held while an earlier one is missing; beyond, the follower reads again from the
/// first missing one instead of holding more.
const HELD_MAX: usize = 65_536;

/// The follower's side of the log: what was applied, what waits for a gap to fill.
#[derive(Debug, Clone, Default)]
pub struct Applier {
    next: u64,
    held: BTreeMap<u64, Entry>,
    duplicates: u64,
}

/// What the follower must do after an entry that cannot be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAgain {
    /// The first sequence missing: read the log again from there.
    pub from: u64,
}

impl Applier {
    /// A follower that has applied every entry before `next` (1 for a fresh core).
    pub fn new(next: u64) -> Applier {
        Applier {
            next: next.max(1),
            held: BTreeMap::new(),
            duplicates: 0,
        }
    }

    /// The first sequence not applied yet: where to resume reading.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Entries received again and dropped.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Takes entry `seq` and gives, in order, every entry that can now be applied.
    pub fn offer(&mut self, seq: u64, entry: Entry) -> Result<Vec<Entry>, ReadAgain> {
        if seq < self.next || self.held.contains_key(&seq) {
            self.duplicates += 1;
            return Ok(Vec::new());
        }
        if seq > self.next {
            if self.held.len() >= HELD_MAX {
                return Err(ReadAgain { from: self.next });
            }
            self.held.insert(seq, entry);
            return Ok(Vec::new());
        }
        let mut ready = vec![entry];
        self.next += 1;
        while let Some(entry) = self.held.remove(&self.next) {
            ready.push(entry);
            self.next += 1;
        }
        Ok(ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secourir_core::{CallId, Event, Instant};

    fn entry(n: u64) -> Entry {
        Entry {
            at: Instant(n),
            event: Event::CallerHungUp { call: CallId(n) },
        }
    }

    #[test]
    fn entries_come_out_once_and_in_order_whatever_the_delivery() {
        let mut applier = Applier::new(1);
        let mut out = Vec::new();
        for seq in [2, 1, 1, 4, 3, 3, 2, 6, 5, 7] {
            out.extend(applier.offer(seq, entry(seq)).expect("held"));
        }
        let calls: Vec<u64> = out.iter().map(|e| e.at.0).collect();
        assert_eq!(calls, vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(applier.next(), 8);
        assert_eq!(applier.duplicates(), 3);
    }
}

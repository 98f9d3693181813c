//! The membership: which node holds each live call, when a node's calls are over (it started
//! again, or the others found it silent), and how far the log may be trimmed; every node
//! computes the same from the log alone.

use std::collections::{HashMap, HashSet};

use secourir_core::{CallId, Event};
use serde::{Deserialize, Serialize};

use crate::entries::{Input, OfferedRecord};

/// Call numbers and request ids of a cluster end with the node's slot: `n * SLOTS + slot`.
pub const SLOTS: u64 = 1000;

/// A restarted node numbers its calls this far above the last of its numbers in the log, so
/// that calls its earlier life had taken in but not yet appended are never numbered again.
pub const RESTART_GAP: u64 = 10_000;

/// A node whose entries stopped this long ago is declared lost by the others: three missed
/// heartbeats. Its queued callers wait that long before the call-back lists have them, and a
/// call-taker offered one of its calls meanwhile rings nobody: short, for the survivor's
/// next answer to come within 2 s of the death.
pub const LOST_AFTER_MS: u64 = 1_500;

/// How often a node says it is alive.
pub const ALIVE_EVERY_MS: u64 = 500;

/// A node declared lost this long ago (by the log's clock) no longer holds the log's trimming
/// back: a node gone for good must not keep the log growing for ever. Back after that, it
/// starts from the others' snapshot.
pub const LOST_HOLDS_LOG_MS: u64 = 24 * 3_600_000;

/// What one node is known to be, from the log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Member {
    incarnation: u64,
    slot: u64,
    /// Sequence of its last entry.
    last_seq: u64,
    /// The entry of its last snapshot kept (0: none yet).
    kept: u64,
    /// When it was declared lost, while it has said nothing since.
    lost_at: Option<u64>,
    /// Its highest call number.
    highest_call: Option<u64>,
}

/// Which node holds each live call, from the log alone: every node computes the same.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Members {
    members: HashMap<String, Member>,
    /// The node holding each live call's caller, and in which of its lives.
    owners: HashMap<CallId, (String, u64)>,
    /// The newest wire format each node reads, from its last message. Not kept in snapshots:
    /// every node says it twice a second, and a node not heard yet is taken to read the
    /// oldest format.
    #[serde(skip)]
    reads: HashMap<String, u16>,
}

impl Members {
    /// An entry of `node` at `seq`.
    pub fn seen(&mut self, node: &str, seq: u64) {
        let member = self.members.entry(node.to_owned()).or_default();
        member.last_seq = seq;
        member.lost_at = None;
    }

    /// `node`'s last message said it reads wire formats up to `number`.
    pub fn reads(&mut self, node: &str, number: u16) {
        if self.reads.get(node) != Some(&number) {
            self.reads.insert(node.to_owned(), number);
        }
    }

    /// The newest wire format every member not declared lost reads, `me` aside: what `me`
    /// may write. A member that comes back from lost meets entries it may not read, stops
    /// applying the log and says so, until it runs the others' version.
    pub fn oldest_reader(&self, me: &str) -> u16 {
        self.members
            .iter()
            .filter(|(name, m)| *name != me && m.lost_at.is_none())
            .map(|(name, _)| self.reads.get(name).copied().unwrap_or(1))
            .min()
            .unwrap_or(u16::MAX)
    }

    /// `node` kept a snapshot at entry `seq`.
    pub fn kept(&mut self, node: &str, seq: u64) {
        let member = self.members.entry(node.to_owned()).or_default();
        member.kept = member.kept.max(seq);
    }

    /// The entry below which the log may go at `now`: every node that holds it back has a
    /// snapshot at that entry or after, with its records. 0 while one of them has none.
    pub fn trim_floor(&self, now: u64) -> u64 {
        self.members
            .values()
            .filter(|m| m.incarnation > 0)
            .filter(|m| {
                m.lost_at
                    .is_none_or(|at| now.saturating_sub(at) < LOST_HOLDS_LOG_MS)
            })
            .map(|m| m.kept)
            .min()
            .unwrap_or(0)
    }

    /// `node`'s highest call number in the log.
    pub fn highest_call(&self, node: &str) -> Option<u64> {
        self.members.get(node).and_then(|m| m.highest_call)
    }

    /// `node` started again: the calls of its earlier lives, to end. Refuses (with the other
    /// node's name) a slot another node already uses.
    pub fn hello(
        &mut self,
        node: &str,
        incarnation: u64,
        slot: u64,
    ) -> (Vec<CallId>, Option<String>) {
        let clash = self.slot_taken(node, slot);
        let member = self.members.entry(node.to_owned()).or_default();
        member.incarnation = incarnation;
        member.slot = slot;
        let over = self.calls_of(node, |life| life != incarnation);
        (over, clash)
    }

    /// Another node numbering its calls with `slot`, if any.
    pub fn slot_taken(&self, node: &str, slot: u64) -> Option<String> {
        self.members
            .iter()
            .find(|(name, m)| name.as_str() != node && m.slot == slot && m.incarnation > 0)
            .map(|(name, _)| name.clone())
    }

    /// A new call, held by `node`.
    pub fn offered(&mut self, call: CallId, node: &str) {
        let member = self.members.entry(node.to_owned()).or_default();
        member.highest_call = member.highest_call.max(Some(call.0));
        let life = member.incarnation;
        self.owners.insert(call, (node.to_owned(), life));
    }

    /// A call is over.
    pub fn ended(&mut self, call: CallId) {
        self.owners.remove(&call);
    }

    /// Another node found `node` silent since `after` (at `at`): its calls, to end, unless it
    /// gave an entry since.
    pub fn lost(&mut self, node: &str, after: u64, at: u64) -> Vec<CallId> {
        match self.members.get_mut(node) {
            Some(m) if m.last_seq == after => {
                m.lost_at.get_or_insert(at);
                self.calls_of(node, |_| true)
            }
            _ => Vec::new(),
        }
    }

    /// Whether `node` holds live calls.
    pub fn holds_calls(&self, node: &str) -> bool {
        self.owners.values().any(|(n, _)| n == node)
    }

    /// The sequence of `node`'s last entry.
    pub fn last_seq(&self, node: &str) -> Option<u64> {
        self.members.get(node).map(|m| m.last_seq)
    }

    /// The live calls `node` holds, in number order.
    pub fn calls_of(&self, node: &str, life: impl Fn(u64) -> bool) -> Vec<CallId> {
        let mut calls: Vec<CallId> = self
            .owners
            .iter()
            .filter(|(_, (n, l))| n == node && life(*l))
            .map(|(c, _)| *c)
            .collect();
        calls.sort();
        calls
    }

    /// Nodes other than `me` known to the log.
    pub fn others<'a>(&'a self, me: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.members
            .keys()
            .map(String::as_str)
            .filter(move |n| *n != me)
    }
}

/// The slot of a node's numbers, from its name: 1 to `SLOTS - 1`.
pub fn slot_of(node: &str) -> u64 {
    // FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in node.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    1 + hash % (SLOTS - 1)
}

/// The first call number of a node's new life: above every number of its slot in `calls`.
pub fn first_call(slot: u64, calls: impl Iterator<Item = CallId>) -> u64 {
    let last = calls
        .filter(|c| c.0 % SLOTS == slot)
        .map(|c| c.0 / SLOTS)
        .max();
    let next = last.map_or(1, |n| n + RESTART_GAP);
    next * SLOTS + slot
}

/// Silent nodes a node should declare lost: each once per last entry.
#[derive(Debug, Default)]
pub struct Watch {
    asked: HashSet<(String, u64)>,
}

impl Watch {
    /// `Lost` inputs to give, for the nodes holding calls whose last entry was applied here
    /// `LOST_AFTER_MS` ago or more; `silent_ms` tells how long ago, per node.
    pub fn check(
        &mut self,
        me: &str,
        members: &Members,
        silent_ms: impl Fn(&str) -> Option<u64>,
        at: u64,
    ) -> Vec<Input> {
        let mut lost = Vec::new();
        let others: Vec<&str> = members.others(me).collect();
        for node in others {
            let (Some(after), Some(silent)) = (members.last_seq(node), silent_ms(node)) else {
                continue;
            };
            if silent >= LOST_AFTER_MS
                && members.holds_calls(node)
                && self.asked.insert((node.to_owned(), after))
            {
                lost.push(Input::Lost {
                    at,
                    node: node.to_owned(),
                    after,
                });
            }
        }
        lost
    }
}

/// What one input of the log asks of a node.
#[derive(Debug)]
pub enum Step {
    /// Feed the core this event, every node alike; a new call's record comes with its offer.
    Core(Event, Option<Box<OfferedRecord>>),
    /// Carry out what concerns this node alone (a binding, a recording to copy, merged rows).
    Local(Input),
    /// Take this configuration, every node alike.
    Config(String),
}

impl Members {
    /// The steps `input` of `from` stands for. Every node derives the same core events here,
    /// and so does a replay: the calls a restart or a loss ends come as `Stopped`.
    pub fn steps(&mut self, from: &str, input: Input) -> Vec<Step> {
        let stopped = |calls: Vec<CallId>| {
            calls
                .into_iter()
                .map(|call| Step::Core(Event::Stopped { call }, None))
                .collect()
        };
        match input {
            Input::Hello {
                incarnation, slot, ..
            } => {
                let (over, clash) = self.hello(from, incarnation, slot);
                if let Some(other) = clash {
                    tracing::error!(node = %from, %other, slot, "two nodes number their calls alike");
                }
                if !over.is_empty() {
                    tracing::warn!(node = %from, calls = over.len(), "node restarted: the calls of its earlier life are over");
                }
                stopped(over)
            }
            Input::Lost { node, after, at } => {
                let over = self.lost(&node, after, at);
                if !over.is_empty() {
                    tracing::warn!(node = %node, calls = over.len(), "node lost: its callers go to the call-back lists");
                }
                stopped(over)
            }
            Input::Offered { record, offer, .. } => {
                self.offered(record.call, from);
                vec![Step::Core(Event::Offered(*offer), Some(record))]
            }
            Input::Core { event, .. } => vec![Step::Core(event, None)],
            Input::Config { text, .. } => vec![Step::Config(text)],
            Input::Kept { seq, .. } => {
                self.kept(from, seq);
                Vec::new()
            }
            Input::Alive { .. } => Vec::new(),
            local @ (Input::Bound { .. }
            | Input::Recorded { .. }
            | Input::Merged { .. }
            | Input::Continued { .. }) => vec![Step::Local(local)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarted_node_ends_the_calls_of_its_earlier_life() {
        let mut m = Members::default();
        m.seen("a", 1);
        assert_eq!(m.hello("a", 100, 7), (vec![], None));
        m.offered(CallId(1_007), "a");
        m.seen("b", 2);
        m.hello("b", 200, 8);
        m.offered(CallId(1_008), "b");
        m.seen("a", 3);
        let (over, clash) = m.hello("a", 300, 7);
        assert_eq!(over, vec![CallId(1_007)]);
        assert_eq!(clash, None);
        assert!(m.holds_calls("a"));
        m.ended(CallId(1_007));
        assert!(!m.holds_calls("a"));
        assert!(m.holds_calls("b"));
    }

    #[test]
    fn a_node_writes_no_newer_format_than_the_oldest_member_present_reads() {
        let mut m = Members::default();
        assert_eq!(m.oldest_reader("a"), u16::MAX, "alone, the newest");
        m.seen("a", 1);
        m.reads("a", 2);
        m.seen("b", 2);
        assert_eq!(
            m.oldest_reader("a"),
            1,
            "b not heard yet: the oldest format"
        );
        m.reads("b", 1);
        m.seen("c", 3);
        m.reads("c", 2);
        assert_eq!(m.oldest_reader("a"), 1, "b runs the version before");
        m.lost("b", 2, 10);
        assert_eq!(m.oldest_reader("a"), 2, "b stopped for its upgrade");
        m.seen("b", 4);
        m.reads("b", 2);
        assert_eq!(m.oldest_reader("c"), 2, "b came back upgraded");
    }

    #[test]
    fn a_node_is_lost_only_if_silent_since_the_entry_the_others_saw() {
        let mut m = Members::default();
        m.seen("a", 1);
        m.hello("a", 1, 7);
        m.offered(CallId(1_007), "a");
        m.offered(CallId(2_007), "a");
        m.seen("a", 5);
        // Declared lost after entry 4, but it spoke at 5: nothing ends.
        assert_eq!(m.lost("a", 4, 10), vec![]);
        assert_eq!(m.lost("a", 5, 10), vec![CallId(1_007), CallId(2_007)]);
    }

    #[test]
    fn the_log_goes_below_the_oldest_snapshot_of_the_nodes_that_hold_it_back() {
        let mut m = Members::default();
        m.seen("a", 1);
        m.hello("a", 1, 7);
        m.seen("b", 2);
        m.hello("b", 2, 8);
        m.kept("a", 40);
        // Node B has no snapshot yet: nothing may go.
        assert_eq!(m.trim_floor(100), 0);
        m.kept("b", 20);
        assert_eq!(m.trim_floor(100), 20);
        m.kept("b", 60);
        assert_eq!(m.trim_floor(100), 40);
        // A is declared lost: it holds the log back for a day, then no more.
        m.offered(CallId(1_007), "a");
        assert_eq!(m.highest_call("a"), Some(1_007));
        assert_eq!(m.lost("a", 1, 1_000), vec![CallId(1_007)]);
        assert_eq!(m.trim_floor(1_000 + LOST_HOLDS_LOG_MS - 1), 40);
        assert_eq!(m.trim_floor(1_000 + LOST_HOLDS_LOG_MS), 60);
        // Back, it holds the log back again.
        m.seen("a", 70);
        assert_eq!(m.trim_floor(1_000 + LOST_HOLDS_LOG_MS), 40);
    }

    #[test]
    fn two_nodes_on_one_slot_are_told_apart() {
        let mut m = Members::default();
        m.hello("a", 1, 7);
        assert_eq!(m.hello("b", 2, 7).1, Some("a".to_owned()));
    }

    #[test]
    fn numbers_of_a_new_life_are_above_the_old_ones_of_the_slot() {
        let calls = [
            CallId(5 * SLOTS + 7),
            CallId(9 * SLOTS + 8),
            CallId(2 * SLOTS + 7),
        ];
        assert_eq!(
            first_call(7, calls.into_iter()),
            (5 + RESTART_GAP) * SLOTS + 7
        );
        assert_eq!(first_call(3, calls.into_iter()), SLOTS + 3);
        let slot = slot_of("site-a-1");
        assert!((1..SLOTS).contains(&slot));
        assert_eq!(slot, slot_of("site-a-1"));
    }

    #[test]
    fn a_silent_node_holding_calls_is_declared_once_per_last_entry() {
        let mut m = Members::default();
        m.seen("a", 3);
        m.hello("a", 1, 7);
        m.offered(CallId(1_007), "a");
        m.seen("b", 4);
        let mut w = Watch::default();
        let silent = |n: &str| Some(if n == "a" { LOST_AFTER_MS } else { 0 });
        let lost = w.check("b", &m, silent, 10);
        assert_eq!(
            lost,
            vec![Input::Lost {
                at: 10,
                node: "a".into(),
                after: 3
            }]
        );
        assert!(w.check("b", &m, silent, 11).is_empty());
        let quiet = |_: &str| Some(LOST_AFTER_MS - 1);
        m.seen("a", 6);
        assert!(w.check("b", &m, quiet, 12).is_empty());
    }
}

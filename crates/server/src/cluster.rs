//! The cluster mode: every input of the core goes to a log replicated on NATS JetStream, and
//! every node applies the whole log in its order, so every node holds the same core. A node
//! carries out only the commands of the calls whose caller it holds; it rings a call-taker's
//! phone directly, wherever the phone registered, from the bindings the log shares.
//!
//! This module holds the log's entries and the membership that decides, from the log alone,
//! when a node's calls are over (it restarted, or the others found it silent).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use secourir_config::ZoneId;
use secourir_core::{CallId, Event, Offer};
use secourir_store::{CallRecord, TrailEntry};
use serde::{Deserialize, Serialize};

/// Name of the JetStream stream holding the core's inputs.
pub(crate) const STREAM: &str = "secourir";

/// Call numbers and request ids of a cluster end with the node's slot: `n * SLOTS + slot`.
pub(crate) const SLOTS: u64 = 1000;

/// A restarted node numbers its calls this far above the last of its numbers in the log, so
/// that calls its earlier life had taken in but not yet appended are never numbered again.
pub(crate) const RESTART_GAP: u64 = 10_000;

/// A node whose entries stopped this long ago is declared lost by the others: three missed
/// heartbeats. Its queued callers wait that long before the call-back lists have them, and a
/// call-taker offered one of its calls meanwhile rings nobody: short, for the survivor's
/// next answer to come within 2 s of the death.
pub(crate) const LOST_AFTER_MS: u64 = 1_500;

/// How often a node says it is alive.
pub(crate) const ALIVE_EVERY_MS: u64 = 500;

/// One input of the shared log, stamped with when its node took it in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Input {
    /// The node started: the calls of its earlier lives are over.
    Hello {
        /// When.
        at: u64,
        /// This life of the node (its start time).
        incarnation: u64,
        /// The slot its numbers end with.
        slot: u64,
    },
    /// The node is alive.
    Alive {
        /// When.
        at: u64,
    },
    /// A new call: its record, then the core's offer.
    Offered {
        /// When.
        at: u64,
        /// What its record says.
        record: Box<OfferedRecord>,
        /// What the core is offered.
        offer: Box<Offer>,
    },
    /// Any other input of the core.
    Core {
        /// When.
        at: u64,
        /// The input.
        event: Event,
    },
    /// A call-taker's phone registered on the node: the others may ring it too.
    Bound {
        /// When.
        at: u64,
        /// The call-taker's index in the plan.
        agent: u32,
        /// Contact URI.
        contact: String,
        /// Address the REGISTER came from.
        source: SocketAddr,
        /// Seconds since the epoch at which the binding lapses (0 when removed).
        expires_at_s: u64,
    },
    /// A conversation recorded on the node, copied to the replicated files as `name`.
    Recorded {
        /// When.
        at: u64,
        /// The call.
        call: CallId,
        /// The file's name, the same on every node.
        name: String,
        /// Its SHA-256, hex: a copy is only kept if it matches.
        sha256: String,
        /// Its length.
        duration_ms: u64,
        /// The call's own recording (the first conversation with a call-taker).
        main: bool,
    },
    /// Calls the node served alone while it was cut from the log, with their trails.
    Merged {
        /// When.
        at: u64,
        /// The calls.
        calls: Vec<MergedCall>,
    },
    /// A configuration to take without a restart, as its text: every node reads it alike.
    Config {
        /// When.
        at: u64,
        /// The configuration's TOML.
        text: String,
    },
    /// A conversation the node carried on after the log had ended its call (the others
    /// declared the node lost while it was cut off, with the caller and the call-taker still
    /// talking) ended at `at`: its record says so on every node.
    Continued {
        /// When it ended.
        at: u64,
        /// The call.
        call: CallId,
        /// The caller hung up (else the call-taker did).
        caller_left: bool,
    },
    /// The node's snapshot at entry `seq` is in the replicated files and its store holds the
    /// records up to it: the log below the entry every node has kept can go.
    Kept {
        /// When.
        at: u64,
        /// The snapshot's entry.
        seq: u64,
    },
    /// The node found `node` silent since its entry `after`: unless `node` gave an entry since,
    /// its calls are over.
    Lost {
        /// When.
        at: u64,
        /// The silent node.
        node: String,
        /// Sequence of its last entry seen.
        after: u64,
    },
}

impl Input {
    /// When its node took it in.
    pub(crate) fn at(&self) -> u64 {
        match self {
            Input::Hello { at, .. }
            | Input::Alive { at }
            | Input::Offered { at, .. }
            | Input::Core { at, .. }
            | Input::Bound { at, .. }
            | Input::Merged { at, .. }
            | Input::Recorded { at, .. }
            | Input::Config { at, .. }
            | Input::Continued { at, .. }
            | Input::Kept { at, .. }
            | Input::Lost { at, .. } => *at,
        }
    }
}

/// A new call's record, as the node that took it in saw it: every node writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OfferedRecord {
    /// Its number.
    pub(crate) call: CallId,
    /// The emergency CallId (RFC 7852).
    pub(crate) emergency_call_id: String,
    /// Caller's number.
    pub(crate) caller: Option<String>,
    /// URN of the service dialled.
    pub(crate) service: String,
    /// Where the caller is.
    pub(crate) zone: ZoneId,
    /// Département code.
    pub(crate) departement: String,
    /// Commune.
    pub(crate) commune: Option<String>,
    /// INSEE code of the commune.
    pub(crate) insee: Option<String>,
    /// Point.
    pub(crate) point: Option<(f64, f64)>,
    /// Uncertainty in metres.
    pub(crate) radius_m: Option<f64>,
    /// Where the location came from.
    pub(crate) location_source: String,
    /// Why the caller's own location could not be used.
    pub(crate) location_problem: Option<String>,
    /// Ingress trunk.
    pub(crate) trunk: Option<String>,
    /// Header lines rebuilt from bytes that were not UTF-8.
    pub(crate) repaired_headers: Option<String>,
}

/// A call a node served alone, as its store has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MergedCall {
    /// Its record.
    pub(crate) record: CallRecord,
    /// Its trail.
    pub(crate) trail: Vec<TrailEntry>,
    /// Ended unanswered: its caller is to be called back.
    pub(crate) call_back: bool,
}

/// A node declared lost this long ago (by the log's clock) no longer holds the log's trimming
/// back: a node gone for good must not keep the log growing for ever. Back after that, it
/// starts from the others' snapshot.
pub(crate) const LOST_HOLDS_LOG_MS: u64 = 24 * 3_600_000;

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
pub(crate) struct Members {
    members: HashMap<String, Member>,
    /// The node holding each live call's caller, and in which of its lives.
    owners: HashMap<CallId, (String, u64)>,
}

impl Members {
    /// An entry of `node` at `seq`.
    pub(crate) fn seen(&mut self, node: &str, seq: u64) {
        let member = self.members.entry(node.to_owned()).or_default();
        member.last_seq = seq;
        member.lost_at = None;
    }

    /// `node` kept a snapshot at entry `seq`.
    pub(crate) fn kept(&mut self, node: &str, seq: u64) {
        let member = self.members.entry(node.to_owned()).or_default();
        member.kept = member.kept.max(seq);
    }

    /// The entry below which the log may go at `now`: every node that holds it back has a
    /// snapshot at that entry or after, with its records. 0 while one of them has none.
    pub(crate) fn trim_floor(&self, now: u64) -> u64 {
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
    pub(crate) fn highest_call(&self, node: &str) -> Option<u64> {
        self.members.get(node).and_then(|m| m.highest_call)
    }

    /// `node` started again: the calls of its earlier lives, to end. Refuses (with the other
    /// node's name) a slot another node already uses.
    pub(crate) fn hello(
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
    pub(crate) fn slot_taken(&self, node: &str, slot: u64) -> Option<String> {
        self.members
            .iter()
            .find(|(name, m)| name.as_str() != node && m.slot == slot && m.incarnation > 0)
            .map(|(name, _)| name.clone())
    }

    /// A new call, held by `node`.
    pub(crate) fn offered(&mut self, call: CallId, node: &str) {
        let member = self.members.entry(node.to_owned()).or_default();
        member.highest_call = member.highest_call.max(Some(call.0));
        let life = member.incarnation;
        self.owners.insert(call, (node.to_owned(), life));
    }

    /// A call is over.
    pub(crate) fn ended(&mut self, call: CallId) {
        self.owners.remove(&call);
    }

    /// Another node found `node` silent since `after` (at `at`): its calls, to end, unless it
    /// gave an entry since.
    pub(crate) fn lost(&mut self, node: &str, after: u64, at: u64) -> Vec<CallId> {
        match self.members.get_mut(node) {
            Some(m) if m.last_seq == after => {
                m.lost_at.get_or_insert(at);
                self.calls_of(node, |_| true)
            }
            _ => Vec::new(),
        }
    }

    /// Whether `node` holds live calls.
    pub(crate) fn holds_calls(&self, node: &str) -> bool {
        self.owners.values().any(|(n, _)| n == node)
    }

    /// The sequence of `node`'s last entry.
    pub(crate) fn last_seq(&self, node: &str) -> Option<u64> {
        self.members.get(node).map(|m| m.last_seq)
    }

    /// The live calls `node` holds, in number order.
    pub(crate) fn calls_of(&self, node: &str, life: impl Fn(u64) -> bool) -> Vec<CallId> {
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
    pub(crate) fn others<'a>(&'a self, me: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.members
            .keys()
            .map(String::as_str)
            .filter(move |n| *n != me)
    }
}

/// The slot of a node's numbers, from its name: 1 to `SLOTS - 1`.
pub(crate) fn slot_of(node: &str) -> u64 {
    // FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in node.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    1 + hash % (SLOTS - 1)
}

/// The first call number of a node's new life: above every number of its slot in `calls`.
pub(crate) fn first_call(slot: u64, calls: impl Iterator<Item = CallId>) -> u64 {
    let last = calls
        .filter(|c| c.0 % SLOTS == slot)
        .map(|c| c.0 / SLOTS)
        .max();
    let next = last.map_or(1, |n| n + RESTART_GAP);
    next * SLOTS + slot
}

/// Silent nodes a node should declare lost: each once per last entry.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    asked: HashSet<(String, u64)>,
}

impl Watch {
    /// `Lost` inputs to give, for the nodes holding calls whose last entry was applied here
    /// `LOST_AFTER_MS` ago or more; `silent_ms` tells how long ago, per node.
    pub(crate) fn check(
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
pub(crate) enum Step {
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
    pub(crate) fn steps(&mut self, from: &str, input: Input) -> Vec<Step> {
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

/// The core's inputs that `batches` (a cluster log, in its order) stand for, each with the
/// instant every node applied it at: what every node's core was fed, for a replay, the
/// configurations taken live among them (read by `read`). A core with `plan` runs alongside
/// to know, as the nodes do, which calls were still live.
pub(crate) fn core_inputs(
    plan: std::sync::Arc<secourir_config::Plan>,
    batches: impl IntoIterator<Item = (u64, secourir_cluster_log::Batch<Input>)>,
    read: &crate::ConfigReader,
) -> Vec<(secourir_core::Instant, secourir_core::Input)> {
    let mut core = secourir_core::Core::new(plan);
    let mut members = Members::default();
    let mut clock = 0u64;
    let mut inputs = Vec::new();
    for (seq, batch) in batches {
        members.seen(&batch.node, seq);
        for input in batch.items {
            clock = clock.max(input.at());
            let now = secourir_core::Instant(clock);
            for step in members.steps(&batch.node, input) {
                let (commands, input): (Vec<secourir_core::Command>, _) = match step {
                    Step::Core(event, _) => (
                        core.handle(event.clone(), now).collect(),
                        secourir_core::Input::Event(event),
                    ),
                    Step::Config(text) => {
                        // Every node read it with the same code: one that failed failed on all.
                        let Ok(plan) = read.read(&text) else {
                            continue;
                        };
                        let plan = std::sync::Arc::new(plan);
                        match core.change_plan(plan.clone(), now) {
                            Ok(out) => (out.collect(), secourir_core::Input::Plan(plan)),
                            Err(_) => continue,
                        }
                    }
                    Step::Local(_) => continue,
                };
                for command in commands {
                    if let secourir_core::Command::Ended { call, .. }
                    | secourir_core::Command::Withdrawn { call, .. } = command
                    {
                        members.ended(call);
                    }
                }
                inputs.push((now, input));
            }
        }
    }
    inputs
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

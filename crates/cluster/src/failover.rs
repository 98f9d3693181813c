//! One node's failover decisions, with no I/O and no clock. Its inputs are what the node
//! observes (its appends taken or failing, the log's entries applied, its callers arriving and
//! hanging up, its call-takers' phones, the time given with each input); its outputs, drained
//! with `poll`, are what the node must do: say it is alive, declare a silent node lost, serve
//! calls alone while cut off, carry a conversation on after the log ended its call, free a
//! call-taker, give the calls served alone back to the log. The platform's driver and the
//! simulator's cluster runs feed the very same machine.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use secourir_core::{AgentId, AgentStatus, CallId, CallStatus, Core, Event, Instant};

use crate::entries::Input;
use crate::island::Island;
use crate::membership::{ALIVE_EVERY_MS, Members, Watch};

/// A node judges the others' silence only while its own entries come back this fast: a node
/// that cannot reach the log itself must not declare the others lost.
pub const OWN_ECHO_MS: u64 = 1_000;

/// A new call whose offer has not come back from the log after this long is served alone
/// (when call-takers are here to take it): a stream leader's election takes 4 to 9 s.
pub const OFFER_PATIENCE_MS: u64 = 2_000;

/// The island's records reach the store within the writer's group commit: they are given to
/// the log this long after its last call ended.
pub const ISLAND_MERGE_AFTER_MS: u64 = 1_000;

/// Where a new call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<P> {
    /// To the log, as an offer: every node's core takes it from there.
    Log(P),
    /// Served here alone (an `Action::ServeAlone` follows).
    Alone,
}

/// Who carries out what the shared core commands for a call, on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// This node's legs, as usual.
    Legs,
    /// Nobody: the island serves this call, and keeps its records.
    Island,
    /// The records only: the conversation goes on here although the log ended the call.
    RecordsOnly,
}

/// What the node must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<P> {
    /// Give this input to the log.
    Give(Input),
    /// Serve this call on the island: on record here, and offered to the island's core.
    ServeAlone {
        /// What the node keeps of the call (its record and offer).
        call: P,
        /// When its caller arrived.
        arrived: Instant,
    },
    /// Give this event to the island's core (a call-taker seated there).
    ToIsland(Event),
    /// The log ended this call while its caller and call-taker still talk here: note it, and
    /// leave their legs be.
    CarryOn(CallId),
    /// Release this call's legs here.
    Release(CallId),
    /// A conversation carried on is over: on record here, and given to the log.
    Continued {
        /// The call.
        call: CallId,
        /// The caller hung up (else the call-taker).
        caller_left: bool,
    },
    /// The island's calls have all ended and the log is back: give their records and their
    /// callers to call back to the log, then say `merged`.
    Merge(Vec<CallId>),
    /// A node went silent: its calls are declared over (logged by the shell).
    DeclaredLost {
        /// The node.
        node: String,
        /// Its last entry.
        after: u64,
    },
}

/// One node's failover state.
pub struct Failover<P> {
    me: String,
    /// This node's appends have been failing for a while (the appender's own retries).
    appends_failing: bool,
    /// The first entry of the log this version could not read.
    unreadable: Option<u64>,
    /// The last entry applied here.
    applied_seq: u64,
    /// When each node's last entry was applied here.
    heard: HashMap<String, Instant>,
    /// Since when this node has heard its own entries come back without a gap.
    echo_since: Option<Instant>,
    last_alive: Option<Instant>,
    watch: Watch,
    /// New calls given to the log whose offers have not come back yet, and when they arrived.
    pending: BTreeMap<CallId, (Instant, P)>,
    /// Calls served on the island although their offers reached the log: the shared core's
    /// commands for them are not carried out here until their withdrawal comes back.
    served_alone: BTreeSet<CallId>,
    /// Conversations carried on although the log ended their calls.
    carried_on: BTreeSet<CallId>,
    /// Call-takers of this node freed while cut off (the frozen shared core has them busy).
    freed: BTreeSet<AgentId>,
    /// Call-takers whose phones registered on this node.
    phones: BTreeSet<AgentId>,
    island: Option<Island>,
    /// When the island's last call ended, while the log answers.
    island_over_at: Option<Instant>,
    actions: VecDeque<Action<P>>,
}

impl<P: Clone> Failover<P> {
    /// The failover state of node `me`, just started.
    pub fn new(me: &str) -> Failover<P> {
        Failover {
            me: me.to_owned(),
            appends_failing: false,
            unreadable: None,
            applied_seq: 0,
            heard: HashMap::new(),
            echo_since: None,
            last_alive: None,
            watch: Watch::default(),
            pending: BTreeMap::new(),
            served_alone: BTreeSet::new(),
            carried_on: BTreeSet::new(),
            freed: BTreeSet::new(),
            phones: BTreeSet::new(),
            island: None,
            island_over_at: None,
            actions: VecDeque::new(),
        }
    }

    /// The next thing to do, in the order decided.
    pub fn poll(&mut self) -> Option<Action<P>> {
        self.actions.pop_front()
    }

    /// Whether this node is cut from the log: its appends fail, or the log holds an entry it
    /// cannot read.
    pub fn cut_off(&self) -> bool {
        self.appends_failing || self.unreadable.is_some()
    }

    /// The appender says whether its appends have been failing for a while.
    pub fn appending(&mut self, failing: bool) {
        self.appends_failing = failing;
    }

    /// The log holds an entry at `seq` this version cannot read.
    pub fn unreadable(&mut self, seq: u64) {
        self.unreadable.get_or_insert(seq);
    }

    /// The first entry this version could not read.
    pub fn unreadable_at(&self) -> Option<u64> {
        self.unreadable
    }

    /// Entry `seq` of `from` arrives at `now`: false for an entry already applied (a
    /// redelivery), which must not be applied again.
    pub fn entry(&mut self, from: &str, seq: u64, now: Instant) -> bool {
        if seq <= self.applied_seq {
            return false;
        }
        self.applied_seq = seq;
        self.heard.insert(from.to_owned(), now);
        true
    }

    /// The last entry applied here.
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }

    /// Starts applying after entry `seq` (a snapshot's).
    pub fn applied_from(&mut self, seq: u64) {
        self.applied_seq = self.applied_seq.max(seq);
    }

    /// A new call arrives: to the log, or served alone when the node is cut off (an emergency
    /// call is never refused because the cluster is unreachable).
    pub fn arrive(&mut self, call: CallId, kept: P, now: Instant, shared: &Core) -> Route<P> {
        if self.cut_off() {
            self.start_island(now, shared);
            if let Some(island) = &mut self.island {
                island.calls.insert(call);
            }
            self.actions.push_back(Action::ServeAlone {
                call: kept,
                arrived: now,
            });
            return Route::Alone;
        }
        self.pending.insert(call, (now, kept.clone()));
        Route::Log(kept)
    }

    /// This node's own offer of `call` came back from the log.
    pub fn offer_back(&mut self, call: CallId) {
        self.pending.remove(&call);
    }

    /// New calls given to the log and not back yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Offers not back from the log for `OFFER_PATIENCE_MS`, or any while cut off, are served
    /// here alone when call-takers are here to take them, and withdrawn from the shared core.
    pub fn serve_pending(&mut self, now: Instant, shared: &Core) {
        let Some(oldest) = self.pending.values().map(|(at, _)| *at).min() else {
            return;
        };
        // Appended but not read back (the server the node read from died) is as long a wait.
        if now.since(oldest) < OFFER_PATIENCE_MS && !self.cut_off() {
            return;
        }
        self.start_island(now, shared);
        let Some(island) = &mut self.island else {
            return;
        };
        if island.seated == 0 {
            // No call-taker here: the log, where every node's call-takers are, serves them.
            return;
        }
        for (call, (arrived, kept)) in std::mem::take(&mut self.pending) {
            tracing::info!(
                ?call,
                "offer not back from the cluster log: served here alone"
            );
            island.calls.insert(call);
            self.served_alone.insert(call);
            self.actions.push_back(Action::ServeAlone {
                call: kept,
                arrived,
            });
            self.actions.push_back(Action::Give(Input::Core {
                at: now.0,
                event: Event::Withdrawn { call },
            }));
        }
    }

    /// Starts serving alone, if not yet, with the call-takers whose phones registered here
    /// and who are free (available in the shared core, or freed here since the cut).
    fn start_island(&mut self, now: Instant, shared: &Core) {
        if self.island.is_some() {
            return;
        }
        let freed = std::mem::take(&mut self.freed);
        let agents: Vec<AgentId> = self
            .phones
            .iter()
            .copied()
            .filter(|a| shared.agent(*a) == AgentStatus::Available || freed.contains(a))
            .collect();
        tracing::warn!(
            call_takers = agents.len(),
            "the cluster log does not answer: calls served here alone"
        );
        self.island = Some(Island::start(Arc::clone(shared.plan()), &agents, now));
    }

    /// Who carries out the shared core's command for `call` here.
    pub fn carrier(&self, call: Option<CallId>) -> Carrier {
        match call {
            Some(call) if self.served_alone.contains(&call) => Carrier::Island,
            Some(call) if self.carried_on.contains(&call) => Carrier::RecordsOnly,
            _ => Carrier::Legs,
        }
    }

    /// The shared core withdrew `call` (served alone by the node that took it in).
    pub fn withdrawn(&mut self, call: CallId) {
        self.served_alone.remove(&call);
    }

    /// The log ends `call` (`Stopped`) because the others declared this node lost; if its
    /// caller still talks with a call-taker here, the conversation goes on until one of them
    /// hangs up. A call the island serves is the island's: its end is the island's to see.
    pub fn ended_by_log(&mut self, call: CallId, talking_here: bool) {
        let on_island = self
            .island
            .as_ref()
            .is_some_and(|i| i.calls.contains(&call));
        if talking_here && !on_island && self.carried_on.insert(call) {
            self.actions.push_back(Action::CarryOn(call));
        }
    }

    /// A hang-up heard on this node's legs: false when it concerns a conversation carried on
    /// (over now, the log being told by `Continued`), true when the shell feeds it as usual.
    /// While cut off, a conversation of the shared core that ends here frees its call-taker
    /// at once: the other side is hung up now, and the call-taker seated on the island.
    pub fn hung_up(&mut self, event: &Event, shared: &Core) -> bool {
        let (call, caller_left) = match event {
            Event::CallerHungUp { call } => (*call, true),
            Event::AgentHungUp { call, .. } => (*call, false),
            _ => return true,
        };
        if self.carried_on.remove(&call) {
            self.actions
                .push_back(Action::Continued { call, caller_left });
            return false;
        }
        if !self.cut_off() || self.island.as_ref().is_some_and(|i| i.holds(event)) {
            return true;
        }
        let Some(CallStatus::Talking(agent)) = shared.call(call).map(|c| c.status) else {
            return true;
        };
        if !self.phones.contains(&agent) {
            return true;
        }
        self.actions.push_back(Action::Release(call));
        match &mut self.island {
            Some(island) => {
                tracing::info!(?agent, "call-taker free again while cut off: seated here");
                let seat = island.seat(agent);
                self.actions.push_back(Action::ToIsland(seat));
            }
            None => {
                self.freed.insert(agent);
            }
        }
        true
    }

    /// A call-taker's phone registered on this node.
    pub fn registered(&mut self, agent: AgentId) {
        self.phones.insert(agent);
    }

    /// A call-taker's phone left this node.
    pub fn unregistered(&mut self, agent: AgentId) {
        self.phones.remove(&agent);
    }

    /// Whether `agent`'s phone registered on this node.
    pub fn has_phone(&self, agent: AgentId) -> bool {
        self.phones.contains(&agent)
    }

    /// The heartbeat at `now`: an `Alive` every `ALIVE_EVERY_MS`, and a `Lost` for each node
    /// holding calls gone silent for `LOST_AFTER_MS` while this one hears its own entries.
    pub fn beat(&mut self, now: Instant, members: &Members) {
        if self
            .last_alive
            .is_none_or(|at| now.since(at) >= ALIVE_EVERY_MS)
        {
            self.last_alive = Some(now);
            self.actions
                .push_back(Action::Give(Input::Alive { at: now.0 }));
        }
        if !self.cut_off() {
            // Back on the log: the shared core follows its call-takers again.
            self.freed.clear();
        }
        let own_echo = self.heard.get(&self.me).map(|at| now.since(*at));
        if self.appends_failing || own_echo.is_none_or(|ms| ms > OWN_ECHO_MS) {
            self.echo_since = None;
            return;
        }
        let since = *self.echo_since.get_or_insert(now);
        let heard = &self.heard;
        // After a partition heals, the others' entries need a moment to arrive: only their
        // silence since this node hears itself again counts.
        let silent = |node: &str| heard.get(node).map(|at| now.since((*at).max(since)));
        for input in self.watch.check(&self.me, members, silent, now.0) {
            if let Input::Lost { node, after, .. } = &input {
                self.actions.push_back(Action::DeclaredLost {
                    node: node.clone(),
                    after: *after,
                });
            }
            self.actions.push_back(Action::Give(input));
        }
    }

    /// Once the log is back and the island's calls have all ended for `ISLAND_MERGE_AFTER_MS`,
    /// their records go to the log (asked again at each call until `merged`).
    pub fn merge(&mut self, now: Instant) {
        let Some(island) = &self.island else {
            return;
        };
        if !island.over() || self.cut_off() {
            self.island_over_at = None;
            return;
        }
        let over_at = *self.island_over_at.get_or_insert(now);
        if now.since(over_at) >= ISLAND_MERGE_AFTER_MS {
            self.actions
                .push_back(Action::Merge(island.calls.iter().copied().collect()));
        }
    }

    /// The island's records are given to the log: the node serves from the shared core alone.
    pub fn merged(&mut self) {
        self.island = None;
        self.island_over_at = None;
    }

    /// The island, while the node serves alone.
    pub fn island(&self) -> Option<&Island> {
        self.island.as_ref()
    }

    /// The island's core, to feed.
    pub fn island_core(&mut self) -> Option<&mut Core> {
        self.island.as_mut().map(|i| &mut i.core)
    }

    /// Whether `event` concerns one of the island's calls.
    pub fn on_island(&self, event: &Event) -> bool {
        self.island.as_ref().is_some_and(|i| i.holds(event))
    }
}

#[cfg(test)]
mod tests;

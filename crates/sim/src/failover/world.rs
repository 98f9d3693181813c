//! What the nodes share without owning it: the simulated clock and randomness, the log with
//! its servers' reachability, the network between sites, and the physical world of callers
//! and call-takers' phones against which safety is judged.

use std::collections::{BTreeMap, BTreeSet};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use secourir_cluster::Input;
use secourir_core::{AgentId, CallId};

/// A call-taker who answered and hears nobody hangs up after this long.
pub(super) const DEAD_LINE_MS: u64 = 60_000;

/// One entry of the simulated log.
pub(super) struct Entry {
    /// The node that gave its inputs.
    pub(super) node: String,
    /// Its inputs, in the order it gave them.
    pub(super) items: Vec<Input>,
    /// When the log took it.
    pub(super) at: u64,
}

/// Something that happens in the physical world at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Happening {
    /// A call-taker answers the phone that `node` rang with `call`.
    Answer {
        node: usize,
        call: CallId,
        agent: AgentId,
    },
    /// A call-taker who answered and still hears nobody hangs up.
    DeadLine {
        node: usize,
        call: CallId,
        agent: AgentId,
    },
    /// A waiting caller's patience is over: they hang up unless talking.
    Leave { call: CallId },
    /// A conversation ends, by the call-taker or the caller.
    EndTalk {
        call: CallId,
        agent: AgentId,
        caller_left: bool,
    },
}

/// A caller, as the world sees them.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    /// The node holding their legs.
    pub(super) node: usize,
    /// The call-taker they talk with.
    pub(super) talking: Option<AgentId>,
    /// They hung up, or their node died.
    pub(super) gone: bool,
    /// A call-taker answered them at least once.
    pub(super) answered: bool,
}

/// A broken rule: what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

/// The shared state of a run.
pub(super) struct World {
    pub(super) now: u64,
    pub(super) rng: ChaCha8Rng,
    pub(super) log: Vec<Entry>,
    /// The log's servers have a quorum.
    pub(super) quorum: bool,
    /// Each node is up.
    pub(super) up: Vec<bool>,
    /// Each node reaches the log's quorum.
    pub(super) reach: Vec<bool>,
    /// Each node's network island: phones ring only within one.
    pub(super) group: Vec<u8>,
    /// The node each call-taker's phone registered on.
    pub(super) phone_of: BTreeMap<AgentId, usize>,
    pub(super) callers: BTreeMap<CallId, Caller>,
    /// Callers whose node died before their offer reached the log.
    pub(super) died_unlogged: BTreeSet<CallId>,
    /// Calls some core bridged to a call-taker, whether or not the caller was still there.
    pub(super) bridged: BTreeSet<CallId>,
    /// Who talks with whom, physically.
    pub(super) talking: BTreeMap<AgentId, CallId>,
    /// Phones ringing with a call, or answered and not connected yet: the line is busy
    /// meanwhile.
    pub(super) ringing: BTreeSet<(CallId, AgentId)>,
    /// Lines a call-taker answered and hung up, never connected.
    pub(super) dead_lines: BTreeSet<(CallId, AgentId)>,
    agenda: BTreeMap<(u64, u64), Happening>,
    agenda_seq: u64,
    /// Rings that found the phone busy in a conversation.
    pub(super) busy_rings: u64,
    /// Of those, rings of an island's core.
    pub(super) busy_island_rings: u64,
    /// Checks evaluated.
    pub(super) checks: u64,
    /// What happened since the run last took them, for its trace.
    pub(super) notes: Vec<String>,
}

impl World {
    pub(super) fn new(nodes: usize, rng: ChaCha8Rng) -> World {
        World {
            now: 0,
            rng,
            log: Vec::new(),
            quorum: true,
            up: vec![true; nodes],
            reach: vec![true; nodes],
            group: vec![0; nodes],
            phone_of: BTreeMap::new(),
            callers: BTreeMap::new(),
            bridged: BTreeSet::new(),
            died_unlogged: BTreeSet::new(),
            talking: BTreeMap::new(),
            ringing: BTreeSet::new(),
            dead_lines: BTreeSet::new(),
            agenda: BTreeMap::new(),
            agenda_seq: 0,
            busy_rings: 0,
            busy_island_rings: 0,
            checks: 0,
            notes: Vec::new(),
        }
    }

    /// Whether `node` can append to and read the log.
    pub(super) fn on_log(&self, node: usize) -> bool {
        self.up[node] && self.reach[node] && self.quorum
    }

    /// Whether `node`, once started, would reach the log.
    pub(super) fn on_log_if_up(&self, node: usize) -> bool {
        self.reach[node] && self.quorum
    }

    /// Schedules `what` in `after` ms.
    pub(super) fn schedule(&mut self, after: u64, what: Happening) {
        self.agenda_seq += 1;
        self.agenda
            .insert((self.now + after, self.agenda_seq), what);
    }

    /// The next happening due at `now`, if any.
    pub(super) fn due(&mut self) -> Option<Happening> {
        let (&(at, seq), _) = self.agenda.first_key_value()?;
        if at > self.now {
            return None;
        }
        self.agenda.remove(&(at, seq))
    }

    /// A number in `range`.
    pub(super) fn roll(&mut self, range: std::ops::Range<u64>) -> u64 {
        self.rng.random_range(range)
    }

    /// Whether an event of probability `p` happens.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// `node` rings `agent`'s phone with `call` (`island`: for its island's core): false when
    /// the phone cannot be reached or is busy in a conversation.
    pub(super) fn ring(&mut self, node: usize, call: CallId, agent: AgentId, island: bool) -> bool {
        // A call-taker's phone has one line: ringing or in a conversation, it answers another
        // call busy. A core may still ring one: a node declared lost while only cut off
        // carries its conversations on, and an island's call-takers are free in the shared
        // core of the others.
        let busy = self.talking.get(&agent).is_some_and(|other| *other != call)
            || self.ringing.iter().any(|(c, a)| *a == agent && *c != call);
        if busy {
            self.busy_rings += 1;
            if island {
                self.busy_island_rings += 1;
            }
            return false;
        }
        let Some(&phone) = self.phone_of.get(&agent) else {
            return false;
        };
        if !self.up[phone] || self.group[phone] != self.group[node] {
            return false;
        }
        self.ringing.insert((call, agent));
        let core = if island { "island" } else { "shared core" };
        self.notes.push(format!(
            "node {node} ({core}) rings call-taker {} with call {}",
            agent.0, call.0
        ));
        // Most call-takers answer within a few seconds; some let it ring to the timeout.
        if self.chance(0.9) {
            let after = self.roll(300..4_000);
            self.schedule(after, Happening::Answer { node, call, agent });
        }
        true
    }

    /// The platform bridges `call` to `agent`: neither may be in another conversation.
    pub(super) fn bridge(&mut self, call: CallId, agent: AgentId) -> Result<(), Violation> {
        self.checks += 3;
        if self.dead_lines.contains(&(call, agent)) {
            // The call-taker hung up that line: there is nobody to connect.
            return Ok(());
        }
        let Some(caller) = self.callers.get_mut(&call) else {
            return Ok(());
        };
        if caller.gone {
            return Ok(());
        }
        if caller.talking != Some(agent) && !self.ringing.contains(&(call, agent)) {
            return Err(Violation(format!(
                "call {} bridged to call-taker {} whose phone never answered it",
                call.0, agent.0
            )));
        }
        if let Some(other) = self.talking.get(&agent)
            && *other != call
        {
            return Err(Violation(format!(
                "call-taker {} holds two calls: {} and {}",
                agent.0, other.0, call.0
            )));
        }
        if let Some(first) = caller.talking
            && first != agent
        {
            return Err(Violation(format!(
                "call {} answered twice: by call-takers {} and {}",
                call.0, first.0, agent.0
            )));
        }
        caller.talking = Some(agent);
        caller.answered = true;
        self.ringing.remove(&(call, agent));
        self.notes
            .push(format!("call {} bridged to call-taker {}", call.0, agent.0));
        self.talking.insert(agent, call);
        let talk = self.roll(10_000..90_000);
        let caller_left = self.chance(0.3);
        self.schedule(
            talk,
            Happening::EndTalk {
                call,
                agent,
                caller_left,
            },
        );
        Ok(())
    }

    /// The platform hangs up `call`'s legs: a conversation going on may not be cut.
    pub(super) fn hang_up(&mut self, node: usize, call: CallId) -> Result<(), Violation> {
        self.checks += 1;
        let Some(caller) = self.callers.get_mut(&call) else {
            return Ok(());
        };
        if let Some(agent) = caller.talking
            && !caller.gone
        {
            return Err(Violation(format!(
                "node {node} cut the conversation of call {} with call-taker {}",
                call.0, agent.0
            )));
        }
        caller.gone = true;
        Ok(())
    }

    /// The conversation of `call` is over (either side hung up, or its node died).
    pub(super) fn end_talk(&mut self, call: CallId) {
        if let Some(caller) = self.callers.get_mut(&call) {
            caller.gone = true;
            if let Some(agent) = caller.talking.take() {
                self.talking.remove(&agent);
            }
        }
        self.ringing.retain(|(c, _)| *c != call);
    }

    /// `node` died: its callers' lines drop with it. Those whose offer had not reached the
    /// log yet leave no trace anywhere: counted apart.
    pub(super) fn node_died(&mut self, node: usize) {
        let calls: Vec<CallId> = self
            .callers
            .iter()
            .filter(|(_, c)| c.node == node && !c.gone)
            .map(|(call, _)| *call)
            .collect();
        let logged: BTreeSet<CallId> = self
            .log
            .iter()
            .flat_map(|e| &e.items)
            .filter_map(|input| match input {
                Input::Offered { record, .. } => Some(record.call),
                _ => None,
            })
            .collect();
        for call in calls {
            if !logged.contains(&call) {
                self.died_unlogged.insert(call);
            }
            self.end_talk(call);
        }
    }
}

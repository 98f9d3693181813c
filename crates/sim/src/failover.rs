//! The cluster's failover machine (crates/cluster) driven with faults. Two or three simulated
//! nodes, each with the driver's shell around the very same machine (a shared core fed from
//! the log, an island while cut off), over a simulated log and network that partition (one
//! node cut from the log, the sites cut from each other, the log's quorum lost), heal, crash
//! and restart nodes, and deliver entries late or twice. Safety is checked at every action
//! against the physical world (no call answered twice, no call-taker in two conversations or
//! offered a call while talking, no conversation cut by the platform); after the faults stop
//! and the network heals, every call must end, every island be given back, every node hold
//! the same core, and no caller be lost: each one answered, or on a call-back list.
//!
//! A seed fixes the whole run: a failing seed replays exactly.

mod node;
mod report;
#[cfg(test)]
mod tests;
mod world;

use std::collections::VecDeque;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use secourir_config::{CtaId, Plan};
use secourir_core::{AgentId, CallbackState, Event};

pub use node::NodeCounts;
use node::SimNode;
use report::add;
pub use report::{Failure, SeedRun, summary};
pub use world::Violation;
use world::{Happening, World};

use crate::faults::Cast;

/// One step of simulated time.
const STEP_MS: u64 = 50;
/// Lines of the run kept to show where a seed failed.
const TRACE_KEPT: usize = 40;

/// How long and how wide each seed runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Nodes of the cluster: 2 or 3.
    pub nodes: usize,
    /// Simulated time with faults, ms.
    pub chaos_ms: u64,
    /// Simulated time after healing within which everything must end and converge, ms.
    pub drain_ms: u64,
    /// New calls a second, over the whole cluster.
    pub calls_per_s: f64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            nodes: 3,
            chaos_ms: 600_000,
            drain_ms: 600_000,
            calls_per_s: 0.3,
        }
    }
}

/// A fault the run injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// One node loses the log (its site's network stays).
    NodeCut,
    /// The sites are cut from each other; the log's majority stays on the first.
    SitesCut,
    /// The log's servers lose their quorum: nobody can append.
    QuorumLost,
    /// Every link is back.
    Heal,
    /// A node dies, with its callers' lines.
    Crash,
    /// A dead node starts again and reads the log.
    Restart,
    /// A node's deliveries come late.
    Slow,
}

impl Fault {
    /// Every kind, in report order.
    pub const ALL: [Fault; 7] = [
        Fault::NodeCut,
        Fault::SitesCut,
        Fault::QuorumLost,
        Fault::Heal,
        Fault::Crash,
        Fault::Restart,
        Fault::Slow,
    ];

    /// Name in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Fault::NodeCut => "node cut from the log",
            Fault::SitesCut => "sites cut apart",
            Fault::QuorumLost => "log quorum lost",
            Fault::Heal => "healed",
            Fault::Crash => "node crashed",
            Fault::Restart => "node restarted",
            Fault::Slow => "slow deliveries",
        }
    }
}

/// A run of one seed.
struct Run<'a> {
    settings: Settings,
    plan: &'a Arc<Plan>,
    cast: &'a Cast,
    world: World,
    /// Each node, `None` while dead.
    nodes: Vec<Option<SimNode>>,
    /// Counts of the nodes' earlier lives.
    counts: NodeCounts,
    /// What each dead node's store kept of its time alone, to give back when it starts again.
    left_alone: Vec<Vec<Event>>,
    report: SeedRun,
    trace: VecDeque<String>,
    print: bool,
}

/// Runs seed `seed` on `plan` with the call-takers of `cast`; `print` writes every line of the
/// run to standard error.
pub fn run_seed(
    seed: u64,
    settings: Settings,
    plan: &Arc<Plan>,
    cast: &Cast,
    print: bool,
) -> Result<SeedRun, Failure> {
    // Every caller to call back is judged from the cores' lists: none bounded in memory.
    let mut unbounded = Plan::clone(plan);
    unbounded.callback_max = u32::MAX;
    let plan = &Arc::new(unbounded);
    let mut run = Run {
        settings,
        plan,
        cast,
        world: World::new(settings.nodes, ChaCha8Rng::seed_from_u64(seed)),
        nodes: Vec::new(),
        counts: NodeCounts::default(),
        left_alone: vec![Vec::new(); settings.nodes],
        report: SeedRun {
            seed,
            ..SeedRun::default()
        },
        trace: VecDeque::new(),
        print,
    };
    match run.run() {
        Ok(()) => Ok(run.report),
        Err(Violation(message)) => Err(Failure {
            seed,
            at_ms: run.world.now,
            message,
            trace: run.trace.into_iter().collect(),
        }),
    }
}

impl Run<'_> {
    fn line(&mut self, text: String) {
        if self.print {
            eprintln!("{:>9} ms  {text}", self.world.now);
        }
        if self.trace.len() == TRACE_KEPT {
            self.trace.pop_front();
        }
        self.trace
            .push_back(format!("{:>9} ms  {text}", self.world.now));
    }

    fn run(&mut self) -> Result<(), Violation> {
        let n = self.settings.nodes;
        let agents: Vec<AgentId> = self
            .cast
            .roster
            .iter()
            .map(|s| s.agent)
            .filter(|a| (a.0 as usize) < self.plan.call_takers.len())
            .collect();
        for (i, agent) in agents.iter().enumerate() {
            self.world.phone_of.insert(*agent, i % n);
        }
        for i in 0..n {
            let node = SimNode::start(i, self.plan, &mut self.world)?;
            self.nodes.push(Some(node));
        }
        while self.world.now < self.settings.chaos_ms {
            if self.world.chance(STEP_MS as f64 / 8_000.0) {
                self.fault()?;
            }
            if self
                .world
                .chance(self.settings.calls_per_s * STEP_MS as f64 / 1000.0)
            {
                self.arrival()?;
            }
            self.step()?;
        }
        self.line("faults stop: every link healed, every node started".into());
        self.heal();
        for i in 0..n {
            if self.nodes[i].is_none() {
                self.restart(i)?;
            }
        }
        let deadline = self.world.now + self.settings.drain_ms;
        while !self.converged() {
            if self.world.now >= deadline {
                return Err(Violation(format!(
                    "liveness: {} s after healing, {}",
                    self.settings.drain_ms / 1000,
                    self.unsettled()
                )));
            }
            self.step()?;
        }
        self.final_checks()
    }

    /// One step: what the world does now, then each node's loop.
    fn step(&mut self) -> Result<(), Violation> {
        self.world.now += STEP_MS;
        self.report.steps += 1;
        while let Some(happening) = self.world.due() {
            let outcome = self.happen(happening);
            for note in std::mem::take(&mut self.world.notes) {
                self.line(note);
            }
            outcome?;
        }
        let mut outcome = Ok(());
        for node in self.nodes.iter_mut().flatten() {
            outcome = node.step(&mut self.world);
            if outcome.is_err() {
                break;
            }
        }
        for note in std::mem::take(&mut self.world.notes) {
            self.line(note);
        }
        outcome
    }

    fn happen(&mut self, happening: Happening) -> Result<(), Violation> {
        match happening {
            Happening::Answer { node, call, agent } => {
                // The phone stays off the hook on this call until the platform connects it.
                if !self.world.ringing.contains(&(call, agent))
                    || self.world.callers.get(&call).is_none_or(|c| c.gone)
                {
                    return Ok(());
                }
                let dead = Happening::DeadLine { node, call, agent };
                self.world.schedule(world::DEAD_LINE_MS, dead);
                if let Some(node) = self.nodes[node].as_mut() {
                    node.feed(Event::AgentAnswered { agent, call }, &mut self.world)?;
                }
            }
            Happening::DeadLine { node, call, agent } => {
                let talking = self.world.talking.get(&agent) == Some(&call);
                if talking || !self.world.ringing.remove(&(call, agent)) {
                    return Ok(());
                }
                self.world.dead_lines.insert((call, agent));
                if let Some(node) = self.nodes[node].as_mut() {
                    node.hung_up(Event::AgentHungUp { agent, call }, &mut self.world)?;
                }
            }
            Happening::Leave { call } => {
                let Some(caller) = self.world.callers.get_mut(&call) else {
                    return Ok(());
                };
                if caller.gone || caller.talking.is_some() {
                    return Ok(());
                }
                caller.gone = true;
                let at = caller.node;
                self.world.ringing.retain(|(c, _)| *c != call);
                if let Some(node) = self.nodes[at].as_mut() {
                    node.hung_up(Event::CallerHungUp { call }, &mut self.world)?;
                }
            }
            Happening::EndTalk {
                call,
                agent,
                caller_left,
            } => {
                let Some(caller) = self.world.callers.get(&call) else {
                    return Ok(());
                };
                if caller.gone || caller.talking != Some(agent) {
                    return Ok(());
                }
                let at = caller.node;
                self.world.end_talk(call);
                let event = match caller_left {
                    true => Event::CallerHungUp { call },
                    false => Event::AgentHungUp { agent, call },
                };
                if let Some(node) = self.nodes[at].as_mut() {
                    node.hung_up(event, &mut self.world)?;
                }
            }
        }
        Ok(())
    }

    /// A new caller, at a node still up.
    fn arrival(&mut self) -> Result<(), Violation> {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect();
        let Some(&at) = up.get(self.world.roll(0..up.len() as u64) as usize) else {
            return Ok(());
        };
        let zones = &self.cast.zones;
        let zone = zones[self.world.roll(0..zones.len() as u64) as usize];
        let Some(node) = self.nodes[at].as_mut() else {
            return Ok(());
        };
        let call = node.arrive(zone, &mut self.world)?;
        self.report.calls += 1;
        self.line(format!("call {} arrives at node {at}", call.0));
        Ok(())
    }

    fn fault(&mut self) -> Result<(), Violation> {
        let n = self.nodes.len();
        let kind = Fault::ALL[self.world.roll(0..Fault::ALL.len() as u64) as usize];
        let node = self.world.roll(0..n as u64) as usize;
        match kind {
            Fault::NodeCut => self.world.reach[node] = false,
            Fault::SitesCut => {
                // The last node is the second site, with the log's minority.
                let b = n - 1;
                self.world.reach[b] = false;
                self.world.group[b] = 1;
            }
            Fault::QuorumLost => self.world.quorum = false,
            Fault::Heal => self.heal(),
            Fault::Crash => {
                let alive = self.nodes.iter().filter(|n| n.is_some()).count();
                if alive < 2 {
                    return Ok(());
                }
                let Some(dead) = self.nodes[node].take() else {
                    return Ok(());
                };
                add(&mut self.counts, &dead.counts);
                self.left_alone[node].extend(dead.left_alone(self.world.now));
                self.world.up[node] = false;
                self.world.node_died(node);
            }
            Fault::Restart => {
                if self.nodes[node].is_some() || !self.world.on_log_if_up(node) {
                    return Ok(());
                }
                self.restart(node)?;
            }
            Fault::Slow => {
                let lag = self.world.roll(200..2_500);
                if let Some(n) = self.nodes[node].as_mut() {
                    n.lag_ms = lag;
                }
            }
        }
        self.report.faults[kind as usize] += 1;
        self.line(format!("fault: {} (node {node})", kind.name()));
        Ok(())
    }

    fn heal(&mut self) {
        self.world.quorum = true;
        self.world.reach.iter_mut().for_each(|r| *r = true);
        self.world.group.iter_mut().for_each(|g| *g = 0);
        for node in self.nodes.iter_mut().flatten() {
            node.lag_ms = 0;
        }
    }

    fn restart(&mut self, i: usize) -> Result<(), Violation> {
        self.world.up[i] = true;
        let mut node = SimNode::start(i, self.plan, &mut self.world)?;
        node.give_back(std::mem::take(&mut self.left_alone[i]), &self.world);
        self.nodes[i] = Some(node);
        Ok(())
    }

    /// Every caller gone, every node settled on the same core with no live call.
    fn converged(&self) -> bool {
        let nodes: Vec<&SimNode> = self.nodes.iter().flatten().collect();
        self.world.callers.values().all(|c| c.gone)
            && nodes.iter().all(|n| n.settled(&self.world))
            && nodes.iter().all(|n| n.core.live_calls() == 0)
    }

    fn unsettled(&self) -> String {
        let waiting = self.world.callers.values().filter(|c| !c.gone).count();
        let mut parts = vec![format!("{waiting} callers still on the line")];
        for node in self.nodes.iter().flatten() {
            let island = node.failover.island();
            let held: Vec<String> = island
                .map(|i| {
                    i.core
                        .live_call_ids()
                        .map(|c| format!("{} {:?}", c.0, i.core.call(c).map(|c| c.status)))
                        .collect()
                })
                .unwrap_or_default();
            parts.push(format!(
                "node {}: {} live calls, island of {} calls still holding [{}], {} offers pending",
                node.index,
                node.core.live_calls(),
                island.map_or(0, |i| i.calls.len()),
                held.join(", "),
                node.failover.pending()
            ));
        }
        parts.join("; ")
    }

    /// After convergence: the same core everywhere, and every caller answered or to call back.
    fn final_checks(&mut self) -> Result<(), Violation> {
        let nodes: Vec<&SimNode> = self.nodes.iter().flatten().collect();
        let reference = format!("{:?}", nodes[0].core.snapshot());
        for node in &nodes[1..] {
            self.world.checks += 1;
            if format!("{:?}", node.core.snapshot()) != reference {
                return Err(Violation(format!(
                    "node {} holds another core than node {}",
                    node.index, nodes[0].index
                )));
            }
        }
        let core = &nodes[0].core;
        let mut to_call_back = std::collections::BTreeSet::new();
        for cta in 0..self.plan.ctas.len() {
            for (call, entry) in core.callbacks(CtaId(cta as u16)) {
                if !matches!(entry.state, CallbackState::Done(_)) {
                    to_call_back.insert(call);
                }
            }
        }
        for (call, caller) in &self.world.callers {
            self.world.checks += 1;
            if caller.answered {
                self.report.answered += 1;
            } else if self.world.bridged.contains(call) {
                // On record as answered: the answer reached a core after the caller hung up
                // (it waited in a cut node's inputs).
                self.report.answered_unconnected += 1;
            } else if to_call_back.contains(call) {
                self.report.call_backs += 1;
            } else if self.world.died_unlogged.contains(call) {
                self.report.died_unlogged += 1;
            } else {
                return Err(Violation(format!(
                    "caller of call {} lost: never answered and on no call-back list",
                    call.0
                )));
            }
        }
        self.report.entries = self.world.log.len() as u64;
        self.report.busy_rings = self.world.busy_rings;
        self.report.busy_island_rings = self.world.busy_island_rings;
        self.report.checks = self.world.checks;
        let mut counts = self.counts;
        for node in self.nodes.iter().flatten() {
            add(&mut counts, &node.counts);
        }
        self.report.counts = counts;
        Ok(())
    }
}

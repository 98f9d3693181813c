//! One simulated node: the same shell around the failover machine as the platform's driver
//! (its shared core fed from the log, its island, the log's entries applied in order), with
//! the physical world in place of SIP legs.

use std::collections::VecDeque;
use std::sync::Arc;

use secourir_cluster::{
    Action, Carrier, Failover, Input, Island, Members, OfferedRecord, Route, SLOTS, Step,
    first_call, slot_of,
};
use secourir_config::{CtaId, Plan, ZoneId};
use secourir_core::{
    AgentId, AgentStatus, Ask, CallId, CallbackState, Command, Core, Event, Instant, Offer,
    RequestId, RingFailure, Service, WantedState,
};

use super::world::{Caller, Entry, Happening, Violation, World};

/// The appender's own retries before it says the node is cut off.
const CUT_OFF_AFTER_MS: u64 = 2_000;
/// The driver's heartbeat period.
const BEAT_EVERY_MS: u64 = 250;
/// How often a call-taker marked unavailable after a missed ring comes back.
const BACK_EVERY_MS: u64 = 10_000;

/// What one node did that the report counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCounts {
    /// Calls served alone while cut off.
    pub served_alone: u64,
    /// Nodes this one declared lost.
    pub declared_lost: u64,
    /// Conversations carried on after the log ended their calls.
    pub carried_on: u64,
    /// Islands given back to the log.
    pub merges: u64,
    /// Redeliveries refused.
    pub duplicates: u64,
}

pub(super) struct SimNode {
    pub(super) index: usize,
    pub(super) name: String,
    pub(super) failover: Failover<Offer>,
    pub(super) members: Members,
    pub(super) core: Core,
    /// The log's clock: the latest instant applied.
    clock: Instant,
    outbox: Vec<Input>,
    failing_since: Option<u64>,
    /// The next entry of the log to apply.
    cursor: u64,
    /// How late the log's entries reach this node.
    pub(super) lag_ms: u64,
    next_call: u64,
    next_request: u64,
    tick_asked: Option<(Instant, u64)>,
    follow_ups: VecDeque<Event>,
    last_beat: u64,
    last_back: u64,
    /// The callers to call back of an island given back, while its inputs are not in the log:
    /// the store keeps them until then.
    giving_back: Vec<Event>,
    pub(super) counts: NodeCounts,
}

impl SimNode {
    /// Node `index` starts (again) at `world.now`: it reads the whole log before serving, says
    /// hello, and its call-takers' phones register and become available.
    pub(super) fn start(
        index: usize,
        plan: &Arc<Plan>,
        world: &mut World,
    ) -> Result<SimNode, Violation> {
        let name = format!("node-{index}");
        let slot = slot_of(&name);
        let mut node = SimNode {
            index,
            failover: Failover::new(&name),
            name,
            members: Members::default(),
            core: Core::new(Arc::clone(plan)),
            clock: Instant(0),
            outbox: Vec::new(),
            failing_since: None,
            cursor: 1,
            lag_ms: 0,
            next_call: 0,
            next_request: 0,
            tick_asked: None,
            follow_ups: VecDeque::new(),
            last_beat: 0,
            last_back: world.now,
            giving_back: Vec::new(),
            counts: NodeCounts::default(),
        };
        while node.cursor <= world.log.len() as u64 {
            node.apply(node.cursor, world)?;
            node.cursor += 1;
        }
        let calls = node.members.highest_call(&node.name).map(CallId);
        node.next_call = first_call(slot, calls.into_iter());
        node.next_request = node.next_call;
        node.give(Input::Hello {
            at: world.now,
            incarnation: world.now + 1,
            slot,
        });
        let phones: Vec<AgentId> = world
            .phone_of
            .iter()
            .filter(|(_, n)| **n == index)
            .map(|(a, _)| *a)
            .collect();
        for agent in phones {
            node.failover.registered(agent);
            node.seat(agent, world)?;
        }
        Ok(node)
    }

    fn give(&mut self, input: Input) {
        self.outbox.push(input);
    }

    /// A call-taker whose phone is here asks to take calls.
    fn seat(&mut self, agent: AgentId, world: &mut World) -> Result<(), Violation> {
        let id = RequestId(self.next_request);
        self.next_request += SLOTS;
        let ask = Event::Request {
            id,
            agent,
            ask: Ask::State(WantedState::Available),
        };
        self.feed(ask, world)
    }

    /// A new caller reaches this node.
    pub(super) fn arrive(&mut self, zone: ZoneId, world: &mut World) -> Result<CallId, Violation> {
        let call = CallId(self.next_call);
        self.next_call += SLOTS;
        world.callers.insert(
            call,
            Caller {
                node: self.index,
                talking: None,
                gone: false,
                answered: false,
            },
        );
        let patience = world.roll(15_000..120_000);
        world.schedule(patience, Happening::Leave { call });
        let offer = Offer {
            call,
            zone,
            service: Service::Fire,
            resource_priority: None,
            caller: Some(format!("06{:08}", call.0 % 100_000_000).into_boxed_str()),
            source: None,
            place: None,
            suspected: false,
            refused: None,
            medium: Default::default(),
        };
        let now = Instant(world.now);
        if let Route::Log(offer) = self.failover.arrive(call, offer, now, &self.core) {
            let record = OfferedRecord {
                call,
                emergency_call_id: format!("urn:emergency:uid:callid:{}:sim", call.0),
                caller: None,
                service: "18".into(),
                zone,
                departement: String::new(),
                commune: None,
                insee: None,
                point: None,
                radius_m: None,
                location_source: "default".into(),
                location_problem: None,
                trunk: None,
                repaired_headers: None,
            };
            self.give(Input::Offered {
                at: world.now,
                record: Box::new(record),
                offer: Box::new(offer),
            });
        }
        self.act(world)?;
        Ok(call)
    }

    /// A hang-up heard on this node's legs.
    pub(super) fn hung_up(&mut self, event: Event, world: &mut World) -> Result<(), Violation> {
        if self.failover.hung_up(&event, &self.core) {
            self.feed(event, world)?;
        }
        self.act(world)
    }

    /// Feeds an event: to the island's core when it concerns an island call, else to the log.
    pub(super) fn feed(&mut self, event: Event, world: &mut World) -> Result<(), Violation> {
        if self.failover.on_island(&event) {
            return self.process_on(true, event, world);
        }
        if let Event::Request {
            agent,
            ask: Ask::State(_),
            ..
        } = &event
            && self.failover.island().is_some()
            && self.failover.has_phone(*agent)
        {
            self.process_on(true, event.clone(), world)?;
        }
        self.give(Input::Core {
            at: world.now,
            event,
        });
        Ok(())
    }

    fn process_on(
        &mut self,
        island: bool,
        event: Event,
        world: &mut World,
    ) -> Result<(), Violation> {
        self.follow_ups.push_back(event);
        while let Some(event) = self.follow_ups.pop_front() {
            let (core, now) = match island {
                true => match self.failover.island_core() {
                    Some(core) => (core, Instant(world.now)),
                    None => return Ok(()),
                },
                false => (&mut self.core, self.clock),
            };
            let commands: Vec<Command> = core.handle(event, now).collect();
            self.carry_out(island, &commands, world)?;
            if !island {
                for event in self.follow_ups.drain(..) {
                    self.outbox.push(Input::Core {
                        at: world.now,
                        event,
                    });
                }
            }
        }
        Ok(())
    }

    fn carry_out(
        &mut self,
        island: bool,
        commands: &[Command],
        world: &mut World,
    ) -> Result<(), Violation> {
        for command in commands {
            let carrier = match island {
                true => Carrier::Legs,
                false => self.failover.carrier(command.call()),
            };
            if let (Command::Withdrawn { call, .. }, false) = (command, island) {
                self.failover.withdrawn(*call);
                self.members.ended(*call);
            }
            if let (Command::Ended { call, .. }, false) = (command, island) {
                self.members.ended(*call);
            }
            if let Command::Bridge { call, .. } = command {
                world.bridged.insert(*call);
            }
            if carrier == Carrier::Legs {
                self.execute(command, island, world)?;
            }
        }
        Ok(())
    }

    /// What this node's legs do for a command: only for the callers it holds.
    fn execute(
        &mut self,
        command: &Command,
        island: bool,
        world: &mut World,
    ) -> Result<(), Violation> {
        let Some(call) = command.call() else {
            return Ok(());
        };
        let here = world
            .callers
            .get(&call)
            .is_some_and(|c| c.node == self.index && !c.gone);
        if !here {
            return Ok(());
        }
        match command {
            Command::Ring { call, agent } if !world.ring(self.index, *call, *agent, island) => {
                self.follow_ups.push_back(Event::AgentRingFailed {
                    agent: *agent,
                    call: *call,
                    reason: RingFailure::Unreachable,
                });
            }
            Command::CancelRing { call, agent } => {
                world.ringing.remove(&(*call, *agent));
            }
            Command::Bridge { call, agent, .. } => world.bridge(*call, *agent)?,
            Command::HangUp { call }
            | Command::Ended { call, .. }
            | Command::Reject { call, .. } => world.hang_up(self.index, *call)?,
            _ => {}
        }
        Ok(())
    }

    /// Applies entry `seq` of the log, as the driver does.
    fn apply(&mut self, seq: u64, world: &mut World) -> Result<(), Violation> {
        let Entry {
            node: from, items, ..
        } = match world.log.get(seq as usize - 1) {
            Some(entry) => Entry {
                node: entry.node.clone(),
                items: entry.items.clone(),
                at: entry.at,
            },
            None => return Ok(()),
        };
        if !self.failover.entry(&from, seq, Instant(world.now)) {
            self.counts.duplicates += 1;
            return Ok(());
        }
        self.members.seen(&from, seq);
        let mine = from == self.name;
        for input in items {
            self.clock = Instant(self.clock.0.max(input.at()));
            let about_me = matches!(&input, Input::Lost { node, .. } if *node == self.name);
            for step in self.members.steps(&from, input) {
                let Step::Core(event, _) = step else {
                    continue;
                };
                if let (Event::Stopped { call }, true) = (&event, about_me) {
                    let talking = world
                        .callers
                        .get(call)
                        .is_some_and(|c| c.node == self.index && !c.gone && c.talking.is_some());
                    self.failover.ended_by_log(*call, talking);
                }
                if let (Event::Offered(offer), true) = (&event, mine) {
                    self.failover.offer_back(offer.call);
                }
                self.process_on(false, event, world)?;
                self.act(world)?;
            }
        }
        Ok(())
    }

    /// Carries out what the failover machine decided.
    fn act(&mut self, world: &mut World) -> Result<(), Violation> {
        while let Some(action) = self.failover.poll() {
            match action {
                Action::Give(input) => self.give(input),
                Action::ServeAlone { call, .. } => {
                    self.counts.served_alone += 1;
                    world.notes.push(format!(
                        "node {} serves call {} alone",
                        self.index, call.call.0
                    ));
                    self.process_on(true, Event::Offered(call), world)?;
                }
                Action::ToIsland(event) => self.process_on(true, event, world)?,
                Action::CarryOn(call) => {
                    self.counts.carried_on += 1;
                    world
                        .notes
                        .push(format!("node {} carries call {} on", self.index, call.0));
                }
                Action::Release(call) => world.end_talk(call),
                Action::Continued { call, caller_left } => {
                    world.end_talk(call);
                    self.give(Input::Continued {
                        at: world.now,
                        call,
                        caller_left,
                    });
                }
                Action::Merge(calls) => self.merge(&calls, world),
                Action::DeclaredLost { node, after } => {
                    self.counts.declared_lost += 1;
                    world.notes.push(format!(
                        "node {} declares {node} lost after entry {after}",
                        self.index
                    ));
                }
            }
        }
        Ok(())
    }

    /// Gives the island's callers to call back to the log, as the driver does from its store.
    fn merge(&mut self, calls: &[CallId], world: &mut World) {
        let Some(island) = self.failover.island() else {
            return;
        };
        let restored = to_call_back(island, |call| calls.contains(&call));
        self.failover.merged();
        self.giving_back.clone_from(&restored);
        self.counts.merges += 1;
        world.notes.push(format!(
            "node {} gives its island back: {} calls, {} to call back",
            self.index,
            calls.len(),
            restored.len()
        ));
        for event in restored {
            self.give(Input::Core {
                at: world.now,
                event,
            });
        }
    }

    /// One step of the node's loop at `world.now`.
    pub(super) fn step(&mut self, world: &mut World) -> Result<(), Violation> {
        let now = world.now;
        // The appender: one message of everything given, retried until the log takes it.
        if !self.outbox.is_empty() {
            if world.on_log(self.index) {
                world.log.push(Entry {
                    node: self.name.clone(),
                    items: std::mem::take(&mut self.outbox),
                    at: now,
                });
                self.failing_since = None;
                self.giving_back.clear();
            } else {
                self.failing_since.get_or_insert(now);
            }
        }
        let failing = self
            .failing_since
            .is_some_and(|since| now - since >= CUT_OFF_AFTER_MS);
        self.failover.appending(failing);
        // The log's entries, late by this node's lag; now and then one delivered again.
        if world.on_log(self.index) {
            while let Some(entry) = world.log.get(self.cursor as usize - 1)
                && entry.at + self.lag_ms <= now
            {
                self.apply(self.cursor, world)?;
                self.cursor += 1;
            }
            if self.cursor > 1 && world.chance(0.01) {
                let again = world.roll(1..self.cursor);
                self.apply(again, world)?;
            }
        }
        if let Some(deadline) = self.core.next_deadline()
            && deadline.0 <= now
            && self
                .tick_asked
                .is_none_or(|(d, at)| d != deadline || now >= at + 1_000)
        {
            self.tick_asked = Some((deadline, now));
            self.give(Input::Core {
                at: now,
                event: Event::Tick,
            });
        }
        if let Some(deadline) = self.failover.island().and_then(|i| i.core.next_deadline())
            && deadline.0 <= now
        {
            self.process_on(true, Event::Tick, world)?;
        }
        if now >= self.last_beat + BEAT_EVERY_MS {
            self.last_beat = now;
            self.failover.beat(Instant(now), &self.members);
            self.failover.merge(Instant(now));
            self.act(world)?;
        }
        if now >= self.last_back + BACK_EVERY_MS {
            self.last_back = now;
            self.call_takers_back(world)?;
        }
        if self.failover.pending() > 0 {
            self.failover.serve_pending(Instant(now), &self.core);
        }
        self.act(world)
    }

    /// Call-takers marked unavailable after a missed ring make themselves available again.
    fn call_takers_back(&mut self, world: &mut World) -> Result<(), Violation> {
        let paused: Vec<AgentId> = world
            .phone_of
            .iter()
            .filter(|(_, n)| **n == self.index)
            .map(|(a, _)| *a)
            .filter(|a| {
                self.core.agent(*a) == AgentStatus::Paused
                    || self
                        .failover
                        .island()
                        .is_some_and(|i| i.core.agent(*a) == AgentStatus::Paused)
            })
            .collect();
        for agent in paused {
            self.seat(agent, world)?;
        }
        Ok(())
    }

    /// What the node's store keeps of its time alone when it dies: the callers its island
    /// had (those still on the line are cut by the death) and those of an island given back
    /// whose inputs the log does not have yet. Given back when it starts again.
    pub(super) fn left_alone(&self, now: u64) -> Vec<Event> {
        let mut left = self.giving_back.clone();
        let Some(island) = self.failover.island() else {
            return left;
        };
        left.extend(to_call_back(island, |call| island.calls.contains(&call)));
        for call in island.core.live_call_ids() {
            if let Some(info) = island.core.call(call) {
                left.push(Event::CallbackRestored {
                    call,
                    zone: info.zone,
                    caller: info.caller,
                    at: Instant(now),
                    taken_by: None,
                });
            }
        }
        left
    }

    /// A node started again gives back what its store kept of its time alone.
    pub(super) fn give_back(&mut self, left: Vec<Event>, world: &World) {
        for event in left {
            self.give(Input::Core {
                at: world.now,
                event,
            });
        }
    }

    /// Whether the node has nothing left to do: no island, no offer pending, nothing to give.
    pub(super) fn settled(&self, world: &World) -> bool {
        self.failover.island().is_none()
            && self.failover.pending() == 0
            && self.outbox.iter().all(|i| matches!(i, Input::Alive { .. }))
            && self.cursor > world.log.len() as u64
    }
}

/// The island's callers still to call back among the calls `of` keeps, as the log takes them.
fn to_call_back(island: &Island, of: impl Fn(CallId) -> bool) -> Vec<Event> {
    let mut restored = Vec::new();
    for cta in 0..island.core.plan().ctas.len() {
        for (call, entry) in island.core.callbacks(CtaId(cta as u16)) {
            if of(call) && !matches!(entry.state, CallbackState::Done(_)) {
                restored.push(Event::CallbackRestored {
                    call,
                    zone: entry.zone,
                    caller: entry.caller.clone(),
                    at: entry.at,
                    taken_by: None,
                });
            }
        }
    }
    restored
}

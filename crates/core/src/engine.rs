//! The state machine: one owner of all routing state, driven by events and `now`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;

// Call and agent ids come from our own shells, not from callers: a fast non-keyed hash is safe.
use rustc_hash::FxHashMap as HashMap;
use secourir_config::{CtaId, DequeueMode, FailReason, Plan, QueueState, Service, ZoneId};

use crate::admission::Admission;
use crate::policy::{self, CallFacts, Decision, Memory, Note, QueueView};
use crate::reserve::Load;
use crate::types::*;

mod assertions;
mod requests;
pub use requests::national_number;

/// Overdue calls examined for one lender that just got a free call-taker: enough to find one
/// the policy lets it take, bounded so that a lender nobody may use costs little.
const LEND_SCAN: usize = 64;

/// Order of a waiting call: highest priority first, then longest waiting, then arrival order.
type QueueKey = (Reverse<Priority>, Instant, u64);
/// Order in which lenders take overdue calls: calls of zones not in crisis mode first, so that
/// a lender's own zone or any other quiet zone that briefly lacks a call-taker is not queued
/// behind a crisis backlog; then queue order.
type OverdueKey = (bool, QueueKey);
/// Order of an idle call-taker: highest dequeue preference first, then longest idle.
type IdleKey = (Reverse<u8>, Instant, AgentId);

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
enum Timer {
    /// The call waited `no_answer` in its queue: run the rules again.
    NoAnswer(CallId, u32),
    /// A mixed-mode call nobody picked: let the ACD offer it.
    Acd(CallId, u32),
    /// A call-taker's phone rang too long.
    Ring(CallId, u32),
    /// A call-taker's wrap-up is over.
    WrapUp(AgentId, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum CallState {
    Queued,
    Ringing(AgentId),
    Talking(AgentId),
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Call {
    zone: ZoneId,
    home: CtaId,
    cta: CtaId,
    service: Service,
    priority: Priority,
    caller: Option<Box<str>>,
    source: Option<Box<str>>,
    offered_at: Instant,
    /// When it first joined a queue: its seniority, kept across overflow and ring failures.
    queued_at: Instant,
    /// When it joined the queue it is in now.
    entered_at: Instant,
    state: CallState,
    key: QueueKey,
    overflowed_from: Option<CtaId>,
    /// Waited past `no_answer`: partners may pick it.
    mutual_aid: bool,
    /// Its last evaluation wanted it to overflow but no lender had a call-taker to spare.
    wants_aid: bool,
    /// When a call-taker was first rung for it in its current attempt: handling starts there.
    engaged_at: Instant,
    /// Handed back to its home CTA: it waits there, unless that queue becomes unreachable.
    pinned: bool,
    crisis_related: bool,
    /// Where the caller is, as last located.
    place: Option<Arc<Whereabouts>>,
    /// What the lender's call-taker said when handing it back.
    summary: Option<Box<str>>,
    /// A transfer to a partner service under way: the request waiting for its answer.
    transfer: Option<(RequestId, AgentId, Service)>,
    /// Conversations so far (a hand-back starts another one).
    conversations: u32,
    memory: Memory,
    no_answer_at: Instant,
    /// Bumped whenever the call changes queue or state, so that older timers are ignored.
    generation: u32,
    /// Suspected of a flood: behind every other caller, never lent to another CTA.
    #[serde(default)]
    suspected: bool,
    /// Admitted as a suspect: within the suspects' capacity, in no zone's share.
    #[serde(default)]
    admitted_suspected: bool,
}

/// What an agent does when their current call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum AfterCall {
    WrapUp,
    Pause,
    Logout,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Agent {
    cta: CtaId,
    site: u16,
    preference: u8,
    status: AgentStatus,
    idle_since: Instant,
    after_call: AfterCall,
    generation: u32,
    /// Ringing, talking or in wrap-up for a call of another CTA's zones.
    lent: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CtaState {
    waiting: BTreeMap<QueueKey, CallId>,
    idle: BTreeSet<IdleKey>,
    logged_in: u32,
    paused: u32,
    /// Call-takers engaged with calls of other CTAs' zones.
    lent: u32,
    disabled: bool,
    callbacks: BTreeMap<CallId, CallbackEntry>,
    load: Load,
}

impl CtaState {
    fn new(handling_ms: u64) -> CtaState {
        CtaState {
            waiting: BTreeMap::new(),
            idle: BTreeSet::new(),
            logged_in: 0,
            paused: 0,
            lent: 0,
            disabled: false,
            callbacks: BTreeMap::new(),
            load: Load::new(handling_ms),
        }
    }
}

impl CtaState {
    /// Takes a call-taker out of the idle set or the pause count, whichever holds them.
    fn forget(&mut self, agent: &Agent, id: AgentId) {
        match agent.status {
            AgentStatus::Available => {
                self.idle
                    .remove(&(Reverse(agent.preference), agent.idle_since, id));
            }
            AgentStatus::Paused => self.paused -= 1,
            _ => {}
        }
    }
}

/// A call that ended unanswered and must be called back.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallbackEntry {
    /// Zone of the call.
    pub zone: ZoneId,
    /// Number to call back.
    pub caller: Option<Box<str>>,
    /// When the caller hung up.
    pub at: Instant,
    /// Pending, taken or done.
    pub state: CallbackState,
}

/// A call as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallInfo {
    /// The call.
    pub call: CallId,
    /// Its zone.
    pub zone: ZoneId,
    /// The CTA whose queue or call-taker holds it.
    pub cta: CtaId,
    /// The CTA serving its zone.
    pub home: CtaId,
    /// Service dialled.
    pub service: Service,
    /// Priority.
    pub priority: Priority,
    /// Caller's number.
    pub caller: Option<Box<str>>,
    /// When it arrived.
    pub offered_at: Instant,
    /// When it first joined a queue.
    pub queued_at: Instant,
    /// The queue it came from, if mutual aid moved it.
    pub overflowed_from: Option<CtaId>,
    /// Whether partners may pick it.
    pub mutual_aid: bool,
    /// Whether the caller said it is about the known incident.
    pub crisis_related: bool,
    /// Where the caller is, as last located.
    pub place: Option<Arc<Whereabouts>>,
    /// What a lender's call-taker said when handing it back.
    pub summary: Option<Box<str>>,
    /// The partner service being rung for a transfer, if any.
    pub transferring: Option<Service>,
    /// Suspected of a flood: behind every other caller.
    pub suspected: bool,
    /// Waiting, ringing or talking, and with whom.
    pub status: CallStatus,
}

/// Where a live call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    /// In a queue.
    Queued,
    /// Ringing a call-taker.
    Ringing(AgentId),
    /// In conversation.
    Talking(AgentId),
}

/// A CTA's queue and room, as the supervision shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtaStatus {
    /// NENA i3 queue state.
    pub state: QueueState,
    /// Calls waiting.
    pub waiting: u32,
    /// When the longest-waiting call joined a queue.
    pub oldest_queued_at: Option<Instant>,
    /// Call-takers logged in.
    pub logged_in: u32,
    /// Call-takers available and idle.
    pub available: u32,
    /// Call-takers paused.
    pub paused: u32,
    /// Call-takers ringing, talking or in wrap-up.
    pub busy: u32,
    /// Call-takers engaged with calls of other CTAs' zones (mutual aid given).
    pub lent: u32,
    /// Call-takers kept for its own callers, sized from its recent offered load.
    pub reserve: u32,
    /// Idle call-takers beyond its waiting calls and its reserve: what it can lend now.
    pub lendable: u32,
}

/// A core's whole state but its plan, taken between two events: a core restored from it
/// gives, for the same events after it, the same commands as the core it was taken from. A
/// cluster node restarting from one applies only the log's entries after it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    now: Instant,
    admission: Admission,
    calls: Vec<(CallId, Call)>,
    agents: Vec<(AgentId, Agent)>,
    ctas: Vec<CtaState>,
    crisis: Vec<bool>,
    timers: Vec<(Instant, Timer)>,
    sequence: u64,
    callbacks_unindexed: u64,
    overdue: Vec<(OverdueKey, CallId)>,
    started: Option<Instant>,
    next_sizing: Instant,
    handed_over: Vec<CallId>,
}

/// The routing brain. Feed it events with [`Core::handle`]; it never reads a clock or does I/O.
#[derive(Debug)]
pub struct Core {
    plan: Arc<Plan>,
    now: Instant,
    admission: Admission,
    calls: HashMap<CallId, Call>,
    agents: HashMap<AgentId, Agent>,
    ctas: Vec<CtaState>,
    crisis: Vec<bool>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    sequence: u64,
    /// Commands of the event being handled, in order (a Vec: draining it is one copy).
    out: Vec<Command>,
    callbacks_unindexed: u64,
    /// Queued calls that want mutual aid and found no lender yet, in queue order.
    overdue: BTreeMap<OverdueKey, CallId>,
    /// `may_lend[home][lender]`: whether the lender is in one of the home CTA's tiers.
    may_lend: Vec<Vec<bool>>,
    /// Expected calls per millisecond of each CTA's zones before any is observed.
    prior_per_ms: Vec<f64>,
    /// The first instant seen: the load window before it is read from the prior.
    started: Option<Instant>,
    /// When every reserve is next sized again.
    next_sizing: Instant,
    /// CTAs whose spare may have grown during this event without a call-taker freeing up
    /// (a call left their queue, their reserve shrank, their queue came back into service).
    spare_grew: Vec<CtaId>,
    /// Calls handed to a partner service: ended here, the caller still bridged to the partner
    /// until one of them hangs up.
    handed_over: BTreeSet<CallId>,
}

impl Core {
    /// A core with no call and no call-taker, for this plan.
    pub fn new(plan: Arc<Plan>) -> Core {
        let n = plan.ctas.len();
        let (may_lend, prior_per_ms) = lending(&plan);
        Core {
            admission: Admission::new(&plan),
            ctas: vec![CtaState::new(plan.mean_handling_ms); n],
            overdue: BTreeMap::new(),
            may_lend,
            prior_per_ms,
            started: None,
            next_sizing: Instant(0),
            spare_grew: Vec::new(),
            handed_over: BTreeSet::new(),
            crisis: vec![false; plan.zones.len()],
            plan,
            now: Instant(0),
            calls: HashMap::default(),
            agents: HashMap::default(),
            timers: BinaryHeap::new(),
            sequence: 0,
            out: Vec::new(),
            callbacks_unindexed: 0,
        }
    }

    /// Its state, to restore another core from ([`Core::restore`]).
    pub fn snapshot(&self) -> Snapshot {
        // Every field named, none skipped with `..`: a field added to the core does not
        // compile until it is written here (or said to be derived), since one forgotten would
        // leave every node restored from a snapshot apart from the others.
        let Core {
            plan: _,
            now,
            admission,
            calls,
            agents,
            ctas,
            crisis,
            timers,
            sequence,
            out: _,
            callbacks_unindexed,
            overdue,
            may_lend: _,
            prior_per_ms: _,
            started,
            next_sizing,
            spare_grew: _,
            handed_over,
        } = self;
        // Maps in key order, so that two snapshots of equal states are equal.
        let mut calls: Vec<(CallId, Call)> = calls.iter().map(|(id, c)| (*id, c.clone())).collect();
        calls.sort_unstable_by_key(|(id, _)| *id);
        let mut agents: Vec<(AgentId, Agent)> =
            agents.iter().map(|(id, a)| (*id, a.clone())).collect();
        agents.sort_unstable_by_key(|(id, _)| *id);
        let mut timers: Vec<(Instant, Timer)> = timers.iter().map(|Reverse(t)| *t).collect();
        timers.sort_unstable();
        Snapshot {
            now: *now,
            admission: admission.clone(),
            calls,
            agents,
            ctas: ctas.clone(),
            crisis: crisis.clone(),
            timers,
            sequence: *sequence,
            callbacks_unindexed: *callbacks_unindexed,
            overdue: overdue.iter().map(|(k, id)| (*k, *id)).collect(),
            started: *started,
            next_sizing: *next_sizing,
            handed_over: handed_over.iter().copied().collect(),
        }
    }

    /// A core for `plan` in the state `snapshot` was taken in; refused when the snapshot
    /// does not fit the plan (other CTAs or zones).
    pub fn restore(plan: Arc<Plan>, snapshot: Snapshot) -> Result<Core, String> {
        if snapshot.ctas.len() != plan.ctas.len() || snapshot.crisis.len() != plan.zones.len() {
            return Err(format!(
                "the snapshot has {} CTAs and {} zones, the configuration {} and {}",
                snapshot.ctas.len(),
                snapshot.crisis.len(),
                plan.ctas.len(),
                plan.zones.len()
            ));
        }
        // Every field of both named: one added to either does not compile until it is read
        // back here.
        let Snapshot {
            now,
            admission,
            calls,
            agents,
            ctas,
            crisis,
            timers,
            sequence,
            callbacks_unindexed,
            overdue,
            started,
            next_sizing,
            handed_over,
        } = snapshot;
        let (may_lend, prior_per_ms) = lending(&plan);
        let core = Core {
            plan,
            now,
            admission,
            calls: calls.into_iter().collect(),
            agents: agents.into_iter().collect(),
            ctas,
            crisis,
            timers: timers.into_iter().map(Reverse).collect(),
            sequence,
            out: Vec::new(),
            callbacks_unindexed,
            overdue: overdue.into_iter().collect(),
            may_lend,
            prior_per_ms,
            started,
            next_sizing,
            spare_grew: Vec::new(),
            handed_over: handed_over.into_iter().collect(),
        };
        core.check_invariants();
        Ok(core)
    }

    /// Takes a new plan at `now` without a restart, keeping every call, call-taker and
    /// call-back: the rules, capacity and shares, mutual aid, staffing and timings change;
    /// the CTAs, zones and accounts must not ([`Plan::may_become`]). Reserves are sized again
    /// at once and every CTA may lend what the new plan lets it. Refused, with the reason,
    /// when the plans differ in shape or the new capacity is below the calls admitted now;
    /// the core is then unchanged.
    pub fn change_plan(
        &mut self,
        plan: Arc<Plan>,
        now: Instant,
    ) -> Result<std::vec::Drain<'_, Command>, String> {
        self.plan.may_become(&plan)?;
        self.admission.reshape(&plan)?;
        self.now = self.now.max(now);
        (self.may_lend, self.prior_per_ms) = lending(&plan);
        self.plan = plan;
        let started = *self.started.get_or_insert(self.now);
        let plan = Arc::clone(&self.plan);
        for (i, state) in self.ctas.iter_mut().enumerate() {
            state
                .load
                .size(self.now, started, self.prior_per_ms[i], &plan.ctas[i]);
            self.spare_grew
                .push(CtaId(u16::try_from(i).unwrap_or(u16::MAX)));
        }
        self.next_sizing = self.now.plus_ms(crate::reserve::REFRESH_MS);
        self.fire_timers();
        self.rebalance();
        self.check_invariants();
        Ok(self.out.drain(..))
    }

    /// Feeds one event at `now` (time never goes backwards: an earlier `now` counts as the latest
    /// one seen) and returns the commands it caused, timers due by `now` included.
    pub fn handle(&mut self, event: Event, now: Instant) -> std::vec::Drain<'_, Command> {
        self.now = self.now.max(now);
        let (named_call, named_agent) = Self::named(&event);
        self.assert_touched(named_call, named_agent, false);
        self.size_reserves();
        match event {
            Event::Offered(offer) => self.on_offered(offer),
            Event::CallerHungUp { call } => self.on_caller_hung_up(call),
            Event::Dtmf { call, digit } => self.on_dtmf(call, digit),
            Event::AgentLogin {
                agent,
                cta,
                site,
                dequeue_preference,
            } => self.on_login(agent, cta, site, dequeue_preference),
            Event::AgentLogout { agent } => self.on_logout(agent),
            Event::AgentReady { agent } => self.on_ready(agent),
            Event::AgentPause { agent } => self.on_pause(agent),
            Event::AgentAnswered { agent, call } => self.on_answered(agent, call),
            Event::AgentRingFailed {
                agent,
                call,
                reason,
            } => self.on_ring_failed(agent, call, reason),
            Event::AgentHungUp { agent, call } => self.on_agent_hung_up(agent, call),
            Event::Stopped { call } => self.on_stopped(call),
            Event::Withdrawn { call } => self.on_withdrawn(call),
            Event::CallbackRestored {
                call,
                zone,
                caller,
                at,
                taken_by,
            } => self.on_callback_restored(call, zone, caller, at, taken_by),
            Event::SetCrisis { zone, on } => self.on_crisis(zone, on),
            Event::SetDisabled { cta, disabled } => self.on_disabled(cta, disabled),
            Event::Request { id, agent, ask } => self.on_request(id, agent, ask),
            Event::PartnerAnswered { call } => self.on_partner_answered(call),
            Event::PartnerFailed { call, status } => self.on_partner_failed(call, status),
            Event::PartnerHungUp { call } => self.on_partner_hung_up(call),
            Event::Located { id, caller, place } => self.on_located(id, &caller, place),
            Event::Tick => {}
            Event::Suspected { call } => self.on_suspected(call),
            Event::Heard { call } => self.on_heard(call),
        }
        self.fire_timers();
        self.rebalance();
        self.assert_touched(named_call, named_agent, true);
        self.out.drain(..)
    }

    /// The earliest instant at which a timer is due; a `Tick` then fires it.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// The latest `now` seen.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The plan this core runs.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// Calls admitted and not yet ended.
    pub fn live_calls(&self) -> usize {
        self.calls.len()
    }

    /// Whether a zone is in crisis mode.
    pub fn in_crisis(&self, zone: ZoneId) -> bool {
        crisis_of(&self.crisis, zone)
    }

    /// A live call.
    pub fn call(&self, call: CallId) -> Option<CallInfo> {
        self.calls.get(&call).map(|c| info(call, c))
    }

    /// The calls waiting in a CTA's queue, in the order the ACD would offer them.
    pub fn waiting(&self, cta: CtaId) -> impl Iterator<Item = CallInfo> + '_ {
        self.ctas
            .get(usize::from(cta.0))
            .into_iter()
            .flat_map(|state| state.waiting.values())
            .filter_map(|id| self.call(*id))
    }

    /// A call-taker's status (`Offline` when unknown).
    pub fn agent(&self, agent: AgentId) -> AgentStatus {
        self.agents
            .get(&agent)
            .map_or(AgentStatus::Offline, |a| a.status)
    }

    /// The CTA, site and dequeue preference of a logged-in call-taker.
    pub fn agent_seat(&self, agent: AgentId) -> Option<(CtaId, u16, u8)> {
        self.agents
            .get(&agent)
            .map(|a| (a.cta, a.site, a.preference))
    }

    /// The state of a CTA's queue and room.
    pub fn cta_status(&self, cta: CtaId) -> CtaStatus {
        let Some(state) = self.ctas.get(usize::from(cta.0)) else {
            return CtaStatus {
                state: QueueState::Disabled,
                waiting: 0,
                oldest_queued_at: None,
                logged_in: 0,
                available: 0,
                paused: 0,
                busy: 0,
                lent: 0,
                reserve: 0,
                lendable: 0,
            };
        };
        let available = len_u32(state.idle.len());
        CtaStatus {
            lent: state.lent,
            reserve: state.load.reserve(),
            lendable: self.lendable(cta),
            state: self.queue_state(cta),
            waiting: len_u32(state.waiting.len()),
            oldest_queued_at: state
                .waiting
                .values()
                .filter_map(|id| self.calls.get(id))
                .map(|c| c.queued_at)
                .min(),
            logged_in: state.logged_in,
            available,
            paused: state.paused,
            busy: state.logged_in.saturating_sub(available + state.paused),
        }
    }

    /// Idle call-takers a CTA can lend now, beyond its waiting calls and its reserve.
    pub fn lendable(&self, cta: CtaId) -> u32 {
        u32::try_from(self.spare(cta).max(0)).unwrap_or(u32::MAX)
    }

    /// Work conservation: the CTAs that could lend call-takers now while a call that one of
    /// their tiers covers has waited past its queue's `no_answer` threshold in another queue,
    /// with how many. Empty when mutual aid leaves nobody idle who could help.
    pub fn idle_lenders_while_late(&self) -> Vec<(CtaId, u32)> {
        let lenders: Vec<(CtaId, u32)> = (0..self.ctas.len())
            .map(|c| CtaId(u16::try_from(c).unwrap_or(u16::MAX)))
            .map(|c| (c, self.lendable(c)))
            .filter(|(_, spare)| *spare > 0)
            .collect();
        if lenders.is_empty() {
            return lenders;
        }
        let late: Vec<usize> = self
            .ctas
            .iter()
            .enumerate()
            .filter(|(c, state)| {
                let threshold = self.plan.ctas[*c].no_answer_ms;
                state
                    .waiting
                    .values()
                    .filter_map(|id| self.calls.get(id))
                    .any(|call| self.now.since(call.queued_at) >= threshold)
            })
            .map(|(c, _)| c)
            .collect();
        lenders
            .into_iter()
            .filter(|(lender, _)| {
                let l = usize::from(lender.0);
                late.iter().any(|&c| c != l && self.may_lend[c][l])
            })
            .collect()
    }

    /// A CTA's call-back list.
    pub fn callbacks(&self, cta: CtaId) -> impl Iterator<Item = (CallId, &CallbackEntry)> + '_ {
        self.ctas
            .get(usize::from(cta.0))
            .into_iter()
            .flat_map(|s| s.callbacks.iter().map(|(id, e)| (*id, e)))
    }

    /// Call-backs beyond the in-memory bound (still emitted as commands for the store).
    pub fn callbacks_unindexed(&self) -> u64 {
        self.callbacks_unindexed
    }

    /// Calls handed to a partner service whose caller is still on the line with it.
    pub fn handed_over(&self) -> impl Iterator<Item = CallId> + '_ {
        self.handed_over.iter().copied()
    }

    /// Every live call, in no particular order.
    pub fn live_call_ids(&self) -> impl Iterator<Item = CallId> + '_ {
        self.calls.keys().copied()
    }

    /// Admission bookkeeping, read-only.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    // ----- events -----

    fn on_offered(&mut self, offer: Offer) {
        let id = offer.call;
        if self.calls.contains_key(&id) || self.handed_over.contains(&id) {
            // The shell offered the same call twice (a retransmission it should have absorbed):
            // the call is already handled, so there is nothing new to do.
            return;
        }
        let Some(zone_plan) = self.plan.zones.get(usize::from(offer.zone.0)) else {
            self.reject(id, offer.zone, EndReason::UnknownZone);
            return;
        };
        let home = zone_plan.cta;
        self.note_arrival(home);
        if let Some(why) = offer.refused {
            // A caller the shell could not carry is refused, but never lost: its CTA calls back.
            self.reject(id, offer.zone, EndReason::NotCarried(why));
            self.call_back(id, home, offer.zone, offer.caller);
            return;
        }
        let admitted = match offer.suspected {
            true => self.admission.admit_suspected(),
            false => self.admission.admit(offer.zone),
        };
        if admitted.is_err() {
            self.reject(id, offer.zone, EndReason::NoCapacity);
            self.call_back(id, home, offer.zone, offer.caller);
            return;
        }
        let priority = match offer.suspected {
            true => PRIORITY_SUSPECTED,
            false => priority_of(offer.resource_priority),
        };
        // Answer is placed before whatever the rules emit, once we know they do not refuse.
        let answer_at = self.out.len();
        self.trail(id, Step::Admitted);
        self.sequence += 1;
        let call = Call {
            zone: offer.zone,
            home,
            cta: home,
            service: offer.service,
            priority,
            caller: offer.caller,
            source: offer.source,
            place: offer.place,
            summary: None,
            transfer: None,
            conversations: 0,
            offered_at: self.now,
            queued_at: self.now,
            entered_at: self.now,
            state: CallState::Queued,
            key: (Reverse(priority), self.now, self.sequence),
            overflowed_from: None,
            mutual_aid: false,
            wants_aid: false,
            engaged_at: self.now,
            pinned: false,
            crisis_related: false,
            memory: Memory::default(),
            no_answer_at: self.now,
            generation: 0,
            suspected: offer.suspected,
            admitted_suspected: offer.suspected,
        };
        self.calls.insert(id, call);
        let target = match self.evaluate(id, None) {
            Decision::Busy(reason) => {
                // Refused before any answer: nothing was admitted, nothing can be played.
                let mut position = 0;
                self.out.retain(|command| {
                    position += 1;
                    position <= answer_at
                        || !matches!(
                            command,
                            Command::Play { .. }
                                | Command::Trail {
                                    step: Step::Admitted,
                                    ..
                                }
                        )
                });
                self.end(id, Outcome::Rejected, EndReason::Busy(reason));
                return;
            }
            Decision::Queue(cta) => cta,
            // Fail-safe: a call with nowhere better to go waits in its home queue; never dropped.
            Decision::Stay | Decision::NoRoute => home,
        };
        self.out.insert(answer_at, Command::Answer { call: id });
        if target != home {
            if let Some(call) = self.calls.get_mut(&id) {
                call.overflowed_from = Some(home);
                call.wants_aid = false;
            }
            self.trail(
                id,
                Step::Overflowed {
                    from: home,
                    to: target,
                },
            );
        }
        self.enqueue(id, target);
        self.mark_overdue(id);
    }

    /// A waiting call suspected after its arrival moves behind every other caller, keeping
    /// its seniority among the suspects; one already with a call-taker is left alone. It keeps
    /// the capacity it was admitted with.
    fn on_suspected(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.suspected || call.state != CallState::Queued {
            return;
        }
        let cta = call.cta;
        self.leave_queue(id);
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.suspected = true;
        call.priority = PRIORITY_SUSPECTED;
        call.key.0 = Reverse(PRIORITY_SUSPECTED);
        call.wants_aid = false;
        call.mutual_aid = false;
        let (key, generation, entered_at) = (call.key, call.generation, call.entered_at);
        self.ctas[usize::from(cta.0)].waiting.insert(key, id);
        let cta_plan = self.plan.cta(cta);
        if cta_plan.mode == DequeueMode::Mixed {
            let due = entered_at.plus_ms(cta_plan.acd_after_ms).max(now);
            self.set_timer(due, Timer::Acd(id, generation));
        }
        self.dispatch(cta);
    }

    /// A waiting suspect who was heard takes back its place by arrival among the other
    /// callers, with the priority it came with. It keeps the capacity it was admitted with.
    fn on_heard(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if !call.suspected || call.state != CallState::Queued {
            return;
        }
        let cta = call.cta;
        self.leave_queue(id);
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.suspected = false;
        call.priority = PRIORITY_NORMAL;
        call.key.0 = Reverse(PRIORITY_NORMAL);
        let (key, generation, entered_at) = (call.key, call.generation, call.entered_at);
        self.ctas[usize::from(cta.0)].waiting.insert(key, id);
        self.mark_overdue(id);
        let cta_plan = self.plan.cta(cta);
        if cta_plan.mode == DequeueMode::Mixed {
            let due = entered_at.plus_ms(cta_plan.acd_after_ms).max(now);
            self.set_timer(due, Timer::Acd(id, generation));
        }
        self.trail(id, Step::Heard);
        self.dispatch(cta);
    }

    fn on_caller_hung_up(&mut self, id: CallId) {
        self.cut(id, false);
    }

    fn on_stopped(&mut self, id: CallId) {
        self.cut(id, true);
    }

    /// The call leaves: whoever it held is freed, and no outcome is given (nor any call-back
    /// entry made) here, where nobody carried out its legs.
    fn on_withdrawn(&mut self, id: CallId) {
        if self.handed_over.remove(&id) {
            self.emit(Command::DropPartner { call: id });
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        match call.state {
            CallState::Queued => self.leave_queue(id),
            CallState::Ringing(agent) => {
                self.emit(Command::CancelRing { call: id, agent });
                self.release_ringing_agent(agent);
            }
            CallState::Talking(agent) => self.after_call(agent),
        }
        let Some(call) = self.take_out(id) else {
            return;
        };
        self.drop_transfer(id, &call);
        self.emit(Command::Withdrawn {
            call: id,
            cta: call.cta,
        });
    }

    /// Ends a call from outside: its caller hung up, or the platform stops (then the caller's
    /// leg is hung up too). A waiting caller goes to the call-back list either way.
    fn cut(&mut self, id: CallId, stopping: bool) {
        if self.handed_over.remove(&id) {
            if stopping {
                self.emit(Command::HangUp { call: id });
            }
            self.emit(Command::DropPartner { call: id });
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let why = |left| {
            if stopping {
                EndReason::PlatformStopped
            } else {
                left
            }
        };
        match call.state {
            CallState::Queued => {
                self.leave_queue(id);
                self.end(id, Outcome::Abandoned, why(EndReason::CallerLeftQueue));
            }
            CallState::Ringing(agent) => {
                self.emit(Command::CancelRing { call: id, agent });
                self.release_ringing_agent(agent);
                self.end(id, Outcome::Abandoned, why(EndReason::CallerLeftRinging));
            }
            CallState::Talking(agent) => {
                if stopping {
                    self.emit(Command::HangUp { call: id });
                }
                self.end(id, Outcome::Completed, why(EndReason::CallerHungUp));
                self.after_call(agent);
            }
        }
    }

    fn on_dtmf(&mut self, id: CallId, digit: u8) {
        // A key pressed is a person: a suspect leaves the suspects.
        self.on_heard(id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let in_crisis = self
            .crisis
            .get(usize::from(call.zone.0))
            .copied()
            .unwrap_or(false);
        if digit != b'1' || !in_crisis || call.crisis_related || call.state != CallState::Queued {
            return;
        }
        call.crisis_related = true;
        let priority = call.priority.min(PRIORITY_CRISIS_RELATED);
        let cta = call.cta;
        let old = call.key;
        call.priority = priority;
        call.key = (Reverse(priority), old.1, old.2);
        let new = call.key;
        let queue = &mut self.ctas[usize::from(cta.0)].waiting;
        queue.remove(&old);
        queue.insert(new, id);
        if self.overdue.remove(&(true, old)).is_some() {
            self.overdue.insert((true, new), id);
        }
        self.trail(id, Step::CrisisRelated);
    }

    fn on_login(&mut self, id: AgentId, cta: CtaId, site: u16, preference: u8) {
        if usize::from(cta.0) >= self.ctas.len() {
            return;
        }
        let preference = preference.clamp(1, 5);
        if let Some(agent) = self.agents.get_mut(&id) {
            if agent.status == AgentStatus::Available {
                // The idle set is ordered by preference: re-key the entry.
                let idle = &mut self.ctas[usize::from(agent.cta.0)].idle;
                idle.remove(&(Reverse(agent.preference), agent.idle_since, id));
                idle.insert((Reverse(preference), agent.idle_since, id));
            }
            agent.preference = preference;
            agent.after_call = AfterCall::WrapUp;
            if agent.cta == cta && agent.status == AgentStatus::Paused {
                self.make_available(id);
            }
            return;
        }
        self.seat(id, cta, site, preference);
        self.make_available(id);
    }

    /// A call-taker who was not logged in takes a seat, neither available nor paused yet.
    fn seat(&mut self, id: AgentId, cta: CtaId, site: u16, preference: u8) {
        self.agents.insert(
            id,
            Agent {
                cta,
                site,
                preference,
                status: AgentStatus::Offline,
                idle_since: self.now,
                after_call: AfterCall::WrapUp,
                generation: 0,
                lent: false,
            },
        );
        self.ctas[usize::from(cta.0)].logged_in += 1;
    }

    /// Logs a call-taker in straight into pause (no call offered on the way).
    fn log_in_paused(&mut self, id: AgentId, cta: CtaId, site: u16, preference: u8) {
        if self.agents.contains_key(&id) {
            self.on_login(id, cta, site, preference);
            self.on_pause(id);
            return;
        }
        if usize::from(cta.0) >= self.ctas.len() {
            return;
        }
        self.seat(id, cta, site, preference.clamp(1, 5));
        self.set_paused(id);
    }

    fn on_logout(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        match agent.status {
            AgentStatus::Talking(_) => agent.after_call = AfterCall::Logout,
            AgentStatus::Ringing(call) => {
                self.emit(Command::CancelRing { call, agent: id });
                self.requeue(call, RingFailure::Unreachable);
                self.remove_agent(id);
            }
            _ => self.remove_agent(id),
        }
    }

    fn on_ready(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        match agent.status {
            AgentStatus::Paused | AgentStatus::WrapUp => self.make_available(id),
            AgentStatus::Ringing(_) | AgentStatus::Talking(_) => {
                agent.after_call = AfterCall::WrapUp
            }
            AgentStatus::Available | AgentStatus::Offline => {}
        }
    }

    fn on_pause(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        match agent.status {
            AgentStatus::Available | AgentStatus::WrapUp => self.set_paused(id),
            AgentStatus::Ringing(_) | AgentStatus::Talking(_) => {
                agent.after_call = AfterCall::Pause
            }
            AgentStatus::Paused | AgentStatus::Offline => {}
        }
    }

    /// Carries out a pick that `check_pick` allowed.
    fn pick(&mut self, agent_id: AgentId, id: CallId) {
        let agent_cta = self.agents[&agent_id].cta;
        let call_cta = self.calls[&id].cta;
        self.leave_queue(id);
        if agent_cta != call_cta {
            // Mutual aid by picking: the call now belongs to the picker's CTA.
            let call = self.calls.get_mut(&id).expect("checked by check_pick");
            call.overflowed_from = Some(call_cta);
            call.cta = agent_cta;
            self.trail(
                id,
                Step::Overflowed {
                    from: call_cta,
                    to: agent_cta,
                },
            );
        }
        self.trail(id, Step::Picked(agent_id));
        self.take_agent(agent_id);
        self.ring(id, agent_id);
    }

    fn check_pick(&self, agent_id: AgentId, id: CallId) -> Result<(), PickRefusal> {
        let call = self.calls.get(&id).ok_or(PickRefusal::UnknownCall)?;
        let agent = self.agents.get(&agent_id).ok_or(PickRefusal::NotReady)?;
        let allowed = agent.cta == call.cta
            || (call.mutual_aid
                && self.may_lend[usize::from(call.home.0)][usize::from(agent.cta.0)])
            || (call.mutual_aid && agent.cta == call.home);
        if !allowed {
            return Err(PickRefusal::Forbidden);
        }
        if call.state != CallState::Queued {
            return Err(PickRefusal::AlreadyTaken);
        }
        match agent.status {
            AgentStatus::Available | AgentStatus::Paused | AgentStatus::WrapUp => Ok(()),
            AgentStatus::Ringing(_) | AgentStatus::Talking(_) | AgentStatus::Offline => {
                Err(PickRefusal::NotReady)
            }
        }
    }

    fn on_answered(&mut self, agent_id: AgentId, id: CallId) {
        let ringing = self
            .calls
            .get(&id)
            .is_some_and(|c| c.state == CallState::Ringing(agent_id));
        if !ringing {
            if self.is_talking(agent_id, id) {
                // A repeated answer (a retransmitted 200 OK): the conversation goes on.
                return;
            }
            // The phone answered a call that is no longer offered to it: hang that leg up.
            self.emit(Command::CancelRing {
                call: id,
                agent: agent_id,
            });
            return;
        }
        let call = self.calls.get_mut(&id).expect("checked above");
        call.state = CallState::Talking(agent_id);
        call.generation += 1;
        call.conversations += 1;
        let conversation = call.conversations;
        self.set_agent_status(agent_id, AgentStatus::Talking(id));
        self.emit(Command::Bridge {
            call: id,
            agent: agent_id,
            conversation,
        });
        self.trail(id, Step::Answered(agent_id));
    }

    fn on_ring_failed(&mut self, agent_id: AgentId, id: CallId, reason: RingFailure) {
        let ringing = self
            .calls
            .get(&id)
            .is_some_and(|c| c.state == CallState::Ringing(agent_id));
        if !ringing {
            return;
        }
        self.requeue(id, reason);
        self.mark_unavailable(agent_id);
    }

    fn on_agent_hung_up(&mut self, agent_id: AgentId, id: CallId) {
        if !self.is_talking(agent_id, id) {
            return;
        }
        self.emit(Command::HangUp { call: id });
        self.end(id, Outcome::Completed, EndReason::AgentHungUp);
        self.after_call(agent_id);
    }

    /// Carries out a hand-back that `check_hand_back` allowed; returns the home CTA.
    fn hand_back(&mut self, agent_id: AgentId, id: CallId, summary: Box<str>) -> CtaId {
        let from = self.agents[&agent_id].cta;
        let call = self.calls.get_mut(&id).expect("checked by check_hand_back");
        let home = call.home;
        call.summary = Some(summary.clone());
        // At the head of its home queue: its seniority, and one level above ordinary calls.
        call.priority = call.priority.max(PRIORITY_NORMAL.saturating_add(1));
        call.key = (Reverse(call.priority), call.key.1, call.key.2);
        call.pinned = true;
        call.mutual_aid = false;
        call.wants_aid = false;
        call.overflowed_from = Some(from);
        self.emit(Command::Unbridge {
            call: id,
            agent: agent_id,
        });
        self.trail(
            id,
            Step::HandedBack {
                from,
                by: agent_id,
                summary,
            },
        );
        self.after_call(agent_id);
        self.enqueue(id, home);
        home
    }

    fn check_hand_back(&self, agent_id: AgentId, id: CallId) -> Result<(), HandBackRefusal> {
        if !self.is_talking(agent_id, id) {
            return Err(HandBackRefusal::NotTheirs);
        }
        let home = self.calls[&id].home;
        if self.agents[&agent_id].cta == home {
            return Err(HandBackRefusal::OwnCall);
        }
        match self.queue_state(home) {
            QueueState::Active | QueueState::Standby | QueueState::Full => Ok(()),
            QueueState::Inactive | QueueState::Disabled => Err(HandBackRefusal::HomeUnreachable),
        }
    }

    fn on_callback_restored(
        &mut self,
        id: CallId,
        zone: ZoneId,
        caller: Option<Box<str>>,
        at: Instant,
        taken_by: Option<AgentId>,
    ) {
        let Some(zone_plan) = self.plan.zones.get(usize::from(zone.0)) else {
            return;
        };
        self.index_callback(
            zone_plan.cta,
            id,
            CallbackEntry {
                zone,
                caller,
                at,
                state: taken_by.map_or(CallbackState::Pending, CallbackState::Taken),
            },
        );
    }

    fn on_crisis(&mut self, zone: ZoneId, on: bool) {
        let Some(flag) = self.crisis.get_mut(usize::from(zone.0)) else {
            return;
        };
        if *flag != on {
            *flag = on;
            self.emit(Command::CrisisChanged { zone, on });
            // The zone's overdue calls change rank.
            let moved: Vec<(OverdueKey, CallId)> = self
                .overdue
                .iter()
                .filter(|(_, id)| self.calls.get(id).is_some_and(|c| c.zone == zone))
                .map(|(k, id)| (*k, *id))
                .collect();
            for ((_, key), id) in moved {
                self.overdue.remove(&(!on, key));
                self.overdue.insert((on, key), id);
            }
        }
    }

    fn on_disabled(&mut self, cta: CtaId, disabled: bool) {
        let Some(state) = self.ctas.get_mut(usize::from(cta.0)) else {
            return;
        };
        if state.disabled == disabled {
            return;
        }
        state.disabled = disabled;
        if !disabled {
            self.spare_grew.push(cta);
        }
        if disabled {
            // Calls waiting in a queue taken out of service are routed again at once.
            let waiting: Vec<CallId> = state.waiting.values().copied().collect();
            for id in waiting {
                self.reroute(id, FailReason::Unreachable);
            }
        } else {
            self.dispatch(cta);
        }
    }

    fn apply_callback(
        &mut self,
        agent_id: AgentId,
        id: CallId,
        done: bool,
    ) -> Result<(), CallbackRefusal> {
        let cta = self
            .agents
            .get(&agent_id)
            .ok_or(CallbackRefusal::NotLoggedIn)?
            .cta;
        let list = &mut self.ctas[usize::from(cta.0)].callbacks;
        let entry = list.get_mut(&id).ok_or(CallbackRefusal::Unknown)?;
        let state = if done {
            list.remove(&id);
            CallbackState::Done(agent_id)
        } else {
            entry.state = CallbackState::Taken(agent_id);
            entry.state
        };
        self.emit(Command::Callback {
            cta,
            call: id,
            state,
        });
        Ok(())
    }

    // ----- timers -----

    fn set_timer(&mut self, at: Instant, timer: Timer) {
        self.timers.push(Reverse((at, timer)));
    }

    fn fire_timers(&mut self) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > self.now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::NoAnswer(id, generation) => {
                    // A suspect waits at home, behind everyone, however long.
                    if self.current(id, generation, CallState::Queued) && !self.calls[&id].suspected
                    {
                        let cta = self.calls[&id].cta;
                        let reason =
                            route_failure(self.queue_state(cta)).unwrap_or(FailReason::NoAnswer);
                        if let Some(call) = self.calls.get_mut(&id) {
                            call.mutual_aid = true;
                        }
                        self.reroute(id, reason);
                    }
                }
                Timer::Acd(id, generation) => {
                    if self.current(id, generation, CallState::Queued) {
                        let cta = self.calls[&id].cta;
                        self.dispatch(cta);
                    }
                }
                Timer::Ring(id, generation) => {
                    if let Some(call) = self.calls.get(&id)
                        && call.generation == generation
                        && let CallState::Ringing(agent) = call.state
                    {
                        self.emit(Command::CancelRing { call: id, agent });
                        self.requeue(id, RingFailure::NoAnswer);
                        self.mark_unavailable(agent);
                    }
                }
                Timer::WrapUp(agent, generation) => {
                    let due = self.agents.get(&agent).is_some_and(|a| {
                        a.generation == generation && a.status == AgentStatus::WrapUp
                    });
                    if due {
                        self.make_available(agent);
                    }
                }
            }
        }
    }

    fn current(&self, id: CallId, generation: u32, state: CallState) -> bool {
        self.calls
            .get(&id)
            .is_some_and(|c| c.generation == generation && c.state == state)
    }

    // ----- queues -----

    fn evaluate(&mut self, id: CallId, failed: Option<FailReason>) -> Decision {
        let plan = Arc::clone(&self.plan);
        let Some(call) = self.calls.get_mut(&id) else {
            return Decision::NoRoute;
        };
        let mut memory = std::mem::take(&mut call.memory);
        let facts = CallFacts {
            zone: call.zone,
            home: call.home,
            service: call.service,
            caller: call.caller.as_deref(),
            source: call.source.as_deref(),
            crisis: self
                .crisis
                .get(usize::from(call.zone.0))
                .copied()
                .unwrap_or(false),
            current: failed.map(|_| call.cta),
        };
        let view = View {
            ctas: &self.ctas,
            plan: &plan,
        };
        // Notes become commands as they come: no buffer to allocate for every evaluation.
        let mut wants_aid = false;
        let out = &mut self.out;
        let decision = policy::evaluate(
            &plan,
            &facts,
            &view,
            self.now,
            failed,
            &mut memory,
            &mut |note| match note {
                Note::NoLender => wants_aid = true,
                Note::Matched(rule) => out.push(Command::Trail {
                    call: id,
                    step: Step::RuleMatched(rule),
                }),
                Note::RouteFailed(cta, reason) => out.push(Command::Trail {
                    call: id,
                    step: Step::RouteFailed(cta, reason),
                }),
                Note::Announce(announcement) => out.push(Command::Play {
                    call: id,
                    announcement,
                }),
            },
        );
        if let Some(call) = self.calls.get_mut(&id) {
            call.memory = memory;
            // Suspects are never lent: a flood must not reach other CTAs' call-takers.
            call.wants_aid = wants_aid && !call.suspected;
        }
        decision
    }

    /// Runs the rules again for a waiting call and moves it if they say so; whether it moved.
    fn try_move(&mut self, id: CallId, reason: Option<FailReason>) -> bool {
        let from = self.calls[&id].cta;
        if self.calls[&id].pinned {
            if reason != Some(FailReason::Unreachable) {
                return false;
            }
            // Its home lost every call-taker: it must be answered elsewhere after all.
            if let Some(call) = self.calls.get_mut(&id) {
                call.pinned = false;
            }
        }
        match self.evaluate(id, reason) {
            Decision::Queue(to) if to != from => {
                self.leave_queue(id);
                if let Some(call) = self.calls.get_mut(&id) {
                    call.memory.tried.push(from);
                    call.overflowed_from = Some(from);
                    // Moved to a lender, it no longer waits for one; moved back home (a lent
                    // ring that failed), it still does if the rules found no lender.
                    if to != call.home {
                        call.wants_aid = false;
                    }
                }
                self.trail(id, Step::Overflowed { from, to });
                self.enqueue(id, to);
                self.mark_overdue(id);
                true
            }
            // Admitted calls are never refused afterwards: a `busy` rule only applies to new calls.
            _ => {
                self.mark_overdue(id);
                false
            }
        }
    }

    /// Files a queued call that wants mutual aid among the overdue ones, or takes it out.
    fn mark_overdue(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let key = (self.in_crisis(call.zone), call.key);
        if call.state == CallState::Queued && call.wants_aid {
            self.overdue.insert(key, id);
        } else {
            self.overdue.remove(&key);
        }
    }

    /// A lender got a call-taker to spare: it takes the longest-waiting overdue calls its
    /// tiers allow, while it has spare.
    fn lend_from(&mut self, lender: CtaId) {
        if self.overdue.is_empty() || self.spare(lender) <= 0 {
            return;
        }
        let l = usize::from(lender.0);
        let candidates: Vec<CallId> = self
            .overdue
            .values()
            .filter(|id| {
                self.calls
                    .get(id)
                    .is_some_and(|c| c.cta != lender && self.may_lend[usize::from(c.home.0)][l])
            })
            .take(LEND_SCAN)
            .copied()
            .collect();
        for id in candidates {
            if self.spare(lender) <= 0 {
                break;
            }
            let Some(call) = self.calls.get(&id) else {
                continue;
            };
            if call.state != CallState::Queued || !call.wants_aid {
                continue;
            }
            let reason = call.mutual_aid.then_some(FailReason::NoAnswer);
            self.try_move(id, reason);
        }
    }

    /// After every event, a lender with spare takes the overdue calls it may: spare also
    /// appears when a lender's queue empties or its reserve shrinks, not only when a call-taker
    /// frees up, and no call may wait past its threshold while one that could take it is idle.
    fn rebalance(&mut self) {
        if self.overdue.is_empty() {
            self.spare_grew.clear();
            return;
        }
        let mut grew = std::mem::take(&mut self.spare_grew);
        grew.sort_unstable();
        grew.dedup();
        for &lender in &grew {
            self.lend_from(lender);
            if self.overdue.is_empty() {
                break;
            }
        }
        // Lending may itself have grown some spare (a call moved out of a queue): the next
        // event sees it, and the retry timers bound how long that can wait.
    }

    fn spare(&self, cta: CtaId) -> i64 {
        View {
            ctas: &self.ctas,
            plan: &self.plan,
        }
        .spare(cta)
    }

    /// One call offered to a CTA's zones; its reserve is sized again with the others, within
    /// `REFRESH_MS` (sizing at every arrival cost a fifth of the core's throughput).
    fn note_arrival(&mut self, home: CtaId) {
        let now = self.now;
        self.ctas[usize::from(home.0)].load.arrival(now);
    }

    /// Sizes every reserve again every `REFRESH_MS`, as arrivals leave the load window.
    fn size_reserves(&mut self) {
        let now = self.now;
        let started = *self.started.get_or_insert(now);
        if now < self.next_sizing {
            return;
        }
        self.next_sizing = now.plus_ms(crate::reserve::REFRESH_MS);
        let plan = Arc::clone(&self.plan);
        for (i, state) in self.ctas.iter_mut().enumerate() {
            if state.load.stale(now) {
                let before = state.load.reserve();
                state
                    .load
                    .size(now, started, self.prior_per_ms[i], &plan.ctas[i]);
                if state.load.reserve() < before {
                    self.spare_grew
                        .push(CtaId(u16::try_from(i).unwrap_or(u16::MAX)));
                }
            }
        }
    }

    /// Runs the rules again for a waiting call; moves it or leaves it and checks later.
    fn reroute(&mut self, id: CallId, reason: FailReason) {
        let from = self.calls[&id].cta;
        if !self.try_move(id, Some(reason)) {
            let retry = self.plan.cta(from).retry_ms;
            let at = self.now.plus_ms(retry);
            if let Some(call) = self.calls.get_mut(&id) {
                call.no_answer_at = at;
                let generation = call.generation;
                self.set_timer(at, Timer::NoAnswer(id, generation));
            }
        }
    }

    fn enqueue(&mut self, id: CallId, cta: CtaId) {
        let plan = Arc::clone(&self.plan);
        let cta_plan = plan.cta(cta);
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.cta = cta;
        call.state = CallState::Queued;
        call.entered_at = now;
        call.generation += 1;
        call.no_answer_at = now.plus_ms(cta_plan.no_answer_ms);
        let (key, generation, no_answer_at) = (call.key, call.generation, call.no_answer_at);
        self.ctas[usize::from(cta.0)].waiting.insert(key, id);
        self.trail(id, Step::Queued(cta));
        self.dispatch(cta);
        let still_waiting = self
            .calls
            .get(&id)
            .is_some_and(|c| c.state == CallState::Queued);
        if !still_waiting {
            // Rung at once, as most calls are: its queue timers would only be popped stale.
            return;
        }
        // Timers fire in the order of their instant and kind, whenever they were set.
        self.set_timer(no_answer_at, Timer::NoAnswer(id, generation));
        if cta_plan.mode == DequeueMode::Mixed {
            self.set_timer(
                now.plus_ms(cta_plan.acd_after_ms),
                Timer::Acd(id, generation),
            );
        }
        if let Some(announcement) = cta_plan.wait_announcement {
            self.emit(Command::Play {
                call: id,
                announcement,
            });
        }
    }

    /// Puts a call whose ring failed back in its queue, keeping its place.
    fn requeue(&mut self, id: CallId, reason: RingFailure) {
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.state = CallState::Queued;
        call.generation += 1;
        let (key, cta, generation) = (call.key, call.cta, call.generation);
        let at = call.no_answer_at.max(now);
        call.no_answer_at = at;
        self.ctas[usize::from(cta.0)].waiting.insert(key, id);
        self.set_timer(at, Timer::NoAnswer(id, generation));
        if self.plan.cta(cta).mode == DequeueMode::Mixed {
            self.set_timer(now, Timer::Acd(id, generation));
        }
        self.trail(id, Step::Requeued(reason));
        self.dispatch(cta);
    }

    fn leave_queue(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.state == CallState::Queued {
            self.ctas[usize::from(call.cta.0)].waiting.remove(&call.key);
            self.overdue
                .remove(&(crisis_of(&self.crisis, call.zone), call.key));
            call.generation += 1;
            self.spare_grew.push(call.cta);
        }
    }

    /// ACD: offers waiting calls to the best idle call-takers while both exist.
    fn dispatch(&mut self, cta: CtaId) {
        let cta_plan = self.plan.cta(cta);
        let (mode, acd_after_ms) = (cta_plan.mode, cta_plan.acd_after_ms);
        if mode == DequeueMode::Picking {
            return;
        }
        loop {
            let state = &self.ctas[usize::from(cta.0)];
            if state.disabled {
                return;
            }
            let (Some((_, &call)), Some(&(_, _, agent))) =
                (state.waiting.first_key_value(), state.idle.first())
            else {
                return;
            };
            if state.idle.len() < 2 && self.calls.get(&call).is_some_and(|c| c.suspected) {
                // Only suspects wait: one call-taker stays free for the next real caller.
                return;
            }
            if mode == DequeueMode::Mixed {
                // In mixed mode the ACD offers only calls nobody picked in time, oldest first.
                let due = state
                    .waiting
                    .values()
                    .filter_map(|id| self.calls.get(id).map(|c| (*id, c)))
                    .filter(|(_, c)| !c.suspected || state.idle.len() >= 2)
                    .map(|(id, c)| (id, c.entered_at))
                    .find(|(_, entered)| self.now.since(*entered) >= acd_after_ms);
                let Some((call, _)) = due else {
                    return;
                };
                self.leave_queue(call);
                self.take_agent(agent);
                self.ring(call, agent);
                continue;
            }
            self.leave_queue(call);
            self.take_agent(agent);
            self.ring(call, agent);
        }
    }

    fn ring(&mut self, id: CallId, agent_id: AgentId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.state = CallState::Ringing(agent_id);
        call.generation += 1;
        call.engaged_at = self.now;
        let generation = call.generation;
        let timeout = self.plan.cta(call.cta).ring_timeout_ms;
        let home = call.home;
        if let Some(agent) = self.agents.get_mut(&agent_id)
            && agent.cta != home
            && !agent.lent
        {
            agent.lent = true;
            self.ctas[usize::from(agent.cta.0)].lent += 1;
        }
        self.set_agent_status(agent_id, AgentStatus::Ringing(id));
        self.emit(Command::Ring {
            call: id,
            agent: agent_id,
        });
        self.trail(id, Step::Offered(agent_id));
        self.set_timer(self.now.plus_ms(timeout), Timer::Ring(id, generation));
    }

    // ----- call-takers -----

    fn make_available(&mut self, id: AgentId) {
        let now = self.now;
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        if agent.status == AgentStatus::Paused {
            self.ctas[usize::from(agent.cta.0)].paused -= 1;
        }
        agent.idle_since = now;
        agent.generation += 1;
        let cta = agent.cta;
        let key = (Reverse(agent.preference), now, id);
        self.ctas[usize::from(cta.0)].idle.insert(key);
        self.end_loan(id);
        self.set_agent_status(id, AgentStatus::Available);
        self.dispatch(cta);
        self.lend_from(cta);
    }

    /// A call-taker lent to another CTA's zones is back to their own (idle, paused or gone).
    fn end_loan(&mut self, id: AgentId) {
        if let Some(agent) = self.agents.get_mut(&id)
            && agent.lent
        {
            agent.lent = false;
            self.ctas[usize::from(agent.cta.0)].lent -= 1;
        }
    }

    /// Takes a call-taker out of the idle set (or out of pause or wrap-up) to ring them.
    fn take_agent(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        let state = &mut self.ctas[usize::from(agent.cta.0)];
        state.forget(agent, id);
        agent.generation += 1;
        agent.after_call = AfterCall::WrapUp;
    }

    fn set_paused(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        let state = &mut self.ctas[usize::from(agent.cta.0)];
        match agent.status {
            AgentStatus::Available => {
                state
                    .idle
                    .remove(&(Reverse(agent.preference), agent.idle_since, id));
            }
            AgentStatus::Paused => return,
            _ => {}
        }
        state.paused += 1;
        agent.generation += 1;
        self.end_loan(id);
        self.set_agent_status(id, AgentStatus::Paused);
    }

    /// A call-taker whose phone did not answer is paused until they say they are ready.
    fn mark_unavailable(&mut self, id: AgentId) {
        let logout = self
            .agents
            .get(&id)
            .is_some_and(|a| a.after_call == AfterCall::Logout);
        if logout {
            self.remove_agent(id);
        } else {
            self.set_paused(id);
        }
    }

    /// A call-taker whose ringing call left before they answered goes back to idle, in place.
    fn release_ringing_agent(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        match agent.after_call {
            AfterCall::Logout => self.remove_agent(id),
            AfterCall::Pause => self.set_paused(id),
            AfterCall::WrapUp => {
                let key = (Reverse(agent.preference), agent.idle_since, id);
                let cta = agent.cta;
                self.ctas[usize::from(cta.0)].idle.insert(key);
                self.end_loan(id);
                self.set_agent_status(id, AgentStatus::Available);
                self.dispatch(cta);
                self.lend_from(cta);
            }
        }
    }

    fn after_call(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        match agent.after_call {
            AfterCall::Logout => self.remove_agent(id),
            AfterCall::Pause => self.set_paused(id),
            AfterCall::WrapUp => {
                agent.generation += 1;
                let generation = agent.generation;
                let wrap_up = self.plan.cta(agent.cta).wrap_up_ms;
                self.set_agent_status(id, AgentStatus::WrapUp);
                if wrap_up == 0 {
                    self.make_available(id);
                } else {
                    self.set_timer(self.now.plus_ms(wrap_up), Timer::WrapUp(id, generation));
                }
            }
        }
    }

    fn remove_agent(&mut self, id: AgentId) {
        let Some(agent) = self.agents.remove(&id) else {
            return;
        };
        let state = &mut self.ctas[usize::from(agent.cta.0)];
        state.forget(&agent, id);
        state.logged_in -= 1;
        if agent.lent {
            state.lent -= 1;
        }
        let last_one_out = state.logged_in == 0;
        let waiting: Vec<CallId> = if last_one_out {
            state.waiting.values().copied().collect()
        } else {
            Vec::new()
        };
        self.emit(Command::AgentChanged {
            agent: id,
            status: AgentStatus::Offline,
        });
        if last_one_out {
            // The last call-taker left: the queue is unreachable, so its calls are routed again.
            for call in waiting {
                self.reroute(call, FailReason::Unreachable);
            }
        }
    }

    fn set_agent_status(&mut self, id: AgentId, status: AgentStatus) {
        if let Some(agent) = self.agents.get_mut(&id) {
            agent.status = status;
            self.out.push(Command::AgentChanged { agent: id, status });
        }
    }

    fn is_talking(&self, agent: AgentId, id: CallId) -> bool {
        self.calls
            .get(&id)
            .is_some_and(|c| c.state == CallState::Talking(agent))
    }

    // ----- ends -----

    fn reject(&mut self, id: CallId, zone: ZoneId, reason: EndReason) {
        self.emit(Command::Reject {
            call: id,
            reason: reason.clone(),
        });
        // Refused before it joined a queue: the CTA serving its zone, if the zone is known.
        let cta = self.plan.zones.get(usize::from(zone.0)).map(|z| z.cta);
        self.emit(Command::Ended {
            call: id,
            outcome: Outcome::Rejected,
            reason,
            cta,
        });
    }

    /// Takes a live call out of the core: out of the overdue index and the admitted count.
    fn take_out(&mut self, id: CallId) -> Option<Call> {
        let call = self.calls.remove(&id)?;
        self.overdue.remove(&(self.in_crisis(call.zone), call.key));
        match call.admitted_suspected {
            true => self.admission.release_suspected(),
            false => self.admission.release(call.zone),
        }
        Some(call)
    }

    /// A call gone while its partner's phone rang for a transfer: the partner is dropped and
    /// the asking call-taker told.
    fn drop_transfer(&mut self, id: CallId, call: &Call) {
        if let Some((request, _, _)) = call.transfer {
            self.emit(Command::DropPartner { call: id });
            self.emit(Command::Reply {
                request,
                result: Err(Denied::CallEnded),
            });
        }
    }

    fn end(&mut self, id: CallId, outcome: Outcome, reason: EndReason) {
        let Some(call) = self.take_out(id) else {
            return;
        };
        if let CallState::Talking(_) = call.state {
            let held = self.now.since(call.engaged_at);
            self.ctas[usize::from(call.home.0)].load.handled(held);
        }
        if outcome == Outcome::Rejected {
            self.emit(Command::Reject {
                call: id,
                reason: reason.clone(),
            });
        }
        self.emit(Command::Ended {
            call: id,
            outcome,
            reason,
            cta: Some(call.cta),
        });
        self.drop_transfer(id, &call);
        if outcome == Outcome::Abandoned {
            self.add_callback(id, call);
        }
    }

    /// A call that ended unanswered (abandoned, or refused before it joined a queue) goes on
    /// its home CTA's call-back list.
    fn call_back(&mut self, id: CallId, cta: CtaId, zone: ZoneId, caller: Option<Box<str>>) {
        self.index_callback(
            cta,
            id,
            CallbackEntry {
                zone,
                caller,
                at: self.now,
                state: CallbackState::Pending,
            },
        );
        self.emit(Command::Callback {
            cta,
            call: id,
            state: CallbackState::Pending,
        });
    }

    fn add_callback(&mut self, id: CallId, call: Call) {
        self.call_back(id, call.home, call.zone, call.caller);
    }

    /// Puts an entry on a CTA's call-back list, within the list's bound.
    fn index_callback(&mut self, cta: CtaId, id: CallId, entry: CallbackEntry) {
        let state = &mut self.ctas[usize::from(cta.0)];
        if state.callbacks.len() < self.plan.callback_max as usize {
            state.callbacks.insert(id, entry);
        } else {
            // The store keeps every entry; only the in-memory index is bounded.
            self.callbacks_unindexed += 1;
        }
    }

    // ----- helpers -----

    fn emit(&mut self, command: Command) {
        self.out.push(command);
    }

    fn trail(&mut self, call: CallId, step: Step) {
        self.out.push(Command::Trail { call, step });
    }

    fn queue_state(&self, cta: CtaId) -> QueueState {
        View {
            ctas: &self.ctas,
            plan: &self.plan,
        }
        .state(cta)
    }

    /// Checks every invariant against a recount of the state; panics naming the broken one.
    pub fn check_invariants(&self) {
        self.admission.check();
        assert_eq!(
            self.admission.total_in_use(),
            self.calls.len() as u64,
            "admitted calls and live calls differ"
        );
        let mut queued = 0usize;
        for (id, call) in &self.calls {
            match call.state {
                CallState::Queued => {
                    queued += 1;
                    assert_eq!(
                        self.ctas[usize::from(call.cta.0)].waiting.get(&call.key),
                        Some(id),
                        "queued call {id:?} missing from its queue"
                    );
                }
                CallState::Ringing(agent) => assert_eq!(
                    self.agents.get(&agent).map(|a| a.status),
                    Some(AgentStatus::Ringing(*id)),
                    "call {id:?} rings an agent who does not ring it"
                ),
                CallState::Talking(agent) => assert_eq!(
                    self.agents.get(&agent).map(|a| a.status),
                    Some(AgentStatus::Talking(*id)),
                    "call {id:?} talks to an agent who does not talk to it"
                ),
            }
        }
        let in_queues: usize = self.ctas.iter().map(|s| s.waiting.len()).sum();
        assert_eq!(queued, in_queues, "queues hold calls that are not queued");
        for (index, state) in self.ctas.iter().enumerate() {
            let agents: Vec<&Agent> = self
                .agents
                .values()
                .filter(|a| usize::from(a.cta.0) == index)
                .collect();
            assert_eq!(
                state.logged_in as usize,
                agents.len(),
                "logged-in count drifted"
            );
            let idle = agents
                .iter()
                .filter(|a| a.status == AgentStatus::Available)
                .count();
            assert_eq!(state.idle.len(), idle, "idle set drifted");
            let paused = agents
                .iter()
                .filter(|a| a.status == AgentStatus::Paused)
                .count();
            assert_eq!(state.paused as usize, paused, "paused count drifted");
            let lent = agents.iter().filter(|a| a.lent).count();
            assert_eq!(state.lent as usize, lent, "lent count drifted");
        }
        for ((crisis, key), id) in &self.overdue {
            let call = self.calls.get(id).expect("overdue call is live");
            assert!(
                call.state == CallState::Queued
                    && call.key == *key
                    && call.wants_aid
                    && *crisis == self.in_crisis(call.zone),
                "overdue call {id:?} is not a queued call wanting aid"
            );
        }
        for (id, agent) in &self.agents {
            if agent.lent {
                assert!(
                    matches!(
                        agent.status,
                        AgentStatus::Ringing(_) | AgentStatus::Talking(_) | AgentStatus::WrapUp
                    ),
                    "agent {id:?} counted as lent while {:?}",
                    agent.status
                );
            }
        }
        for (id, agent) in &self.agents {
            if let AgentStatus::Ringing(call) | AgentStatus::Talking(call) = agent.status {
                let state = self.calls.get(&call).map(|c| c.state);
                assert!(
                    state == Some(CallState::Ringing(*id))
                        || state == Some(CallState::Talking(*id)),
                    "agent {id:?} busy with call {call:?} that is not theirs"
                );
            }
        }
    }
}

/// Whether a zone is in crisis mode, from the core's flags (borrowed apart from the calls).
fn crisis_of(flags: &[bool], zone: ZoneId) -> bool {
    flags.get(usize::from(zone.0)).copied().unwrap_or(false)
}

fn route_failure(state: QueueState) -> Option<FailReason> {
    match state {
        QueueState::Active | QueueState::Standby => None,
        QueueState::Full => Some(FailReason::Full),
        QueueState::Inactive | QueueState::Disabled => Some(FailReason::Unreachable),
    }
}

/// The priority of a new call: RFC 4412 `esnet` levels 0 and 1 (the network's most urgent)
/// are answered before ordinary calls.
fn priority_of(resource_priority: Option<u8>) -> Priority {
    match resource_priority {
        Some(level) if level <= 1 => PRIORITY_NORMAL + 1,
        _ => PRIORITY_NORMAL,
    }
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn info(id: CallId, c: &Call) -> CallInfo {
    CallInfo {
        call: id,
        zone: c.zone,
        cta: c.cta,
        home: c.home,
        service: c.service,
        priority: c.priority,
        caller: c.caller.clone(),
        offered_at: c.offered_at,
        queued_at: c.queued_at,
        overflowed_from: c.overflowed_from,
        mutual_aid: c.mutual_aid,
        crisis_related: c.crisis_related,
        place: c.place.clone(),
        summary: c.summary.clone(),
        transferring: c.transfer.map(|(_, _, to)| to),
        suspected: c.suspected,
        status: match c.state {
            CallState::Queued => CallStatus::Queued,
            CallState::Ringing(a) => CallStatus::Ringing(a),
            CallState::Talking(a) => CallStatus::Talking(a),
        },
    }
}

struct View<'a> {
    ctas: &'a [CtaState],
    plan: &'a Plan,
}

impl QueueView for View<'_> {
    fn state(&self, cta: CtaId) -> QueueState {
        let Some(state) = self.ctas.get(usize::from(cta.0)) else {
            return QueueState::Disabled;
        };
        if state.disabled {
            QueueState::Disabled
        } else if state.logged_in == 0 {
            QueueState::Inactive
        } else if state.waiting.len() >= self.plan.cta(cta).queue_max as usize {
            QueueState::Full
        } else if state.paused == state.logged_in {
            QueueState::Standby
        } else {
            QueueState::Active
        }
    }

    fn spare(&self, cta: CtaId) -> i64 {
        let Some(state) = self.ctas.get(usize::from(cta.0)) else {
            return 0;
        };
        if state.disabled {
            return 0;
        }
        let idle = state.idle.len() as i64;
        // Call-takers busy with the CTA's own callers already count toward its reserve; the
        // rest of the reserve must stay idle.
        let own_engaged =
            i64::from(state.logged_in) - idle - i64::from(state.paused) - i64::from(state.lent);
        let keep = (i64::from(state.load.reserve()) - own_engaged.max(0)).max(0);
        idle - state.waiting.len() as i64 - keep
    }

    fn expected_wait_ms(&self, cta: CtaId) -> u64 {
        let Some(state) = self.ctas.get(usize::from(cta.0)) else {
            return u64::MAX;
        };
        let active = state.logged_in.saturating_sub(state.paused);
        if state.disabled || active == 0 {
            return u64::MAX;
        }
        // A newcomer behind every waiting call: its turn comes when that many calls beyond
        // the idle call-takers have ended, at `active` ends per holding time.
        let ahead = state.waiting.len() as i64 + 1 - state.idle.len() as i64;
        if ahead <= 0 {
            return 0;
        }
        let holding = state.load.holding_ms(self.plan.cta(cta));
        (ahead as f64 * holding / f64::from(active)) as u64
    }
}

/// Which CTAs may lend to which (`may_lend[home][lender]`), and the expected calls per
/// millisecond of each CTA's zones before any is observed, as `plan` sets them.
fn lending(plan: &Plan) -> (Vec<Vec<bool>>, Vec<f64>) {
    let n = plan.ctas.len();
    let mut may_lend = vec![vec![false; n]; n];
    for (home, cta) in plan.ctas.iter().enumerate() {
        for lender in &cta.lenders {
            may_lend[home][usize::from(lender.0)] = true;
        }
    }
    let population: u64 = plan.zones.iter().map(|z| z.population).sum::<u64>().max(1);
    let per_ms = plan.expected_calls_per_year / (365.0 * 86_400_000.0);
    let mut prior_per_ms = vec![0.0; n];
    for zone in &plan.zones {
        prior_per_ms[usize::from(zone.cta.0)] +=
            per_ms * zone.population as f64 / population as f64;
    }
    (may_lend, prior_per_ms)
}

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

mod answering;
mod assertions;
mod call_takers;
mod crisis;
mod endings;
mod mutual_aid;
mod offers;
mod queries;
mod queueing;
mod requests;
mod snapshot;
mod suspects;
mod timers;
pub use requests::national_number;

use mutual_aid::lending;

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
    /// Voice, or text written.
    #[serde(default)]
    medium: Medium,
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
    /// Voice, or text written.
    pub medium: Medium,
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

    /// The core's one way in: an event, or a plan taken live, at `now`; the commands it
    /// caused, timers due by `now` included. A plan is refused, with the reason, as
    /// `change_plan` says; an event never is (`handle` is the same for events alone).
    pub fn apply(
        &mut self,
        input: crate::Input,
        now: Instant,
    ) -> Result<std::vec::Drain<'_, Command>, String> {
        match input {
            crate::Input::Event(event) => Ok(self.handle(event, now)),
            crate::Input::Plan(plan) => self.change_plan(plan, now),
        }
    }

    /// Takes a new plan at `now` without a restart, keeping every call, call-taker and
    /// call-back: the rules, capacity and shares, mutual aid, staffing and timings change;
    /// the CTAs, zones and accounts must not ([`Plan::may_become`]). Reserves are sized again
    /// at once and every CTA may lend what the new plan lets it. Refused, with the reason,
    /// when the plans differ in shape or the new capacity is below the calls admitted now;
    /// the core is then unchanged.
    pub(crate) fn change_plan(
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
    /// one seen) and returns the commands it caused, timers due by `now` included: `apply` for
    /// an event, which cannot be refused.
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

    // ----- events -----

    // ----- timers -----

    // ----- queues -----

    // ----- call-takers -----

    // ----- ends -----

    // ----- helpers -----

    fn emit(&mut self, command: Command) {
        self.out.push(command);
    }

    fn trail(&mut self, call: CallId, step: Step) {
        self.out.push(Command::Trail { call, step });
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

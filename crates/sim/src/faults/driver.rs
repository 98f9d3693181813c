//! The run of one seed: the clock, the feeding and checking of every event, and the shell's
//! reactions to commands (phones, callers, partner services), faulty as the seed draws them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use secourir_config::Plan;
use secourir_core::{
    AgentId, AgentStatus, Ask, CallId, CallStatus, Command, Core, Event, Instant, RequestId,
    RingFailure, Service, WantedState,
};

use super::{Cast, Checker, Fault, Fnv, Phase, Position, SeedRun, Settings, TraceLine, Violation};

/// Virtual time of the first event: any fixed instant will do, the plan has no periods.
const START_MS: u64 = 1_700_000_000_000;
/// Most timer ticks in a row without any time passing before the core is deemed stuck.
const TICKS_AT_ONE_INSTANT: u32 = 1_000;
/// Recent cancelled rings and ended calls kept as targets of late and stray events.
const MEMORY: usize = 16;

/// How a call-taker's phone behaves for the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phone {
    /// Answers after a few seconds, now and then too late.
    Good,
    /// Rings until the core gives up.
    Silent,
    /// Cannot be reached.
    Unreachable,
    /// Refuses every call.
    Refuses,
    /// Any of the above, ring by ring.
    Flaky,
}

/// What the partner service does once rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PartnerMove {
    Answers,
    Fails(u16),
    HangsUp,
}

/// A reaction of the outside world, due at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    PhoneAnswers(AgentId, CallId),
    /// The phone gives up: unreachable if true, else refused.
    PhoneFails(AgentId, CallId, bool),
    Converse(AgentId, CallId),
    CallerLeaves(CallId),
    Partner(CallId, PartnerMove),
    PartnerEnds(CallId),
    Returns(AgentId),
}

/// One seed's run.
pub(super) struct Driver<'a, 't> {
    pub(super) core: Core,
    pub(super) plan: Arc<Plan>,
    pub(super) cast: &'a Cast,
    pub(super) settings: Settings,
    pub(super) rng: ChaCha8Rng,
    pub(super) now: u64,
    pub(super) checker: Checker,
    pub(super) stats: SeedRun,
    phones: BTreeMap<AgentId, Phone>,
    agenda: BinaryHeap<Reverse<(u64, u64, Action)>>,
    sequence: u64,
    /// Whether the shell reacts to commands (not in the liveness phase, which drives itself).
    reacting: bool,
    pub(super) cancelled: VecDeque<(AgentId, CallId)>,
    pub(super) ended: VecDeque<CallId>,
    pub(super) next_call: u64,
    next_request: u64,
    /// The last event fed, for duplicates.
    pub(super) last: Option<Event>,
    position: &'a mut Position,
    trace: Option<&'t mut (dyn FnMut(&TraceLine<'_>) + 't)>,
    out: Vec<Command>,
    hash: Fnv,
}

impl<'a, 't> Driver<'a, 't> {
    pub(super) fn new(
        seed: u64,
        settings: Settings,
        plan: &Arc<Plan>,
        cast: &'a Cast,
        position: &'a mut Position,
        trace: Option<&'t mut (dyn FnMut(&TraceLine<'_>) + 't)>,
    ) -> Driver<'a, 't> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let phones = cast
            .roster
            .iter()
            .map(|seat| {
                let phone = match rng.random_range(0..100) {
                    0..65 => Phone::Good,
                    65..75 => Phone::Silent,
                    75..85 => Phone::Unreachable,
                    85..90 => Phone::Refuses,
                    _ => Phone::Flaky,
                };
                (seat.agent, phone)
            })
            .collect();
        let checker = Checker::new(plan);
        Driver {
            core: Core::new(Arc::clone(plan)),
            plan: Arc::clone(plan),
            cast,
            settings,
            rng,
            now: START_MS,
            checker,
            stats: SeedRun {
                seed,
                ..SeedRun::default()
            },
            phones,
            agenda: BinaryHeap::new(),
            sequence: 0,
            reacting: true,
            cancelled: VecDeque::new(),
            ended: VecDeque::new(),
            next_call: 1,
            next_request: 1,
            last: None,
            position,
            trace,
            out: Vec::new(),
            hash: Fnv::default(),
        }
    }

    /// Chaos, then liveness; the run's figures if no rule broke.
    pub(super) fn run(mut self) -> Result<SeedRun, Violation> {
        for _ in 0..self.settings.steps {
            let gap = if self.rng.random_bool(0.25) {
                0
            } else {
                self.rng.random_range(1..3_000)
            };
            let chaos_at = self.now + gap;
            self.catch_up(chaos_at)?;
            self.now = chaos_at;
            self.chaos()?;
        }
        self.position.phase = Phase::Liveness;
        self.reacting = false;
        self.agenda.clear();
        self.drain()?;
        self.stats.checks += self.checker.checks();
        self.stats.hash = self.hash.0;
        self.stats.simulated_ms = self.now - START_MS;
        self.stats.calls = self.next_call - 1;
        Ok(self.stats)
    }

    /// Carries out the reactions and fires the core's timers due until `until`, in time order.
    fn catch_up(&mut self, until: u64) -> Result<(), Violation> {
        let mut ticks_here = 0;
        loop {
            let reaction = self.agenda.peek().map(|Reverse((at, _, _))| *at);
            let deadline = self.core.next_deadline().map(|d| d.0);
            let next = match (reaction, deadline) {
                (Some(r), Some(d)) => r.min(d),
                (r, d) => r.or(d).unwrap_or(u64::MAX),
            };
            if next > until {
                return Ok(());
            }
            if deadline == Some(next) {
                if next <= self.now {
                    ticks_here += 1;
                    if ticks_here > TICKS_AT_ONE_INSTANT {
                        return Err(Violation(format!(
                            "a timer due at {next} never fires: the core is stuck"
                        )));
                    }
                } else {
                    ticks_here = 0;
                }
                self.now = self.now.max(next);
                self.feed(Event::Tick)?;
            } else if let Some(Reverse((at, _, action))) = self.agenda.pop() {
                self.now = self.now.max(at);
                self.perform(action)?;
            }
        }
    }

    /// Schedules a reaction of the outside world.
    fn later(&mut self, after_ms: u64, action: Action) {
        self.sequence += 1;
        self.agenda
            .push(Reverse((self.now + after_ms, self.sequence, action)));
    }

    /// A request id never used in this run.
    pub(super) fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// Feeds a request of this call-taker under a fresh id.
    pub(super) fn ask(&mut self, agent: AgentId, ask: Ask) -> Result<(), Violation> {
        let id = self.request_id();
        self.feed(Event::Request { id, agent, ask })
    }

    /// Counts one injected fault.
    pub(super) fn fault(&mut self, fault: Fault) {
        self.stats.faults.add(fault);
    }

    /// Feeds one event, checks everything, records it, and lets the shell react.
    pub(super) fn feed(&mut self, event: Event) -> Result<(), Violation> {
        self.position.index = self.stats.events;
        self.position.event.clear();
        let _ = write!(self.position.event, "{event:?}");
        let _ = write!(self.hash, "{}@{}", self.position.event, self.now);
        self.checker.fed(&event)?;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.extend(self.core.handle(event.clone(), Instant(self.now)));
        self.stats.events += 1;
        if self.position.phase == Phase::Liveness {
            self.stats.liveness_events += 1;
        }
        self.stats.commands += out.len() as u64;
        for command in &out {
            let _ = write!(self.hash, "{command:?}");
        }
        if let Some(trace) = self.trace.as_mut() {
            trace(&TraceLine {
                index: self.position.index,
                at_ms: self.now - START_MS,
                at: Instant(self.now),
                phase: self.position.phase,
                event: &event,
                commands: &out,
            });
        }
        // After the trace, so that a replay shows what the core did before its recount failed.
        self.core.check_invariants();
        self.stats.checks += 1;
        let checked = self
            .checker
            .observe(&event, &out)
            .and_then(|()| self.checker.agree(&self.core));
        if checked.is_ok() && self.reacting {
            for command in &out {
                self.react(command);
            }
        }
        self.out = out;
        self.last = Some(event);
        checked
    }

    /// The shell's reaction to a command: what the phone, the caller, the partner will do.
    fn react(&mut self, command: &Command) {
        match *command {
            Command::Answer { call } if self.rng.random_bool(0.5) => {
                let patience = self.rng.random_range(2_000..90_000);
                self.later(patience, Action::CallerLeaves(call));
            }
            Command::Ring { call, agent } => self.phone_rings(agent, call),
            Command::Bridge { call, agent, .. } => {
                let talk = self.rng.random_range(2_000..60_000);
                self.later(talk, Action::Converse(agent, call));
            }
            Command::CallPartner { call, .. } => self.partner_rung(call),
            Command::HandOver { call, .. } => {
                let talk = self.rng.random_range(5_000..60_000);
                self.later(talk, Action::PartnerEnds(call));
            }
            Command::AgentChanged {
                agent,
                status: AgentStatus::Paused,
            } if self.phones.contains_key(&agent) && self.rng.random_bool(0.8) => {
                let pause = self.rng.random_range(3_000..40_000);
                self.later(pause, Action::Returns(agent));
            }
            Command::CancelRing { call, agent } => remember(&mut self.cancelled, (agent, call)),
            Command::Ended { call, .. } => remember(&mut self.ended, call),
            _ => {}
        }
    }

    fn phone_rings(&mut self, agent: AgentId, call: CallId) {
        let mut phone = self.phones.get(&agent).copied().unwrap_or(Phone::Good);
        if phone == Phone::Flaky {
            phone = match self.rng.random_range(0..4) {
                0 => Phone::Good,
                1 => Phone::Silent,
                2 => Phone::Unreachable,
                _ => Phone::Refuses,
            };
        }
        match phone {
            Phone::Good | Phone::Flaky => {
                // Now and then the call-taker picks up just as the core gives up on the ring.
                let delay = if self.rng.random_bool(0.05) {
                    self.rng.random_range(14_000..25_000)
                } else {
                    self.rng.random_range(300..4_000)
                };
                self.later(delay, Action::PhoneAnswers(agent, call));
            }
            Phone::Silent => self.fault(Fault::RingNoAnswer),
            Phone::Unreachable => {
                self.fault(Fault::RingUnreachable);
                let delay = self.rng.random_range(0..300);
                self.later(delay, Action::PhoneFails(agent, call, true));
            }
            Phone::Refuses => {
                self.fault(Fault::RingRefused);
                let delay = self.rng.random_range(500..3_000);
                self.later(delay, Action::PhoneFails(agent, call, false));
            }
        }
    }

    fn partner_rung(&mut self, call: CallId) {
        let (fault, action, delay) = match self.rng.random_range(0..100) {
            0..45 => (None, PartnerMove::Answers, 1_000..8_000),
            45..65 => {
                let status = [486, 603, 480, 404][self.rng.random_range(0..4)];
                (
                    Some(Fault::PartnerRefused),
                    PartnerMove::Fails(status),
                    1_000..8_000,
                )
            }
            65..80 => (
                Some(Fault::PartnerUnreachable),
                PartnerMove::Fails(0),
                0..500,
            ),
            80..87 => (
                Some(Fault::PartnerHungUpEarly),
                PartnerMove::HangsUp,
                1_000..5_000,
            ),
            _ => {
                self.fault(Fault::PartnerSilent);
                return;
            }
        };
        if let Some(fault) = fault {
            self.fault(fault);
        }
        let delay = self.rng.random_range(delay);
        self.later(delay, Action::Partner(call, action));
    }

    fn perform(&mut self, action: Action) -> Result<(), Violation> {
        match action {
            Action::PhoneAnswers(agent, call) => {
                if self.status(call) != Some(CallStatus::Ringing(agent)) {
                    self.fault(Fault::LateAnswer);
                }
                self.feed(Event::AgentAnswered { agent, call })
            }
            Action::PhoneFails(agent, call, unreachable) => {
                let reason = if unreachable {
                    RingFailure::Unreachable
                } else {
                    RingFailure::Refused
                };
                self.feed(Event::AgentRingFailed {
                    agent,
                    call,
                    reason,
                })
            }
            Action::Converse(agent, call) => self.converse(agent, call),
            Action::CallerLeaves(call) => {
                if self.status(call).is_some() {
                    self.feed(Event::CallerHungUp { call })?;
                }
                Ok(())
            }
            Action::Partner(call, PartnerMove::Answers) => {
                self.feed(Event::PartnerAnswered { call })
            }
            Action::Partner(call, PartnerMove::Fails(status)) => {
                self.feed(Event::PartnerFailed { call, status })
            }
            Action::Partner(call, PartnerMove::HangsUp) => self.feed(Event::PartnerHungUp { call }),
            // After the handover, either side may leave first, or the platform stop.
            Action::PartnerEnds(call) => {
                let event = match self.rng.random_range(0..20) {
                    0..14 => Event::PartnerHungUp { call },
                    14..19 => Event::CallerHungUp { call },
                    _ => Event::Stopped { call },
                };
                self.feed(event)
            }
            Action::Returns(agent) => {
                if self.core.agent(agent) != AgentStatus::Paused {
                    return Ok(());
                }
                if self.rng.random_bool(0.6) {
                    self.feed(Event::AgentReady { agent })
                } else {
                    self.ask(agent, Ask::State(WantedState::Available))
                }
            }
        }
    }

    /// The end of a stretch of conversation: hang up, transfer, hand back, or talk on.
    fn converse(&mut self, agent: AgentId, call: CallId) -> Result<(), Violation> {
        let Some(info) = self.core.call(call) else {
            return Ok(());
        };
        if info.status != CallStatus::Talking(agent) {
            return Ok(());
        }
        let lent = self
            .core
            .agent_seat(agent)
            .is_some_and(|s| s.0 != info.home);
        match self.rng.random_range(0..100) {
            0..30 => self.feed(Event::AgentHungUp { agent, call }),
            30..42 => self.ask(agent, Ask::HangUp(call)),
            42..55 => self.feed(Event::CallerHungUp { call }),
            55..78 => {
                let to = if self.rng.random_bool(0.85) {
                    Service::Ambulance
                } else {
                    Service::Police
                };
                let summary = "Chute dans l'escalier,\n  victime consciente".into();
                self.ask(agent, Ask::Transfer { call, to, summary })?;
                let more = self.rng.random_range(5_000..30_000);
                self.later(more, Action::Converse(agent, call));
                Ok(())
            }
            78..88 if lent => self.ask(
                agent,
                Ask::HandBack {
                    call,
                    summary: "Feu de broussailles, vent fort".into(),
                },
            ),
            _ => {
                let more = self.rng.random_range(5_000..30_000);
                self.later(more, Action::Converse(agent, call));
                Ok(())
            }
        }
    }

    /// Where a live call stands, by the core.
    pub(super) fn status(&self, call: CallId) -> Option<CallStatus> {
        self.core.call(call).map(|c| c.status)
    }
}

fn remember<T>(list: &mut VecDeque<T>, item: T) {
    if list.len() == MEMORY {
        list.pop_front();
    }
    list.push_back(item);
}

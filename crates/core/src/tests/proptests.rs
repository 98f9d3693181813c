//! Random event streams, and the global checker they run against: no call lost or taken twice.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::*;

/// One random input for the property tests, over small id spaces so that they collide.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Offer(u8, u8),
    Suspect(u8),
    CallerHangUp(u8),
    Login(u8, u8, u8),
    Logout(u8),
    Ready(u8),
    Pause(u8),
    Pick(u8, u8),
    Answer(u8, u8),
    RingFail(u8, u8),
    AgentHangUp(u8, u8),
    Transfer(u8, u8),
    HandBack(u8, u8),
    HangUpAsk(u8, u8),
    PartnerAnswer(u8),
    PartnerFail(u8),
    PartnerHangUp(u8),
    State(u8, u8),
    CallbackTake(u8, u8),
    CallbackDone(u8, u8),
    Located(u8),
    Stopped(u8),
    Withdrawn(u8),
    Dtmf(u8),
    Crisis(u8, bool),
    Disable(u8, bool),
    Advance(u32),
    /// The n-th call-taker whose phone rings answers.
    AnswerRinging(u8),
    /// The n-th call-taker in conversation asks to transfer their call (to 17 when the flag is
    /// set, which has no partner in the plan).
    TransferTalking(u8, bool),
    /// Something happens to the n-th call with a partner leg (transfer ringing or handed over):
    /// 0 the partner answers, 1 it fails, 2 it hangs up, 3 the caller hangs up, 4 the
    /// call-taker hangs up.
    OnPartnerLeg(u8, u8),
    /// A new plan is taken live: the test plan, or (false) one where CTA 13 has no lender.
    ChangePlan(bool),
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..40, 0u8..3).prop_map(|(c, z)| Op::Offer(c, z)),
        2 => (0u8..40).prop_map(Op::CallerHangUp),
        2 => (0u8..8, 0u8..3, 1u8..6).prop_map(|(a, c, p)| Op::Login(a, c, p)),
        1 => (0u8..8).prop_map(Op::Logout),
        2 => (0u8..8).prop_map(Op::Ready),
        1 => (0u8..8).prop_map(Op::Pause),
        2 => (0u8..8, 0u8..40).prop_map(|(a, c)| Op::Pick(a, c)),
        3 => (0u8..8, 0u8..40).prop_map(|(a, c)| Op::Answer(a, c)),
        1 => (0u8..8, 0u8..40).prop_map(|(a, c)| Op::RingFail(a, c)),
        2 => (0u8..8, 0u8..40).prop_map(|(a, c)| Op::AgentHangUp(a, c)),
        1 => (0u8..8, 0u8..40).prop_map(|(a, c)| Op::Transfer(a, c)),
        1 => (0u8..8, 0u8..40).prop_map(|(a, c)| Op::HandBack(a, c)),
        1 => (0u8..8, 0u8..40).prop_map(|(a, c)| Op::HangUpAsk(a, c)),
        2 => (0u8..40).prop_map(Op::PartnerAnswer),
        1 => (0u8..40).prop_map(Op::PartnerFail),
        1 => (0u8..40).prop_map(Op::PartnerHangUp),
        1 => (0u8..8, 0u8..3).prop_map(|(a, w)| Op::State(a, w)),
        1 => (0u8..8, 0u8..40).prop_map(|(a, c)| Op::CallbackTake(a, c)),
        1 => (0u8..8, 0u8..40).prop_map(|(a, c)| Op::CallbackDone(a, c)),
        1 => (0u8..40).prop_map(Op::Located),
        1 => (0u8..40).prop_map(Op::Stopped),
        1 => (0u8..40).prop_map(Op::Withdrawn),
        1 => (0u8..40).prop_map(Op::Suspect),
        1 => (0u8..40).prop_map(Op::Dtmf),
        1 => (0u8..3, any::<bool>()).prop_map(|(z, on)| Op::Crisis(z, on)),
        1 => (0u8..3, any::<bool>()).prop_map(|(c, d)| Op::Disable(c, d)),
        3 => (0u32..40_000).prop_map(Op::Advance),
        // Random ids rarely hit a ringing call-taker or a pending transfer: these aim at them.
        3 => any::<u8>().prop_map(Op::AnswerRinging),
        3 => (any::<u8>(), prop::bool::weighted(0.1)).prop_map(|(n, p)| Op::TransferTalking(n, p)),
        3 => (any::<u8>(), prop_oneof![3 => Just(0u8), 1 => 1u8..5]).prop_map(|(n, k)| Op::OnPartnerLeg(n, k)),
        1 => any::<bool>().prop_map(Op::ChangePlan),
    ]
}

/// The event for an op, `None` for time passing or an aimed op that finds nothing to aim at.
pub(super) fn event(op: &Op, id: u64, core: &Core) -> Option<Event> {
    let call = |c: &u8| CallId(u64::from(*c));
    let agent = |a: &u8| AgentId(u32::from(*a));
    let ask = |a: &u8, ask: Ask| Event::Request {
        id: RequestId(id),
        agent: agent(a),
        ask,
    };
    Some(match op {
        // Ids are reused once a call ends, as here, but a shell never reuses the id of a caller
        // still on the line with a partner service.
        Op::Offer(c, _) if core.handed_over().any(|h| h == call(c)) => return None,
        Op::Offer(c, z) => Event::Offered(Offer {
            call: call(c),
            zone: ZoneId(u16::from(*z)),
            service: Service::Fire,
            resource_priority: (*c % 7 == 0).then_some(0),
            caller: Some(format!("06000000{c:02}").into()),
            source: None,
            place: None,
            // Some callers are suspected of a flood: no invariant may bend for them.
            suspected: *c % 5 == 3,
            // Some the shell could not carry: refused, on record, called back.
            refused: (*c % 11 == 7).then_some(NotCarried::NoMediaPort),
            medium: Default::default(),
        }),
        Op::CallerHangUp(c) => Event::CallerHungUp { call: call(c) },
        Op::Login(a, c, p) => Event::AgentLogin {
            agent: agent(a),
            cta: CtaId(u16::from(*c)),
            site: 0,
            dequeue_preference: *p,
        },
        Op::Logout(a) => Event::AgentLogout { agent: agent(a) },
        Op::Ready(a) => Event::AgentReady { agent: agent(a) },
        Op::Pause(a) => Event::AgentPause { agent: agent(a) },
        Op::Pick(a, c) => ask(a, Ask::Pick(call(c))),
        Op::Answer(a, c) => Event::AgentAnswered {
            agent: agent(a),
            call: call(c),
        },
        Op::RingFail(a, c) => Event::AgentRingFailed {
            agent: agent(a),
            call: call(c),
            reason: RingFailure::Refused,
        },
        Op::AgentHangUp(a, c) => Event::AgentHungUp {
            agent: agent(a),
            call: call(c),
        },
        Op::Transfer(a, c) => ask(
            a,
            Ask::Transfer {
                call: call(c),
                to: if c % 5 == 0 {
                    Service::Police
                } else {
                    Service::Ambulance
                },
                summary: "feu de cuisine".into(),
            },
        ),
        Op::HandBack(a, c) => ask(
            a,
            Ask::HandBack {
                call: call(c),
                summary: "blessé léger".into(),
            },
        ),
        Op::HangUpAsk(a, c) => ask(a, Ask::HangUp(call(c))),
        Op::PartnerAnswer(c) => Event::PartnerAnswered { call: call(c) },
        Op::PartnerFail(c) => Event::PartnerFailed {
            call: call(c),
            status: 486,
        },
        Op::PartnerHangUp(c) => Event::PartnerHungUp { call: call(c) },
        Op::State(a, w) => ask(
            a,
            Ask::State(match w {
                0 => WantedState::Available,
                1 => WantedState::Paused,
                _ => WantedState::Offline,
            }),
        ),
        Op::CallbackTake(a, c) => ask(a, Ask::CallbackTaken(call(c))),
        Op::CallbackDone(a, c) => ask(a, Ask::CallbackDone(call(c))),
        Op::Located(c) => Event::Located {
            id: RequestId(id),
            caller: format!("+33 6 00 00 00 {c:02}").into(),
            place: Arc::new(Whereabouts {
                departement: "13".into(),
                source: "aml".into(),
                ..Whereabouts::default()
            }),
        },
        Op::Stopped(c) => Event::Stopped { call: call(c) },
        Op::Withdrawn(c) => Event::Withdrawn { call: call(c) },
        Op::Suspect(c) => Event::Suspected { call: call(c) },
        Op::Dtmf(c) => Event::Dtmf {
            call: call(c),
            digit: b'1',
        },
        Op::Crisis(z, on) => Event::SetCrisis {
            zone: ZoneId(u16::from(*z)),
            on: *on,
        },
        Op::Disable(c, d) => Event::SetDisabled {
            cta: CtaId(u16::from(*c)),
            disabled: *d,
        },
        Op::Advance(_) | Op::ChangePlan(_) => return None,
        Op::AnswerRinging(n) => {
            let ringing: Vec<(AgentId, CallId)> = (0..8)
                .map(AgentId)
                .filter_map(|a| match core.agent(a) {
                    AgentStatus::Ringing(call) => Some((a, call)),
                    _ => None,
                })
                .collect();
            let (agent, call) = *ringing.get(usize::from(*n) % ringing.len().max(1))?;
            Event::AgentAnswered { agent, call }
        }
        Op::TransferTalking(n, police) => {
            let talking: Vec<(AgentId, CallId)> = (0..8)
                .map(AgentId)
                .filter_map(|a| match core.agent(a) {
                    AgentStatus::Talking(call) => Some((a, call)),
                    _ => None,
                })
                .collect();
            let (agent, call) = *talking.get(usize::from(*n) % talking.len().max(1))?;
            Event::Request {
                id: RequestId(id),
                agent,
                ask: Ask::Transfer {
                    call,
                    to: if *police {
                        Service::Police
                    } else {
                        Service::Ambulance
                    },
                    summary: "  malaise,\n  conscient ".into(),
                },
            }
        }
        Op::OnPartnerLeg(n, kind) => {
            let mut ringing: Vec<(CallId, Option<AgentId>)> = core
                .live_call_ids()
                .filter_map(|c| core.call(c))
                .filter(|info| info.transferring.is_some())
                .map(|info| match info.status {
                    CallStatus::Talking(a) => (info.call, Some(a)),
                    _ => (info.call, None),
                })
                .collect();
            ringing.sort_unstable();
            let legs: Vec<(CallId, Option<AgentId>)> = ringing
                .into_iter()
                .chain(core.handed_over().map(|c| (c, None)))
                .collect();
            let (call, talking) = *legs.get(usize::from(*n) % legs.len().max(1))?;
            match kind {
                0 => Event::PartnerAnswered { call },
                1 => Event::PartnerFailed { call, status: 486 },
                2 => Event::PartnerHungUp { call },
                3 => Event::CallerHungUp { call },
                _ => Event::AgentHungUp {
                    agent: talking?,
                    call,
                },
            }
        }
    })
}

/// Global checker over the command stream: every admitted call ends exactly once, a refused
/// call ends at once, none is bridged twice, no two call-takers hold one call, capacity holds.
#[derive(Default)]
pub(super) struct Checker {
    live: HashSet<u64>,
    bridged: HashSet<u64>,
    holder: HashMap<u64, u32>,
    admitted: u64,
    ended: u64,
    /// Requests fed and not answered yet.
    open_requests: HashSet<u64>,
    /// Calls whose caller is bridged to a partner service.
    handed_over: HashSet<u64>,
}

impl Checker {
    /// Notes a request fed to the core: it must be answered exactly once.
    pub(super) fn asked(&mut self, event: &Event) {
        if let Event::Request { id, .. } | Event::Located { id, .. } = event {
            assert!(
                self.open_requests.insert(id.0),
                "request id {} reused",
                id.0
            );
        }
    }

    pub(super) fn observe(&mut self, core: &Core, out: &[Command]) {
        let refused: HashSet<u64> = out
            .iter()
            .filter_map(|c| match c {
                Command::Reject { call, .. } => Some(call.0),
                _ => None,
            })
            .collect();
        for command in out {
            match command {
                Command::Reply { request, .. } => assert!(
                    self.open_requests.remove(&request.0),
                    "request {} answered twice, or never asked",
                    request.0
                ),
                Command::HandOver { call, agent } => {
                    assert_eq!(
                        self.holder.get(&call.0),
                        Some(&agent.0),
                        "handed over by a call-taker who does not hold it"
                    );
                    assert!(self.handed_over.insert(call.0), "handed over twice");
                }
                Command::DropPartner { call } => {
                    self.handed_over.remove(&call.0);
                }
                Command::Answer { call } => {
                    assert!(
                        self.live.insert(call.0),
                        "call {} admitted while live",
                        call.0
                    );
                    self.admitted += 1;
                }
                Command::Ended { call, .. } => {
                    let was_live = self.live.remove(&call.0);
                    assert!(
                        was_live || refused.contains(&call.0),
                        "call {} ended twice, or ended without being offered",
                        call.0
                    );
                    if was_live {
                        self.ended += 1;
                    }
                    self.bridged.remove(&call.0);
                    self.holder.remove(&call.0);
                }
                Command::Withdrawn { call, .. } => {
                    assert!(
                        self.live.remove(&call.0),
                        "call {} withdrawn while not live",
                        call.0
                    );
                    // Leaving withdrawn is its one end here.
                    self.ended += 1;
                    self.bridged.remove(&call.0);
                    self.holder.remove(&call.0);
                }
                Command::Bridge { call, agent, .. } => {
                    assert!(self.bridged.insert(call.0), "call {} bridged twice", call.0);
                    assert_eq!(
                        self.holder.get(&call.0),
                        Some(&agent.0),
                        "bridged to a call-taker it did not ring"
                    );
                }
                Command::Ring { call, .. } => {
                    assert!(
                        !self.bridged.contains(&call.0),
                        "ringing a call already answered"
                    );
                }
                Command::Unbridge { call, agent } => {
                    assert!(
                        self.bridged.remove(&call.0),
                        "unbridging a call not bridged"
                    );
                    assert_eq!(
                        self.holder.remove(&call.0),
                        Some(agent.0),
                        "unbridged by another"
                    );
                }
                _ => {}
            }
            if let Command::Ring { call, agent } = command {
                self.holder.insert(call.0, agent.0);
            }
        }
        assert_eq!(
            core.live_calls(),
            self.live.len(),
            "a call was lost or invented"
        );
        assert!(core.admission().within_capacity());
        let mut holders = HashSet::new();
        for call in &self.live {
            if let Some(info) = core.call(CallId(*call))
                && let CallStatus::Ringing(a) | CallStatus::Talking(a) = info.status
            {
                assert!(holders.insert(a), "call-taker {a:?} holds two calls");
            }
        }
    }
}

proptest! {

    #[test]
    fn no_call_is_lost_none_is_taken_twice_and_every_call_ends_once(ops in prop::collection::vec(op(), 1..200)) {
        let mut core = Core::new(plan());
        let mut now = 1_700_000_000_000u64;
        let mut checker = Checker::default();
        for (i, op) in ops.iter().enumerate() {
            if let Op::Advance(ms) = op {
                now += u64::from(*ms);
            }
            if let Op::ChangePlan(aid) = op {
                let next = if *aid { plan() } else { plan_without_aid_for_13() };
                // Refused only below the live calls; then nothing changed.
                let capacity = core.admission().capacity();
                let changed = core
                    .change_plan(next, Instant(now))
                    .map(|out| out.collect::<Vec<Command>>());
                match changed {
                    Ok(out) => {
                        core.check_invariants();
                        checker.observe(&core, &out);
                    }
                    Err(_) => prop_assert_eq!(core.admission().capacity(), capacity),
                }
                continue;
            }
            let event = event(op, i as u64, &core).unwrap_or(Event::Tick);
            checker.asked(&event);
            let out: Vec<Command> = core.handle(event, Instant(now)).collect();
            core.check_invariants();
            checker.observe(&core, &out);
        }

        // Liveness: service comes back, call-takers answer everything, every call ends.
        for cta in 0..3u16 {
            let out: Vec<Command> = core.handle(Event::SetDisabled { cta: CtaId(cta), disabled: false }, Instant(now)).collect();
            checker.observe(&core, &out);
            for seat in 0..3u32 {
                let agent = AgentId(100 + u32::from(cta) * 10 + seat);
                let out: Vec<Command> = core.handle(Event::AgentLogin { agent, cta: CtaId(cta), site: 0, dequeue_preference: 3 }, Instant(now)).collect();
                checker.observe(&core, &out);
            }
        }
        let mut rounds = 0;
        let mut requests = 0u64;
        while core.live_calls() > 0 {
            rounds += 1;
            prop_assert!(rounds < 2_000, "calls never drained: {} left", core.live_calls());
            now += 5_000;
            let mut pending: Vec<Event> = Vec::new();
            for cta in 0..3u16 {
                for info in core.waiting(CtaId(cta)).collect::<Vec<_>>() {
                    let pickers: Vec<AgentId> = (0..3u32).map(|s| AgentId(100 + u32::from(cta) * 10 + s)).collect();
                    for agent in pickers {
                        requests += 1;
                        let id = RequestId(1_000_000 + requests);
                        let pick = Event::Request { id, agent, ask: Ask::Pick(info.call) };
                        checker.asked(&pick);
                        pending.push(pick);
                    }
                }
            }
            for agent in (0..40u32).chain(100..130) {
                match core.agent(AgentId(agent)) {
                    AgentStatus::Ringing(call) => pending.push(Event::AgentAnswered { agent: AgentId(agent), call }),
                    AgentStatus::Talking(call) => pending.push(Event::AgentHungUp { agent: AgentId(agent), call }),
                    AgentStatus::Paused => pending.push(Event::AgentReady { agent: AgentId(agent) }),
                    _ => {}
                }
            }
            pending.push(Event::Tick);
            for event in pending {
                let out: Vec<Command> = core.handle(event, Instant(now)).collect();
                core.check_invariants();
                checker.observe(&core, &out);
            }
        }
        // Callers still with a partner service hang up.
        for call in core.handed_over().collect::<Vec<_>>() {
            let out: Vec<Command> = core.handle(Event::CallerHungUp { call }, Instant(now)).collect();
            checker.observe(&core, &out);
        }
        prop_assert!(checker.live.is_empty());
        prop_assert_eq!(checker.admitted, checker.ended, "every admitted call ends exactly once");
        prop_assert!(checker.open_requests.is_empty(), "requests never answered: {:?}", checker.open_requests);
        prop_assert!(checker.handed_over.is_empty() && core.handed_over().next().is_none(), "a partner leg left behind");
    }
}

//! Scenario tests and property tests of the core, driven by events and a virtual `now`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;
use secourir_config::{Departement, Plan};

use crate::*;

const TERRITORY: &[Departement<'static>] = &[
    Departement {
        code: "13",
        population: 2_000_000,
    },
    Departement {
        code: "83",
        population: 1_000_000,
    },
    Departement {
        code: "84",
        population: 500_000,
    },
];

const PLAN: &str = r#"
[national]
capacity = 12
reserved_share = 0.5
rule_set = "national"
default_departement = "13"

[defaults]
ring_timeout_s = 20
wrap_up_s = 10
no_answer_s = 30
retry_s = 10
keep_idle = 0
mode = "acd"
wait_announcement = "attente"
crisis_announcement = "crise"

[[announcement]]
id = "attente"
text = "Sapeurs-pompiers, ne quittez pas."

[[announcement]]
id = "crise"
text = "Si vous appelez pour l'incendie en cours, tapez 1."
menu = true

[[cta]]
id = "cta-13"
name = "CTA 13"
departements = ["13"]
partners = ["cta-83", "cta-84"]
staffing = { day = 10, night = 5 }

[[cta]]
id = "cta-83"
name = "CTA 83"
departements = ["83"]
partners = ["cta-13", "cta-84"]
staffing = { day = 5, night = 2 }
mode = "picking"

[[cta]]
id = "cta-84"
name = "CTA 84"
departements = ["84"]
partners = ["cta-13", "cta-83"]
staffing = { day = 3, night = 2 }

[[rule_set]]
id = "national"

[[rule_set.rule]]
name = "crise"
when = { crisis = true }
announce = "crise"

[[rule_set.rule]]
name = "brouilleur"
when = { callers = ["+33999"] }
busy = "numéro bloqué"

[[rule_set.rule]]
name = "centre injoignable"
when = { failed = ["unreachable", "full"] }
route = "partners"

[[rule_set.rule]]
name = "entraide"
when = { failed = ["no-answer"] }
overflow = "partners"

[[rule_set.rule]]
name = "par défaut"
route = "home"
"#;

fn plan() -> Arc<Plan> {
    Arc::new(Plan::from_toml(PLAN, TERRITORY).expect("test plan is valid"))
}

const Z13: ZoneId = ZoneId(0);
const Z83: ZoneId = ZoneId(1);
const Z84: ZoneId = ZoneId(2);
const C13: CtaId = CtaId(0);
const C83: CtaId = CtaId(1);
const C84: CtaId = CtaId(2);

/// Drives a core and remembers every command, checking invariants after each event.
struct Harness {
    core: Core,
    now: u64,
    log: Vec<Command>,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(plan())
    }

    fn with(plan: Arc<Plan>) -> Harness {
        Harness {
            core: Core::new(plan),
            now: 1_700_000_000_000,
            log: Vec::new(),
        }
    }

    fn send(&mut self, event: Event) -> Vec<Command> {
        let out: Vec<Command> = self.core.handle(event, Instant(self.now)).collect();
        self.core.check_invariants();
        self.log.extend(out.iter().cloned());
        out
    }

    fn advance(&mut self, ms: u64) -> Vec<Command> {
        self.now += ms;
        self.send(Event::Tick)
    }

    fn offer(&mut self, call: u64, zone: ZoneId) -> Vec<Command> {
        self.offer_from(call, zone, "+33612345678")
    }

    fn offer_from(&mut self, call: u64, zone: ZoneId, caller: &str) -> Vec<Command> {
        self.send(Event::Offered(Offer {
            call: CallId(call),
            zone,
            service: Service::Fire,
            priority: PRIORITY_NORMAL,
            caller: Some(caller.into()),
            source: None,
        }))
    }

    fn login(&mut self, agent: u32, cta: CtaId, preference: u8) -> Vec<Command> {
        self.send(Event::AgentLogin {
            agent: AgentId(agent),
            cta,
            site: 0,
            dequeue_preference: preference,
        })
    }
}

fn rings(out: &[Command]) -> Vec<(u64, u32)> {
    out.iter()
        .filter_map(|c| match c {
            Command::Ring { call, agent } => Some((call.0, agent.0)),
            _ => None,
        })
        .collect()
}

fn ended(out: &[Command]) -> Vec<(u64, Outcome)> {
    out.iter()
        .filter_map(|c| match c {
            Command::Ended { call, outcome, .. } => Some((call.0, *outcome)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_call_is_offered_answered_bridged_and_completed() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    let out = h.offer(10, Z13);
    assert_eq!(out[0], Command::Answer { call: CallId(10) });
    assert_eq!(rings(&out), vec![(10, 1)]);
    let out = h.send(Event::AgentAnswered {
        agent: AgentId(1),
        call: CallId(10),
    });
    assert!(out.contains(&Command::Bridge {
        call: CallId(10),
        agent: AgentId(1)
    }));
    let out = h.send(Event::AgentHungUp {
        agent: AgentId(1),
        call: CallId(10),
    });
    assert!(out.contains(&Command::HangUp { call: CallId(10) }));
    assert_eq!(ended(&out), vec![(10, Outcome::Completed)]);
    assert_eq!(h.core.agent(AgentId(1)), AgentStatus::WrapUp);
    h.advance(10_000);
    assert_eq!(h.core.agent(AgentId(1)), AgentStatus::Available);
    assert_eq!(h.core.live_calls(), 0);
}

#[test]
fn a_waiting_caller_hears_the_announcement_and_is_answered_when_someone_logs_in() {
    let mut h = Harness::new();
    // Keep one call-taker logged in but paused so the queue is in standby, not unreachable.
    h.login(1, C13, 3);
    h.send(Event::AgentPause { agent: AgentId(1) });
    let out = h.offer(10, Z13);
    assert!(out.iter().any(|c| matches!(
        c,
        Command::Play {
            call: CallId(10),
            ..
        }
    )));
    assert!(rings(&out).is_empty());
    let out = h.login(2, C13, 3);
    assert_eq!(rings(&out), vec![(10, 2)]);
}

#[test]
fn a_caller_who_hangs_up_while_queued_is_abandoned_and_goes_to_the_call_back_list() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.send(Event::AgentPause { agent: AgentId(1) });
    h.offer(10, Z13);
    let out = h.send(Event::CallerHungUp { call: CallId(10) });
    assert_eq!(ended(&out), vec![(10, Outcome::Abandoned)]);
    assert!(out.contains(&Command::Callback {
        cta: C13,
        call: CallId(10),
        state: CallbackState::Pending
    }));
    assert_eq!(h.core.callbacks(C13).count(), 1);
    h.send(Event::AgentReady { agent: AgentId(1) });
    let result = |out: &[Command]| {
        out.iter().find_map(|c| match c {
            Command::CallbackResult { result, .. } => Some(*result),
            _ => None,
        })
    };
    // A call-taker who is not logged in, or a call with no entry, changes nothing.
    let out = h.send(Event::CallbackTaken {
        agent: AgentId(2),
        call: CallId(10),
    });
    assert_eq!(result(&out), Some(Err(CallbackRefusal::NotLoggedIn)));
    let out = h.send(Event::CallbackTaken {
        agent: AgentId(1),
        call: CallId(11),
    });
    assert_eq!(result(&out), Some(Err(CallbackRefusal::Unknown)));
    assert!(!out.iter().any(|c| matches!(c, Command::Callback { .. })));
    let out = h.send(Event::CallbackTaken {
        agent: AgentId(1),
        call: CallId(10),
    });
    assert_eq!(result(&out), Some(Ok(())));
    let (_, entry) = h.core.callbacks(C13).next().expect("entry");
    assert_eq!(entry.state, CallbackState::Taken(AgentId(1)));
    let out = h.send(Event::CallbackDone {
        agent: AgentId(1),
        call: CallId(10),
    });
    assert!(out.contains(&Command::Callback {
        cta: C13,
        call: CallId(10),
        state: CallbackState::Done(AgentId(1))
    }));
    assert_eq!(h.core.callbacks(C13).count(), 0);
    let out = h.send(Event::CallbackDone {
        agent: AgentId(1),
        call: CallId(10),
    });
    assert_eq!(result(&out), Some(Err(CallbackRefusal::Unknown)));
}

#[test]
fn ring_no_answer_requeues_the_call_and_pauses_the_call_taker() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.offer(10, Z13);
    h.advance(1000);
    h.login(2, C13, 3);
    let out = h.advance(20_000);
    assert!(out.contains(&Command::CancelRing {
        call: CallId(10),
        agent: AgentId(1)
    }));
    assert_eq!(rings(&out), vec![(10, 2)]);
    assert_eq!(h.core.agent(AgentId(1)), AgentStatus::Paused);
}

#[test]
fn the_longest_idle_call_taker_with_the_highest_preference_gets_the_call() {
    let mut h = Harness::new();
    h.login(1, C13, 2);
    h.advance(1000);
    h.login(2, C13, 2);
    h.advance(1000);
    h.login(3, C13, 5);
    let out = h.offer(10, Z13);
    assert_eq!(rings(&out), vec![(10, 3)], "preference 5 first");
    let out = h.offer(11, Z13);
    assert_eq!(rings(&out), vec![(11, 1)], "then the longest idle");
}

#[test]
fn only_one_call_taker_wins_a_pick() {
    let mut h = Harness::new();
    h.login(1, C83, 3);
    h.login(2, C83, 3);
    h.login(3, C84, 3);
    let out = h.offer(10, Z83);
    assert!(rings(&out).is_empty(), "picking mode: no ACD");
    let out = h.send(Event::Pick {
        agent: AgentId(3),
        call: CallId(10),
    });
    assert!(out.iter().any(|c| matches!(
        c,
        Command::PickResult {
            result: Err(PickRefusal::Forbidden),
            ..
        }
    )));
    let out = h.send(Event::Pick {
        agent: AgentId(1),
        call: CallId(10),
    });
    assert!(
        out.iter()
            .any(|c| matches!(c, Command::PickResult { result: Ok(()), .. }))
    );
    assert_eq!(rings(&out), vec![(10, 1)]);
    let out = h.send(Event::Pick {
        agent: AgentId(2),
        call: CallId(10),
    });
    assert!(out.iter().any(|c| matches!(
        c,
        Command::PickResult {
            result: Err(PickRefusal::AlreadyTaken),
            ..
        }
    )));
    let out = h.send(Event::Pick {
        agent: AgentId(2),
        call: CallId(99),
    });
    assert!(out.iter().any(|c| matches!(
        c,
        Command::PickResult {
            result: Err(PickRefusal::UnknownCall),
            ..
        }
    )));
}

#[test]
fn a_call_for_an_unstaffed_cta_goes_to_a_partner() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    let out = h.offer(10, Z84);
    assert!(out.contains(&Command::Trail {
        call: CallId(10),
        step: Step::RouteFailed(C84, FailReason::Unreachable)
    }));
    assert!(out.contains(&Command::Trail {
        call: CallId(10),
        step: Step::Overflowed { from: C84, to: C13 }
    }));
    assert_eq!(rings(&out), vec![(10, 1)]);
}

#[test]
fn a_call_waiting_too_long_overflows_to_a_partner_with_spare_call_takers() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.login(2, C84, 3);
    h.offer(10, Z13); // rings agent 1
    h.send(Event::AgentAnswered {
        agent: AgentId(1),
        call: CallId(10),
    });
    let out = h.offer(11, Z13);
    assert!(rings(&out).is_empty());
    // 84 has an idle call-taker (spare 1, keep_idle 0), 83 has nobody logged in.
    let out = h.advance(30_000);
    assert!(out.contains(&Command::Trail {
        call: CallId(11),
        step: Step::Overflowed { from: C13, to: C84 }
    }));
    assert_eq!(rings(&out), vec![(11, 2)]);
}

#[test]
fn no_partner_with_spare_call_takers_keeps_the_call_in_its_queue() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.offer(10, Z13);
    h.offer(11, Z13);
    h.advance(30_000);
    let info = h.core.call(CallId(11)).expect("still live");
    assert_eq!(info.cta, C13);
    assert!(info.mutual_aid);
    assert_eq!(
        h.core.next_deadline(),
        Some(Instant(h.now + 10_000)).min(h.core.next_deadline())
    );
}

#[test]
fn capacity_is_shared_with_isolation_between_zones() {
    let mut h = Harness::new();
    // Capacity 12, half reserved: 13 has 3, 83 has 1, 84 has 1 (at least 1), pool 7.
    let shares: Vec<u32> = h.core.plan().zones.iter().map(|z| z.guaranteed).collect();
    assert_eq!(shares, vec![3, 1, 1]);
    for call in 0..10 {
        let out = h.offer(call, Z13);
        assert_eq!(out[0], Command::Answer { call: CallId(call) });
    }
    let out = h.offer(10, Z13);
    assert_eq!(ended(&out), vec![(10, Outcome::Rejected)]);
    assert!(out.contains(&Command::Reject {
        call: CallId(10),
        reason: EndReason::NoCapacity
    }));
    // 83 and 84 still get their guaranteed share.
    assert_eq!(h.offer(20, Z83)[0], Command::Answer { call: CallId(20) });
    assert_eq!(h.offer(21, Z84)[0], Command::Answer { call: CallId(21) });
    assert_eq!(ended(&h.offer(22, Z84)), vec![(22, Outcome::Rejected)]);
}

#[test]
fn a_busy_rule_refuses_before_answering() {
    let mut h = Harness::new();
    let out = h.offer_from(10, Z13, "+33999000000");
    assert!(!out.iter().any(|c| matches!(c, Command::Answer { .. })));
    assert_eq!(ended(&out), vec![(10, Outcome::Rejected)]);
    assert_eq!(h.core.live_calls(), 0);
}

#[test]
fn crisis_mode_plays_the_menu_and_key_one_lowers_the_priority() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.send(Event::AgentPause { agent: AgentId(1) });
    h.send(Event::SetCrisis {
        zone: Z13,
        on: true,
    });
    let crise = h.core.plan().announcement_id("crise").expect("crise");
    let out = h.offer(10, Z13);
    assert!(out.contains(&Command::Play {
        call: CallId(10),
        announcement: crise
    }));
    h.offer(11, Z13);
    h.send(Event::Dtmf {
        call: CallId(10),
        digit: b'1',
    });
    assert!(h.core.call(CallId(10)).expect("live").crisis_related);
    let order: Vec<u64> = h.core.waiting(C13).map(|c| c.call.0).collect();
    assert_eq!(
        order,
        vec![11, 10],
        "a new incident goes before a call about the known one"
    );
}

#[test]
fn disabling_a_queue_moves_its_calls_to_partners() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.send(Event::AgentPause { agent: AgentId(1) });
    h.login(2, C84, 3);
    h.send(Event::AgentPause { agent: AgentId(2) });
    h.offer(10, Z13);
    h.send(Event::SetDisabled {
        cta: C13,
        disabled: true,
    });
    assert_eq!(h.core.call(CallId(10)).expect("live").cta, C84);
}

#[test]
fn the_last_call_taker_leaving_reroutes_waiting_calls() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.send(Event::AgentPause { agent: AgentId(1) });
    h.login(2, C84, 3);
    h.send(Event::AgentPause { agent: AgentId(2) });
    h.offer(10, Z13);
    h.send(Event::AgentLogout { agent: AgentId(1) });
    assert_eq!(h.core.call(CallId(10)).expect("live").cta, C84);
}

#[test]
fn time_never_goes_backwards() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.offer(10, Z13);
    let before = h.core.now();
    let _ = h.core.handle(Event::Tick, Instant(0)).count();
    assert_eq!(h.core.now(), before);
}

#[test]
fn the_same_events_give_the_same_commands() {
    let run = || {
        let mut h = Harness::new();
        h.login(1, C13, 3);
        h.login(2, C84, 1);
        for call in 0..8 {
            h.offer(call, ZoneId((call % 3) as u16));
            h.advance(7_000);
        }
        h.advance(60_000);
        h.log
    };
    assert_eq!(run(), run());
}

/// One random input for the property tests, over small id spaces so that they collide.
#[derive(Debug, Clone)]
enum Op {
    Offer(u8, u8),
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
    Stopped(u8),
    Dtmf(u8),
    Crisis(u8, bool),
    Disable(u8, bool),
    Advance(u32),
}

fn op() -> impl Strategy<Value = Op> {
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
        1 => (0u8..40).prop_map(Op::Stopped),
        1 => (0u8..40).prop_map(Op::Dtmf),
        1 => (0u8..3, any::<bool>()).prop_map(|(z, on)| Op::Crisis(z, on)),
        1 => (0u8..3, any::<bool>()).prop_map(|(c, d)| Op::Disable(c, d)),
        3 => (0u32..40_000).prop_map(Op::Advance),
    ]
}

fn event(op: &Op) -> Option<Event> {
    let call = |c: &u8| CallId(u64::from(*c));
    let agent = |a: &u8| AgentId(u32::from(*a));
    Some(match op {
        Op::Offer(c, z) => Event::Offered(Offer {
            call: call(c),
            zone: ZoneId(u16::from(*z)),
            service: Service::Fire,
            priority: PRIORITY_NORMAL,
            caller: None,
            source: None,
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
        Op::Pick(a, c) => Event::Pick {
            agent: agent(a),
            call: call(c),
        },
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
        Op::Transfer(a, c) => Event::Transfer {
            agent: agent(a),
            call: call(c),
            to: Service::Ambulance,
        },
        Op::HandBack(a, c) => Event::HandBack {
            agent: agent(a),
            call: call(c),
        },
        Op::Stopped(c) => Event::Stopped { call: call(c) },
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
        Op::Advance(_) => return None,
    })
}

/// Global checker over the command stream: every admitted call ends exactly once, a refused
/// call ends at once, none is bridged twice, no two call-takers hold one call, capacity holds.
#[derive(Default)]
struct Checker {
    live: HashSet<u64>,
    bridged: HashSet<u64>,
    holder: HashMap<u64, u32>,
    admitted: u64,
    ended: u64,
}

impl Checker {
    fn observe(&mut self, core: &Core, out: &[Command]) {
        let refused: HashSet<u64> = out
            .iter()
            .filter_map(|c| match c {
                Command::Reject { call, .. } => Some(call.0),
                _ => None,
            })
            .collect();
        for command in out {
            match command {
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
                Command::Bridge { call, agent } => {
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
        assert!(core.admission().total_in_use() <= core.admission().capacity());
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
        for op in &ops {
            if let Op::Advance(ms) = op {
                now += u64::from(*ms);
            }
            let event = event(op).unwrap_or(Event::Tick);
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
        while core.live_calls() > 0 {
            rounds += 1;
            prop_assert!(rounds < 2_000, "calls never drained: {} left", core.live_calls());
            now += 5_000;
            let mut pending: Vec<Event> = Vec::new();
            for cta in 0..3u16 {
                for info in core.waiting(CtaId(cta)).collect::<Vec<_>>() {
                    let pickers: Vec<AgentId> = (0..3u32).map(|s| AgentId(100 + u32::from(cta) * 10 + s)).collect();
                    for agent in pickers {
                        pending.push(Event::Pick { agent, call: info.call });
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
        prop_assert!(checker.live.is_empty());
        prop_assert_eq!(checker.admitted, checker.ended, "every admitted call ends exactly once");
    }
}

/// Three CTAs lending to each other as the shipped configuration does: reserves from load,
/// overflow on expected wait, a full or unreachable queue waiting for a lender.
const AID_PLAN: &str = r#"
[national]
capacity = 30
reserved_share = 0.5
rule_set = "national"
default_departement = "13"
expected_calls_per_year = 2_000_000
mean_handling_s = 60

[defaults]
ring_timeout_s = 20
wrap_up_s = 10
no_answer_s = 15
retry_s = 5
queue_max = 4
reserve_within_s = 15
reserve_share = 0.8
keep_idle = 1
mode = "acd"
crisis_announcement = "crise"

[[announcement]]
id = "crise"
text = "Si vous appelez pour l'incendie en cours, tapez 1."
menu = true

[[cta]]
id = "cta-13"
name = "CTA 13"
departements = ["13"]
staffing = { day = 3, night = 2 }
partners = ["cta-83"]
region = ["cta-84"]

[[cta]]
id = "cta-83"
name = "CTA 83"
departements = ["83"]
staffing = { day = 3, night = 2 }
partners = ["cta-13"]

[[cta]]
id = "cta-84"
name = "CTA 84"
departements = ["84"]
staffing = { day = 3, night = 2 }

[[rule_set]]
id = "national"

[[rule_set.rule]]
name = "crise"
when = { crisis = true }
announce = "crise"

[[rule_set.rule]]
name = "injoignable ou saturé"
when = { failed = ["unreachable", "full"] }
overflow = "partners"

[[rule_set.rule]]
name = "attente prévue"
when = { expected_wait_s = 15 }
overflow = "partners"

[[rule_set.rule]]
name = "attente"
when = { failed = ["no-answer"] }
overflow = "partners"

[[rule_set.rule]]
name = "par défaut"
route = "home"
"#;

/// The mutual-aid promises, checked after one event: a lender that lent kept its reserve, no
/// call waits past its threshold while a lender its tiers allow has a call-taker to spare, and
/// a call is refused only when its zone's share and the national pool are both used.
fn check_mutual_aid(core: &Core, event: &Event, out: &[Command]) {
    let plan = core.plan();
    for command in out {
        match command {
            Command::Trail {
                call,
                step: Step::Overflowed { to, .. },
            } => {
                let Some(info) = core.call(*call) else {
                    continue;
                };
                if info.home == *to {
                    continue;
                }
                // A lender losing call-takers in the same event (pause, logout, a ring that
                // failed) may end below its reserve for reasons that are not the loan.
                let lost = out.iter().any(|c| {
                    matches!(c, Command::AgentChanged { agent, status: AgentStatus::Paused | AgentStatus::Offline }
                        if core.agent_seat(*agent).is_none_or(|(cta, _, _)| cta == *to))
                });
                if lost || matches!(event, Event::Pick { .. }) {
                    continue;
                }
                let s = core.cta_status(*to);
                assert!(
                    s.logged_in - s.paused - s.lent >= s.reserve,
                    "lender {to:?} went below its reserve: {s:?}"
                );
            }
            Command::Reject {
                reason: EndReason::NoCapacity,
                ..
            } => {
                if let Event::Offered(offer) = event {
                    let zone = plan.zone(offer.zone);
                    assert_eq!(
                        core.admission().pool_free(),
                        0,
                        "refused with the pool free"
                    );
                    assert!(
                        core.admission().in_use(offer.zone) >= zone.guaranteed,
                        "refused within the zone's share"
                    );
                }
            }
            Command::Reject { reason, .. } => panic!("refused for {reason:?}"),
            _ => {}
        }
    }
    for (c, _) in plan.ctas.iter().enumerate() {
        let cta = CtaId(c as u16);
        for info in core.waiting(cta) {
            if !info.mutual_aid {
                continue;
            }
            for lender in &plan.cta(info.home).lenders {
                if *lender == cta {
                    continue;
                }
                let s = core.cta_status(*lender);
                assert_eq!(
                    s.lendable, 0,
                    "call {:?} waits past its threshold in {cta:?} while {lender:?} could lend: {s:?}",
                    info.call
                );
            }
        }
    }
}

proptest! {
    #[test]
    fn lenders_keep_their_reserve_and_no_call_waits_while_one_could_help(ops in prop::collection::vec(op(), 1..300)) {
        let plan = Arc::new(Plan::from_toml(AID_PLAN, TERRITORY).expect("aid plan is valid"));
        let mut core = Core::new(plan);
        let mut now = 1_700_000_000_000u64;
        let mut checker = Checker::default();
        for op in &ops {
            if let Op::Advance(ms) = op {
                now += u64::from(*ms);
            }
            let event = event(op).unwrap_or(Event::Tick);
            let out: Vec<Command> = core.handle(event.clone(), Instant(now)).collect();
            core.check_invariants();
            checker.observe(&core, &out);
            check_mutual_aid(&core, &event, &out);
        }
    }
}

#[test]
fn a_lent_call_handed_back_waits_at_the_head_of_its_home_queue() {
    let mut h = Harness::with(Arc::new(
        Plan::from_toml(AID_PLAN, TERRITORY).expect("valid"),
    ));
    h.login(1, C13, 3);
    for agent in 2..7 {
        h.login(agent, C84, 3);
    }
    // 13's only call-taker takes the first call; the second is lent to 84.
    h.offer(1, Z13);
    h.send(Event::AgentAnswered {
        agent: AgentId(1),
        call: CallId(1),
    });
    h.offer(2, Z13);
    let lent = h.core.call(CallId(2)).expect("live");
    let CallStatus::Ringing(agent) = lent.status else {
        panic!("not lent at once: {lent:?}");
    };
    assert_eq!(h.core.agent_seat(agent).map(|s| s.0), Some(C84));
    h.send(Event::AgentAnswered {
        agent,
        call: CallId(2),
    });
    h.offer(3, Z13);
    // 13's own call-taker cannot hand back its own call; 84's hands the lent one back.
    let out = h.send(Event::HandBack {
        agent: AgentId(1),
        call: CallId(1),
    });
    assert!(out.iter().any(|c| matches!(
        c,
        Command::HandBackResult {
            result: Err(HandBackRefusal::OwnCall),
            ..
        }
    )));
    let out = h.send(Event::HandBack {
        agent,
        call: CallId(2),
    });
    assert!(out.contains(&Command::HandBackResult {
        agent,
        call: CallId(2),
        result: Ok(())
    }));
    assert!(out.contains(&Command::Unbridge {
        call: CallId(2),
        agent
    }));
    let back = h.core.call(CallId(2)).expect("live");
    assert_eq!((back.cta, back.status), (C13, CallStatus::Queued));
    // Ahead of the call that came after it, and it stays home when 13 frees up.
    let first = h.core.waiting(C13).next().expect("waiting");
    assert_eq!(first.call, CallId(2));
    h.send(Event::AgentHungUp {
        agent: AgentId(1),
        call: CallId(1),
    });
    h.advance(10_000);
    assert_eq!(
        h.core.call(CallId(2)).map(|c| c.status),
        Some(CallStatus::Ringing(AgentId(1)))
    );
    h.core.check_invariants();
}

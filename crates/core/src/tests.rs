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

[[partner_service]]
service = "15"
name = "SAMU"
uri = "sip:15@127.0.0.1"

[[call_taker]]
login = "a0"
cta = "cta-13"

[[call_taker]]
login = "a1"
cta = "cta-83"

[[call_taker]]
login = "a2"
cta = "cta-84"

[[call_taker]]
login = "a3"
cta = "cta-13"

[[call_taker]]
login = "a4"
cta = "cta-83"

[[call_taker]]
login = "a5"
cta = "cta-84"

[[call_taker]]
login = "a6"
cta = "cta-13"

[[call_taker]]
login = "a7"
cta = "cta-83"
"#;

pub(crate) fn plan() -> Arc<Plan> {
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
    requests: u64,
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
            requests: 0,
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
            resource_priority: None,
            caller: Some(caller.into()),
            source: None,
            place: None,
            suspected: false,
            refused: None,
        }))
    }

    fn ask(&mut self, agent: u32, ask: Ask) -> Vec<Command> {
        self.requests += 1;
        self.send(Event::Request {
            id: RequestId(self.requests),
            agent: AgentId(agent),
            ask,
        })
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
        agent: AgentId(1),
        conversation: 1,
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
            Command::Reply { result, .. } => Some(*result),
            _ => None,
        })
    };
    // A call-taker who is not logged in, or a call with no entry, changes nothing.
    let out = h.ask(2, Ask::CallbackTaken(CallId(10)));
    assert_eq!(
        result(&out),
        Some(Err(Denied::Callback(CallbackRefusal::NotLoggedIn)))
    );
    let out = h.ask(1, Ask::CallbackTaken(CallId(11)));
    assert_eq!(
        result(&out),
        Some(Err(Denied::Callback(CallbackRefusal::Unknown)))
    );
    assert!(!out.iter().any(|c| matches!(c, Command::Callback { .. })));
    let out = h.ask(1, Ask::CallbackTaken(CallId(10)));
    assert_eq!(result(&out), Some(Ok(Granted::Done)));
    let (_, entry) = h.core.callbacks(C13).next().expect("entry");
    assert_eq!(entry.state, CallbackState::Taken(AgentId(1)));
    let out = h.ask(1, Ask::CallbackDone(CallId(10)));
    assert!(out.contains(&Command::Callback {
        cta: C13,
        call: CallId(10),
        state: CallbackState::Done(AgentId(1))
    }));
    assert_eq!(h.core.callbacks(C13).count(), 0);
    let out = h.ask(1, Ask::CallbackDone(CallId(10)));
    assert_eq!(
        result(&out),
        Some(Err(Denied::Callback(CallbackRefusal::Unknown)))
    );
}

#[test]
fn a_withdrawn_call_frees_its_call_taker_and_capacity_and_leaves_no_call_back() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.offer(10, Z13);
    h.offer(11, Z13);
    // Call 10 rings call-taker 1; its node, cut off, serves it alone.
    let out = h.send(Event::Withdrawn { call: CallId(10) });
    assert!(out.contains(&Command::CancelRing {
        call: CallId(10),
        agent: AgentId(1)
    }));
    assert!(out.contains(&Command::Withdrawn {
        call: CallId(10),
        cta: C13
    }));
    assert!(ended(&out).is_empty(), "no outcome here: {out:?}");
    assert_eq!(
        rings(&out),
        vec![(11, 1)],
        "the call-taker takes the next call"
    );
    // A queued call leaves its queue the same way.
    h.offer(12, Z13);
    let out = h.send(Event::Withdrawn { call: CallId(12) });
    assert!(ended(&out).is_empty());
    assert_eq!(h.core.waiting(C13).count(), 0);
    assert_eq!(h.core.callbacks(C13).count(), 0);
    assert_eq!(h.core.live_calls(), 1);
    assert_eq!(h.core.admission().total_in_use(), 1);
    // Withdrawn again, or unknown: nothing.
    assert!(h.send(Event::Withdrawn { call: CallId(12) }).is_empty());
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
    let out = h.ask(3, Ask::Pick(CallId(10)));
    assert!(out.iter().any(|c| matches!(
        c,
        Command::Reply {
            result: Err(Denied::Pick(PickRefusal::Forbidden)),
            ..
        }
    )));
    let out = h.ask(1, Ask::Pick(CallId(10)));
    assert!(out.iter().any(|c| matches!(
        c,
        Command::Reply {
            result: Ok(Granted::Done),
            ..
        }
    )));
    assert_eq!(rings(&out), vec![(10, 1)]);
    let out = h.ask(2, Ask::Pick(CallId(10)));
    assert!(out.iter().any(|c| matches!(
        c,
        Command::Reply {
            result: Err(Denied::Pick(PickRefusal::AlreadyTaken)),
            ..
        }
    )));
    let out = h.ask(2, Ask::Pick(CallId(99)));
    assert!(out.iter().any(|c| matches!(
        c,
        Command::Reply {
            result: Err(Denied::Pick(PickRefusal::UnknownCall)),
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
fn a_call_refused_by_a_busy_rule_in_crisis_mode_hears_nothing_and_was_never_admitted() {
    let mut h = Harness::new();
    h.send(Event::SetCrisis {
        zone: Z13,
        on: true,
    });
    let out = h.offer_from(10, Z13, "+33999000000");
    assert!(
        !out.iter().any(|c| matches!(
            c,
            Command::Answer { .. }
                | Command::Play { .. }
                | Command::Trail {
                    step: Step::Admitted,
                    ..
                }
        )),
        "{out:?}"
    );
    assert!(out.contains(&Command::Trail {
        call: CallId(10),
        step: Step::RuleMatched(1)
    }));
    assert_eq!(ended(&out), vec![(10, Outcome::Rejected)]);
}

#[test]
fn a_repeated_answer_of_a_call_taker_in_conversation_changes_nothing() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.offer(10, Z13);
    let answered = Event::AgentAnswered {
        agent: AgentId(1),
        call: CallId(10),
    };
    h.send(answered.clone());
    let out = h.send(answered);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        h.core.call(CallId(10)).map(|c| c.status),
        Some(CallStatus::Talking(AgentId(1)))
    );
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
fn event(op: &Op, id: u64, core: &Core) -> Option<Event> {
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
struct Checker {
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
    fn asked(&mut self, event: &Event) {
        if let Event::Request { id, .. } | Event::Located { id, .. } = event {
            assert!(
                self.open_requests.insert(id.0),
                "request id {} reused",
                id.0
            );
        }
    }

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
                if lost
                    || matches!(
                        event,
                        Event::Request {
                            ask: Ask::Pick(_),
                            ..
                        }
                    )
                {
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
                if let Event::Offered(offer) = event
                    && offer.suspected
                {
                    let admission = core.admission();
                    // Refused only when no capacity is free anywhere, suspects beyond their
                    // share counted.
                    assert!(
                        admission.pool_free() <= admission.suspected_beyond_share(),
                        "suspect refused with capacity free"
                    );
                } else if let Event::Offered(offer) = event {
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
            Command::Reject {
                reason: EndReason::NotCarried(_),
                ..
            } => {
                assert!(
                    matches!(event, Event::Offered(offer) if offer.refused.is_some()),
                    "refused as not carried though the shell carried it"
                );
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
        for (i, op) in ops.iter().enumerate() {
            if let Op::Advance(ms) = op {
                now += u64::from(*ms);
            }
            let event = event(op, i as u64, &core).unwrap_or(Event::Tick);
            checker.asked(&event);
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
    let out = h.ask(
        1,
        Ask::HandBack {
            call: CallId(1),
            summary: "".into(),
        },
    );
    assert!(out.iter().any(|c| matches!(
        c,
        Command::Reply {
            result: Err(Denied::HandBack(HandBackRefusal::OwnCall)),
            ..
        }
    )));
    let out = h.send(Event::Request {
        id: RequestId(77),
        agent,
        ask: Ask::HandBack {
            call: CallId(2),
            summary: "chute dans l'escalier".into(),
        },
    });
    assert!(out.contains(&Command::Reply {
        request: RequestId(77),
        result: Ok(Granted::HandedBack(C13))
    }));
    assert_eq!(
        h.core.call(CallId(2)).and_then(|c| c.summary).as_deref(),
        Some("chute dans l'escalier")
    );
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

// ----- requests: transfers, hang-up, state, AML positions, Resource-Priority -----

/// The replies in a batch of commands, with their request ids.
fn replies(out: &[Command]) -> Vec<(u64, Result<Granted, Denied>)> {
    out.iter()
        .filter_map(|c| match c {
            Command::Reply { request, result } => Some((request.0, *result)),
            _ => None,
        })
        .collect()
}

impl Harness {
    /// The id of the last request sent with [`Harness::ask`].
    fn last_request(&self) -> RequestId {
        RequestId(self.requests)
    }

    /// Offers a call, checks that it rings this call-taker, and has them answer it.
    fn talk(&mut self, agent: u32, call: u64, zone: ZoneId) {
        let out = self.offer(call, zone);
        assert_eq!(
            rings(&out),
            vec![(call, agent)],
            "call {call} rings {agent}"
        );
        let out = self.send(Event::AgentAnswered {
            agent: AgentId(agent),
            call: CallId(call),
        });
        assert!(out.contains(&Command::Bridge {
            call: CallId(call),
            agent: AgentId(agent),
            conversation: 1,
        }));
    }

    /// Has a call-taker ask to transfer their call to the SAMU, and checks the partner is rung.
    fn transfer_to_samu(&mut self, agent: u32, call: u64, summary: &str) -> RequestId {
        let out = self.ask(
            agent,
            Ask::Transfer {
                call: CallId(call),
                to: Service::Ambulance,
                summary: summary.into(),
            },
        );
        assert!(
            out.iter()
                .any(|c| matches!(c, Command::CallPartner { call: rung, to: Service::Ambulance, .. } if rung.0 == call)),
            "the SAMU is rung: {out:?}"
        );
        assert!(replies(&out).is_empty(), "the answer waits for the partner");
        self.last_request()
    }

    fn offer_suspected(&mut self, call: u64, zone: ZoneId) -> Vec<Command> {
        self.send(Event::Offered(Offer {
            call: CallId(call),
            zone,
            service: Service::Fire,
            resource_priority: None,
            caller: Some("+33699999999".into()),
            source: None,
            place: None,
            suspected: true,
            refused: None,
        }))
    }

    fn offer_with_priority(&mut self, call: u64, zone: ZoneId, level: Option<u8>) -> Vec<Command> {
        self.send(Event::Offered(Offer {
            call: CallId(call),
            zone,
            service: Service::Fire,
            resource_priority: level,
            caller: Some("+33612345678".into()),
            source: None,
            place: None,
            suspected: false,
            refused: None,
        }))
    }

    fn located(&mut self, id: u64, caller: &str, place: &Arc<Whereabouts>) -> Vec<Command> {
        self.send(Event::Located {
            id: RequestId(id),
            caller: caller.into(),
            place: Arc::clone(place),
        })
    }
}

fn aml(commune: &str) -> Arc<Whereabouts> {
    Arc::new(Whereabouts {
        departement: "13".into(),
        commune: Some(commune.into()),
        insee: None,
        point: Some((43.2965, 5.3698)),
        radius_m: Some(12.0),
        source: "aml".into(),
    })
}

#[test]
fn a_transfer_the_partner_answers_hands_the_caller_over_until_the_partner_hangs_up() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.talk(1, 10, Z13);
    let out = h.ask(
        1,
        Ask::Transfer {
            call: CallId(10),
            to: Service::Ambulance,
            summary: "douleur thoracique,\n   conscient".into(),
        },
    );
    let asked = h.last_request();
    assert_eq!(
        out,
        vec![
            Command::Trail {
                call: CallId(10),
                step: Step::TransferAsked {
                    to: Service::Ambulance,
                    by: AgentId(1),
                    summary: "douleur thoracique,\n   conscient".into(),
                },
            },
            Command::CallPartner {
                call: CallId(10),
                to: Service::Ambulance,
                subject: "douleur thoracique, conscient".into(),
            },
        ]
    );
    // The call-taker stays with the caller while the SAMU rings.
    let info = h.core.call(CallId(10)).expect("live");
    assert_eq!(info.transferring, Some(Service::Ambulance));
    assert_eq!(info.status, CallStatus::Talking(AgentId(1)));
    assert_eq!(h.core.agent(AgentId(1)), AgentStatus::Talking(CallId(10)));

    let out = h.send(Event::PartnerAnswered { call: CallId(10) });
    assert_eq!(
        out,
        vec![
            Command::HandOver {
                call: CallId(10),
                agent: AgentId(1),
            },
            Command::Trail {
                call: CallId(10),
                step: Step::Transferred {
                    to: Service::Ambulance,
                    by: AgentId(1),
                },
            },
            Command::Reply {
                request: asked,
                result: Ok(Granted::Transferred(Service::Ambulance)),
            },
            Command::Ended {
                call: CallId(10),
                outcome: Outcome::Transferred,
                reason: EndReason::TransferredTo(Service::Ambulance),
                cta: Some(C13),
            },
            Command::AgentChanged {
                agent: AgentId(1),
                status: AgentStatus::WrapUp,
            },
        ]
    );
    assert_eq!(h.core.live_calls(), 0);
    assert_eq!(h.core.agent(AgentId(1)), AgentStatus::WrapUp);
    assert_eq!(h.core.handed_over().collect::<Vec<_>>(), vec![CallId(10)]);

    // The call-taker's wrap-up ends; the caller is still with the SAMU.
    h.advance(10_000);
    assert_eq!(h.core.agent(AgentId(1)), AgentStatus::Available);
    assert_eq!(h.core.handed_over().collect::<Vec<_>>(), vec![CallId(10)]);

    let out = h.send(Event::PartnerHungUp { call: CallId(10) });
    assert_eq!(
        out,
        vec![
            Command::HangUp { call: CallId(10) },
            Command::DropPartner { call: CallId(10) },
        ]
    );
    assert_eq!(h.core.handed_over().next(), None);
    // The caller's BYE that follows changes nothing.
    assert_eq!(h.send(Event::CallerHungUp { call: CallId(10) }), vec![]);
    assert_eq!(ended(&h.log), vec![(10, Outcome::Transferred)]);
}

#[test]
fn a_caller_handed_over_who_hangs_up_releases_the_partner_leg() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.talk(1, 10, Z13);
    h.transfer_to_samu(1, 10, "chute");
    h.send(Event::PartnerAnswered { call: CallId(10) });
    let out = h.send(Event::CallerHungUp { call: CallId(10) });
    assert_eq!(out, vec![Command::DropPartner { call: CallId(10) }]);
    assert_eq!(h.core.handed_over().next(), None);
    assert_eq!(h.send(Event::PartnerHungUp { call: CallId(10) }), vec![]);
    assert_eq!(ended(&h.log), vec![(10, Outcome::Transferred)]);
}

#[test]
fn a_transfer_the_partner_refuses_leaves_the_call_taker_with_the_caller() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.talk(1, 10, Z13);
    let first = h.transfer_to_samu(1, 10, "malaise");
    let out = h.send(Event::PartnerFailed {
        call: CallId(10),
        status: 486,
    });
    assert_eq!(
        out,
        vec![
            Command::DropPartner { call: CallId(10) },
            Command::Trail {
                call: CallId(10),
                step: Step::TransferFailed {
                    to: Service::Ambulance,
                    status: 486,
                },
            },
            Command::Reply {
                request: first,
                result: Err(Denied::PartnerFailed(486)),
            },
        ]
    );
    let info = h.core.call(CallId(10)).expect("still live");
    assert_eq!(info.status, CallStatus::Talking(AgentId(1)));
    assert_eq!(info.transferring, None);
    assert_eq!(h.core.agent(AgentId(1)), AgentStatus::Talking(CallId(10)));
    assert!(ended(&h.log).is_empty());
    assert_eq!(h.core.handed_over().next(), None);

    // The call-taker may try again, and this time the SAMU answers.
    let second = h.transfer_to_samu(1, 10, "malaise, second essai");
    assert_ne!(first, second);
    let out = h.send(Event::PartnerAnswered { call: CallId(10) });
    assert_eq!(
        replies(&out),
        vec![(second.0, Ok(Granted::Transferred(Service::Ambulance)))]
    );
    assert_eq!(ended(&h.log), vec![(10, Outcome::Transferred)]);
}

#[test]
fn a_caller_hanging_up_while_the_partner_rings_cancels_the_transfer() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.talk(1, 10, Z13);
    let asked = h.transfer_to_samu(1, 10, "feu de poubelle");
    let out = h.send(Event::CallerHungUp { call: CallId(10) });
    assert_eq!(
        out,
        vec![
            Command::Ended {
                call: CallId(10),
                outcome: Outcome::Completed,
                reason: EndReason::CallerHungUp,
                cta: Some(C13),
            },
            Command::DropPartner { call: CallId(10) },
            Command::Reply {
                request: asked,
                result: Err(Denied::CallEnded),
            },
            Command::AgentChanged {
                agent: AgentId(1),
                status: AgentStatus::WrapUp,
            },
        ]
    );
    assert_eq!(h.core.live_calls(), 0);
    // The partner answering just too late is only released: no hand-over, no second reply.
    let out = h.send(Event::PartnerAnswered { call: CallId(10) });
    assert_eq!(out, vec![Command::DropPartner { call: CallId(10) }]);
    assert_eq!(h.core.handed_over().next(), None);
    assert_eq!(ended(&h.log), vec![(10, Outcome::Completed)]);
    assert_eq!(replies(&h.log), vec![(asked.0, Err(Denied::CallEnded))]);
}

#[test]
fn a_call_taker_hanging_up_while_the_partner_rings_cancels_the_transfer() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.talk(1, 10, Z13);
    let asked = h.transfer_to_samu(1, 10, "fuite de gaz");
    let out = h.send(Event::AgentHungUp {
        agent: AgentId(1),
        call: CallId(10),
    });
    assert_eq!(
        out,
        vec![
            Command::HangUp { call: CallId(10) },
            Command::Ended {
                call: CallId(10),
                outcome: Outcome::Completed,
                reason: EndReason::AgentHungUp,
                cta: Some(C13),
            },
            Command::DropPartner { call: CallId(10) },
            Command::Reply {
                request: asked,
                result: Err(Denied::CallEnded),
            },
            Command::AgentChanged {
                agent: AgentId(1),
                status: AgentStatus::WrapUp,
            },
        ]
    );
    assert_eq!(
        h.send(Event::PartnerFailed {
            call: CallId(10),
            status: 487
        }),
        vec![]
    );
    assert_eq!(ended(&h.log), vec![(10, Outcome::Completed)]);
}

#[test]
fn transfers_are_refused_without_a_partner_to_others_and_while_one_is_pending() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.login(2, C13, 3);
    h.talk(1, 10, Z13);
    // No partner service for 17 in the plan.
    let out = h.ask(
        1,
        Ask::Transfer {
            call: CallId(10),
            to: Service::Police,
            summary: "cambriolage".into(),
        },
    );
    assert_eq!(
        out,
        vec![Command::Reply {
            request: h.last_request(),
            result: Err(Denied::NoPartner(Service::Police)),
        }]
    );
    // Someone not talking with the caller, and a call that does not exist.
    for (agent, call) in [(2, 10), (1, 99)] {
        let out = h.ask(
            agent,
            Ask::Transfer {
                call: CallId(call),
                to: Service::Ambulance,
                summary: "".into(),
            },
        );
        assert_eq!(
            out,
            vec![Command::Reply {
                request: h.last_request(),
                result: Err(Denied::NotTheirCall),
            }],
            "agent {agent}, call {call}"
        );
    }
    assert_eq!(h.core.call(CallId(10)).and_then(|c| c.transferring), None);
    // A second transfer while the SAMU rings.
    let first = h.transfer_to_samu(1, 10, "brûlure");
    let out = h.ask(
        1,
        Ask::Transfer {
            call: CallId(10),
            to: Service::Ambulance,
            summary: "brûlure".into(),
        },
    );
    assert_eq!(
        out,
        vec![Command::Reply {
            request: h.last_request(),
            result: Err(Denied::TransferPending),
        }]
    );
    // The first one is still under way and is the one answered.
    let out = h.send(Event::PartnerAnswered { call: CallId(10) });
    assert_eq!(
        replies(&out),
        vec![(first.0, Ok(Granted::Transferred(Service::Ambulance)))]
    );
}

#[test]
fn a_lent_call_cannot_be_handed_back_while_its_transfer_is_pending() {
    let mut h = Harness::new();
    // Nobody in 84: its call goes to 13's call-taker, who is lent.
    h.login(1, C13, 3);
    h.talk(1, 10, Z84);
    assert_eq!(h.core.call(CallId(10)).map(|c| c.home), Some(C84));
    // 84 is staffed again, so its queue could take the call back.
    h.login(2, C84, 3);
    let asked = h.transfer_to_samu(1, 10, "accident");
    let out = h.ask(
        1,
        Ask::HandBack {
            call: CallId(10),
            summary: "accident de scooter".into(),
        },
    );
    assert_eq!(
        out,
        vec![Command::Reply {
            request: h.last_request(),
            result: Err(Denied::TransferPending),
        }]
    );
    assert_eq!(
        h.core.call(CallId(10)).map(|c| c.status),
        Some(CallStatus::Talking(AgentId(1)))
    );
    // Once the SAMU refuses, the hand-back goes through, and 84's call-taker gets the call.
    let out = h.send(Event::PartnerFailed {
        call: CallId(10),
        status: 0,
    });
    assert_eq!(
        replies(&out),
        vec![(asked.0, Err(Denied::PartnerFailed(0)))]
    );
    let out = h.ask(
        1,
        Ask::HandBack {
            call: CallId(10),
            summary: "accident de scooter".into(),
        },
    );
    assert_eq!(
        replies(&out),
        vec![(h.last_request().0, Ok(Granted::HandedBack(C84)))]
    );
    assert_eq!(rings(&out), vec![(10, 2)]);
    let out = h.send(Event::AgentAnswered {
        agent: AgentId(2),
        call: CallId(10),
    });
    assert!(out.contains(&Command::Bridge {
        call: CallId(10),
        agent: AgentId(2),
        conversation: 2,
    }));
}

#[test]
fn asking_to_be_available_logs_an_offline_call_taker_in_at_their_plan_seat() {
    let mut h = Harness::new();
    let seat = h.core.plan().call_takers[0].clone();
    assert_eq!(seat.cta, C13);
    assert_eq!(h.core.agent_seat(AgentId(0)), None);
    let out = h.ask(0, Ask::State(WantedState::Available));
    assert_eq!(
        replies(&out),
        vec![(
            h.last_request().0,
            Ok(Granted::Status(AgentStatus::Available))
        )]
    );
    assert_eq!(
        h.core.agent_seat(AgentId(0)),
        Some((C13, seat.site, seat.dequeue_preference))
    );
    assert_eq!(h.core.agent(AgentId(0)), AgentStatus::Available);
    assert_eq!(h.core.cta_status(C13).available, 1);
    // a1's seat is in 83.
    h.ask(1, Ask::State(WantedState::Available));
    assert_eq!(h.core.agent_seat(AgentId(1)).map(|s| s.0), Some(C83));
    // And the seat takes calls.
    assert_eq!(rings(&h.offer(10, Z13)), vec![(10, 0)]);
}

#[test]
fn asking_to_pause_logs_an_offline_call_taker_in_paused() {
    let mut h = Harness::new();
    let out = h.ask(3, Ask::State(WantedState::Paused));
    assert_eq!(
        replies(&out),
        vec![(h.last_request().0, Ok(Granted::Status(AgentStatus::Paused)))]
    );
    assert_eq!(h.core.agent_seat(AgentId(3)).map(|s| s.0), Some(C13));
    assert_eq!(h.core.agent(AgentId(3)), AgentStatus::Paused);
    let status = h.core.cta_status(C13);
    assert_eq!(
        (status.logged_in, status.paused, status.available),
        (1, 1, 0)
    );
    // A paused call-taker gets no call; asking to be available gives them the waiting one.
    assert!(rings(&h.offer(10, Z13)).is_empty());
    let out = h.ask(3, Ask::State(WantedState::Available));
    assert_eq!(rings(&out), vec![(10, 3)]);
    assert_eq!(
        replies(&out),
        vec![(
            h.last_request().0,
            Ok(Granted::Status(AgentStatus::Ringing(CallId(10))))
        )]
    );
}

#[test]
fn asking_to_log_out_during_a_call_takes_effect_when_the_call_ends() {
    let mut h = Harness::new();
    h.ask(0, Ask::State(WantedState::Available));
    h.talk(0, 10, Z13);
    let out = h.ask(0, Ask::State(WantedState::Offline));
    assert_eq!(
        out,
        vec![Command::Reply {
            request: h.last_request(),
            result: Ok(Granted::Status(AgentStatus::Talking(CallId(10)))),
        }]
    );
    assert_eq!(h.core.agent(AgentId(0)), AgentStatus::Talking(CallId(10)));
    let out = h.send(Event::AgentHungUp {
        agent: AgentId(0),
        call: CallId(10),
    });
    assert_eq!(ended(&out), vec![(10, Outcome::Completed)]);
    assert!(out.contains(&Command::AgentChanged {
        agent: AgentId(0),
        status: AgentStatus::Offline,
    }));
    assert_eq!(h.core.agent(AgentId(0)), AgentStatus::Offline);
    assert_eq!(h.core.agent_seat(AgentId(0)), None);
    assert_eq!(h.core.cta_status(C13).logged_in, 0);
}

#[test]
fn a_state_request_from_a_call_taker_not_in_the_plan_is_refused() {
    let mut h = Harness::new();
    let beyond = u32::try_from(h.core.plan().call_takers.len()).expect("small plan");
    assert_eq!(beyond, 8);
    for wanted in [
        WantedState::Available,
        WantedState::Paused,
        WantedState::Offline,
    ] {
        let out = h.ask(beyond, Ask::State(wanted));
        assert_eq!(
            out,
            vec![Command::Reply {
                request: h.last_request(),
                result: Err(Denied::UnknownAgent),
            }],
            "{wanted:?}"
        );
    }
    assert_eq!(h.core.agent_seat(AgentId(beyond)), None);
    assert_eq!(h.core.cta_status(C13).logged_in, 0);
}

#[test]
fn only_the_call_taker_talking_with_the_caller_may_hang_up() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.login(2, C13, 3);
    h.talk(1, 10, Z13);
    // 2's phone rings with 11: ringing is not talking.
    assert_eq!(rings(&h.offer(11, Z13)), vec![(11, 2)]);
    for (agent, call) in [(2, 10), (2, 11), (1, 11), (1, 99)] {
        let out = h.ask(agent, Ask::HangUp(CallId(call)));
        assert_eq!(
            out,
            vec![Command::Reply {
                request: h.last_request(),
                result: Err(Denied::NotTheirCall),
            }],
            "agent {agent}, call {call}"
        );
    }
    assert_eq!(h.core.live_calls(), 2);
    assert!(ended(&h.log).is_empty());
    let out = h.ask(1, Ask::HangUp(CallId(10)));
    assert_eq!(
        out,
        vec![
            Command::Reply {
                request: h.last_request(),
                result: Ok(Granted::Done),
            },
            Command::HangUp { call: CallId(10) },
            Command::Ended {
                call: CallId(10),
                outcome: Outcome::Completed,
                reason: EndReason::AgentHungUp,
                cta: Some(C13),
            },
            Command::AgentChanged {
                agent: AgentId(1),
                status: AgentStatus::WrapUp,
            },
        ]
    );
    assert_eq!(h.core.call(CallId(10)), None);
    assert_eq!(
        h.core.call(CallId(11)).map(|c| c.status),
        Some(CallStatus::Ringing(AgentId(2)))
    );
}

#[test]
fn a_handset_position_goes_to_the_live_call_from_that_number_in_any_written_form() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.send(Event::AgentPause { agent: AgentId(1) });
    h.offer_from(10, Z13, "0612345678");
    h.offer_from(20, Z13, "0699999999");
    let marseille = aml("Marseille");
    let out = h.located(500, "+33 6 12 34 56 78", &marseille);
    assert_eq!(
        out,
        vec![
            Command::Trail {
                call: CallId(10),
                step: Step::Located,
            },
            Command::Reply {
                request: RequestId(500),
                result: Ok(Granted::Located(CallId(10))),
            },
        ]
    );
    assert_eq!(
        h.core.call(CallId(10)).and_then(|c| c.place),
        Some(marseille)
    );
    assert_eq!(h.core.call(CallId(20)).and_then(|c| c.place), None);
    // The routing is unchanged.
    assert_eq!(
        h.core.call(CallId(10)).map(|c| (c.cta, c.status)),
        Some((C13, CallStatus::Queued))
    );
}

#[test]
fn a_handset_position_goes_to_the_latest_of_two_live_calls_from_the_same_number() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.send(Event::AgentPause { agent: AgentId(1) });
    h.offer_from(10, Z13, "+33612345678");
    h.advance(2_000);
    h.offer_from(11, Z13, "06 12 34 56 78");
    let first = aml("Aubagne");
    let out = h.located(500, "0612345678", &first);
    assert_eq!(replies(&out), vec![(500, Ok(Granted::Located(CallId(11))))]);
    assert_eq!(h.core.call(CallId(11)).and_then(|c| c.place), Some(first));
    assert_eq!(h.core.call(CallId(10)).and_then(|c| c.place), None);
    // Once the later call ends, a new fix goes to the one still live.
    h.send(Event::CallerHungUp { call: CallId(11) });
    let second = aml("La Ciotat");
    let out = h.located(501, "33612345678", &second);
    assert_eq!(replies(&out), vec![(501, Ok(Granted::Located(CallId(10))))]);
    assert_eq!(h.core.call(CallId(10)).and_then(|c| c.place), Some(second));
}

#[test]
fn a_handset_position_for_no_live_call_is_answered_no_live_call() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.send(Event::AgentPause { agent: AgentId(1) });
    h.offer_from(10, Z13, "0612345678");
    let out = h.located(500, "+33 6 00 00 00 00", &aml("Cassis"));
    assert_eq!(
        out,
        vec![Command::Reply {
            request: RequestId(500),
            result: Err(Denied::NoLiveCall),
        }]
    );
    assert_eq!(h.core.call(CallId(10)).and_then(|c| c.place), None);
    // Nor for a call that has ended.
    h.send(Event::CallerHungUp { call: CallId(10) });
    let out = h.located(501, "0612345678", &aml("Cassis"));
    assert_eq!(replies(&out), vec![(501, Err(Denied::NoLiveCall))]);
}

#[test]
fn a_resource_priority_call_is_answered_before_an_ordinary_one_that_came_first() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.talk(1, 10, Z13);
    assert!(rings(&h.offer_with_priority(11, Z13, None)).is_empty());
    h.advance(1_000);
    assert!(rings(&h.offer_with_priority(12, Z13, Some(0))).is_empty());
    h.advance(1_000);
    // Level 1 also counts as urgent; level 2 and beyond are ordinary.
    assert!(rings(&h.offer_with_priority(13, Z13, Some(1))).is_empty());
    assert!(rings(&h.offer_with_priority(14, Z13, Some(2))).is_empty());
    let priority = |call| h.core.call(CallId(call)).map(|c| c.priority);
    assert_eq!(priority(11), Some(PRIORITY_NORMAL));
    assert_eq!(priority(12), Some(PRIORITY_NORMAL + 1));
    assert_eq!(priority(13), Some(PRIORITY_NORMAL + 1));
    assert_eq!(priority(14), Some(PRIORITY_NORMAL));
    let order: Vec<u64> = h.core.waiting(C13).map(|c| c.call.0).collect();
    assert_eq!(order, vec![12, 13, 11, 14]);
    // The call-taker frees up after the wrap-up: the urgent call that came second rings first.
    h.send(Event::AgentHungUp {
        agent: AgentId(1),
        call: CallId(10),
    });
    let out = h.advance(10_000);
    assert_eq!(rings(&out), vec![(12, 1)]);
}

#[test]
fn a_partner_hanging_up_before_answering_fails_the_transfer_with_status_zero() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.talk(1, 10, Z13);
    let asked = h.transfer_to_samu(1, 10, "noyade");
    let out = h.send(Event::PartnerHungUp { call: CallId(10) });
    assert_eq!(
        out,
        vec![
            Command::DropPartner { call: CallId(10) },
            Command::Trail {
                call: CallId(10),
                step: Step::TransferFailed {
                    to: Service::Ambulance,
                    status: 0,
                },
            },
            Command::Reply {
                request: asked,
                result: Err(Denied::PartnerFailed(0)),
            },
        ]
    );
    assert_eq!(h.core.agent(AgentId(1)), AgentStatus::Talking(CallId(10)));
}

#[test]
fn asking_to_be_available_during_a_call_takes_back_an_earlier_logout_or_pause() {
    for earlier in [WantedState::Offline, WantedState::Paused] {
        let mut h = Harness::new();
        h.ask(0, Ask::State(WantedState::Available));
        h.talk(0, 10, Z13);
        h.ask(0, Ask::State(earlier));
        h.ask(0, Ask::State(WantedState::Available));
        h.send(Event::AgentHungUp {
            agent: AgentId(0),
            call: CallId(10),
        });
        assert_eq!(h.core.agent(AgentId(0)), AgentStatus::WrapUp, "{earlier:?}");
    }
}

#[test]
fn a_handset_position_matches_a_number_written_with_the_international_prefix() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.send(Event::AgentPause { agent: AgentId(1) });
    h.offer_from(10, Z13, "0612345678");
    let out = h.located(500, "0033 6 12 34 56 78", &aml("Arles"));
    assert_eq!(replies(&out), vec![(500, Ok(Granted::Located(CallId(10))))]);
}

#[test]
fn logging_in_paused_does_not_ring_the_call_taker_with_a_waiting_call() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.send(Event::AgentPause { agent: AgentId(1) });
    h.offer(10, Z13);
    let out = h.ask(3, Ask::State(WantedState::Paused));
    assert_eq!(rings(&out), vec![]);
    assert_eq!(
        replies(&out),
        vec![(h.last_request().0, Ok(Granted::Status(AgentStatus::Paused)))]
    );
    assert_eq!(h.core.agent(AgentId(3)), AgentStatus::Paused);
}

#[test]
fn a_late_call_back_home_in_a_paused_room_is_taken_by_a_lender_that_frees_up() {
    // Found by `lenders_keep_their_reserve_and_no_call_waits_while_one_could_help` (one case
    // in a few thousand): [Login(0, 2, 5), Login(7, 0, 1), Login(1, 2, 1), Pause(7),
    // Login(2, 2, 1), Offer(0, 2), Offer(1, 0), Advance(20000), Login(1, 2, 1), Login(0, 2, 1)].
    let mut h = Harness::with(Arc::new(
        Plan::from_toml(AID_PLAN, TERRITORY).expect("valid"),
    ));
    h.login(0, C84, 5);
    h.login(7, C13, 1);
    h.login(1, C84, 1);
    h.send(Event::AgentPause { agent: AgentId(7) });
    h.login(2, C84, 1);
    assert_eq!(rings(&h.offer(0, Z84)), vec![(0, 0)]);
    // 13's only call-taker is paused: its call is lent to 84.
    assert_eq!(rings(&h.offer(1, Z13)), vec![(1, 1)]);
    // Both rings time out: 84's call goes to its third call-taker, 13's call goes home (its
    // other partner, 83, has nobody), where everyone is paused.
    let out = h.advance(20_000);
    assert_eq!(rings(&out), vec![(0, 2)]);
    let late = h.core.call(CallId(1)).expect("live");
    assert_eq!(
        (late.cta, late.status, late.mutual_aid),
        (C13, CallStatus::Queued, true)
    );
    // 84's two call-takers come back: beyond its reserve, one could take 13's call.
    h.login(1, C84, 1);
    h.login(0, C84, 1);
    let now = h.core.call(CallId(1)).map(|c| (c.cta, c.status));
    assert!(
        matches!(now, Some((C84, CallStatus::Ringing(_)))),
        "13's late call still waits at home ({now:?}) while 84 could lend {}",
        h.core.lendable(C84)
    );
    assert_eq!(h.core.idle_lenders_while_late(), vec![]);
}

/// The test plan with `from` replaced by `to`, once.
fn variant(from: &str, to: &str) -> Arc<Plan> {
    Arc::new(Plan::from_toml(&PLAN.replacen(from, to, 1), TERRITORY).expect("valid"))
}

/// The test plan with CTA 13 lending from nobody (no partner, no national aid).
fn plan_without_aid_for_13() -> Arc<Plan> {
    variant(
        r#"partners = ["cta-83", "cta-84"]"#,
        "partners = []\nnational_aid = false",
    )
}

#[test]
fn a_new_plan_taken_live_lets_a_partner_answer_a_call_already_waiting() {
    let mut h = Harness::with(plan_without_aid_for_13());
    h.login(1, C83, 3);
    h.offer(10, Z13);
    // Nobody in CTA 13 and nobody may help it: the call waits, whatever the time.
    let waited = h.advance(120_000);
    assert!(rings(&waited).is_empty(), "{waited:?}");
    assert_eq!(h.core.agent(AgentId(1)), AgentStatus::Available);
    // The supervisor's new plan gives CTA 13 its partners back: at the call's next
    // evaluation (within `retry_s`) it goes to the queue of CTA 83, whose call-takers pick,
    // with nothing restarted.
    let now = Instant(h.now);
    let mut out: Vec<Command> = h
        .core
        .change_plan(plan(), now)
        .expect("same shape")
        .collect();
    h.core.check_invariants();
    out.extend(h.advance(10_000));
    assert!(
        out.contains(&Command::Trail {
            call: CallId(10),
            step: Step::Overflowed { from: C13, to: C83 }
        }),
        "{out:?}"
    );
    let info = h.core.call(CallId(10)).expect("live");
    assert_eq!((info.cta, info.status), (C83, CallStatus::Queued));
    h.ask(1, Ask::Pick(CallId(10)));
    assert_eq!(
        h.core.call(CallId(10)).map(|c| c.status),
        Some(CallStatus::Ringing(AgentId(1)))
    );
}

#[test]
fn a_new_plan_of_another_shape_or_below_the_live_calls_is_refused_and_changes_nothing() {
    let mut h = Harness::new();
    for call in 0..4 {
        h.offer(call, Z13);
    }
    let now = Instant(h.now);
    let fewer_accounts = variant("[[call_taker]]\nlogin = \"a7\"\ncta = \"cta-83\"\n", "");
    let refused = h.core.change_plan(fewer_accounts, now).err();
    assert_eq!(
        refused.as_deref(),
        Some("the accounts changed: that needs a restart")
    );
    let small = variant("capacity = 12", "capacity = 3");
    let refused = h.core.change_plan(small, now).err();
    assert_eq!(
        refused.as_deref(),
        Some("a capacity of 3 is below the 4 calls admitted now")
    );
    assert_eq!(h.core.admission().capacity(), 12);
    assert_eq!(h.core.live_calls(), 4);
    h.core.check_invariants();
}

proptest! {
    /// A core restored from a snapshot (through its bytes) gives the same commands as the
    /// core it was taken from, for every event after it: a cluster node may start from one.
    #[test]
    fn a_core_restored_from_a_snapshot_goes_on_exactly_as_the_original(
        ops in prop::collection::vec(op(), 1..200),
        at in 0usize..200,
    ) {
        let mut original = Core::new(plan());
        let mut now = 1_700_000_000_000u64;
        let at = at.min(ops.len());
        let mut restored: Option<Core> = None;
        for (i, op) in ops.iter().enumerate() {
            if i == at {
                let bytes = postcard::to_allocvec(&original.snapshot()).expect("encodes");
                let snapshot: Snapshot = postcard::from_bytes(&bytes).expect("decodes");
                restored = Some(Core::restore(plan(), snapshot).expect("fits"));
            }
            if let Op::Advance(ms) = op {
                now += u64::from(*ms);
            }
            let event = event(op, i as u64, &original).unwrap_or(Event::Tick);
            let expected: Vec<Command> = original.handle(event.clone(), Instant(now)).collect();
            if let Some(restored) = &mut restored {
                let got: Vec<Command> = restored.handle(event, Instant(now)).collect();
                restored.check_invariants();
                prop_assert_eq!(got, expected);
            }
        }
        if let Some(restored) = &restored {
            prop_assert_eq!(restored.live_calls(), original.live_calls());
            prop_assert_eq!(restored.next_deadline(), original.next_deadline());
        }
    }
}

#[test]
fn a_suspect_waits_behind_real_callers_leaves_a_call_taker_free_and_keeps_to_its_capacity() {
    let mut h = Harness::new();
    assert_eq!(h.core.plan().suspected_capacity, 1, "a tenth of 12");
    h.login(1, C13, 3);
    h.login(2, C13, 3);
    // With two call-takers free, a suspect is answered like anyone (a real caller may be one).
    let out = h.offer_suspected(10, Z13);
    assert_eq!(rings(&out).len(), 1, "{out:?}");
    let agent = rings(&out)[0].1;
    h.send(Event::AgentAnswered {
        agent: AgentId(agent),
        call: CallId(10),
    });
    h.send(Event::CallerHungUp { call: CallId(10) });
    h.advance(60_000);
    // The one free longest takes the next real caller; the other is the last one free.
    let other = 3 - agent;
    h.talk(other, 11, Z13);
    // The last call-taker free is not rung for a suspect: it waits, answered by an announcement.
    let out = h.offer_suspected(12, Z13);
    assert!(rings(&out).is_empty(), "{out:?}");
    assert!(
        out.contains(&Command::Answer { call: CallId(12) }),
        "{out:?}"
    );
    // The suspects' share is taken: the next suspect waits beyond it, on capacity nobody uses,
    // rather than being refused (a real caller may be among them).
    let out = h.offer_suspected(13, Z13);
    assert!(rings(&out).is_empty(), "{out:?}");
    assert!(
        out.contains(&Command::Answer { call: CallId(13) }),
        "{out:?}"
    );
    assert_eq!(h.core.admission().suspected_beyond_share(), 1);
    // A real caller goes ahead of the waiting suspects, to the call-taker kept free.
    let out = h.offer(14, Z13);
    assert_eq!(rings(&out), vec![(14, agent)]);
    // However long the suspect waits, it is never offered to another CTA.
    let out = h.advance(600_000);
    assert!(rings(&out).is_empty(), "{out:?}");
    let info = h.core.call(CallId(12)).expect("still waiting");
    assert!(info.suspected);
    assert_eq!(info.cta, C13);
    assert!(!info.mutual_aid);
}

#[test]
fn a_suspect_heard_speaking_or_pressing_a_key_takes_its_place_among_the_real_callers() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.talk(1, 10, Z13);
    h.offer_suspected(11, Z13);
    h.offer(12, Z13);
    h.offer_suspected(13, Z13);
    // Call 11 spoke during the announcement: it goes before call 12, which came after it.
    let out = h.send(Event::Heard { call: CallId(11) });
    assert!(!h.core.call(CallId(11)).expect("waits").suspected);
    assert!(
        out.contains(&Command::Trail {
            call: CallId(11),
            step: Step::Heard
        }),
        "{out:?}"
    );
    // Call 13 pressed a key: it leaves the suspects too, behind the others by arrival.
    h.send(Event::Dtmf {
        call: CallId(13),
        digit: b'5',
    });
    assert!(!h.core.call(CallId(13)).expect("waits").suspected);
    h.send(Event::AgentHungUp {
        agent: AgentId(1),
        call: CallId(10),
    });
    let out = h.advance(60_000);
    assert_eq!(rings(&out), vec![(11, 1)], "{out:?}");
}

#[test]
fn a_waiting_call_suspected_later_moves_behind_the_others_and_keeps_its_capacity() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.talk(1, 10, Z13);
    h.offer(11, Z13);
    h.offer(12, Z13);
    let in_use = h.core.admission().in_use(Z13);
    // Call 11 came from a source seen flooding afterwards: call 12 now goes first.
    h.send(Event::Suspected { call: CallId(11) });
    assert!(h.core.call(CallId(11)).expect("waits").suspected);
    assert_eq!(
        h.core.admission().in_use(Z13),
        in_use,
        "its capacity unchanged"
    );
    h.send(Event::AgentHungUp {
        agent: AgentId(1),
        call: CallId(10),
    });
    let out = h.advance(60_000);
    assert_eq!(rings(&out), vec![(12, 1)], "{out:?}");
    // A call with a call-taker already is left alone.
    h.send(Event::Suspected { call: CallId(12) });
    assert!(!h.core.call(CallId(12)).expect("ringing").suspected);
}

#[test]
fn a_call_the_shell_cannot_carry_is_refused_on_record_and_called_back() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    let out = h.send(Event::Offered(Offer {
        call: CallId(10),
        zone: Z13,
        service: Service::Fire,
        resource_priority: None,
        caller: Some("0612345678".into()),
        source: None,
        place: None,
        suspected: false,
        refused: Some(NotCarried::NoCommonCodec),
    }));
    let reason = EndReason::NotCarried(NotCarried::NoCommonCodec);
    assert!(rings(&out).is_empty(), "{out:?}");
    assert!(
        out.contains(&Command::Reject {
            call: CallId(10),
            reason: reason.clone()
        }),
        "{out:?}"
    );
    assert!(
        out.contains(&Command::Ended {
            call: CallId(10),
            outcome: Outcome::Rejected,
            reason,
            cta: Some(C13),
        }),
        "{out:?}"
    );
    let (call, entry) = h.core.callbacks(C13).next().expect("a call-back entry");
    assert_eq!(call, CallId(10));
    assert_eq!(entry.caller.as_deref(), Some("0612345678"));
    assert_eq!(h.core.live_calls(), 0);
}

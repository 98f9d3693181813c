//! Mutual aid: calls overflowing to lenders that keep their reserve, and handed back home.

use proptest::prelude::*;

use super::proptests::{Checker, Op, event, op};
use super::*;

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

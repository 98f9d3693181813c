//! Crisis mode and disabled queues: the menu, its key presses, and calls moved to partners.

use super::*;

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

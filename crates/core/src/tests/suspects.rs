//! Suspected calls (silent robots of a flood): behind real callers until heard, in their share.

use super::*;

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

//! Calls reaching a call-taker: rung or picked, answered or not, answered twice.

use super::*;

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

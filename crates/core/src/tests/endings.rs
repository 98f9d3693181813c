//! How calls end: abandoned to the call-back list, withdrawn, hung up by their call-taker.

use super::*;

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

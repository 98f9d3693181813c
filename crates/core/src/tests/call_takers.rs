//! Call-takers' states: logging in, pausing, logging out, as they ask and as calls allow.

use super::*;

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

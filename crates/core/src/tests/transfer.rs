//! Transfers to a partner service: rung, answered, refused, or cancelled by either side.

use super::*;

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

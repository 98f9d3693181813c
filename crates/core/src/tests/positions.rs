//! Handset positions (AML): each goes to the live call from its number, however written.

use super::*;

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
fn a_handset_position_matches_a_number_written_with_the_international_prefix() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.send(Event::AgentPause { agent: AgentId(1) });
    h.offer_from(10, Z13, "0612345678");
    let out = h.located(500, "0033 6 12 34 56 78", &aml("Arles"));
    assert_eq!(replies(&out), vec![(500, Ok(Granted::Located(CallId(10))))]);
}

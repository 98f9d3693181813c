//! A new plan taken live, or refused when its shape or capacity does not fit the live calls.

use super::*;

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

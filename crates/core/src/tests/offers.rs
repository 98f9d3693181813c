//! New calls: admitted within their zone's share, refused by a busy rule or when not carried.

use super::*;

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
        medium: Default::default(),
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

//! Waiting calls: their announcement, their order, and who of the idle call-takers gets them.

use super::*;

#[test]
fn a_waiting_caller_hears_the_announcement_and_is_answered_when_someone_logs_in() {
    let mut h = Harness::new();
    // Keep one call-taker logged in but paused so the queue is in standby, not unreachable.
    h.login(1, C13, 3);
    h.send(Event::AgentPause { agent: AgentId(1) });
    let out = h.offer(10, Z13);
    assert!(out.iter().any(|c| matches!(
        c,
        Command::Play {
            call: CallId(10),
            ..
        }
    )));
    assert!(rings(&out).is_empty());
    let out = h.login(2, C13, 3);
    assert_eq!(rings(&out), vec![(10, 2)]);
}

#[test]
fn the_longest_idle_call_taker_with_the_highest_preference_gets_the_call() {
    let mut h = Harness::new();
    h.login(1, C13, 2);
    h.advance(1000);
    h.login(2, C13, 2);
    h.advance(1000);
    h.login(3, C13, 5);
    let out = h.offer(10, Z13);
    assert_eq!(rings(&out), vec![(10, 3)], "preference 5 first");
    let out = h.offer(11, Z13);
    assert_eq!(rings(&out), vec![(11, 1)], "then the longest idle");
}

#[test]
fn a_resource_priority_call_is_answered_before_an_ordinary_one_that_came_first() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.talk(1, 10, Z13);
    assert!(rings(&h.offer_with_priority(11, Z13, None)).is_empty());
    h.advance(1_000);
    assert!(rings(&h.offer_with_priority(12, Z13, Some(0))).is_empty());
    h.advance(1_000);
    // Level 1 also counts as urgent; level 2 and beyond are ordinary.
    assert!(rings(&h.offer_with_priority(13, Z13, Some(1))).is_empty());
    assert!(rings(&h.offer_with_priority(14, Z13, Some(2))).is_empty());
    let priority = |call| h.core.call(CallId(call)).map(|c| c.priority);
    assert_eq!(priority(11), Some(PRIORITY_NORMAL));
    assert_eq!(priority(12), Some(PRIORITY_NORMAL + 1));
    assert_eq!(priority(13), Some(PRIORITY_NORMAL + 1));
    assert_eq!(priority(14), Some(PRIORITY_NORMAL));
    let order: Vec<u64> = h.core.waiting(C13).map(|c| c.call.0).collect();
    assert_eq!(order, vec![12, 13, 11, 14]);
    // The call-taker frees up after the wrap-up: the urgent call that came second rings first.
    h.send(Event::AgentHungUp {
        agent: AgentId(1),
        call: CallId(10),
    });
    let out = h.advance(10_000);
    assert_eq!(rings(&out), vec![(12, 1)]);
}

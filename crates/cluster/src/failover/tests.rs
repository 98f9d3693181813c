use std::sync::Arc;

use secourir_config::{Plan, ZoneId};
use secourir_core::{Ask, Offer, RequestId, Service, WantedState};

use super::*;

fn plan() -> Arc<Plan> {
    secourir_config::fixtures::one_cta_plan(
        "[[call_taker]]\nlogin = \"ota-1\"\ncta = \"cta-13\"\n\
         [[call_taker]]\nlogin = \"ota-2\"\ncta = \"cta-13\"\n",
    )
}

fn offer(call: u64) -> Offer {
    Offer {
        call: CallId(call),
        zone: ZoneId(0),
        service: Service::Fire,
        resource_priority: None,
        caller: None,
        source: None,
        place: None,
        suspected: false,
        refused: None,
        medium: Default::default(),
    }
}

/// A shared core with both call-takers available, the first one talking with call 1.
fn shared() -> Core {
    let mut core = Core::new(plan());
    let at = Instant(0);
    for agent in [0, 1] {
        let seat = Event::Request {
            id: RequestId(agent),
            agent: AgentId(agent as u32),
            ask: Ask::State(WantedState::Available),
        };
        core.handle(seat, at).for_each(drop);
    }
    core.handle(Event::Offered(offer(1)), at).for_each(drop);
    // The welcome message plays before the queue rings anyone.
    while let Some(deadline) = core.next_deadline()
        && matches!(
            core.call(CallId(1)).map(|c| c.status),
            Some(CallStatus::Queued)
        )
    {
        core.handle(Event::Tick, deadline).for_each(drop);
    }
    let at = core.now();
    let ringing = core.call(CallId(1)).map(|c| c.status);
    let Some(CallStatus::Ringing(agent)) = ringing else {
        panic!("call 1 rings nobody: {ringing:?}");
    };
    let answered = Event::AgentAnswered {
        agent,
        call: CallId(1),
    };
    core.handle(answered, at).for_each(drop);
    core
}

fn talking(core: &Core) -> AgentId {
    match core.call(CallId(1)).map(|c| c.status) {
        Some(CallStatus::Talking(agent)) => agent,
        other => panic!("call 1 is {other:?}"),
    }
}

fn drain(f: &mut Failover<u64>) -> Vec<Action<u64>> {
    std::iter::from_fn(|| f.poll()).collect()
}

#[test]
fn a_node_on_the_log_gives_its_calls_to_the_log_and_one_cut_off_serves_them_alone() {
    let core = shared();
    let mut f = Failover::new("a");
    assert_eq!(f.arrive(CallId(7), 7, Instant(10), &core), Route::Log(7));
    assert_eq!(f.pending(), 1);
    f.offer_back(CallId(7));
    assert_eq!(f.pending(), 0);
    f.appending(true);
    assert!(f.cut_off());
    assert_eq!(f.arrive(CallId(8), 8, Instant(20), &core), Route::Alone);
    assert_eq!(
        drain(&mut f),
        vec![Action::ServeAlone {
            call: 8,
            arrived: Instant(20)
        }]
    );
    assert!(f.on_island(&Event::CallerHungUp { call: CallId(8) }));
}

#[test]
fn an_offer_not_back_in_time_is_served_alone_only_by_a_node_with_free_call_takers() {
    let core = shared();
    let busy = talking(&core);
    let free = AgentId(1 - busy.0);
    let mut f = Failover::new("a");
    f.registered(busy);
    let _ = f.arrive(CallId(7), 7, Instant(0), &core);
    f.serve_pending(Instant(OFFER_PATIENCE_MS - 1), &core);
    assert!(drain(&mut f).is_empty());
    // The only call-taker here talks in the shared core: nobody to serve it alone.
    f.serve_pending(Instant(OFFER_PATIENCE_MS), &core);
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.island().map(|i| i.seated), Some(0));
    assert_eq!(f.pending(), 1);

    let mut f = Failover::new("b");
    f.registered(busy);
    f.registered(free);
    let _ = f.arrive(CallId(7), 7, Instant(0), &core);
    f.serve_pending(Instant(OFFER_PATIENCE_MS), &core);
    assert_eq!(
        drain(&mut f),
        vec![
            Action::ServeAlone {
                call: 7,
                arrived: Instant(0)
            },
            Action::Give(Input::Core {
                at: OFFER_PATIENCE_MS,
                event: Event::Withdrawn { call: CallId(7) }
            }),
        ]
    );
    // The island seated the free call-taker only, and the shared core's commands for the
    // call are not carried out here until its withdrawal comes back.
    assert_eq!(f.island().map(|i| i.seated), Some(1));
    assert_eq!(f.carrier(Some(CallId(7))), Carrier::Island);
    f.withdrawn(CallId(7));
    assert_eq!(f.carrier(Some(CallId(7))), Carrier::Legs);
}

#[test]
fn a_conversation_ended_here_while_cut_off_frees_its_call_taker_for_the_island() {
    let core = shared();
    let agent = talking(&core);
    let mut f: Failover<u64> = Failover::new("a");
    f.registered(agent);
    let hung_up = Event::AgentHungUp {
        agent,
        call: CallId(1),
    };
    // On the log, the shared core frees the call-taker itself.
    assert!(f.hung_up(&hung_up, &core));
    assert!(drain(&mut f).is_empty());
    f.appending(true);
    assert!(f.hung_up(&hung_up, &core));
    assert_eq!(drain(&mut f), vec![Action::Release(CallId(1))]);
    // The island started after: the freed call-taker sits there, though the shared core
    // still has them talking.
    let _ = f.arrive(CallId(9), 9, Instant(5), &core);
    assert_eq!(f.island().map(|i| i.seated), Some(1));
}

#[test]
fn a_conversation_the_log_ended_goes_on_until_one_side_hangs_up() {
    let core = shared();
    let mut f: Failover<u64> = Failover::new("a");
    f.ended_by_log(CallId(2), false);
    assert!(drain(&mut f).is_empty());
    f.ended_by_log(CallId(1), true);
    assert_eq!(drain(&mut f), vec![Action::CarryOn(CallId(1))]);
    assert_eq!(f.carrier(Some(CallId(1))), Carrier::RecordsOnly);
    assert!(!f.hung_up(&Event::CallerHungUp { call: CallId(1) }, &core));
    assert_eq!(
        drain(&mut f),
        vec![Action::Continued {
            call: CallId(1),
            caller_left: true
        }]
    );
    assert_eq!(f.carrier(Some(CallId(1))), Carrier::Legs);
}

#[test]
fn only_a_node_hearing_itself_declares_a_silent_node_lost() {
    let mut members = Members::default();
    members.seen("b", 1);
    members.hello("b", 1, 8);
    members.offered(CallId(1_008), "b");
    let mut f: Failover<u64> = Failover::new("a");
    assert!(f.entry("b", 1, Instant(0)));
    assert!(!f.entry("b", 1, Instant(0)), "a redelivery is applied once");
    f.beat(Instant(0), &members);
    assert_eq!(drain(&mut f), vec![Action::Give(Input::Alive { at: 0 })]);
    // Its own entries do not come back: it judges nobody.
    f.beat(Instant(5_000), &members);
    assert_eq!(
        drain(&mut f),
        vec![Action::Give(Input::Alive { at: 5_000 })]
    );
    assert!(f.entry("a", 2, Instant(5_000)));
    f.beat(Instant(5_100), &members);
    assert!(drain(&mut f).is_empty());
    // B's silence counts from when A heard itself again.
    assert!(f.entry("a", 3, Instant(6_000)));
    f.beat(Instant(6_599), &members);
    assert_eq!(
        drain(&mut f),
        vec![Action::Give(Input::Alive { at: 6_599 })]
    );
    f.beat(Instant(6_600), &members);
    assert_eq!(
        drain(&mut f),
        vec![
            Action::DeclaredLost {
                node: "b".into(),
                after: 1
            },
            Action::Give(Input::Lost {
                at: 6_600,
                node: "b".into(),
                after: 1
            }),
        ]
    );
}

#[test]
fn the_island_merges_a_moment_after_its_last_call_once_the_log_is_back() {
    let core = shared();
    let mut f: Failover<u64> = Failover::new("a");
    f.appending(true);
    let _ = f.arrive(CallId(9), 9, Instant(0), &core);
    drain(&mut f);
    f.merge(Instant(100));
    assert!(drain(&mut f).is_empty(), "cut off: no merge");
    f.appending(false);
    // The island's call is still there, unoffered to its core in this test: it is over.
    f.merge(Instant(200));
    f.merge(Instant(200 + ISLAND_MERGE_AFTER_MS - 1));
    assert!(drain(&mut f).is_empty());
    f.merge(Instant(200 + ISLAND_MERGE_AFTER_MS));
    assert_eq!(drain(&mut f), vec![Action::Merge(vec![CallId(9)])]);
    f.merged();
    assert!(f.island().is_none());
}

#[test]
fn a_call_served_alone_stays_the_island_s_when_the_log_ends_it() {
    // Found by the simulator's failover runs (3 nodes, seed 8): a call served alone whose
    // offer had reached the log was then ended by the log (the node declared lost). Carried
    // on outside the island, its hang-up never reached the island's core, the island never
    // ended, and its callers to call back never reached the log.
    let core = shared();
    let free = AgentId(1 - talking(&core).0);
    let mut f = Failover::new("a");
    f.registered(free);
    let _ = f.arrive(CallId(7), 7, Instant(0), &core);
    f.serve_pending(Instant(OFFER_PATIENCE_MS), &core);
    drain(&mut f);
    f.ended_by_log(CallId(7), true);
    assert!(drain(&mut f).is_empty());
    assert!(f.hung_up(&Event::CallerHungUp { call: CallId(7) }, &core));
    assert!(f.on_island(&Event::CallerHungUp { call: CallId(7) }));
}

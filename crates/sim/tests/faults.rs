//! Fault injection through the real core: hundreds of seeds pass every safety and liveness
//! rule (every rule strict), a seed replays exactly, and the stream checker does refuse a wrong
//! stream.

use secourir_config::{AnnouncementId, ZoneId};
use secourir_core::{AgentId, CallId, Command, EndReason, Event, Offer, Outcome, Service};
use secourir_sim::faults::{self, Checker, Fault, Settings};

/// Long enough for every kind of fault to happen in most seeds, short enough that the batch
/// stays well under the test budget in the test profile.
const SETTINGS: Settings = Settings {
    steps: 800,
    drain_rounds: 400,
};

#[test]
fn hundreds_of_seeds_break_no_rule_and_every_call_ends() {
    let (plan, cast) = faults::prepare(faults::fault_plan());
    let batch = faults::run_batch(0..300, SETTINGS, &plan, &cast, 2);
    eprint!("{}", faults::summary(&batch));
    assert!(
        batch.failures.is_empty(),
        "{} seeds failed, first: {}",
        batch.failures.len(),
        batch.failures[0]
    );
    assert_eq!(batch.seeds, 300);
    for fault in Fault::ALL {
        assert!(
            batch.faults.get(fault) > 0,
            "no {} injected in the whole batch",
            fault.name()
        );
    }
}

#[test]
fn a_seed_replays_the_same_events_and_commands() {
    let (plan, cast) = faults::prepare(faults::fault_plan());
    let trace_of = |seed| {
        let mut lines = Vec::new();
        let mut trace = |line: &faults::TraceLine<'_>| {
            lines.push(format!(
                "{} {} {:?} {:?}",
                line.index, line.at_ms, line.event, line.commands
            ));
        };
        let run = faults::run_seed(seed, SETTINGS, &plan, &cast, Some(&mut trace))
            .unwrap_or_else(|f| panic!("{f}"));
        (run, lines)
    };
    let (a, lines_a) = trace_of(7);
    let (b, lines_b) = trace_of(7);
    assert_eq!(a, b);
    assert_eq!(lines_a, lines_b);
    assert_eq!(a.events as usize, lines_a.len());
    let untraced = faults::run_seed(7, SETTINGS, &plan, &cast, None).expect("passes");
    assert_eq!(untraced.hash, a.hash, "tracing changes nothing");
    let (c, _) = trace_of(8);
    assert_ne!(a.hash, c.hash, "another seed, another run");
}

fn offer(call: u64) -> Event {
    Event::Offered(Offer {
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
    })
}

#[test]
fn the_checker_refuses_a_call_bridged_twice() {
    let plan = faults::fault_plan();
    let mut checker = Checker::new(&plan);
    let (call, agent) = (CallId(1), AgentId(0));
    let offered = offer(1);
    checker.fed(&offered).expect("a new call");
    checker
        .observe(
            &offered,
            &[Command::Answer { call }, Command::Ring { call, agent }],
        )
        .expect("answered and rung: a correct stream");
    let answered = Event::AgentAnswered { agent, call };
    checker.fed(&answered).expect("nothing to note");
    let bridge = Command::Bridge {
        call,
        agent,
        conversation: 1,
    };
    let refused = checker
        .observe(&answered, &[bridge.clone(), bridge])
        .expect_err("a call bridged twice");
    assert!(refused.0.contains("bridged twice"), "{refused}");
}

#[test]
fn the_checker_refuses_a_bridge_to_a_call_taker_never_rung() {
    let plan = faults::fault_plan();
    let mut checker = Checker::new(&plan);
    let call = CallId(1);
    let offered = offer(1);
    checker.fed(&offered).expect("a new call");
    checker
        .observe(
            &offered,
            &[
                Command::Answer { call },
                Command::Ring {
                    call,
                    agent: AgentId(0),
                },
            ],
        )
        .expect("correct so far");
    let answered = Event::AgentAnswered {
        agent: AgentId(1),
        call,
    };
    let refused = checker
        .observe(
            &answered,
            &[Command::Bridge {
                call,
                agent: AgentId(1),
                conversation: 1,
            }],
        )
        .expect_err("bridged to someone else");
    assert!(refused.0.contains("not rung"), "{refused}");
}

#[test]
fn the_checker_refuses_a_call_ended_twice_or_never_offered() {
    let plan = faults::fault_plan();
    let mut checker = Checker::new(&plan);
    let ended = |call| Command::Ended {
        call: CallId(call),
        outcome: secourir_core::Outcome::Abandoned,
        reason: secourir_core::EndReason::CallerLeftQueue,
        cta: None,
    };
    let refused = checker
        .observe(&Event::Tick, &[ended(5)])
        .expect_err("never offered");
    assert!(refused.0.contains("without being offered"), "{refused}");
    let offered = offer(1);
    checker.fed(&offered).expect("a new call");
    checker
        .observe(&offered, &[Command::Answer { call: CallId(1) }])
        .expect("answered");
    let hung_up = Event::CallerHungUp { call: CallId(1) };
    let refused = checker
        .observe(&hung_up, &[ended(1), ended(1)])
        .expect_err("ended twice");
    assert!(refused.0.contains("ended twice"), "{refused}");
}

#[test]
fn the_checker_refuses_a_ring_cancelled_while_the_call_taker_talks() {
    let plan = faults::fault_plan();
    let mut checker = Checker::new(&plan);
    let (talked, timed_out) = (CallId(1), CallId(2));
    let (talker, other) = (AgentId(0), AgentId(1));
    for (call, agent) in [(talked, talker), (timed_out, other)] {
        let offered = offer(call.0);
        checker.fed(&offered).expect("a new call");
        checker
            .observe(
                &offered,
                &[Command::Answer { call }, Command::Ring { call, agent }],
            )
            .expect("answered and rung");
    }
    let answered = Event::AgentAnswered {
        agent: talker,
        call: talked,
    };
    checker.fed(&answered).expect("nothing to note");
    checker
        .observe(
            &answered,
            &[Command::Bridge {
                call: talked,
                agent: talker,
                conversation: 1,
            }],
        )
        .expect("bridged to the call-taker rung");
    // Right: a ring that timed out is cancelled, and a late answer to it hangs up a stray leg.
    let cancel_timed_out = [Command::CancelRing {
        call: timed_out,
        agent: other,
    }];
    checker
        .observe(&Event::Tick, &cancel_timed_out)
        .expect("a ringing phone's ring cancelled");
    let late = Event::AgentAnswered {
        agent: other,
        call: timed_out,
    };
    checker
        .observe(&late, &cancel_timed_out)
        .expect("a stray leg hung up");
    // Wrong: a repeated answer from the phone in conversation cancels the ring of its call.
    let refused = checker
        .observe(
            &answered,
            &[Command::CancelRing {
                call: talked,
                agent: talker,
            }],
        )
        .expect_err("the conversation's leg hung up");
    assert!(
        refused
            .0
            .contains("ring of call 1 cancelled while call-taker 0 talks"),
        "{refused}"
    );
}

#[test]
fn the_checker_refuses_an_announcement_to_a_call_then_refused() {
    let plan = faults::fault_plan();
    let mut checker = Checker::new(&plan);
    let announcement = AnnouncementId(0);
    // Right: an announcement once the call is answered.
    let admitted = offer(1);
    checker.fed(&admitted).expect("a new call");
    checker
        .observe(
            &admitted,
            &[
                Command::Answer { call: CallId(1) },
                Command::Play {
                    call: CallId(1),
                    announcement,
                },
            ],
        )
        .expect("played to a live call");
    // Wrong: an announcement to a call a `busy` rule then refuses, never answered.
    let call = CallId(2);
    let refused_offer = offer(2);
    checker.fed(&refused_offer).expect("a new call");
    let busy = EndReason::Busy("fermé".into());
    let refused = checker
        .observe(
            &refused_offer,
            &[
                Command::Play { call, announcement },
                Command::Reject {
                    call,
                    reason: busy.clone(),
                },
                Command::Ended {
                    call,
                    outcome: Outcome::Rejected,
                    reason: busy,
                    cta: None,
                },
            ],
        )
        .expect_err("no media to play on");
    assert!(
        refused
            .0
            .contains("announcement played to call 2 not live (never answered)"),
        "{refused}"
    );
}

/// Three followers fed each seed's inputs as a replicated log may deliver them (twice, out of
/// order, after a crash from the start) end with the commands of the node that produced them.
#[test]
fn followers_fed_the_log_with_its_faults_end_like_the_node_that_wrote_it() {
    let (plan, cast) = faults::prepare(faults::fault_plan());
    let settings = Settings {
        steps: 300,
        ..Settings::default()
    };
    let (mut duplicates, mut crashes, mut entries) = (0, 0, 0);
    for seed in 0..60 {
        let run = faults::cluster::converge(seed, settings, &plan, &cast, 3)
            .unwrap_or_else(|e| panic!("{e}"));
        duplicates += run.duplicates;
        crashes += run.crashes;
        entries += run.entries;
    }
    assert!(
        entries > 10_000 && duplicates > 100 && crashes > 10,
        "{entries} {duplicates} {crashes}"
    );
}

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

const CONFIG: DeliveryConfig = DeliveryConfig {
    retry_first_ms: 1_000,
    retry_max_ms: 8_000,
    confirm_timeout_ms: 5_000,
    overdue_after_ms: 30_000,
    messages_max: 64,
};

fn submission(id: &str, expires_at_ms: i64) -> Submission {
    Submission {
        id: id.to_owned(),
        expires_at_ms,
        published_at_ms: None,
    }
}

fn events(delivery: &mut Delivery) -> Vec<DeliveryEvent> {
    std::iter::from_fn(|| delivery.poll_event()).collect()
}

#[test]
fn a_message_is_sent_confirmed_then_acknowledged() {
    let mut delivery = Delivery::new(CONFIG);
    delivery
        .handle_submit(0, submission("m1", 600_000))
        .unwrap();
    assert_eq!(delivery.poll_timeout(), Some(0));
    assert_eq!(delivery.poll_transmit(0).as_deref(), Some("m1"));
    assert_eq!(delivery.poll_transmit(0), None, "handed out once");
    assert!(delivery.handle_published(10, "m1"));
    assert_eq!(
        delivery.poll_timeout(),
        Some(30_010),
        "the overdue deadline"
    );
    assert!(delivery.handle_ack(500, "m1"));
    assert!(
        !delivery.handle_ack(600, "m1"),
        "a repeated acknowledgement is not a second end"
    );
    assert_eq!(
        events(&mut delivery),
        vec![DeliveryEvent::Acked { id: "m1".into() }]
    );
    assert!(delivery.is_empty());
    assert_eq!(delivery.poll_timeout(), None);
}

#[test]
fn failed_publishes_are_retried_with_a_doubling_delay() {
    let mut delivery = Delivery::new(CONFIG);
    delivery
        .handle_submit(0, submission("m1", 600_000))
        .unwrap();
    let mut now = 0;
    let mut waits = Vec::new();
    for _ in 0..6 {
        assert_eq!(delivery.poll_transmit(now).as_deref(), Some("m1"));
        delivery.handle_publish_failed(now, "m1");
        let next = delivery.poll_timeout().unwrap();
        assert_eq!(
            delivery.poll_transmit(next - 1),
            None,
            "not before its time"
        );
        waits.push(next - now);
        now = next;
    }
    assert_eq!(waits, vec![1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
}

#[test]
fn an_unconfirmed_publish_counts_as_failed_and_a_late_confirmation_still_counts() {
    let mut delivery = Delivery::new(CONFIG);
    delivery
        .handle_submit(0, submission("m1", 600_000))
        .unwrap();
    delivery.poll_transmit(0);
    assert_eq!(delivery.poll_timeout(), Some(5_000));
    delivery.handle_timeout(5_000);
    assert_eq!(
        delivery.stage("m1"),
        Some(Stage::Waiting {
            attempts: 1,
            send_at_ms: 6_000
        })
    );
    assert!(delivery.handle_published(5_500, "m1"));
    assert_eq!(
        delivery.poll_transmit(7_000),
        None,
        "the broker has it: never sent twice"
    );
}

#[test]
fn a_silent_partner_is_reported_overdue_once_then_expiry_ends_it() {
    let mut delivery = Delivery::new(CONFIG);
    delivery
        .handle_submit(0, submission("m1", 100_000))
        .unwrap();
    delivery.poll_transmit(0);
    delivery.handle_published(1_000, "m1");
    delivery.handle_timeout(30_999);
    assert_eq!(events(&mut delivery), vec![]);
    delivery.handle_timeout(31_000);
    delivery.handle_timeout(40_000);
    let overdue = DeliveryEvent::Overdue {
        id: "m1".into(),
        published_at_ms: 1_000,
    };
    assert_eq!(events(&mut delivery), vec![overdue]);
    assert_eq!(delivery.overdue().collect::<Vec<_>>(), vec!["m1"]);
    assert_eq!(delivery.poll_timeout(), Some(100_000));
    delivery.handle_timeout(100_000);
    let expired = DeliveryEvent::Expired {
        id: "m1".into(),
        published: true,
    };
    assert_eq!(events(&mut delivery), vec![expired]);
    assert!(delivery.is_empty());
}

#[test]
fn an_error_ends_the_message_with_its_reason() {
    let mut delivery = Delivery::new(CONFIG);
    delivery
        .handle_submit(0, submission("m1", 100_000))
        .unwrap();
    delivery.poll_transmit(0);
    delivery.handle_published(1, "m1");
    assert!(delivery.handle_error(2, "m1", "UNROUTABLE_MESSAGE"));
    let refused = DeliveryEvent::Refused {
        id: "m1".into(),
        reason: "UNROUTABLE_MESSAGE".into(),
    };
    assert_eq!(events(&mut delivery), vec![refused]);
}

#[test]
fn an_expired_message_is_never_handed_out_but_reported() {
    let mut delivery = Delivery::new(CONFIG);
    delivery.handle_submit(50, submission("late", 10)).unwrap();
    assert_eq!(delivery.poll_transmit(50), None);
    let expired = DeliveryEvent::Expired {
        id: "late".into(),
        published: false,
    };
    assert_eq!(events(&mut delivery), vec![expired]);
}

#[test]
fn a_restored_message_waits_for_its_acknowledgement_without_resend() {
    let mut delivery = Delivery::new(CONFIG);
    let restored = Submission {
        id: "m1".into(),
        expires_at_ms: 100_000,
        published_at_ms: Some(5),
    };
    delivery.handle_submit(10, restored).unwrap();
    assert_eq!(delivery.poll_transmit(10), None);
    assert!(delivery.handle_ack(20, "m1"));
}

#[test]
fn bounds_refuse_with_a_reason() {
    let mut delivery = Delivery::new(DeliveryConfig {
        messages_max: 2,
        ..CONFIG
    });
    delivery.handle_submit(0, submission("a", 10)).unwrap();
    assert_eq!(
        delivery.handle_submit(0, submission("a", 10)),
        Err(SubmitError::Duplicate("a".into()))
    );
    assert_eq!(
        delivery.handle_submit(0, submission("", 10)),
        Err(SubmitError::BadId(0))
    );
    delivery.handle_submit(0, submission("b", 10)).unwrap();
    assert_eq!(
        delivery.handle_submit(0, submission("c", 10)),
        Err(SubmitError::Full(2))
    );
    delivery.handle_timeout(10);
    assert!(delivery.is_empty());
    assert_eq!(
        delivery.handle_submit(10, submission("c", 99)),
        Err(SubmitError::Full(2)),
        "two reports still undrained"
    );
    events(&mut delivery);
    delivery.handle_submit(10, submission("c", 99)).unwrap();
}

#[test]
fn time_never_goes_backwards() {
    let mut delivery = Delivery::new(CONFIG);
    delivery
        .handle_submit(10_000, submission("m1", 600_000))
        .unwrap();
    assert_eq!(delivery.poll_transmit(10_000).as_deref(), Some("m1"));
    delivery.handle_publish_failed(0, "m1");
    assert_eq!(
        delivery.stage("m1"),
        Some(Stage::Waiting {
            attempts: 1,
            send_at_ms: 11_000
        })
    );
}

#[derive(Clone, Debug)]
enum Op {
    Submit {
        key: u8,
        ttl_ms: i64,
        restored: bool,
    },
    Transmit {
        outcome: u8,
    },
    LateConfirm {
        key: u8,
    },
    Ack {
        key: u8,
    },
    Error {
        key: u8,
    },
    Advance {
        ms: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..24, 0i64..120_000, proptest::bool::weighted(0.2)).prop_map(
            |(key, ttl_ms, restored)| Op::Submit {
                key,
                ttl_ms,
                restored
            }
        ),
        (0u8..3).prop_map(|outcome| Op::Transmit { outcome }),
        (0u8..24).prop_map(|key| Op::LateConfirm { key }),
        (0u8..24).prop_map(|key| Op::Ack { key }),
        (0u8..24).prop_map(|key| Op::Error { key }),
        (0i64..20_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

fn id_of(key: u8) -> String {
    format!("fr.fire.secourir.sdis13_{key}")
}

/// The tracker and what the test saw of it.
struct Run {
    delivery: Delivery,
    now: i64,
    /// `id#n`: the n-th message handed in under that id (an id may return once ended).
    accepted: BTreeSet<String>,
    ends: BTreeMap<String, u32>,
    overdue: BTreeMap<String, u32>,
    expiries: BTreeMap<String, i64>,
}

impl Run {
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let now = self.now;
        match op {
            Op::Submit {
                key,
                ttl_ms,
                restored,
            } => {
                let id = id_of(*key);
                let expires_at_ms = now + ttl_ms;
                let published_at_ms = restored.then_some(now);
                let submission = Submission {
                    id: id.clone(),
                    expires_at_ms,
                    published_at_ms,
                };
                if self.delivery.handle_submit(now, submission).is_ok() {
                    let instance = format!("{id}#{}", self.ends.get(&id).copied().unwrap_or(0));
                    prop_assert!(
                        self.accepted.insert(instance),
                        "{} handed in twice at once",
                        id
                    );
                    self.expiries.insert(id, expires_at_ms);
                }
            }
            Op::Transmit { outcome } => {
                if let Some(id) = self.delivery.poll_transmit(now) {
                    prop_assert!(
                        self.expiries[&id] > now,
                        "{} handed out after its expiry",
                        id
                    );
                    match outcome {
                        0 => prop_assert!(self.delivery.handle_published(now, &id)),
                        1 => prop_assert!(self.delivery.handle_publish_failed(now, &id)),
                        _ => {}
                    }
                }
            }
            Op::LateConfirm { key } => {
                self.delivery.handle_published(now, &id_of(*key));
            }
            Op::Ack { key } => {
                self.delivery.handle_ack(now, &id_of(*key));
            }
            Op::Error { key } => {
                self.delivery.handle_error(now, &id_of(*key), "refused");
            }
            Op::Advance { ms } => {
                self.now += ms;
                self.delivery.handle_timeout(self.now);
            }
        }
        self.drain()?;
        self.check_view()
    }

    fn drain(&mut self) -> Result<(), TestCaseError> {
        while let Some(event) = self.delivery.poll_event() {
            match event {
                DeliveryEvent::Overdue { id, .. } => *self.overdue.entry(id).or_default() += 1,
                DeliveryEvent::Expired { id, .. } => {
                    prop_assert!(
                        self.expiries[&id] <= self.now,
                        "{} reported expired early",
                        id
                    );
                    *self.ends.entry(id).or_default() += 1;
                }
                DeliveryEvent::Acked { id } | DeliveryEvent::Refused { id, .. } => {
                    *self.ends.entry(id).or_default() += 1;
                }
            }
        }
        Ok(())
    }

    /// Every message handed in is either followed or ended by exactly one report, and is
    /// reported overdue once at most.
    fn check_view(&self) -> Result<(), TestCaseError> {
        let mut handed_in: BTreeMap<&str, u32> = BTreeMap::new();
        for instance in &self.accepted {
            let (id, _) = instance.rsplit_once('#').expect("instances are id#n");
            *handed_in.entry(id).or_default() += 1;
        }
        for (id, count) in &handed_in {
            let ended = self.ends.get(*id).copied().unwrap_or(0);
            let followed = u32::from(self.delivery.stage(id).is_some());
            prop_assert_eq!(ended + followed, *count, "{} handed in {} times", id, count);
        }
        for (id, count) in &self.overdue {
            let times = handed_in.get(id.as_str()).copied().unwrap_or(0);
            prop_assert!(
                *count <= times,
                "{} overdue {} times, handed in {}",
                id,
                count,
                times
            );
        }
        if !self.delivery.is_empty() {
            prop_assert!(self.delivery.poll_timeout().is_some());
        }
        Ok(())
    }
}

/// Once time passes every expiry, every message handed in has ended, each with one report.
fn check_run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut run = Run {
        delivery: Delivery::new(CONFIG),
        now: 0,
        accepted: BTreeSet::new(),
        ends: BTreeMap::new(),
        overdue: BTreeMap::new(),
        expiries: BTreeMap::new(),
    };
    for op in ops {
        run.apply(op)?;
    }
    run.now = run
        .expiries
        .values()
        .copied()
        .max()
        .unwrap_or(run.now)
        .max(run.now);
    run.delivery.handle_timeout(run.now);
    run.drain()?;
    run.check_view()?;
    prop_assert!(
        run.delivery.is_empty(),
        "left followed after every expiry: {:?}",
        run.delivery
    );
    prop_assert_eq!(run.delivery.poll_timeout(), None);
    let ended: u32 = run.ends.values().sum();
    prop_assert_eq!(ended as usize, run.accepted.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_message_is_ever_lost(ops in proptest::collection::vec(op(), 1..200)) {
        check_run(&ops)?;
    }
}

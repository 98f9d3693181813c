//! End to end on a real RabbitMQ: cases handed to three SAMU through the hub's routing (one
//! acknowledges, one refuses, one stays silent), a partner's case received and acknowledged, then
//! two outages: the broker killed under a live link, then stopped while the platform restarts.
//! The outbox delivers every case once the broker is back, none of them twice. Every wait has a
//! deadline; all traffic is on 127.0.0.1.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use secourir_cisu::envelope::create_case_message;
use secourir_cisu::facts::Commune;
use secourir_cisu::{
    CaseFacts, Channel, DeliveryEvent, Incoming, Kind, Outgoing, Position, PositionSource,
    Qualification, Route, SendParams, Status,
};
use secourir_hub::config::DeliverySettings;
use secourir_hub::{Hub, HubConfig, HubEvent, Outbox};
use support::hub_role::{
    HubRole, PLATFORM, SAMU_ACKS, SAMU_REFUSES, SAMU_SILENT, Seen, declare_topology, now,
};
use support::rabbit::Broker;

/// Bound on any one expected event; a broker restart is waited for separately.
const EVENT_WAIT: Duration = Duration::from_secs(60);

fn config(broker: &Broker, outbox: &Path, client_id: &str) -> HubConfig {
    HubConfig {
        uri: broker.uri(),
        client_id: client_id.into(),
        exchange: "hubsante".into(),
        outbox: outbox.into(),
        tls: None,
        delivery: DeliverySettings {
            retry_first_ms: 200,
            retry_max_ms: 2_000,
            confirm_timeout_ms: 5_000,
            overdue_after_ms: 1_500,
            messages_max: 1_000,
        },
        reconnect_first_ms: 200,
        reconnect_max_ms: 2_000,
        ack_valid_ms: 3_600_000,
        keep_ended_ms: 3_600_000,
        events_max: 1_024,
    }
}

fn facts(call: &str) -> CaseFacts {
    CaseFacts {
        call_id: call.into(),
        organisation: "sdis13".into(),
        received_at: now(),
        caller_number: "0601020304".into(),
        channel: Channel::Voice,
        call_taker_login: "ota-13-1".into(),
        cta_id: "CTA13".into(),
        commune: Some(Commune {
            insee: "13055".into(),
            name: "Marseille".into(),
        }),
        departement: Some("13".into()),
        position: Some(Position {
            lat: 43.2965,
            lon: 5.3698,
            accuracy_m: Some(12.0),
            source: PositionSource::Aml,
        }),
        qualification: Qualification {
            code: "C01.01.05".into(),
            label: "Piéton".into(),
            nomenclature_version: "1.3.1".into(),
        },
        note: Some("Piéton renversé, conscient.".into()),
    }
}

/// A case for `recipient`, valid `valid_for`.
fn case(sender: &str, recipient: &str, call: &str, valid_for: TimeDelta) -> Outgoing {
    let sent_at = now();
    let route = Route {
        sender_id: sender.into(),
        recipient_id: recipient.into(),
    };
    let params = SendParams {
        local_id: format!("{call}-1"),
        sent_at,
        expires_at: sent_at + valid_for,
        kind: Kind::Report,
        status: Status::Exercise,
    };
    create_case_message(&route, &params, &facts(call), &sent_at).expect("the case builds")
}

/// Everything the hub said, and a way to wait for what it should say.
struct Events {
    log: Vec<String>,
}

impl Events {
    /// Waits for an event matching `wanted`, keeping the others in the log.
    async fn until(
        &mut self,
        hub: &mut Hub,
        what: &str,
        wanted: impl Fn(&HubEvent) -> bool,
    ) -> HubEvent {
        let waited = tokio::time::timeout(EVENT_WAIT, async {
            loop {
                let event = hub.next_event().await.expect("the driver runs");
                self.log.push(format!("{event:?}"));
                if wanted(&event) {
                    return event;
                }
            }
        });
        match waited.await {
            Ok(event) => event,
            Err(_) => panic!(
                "no {what} within {EVENT_WAIT:?}; events so far:\n{}",
                self.log.join("\n")
            ),
        }
    }

    async fn acked(&mut self, hub: &mut Hub, id: &str) {
        let what = format!("acknowledgement of {id}");
        self.until(
            hub,
            &what,
            |e| matches!(e, HubEvent::Delivery(DeliveryEvent::Acked { id: i }) if i == id),
        )
        .await;
    }
}

/// Waits until the outbox records the broker's confirmation of a message.
async fn wait_published(outbox: &Path, id: &str) {
    let reader = Outbox::open(outbox).expect("the outbox opens beside the driver");
    let deadline = tokio::time::Instant::now() + EVENT_WAIT;
    while reader
        .row(id)
        .unwrap()
        .and_then(|row| row.published_at_ms)
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} unconfirmed within {EVENT_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_reach_the_samu_through_a_broker_outage_and_a_restart() {
    let mut broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox.sqlite");
    declare_topology(&broker.uri()).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let role = HubRole::start(&broker.uri(), seen.clone()).await;
    let mut hub = Hub::start(config(&broker, &outbox, PLATFORM)).unwrap();
    let mut events = Events { log: Vec::new() };
    events
        .until(&mut hub, "connection", |e| matches!(e, HubEvent::Connected))
        .await;

    // A SAMU that acknowledges.
    let acked = case(PLATFORM, SAMU_ACKS, "call-1", TimeDelta::minutes(10));
    hub.send(acked.clone()).await.unwrap();
    events.acked(&mut hub, &acked.distribution_id).await;

    // A SAMU that refuses: the reason reaches the platform.
    let refused = case(PLATFORM, SAMU_REFUSES, "call-2", TimeDelta::minutes(10));
    hub.send(refused.clone()).await.unwrap();
    let event = events
        .until(&mut hub, "refusal", |e| {
            matches!(e, HubEvent::Delivery(DeliveryEvent::Refused { .. }))
        })
        .await;
    let HubEvent::Delivery(DeliveryEvent::Refused { id, reason }) = event else {
        unreachable!()
    };
    assert_eq!(id, refused.distribution_id);
    assert!(
        reason.contains("INVALID_MESSAGE") && reason.contains("qualification"),
        "{reason}"
    );

    // A silent SAMU: reported overdue, then expired, never dropped unseen.
    let silent = case(PLATFORM, SAMU_SILENT, "call-3", TimeDelta::seconds(6));
    hub.send(silent.clone()).await.unwrap();
    let is = |id: &str, e: &DeliveryEvent| match e {
        DeliveryEvent::Overdue { id: i, .. } | DeliveryEvent::Expired { id: i, .. } => i == id,
        _ => false,
    };
    let overdue = events
        .until(&mut hub, "overdue", |e| matches!(e, HubEvent::Delivery(d @ DeliveryEvent::Overdue { .. }) if is(&silent.distribution_id, d)))
        .await;
    assert!(matches!(
        overdue,
        HubEvent::Delivery(DeliveryEvent::Overdue { .. })
    ));
    let expired = events
        .until(&mut hub, "expiry", |e| matches!(e, HubEvent::Delivery(d @ DeliveryEvent::Expired { .. }) if is(&silent.distribution_id, d)))
        .await;
    assert!(matches!(
        expired,
        HubEvent::Delivery(DeliveryEvent::Expired {
            published: true,
            ..
        })
    ));

    // A partner's case: shown to the platform and acknowledged to the partner.
    let incoming = case(SAMU_ACKS, PLATFORM, "samu-7", TimeDelta::minutes(10));
    role.publish_as(SAMU_ACKS, &incoming).await;
    let event = events
        .until(&mut hub, "partner case", |e| {
            matches!(e, HubEvent::Received(_))
        })
        .await;
    let HubEvent::Received(received) = event else {
        unreachable!()
    };
    assert_eq!(received.distribution_id, incoming.distribution_id);
    let Incoming::CreateCase(partner_case) = &received.message else {
        panic!("not a case")
    };
    assert_eq!(partner_case.location.insee.as_deref(), Some("13055"));
    let ack = role.get(&format!("{SAMU_ACKS}.ack"), EVENT_WAIT).await;
    let reference =
        &ack["content"][0]["jsonContent"]["embeddedJsonContent"]["message"]["reference"];
    assert_eq!(
        reference["distributionID"],
        incoming.distribution_id.as_str()
    );

    // Bytes that are no hub message are reported, not fatal.
    role.inject(&format!("{PLATFORM}.info"), b"not json").await;
    events
        .until(&mut hub, "unreadable report", |e| {
            matches!(e, HubEvent::Unreadable { .. })
        })
        .await;

    // The broker crashes (SIGKILL) under a live link. Cases keep coming; the link comes back.
    role.stop().await;
    broker.kill();
    events
        .until(&mut hub, "disconnection", |e| {
            matches!(e, HubEvent::Disconnected { .. })
        })
        .await;
    let during: Vec<Outgoing> = (4..7)
        .map(|n| {
            case(
                PLATFORM,
                SAMU_ACKS,
                &format!("call-{n}"),
                TimeDelta::minutes(10),
            )
        })
        .collect();
    for message in &during {
        hub.send(message.clone()).await.unwrap();
    }
    tokio::task::block_in_place(|| broker.start_again());
    let role = HubRole::start(&broker.uri(), seen.clone()).await;
    for message in &during {
        events.acked(&mut hub, &message.distribution_id).await;
    }

    // The platform restarts during a second outage, the broker stopped by its operator this
    // time: one case already taken by the broker but not yet acknowledged (the hub's
    // dispatcher is down), one not sent at all.
    role.stop().await;
    let taken = case(PLATFORM, SAMU_ACKS, "call-7", TimeDelta::minutes(10));
    hub.send(taken.clone()).await.unwrap();
    wait_published(&outbox, &taken.distribution_id).await;
    tokio::task::block_in_place(|| broker.stop());
    let stored = case(PLATFORM, SAMU_ACKS, "call-8", TimeDelta::minutes(10));
    hub.send(stored.clone()).await.unwrap();
    hub.shutdown().await;
    let mut hub = Hub::start(config(&broker, &outbox, PLATFORM)).unwrap();
    tokio::task::block_in_place(|| broker.start_again());
    let role = HubRole::start(&broker.uri(), seen.clone()).await;
    events.acked(&mut hub, &taken.distribution_id).await;
    events.acked(&mut hub, &stored.distribution_id).await;
    // The queue is first in, first out: once this one is acknowledged, any repeat sent
    // before it has reached the SAMU too.
    let barrier = case(PLATFORM, SAMU_ACKS, "call-9", TimeDelta::minutes(10));
    hub.send(barrier.clone()).await.unwrap();
    events.acked(&mut hub, &barrier.distribution_id).await;

    {
        let seen = seen.lock().unwrap();
        let received = &seen.received[SAMU_ACKS];
        let times = |id: &str| received.iter().filter(|r| *r == id).count();
        // Sent through the outages and the restart: each reached the SAMU exactly once.
        for message in during.iter().chain([&taken, &stored, &barrier]) {
            let id = &message.distribution_id;
            assert_eq!(
                times(id),
                1,
                "{id} reached the SAMU {} times: {received:#?}",
                times(id)
            );
        }
        // Acknowledged before the crash: a broker killed outright may replay an acknowledgement it
        // had not yet written down, which the SAMU tells by the message id. At least once, then.
        assert!(times(&acked.distribution_id) >= 1, "{received:#?}");
        let cases = 1 + during.len() + 3;
        let mut distinct = received.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            cases,
            "nothing else reached the SAMU: {received:#?}"
        );
        for publish in seen.published.iter().filter(|p| p.routing_key == PLATFORM) {
            assert_eq!(publish.delivery_mode, Some(2), "{publish:?}");
            assert_eq!(
                publish.content_type.as_deref(),
                Some("application/json"),
                "{publish:?}"
            );
            assert!(
                publish
                    .message_id
                    .as_deref()
                    .is_some_and(|id| id.starts_with(PLATFORM)),
                "{publish:?}"
            );
        }
    }

    // A client whose queues the hub did not create is told so, and creates none.
    let stranger = "fr.fire.secourir.sdis99";
    let mut lost = Hub::start(config(&broker, &dir.path().join("other.sqlite"), stranger)).unwrap();
    let mut other_events = Events { log: Vec::new() };
    let refused_link = other_events
        .until(&mut lost, "refused link", |e| {
            matches!(e, HubEvent::Disconnected { .. })
        })
        .await;
    let HubEvent::Disconnected { reason } = refused_link else {
        unreachable!()
    };
    assert!(
        reason.contains(&format!("{stranger}.message")) && reason.contains("NOT_FOUND"),
        "{reason}"
    );
    assert!(!role.queue_exists(&format!("{stranger}.message")).await);
    lost.shutdown().await;
    hub.shutdown().await;
    role.stop().await;
}

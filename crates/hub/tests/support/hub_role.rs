//! The test's stand-ins for the Hub Santé and the partners behind it. The hub's part follows its
//! dispatcher (`ansforge/SAMU-Hub-Sante`, `hub/dispatcher`): clients publish to the `hubsante`
//! topic exchange with their id as routing key; everything lands in `dispatch`, from where the
//! dispatcher forwards to `{recipient}.message`, `.ack` (Ack) or `.info` (Error) through the
//! `distribution` exchange. Three SAMU: one acknowledges (RC-REF), one refuses (RS-ERROR), one
//! stays silent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use secourir_cisu::envelope::{reference_message, wrap};
use secourir_cisu::{Kind, Outgoing, Route, SendParams, Status};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The platform's client id.
pub const PLATFORM: &str = "fr.fire.secourir.sdis13";
/// A SAMU that acknowledges.
pub const SAMU_ACKS: &str = "fr.health.samu13";
/// A SAMU that answers with an error.
pub const SAMU_REFUSES: &str = "fr.health.samu83";
/// A SAMU that never answers.
pub const SAMU_SILENT: &str = "fr.health.samu84";

/// What the hub's stand-in saw published by clients.
#[derive(Clone, Debug)]
pub struct Published {
    /// The routing key (the client id).
    pub routing_key: String,
    /// The AMQP message id.
    pub message_id: Option<String>,
    /// 2 for persistent.
    pub delivery_mode: Option<u8>,
    /// The content type.
    pub content_type: Option<String>,
}

/// What the stand-ins saw.
#[derive(Default, Debug)]
pub struct Seen {
    /// Every publish reaching the hub, in order.
    pub published: Vec<Published>,
    /// Message ids received by each partner, in order, repeats included.
    pub received: BTreeMap<&'static str, Vec<String>>,
    /// The documents each partner received, in the same order.
    pub bodies: BTreeMap<&'static str, Vec<Vec<u8>>>,
}

/// The running stand-ins.
pub struct HubRole {
    connection: Connection,
    tasks: Vec<JoinHandle<()>>,
}

/// Connects, retrying until the deadline (a broker just started may still be booting).
pub async fn connect(uri: &str) -> Connection {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Connection::connect(uri, ConnectionProperties::default()).await {
            Ok(connection) => return connection,
            // The pace of the retries, not a wait for something.
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(error) => panic!("no broker at {uri}: {error}"),
        }
    }
}

/// Declares what the hub declares for these clients.
pub async fn declare_topology(uri: &str) {
    let connection = connect(uri).await;
    let channel = connection.create_channel().await.expect("channel");
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let none = FieldTable::default;
    channel
        .exchange_declare("hubsante".into(), ExchangeKind::Topic, durable, none())
        .await
        .unwrap();
    channel
        .exchange_declare("distribution".into(), ExchangeKind::Direct, durable, none())
        .await
        .unwrap();
    let queue = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let bind = QueueBindOptions::default();
    channel
        .queue_declare("dispatch".into(), queue, none())
        .await
        .unwrap();
    channel
        .queue_bind(
            "dispatch".into(),
            "hubsante".into(),
            "#".into(),
            bind,
            none(),
        )
        .await
        .unwrap();
    for client in [PLATFORM, SAMU_ACKS, SAMU_REFUSES, SAMU_SILENT] {
        for suffix in ["message", "ack", "info"] {
            let name = format!("{client}.{suffix}");
            channel
                .queue_declare(name.clone().into(), queue, none())
                .await
                .unwrap();
            channel
                .queue_bind(
                    name.clone().into(),
                    "distribution".into(),
                    name.into(),
                    bind,
                    none(),
                )
                .await
                .unwrap();
        }
    }
    connection.close(200, "done".into()).await.unwrap();
}

impl HubRole {
    /// Starts the dispatcher and the three partners.
    pub async fn start(uri: &str, seen: Arc<Mutex<Seen>>) -> HubRole {
        let connection = connect(uri).await;
        let mut tasks = Vec::new();
        let dispatcher = channel(&connection).await;
        tasks.push(tokio::spawn(dispatch(dispatcher, seen.clone())));
        for partner in [SAMU_ACKS, SAMU_REFUSES, SAMU_SILENT] {
            let channel = channel(&connection).await;
            tasks.push(tokio::spawn(answer(channel, partner, seen.clone())));
        }
        HubRole { connection, tasks }
    }

    /// Stops them, as the hub's own processes stop when its broker dies.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        // The broker may already be gone.
        let _ = self.connection.close(200, "stop".into()).await;
    }

    /// A partner hands a case to the platform, through the hub.
    pub async fn publish_as(&self, partner: &str, message: &Outgoing) {
        let channel = channel(&self.connection).await;
        publish(
            &channel,
            "hubsante",
            partner,
            &message.distribution_id,
            &message.body,
        )
        .await;
    }

    /// Puts raw bytes straight on one of the platform's queues.
    pub async fn inject(&self, queue: &str, bytes: &[u8]) {
        let channel = channel(&self.connection).await;
        publish(&channel, "distribution", queue, "garbage-1", bytes).await;
    }

    /// The next message on a queue, polled until the deadline.
    pub async fn get(&self, queue: &str, within: Duration) -> Value {
        let channel = channel(&self.connection).await;
        let deadline = Instant::now() + within;
        loop {
            let got = channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .expect("basic.get");
            if let Some(message) = got {
                return serde_json::from_slice(&message.delivery.data).expect("JSON on the queue");
            }
            assert!(
                Instant::now() < deadline,
                "nothing on {queue} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether a queue exists, asked passively.
    pub async fn queue_exists(&self, queue: &str) -> bool {
        let channel = self.connection.create_channel().await.expect("channel");
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .is_ok()
    }
}

async fn channel(connection: &Connection) -> Channel {
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    channel
}

async fn publish(channel: &Channel, exchange: &str, key: &str, id: &str, body: &[u8]) {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(id.to_owned().into());
    channel
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .expect("publish")
        .await
        .expect("confirmed");
}

async fn dispatch(channel: Channel, seen: Arc<Mutex<Seen>>) {
    let options = BasicConsumeOptions::default();
    let mut deliveries = channel
        .basic_consume(
            "dispatch".into(),
            "dispatcher".into(),
            options,
            FieldTable::default(),
        )
        .await
        .expect("consume dispatch");
    while let Some(Ok(delivery)) = deliveries.next().await {
        let properties = &delivery.properties;
        seen.lock().unwrap().published.push(Published {
            routing_key: delivery.routing_key.to_string(),
            message_id: properties.message_id().as_ref().map(ToString::to_string),
            delivery_mode: *properties.delivery_mode(),
            content_type: properties.content_type().as_ref().map(ToString::to_string),
        });
        let envelope: Value = serde_json::from_slice(&delivery.data).expect("clients send JSON");
        let recipient = envelope["descriptor"]["explicitAddress"]["explicitAddressValue"]
            .as_str()
            .expect("an explicit address");
        let suffix = match envelope["distributionKind"].as_str() {
            Some("Ack") => "ack",
            Some("Error") => "info",
            _ => "message",
        };
        let id = properties
            .message_id()
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let queue = format!("{recipient}.{suffix}");
        publish(&channel, "distribution", &queue, &id, &delivery.data).await;
        delivery
            .ack(BasicAckOptions::default())
            .await
            .expect("ack dispatch");
    }
}

async fn answer(channel: Channel, partner: &'static str, seen: Arc<Mutex<Seen>>) {
    let queue = format!("{partner}.message");
    let options = BasicConsumeOptions::default();
    let mut deliveries = channel
        .basic_consume(queue.into(), partner.into(), options, FieldTable::default())
        .await
        .expect("consume");
    while let Some(Ok(delivery)) = deliveries.next().await {
        let id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(ToString::to_string);
        let id = id.expect("every message carries its id");
        {
            let mut seen = seen.lock().unwrap();
            seen.received.entry(partner).or_default().push(id);
            seen.bodies
                .entry(partner)
                .or_default()
                .push(delivery.data.clone());
        }
        let received = secourir_cisu::parse(&delivery.data).expect("the platform sends CISU");
        let (route, params) = reply(partner, &received.sender_id);
        let out = match partner {
            SAMU_ACKS => {
                Some(reference_message(&route, &params, &received.distribution_id).unwrap())
            }
            SAMU_REFUSES => {
                let error = json!({
                    "errorCode": { "statusCode": 202, "statusString": "INVALID_MESSAGE" },
                    "errorCause": "qualification inconnue du LRM",
                    "referencedDistributionID": received.distribution_id,
                });
                let params = SendParams {
                    kind: Kind::Error,
                    ..params
                };
                Some(wrap(&route, &params, "error", error).unwrap())
            }
            _ => None,
        };
        if let Some(out) = out {
            publish(
                &channel,
                "hubsante",
                partner,
                &out.distribution_id,
                &out.body,
            )
            .await;
        }
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
}

fn reply(partner: &str, to: &str) -> (Route, SendParams) {
    static REPLIES: AtomicU32 = AtomicU32::new(0);
    let n = REPLIES.fetch_add(1, Ordering::Relaxed);
    let route = Route {
        sender_id: partner.into(),
        recipient_id: to.into(),
    };
    let sent_at = now();
    let params = SendParams {
        local_id: format!("reply-{}-{n}", std::process::id()),
        sent_at,
        expires_at: sent_at + chrono::TimeDelta::hours(1),
        kind: Kind::Ack,
        status: Status::Exercise,
    };
    (route, params)
}

/// Now, in Paris time.
pub fn now() -> chrono::DateTime<chrono::FixedOffset> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    secourir_cisu::time::paris_time(ms).unwrap()
}

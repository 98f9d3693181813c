//! The loop that owns the tracker, the outbox and the link. Each turn: open the link when the
//! reconnection schedule allows, hand the tracker's due messages to the broker, pass the
//! tracker's reports on, then wait for whichever comes first: a command from the platform, the
//! link opening, a broker confirmation, a delivery, or the tracker's next deadline.
//!
//! Delivery is at least once: a confirmation lost with a dying connection makes the message go
//! again, and partners tell the repeat by its AMQP message id (the `distributionID`).

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use lapin::Confirmation;
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use secourir_cisu::delivery::SubmitError;
use secourir_cisu::envelope::reference_message;
use secourir_cisu::{
    Delivery, DeliveryEvent, FactsError, Incoming, Outgoing, Received, Route, SendParams, Status,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{ConfigError, HubConfig};
use crate::link::{Link, LinkError};
use crate::outbox::{Outbox, OutboxError, Outcome};
use crate::reconnect::Reconnect;

/// Commands waiting for the driver, at most.
pub const COMMANDS_MAX: usize = 256;
/// Messages handed to the broker in one turn, so that deliveries and commands are not starved.
pub const TRANSMIT_PER_TURN_MAX: usize = 64;
/// The longest sleep when nothing is due: a bound, not a schedule.
const IDLE_WAKE_MS: i64 = 60_000;

/// What the hub tells the platform.
#[derive(Debug)]
pub enum HubEvent {
    /// A message of ours was acknowledged, refused, expired, or is overdue.
    Delivery(DeliveryEvent),
    /// A partner's message, already acknowledged to it (RC-REF); boxed, being large and rare.
    Received(Box<Received>),
    /// Bytes on one of our queues that are no hub message: reported, then discarded.
    Unreadable {
        /// The queue.
        queue: String,
        /// Why.
        reason: String,
    },
    /// The link to the hub is open, queues checked.
    Connected,
    /// The link is down or could not open; the driver retries with backoff.
    Disconnected {
        /// Why.
        reason: String,
    },
}

/// A message the hub did not take.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The outbox could not store it.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The tracker is full or already follows this id.
    #[error(transparent)]
    Refused(#[from] SubmitError),
    /// The driver has stopped.
    #[error("the hub driver has stopped")]
    Stopped,
}

/// The hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The outbox.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The outbox holds more open messages than the tracker may follow.
    #[error("outbox: {0}")]
    Restore(#[from] SubmitError),
}

/// The platform's handle on the hub.
pub struct Hub {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<HubEvent>,
    task: JoinHandle<()>,
}

enum Command {
    Send(Outgoing, oneshot::Sender<Result<(), SendError>>),
    Shutdown,
}

impl Hub {
    /// Opens the outbox, takes up its open messages and starts the driver on the current tokio
    /// runtime; the link opens in the background.
    pub fn start(config: HubConfig) -> Result<Hub, StartError> {
        config.check()?;
        let outbox = Outbox::open(&config.outbox)?;
        let now = now_ms();
        outbox.prune(now.saturating_sub(config.keep_ended_ms))?;
        let mut delivery = Delivery::new(config.delivery.into());
        for submission in outbox.open_messages()? {
            delivery.handle_submit(now, submission)?;
        }
        let (commands, command_rx) = mpsc::channel(COMMANDS_MAX);
        let (event_tx, events) = mpsc::channel(config.events_max);
        let driver = Driver {
            reconnect: Reconnect::new(config.reconnect_first_ms, config.reconnect_max_ms),
            config,
            outbox,
            delivery,
            link: None,
            in_flight: BTreeSet::new(),
            pending: VecDeque::new(),
            events: event_tx,
        };
        let task = tokio::spawn(driver.run(command_rx));
        Ok(Hub {
            commands,
            events,
            task,
        })
    }

    /// Hands a message over; `Ok` once it is on disk, whatever the broker's state.
    pub async fn send(&self, message: Outgoing) -> Result<(), SendError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Send(message, reply))
            .await
            .map_err(|_| SendError::Stopped)?;
        answer.await.map_err(|_| SendError::Stopped)?
    }

    /// The next event; `None` once the driver stopped.
    pub async fn next_event(&mut self) -> Option<HubEvent> {
        self.events.recv().await
    }

    /// Stops the driver and closes the link; open messages stay in the outbox for next time.
    pub async fn shutdown(self) {
        // A driver already gone has nothing left to close.
        let _ = self.commands.send(Command::Shutdown).await;
        drop(self.events);
        let _ = self.task.await;
    }
}

type Confirms = FuturesUnordered<BoxFuture<'static, (String, lapin::Result<Confirmation>)>>;

struct Driver {
    config: HubConfig,
    outbox: Outbox,
    delivery: Delivery,
    reconnect: Reconnect,
    link: Option<Link>,
    /// Messages handed to the broker on the current link, awaiting its confirmation.
    in_flight: BTreeSet<String>,
    /// Events not yet passed to the platform.
    pending: VecDeque<HubEvent>,
    events: mpsc::Sender<HubEvent>,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut confirms = Confirms::new();
        let mut connecting: Option<BoxFuture<'static, Result<Link, LinkError>>> = None;
        loop {
            if self.link.is_none() && connecting.is_none() && self.reconnect.due(now_ms()) {
                let config = self.config.clone();
                connecting = Some(Box::pin(async move { Link::open(&config).await }));
            }
            self.transmit(&mut confirms).await;
            if self.flush_events().await.is_err() {
                break;
            }
            let wake = self.wake_at(connecting.is_some());
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Send(message, reply)) => {
                        // The sender may have given up waiting; the message is stored all the same.
                        let _ = reply.send(self.accept(message));
                    }
                    Some(Command::Shutdown) | None => break,
                },
                opened = async { connecting.as_mut().expect("guarded by the condition").await },
                    if connecting.is_some() =>
                {
                    connecting = None;
                    self.opened(opened);
                }
                Some((id, confirmation)) = confirms.next(), if !confirms.is_empty() => {
                    self.confirmed(id, confirmation);
                }
                tagged = next_delivery(&mut self.link), if self.link.is_some() => match tagged {
                    Some((queue, Some(Ok(delivery)))) => self.incoming(queue, delivery, &mut confirms).await,
                    Some((queue, Some(Err(error)))) => self.lose_link(format!("{queue}: {error}"), &mut confirms),
                    Some((queue, None)) => self.lose_link(format!("{queue}: consumer cancelled"), &mut confirms),
                    None => self.lose_link("no consumer left".into(), &mut confirms),
                },
                () = tokio::time::sleep_until(wake) => self.delivery.handle_timeout(now_ms()),
            }
        }
        if let Some(link) = self.link.take() {
            link.close().await;
        }
    }

    fn accept(&mut self, message: Outgoing) -> Result<(), SendError> {
        let now = now_ms();
        self.outbox.store(&message, now)?;
        let submission = secourir_cisu::Submission {
            id: message.distribution_id.clone(),
            expires_at_ms: message.expires_at.timestamp_millis(),
            published_at_ms: None,
        };
        if let Err(refused) = self.delivery.handle_submit(now, submission) {
            // What the tracker does not follow must not wait in the outbox for a restart.
            self.outbox.remove(&message.distribution_id)?;
            return Err(refused.into());
        }
        Ok(())
    }

    fn opened(&mut self, opened: Result<Link, LinkError>) {
        match opened {
            Ok(link) => {
                tracing::info!(client_id = %self.config.client_id, "hub link open");
                self.link = Some(link);
                self.reconnect.connected();
                self.pending.push_back(HubEvent::Connected);
            }
            Err(error) => {
                let next_at_ms = self.reconnect.failed(now_ms());
                tracing::warn!(%error, next_at_ms, "hub link did not open");
                self.pending.push_back(HubEvent::Disconnected {
                    reason: error.to_string(),
                });
            }
        }
    }

    async fn transmit(&mut self, confirms: &mut Confirms) {
        let mut failure = None;
        for _ in 0..TRANSMIT_PER_TURN_MAX {
            let Some(link) = &self.link else { return };
            let now = now_ms();
            let Some(id) = self.delivery.poll_transmit(now) else {
                return;
            };
            let body = match self.outbox.body(&id) {
                Ok(Some(body)) => body,
                Ok(None) => {
                    // Only this driver deletes rows, and never an open one: reported if it happens.
                    self.delivery
                        .handle_error(now, &id, "absent de la boîte d'envoi");
                    continue;
                }
                Err(error) => {
                    tracing::error!(%error, %id, "outbox unreadable; the message waits");
                    self.delivery.handle_publish_failed(now, &id);
                    return;
                }
            };
            match link.publish(&self.config, &id, body).await {
                Ok(confirm) => {
                    self.in_flight.insert(id.clone());
                    confirms.push(Box::pin(async move { (id, confirm.await) }));
                }
                Err(error) => {
                    self.delivery.handle_publish_failed(now, &id);
                    failure = Some(format!("publish: {error}"));
                    break;
                }
            }
        }
        if let Some(reason) = failure {
            self.lose_link(reason, confirms);
        }
    }

    fn confirmed(&mut self, id: String, confirmation: lapin::Result<Confirmation>) {
        if !self.in_flight.remove(&id) {
            return;
        }
        let now = now_ms();
        match confirmation {
            Ok(Confirmation::Ack(_)) => {
                if self.delivery.handle_published(now, &id)
                    && let Err(error) = self.outbox.mark_published(&id, now)
                {
                    // Not fatal: after a restart the message would only go once more.
                    tracing::error!(%error, %id, "outbox did not record the publish");
                }
            }
            Ok(other) => {
                tracing::warn!(?other, %id, "broker did not take the message");
                self.delivery.handle_publish_failed(now, &id);
            }
            Err(error) => {
                tracing::warn!(%error, %id, "publish unconfirmed");
                self.delivery.handle_publish_failed(now, &id);
            }
        }
    }

    async fn incoming(&mut self, queue: String, amqp: AmqpDelivery, confirms: &mut Confirms) {
        let now = now_ms();
        let mut requeue = None;
        match secourir_cisu::parse(&amqp.data) {
            Err(error) => {
                tracing::warn!(%queue, %error, "unreadable message");
                self.pending.push_back(HubEvent::Unreadable {
                    queue,
                    reason: error.to_string(),
                });
            }
            Ok(received) => match &received.message {
                Incoming::Reference(reference) if reference.refused => {
                    let reason = format!("refusé par {}", received.sender_id);
                    self.delivery
                        .handle_error(now, &reference.distribution_id, &reason);
                }
                Incoming::Reference(reference) => {
                    self.delivery.handle_ack(now, &reference.distribution_id);
                }
                Incoming::Error(error) => {
                    let reason =
                        format!("{} ({}) : {}", error.status, error.status_code, error.cause);
                    self.delivery
                        .handle_error(now, &error.referenced_distribution_id, &reason);
                }
                Incoming::CreateCase(_) | Incoming::Other { .. } => {
                    match self.acknowledge(&received).await {
                        Ok(()) => self
                            .pending
                            .push_back(HubEvent::Received(Box::new(received))),
                        Err(AckError::Unaddressable(error)) => {
                            let reason = format!("cannot acknowledge: {error}");
                            self.pending
                                .push_back(HubEvent::Unreadable { queue, reason });
                        }
                        Err(AckError::Amqp(reason)) => requeue = Some(reason),
                    }
                }
            },
        }
        let settled = if requeue.is_some() {
            let options = BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            };
            amqp.nack(options).await
        } else {
            amqp.ack(BasicAckOptions::default()).await
        };
        if let Err(error) = settled {
            self.lose_link(format!("settling a delivery: {error}"), confirms);
        } else if let Some(reason) = requeue {
            self.lose_link(format!("acknowledgement to a partner: {reason}"), confirms);
        }
    }

    /// Sends the RC-REF of a partner's message and waits for the broker to take it. Its id is
    /// derived from the acknowledged message's, so a redelivery is acknowledged identically.
    async fn acknowledge(&mut self, received: &Received) -> Result<(), AckError> {
        let Some(link) = &self.link else {
            return Err(AckError::Amqp("no link".into()));
        };
        let now = now_ms();
        let sent_at = secourir_cisu::time::paris_time(now).expect("the system clock is in range");
        let local_id: String = format!("ack.{}", received.distribution_id)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .take(200)
            .collect();
        let route = Route {
            sender_id: self.config.client_id.clone(),
            recipient_id: received.sender_id.clone(),
        };
        let params = SendParams {
            local_id,
            sent_at,
            expires_at: sent_at + chrono::TimeDelta::milliseconds(self.config.ack_valid_ms),
            kind: secourir_cisu::Kind::Ack,
            status: if received.status == "Exercise" {
                Status::Exercise
            } else {
                Status::Actual
            },
        };
        let ack = reference_message(&route, &params, &received.distribution_id)
            .map_err(AckError::Unaddressable)?;
        let confirm = link.publish(&self.config, &ack.distribution_id, ack.body);
        match confirm
            .await
            .map_err(|e| AckError::Amqp(e.to_string()))?
            .await
        {
            Ok(Confirmation::Ack(_)) => Ok(()),
            Ok(other) => Err(AckError::Amqp(format!("{other:?}"))),
            Err(error) => Err(AckError::Amqp(error.to_string())),
        }
    }

    fn lose_link(&mut self, reason: String, confirms: &mut Confirms) {
        tracing::warn!(%reason, "hub link lost");
        self.link = None;
        // Confirmations of the dead link must not settle sends made on the next one.
        *confirms = Confirms::new();
        let now = now_ms();
        for id in std::mem::take(&mut self.in_flight) {
            self.delivery.handle_publish_failed(now, &id);
        }
        self.reconnect.failed(now);
        self.pending.push_back(HubEvent::Disconnected { reason });
    }

    /// Passes the tracker's reports and the driver's own to the platform, recording ends in the
    /// outbox first. Errs when the platform dropped its handle.
    async fn flush_events(&mut self) -> Result<(), ()> {
        let now = now_ms();
        while let Some(event) = self.delivery.poll_event() {
            let ended = match &event {
                DeliveryEvent::Acked { id } => Some((id, Outcome::Acked, None)),
                DeliveryEvent::Refused { id, reason } => {
                    Some((id, Outcome::Refused, Some(reason.as_str())))
                }
                DeliveryEvent::Expired { id, .. } => Some((id, Outcome::Expired, None)),
                DeliveryEvent::Overdue { .. } => None,
            };
            if let Some((id, outcome, reason)) = ended
                && let Err(error) = self.outbox.end(id, outcome, reason, now)
            {
                // The report still goes out; after a restart the message is followed once more.
                tracing::error!(%error, %id, "outbox did not record the end");
            }
            self.pending.push_back(HubEvent::Delivery(event));
        }
        while let Some(event) = self.pending.pop_front() {
            self.events.send(event).await.map_err(|_| ())?;
        }
        Ok(())
    }

    fn wake_at(&self, connecting: bool) -> Instant {
        let now = now_ms();
        let mut deadline = now.saturating_add(IDLE_WAKE_MS);
        if let Some(at) = self.delivery.poll_timeout() {
            deadline = deadline.min(at);
        }
        if self.link.is_none() && !connecting {
            deadline = deadline.min(self.reconnect.next_at_ms());
        }
        let wait_ms = u64::try_from(deadline.saturating_sub(now)).unwrap_or(0);
        Instant::now() + Duration::from_millis(wait_ms)
    }
}

enum AckError {
    /// The partner's ids cannot address an answer.
    Unaddressable(FactsError),
    /// The broker did not take the answer.
    Amqp(String),
}

async fn next_delivery(link: &mut Option<Link>) -> Option<crate::link::Tagged> {
    match link {
        Some(link) => link.next_delivery().await,
        None => std::future::pending().await,
    }
}

/// The wall clock, in the unix milliseconds the tracker and the envelopes use.
fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

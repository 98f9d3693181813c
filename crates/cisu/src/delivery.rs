//! Follows each message handed to the hub until it ends one of three ways, each reported: the
//! partner acknowledged it (RC-REF), it was refused (RS-ERROR or a refusing RC-REF), or its
//! `dateTimeExpires` passed first. Nothing leaves this view silently.
//!
//! A message is (re)sent only while the broker has not confirmed it: once confirmed it is the
//! hub's to deliver, and sending it again would hand the partner a duplicate. A confirmed message
//! the partner leaves unacknowledged past `overdue_after_ms` is reported once as overdue, for the
//! call-taker to phone the partner, and stays followed until it ends.
//!
//! Sans-IO in the manner of quinn-proto: inputs come in through `handle_*` with the time, outputs
//! are drained with [`Delivery::poll_transmit`] and [`Delivery::poll_event`], and
//! [`Delivery::poll_timeout`] says when to call [`Delivery::handle_timeout`]. Times are unix
//! milliseconds, as the envelope's times are wall-clock times; a clock stepping back is held.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The longest message id followed.
pub const ID_LEN_MAX: usize = 255;

/// Delays and bounds of the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Wait before the first resend of a message the broker did not take.
    pub retry_first_ms: i64,
    /// Longest wait between resends: the delay doubles up to it.
    pub retry_max_ms: i64,
    /// A publish not confirmed this long after it was handed out counts as failed.
    pub confirm_timeout_ms: i64,
    /// A confirmed message unacknowledged this long is reported overdue.
    pub overdue_after_ms: i64,
    /// The most messages followed, and the most events left undrained.
    pub messages_max: usize,
}

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            retry_first_ms: 1_000,
            retry_max_ms: 60_000,
            confirm_timeout_ms: 15_000,
            overdue_after_ms: 120_000,
            messages_max: 10_000,
        }
    }
}

/// A message handed to the tracker, new or restored from the outbox after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    /// Its `distributionID`.
    pub id: String,
    /// Its `dateTimeExpires`, unix ms.
    pub expires_at_ms: i64,
    /// When the broker confirmed it, if it already did before a restart.
    pub published_at_ms: Option<i64>,
}

/// What the tracker reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryEvent {
    /// The partner acknowledged the message: it ends here.
    Acked {
        /// The message.
        id: String,
    },
    /// The hub or the partner refused the message: it ends here.
    Refused {
        /// The message.
        id: String,
        /// The refusal's words, for the call-taker.
        reason: String,
    },
    /// Confirmed by the broker, still unacknowledged: reported once, still followed.
    Overdue {
        /// The message.
        id: String,
        /// When the broker confirmed it.
        published_at_ms: i64,
    },
    /// Its expiry passed before an acknowledgement: it ends here.
    Expired {
        /// The message.
        id: String,
        /// Whether the broker had taken it (the partner may have it, unacknowledged).
        published: bool,
    },
}

/// Where a followed message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// To be sent at `send_at_ms`; `attempts` sends failed so far.
    Waiting {
        /// Sends so far.
        attempts: u32,
        /// When to send.
        send_at_ms: i64,
    },
    /// Handed out for sending at `since_ms`, awaiting the broker's confirmation.
    Sending {
        /// Sends so far, this one included.
        attempts: u32,
        /// When it was handed out.
        since_ms: i64,
    },
    /// Confirmed by the broker at `at_ms`, awaiting the partner's acknowledgement.
    Published {
        /// When the broker confirmed it.
        at_ms: i64,
        /// Whether it was reported overdue.
        overdue: bool,
    },
}

/// Why a message was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The id is already followed.
    #[error("message {0} is already followed")]
    Duplicate(String),
    /// The id is empty or longer than [`ID_LEN_MAX`].
    #[error("message id of {0} bytes")]
    BadId(usize),
    /// As many messages are followed, or events undrained, as the configuration allows.
    #[error("{0} messages followed or events undrained: no room for another")]
    Full(usize),
}

/// The delivery tracker.
///
/// Each message's next deadline is kept in an ordered index, and the messages due for sending
/// in another, so that a burst of thousands of messages costs a logarithm per step, not a scan
/// of every message followed.
#[derive(Debug)]
pub struct Delivery {
    config: DeliveryConfig,
    now_ms: i64,
    messages: BTreeMap<String, Message>,
    /// Each message once, by the instant something next happens to it.
    wake: BTreeSet<(i64, String)>,
    /// Messages due for sending, by when they became due.
    ready: BTreeSet<(i64, String)>,
    events: VecDeque<DeliveryEvent>,
}

#[derive(Debug)]
struct Message {
    expires_at_ms: i64,
    stage: Stage,
    /// Its key in `wake`.
    wake_at_ms: i64,
    /// Its key in `ready`, while it waits there.
    ready_at_ms: Option<i64>,
}

impl Message {
    /// The next instant the tracker must look at this message.
    fn deadline(&self, config: &DeliveryConfig) -> i64 {
        let stage_ms = match self.stage {
            // Once in `ready`, only its expiry is left to watch.
            Stage::Waiting { .. } if self.ready_at_ms.is_some() => i64::MAX,
            Stage::Waiting { send_at_ms, .. } => send_at_ms,
            Stage::Sending { since_ms, .. } => since_ms.saturating_add(config.confirm_timeout_ms),
            Stage::Published {
                at_ms,
                overdue: false,
            } => at_ms.saturating_add(config.overdue_after_ms),
            Stage::Published { overdue: true, .. } => i64::MAX,
        };
        stage_ms.min(self.expires_at_ms)
    }
}

impl Delivery {
    /// An empty tracker.
    pub fn new(config: DeliveryConfig) -> Delivery {
        assert!(config.retry_first_ms > 0 && config.retry_max_ms >= config.retry_first_ms);
        assert!(config.confirm_timeout_ms > 0 && config.overdue_after_ms > 0);
        Delivery {
            config,
            now_ms: i64::MIN,
            messages: BTreeMap::new(),
            wake: BTreeSet::new(),
            ready: BTreeSet::new(),
            events: VecDeque::new(),
        }
    }

    /// Takes a message to follow. A message already expired is taken too, and reported at the
    /// next timeout: refusing it here would be the silent loss this tracker exists to prevent.
    pub fn handle_submit(
        &mut self,
        now_ms: i64,
        submission: Submission,
    ) -> Result<(), SubmitError> {
        let now_ms = self.advance(now_ms);
        if submission.id.is_empty() || submission.id.len() > ID_LEN_MAX {
            return Err(SubmitError::BadId(submission.id.len()));
        }
        if self.messages.contains_key(&submission.id) {
            return Err(SubmitError::Duplicate(submission.id));
        }
        if self.messages.len() >= self.config.messages_max
            || self.events.len() >= self.config.messages_max
        {
            return Err(SubmitError::Full(self.config.messages_max));
        }
        let stage = match submission.published_at_ms {
            Some(at_ms) => Stage::Published {
                at_ms,
                overdue: false,
            },
            None => Stage::Waiting {
                attempts: 0,
                send_at_ms: now_ms,
            },
        };
        let mut message = Message {
            expires_at_ms: submission.expires_at_ms,
            stage,
            wake_at_ms: 0,
            ready_at_ms: None,
        };
        message.wake_at_ms = message.deadline(&self.config);
        self.wake
            .insert((message.wake_at_ms, submission.id.clone()));
        self.messages.insert(submission.id, message);
        Ok(())
    }

    /// The next message to publish now, if any; it then awaits [`Delivery::handle_published`]
    /// or [`Delivery::handle_publish_failed`] (or counts as failed after `confirm_timeout_ms`).
    pub fn poll_transmit(&mut self, now_ms: i64) -> Option<String> {
        self.handle_timeout(now_ms);
        let now_ms = self.now_ms;
        let (_, id) = self.ready.pop_first()?;
        let message = self
            .messages
            .get_mut(&id)
            .expect("a ready message is followed");
        message.ready_at_ms = None;
        let Stage::Waiting { attempts, .. } = message.stage else {
            unreachable!("only waiting messages are ready")
        };
        message.stage = Stage::Sending {
            attempts: attempts.saturating_add(1),
            since_ms: now_ms,
        };
        self.reschedule(&id);
        Some(id)
    }

    /// The broker confirmed the message. A confirmation arriving after the tracker gave up
    /// waiting for it still counts: the broker has the message.
    pub fn handle_published(&mut self, now_ms: i64, id: &str) -> bool {
        let now_ms = self.advance(now_ms);
        match self.messages.get_mut(id) {
            Some(message) if !matches!(message.stage, Stage::Published { .. }) => {
                message.stage = Stage::Published {
                    at_ms: now_ms,
                    overdue: false,
                };
                if let Some(at) = message.ready_at_ms.take() {
                    self.ready.remove(&(at, id.to_owned()));
                }
                self.reschedule(id);
                true
            }
            _ => false,
        }
    }

    /// The broker refused the message or the connection dropped before it confirmed.
    pub fn handle_publish_failed(&mut self, now_ms: i64, id: &str) -> bool {
        let now_ms = self.advance(now_ms);
        let config = self.config;
        match self.messages.get_mut(id) {
            Some(message) => match message.stage {
                Stage::Sending { attempts, .. } => {
                    message.stage = Stage::Waiting {
                        attempts,
                        send_at_ms: now_ms + backoff_ms(&config, attempts),
                    };
                    self.reschedule(id);
                    true
                }
                _ => false,
            },
            None => false,
        }
    }

    /// The partner acknowledged the message (RC-REF). False for an id not followed: a repeat.
    pub fn handle_ack(&mut self, now_ms: i64, id: &str) -> bool {
        self.advance(now_ms);
        self.end(id, |id| DeliveryEvent::Acked { id })
    }

    /// The hub or the partner refused the message (RS-ERROR, or an RC-REF marked refused).
    pub fn handle_error(&mut self, now_ms: i64, id: &str, reason: &str) -> bool {
        self.advance(now_ms);
        self.end(id, |id| DeliveryEvent::Refused {
            id,
            reason: reason.to_owned(),
        })
    }

    /// Applies what time brings: expiries, confirmations waited for too long, overdue messages,
    /// messages becoming due. Harmless when called early or twice.
    pub fn handle_timeout(&mut self, now_ms: i64) {
        let now_ms = self.advance(now_ms);
        let config = self.config;
        while self.wake.first().is_some_and(|(at, _)| *at <= now_ms) {
            let (_, id) = self.wake.pop_first().expect("just looked at");
            let message = self
                .messages
                .get_mut(&id)
                .expect("a woken message is followed");
            if message.expires_at_ms <= now_ms {
                let message = self.messages.remove(&id).expect("just found");
                if let Some(at) = message.ready_at_ms {
                    self.ready.remove(&(at, id.clone()));
                }
                let published = matches!(message.stage, Stage::Published { .. });
                self.events
                    .push_back(DeliveryEvent::Expired { id, published });
                continue;
            }
            match message.stage {
                Stage::Waiting { send_at_ms, .. } if send_at_ms <= now_ms => {
                    message.ready_at_ms = Some(send_at_ms);
                    self.ready.insert((send_at_ms, id.clone()));
                }
                Stage::Sending { attempts, since_ms }
                    if since_ms.saturating_add(config.confirm_timeout_ms) <= now_ms =>
                {
                    let send_at_ms = now_ms.saturating_add(backoff_ms(&config, attempts));
                    message.stage = Stage::Waiting {
                        attempts,
                        send_at_ms,
                    };
                }
                Stage::Published {
                    at_ms,
                    overdue: false,
                } if at_ms.saturating_add(config.overdue_after_ms) <= now_ms => {
                    message.stage = Stage::Published {
                        at_ms,
                        overdue: true,
                    };
                    self.events.push_back(DeliveryEvent::Overdue {
                        id: id.clone(),
                        published_at_ms: at_ms,
                    });
                }
                _ => {}
            }
            message.wake_at_ms = message.deadline(&config);
            self.wake.insert((message.wake_at_ms, id));
        }
    }

    /// The next report, oldest first.
    pub fn poll_event(&mut self) -> Option<DeliveryEvent> {
        self.events.pop_front()
    }

    /// When [`Delivery::handle_timeout`] has something to do, or a message becomes due.
    pub fn poll_timeout(&self) -> Option<i64> {
        let ready = self.ready.first().map(|(at, _)| *at);
        let wake = self
            .wake
            .first()
            .map(|(at, _)| *at)
            .filter(|at| *at < i64::MAX);
        match (ready, wake) {
            (Some(r), Some(w)) => Some(r.min(w)),
            (r, w) => r.or(w),
        }
    }

    /// Where a message stands, if still followed.
    pub fn stage(&self, id: &str) -> Option<Stage> {
        self.messages.get(id).map(|message| message.stage)
    }

    /// The messages reported overdue and still unacknowledged, for the call-taker's screen.
    pub fn overdue(&self) -> impl Iterator<Item = &str> {
        self.messages
            .iter()
            .filter(|(_, message)| matches!(message.stage, Stage::Published { overdue: true, .. }))
            .map(|(id, _)| id.as_str())
    }

    /// How many messages are followed.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether no message is followed.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    fn advance(&mut self, now_ms: i64) -> i64 {
        self.now_ms = self.now_ms.max(now_ms);
        self.now_ms
    }

    /// Moves a message's entry in `wake` to its new deadline after its stage changed.
    fn reschedule(&mut self, id: &str) {
        let config = self.config;
        let Some(message) = self.messages.get_mut(id) else {
            return;
        };
        self.wake.remove(&(message.wake_at_ms, id.to_owned()));
        message.wake_at_ms = message.deadline(&config);
        self.wake.insert((message.wake_at_ms, id.to_owned()));
    }

    fn end(&mut self, id: &str, event: impl FnOnce(String) -> DeliveryEvent) -> bool {
        match self.messages.remove_entry(id) {
            Some((id, message)) => {
                self.wake.remove(&(message.wake_at_ms, id.clone()));
                if let Some(at) = message.ready_at_ms {
                    self.ready.remove(&(at, id.clone()));
                }
                self.events.push_back(event(id));
                true
            }
            None => false,
        }
    }
}

/// Doubling from `retry_first_ms` after each failed send, capped at `retry_max_ms`.
fn backoff_ms(config: &DeliveryConfig, attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(32);
    config
        .retry_first_ms
        .saturating_mul(1_i64 << doublings)
        .min(config.retry_max_ms)
}

#[cfg(test)]
mod tests;

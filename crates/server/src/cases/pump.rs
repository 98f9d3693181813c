//! The task that owns the hub's handle, so that the driver never waits on it: the driver hands
//! messages over a bounded channel and reads the hub's reports as one more input.

use secourir_cisu::Outgoing;
use secourir_hub::{Hub, HubConfig, HubEvent, StartError};
use tokio::sync::mpsc;
use tracing::warn;

/// Cases waiting for the hub's outbox, at most: past it a case is refused at the call-taker's
/// desk (and said so), never dropped.
const WAITING_MAX: usize = 1_024;

/// What the hub tells the driver.
#[derive(Debug)]
pub(crate) enum HubReport {
    /// The hub's own event.
    Event(HubEvent),
    /// A message the hub's outbox did not take: never sent.
    NotTaken {
        /// Its `distributionID`.
        id: String,
        /// Why.
        reason: String,
    },
}

/// The driver's side of the task.
pub(crate) struct Pump {
    out: mpsc::Sender<Outgoing>,
}

impl Pump {
    /// Opens the hub's outbox and starts the task; the link opens in the background.
    pub(crate) fn start(
        config: HubConfig,
    ) -> Result<(Pump, mpsc::Receiver<HubReport>), StartError> {
        let mut hub = Hub::start(config)?;
        let (out, mut to_send) = mpsc::channel::<Outgoing>(WAITING_MAX);
        let (reports, reports_rx) = mpsc::channel(WAITING_MAX);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = to_send.recv() => match message {
                        Some(message) => {
                            let id = message.distribution_id.clone();
                            if let Err(e) = hub.send(message).await {
                                warn!(%id, error = %e, "case not taken by the hub's outbox");
                                let report = HubReport::NotTaken { id, reason: e.to_string() };
                                if reports.send(report).await.is_err() {
                                    break;
                                }
                            }
                        }
                        None => break,
                    },
                    event = hub.next_event() => match event {
                        Some(event) => {
                            if reports.send(HubReport::Event(event)).await.is_err() {
                                break;
                            }
                        }
                        None => break,
                    },
                }
            }
            // What is still open stays in the outbox for the next start.
            hub.shutdown().await;
        });
        Ok((Pump { out }, reports_rx))
    }

    /// Hands a message to the hub; refused at once when too many wait.
    pub(crate) fn send(&self, message: Outgoing) -> Result<(), &'static str> {
        self.out.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => "trop de dossiers en attente du hub",
            mpsc::error::TrySendError::Closed(_) => "le lien avec le hub est arrêté",
        })
    }
}

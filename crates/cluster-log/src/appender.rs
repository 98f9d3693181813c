//! One node's inputs on their way to the log: in the order the node gave them, and in as few
//! messages as the cluster's pace allows. One batch is in flight at a time, so a batch retried
//! after a lost acknowledgement can never land behind a later one: a call's hang-up never
//! reaches the log before its offer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use secourir_wire::Format;

use crate::ClusterLog;

/// Most items in one message: far under the servers' 1 MB payload limit for any input.
const BATCH_MAX: usize = 512;

/// How long one append keeps retrying before the node is said cut off (it still retries).
const CUT_OFF_AFTER: Duration = Duration::from_secs(2);

/// What one message of the log holds: consecutive inputs of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch<T> {
    /// The node that gave them.
    pub node: String,
    /// In the order it gave them.
    pub items: Vec<T>,
    /// The newest wire format its node reads, from the message's headers (not its payload,
    /// which a version before formats had numbers must still read).
    #[serde(skip)]
    pub reads: u16,
}

/// The sending side: items go to the log in the order they are given.
pub struct Appender<T> {
    items: mpsc::UnboundedSender<T>,
    cut_off: watch::Receiver<bool>,
    retried: Arc<AtomicU64>,
    readers: Arc<AtomicU16>,
}

impl<T: Serialize + Send + Sync + 'static> Appender<T> {
    /// Starts appending for `node`; `incarnation` (its start time, say) keeps a restarted
    /// node's messages apart from those of its previous life in the servers' duplicate window.
    pub fn start(log: ClusterLog, node: &str, incarnation: u64) -> Appender<T> {
        let (items, mut queued) = mpsc::unbounded_channel::<T>();
        let (cut, cut_off) = watch::channel(false);
        let retried = Arc::new(AtomicU64::new(0));
        let counted = retried.clone();
        // Until the node has heard the members, it writes its own format.
        let readers = Arc::new(AtomicU16::new(Format::NEWEST_NUMBER));
        let oldest_reader = readers.clone();
        let sender = format!("{node}-{incarnation}");
        let node = node.to_owned();
        tokio::spawn(async move {
            let mut id = 0u64;
            let mut batch = Batch {
                node,
                items: Vec::new(),
                reads: secourir_wire::NEWEST.number(),
            };
            while let Some(first) = queued.recv().await {
                batch.items.push(first);
                while batch.items.len() < BATCH_MAX {
                    match queued.try_recv() {
                        Ok(item) => batch.items.push(item),
                        Err(_) => break,
                    }
                }
                id += 1;
                // An input is never dropped: the same message is tried again until the
                // cluster takes it, and the node is told it is cut off meanwhile.
                let mut failed = false;
                let format = Format::for_reader(oldest_reader.load(Ordering::Relaxed));
                let attempts = loop {
                    match log.append(&sender, id, &batch, format, CUT_OFF_AFTER).await {
                        Ok(appended) => break appended.attempts,
                        Err(e) => {
                            if !failed {
                                tracing::warn!(error = %e, "cut off from the cluster log");
                                cut.send_replace(true);
                            }
                            failed = true;
                        }
                    }
                };
                if failed {
                    tracing::info!("cluster log reachable again");
                    cut.send_replace(false);
                }
                if failed || attempts > 1 {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                batch.items.clear();
            }
        });
        Appender {
            items,
            cut_off,
            retried,
            readers,
        }
    }

    /// The oldest member reads formats up to `number`: the messages after take the newest
    /// format it reads.
    pub fn write_for(&self, number: u16) {
        self.readers.store(number, Ordering::Relaxed);
    }

    /// The format the next message is written in.
    pub fn format(&self) -> Format {
        Format::for_reader(self.readers.load(Ordering::Relaxed))
    }

    /// Queues an item; false once the appending task has stopped.
    pub fn send(&self, item: T) -> bool {
        self.items.send(item).is_ok()
    }

    /// Whether the last append has been failing for a while.
    pub fn cut_off(&self) -> bool {
        *self.cut_off.borrow()
    }

    /// Messages that had to be published more than once.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }
}

//! The store's writer thread: writes arrive on a bounded channel and are applied in batches,
//! one transaction each, so SQLite keeps up with hundreds of calls per second.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use secourir_store::{Store, StoreError, Write};
use tracing::{error, warn};

use crate::limits::{
    SETTLED_QUEUE as SETTLED, WRITER_BATCH as BATCH, WRITER_HELD as HELD, WRITER_QUEUE as QUEUE,
};

/// How long the writer gathers writes before committing them together.
const GATHER: Duration = Duration::from_millis(10);
/// Attempts at a batch before it is written record by record.
const RETRIES: u32 = 3;
/// Calls whose `Offered` record has been written (or, the store refusing it, given up): their
/// callers may be answered, a crash now can no longer lose them.
pub(crate) type Settled = tokio::sync::mpsc::Receiver<Vec<u64>>;

/// Sends writes to the writer thread, gathered so that one wake-up carries all the writes of
/// one event of the driver.
pub(crate) struct StoreSender {
    tx: SyncSender<Vec<Write>>,
    pending: Vec<Write>,
    /// Batches the full channel could not take yet, oldest first.
    held: std::collections::VecDeque<Vec<Write>>,
}

impl StoreSender {
    /// Adds a write to the next batch.
    pub(crate) fn send(&mut self, write: Write) {
        self.pending.push(write);
    }

    /// Hands the gathered writes to the writer, in order, without ever waiting for it.
    pub(crate) fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.held.push_back(std::mem::take(&mut self.pending));
        }
        while let Some(batch) = self.held.pop_front() {
            match self.tx.try_send(batch) {
                Ok(()) => {}
                Err(TrySendError::Full(batch)) => {
                    self.held.push_front(batch);
                    break;
                }
                Err(TrySendError::Disconnected(batch)) => {
                    metrics::counter!("secourir_store_writes_lost_total")
                        .increment(batch.len() as u64);
                    error!(writes = batch.len(), "store writer gone: records are lost");
                }
            }
        }
        if self.held.len() > HELD {
            if let Some(lost) = self.held.pop_front() {
                metrics::counter!("secourir_store_writes_lost_total").increment(lost.len() as u64);
                error!(
                    writes = lost.len(),
                    "store writer {QUEUE} + {HELD} batches behind: oldest records dropped"
                );
            }
        } else if !self.held.is_empty() && self.held.len().is_power_of_two() {
            warn!(
                held = self.held.len(),
                "store writer behind: records held by the driver"
            );
        }
    }

    /// At stop, hands over everything, waiting for the writer this time: no caller is left to
    /// answer, and every record still held must reach the disk.
    pub(crate) fn finish(&mut self) {
        if !self.pending.is_empty() {
            self.held.push_back(std::mem::take(&mut self.pending));
        }
        while let Some(batch) = self.held.pop_front() {
            if self.tx.send(batch).is_err() {
                error!("store writer gone: records are lost");
                break;
            }
        }
    }
}

/// Opens the store and starts its writer thread.
pub(crate) fn start(dir: &Path) -> Result<(StoreSender, JoinHandle<()>, Settled), StoreError> {
    let store = Store::open(dir)?;
    let (tx, rx) = sync_channel(QUEUE);
    let (settled_tx, settled) = tokio::sync::mpsc::channel(SETTLED);
    let handle = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || write_loop(store, rx, settled_tx))
        .map_err(|e| StoreError::Io(e.to_string()))?;
    Ok((
        StoreSender {
            tx,
            pending: Vec::new(),
            held: std::collections::VecDeque::new(),
        },
        handle,
        settled,
    ))
}

fn write_loop(
    mut store: Store,
    rx: Receiver<Vec<Write>>,
    settled: tokio::sync::mpsc::Sender<Vec<u64>>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Ok(first) = rx.recv() {
        batch.extend(first);
        // Group commit: a few milliseconds of gathering turn hundreds of small transactions a
        // second into tens, while a record still reaches the disk well within a second.
        // One sleep rather than a wake-up per incoming batch.
        std::thread::sleep(GATHER);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(writes) => batch.extend(writes),
                Err(_) => break,
            }
        }
        commit(&mut store, &batch);
        let offered: Vec<u64> = batch
            .iter()
            .filter_map(|w| match w {
                Write::Offered { call, .. } => Some(*call),
                _ => None,
            })
            .collect();
        if !offered.is_empty() {
            let _ = settled.try_send(offered);
        }
        batch.clear();
    }
}

/// Commits a batch; a failing batch is retried, then written one record at a time so that
/// one bad record does not take the others with it.
fn commit(store: &mut Store, batch: &[Write]) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=RETRIES {
        match store.apply(batch) {
            Ok(()) => return,
            Err(e) => {
                warn!(error = %e, writes = batch.len(), attempt, "store write failed, retrying");
                std::thread::sleep(delay);
                delay *= 2;
            }
        }
    }
    for write in batch {
        if let Err(e) = store.apply(std::slice::from_ref(write)) {
            metrics::counter!("secourir_store_writes_lost_total").increment(1);
            error!(error = %e, ?write, "record lost: the store refused it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail(call: u64) -> Write {
        Write::Trail {
            call,
            at: 0,
            step: String::new(),
        }
    }

    #[test]
    fn a_full_writer_never_stops_the_driver_and_keeps_the_order() {
        let (tx, rx) = sync_channel(1);
        let mut sender = StoreSender {
            tx,
            pending: Vec::new(),
            held: std::collections::VecDeque::new(),
        };
        for call in 0..5 {
            sender.send(trail(call));
            sender.flush();
        }
        assert_eq!(sender.held.len(), 4);
        let mut seen = Vec::new();
        for _ in 0..5 {
            let batch = rx.recv().expect("a batch");
            seen.extend(batch.iter().map(|w| match w {
                Write::Trail { call, .. } => *call,
                _ => unreachable!(),
            }));
            sender.flush();
        }
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        assert!(sender.held.is_empty());
    }
}

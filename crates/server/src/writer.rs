//! The store's writer thread: writes arrive on a bounded channel and are applied in batches,
//! one transaction each, so SQLite keeps up with hundreds of calls per second.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use secourir_store::{Store, StoreError, Write};
use tracing::{error, warn};

/// Batches waiting beyond this make the driver wait: records are never dropped.
const QUEUE: usize = 16_384;
/// Writes applied in one transaction at most.
const BATCH: usize = 4_096;
/// How long the writer gathers writes before committing them together.
const GATHER: Duration = Duration::from_millis(10);
/// Attempts at a batch before it is written record by record.
const RETRIES: u32 = 3;
/// Notices of settled records waiting for the driver; beyond, a notice is dropped and the
/// answer it would have released goes out at the driver's fallback delay instead.
const SETTLED: usize = 1_024;

/// Calls whose `Offered` record has been written (or, the store refusing it, given up): their
/// callers may be answered, a crash now can no longer lose them.
pub(crate) type Settled = tokio::sync::mpsc::Receiver<Vec<u64>>;

/// Sends writes to the writer thread, gathered so that one wake-up carries all the writes of
/// one event of the driver.
pub(crate) struct StoreSender {
    tx: SyncSender<Vec<Write>>,
    pending: Vec<Write>,
}

impl StoreSender {
    /// Adds a write to the next batch.
    pub(crate) fn send(&mut self, write: Write) {
        self.pending.push(write);
    }

    /// Hands the gathered writes to the writer; waits if it is far behind rather than lose a
    /// record.
    pub(crate) fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(batch)) => {
                warn!("store writer behind by {QUEUE} batches, waiting");
                let _ = self.tx.send(batch);
            }
            Err(TrySendError::Disconnected(_)) => error!("store writer gone: records are lost"),
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

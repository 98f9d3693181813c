//! The store's writer thread: writes arrive on a bounded channel and are applied in batches,
//! one transaction each, so SQLite keeps up with hundreds of calls per second.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use secourir_store::{Store, StoreError, Write};
use tracing::{error, warn};

/// Writes waiting beyond this make the driver wait: records are never dropped.
const QUEUE: usize = 65_536;
/// Writes applied in one transaction at most.
const BATCH: usize = 4_096;

/// Sends writes to the writer thread.
#[derive(Clone)]
pub(crate) struct StoreSender {
    tx: SyncSender<Write>,
}

impl StoreSender {
    /// Queues a write; waits if the writer is far behind rather than lose a record.
    pub(crate) fn send(&self, write: Write) {
        match self.tx.try_send(write) {
            Ok(()) => {}
            Err(TrySendError::Full(write)) => {
                warn!("store writer behind by {QUEUE} writes, waiting");
                let _ = self.tx.send(write);
            }
            Err(TrySendError::Disconnected(_)) => error!("store writer gone: a record is lost"),
        }
    }
}

/// Opens the store and starts its writer thread.
pub(crate) fn start(dir: &Path) -> Result<(StoreSender, JoinHandle<()>), StoreError> {
    let store = Store::open(dir)?;
    let (tx, rx) = sync_channel(QUEUE);
    let handle = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || write_loop(store, rx))
        .map_err(|e| StoreError::Io(e.to_string()))?;
    Ok((StoreSender { tx }, handle))
}

fn write_loop(mut store: Store, rx: Receiver<Write>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        if let Err(e) = store.apply(&batch) {
            error!(error = %e, writes = batch.len(), "store write failed");
        }
        batch.clear();
    }
}

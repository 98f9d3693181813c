//! The trail a platform logs through: the key and the log in a directory of their own
//! (`key`, `key.jwk`, `events.log`), and a thread of its own that writes the events in batches,
//! one disk sync per batch, so that no caller ever waits on the disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use chrono::{DateTime, FixedOffset};
use tracing::{error, info, warn};

use crate::event::{Body, Common, LogEvent};
use crate::key::{PublicKey, SecretKey, load_or_create_key_file, read_key_file};
use crate::writer::Writer;

/// Events waiting for the writer, at most: past it an event is counted lost and said so,
/// rather than the driver stopping for the disk.
const WAITING_MAX: usize = 65_536;
/// Events written with one disk sync, at most.
const BATCH_MAX: usize = 256;

/// The log of events in a trail's directory, one signed event per line.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("events.log")
}

/// The signing key in a trail's directory (32 bytes, mode 0600).
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join("key")
}

/// The public key in a trail's directory, as a JWK anyone may read to verify the log.
pub fn public_key_path(dir: &Path) -> PathBuf {
    dir.join("key.jwk")
}

/// The public key a verifier uses: the JWK beside the log, else the one the secret key gives.
pub fn public_key(dir: &Path) -> Result<PublicKey, String> {
    let jwk = public_key_path(dir);
    match std::fs::read_to_string(&jwk) {
        Ok(text) => PublicKey::from_jwk(&text).map_err(|e| format!("{}: {e}", jwk.display())),
        Err(_) => read_key_file(&key_path(dir))
            .map(|k| k.public())
            .map_err(|e| format!("{}: {e}", key_path(dir).display())),
    }
}

/// Why the trail could not start.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    /// The directory, the key or the log.
    #[error("audit trail {path}: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The handle every part of a platform logs through; cloned freely.
#[derive(Clone)]
pub struct Trail {
    events: mpsc::SyncSender<LogEvent>,
    /// Events dropped because the writer could not keep up or the disk failed.
    lost: Arc<AtomicU64>,
    /// This node, as the events' `elementId`.
    element_id: Arc<str>,
    /// The agency, as the events' `agencyId`.
    agency_id: Arc<str>,
}

impl std::fmt::Debug for Trail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trail")
            .field("element_id", &self.element_id)
            .finish()
    }
}

impl Trail {
    /// Opens (or creates) the key and the log in `dir` and starts the writer.
    pub fn start(dir: &Path, element_id: &str, agency_id: &str) -> Result<Trail, TrailError> {
        let open = |path: &Path, reason: String| TrailError::Open {
            path: path.to_owned(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open(dir, e.to_string()))?;
        let key_file = key_path(dir);
        let key: SecretKey =
            load_or_create_key_file(&key_file).map_err(|e| open(&key_file, e.to_string()))?;
        let jwk = public_key_path(dir);
        std::fs::write(&jwk, key.public().jwk()).map_err(|e| open(&jwk, e.to_string()))?;
        let path = log_path(dir);
        let mut writer = Writer::open(&path, key).map_err(|e| open(&path, e.to_string()))?;
        if let Some(repair) = writer.repair() {
            warn!(?repair, path = %path.display(), "audit log's torn last line repaired");
        }
        let (events, received) = mpsc::sync_channel::<LogEvent>(WAITING_MAX);
        let lost = Arc::new(AtomicU64::new(0));
        let lost_by_writer = lost.clone();
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || {
                while let Ok(first) = received.recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH_MAX {
                        match received.try_recv() {
                            Ok(event) => batch.push(event),
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = writer.append_batch(&batch) {
                        lost_by_writer.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        error!(error = %e, events = batch.len(), "audit events not written");
                    }
                }
            })
            .map_err(|e| open(&path, e.to_string()))?;
        info!(path = %log_path(dir).display(), "audit trail signed and chained");
        Ok(Trail {
            events,
            lost,
            element_id: element_id.into(),
            agency_id: agency_id.into(),
        })
    }

    /// The common part of an event at `at_ms` (ms since the epoch, written in UTC), for the
    /// call `call_id` if any.
    pub fn common(&self, at_ms: u64, call_id: Option<&str>) -> Common {
        let timestamp: DateTime<FixedOffset> = DateTime::from_timestamp_millis(at_ms as i64)
            .unwrap_or(DateTime::UNIX_EPOCH)
            .fixed_offset();
        let mut common = Common::new(timestamp, &*self.element_id, &*self.agency_id);
        common.call_id = call_id.map(str::to_owned);
        common
    }

    /// Logs an event; never waits.
    pub fn log(&self, common: Common, body: Body) {
        if self.events.try_send(LogEvent::new(common, body)).is_err() {
            let lost = self.lost.fetch_add(1, Ordering::Relaxed) + 1;
            // Said at the first and then every thousandth, not for each.
            if lost == 1 || lost.is_multiple_of(1_000) {
                error!(lost, "audit events lost: the writer cannot keep up");
            }
        }
    }

    /// Events lost so far.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

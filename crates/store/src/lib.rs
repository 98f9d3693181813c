//! The embedded store of Secourir: one SQLite file under the data directory holding the call
//! detail records, the event trail of each call and the call-back list.
//!
//! The platform writes from one thread, in batches of one transaction each; readers (the API,
//! `secourir calls`) open their own read-only connections, which WAL mode lets run beside it.

use secourir_privacy::Personal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

mod cases;
mod schema;

use schema::*;

/// File name of the store in the data directory.
pub const FILE_NAME: &str = "secourir.sqlite";

/// Errors of the store, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused (corrupt file, disk full, permission…).
    #[error("store {path}: {source}")]
    Sqlite {
        /// The store file.
        path: PathBuf,
        /// Cause.
        source: rusqlite::Error,
    },
    /// The file was written by a newer Secourir.
    #[error(
        "store {path}: schema version {found} is newer than this program's {SCHEMA_VERSION}; use the Secourir that wrote it"
    )]
    TooNew {
        /// The store file.
        path: PathBuf,
        /// Version found.
        found: i64,
    },
    /// A reader met a file an older Secourir wrote; only the writer upgrades it.
    #[error(
        "store {path}: schema version {found} predates this program's {SCHEMA_VERSION}; start `secourir serve` once to upgrade it"
    )]
    TooOld {
        /// The store file.
        path: PathBuf,
        /// Version found.
        found: i64,
    },
    /// Anything else (a thread that would not start…).
    #[error("store: {0}")]
    Io(String),
}

/// A call the store saw offered and never ended.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenCall {
    /// Platform number.
    pub call: u64,
    /// Caller's number, to call back.
    pub caller: Option<Personal<String>>,
    /// Département of the caller.
    pub departement: String,
    /// When it arrived, ms since the epoch.
    pub offered_at: i64,
}

/// One change to record.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// A call arrived.
    Offered {
        /// Platform number of the call.
        call: u64,
        /// NENA i3 call identifier.
        emergency_call_id: String,
        /// Caller's number (masked in logs, as is the position).
        caller: Option<Personal<String>>,
        /// Service URN.
        service: String,
        /// Milliseconds since the epoch.
        at: i64,
        /// Latitude.
        lat: Option<Personal<f64>>,
        /// Longitude.
        lon: Option<Personal<f64>>,
        /// Uncertainty, metres.
        radius_m: Option<f64>,
        /// `pidf-lo`, `aml`, `trunk-default` or `national-default`.
        location_source: String,
        /// Département.
        departement: String,
        /// Commune name.
        commune: Option<String>,
        /// Commune INSEE code.
        insee: Option<String>,
        /// Ingress trunk.
        trunk: Option<String>,
    },
    /// The call joined a CTA's queue (the first time sets `queued_at`).
    Queued {
        /// Call.
        call: u64,
        /// CTA.
        cta: String,
        /// When.
        at: i64,
    },
    /// A call-taker answered.
    Answered {
        /// Call.
        call: u64,
        /// CTA of the call-taker.
        cta: String,
        /// Login.
        call_taker: String,
        /// When.
        at: i64,
    },
    /// The call ended.
    Ended {
        /// Call.
        call: u64,
        /// When.
        at: i64,
        /// completed, transferred, abandoned, rejected.
        outcome: String,
        /// Why.
        reason: String,
    },
    /// The conversation's recording is finished.
    Recording {
        /// Call.
        call: u64,
        /// File.
        path: String,
        /// SHA-256, hex.
        sha256: String,
        /// Length.
        duration_ms: u64,
    },
    /// A step of the call's trail.
    Trail {
        /// Call.
        call: u64,
        /// When.
        at: i64,
        /// What happened, in words.
        step: String,
    },
    /// Call numbers up to this one may be handed out: none of them is ever given again.
    HighWater {
        /// The highest number reserved.
        upto: u64,
    },
    /// The cluster log's entries up to this sequence are applied in this store (written with
    /// what they led to, in the same transaction).
    LogApplied {
        /// The last sequence applied.
        seq: u64,
    },
    /// A cluster node serves this call alone, cut off from the log.
    Alone {
        /// The call.
        call: u64,
    },
    /// The log took back a call this node served alone.
    GivenBack {
        /// The call.
        call: u64,
    },
    /// A line of a text conversation: the call is a text conversation.
    TextLine {
        /// The call.
        call: u64,
        /// When it was written, ms since the epoch.
        at: i64,
        /// `caller`, `call_taker` or `platform`.
        author: String,
        /// The call-taker's login, for their lines.
        login: Option<String>,
        /// What was written (masked in logs, as the caller's number is).
        text: Personal<String>,
    },
    /// A CISU message of a call, sent to a partner or received from one, as it went on the wire.
    CaseMessage {
        /// Its `distributionID`.
        distribution_id: String,
        /// The call it is about, when known.
        call: Option<u64>,
        /// `sent` or `received`.
        direction: &'static str,
        /// The partner's hub client id.
        partner: String,
        /// `Report`, `Update`…
        kind: String,
        /// Its delivery state (`queued`, `acked`, `refused`, `overdue`, `expired`, `received`).
        state: String,
        /// When, ms since the epoch.
        at: i64,
        /// The JSON document (it holds the caller's number and position).
        body: Personal<String>,
    },
    /// A CISU message's delivery state changed.
    CaseState {
        /// Its `distributionID`.
        distribution_id: String,
        /// The new state.
        state: String,
        /// The partner's or the hub's words, for a refusal.
        reason: Option<String>,
        /// When, ms since the epoch.
        at: i64,
    },
    /// A text conversation ended: its transcript's SHA-256.
    TextSealed {
        /// The call.
        call: u64,
        /// SHA-256, hex.
        sha256: String,
    },
    /// A call-back entry changed.
    Callback {
        /// The call that ended unanswered.
        call: u64,
        /// CTA whose list holds it.
        cta: String,
        /// pending, taken, done.
        state: String,
        /// Who took it.
        by: Option<String>,
        /// When.
        at: i64,
    },
}

/// A call detail record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Platform number.
    pub call: u64,
    /// NENA i3 call identifier.
    pub emergency_call_id: String,
    /// Caller's number.
    pub caller: Option<String>,
    /// Service URN.
    pub service: String,
    /// Arrival.
    pub offered_at: i64,
    /// First queueing.
    pub queued_at: Option<i64>,
    /// Answer by a call-taker.
    pub answered_at: Option<i64>,
    /// End.
    pub ended_at: Option<i64>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Uncertainty, metres.
    pub radius_m: Option<f64>,
    /// Where the location came from.
    pub location_source: String,
    /// Département.
    pub departement: String,
    /// Commune.
    pub commune: Option<String>,
    /// INSEE code.
    pub insee: Option<String>,
    /// Ingress trunk.
    pub trunk: Option<String>,
    /// CTA that queued or answered it.
    pub cta: Option<String>,
    /// Call-taker who answered.
    pub call_taker: Option<String>,
    /// Terminal state.
    pub outcome: Option<String>,
    /// Reason of the terminal state.
    pub reason: Option<String>,
    /// Recording file.
    pub recording_path: Option<String>,
    /// Its SHA-256.
    pub recording_sha256: Option<String>,
    /// Its length.
    pub recording_ms: Option<u64>,
    /// `voice`, or `text` for a conversation written.
    #[serde(default = "voice")]
    pub medium: String,
    /// The SHA-256 of a text conversation's transcript, once it ended.
    #[serde(default)]
    pub transcript_sha256: Option<String>,
}

fn voice() -> String {
    "voice".into()
}

/// One line of a text conversation, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// When, ms since the epoch.
    pub at: i64,
    /// `caller`, `call_taker` or `platform`.
    pub author: String,
    /// The call-taker's login, for their lines.
    pub login: Option<String>,
    /// What was written.
    pub text: String,
}

/// One step of a call's trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrailEntry {
    /// When.
    pub at: i64,
    /// What.
    pub step: String,
}

/// A call-back entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallbackRecord {
    /// The call that ended unanswered.
    pub call: u64,
    /// CTA whose list holds it.
    pub cta: String,
    /// Number to call back.
    pub caller: Option<String>,
    /// Département of the call, when the store holds the call itself.
    pub departement: Option<String>,
    /// pending, taken.
    pub state: String,
    /// Who took it.
    pub taken_by: Option<String>,
    /// When it was added.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// Why a schema upgrade failed, before the store's path is attached.
enum Migration {
    Sqlite(rusqlite::Error),
    TooNew(i64),
}

impl From<rusqlite::Error> for Migration {
    fn from(e: rusqlite::Error) -> Self {
        Migration::Sqlite(e)
    }
}

/// The store: one connection, read-write for the platform's writer thread or read-only.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Opens (creating if needed) `DIR/secourir.sqlite` and brings its schema up to date.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        let conn = Connection::open(&path).map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let mut store = Store { conn, path };
        store
            .conn
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| store.err(e))?;
        // WAL lets readers run beside the writer; NORMAL loses nothing to a process crash and
        // at most the last batches to a power cut, a fair price for hundreds of calls a second.
        store
            .conn
            .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .map_err(|e| store.err(e))?;
        store.migrate().map_err(|e| match e {
            Migration::Sqlite(source) => store.err(source),
            Migration::TooNew(found) => StoreError::TooNew {
                path: store.path.clone(),
                found,
            },
        })?;
        Ok(store)
    }

    /// Creates or upgrades the schema in one immediate transaction, so two processes opening
    /// the same file at once cannot both upgrade it.
    fn migrate(&mut self) -> Result<(), Migration> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        match version {
            0 => tx.execute_batch(SCHEMA)?,
            1 => {
                tx.execute_batch(MIGRATE_1_TO_2)?;
                tx.execute_batch(MIGRATE_2_TO_3)?;
                tx.execute_batch(MIGRATE_3_TO_4)?;
                tx.execute_batch(MIGRATE_4_TO_5)?;
                tx.execute_batch(MIGRATE_5_TO_6)?;
            }
            2 => {
                tx.execute_batch(MIGRATE_2_TO_3)?;
                tx.execute_batch(MIGRATE_3_TO_4)?;
                tx.execute_batch(MIGRATE_4_TO_5)?;
                tx.execute_batch(MIGRATE_5_TO_6)?;
            }
            3 => {
                tx.execute_batch(MIGRATE_3_TO_4)?;
                tx.execute_batch(MIGRATE_4_TO_5)?;
                tx.execute_batch(MIGRATE_5_TO_6)?;
            }
            4 => {
                tx.execute_batch(MIGRATE_4_TO_5)?;
                tx.execute_batch(MIGRATE_5_TO_6)?;
            }
            5 => tx.execute_batch(MIGRATE_5_TO_6)?,
            SCHEMA_VERSION => return Ok(()),
            newer => return Err(Migration::TooNew(newer)),
        }
        tx.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))?;
        tx.commit()?;
        Ok(())
    }

    /// Opens read-only, for readers beside a running platform; never creates or changes a file.
    pub fn open_read_only(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Store::empty(path);
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let store = Store { conn, path };
        store
            .conn
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| store.err(e))?;
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| store.err(e))?;
        match version {
            SCHEMA_VERSION => Ok(store),
            // A writer that has created the file but not yet its tables: nothing to read yet.
            0 => Store::empty(store.path),
            found if found > SCHEMA_VERSION => Err(StoreError::TooNew {
                path: store.path,
                found,
            }),
            found => Err(StoreError::TooOld {
                path: store.path,
                found,
            }),
        }
    }

    /// A store with no calls, for readers of a platform that never ran: they must not create
    /// files (a mistyped data directory would otherwise appear on disk).
    fn empty(path: PathBuf) -> Result<Store, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_in_memory().map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        conn.execute_batch("PRAGMA query_only=ON").map_err(err)?;
        Ok(Store { conn, path })
    }

    /// Applies writes in one transaction.
    pub fn apply(&mut self, writes: &[Write]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        // Immediate: take the write lock now rather than fail to upgrade a read lock midway.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        for write in writes {
            apply_one(&tx, write).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The calls this cluster node served alone that the log has not yet taken back.
    pub fn alone(&self) -> Result<Vec<u64>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT call FROM alone ORDER BY call")
            .map_err(|e| self.err(e))?;
        let calls = statement
            .query_map([], |r| r.get::<_, i64>(0))
            .and_then(|rows| rows.collect::<Result<Vec<i64>, _>>())
            .map_err(|e| self.err(e))?;
        Ok(calls.into_iter().map(|c| c.max(0) as u64).collect())
    }

    /// Calls offered and never ended: those a crash interrupted, oldest first.
    pub fn open_calls(&self) -> Result<Vec<OpenCall>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT call, caller, departement, offered_at FROM calls
                 WHERE offered = 1 AND ended_at IS NULL ORDER BY call",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map([], |r| {
                Ok(OpenCall {
                    call: r.get::<_, i64>(0)? as u64,
                    caller: r.get::<_, Option<String>>(1)?.map(Personal::new),
                    departement: r.get(2)?,
                    offered_at: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Highest call number stored anywhere, zero when none, so numbering continues after a restart.
    pub fn last_call(&self) -> Result<u64, StoreError> {
        // Every table counts: a number seen only in a trail or a call-back is still taken.
        self.conn
            .query_row(
                "SELECT MAX((SELECT COALESCE(MAX(call), 0) FROM calls),
                            (SELECT COALESCE(MAX(call), 0) FROM trail),
                            (SELECT COALESCE(MAX(call), 0) FROM callbacks),
                            (SELECT COALESCE(MAX(value), 0) FROM meta WHERE key = 'call_high_water'))",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    /// The last cluster log sequence whose writes this store holds, zero when none.
    pub fn log_applied(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(value), 0) FROM meta WHERE key = 'log_applied'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    /// Calls offered at or after `since_ms`, newest first, at most `limit`.
    pub fn calls_since(&self, since_ms: i64, limit: usize) -> Result<Vec<CallRecord>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "SELECT {CALL_COLUMNS} FROM calls WHERE offered_at >= ?1 AND offered = 1
                 ORDER BY offered_at DESC, call DESC LIMIT ?2"
            ))
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(
                params![since_ms, i64::try_from(limit).unwrap_or(i64::MAX)],
                call_record,
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Calls offered since `since_ms` and handled by CTA `cta` (or queued there last), newest
    /// first, at most `limit`: the limit applies to that CTA's calls, not to the country's.
    pub fn cta_calls_since(
        &self,
        cta: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "SELECT {CALL_COLUMNS} FROM calls WHERE offered_at >= ?1 AND offered = 1
                 AND cta = ?3 ORDER BY offered_at DESC, call DESC LIMIT ?2"
            ))
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(
                params![since_ms, i64::try_from(limit).unwrap_or(i64::MAX), cta],
                call_record,
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// One call, if it was offered.
    pub fn call(&self, call: u64) -> Result<Option<CallRecord>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {CALL_COLUMNS} FROM calls WHERE call = ?1 AND offered = 1"),
                params![call as i64],
                call_record,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The trail of a call, in time order (ties in the order written).
    pub fn trail(&self, call: u64) -> Result<Vec<TrailEntry>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT at, step FROM trail WHERE call = ?1 ORDER BY at, rowid")
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(params![call as i64], |r| {
                Ok(TrailEntry {
                    at: r.get(0)?,
                    step: r.get(1)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// The lines of a text conversation, in the order they were written.
    pub fn transcript(&self, call: u64) -> Result<Vec<TranscriptLine>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT at, author, login, text FROM transcript WHERE call = ?1 ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(params![call as i64], |r| {
                Ok(TranscriptLine {
                    at: r.get(0)?,
                    author: r.get(1)?,
                    login: r.get(2)?,
                    text: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Call-back entries not yet done, of one CTA or all, oldest first.
    pub fn callbacks(&self, cta: Option<&str>) -> Result<Vec<CallbackRecord>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT b.call, b.cta, c.caller, b.state, b.taken_by, b.created_at, b.updated_at,
                        c.departement
                 FROM callbacks b LEFT JOIN calls c ON c.call = b.call
                 WHERE b.state != 'done' AND (?1 IS NULL OR b.cta = ?1)
                 ORDER BY b.created_at, b.call",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(params![cta], |r| {
                Ok(CallbackRecord {
                    call: r.get::<_, i64>(0)? as u64,
                    cta: r.get(1)?,
                    caller: r.get(2)?,
                    state: r.get(3)?,
                    taken_by: r.get(4)?,
                    created_at: r.get(5)?,
                    updated_at: r.get(6)?,
                    departement: r.get(7)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

const CALL_COLUMNS: &str = "call, emergency_call_id, caller, service, offered_at, queued_at, answered_at, ended_at, lat, lon, radius_m, location_source, departement, commune, insee, trunk, cta, call_taker, outcome, reason, recording_path, recording_sha256, recording_ms, medium, transcript_sha256";

fn call_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<CallRecord> {
    Ok(CallRecord {
        call: r.get::<_, i64>(0)? as u64,
        emergency_call_id: r.get(1)?,
        caller: r.get(2)?,
        service: r.get(3)?,
        offered_at: r.get(4)?,
        queued_at: r.get(5)?,
        answered_at: r.get(6)?,
        ended_at: r.get(7)?,
        lat: r.get(8)?,
        lon: r.get(9)?,
        radius_m: r.get(10)?,
        location_source: r.get(11)?,
        departement: r.get(12)?,
        commune: r.get(13)?,
        insee: r.get(14)?,
        trunk: r.get(15)?,
        cta: r.get(16)?,
        call_taker: r.get(17)?,
        outcome: r.get(18)?,
        reason: r.get(19)?,
        recording_path: r.get(20)?,
        recording_sha256: r.get(21)?,
        recording_ms: r.get::<_, Option<i64>>(22)?.map(|v| v.max(0) as u64),
        medium: r.get(23)?,
        transcript_sha256: r.get(24)?,
    })
}

/// Makes sure a row exists for a call a write names before its `Offered`, so no write is lost
/// to order; the row stays out of the call lists (`offered = 0`) until the `Offered` fills it.
fn ensure_call(tx: &rusqlite::Transaction<'_>, call: u64, at: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO calls (call, emergency_call_id, service, offered_at, location_source, departement, offered)
         VALUES (?1, '', '', ?2, 'unknown', '', 0)",
    )?
    .execute(params![call as i64, at])?;
    Ok(())
}

fn apply_one(tx: &rusqlite::Transaction<'_>, write: &Write) -> rusqlite::Result<()> {
    match write {
        Write::Offered {
            call,
            emergency_call_id,
            caller,
            service,
            at,
            lat,
            lon,
            radius_m,
            location_source,
            departement,
            commune,
            insee,
            trunk,
        } => {
            tx.prepare_cached(
                "INSERT INTO calls (call, emergency_call_id, caller, service, offered_at, lat, lon, radius_m, location_source, departement, commune, insee, trunk)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT(call) DO UPDATE SET emergency_call_id = excluded.emergency_call_id,
                   caller = excluded.caller, service = excluded.service, offered_at = excluded.offered_at,
                   lat = excluded.lat, lon = excluded.lon, radius_m = excluded.radius_m,
                   location_source = excluded.location_source, departement = excluded.departement,
                   commune = excluded.commune, insee = excluded.insee, trunk = excluded.trunk,
                   offered = 1",
            )?
            .execute(params![
                *call as i64,
                emergency_call_id,
                caller.as_ref().map(Personal::expose),
                service,
                at,
                lat.map(Personal::into_inner),
                lon.map(Personal::into_inner),
                radius_m,
                location_source,
                departement,
                commune,
                insee,
                trunk
            ])?;
        }
        Write::Queued { call, cta, at } => {
            ensure_call(tx, *call, *at)?;
            tx.prepare_cached(
                "UPDATE calls SET cta = ?2, queued_at = COALESCE(queued_at, ?3) WHERE call = ?1",
            )?
            .execute(params![*call as i64, cta, at])?;
        }
        Write::Answered {
            call,
            cta,
            call_taker,
            at,
        } => {
            ensure_call(tx, *call, *at)?;
            // The first answer is the one answer-time targets measure; a later one (the call
            // handed to another call-taker) only moves who holds it.
            tx.prepare_cached(
                "UPDATE calls SET cta = ?2, call_taker = ?3, answered_at = COALESCE(answered_at, ?4)
                 WHERE call = ?1",
            )?
            .execute(params![*call as i64, cta, call_taker, at])?;
        }
        Write::Ended {
            call,
            at,
            outcome,
            reason,
        } => {
            ensure_call(tx, *call, *at)?;
            tx.prepare_cached(
                "UPDATE calls SET ended_at = ?2, outcome = ?3, reason = ?4 WHERE call = ?1",
            )?
            .execute(params![*call as i64, at, outcome, reason])?;
        }
        Write::Recording {
            call,
            path,
            sha256,
            duration_ms,
        } => {
            ensure_call(tx, *call, 0)?;
            tx.prepare_cached(
                "UPDATE calls SET recording_path = ?2, recording_sha256 = ?3, recording_ms = ?4 WHERE call = ?1",
            )?
            .execute(params![*call as i64, path, sha256, *duration_ms as i64])?;
        }
        Write::TextLine {
            call,
            at,
            author,
            login,
            text,
        } => {
            ensure_call(tx, *call, *at)?;
            tx.prepare_cached("UPDATE calls SET medium = 'text' WHERE call = ?1")?
                .execute(params![*call as i64])?;
            tx.prepare_cached(
                "INSERT INTO transcript (call, at, author, login, text) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![*call as i64, at, author, login, text.expose()])?;
        }
        Write::CaseMessage { .. } | Write::CaseState { .. } => cases::apply(tx, write)?,
        Write::TextSealed { call, sha256 } => {
            ensure_call(tx, *call, 0)?;
            tx.prepare_cached("UPDATE calls SET transcript_sha256 = ?2 WHERE call = ?1")?
                .execute(params![*call as i64, sha256])?;
        }
        Write::Trail { call, at, step } => {
            tx.prepare_cached("INSERT INTO trail (call, at, step) VALUES (?1, ?2, ?3)")?
                .execute(params![*call as i64, at, step])?;
        }
        Write::HighWater { upto } => {
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES ('call_high_water', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
            )?
            .execute(params![*upto as i64])?;
        }
        Write::Alone { call } => {
            tx.prepare_cached("INSERT OR IGNORE INTO alone (call) VALUES (?1)")?
                .execute(params![*call as i64])?;
        }
        Write::GivenBack { call } => {
            tx.prepare_cached("DELETE FROM alone WHERE call = ?1")?
                .execute(params![*call as i64])?;
        }
        Write::LogApplied { seq } => {
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES ('log_applied', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
            )?
            .execute(params![*seq as i64])?;
        }
        Write::Callback {
            call,
            cta,
            state,
            by,
            at,
        } => {
            // An entry put back to pending is free for anyone again; one reopened after done
            // is a new call-back and queues by its new date.
            tx.prepare_cached(
                "INSERT INTO callbacks (call, cta, state, taken_by, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT(call) DO UPDATE SET cta = excluded.cta, state = excluded.state,
                   taken_by = CASE WHEN excluded.state = 'pending' THEN NULL
                                   ELSE COALESCE(excluded.taken_by, taken_by) END,
                   created_at = CASE WHEN state = 'done' AND excluded.state != 'done'
                                     THEN excluded.created_at ELSE created_at END,
                   updated_at = excluded.updated_at",
            )?
            .execute(params![*call as i64, cta, state, by, at])?;
        }
    }
    Ok(())
}

mod format;
pub use cases::CaseMessageRecord;
pub use format::{format_table, parse_since};

#[cfg(test)]
mod tests;

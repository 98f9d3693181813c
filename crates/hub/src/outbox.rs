//! Messages on disk from the moment the platform hands them over until they end (acknowledged,
//! refused or expired), so that a restart or a broker outage loses none. SQLite in WAL mode with
//! full synchronisation: a message the caller was told is stored survives a power cut.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use secourir_cisu::{Outgoing, Submission};

/// How a message ended, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The partner acknowledged it.
    Acked,
    /// The hub or the partner refused it.
    Refused,
    /// It expired first.
    Expired,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Acked => "acked",
            Outcome::Refused => "refused",
            Outcome::Expired => "expired",
        }
    }
}

/// A message's row, for inquiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Its `distributionID`.
    pub distribution_id: String,
    /// When the broker confirmed it.
    pub published_at_ms: Option<i64>,
    /// How it ended, if it did.
    pub outcome: Option<String>,
    /// The refusal's words.
    pub reason: Option<String>,
}

/// The outbox could not do its part.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// SQLite failed.
    #[error("outbox: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A message with this id is already stored.
    #[error("outbox: {0} is already stored")]
    Duplicate(String),
}

/// The outbox file.
pub struct Outbox {
    db: Connection,
}

impl Outbox {
    /// Opens (or creates) the outbox at `path`.
    pub fn open(path: &Path) -> Result<Outbox, OutboxError> {
        let db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS outbox (
                distribution_id TEXT PRIMARY KEY,
                body BLOB NOT NULL,
                expires_at_ms INTEGER NOT NULL,
                stored_at_ms INTEGER NOT NULL,
                published_at_ms INTEGER,
                ended_at_ms INTEGER,
                outcome TEXT,
                reason TEXT
            );
            CREATE INDEX IF NOT EXISTS outbox_open ON outbox (ended_at_ms);",
        )?;
        Ok(Outbox { db })
    }

    /// Stores a new message.
    pub fn store(&self, message: &Outgoing, now_ms: i64) -> Result<(), OutboxError> {
        let inserted = self.db.execute(
            "INSERT OR IGNORE INTO outbox (distribution_id, body, expires_at_ms, stored_at_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                message.distribution_id,
                message.body,
                message.expires_at.timestamp_millis(),
                now_ms
            ],
        )?;
        if inserted == 0 {
            return Err(OutboxError::Duplicate(message.distribution_id.clone()));
        }
        Ok(())
    }

    /// Forgets a message the tracker refused right after it was stored.
    pub fn remove(&self, distribution_id: &str) -> Result<(), OutboxError> {
        self.db.execute(
            "DELETE FROM outbox WHERE distribution_id = ?1",
            [distribution_id],
        )?;
        Ok(())
    }

    /// The broker confirmed the message: after a restart it is awaited, not sent again.
    pub fn mark_published(&self, distribution_id: &str, at_ms: i64) -> Result<(), OutboxError> {
        self.db.execute(
            "UPDATE outbox SET published_at_ms = ?2
             WHERE distribution_id = ?1 AND published_at_ms IS NULL",
            params![distribution_id, at_ms],
        )?;
        Ok(())
    }

    /// The message ended; it stays for inquiry until pruned.
    pub fn end(
        &self,
        distribution_id: &str,
        outcome: Outcome,
        reason: Option<&str>,
        at_ms: i64,
    ) -> Result<(), OutboxError> {
        self.db.execute(
            "UPDATE outbox SET ended_at_ms = ?2, outcome = ?3, reason = ?4
             WHERE distribution_id = ?1 AND ended_at_ms IS NULL",
            params![distribution_id, at_ms, outcome.as_str(), reason],
        )?;
        Ok(())
    }

    /// The messages not ended, oldest first, to hand to the tracker at start.
    pub fn open_messages(&self) -> Result<Vec<Submission>, OutboxError> {
        let mut statement = self.db.prepare(
            "SELECT distribution_id, expires_at_ms, published_at_ms FROM outbox
             WHERE ended_at_ms IS NULL ORDER BY stored_at_ms, distribution_id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(Submission {
                id: row.get(0)?,
                expires_at_ms: row.get(1)?,
                published_at_ms: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A message's body, to publish it.
    pub fn body(&self, distribution_id: &str) -> Result<Option<Vec<u8>>, OutboxError> {
        let body = self
            .db
            .query_row(
                "SELECT body FROM outbox WHERE distribution_id = ?1",
                [distribution_id],
                |row| row.get(0),
            )
            .optional()?;
        Ok(body)
    }

    /// A message's row, for inquiry.
    pub fn row(&self, distribution_id: &str) -> Result<Option<Row>, OutboxError> {
        let row = self
            .db
            .query_row(
                "SELECT distribution_id, published_at_ms, outcome, reason FROM outbox
                 WHERE distribution_id = ?1",
                [distribution_id],
                |row| {
                    Ok(Row {
                        distribution_id: row.get(0)?,
                        published_at_ms: row.get(1)?,
                        outcome: row.get(2)?,
                        reason: row.get(3)?,
                    })
                },
            )
            .optional()?;
        Ok(row)
    }

    /// Deletes the messages that ended before `before_ms`; returns how many.
    pub fn prune(&self, before_ms: i64) -> Result<usize, OutboxError> {
        let pruned = self.db.execute(
            "DELETE FROM outbox WHERE ended_at_ms IS NOT NULL AND ended_at_ms < ?1",
            [before_ms],
        )?;
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn message(id: &str) -> Outgoing {
        Outgoing {
            distribution_id: id.to_owned(),
            expires_at: DateTime::parse_from_rfc3339("2026-07-14T13:00:00+02:00").unwrap(),
            body: format!("{{\"distributionID\":\"{id}\"}}").into_bytes(),
        }
    }

    #[test]
    fn messages_survive_reopening_with_their_stage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.sqlite");
        {
            let outbox = Outbox::open(&path).unwrap();
            outbox.store(&message("a_1"), 10).unwrap();
            outbox.store(&message("a_2"), 20).unwrap();
            outbox.store(&message("a_3"), 30).unwrap();
            outbox.mark_published("a_2", 25).unwrap();
            outbox
                .end("a_3", Outcome::Refused, Some("UNROUTABLE_MESSAGE"), 40)
                .unwrap();
            assert!(matches!(
                outbox.store(&message("a_1"), 50),
                Err(OutboxError::Duplicate(_))
            ));
        }
        let outbox = Outbox::open(&path).unwrap();
        let open = outbox.open_messages().unwrap();
        let expires_at_ms = message("a_1").expires_at.timestamp_millis();
        assert_eq!(
            open,
            vec![
                Submission {
                    id: "a_1".into(),
                    expires_at_ms,
                    published_at_ms: None
                },
                Submission {
                    id: "a_2".into(),
                    expires_at_ms,
                    published_at_ms: Some(25)
                },
            ]
        );
        assert_eq!(outbox.body("a_1").unwrap(), Some(message("a_1").body));
        let ended = outbox.row("a_3").unwrap().unwrap();
        assert_eq!(ended.outcome.as_deref(), Some("refused"));
        assert_eq!(ended.reason.as_deref(), Some("UNROUTABLE_MESSAGE"));
        assert_eq!(outbox.prune(40).unwrap(), 0, "ended at 40, kept");
        assert_eq!(outbox.prune(41).unwrap(), 1);
        assert_eq!(outbox.row("a_3").unwrap(), None);
        outbox.remove("a_1").unwrap();
        assert_eq!(outbox.open_messages().unwrap().len(), 1);
    }
}

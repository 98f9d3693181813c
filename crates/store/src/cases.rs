//! The CISU messages of a call, sent to partners or received from them: their rows, their
//! delivery state, and reading them back with the JSON that went on the wire.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError, Write, ensure_call};

/// A CISU message of a call, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseMessageRecord {
    /// Its `distributionID`.
    pub distribution_id: String,
    /// `sent` or `received`.
    pub direction: String,
    /// The partner's hub client id.
    pub partner: String,
    /// `Report`, `Update`…
    pub kind: String,
    /// `queued`, `acked`, `refused`, `overdue`, `expired` or `received`.
    pub state: String,
    /// The refusal's words.
    pub reason: Option<String>,
    /// When it was sent or received, ms since the epoch.
    pub at: i64,
    /// When its state last changed.
    pub updated_at: i64,
    /// The JSON that went on the wire: a JSON document when read out, not a string holding one.
    #[serde(serialize_with = "as_json")]
    pub body: String,
}

/// A stored JSON document written out as JSON; text that no longer parses, as text.
fn as_json<S: serde::Serializer>(body: &str, out: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(value) => value.serialize(out),
        Err(_) => out.serialize_str(body),
    }
}

impl Store {
    /// The CISU messages of a call, sent and received, oldest first.
    pub fn case_messages(&self, call: u64) -> Result<Vec<CaseMessageRecord>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT distribution_id, direction, partner, kind, state, reason, at, updated_at, body
                 FROM case_messages WHERE call = ?1 ORDER BY at, rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(params![call as i64], |r| {
                Ok(CaseMessageRecord {
                    distribution_id: r.get(0)?,
                    direction: r.get(1)?,
                    partner: r.get(2)?,
                    kind: r.get(3)?,
                    state: r.get(4)?,
                    reason: r.get(5)?,
                    at: r.get(6)?,
                    updated_at: r.get(7)?,
                    body: r.get(8)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

/// A CISU message's write; any other write is not this module's and is left alone.
pub(super) fn apply(tx: &rusqlite::Transaction<'_>, write: &Write) -> rusqlite::Result<()> {
    match write {
        Write::CaseMessage {
            distribution_id,
            call,
            direction,
            partner,
            kind,
            state,
            at,
            body,
        } => {
            if let Some(call) = call {
                ensure_call(tx, *call, *at)?;
            }
            tx.prepare_cached(
                "INSERT INTO case_messages
                   (distribution_id, call, direction, partner, kind, state, at, updated_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
                 ON CONFLICT(distribution_id) DO NOTHING",
            )?
            .execute(params![
                distribution_id,
                call.map(|c| c as i64),
                direction,
                partner,
                kind,
                state,
                at,
                body.expose()
            ])?;
        }
        Write::CaseState {
            distribution_id,
            state,
            reason,
            at,
        } => {
            tx.prepare_cached(
                "UPDATE case_messages SET state = ?2, reason = ?3, updated_at = ?4
                 WHERE distribution_id = ?1",
            )?
            .execute(params![distribution_id, state, reason, at])?;
        }
        _ => {}
    }
    Ok(())
}

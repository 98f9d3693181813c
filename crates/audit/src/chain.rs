//! The chain, sans-IO: signs each event with the next sequence number and the hash of the line
//! before it. Whoever owns the `Chain` owns the order; writing the lines is someone else's job.

use serde::{Deserialize, Serialize};

use crate::event::LogEvent;
use crate::jws::{self, LineError};
use crate::key::{PublicKey, SecretKey};

/// The end of a chain: its last event's `seq` and the hash the next event will carry as
/// `prevHash`. Kept somewhere else (the store, a peer), it lets `verify` notice events cut off
/// the end of a log, which the chain alone cannot show.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    /// The last event's sequence number.
    pub seq: u64,
    /// Base64url SHA-256 of the last event's line.
    pub hash: String,
}

/// One element's chain of signed events.
#[derive(Debug, Clone)]
pub struct Chain {
    key: SecretKey,
    header: String,
    head: Option<Head>,
}

impl Chain {
    /// A new chain: its first event gets `seq` 1 and no `prevHash`.
    pub fn new(key: SecretKey) -> Chain {
        let header = jws::header_for(&key.public());
        Chain {
            key,
            header,
            head: None,
        }
    }

    /// The chain that continues after `last_line`, the last line of its log; refused unless the
    /// line is an event this key signed.
    pub fn resume(key: SecretKey, last_line: &[u8]) -> Result<Chain, LineError> {
        let mut chain = Chain::new(key);
        let payload = jws::open(last_line, &chain.key.public(), &chain.header)?;
        let links = jws::links(&payload)?;
        if links.seq == 0 || links.seq == u64::MAX {
            return Err(LineError::BadPayload(format!(
                "seq {} is outside a chain",
                links.seq
            )));
        }
        chain.head = Some(Head {
            seq: links.seq,
            hash: jws::line_hash(last_line),
        });
        Ok(chain)
    }

    /// The line for `event`: the next compact JWS of the chain, without a newline.
    pub fn sign(&mut self, event: &LogEvent) -> String {
        let seq = self.next_seq();
        let prev_hash = self.head.as_ref().map(|h| h.hash.as_str());
        let line = jws::sign(&self.key, &self.header, event, seq, prev_hash);
        self.head = Some(Head {
            seq,
            hash: jws::line_hash(line.as_bytes()),
        });
        line
    }

    /// The `seq` the next event gets.
    pub fn next_seq(&self) -> u64 {
        // Resume refuses u64::MAX and a log gains one event at a time: 2^64 events never come.
        self.head.as_ref().map_or(1, |h| h.seq + 1)
    }

    /// The last event signed (or resumed from), none for a new chain.
    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    /// The public key that verifies this chain.
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    /// The signing key, for a writer that resumes a chain of its own.
    pub(crate) fn key(&self) -> &SecretKey {
        &self.key
    }

    /// Takes the chain back to `head`, for a writer whose line did not reach the disk.
    pub(crate) fn rewind(&mut self, head: Option<Head>) {
        self.head = head;
    }
}

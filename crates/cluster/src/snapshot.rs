//! A cluster node's state at one entry of the log, kept in its data directory and replicated
//! for the others: a restarting node takes its own and applies only the entries after it, and
//! a node whose entries the log no longer holds takes the newest of any node's, so that
//! catching up stays fast however long the log grows.
//!
//! It holds what every node computes alike from the log (the core, the membership with each
//! node's highest call number, so that a restart never numbers a call twice, the
//! configuration in force, the log's clock) and the records of the calls still of use.

use secourir_wire::Format;
use serde::{Deserialize, Serialize};

use crate::entries::OfferedRecord;
use crate::membership::Members;

/// First bytes of the file, with the format's version: named since version 3, so that a node
/// of the next version starts from this one's snapshot. A snapshot of version 2 (compact) is
/// refused: the node then applies the log instead.
const MAGIC: &[u8; 8] = b"SCRSNP03";

/// A node's state after applying entry `seq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// The last entry applied.
    pub seq: u64,
    /// The log's clock then: the latest instant applied.
    pub clock: u64,
    /// The configuration in force (its text).
    pub config: String,
    /// The core.
    pub core: secourir_core::Snapshot,
    /// Who holds which call.
    pub members: Members,
    /// The records of the calls still of use (live, or to call back), with when they were
    /// offered: a node starting from another node's snapshot writes them in its store.
    pub records: Vec<(u64, OfferedRecord)>,
}

/// The snapshot's bytes, as the file and the replicated copy hold them: the format's
/// version, a CRC-32 of the rest, the rest.
pub fn encode(snapshot: &NodeSnapshot) -> std::io::Result<Vec<u8>> {
    let payload = Format::Named
        .encode(snapshot)
        .map_err(std::io::Error::other)?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    Ok(bytes)
}

/// The snapshot `bytes` hold, if they are sound.
pub fn decode(bytes: &[u8]) -> Result<NodeSnapshot, String> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not a snapshot of this version's format")?;
    let format = Format::Named;
    let (crc, payload) = rest.split_first_chunk::<4>().ok_or("cut short")?;
    if crc32fast::hash(payload) != u32::from_le_bytes(*crc) {
        return Err("checksum does not match".into());
    }
    format.decode(payload).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> NodeSnapshot {
        let plan = secourir_config::fixtures::one_cta_plan("");
        let mut members = Members::default();
        members.seen("a", 41);
        NodeSnapshot {
            seq: 42,
            clock: 1_700_000_000_000,
            config: "[national]\n".into(),
            core: secourir_core::Core::new(plan).snapshot(),
            members,
            records: Vec::new(),
        }
    }

    #[test]
    fn a_snapshot_reads_back_and_one_of_the_compact_format_is_refused() {
        let back = decode(&encode(&snapshot()).expect("encoded")).expect("read");
        assert_eq!((back.seq, back.members.last_seq("a")), (42, Some(41)));
        assert!(decode(b"SCRSNP02....").is_err());
    }
}

//! A cluster node's state at one entry of the log, kept in its data directory and replicated
//! for the others: a restarting node takes its own and applies only the entries after it, and
//! a node whose entries the log no longer holds takes the newest of any node's, so that
//! catching up stays fast however long the log grows.
//!
//! It holds what every node computes alike from the log (the core, the membership with each
//! node's highest call number, so that a restart never numbers a call twice, the
//! configuration in force, the log's clock) and the records of the calls still of use. A node
//! takes its own only when its store already holds the records of every entry up to it (its
//! `log_applied` mark): otherwise the node applies the log from the start, as without it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cluster::{Members, OfferedRecord};

/// The file, in the data directory.
const FILE: &str = "cluster-snapshot.bin";

/// First bytes of the file, with the format's version.
const MAGIC: &[u8; 8] = b"SCRSNP02";

/// A node's state after applying entry `seq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NodeSnapshot {
    /// The last entry applied.
    pub(crate) seq: u64,
    /// The log's clock then: the latest instant applied.
    pub(crate) clock: u64,
    /// The configuration in force (its text).
    pub(crate) config: String,
    /// The core.
    pub(crate) core: secourir_core::Snapshot,
    /// Who holds which call.
    pub(crate) members: Members,
    /// The records of the calls still of use (live, or to call back), with when they were
    /// offered: a node starting from another node's snapshot writes them in its store.
    pub(crate) records: Vec<(u64, OfferedRecord)>,
}

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The snapshot's bytes, as the file and the replicated copy hold them: the format's
/// version, a CRC-32 of the rest, the rest.
pub(crate) fn encode(snapshot: &NodeSnapshot) -> std::io::Result<Vec<u8>> {
    let payload = postcard::to_allocvec(snapshot).map_err(std::io::Error::other)?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    Ok(bytes)
}

/// The snapshot `bytes` hold, if they are sound.
pub(crate) fn decode(bytes: &[u8]) -> Result<NodeSnapshot, String> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not a snapshot of this version")?;
    let (crc, payload) = rest.split_first_chunk::<4>().ok_or("cut short")?;
    if crc32fast::hash(payload) != u32::from_le_bytes(*crc) {
        return Err("checksum does not match".into());
    }
    postcard::from_bytes(payload).map_err(|e| e.to_string())
}

/// Writes `bytes` (an encoded snapshot) for `dir`, whole or not at all (a crash mid-write
/// leaves the previous one): a temporary file, synced, renamed over the old.
pub(crate) fn write(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = dir.join(format!("{FILE}.new"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path(dir))?;
    std::fs::File::open(dir)?.sync_all()
}

/// The snapshot kept in `dir`, if there is a sound one; why not, otherwise (`Ok(None)`: none
/// was ever written).
pub(crate) fn read(dir: &Path) -> Result<Option<NodeSnapshot>, String> {
    match std::fs::read(path(dir)) {
        Ok(bytes) => decode(&bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(seq: u64) -> NodeSnapshot {
        let plan = secourir_config::fixtures::one_cta_plan("");
        NodeSnapshot {
            seq,
            clock: 1_700_000_000_000,
            config: "[national]\n".into(),
            core: secourir_core::Core::new(plan).snapshot(),
            members: Members::default(),
            records: Vec::new(),
        }
    }

    #[test]
    fn a_snapshot_reads_back_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(read(dir.path()).expect("none yet").is_none());
        let bytes = |seq| encode(&snapshot(seq)).expect("encoded");
        write(dir.path(), &bytes(10)).expect("written");
        write(dir.path(), &bytes(20)).expect("written again");
        let back = read(dir.path()).expect("sound").expect("there");
        assert_eq!(back.seq, 20);
        let mut bytes = std::fs::read(path(dir.path())).expect("bytes");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(path(dir.path()), &bytes).expect("damaged");
        assert_eq!(
            read(dir.path()).err().as_deref(),
            Some("checksum does not match")
        );
    }
}

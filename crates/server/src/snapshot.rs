//! A cluster node's snapshot in its data directory, written whole or not at all; what it holds
//! and how it is encoded is `secourir_cluster::NodeSnapshot`'s business. A node takes its own
//! only when its store already holds the records of every entry up to it (its `log_applied`
//! mark): otherwise the node applies the log from the start, as without it.

use std::io::Write;
use std::path::{Path, PathBuf};

use secourir_cluster::{NodeSnapshot, decode};

/// The file, in the data directory.
const FILE: &str = "cluster-snapshot.bin";

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
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
    use secourir_cluster::{Members, encode};

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

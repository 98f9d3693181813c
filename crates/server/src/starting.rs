//! Where a start begins: the journal it appends to, and in a cluster the snapshot it starts
//! from (its own, or the newest another node shared once the log was trimmed).

use crate::*;

/// Creates this run's journal file.
pub(crate) fn open_journal(
    data_dir: &std::path::Path,
    header: &secourir_journal::Header,
    node: &str,
) -> Result<secourir_journal::JournalSender, ServeError> {
    let dir = data_dir.join("journal");
    let io = |source| ServeError::DataDir {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let header = secourir_journal::Header {
        node: node.to_owned(),
        ..header.clone()
    };
    let path = dir.join(format!("{}.journal", header.started_at));
    info!(path = %path.display(), "inputs of the core journaled");
    secourir_journal::Journal::start(&path, &header).map_err(io)
}

/// The snapshot kept in `dir`, with its core restored, when it can stand for the log's
/// entries up to it: the store holds their records (`mark`), and its configuration reads and
/// fits the one this node started with. Otherwise the node applies the log from its start.
pub(crate) fn usable_snapshot(
    dir: &std::path::Path,
    mark: u64,
    plan: &Plan,
    read: &ConfigReader,
) -> Option<(secourir_cluster::NodeSnapshot, secourir_core::Core)> {
    let snapshot = match snapshot::read(dir) {
        Ok(Some(snapshot)) => snapshot,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(reason = %e, "cluster snapshot unreadable: the log is applied from its start");
            return None;
        }
    };
    if snapshot.seq > mark {
        tracing::warn!(
            seq = snapshot.seq,
            mark,
            "cluster snapshot ahead of the store's records: the log is applied from its start"
        );
        return None;
    }
    match restore(&snapshot, plan, read) {
        Ok(core) => {
            info!(seq = snapshot.seq, "starting from the cluster snapshot");
            Some((snapshot, core))
        }
        Err(e) => {
            tracing::warn!(reason = %e, "cluster snapshot does not fit: the log is applied from its start");
            None
        }
    }
}

/// The core `snapshot` holds, with its configuration read by `read`, if that configuration
/// may follow `plan` (the one this node started with) without a restart.
pub(crate) fn restore(
    snapshot: &secourir_cluster::NodeSnapshot,
    plan: &Plan,
    read: &ConfigReader,
) -> Result<secourir_core::Core, String> {
    read.read(&snapshot.config)
        .and_then(|taken| plan.may_become(&taken).map(|()| taken))
        .and_then(|taken| secourir_core::Core::restore(Arc::new(taken), snapshot.core.clone()))
}

/// Where a node starts applying the log, from what it has and what the log still holds:
/// its own snapshot if the entries after it are all there, else the newest snapshot a node
/// shared when the log no longer holds the entries it needs (`shared` is then true).
pub(crate) async fn starting_point(
    reached: &node::Reached,
    local: Option<(secourir_cluster::NodeSnapshot, secourir_core::Core)>,
    plan: &Plan,
    read: &ConfigReader,
) -> Result<
    (
        Option<(secourir_cluster::NodeSnapshot, secourir_core::Core)>,
        bool,
    ),
    node::JoinError,
> {
    let from = local.as_ref().map_or(1, |(s, _)| s.seq + 1);
    if reached.last == 0 || from >= reached.first {
        return Ok((local, false));
    }
    // The log was trimmed below what this node has: a brand-new node, or one away for long.
    let trimmed = |reason: String| node::JoinError::Trimmed {
        first: reached.first,
        reason,
    };
    let Some(shared) = reached.shared_snapshot().await? else {
        return Err(trimmed("no node shared a snapshot".into()));
    };
    if shared.seq + 1 < reached.first {
        return Err(trimmed(format!(
            "the newest snapshot shared is at entry {}",
            shared.seq
        )));
    }
    let core = restore(&shared, plan, read).map_err(|reason| node::JoinError::Config {
        seq: shared.seq,
        reason,
    })?;
    info!(
        seq = shared.seq,
        first = reached.first,
        "starting from the snapshot another node shared: the log no longer holds the entries before it"
    );
    Ok((Some((shared, core)), true))
}

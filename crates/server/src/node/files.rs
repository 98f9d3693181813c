//! The files the nodes share through the cluster's object store: the recordings, copied to
//! every node so that a site's loss loses no conversation, and the nodes' snapshots.

use super::*;

/// Bucket of the replicated recordings.
pub(super) const RECORDINGS: &str = "secourir-recordings";

/// Bucket of the nodes' snapshots, one per node, named after it.
pub(super) const SNAPSHOTS: &str = "secourir-snapshots";

/// How long a snapshot waits for the store to hold its records before it is said kept.
const KEPT_PATIENCE: Duration = Duration::from_secs(30);

/// How long a node keeps trying to copy a recording another node announced.
const FETCH_PATIENCE: Duration = Duration::from_secs(120);

/// A recording of another node, copied here and checked.
pub(crate) struct Fetched {
    /// The call.
    pub(crate) call: CallId,
    /// The call's own recording.
    pub(crate) main: bool,
    /// Where the copy is.
    pub(crate) path: PathBuf,
    /// Its SHA-256, the same as the original's.
    pub(crate) sha256: String,
    /// Its length.
    pub(crate) duration_ms: u64,
}

/// The snapshot of highest entry among those in `snapshots` (one per node, its entry as its
/// description), read and checked.
pub(super) async fn newest(snapshots: &Objects) -> Result<Option<NodeSnapshot>, LogError> {
    let mut described = snapshots.described().await?;
    described.sort_by_key(|(_, seq)| std::cmp::Reverse(seq.parse::<u64>().unwrap_or(0)));
    for (name, _) in described {
        let bytes = snapshots.get_bytes(&name).await?;
        match secourir_cluster::decode(&bytes) {
            Ok(snapshot) => return Ok(Some(snapshot)),
            // Another version's, or damaged: the next one may do.
            Err(reason) => warn!(%name, %reason, "replicated snapshot unusable"),
        }
    }
    Ok(None)
}

/// Replicates a node's snapshots.
pub(crate) struct Sharer {
    snapshots: Option<Objects>,
    name: String,
    kept: Arc<AtomicU64>,
}

impl Sharer {
    /// Replicates the snapshot at entry `seq` (its encoded `bytes`) once the store in
    /// `data_dir` holds the records up to it, and then has it said kept in the log.
    pub(crate) fn share(self, seq: u64, bytes: Vec<u8>, data_dir: PathBuf) {
        let Sharer {
            snapshots,
            name,
            kept,
        } = self;
        let Some(snapshots) = snapshots else {
            return;
        };
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + KEPT_PATIENCE;
            loop {
                let dir = data_dir.clone();
                let mark = tokio::task::spawn_blocking(move || {
                    secourir_store::Store::open_read_only(&dir).and_then(|s| s.log_applied())
                })
                .await;
                match mark {
                    Ok(Ok(mark)) if mark >= seq => break,
                    _ if tokio::time::Instant::now() >= deadline => {
                        return warn!(seq, "snapshot not shared: the store is behind it");
                    }
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            match snapshots.put_bytes(&name, &seq.to_string(), &bytes).await {
                Ok(()) => {
                    info!(seq, "cluster snapshot replicated");
                    kept.fetch_max(seq, Ordering::AcqRel);
                }
                Err(e) => warn!(seq, error = %e, "cluster snapshot not replicated"),
            }
        });
    }
}

impl Reached {
    /// The newest snapshot a node of the cluster kept, if any can be read.
    pub(crate) async fn shared_snapshot(&self) -> Result<Option<NodeSnapshot>, JoinError> {
        let Some(snapshots) = &self.snapshots else {
            return Ok(None);
        };
        let deadline = tokio::time::Instant::now() + JOIN_PATIENCE;
        loop {
            match newest(snapshots).await {
                Ok(found) => return Ok(found),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e.into()),
                Err(e) => {
                    warn!(error = %e, "snapshots not readable yet: asking again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

impl Node {
    /// Copies a recording of this node to the replicated files, off the driver's task.
    pub(crate) fn upload(&self, name: String, path: PathBuf) {
        let Some(objects) = self.objects.clone() else {
            return;
        };
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + FETCH_PATIENCE;
            loop {
                match objects.put_file(&name, &path).await {
                    Ok(()) => return info!(%name, "recording replicated"),
                    Err(e) if tokio::time::Instant::now() >= deadline => {
                        return error!(%name, error = %e, "recording not replicated");
                    }
                    Err(e) => {
                        warn!(%name, error = %e, "replicating a recording again");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }

    /// Copies here a recording another node announced, checks its SHA-256, and hands it to
    /// the driver on `fetched`.
    pub(crate) fn fetch(
        &self,
        call: CallId,
        name: String,
        sha256: String,
        duration_ms: u64,
        main: bool,
    ) {
        let Some(objects) = self.objects.clone() else {
            return;
        };
        let path = self.recordings.join(&name);
        let tx = self.fetched_tx.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + FETCH_PATIENCE;
            // Hashing reads the whole file: off the runtime's threads.
            let sha_of = |path: PathBuf| async move {
                tokio::task::spawn_blocking(move || secourir_media::sha256_of(&path))
                    .await
                    .ok()
                    .flatten()
                    .map(|(sha, _)| sha)
            };
            // A copy already here (a restart) is kept if it is the same file.
            let mut held = sha_of(path.clone()).await == Some(sha256.clone());
            while !held {
                let error = match objects.get_file(&name, &path).await {
                    Ok(()) => match sha_of(path.clone()).await {
                        Some(sha) if sha == sha256 => {
                            held = true;
                            continue;
                        }
                        other => {
                            let _ = std::fs::remove_file(&path);
                            format!("SHA-256 {other:?} instead of {sha256}")
                        }
                    },
                    Err(e) => e.to_string(),
                };
                if tokio::time::Instant::now() >= deadline {
                    return error!(%name, %error, "recording of another node not copied");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let fetched = Fetched {
                call,
                main,
                path,
                sha256,
                duration_ms,
            };
            let _ = tx.send(fetched).await;
        });
    }

    /// What replicates this node's snapshots, off the driver's task.
    pub(crate) fn sharer(&self) -> Sharer {
        Sharer {
            snapshots: self.snapshots.clone(),
            name: self.name.clone(),
            kept: self.kept.clone(),
        }
    }
}

//! Reading the cluster's log: all of it for a replay, or following it from an entry on, again
//! where it stopped when a server dies.

use super::*;

/// Every entry a cluster's log holds now, from its start, in its order.
pub(crate) async fn read_all(urls: &str) -> Result<Vec<Entry>, LogError> {
    let servers = urls.split(',').filter(|u| !u.trim().is_empty()).count();
    let log = ClusterLog::connect(urls, STREAM, servers.clamp(1, 3)).await?;
    let (first, last) = log.bounds().await?;
    let mut entries = Vec::new();
    if last == 0 {
        return Ok(entries);
    }
    if first > 1 {
        // Applying the rest from an empty core would not be what the nodes did.
        return Err(LogError::Read(format!(
            "the log was trimmed below entry {first} (every node had a snapshot there): replay a node's journal instead"
        )));
    }
    let stream = log.follow::<Batch<Input>>(1).await?;
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        let (seq, mut batch, reads) = item?;
        batch.reads = reads;
        entries.push((seq, batch));
        if seq >= last {
            break;
        }
    }
    Ok(entries)
}

/// A healthy log brings every node's heartbeat twice a second: this long without any entry,
/// the reading starts again where it stopped, from whichever server is up (the consumer lived
/// on a server that may have died, and the client's own check takes ten seconds).
const FOLLOW_SILENCE: Duration = Duration::from_millis(1_500);

/// Reads the log from its start into `tx`, again where it stopped if the reading fails.
pub(super) async fn follow(
    log: ClusterLog,
    mut from: u64,
    tx: mpsc::Sender<Entry>,
    unreadable: Arc<AtomicU64>,
) {
    loop {
        match log.follow::<Batch<Input>>(from).await {
            Ok(stream) => {
                let mut stream = std::pin::pin!(stream);
                loop {
                    let item = match tokio::time::timeout(FOLLOW_SILENCE, stream.next()).await {
                        Ok(Some(item)) => item,
                        Ok(None) => break,
                        Err(_) => {
                            info!("cluster log silent: reading it again");
                            break;
                        }
                    };
                    match item {
                        Ok((seq, mut batch, reads)) => {
                            batch.reads = reads;
                            from = seq + 1;
                            if tx.send((seq, batch)).await.is_err() {
                                return;
                            }
                        }
                        Err(LogError::Decode { seq, reason }) => {
                            // Written by another version of the platform. Applying the rest
                            // without it would make this node's core differ from the others'
                            // (a call picked twice): the node stops applying here and serves
                            // its calls alone, and says so, until it runs the others' version.
                            error!(
                                seq,
                                %reason,
                                "cluster log entry unreadable by this version: the log is no longer applied here, calls are served alone"
                            );
                            unreadable.store(seq, Ordering::Relaxed);
                            return;
                        }
                        Err(e) => {
                            warn!(error = %e, "reading the cluster log again");
                            break;
                        }
                    }
                }
            }
            Err(e) => warn!(error = %e, "cluster log not readable yet"),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

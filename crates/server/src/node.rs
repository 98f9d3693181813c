//! This node's seat in a cluster: what it appends to the log, the log's entries coming in,
//! the replicated files, and the failover machine (crates/cluster) it feeds. The decisions
//! stay in the log: a silence seen here only proposes a `Lost` entry, which the log orders
//! with what the silent node may still have said.

mod files;
mod reading;

pub(crate) use files::Fetched;
use files::{RECORDINGS, SNAPSHOTS};
use reading::follow;
pub(crate) use reading::read_all;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use secourir_cluster::{Failover, Input, Members, NodeSnapshot, OfferedRecord, slot_of};
use secourir_cluster_log::{Appender, Batch, ClusterLog, Format, LogError, Objects};
use secourir_core::{CallId, Instant, Offer};
use std::path::PathBuf;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// Name of the JetStream stream holding the core's inputs.
pub(crate) const STREAM: &str = "secourir";

/// How long a starting node waits for the cluster's log.
const JOIN_PATIENCE: Duration = Duration::from_secs(30);

/// Entries read ahead of the driver.
const ENTRIES_AHEAD: usize = 4096;

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The log is unreachable or refused.
    #[error("cluster log: {0}")]
    Log(#[from] LogError),
    /// Another node's numbers end like this one's.
    #[error(
        "node {node} would number its calls like node {other} (slot {slot}): give it another --node name"
    )]
    Slot {
        /// This node.
        node: String,
        /// The node with the same slot.
        other: String,
        /// The slot.
        slot: u64,
    },
    /// The log no longer holds the entries this node needs, and no snapshot stands for them.
    #[error("the cluster log was trimmed below entry {first} and cannot be applied here: {reason}")]
    Trimmed {
        /// The log's first entry.
        first: u64,
        /// Why no shared snapshot stands for the entries before it.
        reason: String,
    },
    /// The log holds a configuration this node cannot take: its core would differ from
    /// the others'.
    #[error(
        "the configuration at entry {seq} of the cluster log cannot be taken here ({reason}): start this node with that configuration"
    )]
    Config {
        /// The entry.
        seq: u64,
        /// Why.
        reason: String,
    },
}

/// One log entry: its sequence and the batch of one node's inputs.
pub(crate) type Entry = (u64, Batch<Input>);

/// What the failover machine keeps of a new call until its offer is back from the log.
pub(crate) type Kept = (OfferedRecord, Offer);

/// This node's seat in the cluster.
pub(crate) struct Node {
    /// Its name, unique in the cluster.
    pub(crate) name: String,
    /// Its site.
    pub(crate) site: String,
    /// What its numbers end with.
    pub(crate) slot: u64,
    /// The failover decisions: serving alone, silent nodes, conversations carried on.
    pub(crate) failover: Failover<Kept>,
    /// This life of the node.
    pub(crate) incarnation: u64,
    appender: Appender<Input>,
    log: ClusterLog,
    /// The snapshots' bucket, if it could be had.
    snapshots: Option<Objects>,
    /// The records of the calls offered, and when: a snapshot carries those still of use.
    pub(crate) records: HashMap<CallId, (u64, OfferedRecord)>,
    /// The entry of the last snapshot kept here and replicated, set off the driver's task.
    kept: Arc<AtomicU64>,
    /// The entry of the last snapshot said kept in the log.
    kept_said: u64,
    /// The log is trimmed (or being trimmed) below this entry.
    trimmed: u64,
    /// Entries of the log, in its order (taken by the driver's loop while it runs).
    pub(crate) entries: Option<mpsc::Receiver<Entry>>,
    /// Who holds which call, from the log.
    pub(crate) members: Members,
    /// The log's clock: the latest instant applied.
    pub(crate) applied: Instant,
    /// Entries up to this sequence have their writes in the store already.
    pub(crate) mark: u64,
    /// The log had no entry when the node joined.
    pub(crate) new_log: bool,
    /// The entry of the snapshot this node started from, if it did.
    pub(crate) snapshot_from: Option<u64>,
    /// That snapshot was another node's (the log no longer held what this node needed).
    pub(crate) shared_from: bool,
    /// Entries between two snapshots.
    pub(crate) snapshot_every: u64,
    /// The entry of the last snapshot this node took (or started from).
    pub(crate) snapshot_taken: u64,
    /// Inputs given since this life started, and those of them applied back.
    given: u64,
    given_applied: u64,
    /// The timer deadline a tick was asked for, and when.
    tick_asked: Option<(Instant, tokio::time::Instant)>,
    /// The recordings replicated on the cluster's servers, if their bucket could be had.
    objects: Option<Objects>,
    /// Where this node keeps recordings.
    recordings: PathBuf,
    /// Recordings of other nodes copied here (taken by the driver's loop while it runs).
    pub(crate) fetched: Option<mpsc::Receiver<Fetched>>,
    fetched_tx: mpsc::Sender<Fetched>,
    /// The first entry this version could not read, 0 while every entry could be.
    unreadable: Arc<AtomicU64>,
}

/// The cluster's log and replicated files, reached: what a starting node reads before it
/// decides where to start applying the log.
pub(crate) struct Reached {
    log: ClusterLog,
    /// The recordings' bucket, if it could be had.
    objects: Option<Objects>,
    /// The snapshots' bucket, if it could be had.
    snapshots: Option<Objects>,
    /// The log's first entry still held (the last plus one once trimmed whole).
    pub(crate) first: u64,
    /// The log's last entry (0 when it never had any).
    pub(crate) last: u64,
}

impl Reached {
    /// Reaches the cluster at `urls`, asking again while it elects its leaders.
    pub(crate) async fn reach(urls: &str) -> Result<Reached, JoinError> {
        let servers = urls.split(',').filter(|u| !u.trim().is_empty()).count();
        let replicas = servers.clamp(1, 3);
        // A cluster that has just started elects its leaders first: ask again meanwhile.
        let deadline = tokio::time::Instant::now() + JOIN_PATIENCE;
        let log = loop {
            match ClusterLog::connect(urls, STREAM, replicas).await {
                Ok(log) => break log,
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e.into()),
                Err(e) => {
                    warn!(error = %e, "cluster log not ready: asking again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        let (first, last) = log.bounds().await?;
        let bucket = |name: &'static str| {
            let log = log.clone();
            async move {
                match log.objects(name, replicas).await {
                    Ok(objects) => Some(objects),
                    Err(e) => {
                        error!(bucket = name, error = %e, "replicated files unavailable");
                        None
                    }
                }
            }
        };
        let objects = bucket(RECORDINGS).await;
        let snapshots = bucket(SNAPSHOTS).await;
        Ok(Reached {
            log,
            objects,
            snapshots,
            first,
            last,
        })
    }
}

impl Node {
    /// Joins the cluster `reached` as `name`, applying the log from entry `from`: the entries
    /// already in the log come back, to be applied before serving; those after follow on
    /// `entries`.
    pub(crate) async fn join(
        reached: Reached,
        name: &str,
        site: &str,
        incarnation: u64,
        mark: u64,
        recordings: PathBuf,
        from: u64,
    ) -> Result<(Node, Vec<Entry>), JoinError> {
        let Reached {
            log,
            objects,
            snapshots,
            last,
            ..
        } = reached;
        let (fetched_tx, fetched) = mpsc::channel(ENTRIES_AHEAD);
        let (tx, mut entries) = mpsc::channel(ENTRIES_AHEAD);
        let unreadable = Arc::new(AtomicU64::new(0));
        tokio::spawn(follow(log.clone(), from, tx, unreadable.clone()));
        let mut earlier = Vec::new();
        while last >= from && earlier.last().is_none_or(|(seq, _): &Entry| *seq < last) {
            match entries.recv().await {
                Some(entry) => earlier.push(entry),
                None => {
                    let seq = unreadable.load(Ordering::Relaxed);
                    return Err(LogError::Read(format!(
                        "entry {seq} cannot be read by this version of the platform"
                    ))
                    .into());
                }
            }
        }
        info!(
            entries = earlier.len(),
            last,
            node = name,
            "cluster log read"
        );
        let slot = slot_of(name);
        let node = Node {
            name: name.to_owned(),
            site: site.to_owned(),
            slot,
            failover: Failover::new(name),
            incarnation,
            appender: Appender::start(log.clone(), name, incarnation),
            log,
            snapshots,
            records: HashMap::new(),
            kept: Arc::new(AtomicU64::new(0)),
            kept_said: from.saturating_sub(1),
            trimmed: 0,
            entries: Some(entries),
            members: Members::default(),
            applied: Instant(0),
            mark,
            new_log: last == 0,
            snapshot_from: None,
            shared_from: false,
            snapshot_taken: from.saturating_sub(1),
            snapshot_every: crate::limits::SNAPSHOT_EVERY,
            given: 0,
            given_applied: 0,
            tick_asked: None,
            objects,
            recordings,
            fetched: Some(fetched),
            fetched_tx,
            unreadable,
        };
        Ok((node, earlier))
    }

    /// Trims the log below the entry every node has kept, once per new floor.
    pub(crate) fn trim(&mut self) {
        let floor = self.members.trim_floor(self.applied.0);
        if floor <= self.trimmed {
            return;
        }
        self.trimmed = floor;
        let log = self.log.clone();
        tokio::spawn(async move {
            // The entries after the floor stay: a node starting from its snapshot applies
            // from the one after it.
            match log.trim_below(floor + 1).await {
                Ok(purged) => info!(below = floor + 1, purged, "cluster log trimmed"),
                Err(e) => warn!(error = %e, "cluster log not trimmed"),
            }
        });
    }

    /// Writes no newer wire format than every member present reads.
    pub(crate) fn write_for_members(&self) {
        let oldest = self.members.oldest_reader(&self.name);
        if Format::for_reader(oldest) != self.appender.format() {
            info!(
                format = Format::for_reader(oldest).number(),
                "cluster log entries now written in the wire format every member reads"
            );
        }
        self.appender.write_for(oldest);
    }

    /// The wire format of this node's next entries.
    pub(crate) fn writes_format(&self) -> u16 {
        self.appender.format().number()
    }

    /// Tells the failover machine whether this node's appends are failing and whether the
    /// log holds an entry this version cannot read: called before each of its decisions.
    pub(crate) fn observe_log(&mut self) {
        self.failover.appending(self.appender.cut_off());
        if let seq @ 1.. = self.unreadable.load(Ordering::Relaxed) {
            self.failover.unreadable(seq);
        }
    }

    /// The last entry applied.
    pub(crate) fn applied_seq(&self) -> u64 {
        self.failover.applied_seq()
    }

    /// Gives an input to the log.
    pub(crate) fn give(&mut self, input: Input) {
        self.given += 1;
        if !self.appender.send(input) {
            error!("the cluster log's appender stopped: an input is lost");
        }
    }

    /// The log's clock moves to `at`, never back.
    pub(crate) fn advance(&mut self, at: u64) -> Instant {
        self.applied = Instant(self.applied.0.max(at));
        self.applied
    }

    /// An entry of `node` is being applied here (`live`: after the start's catch-up).
    pub(crate) fn heard(&mut self, node: &str, items: usize, live: bool) {
        if live && node == self.name {
            self.given_applied += items as u64;
        }
    }

    /// Whether every input given has come back from the log.
    pub(crate) fn drained(&self) -> bool {
        self.given_applied >= self.given
    }

    /// Whether a tick should be asked for `deadline` now (once a second at most per deadline).
    pub(crate) fn ask_tick(&mut self, deadline: Instant) -> bool {
        let now = tokio::time::Instant::now();
        match self.tick_asked {
            Some((d, when)) if d == deadline && now < when + Duration::from_secs(1) => false,
            _ => {
                self.tick_asked = Some((deadline, now));
                true
            }
        }
    }

    /// How long to wait before asking for `deadline` again, when a tick was already asked.
    pub(crate) fn tick_wait(&self, deadline: Instant) -> Option<Duration> {
        match self.tick_asked {
            Some((d, when)) if d == deadline => Some(
                (when + Duration::from_secs(1))
                    .saturating_duration_since(tokio::time::Instant::now()),
            ),
            _ => None,
        }
    }

    /// A snapshot kept and replicated since the log was last told: the `Kept` input to give.
    pub(crate) fn kept_input(&mut self, at: u64) -> Option<Input> {
        let kept = self.kept.load(Ordering::Acquire);
        (kept > self.kept_said).then(|| {
            self.kept_said = kept;
            Input::Kept { at, seq: kept }
        })
    }
}

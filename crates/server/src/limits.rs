//! Every bound of the platform process in one place, with why it has that size and what
//! happens when it is reached. Nothing grows without bound: at a bound a request is refused
//! with a reason, or an item is dropped and counted, as each line says.

/// Requests from the HTTP handlers waiting for the driver. At the bound a handler waits for
/// room (its client sees a slower answer, never a lost one): 1,024 is several seconds of the
/// busiest console traffic seen, so reaching it means the driver is stuck, not busy.
pub(crate) const API_QUEUE: usize = 1_024;

/// Events from the demonstration's simulated callers and phones. At the bound a simulated
/// person waits, which only slows the demonstration down.
pub const PEER_QUEUE: usize = 1_024;

/// SIP happenings waiting for the driver. At the bound the SIP tasks wait (the UDP socket's
/// buffer then holds datagrams, and retransmissions cover a loss): 16,384 is more than a
/// minute of the national peak (about 200 events per second).
pub(crate) const SIP_EVENTS: usize = 16_384;

/// Media happenings (DTMF, finished recordings) waiting for the driver. At the bound the
/// media task waits before reporting; 4,096 covers every open leg reporting at once.
pub(crate) const MEDIA_EVENTS: usize = 4_096;

/// Batches of store writes the writer thread's channel holds (one batch per driver turn).
pub(crate) const WRITER_QUEUE: usize = 16_384;

/// Batches held on the driver's side when the writer's channel is full, so that the driver
/// never waits for the disk: a driver that waits answers no caller. Beyond it (about a minute
/// of full load with a dead disk) the oldest held batch is dropped, counted in
/// `secourir_store_writes_lost_total` and logged.
pub(crate) const WRITER_HELD: usize = 4_096;

/// Writes the writer commits in one transaction: large enough to amortise the fsync, small
/// enough that one transaction stays well under the 10 ms group commit.
pub(crate) const WRITER_BATCH: usize = 4_096;

/// Notices of calls whose records are on disk, waiting for the driver. At the bound a notice
/// is dropped and the answer it would have released goes out after
/// `ANSWER_RECORD_PATIENCE_MS` instead.
pub(crate) const SETTLED_QUEUE: usize = 1_024;

/// How long an admitted caller's answer waits for its record to be on disk. Past it the caller
/// is answered anyway and `secourir_answers_before_record_total` counts it: a slow disk must
/// never keep an emergency call ringing.
pub(crate) const ANSWER_RECORD_PATIENCE_MS: u64 = 500;

/// Call numbers reserved in the store at a time, renewed halfway: the write is durable long
/// before the numbers it covers are used, so a crash never lets a number be given twice.
pub(crate) const CALL_NUMBER_BLOCK: u64 = 10_000;

/// How long a stopping platform waits for the recordings in progress to be finished; any left
/// after it is logged as an error with its path, the WAV repaired at the next start.
pub(crate) const STOP_RECORDINGS_WAIT_S: u64 = 10;

/// How often the pages' picture is rebuilt when something changed, and overdue answers looked
/// at: four times a second is live to a person and cheap for the driver.
pub(crate) const PAGES_EVERY_MS: u64 = 250;

/// How often a cluster node says it is alive and looks for silent nodes: often enough that a
/// dead node's calls go to the call-back lists within a second of `LOST_AFTER_MS`.
pub(crate) const HEARTBEAT_CHECK_MS: u64 = 250;

/// How long a stopping cluster node waits for the log to take its last inputs (its calls
/// ended, their callers on the call-back lists); past it the others declare it lost.
pub(crate) const STOP_LOG_WAIT_S: u64 = 5;

/// Entries a cluster node applies between two snapshots of its state (and at a clean stop):
/// a restart applies at most this many entries more than those since its last stop. The
/// heartbeats alone give 2 entries a second per node, so an idle two-node cluster snapshots
/// every 20 minutes, a busy one more often; each snapshot copies the core on the driver's
/// task and is written off it.
pub const SNAPSHOT_EVERY: u64 = 5_000;

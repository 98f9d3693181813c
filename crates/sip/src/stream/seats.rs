//! The seats connections take: bounded in all and per source, silent ones giving way first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rsipstack::platform::CancellationToken;

use super::{MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE, WARN_EVERY};

/// Open connections, in all and per source address, and those that have not spoken yet.
#[derive(Default)]
pub(super) struct Census {
    pub(super) total: usize,
    pub(super) per_source: HashMap<std::net::IpAddr, usize>,
    /// Connections still waiting for their first message, oldest first: when every seat is
    /// taken, the oldest of them gives its seat to the newcomer, so that silent connections
    /// can never keep a real peer out.
    pub(super) silent: VecDeque<(u64, CancellationToken)>,
    next: u64,
    /// The most connections open at once since memory was last given back.
    peak: usize,
}

/// One seat among the open connections, given back when the connection ends.
pub(super) struct Seat {
    census: Arc<Mutex<Census>>,
    source: std::net::IpAddr,
    id: u64,
}

impl Seat {
    /// The connection brought its first message: it keeps its seat when the room is full.
    pub(super) fn spoke(&self) {
        let mut census = self.census.lock().unwrap_or_else(|e| e.into_inner());
        census.silent.retain(|(id, _)| *id != self.id);
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut census = self.census.lock().unwrap_or_else(|e| e.into_inner());
        census.total -= 1;
        census.silent.retain(|(id, _)| *id != self.id);
        if let Some(n) = census.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                census.per_source.remove(&self.source);
            }
        }
        if census.peak >= TRIM_AFTER_PEAK && census.total <= census.peak / 4 {
            census.peak = census.total;
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn_blocking(give_memory_back);
            }
        }
    }
}

/// A peak of connections after which, once they have mostly closed, the memory they held is
/// given back to the system.
const TRIM_AFTER_PEAK: usize = 1_024;

/// Gives the heap's free pages back to the system. glibc keeps them otherwise: after 20,000
/// silent connections had come and gone, the process stayed about 40 % above its size before
/// them; with this, 11 to 13 %.
fn give_memory_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no precondition: it only returns free heap pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    Total,
    Source,
}

/// A seat for a connection from `source`, whose task ends when `cancel` fires. When every
/// seat is taken, the oldest silent connection is told to close and the newcomer is seated
/// meanwhile (the room holds `MAX_CONNECTIONS` plus those still closing).
pub(super) fn seat(
    census: &Arc<Mutex<Census>>,
    source: std::net::IpAddr,
    cancel: &CancellationToken,
) -> Result<Seat, Refused> {
    let mut guard = census.lock().unwrap_or_else(|e| e.into_inner());
    if guard.per_source.get(&source).copied().unwrap_or(0) >= MAX_CONNECTIONS_PER_SOURCE {
        return Err(Refused::Source);
    }
    if guard.total >= MAX_CONNECTIONS {
        let (_, oldest) = guard.silent.pop_front().ok_or(Refused::Total)?;
        oldest.cancel();
    }
    *guard.per_source.entry(source).or_default() += 1;
    guard.total += 1;
    guard.peak = guard.peak.max(guard.total);
    let id = guard.next;
    guard.next += 1;
    guard.silent.push_back((id, cancel.clone()));
    Ok(Seat {
        census: census.clone(),
        source,
        id,
    })
}

/// A warning that says how often it happened instead of repeating itself.
pub(super) struct Quiet {
    last: Option<Instant>,
    unsaid: u64,
}

impl Quiet {
    pub(super) fn new() -> Quiet {
        Quiet {
            last: None,
            unsaid: 0,
        }
    }

    /// How many times it happened since it was last said, when it is time to say it again.
    pub(super) fn due(&mut self) -> Option<u64> {
        self.unsaid += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < WARN_EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unsaid))
    }
}

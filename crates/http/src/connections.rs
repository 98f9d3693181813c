//! The HTTP API's connections, counted in all and per source address. Past either bound a new
//! connection is closed at once: one source cannot take the descriptors the consoles of the
//! other sites, the SIP connections and the media ports need. A site's consoles reach the
//! platform from one address behind its NAT, hence a per-source bound far above one browser's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::warn;

/// Open HTTP connections in all.
pub(crate) const MAX_HTTP_CONNECTIONS: usize = 2_048;
/// Open HTTP connections from one address: fifty consoles of a room, each with its page's
/// connections and its live feed, stay well below.
pub(crate) const MAX_HTTP_PER_SOURCE: usize = 256;
/// Refusals are logged at most once per this period, with their count.
const WARN_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Census {
    total: usize,
    per_source: HashMap<IpAddr, usize>,
    unsaid: u64,
    said_at: Option<Instant>,
}

/// Seats each accepted connection, or closes it when there is no seat.
#[derive(Clone, Default)]
pub(crate) struct Bounded {
    census: Arc<Mutex<Census>>,
}

/// A connection that holds its seat until it is dropped.
pub(crate) struct Seated {
    stream: TcpStream,
    _seat: Seat,
}

struct Seat {
    census: Arc<Mutex<Census>>,
    source: IpAddr,
}

fn lock(census: &Mutex<Census>) -> std::sync::MutexGuard<'_, Census> {
    census.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut census = lock(&self.census);
        census.total -= 1;
        if let Some(n) = census.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                census.per_source.remove(&self.source);
            }
        }
    }
}

impl Bounded {
    fn seat(&self, source: IpAddr) -> Option<Seat> {
        let mut census = lock(&self.census);
        let from_source = census.per_source.get(&source).copied().unwrap_or(0);
        if census.total >= MAX_HTTP_CONNECTIONS || from_source >= MAX_HTTP_PER_SOURCE {
            census.unsaid += 1;
            let now = Instant::now();
            if census
                .said_at
                .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
            {
                let times = std::mem::take(&mut census.unsaid);
                census.said_at = Some(now);
                warn!(%source, times, total = census.total, from_source, "HTTP connections refused: too many in all or from one source");
            }
            return None;
        }
        census.total += 1;
        *census.per_source.entry(source).or_default() += 1;
        Some(Seat {
            census: self.census.clone(),
            source,
        })
    }
}

impl<S> axum_server::accept::Accept<TcpStream, S> for Bounded {
    type Stream = Seated;
    type Service = S;
    type Future = std::future::Ready<std::io::Result<(Seated, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let seat = stream
            .peer_addr()
            .ok()
            .and_then(|peer| self.seat(peer.ip()));
        std::future::ready(match seat {
            Some(seat) => Ok((
                Seated {
                    stream,
                    _seat: seat,
                },
                service,
            )),
            None => Err(std::io::Error::other("no seat for this connection")),
        })
    }
}

impl AsyncRead for Seated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Seated {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_are_bounded_per_source_and_given_back() {
        let bounded = Bounded::default();
        let one: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        let held: Vec<Seat> = (0..MAX_HTTP_PER_SOURCE)
            .map(|_| bounded.seat(one).expect("a seat"))
            .collect();
        assert!(bounded.seat(one).is_none(), "one source past its bound");
        assert!(bounded.seat(other).is_some(), "another source still seated");
        drop(held);
        assert!(bounded.seat(one).is_some(), "seats given back");
        assert_eq!(lock(&bounded.census).total, 0);
    }
}

//! SIP over TCP and over TLS, framed and screened by Secourir before the stack reads it.
//!
//! The stack's own TCP reader closes the whole connection at the first message it cannot parse,
//! so one Latin-1 byte from an operator's SBC cut every call of its trunk, and the screen that
//! repairs such bytes on UDP never saw them. Here each message is framed by its Content-Length
//! and passes the same [`admit`] as a datagram. The stack still owns the connection (its
//! transactions and dialogs answer over it, addressed to the real peer), but it reads the peer
//! through a loopback pair that only screened messages are written into. Over TLS the handshake
//! is made here (rustls) and the stack sees the connection as TLS, so a phone registered over it
//! is rung over it.
//!
//! The accept loop also bounds what connections may take: a total and a per-source count; a
//! connection that says nothing within 10 s is closed, and holds only its socket until then
//! (the stack hears of a connection at its first message); when every seat is taken the oldest
//! silent connection gives way, so silent connections never keep a real peer out; an accept
//! error (EMFILE) pauses the loop instead of spinning it, and refusals are logged at most once
//! per 10 s with a count. Once a crowd of connections has mostly gone, the memory it held is
//! given back to the system.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::platform::CancellationToken;
use rsipstack::sip::transport::Transport;
use rsipstack::transport::stream::StreamConnectionInner;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::{SipAddr, SipConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::screen::{Admitted, Limits, ScreenStats, Verdict, admit, content_length, reply};

mod seats;

use seats::{Census, Quiet, Refused, Seat, seat};

/// The longest message over TCP: the stack's stream reader gives up on a longer one.
pub const MAX_STREAM_MESSAGE: usize = 65_535;

/// Open TCP connections in all. Each takes three descriptors (the peer's and the loopback
/// pair); operators' trunks and phones need a few hundred, and 4,096 stays far from the
/// process's descriptor limit, so RTP ports and the store never run short.
pub const MAX_CONNECTIONS: usize = 4_096;

/// Open TCP connections from one address: an SBC keeps a handful, a phone one; beyond, one
/// source could take the room every other trunk needs.
pub const MAX_CONNECTIONS_PER_SOURCE: usize = 64;

/// How long the accept loop rests after an accept error (descriptors exhausted): the
/// connections waiting in the backlog stay there instead of spinning the loop.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// A connection must bring its first message within this delay: a peer that connects to
/// talk does so at once, and one that holds a connection silent only takes a descriptor.
/// Afterwards the stack closes a connection silent for 5 minutes (its own idle timeout).
const FIRST_MESSAGE_WITHIN: Duration = Duration::from_secs(10);

/// Warnings of one kind about refused connections, at most one per this period, with a count.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Where the next message in a connection's bytes ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A keep-alive (RFC 5626 §3.5.1) of this many bytes, for the stack to answer.
    KeepAlive(usize),
    /// A stray byte before a start line (RFC 3261 §7.5 lets it be ignored).
    Skip,
    /// A whole message of this many bytes.
    Message(usize),
    /// The rest has not arrived yet.
    Partial,
    /// No boundary can be found; `head` is the length of the header section when it is whole,
    /// so that a refusal can be addressed.
    Unframeable {
        /// Header section, without its blank line.
        head: Option<usize>,
        /// Status to answer with.
        code: u16,
        /// Reason phrase.
        reason: &'static str,
    },
}

/// Finds where the first message of `buf` ends, reading the Content-Length leniently: the
/// header section may hold any bytes.
pub fn frame(buf: &[u8]) -> Frame {
    if buf.starts_with(b"\r\n\r\n") {
        return Frame::KeepAlive(4);
    }
    if buf.starts_with(b"\r\n") {
        // Either a keep-alive's answer or the first half of a ping: the stack tells them apart
        // the same way, by what it has.
        return match buf.len() {
            2 | 3 if buf[2..].iter().all(|&b| b == b'\r') => Frame::Partial,
            _ => Frame::KeepAlive(2),
        };
    }
    if buf.first().is_some_and(u8::is_ascii_whitespace) {
        return Frame::Skip;
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_STREAM_MESSAGE {
            return Frame::Unframeable {
                head: None,
                code: 513,
                reason: "Message Too Large",
            };
        }
        return Frame::Partial;
    };
    let length = match content_length(&buf[..end]) {
        None => 0,
        Some(Ok(length)) => length,
        Some(Err(())) => {
            return Frame::Unframeable {
                head: Some(end),
                code: 400,
                reason: "Bad Request - unreadable Content-Length on a stream",
            };
        }
    };
    let total = end.saturating_add(4).saturating_add(length);
    if total > MAX_STREAM_MESSAGE {
        return Frame::Unframeable {
            head: Some(end),
            code: 513,
            reason: "Message Too Large - over 64 KiB",
        };
    }
    if buf.len() >= total {
        Frame::Message(total)
    } else {
        Frame::Partial
    }
}

/// Binds `addr` and serves SIP over TCP on it for the stack of `layer`; returns the bound
/// address.
pub(crate) async fn listen(
    addr: SocketAddr,
    layer: Arc<rsipstack::transaction::endpoint::EndpointInner>,
    stats: Arc<ScreenStats>,
    cancel: CancellationToken,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    // The stack's side of each loopback pair is accepted here; it never leaves the machine.
    let pairs = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let local_sip = SipAddr {
        r#type: Some(if tls.is_some() {
            Transport::Tls
        } else {
            Transport::Tcp
        }),
        addr: local.into(),
    };
    let shared = Shared {
        local: local_sip,
        endpoint: layer,
        pairs: tokio::sync::Mutex::new(pairs),
        stats,
        tls,
    };
    tokio::spawn(accept_loop(listener, shared, cancel));
    Ok(local)
}

/// What every connection of one listener shares.
struct Shared {
    /// The listener's address, as the stack names it.
    local: SipAddr,
    endpoint: Arc<rsipstack::transaction::endpoint::EndpointInner>,
    /// Where the stack's ends of the loopback pairs are accepted.
    pairs: tokio::sync::Mutex<TcpListener>,
    stats: Arc<ScreenStats>,
    /// Set on the SIP over TLS listener: each connection's handshake comes first.
    tls: Option<tokio_rustls::TlsAcceptor>,
}

async fn accept_loop(listener: TcpListener, shared: Shared, cancel: CancellationToken) {
    let census = Arc::new(Mutex::new(Census::default()));
    let shared = Arc::new(shared);
    let mut accept_failed = Quiet::new();
    let mut refused_total = Quiet::new();
    let mut refused_source = Quiet::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (peer, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                if let Some(times) = accept_failed.due() {
                    warn!(error = %e, times, "cannot accept SIP over TCP; pausing");
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let cancel = cancel.child_token();
        let seat = match seat(&census, remote.ip(), &cancel) {
            Ok(seat) => seat,
            Err(why) => {
                let (quiet, what) = match why {
                    Refused::Total => (&mut refused_total, "too many TCP connections in all"),
                    Refused::Source => (
                        &mut refused_source,
                        "too many TCP connections from one source",
                    ),
                };
                if let Some(times) = quiet.due() {
                    warn!(%remote, times, "{what}: connection closed");
                }
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = serve(peer, remote, &shared, &cancel, &seat) => {}
            }
            debug!(%remote, "SIP connection closed");
        });
    }
}

/// Serves one accepted connection: its first message must come within
/// [`FIRST_MESSAGE_WITHIN`]; only then does the stack hear of it, so that a connection that
/// says nothing holds one descriptor and a few bytes.
async fn serve(
    peer: TcpStream,
    remote: SocketAddr,
    shared: &Shared,
    cancel: &CancellationToken,
    seat: &Seat,
) {
    if let Some(acceptor) = &shared.tls {
        serve_tls(acceptor.clone(), peer, remote, shared, cancel, seat).await;
        return;
    }
    let mut buf = Vec::new();
    let first = async {
        while frame(&buf) == Frame::Partial {
            // No buffer before there is something to read: a silent connection costs its
            // socket and this task, nothing more.
            if peer.readable().await.is_err() {
                return false;
            }
            buf.reserve(4_096);
            match peer.try_read_buf(&mut buf) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
        }
        true
    };
    match tokio::time::timeout(FIRST_MESSAGE_WITHIN, first).await {
        Ok(true) => seat.spoke(),
        Ok(false) => return,
        Err(_) => {
            debug!(%remote, "no SIP message within the first seconds: connection closed");
            return;
        }
    }
    hand_to_stack(peer, remote, buf, shared, cancel).await;
}

/// Serves one connection to the SIP over TLS listener: the handshake and the first message
/// must both come within [`FIRST_MESSAGE_WITHIN`].
async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    peer: TcpStream,
    remote: SocketAddr,
    shared: &Shared,
    cancel: &CancellationToken,
    seat: &Seat,
) {
    let first = async {
        let mut peer = match acceptor.accept(peer).await {
            Ok(peer) => peer,
            Err(e) => {
                debug!(%remote, error = %e, "TLS handshake failed");
                return None;
            }
        };
        let mut buf = Vec::new();
        while frame(&buf) == Frame::Partial {
            buf.reserve(4_096);
            match peer.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        Some((peer, buf))
    };
    match tokio::time::timeout(FIRST_MESSAGE_WITHIN, first).await {
        Ok(Some((peer, buf))) => {
            seat.spoke();
            hand_to_stack(peer, remote, buf, shared, cancel).await;
        }
        Ok(None) => {}
        Err(_) => {
            debug!(%remote, "no TLS handshake and SIP message within the first seconds: connection closed")
        }
    }
}

/// Makes the stack's end of a connection whose first message is in `buf`, then relays.
async fn hand_to_stack<S>(
    peer: S,
    remote: SocketAddr,
    buf: Vec<u8>,
    shared: &Shared,
    cancel: &CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin,
{
    let (outer, inner) = match pair(&shared.pairs).await {
        Ok(pair) => pair,
        Err(e) => {
            warn!(%remote, error = %e, "no loopback pair for a SIP connection; closed");
            return;
        }
    };
    let remote_sip = SipAddr {
        r#type: shared.local.r#type,
        addr: remote.into(),
    };
    let (read_half, write_half) = tokio::io::split(inner);
    let connection = TcpConnection {
        inner: Arc::new(StreamConnectionInner::new(
            shared.local.clone(),
            remote_sip,
            read_half,
            write_half,
        )),
        cancel_token: Some(cancel.clone()),
    };
    shared
        .endpoint
        .transport_layer
        .add_connection(SipConnection::Tcp(connection));
    debug!(%remote, transport = ?shared.local.r#type, "SIP connection open");
    // On the heap, so that a silent connection's task stays small.
    Box::pin(relay(peer, remote, outer, buf, &shared.stats)).await;
}

/// A connected loopback pair: the end this module writes into, and the stack's end.
async fn pair(pairs: &tokio::sync::Mutex<TcpListener>) -> std::io::Result<(TcpStream, TcpStream)> {
    // One pair at a time, so the connection accepted is the one just made.
    let listener = pairs.lock().await;
    let addr = listener.local_addr()?;
    let outer = TcpStream::connect(addr).await?;
    let ours = outer.local_addr()?;
    let patience = Duration::from_secs(1);
    loop {
        let (inner, from) = tokio::time::timeout(patience, listener.accept())
            .await
            .map_err(|_| std::io::Error::other("loopback pair not accepted in 1 s"))??;
        if from == ours {
            outer.set_nodelay(true)?;
            inner.set_nodelay(true)?;
            return Ok((outer, inner));
        }
        // Some other local process found the port: not ours, closed.
    }
}

/// Carries one connection until either side closes it: the peer's messages framed, screened
/// and handed to the stack, refusals answered straight back, the stack's output copied out.
async fn relay<S>(
    peer: S,
    remote: SocketAddr,
    outer: TcpStream,
    mut buf: Vec<u8>,
    stats: &ScreenStats,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin,
{
    let (mut from_peer, to_peer) = tokio::io::split(peer);
    let (mut from_stack, mut to_stack) = outer.into_split();
    let to_peer = tokio::sync::Mutex::new(to_peer);
    let outward = async {
        let mut out = Vec::with_capacity(16_384);
        loop {
            out.clear();
            match from_stack.read_buf(&mut out).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if to_peer.lock().await.write_all(&out).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let inward = async {
        let limits = Limits {
            room: MAX_STREAM_MESSAGE,
            max: MAX_STREAM_MESSAGE,
            too_large: "Message Too Large - over 64 KiB",
        };
        // The first message is already in `buf`: frame before reading more.
        loop {
            loop {
                match frame(&buf) {
                    Frame::Partial => break,
                    Frame::Skip => {
                        buf.remove(0);
                    }
                    Frame::KeepAlive(n) => {
                        if to_stack.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        buf.drain(..n);
                    }
                    Frame::Message(n) => {
                        let verdict = match admit(&buf[..n], remote, &limits, stats) {
                            Admitted::Pass(message) => to_stack.write_all(&message).await,
                            Admitted::Reply(response) => {
                                to_peer.lock().await.write_all(&response).await
                            }
                            Admitted::Drop => Ok(()),
                        };
                        if verdict.is_err() {
                            return;
                        }
                        buf.drain(..n);
                    }
                    Frame::Unframeable { head, code, reason } => {
                        stats
                            .replied
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        info!(%remote, code, reason, "no message boundary on a TCP connection; closing it");
                        if let Some(head) = head
                            && let Verdict::Reply { response, .. } =
                                reply(&buf[..head], code, reason)
                        {
                            let _ = to_peer.lock().await.write_all(&response).await;
                        }
                        return;
                    }
                }
            }
            // Keep a long-lived trunk's buffer from holding on to a burst's memory.
            if buf.is_empty() && buf.capacity() > 65_536 {
                buf = Vec::new();
            }
            buf.reserve(4_096);
            match from_peer.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        () = outward => {}
        () = inward => {}
    }
    let _ = to_peer.lock().await.shutdown().await;
}

#[cfg(test)]
mod tests;

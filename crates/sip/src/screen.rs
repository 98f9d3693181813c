//! Screening of raw datagrams before the SIP stack sees them.
//!
//! The stack drops what it cannot parse without a word; RFC 3261 §18.3 wants a 400 for a request
//! whose body is shorter than its Content-Length, and an operator wants every refusal explained.
//! So each datagram is judged here first: passed on, answered with an error, or dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rsipstack::sip::SipMessage;
use tracing::{info, warn};

/// What to do with one datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the SIP stack.
    Pass,
    /// Answer the sender with this response and go no further.
    Reply {
        /// The response, ready to send.
        response: Vec<u8>,
        /// Status code, for counters and logs.
        code: u16,
    },
    /// Not SIP, or not answerable: log and forget.
    Drop(&'static str),
}

/// The largest request the stack's UDP buffer can carry whole.
pub const MAX_UDP_MESSAGE: usize = 8192;

/// Header by which the screen tells the ingress reader which lines it had to repair; one sent by
/// a peer is removed, so only the screen's own note reaches the call's trail.
pub const REPAIRED_HEADER: &str = "X-Secourir-Repaired";

/// Rewrites the start line and header lines that are not UTF-8 so that the stack can read them,
/// and notes their names in a [`REPAIRED_HEADER`] line; the body is left byte for byte.
///
/// The stack stops reading headers at the first line that is not UTF-8, which lost the
/// Content-Length and so the SDP of real emergency calls from older operator equipment (a
/// Latin-1 "é" in a display name or a Subject). Such a line is read as Latin-1, which keeps the
/// text a call-taker may see; when that would not fit in `limit` bytes, each byte outside ASCII
/// becomes `?` instead, which keeps the length. `None` when nothing needed repair.
pub fn repair(datagram: &[u8], limit: usize) -> Option<Vec<u8>> {
    let split = datagram.windows(4).position(|w| w == b"\r\n\r\n")?;
    let (head, rest) = datagram.split_at(split);
    let forged = |line: &[u8]| {
        line.len() > REPAIRED_HEADER.len()
            && line[..REPAIRED_HEADER.len()].eq_ignore_ascii_case(REPAIRED_HEADER.as_bytes())
            && line[REPAIRED_HEADER.len()..]
                .iter()
                .find(|b| !matches!(b, b' ' | b'\t'))
                == Some(&b':')
    };
    let clean = std::str::from_utf8(head).is_ok();
    if clean && !head.split(|&b| b == b'\n').any(forged) {
        return None;
    }
    let build = |latin1: bool, note: bool| {
        let mut out = Vec::with_capacity(datagram.len() + 64);
        let mut repaired: Vec<String> = Vec::new();
        for (i, line) in head.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if i > 0 && forged(line) {
                continue;
            }
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            if std::str::from_utf8(line).is_ok() {
                out.extend_from_slice(line);
                continue;
            }
            let name = match (i, line.first()) {
                (0, _) => "request line".to_owned(),
                (_, Some(b' ' | b'\t')) => "folded line".to_owned(),
                _ => line
                    .iter()
                    .take_while(|&&b| b != b':')
                    .filter(|b| b.is_ascii_alphanumeric() || **b == b'-')
                    .take(40)
                    .map(|&b| b as char)
                    .collect(),
            };
            if !repaired.contains(&name) {
                repaired.push(name);
            }
            for &b in line {
                match (b.is_ascii(), latin1) {
                    (true, _) => out.push(b),
                    (false, true) => {
                        let mut utf8 = [0; 2];
                        out.extend_from_slice(char::from(b).encode_utf8(&mut utf8).as_bytes());
                    }
                    (false, false) => out.push(b'?'),
                }
            }
        }
        if note && !repaired.is_empty() {
            let how = if latin1 {
                "read as Latin-1"
            } else {
                "bytes outside ASCII replaced"
            };
            out.extend_from_slice(
                format!("\r\n{REPAIRED_HEADER}: {} ({how})", repaired.join(", ")).as_bytes(),
            );
        }
        out.extend_from_slice(rest);
        out
    };
    [(true, true), (false, true), (false, false)]
        .into_iter()
        .map(|(latin1, note)| build(latin1, note))
        .find(|out| out.len() <= limit)
        .or_else(|| Some(build(false, false)))
}

/// Adds a Contact to an INVITE that has none, from the address it came from, and notes it.
///
/// RFC 3261 requires one, and the stack cannot open the caller's dialog without it; refusing an
/// emergency call for a header the source address can stand in for would be wrong. `None` when
/// the datagram is not such an INVITE.
pub fn add_contact(datagram: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
    if !datagram.starts_with(b"INVITE ") {
        return None;
    }
    let split = datagram.windows(4).position(|w| w == b"\r\n\r\n")?;
    let (head, rest) = datagram.split_at(split);
    let has_contact = header_lines(head)
        .any(|(name, _)| name.eq_ignore_ascii_case("contact") || name.eq_ignore_ascii_case("m"));
    if has_contact {
        return None;
    }
    let mut out = Vec::with_capacity(datagram.len() + 96);
    out.extend_from_slice(head);
    out.extend_from_slice(
        format!(
            "\r\nContact: <sip:{source}>\r\n{REPAIRED_HEADER}: Contact (absent: the source address stands in)"
        )
        .as_bytes(),
    );
    out.extend_from_slice(rest);
    Some(out)
}

/// Judges one datagram.
pub fn screen(datagram: &[u8]) -> Verdict {
    judge(
        datagram,
        MAX_UDP_MESSAGE,
        "Message Too Large - over 8 KiB on UDP, send it over TCP",
    )
}

/// Judges one whole message, refusing one longer than `max` with `too_large` as the reason.
pub(crate) fn judge(datagram: &[u8], max: usize, too_large: &'static str) -> Verdict {
    if datagram.iter().all(|b| b.is_ascii_whitespace()) {
        return Verdict::Pass;
    }
    let request_line = looks_like_request(datagram);
    if datagram.len() > max {
        return match request_line {
            true => reply(datagram, 513, too_large),
            false => Verdict::Drop("oversized message that is not a SIP request"),
        };
    }
    match SipMessage::try_from(datagram) {
        Err(_) if request_line && !known_method(datagram) => {
            reply(datagram, 501, "Not Implemented - unknown method")
        }
        Err(_) if request_line => reply(datagram, 400, "Bad Request - malformed SIP message"),
        Err(_) => Verdict::Drop("not a SIP message"),
        Ok(message) => {
            let truncated = body_shortfall(datagram).is_some();
            match message {
                SipMessage::Response(_) if truncated => {
                    Verdict::Drop("response shorter than its Content-Length")
                }
                SipMessage::Response(_) => Verdict::Pass,
                SipMessage::Request(_) if truncated => reply(
                    datagram,
                    400,
                    "Bad Request - body shorter than Content-Length (truncated)",
                ),
                SipMessage::Request(_) => match missing_header(datagram) {
                    Some(name) => reply(datagram, 400, missing_reason(name)),
                    None => Verdict::Pass,
                },
            }
        }
    }
}

fn missing_reason(name: &str) -> &'static str {
    match name {
        "From" => "Bad Request - missing From header",
        "To" => "Bad Request - missing To header",
        "Call-ID" => "Bad Request - missing Call-ID header",
        _ => "Bad Request - missing CSeq header",
    }
}

/// Methods the SIP stack parses; any other gets 501 (RFC 3261 §21.5.2).
const KNOWN_METHODS: [&str; 14] = [
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

fn known_method(datagram: &[u8]) -> bool {
    let end = datagram
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or(datagram.len());
    let method = String::from_utf8_lossy(&datagram[..end]);
    KNOWN_METHODS.contains(&method.as_ref())
}

/// `METHOD SP Request-URI SP SIP/2.0` on the first line.
fn looks_like_request(datagram: &[u8]) -> bool {
    let line_end = datagram
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(datagram.len());
    let line = String::from_utf8_lossy(&datagram[..line_end]);
    let mut parts = line.trim_end().split(' ');
    let method = parts.next().unwrap_or("");
    let uri = parts.next().unwrap_or("");
    let version = parts.next().unwrap_or("");
    !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && !uri.is_empty()
        && version.eq_ignore_ascii_case("SIP/2.0")
}

/// Split point between headers and body, and the header text.
fn head(datagram: &[u8]) -> (&[u8], Option<&[u8]>) {
    match datagram.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&datagram[..i], Some(&datagram[i + 4..])),
        None => (datagram, None),
    }
}

/// Header lines with folded continuations left aside; name and value trimmed.
fn header_lines(head: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let line = String::from_utf8_lossy(line);
        let (name, value) = line.split_once(':')?;
        Some((name.trim().to_owned(), value.trim().to_owned()))
    })
}

/// Canonical name of a header, compact forms expanded (RFC 3261 §7.3.3).
fn canonical(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        "via" | "v" => "Via",
        "from" | "f" => "From",
        "to" | "t" => "To",
        "call-id" | "i" => "Call-ID",
        "cseq" => "CSeq",
        "content-length" | "l" => "Content-Length",
        _ => return None,
    })
}

/// The first Content-Length of a header section (the stack reads the first one too): `None`
/// when there is none, `Err` when its value is not a number.
pub(crate) fn content_length(head: &[u8]) -> Option<Result<usize, ()>> {
    header_lines(head)
        .find(|(n, _)| canonical(n) == Some("Content-Length"))
        .map(|(_, v)| v.parse().map_err(|_| ()))
}

/// How many body bytes are missing, if the Content-Length promises more than arrived.
fn body_shortfall(datagram: &[u8]) -> Option<usize> {
    let (head, body) = head(datagram);
    let declared = content_length(head)?.ok()?;
    let received = body.map_or(0, <[u8]>::len);
    (declared > received).then(|| declared - received)
}

fn missing_header(datagram: &[u8]) -> Option<&'static str> {
    let (head, _) = head(datagram);
    let present: Vec<&'static str> = header_lines(head)
        .filter_map(|(n, _)| canonical(&n))
        .collect();
    ["From", "To", "Call-ID", "CSeq"]
        .into_iter()
        .find(|wanted| !present.contains(wanted))
}

/// Builds a response from the request's own Via, From, To, Call-ID and CSeq lines, or drops
/// the datagram when too little of it survived to address an answer.
pub(crate) fn reply(datagram: &[u8], code: u16, reason: &'static str) -> Verdict {
    let (head, _) = head(datagram);
    let mut vias = Vec::new();
    let mut from = None;
    let mut to = None;
    let mut call_id = None;
    let mut cseq = None;
    for (name, value) in header_lines(head) {
        match canonical(&name) {
            Some("Via") => vias.push(value),
            Some("From") => from = Some(value),
            Some("To") => to = Some(value),
            Some("Call-ID") => call_id = Some(value),
            Some("CSeq") => cseq = Some(value),
            _ => {}
        }
    }
    if vias.is_empty() {
        return Verdict::Drop("request without a Via: nowhere to answer");
    }
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for via in &vias {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    if let Some(from) = from {
        out.push_str(&format!("From: {from}\r\n"));
    }
    if let Some(to) = to {
        let tagged = to.to_ascii_lowercase().contains(";tag=");
        let tag = if tagged { "" } else { ";tag=secourir-screen" };
        out.push_str(&format!("To: {to}{tag}\r\n"));
    }
    if let Some(call_id) = call_id {
        out.push_str(&format!("Call-ID: {call_id}\r\n"));
    }
    if let Some(cseq) = cseq {
        out.push_str(&format!("CSeq: {cseq}\r\n"));
    }
    out.push_str("Server: Secourir\r\nContent-Length: 0\r\n\r\n");
    Verdict::Reply {
        response: out.into_bytes(),
        code,
    }
}

/// Counters of what the screen refused, for metrics and tests.
#[derive(Debug, Default)]
pub struct ScreenStats {
    /// Datagrams answered with an error.
    pub replied: AtomicU64,
    /// Datagrams dropped.
    pub dropped: AtomicU64,
    /// Datagrams passed on after their header lines were repaired.
    pub repaired: AtomicU64,
}

/// The bounds one transport puts on a message.
pub(crate) struct Limits {
    /// The most bytes the stack can take in one read.
    pub room: usize,
    /// The longest message accepted; a request beyond it gets 513.
    pub max: usize,
    /// Reason phrase of that 513.
    pub too_large: &'static str,
}

/// What becomes of one message from the network.
pub(crate) enum Admitted<'a> {
    /// Hand these bytes (the message, repaired if it had to be) to the stack.
    Pass(std::borrow::Cow<'a, [u8]>),
    /// Send this refusal back to where the message came from.
    Reply(Vec<u8>),
    /// Forget it (already counted and logged).
    Drop,
}

/// Repairs, completes and judges one whole message from `from`, the same way for every
/// transport, and counts and logs what it did.
pub(crate) fn admit<'a>(
    message: &'a [u8],
    from: SocketAddr,
    limits: &Limits,
    stats: &ScreenStats,
) -> Admitted<'a> {
    let len = message.len();
    let mut repaired = repair(message, limits.room);
    if repaired.is_some() {
        stats.repaired.fetch_add(1, Ordering::Relaxed);
        info!(%from, len, "repaired header lines that were not UTF-8");
    }
    if let Some(with_contact) = add_contact(repaired.as_deref().unwrap_or(message), from) {
        stats.repaired.fetch_add(1, Ordering::Relaxed);
        info!(%from, len, "INVITE without Contact: the source address stands in");
        repaired = Some(with_contact);
    }
    let message: std::borrow::Cow<'a, [u8]> = match repaired {
        Some(owned) => owned.into(),
        None => message.into(),
    };
    match judge(&message, limits.max, limits.too_large) {
        Verdict::Pass if message.len() <= limits.room => Admitted::Pass(message),
        Verdict::Pass => {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            warn!(%from, len, "message larger than the SIP buffer, dropped");
            Admitted::Drop
        }
        Verdict::Reply { response, code } => {
            stats.replied.fetch_add(1, Ordering::Relaxed);
            info!(%from, len, code, "refused a malformed request");
            Admitted::Reply(response)
        }
        Verdict::Drop(why) => {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            info!(%from, len, why, "dropped a message");
            Admitted::Drop
        }
    }
}

/// A UDP socket that screens every datagram before the SIP stack reads it.
pub struct ScreenedUdp {
    socket: tokio::net::UdpSocket,
    stats: Arc<ScreenStats>,
}

impl ScreenedUdp {
    /// Wraps a bound socket.
    pub fn new(socket: tokio::net::UdpSocket, stats: Arc<ScreenStats>) -> ScreenedUdp {
        ScreenedUdp { socket, stats }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for ScreenedUdp {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        // Room for any datagram, so one larger than the stack's buffer is seen whole and refused
        // rather than cut; `recv_buf_from` fills it without zeroing it first.
        let mut own = Vec::with_capacity(65_536);
        loop {
            own.clear();
            let (len, from) = self.socket.recv_buf_from(&mut own).await?;
            let limits = Limits {
                room: buf.len(),
                max: MAX_UDP_MESSAGE,
                too_large: "Message Too Large - over 8 KiB on UDP, send it over TCP",
            };
            match admit(&own[..len], from, &limits, &self.stats) {
                Admitted::Pass(message) => {
                    buf[..message.len()].copy_from_slice(&message);
                    return Ok((message.len(), from));
                }
                Admitted::Reply(response) => {
                    if let Err(e) = self.socket.send_to(&response, from).await {
                        warn!(%from, error = %e, "could not send the refusal");
                    }
                }
                Admitted::Drop => {}
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

#[cfg(test)]
mod tests;

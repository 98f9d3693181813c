//! SIP on the wire: Latin-1 headers, malformed input, TCP connections that never say a word.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::*;

/// Sends one datagram and returns the status line of the answer, if one comes within 1 s.
fn exchange(socket: &UdpSocket, to: u16, datagram: &[u8]) -> Option<String> {
    exchange_within(socket, to, datagram, Duration::from_secs(1))
        .map(|text| text.lines().next().unwrap_or("").to_owned())
}

/// One side of a SIP conversation with the platform, over UDP or over one TCP connection.
enum Wire {
    Udp(UdpSocket),
    Tcp(TcpStream, Vec<u8>),
}

impl Wire {
    fn udp() -> Wire {
        Wire::Udp(udp_socket("127.0.0.1"))
    }

    fn tcp(port: u16) -> Wire {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect over TCP");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        Wire::Tcp(stream, Vec::new())
    }

    /// `SIP/2.0/UDP 127.0.0.1:PORT` or `SIP/2.0/TCP …`, what a Via of this side says.
    fn via(&self) -> String {
        match self {
            Wire::Udp(socket) => format!(
                "SIP/2.0/UDP 127.0.0.1:{}",
                socket.local_addr().expect("addr").port()
            ),
            Wire::Tcp(stream, _) => format!(
                "SIP/2.0/TCP 127.0.0.1:{}",
                stream.local_addr().expect("addr").port()
            ),
        }
    }

    fn send(&mut self, to: u16, message: &[u8]) {
        match self {
            Wire::Udp(socket) => {
                socket.send_to(message, ("127.0.0.1", to)).expect("send");
            }
            Wire::Tcp(stream, _) => stream.write_all(message).expect("send over TCP"),
        }
    }

    /// The next whole message, if one comes before `deadline`.
    fn next(&mut self, deadline: Instant) -> Option<String> {
        let mut buf = vec![0u8; 65_536];
        while Instant::now() < deadline {
            match self {
                Wire::Udp(socket) => {
                    if let Ok((n, _)) = socket.recv_from(&mut buf) {
                        return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
                    }
                }
                Wire::Tcp(stream, pending) => {
                    if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..end]).into_owned();
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.trim()
                                    .eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        if pending.len() >= end + 4 + length {
                            let message: Vec<u8> = pending.drain(..end + 4 + length).collect();
                            return Some(String::from_utf8_lossy(&message).into_owned());
                        }
                    }
                    match stream.read(&mut buf) {
                        Ok(0) => return None,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                        Err(_) => {}
                    }
                }
            }
        }
        None
    }

    /// Sends a request and returns the final answer to it, if one comes within `patience`.
    fn ask(&mut self, to: u16, request: &[u8], patience: Duration) -> Option<String> {
        self.send(to, request);
        let deadline = Instant::now() + patience;
        while let Some(text) = self.next(deadline) {
            // Provisional answers (100 Trying) come before the final one.
            if !text.starts_with("SIP/2.0 1") {
                return Some(text);
            }
        }
        None
    }
}

/// An emergency INVITE from older operator equipment: a Latin-1 "é" (one byte, 0xE9) in the
/// Subject and in the display name of the P-Asserted-Identity that follows it, and no Contact.
/// It is answered over UDP and over TCP alike, and the TCP connection it came on carries the
/// rest of the call.
#[test]
fn an_invite_with_latin1_bytes_in_its_headers_is_answered_and_the_repair_recorded() {
    let platform = Platform::start();
    for (wire, number) in [
        (Wire::udp(), "0611223344"),
        (Wire::tcp(platform.sip), "0611223355"),
    ] {
        latin1_call(&platform, wire, number);
    }
}

fn latin1_call(platform: &Platform, mut wire: Wire, number: &str) {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=Appel d'urgence\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\n";
    let call_id = format!("latin1-{number}");
    let text = request(
        "INVITE",
        "sip:18@127.0.0.1",
        &call_id,
        &format!(
            "Subject: fum#e dans l'escalier\r\nP-Asserted-Identity: \"Ren#\" <sip:{number}@127.0.0.1>\r\n"
        ),
        "application/sdp",
        sdp,
        sdp.len(),
    );
    // Answers go where the Via says, so it names this side.
    let via = wire.via();
    let via = |text: String| text.replace("SIP/2.0/UDP 127.0.0.1:9", &via);
    let text = via(String::from_utf8(text).expect("ASCII before the Latin-1 bytes"));
    let invite: Vec<u8> = text
        .into_bytes()
        .into_iter()
        .map(|b| if b == b'#' { 0xE9 } else { b })
        .collect();
    assert!(std::str::from_utf8(&invite).is_err());
    let answer = wire
        .ask(platform.sip, &invite, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no answer to the INVITE from {number}\n{}", platform.log()));
    assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
    let to = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("to:"))
        .expect("To in the answer")
        .to_owned();
    let call = platform.wait_call("the Latin-1 call", |c| {
        c["caller"] == number && c["departement"].is_string()
    });
    let trail = platform.trail(field(&call, "call"));
    assert!(
        trail.iter().any(|s| s.contains("réparés")
            && s.contains("Subject")
            && s.contains("P-Asserted-Identity")
            && s.contains("Contact (absent")),
        "{trail:?}"
    );
    let dialog = |method: &str, cseq: u32, branch: &str| {
        format!(
            "{method} sip:18@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{branch}\r\nFrom: <sip:0699999999@127.0.0.1>;tag={call_id}\r\n{to}\r\nCall-ID: {call_id}@test\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    wire.send(platform.sip, via(dialog("ACK", 1, "ack")).as_bytes());
    let bye = wire.ask(
        platform.sip,
        via(dialog("BYE", 2, &format!("bye-{number}"))).as_bytes(),
        Duration::from_secs(5),
    );
    let status = bye.as_deref().and_then(|b| b.lines().next());
    assert_eq!(status, Some("SIP/2.0 200 OK"), "{}", platform.log());
    let ended = platform.wait_call("the Latin-1 call ended", |c| {
        c["caller"] == number && c["outcome"].is_string()
    });
    assert_eq!(field(&ended, "outcome"), "abandoned", "{ended}");
}

/// 20,000 TCP connections that never say a word, from 200 loopback sources, in two waves of
/// 10,000: a real peer still gets a seat over TCP during the first wave, callers over UDP are
/// answered during and after, and the log stays small. Prints the process's memory before,
/// during and after (`-- --nocapture`).
#[test]
fn silent_tcp_connections_by_the_thousand_keep_no_caller_out() {
    let platform = Platform::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let before = platform.rss_kib();
    let started = Instant::now();
    let first = silent_connections(&runtime, platform.sip, 10_000, 100);
    let opened_in = started.elapsed();
    // A real peer over TCP during the flood: seated in place of the oldest silent connection.
    latin1_call(&platform, Wire::tcp(platform.sip), "0611223366");
    // One call-taker per caller: a call-taker stays in wrap-up for 20 s after a call.
    let answered = |number: &str, login: &str, when: &str| {
        let phone = free_port();
        platform.register(login, phone);
        let answering = platform.call_taker(login, phone, 1);
        platform.set_state(login, "available");
        wait_ok(platform.caller(number, 43.2965, 5.3698, 2_000), when);
        wait_ok(answering, "call-taker phone");
        let call = platform.wait_call(when, |c| c["caller"] == number && c["outcome"].is_string());
        assert_eq!(field(&call, "outcome"), "completed", "{call}");
        assert_eq!(field(&call, "call_taker"), login, "{call}");
    };
    answered(
        "0644444401",
        "ota-13-1",
        "a caller during the silent connections",
    );
    let during = platform.rss_kib();
    drop(first);
    let second = silent_connections(&runtime, platform.sip, 10_000, 100);
    drop(second);
    answered(
        "0644444402",
        "ota-13-2",
        "a caller after the silent connections",
    );
    // Silent connections are closed 10 s after they opened; wait until every one is gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    let open = || platform.open_descriptors();
    while open() > 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = platform.rss_kib();
    let log = platform.full_log().len();
    println!(
        "silent TCP connections: 20000 opened (10000 in {:.2} s); platform RSS {before} KiB before, \
         {during} KiB during, {after} KiB after ({:+.1}%); {} descriptors left open; log {log} bytes",
        opened_in.as_secs_f64(),
        (after as f64 - before as f64) * 100.0 / before as f64,
        open(),
    );
    assert!(open() <= 200, "silent connections still open: {}", open());
    assert!(log < 1_000_000, "log of {log} bytes");
}

fn request(
    method: &str,
    uri: &str,
    branch: &str,
    extra: &str,
    content_type: &str,
    body: &str,
    declared: usize,
) -> Vec<u8> {
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{branch}\r\nFrom: <sip:0699999999@127.0.0.1>;tag={branch}\r\nTo: <{uri}>\r\nCall-ID: {branch}@test\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {declared}\r\n\r\n{body}"
    )
    .into_bytes()
}

#[test]
fn malformed_input_gets_the_right_error_and_disturbs_nothing() {
    let platform = Platform::start();
    let socket = udp_socket("127.0.0.1");
    let sip = platform.sip;
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\n";

    assert_eq!(
        exchange(&socket, sip, b"\x00\x01\x02 not SIP at all \xff"),
        None
    );
    let truncated = request(
        "INVITE",
        "sip:18@127.0.0.1",
        "trunc",
        "",
        "application/sdp",
        sdp,
        sdp.len() + 500,
    );
    let status = exchange(&socket, sip, &truncated).expect("an answer to a truncated INVITE");
    assert!(status.starts_with("SIP/2.0 400 "), "{status}");
    let cut = &request(
        "INVITE",
        "sip:18@127.0.0.1",
        "cut",
        "",
        "application/sdp",
        sdp,
        sdp.len(),
    )[..140];
    let status = exchange(&socket, sip, cut).expect("an answer to a cut INVITE");
    assert!(status.starts_with("SIP/2.0 400 "), "{status}");
    let mut big = request(
        "INVITE",
        "sip:18@127.0.0.1",
        "big",
        "",
        "application/sdp",
        sdp,
        sdp.len() + 50_000,
    );
    big.extend(std::iter::repeat_n(b'x', 50_000));
    let status = exchange(&socket, sip, &big).expect("an answer to an oversized INVITE");
    assert!(status.starts_with("SIP/2.0 513 "), "{status}");
    let status = exchange(
        &socket,
        sip,
        &request("FROB", "sip:18@127.0.0.1", "frob", "", "text/plain", "", 0),
    )
    .expect("501");
    assert!(status.starts_with("SIP/2.0 501 "), "{status}");
    let status = exchange(
        &socket,
        sip,
        &request(
            "INVITE",
            "sip:0601020304@127.0.0.1",
            "notsos",
            "",
            "application/sdp",
            sdp,
            sdp.len(),
        ),
    )
    .expect("404");
    assert!(status.starts_with("SIP/2.0 404 "), "{status}");
    let status = exchange(
        &socket,
        sip,
        &request(
            "INVITE",
            "sip:18@127.0.0.1",
            "text",
            "",
            "text/plain",
            "au secours",
            10,
        ),
    )
    .expect("415");
    assert!(status.starts_with("SIP/2.0 415 "), "{status}");
    let status = exchange(
        &socket,
        sip,
        &request(
            "SUBSCRIBE",
            "sip:18@127.0.0.1",
            "sub",
            "Event: presence\r\n",
            "text/plain",
            "",
            0,
        ),
    )
    .expect("405");
    assert!(status.starts_with("SIP/2.0 405 "), "{status}");

    // A 10 MB INVITE over TCP: the connection is refused, the platform carries on.
    let mut tcp = TcpStream::connect(("127.0.0.1", sip)).expect("tcp");
    tcp.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let head = request(
        "INVITE",
        "sip:18@127.0.0.1",
        "huge",
        "",
        "application/sdp",
        "",
        10_000_000,
    );
    let _ = tcp.write_all(&head);
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..10 {
        if tcp.write_all(&chunk).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);

    // Still serving: OPTIONS gets 200, and a real call still goes through.
    let status = exchange(
        &socket,
        sip,
        &request("OPTIONS", "sip:127.0.0.1", "ping", "", "text/plain", "", 0),
    )
    .expect("200");
    assert!(status.starts_with("SIP/2.0 200 "), "{status}");
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let answering = platform.call_taker("ota-13-1", phone, 1);
    platform.set_state("ota-13-1", "available");
    wait_ok(
        platform.caller("0644444444", 43.2965, 5.3698, 1_000),
        "caller after the garbage",
    );
    wait_ok(answering, "call-taker phone");
    let health = platform.get("/api/health");
    assert!(
        health["malformed_refused"].as_u64().unwrap_or(0) >= 4,
        "{health}"
    );
    assert_eq!(health["live_calls"], 0, "{health}");
}

//! The platform on the wire, against real SIPp peers on loopback: callers with PIDF-LO, call-taker
//! phones that register with digest and answer, recordings checked, malformed input refused.
//!
//! Every peer is started here on free loopback ports and stopped at the end of its test. SIPp
//! (Debian's `sip-tester`) must be installed: `scripts/setup` does it; without it these tests
//! fail rather than skip.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use sha2::Digest;

fn field<'a>(call: &'a Value, name: &str) -> &'a Value {
    call.get(name).unwrap_or(&Value::Null)
}

/// Root mean square of one channel of a stereo WAV.
fn channel_rms(samples: &[i16], channel: usize) -> f64 {
    let values: Vec<f64> = samples
        .iter()
        .skip(channel)
        .step_by(2)
        .map(|&s| f64::from(s))
        .collect();
    (values.iter().map(|v| v * v).sum::<f64>() / values.len().max(1) as f64).sqrt()
}

#[test]
fn a_located_call_to_18_reaches_its_cta_is_answered_and_recorded() {
    let platform = Platform::start();
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let answering = platform.call_taker("ota-13-1", phone, 1);
    platform.set_state("ota-13-1", "available");
    let caller = platform.caller("0601020304", 43.2965, 5.3698, 6_000);
    platform.wait_call("the call answered", |c| c["call_taker"] == "ota-13-1");
    // The caller's phone sends its AML position during the conversation.
    let aml = ureq::post(&platform.url("/api/aml"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .content_type("text/plain")
        .send("A\"ML=1;lt=+43.28511;lg=+5.38022;rd=8;top=20261122143000;lc=68;pm=G;si=208150000000001;ei=356708041746734;mcc=208;mnc=15;ml=124;cs=0601020304")
        .expect("AML accepted");
    assert_eq!(aml.status().as_u16(), 200);
    wait_ok(caller, "caller");
    wait_ok(answering, "call-taker phone");

    let call = platform.wait_call("a completed call", |c| field(c, "outcome") == "completed");
    assert_eq!(field(&call, "departement"), "13");
    assert_eq!(field(&call, "commune"), "Marseille");
    assert_eq!(field(&call, "location_source"), "pidf-lo");
    assert_eq!(field(&call, "cta"), "cta-13");
    assert_eq!(field(&call, "call_taker"), "ota-13-1");
    assert_eq!(field(&call, "caller"), "0601020304");
    assert!(
        field(&call, "emergency_call_id")
            .as_str()
            .is_some_and(|id| id.starts_with("urn:emergency:uid:callid:"))
    );

    let path = PathBuf::from(
        field(&call, "recording_path")
            .as_str()
            .expect("a recording"),
    );
    let bytes = std::fs::read(&path).expect("recording exists");
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    assert_eq!(field(&call, "recording_sha256"), sha.as_str());
    let mut wav = hound::WavReader::new(std::io::Cursor::new(bytes)).expect("a WAV");
    let spec = wav.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
    let seconds = samples.len() as f64 / 2.0 / 8000.0;
    let answered = field(&call, "answered_at").as_i64().expect("answered");
    let ended = field(&call, "ended_at").as_i64().expect("ended");
    let talk = (ended - answered) as f64 / 1000.0;
    assert!(
        (seconds - talk).abs() < 1.0,
        "recording lasts {seconds:.2} s, the conversation {talk:.2} s"
    );
    assert!(seconds > 4.0, "recording too short: {seconds:.2} s");
    assert!(channel_rms(&samples, 0) > 100.0, "caller's side is silent");
    assert!(
        channel_rms(&samples, 1) > 100.0,
        "call-taker's side is silent"
    );

    // Numbers and positions are personal data: the log of the whole call (at the production
    // level, info) holds neither, in any form the platform received them.
    let log = platform.full_log();
    assert!(
        log.contains("emergency call offered") && log.contains("AML location applied"),
        "{log}"
    );
    for secret in [
        "0601020304",
        "601020304",
        "43.2965",
        "5.3698",
        "43.28511",
        "5.38022",
    ] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
}

#[test]
fn a_queued_caller_hears_the_announcement_then_is_answered_and_one_who_hangs_up_gets_a_call_back() {
    let platform = Platform::start();
    let phone = free_port();
    platform.register("ota-13-2", phone);
    platform.set_state("ota-13-2", "paused");

    // Nobody available: the caller is answered by the platform and waits with the announcement.
    let answering = platform.call_taker("ota-13-2", phone, 1);
    // The caller stays 8 s after the platform answers: long enough to be answered by the
    // call-taker made available below, even on a loaded machine.
    let caller = platform.caller("0611111111", 43.2965, 5.3698, 8_000);
    let waiting = platform.wait_call("a queued call", |c| {
        field(c, "caller") == "0611111111" && !field(c, "queued_at").is_null()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let trail = platform.trail(field(&waiting, "call"));
        if trail.iter().any(|s| s == "annonce attente") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no queue announcement: {trail:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(field(&platform.calls()[0], "answered_at").is_null());
    platform.set_state("ota-13-2", "available");
    wait_ok(caller, "queued caller");
    wait_ok(answering, "call-taker phone");
    let answered = platform.wait_call("the queued call completed", |c| {
        field(c, "caller") == "0611111111" && field(c, "outcome") == "completed"
    });
    assert_eq!(field(&answered, "call_taker"), "ota-13-2");

    // Paused again: this caller gives up after 2 s in the queue.
    platform.set_state("ota-13-2", "paused");
    let caller = platform.caller("0622222222", 43.2965, 5.3698, 2_000);
    wait_ok(caller, "impatient caller");
    let abandoned = platform.wait_call("an abandoned call", |c| {
        field(c, "caller") == "0622222222" && field(c, "outcome") == "abandoned"
    });
    let id = field(&abandoned, "call").as_u64().expect("call number");
    let callbacks = platform.get("/api/callbacks?cta=cta-13");
    let entry = callbacks
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["call"] == id)
        .unwrap_or_else(|| panic!("no call-back entry for {id}: {callbacks}"));
    assert_eq!(entry["state"], "pending");
    assert_eq!(entry["caller"], "0622222222");
    let (status, _) = platform.post(
        &format!("/api/callbacks/{id}/taken"),
        json!({ "by": "ota-13-2" }),
    );
    assert_eq!(status, 200);
    let (status, _) = platform.post(
        &format!("/api/callbacks/{id}/done"),
        json!({ "by": "ota-13-2" }),
    );
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while platform
        .get("/api/callbacks?cta=cta-13")
        .as_array()
        .is_some_and(|l| l.iter().any(|c| c["call"] == id))
    {
        assert!(
            Instant::now() < deadline,
            "call-back still listed after done"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_call_from_an_unstaffed_departement_overflows_to_a_partner() {
    let platform = Platform::start();
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let answering = platform.call_taker("ota-13-1", phone, 1);
    platform.set_state("ota-13-1", "available");
    // Toulon, in the Var: nobody of cta-83 is logged in; cta-13 is its partner.
    let caller = platform.caller("0633333333", 43.1242, 5.9280, 3_000);
    wait_ok(caller, "caller from the Var");
    wait_ok(answering, "call-taker phone");
    let call = platform.wait_call("the Var call completed", |c| {
        field(c, "outcome") == "completed"
    });
    assert_eq!(field(&call, "departement"), "83");
    assert_eq!(field(&call, "commune"), "Toulon");
    assert_eq!(field(&call, "cta"), "cta-13");
    assert_eq!(field(&call, "call_taker"), "ota-13-1");
}

/// Sends one datagram and returns the status line of the answer, if one comes within 1 s.
fn exchange(socket: &UdpSocket, to: u16, datagram: &[u8]) -> Option<String> {
    exchange_within(socket, to, datagram, Duration::from_secs(1))
        .map(|text| text.lines().next().unwrap_or("").to_owned())
}

/// The nonce of a digest challenge.
fn nonce_of(challenge: &str) -> String {
    challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no nonce in {challenge}"))
        .to_owned()
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

/// Opens `count` TCP connections to `port` from 127.1.x.y sources, `per_source` from each,
/// and holds them open without a word.
fn silent_connections(
    runtime: &tokio::runtime::Runtime,
    port: u16,
    count: usize,
    per_source: usize,
) -> Vec<tokio::net::TcpStream> {
    // This process holds them all: its descriptor limit must allow it.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= count as u64 + 1_000,
        "this test holds {count} connections; the descriptor limit is {hard}"
    );
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(hard),
            maximum: limit.maximum,
        },
    )
    .expect("raise the descriptor limit");
    runtime.block_on(async {
        let mut held = Vec::with_capacity(count);
        for i in 0..count {
            let source = i / per_source;
            let ip =
                std::net::Ipv4Addr::new(127, 1, (source / 250) as u8, (source % 250 + 1) as u8);
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.bind((ip, 0).into()).expect("bind a loopback source");
            let stream = socket
                .connect(([127, 0, 0, 1], port).into())
                .await
                .expect("connect");
            held.push(stream);
        }
        held
    })
}

/// 20,000 TCP connections that never say a word, from 200 loopback sources, in two waves of
/// 10,000: a real peer still gets a seat over TCP during the first wave, callers over UDP are
/// answered during and after, and the log stays small. Prints the process's memory before,
/// during and after (`-- --nocapture`).
/// One address holds at most 256 connections to the API: the ones past it are closed at once,
/// with one line in the log, and the API still answers another address.
#[test]
fn http_connections_from_one_address_are_bounded() {
    let platform = Platform::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let held = silent_connections(&runtime, platform.http, 300, 300);
    assert!(platform.get("/api/health").is_object());
    let deadline = Instant::now() + Duration::from_secs(5);
    let closed = loop {
        let closed = held
            .iter()
            .filter(|s| matches!(s.try_read(&mut [0u8; 1]), Ok(0)))
            .count();
        if closed >= 44 || Instant::now() > deadline {
            break closed;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(closed, 44, "300 connections from one address, 256 seats");
    let log = platform.full_log();
    assert_eq!(log.matches("HTTP connections refused").count(), 1, "{log}");
    drop(held);
}

/// Silent HTTP connections, and a keep-alive one left idle after a request, are closed by
/// the platform 10 s on: held open, they would take the descriptors the SIP connections and
/// the media ports need. The API answers meanwhile.
#[test]
fn silent_http_connections_are_closed_and_the_api_answers_meanwhile() {
    let platform = Platform::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let open = || platform.open_descriptors();
    let before = open();
    let held = silent_connections(&runtime, platform.http, 2_000, 100);
    let mut idle = TcpStream::connect(("127.0.0.1", platform.http)).expect("connect");
    idle.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("request");
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).expect("answer");
    assert_eq!(&answer, b"HTTP/1.1 200");
    let during = Instant::now();
    assert!(platform.get("/api/health").is_object());
    let answered_in = during.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while open() > before + 10 {
        assert!(
            Instant::now() < deadline,
            "{} descriptors still open 30 s on ({before} before)",
            open()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut rest = Vec::new();
    assert!(
        idle.read_to_end(&mut rest).is_ok(),
        "the idle keep-alive connection is still open"
    );
    println!(
        "silent HTTP connections: 2,000 closed by the platform, the API answered in {answered_in:?} meanwhile"
    );
    drop(held);
}

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

#[test]
fn a_wrong_password_or_token_is_refused() {
    let platform = Platform::start();
    let phone = free_port();
    let status = sipp(&platform.dir.path().join("bad-password"))
        .args(["-sf", &format!("{SIPP_DIR}/register.xml"), "-m", "1"])
        .args(["-s", "ota-13-1", "-au", "ota-13-1", "-ap", "wrong"])
        .args(["-p", &phone.to_string(), "-timeout", "5s"])
        .arg(format!("127.0.0.1:{}", platform.sip))
        .status()
        .expect("sipp runs");
    assert!(!status.success(), "a wrong password registered");
    let response = ureq::get(&platform.url("/api/call-takers"))
        .header("Authorization", "Bearer nope")
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("answer");
    assert_eq!(response.status().as_u16(), 401);
    let list = platform.get("/api/call-takers");
    let ota = list
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["login"] == "ota-13-1")
        .expect("ota-13-1");
    assert_eq!(ota["phone_registered"], false);
}

/// The platform's answer to one request sent from `socket`; fails the test, with the platform's
/// log, when none comes within 2 s.
fn answer_to(platform: &Platform, socket: &UdpSocket, text: &str) -> String {
    exchange_within(
        socket,
        platform.sip,
        text.as_bytes(),
        Duration::from_secs(2),
    )
    .unwrap_or_else(|| panic!("no answer\n{}", platform.log()))
}

/// A REGISTER from `socket`, with this Call-ID and, if given, an Authorization line.
fn register(
    socket: &UdpSocket,
    sip: u16,
    login: &str,
    call_id: &str,
    auth: Option<&str>,
) -> String {
    let port = socket.local_addr().expect("addr").port();
    let ip = socket.local_addr().expect("addr").ip();
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "REGISTER sip:127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK-{call_id}\r\nFrom: <sip:{login}@127.0.0.1>;tag={call_id}\r\nTo: <sip:{login}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{login}@{ip}:{port}>\r\nExpires: 60\r\nMax-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n"
    )
}

/// Phones' digest: an unknown login gets the same challenge as a known one; a right answer
/// registers once; the same answer sent again (a captured REGISTER with a new Call-ID), from
/// the same address or from another, is refused.
#[test]
fn a_register_answer_is_good_once_from_its_own_address_and_logins_are_not_told_apart() {
    use md5::Digest as _;
    let platform = Platform::start();
    let md5 = |text: String| hex::encode(md5::Md5::digest(text.as_bytes()));
    let socket = udp_socket("127.0.0.1");
    let ask = |socket: &UdpSocket, text: String| answer_to(&platform, socket, &text);
    let shape = |answer: &str| {
        let status = answer.lines().next().unwrap_or("").to_owned();
        let challenged = answer.contains("WWW-Authenticate: Digest");
        (status, challenged)
    };
    let unknown = ask(
        &socket,
        register(&socket, platform.sip, "ota-nobody", "r1", None),
    );
    let known = ask(
        &socket,
        register(&socket, platform.sip, "ota-13-1", "r2", None),
    );
    assert_eq!(shape(&unknown), shape(&known), "{unknown}\n{known}");
    assert!(known.starts_with("SIP/2.0 401 "), "{known}");
    let nonce = nonce_of(&known);
    let uri = format!("sip:127.0.0.1:{}", platform.sip);
    let ha1 = md5("ota-13-1:secourir:secourir".to_owned());
    let ha2 = md5(format!("REGISTER:{uri}"));
    let response = md5(format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    let auth = format!(
        "Digest username=\"ota-13-1\", realm=\"secourir\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", qop=auth, nc=00000001, cnonce=\"c0ffee\", algorithm=MD5"
    );
    let first = ask(
        &socket,
        register(&socket, platform.sip, "ota-13-1", "r3", Some(&auth)),
    );
    assert!(first.starts_with("SIP/2.0 200 "), "{first}");
    let again = ask(
        &socket,
        register(&socket, platform.sip, "ota-13-1", "r4", Some(&auth)),
    );
    assert!(again.starts_with("SIP/2.0 401 "), "replayed: {again}");
    let elsewhere = udp_socket("127.0.0.2");
    let response2 = md5(format!("{ha1}:{nonce}:00000002:c0ffee:auth:{ha2}"));
    let stolen = auth
        .replace(&response, &response2)
        .replace("nc=00000001", "nc=00000002");
    let from_elsewhere = ask(
        &elsewhere,
        register(&elsewhere, platform.sip, "ota-13-1", "r5", Some(&stolen)),
    );
    assert!(
        from_elsewhere.starts_with("SIP/2.0 401 "),
        "{from_elsewhere}"
    );
    assert!(
        platform.full_log().contains("replayed"),
        "{}",
        platform.log()
    );
}

/// RFC 8760: an account that also keeps a SHA-256 HA1 registers with SHA-256. Once any account
/// has one, every challenge offers SHA-256 first and MD5 after, for known and unknown logins
/// alike; an answer proves nothing against a hash the account does not have.
#[test]
fn a_phone_answers_a_sha_256_challenge_offered_first_to_every_login() {
    use md5::Digest as _;
    let md5 = |text: &str| hex::encode(md5::Md5::digest(text.as_bytes()));
    let sha256 = |text: &str| hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let dir = tempfile::tempdir().expect("dir");
    let ha1_md5 = md5("ota-13-1:secourir:secourir");
    let ha1_sha = sha256("ota-13-1:secourir:secourir");
    let config = shipped_with_line(
        dir.path(),
        "sha.toml",
        &format!("sip_ha1 = \"{ha1_md5}\""),
        &format!("sip_ha1 = \"{ha1_md5}\"\nsip_ha1_sha256 = \"{ha1_sha}\""),
    );
    let platform = Platform::with_config(&config);
    let socket = udp_socket("127.0.0.1");
    let ask = |text: String| answer_to(&platform, &socket, &text);
    let offers = |answer: &str| {
        answer
            .lines()
            .filter(|l| l.starts_with("WWW-Authenticate:"))
            .map(|l| {
                l.split("algorithm=")
                    .nth(1)
                    .and_then(|a| a.split(',').next())
                    .unwrap_or("")
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    let unknown = ask(register(&socket, platform.sip, "ota-nobody", "s1", None));
    let known = ask(register(&socket, platform.sip, "ota-13-1", "s2", None));
    assert_eq!(offers(&known), ["SHA-256", "MD5"], "{known}");
    assert_eq!(offers(&unknown), offers(&known), "{unknown}");

    let uri = format!("sip:127.0.0.1:{}", platform.sip);
    let answer = |login: &str, algorithm: &str, nonce: &str, nc: &str| {
        let hash = |text: &str| match algorithm {
            "SHA-256" => sha256(text),
            _ => md5(text),
        };
        let ha1 = hash(&format!("{login}:secourir:secourir"));
        let ha2 = hash(&format!("REGISTER:{uri}"));
        let response = hash(&format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
        format!(
            "Digest username=\"{login}\", realm=\"secourir\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", qop=auth, nc={nc}, cnonce=\"c0ffee\", algorithm={algorithm}"
        )
    };
    let nonce = nonce_of(&known);
    let auth = answer("ota-13-1", "SHA-256", &nonce, "00000001");
    let registered = ask(register(
        &socket,
        platform.sip,
        "ota-13-1",
        "s3",
        Some(&auth),
    ));
    assert!(registered.starts_with("SIP/2.0 200 "), "{registered}");

    // ota-13-2 keeps an MD5 hash only: a SHA-256 answer with its right password fails, MD5 passes.
    let challenge = ask(register(&socket, platform.sip, "ota-13-2", "s4", None));
    let nonce = nonce_of(&challenge);
    let auth = answer("ota-13-2", "SHA-256", &nonce, "00000001");
    let refused = ask(register(
        &socket,
        platform.sip,
        "ota-13-2",
        "s5",
        Some(&auth),
    ));
    assert!(refused.starts_with("SIP/2.0 401 "), "{refused}");
    let auth = answer("ota-13-2", "MD5", &nonce, "00000002");
    let registered = ask(register(
        &socket,
        platform.sip,
        "ota-13-2",
        "s6",
        Some(&auth),
    ));
    assert!(registered.starts_with("SIP/2.0 200 "), "{registered}");
}

/// Wrong digest answers: three are checked, the next is held back (503 with Retry-After)
/// without being checked, for a known login and an unknown one alike.
#[test]
fn wrong_register_answers_are_held_back_after_three_for_known_and_unknown_logins() {
    let platform = Platform::start();
    let socket = udp_socket("127.0.0.1");
    let ask = |text: String| answer_to(&platform, &socket, &text);
    let mut seen = Vec::new();
    for login in ["ota-13-2", "ota-nobody"] {
        let mut statuses = Vec::new();
        for attempt in 0..4 {
            let challenge = ask(register(
                &socket,
                platform.sip,
                login,
                &format!("{login}-c{attempt}"),
                None,
            ));
            let nonce = nonce_of(&challenge);
            let wrong = format!(
                "Digest username=\"{login}\", realm=\"secourir\", nonce=\"{nonce}\", uri=\"sip:127.0.0.1:{}\", response=\"00000000000000000000000000000000\", qop=auth, nc=00000001, cnonce=\"x\", algorithm=MD5",
                platform.sip
            );
            let answer = ask(register(
                &socket,
                platform.sip,
                login,
                &format!("{login}-a{attempt}"),
                Some(&wrong),
            ));
            let status = answer.lines().next().unwrap_or("").to_owned();
            if status.starts_with("SIP/2.0 503 ") {
                assert!(answer.contains("Retry-After: "), "{answer}");
            }
            statuses.push(status);
        }
        seen.push(statuses);
    }
    assert!(
        seen[0][..3].iter().all(|s| s.starts_with("SIP/2.0 401 ")),
        "{seen:?}"
    );
    assert!(seen[0][3].starts_with("SIP/2.0 503 "), "{seen:?}");
    assert_eq!(seen[0], seen[1], "known and unknown logins told apart");
}

#[test]
fn the_api_describes_itself_and_exposes_metrics() {
    let platform = Platform::start();
    let doc: Value = ureq::get(&platform.url("/api/openapi.json"))
        .call()
        .expect("openapi")
        .body_mut()
        .read_json()
        .expect("json");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    for path in [
        "/api/health",
        "/api/call-takers/{login}/state",
        "/api/calls",
        "/api/callbacks/{call}/done",
        "/api/login",
        "/api/console/calls/{call}/pick",
        "/api/supervision/crisis/{departement}",
        "/api/ws",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let answering = platform.call_taker("ota-13-1", phone, 1);
    platform.set_state("ota-13-1", "available");
    wait_ok(
        platform.caller("0688888888", 43.2965, 5.3698, 1_000),
        "caller",
    );
    wait_ok(answering, "call-taker phone");
    platform.wait_call("a completed call", |c| c["outcome"] == "completed");
    let anonymous = ureq::get(&platform.url("/metrics"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("an answer");
    assert_eq!(anonymous.status().as_u16(), 401, "/metrics open to anyone");
    let metrics = platform.metrics();
    for line in [
        "secourir_calls_offered_total{cta=\"cta-13\"} 1",
        "secourir_calls_answered_total{cta=\"cta-13\"} 1",
        "secourir_answer_seconds_count{cta=\"cta-13\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in:\n{metrics}"
        );
    }
}

/// The status and body of an answer, errors included.
#[test]
fn a_call_taker_hands_a_call_to_the_samu_and_the_caller_stays_on_the_line() {
    // The shipped configuration plus a SAMU reachable on loopback (a SIPp answerer).
    let samu = free_port();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("france-with-samu.toml");
    let shipped = shipped();
    std::fs::write(
        &config,
        format!("{shipped}\n[[partner_service]]\nservice = \"15\"\nname = \"SAMU 13\"\nuri = \"sip:15@127.0.0.1:{samu}\"\n"),
    )
    .expect("write config");
    let platform = Platform::with_config(&config);
    let partner = sipp(&platform.dir.path().join("samu"))
        .args(["-sf", &format!("{SIPP_DIR}/call-taker.xml"), "-m", "1"])
        .args([
            "-p",
            &samu.to_string(),
            "-mi",
            "127.0.0.1",
            "-mp",
            &free_media_port().to_string(),
        ])
        .arg(format!("127.0.0.1:{}", platform.sip))
        .spawn()
        .expect("sipp runs");
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let answering = platform.call_taker("ota-13-1", phone, 1);
    platform.set_state("ota-13-1", "available");
    let caller = platform.caller("0699999999", 43.2965, 5.3698, 6_000);
    let call = platform.wait_call("the call answered", |c| !c["answered_at"].is_null());
    let id = call["call"].as_u64().expect("number");
    let cookie = session(&platform, "ota-13-1");
    let response = ureq::post(&platform.url(&format!("/api/console/calls/{id}/transfer")))
        .header("Cookie", &cookie)
        .send_json(json!({ "to": "15", "summary": "Malaise, homme 60 ans, conscient" }))
        .expect("transfer");
    assert_eq!(response.status().as_u16(), 200);
    // The call-taker's phone is hung up at once; the caller talks to the SAMU, then hangs up.
    wait_ok(answering, "call-taker phone");
    wait_ok(caller, "caller");
    wait_ok(partner, "SAMU");
    let done = platform.wait_call("the transferred call", |c| c["outcome"] == "transferred");
    assert_eq!(done["reason"], "transféré au 15 (SAMU)");
    let trail = platform.trail(&json!(id));
    assert!(
        trail
            .iter()
            .any(|s| s.starts_with("transfert demandé au SAMU 13 par ota-13-1 : Malaise")),
        "{trail:?}"
    );
    assert!(
        trail
            .iter()
            .any(|s| s == "transféré au SAMU 13 par ota-13-1"),
        "{trail:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !platform.get(&format!("/api/calls/{id}"))["trail"]
        .to_string()
        .contains("enregistrement avec le partenaire")
    {
        assert!(
            Instant::now() < deadline,
            "no recording of the conversation with the SAMU"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Without a partner for the 17, the console is told so.
    let (status, _) = console_post(
        &platform,
        "ota-13-2",
        &format!("/api/console/calls/{id}/transfer"),
        json!({ "to": "17" }),
    );
    assert_eq!(status, 409);
}

/// The pages and the API say what a browser may load and that no other site may frame them;
/// a state-changing request or the WebSocket's opening from a page of another site is refused
/// even with a valid session, while machines (no Origin) and the console itself pass.
#[test]
fn pages_are_not_for_other_sites() {
    let platform = Platform::start();
    let page = ureq::get(&platform.url("/"))
        .call()
        .expect("the console page");
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("x-content-type-options"), "nosniff");

    let cookie = session(&platform, "ota-13-1");
    let pick = |origin: &str| {
        let response = ureq::post(&platform.url("/api/console/calls/999/pick"))
            .header("Cookie", &cookie)
            .header("Origin", origin)
            .config()
            .http_status_as_error(false)
            .build()
            .send_empty();
        status_and_body(response)
    };
    let (status, body) = pick("http://evil.example");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("origine refusée"), "{body}");
    let (status, body) = pick(&format!("http://127.0.0.1:{}", platform.http));
    assert_eq!(
        status, 404,
        "the console's own origin reaches the core: {body}"
    );
    let (status, _) = platform.post("/api/aml", json!({}));
    assert_eq!(
        status, 400,
        "a machine without Origin is not refused for it"
    );

    let mut socket = TcpStream::connect(("127.0.0.1", platform.http)).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        socket,
        "GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: {cookie}\r\n\
         Origin: http://evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        platform.http
    )
    .expect("write");
    let mut answer = [0u8; 64];
    let n = socket.read(&mut answer).expect("answer");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
}

#[test]
fn console_refusals_are_plain_and_logged() {
    let platform = Platform::start();
    let log_in = |login: &str, password: &str| {
        let response = ureq::post(&platform.url("/api/login"))
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(json!({ "login": login, "password": password }));
        status_and_body(response)
    };
    let wrong_password = log_in("ota-13-1", "faux");
    assert_eq!(wrong_password.0, 401, "{wrong_password:?}");
    assert_eq!(
        wrong_password,
        log_in("personne", "secourir"),
        "the answer tells which part was wrong"
    );

    // A call of CTA 13 waits in queue: its call-takers are on pause, as is one from CTA 83.
    let phone = free_port();
    platform.register("ota-13-1", phone);
    for login in ["ota-13-1", "ota-13-2", "ota-83-1"] {
        platform.set_state(login, "paused");
    }
    let answering = platform.call_taker("ota-13-1", phone, 1);
    let caller = platform.caller_until_hung_up("0699999999", 43.2965, 5.3698);
    let waiting = platform.wait_call("a queued call", |c| {
        field(c, "caller") == "0699999999" && !field(c, "queued_at").is_null()
    });
    let call = field(&waiting, "call").as_u64().expect("call number");
    let act = |login: &str, action: &str| {
        let path = format!("/api/console/calls/{call}/{action}");
        console_post(&platform, login, &path, Value::Null)
    };
    let other_cta = act("ota-83-1", "pick");
    assert_eq!(other_cta.0, 403, "{other_cta:?}");
    assert_eq!(act("ota-13-1", "pick").0, 200);
    let second = act("ota-13-2", "pick");
    assert_eq!(second.0, 409, "{second:?}");
    assert!(second.1.contains("appel déjà pris"), "{second:?}");

    // Once the phone has answered, only its call-taker may end the call.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !platform
        .get("/api/call-takers")
        .as_array()
        .expect("list")
        .iter()
        .any(|t| t["login"] == "ota-13-1" && t["status"] == "talking")
    {
        assert!(Instant::now() < deadline, "the phone never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(act("ota-13-2", "hangup").0, 403);
    assert_eq!(act("ota-13-1", "hangup").0, 204);
    wait_ok(caller, "caller");
    wait_ok(answering, "call-taker phone");

    let log = platform.log();
    for line in [
        "console login refused login=ota-13-1",
        "console login refused login=personne",
        "status=403 login=ota-83-1",
        "status=409 login=ota-13-2",
        "status=403 login=ota-13-2",
    ] {
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }
}

/// National mutual aid with real phones: Marseille's only call-taker is busy, so the next
/// Marseille caller is answered at once by a call-taker of the BSPP, which lends one of its two
/// and keeps the other (its reserve) for its own caller, who calls during the burst.
#[test]
fn a_burst_beyond_its_staff_is_answered_by_a_lender_that_keeps_its_reserve() {
    // The shipped configuration, with short wrap-ups so that the burst drains within the test,
    // and a national call volume that each CTA's reserve reads before it has seen 30 minutes
    // of traffic: 500,000 calls a year make the BSPP's share (10%) need one call-taker.
    let shipped = shipped();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("france.toml");
    let changed = shipped
        .replace("\nwrap_up_s = 20 ", "\nwrap_up_s = 2 ")
        .replace(
            "\nmean_handling_s = 90\n",
            "\nmean_handling_s = 90\nexpected_calls_per_year = 500_000\n",
        );
    assert_ne!(changed, shipped);
    std::fs::write(&config, changed).expect("write");
    let platform = Platform::with_config(&config);
    let mut phones = Vec::new();
    for (login, calls) in [("ota-13-1", 3), ("ota-bspp-1", 3), ("ota-bspp-2", 3)] {
        let port = free_port();
        platform.register(login, port);
        phones.push(Reaped(platform.call_taker(login, port, calls)));
        platform.set_state(login, "available");
    }
    let answered = |name: &str| {
        let name = name.to_owned();
        platform.wait_call(&format!("{name} answered"), move |c| {
            c["caller"] == name.as_str() && c["call_taker"].is_string()
        })
    };
    let mut callers = Vec::new();
    callers.push(Reaped(platform.caller(
        "0600000001",
        43.2965,
        5.3698,
        8_000,
    )));
    let first = answered("0600000001");
    assert_eq!(field(&first, "call_taker"), "ota-13-1");
    callers.push(Reaped(platform.caller(
        "0600000002",
        43.2965,
        5.3698,
        20_000,
    )));
    let lent = answered("0600000002");
    assert_eq!(field(&lent, "departement"), "13");
    assert_eq!(field(&lent, "cta"), "bspp", "{lent}");
    let lender = field(&lent, "call_taker")
        .as_str()
        .expect("login")
        .to_owned();
    assert!(lender.starts_with("ota-bspp-"), "{lender}");
    // The third Marseille caller finds nobody to spare: the BSPP keeps its last call-taker.
    callers.push(Reaped(platform.caller(
        "0600000003",
        43.2965,
        5.3698,
        15_000,
    )));
    let waiting = platform.wait_call("the third caller queued", |c| c["caller"] == "0600000003");
    assert!(waiting["call_taker"].is_null(), "{waiting}");
    // A Parisian calls during the burst: the reserve answers at once.
    callers.push(Reaped(platform.caller(
        "0600000075",
        48.8566,
        2.3522,
        4_000,
    )));
    let own = answered("0600000075");
    assert_eq!(field(&own, "departement"), "75");
    assert_eq!(field(&own, "cta"), "bspp");
    assert_ne!(field(&own, "call_taker"), lender.as_str());
    let wait_ms = own["answered_at"].as_i64().expect("answered")
        - own["offered_at"].as_i64().expect("offered");
    assert!(
        wait_ms < 3_000,
        "the lender's own caller waited {wait_ms} ms"
    );
    // The third Marseille caller is answered once a call-taker frees up, after the Parisian.
    let third = answered("0600000003");
    assert!(
        third["answered_at"].as_i64() >= own["answered_at"].as_i64(),
        "{third} / {own}"
    );
    // The BSPP's call-taker hands the Marseille call back with a summary: it goes to the head
    // of Marseille's queue, before the third caller, and Marseille's call-taker takes it.
    let (code, body) = console_post(
        &platform,
        &lender,
        &format!("/api/console/calls/{}/handback", field(&lent, "call")),
        json!({ "summary": "feu de broussailles, route de la Gineste" }),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = console_post(
        &platform,
        "ota-13-1",
        &format!("/api/console/calls/{}/handback", field(&first, "call")),
        json!({}),
    );
    assert_eq!(
        code, 403,
        "not talking with that caller any more, or never: {body}"
    );
    let home = platform.wait_call("the handed-back call answered at home", |c| {
        c["caller"] == "0600000002" && c["call_taker"] == "ota-13-1"
    });
    assert_eq!(field(&home, "cta"), "cta-13");
    let trail = platform.trail(field(&lent, "call"));
    for step in [
        "entraide cta-13 → bspp".to_owned(),
        format!("rendu au cta-13 par {lender} (bspp) : feu de broussailles, route de la Gineste"),
        "décroché par ota-13-1".to_owned(),
    ] {
        assert!(trail.contains(&step), "no {step:?} in {trail:?}");
    }
    // The conversation after the hand-back has its own recording, traced when the call ends.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !platform
        .trail(field(&lent, "call"))
        .iter()
        .any(|s| s.starts_with("enregistrement après retour au CTA d'origine"))
    {
        assert!(Instant::now() < deadline, "no second recording traced");
        std::thread::sleep(Duration::from_millis(200));
    }
    for mut caller in callers {
        let deadline = Instant::now() + Duration::from_secs(45);
        while caller.0.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "a caller did not finish");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Even at RUST_LOG=debug, for every crate, no digest credential reaches the log: the SIP
/// stack's raw messages are kept out of it.
#[test]
fn no_credential_reaches_the_log_even_at_debug_level() {
    let platform = Platform::logging("debug");
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let log = platform.full_log();
    assert!(log.contains("phone registered"), "{log}");
    for secret in ["Authorization", "response=", "WWW-Authenticate", "nonce="] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

//! Callers who write instead of speaking, against real SIPp peers on loopback: a conversation
//! through DEC112 with the phone's position, answered in writing by a call-taker, ended by the
//! caller and sealed on record; a message nobody answers, on the call-back list; bodies that
//! cannot be read, refused with their status and still on record.
//!
//! Every peer is started here on free loopback ports and stopped at the end of its test.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The SHA-256 of a transcript, recomputed from its lines as the API gives them: one JSON line
/// each (`at_ms`, `from` with its `kind` and the call-taker's `login`, `text`), each followed by
/// a newline. What a reader does to check a transcript against its seal.
fn seal_of(lines: &[Value]) -> String {
    let mut hash = Sha256::new();
    for line in lines {
        let from = match (line["author"].as_str(), line["login"].as_str()) {
            (Some("call_taker"), Some(login)) => json!({ "kind": "call_taker", "login": login }),
            (Some(kind), _) => json!({ "kind": kind }),
            (None, _) => panic!("a line without author: {line}"),
        };
        let canonical = format!(
            "{{\"at_ms\":{},\"from\":{},\"text\":{}}}",
            line["at"],
            from,
            serde_json::to_string(&line["text"]).expect("text")
        );
        hash.update(canonical.as_bytes());
        hash.update(b"\n");
    }
    hex::encode(hash.finalize())
}

fn texts_of(detail: &Value) -> Vec<(String, String)> {
    detail["transcript"]
        .as_array()
        .expect("a transcript")
        .iter()
        .map(|l| {
            (
                l["author"].as_str().unwrap_or_default().to_owned(),
                l["text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_located_conversation_in_writing_reaches_cta_13_is_answered_and_sealed_on_record() {
    let platform = Platform::start();
    platform.set_state("ota-13-1", "available");
    let port = free_port();
    // SIPp stops itself within its 40 s bound, even when the test fails before waiting for it.
    let caller = sipp(&platform.dir.path().join("texter"))
        .args(["-sf", &format!("{SIPP_DIR}/texter.xml"), "-m", "1"])
        .args(["-key", "caller", "+33612345678"])
        .args(["-key", "lat", "43.2965", "-key", "lon", "5.3698"])
        .args(["-key", "first", "Au feu dans l'immeuble, je suis sourd"])
        .args(["-key", "second", "12 rue de la République, 3e étage"])
        .args(["-p", &port.to_string()])
        .arg(format!("127.0.0.1:{}", platform.sip))
        .spawn()
        .expect("sipp runs");
    let call = platform.wait_call("the conversation answered by CTA 13", |c| {
        c["medium"] == "text" && c["answered_at"].is_i64()
    });
    assert_eq!(call["cta"], "cta-13", "{call}");
    assert_eq!(call["call_taker"], "ota-13-1");
    assert_eq!(call["location_source"], "pidf-lo");
    assert_eq!(call["commune"], "Marseille");
    assert_eq!(call["caller"], "+33612345678");
    let number = call["call"].as_u64().expect("number");
    let (status, body) = console_post(
        &platform,
        "ota-13-1",
        &format!("/api/console/calls/{number}/text"),
        json!({ "text": "Où êtes-vous ?" }),
    );
    assert_eq!(status, 202, "{body}");
    // Another call-taker cannot write in it.
    let (status, _) = console_post(
        &platform,
        "ota-13-2",
        &format!("/api/console/calls/{number}/text"),
        json!({ "text": "Bonjour" }),
    );
    assert_eq!(status, 403);
    wait_ok(caller, "the caller's side of the conversation");
    let ended = platform.wait_call("the conversation ended and sealed", |c| {
        c["call"] == number && c["transcript_sha256"].is_string()
    });
    assert_eq!(ended["outcome"], "completed", "{ended}");
    let detail = platform.get(&format!("/api/calls/{number}"));
    let texts = texts_of(&detail);
    let said: Vec<(&str, &str)> = texts
        .iter()
        .filter(|(author, _)| author != "platform")
        .map(|(a, t)| (a.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        said,
        [
            ("caller", "Au feu dans l'immeuble, je suis sourd"),
            ("call_taker", "Où êtes-vous ?"),
            ("caller", "12 rue de la République, 3e étage"),
        ],
        "{detail}"
    );
    let lines = detail["transcript"].as_array().expect("lines");
    assert_eq!(
        ended["transcript_sha256"].as_str(),
        Some(seal_of(lines).as_str()),
        "the seal is the SHA-256 of the lines on record"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["author"] == "platform" && l["text"].as_str().unwrap().contains("reçu")),
        "the caller was told their message was received: {detail}"
    );
}

#[test]
fn a_message_nobody_answers_puts_its_caller_on_the_call_back_list() {
    let config = tempfile::tempdir().expect("dir");
    let path = shipped_with_line(
        config.path(),
        "idle.toml",
        "capacity = ",
        "capacity = 3000\ntext_idle_s = 10",
    );
    let platform = Platform::with_config(&path);
    let port = free_port();
    // It answers the platform's messages until it is stopped, with the test.
    let _caller = Reaped(
        sipp(&platform.dir.path().join("unanswered"))
            .args([
                "-sf",
                &format!("{SIPP_DIR}/texter-unanswered.xml"),
                "-m",
                "1",
            ])
            .args(["-key", "caller", "0611223344"])
            .args(["-key", "text", "Au secours"])
            .args(["-p", &port.to_string()])
            .arg(format!("127.0.0.1:{}", platform.sip))
            .spawn()
            .expect("sipp runs"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let call = loop {
        let ended = platform
            .calls()
            .into_iter()
            .find(|c| c["caller"] == "0611223344" && c["ended_at"].is_i64());
        if let Some(call) = ended {
            break call;
        }
        assert!(Instant::now() < deadline, "{}", platform.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(call["medium"], "text");
    assert_eq!(call["outcome"], "abandoned", "{call}");
    assert!(call["transcript_sha256"].is_string());
    let callbacks = platform.get("/api/callbacks");
    let entry = callbacks
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["call"] == call["call"])
        .unwrap_or_else(|| panic!("not on a call-back list: {callbacks}"));
    assert_eq!(entry["caller"], "0611223344");
    assert!(
        platform
            .trail(&call["call"])
            .iter()
            .any(|s| s.contains("sans message depuis 10 s")),
        "{:?}",
        platform.trail(&call["call"])
    );
}

/// A MESSAGE as a hand-written peer sends it, and the status line of the answer.
fn message(socket: &UdpSocket, to: u16, content_type: &str, body: &[u8]) -> String {
    let port = socket.local_addr().expect("addr").port();
    let mut datagram = format!(
        "MESSAGE sip:112@127.0.0.1:{to} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{}\r\nFrom: <sip:0622334455@127.0.0.1:{port}>;tag=t1\r\nTo: <sip:112@127.0.0.1>\r\nCall-ID: bad-{port}@127.0.0.1\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len() + content_type.len(),
        body.len()
    )
    .into_bytes();
    datagram.extend_from_slice(body);
    socket.send_to(&datagram, ("127.0.0.1", to)).expect("send");
    let mut buf = vec![0u8; 65_536];
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    loop {
        let (n, _) = socket.recv_from(&mut buf).expect("an answer");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        // The platform's own messages to this caller come too: answer them, keep reading.
        if text.starts_with("SIP/2.0") {
            return text;
        }
    }
}

#[test]
fn a_body_that_cannot_be_read_is_refused_with_its_status_and_still_on_record() {
    let platform = Platform::start();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
    let answer = message(&socket, platform.sip, "image/png", b"\x89PNG\r\n");
    assert!(answer.starts_with("SIP/2.0 415"), "{answer}");
    assert!(answer.contains("Accept: text/plain"), "{answer}");
    let answer = message(&socket, platform.sip, "text/plain", &[0xff, 0xfe, 0x41]);
    assert!(answer.starts_with("SIP/2.0 415"), "{answer}");
    let answer = message(
        &socket,
        platform.sip,
        "text/plain",
        "x".repeat(5_000).as_bytes(),
    );
    assert!(answer.starts_with("SIP/2.0 513"), "{answer}");
    let call = platform.wait_call("the conversation on record", |c| {
        c["caller"] == "0622334455" && c["medium"] == "text"
    });
    let detail = platform.get(&format!("/api/calls/{}", call["call"]));
    let refused = texts_of(&detail)
        .into_iter()
        .filter(|(_, t)| t.starts_with("message du correspondant refusé"))
        .count();
    assert_eq!(refused, 3, "{detail}");
}

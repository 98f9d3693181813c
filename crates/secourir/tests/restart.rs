//! A platform that crashes or is stopped: nothing a caller needs is lost, no number is given
//! twice, and a stop hangs up properly.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// SIGKILL with a caller in conversation and another waiting in the queue: at the next start
/// both calls are closed as interrupted and both callers are on the call-back list (a
/// call-taker can work the entries), the conversation's recording plays and is linked to its
/// record with its hash, and the next call gets a number never given before.
#[test]
fn a_crash_leaves_no_open_call_no_lost_caller_and_no_reused_number() {
    let mut platform = Platform::start();
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let _answering = Reaped(platform.call_taker("ota-13-1", phone, 1));
    platform.set_state("ota-13-1", "available");
    let _talking = Reaped(platform.caller_until_hung_up("0666666661", 43.2965, 5.3698));
    let talking = platform.wait_call("the first call answered", |c| {
        c["caller"] == "0666666661" && c["call_taker"] == "ota-13-1"
    });
    let _waiting = Reaped(platform.caller_until_hung_up("0677777777", 43.2965, 5.3698));
    let before = platform.wait_call("the waiting call on record", |c| {
        c["caller"] == "0677777777"
    });
    let number = before["call"].as_u64().expect("number");
    assert!(before["outcome"].is_null(), "{before}");
    // A second of the conversation on disk, then the crash.
    let recording = platform
        .dir
        .path()
        .join(format!("recordings/call-{}.wav", talking["call"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&recording).map_or(0, |m| m.len()) < 32_000 {
        assert!(Instant::now() < deadline, "nothing recorded");
        std::thread::sleep(Duration::from_millis(50));
    }

    platform.kill();
    platform.start_again();

    let cut = platform.wait_call("the conversation closed", |c| {
        c["call"] == talking["call"] && c["outcome"].is_string()
    });
    assert_eq!(cut["outcome"], "abandoned", "{cut}");
    assert_eq!(
        cut["recording_path"].as_str(),
        Some(recording.to_string_lossy().as_ref()),
        "{cut}"
    );
    let bytes = std::fs::read(&recording).expect("recording");
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    assert_eq!(cut["recording_sha256"], sha.as_str());
    let wav = hound::WavReader::new(std::io::Cursor::new(bytes)).expect("a playable WAV");
    assert!(wav.duration() >= 8_000, "{} frames", wav.duration());

    let after = platform.wait_call("the interrupted call closed", |c| {
        c["call"] == number && c["outcome"].is_string()
    });
    assert_eq!(after["outcome"], "abandoned", "{after}");
    assert!(
        after["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("interrompu")),
        "{after}"
    );
    let trail = platform.trail(&after["call"]);
    assert!(
        trail.iter().any(|s| s.starts_with("appel interrompu")),
        "{trail:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = platform.get("/api/callbacks?cta=cta-13");
        let listed = |call: &serde_json::Value, caller: &str| {
            list.as_array().is_some_and(|l| {
                l.iter()
                    .any(|e| e["call"] == *call && e["caller"] == caller)
            })
        };
        if listed(&json!(number), "0677777777") && listed(&talking["call"], "0666666661") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not on the call-back list: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The core knows the entry again: a call-taker takes it and closes it.
    platform.set_state("ota-13-1", "paused");
    for step in ["taken", "done"] {
        let (code, body) = console_post(
            &platform,
            "ota-13-1",
            &format!("/api/console/callbacks/{number}/{step}"),
            json!({}),
        );
        assert_eq!(code, 204, "{step}: {body}");
    }

    // The next call is numbered above everything handed out before the crash.
    let _next = Reaped(platform.caller_until_hung_up("0688888888", 43.2965, 5.3698));
    let next = platform.wait_call("a call after the restart", |c| c["caller"] == "0688888888");
    assert!(next["call"].as_u64().expect("number") > number, "{next}");
}

/// SIGTERM drains like Ctrl-C: the caller in conversation gets a BYE and the call is on
/// record as completed, with its recording.
#[test]
fn sigterm_hangs_up_live_calls_and_finishes_their_records() {
    let mut platform = Platform::start();
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let _answering = Reaped(platform.call_taker("ota-13-1", phone, 1));
    platform.set_state("ota-13-1", "available");
    let caller = platform.caller_until_hung_up("0699999998", 43.2965, 5.3698);
    platform.wait_call("the call answered", |c| {
        c["caller"] == "0699999998" && c["call_taker"] == "ota-13-1"
    });
    let status = platform.terminate();
    assert!(status.success(), "{status}");
    // The caller's SIPp ends on the platform's BYE, successfully.
    wait_ok(caller, "caller hung up by the platform");
    platform.start_again();
    let call = platform.wait_call("the call closed", |c| c["caller"] == "0699999998");
    assert_eq!(call["outcome"], "completed", "{call}");
    assert_eq!(call["reason"], "arrêt de la plateforme", "{call}");
    assert!(call["recording_sha256"].is_string(), "{call}");
}

/// The caller is answered only once the call's record is on disk: a crash right after the
/// 200 OK still finds the call at the next start (closed as interrupted, to call back).
#[test]
fn a_call_answered_just_before_a_crash_is_on_record() {
    let mut platform = Platform::start();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let port = socket.local_addr().expect("addr").port();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\n";
    let invite = format!(
        "INVITE sip:18@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-crash\r\nFrom: <sip:0655555555@127.0.0.1>;tag=crash\r\nTo: <sip:18@127.0.0.1>\r\nCall-ID: crash@test\r\nCSeq: 1 INVITE\r\nContact: <sip:0655555555@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    socket
        .send_to(invite.as_bytes(), ("127.0.0.1", platform.sip))
        .expect("send");
    let mut buf = vec![0u8; 65_536];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no 200 OK");
        if let Ok((n, _)) = socket.recv_from(&mut buf)
            && buf[..n].starts_with(b"SIP/2.0 200 ")
        {
            break;
        }
    }
    // At the very instant the caller holds its 200 OK, the record is already on disk.
    let store = secourir_store::Store::open_read_only(platform.dir.path()).expect("store");
    let on_disk = store.calls_since(0, 10).expect("calls");
    assert!(
        on_disk
            .iter()
            .any(|c| c.caller.as_deref() == Some("0655555555")),
        "answered before its record was written: {on_disk:?}"
    );
    drop(store);
    platform.kill();
    platform.start_again();
    let call = platform.wait_call("the answered call on record", |c| {
        c["caller"] == "0655555555" && c["outcome"].is_string()
    });
    assert_eq!(call["outcome"], "abandoned", "{call}");
}

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

/// What one SIGKILL under load left, once the platform started again.
#[derive(Debug, Default)]
struct Crash {
    /// Callers SIPp saw answered (a 200 OK to their INVITE) before the kill.
    answered: usize,
    /// Of those, the ones with no call record after the restart.
    without_record: usize,
    /// Records of before the kill whose number a later call took.
    reused: usize,
    /// Records with a recording after the restart.
    recordings: usize,
    /// Recordings that do not play, or whose SHA-256 is not their record's.
    unplayable: usize,
    /// Calls the restart closed as interrupted.
    interrupted: usize,
    /// Of those, the ones missing from the call-back list.
    not_called_back: usize,
}

/// The callers whose INVITE got a 200 OK, from SIPp's message log in `dir`.
fn answered_callers(dir: &std::path::Path) -> std::collections::HashSet<String> {
    let mut callers = std::collections::HashSet::new();
    for entry in std::fs::read_dir(dir).expect("SIPp's directory").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with("_messages.log") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for block in text.split("----------------------------------------------- ") {
            let received = block.contains("message received");
            let ok = block
                .lines()
                .any(|l| l.trim_start().starts_with("SIP/2.0 200"));
            let invite = block.lines().any(|l| l.trim() == "CSeq: 1 INVITE");
            if !(received && ok && invite) {
                continue;
            }
            let from = block
                .lines()
                .find(|l| l.trim_start().starts_with("From:"))
                .and_then(|l| l.split("sip:").nth(1))
                .and_then(|l| l.split('@').next());
            if let Some(caller) = from {
                callers.insert(caller.to_owned());
            }
        }
    }
    callers
}

/// The platform SIGKILLed under `rate` calls a second, with three call-takers answering;
/// what its records say after it started again.
fn crash_under_load(rate: u32) -> Crash {
    let config_dir = tempfile::tempdir().expect("temp dir");
    let config = no_wrap_up(config_dir.path());
    let mut platform = Platform::with_config(std::path::Path::new(&config));
    let phones = staff(&platform);
    let sipp_dir = platform.dir.path().join("load");
    let mut callers = Reaped(
        load_command(&platform, "load", rate, 1_000 * rate, 1_500, OPERATOR_TRUNK)
            .arg("-trace_msg")
            .spawn()
            .expect("sipp runs"),
    );
    // The kill lands at a different point of the load each run: once 3 calls are completed
    // and the records reach a number drawn between 20 and 99.
    let target = 20
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as usize)
            % 80;
    let deadline = Instant::now() + Duration::from_secs(30);
    let before = loop {
        let calls = platform.calls();
        let completed = calls.iter().filter(|c| c["outcome"] == "completed").count();
        if completed >= 3 && calls.len() >= target {
            break calls;
        }
        assert!(
            Instant::now() < deadline,
            "{completed} calls completed\n{}",
            platform.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    platform.kill();
    // SIPp writes its message log out when it quits on SIGINT.
    let pid = rustix::process::Pid::from_raw(callers.0.id() as i32).expect("pid");
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
    let deadline = Instant::now() + Duration::from_secs(20);
    while callers.0.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "SIPp did not quit on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(phones);
    let answered = answered_callers(&sipp_dir);

    platform.start_again();
    let after = platform.calls();
    let mut crash = Crash {
        answered: answered.len(),
        ..Crash::default()
    };
    crash.without_record = answered
        .iter()
        .filter(|caller| !after.iter().any(|c| c["caller"] == caller.as_str()))
        .count();
    // A later call taking an earlier number would overwrite its record.
    let _next = Reaped(platform.caller_until_hung_up("0799999991", 43.2965, 5.3698));
    let next = platform.wait_call("a call after the restart", |c| c["caller"] == "0799999991");
    let highest_before = after.iter().filter_map(|c| c["call"].as_u64()).max();
    let now = platform.calls();
    crash.reused = before
        .iter()
        .filter(|b| {
            !now.iter()
                .any(|c| c["call"] == b["call"] && c["caller"] == b["caller"])
        })
        .count()
        + usize::from(next["call"].as_u64() <= highest_before);
    for call in &after {
        let Some(path) = call["recording_path"].as_str() else {
            continue;
        };
        crash.recordings += 1;
        let sound = std::fs::read(path).ok().filter(|bytes| {
            use sha2::Digest;
            call["recording_sha256"] == hex::encode(sha2::Sha256::digest(bytes)).as_str()
                && hound::WavReader::new(std::io::Cursor::new(bytes.as_slice())).is_ok()
        });
        if sound.is_none() {
            eprintln!("unplayable recording: {call}");
            crash.unplayable += 1;
        }
    }
    let callbacks = platform.get("/api/callbacks");
    let interrupted: Vec<&serde_json::Value> = after
        .iter()
        .filter(|c| {
            c["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("interrompu"))
        })
        .collect();
    crash.interrupted = interrupted.len();
    crash.not_called_back = interrupted
        .iter()
        .filter(|c| {
            !callbacks
                .as_array()
                .is_some_and(|l| l.iter().any(|e| e["call"] == c["call"]))
        })
        .count();
    crash
}

/// SIGKILL under load (20 calls a second by default; `SECOURIR_CRASH_RUNS` runs, 1 by
/// default, `bench/crash_kill.sh` runs 20): every caller answered has a record, no number is
/// given twice, every recording plays with its hash, every interrupted caller is to be called
/// back.
#[test]
fn a_platform_killed_under_load_answers_no_one_without_a_record() {
    let runs: usize = env_number("SECOURIR_CRASH_RUNS", 1);
    let rate: u32 = env_number("SECOURIR_CRASH_RATE", 20);
    let mut failed = Vec::new();
    let mut totals = Crash::default();
    for run in 1..=runs {
        let crash = crash_under_load(rate);
        println!("crash run {run}: {crash:?}");
        assert!(
            crash.answered > 0,
            "run {run}: no caller answered: {crash:?}"
        );
        if crash.without_record + crash.reused + crash.unplayable + crash.not_called_back > 0 {
            failed.push(run);
        }
        totals.answered += crash.answered;
        totals.without_record += crash.without_record;
        totals.reused += crash.reused;
        totals.recordings += crash.recordings;
        totals.unplayable += crash.unplayable;
        totals.interrupted += crash.interrupted;
        totals.not_called_back += crash.not_called_back;
    }
    println!(
        "{{\"crash_runs\": {runs}, \"rate\": {rate}, \"answered\": {}, \"answered_without_record\": {}, \"reused_numbers\": {}, \"recordings\": {}, \"unplayable_recordings\": {}, \"interrupted\": {}, \"interrupted_not_called_back\": {}}}",
        totals.answered,
        totals.without_record,
        totals.reused,
        totals.recordings,
        totals.unplayable,
        totals.interrupted,
        totals.not_called_back
    );
    assert!(
        failed.is_empty(),
        "runs {failed:?} lost something: {totals:?}"
    );
}

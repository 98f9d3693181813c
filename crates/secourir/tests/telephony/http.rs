//! The API and console over HTTP: connection bounds, idle sockets, refusals, other sites, metrics.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

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

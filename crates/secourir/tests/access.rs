//! Console access: passwords are tried at the policy's pace, not argon2's, and an unknown
//! login takes as long to refuse as a wrong password.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// A console login attempt: its status, its Retry-After, and how long it took.
fn attempt(platform: &Platform, login: &str, password: &str) -> (u16, Option<u64>, Duration) {
    let started = Instant::now();
    let response = ureq::post(&platform.url("/api/login"))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(json!({ "login": login, "password": password }))
        .expect("an answer");
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (response.status().as_u16(), retry, started.elapsed())
}

#[test]
fn wrong_passwords_are_held_back_and_an_unknown_login_tells_nothing() {
    let platform = Platform::start();
    // An unknown login and a known one with a wrong password: the same answer, the same time.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..3 {
        let (status, _, took) = attempt(&platform, "ota-83-1", "wrong");
        assert_eq!(status, 401);
        known.push(took);
        let (status, _, took) = attempt(&platform, &format!("nobody-{i}"), "wrong");
        assert_eq!(status, 401);
        unknown.push(took);
    }
    known.sort();
    unknown.sort();
    println!(
        "refusal of a wrong password {:.1} ms, of an unknown login {:.1} ms (medians of 3)",
        known[1].as_secs_f64() * 1e3,
        unknown[1].as_secs_f64() * 1e3
    );

    // A refusal is an RFC 9457 problem that says nothing of the platform inside.
    let mut refusal = ureq::post(&platform.url("/api/login"))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(json!({ "login": "nobody-else", "password": "wrong" }))
        .expect("an answer");
    assert_eq!(
        refusal
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let body: serde_json::Value = refusal.body_mut().read_json().expect("a problem");
    assert_eq!(body["status"], 401);
    assert_eq!(body["detail"], "identifiants invalides");

    // One login hammered for 5 s: three tries at once, then one after 1 s, 2 s, 4 s…
    let started = Instant::now();
    let (mut checked, mut held) = (0, 0);
    while started.elapsed() < Duration::from_secs(5) {
        match attempt(&platform, "ota-13-1", "guess") {
            (401, _, _) => checked += 1,
            (429, Some(retry), _) => {
                assert!(retry >= 1);
                held += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    println!("5 s of wrong passwords for one login: {checked} checked, {held} held back (429)");
    assert!(checked <= 5, "{checked} passwords checked in 5 s");
    assert!(held > 0);
    // The loop does not flood the log: held-back attempts are counted, not written.
    let log = platform.full_log();
    assert!(
        log.len() < 100_000,
        "{} bytes of log after the loop",
        log.len()
    );
    // Held back, even the right password waits: guessing gains nothing from it.
    let (status, retry, _) = attempt(&platform, "ota-13-1", "secourir");
    assert_eq!(status, 429);
    assert!(retry.is_some());
    // Another call-taker of the same room logs in at once.
    let (status, _, _) = attempt(&platform, "ota-13-2", "secourir");
    assert_eq!(status, 200);
    // Once the delay is over, the right password opens the console, and clears the count.
    let deadline = Instant::now() + Duration::from_secs(70);
    loop {
        match attempt(&platform, "ota-13-1", "secourir") {
            (200, _, _) => break,
            (429, Some(retry), _) => {
                assert!(Instant::now() < deadline, "still held back");
                std::thread::sleep(Duration::from_secs(retry.min(5)));
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let (status, _, _) = attempt(&platform, "ota-13-1", "wrong-again");
    assert_eq!(status, 401);
}

#[test]
fn a_supervisor_signs_in_with_a_one_time_code_good_once_and_a_missing_one_tells_nothing() {
    let platform = Platform::start();
    let with = |code: Option<&str>| {
        ureq::post(&platform.url("/api/login"))
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(json!({ "login": "chef-13", "password": "secourir", "code": code }))
            .expect("an answer")
            .status()
            .as_u16()
    };
    // The right password without its code, or with a wrong one, is answered as a wrong
    // password: nobody learns the password was right.
    // Both count as failed attempts, at the throttle's pace (three free).
    assert_eq!(with(None), 401);
    assert_eq!(with(Some("000000")), 401);
    let code = one_time_code("chef-13").expect("chef-13 has a second factor");
    assert_eq!(with(Some(&code)), 200);
    assert_eq!(with(Some(&code)), 401, "a code is good once");
    // A call-taker has none.
    assert_eq!(attempt(&platform, "ota-13-1", "secourir").0, 200);
}

/// Who asks, in the access matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    /// No token, no session.
    Nobody,
    /// The API token: a machine (SBC, SMS gateway, supervision).
    Token,
    /// A call-taker of CTA 13, the CTA of every call of the test.
    Ota13,
    /// A call-taker of CTA 83: another CTA.
    Ota83,
    /// The room supervisor of CTA 13.
    Chef13,
}

const EVERYONE: [Who; 5] = [Who::Nobody, Who::Token, Who::Ota13, Who::Ota83, Who::Chef13];

/// What one cell of the matrix must give.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    /// Let through, CTA 13's data in the answer where the route reads some.
    Open,
    /// Let through, but none of CTA 13's data in the answer.
    OpenWithout,
    /// 401: who asks is not known.
    Unknown,
    /// 403: known, but not for this role.
    Forbidden,
    /// Not carried out, and nothing of CTA 13's in the answer: 403, 404 where the call's
    /// existence is not theirs to know, or 409 where the core refuses the action before it
    /// looks at the call (no partner service for a transfer).
    NotTheirs,
}

/// The access policy, route by route: a route of the OpenAPI document missing here fails the
/// test, so that no route is added without its row.
fn policy(method: &str, path: &str, who: Who) -> Option<Cell> {
    use Cell::*;
    use Who::*;
    let person = |cell: Cell| match who {
        Nobody | Token => Unknown,
        _ => cell,
    };
    Some(match (method, path) {
        // Public: the sign-in, the health probe, the map and the API's own description.
        ("post", "/api/login" | "/api/logout")
        | ("get", "/api/health" | "/api/openapi.json" | "/api/territory/outlines") => Open,
        // LoST: routing proxies upstream ask which CTA serves a place; it says nothing of calls.
        ("post", "/lost") => Open,
        // Machines' routes: a person's session is no credential there (it acts through the
        // console's routes instead), so it is answered as no credential is.
        ("post", "/api/call-takers/{login}/state" | "/api/aml")
        | ("post", "/api/callbacks/{call}/taken" | "/api/callbacks/{call}/done") => match who {
            Token => Open,
            _ => Unknown,
        },
        // Reads: a machine and a supervisor read every CTA, a call-taker their own.
        ("get", "/api/calls" | "/api/call-takers") => match who {
            Nobody => Unknown,
            Ota83 => OpenWithout,
            _ => Open,
        },
        ("get", "/api/calls/{call}" | "/api/calls/{call}/log") => match who {
            Nobody => Unknown,
            Ota83 => NotTheirs,
            _ => Open,
        },
        ("get", "/api/callbacks") => match who {
            Nobody => Unknown,
            Ota83 => NotTheirs,
            _ => Open,
        },
        ("get", "/metrics") => match who {
            Nobody => Unknown,
            Ota13 | Ota83 => Forbidden,
            _ => Open,
        },
        // A person's own console.
        ("get", "/api/me" | "/api/ws") | ("post", "/api/me/state") => person(Open),
        // Picking: a CTA 13 caller is for CTA 13's people.
        ("post", "/api/console/calls/{call}/pick") => person(match who {
            Ota83 => NotTheirs,
            _ => Open,
        }),
        // Acting on a call: only the call-taker holding it, and nobody holds this one.
        ("post", "/api/console/calls/{call}/hangup")
        | ("post", "/api/console/calls/{call}/transfer")
        | ("post", "/api/console/calls/{call}/handback")
        | ("post", "/api/console/calls/{call}/text")
        | ("post", "/api/console/calls/{call}/case") => person(NotTheirs),
        // A call-back: CTA 13's list, for CTA 13's people.
        ("post", "/api/console/callbacks/{call}/{step}") => person(match who {
            Ota83 => NotTheirs,
            _ => Open,
        }),
        ("post", "/api/supervision/crisis/{departement}") => person(match who {
            Chef13 => Open,
            _ => Forbidden,
        }),
        _ => return None,
    })
}

/// A request as `who`, raw over TCP (the WebSocket's upgrade too), with `cookies` (each
/// person's session, opened once: a supervisor's one-time code is good once): the status and
/// the body.
fn ask_as(
    platform: &Platform,
    cookies: &mut std::collections::HashMap<&'static str, String>,
    who: Who,
    method: &str,
    target: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut headers = format!(
        "{} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
        method.to_uppercase(),
        platform.http
    );
    match who {
        Who::Nobody => {}
        Who::Token => headers.push_str(&format!("Authorization: Bearer {TOKEN}\r\n")),
        Who::Ota13 | Who::Ota83 | Who::Chef13 => {
            let login = match who {
                Who::Ota13 => "ota-13-1",
                Who::Ota83 => "ota-83-1",
                _ => "chef-13",
            };
            let cookie = cookies
                .entry(login)
                .or_insert_with(|| session(platform, login));
            headers.push_str(&format!("Cookie: {cookie}\r\n"));
        }
    }
    if target == "/api/ws" {
        headers.push_str(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        );
    } else {
        headers.push_str("Connection: close\r\n");
    }
    let body = if method == "post" {
        r#"{"state":"paused","on":false,"to":"15","summary":"","by":"ota-13-2","text":"Bonjour"}"#
    } else {
        ""
    };
    let request = format!(
        "{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", platform.http)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("request");
    let mut answer = Vec::new();
    // A WebSocket let through stays open: its status line is enough.
    let mut buf = [0u8; 65_536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        if answer.starts_with(b"HTTP/1.1 101") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn every_route_of_the_api_answers_each_role_and_cta_as_the_policy_says() {
    let platform = Platform::start();
    // A CTA 13 caller who gave up (a record, a call-back) and one still waiting.
    wait_ok(
        platform.caller("0600000071", 43.2965, 5.3698, 1_000),
        "the caller who gives up",
    );
    let gave_up = platform.wait_call("the abandoned call", |c| {
        c["caller"] == "0600000071" && c["outcome"] == "abandoned"
    });
    // Another, whose call-back the console's route works (the machine's marks the first done).
    wait_ok(
        platform.caller("0600000073", 43.2965, 5.3698, 1_000),
        "the second caller who gives up",
    );
    let console_call_back = platform.wait_call("the second abandoned call", |c| {
        c["caller"] == "0600000073" && c["outcome"] == "abandoned"
    });
    let _waiting = Reaped(platform.caller_until_hung_up("0600000072", 43.2965, 5.3698));
    let waiting = platform.wait_call("the waiting call", |c| {
        c["caller"] == "0600000072" && c["queued_at"].is_i64()
    });
    // Logged in, so that the core looks at the call itself and not at their state first.
    for login in ["ota-13-1", "ota-83-1", "chef-13"] {
        platform.set_state(login, "paused");
    }
    let doc = platform.get("/api/openapi.json");
    let mut paths: Vec<(&String, &serde_json::Value)> =
        doc["paths"].as_object().expect("paths").iter().collect();
    // The logout closes the sessions the other cells use: it comes last.
    paths.sort_by_key(|(path, _)| path.as_str() == "/api/logout");
    let mut cookies = std::collections::HashMap::new();
    let mut rows = Vec::new();
    let mut wrong = Vec::new();
    for (path, operations) in paths {
        for method in operations.as_object().expect("operations").keys() {
            let call = if path.starts_with("/api/console/calls/") {
                &waiting["call"]
            } else if path.starts_with("/api/console/callbacks/") {
                &console_call_back["call"]
            } else {
                &gave_up["call"]
            };
            let mut target = path
                .replace("{call}", &call.to_string())
                .replace("{login}", "ota-13-2")
                .replace("{departement}", "13")
                .replace("{step}", "taken");
            match path.as_str() {
                "/api/callbacks" => target.push_str("?cta=cta-13"),
                "/api/calls" => target.push_str("?since=1h"),
                _ => {}
            }
            let mut row = format!("{:<5} {path:<42}", method.to_uppercase());
            for who in EVERYONE {
                let Some(cell) = policy(method, path, who) else {
                    panic!("{method} {path} has no row in the access policy of this test");
                };
                let (status, text) = ask_as(&platform, &mut cookies, who, method, &target);
                let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
                let cta_13_data = ["0600000071", "0600000072", "0600000073", "ota-13-2"]
                    .iter()
                    .any(|marker| body.contains(marker));
                let held = match cell {
                    Cell::Open => {
                        let reads_cta_13 = method == "get" && path.starts_with("/api/call");
                        !matches!(status, 401 | 403) && (!reads_cta_13 || cta_13_data)
                    }
                    Cell::OpenWithout => status == 200 && !cta_13_data,
                    Cell::Unknown => status == 401,
                    Cell::Forbidden => status == 403,
                    Cell::NotTheirs => matches!(status, 403 | 404 | 409) && !cta_13_data,
                };
                if !held {
                    wrong.push(format!(
                        "{method} {target} as {who:?}: {status}, wanted {cell:?}\n{text}"
                    ));
                }
                row.push_str(&format!(" {:>6}", status));
            }
            rows.push(row);
        }
    }
    println!(
        "{:<48} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "route", "nobody", "token", "ota13", "ota83", "chef13"
    );
    for row in &rows {
        println!("{row}");
    }
    assert!(rows.len() >= 20, "{} routes only", rows.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

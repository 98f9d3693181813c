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

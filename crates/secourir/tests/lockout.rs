//! Wrong secrets sent from elsewhere never lock a call-taker out: the phone and the console
//! keep working from where they were last right, while the guessing address is held back.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

/// Where the wrong secrets come from: another loopback address.
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// SIPp bound to `ip` on loopback, bounded in time, writing its logs (the messages too) into
/// `dir`.
fn sipp_from(ip: Ipv4Addr, dir: &Path) -> Command {
    std::fs::create_dir_all(dir).expect("log dir");
    let mut command = Command::new("sipp");
    command
        .current_dir(dir)
        .args([
            "-i",
            &ip.to_string(),
            "-nostdin",
            "-trace_err",
            "-trace_msg",
        ])
        .args(["-timeout", "40s", "-timeout_error"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// The status lines and headers SIPp received, as its message log has them.
fn received(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .expect("log dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with("_messages.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

fn phone_registered(platform: &Platform, login: &str) -> bool {
    platform
        .get("/api/call-takers")
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["login"] == login)
        .unwrap_or_else(|| panic!("{login} listed"))["phone_registered"]
        == true
}

/// The defect: eight wrong REGISTERs for ota-13-1 from anywhere, and its own phone, with the
/// right password from its own address, was refused 503 for a quarter of an hour.
#[test]
fn wrong_registers_from_elsewhere_do_not_keep_the_phone_from_registering() {
    let platform = Platform::start();
    let phone = free_port();
    // The phone registers once: its address is known for ota-13-1 from then on.
    platform.register("ota-13-1", phone);

    let attacker = platform.dir.path().join("attacker");
    let attempts = 20;
    let status = sipp_from(ELSEWHERE, &attacker)
        .args(["-sf", &format!("{SIPP_DIR}/register-refused.xml")])
        .args(["-m", &attempts.to_string(), "-r", "20"])
        .args(["-s", "ota-13-1", "-au", "ota-13-1", "-ap", "wrong"])
        .args(["-p", &free_port().to_string()])
        .arg(format!("127.0.0.1:{}", platform.sip))
        .status()
        .expect("sipp runs");
    let seen = received(&attacker);
    assert!(
        status.success(),
        "a wrong answer was not refused: {status}\n{seen}"
    );
    // Each call: a challenge (401), then its wrong answer checked (401) or held back (503).
    let challenged = seen.matches("SIP/2.0 401 ").count();
    let held = seen.matches("SIP/2.0 503 ").count();
    assert_eq!(challenged + held, 2 * attempts, "{seen}");
    assert!(
        held >= 10,
        "{held} of {attempts} wrong answers held back\n{seen}"
    );
    assert_eq!(seen.matches("\nRetry-After: ").count(), held, "{seen}");
    assert!(seen.contains("too many failed attempts"), "{seen}");

    // The phone, right from where it is known, registers at once; nothing waits for a delay.
    platform.register("ota-13-1", phone);
    assert!(phone_registered(&platform, "ota-13-1"));
}

/// A console login of ota-13-1 (a call-taker: no one-time code) from `source` on loopback:
/// its status and Retry-After.
fn login_from(platform: &Platform, source: Ipv4Addr, password: &str) -> (u16, Option<u64>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(IpAddr::V4(source), 0))
            .expect("bind a loopback source");
        socket
            .connect(SocketAddr::from(([127, 0, 0, 1], platform.http)))
            .await
            .expect("connect")
            .into_std()
            .expect("a std stream")
    });
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let body = json!({ "login": "ota-13-1", "password": password }).to_string();
    let mut stream = stream;
    write!(
        stream,
        "POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        platform.http,
        body.len()
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let retry = answer.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().ok())?
    });
    (status, retry)
}

/// The same for the console: wrong passwords for ota-13-1 from one address are held back
/// there, and the right one from where ota-13-1 signed in before still opens the console.
#[test]
fn wrong_passwords_from_elsewhere_do_not_keep_the_owner_from_signing_in() {
    let platform = Platform::start();
    let home = Ipv4Addr::LOCALHOST;
    assert_eq!(login_from(&platform, home, "secourir").0, 200);

    let mut answers = Vec::new();
    for _ in 0..12 {
        answers.push(login_from(&platform, ELSEWHERE, "guess"));
    }
    assert!(
        answers
            .iter()
            .all(|(status, _)| [401, 429].contains(status)),
        "{answers:?}"
    );
    let held = answers.iter().filter(|(status, _)| *status == 429).count();
    assert!(held >= 6, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(status, retry)| (*status == 429) == retry.is_some()),
        "{answers:?}"
    );
    // Held back there, even the right password waits: guessing gains nothing from it.
    let (status, retry) = login_from(&platform, ELSEWHERE, "secourir");
    assert_eq!((status, retry.is_some()), (429, true));

    // From where the owner signed in before, the right password opens the console at once.
    assert_eq!(login_from(&platform, home, "secourir").0, 200);
}

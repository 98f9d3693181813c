//! Phones' REGISTER with digest: answers good once, SHA-256 first, throttled, never logged.

use std::net::UdpSocket;
use std::time::Duration;

use super::*;

/// The nonce of a digest challenge.
fn nonce_of(challenge: &str) -> String {
    challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no nonce in {challenge}"))
        .to_owned()
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

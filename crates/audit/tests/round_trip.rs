//! Events signed, read back and verified: the JSON they carry, the chain fields, the key's JWK.

mod support;

use data_encoding::BASE64URL_NOPAD;
use secourir_audit::*;
use serde_json::Value;
use support::{events, key, log};

fn part(line: &str, index: usize) -> Value {
    let bytes = BASE64URL_NOPAD
        .decode(line.split('.').nth(index).expect("three parts").as_bytes())
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

#[test]
fn every_event_reads_back_as_signed_and_the_log_verifies() {
    let events = events();
    let mut chain = Chain::new(key());
    let lines: Vec<String> = events.iter().map(|e| chain.sign(e)).collect();
    let public = key().public();
    let mut previous: Option<&String> = None;
    for (i, (line, event)) in lines.iter().zip(&events).enumerate() {
        let record = read_line(line.as_bytes(), &public).expect("signed by the key");
        assert_eq!(record.seq, i as u64 + 1);
        assert_eq!(&record.event, event);
        assert_eq!(record.prev_hash, previous.map(|p| line_hash(p.as_bytes())));
        previous = Some(line);
    }
    let report = verify(&lines, &public).expect("a whole log");
    assert_eq!(report.events, events.len() as u64);
    assert_eq!(report.by_type["CallStateChangeLogEvent"], 2);
    assert_eq!(report.by_type["AuthenticationLogEvent"], 1);
    assert_eq!(
        report.head.as_ref(),
        chain.head(),
        "the report's head is the chain's"
    );
    assert_eq!(
        report.first_timestamp.as_deref(),
        Some("2026-12-07T14:03:00.125+01:00")
    );
}

#[test]
fn the_payload_is_a_nena_log_event_with_the_chain_fields() {
    let lines = log(2);
    let first = part(&lines[0], 1);
    assert_eq!(first["logEventType"], "CallStartLogEvent");
    assert_eq!(first["timestamp"], "2026-12-07T14:03:00.125+01:00");
    assert_eq!(first["elementId"], "node-1.secourir.example.fr");
    assert_eq!(first["agencyId"], "sdis13.example.fr");
    assert_eq!(
        first["callId"],
        "urn:emergency:uid:callid:c-42:node-1.secourir.example.fr"
    );
    assert_eq!(first["direction"], "incoming");
    assert_eq!(first["seq"], 1);
    assert!(
        first.get("prevHash").is_none(),
        "the first event names none"
    );
    assert!(
        first.get("agencyAgentId").is_none(),
        "absent fields stay out"
    );
    let second = part(&lines[1], 1);
    assert_eq!(second["logEventType"], "RouteLogEvent");
    assert_eq!(second["ruleId"], "défaut");
    assert_eq!(second["seq"], 2);
    assert_eq!(
        second["prevHash"].as_str(),
        Some(line_hash(lines[0].as_bytes()).as_str())
    );
    // Two examples as signed, printed with `--nocapture`.
    for line in [&lines[0], &log(6)[5]] {
        let payload = BASE64URL_NOPAD
            .decode(line.split('.').nth(1).unwrap().as_bytes())
            .unwrap();
        println!("{}", String::from_utf8(payload).unwrap());
    }
}

#[test]
fn the_header_names_the_key_by_its_thumbprint() {
    let line = &log(1)[0];
    let header = part(line, 0);
    let public = key().public();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], public.thumbprint().as_str());
    assert_eq!(header["jwk"]["x"], public.x().as_str());
    let jwk: Value = serde_json::from_str(&public.jwk()).unwrap();
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(PublicKey::from_jwk(&public.jwk()).unwrap(), public);
    let reordered = format!(
        r#"{{"x":"{}","kty":"OKP","crv":"Ed25519","use":"sig"}}"#,
        public.x()
    );
    assert_eq!(PublicKey::from_jwk(&reordered).unwrap(), public);
    let with_secret = format!(
        r#"{{"kty":"OKP","crv":"Ed25519","x":"{}","d":"AAAA"}}"#,
        public.x()
    );
    assert!(PublicKey::from_jwk(&with_secret).is_err());
}

#[test]
fn a_resumed_chain_writes_what_an_unbroken_one_would() {
    let whole = log(8);
    let mut chain = Chain::resume(key(), whole[4].as_bytes()).expect("our last line");
    assert_eq!(chain.next_seq(), 6);
    let resumed: Vec<String> = events()
        .iter()
        .cycle()
        .skip(5)
        .take(3)
        .map(|e| chain.sign(e))
        .collect();
    // Ed25519 signatures are deterministic: the same events give the same lines.
    assert_eq!(resumed, whole[5..]);
    assert!(matches!(
        Chain::resume(support::other_key(), whole[4].as_bytes()),
        Err(LineError::OtherKey { .. })
    ));
    assert!(Chain::resume(key(), b"not a line").is_err());
}

#[test]
fn the_flattened_form_is_the_same_jws() {
    let line = &log(1)[0];
    let flat: Value = serde_json::from_str(&flattened(line).unwrap()).unwrap();
    let joined = format!(
        "{}.{}.{}",
        flat["protected"].as_str().unwrap(),
        flat["payload"].as_str().unwrap(),
        flat["signature"].as_str().unwrap()
    );
    assert_eq!(&joined, line);
    assert!(flattened("a.b").is_none());
}

#[test]
fn nena_types_are_told_from_the_platforms() {
    let events = events();
    let local: Vec<&str> = events
        .iter()
        .filter(|e| !e.body.is_nena_type())
        .map(LogEvent::log_event_type)
        .collect();
    assert_eq!(
        local,
        ["ConfigurationChangeLogEvent", "AuthenticationLogEvent"]
    );
}

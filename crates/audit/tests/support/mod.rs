//! Events and keys the tests share.

use chrono::{DateTime, FixedOffset};
use secourir_audit::*;

/// A fixed key, so that failures reproduce byte for byte.
pub fn key() -> SecretKey {
    SecretKey::from_bytes(&[7u8; 32])
}

/// Another fixed key.
pub fn other_key() -> SecretKey {
    SecretKey::from_bytes(&[9u8; 32])
}

fn at(second: u32) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(&format!("2026-12-07T14:03:{:02}.125+01:00", second % 60))
        .expect("a valid instant")
}

fn common(second: u32, call: bool) -> Common {
    let mut common = Common::new(
        at(second),
        "node-1.secourir.example.fr",
        "sdis13.example.fr",
    );
    if call {
        common.call_id = Some("urn:emergency:uid:callid:c-42:node-1.secourir.example.fr".into());
        common.incident_id = Some("urn:emergency:uid:incidentid:i-42:sdis13.example.fr".into());
        common.call_id_sip = Some("a84b4c76e66710@ingress".into());
    }
    common
}

/// The life of one call, then a queue change, a LoST query, a configuration change and a
/// sign-in: one event of each kind the platform writes most.
pub fn events() -> Vec<LogEvent> {
    let call = CallLog {
        direction: Direction::Incoming,
        medium: Medium::Audio,
        to: Some("18".into()),
        from: Some("sip:+33612345678@operator.example".into()),
        local_call_type: Some("emergency".into()),
    };
    let mut answered = common(5, true);
    answered.agency_agent_id = Some("ota-7@sdis13.example.fr".into());
    vec![
        LogEvent::new(common(0, true), Body::CallStart(call.clone())),
        LogEvent::new(
            common(1, true),
            Body::Route(Route {
                recipient_uri: "sip:cta-13@secourir.example.fr".into(),
                rule_id: "défaut".into(),
                policy_owner: "national".into(),
                policy_type: "OriginationRoutingPolicy".into(),
                policy_queue_name: None,
                policy_id: Some("national".into()),
                cause: None,
            }),
        ),
        LogEvent::new(
            common(1, true),
            Body::CallStateChange(CallStateChange {
                state: CallState::Queued,
                direction: Direction::Incoming,
                leg_call_id: None,
                target_id: Some("sip:cta-13@secourir.example.fr".into()),
                change_reason: None,
            }),
        ),
        LogEvent::new(
            answered.clone(),
            Body::CallStateChange(CallStateChange {
                state: CallState::Answered,
                direction: Direction::Incoming,
                leg_call_id: None,
                target_id: Some("ota-7@sdis13.example.fr".into()),
                change_reason: Some("picked".into()),
            }),
        ),
        LogEvent::new(
            answered,
            Body::RecCallStart(RecCallStart {
                direction: Direction::Incoming,
                medium: Medium::Audio,
            }),
        ),
        LogEvent::new(
            common(50, true),
            Body::RecCallEnd(RecCallEnd {
                direction: Direction::Incoming,
                medium: Medium::Audio,
                sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                bytes: 1_411_244,
                name: Some("recordings/c-42.wav".into()),
            }),
        ),
        LogEvent::new(common(50, true), Body::CallEnd(call)),
        LogEvent::new(
            common(51, false),
            Body::QueueStateChange(QueueStateChange {
                notification_contents: r#"{"queueUri":"sip:cta-13@secourir.example.fr","queueLength":0,"queueMaxLength":40,"state":"Active"}"#.into(),
                queue_id: "sip:cta-13@secourir.example.fr".into(),
                direction: Direction::Outgoing,
            }),
        ),
        LogEvent::new(
            common(52, false),
            Body::LostQuery(LostQuery {
                query_adapter: "<findService xmlns=\"urn:ietf:params:xml:ns:lost1\">…</findService>".into(),
                direction: Direction::Incoming,
                query_id: "q-1".into(),
                malformed_query: None,
            }),
        ),
        LogEvent::new(
            common(53, false),
            Body::ConfigurationChange(ConfigurationChange {
                change_type: ConfigurationChangeType::Changed,
                sha256: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae".into(),
                previous_sha256: Some(
                    "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9".into(),
                ),
                source: "sighup".into(),
                editor: None,
                summary: None,
            }),
        ),
        LogEvent::new(
            {
                let mut c = common(54, false);
                c.ip_address_port = Some("192.0.2.10:51234".into());
                c
            },
            Body::Authentication(Authentication {
                login: "ota-7".into(),
                outcome: AuthenticationOutcome::SignedIn,
                method: "password+totp".into(),
            }),
        ),
    ]
}

/// The lines of a log of `count` events (the call's events, over and over).
pub fn log(count: usize) -> Vec<String> {
    let mut chain = Chain::new(key());
    events()
        .iter()
        .cycle()
        .take(count)
        .map(|e| chain.sign(e))
        .collect()
}

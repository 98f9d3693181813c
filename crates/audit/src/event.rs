//! The log events themselves, as data: NENA i3 (NENA-STA-010.3, the Logging Service and its
//! OpenAPI `loggingservice.yaml`) names and JSON fields, plus the few the platform adds, each
//! marked so below. No I/O, no clock: the caller gives every event its timestamp.
//!
//! An event is the common part NENA calls `LogEvent` ([`Common`]) and the part of its type
//! ([`Body`], whose variant names the `logEventType`). In JSON both sit flat in one object:
//! `{"logEventType":"CallStartLogEvent","direction":"incoming",…,"timestamp":…,"elementId":…}`.

use chrono::{DateTime, FixedOffset, SecondsFormat};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One log event: what happened ([`Body`]) and where, when and to what ([`Common`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent {
    /// What happened; its variant is the `logEventType`.
    #[serde(flatten)]
    pub body: Body,
    /// The fields every NENA log event carries.
    #[serde(flatten)]
    pub common: Common,
}

impl LogEvent {
    /// An event from its two parts.
    pub fn new(common: Common, body: Body) -> LogEvent {
        LogEvent { body, common }
    }

    /// The `logEventType` this event is written with.
    pub fn log_event_type(&self) -> &'static str {
        self.body.log_event_type()
    }
}

/// The fields of NENA's base `LogEvent` object that the platform fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Common {
    /// When it happened, RFC 3339 with its offset (written to the millisecond).
    #[serde(
        serialize_with = "write_timestamp",
        deserialize_with = "read_timestamp"
    )]
    pub timestamp: DateTime<FixedOffset>,
    /// The element that logged it: the node, as a domain name (`node-1.secourir.example.fr`).
    pub element_id: String,
    /// The agency it happened for, as a domain name (`sdis13.example.fr`).
    pub agency_id: String,
    /// The call-taker who acted, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency_agent_id: Option<String>,
    /// The call-taker's position (console, site), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency_position_id: Option<String>,
    /// The call or text conversation, `urn:emergency:uid:callid:…` in NENA's form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The incident the call belongs to, `urn:emergency:uid:incidentid:…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// The SIP Call-ID of the leg concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id_sip: Option<String>,
    /// The peer's address and port (a sign-in's source, a LoST client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_port: Option<String>,
}

impl Common {
    /// The three fields NENA requires besides the type; every other one is absent.
    pub fn new(
        timestamp: DateTime<FixedOffset>,
        element_id: impl Into<String>,
        agency_id: impl Into<String>,
    ) -> Common {
        Common {
            timestamp,
            element_id: element_id.into(),
            agency_id: agency_id.into(),
            agency_agent_id: None,
            agency_position_id: None,
            call_id: None,
            incident_id: None,
            call_id_sip: None,
            ip_address_port: None,
        }
    }
}

// Milliseconds always: a fixed width keeps lines comparable by eye, and the core's clock is in ms.
fn write_timestamp<S: Serializer>(t: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, false))
}

fn read_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
    let text = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&text).map_err(serde::de::Error::custom)
}

/// What happened, one variant per `logEventType` the platform writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "logEventType")]
pub enum Body {
    /// A call or text conversation arrived (or an outgoing one left).
    #[serde(rename = "CallStartLogEvent")]
    CallStart(CallLog),
    /// A call or text conversation ended.
    #[serde(rename = "CallEndLogEvent")]
    CallEnd(CallLog),
    /// The policy rules chose where the call goes.
    #[serde(rename = "RouteLogEvent")]
    Route(Route),
    /// The call changed state: queued, offered, answered, put back, abandoned.
    #[serde(rename = "CallStateChangeLogEvent")]
    CallStateChange(CallStateChange),
    /// The call was transferred to another service (15, 17, a partner CTA).
    #[serde(rename = "CallTransferLogEvent")]
    CallTransfer(CallTransfer),
    /// Recording of the call's media (or its transcript) began.
    #[serde(rename = "RecCallStartLogEvent")]
    RecCallStart(RecCallStart),
    /// Recording ended: the recording (or transcript) is sealed with its SHA-256.
    #[serde(rename = "RecCallEndLogEvent")]
    RecCallEnd(RecCallEnd),
    /// One text message of a conversation, as NENA logs each.
    #[serde(rename = "MessageLogEvent")]
    Message(Message),
    /// A queue's state changed (QueueState notification sent or received).
    #[serde(rename = "QueueStateChangeLogEvent")]
    QueueStateChange(QueueStateChange),
    /// A service's state changed (ServiceState notification).
    #[serde(rename = "ServiceStateChangeLogEvent")]
    ServiceStateChange(ServiceStateChange),
    /// An element's state changed (ElementState notification).
    #[serde(rename = "ElementStateChangeLogEvent")]
    ElementStateChange(ElementStateChange),
    /// A call-taker became available or not.
    #[serde(rename = "AgentStateChangeLogEvent")]
    AgentStateChange(AgentStateChange),
    /// A LoST query was sent or received.
    #[serde(rename = "LostQueryLogEvent")]
    LostQuery(LostQuery),
    /// A LoST response was sent or received.
    #[serde(rename = "LostResponseLogEvent")]
    LostResponse(LostResponse),
    /// The configuration was loaded or changed (platform type, not in NENA's registry).
    #[serde(rename = "ConfigurationChangeLogEvent")]
    ConfigurationChange(ConfigurationChange),
    /// Someone signed in, failed to, was locked out or signed out (platform type, not in NENA's
    /// registry).
    #[serde(rename = "AuthenticationLogEvent")]
    Authentication(Authentication),
}

impl Body {
    /// The `logEventType` this body is written with.
    pub fn log_event_type(&self) -> &'static str {
        match self {
            Body::CallStart(_) => "CallStartLogEvent",
            Body::CallEnd(_) => "CallEndLogEvent",
            Body::Route(_) => "RouteLogEvent",
            Body::CallStateChange(_) => "CallStateChangeLogEvent",
            Body::CallTransfer(_) => "CallTransferLogEvent",
            Body::RecCallStart(_) => "RecCallStartLogEvent",
            Body::RecCallEnd(_) => "RecCallEndLogEvent",
            Body::Message(_) => "MessageLogEvent",
            Body::QueueStateChange(_) => "QueueStateChangeLogEvent",
            Body::ServiceStateChange(_) => "ServiceStateChangeLogEvent",
            Body::ElementStateChange(_) => "ElementStateChangeLogEvent",
            Body::AgentStateChange(_) => "AgentStateChangeLogEvent",
            Body::LostQuery(_) => "LostQueryLogEvent",
            Body::LostResponse(_) => "LostResponseLogEvent",
            Body::ConfigurationChange(_) => "ConfigurationChangeLogEvent",
            Body::Authentication(_) => "AuthenticationLogEvent",
        }
    }

    /// Whether NENA's LogEvent registry names this type: a NENA Logging Service refuses the
    /// others (460, Bad LogEvent), so an exporter to one must leave them out.
    pub fn is_nena_type(&self) -> bool {
        !matches!(self, Body::ConfigurationChange(_) | Body::Authentication(_))
    }
}

/// Which way a call, message or notification went, seen from the element that logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// Toward the platform.
    Incoming,
    /// From the platform.
    Outgoing,
}

/// How the caller reaches the platform (a platform field: NENA tells them apart by call type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Medium {
    /// A voice call.
    Audio,
    /// A text conversation: SIP MESSAGE, real-time text, SMS, the 114 relay.
    Text,
}

/// NENA's `CallLogEvent` fields, shared by the start and end of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallLog {
    /// Which way the call went.
    pub direction: Direction,
    /// Voice or text (platform field).
    pub medium: Medium,
    /// The number or service dialled (`18`, `112`, `urn:service:sos.fire`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The caller's identity as presented: personal data, kept here as in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The platform's own call type (`emergency`, `call-back`, `relay-114`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_call_type: Option<String>,
}

/// NENA's `RouteLogEvent`: the rule that decided and where it sent the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// Where the call goes: the queue's URI.
    pub recipient_uri: String,
    /// The rule that matched, by name.
    pub rule_id: String,
    /// Who owns the rule set (the agency, or the national plan).
    pub policy_owner: String,
    /// The kind of policy (`OriginationRoutingPolicy` for the national rules).
    pub policy_type: String,
    /// The queue the policy belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_queue_name: Option<String>,
    /// The rule set, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// Why the rules ran again (`no-answer`, `unreachable`, `full`), absent the first time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// The states of a call the platform logs (NENA leaves the values to a registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CallState {
    /// Entered a queue.
    Queued,
    /// Offered to a call-taker (ACD) or picked and ringing.
    Ringing,
    /// Answered by a call-taker.
    Answered,
    /// Put back in the queue (ring-no-answer, handed back).
    Requeued,
    /// Overflowed to a partner's queue.
    Overflowed,
    /// Handed to another service.
    Transferred,
    /// Ended before anyone answered: it goes to the call-back list.
    Abandoned,
}

/// NENA's `CallStateChangeLogEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallStateChange {
    /// The new state.
    pub state: CallState,
    /// Which way the call went.
    pub direction: Direction,
    /// The leg concerned, when the call has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg_call_id: Option<String>,
    /// Where it went: the queue's URI, the call-taker, the transfer target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Why (`ring-no-answer`, `picked`, `caller-hung-up`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_reason: Option<String>,
}

/// NENA's `CallTransferLogEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallTransfer {
    /// Where the call went, as a URI (`sip:15@…`).
    pub target: String,
    /// The SIP Call-ID of the leg toward the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_call_id_sip: Option<String>,
}

/// NENA's `RecCallStartLogEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecCallStart {
    /// Which way the call went.
    pub direction: Direction,
    /// What is recorded: the audio, or the text conversation's transcript (platform field).
    pub medium: Medium,
}

/// NENA's `RecCallEndLogEvent`, carrying the seal of what was recorded (platform fields): the
/// WAV of a voice call, the transcript of a text conversation, each with the SHA-256 the store
/// and the API show, so the audit trail vouches for the file it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecCallEnd {
    /// Which way the call went.
    pub direction: Direction,
    /// What was recorded.
    pub medium: Medium,
    /// SHA-256 of the recording or transcript, lowercase hex (as `secourir calls` prints it).
    pub sha256: String,
    /// Its length in bytes.
    pub bytes: u64,
    /// Its name in the data directory, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// NENA's `MessageLogEvent`: one message of a text conversation, its text included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// From the caller (incoming) or the call-taker (outgoing).
    pub direction: Direction,
    /// The text: personal data, kept here as in the transcript.
    pub text: String,
}

/// NENA's `QueueStateChangeLogEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStateChange {
    /// The notification's body as sent or received (an `emergency-QueueState` JSON).
    pub notification_contents: String,
    /// The queue, by URI.
    pub queue_id: String,
    /// Sent (outgoing) or received (incoming).
    pub direction: Direction,
}

/// NENA's `ServiceStateChangeLogEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStateChange {
    /// The new state (`Normal`, `Unstaffed`, `Down`, …).
    pub new_state: String,
    /// The new security posture, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_security_posture: Option<String>,
    /// The service, by its identifier (the CTA's service URN or id).
    pub affected_service_identifier: String,
    /// Sent (outgoing) or received (incoming).
    pub direction: Direction,
}

/// NENA's `ElementStateChangeLogEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElementStateChange {
    /// The notification's body (an ElementState JSON).
    pub notification_contents: String,
    /// The element whose state changed, when not the logging one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected_element_id: Option<String>,
    /// Sent (outgoing) or received (incoming).
    pub direction: Direction,
}

/// A call-taker's availability, NENA's two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentState {
    /// Takes calls.
    Available,
    /// Does not (paused, wrap-up, signed out).
    NotAvailable,
}

/// NENA's `AgentStateChangeLogEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStateChange {
    /// Available or not.
    pub primary_agent_state: AgentState,
    /// Why (`wrap-up`, `paused`, `ring-no-answer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_agent_state: Option<String>,
    /// The call-taker's phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

/// NENA's `LostQueryLogEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LostQuery {
    /// The query as it travelled (the `findService` XML).
    pub query_adapter: String,
    /// Received by the platform's ECRF (incoming) or sent by it (outgoing).
    pub direction: Direction,
    /// An identifier the matching response repeats.
    pub query_id: String,
    /// The query as received, when it could not be parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed_query: Option<String>,
}

/// NENA's `LostResponseLogEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LostResponse {
    /// The response as it travelled (the `findServiceResponse` or error XML).
    pub response_adapter: String,
    /// Sent by the platform's ECRF (outgoing) or received (incoming).
    pub direction: Direction,
    /// The outcome (`200`, `notFound`, `locationInvalid`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<String>,
    /// The query's identifier.
    pub response_id: String,
    /// The response as received, when it could not be parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed_response: Option<String>,
}

/// How the configuration changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConfigurationChangeType {
    /// Loaded at start.
    Loaded,
    /// Taken live (SIGHUP, the API, a plan).
    Changed,
    /// Offered and refused: the running configuration stays.
    Refused,
}

/// A configuration change (platform type; NENA's `PolicyChangeLogEvent` covers a policy store,
/// not a whole configuration). The configuration itself is named by its SHA-256, so the log
/// proves which file ran without holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationChange {
    /// Loaded, changed or refused.
    pub change_type: ConfigurationChangeType,
    /// SHA-256 of the configuration offered, lowercase hex.
    pub sha256: String,
    /// SHA-256 of the configuration it replaces, when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sha256: Option<String>,
    /// Where it came from (a path, `api`, `sighup`).
    pub source: String,
    /// Who made the change, when a person did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub editor: Option<String>,
    /// Why it was refused, or a summary of what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// How a sign-in ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthenticationOutcome {
    /// Signed in.
    SignedIn,
    /// Wrong secret or unknown login.
    Failed,
    /// Refused because the login or source is locked out.
    LockedOut,
    /// Signed out, or the session expired.
    SignedOut,
}

/// A sign-in to the console, the API or a phone's registration (platform type: NENA logs the
/// agent's availability, not the authentication). The source goes in `ipAddressPort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// The login tried, as typed (it may not exist).
    pub login: String,
    /// How it ended.
    pub outcome: AuthenticationOutcome,
    /// How (`password`, `password+totp`, `token`, `sip-digest`).
    pub method: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One body of every type, with only its required fields.
    fn every_body() -> Vec<Body> {
        let call = CallLog {
            direction: Direction::Incoming,
            medium: Medium::Text,
            to: None,
            from: None,
            local_call_type: None,
        };
        let s = String::new;
        vec![
            Body::CallStart(call.clone()),
            Body::CallEnd(call),
            Body::Route(Route {
                recipient_uri: s(),
                rule_id: s(),
                policy_owner: s(),
                policy_type: s(),
                policy_queue_name: None,
                policy_id: None,
                cause: None,
            }),
            Body::CallStateChange(CallStateChange {
                state: CallState::Abandoned,
                direction: Direction::Incoming,
                leg_call_id: None,
                target_id: None,
                change_reason: None,
            }),
            Body::CallTransfer(CallTransfer {
                target: s(),
                target_call_id_sip: None,
            }),
            Body::RecCallStart(RecCallStart {
                direction: Direction::Incoming,
                medium: Medium::Text,
            }),
            Body::RecCallEnd(RecCallEnd {
                direction: Direction::Incoming,
                medium: Medium::Text,
                sha256: s(),
                bytes: u64::MAX,
                name: None,
            }),
            Body::Message(Message {
                direction: Direction::Outgoing,
                text: s(),
            }),
            Body::QueueStateChange(QueueStateChange {
                notification_contents: s(),
                queue_id: s(),
                direction: Direction::Outgoing,
            }),
            Body::ServiceStateChange(ServiceStateChange {
                new_state: s(),
                new_security_posture: None,
                affected_service_identifier: s(),
                direction: Direction::Outgoing,
            }),
            Body::ElementStateChange(ElementStateChange {
                notification_contents: s(),
                affected_element_id: None,
                direction: Direction::Outgoing,
            }),
            Body::AgentStateChange(AgentStateChange {
                primary_agent_state: AgentState::NotAvailable,
                secondary_agent_state: None,
                device_id: None,
            }),
            Body::LostQuery(LostQuery {
                query_adapter: s(),
                direction: Direction::Incoming,
                query_id: s(),
                malformed_query: None,
            }),
            Body::LostResponse(LostResponse {
                response_adapter: s(),
                direction: Direction::Outgoing,
                response_status: None,
                response_id: s(),
                malformed_response: None,
            }),
            Body::ConfigurationChange(ConfigurationChange {
                change_type: ConfigurationChangeType::Refused,
                sha256: s(),
                previous_sha256: None,
                source: s(),
                editor: None,
                summary: None,
            }),
            Body::Authentication(Authentication {
                login: s(),
                outcome: AuthenticationOutcome::LockedOut,
                method: s(),
            }),
        ]
    }

    #[test]
    fn every_type_is_written_with_its_name_and_reads_back() {
        let timestamp = DateTime::parse_from_rfc3339("2026-03-29T01:59:59.999+01:00").unwrap();
        let bodies = every_body();
        let mut names: Vec<&str> = bodies.iter().map(Body::log_event_type).collect();
        for body in bodies {
            let event = LogEvent::new(Common::new(timestamp, "e", "a"), body);
            let json: serde_json::Value = serde_json::to_value(&event).unwrap();
            assert_eq!(json["logEventType"], event.log_event_type());
            assert_eq!(json["timestamp"], "2026-03-29T01:59:59.999+01:00");
            let back: LogEvent = serde_json::from_value(json).unwrap();
            assert_eq!(back, event);
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 16, "one name per type");
    }
}

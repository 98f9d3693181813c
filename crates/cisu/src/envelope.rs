//! The EDXL-DE envelope and its RC-DE header around a message, as the hub routes them: it reads
//! the recipient in `descriptor.explicitAddress` and the queue (`.message`, `.ack`, `.info`) from
//! `distributionKind`, and checks that `distributionID` starts with `senderID_`.

use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use serde_json::Value;

use crate::facts::{CaseFacts, FactsError};
use crate::time::hub_timestamp;

/// The address scheme of the hub's clients.
pub const ADDRESS_SCHEME: &str = "hubex";
/// The language every message is written in.
pub const LANGUAGE: &str = "fr-FR";

/// Who sends and who receives, by their hub client ids (`fr.fire.secourir.sdis13`, `fr.health.samu13`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The platform's client id: `senderID` and the AMQP routing key.
    pub sender_id: String,
    /// The partner's client id.
    pub recipient_id: String,
}

/// What a message is to its recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Kind {
    /// A first send.
    Report,
    /// A later send about the same case.
    Update,
    /// Withdraws an earlier message.
    Cancel,
    /// An acknowledgement (RC-REF), routed to the sender's `.ack` queue.
    Ack,
    /// An error (RS-ERROR), routed to the sender's `.info` queue.
    Error,
}

/// Whether a message is real or an exercise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Status {
    /// A real case.
    Actual,
    /// An exercise: partners must not act on it.
    Exercise,
}

/// One send: the message's own id part, times and nature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendParams {
    /// The part after `senderID_` in `distributionID`; unique per message (`{call}-{n}`).
    pub local_id: String,
    /// When the message is sent.
    pub sent_at: DateTime<FixedOffset>,
    /// When the message is no longer worth delivering.
    pub expires_at: DateTime<FixedOffset>,
    /// Report, Update, …
    pub kind: Kind,
    /// Actual or Exercise.
    pub status: Status,
}

/// A message ready for the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// `{senderID}_{local_id}`: the id acknowledgements and errors refer to.
    pub distribution_id: String,
    /// When the message is no longer worth delivering.
    pub expires_at: DateTime<FixedOffset>,
    /// The JSON document.
    pub body: Vec<u8>,
}

/// The body holds the caller's number and position: only its id and size are printed.
impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("distribution_id", &self.distribution_id)
            .field("expires_at", &self.expires_at)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The `createCase` of a call in its envelope (Report for the first send, Update after).
pub fn create_case_message(
    route: &Route,
    params: &SendParams,
    facts: &CaseFacts,
    case_shared_at: &DateTime<FixedOffset>,
) -> Result<Outgoing, FactsError> {
    let case = crate::create_case(facts, case_shared_at)?;
    wrap(route, params, "createCase", case)
}

/// An RC-REF acknowledging a partner's message, addressed back to its sender.
pub fn reference_message(
    route: &Route,
    params: &SendParams,
    acknowledged_distribution_id: &str,
) -> Result<Outgoing, FactsError> {
    check_address(
        "acknowledged_distribution_id",
        acknowledged_distribution_id,
        true,
    )?;
    let reference = serde_json::json!({ "distributionID": acknowledged_distribution_id });
    wrap(
        route,
        &SendParams {
            kind: Kind::Ack,
            ..params.clone()
        },
        "reference",
        reference,
    )
}

/// Puts `content` under `message.{key}` beside the RC-DE header, in the EDXL-DE envelope.
pub fn wrap(
    route: &Route,
    params: &SendParams,
    key: &str,
    content: Value,
) -> Result<Outgoing, FactsError> {
    // The hub takes what precedes the first '_' of distributionID as the sender.
    check_address("sender_id", &route.sender_id, false)?;
    check_address("recipient_id", &route.recipient_id, true)?;
    check_address("local_id", &params.local_id, true)?;
    let time = |field, at| hub_timestamp(at).map_err(|source| FactsError::Time { field, source });
    let sent_at = time("sent_at", &params.sent_at)?;
    let expires_at = time("expires_at", &params.expires_at)?;
    if params.expires_at <= params.sent_at {
        return Err(FactsError::Malformed {
            field: "expires_at",
            reason: "not after sent_at",
        });
    }
    let distribution_id = format!("{}_{}", route.sender_id, params.local_id);
    let sender = Party {
        name: &route.sender_id,
        uri: format!("{ADDRESS_SCHEME}:{}", route.sender_id),
    };
    let recipient = Party {
        name: &route.recipient_id,
        uri: format!("{ADDRESS_SCHEME}:{}", route.recipient_id),
    };
    let header = Header {
        message_id: &distribution_id,
        sender,
        sent_at: &sent_at,
        kind: params.kind,
        status: params.status,
        recipient: vec![recipient],
    };
    // A struct of strings and a JSON value always serializes to an object.
    let mut message = serde_json::to_value(header).expect("RC-DE header serializes");
    message
        .as_object_mut()
        .expect("RC-DE header is an object")
        .insert(key.to_owned(), content);
    let envelope = Envelope {
        distribution_id: &distribution_id,
        sender_id: &route.sender_id,
        date_time_sent: &sent_at,
        date_time_expires: &expires_at,
        distribution_status: params.status,
        distribution_kind: params.kind,
        descriptor: Descriptor {
            language: LANGUAGE,
            explicit_address: Address {
                explicit_address_scheme: ADDRESS_SCHEME,
                explicit_address_value: &route.recipient_id,
            },
        },
        content: vec![ContentObject {
            json_content: JsonContent {
                embedded_json_content: Embedded { message },
            },
        }],
    };
    let body = serde_json::to_vec(&envelope).expect("EDXL-DE envelope serializes");
    Ok(Outgoing {
        distribution_id,
        expires_at: params.expires_at,
        body,
    })
}

/// Client ids and local ids are what the hub's own id pattern `[\w._-]+` reads back.
fn check_address(field: &'static str, value: &str, underscore: bool) -> Result<(), FactsError> {
    if value.is_empty() {
        return Err(FactsError::Empty { field });
    }
    if value.len() > 255 {
        return Err(FactsError::TooLong { field, max: 255 });
    }
    let ok = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || (underscore && b == b'_'));
    if ok {
        Ok(())
    } else {
        Err(FactsError::Malformed {
            field,
            reason: "only letters, digits, '.', '-' (and '_' after the sender) may appear",
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(rename = "distributionID")]
    distribution_id: &'a str,
    #[serde(rename = "senderID")]
    sender_id: &'a str,
    date_time_sent: &'a str,
    date_time_expires: &'a str,
    distribution_status: Status,
    distribution_kind: Kind,
    descriptor: Descriptor<'a>,
    content: Vec<ContentObject>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    language: &'static str,
    explicit_address: Address<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Address<'a> {
    explicit_address_scheme: &'static str,
    explicit_address_value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContentObject {
    json_content: JsonContent,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonContent {
    embedded_json_content: Embedded,
}

#[derive(Serialize)]
struct Embedded {
    message: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Header<'a> {
    message_id: &'a str,
    sender: Party<'a>,
    sent_at: &'a str,
    kind: Kind,
    status: Status,
    recipient: Vec<Party<'a>>,
}

#[derive(Serialize)]
struct Party<'a> {
    name: &'a str,
    #[serde(rename = "URI")]
    uri: String,
}

/// The route and send parameters the tests of this crate use.
#[cfg(test)]
pub(crate) fn example_send(kind: Kind) -> (Route, SendParams) {
    let sent_at = DateTime::parse_from_rfc3339("2026-07-14T12:03:00+02:00").unwrap();
    let route = Route {
        sender_id: "fr.fire.secourir.sdis13".into(),
        recipient_id: "fr.health.samu13".into(),
    };
    let params = SendParams {
        local_id: "20260714-000042-1".into(),
        sent_at,
        expires_at: sent_at + chrono::TimeDelta::hours(1),
        kind,
        status: Status::Actual,
    };
    (route, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::marseille;

    fn parsed(outgoing: &Outgoing) -> Value {
        serde_json::from_slice(&outgoing.body).unwrap()
    }

    #[test]
    fn the_envelope_addresses_the_partner_through_the_hub() {
        let (route, params) = example_send(Kind::Report);
        let out = create_case_message(&route, &params, &marseille(), &params.sent_at).unwrap();
        assert_eq!(
            out.distribution_id,
            "fr.fire.secourir.sdis13_20260714-000042-1"
        );
        let doc = parsed(&out);
        assert_eq!(doc["senderID"], "fr.fire.secourir.sdis13");
        assert_eq!(doc["distributionID"], out.distribution_id.as_str());
        assert_eq!(doc["dateTimeSent"], "2026-07-14T12:03:00+02:00");
        assert_eq!(doc["dateTimeExpires"], "2026-07-14T13:03:00+02:00");
        assert_eq!(doc["distributionStatus"], "Actual");
        assert_eq!(doc["distributionKind"], "Report");
        assert_eq!(
            doc["descriptor"]["explicitAddress"]["explicitAddressScheme"],
            "hubex"
        );
        assert_eq!(
            doc["descriptor"]["explicitAddress"]["explicitAddressValue"],
            "fr.health.samu13"
        );
        let message = &doc["content"][0]["jsonContent"]["embeddedJsonContent"]["message"];
        assert_eq!(message["messageId"], out.distribution_id.as_str());
        assert_eq!(message["sender"]["URI"], "hubex:fr.fire.secourir.sdis13");
        assert_eq!(message["recipient"][0]["name"], "fr.health.samu13");
        assert_eq!(message["kind"], "Report");
        assert_eq!(
            message["createCase"]["caseId"],
            "fr.fire.sdis13.20260714-000042"
        );
    }

    #[test]
    fn an_update_says_so_in_both_places() {
        let (route, params) = example_send(Kind::Update);
        let out = create_case_message(&route, &params, &marseille(), &params.sent_at).unwrap();
        let doc = parsed(&out);
        assert_eq!(doc["distributionKind"], "Update");
        assert_eq!(
            doc["content"][0]["jsonContent"]["embeddedJsonContent"]["message"]["kind"],
            "Update"
        );
    }

    #[test]
    fn an_acknowledgement_names_the_message_it_acknowledges() {
        let (route, params) = example_send(Kind::Report);
        let out = reference_message(&route, &params, "fr.health.samu13_abc-1").unwrap();
        let doc = parsed(&out);
        assert_eq!(doc["distributionKind"], "Ack");
        let message = &doc["content"][0]["jsonContent"]["embeddedJsonContent"]["message"];
        assert_eq!(
            message["reference"]["distributionID"],
            "fr.health.samu13_abc-1"
        );
    }

    #[test]
    fn a_sender_with_an_underscore_would_be_misread_by_the_hub() {
        let (mut route, params) = example_send(Kind::Report);
        route.sender_id = "fr.fire.sdis_13".into();
        let refused = create_case_message(&route, &params, &marseille(), &params.sent_at);
        assert!(matches!(
            refused,
            Err(FactsError::Malformed {
                field: "sender_id",
                ..
            })
        ));
    }

    #[test]
    fn a_message_must_expire_after_it_is_sent() {
        let (route, mut params) = example_send(Kind::Report);
        params.expires_at = params.sent_at;
        let refused = create_case_message(&route, &params, &marseille(), &params.sent_at);
        assert!(matches!(
            refused,
            Err(FactsError::Malformed {
                field: "expires_at",
                ..
            })
        ));
    }

    #[test]
    fn debug_prints_no_body() {
        let (route, params) = example_send(Kind::Report);
        let out = create_case_message(&route, &params, &marseille(), &params.sent_at).unwrap();
        let printed = format!("{out:?}");
        assert!(!printed.contains("+336"), "{printed}");
        assert!(printed.contains("body_len"), "{printed}");
    }
}

//! What arrives from the hub: a partner's acknowledgement (RC-REF, on `{id}.ack`), the hub's or a
//! partner's error (RS-ERROR, on `{id}.info`) and a partner's case (createCase, on `{id}.message`).
//! Bytes from the network are untrusted: size bounded first, then parsed into what the platform
//! shows; anything else is an error that says where, never a panic.

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::MASK;
use crate::envelope::Kind;

/// The largest message read; the hub's cases are a few kilobytes, attachments travel as links.
pub const MESSAGE_BYTES_MAX: usize = 1 << 20;

/// A message received, its envelope's facts and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Its `distributionID`, to acknowledge it.
    pub distribution_id: String,
    /// Its `senderID`, to address the acknowledgement.
    pub sender_id: String,
    /// Its `distributionKind`.
    pub kind: Kind,
    /// Its `distributionStatus` as written (`Actual`, `Exercise`).
    pub status: String,
    /// What it says.
    pub message: Incoming,
    /// The document as it came, for the record (it parsed as JSON).
    pub body: String,
}

/// What a received message says.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A partner acknowledges (or refuses) one of our messages.
    Reference(Reference),
    /// The hub or a partner could not take one of our messages.
    Error(HubError),
    /// A partner hands a case over to us.
    CreateCase(PartnerCase),
    /// A model this platform does not act on, by its keys: shown, not dropped.
    Other {
        /// The keys of `message` beside the RC-DE header.
        keys: Vec<String>,
    },
}

/// An RC-REF.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    /// The `distributionID` acknowledged.
    #[serde(rename = "distributionID")]
    pub distribution_id: String,
    /// The partner refused the message it acknowledges.
    #[serde(default)]
    pub refused: bool,
    /// The error message sent about it, if refused.
    #[serde(rename = "errorDistributionID")]
    pub error_distribution_id: Option<String>,
    /// How far the partner's system got (`RECU`, `INTEGRE`, `CONSULTE`, …).
    pub step: Option<String>,
}

/// An RS-ERROR.
#[derive(Debug, Clone, PartialEq)]
pub struct HubError {
    /// The `distributionID` of the message in error.
    pub referenced_distribution_id: String,
    /// The hub's numeric code.
    pub status_code: i64,
    /// The code's name (`UNROUTABLE_MESSAGE`, `INVALID_MESSAGE`, …).
    pub status: String,
    /// The hub's words on the cause.
    pub cause: String,
}

/// A partner's createCase, as much as the call-taker needs to see.
#[derive(Clone, PartialEq)]
pub struct PartnerCase {
    /// The shared case id.
    pub case_id: String,
    /// What happens: code and label.
    pub whats_happen: (String, String),
    /// The place's summary, commune and point as the partner gave them.
    pub location: PartnerLocation,
    /// The free-text notes of the first alert, and the case's own free texts.
    pub notes: Vec<String>,
}

/// Where a partner's case is.
#[derive(Clone, PartialEq, Default)]
pub struct PartnerLocation {
    /// `locLabel`.
    pub label: Option<String>,
    /// `city.name`.
    pub commune: Option<String>,
    /// `city.inseeCode`.
    pub insee: Option<String>,
    /// Latitude and longitude, WGS 84.
    pub point: Option<(f64, f64)>,
    /// `freetext`: access details the schema asks receivers to show.
    pub freetext: Option<String>,
}

/// Why received bytes are not a message this crate reads.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// More bytes than any hub message needs.
    #[error("message of {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON, or not the shape of an EDXL-DE envelope or of the model it announces.
    #[error("not a hub message: {0}")]
    Json(#[from] serde_json::Error),
    /// A JSON envelope without content.
    #[error("envelope {distribution_id} has no content")]
    NoContent {
        /// The envelope's id.
        distribution_id: String,
    },
}

/// Reads a message received from the hub.
pub fn parse(bytes: &[u8]) -> Result<Received, ParseError> {
    if bytes.len() > MESSAGE_BYTES_MAX {
        return Err(ParseError::TooLarge {
            len: bytes.len(),
            max: MESSAGE_BYTES_MAX,
        });
    }
    let envelope: WireEnvelope = serde_json::from_slice(bytes)?;
    let Some(content) = envelope.content.into_iter().next() else {
        return Err(ParseError::NoContent {
            distribution_id: envelope.distribution_id,
        });
    };
    let message = read_message(content.json_content.embedded_json_content.message)?;
    Ok(Received {
        distribution_id: envelope.distribution_id,
        sender_id: envelope.sender_id,
        kind: envelope.distribution_kind,
        status: envelope.distribution_status,
        message,
        body: String::from_utf8_lossy(bytes).into_owned(),
    })
}

fn read_message(mut message: Map<String, Value>) -> Result<Incoming, serde_json::Error> {
    if let Some(reference) = message.remove("reference") {
        return Ok(Incoming::Reference(serde_json::from_value(reference)?));
    }
    if let Some(error) = message.remove("error") {
        let error: WireError = serde_json::from_value(error)?;
        let code = &error.error_code.status_code;
        return Ok(Incoming::Error(HubError {
            referenced_distribution_id: error.referenced_distribution_id,
            // The schema types the code as a number; the hub writes integers.
            status_code: code
                .as_i64()
                .unwrap_or_else(|| code.as_f64().unwrap_or(0.0) as i64),
            status: error.error_code.status_string,
            cause: error.error_cause,
        }));
    }
    if let Some(case) = message.remove("createCase") {
        return Ok(Incoming::CreateCase(partner_case(serde_json::from_value(
            case,
        )?)));
    }
    const HEADER: [&str; 6] = [
        "messageId",
        "sender",
        "sentAt",
        "kind",
        "status",
        "recipient",
    ];
    let keys = message
        .keys()
        .filter(|key| !HEADER.contains(&key.as_str()))
        .cloned()
        .collect();
    Ok(Incoming::Other { keys })
}

fn partner_case(case: WireCase) -> PartnerCase {
    let location = case.location;
    let city = location.city.unwrap_or_default();
    let point = location
        .geometry
        .and_then(|g| g.point)
        .map(|p| (p.coord.lat, p.coord.lon));
    let mut notes: Vec<String> = case
        .initial_alert
        .map(|alert| {
            alert
                .notes
                .into_iter()
                .filter_map(|note| note.freetext)
                .collect()
        })
        .unwrap_or_default();
    notes.extend(case.freetext);
    PartnerCase {
        case_id: case.case_id,
        whats_happen: (
            case.qualification.whats_happen.code,
            case.qualification.whats_happen.label,
        ),
        location: PartnerLocation {
            label: location.loc_label,
            commune: city.name,
            insee: city.insee_code,
            point,
            freetext: location.freetext,
        },
        notes,
    }
}

/// The place and notes may name a victim or a home: masked in logs.
impl fmt::Debug for PartnerCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartnerCase")
            .field("case_id", &self.case_id)
            .field("whats_happen", &self.whats_happen)
            .field("location", &MASK)
            .field("notes", &self.notes.len())
            .finish()
    }
}

/// Masked like the case it belongs to.
impl fmt::Debug for PartnerLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEnvelope {
    #[serde(rename = "distributionID")]
    distribution_id: String,
    #[serde(rename = "senderID")]
    sender_id: String,
    distribution_status: String,
    distribution_kind: Kind,
    content: Vec<WireContent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireContent {
    json_content: WireJsonContent,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireJsonContent {
    embedded_json_content: WireEmbedded,
}

#[derive(Deserialize)]
struct WireEmbedded {
    message: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireError {
    error_code: WireErrorCode,
    error_cause: String,
    #[serde(rename = "referencedDistributionID")]
    referenced_distribution_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireErrorCode {
    status_code: serde_json::Number,
    status_string: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCase {
    case_id: String,
    qualification: WireQualification,
    location: WireLocation,
    initial_alert: Option<WireAlert>,
    #[serde(default)]
    freetext: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireQualification {
    whats_happen: WireCodeLabel,
}

#[derive(Deserialize)]
struct WireCodeLabel {
    code: String,
    label: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLocation {
    loc_label: Option<String>,
    city: Option<WireCity>,
    geometry: Option<WireGeometry>,
    freetext: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireCity {
    name: Option<String>,
    insee_code: Option<String>,
}

#[derive(Deserialize)]
struct WireGeometry {
    point: Option<WirePoint>,
}

#[derive(Deserialize)]
struct WirePoint {
    coord: WireCoord,
}

#[derive(Deserialize)]
struct WireCoord {
    lat: f64,
    lon: f64,
}

#[derive(Deserialize)]
struct WireAlert {
    #[serde(default)]
    notes: Vec<WireNote>,
}

#[derive(Deserialize)]
struct WireNote {
    freetext: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{create_case_message, example_send, reference_message, wrap};
    use crate::facts::marseille;

    #[test]
    fn an_acknowledgement_names_our_message() {
        let (route, params) = example_send(Kind::Report);
        let ack = reference_message(&route, &params, "fr.fire.secourir.sdis13_7-1").unwrap();
        let received = parse(&ack.body).unwrap();
        assert_eq!(received.kind, Kind::Ack);
        assert_eq!(received.sender_id, "fr.fire.secourir.sdis13");
        let Incoming::Reference(reference) = received.message else {
            panic!("{received:?}")
        };
        assert_eq!(reference.distribution_id, "fr.fire.secourir.sdis13_7-1");
        assert!(!reference.refused);
    }

    #[test]
    fn an_error_names_the_message_its_code_and_cause() {
        let (route, params) = example_send(Kind::Error);
        let error = serde_json::json!({
            "errorCode": { "statusCode": 301, "statusString": "UNROUTABLE_MESSAGE" },
            "errorCause": "unable do deliver message to fr.health.samu99.message",
            "referencedDistributionID": "fr.fire.secourir.sdis13_7-1"
        });
        let out = wrap(&route, &params, "error", error).unwrap();
        let received = parse(&out.body).unwrap();
        let Incoming::Error(error) = received.message else {
            panic!("{received:?}")
        };
        assert_eq!(
            error.referenced_distribution_id,
            "fr.fire.secourir.sdis13_7-1"
        );
        assert_eq!(error.status_code, 301);
        assert_eq!(error.status, "UNROUTABLE_MESSAGE");
        assert!(error.cause.contains("samu99"));
    }

    #[test]
    fn a_partners_case_shows_what_where_and_notes() {
        let (route, params) = example_send(Kind::Report);
        let out = create_case_message(&route, &params, &marseille(), &params.sent_at).unwrap();
        let received = parse(&out.body).unwrap();
        let Incoming::CreateCase(case) = received.message else {
            panic!("{received:?}")
        };
        assert_eq!(case.case_id, "fr.fire.sdis13.20260714-000042");
        assert_eq!(case.whats_happen.0, "C01.01.01");
        assert_eq!(case.location.insee.as_deref(), Some("13055"));
        assert_eq!(case.location.point, Some((43.2965, 5.3698)));
        assert_eq!(case.notes, vec![marseille().note.unwrap()]);
        assert!(!format!("{case:?}").contains("Rome"));
    }

    #[test]
    fn another_model_is_named_not_dropped() {
        let (route, params) = example_send(Kind::Report);
        let out = wrap(&route, &params, "geoPositionsUpdate", serde_json::json!({})).unwrap();
        let received = parse(&out.body).unwrap();
        assert_eq!(
            received.message,
            Incoming::Other {
                keys: vec!["geoPositionsUpdate".into()]
            }
        );
    }

    #[test]
    fn bad_bytes_are_errors_that_say_why() {
        let not_json = parse(b"{\"distributionID\": ").unwrap_err();
        assert!(matches!(not_json, ParseError::Json(_)), "{not_json}");
        let missing =
            parse(br#"{"distributionID":"a_1","distributionKind":"Report"}"#).unwrap_err();
        assert!(missing.to_string().contains("senderID"), "{missing}");
        let empty = parse(
            br#"{"distributionID":"a_1","senderID":"a","distributionStatus":"Actual",
                 "distributionKind":"Report","content":[]}"#,
        )
        .unwrap_err();
        assert!(matches!(empty, ParseError::NoContent { .. }), "{empty}");
        let kind = parse(
            br#"{"distributionID":"a_1","senderID":"a","distributionStatus":"Actual",
                 "distributionKind":"Shout","content":[]}"#,
        )
        .unwrap_err();
        assert!(kind.to_string().contains("Shout"), "{kind}");
        let huge = vec![b' '; MESSAGE_BYTES_MAX + 1];
        assert!(matches!(parse(&huge), Err(ParseError::TooLarge { .. })));
        let bad_ack = parse(
            br#"{"distributionID":"a_1","senderID":"a","distributionStatus":"Actual",
                 "distributionKind":"Ack","content":[{"jsonContent":{"embeddedJsonContent":
                 {"message":{"reference":{"distributionID":7}}}}}]}"#,
        )
        .unwrap_err();
        assert!(bad_ack.to_string().contains("invalid type"), "{bad_ack}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_are_refused_without_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)
        ) {
            // An envelope needs its five named fields: noise never spells them.
            proptest::prop_assert!(parse(&bytes).is_err());
        }

        #[test]
        fn truncated_messages_never_panic(cut in 0usize..4_000) {
            let (route, params) = example_send(Kind::Report);
            let out = create_case_message(&route, &params, &marseille(), &params.sent_at).unwrap();
            let cut = cut.min(out.body.len());
            proptest::prop_assert_eq!(parse(&out.body[..cut]).is_ok(), cut == out.body.len());
        }
    }
}

//! One event as one JWS in compact serialization (RFC 7515 §7.1), the line the log holds:
//! `BASE64URL(header).BASE64URL(payload).BASE64URL(signature)`.
//!
//! The protected header is `{"alg":"EdDSA","kid":…,"jwk":{"crv":"Ed25519","kty":"OKP","x":…}}`:
//! `kid` is the key's RFC 7638 thumbprint; `jwk` carries the public key itself, as NENA's `x5c`
//! would carry a certificate. The verifier never accepts a line because of that `jwk`: it only
//! uses it to tell a line signed by another key (the wrong key given, a key replaced) from a line
//! changed by hand, whose signature no key verifies.
//!
//! The payload is the NENA event with two chain fields added: `seq` (1 for a log's first event,
//! then one more each) and `prevHash` (absent on the first event), the base64url SHA-256 of the
//! previous line as written, without its newline.

use std::borrow::Cow;

use data_encoding::BASE64URL_NOPAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::LogEvent;
use crate::key::{PublicKey, SecretKey};

/// The JWS `alg` of every event: EdDSA (RFC 8037), the curve named by the key's `crv`.
pub const ALG: &str = "EdDSA";

/// One event read back from its line, its signature checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its place in the chain, from 1.
    pub seq: u64,
    /// `prevHash`: the hash of the line before it, absent for the first.
    pub prev_hash: Option<String>,
    /// The event.
    pub event: LogEvent,
}

/// Why a line is not an event signed by the key given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// It is not a compact JWS of this log's form.
    #[error("not a JWS: {0}")]
    NotJws(&'static str),
    /// No key verifies its signature: it was changed after signing.
    #[error("the signature does not match the line")]
    BadSignature,
    /// Another key signed it.
    #[error("signed by another key (kid {kid})")]
    OtherKey {
        /// The thumbprint of the key that did.
        kid: String,
    },
    /// Its payload is not an event of this log (signed, so written by a holder of the key).
    #[error("payload: {0}")]
    BadPayload(String),
}

/// The base64url protected header of every event `key` signs.
pub(crate) fn header_for(key: &PublicKey) -> String {
    let json = format!(
        r#"{{"alg":"{ALG}","kid":"{}","jwk":{}}}"#,
        key.thumbprint(),
        key.jwk()
    );
    BASE64URL_NOPAD.encode(json.as_bytes())
}

/// `prevHash` of the event after `line`: base64url SHA-256 of the line as written.
pub fn line_hash(line: &[u8]) -> String {
    BASE64URL_NOPAD.encode(&Sha256::digest(line))
}

#[derive(Serialize)]
struct PayloadOut<'a> {
    #[serde(flatten)]
    event: &'a LogEvent,
    seq: u64,
    #[serde(rename = "prevHash", skip_serializing_if = "Option::is_none")]
    prev_hash: Option<&'a str>,
}

/// The chain fields and what the report counts; read from every line without asking the event
/// to be of a type this version knows, so a newer log still verifies.
#[derive(Deserialize)]
pub(crate) struct Links<'a> {
    pub seq: u64,
    #[serde(rename = "prevHash", borrow, default)]
    pub prev_hash: Option<Cow<'a, str>>,
    #[serde(rename = "logEventType", borrow)]
    pub log_event_type: Cow<'a, str>,
    #[serde(borrow)]
    pub timestamp: Cow<'a, str>,
}

#[derive(Deserialize)]
struct PayloadIn {
    #[serde(flatten)]
    event: LogEvent,
    seq: u64,
    #[serde(rename = "prevHash", default)]
    prev_hash: Option<String>,
}

/// The compact JWS of `event` at `seq` after `prev_hash`, signed by `key` under `header`.
pub(crate) fn sign(
    key: &SecretKey,
    header: &str,
    event: &LogEvent,
    seq: u64,
    prev_hash: Option<&str>,
) -> String {
    let payload = serde_json::to_vec(&PayloadOut {
        event,
        seq,
        prev_hash,
    })
    // The event types hold strings, numbers and enums only, no map with non-string keys: the
    // serializer has nothing to refuse.
    .expect("a LogEvent always serializes");
    let mut line = String::with_capacity(header.len() + payload.len() * 4 / 3 + 92);
    line.push_str(header);
    line.push('.');
    BASE64URL_NOPAD.encode_append(&payload, &mut line);
    let signature = key.sign(line.as_bytes());
    line.push('.');
    BASE64URL_NOPAD.encode_append(&signature, &mut line);
    line
}

#[derive(Deserialize)]
struct HeaderIn {
    alg: String,
    #[serde(default)]
    jwk: Option<serde_json::Value>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The decoded payload of `line` once `key`'s signature on it is checked. `header` is the one
/// `key` writes: a line carrying exactly it skips decoding its header.
pub(crate) fn open(line: &[u8], key: &PublicKey, header: &str) -> Result<Vec<u8>, LineError> {
    let mut parts = line.splitn(3, |&b| b == b'.');
    let (Some(header_part), Some(payload_part), Some(signature_part)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(LineError::NotJws("not three parts separated by dots"));
    };
    let signature: [u8; 64] = BASE64URL_NOPAD
        .decode(signature_part)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or(LineError::NotJws(
            "the signature is not 64 bytes in base64url",
        ))?;
    let signing_input = &line[..header_part.len() + 1 + payload_part.len()];
    if !key.verifies(signing_input, &signature) {
        return Err(other_key(header_part, signing_input, &signature, key));
    }
    if header_part != header.as_bytes() {
        // Signed by our key with another header: a later version's, say. Still a JWS rule:
        // an `alg` other than ours, or extensions we must understand, are refused.
        let decoded = BASE64URL_NOPAD
            .decode(header_part)
            .map_err(|_| LineError::NotJws("the header is not base64url"))?;
        let fields: HeaderIn = serde_json::from_slice(&decoded)
            .map_err(|_| LineError::NotJws("the header is not a JSON object with alg"))?;
        if fields.alg != ALG {
            return Err(LineError::NotJws("alg is not EdDSA"));
        }
        if fields.crit.is_some() {
            return Err(LineError::NotJws("the header has critical extensions"));
        }
    }
    BASE64URL_NOPAD
        .decode(payload_part)
        .map_err(|_| LineError::NotJws("the payload is not base64url"))
}

/// Why `key` refused a signature: another key's (named in the header and verifying), or none.
fn other_key(
    header_part: &[u8],
    signing_input: &[u8],
    signature: &[u8; 64],
    key: &PublicKey,
) -> LineError {
    let named = BASE64URL_NOPAD
        .decode(header_part)
        .ok()
        .and_then(|h| serde_json::from_slice::<HeaderIn>(&h).ok())
        .and_then(|h| h.jwk)
        .and_then(|jwk| PublicKey::from_jwk(&jwk.to_string()).ok());
    match named {
        Some(other) if other != *key && other.verifies(signing_input, signature) => {
            LineError::OtherKey {
                kid: other.thumbprint(),
            }
        }
        _ => LineError::BadSignature,
    }
}

/// The chain fields of a decoded payload.
pub(crate) fn links(payload: &[u8]) -> Result<Links<'_>, LineError> {
    serde_json::from_slice(payload).map_err(|e| LineError::BadPayload(e.to_string()))
}

/// The event in `line`, its signature by `key` checked (the chain is not: see `verify`).
pub fn read_line(line: &[u8], key: &PublicKey) -> Result<Record, LineError> {
    let payload = open(line, key, &header_for(key))?;
    let read: PayloadIn =
        serde_json::from_slice(&payload).map_err(|e| LineError::BadPayload(e.to_string()))?;
    Ok(Record {
        seq: read.seq,
        prev_hash: read.prev_hash,
        event: read.event,
    })
}

/// The event a line carries, its signature not checked: for listing a call's events, the log
/// being checked as a whole by [`crate::verify()`]. `None` if it is not a JWS holding JSON.
pub fn unverified_payload(line: &str) -> Option<serde_json::Value> {
    let payload = line.split('.').nth(1)?;
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(payload.as_bytes())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The line in JWS flattened JSON serialization (`{"protected","payload","signature"}`), the
/// form a NENA Logging Service takes in `POST /LogEvents`; `None` if it is not a compact JWS.
pub fn flattened(line: &str) -> Option<String> {
    let mut parts = line.split('.');
    let (Some(protected), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(
        serde_json::json!({"protected": protected, "payload": payload, "signature": signature})
            .to_string(),
    )
}

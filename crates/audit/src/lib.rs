//! The audit trail: every call and text (start, end, route, queue, answer, transfer, recording
//! and transcript with their SHA-256), every queue, service and element state change, every LoST
//! query, every configuration change and every sign-in, as a NENA i3 log event (NENA-STA-010.3)
//! signed as a JWS with the platform's key and chained to the event before it.
//!
//! - [`LogEvent`]: the events, as data in NENA's JSON names ([`event`]).
//! - [`SecretKey`], [`PublicKey`]: Ed25519 (JWS `alg` EdDSA), the secret kept in a 0600 file
//!   ([`load_or_create_key_file`]), the public half as a JWK with its RFC 7638 thumbprint, the
//!   `kid` of every event. Why Ed25519 and not NENA's Ed448: see [`key`].
//! - [`Chain`]: sans-IO; signs each event with `seq` and `prevHash` (the base64url SHA-256 of the
//!   previous line), resumes from a log's last line.
//! - [`Writer`]: appends one compact JWS per line, `fdatasync` before it acknowledges, repairs a
//!   line torn by a crash, refuses a log whose last line is broken ([`writer`]).
//! - [`Trail`]: a platform's handle: the key and the log in one directory, written by a thread of
//!   its own in batches, one sync per batch ([`trail`]).
//! - [`verify()`], [`Verifier`], [`verify_file`]: every signature and every link, and the first
//!   line changed, removed, reordered, signed by another key or truncated ([`verify`](mod@verify)).
//!
//! A line of the log (one JWS, split here at its dots):
//!
//! ```text
//! eyJhbGciOiJFZERTQSIsImtpZCI6Ij…   {"alg":"EdDSA","kid":…,"jwk":{"crv":"Ed25519","kty":"OKP","x":…}}
//! .eyJsb2dFdmVudFR5cGUiOiJDYWxs…   {"logEventType":"CallStartLogEvent",…,"seq":7,"prevHash":…}
//! .…                               Ed25519 signature of the two parts before it (base64url)
//! ```
//!
//! What the chain proves and what it does not: no line can be changed, dropped, moved or
//! inserted without the key, anywhere but at the very end; events cut off the end leave no trace
//! unless the head ([`Head`]) is kept somewhere else and given to [`Verifier::expect_head`].
//! Whoever holds the secret key can rewrite the whole log: the key file is the thing to guard.

pub mod chain;
pub mod event;
pub mod jws;
pub mod key;
pub mod trail;
pub mod verify;
pub mod writer;

pub use chain::{Chain, Head};
pub use event::{
    AgentState, AgentStateChange, Authentication, AuthenticationOutcome, Body, CallLog, CallState,
    CallStateChange, CallTransfer, Common, ConfigurationChange, ConfigurationChangeType, Direction,
    ElementStateChange, LogEvent, LostQuery, LostResponse, Medium, Message, QueueStateChange,
    RecCallEnd, RecCallStart, Route, ServiceStateChange,
};
pub use jws::{LineError, Record, flattened, line_hash, read_line, unverified_payload};
pub use key::{KeyError, PublicKey, SecretKey, load_or_create_key_file, read_key_file};
pub use trail::{Trail, TrailError};
pub use verify::{Broken, BrokenKind, Report, Verifier, verify};
pub use writer::{
    MAX_LINE_BYTES, OpenError, Repair, VerifyFileError, WriteError, Writer, verify_file,
    verify_reader,
};

//! When a call-taker transfers a call to the 15 (SAMU) or the 17 (police), the case goes to the
//! partner as a CISU message through the Hub Santé. This crate is that exchange without its I/O,
//! so that every message and every delivery decision can be tested without a broker or a clock:
//!
//! - [`facts`]: what the platform knows of a call ([`CaseFacts`]), checked once on the way in;
//! - [`create_case`]: the RC-EDA `createCase` built from it;
//! - [`envelope`]: the EDXL-DE envelope and its RC-DE header around a message, as bytes to send;
//! - [`incoming`]: the hub's and partners' messages parsed (RC-REF, RS-ERROR, createCase);
//! - [`delivery`]: which message to (re)send when, which is overdue, which expired.
//!
//! Message layouts follow the official schemas of `ansforge/SAMU-Hub-Modeles`; the test
//! `tests/schemas.rs` validates what this crate builds against them.

pub mod create_case;
pub mod delivery;
pub mod envelope;
pub mod facts;
pub mod incoming;
pub mod time;

pub use create_case::create_case;
pub use delivery::{Delivery, DeliveryConfig, DeliveryEvent, Submission};
pub use envelope::{Kind, Outgoing, Route, SendParams, Status};
pub use facts::{CaseFacts, Channel, FactsError, Position, PositionSource, Qualification};
pub use incoming::{Incoming, ParseError, Received, parse};

/// What logs print in place of a caller's number, position or note.
pub const MASK: &str = "‹masqué›";

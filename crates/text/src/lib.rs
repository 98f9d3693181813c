//! Text conversations with callers who write instead of speaking: deaf, hard of hearing or
//! aphasic callers, and victims who must stay silent. A conversation is a call like any other
//! for the core (an offer with the text medium, queued, picked and handed back by the same
//! rules); what is particular to text lives here, with no I/O and no clock:
//!
//! - [`Conversations`]: which conversation a message belongs to (one caller's messages within
//!   an idle time, or the DEC112 / ETSI TS 103 698 start and stop of the caller's app);
//! - [`read_message`]: what a SIP MESSAGE body holds (text, a position), or why it is refused;
//! - [`Transcript`]: who wrote what, when, sealed with SHA-256 like a recording.

mod body;
mod conversations;
mod transcript;

pub use body::{Kind, MAX_TEXT_BYTES, Message, Unreadable, kind_of, read_message};
pub use conversations::{Arrival, Conversations};
pub use transcript::{Author, Line, Transcript};

//! The routing brain of Secourir, in the sans-IO style: `handle(event, now) -> commands`.
//!
//! It admits calls with isolation between zones, routes them with ordered policy rules (re-run
//! when a route fails), queues them per CTA by priority, offers them to the longest-idle
//! call-taker or lets call-takers pick them, overflows them to mutual-aid partners that have spare
//! call-takers, and keeps the call-back list of calls that ended unanswered. It owns its timers as
//! data ([`Core::next_deadline`]) and never reads a clock, so production, tests and the simulator
//! drive the very same logic.

mod admission;
mod engine;
mod policy;
mod reserve;
mod types;

pub use admission::{Admission, Refusal};
pub use engine::{CallInfo, CallStatus, CallbackEntry, Core, CtaStatus, Snapshot, national_number};
pub use types::*;

pub use secourir_config::{CtaId, FailReason, Plan, QueueState, Service, ZoneId};

#[cfg(test)]
mod tests;

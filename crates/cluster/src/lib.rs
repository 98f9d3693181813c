//! The cluster's decisions, with no I/O and no clock: the entries of the shared log, the
//! membership that says from the log alone which node holds each call and when a node's calls
//! are over, the watch over silent nodes, the local mode of a node cut from the log and its
//! merge, and what a node's snapshot holds. The platform's node (crates/server) carries the
//! entries to and from NATS JetStream (crates/cluster-log) and feeds these with the time.

mod entries;
mod failover;
mod island;
mod membership;
mod snapshot;

pub use entries::{Input, MergedCall, OfferedRecord};
pub use failover::{
    Action, Carrier, Failover, ISLAND_MERGE_AFTER_MS, OFFER_PATIENCE_MS, OWN_ECHO_MS, Route,
};
pub use island::{Island, call_of, read_back};
pub use membership::{
    ALIVE_EVERY_MS, LOST_AFTER_MS, LOST_HOLDS_LOG_MS, Members, RESTART_GAP, SLOTS, Step, Watch,
    first_call, slot_of,
};
pub use snapshot::{NodeSnapshot, decode, encode};

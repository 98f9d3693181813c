//! The entries of the cluster's log: every input of the core and what the nodes tell each
//! other, each stamped with when its node took it in.

use std::net::SocketAddr;

use secourir_config::ZoneId;
use secourir_core::{CallId, Event, Offer};
use secourir_store::{CallRecord, TrailEntry};
use serde::{Deserialize, Serialize};

/// One input of the shared log, stamped with when its node took it in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// The node started: the calls of its earlier lives are over.
    Hello {
        /// When.
        at: u64,
        /// This life of the node (its start time).
        incarnation: u64,
        /// The slot its numbers end with.
        slot: u64,
    },
    /// The node is alive.
    Alive {
        /// When.
        at: u64,
    },
    /// A new call: its record, then the core's offer.
    Offered {
        /// When.
        at: u64,
        /// What its record says.
        record: Box<OfferedRecord>,
        /// What the core is offered.
        offer: Box<Offer>,
    },
    /// Any other input of the core.
    Core {
        /// When.
        at: u64,
        /// The input.
        event: Event,
    },
    /// A call-taker's phone registered on the node: the others may ring it too.
    Bound {
        /// When.
        at: u64,
        /// The call-taker's index in the plan.
        agent: u32,
        /// Contact URI.
        contact: String,
        /// Address the REGISTER came from.
        source: SocketAddr,
        /// Seconds since the epoch at which the binding lapses (0 when removed).
        expires_at_s: u64,
    },
    /// A conversation recorded on the node, copied to the replicated files as `name`.
    Recorded {
        /// When.
        at: u64,
        /// The call.
        call: CallId,
        /// The file's name, the same on every node.
        name: String,
        /// Its SHA-256, hex: a copy is only kept if it matches.
        sha256: String,
        /// Its length.
        duration_ms: u64,
        /// The call's own recording (the first conversation with a call-taker).
        main: bool,
    },
    /// Calls the node served alone while it was cut from the log, with their trails.
    Merged {
        /// When.
        at: u64,
        /// The calls.
        calls: Vec<MergedCall>,
    },
    /// A configuration to take without a restart, as its text: every node reads it alike.
    Config {
        /// When.
        at: u64,
        /// The configuration's TOML.
        text: String,
    },
    /// A conversation the node carried on after the log had ended its call (the others
    /// declared the node lost while it was cut off, with the caller and the call-taker still
    /// talking) ended at `at`: its record says so on every node.
    Continued {
        /// When it ended.
        at: u64,
        /// The call.
        call: CallId,
        /// The caller hung up (else the call-taker did).
        caller_left: bool,
    },
    /// The node's snapshot at entry `seq` is in the replicated files and its store holds the
    /// records up to it: the log below the entry every node has kept can go.
    Kept {
        /// When.
        at: u64,
        /// The snapshot's entry.
        seq: u64,
    },
    /// The node found `node` silent since its entry `after`: unless `node` gave an entry since,
    /// its calls are over.
    Lost {
        /// When.
        at: u64,
        /// The silent node.
        node: String,
        /// Sequence of its last entry seen.
        after: u64,
    },
}

impl Input {
    /// When its node took it in.
    pub fn at(&self) -> u64 {
        match self {
            Input::Hello { at, .. }
            | Input::Alive { at }
            | Input::Offered { at, .. }
            | Input::Core { at, .. }
            | Input::Bound { at, .. }
            | Input::Merged { at, .. }
            | Input::Recorded { at, .. }
            | Input::Config { at, .. }
            | Input::Continued { at, .. }
            | Input::Kept { at, .. }
            | Input::Lost { at, .. } => *at,
        }
    }
}

/// A new call's record, as the node that took it in saw it: every node writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferedRecord {
    /// Its number.
    pub call: CallId,
    /// The emergency CallId (RFC 7852).
    pub emergency_call_id: String,
    /// Caller's number.
    pub caller: Option<String>,
    /// URN of the service dialled.
    pub service: String,
    /// Where the caller is.
    pub zone: ZoneId,
    /// Département code.
    pub departement: String,
    /// Commune.
    pub commune: Option<String>,
    /// INSEE code of the commune.
    pub insee: Option<String>,
    /// Point.
    pub point: Option<(f64, f64)>,
    /// Uncertainty in metres.
    pub radius_m: Option<f64>,
    /// Where the location came from.
    pub location_source: String,
    /// Why the caller's own location could not be used.
    pub location_problem: Option<String>,
    /// Ingress trunk.
    pub trunk: Option<String>,
    /// Header lines rebuilt from bytes that were not UTF-8.
    pub repaired_headers: Option<String>,
}

/// A call a node served alone, as its store has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedCall {
    /// Its record.
    pub record: CallRecord,
    /// Its trail.
    pub trail: Vec<TrailEntry>,
    /// Ended unanswered: its caller is to be called back.
    pub call_back: bool,
}

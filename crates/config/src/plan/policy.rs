//! The policy part of a plan: rule sets, their conditions and actions, and the words they use.

use super::{AnnouncementId, CtaId, ZoneId};

/// An ordered list of rules ending in a catch-all.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Identifier of the rule set.
    pub id: String,
    /// Rules, first match wins (announcements do not stop the evaluation).
    pub rules: Vec<Rule>,
}

/// One policy routing rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name shown in the event trail.
    pub name: String,
    /// Conditions that must all hold.
    pub when: Conditions,
    /// What to do when they hold.
    pub action: Action,
    /// Line of the rule in the file.
    pub line: usize,
}

/// Conditions of a rule; an absent condition always holds.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// Zone of the call.
    pub zones: Option<Vec<ZoneId>>,
    /// Emergency service asked for.
    pub services: Option<Vec<Service>>,
    /// State of the queue the call is in, or of its home queue for a new call.
    pub queue_state: Option<Vec<QueueState>>,
    /// Why the previous route failed (only holds on re-evaluation).
    pub failed: Option<Vec<FailReason>>,
    /// Prefixes of the caller's number.
    pub callers: Option<Vec<String>>,
    /// Ingress trunks.
    pub sources: Option<Vec<String>>,
    /// Whether the call's zone is in crisis mode.
    pub crisis: Option<bool>,
    /// Local time period.
    pub period: Option<Period>,
    /// Holds when the expected wait in the call's queue (its home queue for a new call)
    /// exceeds this, ms.
    pub expected_wait_ms: Option<u64>,
}

impl Conditions {
    /// Whether no condition is set: the rule always matches.
    pub fn is_empty(&self) -> bool {
        self.zones.is_none()
            && self.services.is_none()
            && self.queue_state.is_none()
            && self.failed.is_none()
            && self.callers.is_none()
            && self.sources.is_none()
            && self.crisis.is_none()
            && self.period.is_none()
            && self.expected_wait_ms.is_none()
    }
}

/// Days of the week (bit 0 is Monday) and a time-of-day window that may wrap past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Bit `d` set when weekday `d` (Monday = 0) matches.
    pub days_mask: u8,
    /// Start, in minutes after local midnight, inclusive.
    pub from_minute: u16,
    /// End, in minutes after local midnight, exclusive; smaller than `from_minute` when it wraps.
    pub to_minute: u16,
}

impl Period {
    /// Whether a local weekday (Monday = 0) and minute of the day fall in the period.
    pub fn contains(&self, weekday: u8, minute: u16) -> bool {
        let in_window = if self.from_minute <= self.to_minute {
            minute >= self.from_minute && minute < self.to_minute
        } else {
            minute >= self.from_minute || minute < self.to_minute
        };
        // A window that wraps belongs to the day it started on.
        let day = if self.from_minute > self.to_minute && minute < self.to_minute {
            (weekday + 6) % 7
        } else {
            weekday
        };
        in_window && self.days_mask & (1 << day) != 0
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Queue the call at the target (fails if it is full, inactive or disabled).
    Route(Target),
    /// Move the call to a target with spare call-takers (fails if none has any).
    Overflow(Target),
    /// Play a message, then go on with the next rules.
    Announce(AnnouncementId),
    /// Refuse the call with this reason.
    Busy(String),
}

/// Where an action sends the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The CTA serving the call's zone.
    Home,
    /// The mutual-aid partners of the CTA serving the call's zone, in order.
    Partners,
    /// These CTAs, in order.
    Ctas(Vec<CtaId>),
}

/// Emergency service asked for by the caller (RFC 5031).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Service {
    /// `urn:service:sos`, 112.
    Sos,
    /// `urn:service:sos.fire`, 18.
    Fire,
    /// `urn:service:sos.ambulance`, 15.
    Ambulance,
    /// `urn:service:sos.police`, 17.
    Police,
    /// Any other `urn:service:sos.*`.
    Other,
}

impl Service {
    /// Parses a service URN or dialled number, case-insensitively (RFC 5031).
    pub fn parse(text: &str) -> Option<Service> {
        let lower = text.trim().to_ascii_lowercase();
        match lower.as_str() {
            "urn:service:sos" | "112" | "sos" => Some(Service::Sos),
            "urn:service:sos.fire" | "18" | "fire" => Some(Service::Fire),
            "urn:service:sos.ambulance" | "15" | "ambulance" => Some(Service::Ambulance),
            "urn:service:sos.police" | "17" | "police" => Some(Service::Police),
            other if other.starts_with("urn:service:sos.") => Some(Service::Other),
            _ => None,
        }
    }

    /// The RFC 5031 URN.
    pub fn urn(self) -> &'static str {
        match self {
            Service::Sos => "urn:service:sos",
            Service::Fire => "urn:service:sos.fire",
            Service::Ambulance => "urn:service:sos.ambulance",
            Service::Police => "urn:service:sos.police",
            Service::Other => "urn:service:sos.other",
        }
    }
}

/// NENA i3 QueueState values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueState {
    /// Call-takers are logged in and the queue has room.
    Active,
    /// No call-taker is logged in.
    Inactive,
    /// Taken out of service by an operator (outage).
    Disabled,
    /// As many calls wait as the queue accepts.
    Full,
    /// Call-takers are logged in but all paused.
    Standby,
}

impl QueueState {
    /// Parses the i3 name, case-insensitively.
    pub fn parse(text: &str) -> Option<QueueState> {
        match text.to_ascii_lowercase().as_str() {
            "active" => Some(QueueState::Active),
            "inactive" => Some(QueueState::Inactive),
            "disabled" => Some(QueueState::Disabled),
            "full" => Some(QueueState::Full),
            "standby" => Some(QueueState::Standby),
            _ => None,
        }
    }

    /// The i3 name.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueState::Active => "Active",
            QueueState::Inactive => "Inactive",
            QueueState::Disabled => "Disabled",
            QueueState::Full => "Full",
            QueueState::Standby => "Standby",
        }
    }
}

/// Why a route failed, which makes the rules run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// The call waited longer than the queue's `no_answer` delay.
    NoAnswer,
    /// The queue has no call-taker logged in, or is disabled.
    Unreachable,
    /// The queue holds `queue_max` calls.
    Full,
}

impl FailReason {
    /// Parses the name used in rules.
    pub fn parse(text: &str) -> Option<FailReason> {
        match text.to_ascii_lowercase().as_str() {
            "no-answer" => Some(FailReason::NoAnswer),
            "unreachable" => Some(FailReason::Unreachable),
            "full" => Some(FailReason::Full),
            _ => None,
        }
    }

    /// The name used in rules and events.
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::NoAnswer => "no-answer",
            FailReason::Unreachable => "unreachable",
            FailReason::Full => "full",
        }
    }
}

//! Inputs and outputs of the core: events in, commands out.

use secourir_config::{AnnouncementId, CtaId, FailReason, Service, ZoneId};

/// A point in time: milliseconds since the Unix epoch, real or simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// This instant plus a number of milliseconds.
    pub fn plus_ms(self, ms: u64) -> Instant {
        Instant(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to this instant, zero if `earlier` is later.
    pub fn since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// A call, numbered by the shell that received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

/// A call-taker (OTA), numbered by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentId(pub u32);

/// Priority of a call: higher is answered first.
pub type Priority = u8;

/// Priority of an ordinary emergency call.
pub const PRIORITY_NORMAL: Priority = 5;
/// Priority of a call whose caller said, in the crisis menu, that it is about the known incident.
pub const PRIORITY_CRISIS_RELATED: Priority = 2;

/// A new emergency call, already located (its zone) by the shell.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// Identifier given by the shell.
    pub call: CallId,
    /// Département the caller is in (or the default of the ingress).
    pub zone: ZoneId,
    /// Service dialled.
    pub service: Service,
    /// Priority (RFC 4412 Resource-Priority may raise it).
    pub priority: Priority,
    /// Caller's number, for rules on callers.
    pub caller: Option<Box<str>>,
    /// Ingress trunk, for rules on sources.
    pub source: Option<Box<str>>,
}

/// Why ringing a call-taker failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingFailure {
    /// It rang until the timeout.
    NoAnswer,
    /// The phone could not be reached.
    Unreachable,
    /// The phone refused (busy, declined).
    Refused,
}

/// Something that happened, fed to [`crate::Core::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new call arrived.
    Offered(Offer),
    /// The caller hung up (CANCEL or BYE).
    CallerHungUp {
        /// The call.
        call: CallId,
    },
    /// The caller pressed a key (RFC 4733).
    Dtmf {
        /// The call.
        call: CallId,
        /// The key, `b'0'..=b'9'`, `b'*'`, `b'#'`.
        digit: u8,
    },
    /// A call-taker logged in at a site of a CTA, available at once.
    AgentLogin {
        /// The call-taker.
        agent: AgentId,
        /// Their CTA.
        cta: CtaId,
        /// Index of their site in the CTA.
        site: u16,
        /// NENA i3 DequeuePreference, 1 to 5, 5 served first.
        dequeue_preference: u8,
    },
    /// A call-taker logged out.
    AgentLogout {
        /// The call-taker.
        agent: AgentId,
    },
    /// A call-taker is ready for calls (after a pause or wrap-up).
    AgentReady {
        /// The call-taker.
        agent: AgentId,
    },
    /// A call-taker pauses.
    AgentPause {
        /// The call-taker.
        agent: AgentId,
    },
    /// A call-taker picks a waiting call.
    Pick {
        /// The call-taker.
        agent: AgentId,
        /// The call.
        call: CallId,
    },
    /// The call-taker's phone answered.
    AgentAnswered {
        /// The call-taker.
        agent: AgentId,
        /// The call.
        call: CallId,
    },
    /// The call-taker's phone did not answer.
    AgentRingFailed {
        /// The call-taker.
        agent: AgentId,
        /// The call.
        call: CallId,
        /// What went wrong.
        reason: RingFailure,
    },
    /// The call-taker hung up a conversation.
    AgentHungUp {
        /// The call-taker.
        agent: AgentId,
        /// The call.
        call: CallId,
    },
    /// The call-taker hands the call to a partner service (15 SAMU, 17 police).
    Transfer {
        /// The call-taker.
        agent: AgentId,
        /// The call.
        call: CallId,
        /// The partner service.
        to: Service,
    },
    /// A call-taker holding another CTA's call (mutual aid) hands it back to that CTA: the
    /// caller waits at the head of its home queue for one of its own call-takers.
    HandBack {
        /// The call-taker.
        agent: AgentId,
        /// The call.
        call: CallId,
    },
    /// A call-back entry the store kept across a restart (or made for a call a crash
    /// interrupted): back in the CTA's list, so that call-takers can work it.
    CallbackRestored {
        /// The call that ended unanswered.
        call: CallId,
        /// Its zone; the entry goes to the list of the CTA serving it.
        zone: ZoneId,
        /// Number to call back.
        caller: Option<Box<str>>,
        /// When it was put on the list.
        at: Instant,
        /// The call-taker working it, if one had taken it.
        taken_by: Option<AgentId>,
    },
    /// The platform stops: the call ends now (a waiting caller goes to the call-back list).
    Stopped {
        /// The call.
        call: CallId,
    },
    /// A room supervisor turns crisis mode on or off for a zone.
    SetCrisis {
        /// The zone.
        zone: ZoneId,
        /// On or off.
        on: bool,
    },
    /// An operator takes a CTA's queue out of service, or back.
    SetDisabled {
        /// The CTA.
        cta: CtaId,
        /// Out of service or back.
        disabled: bool,
    },
    /// A call-taker takes a call-back entry ("rappeler").
    CallbackTaken {
        /// The call-taker.
        agent: AgentId,
        /// The call that ended unanswered.
        call: CallId,
    },
    /// A call-back is done.
    CallbackDone {
        /// The call-taker.
        agent: AgentId,
        /// The call that ended unanswered.
        call: CallId,
    },
    /// Time passed: fire the timers due.
    Tick,
}

/// How a call ended: every offered call ends exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered, then hung up.
    Completed,
    /// Answered, then handed to a partner service.
    Transferred,
    /// The caller left before a call-taker answered; it goes to the call-back list.
    Abandoned,
    /// Refused: no capacity anywhere, or a `busy` rule.
    Rejected,
}

impl Outcome {
    /// Name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Transferred => "transferred",
            Outcome::Abandoned => "abandoned",
            Outcome::Rejected => "rejected",
        }
    }
}

/// The reason recorded with an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The caller hung up during the conversation.
    CallerHungUp,
    /// The call-taker hung up.
    AgentHungUp,
    /// The caller hung up while waiting in the queue.
    CallerLeftQueue,
    /// The caller hung up while a call-taker's phone rang.
    CallerLeftRinging,
    /// Transfer to this service.
    TransferredTo(Service),
    /// Zone share used and national pool empty.
    NoCapacity,
    /// A `busy` rule refused the call, with its reason.
    Busy(String),
    /// The shell offered a call with a zone the plan does not have.
    UnknownZone,
    /// The platform stopped during the call.
    PlatformStopped,
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::CallerHungUp => f.write_str("caller hung up"),
            EndReason::AgentHungUp => f.write_str("call-taker hung up"),
            EndReason::CallerLeftQueue => f.write_str("caller hung up while queued"),
            EndReason::CallerLeftRinging => {
                f.write_str("caller hung up while a call-taker was ringing")
            }
            EndReason::TransferredTo(s) => write!(f, "transferred to {}", s.urn()),
            EndReason::NoCapacity => {
                f.write_str("no capacity left in the zone nor in the national pool")
            }
            EndReason::Busy(reason) => write!(f, "refused by rule: {reason}"),
            EndReason::UnknownZone => f.write_str("unknown zone"),
            EndReason::PlatformStopped => f.write_str("the platform stopped"),
        }
    }
}

impl EndReason {
    /// The reason as call-takers and supervisors read it, in French (the log keeps `Display`).
    pub fn french(&self) -> String {
        match self {
            EndReason::CallerHungUp => "l'appelant a raccroché".into(),
            EndReason::AgentHungUp => "l'opérateur a raccroché".into(),
            EndReason::CallerLeftQueue => "l'appelant a raccroché en attente".into(),
            EndReason::CallerLeftRinging => {
                "l'appelant a raccroché pendant la sonnerie de l'opérateur".into()
            }
            EndReason::TransferredTo(s) => match s {
                Service::Ambulance => "transféré au 15 (SAMU)".into(),
                Service::Police => "transféré au 17 (police)".into(),
                Service::Fire => "transféré au 18".into(),
                Service::Sos => "transféré au 112".into(),
                Service::Other => format!("transféré vers {}", s.urn()),
            },
            EndReason::NoCapacity => {
                "plus de capacité dans la zone ni dans la réserve nationale".into()
            }
            EndReason::Busy(reason) => format!("refusé par une règle : {reason}"),
            EndReason::UnknownZone => "zone inconnue".into(),
            EndReason::PlatformStopped => "arrêt de la plateforme".into(),
        }
    }
}

/// Why a pick was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickRefusal {
    /// Someone else took it, or it ended (HTTP 409).
    AlreadyTaken,
    /// The call is not in a queue this call-taker may serve (HTTP 403).
    Forbidden,
    /// The call-taker is not logged in, or is busy with another call (HTTP 409).
    NotReady,
    /// No such call (HTTP 404).
    UnknownCall,
}

/// Why a call could not be handed back to its home CTA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandBackRefusal {
    /// The call-taker is not talking with this caller (HTTP 403).
    NotTheirs,
    /// The call is of the call-taker's own CTA (HTTP 409).
    OwnCall,
    /// Nobody of the home CTA is logged in, or its queue is out of service (HTTP 409).
    HomeUnreachable,
}

/// What a call-taker is doing, as the console shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    /// Waiting for a call.
    Available,
    /// Their phone rings with this call.
    Ringing(CallId),
    /// In conversation.
    Talking(CallId),
    /// Finishing the paperwork of a call.
    WrapUp,
    /// On pause, or marked unavailable after a ring without answer.
    Paused,
    /// Logged out.
    Offline,
}

/// State of a call-back entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackState {
    /// Waiting for someone to call back.
    Pending,
    /// A call-taker is calling back.
    Taken(AgentId),
    /// Done, by this call-taker.
    Done(AgentId),
}

/// Why a call-back step was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackRefusal {
    /// The call-taker is not logged in (HTTP 409).
    NotLoggedIn,
    /// Their CTA's list has no entry for this call (HTTP 404).
    Unknown,
}

/// A step of a call, for the event trail.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Admitted within its zone's share or from the pool.
    Admitted,
    /// A rule matched (index of the rule in its set).
    RuleMatched(u16),
    /// A route failed and the rules run again.
    RouteFailed(CtaId, FailReason),
    /// Waiting in this CTA's queue.
    Queued(CtaId),
    /// Moved to a mutual-aid partner.
    Overflowed {
        /// Queue left.
        from: CtaId,
        /// Queue joined.
        to: CtaId,
    },
    /// Offered to a call-taker.
    Offered(AgentId),
    /// Picked by a call-taker.
    Picked(AgentId),
    /// Back in the queue after a ring failed.
    Requeued(RingFailure),
    /// Bridged to a call-taker.
    Answered(AgentId),
    /// The caller said it is about the known incident.
    CrisisRelated,
    /// Handed back by a lender's call-taker to its home CTA.
    HandedBack {
        /// The CTA whose call-taker handed it back.
        from: CtaId,
    },
}

/// Something the shells must do or record, drained from [`crate::Core::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Answer the caller's leg and anchor its media (the call is admitted).
    Answer {
        /// The call.
        call: CallId,
    },
    /// Refuse the call (SIP 503 with Retry-After for no capacity, 486 for a busy rule).
    Reject {
        /// The call.
        call: CallId,
        /// Why.
        reason: EndReason,
    },
    /// Play a message to the caller (loops until the next command for the call).
    Play {
        /// The call.
        call: CallId,
        /// The message.
        announcement: AnnouncementId,
    },
    /// Ring a call-taker's phone with this call.
    Ring {
        /// The call.
        call: CallId,
        /// The call-taker.
        agent: AgentId,
    },
    /// Stop ringing (timeout, or the caller left).
    CancelRing {
        /// The call.
        call: CallId,
        /// The call-taker.
        agent: AgentId,
    },
    /// Bridge caller and call-taker and start recording both directions.
    Bridge {
        /// The call.
        call: CallId,
        /// The call-taker.
        agent: AgentId,
    },
    /// Hang up the caller's leg (the call-taker ended the call).
    HangUp {
        /// The call.
        call: CallId,
    },
    /// Hand the call to a partner service with its data.
    TransferOut {
        /// The call.
        call: CallId,
        /// The service.
        to: Service,
    },
    /// Answer to a pick.
    PickResult {
        /// The call-taker who asked.
        agent: AgentId,
        /// The call.
        call: CallId,
        /// Taken, or why not.
        result: Result<(), PickRefusal>,
    },
    /// Answer to a call-back step.
    CallbackResult {
        /// The call-taker who asked.
        agent: AgentId,
        /// The call.
        call: CallId,
        /// Applied, or why not.
        result: Result<(), CallbackRefusal>,
    },
    /// The answer to a hand-back.
    HandBackResult {
        /// The call-taker who asked.
        agent: AgentId,
        /// The call.
        call: CallId,
        /// Handed back, or why not.
        result: Result<(), HandBackRefusal>,
    },
    /// Take this call-taker off the call; the caller stays on the line, in a queue again.
    Unbridge {
        /// The call.
        call: CallId,
        /// The call-taker leaving it.
        agent: AgentId,
    },
    /// A call-taker's status changed.
    AgentChanged {
        /// The call-taker.
        agent: AgentId,
        /// New status.
        status: AgentStatus,
    },
    /// A call-back entry was added or changed.
    Callback {
        /// CTA whose list holds it.
        cta: CtaId,
        /// The call that ended unanswered.
        call: CallId,
        /// Its state.
        state: CallbackState,
    },
    /// The call ended; emitted exactly once per offered call.
    Ended {
        /// The call.
        call: CallId,
        /// How.
        outcome: Outcome,
        /// Why.
        reason: EndReason,
    },
    /// A step for the event trail.
    Trail {
        /// The call.
        call: CallId,
        /// What happened.
        step: Step,
    },
    /// A zone entered or left crisis mode.
    CrisisChanged {
        /// The zone.
        zone: ZoneId,
        /// On or off.
        on: bool,
    },
}

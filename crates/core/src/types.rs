//! Inputs and outputs of the core: events in, commands out.

use std::sync::Arc;

use secourir_config::{AnnouncementId, CtaId, FailReason, Service, ZoneId};

/// A point in time: milliseconds since the Unix epoch, real or simulated.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
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
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct CallId(pub u64);

/// A call-taker (OTA), numbered by the shell.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct AgentId(pub u32);

/// Priority of a call: higher is answered first.
pub type Priority = u8;

/// Priority of an ordinary emergency call.
pub const PRIORITY_NORMAL: Priority = 5;

/// Priority of a call suspected of a flood: behind every other.
pub const PRIORITY_SUSPECTED: Priority = 0;
/// Priority of a call whose caller said, in the crisis menu, that it is about the known incident.
pub const PRIORITY_CRISIS_RELATED: Priority = 2;

/// A new emergency call, already located (its zone) by the shell.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Offer {
    /// Identifier given by the shell.
    pub call: CallId,
    /// Département the caller is in (or the default of the ingress).
    pub zone: ZoneId,
    /// Service dialled.
    pub service: Service,
    /// RFC 4412 Resource-Priority level of the `esnet` namespace, when the caller's network
    /// sent one (0 is the most urgent); the core decides what priority it gives.
    pub resource_priority: Option<u8>,
    /// Caller's number, for rules on callers.
    pub caller: Option<Box<str>>,
    /// Ingress trunk, for rules on sources.
    pub source: Option<Box<str>>,
    /// Where the caller is, as located by the shell: shown to call-takers, replaced by AML.
    pub place: Option<Arc<Whereabouts>>,
    /// The shell suspects the call of being part of a flood (telephony denial of service).
    #[serde(default)]
    pub suspected: bool,
    /// The shell could not carry the call (no audio it can use, no media port): the core
    /// still takes it in, so that it is on record and on the call-back list.
    #[serde(default)]
    pub refused: Option<NotCarried>,
    /// How the caller reaches the platform: a voice call, or text written to it. Routed,
    /// queued and answered by the same rules.
    #[serde(default)]
    pub medium: Medium,
}

/// How a caller speaks to the platform.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Medium {
    /// A voice call.
    #[default]
    Voice,
    /// A text conversation (SIP MESSAGE, real-time text, an SMS gateway or the 114 relay).
    Text,
}

/// Why the shell could not carry an emergency call it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NotCarried {
    /// The INVITE's SDP could not be read, or offered no audio.
    NoAudioOffer,
    /// The audio offered had no codec the platform speaks (G.711 A-law or µ-law).
    NoCommonCodec,
    /// The caller offered SRTP with a key that cannot be used.
    UnusableSrtpKey,
    /// No media port was free in the whole configured range.
    NoMediaPort,
}

impl NotCarried {
    /// Name used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            NotCarried::NoAudioOffer => "no audio offer",
            NotCarried::NoCommonCodec => "no common codec",
            NotCarried::UnusableSrtpKey => "unusable SRTP key",
            NotCarried::NoMediaPort => "no media port",
        }
    }

    /// The reason as call-takers read it, in French.
    pub fn french(self) -> &'static str {
        match self {
            NotCarried::NoAudioOffer => "pas d'offre audio lisible",
            NotCarried::NoCommonCodec => "aucun codec audio commun (G.711 attendu)",
            NotCarried::UnusableSrtpKey => "clé SRTP inutilisable",
            NotCarried::NoMediaPort => "aucun port média libre",
        }
    }
}

/// Where a caller is, as the console shows it: the shell locates, the core keeps it with the
/// call so that every node holding the core's state shows the same.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Whereabouts {
    /// Département code.
    pub departement: Box<str>,
    /// Commune, when known.
    pub commune: Option<Box<str>>,
    /// INSEE code of the commune.
    pub insee: Option<Box<str>>,
    /// Point (latitude, longitude), when known.
    pub point: Option<(f64, f64)>,
    /// Radius of uncertainty in metres.
    pub radius_m: Option<f64>,
    /// How it was found: `pidf`, `trunk`, `default`, `aml`…
    pub source: Box<str>,
}

/// Identifier of a request (a call-taker's, or a machine's), given by the shell that received
/// it; the core's [`Command::Reply`] carries it back.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct RequestId(pub u64);

/// The state a call-taker asks to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WantedState {
    /// Ready for calls (logs in if needed).
    Available,
    /// On pause (logs in if needed).
    Paused,
    /// Logged out (after the current call).
    Offline,
}

/// What a call-taker asks of the core.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Ask {
    /// Pick a waiting call.
    Pick(CallId),
    /// Take a call-back entry ("rappeler").
    CallbackTaken(CallId),
    /// Mark a call-back done.
    CallbackDone(CallId),
    /// End their conversation.
    HangUp(CallId),
    /// Hand a mutual-aid call back to its home CTA, with what they learnt.
    HandBack {
        /// The call.
        call: CallId,
        /// What the home call-taker reads.
        summary: Box<str>,
    },
    /// Hand the call to a partner service (15 SAMU, 17 police); the answer comes when the
    /// partner answers or fails.
    Transfer {
        /// The call.
        call: CallId,
        /// The partner service.
        to: Service,
        /// What travels with it.
        summary: Box<str>,
    },
    /// Change state: log in, pause, be ready, log out.
    State(WantedState),
}

/// What a granted request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granted {
    /// Done.
    Done,
    /// The call-taker's status now.
    Status(AgentStatus),
    /// The partner service answered; the caller is with it.
    Transferred(Service),
    /// The call waits in its home CTA's queue.
    HandedBack(CtaId),
    /// The position was applied to this call.
    Located(CallId),
}

/// Why a request was not granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// A pick refused.
    Pick(PickRefusal),
    /// A call-back step refused.
    Callback(CallbackRefusal),
    /// A hand-back refused.
    HandBack(HandBackRefusal),
    /// The call-taker is not talking with this caller (HTTP 403).
    NotTheirCall,
    /// No call-taker has this id in the plan (HTTP 404).
    UnknownAgent,
    /// No partner service of this kind is configured (HTTP 409).
    NoPartner(Service),
    /// A transfer of this call is already under way (HTTP 409).
    TransferPending,
    /// The partner service did not take the call: its SIP status, 0 if unreachable (HTTP 502).
    PartnerFailed(u16),
    /// The call ended before the request could be carried out (HTTP 409).
    CallEnded,
    /// No live call from this number (HTTP 404).
    NoLiveCall,
}

/// Why ringing a call-taker failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RingFailure {
    /// It rang until the timeout.
    NoAnswer,
    /// The phone could not be reached.
    Unreachable,
    /// The phone refused (busy, declined).
    Refused,
}

/// Something that happened, fed to [`crate::Core::handle`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// The node holding the call serves it alone: it was cut from the cluster's log just after
    /// taking the call in. The call leaves this core with no outcome here; its record comes
    /// with that node's merge.
    Withdrawn {
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
    /// A call-taker's request; the core answers it with a [`Command::Reply`] of the same id.
    Request {
        /// Its id.
        id: RequestId,
        /// Who asks.
        agent: AgentId,
        /// What.
        ask: Ask,
    },
    /// The partner service rung for a transfer answered.
    PartnerAnswered {
        /// The call.
        call: CallId,
    },
    /// The partner service rung for a transfer did not take the call.
    PartnerFailed {
        /// The call.
        call: CallId,
        /// Its final SIP status, 0 if it could not be reached.
        status: u16,
    },
    /// The partner service hung up (after the handover, or before answering).
    PartnerHungUp {
        /// The call.
        call: CallId,
    },
    /// A handset position (AML SMS, or any later fix) for the live call from this number; the
    /// core answers with a [`Command::Reply`] naming the call it applied to.
    Located {
        /// Id of the report.
        id: RequestId,
        /// The caller's number, in any written form.
        caller: Box<str>,
        /// The place of the fix.
        place: Arc<Whereabouts>,
    },
    /// Time passed: fire the timers due.
    Tick,
    /// The shell came to suspect a call already offered of being part of a flood (its source
    /// was seen flooding after it arrived): if it still waits, it moves behind every other
    /// caller.
    Suspected {
        /// The call.
        call: CallId,
    },
    /// The caller was heard while waiting (speech, or a key pressed): a suspect of a flood is
    /// a person, not a silent robot, and leaves the suspects.
    Heard {
        /// The call.
        call: CallId,
    },
}

impl Command {
    /// The call the command is about, if it is about one.
    pub fn call(&self) -> Option<CallId> {
        match self {
            Command::Answer { call }
            | Command::Reject { call, .. }
            | Command::Play { call, .. }
            | Command::Ring { call, .. }
            | Command::CancelRing { call, .. }
            | Command::Bridge { call, .. }
            | Command::HangUp { call }
            | Command::CallPartner { call, .. }
            | Command::HandOver { call, .. }
            | Command::DropPartner { call }
            | Command::Unbridge { call, .. }
            | Command::Callback { call, .. }
            | Command::Withdrawn { call, .. }
            | Command::Ended { call, .. }
            | Command::Trail { call, .. } => Some(*call),
            Command::Reply { .. }
            | Command::AgentChanged { .. }
            | Command::CrisisChanged { .. } => None,
        }
    }
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
    /// The shell could not carry the call.
    NotCarried(NotCarried),
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
            EndReason::NotCarried(why) => write!(f, "not carried: {}", why.as_str()),
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
            EndReason::NotCarried(why) => format!("appel non acheminable : {}", why.french()),
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// A suspect of a flood was heard (speech or a key) and left the suspects.
    Heard,
    /// Handed back by a lender's call-taker to its home CTA.
    HandedBack {
        /// The CTA whose call-taker handed it back.
        from: CtaId,
        /// That call-taker.
        by: AgentId,
        /// What they learnt.
        summary: Box<str>,
    },
    /// A partner service was rung for a transfer.
    TransferAsked {
        /// The service.
        to: Service,
        /// The call-taker asking.
        by: AgentId,
        /// What travels with the call.
        summary: Box<str>,
    },
    /// The partner service did not take the call; the call-taker keeps it.
    TransferFailed {
        /// The service.
        to: Service,
        /// Its SIP status, 0 if unreachable.
        status: u16,
    },
    /// The partner service took the call.
    Transferred {
        /// The service.
        to: Service,
        /// The call-taker who handed it over.
        by: AgentId,
    },
    /// A new position came in for the caller.
    Located,
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
        /// Which conversation of the call this is, from 1 (a hand-back starts a second one).
        conversation: u32,
    },
    /// Hang up the caller's leg (the call-taker ended the call).
    HangUp {
        /// The call.
        call: CallId,
    },
    /// Ring the partner service for a transfer; the call-taker stays with the caller.
    CallPartner {
        /// The call.
        call: CallId,
        /// The service.
        to: Service,
        /// One line for the partner (the summary), already bounded.
        subject: Box<str>,
    },
    /// The partner answered: take the call-taker off and bridge the caller to the partner.
    HandOver {
        /// The call.
        call: CallId,
        /// The call-taker leaving.
        agent: AgentId,
    },
    /// Hang up the partner's leg and release it (failed, cancelled, or the handover is over).
    DropPartner {
        /// The call.
        call: CallId,
    },
    /// The answer to a request.
    Reply {
        /// The request's id.
        request: RequestId,
        /// Granted, or why not.
        result: Result<Granted, Denied>,
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
    /// The call left this core without an outcome here (see [`Event::Withdrawn`]).
    Withdrawn {
        /// The call.
        call: CallId,
        /// The CTA whose queue or call-taker held it last.
        cta: CtaId,
    },
    /// The call ended; emitted exactly once per offered call that is not withdrawn.
    Ended {
        /// The call.
        call: CallId,
        /// How.
        outcome: Outcome,
        /// Why.
        reason: EndReason,
        /// The CTA whose queue or call-taker held it last (for a refused call, the one serving
        /// its zone; None when the zone is unknown).
        cta: Option<CtaId>,
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

/// One input of a core as a journal or a log keeps it, given to [`crate::Core::apply`]: an
/// event, or a plan taken live.
#[derive(Debug, Clone)]
pub enum Input {
    /// An event.
    Event(Event),
    /// A new plan.
    Plan(std::sync::Arc<secourir_config::Plan>),
}

impl From<Event> for Input {
    fn from(event: Event) -> Input {
        Input::Event(event)
    }
}

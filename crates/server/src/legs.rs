//! The SIP and media legs of each call: what the core's commands do to dialogs and RTP, and the
//! SIP and media happenings turned back into core events. It keeps resources (dialogs, media
//! legs, the pending answer of an INVITE), never a decision about the call.

mod partner;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use secourir_config::{AnnouncementId, Plan};
use secourir_core::{AgentId, CallId, Command, EndReason, Event, Instant, NotCarried, RingFailure};
use secourir_media::{Audio, LegId, Media, MediaEvent, sdp};
use secourir_sip::{Decision, SipEvent};
use tracing::{info, warn};

use crate::arrival::CallerSide;
use crate::limits::ANSWER_RECORD_PATIENCE_MS;
use crate::signalling::Signalling;

/// The legs of one call.
struct CallLegs {
    caller: CallerSide,
    /// The call-taker rung or talking, and their media leg.
    agent: Option<(AgentId, LegId)>,
    partner: Option<LegId>,
    /// The core handed the call over: the caller stays bridged to the partner.
    handed_over: bool,
    /// Its `Offered` record is on disk: answering it now loses nothing if the platform dies.
    recorded: bool,
    /// When the core answered it, while the answer waits for the record.
    answer_waiting: Option<Instant>,
    /// The call-taker conversation being recorded, from 1.
    conversation: u32,
    /// The caller and the call-taker are bridged.
    bridged: bool,
    /// The caller or the call-taker hung up; the core has yet to say what follows.
    peer_gone: bool,
}

/// Which conversation a recording holds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Conversation {
    /// With a call-taker: the first is the record's, later ones follow a hand-back.
    CallTaker(u32),
    /// Between the caller and a partner service after a transfer.
    Partner,
}

/// The legs of every call, and the recordings being finished.
pub(crate) struct Legs {
    pub(crate) signalling: Box<dyn Signalling>,
    pub(crate) media: Media,
    plan: Arc<Plan>,
    announcements: Vec<Option<Arc<Audio>>>,
    recordings: PathBuf,
    calls: HashMap<CallId, CallLegs>,
    by_leg: HashMap<LegId, CallId>,
    /// Recordings being finished off the driver's task.
    pub(crate) finishing: HashMap<PathBuf, (CallId, Conversation)>,
}

impl Legs {
    /// Legs with no call yet.
    pub(crate) fn new(
        signalling: Box<dyn Signalling>,
        media: Media,
        plan: Arc<Plan>,
        announcements: Vec<Option<Arc<Audio>>>,
        recordings: PathBuf,
    ) -> Legs {
        Legs {
            signalling,
            media,
            plan,
            announcements,
            recordings,
            calls: HashMap::new(),
            by_leg: HashMap::new(),
            finishing: HashMap::new(),
        }
    }

    /// Takes charge of a new call's caller side.
    pub(crate) fn adopt(&mut self, call: CallId, caller: CallerSide) {
        if let Some(leg) = caller.leg {
            self.by_leg.insert(leg, call);
        }
        self.calls.insert(
            call,
            CallLegs {
                caller,
                agent: None,
                partner: None,
                handed_over: false,
                recorded: false,
                answer_waiting: None,
                conversation: 0,
                bridged: false,
                peer_gone: false,
            },
        );
    }

    /// The call-taker a call's caller is talking with, both still on the line.
    pub(crate) fn talking(&self, call: CallId) -> Option<AgentId> {
        let legs = self.calls.get(&call)?;
        let (agent, _) = legs.agent?;
        (legs.bridged && !legs.peer_gone).then_some(agent)
    }

    /// Calls whose legs are still held.
    pub(crate) fn held(&self) -> Vec<CallId> {
        self.calls.keys().copied().collect()
    }

    fn accept(legs: &mut CallLegs) {
        legs.answer_waiting = None;
        if let Some(decide) = legs.caller.decide.take() {
            let _ = decide.send(Decision::Accept {
                sdp: legs.caller.answer_sdp.clone(),
                headers: legs.caller.call_info.clone(),
            });
        }
    }

    /// The writer has these calls' records on disk: their callers may be answered.
    pub(crate) fn settled(&mut self, calls: &[u64]) {
        for call in calls {
            if let Some(legs) = self.calls.get_mut(&CallId(*call)) {
                legs.recorded = true;
                if legs.answer_waiting.is_some() {
                    Self::accept(legs);
                }
            }
        }
    }

    /// An emergency call is never left unanswered for its record: if the store is slow or
    /// gone, the caller is answered anyway, and it is said in the log.
    pub(crate) fn release_overdue_answers(&mut self, now: Instant) {
        for (call, legs) in &mut self.calls {
            if legs
                .answer_waiting
                .is_some_and(|at| now.since(at) >= ANSWER_RECORD_PATIENCE_MS)
            {
                warn!(
                    ?call,
                    "call record not on disk in time: caller answered anyway"
                );
                metrics::counter!("secourir_answers_before_record_total").increment(1);
                Self::accept(legs);
            }
        }
    }

    /// The core event a SIP happening stands for, after the legs it concerns are updated.
    pub(crate) fn on_sip(&mut self, event: SipEvent) -> Option<Event> {
        match event {
            SipEvent::Invite { .. }
            | SipEvent::Text { .. }
            | SipEvent::TextUndelivered { .. }
            | SipEvent::Registered { .. }
            | SipEvent::Unregistered { .. }
            | SipEvent::LockedOut { .. } => None,
            SipEvent::CallerGone { call } => {
                self.peer_gone(call);
                Some(Event::CallerHungUp { call })
            }
            SipEvent::PartnerAnswered { call, sdp } => {
                if let Some(leg) = self.calls.get(&call).and_then(|l| l.partner) {
                    self.set_remote(call, leg, &sdp, "partner");
                }
                Some(Event::PartnerAnswered { call })
            }
            SipEvent::PartnerFailed { call, status } => {
                warn!(?call, status, "partner service did not take the call");
                Some(Event::PartnerFailed { call, status })
            }
            SipEvent::PartnerGone { call } => Some(Event::PartnerHungUp { call }),
            SipEvent::AgentAnswered { call, agent, sdp } => {
                let leg = self
                    .calls
                    .get(&call)
                    .and_then(|l| l.agent)
                    .filter(|(a, _)| *a == agent);
                if let Some((_, leg)) = leg {
                    self.set_remote(call, leg, &sdp, "call-taker");
                }
                // A phone answering a ring the core gave up gets a CancelRing back.
                Some(Event::AgentAnswered { agent, call })
            }
            SipEvent::AgentFailed {
                call,
                agent,
                reason,
                status,
            } => {
                info!(
                    ?call,
                    ?agent,
                    ?reason,
                    status,
                    "call-taker's phone did not answer"
                );
                self.close_agent_leg(call, agent);
                Some(Event::AgentRingFailed {
                    agent,
                    call,
                    reason,
                })
            }
            SipEvent::AgentGone { call, agent } => {
                self.peer_gone(call);
                Some(Event::AgentHungUp { agent, call })
            }
        }
    }

    fn peer_gone(&mut self, call: CallId) {
        if let Some(legs) = self.calls.get_mut(&call) {
            legs.peer_gone = true;
        }
    }

    fn set_remote(&self, call: CallId, leg: LegId, answer: &[u8], whose: &str) {
        match sdp::parse(answer) {
            Ok(answer) => {
                let codec = answer
                    .codecs
                    .first()
                    .copied()
                    .unwrap_or(secourir_media::Codec::Pcma);
                self.media
                    .set_remote(leg, answer.addr, codec, answer.dtmf_pt);
            }
            Err(e) => warn!(?call, error = %e, whose, "SDP answer unusable"),
        }
    }

    /// The core event a caller's key or voice stands for (a finished recording is the
    /// records' business, not the core's).
    pub(crate) fn caller_event(&self, event: &MediaEvent) -> Option<Event> {
        match event {
            MediaEvent::Dtmf { leg, digit } => self.by_leg.get(leg).map(|&call| Event::Dtmf {
                call,
                digit: *digit,
            }),
            MediaEvent::Heard { leg } => self.by_leg.get(leg).map(|&call| Event::Heard { call }),
            MediaEvent::Recorded { .. } => None,
        }
    }

    /// Carries out what a command asks of the legs; events it leads to go to `follow_ups`.
    pub(crate) fn execute(
        &mut self,
        command: &Command,
        now: Instant,
        follow_ups: &mut VecDeque<Event>,
    ) {
        match command {
            Command::Answer { call } => {
                // The caller is answered once the call's record is on disk, so that a crash
                // after the answer cannot lose it.
                if let Some(legs) = self.calls.get_mut(call) {
                    if legs.recorded {
                        Self::accept(legs);
                    } else {
                        legs.answer_waiting = Some(now);
                    }
                }
            }
            Command::Reject { call, reason } => self.reject(*call, reason),
            Command::Play { call, announcement } => self.play(*call, *announcement),
            Command::Ring { call, agent } => {
                if let Some(reason) = self.ring(*call, *agent) {
                    follow_ups.push_back(Event::AgentRingFailed {
                        agent: *agent,
                        call: *call,
                        reason,
                    });
                }
            }
            Command::CancelRing { call, agent } | Command::Unbridge { call, agent } => {
                // After an unbridge the caller stays on its leg and hears the queue again.
                self.signalling.hang_up_agent(*call, *agent);
                self.close_agent_leg(*call, *agent);
            }
            Command::Bridge {
                call, conversation, ..
            } => self.bridge(*call, *conversation),
            Command::HangUp { call } => self.signalling.hang_up_caller(*call),
            Command::CallPartner { call, to, subject } => {
                if !self.call_partner(*call, *to, subject) {
                    follow_ups.push_back(Event::PartnerFailed {
                        call: *call,
                        status: 0,
                    });
                }
            }
            Command::HandOver { call, agent } => self.hand_over(*call, *agent),
            Command::DropPartner { call } => self.drop_partner(*call),
            Command::Ended { call, reason, .. } => self.ended(*call, reason),
            Command::Reply { .. }
            | Command::Withdrawn { .. }
            | Command::AgentChanged { .. }
            | Command::Callback { .. }
            | Command::Trail { .. }
            | Command::CrisisChanged { .. } => {}
        }
    }

    fn reject(&mut self, call: CallId, reason: &EndReason) {
        let (code, phrase, retry) = match reason {
            EndReason::NoCapacity => (
                503,
                "Service Unavailable - no capacity left in the zone nor the national pool"
                    .to_owned(),
                Some(30),
            ),
            EndReason::Busy(why) => (486, format!("Busy Here - {why}"), None),
            EndReason::NotCarried(why) => match why {
                NotCarried::NoAudioOffer => (
                    488,
                    "Not Acceptable Here - no usable audio offer".to_owned(),
                    None,
                ),
                NotCarried::NoCommonCodec => (
                    488,
                    "Not Acceptable Here - offer PCMA or PCMU".to_owned(),
                    None,
                ),
                NotCarried::UnusableSrtpKey => (
                    488,
                    "Not Acceptable Here - unusable SRTP key".to_owned(),
                    None,
                ),
                NotCarried::NoMediaPort => (
                    503,
                    "Service Unavailable - media ports exhausted".to_owned(),
                    Some(5),
                ),
            },
            other => (500, format!("Server Internal Error - {other}"), None),
        };
        warn!(?call, code, %phrase, "call refused");
        if let Some(decide) = self
            .calls
            .get_mut(&call)
            .and_then(|l| l.caller.decide.take())
        {
            let _ = decide.send(Decision::Reject {
                code,
                reason: phrase,
                retry_after_s: retry,
            });
        }
    }

    fn play(&mut self, call: CallId, announcement: AnnouncementId) {
        let Some(leg) = self.calls.get(&call).and_then(|l| l.caller.leg) else {
            return;
        };
        match self
            .announcements
            .get(announcement.0 as usize)
            .cloned()
            .flatten()
        {
            Some(audio) => self.media.play(leg, audio, true),
            None => warn!(?announcement, "announcement without audio"),
        }
    }

    /// Rings a call-taker; the failure to report, if the phone cannot be rung.
    fn ring(&mut self, call: CallId, agent: AgentId) -> Option<RingFailure> {
        let headers = self.calls.get(&call)?.caller.call_info.clone();
        let (leg, local) = match self.media.open_leg() {
            Ok(opened) => opened,
            Err(e) => {
                warn!(?call, error = %e, "no media port to ring a call-taker");
                return Some(RingFailure::Unreachable);
            }
        };
        if !self
            .signalling
            .ring(call, agent, sdp::offer(local, call.0), headers)
        {
            info!(?call, ?agent, "call-taker's phone is not registered");
            self.close_leg(call, leg, Conversation::CallTaker(0));
            return Some(RingFailure::Unreachable);
        }
        self.by_leg.insert(leg, call);
        if let Some(legs) = self.calls.get_mut(&call) {
            legs.agent = Some((agent, leg));
        }
        None
    }

    fn bridge(&mut self, call: CallId, conversation: u32) {
        let Some(legs) = self.calls.get_mut(&call) else {
            return;
        };
        legs.conversation = conversation;
        legs.bridged = legs.agent.is_some();
        if let (Some(caller), Some((_, agent))) = (legs.caller.leg, legs.agent) {
            let name = match conversation {
                1 => format!("call-{}.wav", call.0),
                n => format!("call-{}-{n}.wav", call.0),
            };
            self.media
                .bridge(caller, agent, Some(self.recordings.join(name)));
        }
        self.signalling.connected(call);
    }

    fn ended(&mut self, call: CallId, reason: &EndReason) {
        let Some(legs) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some(decide) = legs.caller.decide.take() {
            // Ended before any answer: the INVITE still waits for one.
            let _ = decide.send(Decision::Reject {
                code: 480,
                reason: format!("Temporarily Unavailable - {reason}"),
                retry_after_s: None,
            });
        }
        if legs.handed_over {
            // The caller stays with the partner until one of them hangs up.
            return;
        }
        self.release(call);
    }

    /// Hangs up and closes every leg of a call.
    pub(crate) fn release(&mut self, call: CallId) {
        self.signalling.hang_up_caller(call);
        let Some(legs) = self.calls.remove(&call) else {
            return;
        };
        let talk = Conversation::CallTaker(legs.conversation);
        if let Some((agent, leg)) = legs.agent {
            self.signalling.hang_up_agent(call, agent);
            // Closing one leg of a bridge finishes the recording; the other gives nothing.
            self.close_leg(call, leg, talk);
        }
        if let Some(leg) = legs.partner {
            self.signalling.hang_up_partner(call);
            self.close_leg(call, leg, Conversation::Partner);
        }
        if let Some(leg) = legs.caller.leg {
            self.close_leg(call, leg, talk);
        }
    }

    fn close_agent_leg(&mut self, call: CallId, agent: AgentId) {
        let Some(legs) = self.calls.get_mut(&call) else {
            return;
        };
        let talk = Conversation::CallTaker(legs.conversation);
        if legs.agent.is_some_and(|(a, _)| a == agent)
            && let Some((_, leg)) = legs.agent.take()
        {
            legs.bridged = false;
            self.close_leg(call, leg, talk);
        }
    }

    /// Closes a leg; if it carried a recording, its outcome comes back as a media event.
    fn close_leg(&mut self, call: CallId, leg: LegId, kind: Conversation) {
        self.by_leg.remove(&leg);
        if let Some(path) = self.media.close(leg) {
            self.finishing.insert(path, (call, kind));
        }
    }
}

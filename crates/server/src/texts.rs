//! The legs of the calls that are written, not spoken: what the core's commands do to a text
//! conversation (its welcome, its announcements as text, the call-taker joining or leaving,
//! its end), the caller's messages and the call-taker's replies, each a line of its transcript.
//! The core queues, picks and hands back a text conversation as it does a voice call; only
//! what reaches the caller differs.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use secourir_config::Plan;
use secourir_core::{AgentId, CallId, Command, EndReason, Event, Instant};
use secourir_sip::Sip;
use secourir_text::{Arrival, Author, Conversations, Kind, Line, Transcript};
use tracing::info;

/// What the caller reads when their first message is taken.
const WELCOME: &str = "Secours : votre message est bien reçu. Restez joignable, un opérateur va vous répondre ici par écrit.";

/// What the caller reads when a call-taker joins.
const JOINED: &str = "Un opérateur des secours vous répond.";

/// What the caller reads when the call-taker ends the conversation.
const CLOSED: &str = "Conversation terminée par l'opérateur. Écrivez de nouveau si besoin.";

/// One text conversation's side of the platform.
struct TextCall {
    /// Where replies go: the caller's URI.
    reply_to: String,
    /// Where the caller's messages come from.
    destination: SocketAddr,
    /// The Call-ID of the caller's messages, which the replies carry.
    call_id: String,
    /// The platform's messages sent so far.
    sent: u32,
    transcript: Transcript,
    /// The call-taker with the caller, while one is.
    agent: Option<AgentId>,
    /// The announcement last sent: the core asks again while it loops on a voice call.
    announced: Option<secourir_config::AnnouncementId>,
}

/// The text conversations this node carries.
pub(crate) struct Texts {
    sip: Sip,
    plan: Arc<Plan>,
    conversations: Conversations,
    calls: HashMap<CallId, TextCall>,
}

/// A line just written, for the record and the consoles.
pub(crate) type Written = (CallId, Line);

impl Texts {
    /// No conversation yet.
    pub(crate) fn new(sip: Sip, plan: Arc<Plan>) -> Texts {
        Texts {
            sip,
            conversations: Conversations::new(u64::from(plan.text_idle_s) * 1_000),
            plan,
            calls: HashMap::new(),
        }
    }

    /// The configuration in force changed.
    pub(crate) fn set_plan(&mut self, plan: Arc<Plan>) {
        self.conversations
            .set_idle(u64::from(plan.text_idle_s) * 1_000);
        self.plan = plan;
    }

    /// Whether `call` is a text conversation carried here.
    pub(crate) fn carries(&self, call: CallId) -> bool {
        self.calls.contains_key(&call)
    }

    /// Where a message of `kind` from `peer` belongs.
    pub(crate) fn arrive(&mut self, peer: &str, kind: Kind, now: Instant) -> Arrival {
        self.conversations.arrive(peer, kind, now.0)
    }

    /// A new conversation, numbered `call`, with `peer`.
    pub(crate) fn open(
        &mut self,
        call: CallId,
        peer: &str,
        reply_to: String,
        destination: SocketAddr,
        call_id: String,
        now: Instant,
    ) {
        self.conversations.opened(peer, call, now.0);
        self.calls.insert(
            call,
            TextCall {
                reply_to,
                destination,
                call_id,
                sent: 0,
                transcript: Transcript::default(),
                agent: None,
                announced: None,
            },
        );
    }

    /// The caller wrote again, maybe from elsewhere: replies go where the last message came
    /// from, with its Call-ID.
    pub(crate) fn heard_from(&mut self, call: CallId, destination: SocketAddr, call_id: &str) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.destination = destination;
            if !call_id.is_empty() {
                c.call_id = call_id.to_owned();
            }
        }
    }

    /// A line of the caller's (or the platform's note of a message it refused).
    pub(crate) fn caller_wrote(
        &mut self,
        call: CallId,
        from: Author,
        text: &str,
        now: Instant,
    ) -> Option<Written> {
        let conversation = self.calls.get_mut(&call)?;
        conversation.transcript.push(now.0, from, text);
        conversation
            .transcript
            .lines
            .last()
            .cloned()
            .map(|l| (call, l))
    }

    /// The call-taker `agent`, known as `login`, writes `text` to the caller of `call`.
    pub(crate) fn reply(
        &mut self,
        call: CallId,
        agent: AgentId,
        login: &str,
        text: &str,
        now: Instant,
    ) -> Result<Written, &'static str> {
        let conversation = self
            .calls
            .get_mut(&call)
            .ok_or("pas une conversation écrite en cours")?;
        if conversation.agent != Some(agent) {
            return Err("conversation d'un autre opérateur");
        }
        self.conversations.touched(call, now.0);
        self.send(call, Author::CallTaker(login.to_owned()), text, now)
            .ok_or("pas une conversation écrite en cours")
    }

    /// Sends `text` to the caller of `call` and writes it in the transcript.
    fn send(&mut self, call: CallId, from: Author, text: &str, now: Instant) -> Option<Written> {
        let conversation = self.calls.get_mut(&call)?;
        conversation.sent += 1;
        self.sip.send_text(
            call,
            &conversation.reply_to,
            conversation.destination,
            &conversation.call_id,
            conversation.sent,
            text,
            Vec::new(),
        );
        conversation.transcript.push(now.0, from, text);
        conversation
            .transcript
            .lines
            .last()
            .cloned()
            .map(|l| (call, l))
    }

    /// The conversations silent for the idle time at `now`: their callers are gone.
    pub(crate) fn idle(&mut self, now: Instant) -> Vec<CallId> {
        self.conversations.idle(now.0)
    }

    /// Carries out what a command of the core asks of a text conversation; events it leads
    /// to go to `follow_ups`, lines written to `written`, and a conversation over gives its
    /// transcript's seal.
    pub(crate) fn execute(
        &mut self,
        command: &Command,
        now: Instant,
        follow_ups: &mut VecDeque<Event>,
        written: &mut Vec<Written>,
    ) -> Option<(CallId, String)> {
        match command {
            Command::Answer { call } => {
                written.extend(self.send(*call, Author::Platform, WELCOME, now));
            }
            Command::Play { call, announcement } => {
                let already = self
                    .calls
                    .get(call)
                    .is_some_and(|c| c.announced == Some(*announcement));
                // A menu asks for a key the caller cannot press in writing.
                let text = self
                    .plan
                    .announcements
                    .get(announcement.0 as usize)
                    .filter(|a| !a.menu)
                    .map(|a| a.text.clone());
                if let (false, Some(text)) = (already, text) {
                    if let Some(c) = self.calls.get_mut(call) {
                        c.announced = Some(*announcement);
                    }
                    written.extend(self.send(*call, Author::Platform, &text, now));
                }
            }
            // The console is the call-taker's end of a text conversation: ringing it is
            // answering it.
            Command::Ring { call, agent } => {
                if let Some(c) = self.calls.get_mut(call) {
                    c.agent = Some(*agent);
                    follow_ups.push_back(Event::AgentAnswered {
                        agent: *agent,
                        call: *call,
                    });
                }
            }
            Command::CancelRing { call, .. } | Command::Unbridge { call, .. } => {
                if let Some(c) = self.calls.get_mut(call) {
                    c.agent = None;
                }
            }
            Command::Bridge { call, agent, .. } => {
                if let Some(c) = self.calls.get_mut(call) {
                    c.agent = Some(*agent);
                    written.extend(self.send(*call, Author::Platform, JOINED, now));
                }
            }
            Command::HangUp { call } => {
                written.extend(self.send(*call, Author::Platform, CLOSED, now));
            }
            // A partner service takes voice: the case goes to it by other means.
            Command::CallPartner { call, .. } => follow_ups.push_back(Event::PartnerFailed {
                call: *call,
                status: 0,
            }),
            Command::Reject { call, reason } => {
                let text = refusal(reason);
                written.extend(self.send(*call, Author::Platform, &text, now));
            }
            Command::Ended { call, .. } | Command::Withdrawn { call, .. } => {
                self.conversations.closed(*call);
                self.sip.end_texts(*call);
                let conversation = self.calls.remove(call)?;
                let sealed = conversation.transcript.sha256();
                info!(
                    ?call,
                    lines = conversation.transcript.lines.len(),
                    "text conversation ended"
                );
                return Some((*call, sealed));
            }
            _ => {}
        }
        None
    }
}

/// What a caller whose conversation the platform refuses reads.
fn refusal(reason: &EndReason) -> String {
    format!(
        "Secours : votre message ne peut pas être pris en charge maintenant ({reason}). Vous serez rappelé. Si vous le pouvez, appelez le 112 ; personnes sourdes ou malentendantes : 114."
    )
}

//! Conversations written, not spoken, as the driver takes them in: each MESSAGE (already
//! answered by the SIP shell) put in its conversation, a new one offered to the core like a
//! voice call with its position; the call-taker's replies sent and on record; silent
//! conversations ended.

use secourir_sip::TextIngress;
use secourir_text::{Arrival as Belongs, Author, Message, Unreadable};

use super::*;

impl Driver {
    /// An emergency MESSAGE: never lost. A body that could not be read was refused with its
    /// status and still counts for its conversation (a new one is offered all the same), the
    /// refusal on record in its transcript.
    pub(super) fn on_text(
        &mut self,
        ingress: TextIngress,
        read: Result<Message, Unreadable>,
        source: std::net::SocketAddr,
    ) {
        let now = self.clock.now();
        let kind = secourir_text::kind_of(ingress.call_infos.iter().map(String::as_str));
        let (line, status) = match &read {
            Ok(message) => (message.text.clone().map(|t| (Author::Caller, t)), 202),
            Err(unreadable) => (
                Some((
                    Author::Platform,
                    format!(
                        "message du correspondant refusé ({} {})",
                        unreadable.code, unreadable.reason
                    ),
                )),
                unreadable.code,
            ),
        };
        metrics::counter!("secourir_text_messages_total", "status" => status.to_string())
            .increment(1);
        let call = match self.texts.arrive(&ingress.peer, kind, now) {
            Belongs::New => {
                let call = self.sip.next_call();
                let (locations, problem) = match &read {
                    Ok(message) => (
                        message.locations.as_slice(),
                        message.location_problem.clone(),
                    ),
                    Err(_) => (&[][..], None),
                };
                let arrival = arrival::from_text(
                    call,
                    &ingress,
                    locations,
                    problem,
                    self.territory,
                    &self.plan,
                    &self.instance,
                    now,
                );
                info!(?call, "text conversation opened");
                self.texts.open(
                    call,
                    &ingress.peer,
                    ingress.reply_to.clone(),
                    source,
                    ingress.call_id.clone(),
                    now,
                );
                self.write_line(call, line, now);
                let number = ingress.caller.clone();
                let trunk = ingress.trunk.clone();
                self.judge_and_arrive(arrival, source, number, trunk, now);
                if kind.stop {
                    self.feed(Event::CallerHungUp { call });
                }
                call
            }
            Belongs::Continues(call) => {
                self.texts.heard_from(call, source, &ingress.call_id);
                self.write_line(call, line, now);
                call
            }
            Belongs::Ends(call) => {
                self.texts.heard_from(call, source, &ingress.call_id);
                self.write_line(call, line, now);
                self.records
                    .note(call, now, "conversation close par le correspondant".into());
                self.feed(Event::CallerHungUp { call });
                call
            }
        };
        self.dirty = true;
        tracing::debug!(?call, "text message taken");
    }

    fn write_line(&mut self, call: CallId, line: Option<(Author, String)>, now: Instant) {
        if let Some((from, text)) = line
            && let Some((call, line)) = self.texts.caller_wrote(call, from, &text, now)
        {
            self.records.text_line(call, &line);
        }
    }

    /// A text did not reach the caller: the call-taker and the record say so.
    pub(super) fn text_undelivered(&mut self, call: CallId, status: u16) {
        let now = self.clock.now();
        let why = match status {
            0 => "pas de réponse".to_owned(),
            code => format!("refusé, {code}"),
        };
        if let Some((call, line)) = self.texts.caller_wrote(
            call,
            Author::Platform,
            &format!("message non remis au correspondant ({why})"),
            now,
        ) {
            self.records.text_line(call, &line);
        }
        self.dirty = true;
    }

    /// A call-taker writes to the caller of the conversation they are in.
    pub(super) fn write_to_caller(
        &mut self,
        login: &str,
        call: CallId,
        text: &str,
    ) -> Result<(), ApiError> {
        let Some((index, _)) = self.plan.call_taker(login) else {
            return Err(ApiError::NotFound("opérateur inconnu"));
        };
        let agent = secourir_core::AgentId(index as u32);
        if self.core.agent(agent) != secourir_core::AgentStatus::Talking(call) {
            return Err(ApiError::Forbidden(
                "vous n'êtes pas en conversation avec cet appel",
            ));
        }
        let now = self.clock.now();
        let (call, line) = self
            .texts
            .reply(call, agent, login, text, now)
            .map_err(ApiError::Conflict)?;
        self.records.text_line(call, &line);
        self.dirty = true;
        Ok(())
    }

    /// What a command of the core does to a text conversation carried here.
    pub(super) fn carry_out_text(&mut self, command: &Command, now: Instant) {
        let mut written = Vec::new();
        let sealed = self
            .texts
            .execute(command, now, &mut self.follow_ups, &mut written);
        for (call, line) in written {
            self.records.text_line(call, &line);
        }
        if let Some((call, sha256)) = sealed {
            self.records.text_sealed(call, sha256, now);
        }
    }

    /// Conversations silent for the idle time: their callers are gone.
    pub(super) fn end_idle_texts(&mut self, now: Instant) {
        for call in self.texts.idle(now) {
            let idle = self.plan.text_idle_s;
            self.records.note(
                call,
                now,
                format!("conversation écrite sans message depuis {idle} s"),
            );
            self.feed(Event::CallerHungUp { call });
        }
    }
}

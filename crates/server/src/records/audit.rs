//! What the core's commands leave in the signed, chained audit trail (NENA i3 log events):
//! a call's start, the route decided, its queue, its answer, its transfer, its end, and the
//! seals of its recording or transcript.

use secourir_audit::{
    Body, CallLog, CallState, CallStateChange, CallTransfer, Direction, Medium, RecCallEnd, Route,
};
use secourir_cluster::OfferedRecord;
use secourir_core::{AgentId, CallId, Command, Instant, Outcome, Step};

use super::Records;

/// Ended calls whose ids are kept for the recording's seal, which comes after the end.
const ENDED_KEPT: usize = 16_384;

impl Records {
    /// Logs an event about `call`, if the platform keeps a trail.
    fn audit(&self, call: Option<CallId>, now: Instant, agent: Option<AgentId>, body: Body) {
        let Some(trail) = &self.audit else { return };
        // A node catching up on log entries its store already has logged them the first time.
        if self.muted {
            return;
        }
        let call_id = call.and_then(|c| {
            self.call_ids
                .get(&c.0)
                .map(|(id, _)| id)
                .or_else(|| self.ended_ids.get(&c.0))
        });
        let mut common = trail.common(now.0, call_id.map(String::as_str));
        common.agency_agent_id = agent.map(|a| self.login(a));
        trail.log(common, body);
    }

    /// A new call or conversation.
    pub(super) fn audit_offered(
        &mut self,
        arrival: &OfferedRecord,
        medium: secourir_core::Medium,
        now: Instant,
    ) {
        if self.audit.is_none() {
            return;
        }
        let medium = match medium {
            secourir_core::Medium::Voice => Medium::Audio,
            secourir_core::Medium::Text => Medium::Text,
        };
        self.call_ids
            .insert(arrival.call.0, (arrival.emergency_call_id.clone(), medium));
        self.audit(
            Some(arrival.call),
            now,
            None,
            Body::CallStart(CallLog {
                direction: Direction::Incoming,
                medium,
                to: Some(arrival.service.clone()),
                from: arrival.caller.clone(),
                local_call_type: Some("emergency".into()),
            }),
        );
    }

    /// A recording or a transcript sealed at `now`.
    pub(super) fn audit_sealed(
        &mut self,
        call: CallId,
        now: Instant,
        medium: Medium,
        sha256: &str,
        bytes: u64,
        name: Option<String>,
    ) {
        self.audit(
            Some(call),
            now,
            None,
            Body::RecCallEnd(RecCallEnd {
                direction: Direction::Incoming,
                medium,
                sha256: sha256.to_owned(),
                bytes,
                name,
            }),
        );
    }

    /// What a command of the core leaves in the trail.
    pub(super) fn audit_command(&mut self, command: &Command, now: Instant) {
        if self.audit.is_none() {
            return;
        }
        let state = |state: CallState, target: Option<String>| {
            Body::CallStateChange(CallStateChange {
                state,
                direction: Direction::Incoming,
                leg_call_id: None,
                target_id: target,
                change_reason: None,
            })
        };
        match command {
            Command::Trail { call, step } => match step {
                Step::Queued(cta) => {
                    let id = self.plan.cta(*cta).id.clone();
                    self.audit(
                        Some(*call),
                        now,
                        None,
                        Body::Route(Route {
                            recipient_uri: format!("urn:secourir:queue:{id}"),
                            rule_id: "routing".into(),
                            policy_owner: self.plan.cta(*cta).name.clone(),
                            policy_type: "OriginationRoutePolicy".into(),
                            policy_queue_name: Some(id.clone()),
                            policy_id: None,
                            cause: None,
                        }),
                    );
                    self.audit(Some(*call), now, None, state(CallState::Queued, Some(id)));
                }
                Step::Overflowed { to, .. } => {
                    let id = self.plan.cta(*to).id.clone();
                    self.audit(
                        Some(*call),
                        now,
                        None,
                        state(CallState::Overflowed, Some(id)),
                    );
                }
                Step::Offered(agent) => {
                    let login = self.login(*agent);
                    self.audit(
                        Some(*call),
                        now,
                        Some(*agent),
                        state(CallState::Ringing, Some(login)),
                    );
                }
                Step::Requeued(_) => {
                    self.audit(Some(*call), now, None, state(CallState::Requeued, None));
                }
                Step::Transferred { to, by } => {
                    self.audit(
                        Some(*call),
                        now,
                        Some(*by),
                        Body::CallTransfer(CallTransfer {
                            target: to.urn().to_owned(),
                            target_call_id_sip: None,
                        }),
                    );
                    self.audit(
                        Some(*call),
                        now,
                        Some(*by),
                        state(CallState::Transferred, None),
                    );
                }
                _ => {}
            },
            Command::Bridge { call, agent, .. } => {
                let login = self.login(*agent);
                self.audit(
                    Some(*call),
                    now,
                    Some(*agent),
                    state(CallState::Answered, Some(login)),
                );
            }
            Command::Ended { call, outcome, .. } => {
                if *outcome == Outcome::Abandoned {
                    self.audit(Some(*call), now, None, state(CallState::Abandoned, None));
                }
                let medium = self
                    .call_ids
                    .get(&call.0)
                    .map_or(Medium::Audio, |(_, m)| *m);
                self.audit(
                    Some(*call),
                    now,
                    None,
                    Body::CallEnd(CallLog {
                        direction: Direction::Incoming,
                        medium,
                        to: None,
                        from: None,
                        local_call_type: Some(outcome.as_str().into()),
                    }),
                );
                // Kept a while for the recording's seal, which comes after the end.
                if let Some((id, _)) = self.call_ids.remove(&call.0) {
                    self.ended_ids.insert(call.0, id);
                    self.ended_order.push_back(call.0);
                    if self.ended_order.len() > ENDED_KEPT
                        && let Some(old) = self.ended_order.pop_front()
                    {
                        self.ended_ids.remove(&old);
                    }
                }
            }
            _ => {}
        }
    }
}

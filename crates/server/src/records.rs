//! What the core's commands leave on record: the store's writes (call records, trails in
//! French, call-backs), the metrics, and the supervision room's figures.

mod audit;
mod cluster;

use std::sync::Arc;

use secourir_cluster::{MergedCall, OfferedRecord};
use secourir_config::Plan;
use secourir_core::{
    AgentId, AgentStatus, CallId, CallbackState, Command, Core, Instant, Outcome, RingFailure, Step,
};
use secourir_http::Board;
use secourir_http::service_name;
use secourir_media::Recording;
use secourir_privacy::Personal;
use secourir_store::Write;
use tracing::{error, info};

use crate::legs::Conversation;
use crate::limits::CALL_NUMBER_BLOCK;
use crate::writer::StoreSender;

/// The store's write of a new call's record, offered at `now`.
fn offered_write(arrival: &OfferedRecord, now: Instant) -> Write {
    Write::Offered {
        call: arrival.call.0,
        emergency_call_id: arrival.emergency_call_id.clone(),
        caller: arrival.caller.clone().map(Personal::new),
        service: arrival.service.clone(),
        at: now.0 as i64,
        lat: arrival.point.map(|p| Personal::new(p.0)),
        lon: arrival.point.map(|p| Personal::new(p.1)),
        radius_m: arrival.radius_m,
        location_source: arrival.location_source.clone(),
        departement: arrival.departement.clone(),
        commune: arrival.commune.clone(),
        insee: arrival.insee.clone(),
        trunk: arrival.trunk.clone(),
    }
}

/// The records side of the driver.
pub(crate) struct Records {
    pub(crate) store: StoreSender,
    pub(crate) board: Board,
    plan: Arc<Plan>,
    /// Call numbers up to this one are reserved in the store: a crash never lets one be reused.
    call_high_water: u64,
    /// In a cluster the log keeps the numbers: nothing to reserve in the store.
    pub(crate) reserves_numbers: bool,
    /// Writes nothing to the store: a node catching up on log entries its store already has.
    pub(crate) muted: bool,
    /// Calls this node served alone that the log took back, in this life.
    given_back: std::collections::BTreeSet<u64>,
    /// The signed, chained trail of what happened, when the platform keeps one.
    pub(crate) audit: Option<secourir_audit::Trail>,
    /// Each live call's `urn:emergency:uid:callid:…` and medium, for its trail's events.
    call_ids: std::collections::HashMap<u64, (String, secourir_audit::Medium)>,
    /// Ended calls' ids, kept a while for their recording's seal, oldest first in the order.
    ended_ids: std::collections::HashMap<u64, String>,
    ended_order: std::collections::VecDeque<u64>,
}

impl Records {
    /// Records writing to this store.
    pub(crate) fn new(store: StoreSender, plan: Arc<Plan>) -> Records {
        Records {
            store,
            board: Board::default(),
            plan,
            call_high_water: 0,
            reserves_numbers: true,
            muted: false,
            given_back: std::collections::BTreeSet::new(),
            audit: None,
            call_ids: std::collections::HashMap::new(),
            ended_ids: std::collections::HashMap::new(),
            ended_order: std::collections::VecDeque::new(),
        }
    }

    /// Numbering goes on above `last_call`, the highest number the store has seen.
    pub(crate) fn restored(&mut self, last_call: u64) {
        self.call_high_water = last_call;
    }

    /// Keeps the stored high-water mark of call numbers well ahead of the numbers handed out:
    /// a block at a time, renewed halfway.
    fn reserve_numbers(&mut self, call: CallId) {
        if self.reserves_numbers && call.0 + CALL_NUMBER_BLOCK / 2 >= self.call_high_water {
            self.call_high_water = call.0 + CALL_NUMBER_BLOCK;
            self.write(Write::HighWater {
                upto: self.call_high_water,
            });
        }
    }

    pub(crate) fn write(&mut self, write: Write) {
        if !self.muted {
            self.store.send(write);
        }
    }

    /// The cluster log's entries up to `seq` are applied here.
    pub(crate) fn log_applied(&mut self, seq: u64) {
        self.write(Write::LogApplied { seq });
    }

    /// A new call: its record, before the core decides anything about it.
    pub(crate) fn offered(
        &mut self,
        arrival: &OfferedRecord,
        medium: secourir_core::Medium,
        now: Instant,
    ) {
        let call = arrival.call;
        self.reserve_numbers(call);
        self.write(offered_write(arrival, now));
        if let Some(repaired) = &arrival.repaired_headers {
            info!(?call, %repaired, "call served with header lines repaired");
            self.trail(
                call,
                now,
                format!("en-têtes SIP réparés (octets non UTF-8) : {repaired}"),
            );
        }
        if let Some(problem) = &arrival.location_problem {
            info!(?call, %problem, source = %arrival.location_source, "caller's location unusable, default used");
        }
        info!(
            ?call, caller = ?arrival.caller.as_ref().map(Personal::new), departement = %arrival.departement,
            commune = ?arrival.commune, location = %arrival.location_source, "emergency call offered"
        );
        self.audit_offered(arrival, medium, now);
        let home = self.plan.home_cta(arrival.zone);
        metrics::counter!("secourir_calls_offered_total", "cta" => self.plan.cta(home).id.clone())
            .increment(1);
        self.board.offered(home, now);
    }

    /// A step of a call's trail that no command stands for.
    pub(crate) fn note(&mut self, call: CallId, now: Instant, step: String) {
        self.trail(call, now, step);
    }

    /// A line of a text conversation: on record, and on the consoles.
    pub(crate) fn text_line(&mut self, call: CallId, line: &secourir_text::Line) {
        let (author, login) = match &line.from {
            secourir_text::Author::Caller => ("caller", None),
            secourir_text::Author::CallTaker(login) => ("call_taker", Some(login.clone())),
            secourir_text::Author::Platform => ("platform", None),
        };
        self.board.wrote(
            call,
            secourir_http::TextLineView {
                at: line.at_ms,
                from: author,
                login: login.clone(),
                text: line.text.clone(),
            },
        );
        self.write(Write::TextLine {
            call: call.0,
            at: line.at_ms as i64,
            author: author.into(),
            login,
            text: line.text.clone().into(),
        });
    }

    /// A text conversation ended: its transcript's SHA-256, on record.
    pub(crate) fn text_sealed(&mut self, call: CallId, sha256: String, now: Instant) {
        self.audit_sealed(call, now, secourir_audit::Medium::Text, &sha256, 0, None);
        self.write(Write::TextSealed {
            call: call.0,
            sha256,
        });
    }

    pub(crate) fn trail(&mut self, call: CallId, now: Instant, step: String) {
        self.write(Write::Trail {
            call: call.0,
            at: now.0 as i64,
            step,
        });
    }

    fn login(&self, agent: AgentId) -> String {
        self.plan
            .call_takers
            .get(agent.0 as usize)
            .map_or_else(|| format!("#{}", agent.0), |t| t.login.clone())
    }

    /// Records what a command says happened; `core` is the state after the event.
    pub(crate) fn command(&mut self, command: &Command, core: &Core, now: Instant) {
        let at = now.0 as i64;
        self.audit_command(command, now);
        match command {
            Command::Play { call, announcement } => {
                let name = self.plan.announcements[announcement.0 as usize].id.clone();
                self.trail(*call, now, format!("annonce {name}"));
            }
            Command::Bridge { call, agent, .. } => {
                let Some(info) = core.call(*call) else {
                    return;
                };
                let wait = now.since(info.queued_at);
                self.board.answered(info.cta, info.home, now, wait);
                self.board.bridged(*call, now);
                let cta = self.plan.cta(info.cta).id.clone();
                metrics::counter!("secourir_calls_answered_total", "cta" => cta.clone())
                    .increment(1);
                metrics::histogram!("secourir_answer_seconds", "cta" => cta.clone())
                    .record(wait as f64 / 1000.0);
                self.write(Write::Answered {
                    call: call.0,
                    cta,
                    call_taker: self.login(*agent),
                    at,
                });
            }
            Command::Callback { cta, call, state } => {
                let (state, by) = match state {
                    CallbackState::Pending => ("pending", None),
                    CallbackState::Taken(agent) => ("taken", Some(self.login(*agent))),
                    CallbackState::Done(agent) => ("done", Some(self.login(*agent))),
                };
                if let Some(login) = &by {
                    info!(?call, %login, state, "call-back updated");
                    // The list keeps the last state; the trail keeps who did what.
                    let what = if state == "done" { "fait" } else { "pris" };
                    self.trail(*call, now, format!("rappel {what} par {login}"));
                }
                self.write(Write::Callback {
                    call: call.0,
                    cta: self.plan.cta(*cta).id.clone(),
                    state: state.to_owned(),
                    by,
                    at,
                });
            }
            Command::Trail { call, step } => {
                match step {
                    Step::Overflowed { from, to } => self.board.overflowed(*from, *to),
                    Step::Queued(cta) => self.write(Write::Queued {
                        call: call.0,
                        cta: self.plan.cta(*cta).id.clone(),
                        at,
                    }),
                    _ => {}
                }
                if matches!(step, Step::Located) {
                    info!(?call, "AML location applied");
                }
                let text = self.describe(*call, step, core);
                self.trail(*call, now, text);
            }
            Command::Ended {
                call,
                outcome,
                reason,
                cta,
            } => {
                info!(?call, outcome = outcome.as_str(), %reason, "call ended");
                self.board.ended(*call);
                self.write(Write::Ended {
                    call: call.0,
                    at,
                    outcome: outcome.as_str().to_owned(),
                    reason: reason.french(),
                });
                match (outcome, cta) {
                    (Outcome::Abandoned, Some(cta)) => {
                        self.board.abandoned(*cta);
                        let id = self.plan.cta(*cta).id.clone();
                        metrics::counter!("secourir_calls_abandoned_total", "cta" => id)
                            .increment(1);
                    }
                    (Outcome::Rejected, _) => {
                        metrics::counter!("secourir_calls_rejected_total").increment(1);
                    }
                    _ => {}
                }
            }
            Command::Withdrawn { call, .. } => {
                self.board.ended(*call);
                info!(
                    ?call,
                    "call served by its node alone, cut off from the cluster"
                );
                self.trail(
                    *call,
                    now,
                    "servi par son nœud seul, coupé du cluster : son dossier suit à la reconnexion"
                        .into(),
                );
            }
            Command::AgentChanged {
                agent,
                status: AgentStatus::Paused,
            } => info!(login = %self.login(*agent), "call-taker paused"),
            _ => {}
        }
    }

    /// A step of the trail in the words of a call-taker.
    fn describe(&self, call: CallId, step: &Step, core: &Core) -> String {
        let cta = |c: secourir_config::CtaId| self.plan.cta(c).id.clone();
        let partner = |s: secourir_config::Service| {
            self.plan
                .partner_service(s)
                .map_or_else(|| service_name(s).to_owned(), |p| p.name.clone())
        };
        match step {
            Step::Admitted => "admis".into(),
            Step::RuleMatched(i) => format!("règle {i}"),
            Step::RouteFailed(c, why) => {
                let why = match why {
                    secourir_core::FailReason::NoAnswer => "attente trop longue",
                    secourir_core::FailReason::Unreachable => "injoignable",
                    secourir_core::FailReason::Full => "file pleine",
                };
                format!("échec vers {} ({why})", cta(*c))
            }
            Step::Queued(c) => format!("en file {}", cta(*c)),
            Step::Overflowed { from, to } => format!("entraide {} → {}", cta(*from), cta(*to)),
            Step::Offered(agent) => format!("présenté à {}", self.login(*agent)),
            Step::Picked(agent) => format!("pris par {}", self.login(*agent)),
            Step::Requeued(why) => format!(
                "remis en file ({})",
                match why {
                    RingFailure::NoAnswer => "pas de réponse de l'opérateur",
                    RingFailure::Unreachable => "téléphone de l'opérateur injoignable",
                    RingFailure::Refused => "refusé par le téléphone de l'opérateur",
                }
            ),
            Step::Answered(agent) => format!("décroché par {}", self.login(*agent)),
            Step::CrisisRelated => "lié à la crise (touche 1)".into(),
            Step::Heard => "appelant entendu : n'est plus suspect".into(),
            Step::HandedBack { from, by, summary } => {
                let home = core.call(call).map_or_else(String::new, |c| cta(c.home));
                format!(
                    "rendu au {home} par {} ({}) : {summary}",
                    self.login(*by),
                    cta(*from)
                )
            }
            Step::TransferAsked { to, by, summary } => format!(
                "transfert demandé au {} par {} : {summary}",
                partner(*to),
                self.login(*by)
            ),
            Step::TransferFailed { to, status } => format!(
                "{} n'a pas pris l'appel ({})",
                partner(*to),
                if *status == 0 {
                    "injoignable".to_owned()
                } else {
                    status.to_string()
                }
            ),
            Step::Transferred { to, by } => {
                format!("transféré au {} par {}", partner(*to), self.login(*by))
            }
            Step::Located => {
                let place = core.call(call).and_then(|c| c.place);
                let commune = place
                    .as_ref()
                    .and_then(|p| p.commune.as_deref())
                    .unwrap_or("hors territoire")
                    .to_owned();
                let radius = place
                    .and_then(|p| p.radius_m)
                    .map_or(String::new(), |r| format!(" ±{r:.0} m"));
                format!("localisation AML : {commune}{radius}")
            }
        }
    }

    /// A recording finished off the driver's task (or could not be).
    pub(crate) fn recorded(
        &mut self,
        call: CallId,
        kind: Conversation,
        path: &std::path::Path,
        recording: Option<Recording>,
        now: Instant,
    ) {
        // The first conversation's recording is the record's; the others are traced.
        let extra = match kind {
            Conversation::CallTaker(n) if n > 1 => {
                Some("enregistrement après retour au CTA d'origine")
            }
            Conversation::CallTaker(_) => None,
            Conversation::Partner => Some("enregistrement avec le partenaire"),
        };
        match (recording, extra) {
            (Some(r), Some(what)) => {
                info!(?call, path = %r.path.display(), ms = r.duration_ms, what, "recording finished");
                let text = format!(
                    "{what} : {} ({} ms, sha256 {})",
                    r.path.display(),
                    r.duration_ms,
                    r.sha256
                );
                self.trail(call, now, text);
            }
            (Some(r), None) => {
                info!(?call, path = %r.path.display(), ms = r.duration_ms, "recording finished");
                let name = r.path.display().to_string();
                self.audit_sealed(
                    call,
                    now,
                    secourir_audit::Medium::Audio,
                    &r.sha256,
                    r.bytes,
                    Some(name),
                );
                self.write(Write::Recording {
                    call: call.0,
                    path: r.path.display().to_string(),
                    sha256: r.sha256,
                    duration_ms: r.duration_ms,
                });
            }
            (None, _) => {
                error!(?call, path = %path.display(), "recording could not be finished");
                metrics::counter!("secourir_recordings_failed_total").increment(1);
                self.trail(
                    call,
                    now,
                    format!("enregistrement inachevé : {}", path.display()),
                );
            }
        }
    }
}

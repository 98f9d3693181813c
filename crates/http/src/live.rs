//! What the console and the supervision room see, rebuilt by the driver a few times a second
//! when something changed and pushed to every open page over WebSocket.

use std::collections::{HashMap, VecDeque};

use secourir_config::{CtaId, Plan};
use secourir_core::{AgentId, AgentStatus, CallStatus, Core, Instant};
use serde::Serialize;

/// Answers older than this leave the "last hour" figures.
const HOUR_MS: u64 = 3_600_000;

/// A waiting or live call, as a console row.
#[derive(Debug, Clone, Serialize)]
pub struct CallView {
    /// Platform number.
    pub call: u64,
    /// CTA whose queue or call-taker holds it.
    pub cta: String,
    /// CTA serving the caller's zone: another than `cta` when mutual aid moved the call.
    pub home: String,
    /// Name of `home`, for the call-taker who holds another CTA's call.
    pub home_name: String,
    /// What a lender's call-taker said when handing the call back.
    pub summary: Option<String>,
    /// File, sonnerie, conversation.
    pub status: &'static str,
    /// Call-taker ringing or talking.
    pub call_taker: Option<String>,
    /// Caller's number.
    pub caller: Option<String>,
    /// Département of the caller.
    pub departement: String,
    /// Commune of the caller.
    pub commune: Option<String>,
    /// Point, when known.
    pub lat: Option<f64>,
    /// Point, when known.
    pub lon: Option<f64>,
    /// Radius of uncertainty, metres.
    pub accuracy_m: Option<f64>,
    /// pidf-lo, aml, trunk-default, national-default.
    pub location_source: String,
    /// Priority, higher first.
    pub priority: u8,
    /// The caller pressed 1 at the crisis menu.
    pub crisis_related: bool,
    /// CTA it came from by mutual aid.
    pub overflowed_from: Option<String>,
    /// Partners may pick it.
    pub mutual_aid: bool,
    /// Suspected of a flood: behind every other caller.
    pub suspected: bool,
    /// Milliseconds since the epoch when it joined a queue.
    pub queued_at: u64,
    /// Milliseconds since the epoch when its current conversation began, while one goes on.
    pub answered_at: Option<u64>,
    /// `voice`, or `text` for a caller who writes.
    pub medium: &'static str,
    /// A text conversation's lines so far (the last ones), oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<TextLineView>,
}

/// A line of a text conversation, as the console shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TextLineView {
    /// When, ms since the epoch.
    pub at: u64,
    /// `caller`, `call_taker` or `platform`.
    pub from: &'static str,
    /// The call-taker who wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// What was written.
    pub text: String,
}

/// Lines of a conversation the console keeps: the rest is on record.
const LINES_SHOWN: usize = 100;

/// A CTA's figures.
#[derive(Debug, Clone, Serialize)]
pub struct CtaView {
    /// Identifier.
    pub id: String,
    /// Name.
    pub name: String,
    /// Départements served.
    pub departements: Vec<String>,
    /// Calls waiting.
    pub waiting: u32,
    /// When the longest-waiting call joined, ms since the epoch.
    pub oldest_queued_at: Option<u64>,
    /// Call-takers available.
    pub available: u32,
    /// Ringing, talking or in wrap-up.
    pub busy: u32,
    /// On pause.
    pub paused: u32,
    /// Answered in the last hour.
    pub answered_last_hour: u32,
    /// Of which within 15 s.
    pub answered_15s_last_hour: u32,
    /// Abandoned since the platform started.
    pub abandoned: u32,
    /// Calls received from partners since the start.
    pub overflow_in: u32,
    /// Calls sent to partners since the start.
    pub overflow_out: u32,
    /// Calls offered to its zones in the last hour.
    pub offered_last_hour: u32,
    /// Of those, answered within 15 s by any CTA (NENA-STA-020: a share of offered calls).
    pub offered_answered_15s_last_hour: u32,
    /// Of those, answered within 60 s by any CTA.
    pub offered_answered_60s_last_hour: u32,
    /// Work conservation: call-taker-seconds it could have lent while a call its tiers cover
    /// waited past its threshold elsewhere, since the platform started.
    pub lendable_idle_s: u64,
    /// Call-takers it keeps for its own callers, sized from its recent load.
    pub reserve: u32,
    /// Idle call-takers it can lend now.
    pub lendable: u32,
    /// Its call-takers engaged with other CTAs' calls now.
    pub lent: u32,
}

/// A département on the national map.
#[derive(Debug, Clone, Serialize)]
pub struct ZoneView {
    /// Code.
    pub departement: String,
    /// Calls waiting from it.
    pub waiting: u32,
    /// When its longest-waiting call joined, ms since the epoch.
    pub oldest_queued_at: Option<u64>,
    /// Crisis mode on.
    pub crisis: bool,
}

/// A call-taker, as the room sees them.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    /// Login.
    pub login: String,
    /// CTA.
    pub cta: String,
    /// disponible, sonnerie, en communication, fin d'appel, en pause, déconnecté.
    pub status: &'static str,
    /// Their call, if any.
    pub call: Option<u64>,
}

/// A supervision decision, kept for the room's journal.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    /// When, ms since the epoch.
    pub at: u64,
    /// Who.
    pub by: String,
    /// What.
    pub what: String,
}

/// A case handed to a partner through the Hub Santé, as the console and the room show it.
#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    /// Its `distributionID`.
    pub id: String,
    /// The call it is about.
    pub call: u64,
    /// The CTA whose call-taker sent it.
    pub cta: String,
    /// The partner service: `15` or `17`.
    pub to: &'static str,
    /// The partner in words, with its article: `le SAMU`, `la police`.
    pub partner: &'static str,
    /// `Report` for the first send, `Update` after.
    pub kind: &'static str,
    /// `queued` (on disk, until the partner acknowledges), `acked`, `refused`, `overdue`
    /// (the broker took it, no acknowledgement yet), `expired`.
    pub state: &'static str,
    /// The refusal's words.
    pub reason: Option<String>,
    /// When it was handed over, ms since the epoch.
    pub sent_at: u64,
    /// When its state last changed.
    pub at: u64,
}

/// The platform's link to the Hub Santé.
#[derive(Debug, Clone, Serialize)]
pub struct HubView {
    /// The link is open.
    pub connected: bool,
    /// Since when, ms since the epoch.
    pub since: u64,
    /// Why it is down.
    pub reason: Option<String>,
}

/// A case a partner sent the fire service.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedView {
    /// When it arrived, ms since the epoch.
    pub at: u64,
    /// The partner's hub client id.
    pub from: String,
    /// The partner's case id.
    pub case_id: String,
    /// What happens, in the partner's words.
    pub what: String,
    /// Where, when the partner said.
    pub place: Option<String>,
}

/// Cases shown, the newest: the rest is on record.
const CASES_SHOWN: usize = 200;
/// Partners' cases shown, the newest.
const RECEIVED_SHOWN: usize = 50;

/// Everything the pages show, at one instant.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Snapshot {
    /// When, ms since the epoch.
    pub at: u64,
    /// Live calls.
    pub calls: Vec<CallView>,
    /// CTAs.
    pub ctas: Vec<CtaView>,
    /// Départements.
    pub zones: Vec<ZoneView>,
    /// Call-takers logged in.
    pub agents: Vec<AgentView>,
    /// Supervision journal, newest last.
    pub journal: Vec<JournalEntry>,
    /// Cases handed to partners through the hub, newest last.
    pub cases: Vec<CaseView>,
    /// The link to the hub, when there is one.
    pub hub: Option<HubView>,
    /// Cases partners sent, newest last.
    pub received: Vec<ReceivedView>,
}

/// Counters the driver keeps per CTA between snapshots.
#[derive(Debug, Default)]
pub(crate) struct CtaCounters {
    answered: VecDeque<(u64, bool)>,
    /// When calls were offered to the CTA's zones.
    offered: VecDeque<u64>,
    /// When calls of its zones were answered within 15 s, by any CTA.
    offered_15s: VecDeque<u64>,
    /// When calls of its zones were answered within 60 s, by any CTA.
    offered_60s: VecDeque<u64>,
    /// Lendable call-taker-milliseconds left idle while a call it could take waited.
    lendable_idle_ms: u64,
    abandoned: u32,
    overflow_in: u32,
    overflow_out: u32,
}

/// The driver's bookkeeping for the pages.
#[derive(Debug, Default)]
pub struct Board {
    counters: HashMap<CtaId, CtaCounters>,
    /// When the work-conservation figure was last brought up to date.
    sampled_at: Option<Instant>,
    /// The supervisors' journal, newest last.
    pub journal: Vec<JournalEntry>,
    /// When each call's current conversation began.
    talking_since: HashMap<u64, u64>,
    /// The last lines of each text conversation.
    lines: HashMap<u64, VecDeque<TextLineView>>,
    /// Cases handed to partners, newest last.
    cases: VecDeque<CaseView>,
    /// The link to the hub.
    pub hub: Option<HubView>,
    /// Partners' cases, newest last.
    received: VecDeque<ReceivedView>,
}

impl Board {
    /// A call answered by `cta`'s call-taker, for a caller of `home`'s zones.
    pub fn answered(&mut self, cta: CtaId, home: CtaId, now: Instant, wait_ms: u64) {
        let c = self.counters.entry(cta).or_default();
        c.answered.push_back((now.0, wait_ms <= 15_000));
        let home = self.counters.entry(home).or_default();
        if wait_ms <= 15_000 {
            home.offered_15s.push_back(now.0);
        }
        if wait_ms <= 60_000 {
            home.offered_60s.push_back(now.0);
        }
    }

    /// A conversation of `call` began (a hand-back starts another).
    pub fn bridged(&mut self, call: secourir_core::CallId, now: Instant) {
        self.talking_since.insert(call.0, now.0);
    }

    /// `call` ended, or left this platform's core.
    pub fn ended(&mut self, call: secourir_core::CallId) {
        self.talking_since.remove(&call.0);
        self.lines.remove(&call.0);
    }

    /// A line was written in text conversation `call`.
    pub fn wrote(&mut self, call: secourir_core::CallId, line: TextLineView) {
        let lines = self.lines.entry(call.0).or_default();
        lines.push_back(line);
        if lines.len() > LINES_SHOWN {
            lines.pop_front();
        }
    }

    fn lines_of(&self, call: u64) -> Vec<TextLineView> {
        self.lines
            .get(&call)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A case handed over, or its new delivery state.
    pub fn case(&mut self, view: CaseView) {
        match self.cases.iter_mut().find(|c| c.id == view.id) {
            Some(known) => *known = view,
            None => {
                self.cases.push_back(view);
                if self.cases.len() > CASES_SHOWN {
                    self.cases.pop_front();
                }
            }
        }
    }

    /// A case handed over earlier, by its `distributionID`.
    pub fn case_of(&mut self, id: &str) -> Option<&mut CaseView> {
        self.cases.iter_mut().find(|c| c.id == id)
    }

    /// A partner's case arrived.
    pub fn received(&mut self, view: ReceivedView) {
        self.received.push_back(view);
        if self.received.len() > RECEIVED_SHOWN {
            self.received.pop_front();
        }
    }

    /// A call offered to `home`'s zones.
    pub fn offered(&mut self, home: CtaId, now: Instant) {
        self.counters
            .entry(home)
            .or_default()
            .offered
            .push_back(now.0);
    }

    pub fn abandoned(&mut self, cta: CtaId) {
        self.counters.entry(cta).or_default().abandoned += 1;
    }

    pub fn overflowed(&mut self, from: CtaId, to: CtaId) {
        self.counters.entry(from).or_default().overflow_out += 1;
        self.counters.entry(to).or_default().overflow_in += 1;
    }

    pub fn note(&mut self, at: Instant, by: &str, what: String) {
        self.journal.push(JournalEntry {
            at: at.0,
            by: by.to_owned(),
            what,
        });
        let excess = self.journal.len().saturating_sub(200);
        self.journal.drain(..excess);
    }

    /// Adds, since the last snapshot, the call-takers each CTA could have lent while a call that
    /// one of its tiers covers waited past its threshold in another queue: what mutual aid left
    /// unused (near zero when it works).
    fn conserve(&mut self, core: &Core, now: Instant) {
        // Snapshots come every 250 ms while anything waits; a longer gap had nothing waiting.
        let elapsed = self.sampled_at.map_or(0, |at| now.since(at).min(1_000));
        self.sampled_at = Some(now);
        if elapsed == 0 {
            return;
        }
        for (lender, spare) in core.idle_lenders_while_late() {
            self.counters.entry(lender).or_default().lendable_idle_ms += u64::from(spare) * elapsed;
        }
    }

    /// Builds the snapshot from the core and what the driver knows of each call.
    pub fn snapshot(&mut self, core: &Core, plan: &Plan, now: Instant) -> Snapshot {
        let login = |a: AgentId| {
            plan.call_takers
                .get(a.0 as usize)
                .map_or_else(|| format!("#{}", a.0), |t| t.login.clone())
        };
        self.conserve(core, now);
        let mut calls = Vec::new();
        let mut zones: HashMap<&str, (u32, Option<u64>)> = HashMap::new();
        let mut ctas = Vec::with_capacity(plan.ctas.len());
        for (i, cta) in plan.ctas.iter().enumerate() {
            let id = CtaId(i as u16);
            let status = core.cta_status(id);
            let counters = self.counters.entry(id).or_default();
            while counters
                .answered
                .front()
                .is_some_and(|(at, _)| now.0.saturating_sub(*at) > HOUR_MS)
            {
                counters.answered.pop_front();
            }
            let old = |at: u64| now.0.saturating_sub(at) > HOUR_MS;
            while counters.offered.front().is_some_and(|at| old(*at)) {
                counters.offered.pop_front();
            }
            while counters.offered_15s.front().is_some_and(|at| old(*at)) {
                counters.offered_15s.pop_front();
            }
            while counters.offered_60s.front().is_some_and(|at| old(*at)) {
                counters.offered_60s.pop_front();
            }
            ctas.push(CtaView {
                id: cta.id.clone(),
                name: cta.name.clone(),
                departements: cta.departements.clone(),
                waiting: status.waiting,
                oldest_queued_at: status.oldest_queued_at.map(|t| t.0),
                available: status.available,
                busy: status.busy,
                paused: status.paused,
                answered_last_hour: counters.answered.len() as u32,
                answered_15s_last_hour: counters.answered.iter().filter(|(_, ok)| *ok).count()
                    as u32,
                abandoned: counters.abandoned,
                overflow_in: counters.overflow_in,
                overflow_out: counters.overflow_out,
                offered_last_hour: counters.offered.len() as u32,
                offered_answered_15s_last_hour: counters.offered_15s.len() as u32,
                offered_answered_60s_last_hour: counters.offered_60s.len() as u32,
                lendable_idle_s: counters.lendable_idle_ms / 1000,
                reserve: status.reserve,
                lendable: status.lendable,
                lent: status.lent,
            });
            for info in core.waiting(id) {
                let place = info.place.as_deref();
                let departement = plan.zone(info.zone).code.clone();
                let (status, call_taker) = match info.status {
                    CallStatus::Queued => ("file", None),
                    CallStatus::Ringing(a) => ("sonnerie", Some(login(a))),
                    CallStatus::Talking(a) => ("conversation", Some(login(a))),
                };
                if status == "file" {
                    let z = zones.entry(plan.zone(info.zone).code.as_str()).or_default();
                    z.0 += 1;
                    z.1 = Some(z.1.map_or(info.queued_at.0, |t| t.min(info.queued_at.0)));
                }
                calls.push(CallView {
                    call: info.call.0,
                    cta: cta.id.clone(),
                    home: plan.cta(info.home).id.clone(),
                    home_name: plan.cta(info.home).name.clone(),
                    summary: info.summary.as_deref().map(str::to_owned),
                    status,
                    call_taker,
                    caller: info.caller.as_deref().map(str::to_owned),
                    departement,
                    commune: place.and_then(|p| p.commune.as_deref().map(str::to_owned)),
                    lat: place.and_then(|p| p.point.map(|x| x.0)),
                    lon: place.and_then(|p| p.point.map(|x| x.1)),
                    accuracy_m: place.and_then(|p| p.radius_m),
                    location_source: place
                        .map_or_else(|| "national-default".into(), |p| p.source.to_string()),
                    priority: info.priority,
                    crisis_related: info.crisis_related,
                    overflowed_from: info.overflowed_from.map(|c| plan.cta(c).id.clone()),
                    mutual_aid: info.mutual_aid,
                    suspected: info.suspected,
                    queued_at: info.queued_at.0,
                    answered_at: match info.status {
                        CallStatus::Talking(_) => self.talking_since.get(&info.call.0).copied(),
                        _ => None,
                    },
                    medium: medium_word(info.medium),
                    lines: self.lines_of(info.call.0),
                });
            }
        }
        // Calls in conversation are no longer in a queue: the agents' view finds them.
        let mut agents = Vec::new();
        for (i, t) in plan.call_takers.iter().enumerate() {
            let agent = AgentId(i as u32);
            let (status, call) = match core.agent(agent) {
                AgentStatus::Offline => continue,
                AgentStatus::Available => ("disponible", None),
                AgentStatus::Ringing(c) => ("sonnerie", Some(c.0)),
                AgentStatus::Talking(c) => ("en communication", Some(c.0)),
                AgentStatus::WrapUp => ("fin d'appel", None),
                AgentStatus::Paused => ("en pause", None),
            };
            if let Some(c) = call
                && !calls.iter().any(|v| v.call == c)
                && let Some(info) = core.call(secourir_core::CallId(c))
            {
                let place = info.place.as_deref();
                calls.push(CallView {
                    call: c,
                    cta: plan.cta(info.cta).id.clone(),
                    home: plan.cta(info.home).id.clone(),
                    home_name: plan.cta(info.home).name.clone(),
                    summary: info.summary.as_deref().map(str::to_owned),
                    status: if status == "sonnerie" {
                        "sonnerie"
                    } else {
                        "conversation"
                    },
                    call_taker: Some(t.login.clone()),
                    caller: info.caller.as_deref().map(str::to_owned),
                    departement: plan.zone(info.zone).code.clone(),
                    commune: place.and_then(|p| p.commune.as_deref().map(str::to_owned)),
                    lat: place.and_then(|p| p.point.map(|x| x.0)),
                    lon: place.and_then(|p| p.point.map(|x| x.1)),
                    accuracy_m: place.and_then(|p| p.radius_m),
                    location_source: place
                        .map_or_else(|| "national-default".into(), |p| p.source.to_string()),
                    priority: info.priority,
                    crisis_related: info.crisis_related,
                    overflowed_from: info.overflowed_from.map(|c| plan.cta(c).id.clone()),
                    mutual_aid: info.mutual_aid,
                    suspected: info.suspected,
                    queued_at: info.queued_at.0,
                    answered_at: match info.status {
                        CallStatus::Talking(_) => self.talking_since.get(&info.call.0).copied(),
                        _ => None,
                    },
                    medium: medium_word(info.medium),
                    lines: self.lines_of(info.call.0),
                });
            }
            agents.push(AgentView {
                login: t.login.clone(),
                cta: plan.cta(t.cta).id.clone(),
                status,
                call,
            });
        }
        let zones = plan
            .zones
            .iter()
            .enumerate()
            .map(|(i, z)| {
                let (waiting, oldest) = zones.get(z.code.as_str()).copied().unwrap_or_default();
                ZoneView {
                    departement: z.code.clone(),
                    waiting,
                    oldest_queued_at: oldest,
                    crisis: core.in_crisis(secourir_config::ZoneId(i as u16)),
                }
            })
            .collect();
        Snapshot {
            at: now.0,
            calls,
            ctas,
            zones,
            agents,
            journal: self.journal.clone(),
            cases: self.cases.iter().cloned().collect(),
            hub: self.hub.clone(),
            received: self.received.iter().cloned().collect(),
        }
    }
}

/// The word the pages use for a call's medium.
fn medium_word(medium: secourir_core::Medium) -> &'static str {
    match medium {
        secourir_core::Medium::Voice => "voice",
        secourir_core::Medium::Text => "text",
    }
}

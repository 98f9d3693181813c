//! The imperative shell around the routing core: it turns SIP, media and API happenings into
//! core events stamped with the wall clock, and the core's commands into SIP, media and store
//! actions. One task owns the core, so no lock guards the routing state.

use secourir_privacy::Personal;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use secourir_config::{AnnouncementId, Plan};
use secourir_core::{
    AgentId, AgentStatus, CallId, CallbackState, Command, Core, EndReason, Event, Instant, Offer,
    Outcome, PRIORITY_NORMAL, RingFailure, Step,
};
use secourir_media::{Audio, LegId, Media, MediaEvent, sdp};
use secourir_sip::{Decision, Sip, SipEvent};
use secourir_store::Write;
use secourir_territory::Territory;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::api::{ApiCall, ApiError, CallTakerView, PlatformStatus, WantedState};
use crate::live::{Board, Snapshot};
use crate::locating::{CallPlace, locate_call};
use crate::writer::StoreSender;

/// Milliseconds since the epoch, never going backwards even if the system clock does.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    last: u64,
}

impl Clock {
    pub(crate) fn now(&mut self) -> Instant {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.last = self.last.max(wall);
        Instant(self.last)
    }
}

/// What the shell keeps about a live call beside the core's own state.
struct Live {
    /// None for a simulated caller (the demonstration's), who has no SIP nor media leg.
    caller_leg: Option<LegId>,
    /// The call-taker rung or talking, and their media leg (None when simulated).
    agent: Option<(AgentId, Option<LegId>)>,
    bridged: bool,
    /// Media leg of the partner service that answered a handover: when the core ends the call
    /// as transferred, the caller stays on the line, bridged to it.
    handing_over: Option<LegId>,
    decide: Option<oneshot::Sender<Decision>>,
    answer_sdp: String,
    call_info: Vec<(String, String)>,
    /// CTA whose queue last held it, for the room's figures.
    cta: Option<secourir_config::CtaId>,
    /// Conversations recorded so far: a call handed back is recorded in a second file.
    segments: u32,
    /// Its `Offered` record is on disk: answering it now loses nothing if the platform dies.
    recorded: bool,
    /// When the core answered it, while the answer waits for the record.
    answer_waiting: Option<Instant>,
}

/// Everything the driver task owns.
pub(crate) struct Driver {
    pub(crate) core: Core,
    pub(crate) plan: Arc<Plan>,
    pub(crate) territory: &'static Territory,
    pub(crate) sip: Sip,
    pub(crate) media: Media,
    pub(crate) store: StoreSender,
    pub(crate) announcements: Vec<Option<Arc<Audio>>>,
    pub(crate) recordings: PathBuf,
    pub(crate) clock: Clock,
    pub(crate) instance: String,
    live: HashMap<CallId, Live>,
    legs: HashMap<LegId, CallId>,
    follow_ups: VecDeque<Event>,
    places: HashMap<u64, CallPlace>,
    board: Board,
    snapshots: tokio::sync::watch::Sender<Arc<Snapshot>>,
    dirty: bool,
    /// The core's answer to the pick or call-back step being fed, for the API's reply.
    answer: Option<Result<(), ApiError>>,
    /// Transfers asked by call-takers, waiting for the partner to answer.
    pending_transfers: HashMap<CallId, PendingTransfer>,
    /// Calls handed to a partner: the caller and the partner, bridged, after the core let go.
    handovers: HashMap<CallId, (Option<LegId>, LegId)>,
    /// Recordings being finished off the driver's task: whose they are, and whether the
    /// conversation was with a partner service rather than a call-taker.
    finishing: HashMap<PathBuf, (CallId, bool)>,
    /// Recordings of a conversation after a hand-back: traced, the first one stays the CDR's.
    resumed: std::collections::HashSet<PathBuf>,
    /// The demonstration: its timers come back through this sender.
    demo: Option<(mpsc::Sender<DemoInput>, crate::demo::Simulation)>,
    /// Call numbers up to this one are reserved in the store: a crash never lets one be reused.
    call_high_water: u64,
}

/// A transfer waiting for the partner service to answer.
struct PendingTransfer {
    agent: AgentId,
    to: secourir_config::Service,
    leg: LegId,
    partner: String,
    login: String,
    summary: String,
    reply: oneshot::Sender<Result<String, ApiError>>,
}

/// What the demonstration feeds the driver.
#[derive(Debug)]
pub(crate) enum DemoInput {
    /// A simulated caller dials 18 from this point.
    Call {
        /// Where.
        lat: f64,
        /// Where.
        lon: f64,
        /// Their number.
        caller: String,
    },
    /// A simulated caller's patience ran out: they hang up if still waiting.
    Patience(CallId),
    /// A simulated call-taker's phone answers.
    Answer(CallId, AgentId),
    /// A simulated call-taker ends the call.
    HangUp(CallId, AgentId),
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        plan: Arc<Plan>,
        territory: &'static Territory,
        sip: Sip,
        media: Media,
        store: StoreSender,
        announcements: Vec<Option<Arc<Audio>>>,
        recordings: PathBuf,
        instance: String,
        snapshots: tokio::sync::watch::Sender<Arc<Snapshot>>,
    ) -> Driver {
        Driver {
            core: Core::new(plan.clone()),
            plan,
            territory,
            sip,
            media,
            store,
            announcements,
            recordings,
            clock: Clock::default(),
            instance,
            live: HashMap::new(),
            legs: HashMap::new(),
            follow_ups: VecDeque::new(),
            places: HashMap::new(),
            board: Board::default(),
            snapshots,
            dirty: true,
            answer: None,
            pending_transfers: HashMap::new(),
            handovers: HashMap::new(),
            finishing: HashMap::new(),
            resumed: std::collections::HashSet::new(),
            demo: None,
            call_high_water: 0,
        }
    }

    /// Turns the demonstration on: its simulated call-takers log in at once.
    pub(crate) fn simulate(
        &mut self,
        simulation: crate::demo::Simulation,
        inputs: mpsc::Sender<DemoInput>,
    ) {
        let first = simulation.first_agent;
        self.demo = Some((inputs, simulation));
        for index in first..self.plan.call_takers.len() {
            let taker = &self.plan.call_takers[index];
            let event = Event::AgentLogin {
                agent: AgentId(index as u32),
                cta: taker.cta,
                site: taker.site,
                dequeue_preference: taker.dequeue_preference,
            };
            self.feed(event);
        }
    }

    fn accept(live: &mut Live) {
        live.answer_waiting = None;
        if let Some(decide) = live.decide.take() {
            let _ = decide.send(Decision::Accept {
                sdp: live.answer_sdp.clone(),
                headers: live.call_info.clone(),
            });
        }
    }

    /// The writer has these calls' records on disk: their callers may be answered.
    fn on_settled(&mut self, calls: Vec<u64>) {
        for call in calls {
            if let Some(live) = self.live.get_mut(&CallId(call)) {
                live.recorded = true;
                if live.answer_waiting.is_some() {
                    Self::accept(live);
                }
            }
        }
    }

    /// An emergency call is never left unanswered for its record: if the store is slow or
    /// gone, the caller is answered anyway after this long, and it is said in the log.
    fn release_overdue_answers(&mut self) {
        const PATIENCE_MS: u64 = 500;
        let now = self.clock.now();
        for (call, live) in &mut self.live {
            if live
                .answer_waiting
                .is_some_and(|at| now.since(at) >= PATIENCE_MS)
            {
                warn!(
                    ?call,
                    "call record not on disk after 500 ms: caller answered anyway"
                );
                metrics::counter!("secourir_answers_before_record_total").increment(1);
                Self::accept(live);
            }
        }
    }

    /// Gives the core what the store kept across a restart, before the first call; numbering
    /// goes on above `last_call`.
    pub(crate) fn restore(&mut self, last_call: u64, events: Vec<Event>) {
        self.call_high_water = last_call;
        for event in events {
            self.feed(event);
        }
    }

    /// Keeps the stored high-water mark of call numbers well ahead of the numbers handed out:
    /// a block at a time, renewed halfway, so that the write is durable long before the
    /// numbers it covers are all used.
    fn reserve_numbers(&mut self, call: CallId) {
        const BLOCK: u64 = 10_000;
        if call.0 + BLOCK / 2 >= self.call_high_water {
            self.call_high_water = call.0 + BLOCK;
            self.store.send(Write::HighWater {
                upto: self.call_high_water,
            });
        }
    }

    fn simulated(&self, agent: AgentId) -> bool {
        self.demo
            .as_ref()
            .is_some_and(|(_, s)| agent.0 as usize >= s.first_agent)
    }

    /// Sends `input` back to the driver after `ms` (a simulated person's delay).
    fn later(&self, ms: u64, input: DemoInput) {
        if let Some((tx, _)) = &self.demo {
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                let _ = tx.send(input).await;
            });
        }
    }

    fn on_demo(&mut self, input: DemoInput) {
        match input {
            DemoInput::Call { lat, lon, caller } => self.simulated_call(lat, lon, caller),
            DemoInput::Patience(call) => {
                let waiting = self
                    .core
                    .call(call)
                    .is_some_and(|c| c.status == secourir_core::CallStatus::Queued);
                if waiting {
                    self.feed(Event::CallerHungUp { call });
                }
            }
            DemoInput::Answer(call, agent) => {
                let ringing = self
                    .live
                    .get(&call)
                    .and_then(|l| l.agent)
                    .is_some_and(|(a, leg)| a == agent && leg.is_none());
                if ringing {
                    self.feed(Event::AgentAnswered { agent, call });
                }
            }
            DemoInput::HangUp(call, agent) => {
                if self.core.agent(agent) == AgentStatus::Talking(call) {
                    self.feed(Event::AgentHungUp { agent, call });
                }
            }
        }
    }

    fn simulated_call(&mut self, lat: f64, lon: f64, caller: String) {
        let call = self.sip.next_call();
        self.reserve_numbers(call);
        let now = self.clock.now();
        let location = secourir_location::PidfLocation {
            value: secourir_location::LocationValue::Geodetic(secourir_location::Shape::Point {
                lat,
                lon,
            }),
            method: Some("simulation".into()),
            timestamp: None,
        };
        let mut place = locate_call(self.territory, &self.plan, &[location], None, None);
        place.radius_m = Some(30.0);
        self.store.send(Write::Offered {
            call: call.0,
            emergency_call_id: format!(
                "urn:emergency:uid:callid:{:016x}{:08x}:{}",
                call.0, now.0 as u32, self.instance
            ),
            caller: Some(caller.clone().into()),
            service: secourir_config::Service::Fire.urn().to_owned(),
            at: now.0 as i64,
            lat: Some(lat.into()),
            lon: Some(lon.into()),
            radius_m: place.radius_m,
            location_source: place.source.to_owned(),
            departement: place.departement.clone(),
            commune: place.commune.clone(),
            insee: place.insee.clone(),
            trunk: Some("simulation".into()),
        });
        self.places.insert(call.0, place.clone());
        self.live.insert(
            call,
            Live {
                caller_leg: None,
                agent: None,
                bridged: false,
                handing_over: None,
                decide: None,
                answer_sdp: String::new(),
                call_info: Vec::new(),
                cta: None,
                segments: 0,
                recorded: false,
                answer_waiting: None,
            },
        );
        if let Some((_, simulation)) = &mut self.demo {
            let patience = simulation.patience_ms();
            self.later(patience, DemoInput::Patience(call));
        }
        self.board.offered(self.plan.home_cta(place.zone), now);
        self.feed(Event::Offered(Offer {
            call,
            zone: place.zone,
            service: secourir_config::Service::Fire,
            priority: PRIORITY_NORMAL,
            caller: Some(caller.into_boxed_str()),
            source: Some("simulation".into()),
        }));
    }

    /// Runs until `stop` fires, then hangs up what is left.
    pub(crate) async fn run(
        mut self,
        mut sip_events: mpsc::Receiver<SipEvent>,
        mut media_events: mpsc::Receiver<MediaEvent>,
        mut api: mpsc::Receiver<ApiCall>,
        mut demo: mpsc::Receiver<DemoInput>,
        mut settled: crate::writer::Settled,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut pages = tokio::time::interval(std::time::Duration::from_millis(250));
        pages.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.core.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => {
                        let wait = at.0.saturating_sub(self.clock.now().0);
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                Some(event) = sip_events.recv() => self.on_sip(event),
                Some(event) = media_events.recv() => self.on_media(event),
                Some(call) = api.recv() => self.on_api(call),
                Some(input) = demo.recv() => self.on_demo(input),
                Some(calls) = settled.recv() => self.on_settled(calls),
                () = sleep => self.feed(Event::Tick),
                _ = pages.tick() => {
                    self.release_overdue_answers();
                    self.publish();
                }
                _ = &mut stop => break,
            }
            self.store.flush();
        }
        // Every call the core holds ends on record: a waiting caller goes to the call-back list.
        let calls: Vec<CallId> = self.live.keys().copied().collect();
        for call in calls {
            if self.core.call(call).is_some() {
                self.feed(Event::Stopped { call });
            }
        }
        let handovers: Vec<_> = self.handovers.drain().collect();
        for (call, (caller_leg, partner_leg)) in handovers {
            self.sip.hang_up_caller(call);
            self.sip.hang_up_partner(call);
            self.end_handover(call, caller_leg, partner_leg);
        }
        let calls: Vec<CallId> = self.live.keys().copied().collect();
        for call in calls {
            self.sip.hang_up_caller(call);
            if let Some(live) = self.live.remove(&call) {
                if let Some((agent, leg)) = live.agent {
                    self.sip.hang_up_agent(call, agent);
                    if let Some(leg) = leg {
                        self.close_leg(call, leg, false);
                    }
                }
                if let Some(leg) = live.caller_leg {
                    self.close_leg(call, leg, false);
                }
            }
        }
        // A recording not in the store is a conversation lost: wait for the last ones.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.finishing.is_empty() {
            match tokio::time::timeout_at(deadline, media_events.recv()).await {
                Ok(Some(event)) => self.on_media(event),
                Ok(None) | Err(_) => break,
            }
        }
        for (path, (call, _)) in self.finishing.drain() {
            error!(?call, path = %path.display(), "recording not finished before shutdown");
        }
        self.store.finish();
    }

    /// Rebuilds what the pages show, if anything changed since the last time.
    fn publish(&mut self) {
        // Wait-time figures move with the clock even when nothing happens.
        let waiting = self.live.len();
        if !self.dirty && waiting == 0 {
            return;
        }
        self.dirty = false;
        let now = self.clock.now();
        let snapshot = self
            .board
            .snapshot(&self.core, &self.plan, &self.places, now);
        for cta in &snapshot.ctas {
            metrics::gauge!("secourir_queue_waiting", "cta" => cta.id.clone())
                .set(f64::from(cta.waiting));
            metrics::gauge!("secourir_call_takers_available", "cta" => cta.id.clone())
                .set(f64::from(cta.available));
        }
        metrics::gauge!("secourir_live_calls").set(self.core.live_calls() as f64);
        self.snapshots.send_replace(Arc::new(snapshot));
    }

    /// Feeds one event and everything it leads to.
    fn feed(&mut self, event: Event) {
        self.dirty = true;
        self.follow_ups.push_back(event);
        while let Some(event) = self.follow_ups.pop_front() {
            let now = self.clock.now();
            let commands: Vec<Command> = self.core.handle(event, now).collect();
            for command in commands {
                self.execute(command, now);
            }
        }
    }

    fn on_sip(&mut self, event: SipEvent) {
        match event {
            SipEvent::Invite {
                call,
                ingress,
                source,
                decide,
            } => {
                self.reserve_numbers(call);
                self.on_invite(call, *ingress, source, decide)
            }
            SipEvent::CallerGone { call } => {
                if let Some((caller_leg, partner_leg)) = self.handovers.remove(&call) {
                    self.sip.hang_up_partner(call);
                    self.end_handover(call, caller_leg, partner_leg);
                } else {
                    self.feed(Event::CallerHungUp { call });
                }
            }
            SipEvent::PartnerAnswered { call, sdp } => self.partner_answered(call, &sdp),
            SipEvent::PartnerFailed { call, status } => {
                if let Some(p) = self.pending_transfers.remove(&call) {
                    self.close_leg(call, p.leg, true);
                    warn!(?call, status, partner = %p.partner, "partner service did not take the call");
                    let _ = p.reply.send(Err(ApiError::Upstream(format!(
                        "{} n'a pas pris l'appel ({})",
                        p.partner,
                        if status == 0 {
                            "injoignable".to_owned()
                        } else {
                            status.to_string()
                        }
                    ))));
                }
            }
            SipEvent::PartnerGone { call } => {
                if let Some((caller_leg, partner_leg)) = self.handovers.remove(&call) {
                    self.sip.hang_up_caller(call);
                    self.end_handover(call, caller_leg, partner_leg);
                }
            }
            SipEvent::AgentAnswered { call, agent, sdp } => {
                let leg = self
                    .live
                    .get(&call)
                    .and_then(|l| l.agent)
                    .filter(|(a, _)| *a == agent)
                    .and_then(|(_, leg)| leg);
                let Some(leg) = leg else {
                    // The core gave up on this ring (timeout, caller left) as the phone answered.
                    self.sip.hang_up_agent(call, agent);
                    return;
                };
                match sdp::parse(&sdp) {
                    Ok(answer) => {
                        let codec = answer
                            .codecs
                            .first()
                            .copied()
                            .unwrap_or(secourir_media::Codec::Pcma);
                        self.media
                            .set_remote(leg, answer.addr, codec, answer.dtmf_pt);
                    }
                    Err(e) => warn!(?call, error = %e, "call-taker's SDP answer unusable"),
                }
                self.feed(Event::AgentAnswered { agent, call });
                let bridged = self.live.get(&call).is_some_and(|l| l.bridged);
                if !bridged {
                    self.sip.hang_up_agent(call, agent);
                    self.close_agent_leg(call);
                }
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
                if self
                    .live
                    .get(&call)
                    .and_then(|l| l.agent)
                    .is_some_and(|(a, _)| a == agent)
                {
                    self.close_agent_leg(call);
                    self.feed(Event::AgentRingFailed {
                        agent,
                        call,
                        reason,
                    });
                }
            }
            SipEvent::AgentGone { call, agent } => self.feed(Event::AgentHungUp { agent, call }),
            SipEvent::Registered { agent } => {
                info!(login = %self.login(agent), "phone registered")
            }
            SipEvent::Unregistered { agent } => {
                info!(login = %self.login(agent), "phone unregistered")
            }
        }
    }

    fn login(&self, agent: AgentId) -> &str {
        self.plan
            .call_takers
            .get(agent.0 as usize)
            .map_or("?", |t| t.login.as_str())
    }

    fn on_invite(
        &mut self,
        call: CallId,
        ingress: secourir_sip::Ingress,
        source: std::net::SocketAddr,
        decide: oneshot::Sender<Decision>,
    ) {
        let now = self.clock.now();
        let offer = match sdp::parse(&ingress.sdp) {
            Ok(offer) => offer,
            Err(e) => {
                info!(?call, error = %e, "INVITE without usable audio");
                let _ = decide.send(Decision::Reject {
                    code: 488,
                    reason: "Not Acceptable Here - no usable audio offer".into(),
                    retry_after_s: None,
                });
                return;
            }
        };
        let Some(codec) = sdp::choose(&offer) else {
            let _ = decide.send(Decision::Reject {
                code: 488,
                reason: "Not Acceptable Here - offer PCMA or PCMU".into(),
                retry_after_s: None,
            });
            return;
        };
        let (leg, local) = match self.media.open_leg() {
            Ok(opened) => opened,
            Err(e) => {
                warn!(?call, error = %e, "no media port for a new call");
                let _ = decide.send(Decision::Reject {
                    code: 503,
                    reason: "Service Unavailable - media ports exhausted".into(),
                    retry_after_s: Some(5),
                });
                return;
            }
        };
        self.media.set_remote(leg, offer.addr, codec, offer.dtmf_pt);
        let place = locate_call(
            self.territory,
            &self.plan,
            &ingress.locations,
            ingress.trunk.as_deref(),
            ingress.location_problem.clone(),
        );
        if let Some(problem) = &place.problem {
            info!(?call, %problem, source = place.source, "caller's location unusable, default used");
        }
        let emergency_id = ingress.upstream_call_id.clone().unwrap_or_else(|| {
            format!(
                "urn:emergency:uid:callid:{:016x}{:08x}:{}",
                call.0, now.0 as u32, self.instance
            )
        });
        let incident_id = ingress.upstream_incident_id.clone().unwrap_or_else(|| {
            format!(
                "urn:emergency:uid:incidentid:{:016x}{:08x}:{}",
                call.0, now.0 as u32, self.instance
            )
        });
        let call_info = vec![(
            "Call-Info".to_owned(),
            format!(
                "<{emergency_id}>;purpose=emergency-CallId, <{incident_id}>;purpose=emergency-IncidentId"
            ),
        )];
        self.store.send(Write::Offered {
            call: call.0,
            emergency_call_id: emergency_id.clone(),
            caller: ingress.caller.clone().map(Personal::new),
            service: ingress.service.urn().to_owned(),
            at: now.0 as i64,
            lat: place.point.map(|p| Personal::new(p.0)),
            lon: place.point.map(|p| Personal::new(p.1)),
            radius_m: place.radius_m,
            location_source: place.source.to_owned(),
            departement: place.departement.clone(),
            commune: place.commune.clone(),
            insee: place.insee.clone(),
            trunk: ingress.trunk.clone(),
        });
        if let Some(repaired) = &ingress.repaired_headers {
            info!(?call, %repaired, "call served with header lines repaired");
            self.store.send(Write::Trail {
                call: call.0,
                at: now.0 as i64,
                step: format!("en-têtes SIP réparés (octets non UTF-8) : {repaired}"),
            });
        }
        info!(
            ?call, %source, caller = ?ingress.caller.as_ref().map(Personal::new), departement = %place.departement,
            commune = ?place.commune, location = place.source, "emergency call offered"
        );
        self.legs.insert(leg, call);
        self.places.insert(call.0, place.clone());
        self.live.insert(
            call,
            Live {
                caller_leg: Some(leg),
                agent: None,
                bridged: false,
                handing_over: None,
                decide: Some(decide),
                answer_sdp: sdp::answer(local, call.0, codec, offer.dtmf_pt.map(|_| 101)),
                call_info,
                cta: None,
                segments: 0,
                recorded: false,
                answer_waiting: None,
            },
        );
        let priority = match ingress.resource_priority {
            Some(level) if level <= 1 => PRIORITY_NORMAL + 1,
            _ => PRIORITY_NORMAL,
        };
        self.board.offered(self.plan.home_cta(place.zone), now);
        self.feed(Event::Offered(Offer {
            call,
            zone: place.zone,
            service: ingress.service,
            priority,
            caller: ingress.caller.map(String::into_boxed_str),
            source: ingress.trunk.map(String::into_boxed_str),
        }));
    }

    fn on_media(&mut self, event: MediaEvent) {
        match event {
            MediaEvent::Dtmf { leg, digit } => {
                if let Some(&call) = self.legs.get(&leg) {
                    self.feed(Event::Dtmf { call, digit });
                }
            }
            MediaEvent::Recorded { path, recording } => {
                let Some((call, partner)) = self.finishing.remove(&path) else {
                    return;
                };
                let at = self.clock.now().0 as i64;
                // The first conversation's recording is the record's; the others are traced.
                let extra = match (self.resumed.remove(&path), partner) {
                    (true, _) => Some("enregistrement après retour au CTA d'origine"),
                    (false, true) => Some("enregistrement avec le partenaire"),
                    (false, false) => None,
                };
                match (recording, extra) {
                    (Some(r), Some(what)) => {
                        info!(?call, path = %r.path.display(), ms = r.duration_ms, what, "recording finished");
                        self.store.send(Write::Trail {
                            call: call.0,
                            at,
                            step: format!(
                                "{what} : {} ({} ms, sha256 {})",
                                r.path.display(),
                                r.duration_ms,
                                r.sha256
                            ),
                        });
                    }
                    (Some(r), None) => {
                        info!(?call, path = %r.path.display(), ms = r.duration_ms, "recording finished");
                        self.store.send(Write::Recording {
                            call: call.0,
                            path: r.path.display().to_string(),
                            sha256: r.sha256,
                            duration_ms: r.duration_ms,
                        });
                    }
                    (None, _) => {
                        error!(?call, path = %path.display(), "recording could not be finished");
                        metrics::counter!("secourir_recordings_failed_total").increment(1);
                        self.store.send(Write::Trail {
                            call: call.0,
                            at,
                            step: format!("enregistrement inachevé : {}", path.display()),
                        });
                    }
                }
            }
        }
    }

    /// Closes a leg; if it carried a recording, its outcome comes back as a media event.
    fn close_leg(&mut self, call: CallId, leg: LegId, partner: bool) {
        self.legs.remove(&leg);
        if let Some(path) = self.media.close(leg) {
            self.finishing.insert(path, (call, partner));
        }
    }

    /// Hangs up the call-taker's phone and closes their media leg; the caller's stays.
    fn drop_agent_leg(&mut self, call: CallId, agent: AgentId) {
        self.sip.hang_up_agent(call, agent);
        self.close_agent_leg(call);
    }

    fn close_agent_leg(&mut self, call: CallId) {
        if let Some((_, Some(leg))) = self.live.get_mut(&call).and_then(|l| l.agent.take()) {
            self.close_leg(call, leg, false);
        }
    }

    fn execute(&mut self, command: Command, now: Instant) {
        let at = now.0 as i64;
        match command {
            Command::Answer { call } => {
                // The caller is answered once the call's record is on disk, so that a crash
                // after the answer cannot lose it; the writer says when (within its 10 ms group
                // commit).
                if let Some(live) = self.live.get_mut(&call) {
                    if live.recorded {
                        Self::accept(live);
                    } else {
                        live.answer_waiting = Some(now);
                    }
                }
            }
            Command::Reject { call, reason } => {
                let (code, phrase, retry) = match &reason {
                    EndReason::NoCapacity => (
                        503,
                        "Service Unavailable - no capacity left in the zone nor the national pool"
                            .to_owned(),
                        Some(30),
                    ),
                    EndReason::Busy(why) => (486, format!("Busy Here - {why}"), None),
                    other => (500, format!("Server Internal Error - {other}"), None),
                };
                warn!(?call, code, %phrase, "call refused");
                if let Some(live) = self.live.get_mut(&call)
                    && let Some(decide) = live.decide.take()
                {
                    let _ = decide.send(Decision::Reject {
                        code,
                        reason: phrase,
                        retry_after_s: retry,
                    });
                }
            }
            Command::Play { call, announcement } => {
                if let Some(live) = self.live.get(&call) {
                    match (self.audio(announcement), live.caller_leg) {
                        (Some(audio), Some(leg)) => self.media.play(leg, audio, true),
                        (None, _) => warn!(?announcement, "announcement without audio"),
                        (Some(_), None) => {}
                    }
                    let name = &self.plan.announcements[announcement.0 as usize].id;
                    self.store.send(Write::Trail {
                        call: call.0,
                        at,
                        step: format!("annonce {name}"),
                    });
                }
            }
            Command::Ring { call, agent } => self.ring(call, agent),
            Command::CancelRing { call, agent } => self.drop_agent_leg(call, agent),
            Command::Unbridge { call, agent } => {
                // The caller stays on its leg and hears the queue's announcement again.
                self.drop_agent_leg(call, agent);
                if let Some(live) = self.live.get_mut(&call) {
                    live.bridged = false;
                }
            }
            Command::HandBackResult { result, .. } => {
                self.answer = Some(result.map_err(ApiError::HandBack));
            }
            Command::Bridge { call, agent } => {
                let Some(live) = self.live.get_mut(&call) else {
                    return;
                };
                let Some((_, agent_leg)) = live.agent else {
                    return;
                };
                live.bridged = true;
                live.segments += 1;
                if let (Some(caller_leg), Some(agent_leg)) = (live.caller_leg, agent_leg) {
                    let name = match live.segments {
                        1 => format!("call-{}.wav", call.0),
                        n => format!("call-{}-{n}.wav", call.0),
                    };
                    let path = self.recordings.join(name);
                    if live.segments > 1 {
                        self.resumed.insert(path.clone());
                    }
                    self.media.bridge(caller_leg, agent_leg, Some(path));
                }
                if self.simulated(agent)
                    && let Some((_, simulation)) = &mut self.demo
                {
                    let handling = simulation.handling_ms();
                    self.later(handling, DemoInput::HangUp(call, agent));
                }
                let info = self.core.call(call);
                if let Some(info) = &info {
                    let wait = now.since(info.queued_at);
                    self.board.answered(info.cta, info.home, now, wait);
                    let id = self.plan.cta(info.cta).id.clone();
                    metrics::counter!("secourir_calls_answered_total", "cta" => id.clone())
                        .increment(1);
                    metrics::histogram!("secourir_answer_seconds", "cta" => id)
                        .record(wait as f64 / 1000.0);
                }
                let cta = info
                    .map(|c| self.plan.cta(c.cta).id.clone())
                    .unwrap_or_default();
                let login = self.login(agent).to_owned();
                self.store.send(Write::Answered {
                    call: call.0,
                    cta,
                    call_taker: login,
                    at,
                });
            }
            Command::HangUp { call } => self.sip.hang_up_caller(call),
            Command::TransferOut { call, to } => {
                // No partner-service trunk is configured yet: the call-taker stays on the line.
                warn!(
                    ?call,
                    service = to.urn(),
                    "transfer asked but no partner trunk is configured"
                );
            }
            Command::PickResult { result, .. } => {
                self.answer = Some(result.map_err(ApiError::Pick));
            }
            Command::CallbackResult { result, .. } => {
                self.answer = Some(result.map_err(ApiError::Callback));
            }
            Command::CrisisChanged { .. } => {}
            Command::AgentChanged { agent, status } => {
                if matches!(status, AgentStatus::Paused) {
                    info!(login = %self.login(agent), "call-taker paused");
                }
            }
            Command::Callback { cta, call, state } => {
                let (state, by) = match state {
                    CallbackState::Pending => ("pending", None),
                    CallbackState::Taken(agent) => ("taken", Some(self.login(agent).to_owned())),
                    CallbackState::Done(agent) => ("done", Some(self.login(agent).to_owned())),
                };
                if let Some(login) = &by {
                    info!(?call, %login, state, "call-back updated");
                    // The list keeps the last state; the trail keeps who did what.
                    self.store.send(Write::Trail {
                        call: call.0,
                        at,
                        step: format!(
                            "rappel {} par {login}",
                            if state == "done" { "fait" } else { "pris" }
                        ),
                    });
                }
                self.store.send(Write::Callback {
                    call: call.0,
                    cta: self.plan.cta(cta).id.clone(),
                    state: state.to_owned(),
                    by,
                    at,
                });
            }
            Command::Trail { call, step } => {
                if let Step::Overflowed { from, to } = &step {
                    self.board.overflowed(*from, *to);
                }
                if let Step::Queued(cta) = &step {
                    if let Some(live) = self.live.get_mut(&call) {
                        if live.cta.is_none() {
                            let id = self.plan.cta(*cta).id.clone();
                            metrics::counter!("secourir_calls_offered_total", "cta" => id)
                                .increment(1);
                        }
                        live.cta = Some(*cta);
                    }
                    self.store.send(Write::Queued {
                        call: call.0,
                        cta: self.plan.cta(*cta).id.clone(),
                        at,
                    });
                }
                self.store.send(Write::Trail {
                    call: call.0,
                    at,
                    step: self.describe(&step),
                });
            }
            Command::Ended {
                call,
                outcome,
                reason,
            } => self.ended(call, outcome, reason, at),
        }
    }

    fn audio(&self, id: AnnouncementId) -> Option<Arc<Audio>> {
        self.announcements.get(id.0 as usize).cloned().flatten()
    }

    fn describe(&self, step: &Step) -> String {
        match step {
            Step::Admitted => "admis".into(),
            Step::RuleMatched(i) => format!("règle {i}"),
            Step::RouteFailed(cta, why) => {
                let why = match why {
                    secourir_core::FailReason::NoAnswer => "attente trop longue",
                    secourir_core::FailReason::Unreachable => "injoignable",
                    secourir_core::FailReason::Full => "file pleine",
                };
                format!("échec vers {} ({why})", self.plan.cta(*cta).id)
            }
            Step::Queued(cta) => format!("en file {}", self.plan.cta(*cta).id),
            Step::Overflowed { from, to } => format!(
                "entraide {} → {}",
                self.plan.cta(*from).id,
                self.plan.cta(*to).id
            ),
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
            Step::HandedBack { from } => {
                format!("rendu par {} à son CTA d'origine", self.plan.cta(*from).id)
            }
        }
    }

    fn ring(&mut self, call: CallId, agent: AgentId) {
        let Some(live) = self.live.get_mut(&call) else {
            return;
        };
        if self
            .demo
            .as_ref()
            .is_some_and(|(_, s)| agent.0 as usize >= s.first_agent)
        {
            live.agent = Some((agent, None));
            if let Some((_, simulation)) = &mut self.demo {
                let delay = simulation.answer_ms();
                self.later(delay, DemoInput::Answer(call, agent));
            }
            return;
        }
        let headers = live.call_info.clone();
        let failure = match self.media.open_leg() {
            Err(e) => {
                warn!(?call, error = %e, "no media port to ring a call-taker");
                Some(RingFailure::Unreachable)
            }
            Ok((leg, local)) => {
                let offer = sdp::offer(local, call.0);
                if self.sip.ring(call, agent, offer, headers) {
                    if let Some(live) = self.live.get_mut(&call) {
                        live.agent = Some((agent, Some(leg)));
                    }
                    self.legs.insert(leg, call);
                    None
                } else {
                    info!(?call, login = %self.login(agent), "call-taker's phone is not registered");
                    self.close_leg(call, leg, false);
                    Some(RingFailure::Unreachable)
                }
            }
        };
        if let Some(reason) = failure {
            self.follow_ups.push_back(Event::AgentRingFailed {
                agent,
                call,
                reason,
            });
        }
    }

    fn ended(&mut self, call: CallId, outcome: Outcome, reason: EndReason, at: i64) {
        info!(?call, outcome = outcome.as_str(), %reason, "call ended");
        self.store.send(Write::Ended {
            call: call.0,
            at,
            outcome: outcome.as_str().to_owned(),
            reason: reason.french(),
        });
        self.places.remove(&call.0);
        let Some(mut live) = self.live.remove(&call) else {
            return;
        };
        if outcome == Outcome::Abandoned
            && let Some(cta) = live.cta
        {
            self.board.abandoned(cta);
            let id = self.plan.cta(cta).id.clone();
            metrics::counter!("secourir_calls_abandoned_total", "cta" => id).increment(1);
        }
        if outcome == Outcome::Rejected {
            metrics::counter!("secourir_calls_rejected_total").increment(1);
        }
        if let Some(decide) = live.decide.take() {
            // Ended before any answer: the INVITE still waits for one.
            let _ = decide.send(Decision::Reject {
                code: 480,
                reason: format!("Temporarily Unavailable - {reason}"),
                retry_after_s: None,
            });
        }
        if let Some(partner_leg) = live.handing_over {
            // Handed over: the call-taker leaves, the caller stays with the partner service.
            if let Some((agent, leg)) = live.agent.take() {
                self.sip.hang_up_agent(call, agent);
                if let Some(leg) = leg {
                    self.close_leg(call, leg, false);
                }
            }
            if let Some(caller_leg) = live.caller_leg {
                let path = self.recordings.join(format!("call-{}-partner.wav", call.0));
                self.media.bridge(caller_leg, partner_leg, Some(path));
            }
            self.handovers.insert(call, (live.caller_leg, partner_leg));
            return;
        }
        self.sip.hang_up_caller(call);
        if let Some((agent, leg)) = live.agent.take() {
            self.sip.hang_up_agent(call, agent);
            if let Some(leg) = leg {
                // Closing one leg of a bridge finishes the recording; the other gives nothing.
                self.close_leg(call, leg, false);
            }
        }
        if let Some(leg) = live.caller_leg {
            self.close_leg(call, leg, false);
        }
    }

    /// Feeds a call-taker's request and returns the core's answer to it.
    fn ask_core(
        &mut self,
        login: &str,
        event: impl FnOnce(AgentId) -> Event,
    ) -> Result<(), ApiError> {
        let Some((index, _)) = self.plan.call_taker(login) else {
            return Err(ApiError::NotFound("opérateur inconnu"));
        };
        self.answer = None;
        self.feed(event(AgentId(index as u32)));
        self.answer
            .take()
            .unwrap_or(Err(ApiError::NotFound("pas de réponse du cœur de routage")))
    }

    fn on_api(&mut self, call: ApiCall) {
        match call {
            ApiCall::SetState {
                login,
                state,
                reply,
            } => {
                let result = self.set_state(&login, state);
                let _ = reply.send(result);
            }
            ApiCall::CallTakers { reply } => {
                let views = self
                    .plan
                    .call_takers
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let agent = AgentId(i as u32);
                        CallTakerView {
                            login: t.login.clone(),
                            cta: self.plan.cta(t.cta).id.clone(),
                            status: status_name(self.core.agent(agent)),
                            phone_registered: self.sip.is_registered(agent),
                        }
                    })
                    .collect();
                let _ = reply.send(views);
            }
            ApiCall::Callback {
                call,
                login,
                done,
                reply,
            } => {
                let call = CallId(call);
                let event = |agent| {
                    if done {
                        Event::CallbackDone { agent, call }
                    } else {
                        Event::CallbackTaken { agent, call }
                    }
                };
                let _ = reply.send(self.ask_core(&login, event));
            }
            ApiCall::Pick { login, call, reply } => {
                let call = CallId(call);
                let result = self.ask_core(&login, |agent| Event::Pick { agent, call });
                let _ = reply.send(result);
            }
            ApiCall::HangUp { login, call, reply } => {
                let result = match self.plan.call_taker(&login) {
                    None => Err(ApiError::NotFound("opérateur inconnu")),
                    Some((index, _)) => {
                        let agent = AgentId(index as u32);
                        match self.core.agent(agent) {
                            AgentStatus::Talking(c) if c.0 == call => {
                                self.feed(Event::AgentHungUp {
                                    agent,
                                    call: CallId(call),
                                });
                                Ok(())
                            }
                            _ => Err(ApiError::Forbidden("ce n'est pas votre appel")),
                        }
                    }
                };
                let _ = reply.send(result);
            }
            ApiCall::Crisis {
                login,
                departement,
                on,
                reply,
            } => {
                let result = match self.plan.zone_id(&departement) {
                    None => Err(ApiError::NotFound("département inconnu")),
                    Some(zone) => {
                        self.feed(Event::SetCrisis { zone, on });
                        let now = self.clock.now();
                        let what = format!(
                            "mode crise {} pour le {departement}",
                            if on { "activé" } else { "désactivé" }
                        );
                        info!(%login, %departement, on, "crisis mode changed");
                        self.board.note(now, &login, what);
                        Ok(())
                    }
                };
                let _ = reply.send(result);
            }
            ApiCall::Transfer {
                login,
                call,
                to,
                summary,
                reply,
            } => match self.transfer(login, CallId(call), &to, summary) {
                Ok(mut pending) => {
                    pending.reply = reply;
                    self.pending_transfers.insert(CallId(call), pending);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            ApiCall::HandBack {
                login,
                call,
                summary,
                reply,
            } => {
                let id = CallId(call);
                let result = self.ask_core(&login, |agent| Event::HandBack { agent, call: id });
                let result = result.map(|()| {
                    let home = self.core.call(id).map(|c| c.home);
                    let name = home
                        .map(|h| self.plan.cta(h).id.clone())
                        .unwrap_or_default();
                    let now = self.clock.now();
                    self.store.send(Write::Trail {
                        call,
                        at: now.0 as i64,
                        step: format!("rendu au {name} par {login} : {summary}"),
                    });
                    if let Some(place) = self.places.get_mut(&call) {
                        place.summary = Some(summary);
                    }
                    self.dirty = true;
                    name
                });
                let _ = reply.send(result);
            }
            ApiCall::Aml {
                caller,
                lat,
                lon,
                radius_m,
                reply,
            } => {
                let _ = reply.send(self.aml(&caller, lat, lon, radius_m));
            }
            ApiCall::Status { reply } => {
                let _ = reply.send(PlatformStatus {
                    live_calls: self.core.live_calls(),
                    registered_phones: self.sip.registered(),
                    open_media_legs: self.media.open_legs(),
                    malformed_refused: self
                        .sip
                        .screen_stats()
                        .replied
                        .load(std::sync::atomic::Ordering::Relaxed),
                    datagrams_dropped: self
                        .sip
                        .screen_stats()
                        .dropped
                        .load(std::sync::atomic::Ordering::Relaxed),
                });
            }
        }
    }

    fn transfer(
        &mut self,
        login: String,
        call: CallId,
        to: &str,
        summary: String,
    ) -> Result<PendingTransfer, ApiError> {
        let Some(service) = secourir_config::Service::parse(to) else {
            return Err(ApiError::NotFound(
                "service inconnu : 15, 17 ou urn:service:sos.*",
            ));
        };
        let Some(partner) = self.plan.partner_service(service).cloned() else {
            return Err(ApiError::Conflict(format!(
                "aucun partenaire configuré pour le {to}"
            )));
        };
        let Some((index, _)) = self.plan.call_taker(&login) else {
            return Err(ApiError::NotFound("opérateur inconnu"));
        };
        let agent = AgentId(index as u32);
        if self.core.agent(agent) != AgentStatus::Talking(call) {
            return Err(ApiError::Forbidden("ce n'est pas votre appel"));
        }
        if self.pending_transfers.contains_key(&call) {
            return Err(ApiError::Conflict("transfert déjà en cours".into()));
        }
        let (leg, local) = self
            .media
            .open_leg()
            .map_err(|e| ApiError::Conflict(e.to_string()))?;
        let mut headers = self
            .live
            .get(&call)
            .map(|l| l.call_info.clone())
            .unwrap_or_default();
        // The summary travels in the INVITE, on one line, bounded.
        let subject: String = summary
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(300)
            .collect();
        if !subject.is_empty() {
            headers.push(("Subject".into(), subject));
        }
        if !self
            .sip
            .call_partner(call, &partner.uri, sdp::offer(local, call.0), headers)
        {
            self.close_leg(call, leg, true);
            return Err(ApiError::Upstream(format!("{} injoignable", partner.name)));
        }
        info!(?call, %login, partner = %partner.name, "handing the call over");
        // The API's reply is put in by the caller, which owns it.
        let (placeholder, _) = oneshot::channel();
        Ok(PendingTransfer {
            agent,
            to: service,
            leg,
            partner: partner.name,
            login,
            summary,
            reply: placeholder,
        })
    }

    fn partner_answered(&mut self, call: CallId, sdp_answer: &[u8]) {
        let Some(p) = self.pending_transfers.remove(&call) else {
            self.sip.hang_up_partner(call);
            return;
        };
        if self.core.agent(p.agent) != AgentStatus::Talking(call) {
            // The conversation ended while the partner's phone rang.
            self.sip.hang_up_partner(call);
            self.close_leg(call, p.leg, true);
            let _ = p
                .reply
                .send(Err(ApiError::Conflict("l'appel a pris fin".into())));
            return;
        }
        match sdp::parse(sdp_answer) {
            Ok(answer) => {
                let codec = answer
                    .codecs
                    .first()
                    .copied()
                    .unwrap_or(secourir_media::Codec::Pcma);
                self.media
                    .set_remote(p.leg, answer.addr, codec, answer.dtmf_pt);
            }
            Err(e) => warn!(?call, error = %e, "partner's SDP answer unusable"),
        }
        if let Some(live) = self.live.get_mut(&call) {
            live.handing_over = Some(p.leg);
        }
        let now = self.clock.now();
        self.store.send(Write::Trail {
            call: call.0,
            at: now.0 as i64,
            step: format!("transféré au {} par {} : {}", p.partner, p.login, p.summary),
        });
        self.feed(Event::Transfer {
            agent: p.agent,
            call,
            to: p.to,
        });
        let _ = p.reply.send(Ok(p.partner));
    }

    fn end_handover(&mut self, call: CallId, caller_leg: Option<LegId>, partner_leg: LegId) {
        self.close_leg(call, partner_leg, true);
        if let Some(leg) = caller_leg {
            self.close_leg(call, leg, true);
        }
    }

    /// Applies an AML position to the live call from this number; its routing stays as it was.
    fn aml(&mut self, caller: &str, lat: f64, lon: f64, radius_m: Option<f64>) -> Option<u64> {
        let wanted = national_number(caller);
        let call = self
            .live
            .keys()
            .copied()
            .filter(|c| {
                self.core
                    .call(*c)
                    .and_then(|i| i.caller)
                    .is_some_and(|n| national_number(&n) == wanted)
            })
            .max()?;
        let place = self.territory.locate(lat, lon);
        let entry = self.places.get_mut(&call.0)?;
        entry.point = Some((lat, lon));
        entry.radius_m = radius_m;
        entry.source = "aml";
        if let Some(place) = place {
            entry.commune = place.commune;
            entry.insee = place.insee;
        }
        let step = format!(
            "localisation AML : {}{}",
            entry.commune.as_deref().unwrap_or("hors territoire"),
            radius_m.map_or(String::new(), |r| format!(" ±{r:.0} m"))
        );
        let now = self.clock.now();
        self.store.send(Write::Trail {
            call: call.0,
            at: now.0 as i64,
            step,
        });
        info!(?call, lat = %Personal::new(lat), lon = %Personal::new(lon), "AML location applied");
        self.dirty = true;
        Some(call.0)
    }

    fn set_state(&mut self, login: &str, wanted: WantedState) -> Result<String, ApiError> {
        let Some((index, taker)) = self.plan.call_taker(login) else {
            return Err(ApiError::NotFound("opérateur inconnu"));
        };
        let agent = AgentId(index as u32);
        let (cta, site, preference) = (taker.cta, taker.site, taker.dequeue_preference);
        let current = self.core.agent(agent);
        let event = match (wanted, current) {
            (WantedState::Available, AgentStatus::Offline) => Some(Event::AgentLogin {
                agent,
                cta,
                site,
                dequeue_preference: preference,
            }),
            (WantedState::Available, AgentStatus::Paused | AgentStatus::WrapUp) => {
                Some(Event::AgentReady { agent })
            }
            (WantedState::Paused, AgentStatus::Offline) => {
                self.feed(Event::AgentLogin {
                    agent,
                    cta,
                    site,
                    dequeue_preference: preference,
                });
                Some(Event::AgentPause { agent })
            }
            (WantedState::Paused, _) => Some(Event::AgentPause { agent }),
            (WantedState::Offline, AgentStatus::Offline) => None,
            (WantedState::Offline, _) => Some(Event::AgentLogout { agent }),
            (WantedState::Available, _) => None,
        };
        if let Some(event) = event {
            self.feed(event);
        }
        Ok(status_name(self.core.agent(agent)))
    }
}

/// A French number in its national form (`0601020304`), whatever way it was written.
fn national_number(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix("33") {
        Some(rest) if number.trim_start().starts_with('+') || digits.len() == 11 => {
            format!("0{rest}")
        }
        _ => digits,
    }
}

/// The name of a call-taker status in the API.
pub(crate) fn status_name(status: AgentStatus) -> String {
    match status {
        AgentStatus::Available => "available",
        AgentStatus::Ringing(_) => "ringing",
        AgentStatus::Talking(_) => "talking",
        AgentStatus::WrapUp => "wrap-up",
        AgentStatus::Paused => "paused",
        AgentStatus::Offline => "offline",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::national_number;

    #[test]
    fn numbers_are_compared_in_national_form() {
        for written in [
            "0601020304",
            "+33601020304",
            "+33 6 01 02 03 04",
            "33601020304",
            "06.01.02.03.04",
        ] {
            assert_eq!(national_number(written), "0601020304", "{written}");
        }
        assert_eq!(national_number("+3214567890"), "3214567890");
    }
}

//! The discrete-event loop: callers, call-takers and phones simulated around the real core.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use chrono::Timelike;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, Exp, LogNormal};
use rustc_hash::FxHashMap;
use secourir_config::{AnnouncementId, CtaId, Plan, ZoneId};
use secourir_core::{
    AgentId, AgentStatus, CallId, CallbackState, Command, Core, Event, Instant, Medium, Offer,
    Outcome, Service, Step,
};

use crate::scenario::{Demand, Distribution, RecordedCall, Scenario, Staffing};
use crate::stats::ZoneStats;

/// A scenario that names things the configuration does not have.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A zone that no CTA serves.
    #[error("unknown zone {0:?} in the scenario")]
    UnknownZone(String),
    /// A CTA that the configuration does not define.
    #[error("unknown CTA {0:?} in the scenario")]
    UnknownCta(String),
    /// A distribution parameter out of range.
    #[error("bad handling parameters: {0}")]
    BadHandling(String),
}

/// Number of points of the time series drawn in the SVG.
pub const SERIES_POINTS: usize = 288;

/// Per-bucket figures of one CTA, for the charts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Point {
    /// Most calls waiting during the bucket.
    pub queue_max: u32,
    /// Sum of answer times of calls answered in the bucket, ms.
    pub answer_sum_ms: u64,
    /// Calls answered in the bucket.
    pub answered: u32,
    /// Call-taker-milliseconds the zone's CTA could have lent while a call it could take
    /// waited past its threshold (work conservation), counted on the CTA's first zone.
    pub lendable_idle_ms: u64,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// Counters per zone, indexed like `Plan::zones`.
    pub zones: Vec<ZoneStats>,
    /// National counters.
    pub national: ZoneStats,
    /// National counters of voice calls, then of text conversations.
    pub by_medium: [ZoneStats; 2],
    /// Calls offered.
    pub calls: u64,
    /// Events fed to the core.
    pub core_events: u64,
    /// Time series per zone (of its CTA's queue and of its own answers), `SERIES_POINTS` each.
    pub series: Vec<Vec<Point>>,
    /// Width of a series bucket, ms.
    pub bucket_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Arrival(u16, u32),
    /// The n-th call of a recorded demand.
    Recorded(u32),
    RateChange,
    Abandon(CallId),
    Answer(AgentId, CallId),
    HangUp(AgentId, CallId),
    Ready(AgentId),
    Dtmf(CallId),
    SurgeStart(u16),
    SurgeEnd(u16),
    OutageStart(u16),
    OutageEnd(u16),
    CoreTick,
    /// Reads the core's state for the work-conservation figure; feeds it nothing.
    Sample,
}

/// Interval at which idle call-takers that could help are counted, ms.
const SAMPLE_MS: u64 = 1_000;

#[derive(Debug, Clone, Copy)]
struct SimCall {
    zone: u16,
    offered_at: u64,
    related: bool,
    talk_ms: u64,
    ring_fails: bool,
    queue: Option<u16>,
    cta: u16,
    overflowed: bool,
    answered: bool,
    medium: Medium,
}

struct Sim<'a> {
    scenario: &'a Scenario,
    plan: Arc<Plan>,
    core: Core,
    now: u64,
    end: u64,
    sequence: u64,
    events: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    calls: FxHashMap<u64, SimCall>,
    abandoned_zone: FxHashMap<u64, (u16, Medium)>,
    next_call: u64,
    next_agent: u32,
    /// Zone rates, calls per millisecond, before surges.
    base_rate: Vec<f64>,
    /// Current zone rates with profile and surges.
    rate: Vec<f64>,
    /// One random stream per zone, so that a surge in one zone leaves the draws of the others
    /// unchanged and a baseline comparison measures effects, not noise.
    zone_rng: Vec<ChaCha8Rng>,
    arrival_generation: Vec<u32>,
    next_rate_change: u64,
    surge_active: Vec<bool>,
    outage_active: Vec<bool>,
    roster: Vec<Vec<AgentId>>,
    staffing: Vec<(u32, u32)>,
    queue_len: Vec<u32>,
    first_zone_of_cta: Vec<u16>,
    crisis_announcements: Vec<AnnouncementId>,
    scheduled_tick: Option<u64>,
    stats: Vec<ZoneStats>,
    national: ZoneStats,
    national_live: u32,
    series: Vec<Vec<Point>>,
    bucket_ms: u64,
    core_events: u64,
    buffer: Vec<Command>,
    handling: Handler,
    patience: Option<Exp<f64>>,
    /// The share of callers who write, and their conversation times.
    text: Option<(f64, Handler)>,
    /// National counters by medium: voice, then text.
    by_medium: [ZoneStats; 2],
}

/// Where a medium's counters are in `by_medium`.
fn slot(medium: Medium) -> usize {
    match medium {
        Medium::Voice => 0,
        Medium::Text => 1,
    }
}

/// Draws conversation times.
enum Handler {
    LogNormal(LogNormal<f64>),
    Exponential(Exp<f64>),
    Fixed(f64),
}

/// Log-normal conversation times of this mean and deviation, seconds.
fn log_normal(mean_s: f64, sd_s: f64) -> Result<Handler, SimError> {
    // Parameters of the underlying normal from the wanted mean and deviation.
    let sigma2 = (1.0 + (sd_s / mean_s).powi(2)).ln();
    let mu = mean_s.ln() - sigma2 / 2.0;
    Ok(Handler::LogNormal(
        LogNormal::new(mu, sigma2.sqrt()).map_err(|e| SimError::BadHandling(e.to_string()))?,
    ))
}

impl Handler {
    fn sample_ms(&self, rng: &mut ChaCha8Rng) -> u64 {
        let seconds = match self {
            Handler::LogNormal(d) => d.sample(rng),
            Handler::Exponential(d) => d.sample(rng),
            Handler::Fixed(s) => *s,
        };
        (seconds * 1000.0).round().max(1.0) as u64
    }
}

/// Runs a scenario through a fresh core; `progress` is told the share of simulated time done.
pub fn simulate(
    scenario: &Scenario,
    plan: Arc<Plan>,
    progress: &mut dyn FnMut(f64),
) -> Result<Run, SimError> {
    let mut sim = Sim::new(scenario, plan)?;
    sim.run(progress);
    Ok(sim.finish())
}

impl<'a> Sim<'a> {
    fn new(scenario: &'a Scenario, plan: Arc<Plan>) -> Result<Sim<'a>, SimError> {
        let h = &scenario.handling;
        let handling = match h.distribution {
            Distribution::LogNormal => log_normal(h.mean_s, h.sd_s)?,
            Distribution::Exponential => Handler::Exponential(
                Exp::new(1.0 / h.mean_s).map_err(|e| SimError::BadHandling(e.to_string()))?,
            ),
            Distribution::Fixed => Handler::Fixed(h.mean_s),
        };
        let text = match &scenario.text {
            Some(t) if t.share > 0.0 => Some((t.share, log_normal(t.mean_s, t.sd_s)?)),
            _ => None,
        };
        let patience = match h.patience_mean_s {
            Some(mean) => {
                Some(Exp::new(1.0 / mean).map_err(|e| SimError::BadHandling(e.to_string()))?)
            }
            None => None,
        };
        let zones = plan.zones.len();
        let base_rate = base_rates(scenario, &plan)?;
        for surge in &scenario.surges {
            for zone in &surge.zones {
                plan.zone_id(zone)
                    .ok_or_else(|| SimError::UnknownZone(zone.clone()))?;
            }
        }
        for outage in &scenario.outages {
            plan.cta_id(&outage.cta)
                .ok_or_else(|| SimError::UnknownCta(outage.cta.clone()))?;
        }
        let staffing = staffing(scenario, &plan, &base_rate);
        let mut first_zone_of_cta = vec![0u16; plan.ctas.len()];
        for (z, zone) in plan.zones.iter().enumerate().rev() {
            first_zone_of_cta[usize::from(zone.cta.0)] = z as u16;
        }
        let crisis_announcements = plan
            .announcements
            .iter()
            .enumerate()
            .filter(|(_, a)| a.menu)
            .map(|(i, _)| AnnouncementId(i as u16))
            .collect();
        let bucket_ms = (scenario.duration_ms / SERIES_POINTS as u64).max(1);
        Ok(Sim {
            scenario,
            core: Core::new(Arc::clone(&plan)),
            now: scenario.start_ms,
            end: scenario.start_ms + scenario.duration_ms,
            sequence: 0,
            events: BinaryHeap::new(),
            calls: FxHashMap::default(),
            abandoned_zone: FxHashMap::default(),
            next_call: 1,
            next_agent: 1,
            rate: vec![0.0; zones],
            zone_rng: (0..zones)
                .map(|z| {
                    let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
                    rng.set_stream(z as u64 + 1);
                    rng
                })
                .collect(),
            base_rate,
            arrival_generation: vec![0; zones],
            next_rate_change: scenario.start_ms,
            surge_active: vec![false; scenario.surges.len()],
            outage_active: vec![false; plan.ctas.len()],
            roster: vec![Vec::new(); plan.ctas.len()],
            staffing,
            queue_len: vec![0; plan.ctas.len()],
            first_zone_of_cta,
            crisis_announcements,
            scheduled_tick: None,
            stats: vec![ZoneStats::default(); zones],
            national: ZoneStats::default(),
            national_live: 0,
            series: vec![vec![Point::default(); SERIES_POINTS]; zones],
            bucket_ms,
            core_events: 0,
            buffer: Vec::with_capacity(64),
            handling,
            patience,
            text,
            by_medium: Default::default(),
            plan,
        })
    }

    fn at(&mut self, at: u64, ev: Ev) {
        self.sequence += 1;
        self.events.push(Reverse((at, self.sequence, ev)));
    }

    fn run(&mut self, progress: &mut dyn FnMut(f64)) {
        let start = self.scenario.start_ms;
        for (i, surge) in self.scenario.surges.iter().enumerate() {
            self.at(start + surge.start_ms, Ev::SurgeStart(i as u16));
            self.at(
                start + surge.start_ms + surge.duration_ms,
                Ev::SurgeEnd(i as u16),
            );
        }
        for (i, outage) in self.scenario.outages.iter().enumerate() {
            let cta = self.plan.cta_id(&outage.cta).map_or(0, |c| c.0);
            let _ = i;
            self.at(start + outage.start_ms, Ev::OutageStart(cta));
            self.at(
                start + outage.start_ms + outage.duration_ms,
                Ev::OutageEnd(cta),
            );
        }
        if let Demand::Recorded(calls) = &self.scenario.demand {
            for (i, call) in calls.iter().enumerate() {
                self.at(start + call.offset_ms, Ev::Recorded(i as u32));
            }
        }
        self.at(start, Ev::RateChange);
        self.at(start + SAMPLE_MS, Ev::Sample);
        let mut handled: u64 = 0;
        while let Some(Reverse((at, _, ev))) = self.events.pop() {
            if at > self.end {
                break;
            }
            self.now = at;
            self.step(ev);
            handled += 1;
            if handled.is_multiple_of(65_536) {
                progress((self.now - start) as f64 / self.scenario.duration_ms as f64);
            }
        }
        progress(1.0);
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Arrival(zone, generation) => {
                if generation == self.arrival_generation[usize::from(zone)] {
                    self.arrival(usize::from(zone), None);
                    self.schedule_arrival(usize::from(zone));
                }
            }
            Ev::Recorded(i) => {
                if let Demand::Recorded(calls) = &self.scenario.demand
                    && let Some(call) = calls.get(i as usize).copied()
                {
                    self.arrival(usize::from(call.zone.0), Some(call));
                }
            }
            Ev::RateChange => self.rate_change(),
            Ev::Abandon(call) => {
                if self.calls.get(&call.0).is_some_and(|c| !c.answered) {
                    self.feed(Event::CallerHungUp { call });
                }
            }
            Ev::Answer(agent, call) => self.feed(Event::AgentAnswered { agent, call }),
            Ev::HangUp(agent, call) => self.feed(Event::AgentHungUp { agent, call }),
            Ev::Ready(agent) => self.feed(Event::AgentReady { agent }),
            Ev::Dtmf(call) => self.feed(Event::Dtmf { call, digit: b'1' }),
            Ev::SurgeStart(i) | Ev::SurgeEnd(i) => {
                let on = matches!(ev, Ev::SurgeStart(_));
                self.surge_active[usize::from(i)] = on;
                let surge = &self.scenario.surges[usize::from(i)];
                if surge.crisis {
                    let zones: Vec<ZoneId> = surge
                        .zones
                        .iter()
                        .filter_map(|z| self.plan.zone_id(z))
                        .collect();
                    for zone in zones {
                        self.feed(Event::SetCrisis { zone, on });
                    }
                }
                self.recompute_rates();
                // Only the surging zones draw again, so every other zone keeps its stream.
                let zones: Vec<usize> = surge
                    .zones
                    .iter()
                    .filter_map(|z| self.plan.zone_id(z))
                    .map(|z| usize::from(z.0))
                    .collect();
                for zone in zones {
                    self.schedule_arrival(zone);
                }
            }
            Ev::OutageStart(cta) | Ev::OutageEnd(cta) => {
                let on = matches!(ev, Ev::OutageStart(_));
                self.outage_active[usize::from(cta)] = on;
                self.feed(Event::SetDisabled {
                    cta: CtaId(cta),
                    disabled: on,
                });
                self.apply_staffing();
            }
            Ev::Sample => {
                self.sample();
                self.at(self.now + SAMPLE_MS, Ev::Sample);
            }
            Ev::CoreTick => {
                if self.scheduled_tick == Some(self.now) {
                    self.scheduled_tick = None;
                }
                self.feed(Event::Tick);
            }
        }
    }

    /// Counts, for the last `SAMPLE_MS`, the call-takers each CTA could have lent while a call
    /// that its tiers cover waited past its threshold in another queue: what mutual aid left
    /// unused.
    fn sample(&mut self) {
        // Nothing waits anywhere (most of an ordinary day): nothing could have been helped.
        if self.queue_len.iter().all(|&q| q == 0) {
            return;
        }
        for (lender, spare) in self.core.idle_lenders_while_late() {
            let zone = usize::from(self.first_zone_of_cta[usize::from(lender.0)]);
            let ms = u64::from(spare) * SAMPLE_MS;
            self.stats[zone].lendable_idle_ms += ms;
            self.national.lendable_idle_ms += ms;
            let bucket = self.bucket();
            self.series[zone][bucket].lendable_idle_ms += ms;
        }
    }

    /// Hourly: the profile moves on, shifts change at 07:00 and 19:00.
    fn rate_change(&mut self) {
        self.recompute_rates();
        self.apply_staffing();
        let next_hour = (self.now / 3_600_000 + 1) * 3_600_000;
        self.next_rate_change = next_hour;
        self.at(next_hour, Ev::RateChange);
        for zone in 0..self.rate.len() {
            self.schedule_arrival(zone);
        }
    }

    fn local_hour(&self) -> usize {
        let millis = i64::try_from(self.now).unwrap_or(i64::MAX);
        chrono::DateTime::from_timestamp_millis(millis).map_or(0, |utc| {
            utc.with_timezone(&self.plan.timezone).hour() as usize
        })
    }

    fn recompute_rates(&mut self) {
        let factor = match &self.scenario.demand {
            Demand::National { profile, .. } => {
                let mean = profile.iter().sum::<f64>() / 24.0;
                profile[self.local_hour()] / mean
            }
            Demand::Zones(_) => 1.0,
            // Recorded calls come at their own instants, none drawn.
            Demand::Recorded(_) => 0.0,
        };
        let mut multiplier = vec![1.0f64; self.base_rate.len()];
        for (i, surge) in self.scenario.surges.iter().enumerate() {
            if self.surge_active[i] {
                for zone in surge.zones.iter().filter_map(|z| self.plan.zone_id(z)) {
                    multiplier[usize::from(zone.0)] *= surge.multiplier;
                }
            }
        }
        for (z, rate) in self.base_rate.iter().enumerate() {
            self.rate[z] = rate * factor * multiplier[z];
        }
    }

    /// Draws the next arrival of a zone's Poisson process at its current rate; a rate change
    /// redraws it (exact, since exponential gaps have no memory).
    fn schedule_arrival(&mut self, zone: usize) {
        self.arrival_generation[zone] = self.arrival_generation[zone].wrapping_add(1);
        let rate = self.rate[zone];
        if rate <= 0.0 {
            return;
        }
        let u: f64 = self.zone_rng[zone].random();
        let gap = -(1.0 - u).ln() / rate;
        let at = self.now + gap.ceil().max(1.0) as u64;
        if at < self.next_rate_change {
            let generation = self.arrival_generation[zone];
            self.at(at, Ev::Arrival(zone as u16, generation));
        }
    }

    /// A call offered in `zone`; a recorded one keeps its own conversation time and, if its
    /// caller gave up, their patience (the rest is drawn as for any call).
    fn arrival(&mut self, zone: usize, recorded: Option<RecordedCall>) {
        // Every draw of the call comes from its zone's stream, at arrival, in a fixed order.
        let multiplier = self.current_multiplier(zone);
        let h = &self.scenario.handling;
        let rng = &mut self.zone_rng[zone];
        let related_draw: f64 = rng.random();
        let ring_draw: f64 = rng.random();
        let mut patience_ms = self
            .patience
            .as_ref()
            .map(|p| ((p.sample(rng) * 1000.0) as u64).max(1));
        let mut talk_ms = self.handling.sample_ms(rng);
        // Drawn only when the scenario has writers, so that a scenario without keeps its draws.
        let mut medium = Medium::Voice;
        if let Some((share, texts)) = &self.text
            && rng.random::<f64>() < *share
        {
            medium = Medium::Text;
            talk_ms = texts.sample_ms(rng);
        }
        if let Some(recorded) = recorded {
            talk_ms = recorded.talk_ms.unwrap_or(talk_ms).max(1);
            if let Some(waited) = recorded.patience_ms {
                patience_ms = Some(waited.max(1));
            }
        }
        // In a surging zone, the extra calls are about the incident and may say so at the menu.
        let related = multiplier > 1.0
            && related_draw < (multiplier - 1.0) / multiplier * h.crisis_related_share;
        let id = self.next_call;
        self.next_call += 1;
        let home = self.plan.zones[zone].cta.0;
        self.calls.insert(
            id,
            SimCall {
                zone: zone as u16,
                offered_at: self.now,
                related,
                talk_ms,
                ring_fails: ring_draw < h.ring_no_answer,
                queue: None,
                cta: home,
                overflowed: false,
                answered: false,
                medium,
            },
        );
        self.stats[zone].offered += 1;
        self.national.offered += 1;
        self.by_medium[slot(medium)].offered += 1;
        if let Some(wait) = patience_ms {
            self.at(self.now + wait, Ev::Abandon(CallId(id)));
        }
        self.feed(Event::Offered(Offer {
            call: CallId(id),
            zone: ZoneId(zone as u16),
            service: Service::Fire,
            resource_priority: None,
            caller: None,
            source: None,
            place: None,
            suspected: false,
            refused: None,
            medium,
        }));
    }

    fn current_multiplier(&self, zone: usize) -> f64 {
        let mut m = 1.0;
        for (i, surge) in self.scenario.surges.iter().enumerate() {
            if self.surge_active[i]
                && surge.zones.iter().any(|z| {
                    self.plan
                        .zone_id(z)
                        .is_some_and(|id| usize::from(id.0) == zone)
                })
            {
                m *= surge.multiplier;
            }
        }
        m
    }

    fn is_day(&self) -> bool {
        (7..19).contains(&self.local_hour())
    }

    fn apply_staffing(&mut self) {
        let day = self.is_day();
        for cta in 0..self.plan.ctas.len() {
            let (d, n) = self.staffing[cta];
            let target = if self.outage_active[cta] {
                0
            } else if day {
                d
            } else {
                n
            } as usize;
            while self.roster[cta].len() < target {
                let agent = AgentId(self.next_agent);
                self.next_agent += 1;
                self.roster[cta].push(agent);
                self.feed(Event::AgentLogin {
                    agent,
                    cta: CtaId(cta as u16),
                    site: 0,
                    dequeue_preference: 3,
                });
            }
            while self.roster[cta].len() > target {
                let Some(agent) = self.roster[cta].pop() else {
                    break;
                };
                // A call-taker in conversation finishes it before leaving (the core defers).
                self.feed(Event::AgentLogout { agent });
            }
        }
    }

    /// Feeds one event to the core and plays the simulated world's part of its commands.
    fn feed(&mut self, event: Event) {
        self.core_events += 1;
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        buffer.extend(self.core.handle(event, Instant(self.now)));
        for command in &buffer {
            self.absorb(command);
        }
        self.buffer = buffer;
        if let Some(deadline) = self.core.next_deadline()
            && self.scheduled_tick.is_none_or(|t| deadline.0 < t)
        {
            let at = deadline.0.max(self.now);
            self.scheduled_tick = Some(at);
            self.at(at, Ev::CoreTick);
        }
    }

    fn bucket(&self) -> usize {
        (((self.now - self.scenario.start_ms) / self.bucket_ms) as usize).min(SERIES_POINTS - 1)
    }

    fn absorb(&mut self, command: &Command) {
        match command {
            Command::Answer { call } => {
                if let Some(c) = self.calls.get(&call.0) {
                    let z = usize::from(c.zone);
                    self.stats[z].live += 1;
                    self.stats[z].peak_simultaneous =
                        self.stats[z].peak_simultaneous.max(self.stats[z].live);
                    self.national_live += 1;
                    self.national.peak_simultaneous =
                        self.national.peak_simultaneous.max(self.national_live);
                }
            }
            Command::Play { call, announcement } => {
                let related = self.calls.get(&call.0).is_some_and(|c| c.related);
                if related && self.crisis_announcements.contains(announcement) {
                    self.at(self.now + 6_000, Ev::Dtmf(*call));
                }
            }
            Command::Ring { call, agent } => {
                self.leave_queue(call.0);
                // Only the first ring of a call may go unanswered, as drawn at its arrival.
                let refuse = match self.calls.get_mut(&call.0) {
                    Some(c) => std::mem::take(&mut c.ring_fails),
                    None => false,
                };
                if !refuse {
                    let delay = (self.scenario.handling.answer_delay_s * 1000.0) as u64;
                    self.at(self.now + delay, Ev::Answer(*agent, *call));
                }
            }
            Command::Bridge { call, agent, .. } => {
                let bucket = self.bucket();
                let Some(c) = self.calls.get_mut(&call.0) else {
                    return;
                };
                c.answered = true;
                let wait = self.now - c.offered_at;
                let z = usize::from(c.zone);
                self.stats[z].answered += 1;
                self.stats[z].answers.record(wait);
                self.national.answered += 1;
                self.national.answers.record(wait);
                let by_medium = &mut self.by_medium[slot(c.medium)];
                by_medium.answered += 1;
                by_medium.answers.record(wait);
                let point = &mut self.series[z][bucket];
                point.answered += 1;
                point.answer_sum_ms += wait;
                let talk = c.talk_ms;
                self.at(self.now + talk, Ev::HangUp(*agent, *call));
            }
            Command::Ended { call, outcome, .. } => {
                self.leave_queue(call.0);
                let Some(c) = self.calls.remove(&call.0) else {
                    return;
                };
                let z = usize::from(c.zone);
                // A refused call never got an `Answer`, so it was never counted live.
                let admitted = !matches!(outcome, Outcome::Rejected);
                match outcome {
                    Outcome::Abandoned => {
                        self.stats[z].abandoned += 1;
                        self.national.abandoned += 1;
                        self.by_medium[slot(c.medium)].abandoned += 1;
                        self.abandoned_zone.insert(call.0, (c.zone, c.medium));
                    }
                    Outcome::Rejected => {
                        self.stats[z].rejected += 1;
                        self.national.rejected += 1;
                        self.by_medium[slot(c.medium)].rejected += 1;
                    }
                    Outcome::Completed | Outcome::Transferred => {}
                }
                if admitted && self.stats[z].live > 0 {
                    self.stats[z].live -= 1;
                    self.national_live = self.national_live.saturating_sub(1);
                }
            }
            Command::Callback {
                call,
                state: CallbackState::Pending,
                ..
            } => {
                if let Some((zone, medium)) = self.abandoned_zone.remove(&call.0) {
                    self.stats[usize::from(zone)].callbacks += 1;
                    self.national.callbacks += 1;
                    self.by_medium[slot(medium)].callbacks += 1;
                }
            }
            Command::AgentChanged {
                agent,
                status: AgentStatus::Paused,
            } => {
                let back = (self.scenario.handling.back_after_pause_s * 1000.0) as u64;
                self.at(self.now + back, Ev::Ready(*agent));
            }
            Command::Trail { call, step } => self.trail(call.0, step),
            _ => {}
        }
    }

    fn trail(&mut self, call: u64, step: &Step) {
        match step {
            Step::Queued(cta) => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.queue = Some(cta.0);
                    c.cta = cta.0;
                    self.join_queue(cta.0);
                }
            }
            Step::Requeued(_) => {
                if let Some(c) = self.calls.get_mut(&call) {
                    let cta = c.cta;
                    c.queue = Some(cta);
                    self.join_queue(cta);
                }
            }
            Step::Overflowed { to, .. } => {
                self.leave_queue(call);
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                c.cta = to.0;
                if !c.overflowed {
                    c.overflowed = true;
                    let zone = usize::from(c.zone);
                    self.stats[zone].overflow_out += 1;
                    self.national.overflow_out += 1;
                    let to_zone = usize::from(self.first_zone_of_cta[usize::from(to.0)]);
                    self.stats[to_zone].overflow_in += 1;
                    self.national.overflow_in += 1;
                }
            }
            _ => {}
        }
    }

    fn join_queue(&mut self, cta: u16) {
        let len = &mut self.queue_len[usize::from(cta)];
        *len += 1;
        let len = *len;
        let zone = usize::from(self.first_zone_of_cta[usize::from(cta)]);
        let bucket = self.bucket();
        // Every zone of the CTA sees the same queue.
        for (z, zone_plan) in self.plan.zones.iter().enumerate() {
            if zone_plan.cta.0 == cta {
                let s = &mut self.stats[z];
                s.longest_queue = s.longest_queue.max(len);
            }
        }
        let point = &mut self.series[zone][bucket];
        point.queue_max = point.queue_max.max(len);
        self.national.longest_queue = self.national.longest_queue.max(len);
    }

    fn leave_queue(&mut self, call: u64) {
        if let Some(c) = self.calls.get_mut(&call)
            && let Some(cta) = c.queue.take()
        {
            self.queue_len[usize::from(cta)] -= 1;
        }
    }

    fn finish(self) -> Run {
        // Zones of a CTA share its queue series: copy the first zone's queue to the others.
        let mut series = self.series;
        for (z, zone) in self.plan.zones.iter().enumerate() {
            let first = usize::from(self.first_zone_of_cta[usize::from(zone.cta.0)]);
            if first != z {
                let queue: Vec<u32> = series[first].iter().map(|p| p.queue_max).collect();
                for (point, q) in series[z].iter_mut().zip(queue) {
                    point.queue_max = q;
                }
            }
        }
        Run {
            zones: self.stats,
            national: self.national,
            by_medium: self.by_medium,
            calls: self.next_call - 1,
            core_events: self.core_events,
            series,
            bucket_ms: self.bucket_ms,
        }
    }
}

/// Calls per millisecond of each zone before profile and surges.
fn base_rates(scenario: &Scenario, plan: &Plan) -> Result<Vec<f64>, SimError> {
    match &scenario.demand {
        Demand::National { calls_per_year, .. } => {
            let population: u64 = plan.zones.iter().map(|z| z.population).sum::<u64>().max(1);
            let per_ms = calls_per_year / (365.0 * 86_400_000.0);
            Ok(plan
                .zones
                .iter()
                .map(|z| per_ms * z.population as f64 / population as f64)
                .collect())
        }
        Demand::Zones(rates) => {
            let mut out = vec![0.0; plan.zones.len()];
            for (code, per_hour) in rates {
                let zone = plan
                    .zone_id(code)
                    .ok_or_else(|| SimError::UnknownZone(code.clone()))?;
                out[usize::from(zone.0)] = per_hour / 3_600_000.0;
            }
            Ok(out)
        }
        // The calls come at their own instants; the rates say how many per zone, for sizing.
        Demand::Recorded(calls) => {
            let mut out = vec![0.0; plan.zones.len()];
            let span = (scenario.duration_ms as f64).max(1.0);
            for call in calls {
                let zone = usize::from(call.zone.0);
                if zone >= out.len() {
                    return Err(SimError::UnknownZone(format!("index {zone}")));
                }
                out[zone] += 1.0 / span;
            }
            Ok(out)
        }
    }
}

/// Call-takers by day and by night for each CTA.
fn staffing(scenario: &Scenario, plan: &Plan, base_rate: &[f64]) -> Vec<(u32, u32)> {
    match scenario.staffing {
        Staffing::Config => plan
            .ctas
            .iter()
            .map(|c| (c.staffing.day, c.staffing.night))
            .collect(),
        Staffing::Erlang { within_s, share } => {
            let (day_peak, night_peak) = match &scenario.demand {
                Demand::National { profile, .. } => {
                    let mean = profile.iter().sum::<f64>() / 24.0;
                    let day = profile[7..19].iter().copied().fold(0.0, f64::max) / mean;
                    let night = profile[..7]
                        .iter()
                        .chain(&profile[19..])
                        .copied()
                        .fold(0.0, f64::max)
                        / mean;
                    (day, night)
                }
                Demand::Zones(_) | Demand::Recorded(_) => (1.0, 1.0),
            };
            plan.ctas
                .iter()
                .enumerate()
                .map(|(c, cta)| {
                    let rate_ms: f64 = plan
                        .zones
                        .iter()
                        .zip(base_rate)
                        .filter(|(z, _)| usize::from(z.cta.0) == c)
                        .map(|(_, r)| r)
                        .sum();
                    let holding_s = scenario.handling.mean_s
                        + cta.wrap_up_ms as f64 / 1000.0
                        + scenario.handling.answer_delay_s;
                    let size = |peak: f64| {
                        let load = rate_ms * peak * 1000.0 * holding_s;
                        if load <= 0.0 {
                            1
                        } else {
                            secourir_erlang::agents_for_service_level(
                                load, holding_s, within_s, share,
                            )
                        }
                    };
                    (size(day_peak), size(night_peak))
                })
                .collect()
        }
    }
}

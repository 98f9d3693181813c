//! The demonstration: simulated callers across France and simulated call-takers answering them,
//! so that a newcomer sees the platform live at once. They are peers of the platform, like real
//! ones: the callers arrive as new calls located by their position, the call-takers log in
//! through the API, and their phones answer and hang up through the same SIP events as real
//! phones. A simulated caller's audio is not anchored (nothing to hear, nothing to record).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::weighted::WeightedIndex;
use rand_distr::{Distribution, Exp};
use secourir_config::{CallTaker, Plan, Role};
use secourir_core::{AgentId, Ask, CallId, WantedState};
use secourir_location::{LocationValue, PidfLocation, Shape};
use secourir_sip::{Sip, SipEvent};
use secourir_territory::Territory;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use secourir_http::ApiCall;
use secourir_server::{Arrival, PEER_QUEUE, Peers, Signalling, Started, locate_call};

/// How busy the demonstration is.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Calls per second across France.
    pub calls_per_second: f64,
    /// Mean conversation of a simulated call-taker, seconds.
    pub handling_s: f64,
    /// Mean patience of a simulated caller in the queue, seconds.
    pub patience_s: f64,
    /// Seed of the draws.
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            calls_per_second: 2.0,
            handling_s: 30.0,
            patience_s: 90.0,
            seed: 18,
        }
    }
}

/// Adds simulated call-takers to every CTA, about a third of its day staffing (at least one),
/// so that queues form where the population is; returns the index of the first one.
pub fn add_simulated_call_takers(plan: &mut Plan) -> usize {
    let first = plan.call_takers.len();
    let ctas: Vec<_> = plan
        .ctas
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.id.clone(), c.staffing.day))
        .collect();
    for (i, id, day) in ctas {
        let count = day.div_ceil(3).max(1);
        for n in 1..=count {
            plan.add_call_taker(CallTaker {
                login: format!("sim-{id}-{n}"),
                name: Some(format!("Opérateur simulé {n} ({id})")),
                cta: secourir_config::CtaId(i as u16),
                site: 0,
                dequeue_preference: 3,
                sip_ha1: None,
                sip_ha1_sha256: None,
                web_password: None,
                role: Role::Ota,
                totp_secret: None,
            });
        }
    }
    first
}

/// The draws of simulated people's delays.
#[derive(Debug)]
struct Draws {
    rng: ChaCha8Rng,
    handling: Exp<f64>,
    patience: Exp<f64>,
}

impl Draws {
    fn new(options: &DemoOptions, salt: u64) -> Draws {
        Draws {
            rng: ChaCha8Rng::seed_from_u64(options.seed ^ salt),
            handling: Exp::new(1.0 / options.handling_s.max(1.0)).expect("positive rate"),
            patience: Exp::new(1.0 / options.patience_s.max(1.0)).expect("positive rate"),
        }
    }

    fn handling_ms(&mut self) -> u64 {
        (self.handling.sample(&mut self.rng) * 1000.0).clamp(5_000.0, 600_000.0) as u64
    }

    fn patience_ms(&mut self) -> u64 {
        (self.patience.sample(&mut self.rng) * 1000.0).clamp(5_000.0, 900_000.0) as u64
    }

    fn answer_ms(&mut self) -> u64 {
        self.rng.random_range(1_000..4_000)
    }
}

/// Simulated callers waiting for a call-taker: their patience runs out unless one talks to
/// them first.
type Waiting = Arc<Mutex<HashMap<CallId, AbortHandle>>>;

/// The phones of the simulated call-takers, in front of the SIP shell that serves real ones.
struct Phones {
    sip: Sip,
    first_agent: usize,
    draws: Draws,
    events: mpsc::Sender<SipEvent>,
    /// Rings and conversations of simulated phones under way, cut short by a hang-up.
    busy: HashMap<(CallId, AgentId), AbortHandle>,
    waiting: Waiting,
    /// Simulated callers: no SIP dialog to hang up.
    callers: Arc<Mutex<HashSet<CallId>>>,
}

impl Phones {
    fn simulated(&self, agent: AgentId) -> bool {
        agent.0 as usize >= self.first_agent
    }

    /// A simulated caller talks to someone, or is gone: their patience no longer runs.
    fn stop_patience(&self, call: CallId) {
        let patience = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&call);
        if let Some(patience) = patience {
            patience.abort();
        }
    }
}

/// What a simulated phone answers with: audio to the discard port of loopback, as nothing
/// listens to a simulated call-taker.
fn phone_answer(call: CallId) -> Vec<u8> {
    let discard = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    secourir_media::sdp::answer(
        discard,
        call.0,
        secourir_media::Codec::Pcma,
        None,
        secourir_media::sdp::Protection::Clear,
    )
    .into_bytes()
}

impl Signalling for Phones {
    fn ring(
        &mut self,
        call: CallId,
        agent: AgentId,
        offer: String,
        headers: Vec<(String, String)>,
    ) -> bool {
        if !self.simulated(agent) {
            return self.sip.ring(call, agent, offer, headers);
        }
        let answer = self.draws.answer_ms();
        let talk = self.draws.handling_ms();
        let events = self.events.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(answer)).await;
            let sdp = phone_answer(call);
            if events
                .send(SipEvent::AgentAnswered { call, agent, sdp })
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(talk)).await;
            let _ = events.send(SipEvent::AgentGone { call, agent }).await;
        });
        self.busy.insert((call, agent), task.abort_handle());
        true
    }

    fn hang_up_agent(&mut self, call: CallId, agent: AgentId) {
        match self.busy.remove(&(call, agent)) {
            Some(task) => task.abort(),
            None => self.sip.hang_up_agent(call, agent),
        }
    }

    fn hang_up_caller(&mut self, call: CallId) {
        let simulated = self
            .callers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&call);
        self.stop_patience(call);
        if !simulated {
            self.sip.hang_up_caller(call);
        }
    }

    fn call_partner(
        &mut self,
        call: CallId,
        uri: &str,
        offer: String,
        headers: Vec<(String, String)>,
    ) -> bool {
        self.sip.call_partner(call, uri, offer, headers)
    }

    fn hang_up_partner(&mut self, call: CallId) {
        self.sip.hang_up_partner(call);
    }

    fn connected(&mut self, call: CallId) {
        self.stop_patience(call);
    }

    fn is_registered(&self, agent: AgentId) -> bool {
        self.simulated(agent) || self.sip.is_registered(agent)
    }

    fn registered(&self) -> usize {
        self.sip.registered()
    }
}

/// The demonstration's simulated people, plugged into the platform in place of real ones
/// (the SIP shell still serves real phones and callers beside them).
pub struct Demo {
    options: DemoOptions,
    /// Index of the first simulated call-taker in the plan.
    first_agent: usize,
}

impl Demo {
    /// Simulated people drawn as `options` say; the simulated call-takers are those of the plan
    /// from `first_agent` on (see [`add_simulated_call_takers`]).
    pub fn new(options: DemoOptions, first_agent: usize) -> Demo {
        Demo {
            options,
            first_agent,
        }
    }
}

impl Peers for Demo {
    /// Logs the simulated call-takers in through the API and starts the callers.
    fn start(self: Box<Self>, sip: Sip, plan: Arc<Plan>, api: mpsc::Sender<ApiCall>) -> Started {
        let Demo {
            options,
            first_agent,
        } = *self;
        let (events_tx, events) = mpsc::channel(PEER_QUEUE);
        let (arrivals_tx, arrivals) = mpsc::channel(PEER_QUEUE);
        let waiting: Waiting = Arc::default();
        let callers: Arc<Mutex<HashSet<CallId>>> = Arc::default();
        let phones = Phones {
            sip: sip.clone(),
            first_agent,
            draws: Draws::new(&options, 0x5eed),
            events: events_tx.clone(),
            busy: HashMap::new(),
            waiting: waiting.clone(),
            callers: callers.clone(),
        };
        let logins: Vec<String> = plan.call_takers[first_agent.min(plan.call_takers.len())..]
            .iter()
            .map(|t| t.login.clone())
            .collect();
        tokio::spawn(log_in(logins, api));
        let people = Callers {
            options,
            sip,
            plan,
            arrivals: arrivals_tx,
            events: events_tx,
            waiting,
            callers,
        };
        tokio::spawn(people.run());
        Started {
            signalling: Box::new(phones),
            events,
            arrivals,
        }
    }
}

/// Simulated call-takers log in as real ones do, through the API.
async fn log_in(logins: Vec<String>, api: mpsc::Sender<ApiCall>) {
    for login in logins {
        let (reply, answer) = oneshot::channel();
        let ask = Ask::State(WantedState::Available);
        if api.send(ApiCall::Ask { login, ask, reply }).await.is_err() {
            return;
        }
        let _ = answer.await;
    }
}

/// The simulated callers.
struct Callers {
    options: DemoOptions,
    sip: Sip,
    plan: Arc<Plan>,
    arrivals: mpsc::Sender<Arrival>,
    events: mpsc::Sender<SipEvent>,
    waiting: Waiting,
    callers: Arc<Mutex<HashSet<CallId>>>,
}

impl Callers {
    /// Places simulated calls, Poisson arrivals, from communes drawn by population.
    async fn run(self) {
        let territory = Territory::france();
        let communes: Vec<_> = territory
            .communes()
            .iter()
            .filter(|c| c.lat.is_some() && c.lon.is_some() && c.population > 0)
            .collect();
        let Ok(weights) = WeightedIndex::new(communes.iter().map(|c| c.population as f64)) else {
            return;
        };
        let mut rng = ChaCha8Rng::seed_from_u64(self.options.seed);
        let mut draws = Draws::new(&self.options, 0xca11);
        let Ok(gaps) = Exp::new(self.options.calls_per_second.max(0.01)) else {
            return;
        };
        loop {
            let gap: f64 = gaps.sample(&mut rng);
            tokio::time::sleep(std::time::Duration::from_secs_f64(gap.min(60.0))).await;
            let commune = communes[weights.sample(&mut rng)];
            let (Some(lat), Some(lon)) = (commune.lat, commune.lon) else {
                continue;
            };
            // A few hundred metres around the commune's point, as a phone's fix would be.
            let lat = lat + rng.random_range(-0.004..0.004);
            let lon = lon + rng.random_range(-0.004..0.004);
            let caller = format!("06{:08}", rng.random_range(0..100_000_000u32));
            let call = self.sip.next_call();
            let arrival = self.arrival(territory, call, lat, lon, caller);
            self.callers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(call);
            // The caller hangs up when their patience runs out, unless someone talks to them.
            let events = self.events.clone();
            let patience = draws.patience_ms();
            let task = tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(patience)).await;
                let _ = events.send(SipEvent::CallerGone { call }).await;
            });
            self.waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(call, task.abort_handle());
            if self.arrivals.send(arrival).await.is_err() {
                return;
            }
        }
    }

    fn arrival(
        &self,
        territory: &Territory,
        call: CallId,
        lat: f64,
        lon: f64,
        caller: String,
    ) -> Arrival {
        let location = PidfLocation {
            value: LocationValue::Geodetic(Shape::Point { lat, lon }),
            method: Some("simulation".into()),
            timestamp: None,
        };
        let mut place = locate_call(territory, &self.plan, &[location], None, None);
        place.radius_m = Some(30.0);
        Arrival::simulated(call, caller, place)
    }
}

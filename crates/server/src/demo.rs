//! The demonstration: simulated callers across France and simulated call-takers answering them,
//! through the real core and the real pages, so that a newcomer sees the platform live at once.
//! Simulated people have no SIP or media leg; real phones and logins work beside them.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::weighted::WeightedIndex;
use rand_distr::{Distribution, Exp};
use secourir_config::{CallTaker, Plan, Role};
use secourir_territory::Territory;
use tokio::sync::mpsc;

use crate::driver::DemoInput;

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

/// The draws of simulated people's delays.
#[derive(Debug)]
pub(crate) struct Simulation {
    /// Agents from this index on are simulated.
    pub(crate) first_agent: usize,
    rng: ChaCha8Rng,
    handling: Exp<f64>,
    patience: Exp<f64>,
}

impl Simulation {
    pub(crate) fn handling_ms(&mut self) -> u64 {
        (self.handling.sample(&mut self.rng) * 1000.0).clamp(5_000.0, 600_000.0) as u64
    }

    pub(crate) fn patience_ms(&mut self) -> u64 {
        (self.patience.sample(&mut self.rng) * 1000.0).clamp(5_000.0, 900_000.0) as u64
    }

    pub(crate) fn answer_ms(&mut self) -> u64 {
        self.rng.random_range(1_000..4_000)
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
                web_password: None,
                role: Role::Ota,
            });
        }
    }
    first
}

pub(crate) fn simulation(options: &DemoOptions, first_agent: usize) -> Simulation {
    Simulation {
        first_agent,
        rng: ChaCha8Rng::seed_from_u64(options.seed ^ 0x5eed),
        handling: Exp::new(1.0 / options.handling_s.max(1.0)).expect("positive rate"),
        patience: Exp::new(1.0 / options.patience_s.max(1.0)).expect("positive rate"),
    }
}

/// Places simulated calls, Poisson arrivals, from communes drawn by population.
pub(crate) async fn callers(options: DemoOptions, to: mpsc::Sender<DemoInput>) {
    let territory = Territory::france();
    let communes: Vec<_> = territory
        .communes()
        .iter()
        .filter(|c| c.lat.is_some() && c.lon.is_some() && c.population > 0)
        .collect();
    let Ok(weights) = WeightedIndex::new(communes.iter().map(|c| c.population as f64)) else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let Ok(gaps) = Exp::new(options.calls_per_second.max(0.01)) else {
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
        if to.send(DemoInput::Call { lat, lon, caller }).await.is_err() {
            return;
        }
    }
}

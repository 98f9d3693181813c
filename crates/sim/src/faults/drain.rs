//! The liveness phase: faults stop, every queue is back in service, call-takers log in
//! everywhere and answer everything, partner services hang up; every call must then end within
//! a bounded number of rounds.

use secourir_config::CtaId;
use secourir_core::{AgentId, AgentStatus, Ask, Event};

use super::Violation;
use super::driver::Driver;

/// Call-takers the liveness phase logs in at every CTA.
const HELPERS_PER_CTA: u32 = 2;
/// First number of those helpers, beyond any plan's call-takers.
const HELPERS_FROM: u32 = 1_000_000;
/// Simulated time between rounds: beyond the plans' wrap-up and ACD delays.
const ROUND_MS: u64 = 5_000;

impl Driver<'_, '_> {
    pub(super) fn drain(&mut self) -> Result<(), Violation> {
        let ctas: Vec<CtaId> = (0..self.plan.ctas.len())
            .map(|c| CtaId(u16::try_from(c).unwrap_or(u16::MAX)))
            .collect();
        for &cta in &ctas {
            self.feed(Event::SetDisabled {
                cta,
                disabled: false,
            })?;
        }
        let helper =
            |cta: CtaId, k: u32| AgentId(HELPERS_FROM + u32::from(cta.0) * HELPERS_PER_CTA + k);
        for &cta in &ctas {
            for k in 0..HELPERS_PER_CTA {
                self.feed(Event::AgentLogin {
                    agent: helper(cta, k),
                    cta,
                    site: 0,
                    dequeue_preference: 3,
                })?;
            }
        }
        let mut agents: Vec<AgentId> = self.cast.roster.iter().map(|s| s.agent).collect();
        agents.extend(
            ctas.iter()
                .flat_map(|&cta| (0..HELPERS_PER_CTA).map(move |k| helper(cta, k))),
        );
        let mut rounds = 0;
        while !self.drained() {
            if rounds == self.settings.drain_rounds {
                let mut live: Vec<u64> = self.core.live_call_ids().map(|c| c.0).collect();
                live.sort_unstable();
                return Err(Violation(format!(
                    "liveness: after {rounds} rounds, {} calls still live {live:?}, {} requests \
                     unanswered, {} callers with a partner service",
                    live.len(),
                    self.checker.open_requests(),
                    self.core.handed_over().count()
                )));
            }
            rounds += 1;
            self.now += ROUND_MS;
            let mut events: Vec<Event> = Vec::new();
            events.extend(
                self.core
                    .handed_over()
                    .map(|call| Event::PartnerHungUp { call }),
            );
            let mut live: Vec<_> = self.core.live_call_ids().collect();
            live.sort_unstable();
            for &call in &live {
                if self
                    .core
                    .call(call)
                    .is_some_and(|c| c.transferring.is_some())
                {
                    events.push(Event::PartnerHungUp { call });
                }
            }
            for &agent in &agents {
                match self.core.agent(agent) {
                    AgentStatus::Ringing(call) => events.push(Event::AgentAnswered { agent, call }),
                    AgentStatus::Talking(call) => events.push(Event::AgentHungUp { agent, call }),
                    AgentStatus::Paused => events.push(Event::AgentReady { agent }),
                    _ => {}
                }
            }
            let mut picks = Vec::new();
            for &cta in &ctas {
                for info in self.core.waiting(cta) {
                    for k in 0..HELPERS_PER_CTA {
                        picks.push((helper(cta, k), info.call));
                    }
                }
            }
            for event in events {
                self.feed(event)?;
            }
            for (agent, call) in picks {
                self.ask(agent, Ask::Pick(call))?;
            }
            self.feed(Event::Tick)?;
        }
        self.stats.liveness_rounds = rounds;
        self.checker.finish(&self.core)
    }

    fn drained(&self) -> bool {
        self.core.live_calls() == 0
            && self.core.handed_over().next().is_none()
            && self.checker.open_requests() == 0
    }
}

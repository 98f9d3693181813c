//! One random action of the chaos phase: any event the core accepts, aimed at live calls and
//! call-takers most of the time and at the wrong ones some of the time.

use rand::RngExt;
use secourir_config::{CtaId, ZoneId};
use secourir_core::{
    AgentId, AgentStatus, Ask, CallId, CallStatus, Event, Instant, RingFailure, Service,
    WantedState,
};

use super::callers::number;
use super::driver::Driver;
use super::{Fault, Violation};

/// What the chaos phase may do, with its weight.
#[derive(Debug, Clone, Copy)]
enum Move {
    Offer,
    Burst,
    CallerHangsUp,
    Dtmf,
    Login,
    Logout,
    Pause,
    Ready,
    Pick,
    Callback,
    HangUpAsked,
    HandBack,
    Transfer,
    State,
    Located,
    Crisis,
    Disable,
    Stop,
    CallbackRestored,
    Duplicate,
    LateAnswer,
    Stray,
    Tick,
    /// A call suspected of a flood after its arrival.
    Suspect,
    /// A caller heard speaking or pressing a key while waiting.
    Hear,
}

const MOVES: &[(u32, Move)] = &[
    (22, Move::Offer),
    (1, Move::Burst),
    (5, Move::CallerHangsUp),
    (3, Move::Dtmf),
    (7, Move::Login),
    (3, Move::Logout),
    (3, Move::Pause),
    (3, Move::Ready),
    (8, Move::Pick),
    (3, Move::Callback),
    (2, Move::HangUpAsked),
    (2, Move::HandBack),
    (3, Move::Transfer),
    (4, Move::State),
    (4, Move::Located),
    (2, Move::Crisis),
    (2, Move::Disable),
    (2, Move::Stop),
    (2, Move::Suspect),
    (2, Move::Hear),
    (1, Move::CallbackRestored),
    (6, Move::Duplicate),
    (2, Move::LateAnswer),
    (3, Move::Stray),
    (2, Move::Tick),
];

/// Offers of a burst: enough to fill a zone's share and the pool of the fault plan.
const BURST: std::ops::Range<u32> = 6..30;

impl Driver<'_, '_> {
    /// Draws one move and feeds its events.
    pub(super) fn chaos(&mut self) -> Result<(), Violation> {
        let total: u32 = MOVES.iter().map(|(w, _)| w).sum();
        let mut draw = self.rng.random_range(0..total);
        let mut chosen = Move::Tick;
        for &(weight, m) in MOVES {
            if draw < weight {
                chosen = m;
                break;
            }
            draw -= weight;
        }
        match chosen {
            Move::Offer => self.offer(None),
            Move::Burst => {
                self.fault(Fault::Burst);
                let zone = self.zone();
                for _ in 0..self.rng.random_range(BURST) {
                    self.offer(Some(zone))?;
                }
                Ok(())
            }
            Move::CallerHangsUp => match self.live_call() {
                Some(call) => self.feed(Event::CallerHungUp { call }),
                None => self.offer(None),
            },
            Move::Dtmf => {
                let call = self.live_call().unwrap_or(CallId(u64::MAX));
                let digit = if self.rng.random_bool(0.7) {
                    b'1'
                } else {
                    b"0123456789*#"[self.rng.random_range(0..12)]
                };
                self.feed(Event::Dtmf { call, digit })
            }
            Move::Login => {
                let seat = self.seat();
                let cta = if self.rng.random_bool(0.1) {
                    self.cast.ctas[self.rng.random_range(0..self.cast.ctas.len())]
                } else {
                    seat.cta
                };
                let dequeue_preference = self.rng.random_range(0..7);
                self.feed(Event::AgentLogin {
                    agent: seat.agent,
                    cta,
                    site: seat.site,
                    dequeue_preference,
                })
            }
            Move::Logout => {
                let agent = self.busy_agent().unwrap_or_else(|| self.seat().agent);
                self.vanishing(agent);
                self.feed(Event::AgentLogout { agent })
            }
            Move::Pause => {
                let agent = self.seat().agent;
                self.feed(Event::AgentPause { agent })
            }
            Move::Ready => {
                let agent = self.seat().agent;
                self.feed(Event::AgentReady { agent })
            }
            Move::Pick => self.pick(),
            Move::Callback => self.callback(),
            Move::HangUpAsked => {
                let (agent, call) = self.talking_pair(false);
                self.ask(agent, Ask::HangUp(call))
            }
            Move::HandBack => {
                let (agent, call) = self.talking_pair(true);
                let summary = "Personne âgée, douleur thoracique".into();
                self.ask(agent, Ask::HandBack { call, summary })
            }
            Move::Transfer => {
                let (agent, call) = self.talking_pair(false);
                let to = [Service::Ambulance, Service::Ambulance, Service::Police]
                    [self.rng.random_range(0..3)];
                let summary = if self.rng.random_bool(0.1) {
                    "Accident sur l'A7, plusieurs véhicules. ".repeat(20)
                } else {
                    "Malaise sur la voie publique".to_owned()
                };
                self.ask(
                    agent,
                    Ask::Transfer {
                        call,
                        to,
                        summary: summary.into(),
                    },
                )
            }
            Move::State => {
                let agent = self.busy_agent().filter(|_| self.rng.random_bool(0.3));
                let agent = agent.unwrap_or_else(|| self.seat().agent);
                let wanted = [
                    WantedState::Available,
                    WantedState::Paused,
                    WantedState::Offline,
                ][self.rng.random_range(0..3)];
                if wanted == WantedState::Offline {
                    self.vanishing(agent);
                }
                self.ask(agent, Ask::State(wanted))
            }
            Move::Located => self.located(),
            Move::Crisis => {
                let zone = self.zone();
                let on = self.rng.random_bool(0.5);
                self.feed(Event::SetCrisis { zone, on })
            }
            Move::Disable => {
                let disabled = self.rng.random_bool(0.4);
                let cta = if self.rng.random_bool(0.05) {
                    CtaId(u16::MAX)
                } else {
                    self.cast.ctas[self.rng.random_range(0..self.cast.ctas.len())]
                };
                if disabled {
                    self.fault(Fault::QueueDisabled);
                }
                self.feed(Event::SetDisabled { cta, disabled })
            }
            Move::Stop => {
                let handed: Vec<CallId> = self.core.handed_over().collect();
                let call = if !handed.is_empty() && self.rng.random_bool(0.3) {
                    handed[self.rng.random_range(0..handed.len())]
                } else {
                    self.live_call().unwrap_or(CallId(u64::MAX))
                };
                self.feed(Event::Stopped { call })
            }
            Move::Suspect => {
                let call = self.live_call().unwrap_or(CallId(u64::MAX));
                self.feed(Event::Suspected { call })
            }
            Move::Hear => {
                let call = self.live_call().unwrap_or(CallId(u64::MAX));
                self.feed(Event::Heard { call })
            }
            Move::CallbackRestored => {
                let call = self.ended_call().unwrap_or(CallId(1 << 40));
                let zone = self.zone();
                let taken_by = self.rng.random_bool(0.3).then(|| self.seat().agent);
                let ago = self.rng.random_range(0..3_600_000);
                self.feed(Event::CallbackRestored {
                    call,
                    zone,
                    caller: Some(number(call.0).into()),
                    at: Instant(self.now.saturating_sub(ago)),
                    taken_by,
                })
            }
            Move::Duplicate => self.duplicate(),
            Move::LateAnswer => {
                if self.cancelled.is_empty() {
                    return self.feed(Event::Tick);
                }
                let (agent, call) = self.cancelled[self.rng.random_range(0..self.cancelled.len())];
                self.fault(Fault::LateAnswer);
                if self.rng.random_bool(0.8) {
                    self.feed(Event::AgentAnswered { agent, call })
                } else {
                    self.feed(Event::AgentRingFailed {
                        agent,
                        call,
                        reason: RingFailure::NoAnswer,
                    })
                }
            }
            Move::Stray => self.stray(),
            Move::Tick => self.feed(Event::Tick),
        }
    }

    pub(super) fn zone(&mut self) -> ZoneId {
        self.cast.zones[self.rng.random_range(0..self.cast.zones.len())]
    }

    fn seat(&mut self) -> super::Seat {
        self.cast.roster[self.rng.random_range(0..self.cast.roster.len())]
    }

    fn live_calls(&self) -> Vec<CallId> {
        let mut calls: Vec<CallId> = self.core.live_call_ids().collect();
        calls.sort_unstable();
        calls
    }

    pub(super) fn live_call(&mut self) -> Option<CallId> {
        let calls = self.live_calls();
        (!calls.is_empty()).then(|| calls[self.rng.random_range(0..calls.len())])
    }

    fn ended_call(&mut self) -> Option<CallId> {
        (!self.ended.is_empty()).then(|| self.ended[self.rng.random_range(0..self.ended.len())])
    }

    /// A call-taker of the roster ringing or talking, if any.
    fn busy_agent(&mut self) -> Option<AgentId> {
        let busy: Vec<AgentId> = self
            .cast
            .roster
            .iter()
            .map(|s| s.agent)
            .filter(|a| {
                matches!(
                    self.core.agent(*a),
                    AgentStatus::Ringing(_) | AgentStatus::Talking(_)
                )
            })
            .collect();
        (!busy.is_empty()).then(|| busy[self.rng.random_range(0..busy.len())])
    }

    fn vanishing(&mut self, agent: AgentId) {
        match self.core.agent(agent) {
            AgentStatus::Ringing(_) => self.fault(Fault::VanishMidRing),
            AgentStatus::Talking(_) => self.fault(Fault::VanishMidCall),
            _ => {}
        }
    }

    /// A call-taker with the call they talk with, mostly (one lent to another CTA if `lent`
    /// and there is one); now and then someone else.
    fn talking_pair(&mut self, lent: bool) -> (AgentId, CallId) {
        let mut pairs: Vec<(AgentId, CallId)> = self
            .live_calls()
            .into_iter()
            .filter_map(|call| match self.status(call) {
                Some(CallStatus::Talking(agent)) => Some((agent, call)),
                _ => None,
            })
            .collect();
        let is_lent = |core: &secourir_core::Core, (agent, call): (AgentId, CallId)| {
            let seat = core.agent_seat(agent).map(|s| s.0);
            core.call(call).is_some_and(|c| Some(c.home) != seat)
        };
        if lent && pairs.iter().any(|p| is_lent(&self.core, *p)) {
            pairs.retain(|p| is_lent(&self.core, *p));
        }
        if !pairs.is_empty() && self.rng.random_bool(0.85) {
            return pairs[self.rng.random_range(0..pairs.len())];
        }
        self.fault(Fault::Stray);
        let agent = self.seat().agent;
        (agent, self.live_call().unwrap_or(CallId(u64::MAX)))
    }

    /// A call-taker picks a waiting call; now and then two pick it at the same instant.
    fn pick(&mut self) -> Result<(), Violation> {
        let queued: Vec<CallId> = self
            .live_calls()
            .into_iter()
            .filter(|c| self.status(*c) == Some(CallStatus::Queued))
            .collect();
        let call = if queued.is_empty() {
            self.live_call().unwrap_or(CallId(u64::MAX))
        } else {
            queued[self.rng.random_range(0..queued.len())]
        };
        let cta = self.core.call(call).map(|c| c.cta);
        let mut picker = || {
            let own: Vec<AgentId> = self
                .cast
                .roster
                .iter()
                .filter(|s| Some(s.cta) == cta)
                .map(|s| s.agent)
                .collect();
            if !own.is_empty() && self.rng.random_bool(0.7) {
                own[self.rng.random_range(0..own.len())]
            } else {
                self.seat().agent
            }
        };
        let first = picker();
        let second = picker();
        self.ask(first, Ask::Pick(call))?;
        if self.rng.random_bool(0.3) {
            self.fault(Fault::DoublePick);
            self.ask(second, Ask::Pick(call))?;
        }
        Ok(())
    }

    fn callback(&mut self) -> Result<(), Violation> {
        let cta = self.cast.ctas[self.rng.random_range(0..self.cast.ctas.len())];
        let entries: Vec<CallId> = self.core.callbacks(cta).map(|(c, _)| c).collect();
        let call = if entries.is_empty() {
            self.ended_call().unwrap_or(CallId(u64::MAX))
        } else {
            entries[self.rng.random_range(0..entries.len())]
        };
        let of_cta: Vec<AgentId> = self
            .cast
            .roster
            .iter()
            .filter(|s| s.cta == cta)
            .map(|s| s.agent)
            .collect();
        let agent = if !of_cta.is_empty() && self.rng.random_bool(0.8) {
            of_cta[self.rng.random_range(0..of_cta.len())]
        } else {
            self.seat().agent
        };
        let ask = if self.rng.random_bool(0.5) {
            Ask::CallbackTaken(call)
        } else {
            Ask::CallbackDone(call)
        };
        self.ask(agent, ask)
    }

    /// Feeds the last event again; a request again under a new id, as a client retrying does.
    fn duplicate(&mut self) -> Result<(), Violation> {
        let Some(last) = self.last.clone() else {
            return self.feed(Event::Tick);
        };
        let again = match last {
            // A repeated offer of a refused call is a new call to the core, which keeps no
            // memory of ended ones; the shell's transaction layer absorbs that retransmission.
            Event::Offered(ref offer) if self.core.call(offer.call).is_none() => Event::Tick,
            Event::Request { agent, ask, .. } => Event::Request {
                id: self.request_id(),
                agent,
                ask,
            },
            Event::Located { caller, place, .. } => Event::Located {
                id: self.request_id(),
                caller,
                place,
            },
            other => other,
        };
        self.fault(Fault::Duplicate);
        self.feed(again)
    }

    /// An event about a call or call-taker it does not concern.
    fn stray(&mut self) -> Result<(), Violation> {
        self.fault(Fault::Stray);
        let agent = self.seat().agent;
        let call = match self.rng.random_range(0..3) {
            0 => self.ended_call(),
            1 => self.live_call(),
            _ => None,
        }
        .unwrap_or(CallId(1 << 41));
        let event = match self.rng.random_range(0..7) {
            0 => Event::AgentAnswered { agent, call },
            1 => Event::AgentRingFailed {
                agent,
                call,
                reason: RingFailure::Refused,
            },
            2 => Event::AgentHungUp { agent, call },
            3 => Event::PartnerAnswered { call },
            4 => Event::PartnerFailed { call, status: 500 },
            5 => Event::PartnerHungUp { call },
            _ => Event::CallerHungUp { call },
        };
        self.feed(event)
    }
}

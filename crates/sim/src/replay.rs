//! Replaying the core's recorded inputs: fed again, in order, at their instants, to a fresh
//! core with the same configuration, they give the same commands, so a day of production can be
//! examined again call by call (and, once call-takers' behaviour is modelled from it, with
//! another configuration).

use std::sync::Arc;

use rustc_hash::FxHashMap;
use secourir_config::{CtaId, Plan, ZoneId};
use secourir_core::{AgentId, CallId, Command, Core, Event, Input, Instant, Outcome};
use sha2::{Digest, Sha256};

/// One call as the replay saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedCall {
    /// Its number.
    pub call: CallId,
    /// When it was offered.
    pub offered_at: Instant,
    /// How it ended; None if the recording stops while it is live.
    pub outcome: Option<Outcome>,
    /// The CTA that held it last.
    pub cta: Option<CtaId>,
    /// The call-taker who first answered it, and how long after its offer.
    pub answered: Option<(AgentId, u64)>,
    /// Its zone.
    pub zone: ZoneId,
    /// When it ended.
    pub ended_at: Option<Instant>,
}

/// What a replay produced.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// Inputs fed.
    pub events: u64,
    /// Commands the core gave.
    pub commands: u64,
    /// SHA-256 of every command in order (their `Debug` text): two replays of the same inputs
    /// with the same configuration give the same digest.
    pub digest: String,
    /// The calls, in the order they were offered.
    pub calls: Vec<ReplayedCall>,
    /// The first and last instants of the inputs.
    pub span: Option<(Instant, Instant)>,
    /// Plans among the inputs that the core refused, as the platform did.
    pub refused_plans: u64,
}

/// Feeds `inputs` to a fresh core for `plan`.
pub fn replay<I: Into<Input>>(
    plan: Arc<Plan>,
    inputs: impl IntoIterator<Item = (Instant, I)>,
) -> Replayed {
    let mut core = Core::new(plan);
    let mut hasher = Sha256::new();
    let mut calls: Vec<ReplayedCall> = Vec::new();
    let mut index: FxHashMap<CallId, usize> = FxHashMap::default();
    let (mut events, mut commands) = (0u64, 0u64);
    let mut span: Option<(Instant, Instant)> = None;
    let mut refused_plans = 0u64;
    for (at, input) in inputs {
        events += 1;
        span = Some(span.map_or((at, at), |(first, _)| (first, at)));
        let out: Vec<Command> = match input.into() {
            Input::Event(event) => {
                if let Event::Offered(offer) = &event
                    && !index.contains_key(&offer.call)
                {
                    index.insert(offer.call, calls.len());
                    calls.push(ReplayedCall {
                        call: offer.call,
                        offered_at: at,
                        outcome: None,
                        cta: None,
                        answered: None,
                        zone: offer.zone,
                        ended_at: None,
                    });
                }
                core.handle(event, at).collect()
            }
            // The platform refused it too (same core, same state): nothing changes.
            input @ Input::Plan(_) => match core.apply(input, at) {
                Ok(out) => out.collect(),
                Err(_) => {
                    refused_plans += 1;
                    continue;
                }
            },
        };
        for command in out {
            commands += 1;
            hasher.update(format!("{command:?}\n").as_bytes());
            match command {
                Command::Bridge { call, agent, .. } => {
                    if let Some(c) = index.get(&call).map(|&i| &mut calls[i])
                        && c.answered.is_none()
                    {
                        c.answered = Some((agent, at.since(c.offered_at)));
                    }
                }
                Command::Ended {
                    call, outcome, cta, ..
                } => {
                    if let Some(c) = index.get(&call).map(|&i| &mut calls[i]) {
                        c.outcome = Some(outcome);
                        c.cta = cta;
                        c.ended_at = Some(at);
                    }
                }
                _ => {}
            }
        }
    }
    let digest = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Replayed {
        events,
        commands,
        digest,
        calls,
        span,
        refused_plans,
    }
}

/// The calls of a replay as the simulator offers them again (the traffic of a real day):
/// each at its instant after the first, with its conversation time when a call-taker
/// answered it and its caller's patience when the caller gave up waiting. With the
/// simulator's call-takers in place of the recorded ones, another configuration's staffing
/// can be tried on it.
pub fn recorded_demand(replayed: &Replayed) -> Vec<crate::RecordedCall> {
    let Some((first, _)) = replayed.span else {
        return Vec::new();
    };
    replayed
        .calls
        .iter()
        .map(|c| {
            let answered_at = c.answered.map(|(_, wait)| c.offered_at.0 + wait);
            let talk_ms = match (answered_at, c.ended_at) {
                (Some(answered), Some(ended)) => Some(ended.0.saturating_sub(answered)),
                _ => None,
            };
            let patience_ms = match (c.outcome, answered_at, c.ended_at) {
                (Some(Outcome::Abandoned), None, Some(ended)) => Some(ended.since(c.offered_at)),
                _ => None,
            };
            crate::RecordedCall {
                offset_ms: c.offered_at.since(first),
                zone: c.zone,
                talk_ms,
                patience_ms,
            }
        })
        .collect()
}

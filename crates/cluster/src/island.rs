//! The local mode of a cluster node cut from the log's quorum: an emergency call is never
//! refused because the cluster is unreachable. The calls arriving meanwhile go to a core of
//! their own, with the call-takers whose phones registered on this node, and are recorded
//! here; once the log is back and the last of them has ended, their records and the callers
//! still to call back are given to the log, so every node has them.
//!
//! Nothing is picked twice: an island call is in no other node's core, and a call of the
//! shared core is never in the island's.

use std::collections::BTreeSet;
use std::sync::Arc;

use secourir_config::Plan;
use secourir_core::{AgentId, Ask, CallId, Core, Event, Instant, RequestId, WantedState};

use crate::entries::MergedCall;

/// Request ids the island gives itself to seat its call-takers: far above any id a node
/// gives, so that no reply reaches an API handler.
const SEATING_IDS: u64 = u64::MAX / 2;

/// The calls a node serves while it is cut off.
pub struct Island {
    /// The island's own core.
    pub core: Core,
    /// Every call it took in, ended or not, to give to the log once it is over.
    pub calls: BTreeSet<CallId>,
    /// Call-takers seated, when it started and since.
    pub seated: usize,
}

impl Island {
    /// An island whose call-takers are `agents`, available at `now`.
    pub fn start(plan: Arc<Plan>, agents: &[AgentId], now: Instant) -> Island {
        let mut core = Core::new(plan);
        for (i, agent) in agents.iter().enumerate() {
            let seat = Event::Request {
                id: RequestId(SEATING_IDS + i as u64),
                agent: *agent,
                ask: Ask::State(WantedState::Available),
            };
            // Nothing to carry out: no call is there yet.
            core.handle(seat, now).for_each(drop);
        }
        Island {
            core,
            calls: BTreeSet::new(),
            seated: agents.len(),
        }
    }

    /// Seats a call-taker who became free after the island started (their call of the shared
    /// core ended here): the request to give the island's core.
    pub fn seat(&mut self, agent: AgentId) -> Event {
        let id = RequestId(SEATING_IDS + self.seated as u64);
        self.seated += 1;
        Event::Request {
            id,
            agent,
            ask: Ask::State(WantedState::Available),
        }
    }

    /// Whether `event` concerns one of the island's calls.
    pub fn holds(&self, event: &Event) -> bool {
        call_of(event).is_some_and(|call| self.calls.contains(&call))
    }

    /// Whether every call of the island has ended.
    pub fn over(&self) -> bool {
        self.core.live_calls() == 0 && self.core.handed_over().next().is_none()
    }
}

/// The records of the island's calls, read back from the store in `dir`.
pub fn read_back(
    dir: &std::path::Path,
    calls: &[u64],
) -> Result<Vec<MergedCall>, secourir_store::StoreError> {
    let store = secourir_store::Store::open_read_only(dir)?;
    let mut merged = Vec::with_capacity(calls.len());
    for call in calls {
        if let Some(record) = store.call(*call)? {
            let call_back = record.answered_at.is_none() && record.ended_at.is_some();
            merged.push(MergedCall {
                trail: store.trail(*call)?,
                record,
                call_back,
            });
        }
    }
    Ok(merged)
}

/// The call an event is about, if any.
pub fn call_of(event: &Event) -> Option<CallId> {
    match event {
        Event::Offered(offer) => Some(offer.call),
        Event::CallerHungUp { call }
        | Event::Dtmf { call, .. }
        | Event::AgentAnswered { call, .. }
        | Event::AgentRingFailed { call, .. }
        | Event::AgentHungUp { call, .. }
        | Event::Stopped { call }
        | Event::PartnerAnswered { call }
        | Event::PartnerFailed { call, .. }
        | Event::Suspected { call }
        | Event::Heard { call }
        | Event::PartnerHungUp { call } => Some(*call),
        Event::Request {
            ask: Ask::Pick(call) | Ask::HangUp(call),
            ..
        }
        | Event::Request {
            ask: Ask::HandBack { call, .. } | Ask::Transfer { call, .. },
            ..
        } => Some(*call),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_events_of_an_island_call_stay_on_the_island() {
        let plan = secourir_config::fixtures::one_cta_plan(
            "[[call_taker]]\nlogin = \"ota\"\ncta = \"cta-13\"\n",
        );
        let mut island = Island::start(plan, &[AgentId(0)], Instant(0));
        island.calls.insert(CallId(7));
        assert!(island.holds(&Event::CallerHungUp { call: CallId(7) }));
        assert!(island.holds(&Event::Request {
            id: RequestId(1),
            agent: AgentId(0),
            ask: Ask::Pick(CallId(7)),
        }));
        assert!(!island.holds(&Event::CallerHungUp { call: CallId(8) }));
        assert!(!island.holds(&Event::Tick));
        assert!(island.over());
    }
}

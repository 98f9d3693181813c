//! The API's requests as the driver takes them: call-takers' asks become core requests with an
//! id, and the core's reply of that id goes back to the handler that waits for it.

use std::collections::HashMap;
use std::sync::Arc;

use secourir_config::Plan;
use secourir_core::{AgentId, Core, Denied, Event, Granted, RequestId, Whereabouts};
use secourir_territory::Territory;
use tokio::sync::oneshot;

use secourir_http::{ApiCall, ApiError, CallTakerView, status_name};

/// A reply the core owes to a handler.
type Waiter = oneshot::Sender<Result<Granted, ApiError>>;

/// Requests sent to the core and not answered yet.
pub(crate) struct Requests {
    plan: Arc<Plan>,
    territory: &'static Territory,
    next: u64,
    /// Gap between two ids: the nodes of a cluster interleave theirs.
    step: u64,
    waiting: HashMap<RequestId, Waiter>,
}

/// What the driver must do for an API call.
pub(crate) enum Action {
    /// Feed this event to the core; its reply goes to the waiting handler.
    Feed(Event),
    /// Answer from the state alone.
    Read(ApiCall),
    /// Nothing more: the handler has had its answer.
    Done,
}

impl Requests {
    /// No request yet.
    pub(crate) fn new(plan: Arc<Plan>, territory: &'static Territory) -> Requests {
        Requests {
            plan,
            territory,
            next: 0,
            step: 1,
            waiting: HashMap::new(),
        }
    }

    /// Ids from `first`, every `step`: in a cluster, no two nodes give the same.
    pub(crate) fn numbered(&mut self, first: u64, step: u64) {
        self.step = step.max(1);
        self.next = first.saturating_sub(self.step);
    }

    fn register(&mut self, reply: Waiter) -> RequestId {
        self.next += self.step;
        let id = RequestId(self.next);
        self.waiting.insert(id, reply);
        id
    }

    /// Translates an API call into what the driver does with it.
    pub(crate) fn take(&mut self, call: ApiCall) -> Action {
        match call {
            ApiCall::Ask { login, ask, reply } => match self.plan.call_taker(&login) {
                None => {
                    let _ = reply.send(Err(ApiError::NotFound("opérateur inconnu")));
                    Action::Done
                }
                Some((index, _)) => {
                    let id = self.register(reply);
                    Action::Feed(Event::Request {
                        id,
                        agent: AgentId(index as u32),
                        ask,
                    })
                }
            },
            ApiCall::Aml {
                caller,
                lat,
                lon,
                radius_m,
                reply,
            } => {
                let found = self.territory.locate(lat, lon);
                let place = Whereabouts {
                    departement: found
                        .as_ref()
                        .map_or_else(Default::default, |p| p.departement.as_str().into()),
                    commune: found
                        .as_ref()
                        .and_then(|p| p.commune.as_deref().map(Into::into)),
                    insee: found.and_then(|p| p.insee.map(Into::into)),
                    point: Some((lat, lon)),
                    radius_m,
                    source: "aml".into(),
                };
                let id = self.register(reply);
                Action::Feed(Event::Located {
                    id,
                    caller: caller.into(),
                    place: Arc::new(place),
                })
            }
            other => Action::Read(other),
        }
    }

    /// The core answered a request.
    pub(crate) fn reply(&mut self, request: RequestId, result: Result<Granted, Denied>) {
        if let Some(waiter) = self.waiting.remove(&request) {
            let _ = waiter.send(result.map_err(ApiError::from));
        }
    }

    /// The call-takers as the API lists them.
    pub(crate) fn call_takers(
        &self,
        core: &Core,
        registered: impl Fn(AgentId) -> bool,
    ) -> Vec<CallTakerView> {
        self.plan
            .call_takers
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let agent = AgentId(i as u32);
                CallTakerView {
                    login: t.login.clone(),
                    cta: self.plan.cta(t.cta).id.clone(),
                    status: status_name(core.agent(agent)).to_owned(),
                    phone_registered: registered(agent),
                }
            })
            .collect()
    }
}

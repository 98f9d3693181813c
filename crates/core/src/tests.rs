//! Scenario tests and property tests of the core, driven by events and a virtual `now`.

use std::sync::Arc;

use secourir_config::{Departement, Plan};

use crate::*;

mod answering;
mod call_takers;
mod crisis;
mod endings;
mod mutual_aid;
mod offers;
mod plan_change;
mod positions;
mod proptests;
mod queueing;
mod snapshot;
mod suspects;
mod transfer;

const TERRITORY: &[Departement<'static>] = &[
    Departement {
        code: "13",
        population: 2_000_000,
    },
    Departement {
        code: "83",
        population: 1_000_000,
    },
    Departement {
        code: "84",
        population: 500_000,
    },
];

const PLAN: &str = r#"
[national]
capacity = 12
reserved_share = 0.5
rule_set = "national"
default_departement = "13"

[defaults]
ring_timeout_s = 20
wrap_up_s = 10
no_answer_s = 30
retry_s = 10
keep_idle = 0
mode = "acd"
wait_announcement = "attente"
crisis_announcement = "crise"

[[announcement]]
id = "attente"
text = "Sapeurs-pompiers, ne quittez pas."

[[announcement]]
id = "crise"
text = "Si vous appelez pour l'incendie en cours, tapez 1."
menu = true

[[cta]]
id = "cta-13"
name = "CTA 13"
departements = ["13"]
partners = ["cta-83", "cta-84"]
staffing = { day = 10, night = 5 }

[[cta]]
id = "cta-83"
name = "CTA 83"
departements = ["83"]
partners = ["cta-13", "cta-84"]
staffing = { day = 5, night = 2 }
mode = "picking"

[[cta]]
id = "cta-84"
name = "CTA 84"
departements = ["84"]
partners = ["cta-13", "cta-83"]
staffing = { day = 3, night = 2 }

[[rule_set]]
id = "national"

[[rule_set.rule]]
name = "crise"
when = { crisis = true }
announce = "crise"

[[rule_set.rule]]
name = "brouilleur"
when = { callers = ["+33999"] }
busy = "numéro bloqué"

[[rule_set.rule]]
name = "centre injoignable"
when = { failed = ["unreachable", "full"] }
route = "partners"

[[rule_set.rule]]
name = "entraide"
when = { failed = ["no-answer"] }
overflow = "partners"

[[rule_set.rule]]
name = "par défaut"
route = "home"

[[partner_service]]
service = "15"
name = "SAMU"
uri = "sip:15@127.0.0.1"

[[call_taker]]
login = "a0"
cta = "cta-13"

[[call_taker]]
login = "a1"
cta = "cta-83"

[[call_taker]]
login = "a2"
cta = "cta-84"

[[call_taker]]
login = "a3"
cta = "cta-13"

[[call_taker]]
login = "a4"
cta = "cta-83"

[[call_taker]]
login = "a5"
cta = "cta-84"

[[call_taker]]
login = "a6"
cta = "cta-13"

[[call_taker]]
login = "a7"
cta = "cta-83"
"#;

pub(crate) fn plan() -> Arc<Plan> {
    Arc::new(Plan::from_toml(PLAN, TERRITORY).expect("test plan is valid"))
}

const Z13: ZoneId = ZoneId(0);
const Z83: ZoneId = ZoneId(1);
const Z84: ZoneId = ZoneId(2);
const C13: CtaId = CtaId(0);
const C83: CtaId = CtaId(1);
const C84: CtaId = CtaId(2);

/// Drives a core and remembers every command, checking invariants after each event.
struct Harness {
    core: Core,
    now: u64,
    log: Vec<Command>,
    requests: u64,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(plan())
    }

    fn with(plan: Arc<Plan>) -> Harness {
        Harness {
            core: Core::new(plan),
            now: 1_700_000_000_000,
            log: Vec::new(),
            requests: 0,
        }
    }

    fn send(&mut self, event: Event) -> Vec<Command> {
        let out: Vec<Command> = self.core.handle(event, Instant(self.now)).collect();
        self.core.check_invariants();
        self.log.extend(out.iter().cloned());
        out
    }

    fn advance(&mut self, ms: u64) -> Vec<Command> {
        self.now += ms;
        self.send(Event::Tick)
    }

    fn offer(&mut self, call: u64, zone: ZoneId) -> Vec<Command> {
        self.offer_from(call, zone, "+33612345678")
    }

    fn offer_from(&mut self, call: u64, zone: ZoneId, caller: &str) -> Vec<Command> {
        self.send(Event::Offered(Offer {
            call: CallId(call),
            zone,
            service: Service::Fire,
            resource_priority: None,
            caller: Some(caller.into()),
            source: None,
            place: None,
            suspected: false,
            refused: None,
            medium: Default::default(),
        }))
    }

    fn ask(&mut self, agent: u32, ask: Ask) -> Vec<Command> {
        self.requests += 1;
        self.send(Event::Request {
            id: RequestId(self.requests),
            agent: AgentId(agent),
            ask,
        })
    }

    fn login(&mut self, agent: u32, cta: CtaId, preference: u8) -> Vec<Command> {
        self.send(Event::AgentLogin {
            agent: AgentId(agent),
            cta,
            site: 0,
            dequeue_preference: preference,
        })
    }
}

fn rings(out: &[Command]) -> Vec<(u64, u32)> {
    out.iter()
        .filter_map(|c| match c {
            Command::Ring { call, agent } => Some((call.0, agent.0)),
            _ => None,
        })
        .collect()
}

fn ended(out: &[Command]) -> Vec<(u64, Outcome)> {
    out.iter()
        .filter_map(|c| match c {
            Command::Ended { call, outcome, .. } => Some((call.0, *outcome)),
            _ => None,
        })
        .collect()
}

// ----- requests: transfers, hang-up, state, AML positions, Resource-Priority -----

/// The replies in a batch of commands, with their request ids.
fn replies(out: &[Command]) -> Vec<(u64, Result<Granted, Denied>)> {
    out.iter()
        .filter_map(|c| match c {
            Command::Reply { request, result } => Some((request.0, *result)),
            _ => None,
        })
        .collect()
}

impl Harness {
    /// The id of the last request sent with [`Harness::ask`].
    fn last_request(&self) -> RequestId {
        RequestId(self.requests)
    }

    /// Offers a call, checks that it rings this call-taker, and has them answer it.
    fn talk(&mut self, agent: u32, call: u64, zone: ZoneId) {
        let out = self.offer(call, zone);
        assert_eq!(
            rings(&out),
            vec![(call, agent)],
            "call {call} rings {agent}"
        );
        let out = self.send(Event::AgentAnswered {
            agent: AgentId(agent),
            call: CallId(call),
        });
        assert!(out.contains(&Command::Bridge {
            call: CallId(call),
            agent: AgentId(agent),
            conversation: 1,
        }));
    }

    /// Has a call-taker ask to transfer their call to the SAMU, and checks the partner is rung.
    fn transfer_to_samu(&mut self, agent: u32, call: u64, summary: &str) -> RequestId {
        let out = self.ask(
            agent,
            Ask::Transfer {
                call: CallId(call),
                to: Service::Ambulance,
                summary: summary.into(),
            },
        );
        assert!(
            out.iter()
                .any(|c| matches!(c, Command::CallPartner { call: rung, to: Service::Ambulance, .. } if rung.0 == call)),
            "the SAMU is rung: {out:?}"
        );
        assert!(replies(&out).is_empty(), "the answer waits for the partner");
        self.last_request()
    }

    fn offer_suspected(&mut self, call: u64, zone: ZoneId) -> Vec<Command> {
        self.send(Event::Offered(Offer {
            call: CallId(call),
            zone,
            service: Service::Fire,
            resource_priority: None,
            caller: Some("+33699999999".into()),
            source: None,
            place: None,
            suspected: true,
            refused: None,
            medium: Default::default(),
        }))
    }

    fn offer_with_priority(&mut self, call: u64, zone: ZoneId, level: Option<u8>) -> Vec<Command> {
        self.send(Event::Offered(Offer {
            call: CallId(call),
            zone,
            service: Service::Fire,
            resource_priority: level,
            caller: Some("+33612345678".into()),
            source: None,
            place: None,
            suspected: false,
            refused: None,
            medium: Default::default(),
        }))
    }

    fn located(&mut self, id: u64, caller: &str, place: &Arc<Whereabouts>) -> Vec<Command> {
        self.send(Event::Located {
            id: RequestId(id),
            caller: caller.into(),
            place: Arc::clone(place),
        })
    }
}

/// The test plan with `from` replaced by `to`, once.
fn variant(from: &str, to: &str) -> Arc<Plan> {
    Arc::new(Plan::from_toml(&PLAN.replacen(from, to, 1), TERRITORY).expect("valid"))
}

/// The test plan with CTA 13 lending from nobody (no partner, no national aid).
fn plan_without_aid_for_13() -> Arc<Plan> {
    variant(
        r#"partners = ["cta-83", "cta-84"]"#,
        "partners = []\nnational_aid = false",
    )
}

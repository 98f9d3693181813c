//! The plan a fault run drives, and its cast: the CTAs and zones it offers calls to and the
//! call-takers whose phones misbehave.

use std::sync::Arc;

use secourir_config::{CallTaker, CtaId, Departement, PartnerService, Plan, Role, ZoneId};
use secourir_core::{AgentId, Service};

/// A small plan where every path of the core is a few events away: capacity for 20 calls, short
/// queues, one CTA per dequeue mode, a virtual CTA on two sites, one CTA nobody staffs, and SAMU
/// as the only partner service (so that a transfer to the police is refused).
pub const FAULT_PLAN: &str = r#"
[national]
capacity = 20
reserved_share = 0.5
suspected_share = 0.25
rule_set = "national"
default_departement = "13"
callback_max = 8
expected_calls_per_year = 3_000_000
mean_handling_s = 60

[defaults]
mode = "acd"
ring_timeout_s = 15
wrap_up_s = 5
no_answer_s = 15
retry_s = 5
acd_after_s = 5
queue_max = 5
reserve_within_s = 15
reserve_share = 0.8
keep_idle = 0
wait_announcement = "attente"
crisis_announcement = "crise"

[[announcement]]
id = "attente"
text = "Sapeurs-pompiers, ne quittez pas."

[[announcement]]
id = "crise"
text = "Si vous appelez pour l'incendie en cours, tapez 1."
menu = true

[[announcement]]
id = "occupe"
text = "Tous nos opérateurs sont occupés."

[[cta]]
id = "cta-13"
name = "CTA 13"
staffing = { day = 3, night = 2 }
departements = ["13", "04"]
partners = ["cta-83", "cta-84"]

[[cta]]
id = "cta-83"
name = "CTA 83"
staffing = { day = 3, night = 2 }
departements = ["83"]
partners = ["cta-13"]
mode = "picking"

[[cta]]
id = "cta-84"
name = "CTA 84-30"
staffing = { day = 3, night = 2 }
departements = ["84", "30"]
partners = ["cta-13", "cta-83"]
mode = "mixed"
sites = [{ id = "avignon" }, { id = "nimes" }]

[[cta]]
id = "cta-06"
name = "CTA 06"
staffing = { day = 1, night = 1 }
departements = ["06"]
partners = ["cta-83"]
wrap_up_s = 0

[[cta]]
id = "cta-05"
name = "CTA 05"
# Staffed on paper only: the run logs nobody in there before the liveness phase.
staffing = { day = 1, night = 1 }
departements = ["05"]
partners = ["cta-13", "cta-84"]

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
name = "injoignable ou saturé"
when = { failed = ["unreachable", "full"] }
overflow = "partners"

[[rule_set.rule]]
name = "attente prévue"
when = { expected_wait_s = 20 }
overflow = "partners"

[[rule_set.rule]]
name = "trop longue : annonce"
when = { failed = ["no-answer"] }
announce = "occupe"

[[rule_set.rule]]
name = "trop longue : entraide"
when = { failed = ["no-answer"] }
overflow = "partners"

[[rule_set.rule]]
name = "défaut"
route = "home"

[[partner_service]]
service = "15"
name = "SAMU"
uri = "sip:15@samu.invalid"

[[call_taker]]
login = "ota-13-1"
cta = "cta-13"

[[call_taker]]
login = "ota-13-2"
cta = "cta-13"
dequeue_preference = 5

[[call_taker]]
login = "ota-13-3"
cta = "cta-13"
dequeue_preference = 1

[[call_taker]]
login = "ota-83-1"
cta = "cta-83"

[[call_taker]]
login = "ota-83-2"
cta = "cta-83"

[[call_taker]]
login = "ota-83-3"
cta = "cta-83"

[[call_taker]]
login = "ota-84-1"
cta = "cta-84"

[[call_taker]]
login = "ota-84-2"
cta = "cta-84"
site = 1

[[call_taker]]
login = "ota-84-3"
cta = "cta-84"
site = 1

[[call_taker]]
login = "ota-06-1"
cta = "cta-06"
"#;

/// Populations of the fault plan's départements: they set each zone's guaranteed share.
const TERRITORY: &[Departement<'static>] = &[
    Departement {
        code: "13",
        population: 2_000_000,
    },
    Departement {
        code: "04",
        population: 160_000,
    },
    Departement {
        code: "83",
        population: 1_100_000,
    },
    Departement {
        code: "84",
        population: 560_000,
    },
    Departement {
        code: "30",
        population: 750_000,
    },
    Departement {
        code: "06",
        population: 1_100_000,
    },
    Departement {
        code: "05",
        population: 140_000,
    },
];

/// The built-in fault plan.
pub fn fault_plan() -> Plan {
    Plan::from_toml(FAULT_PLAN, TERRITORY).expect("the built-in fault plan is valid")
}

/// A call-taker of the cast, where they log in.
#[derive(Debug, Clone, Copy)]
pub struct Seat {
    /// Their number (their index in the plan's call-takers, or beyond it if not in the plan).
    pub agent: AgentId,
    /// Their CTA.
    pub cta: CtaId,
    /// Their site.
    pub site: u16,
    /// Whether the plan knows them (state requests of others are refused).
    pub in_plan: bool,
}

/// Who and where a fault run plays.
#[derive(Debug, Clone)]
pub struct Cast {
    /// CTAs whose call-takers the run logs in.
    pub ctas: Vec<CtaId>,
    /// Zones the run offers calls to: those of its CTAs, and a few of CTAs nobody staffs.
    pub zones: Vec<ZoneId>,
    /// Call-takers the run logs in and out.
    pub roster: Vec<Seat>,
}

/// Most CTAs a run staffs: few enough that calls compete for the same call-takers.
const CAST_CTAS: usize = 4;
/// Call-takers in the plan for each CTA of the cast, added when the plan has fewer.
const SEATS_PER_CTA: usize = 3;
/// Call-takers outside the plan: their state requests are refused, their logins are not.
const STRANGERS: u32 = 3;
/// Zones of unstaffed CTAs that also receive calls.
const UNSTAFFED_ZONES: usize = 2;

/// Readies a plan for a fault run: a SAMU partner service if it has none (transfers must be
/// possible), call-takers for its cast, and the cast itself.
pub fn prepare(mut plan: Plan) -> (Arc<Plan>, Cast) {
    if plan.partner_service(Service::Ambulance).is_none() {
        plan.partner_services.push(PartnerService {
            service: Service::Ambulance,
            uri: "sip:15@samu.invalid".to_owned(),
            name: "SAMU (fault run)".to_owned(),
        });
    }
    let mut ctas: Vec<CtaId> = Vec::new();
    for taker in &plan.call_takers {
        if ctas.len() < CAST_CTAS && !ctas.contains(&taker.cta) {
            ctas.push(taker.cta);
        }
    }
    // A plan without accounts: its first CTAs, and their lenders so that mutual aid happens.
    let mut next = 0;
    while ctas.len() < CAST_CTAS.min(plan.ctas.len()) {
        let candidate = ctas
            .iter()
            .flat_map(|c| plan.cta(*c).lenders.iter().copied())
            .find(|c| !ctas.contains(c))
            .unwrap_or(CtaId(next));
        if !ctas.contains(&candidate) {
            ctas.push(candidate);
        }
        next += 1;
    }
    for &cta in &ctas {
        let have = plan.call_takers.iter().filter(|t| t.cta == cta).count();
        for k in have..SEATS_PER_CTA {
            let login = format!("faults-{}-{}", plan.cta(cta).id, k + 1);
            plan.add_call_taker(CallTaker {
                login,
                name: None,
                cta,
                site: u16::try_from(k % plan.cta(cta).sites.len().max(1)).unwrap_or(0),
                dequeue_preference: 3,
                sip_ha1: None,
                sip_ha1_sha256: None,
                web_password: None,
                role: Role::Ota,
                totp_secret: None,
            });
        }
    }
    let mut roster: Vec<Seat> = plan
        .call_takers
        .iter()
        .enumerate()
        .filter(|(_, t)| ctas.contains(&t.cta))
        .map(|(i, t)| Seat {
            agent: AgentId(u32::try_from(i).unwrap_or(u32::MAX)),
            cta: t.cta,
            site: t.site,
            in_plan: true,
        })
        .collect();
    let first_stranger = u32::try_from(plan.call_takers.len()).unwrap_or(u32::MAX - STRANGERS);
    for k in 0..STRANGERS {
        roster.push(Seat {
            agent: AgentId(first_stranger + k),
            cta: ctas[k as usize % ctas.len()],
            site: 0,
            in_plan: false,
        });
    }
    let mut zones: Vec<ZoneId> = Vec::new();
    let mut unstaffed = 0;
    for (z, zone) in plan.zones.iter().enumerate() {
        let id = ZoneId(u16::try_from(z).unwrap_or(u16::MAX));
        if ctas.contains(&zone.cta) {
            zones.push(id);
        } else if unstaffed < UNSTAFFED_ZONES {
            zones.push(id);
            unstaffed += 1;
        }
    }
    (
        Arc::new(plan),
        Cast {
            ctas,
            zones,
            roster,
        },
    )
}

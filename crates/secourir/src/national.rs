//! The shipped national configuration, generated from the territory: one CTA per SDIS, the BSPP
//! for Paris and its inner suburbs, partners from the départements' adjacency, staffing sized with
//! Erlang C for the national call volume.

use std::fmt::Write as _;

use secourir_config::Departement as ZoneFact;
use secourir_territory::Territory;

/// Départements served by the Brigade de sapeurs-pompiers de Paris.
pub const BSPP: [&str; 4] = ["75", "92", "93", "94"];

/// Calls a year to the 18 and 112 handled by fire and rescue services (national order of size).
pub const CALLS_PER_YEAR: f64 = 18_000_000.0;
/// Mean conversation plus wrap-up, in seconds, used for sizing.
pub const HANDLING_S: f64 = 110.0;
/// Share of the day's calls that arrive between 07:00 and 19:00.
const DAY_SHARE: f64 = 0.65;
/// Busiest hour of the day against the mean daytime hour.
const PEAK_FACTOR: f64 = 1.3;
/// Busiest night hour (19:00–20:00, still evening traffic) against the mean night hour.
const NIGHT_PEAK_FACTOR: f64 = 2.0;

/// Overseas départements have no land neighbours; these are their mutual-aid partners.
const OVERSEAS_PARTNERS: [(&str, &[&str]); 5] = [
    ("971", &["972", "973"]),
    ("972", &["971", "973"]),
    ("973", &["972", "971"]),
    ("974", &["976"]),
    ("976", &["974"]),
];

/// The regions of France (2016), whose CTAs are each other's second mutual-aid tier. Overseas
/// départements are regions of their own; their partners already cover their neighbours.
const REGIONS: [&[&str]; 13] = [
    &[
        "01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74",
    ],
    &["21", "25", "39", "58", "70", "71", "89", "90"],
    &["22", "29", "35", "56"],
    &["18", "28", "36", "37", "41", "45"],
    &["2A", "2B"],
    &["08", "10", "51", "52", "54", "55", "57", "67", "68", "88"],
    &["02", "59", "60", "62", "80"],
    &["75", "77", "78", "91", "92", "93", "94", "95"],
    &["14", "27", "50", "61", "76"],
    &[
        "16", "17", "19", "23", "24", "33", "40", "47", "64", "79", "86", "87",
    ],
    &[
        "09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82",
    ],
    &["44", "49", "53", "72", "85"],
    &["04", "05", "06", "13", "83", "84"],
];

/// Where a CTA's callers live on average: the population-weighted centre of its communes.
fn centre(territory: &Territory, deps: &[&str]) -> Option<(f64, f64)> {
    let (mut lat, mut lon, mut weight) = (0.0, 0.0, 0.0);
    for commune in territory.communes() {
        if commune.parent_insee.is_some() || !deps.contains(&commune.departement.as_str()) {
            continue;
        }
        if let (Some(la), Some(lo)) = (commune.lat, commune.lon) {
            let w = commune.population as f64;
            lat += la * w;
            lon += lo * w;
            weight += w;
        }
    }
    (weight > 0.0).then(|| (lat / weight, lon / weight))
}

/// The départements as the config loader checks zones against them.
pub fn zone_facts(territory: &Territory) -> Vec<ZoneFact<'_>> {
    territory
        .departements()
        .iter()
        .map(|d| ZoneFact {
            code: &d.code,
            population: d.population,
        })
        .collect()
}

/// Identifier of the CTA serving a département.
pub fn cta_id(code: &str) -> String {
    if BSPP.contains(&code) {
        "bspp".to_owned()
    } else {
        format!("cta-{}", code.to_ascii_lowercase())
    }
}

/// Call-takers needed by day and by night for a population, to answer 95% within 15 s.
pub fn staffing(population: u64, national_population: u64) -> (u32, u32) {
    let share = population as f64 / national_population.max(1) as f64;
    let per_day = CALLS_PER_YEAR * share / 365.0;
    let day_per_hour = per_day * DAY_SHARE / 12.0 * PEAK_FACTOR;
    let night_per_hour = per_day * (1.0 - DAY_SHARE) / 12.0 * NIGHT_PEAK_FACTOR;
    let size = |per_hour: f64| {
        let load = per_hour * HANDLING_S / 3600.0;
        secourir_erlang::agents_for_service_level(load, HANDLING_S, 15.0, 0.95).max(2)
    };
    (size(day_per_hour), size(night_per_hour))
}

/// The text of `config/france.toml`.
pub fn generate(territory: &Territory) -> String {
    let departements = territory.departements();
    let national_population: u64 = departements.iter().map(|d| d.population).sum();
    let mut out = String::new();
    out.push_str(HEADER);

    // CTAs in the order of their first département, so the file reads like the INSEE list.
    let mut ctas: Vec<(String, Vec<&str>)> = Vec::new();
    for d in departements {
        let id = cta_id(&d.code);
        match ctas.iter_mut().find(|(cta, _)| *cta == id) {
            Some((_, deps)) => deps.push(&d.code),
            None => ctas.push((id, vec![&d.code])),
        }
    }
    let centres: Vec<Option<(f64, f64)>> = ctas
        .iter()
        .map(|(_, deps)| centre(territory, deps))
        .collect();
    for (index, (id, deps)) in ctas.iter().enumerate() {
        let population: u64 = deps
            .iter()
            .filter_map(|c| territory.departement(c))
            .map(|d| d.population)
            .sum();
        let mut partners: Vec<(u64, String)> = Vec::new();
        let mut add = |code: &str| {
            let partner = cta_id(code);
            if partner != *id && !partners.iter().any(|(_, p)| *p == partner) {
                let pop = territory.departement(code).map_or(0, |d| d.population);
                partners.push((pop, partner));
            }
        };
        for code in deps {
            for n in territory.neighbours(code) {
                add(n);
            }
            if let Some((_, list)) = OVERSEAS_PARTNERS.iter().find(|(c, _)| c == code) {
                for n in *list {
                    add(n);
                }
            }
        }
        // Larger neighbours first: they have more call-takers to lend.
        partners.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let (day, night) = staffing(population, national_population);
        let name = if id == "bspp" {
            "BSPP – Brigade de sapeurs-pompiers de Paris".to_owned()
        } else {
            let d = territory.departement(deps[0]);
            format!(
                "CTA-CODIS {} ({})",
                d.map_or("", |d| d.name.as_str()),
                deps[0]
            )
        };
        let _ = writeln!(out, "[[cta]]");
        let _ = writeln!(out, "id = {id:?}");
        let _ = writeln!(out, "name = {name:?}");
        let _ = writeln!(out, "departements = {}", list(deps.iter().copied()));
        let _ = writeln!(
            out,
            "partners = {}",
            list(partners.iter().map(|(_, p)| p.as_str()))
        );
        // The rest of the region, nearest first.
        let mut region: Vec<(f64, &str)> = ctas
            .iter()
            .enumerate()
            .filter(|(j, (other, other_deps))| {
                *j != index
                    && !partners.iter().any(|(_, p)| p == other)
                    && REGIONS.iter().any(|r| {
                        deps.iter().any(|d| r.contains(d))
                            && other_deps.iter().any(|d| r.contains(d))
                    })
            })
            .map(|(j, (other, _))| {
                let km = match (centres[index], centres[j]) {
                    (Some(a), Some(b)) => secourir_config::distance_km(a, b),
                    _ => f64::INFINITY,
                };
                (km, other.as_str())
            })
            .collect();
        region.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
        if !region.is_empty() {
            let _ = writeln!(out, "region = {}", list(region.iter().map(|(_, r)| *r)));
        }
        if let Some((lat, lon)) = centres[index] {
            let _ = writeln!(out, "lat = {lat:.4}");
            let _ = writeln!(out, "lon = {lon:.4}");
        }
        let _ = writeln!(out, "staffing = {{ day = {day}, night = {night} }}");
        out.push('\n');
    }

    for d in departements {
        let point = territory
            .commune(&d.chef_lieu_insee)
            .and_then(|c| Some((c.lat?, c.lon?)));
        let _ = writeln!(out, "[[trunk]]");
        let _ = writeln!(out, "id = \"ingress-{}\"", d.code.to_ascii_lowercase());
        let _ = writeln!(out, "default_departement = {:?}", d.code);
        if let Some((lat, lon)) = point {
            let _ = writeln!(out, "default_lat = {lat:.5}");
            let _ = writeln!(out, "default_lon = {lon:.5}");
        }
        out.push('\n');
    }
    out.push_str(RULES);
    out.push_str(HUB_EXAMPLE);
    out.push_str(DEMO_CALL_TAKERS);
    out
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

const HEADER: &str = r#"# Secourir — national configuration.
#
# Generated by `secourir generate-config` from the territory data: one CTA per SDIS, the BSPP
# serving 75, 92, 93 and 94, staffing sized with Erlang C to answer 95% of calls within 15 s at
# 18 million calls a year. Mutual aid comes in tiers: `partners` (the départements that touch,
# largest first), then `region` (the rest of the administrative region, nearest first), then
# every other CTA of the country, nearest first from `lat`/`lon` (where its callers live), unless
# `national_aid = false`. Edit it by hand freely; `secourir check-config FILE` checks it.

[national]
# Simultaneous calls the platform carries (admitted and not yet ended). The national sizing
# target is 2,000 simultaneous calls with 100 SDIS connected.
capacity = 3000
# Share of the capacity reserved to the zones in proportion to their population; the rest is a
# pool any zone may borrow, so that a surge in one département never takes another's share.
reserved_share = 0.5
timezone = "Europe/Paris"
rule_set = "national"
# Zone of a call whose location is unknown and whose trunk says nothing.
default_departement = "75"
# Each CTA keeps a reserve for its own callers, sized with Erlang C from the calls its zones were
# offered in the last 30 minutes and the handling time it observes (90 s before any is seen).
# With `expected_calls_per_year`, a CTA that has not yet seen 30 minutes of traffic reads the
# rest of the window from its population's share of that figure instead of from nothing.
mean_handling_s = 90

[defaults]
mode = "acd"             # acd | picking | mixed
ring_timeout_s = 15      # a call-taker's phone that rings this long is marked unavailable
wrap_up_s = 20           # time after a call before the next one
no_answer_s = 15         # a call waiting this long is offered to the lenders again,
retry_s = 5              # and again at this interval while it waits
acd_after_s = 10         # mixed mode: the ACD offers calls nobody picked within this delay
queue_max = 100          # waiting calls beyond which a queue is full: they overflow nationally
reserve_within_s = 15    # a CTA lends only call-takers beyond those it needs to answer
reserve_share = 0.8      # this share of its own recent load within reserve_within_s, and
keep_idle = 0            # never fewer than this; its callers who still find nobody are taken
                         # by the country's lenders before any crisis zone's
national_aid = true      # every CTA of the country is the last tier of every other
wait_announcement = "attente"
crisis_announcement = "crise"

[[announcement]]
id = "attente"
text = "Sapeurs-pompiers. Votre appel va aboutir, restez en ligne, ne raccrochez pas."
file = "attente.wav"

[[announcement]]
id = "crise"
text = "Sapeurs-pompiers. Si vous appelez pour l'incendie en cours, tapez 1. Pour toute autre urgence, restez en ligne."
file = "crise.wav"
menu = true

[[announcement]]
id = "occupe"
text = "Sapeurs-pompiers. Tous nos opérateurs sont occupés. Restez en ligne, votre appel sera traité par le premier opérateur disponible."
file = "occupe.wav"

"#;

const RULES: &str = r#"[[rule_set]]
id = "national"

[[rule_set.rule]]
name = "crise : annonce et menu"
when = { crisis = true }
announce = "crise"

# Mutual aid only where a lender has a call-taker beyond its reserve; a call that finds none
# waits in its own queue, whatever its state, and the first lender to free a call-taker takes it.
[[rule_set.rule]]
name = "CTA injoignable ou saturé : entraide"
when = { failed = ["unreachable", "full"] }
overflow = "partners"

[[rule_set.rule]]
name = "attente prévue au-delà de 15 s : entraide"
when = { expected_wait_s = 15 }
overflow = "partners"

[[rule_set.rule]]
name = "attente trop longue : annonce"
when = { failed = ["no-answer"] }
announce = "occupe"

[[rule_set.rule]]
name = "attente trop longue : entraide"
when = { failed = ["no-answer"] }
overflow = "partners"

[[rule_set.rule]]
name = "par défaut : CTA du département"
route = "home"
"#;

/// A commented `[hub]`: the shipped plan shares no case, so it needs no broker.
const HUB_EXAMPLE: &str = r#"
# The Hub Santé, to share cases with the partners as CISU messages (optional: without this
# table the platform shares none). For a local broker:
# [hub]
# url = "amqp://guest:guest@127.0.0.1:5672/%2f"   # amqps://…:5671/{vhost} for the real hub
# client_id = "fr.fire.secourir.sdis13"           # the platform's client id on the hub
# exchange = "hubsante"
# certificate = "tls/hub.crt"                     # mTLS on the real hub: both, PEM
# private_key = "tls/hub.key"
# ca = "tls/hub-ca.crt"
# With a [hub], each partner service names its own client id on the hub:
# [[partner_service]]
# service = "15"
# uri = "sip:15@samu13.example"
# hub_id = "fr.health.samu13"
"#;

const DEMO_CALL_TAKERS: &str = r#"
# Demonstration accounts, password "secourir" everywhere. Phones register with digest
# authentication (realm "secourir"): `sip_ha1` is MD5("login:secourir:password"). The console
# login checks `web_password`, an argon2id hash. No password is stored in clear. Room
# supervisors and administrators also give a one-time code (RFC 6238) from `totp_secret`, in
# base32: any authenticator application takes it, and `secourir totp LOGIN` prints the code of
# now. Replace these accounts and secrets before any real service.

[[call_taker]]
login = "ota-13-1"
name = "Opératrice démo 13 (1)"
cta = "cta-13"
sip_ha1 = "048d55801b1e391c22bccf8a93681efb"
web_password = "$argon2id$v=19$m=19456,t=2,p=1$c2Vjb3VyaXItZGVtby1vdGEtMTMtMQ$pxD8hS8W70Xfsg7s9JsqOBj1seYpd7G1Eh/okPPGc+U"

[[call_taker]]
login = "ota-13-2"
name = "Opérateur démo 13 (2)"
cta = "cta-13"
sip_ha1 = "1017197f67520309ff36a2f3fc14e1e5"
web_password = "$argon2id$v=19$m=19456,t=2,p=1$c2Vjb3VyaXItZGVtby1vdGEtMTMtMg$09RuRz7/olzYrCICFF1xorlnhti2bQ/5JEFy7UabY94"

[[call_taker]]
login = "ota-83-1"
name = "Opératrice démo 83"
cta = "cta-83"
sip_ha1 = "64cae328276e44c72dfb26adfd6bf201"
web_password = "$argon2id$v=19$m=19456,t=2,p=1$c2Vjb3VyaXItZGVtby1vdGEtODMtMQ$d1WYUDoF7rIst/+sOKh7+rI4crn8+uYGyzyXcYy6YhE"

[[call_taker]]
login = "ota-bspp-1"
name = "Opérateur démo BSPP (1)"
cta = "bspp"
sip_ha1 = "f492c1a165d7c8f33c3f70fdfa1c8f83"
web_password = "$argon2id$v=19$m=19456,t=2,p=1$c2Vjb3VyaXItZGVtby1vdGEtYnNwcC0x$oVfuPIVjW4QlHXxkXmlWJkgPDnQveJaXtXUAjIDHvW4"

[[call_taker]]
login = "ota-bspp-2"
name = "Opératrice démo BSPP (2)"
cta = "bspp"
sip_ha1 = "094efde52f5e10460e33716c9be96642"
web_password = "$argon2id$v=19$m=19456,t=2,p=1$c2Vjb3VyaXItZGVtby1vdGEtYnNwcC0y$WMpFumYqVtKHbG2+30QxkWxoB9Ikeux46WlS6DRvqKQ"

[[call_taker]]
login = "chef-13"
name = "Chef de salle démo 13"
cta = "cta-13"
role = "chef_de_salle"
totp_secret = "ONSWG33VOJUXELLEMVWW6LLDNBSWMLJRGM"
web_password = "$argon2id$v=19$m=19456,t=2,p=1$c2Vjb3VyaXItZGVtby1jaGVmLTEz$wgEZuu7edARje25YW3xJUEoNRoYlck0IwKs+NXzZQZ4"

[[call_taker]]
login = "chef-bspp"
name = "Chef de salle démo BSPP"
cta = "bspp"
role = "chef_de_salle"
totp_secret = "ONSWG33VOJUXELLEMVWW6LLDNBSWMLLCONYHA"
web_password = "$argon2id$v=19$m=19456,t=2,p=1$c2Vjb3VyaXItZGVtby1jaGVmLWJzcHA$nCvBwgUbeIQoPDpqm8wy6d0D2HpY0DUJZBnzufVsgYU"
"#;

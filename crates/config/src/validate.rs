//! Turns the raw file into a [`Plan`], collecting every problem with its line.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use toml::Spanned;

use crate::plan::*;
use crate::raw::*;
use crate::{ConfigError, Departement, Problem};

/// Default delays and sizes, used where neither the CTA nor `[defaults]` says otherwise.
const RING_TIMEOUT_S: u32 = 20;
const WRAP_UP_S: u32 = 20;
const NO_ANSWER_S: u32 = 30;
const RETRY_S: u32 = 10;
const ACD_AFTER_S: u32 = 10;
const QUEUE_MAX: u32 = 200;
const KEEP_IDLE: u32 = 0;
const RESERVE_WITHIN_S: u32 = 15;
const RESERVE_SHARE: f64 = 0.8;
const MEAN_HANDLING_S: u32 = 90;
const CALLBACK_MAX: u32 = 100_000;

struct Checker<'a> {
    source: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_column(self.source, span.start);
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
        });
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    (line, offset - line_start + 1)
}

pub(crate) fn parse(source: &str, territory: &[Departement<'_>]) -> Result<Plan, ConfigError> {
    let raw: RawConfig = match toml::from_str(source) {
        Ok(raw) => raw,
        Err(error) => {
            let (line, column) = error
                .span()
                .map_or((1, 1), |span| line_column(source, span.start));
            return Err(ConfigError {
                problems: vec![Problem {
                    line,
                    column,
                    message: error.message().trim().to_owned(),
                }],
            });
        }
    };
    let mut checker = Checker {
        source,
        problems: Vec::new(),
    };
    let plan = build(&raw, territory, &mut checker);
    if checker.problems.is_empty() {
        Ok(plan)
    } else {
        checker.problems.sort_by_key(|p| (p.line, p.column));
        Err(ConfigError {
            problems: checker.problems,
        })
    }
}

fn build(raw: &RawConfig, territory: &[Departement<'_>], c: &mut Checker<'_>) -> Plan {
    let national = raw.national.get_ref();
    let known: HashMap<&str, u64> = territory.iter().map(|d| (d.code, d.population)).collect();

    if *national.capacity.get_ref() == 0 {
        c.at(national.capacity.span(), "capacity must be at least 1 call");
    }
    let share = *national.reserved_share.get_ref();
    if !(0.0..=1.0).contains(&share) {
        c.at(
            national.reserved_share.span(),
            format!("reserved_share must be between 0 and 1, not {share}"),
        );
    }
    let suspected = *national.suspected_share.get_ref();
    if !(0.0..=1.0).contains(&suspected) {
        c.at(
            national.suspected_share.span(),
            format!("suspected_share must be between 0 and 1, not {suspected}"),
        );
    }
    let expected_calls_per_year = match &national.expected_calls_per_year {
        Some(n) if !(n.get_ref().is_finite() && *n.get_ref() >= 0.0) => {
            c.at(
                n.span(),
                format!(
                    "expected_calls_per_year must be 0 or more, not {}",
                    n.get_ref()
                ),
            );
            0.0
        }
        Some(n) => *n.get_ref(),
        None => 0.0,
    };
    if let Some(h) = &national.mean_handling_s
        && *h.get_ref() == 0
    {
        c.at(h.span(), "mean_handling_s must be at least 1 s");
    }
    let timezone = national
        .timezone
        .get_ref()
        .parse::<chrono_tz::Tz>()
        .unwrap_or_else(|_| {
            c.at(
                national.timezone.span(),
                format!("unknown time zone {:?}", national.timezone.get_ref()),
            );
            chrono_tz::Europe::Paris
        });

    let announcements = announcements(raw, c);
    let announcement_index: HashMap<String, AnnouncementId> = announcements
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.clone(), AnnouncementId(index_u16(i))))
        .collect();

    let rule_set_index = rule_set_index(raw, c);

    // CTA identifiers first, so that partners and rules can refer to any of them.
    let mut cta_index: HashMap<String, CtaId> = HashMap::new();
    for (i, cta) in raw.ctas.iter().enumerate() {
        let id = cta.get_ref().id.get_ref();
        if cta_index.insert(id.clone(), CtaId(index_u16(i))).is_some() {
            c.at(
                cta.get_ref().id.span(),
                format!("CTA {id:?} is defined twice"),
            );
        }
    }
    if raw.ctas.is_empty() {
        c.at(raw.national.span(), "no [[cta]] is defined");
    }

    let defaults = &raw.defaults;
    let default_mode = defaults
        .mode
        .as_ref()
        .map(|m| parse_mode(m, c))
        .unwrap_or(DequeueMode::Mixed);
    let default_wait =
        lookup_announcement(defaults.wait_announcement.as_ref(), &announcement_index, c);
    let default_crisis = lookup_announcement(
        defaults.crisis_announcement.as_ref(),
        &announcement_index,
        c,
    );
    let default_rule_set = match rule_set_index.get(national.rule_set.get_ref()) {
        Some(&id) => id,
        None => {
            c.at(
                national.rule_set.span(),
                format!("unknown rule set {:?}", national.rule_set.get_ref()),
            );
            RuleSetId(0)
        }
    };

    let mut zone_index: HashMap<String, ZoneId> = HashMap::new();
    let mut zones: Vec<ZonePlan> = Vec::new();
    let mut ctas = Vec::with_capacity(raw.ctas.len());
    for (i, spanned) in raw.ctas.iter().enumerate() {
        let cta = spanned.get_ref();
        let cta_id = CtaId(index_u16(i));
        for dep in &cta.departements {
            let code = dep.get_ref();
            let Some(&population) = known.get(code.as_str()) else {
                c.at(dep.span(), format!("unknown département {code:?}"));
                continue;
            };
            if let Some(&other) = zone_index.get(code) {
                let other = &raw.ctas[usize::from(other.0)].get_ref().id;
                c.at(
                    dep.span(),
                    format!(
                        "département {code} is already served by {:?}",
                        other.get_ref()
                    ),
                );
                continue;
            }
            let zone = ZoneId(index_u16(zones.len()));
            zone_index.insert(code.clone(), zone);
            zones.push(ZonePlan {
                code: code.clone(),
                cta: cta_id,
                population,
                guaranteed: 0,
            });
        }
        let partners = tier(&cta.partners, "partners", cta_id, &[], &cta_index, c);
        let region = tier(&cta.region, "region", cta_id, &partners, &cta_index, c);
        let location = match (&cta.lat, &cta.lon) {
            (Some(lat), Some(lon)) => {
                let (la, lo) = (*lat.get_ref(), *lon.get_ref());
                if !(-90.0..=90.0).contains(&la) || !(-180.0..=180.0).contains(&lo) {
                    c.at(
                        lat.span(),
                        format!("lat/lon {la}, {lo} is not a place on Earth"),
                    );
                    None
                } else {
                    Some((la, lo))
                }
            }
            (None, None) => None,
            (Some(one), None) | (None, Some(one)) => {
                c.at(one.span(), "give both lat and lon, or neither");
                None
            }
        };
        let reserve_share = match cta
            .reserve_share
            .as_ref()
            .or(defaults.reserve_share.as_ref())
        {
            Some(share) if !(0.0..1.0).contains(share.get_ref()) => {
                c.at(
                    share.span(),
                    format!(
                        "reserve_share must be at least 0 and below 1, not {}",
                        share.get_ref()
                    ),
                );
                RESERVE_SHARE
            }
            Some(share) => *share.get_ref(),
            None => RESERVE_SHARE,
        };
        let rule_set = match &cta.rule_set {
            Some(name) => match rule_set_index.get(name.get_ref()) {
                Some(&id) => id,
                None => {
                    c.at(
                        name.span(),
                        format!("unknown rule set {:?}", name.get_ref()),
                    );
                    default_rule_set
                }
            },
            None => default_rule_set,
        };
        let sites = if cta.sites.is_empty() {
            vec![Site {
                id: "principal".to_owned(),
                name: cta.name.clone(),
            }]
        } else {
            cta.sites
                .iter()
                .map(|s| Site {
                    id: s.id.clone(),
                    name: s.name.clone().unwrap_or_else(|| s.id.clone()),
                })
                .collect()
        };
        let seconds = |own: Option<u32>, default: Option<u32>, fallback: u32| {
            u64::from(own.or(default).unwrap_or(fallback)) * 1000
        };
        let (line, _) = line_column(c.source, spanned.span().start);
        ctas.push(CtaPlan {
            id: cta.id.get_ref().clone(),
            name: cta.name.clone(),
            departements: cta
                .departements
                .iter()
                .map(|d| d.get_ref().clone())
                .collect(),
            sites,
            partners,
            region,
            national_aid: cta.national_aid.or(defaults.national_aid).unwrap_or(true),
            location,
            lenders: Vec::new(),
            staffing: Staffing {
                day: cta.staffing.day,
                night: cta.staffing.night,
            },
            rule_set,
            mode: cta
                .mode
                .as_ref()
                .map(|m| parse_mode(m, c))
                .unwrap_or(default_mode),
            ring_timeout_ms: seconds(cta.ring_timeout_s, defaults.ring_timeout_s, RING_TIMEOUT_S),
            wrap_up_ms: seconds(cta.wrap_up_s, defaults.wrap_up_s, WRAP_UP_S),
            no_answer_ms: seconds(cta.no_answer_s, defaults.no_answer_s, NO_ANSWER_S),
            retry_ms: seconds(cta.retry_s, defaults.retry_s, RETRY_S).max(1000),
            acd_after_ms: seconds(cta.acd_after_s, defaults.acd_after_s, ACD_AFTER_S),
            queue_max: cta.queue_max.or(defaults.queue_max).unwrap_or(QUEUE_MAX),
            keep_idle: cta.keep_idle.or(defaults.keep_idle).unwrap_or(KEEP_IDLE),
            reserve_within_ms: seconds(
                cta.reserve_within_s,
                defaults.reserve_within_s,
                RESERVE_WITHIN_S,
            ),
            reserve_share,
            wait_announcement: lookup_announcement(
                cta.wait_announcement.as_ref(),
                &announcement_index,
                c,
            )
            .or(default_wait),
            crisis_announcement: lookup_announcement(
                cta.crisis_announcement.as_ref(),
                &announcement_index,
                c,
            )
            .or(default_crisis),
            line,
        });
    }

    for dep in territory {
        if !zone_index.contains_key(dep.code) {
            c.at(
                raw.national.span(),
                format!("département {} is served by no CTA", dep.code),
            );
        }
    }

    let default_zone = zone_index
        .get(national.default_departement.get_ref())
        .copied()
        .unwrap_or_else(|| {
            c.at(
                national.default_departement.span(),
                format!(
                    "default_departement {:?} is served by no CTA",
                    national.default_departement.get_ref()
                ),
            );
            ZoneId(0)
        });

    share_capacity(raw, &mut zones, &zone_index, c);
    order_lenders(&mut ctas);

    let trunks = trunks(raw, &zone_index, c);
    let trunk_index = trunks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.clone(), i))
        .collect();

    let resolver = Resolver {
        ctas: &cta_index,
        zones: &zone_index,
        announcements: &announcement_index,
    };
    let rule_sets = raw
        .rule_sets
        .iter()
        .map(|set| rule_set(set, &resolver, c))
        .collect::<Vec<_>>();

    check_ways_out(raw, &ctas, &rule_sets, c);

    let call_takers = call_takers(raw, &cta_index, c);
    let partner_services = partner_services(raw, c);
    let call_taker_index = call_takers
        .iter()
        .enumerate()
        .map(|(i, t)| (t.login.clone(), i))
        .collect();

    Plan {
        capacity: *national.capacity.get_ref(),
        suspected_capacity: (f64::from(*national.capacity.get_ref())
            * national.suspected_share.get_ref().clamp(0.0, 1.0))
        .floor() as u32,
        timezone,
        default_zone,
        callback_max: national.callback_max.unwrap_or(CALLBACK_MAX),
        expected_calls_per_year,
        mean_handling_ms: u64::from(
            national
                .mean_handling_s
                .as_ref()
                .map_or(MEAN_HANDLING_S, |s| *s.get_ref()),
        ) * 1000,
        ctas,
        zones,
        announcements,
        rule_sets,
        trunks,
        call_takers,
        partner_services,
        tls: raw.tls.as_ref().map(|t| tls_files(t, c)),
        cta_index,
        zone_index,
        announcement_index,
        trunk_index,
        call_taker_index,
    }
}

fn partner_services(raw: &RawConfig, c: &mut Checker<'_>) -> Vec<PartnerService> {
    let mut out: Vec<PartnerService> = Vec::new();
    for p in &raw.partner_services {
        let p = p.get_ref();
        let Some(service) = Service::parse(p.service.get_ref()) else {
            c.at(
                p.service.span(),
                format!(
                    "unknown service {:?}: 15, 17, or a urn:service:sos.* URN",
                    p.service.get_ref()
                ),
            );
            continue;
        };
        let uri = p.uri.get_ref();
        if !(uri.starts_with("sip:") || uri.starts_with("sips:")) || uri.len() < 6 {
            c.at(
                p.uri.span(),
                format!("uri {uri:?} must be a sip: or sips: URI"),
            );
            continue;
        }
        if out.iter().any(|o| o.service == service) {
            c.at(p.service.span(), "this service has a partner already");
            continue;
        }
        out.push(PartnerService {
            service,
            uri: uri.clone(),
            name: p
                .name
                .clone()
                .unwrap_or_else(|| p.service.get_ref().clone()),
        });
    }
    out
}

fn call_takers(
    raw: &RawConfig,
    cta_index: &HashMap<String, CtaId>,
    c: &mut Checker<'_>,
) -> Vec<CallTaker> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for t in &raw.call_takers {
        let t = t.get_ref();
        let login = t.login.get_ref();
        if login.is_empty()
            || !login
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            c.at(
                t.login.span(),
                format!("login {login:?} must be letters, digits, '-', '_' or '.'"),
            );
            continue;
        }
        if !seen.insert(login.clone()) {
            c.at(
                t.login.span(),
                format!("call-taker {login:?} is defined twice"),
            );
            continue;
        }
        let Some(&cta) = cta_index.get(t.cta.get_ref()) else {
            c.at(t.cta.span(), format!("unknown CTA {:?}", t.cta.get_ref()));
            continue;
        };
        let Ok(ha1) = hex_hash(t.sip_ha1.as_ref(), 32, "sip_ha1", "MD5", c) else {
            continue;
        };
        let Ok(ha1_sha256) = hex_hash(
            t.sip_ha1_sha256.as_ref(),
            64,
            "sip_ha1_sha256",
            "SHA-256",
            c,
        ) else {
            continue;
        };
        let mut web_password = None;
        if let Some(w) = &t.web_password {
            if !w.get_ref().starts_with("$argon2") {
                c.at(
                    w.span(),
                    "web_password must be an argon2 hash ($argon2id$v=19$…), never a password",
                );
                continue;
            }
            web_password = Some(w.get_ref().clone());
        }
        let role = match t.role.as_ref().map(|r| r.get_ref().as_str()) {
            None | Some("ota") => Role::Ota,
            Some("chef_de_salle") => Role::ChefDeSalle,
            Some("admin") => Role::Admin,
            Some(other) => {
                let span = t.role.as_ref().map_or(t.login.span(), |r| r.span());
                c.at(
                    span,
                    format!("unknown role {other:?}: ota, chef_de_salle or admin"),
                );
                continue;
            }
        };
        let totp_secret = match &t.totp_secret {
            Some(secret) => {
                let text: String = secret
                    .get_ref()
                    .chars()
                    .filter(|c| !c.is_whitespace() && *c != '=')
                    .collect::<String>()
                    .to_ascii_uppercase();
                match data_encoding::BASE32_NOPAD.decode(text.as_bytes()) {
                    Ok(bytes) if bytes.len() >= 16 => Some(bytes),
                    Ok(_) => {
                        c.at(
                            secret.span(),
                            "totp_secret must hold at least 128 bits (26 base32 characters)",
                        );
                        continue;
                    }
                    Err(_) => {
                        c.at(secret.span(), "totp_secret must be base32 (A-Z, 2-7)");
                        continue;
                    }
                }
            }
            None => None,
        };
        if role.supervises() && totp_secret.is_none() && web_password.is_some() {
            c.at(
                t.login.span(),
                format!(
                    "{login}: a {} signs in with a second factor: give it a totp_secret",
                    role.as_str()
                ),
            );
        }
        let preference = t.dequeue_preference.unwrap_or(3);
        if !(1..=5).contains(&preference) {
            c.at(t.login.span(), "dequeue_preference goes from 1 to 5");
        }
        out.push(CallTaker {
            login: login.clone(),
            name: t.name.clone(),
            cta,
            site: t.site,
            dequeue_preference: preference.clamp(1, 5),
            sip_ha1: ha1,
            sip_ha1_sha256: ha1_sha256,
            web_password,
            role,
            totp_secret,
        });
    }
    out
}

/// A digest HA1 as the configuration holds it: `digits` hexadecimal digits of the `algorithm`
/// hash of `login:secourir:password`, kept in lowercase; Err once the problem is noted.
fn hex_hash(
    value: Option<&Spanned<String>>,
    digits: usize,
    field: &str,
    algorithm: &str,
    c: &mut Checker<'_>,
) -> Result<Option<String>, ()> {
    let Some(h) = value else {
        return Ok(None);
    };
    let text = h.get_ref();
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        c.at(
            h.span(),
            format!(
                "{field} must be {digits} hexadecimal digits: {algorithm} of \"login:secourir:password\""
            ),
        );
        return Err(());
    }
    Ok(Some(text.to_ascii_lowercase()))
}

fn tls_files(raw: &Spanned<RawTls>, c: &mut Checker<'_>) -> TlsFiles {
    let tls = raw.get_ref();
    for (field, path) in [
        ("certificate", &tls.certificate),
        ("private_key", &tls.private_key),
    ] {
        if path.get_ref().trim().is_empty() {
            c.at(path.span(), format!("{field} must name a PEM file"));
        }
    }
    TlsFiles {
        certificate: tls.certificate.get_ref().clone(),
        private_key: tls.private_key.get_ref().clone(),
        line: line_column(c.source, raw.span().start).0,
    }
}

fn index_u16(i: usize) -> u16 {
    // The loader refuses files that large long before: toml would have to hold 65,536 tables.
    u16::try_from(i).unwrap_or(u16::MAX)
}

fn announcements(raw: &RawConfig, c: &mut Checker<'_>) -> Vec<Announcement> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for a in &raw.announcements {
        let a = a.get_ref();
        if !seen.insert(a.id.get_ref().clone()) {
            c.at(
                a.id.span(),
                format!("announcement {:?} is defined twice", a.id.get_ref()),
            );
        }
        if a.text.trim().is_empty() {
            c.at(a.id.span(), "an announcement needs its text");
        }
        out.push(Announcement {
            id: a.id.get_ref().clone(),
            text: a.text.clone(),
            file: a.file.clone(),
            menu: a.menu,
        });
    }
    out
}

fn rule_set_index(raw: &RawConfig, c: &mut Checker<'_>) -> HashMap<String, RuleSetId> {
    let mut index = HashMap::new();
    for (i, set) in raw.rule_sets.iter().enumerate() {
        let id = &set.get_ref().id;
        if index
            .insert(id.get_ref().clone(), RuleSetId(index_u16(i)))
            .is_some()
        {
            c.at(
                id.span(),
                format!("rule set {:?} is defined twice", id.get_ref()),
            );
        }
    }
    index
}

fn parse_mode(mode: &Spanned<String>, c: &mut Checker<'_>) -> DequeueMode {
    match mode.get_ref().as_str() {
        "acd" => DequeueMode::Acd,
        "picking" => DequeueMode::Picking,
        "mixed" => DequeueMode::Mixed,
        other => {
            c.at(
                mode.span(),
                format!("mode must be \"acd\", \"picking\" or \"mixed\", not {other:?}"),
            );
            DequeueMode::Mixed
        }
    }
}

fn lookup_announcement(
    name: Option<&Spanned<String>>,
    index: &HashMap<String, AnnouncementId>,
    c: &mut Checker<'_>,
) -> Option<AnnouncementId> {
    let name = name?;
    let found = index.get(name.get_ref()).copied();
    if found.is_none() {
        c.at(
            name.span(),
            format!("unknown announcement {:?}", name.get_ref()),
        );
    }
    found
}

fn share_capacity(
    raw: &RawConfig,
    zones: &mut [ZonePlan],
    zone_index: &HashMap<String, ZoneId>,
    c: &mut Checker<'_>,
) {
    let national = raw.national.get_ref();
    let capacity = u64::from(*national.capacity.get_ref());
    let share = national.reserved_share.get_ref().clamp(0.0, 1.0);
    let population: u64 = zones.iter().map(|z| z.population).sum::<u64>().max(1);
    // Integer arithmetic keeps the shares identical on every machine.
    let reserved = (capacity as f64 * share).floor() as u64;
    for zone in zones.iter_mut() {
        let fair = reserved * zone.population / population;
        zone.guaranteed = u32::try_from(fair.max(1)).unwrap_or(u32::MAX);
    }
    for z in &raw.zones {
        let z = z.get_ref();
        match zone_index.get(z.departement.get_ref()) {
            Some(&id) => {
                if let Some(g) = z.guaranteed {
                    zones[usize::from(id.0)].guaranteed = g;
                }
            }
            None => c.at(
                z.departement.span(),
                format!(
                    "département {:?} is served by no CTA",
                    z.departement.get_ref()
                ),
            ),
        }
    }
    let total: u64 = zones.iter().map(|z| u64::from(z.guaranteed)).sum();
    if total > capacity {
        c.at(
            national.capacity.span(),
            format!("guaranteed shares add up to {total} calls, more than the capacity {capacity}"),
        );
    }
}

fn trunks(
    raw: &RawConfig,
    zone_index: &HashMap<String, ZoneId>,
    c: &mut Checker<'_>,
) -> Vec<Trunk> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for t in &raw.trunks {
        let t = t.get_ref();
        if !seen.insert(t.id.get_ref().clone()) {
            c.at(
                t.id.span(),
                format!("trunk {:?} is defined twice", t.id.get_ref()),
            );
        }
        let Some(&zone) = zone_index.get(t.default_departement.get_ref()) else {
            c.at(
                t.default_departement.span(),
                format!(
                    "default_departement {:?} is served by no CTA",
                    t.default_departement.get_ref()
                ),
            );
            continue;
        };
        let point = match (t.default_lat, t.default_lon) {
            (Some(lat), Some(lon))
                if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
            {
                Some((lat, lon))
            }
            (None, None) => None,
            _ => {
                c.at(
                    t.id.span(),
                    "default_lat and default_lon go together, within ±90 and ±180 degrees",
                );
                None
            }
        };
        out.push(Trunk {
            id: t.id.get_ref().clone(),
            default_zone: zone,
            default_point: point,
        });
    }
    out
}

struct Resolver<'a> {
    ctas: &'a HashMap<String, CtaId>,
    zones: &'a HashMap<String, ZoneId>,
    announcements: &'a HashMap<String, AnnouncementId>,
}

fn rule_set(set: &Spanned<RawRuleSet>, r: &Resolver<'_>, c: &mut Checker<'_>) -> RuleSet {
    let raw = set.get_ref();
    let mut rules = Vec::new();
    for rule in &raw.rules {
        if let Some(rule) = self::rule(rule, r, c) {
            rules.push(rule);
        }
    }
    let ends_in_catch_all = raw.rules.last().is_some_and(|last| {
        let last = last.get_ref();
        is_unconditional(&last.when) && (last.route.is_some() || last.busy.is_some())
    });
    if !ends_in_catch_all {
        let span = raw.rules.last().map_or(raw.id.span(), |r| r.span());
        c.at(
            span,
            format!(
                "rule set {:?} does not end with a catch-all: its last rule must have no `when` and `route` or `busy`",
                raw.id.get_ref()
            ),
        );
    }
    RuleSet {
        id: raw.id.get_ref().clone(),
        rules,
    }
}

fn is_unconditional(when: &RawWhen) -> bool {
    when.zones.is_none()
        && when.services.is_none()
        && when.queue_state.is_none()
        && when.failed.is_none()
        && when.callers.is_none()
        && when.sources.is_none()
        && when.crisis.is_none()
        && when.period.is_none()
        && when.expected_wait_s.is_none()
}

fn rule(spanned: &Spanned<RawRule>, r: &Resolver<'_>, c: &mut Checker<'_>) -> Option<Rule> {
    let raw = spanned.get_ref();
    let (line, _) = line_column(c.source, spanned.span().start);
    let actions = [
        raw.route.is_some(),
        raw.overflow.is_some(),
        raw.announce.is_some(),
        raw.busy.is_some(),
    ]
    .iter()
    .filter(|&&a| a)
    .count();
    if actions != 1 {
        c.at(
            spanned.span(),
            format!(
                "rule {:?} needs exactly one action among route, overflow, announce and busy (it has {actions})",
                raw.name
            ),
        );
        return None;
    }
    let action = if let Some(t) = &raw.route {
        Action::Route(target(t, r, c)?)
    } else if let Some(t) = &raw.overflow {
        Action::Overflow(target(t, r, c)?)
    } else if let Some(a) = &raw.announce {
        match r.announcements.get(a.get_ref()) {
            Some(&id) => Action::Announce(id),
            None => {
                c.at(a.span(), format!("unknown announcement {:?}", a.get_ref()));
                return None;
            }
        }
    } else {
        Action::Busy(raw.busy.clone().unwrap_or_default())
    };
    Some(Rule {
        name: raw.name.clone(),
        when: conditions(&raw.when, r, c),
        action,
        line,
    })
}

fn target(t: &Spanned<RawTarget>, r: &Resolver<'_>, c: &mut Checker<'_>) -> Option<Target> {
    let names: Vec<&String> = match t.get_ref() {
        RawTarget::One(name) if name == "home" => return Some(Target::Home),
        RawTarget::One(name) if name == "partners" => return Some(Target::Partners),
        RawTarget::One(name) => vec![name],
        RawTarget::Many(names) => names.iter().collect(),
    };
    if names.is_empty() {
        c.at(t.span(), "an empty list of queues");
        return None;
    }
    let mut ids = Vec::new();
    for name in names {
        match r.ctas.get(name) {
            Some(&id) => ids.push(id),
            None => {
                c.at(t.span(), format!("unknown queue {name:?}"));
                return None;
            }
        }
    }
    Some(Target::Ctas(ids))
}

fn conditions(w: &RawWhen, r: &Resolver<'_>, c: &mut Checker<'_>) -> Conditions {
    let zones = w.zones.as_ref().map(|zones| {
        zones
            .iter()
            .filter_map(|z| {
                let id = r.zones.get(z.get_ref()).copied();
                if id.is_none() {
                    c.at(z.span(), format!("unknown zone {:?}", z.get_ref()));
                }
                id
            })
            .collect()
    });
    let services = w.services.as_ref().map(|list| {
        list.iter()
            .filter_map(|s| {
                let service = Service::parse(s.get_ref());
                if service.is_none() {
                    c.at(
                        s.span(),
                        format!(
                            "unknown service {:?} (expected urn:service:sos…)",
                            s.get_ref()
                        ),
                    );
                }
                service
            })
            .collect()
    });
    let queue_state = w.queue_state.as_ref().map(|list| {
        list.iter()
            .filter_map(|s| {
                let state = QueueState::parse(s.get_ref());
                if state.is_none() {
                    c.at(
                        s.span(),
                        format!(
                            "unknown queue state {:?} (active, inactive, disabled, full, standby)",
                            s.get_ref()
                        ),
                    );
                }
                state
            })
            .collect()
    });
    let failed = w.failed.as_ref().map(|list| {
        list.iter()
            .filter_map(|s| {
                let reason = FailReason::parse(s.get_ref());
                if reason.is_none() {
                    c.at(
                        s.span(),
                        format!(
                            "unknown failure {:?} (no-answer, unreachable, full)",
                            s.get_ref()
                        ),
                    );
                }
                reason
            })
            .collect()
    });
    let period = w.period.as_ref().and_then(|p| period(p, c));
    Conditions {
        zones,
        services,
        queue_state,
        failed,
        callers: w.callers.clone(),
        sources: w.sources.clone(),
        crisis: w.crisis,
        period,
        expected_wait_ms: w.expected_wait_s.map(|s| u64::from(s) * 1000),
    }
}

fn period(p: &Spanned<RawPeriod>, c: &mut Checker<'_>) -> Option<Period> {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let raw = p.get_ref();
    let mut mask = 0u8;
    for day in &raw.days {
        match DAYS.iter().position(|d| d.eq_ignore_ascii_case(day)) {
            Some(i) => mask |= 1 << i,
            None => {
                c.at(p.span(), format!("unknown day {day:?} (mon … sun)"));
                return None;
            }
        }
    }
    if raw.days.is_empty() {
        mask = 0x7f;
    }
    let minute = |text: &Option<String>, default: u16, c: &mut Checker<'_>| -> Option<u16> {
        let Some(text) = text else {
            return Some(default);
        };
        let parsed = text.split_once(':').and_then(|(h, m)| {
            let h: u16 = h.parse().ok()?;
            let m: u16 = m.parse().ok()?;
            (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
        });
        if parsed.is_none() {
            c.at(p.span(), format!("bad time {text:?} (expected HH:MM)"));
        }
        parsed
    };
    let from = minute(&raw.from, 0, c)?;
    let to = minute(&raw.to, 1440, c)?;
    Some(Period {
        days_mask: mask,
        from_minute: from,
        to_minute: to,
    })
}

/// One tier of a CTA's lenders, in order; refuses an unknown CTA, the CTA itself (a loop), a
/// CTA listed twice, or one already in an earlier tier.
fn tier(
    names: &[Spanned<String>],
    tier: &str,
    cta_id: CtaId,
    earlier: &[CtaId],
    cta_index: &HashMap<String, CtaId>,
    c: &mut Checker<'_>,
) -> Vec<CtaId> {
    let mut out = Vec::new();
    for name in names {
        match cta_index.get(name.get_ref()) {
            Some(&p) if p == cta_id => c.at(
                name.span(),
                format!(
                    "a CTA cannot lend to itself: {:?} in its own {tier} (a loop)",
                    name.get_ref()
                ),
            ),
            Some(&p) if out.contains(&p) => c.at(
                name.span(),
                format!("{:?} listed twice in {tier}", name.get_ref()),
            ),
            Some(&p) if earlier.contains(&p) => c.at(
                name.span(),
                format!(
                    "{:?} is already a partner: a CTA is in one tier only",
                    name.get_ref()
                ),
            ),
            Some(&p) => out.push(p),
            None => c.at(
                name.span(),
                format!("unknown queue {:?} in {tier}", name.get_ref()),
            ),
        }
    }
    out
}

/// Every CTA's lenders, tiers in order: its partners, its region, then (with `national_aid`)
/// every other CTA of the country, nearest first; those without a location come last, in file
/// order.
fn order_lenders(ctas: &mut [CtaPlan]) {
    let places: Vec<Option<(f64, f64)>> = ctas.iter().map(|c| c.location).collect();
    for (i, cta) in ctas.iter_mut().enumerate() {
        let mut lenders: Vec<CtaId> = cta.partners.iter().chain(&cta.region).copied().collect();
        if cta.national_aid {
            let mut rest: Vec<(f64, usize)> = (0..places.len())
                .filter(|&j| j != i && !lenders.contains(&CtaId(index_u16(j))))
                .map(|j| {
                    let distance = match (places[i], places[j]) {
                        (Some(a), Some(b)) => crate::distance_km(a, b),
                        _ => f64::INFINITY,
                    };
                    (distance, j)
                })
                .collect();
            rest.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            lenders.extend(rest.into_iter().map(|(_, j)| CtaId(index_u16(j))));
        }
        cta.lenders = lenders;
    }
}

/// Refuses CTAs whose calls could circle among centres that have nobody to answer them.
fn check_ways_out(raw: &RawConfig, ctas: &[CtaPlan], rule_sets: &[RuleSet], c: &mut Checker<'_>) {
    let answers = |cta: &CtaPlan| cta.staffing.day + cta.staffing.night > 0;
    let edges: Vec<Vec<CtaId>> = ctas
        .iter()
        .map(|cta| {
            let mut out = cta.lenders.clone();
            if let Some(set) = rule_sets.get(usize::from(cta.rule_set.0)) {
                for rule in &set.rules {
                    if let Action::Route(Target::Ctas(ids)) | Action::Overflow(Target::Ctas(ids)) =
                        &rule.action
                    {
                        out.extend(ids.iter().copied());
                    }
                }
            }
            out
        })
        .collect();
    for (start, cta) in ctas.iter().enumerate() {
        if answers(cta) {
            continue;
        }
        // Breadth-first search for any centre with call-takers; remember the path for the message.
        let mut previous: Vec<Option<usize>> = vec![None; ctas.len()];
        let mut seen = vec![false; ctas.len()];
        let mut frontier = vec![start];
        seen[start] = true;
        let mut found = false;
        let mut cycle_back: Option<usize> = None;
        while let Some(node) = frontier.pop() {
            for next in &edges[node] {
                let next = usize::from(next.0);
                if next == start && cycle_back.is_none() {
                    cycle_back = Some(node);
                }
                if seen.get(next).copied().unwrap_or(true) {
                    continue;
                }
                seen[next] = true;
                previous[next] = Some(node);
                if answers(&ctas[next]) {
                    found = true;
                }
                frontier.push(next);
            }
        }
        if found {
            continue;
        }
        let span = raw.ctas[start].get_ref().id.span();
        match cycle_back {
            Some(last) => {
                let mut path = vec![ctas[start].id.clone()];
                let mut back = Vec::new();
                let mut node = Some(last);
                while let Some(n) = node {
                    if n == start {
                        break;
                    }
                    back.push(ctas[n].id.clone());
                    node = previous[n];
                }
                path.extend(back.into_iter().rev());
                path.push(ctas[start].id.clone());
                c.at(
                    span,
                    format!(
                        "overflow loop with no way out: {} (none of them has call-takers)",
                        path.join(" → ")
                    ),
                );
            }
            None => c.at(
                span,
                format!(
                    "calls for {:?} can never be answered: it has no call-takers and no partner that has any",
                    ctas[start].id
                ),
            ),
        }
    }
}

//! Turns the raw file into a [`Plan`], collecting every problem with its line.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use crate::plan::*;
use crate::raw::*;
use crate::{ConfigError, Departement, Problem};

mod announcements;
mod call_takers;
mod hub;
mod mutual_aid;
mod partners;
mod rules;
mod zones;

use announcements::{announcements, lookup_announcement};
use call_takers::call_takers;
use hub::{hub, partner_hub_ids};
use mutual_aid::{check_ways_out, order_lenders, tier};
use partners::partner_services;
use rules::{Resolver, rule_set, rule_set_index};
use zones::{share_capacity, trunks};

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

/// A text conversation silent this long is over, by default: ten minutes, longer than anyone
/// waits in a queue without writing again, shorter than a caller who gave up would want to be
/// left unanswered.
const TEXT_IDLE_S: u32 = 600;

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
    let text_idle_s = match &national.text_idle_s {
        Some(idle) if !(10..=86_400).contains(idle.get_ref()) => {
            c.at(
                idle.span(),
                format!(
                    "text_idle_s must be between 10 s and a day, not {}",
                    idle.get_ref()
                ),
            );
            TEXT_IDLE_S
        }
        Some(idle) => *idle.get_ref(),
        None => TEXT_IDLE_S,
    };
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
        text_idle_s,
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
        hub: raw.hub.as_ref().map(|h| hub(h, c)),
        partner_hub_ids: partner_hub_ids(raw, c),
        cta_index,
        zone_index,
        announcement_index,
        trunk_index,
        call_taker_index,
    }
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

//! Policy rule sets: each rule's conditions and its one action, every set ending in a catch-all.

use std::collections::HashMap;

use toml::Spanned;

use super::{Checker, index_u16, line_column};
use crate::plan::*;
use crate::raw::*;

pub(super) fn rule_set_index(raw: &RawConfig, c: &mut Checker<'_>) -> HashMap<String, RuleSetId> {
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

pub(super) struct Resolver<'a> {
    pub(super) ctas: &'a HashMap<String, CtaId>,
    pub(super) zones: &'a HashMap<String, ZoneId>,
    pub(super) announcements: &'a HashMap<String, AnnouncementId>,
}

pub(super) fn rule_set(
    set: &Spanned<RawRuleSet>,
    r: &Resolver<'_>,
    c: &mut Checker<'_>,
) -> RuleSet {
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

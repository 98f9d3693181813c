//! Mutual aid between CTAs: lender tiers, their order, and no overflow loop without a way out.

use std::collections::HashMap;

use toml::Spanned;

use super::{Checker, index_u16};
use crate::plan::*;
use crate::raw::*;

/// One tier of a CTA's lenders, in order; refuses an unknown CTA, the CTA itself (a loop), a
/// CTA listed twice, or one already in an earlier tier.
pub(super) fn tier(
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
pub(super) fn order_lenders(ctas: &mut [CtaPlan]) {
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
pub(super) fn check_ways_out(
    raw: &RawConfig,
    ctas: &[CtaPlan],
    rule_sets: &[RuleSet],
    c: &mut Checker<'_>,
) {
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

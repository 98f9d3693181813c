//! Capacity shared among the zones (départements), and the trunks that default to one.

use std::collections::{HashMap, HashSet};

use super::Checker;
use crate::plan::*;
use crate::raw::*;

pub(super) fn share_capacity(
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

pub(super) fn trunks(
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

//! Where a call comes from: its PIDF-LO, else its trunk's default, else the national default.

use secourir_config::{Plan, ZoneId};
use secourir_location::{LocationValue, PidfLocation};
use secourir_territory::{Place, Territory};

/// Why a location value names no place.
#[derive(Debug)]
pub enum PlaceError {
    /// A civic address naming no known commune.
    UnknownCommune(String),
}

impl std::fmt::Display for PlaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlaceError::UnknownCommune(what) => {
                write!(f, "the civic address names no known commune ({what})")
            }
        }
    }
}

/// The place of a PIDF-LO value: the centre of a shape, or the commune of a civic address.
pub fn place_of(territory: &Territory, value: &LocationValue) -> Result<Option<Place>, PlaceError> {
    match value {
        LocationValue::Geodetic(shape) => {
            let centre = shape.centre();
            Ok(territory.locate(centre.lat, centre.lon))
        }
        LocationValue::Civic(address) => {
            let commune = territory
                .find_commune(address.postcode.as_deref(), address.city.as_deref())
                .ok_or_else(|| {
                    PlaceError::UnknownCommune(format!(
                        "code postal {:?}, commune {:?}",
                        address.postcode.as_deref().unwrap_or(""),
                        address.city.as_deref().unwrap_or("")
                    ))
                })?;
            Ok(Some(territory.place_of_commune(commune)))
        }
    }
}

/// Where a call was placed, and how we know.
#[derive(Debug, Clone)]
pub struct CallPlace {
    /// Zone of the routing plan.
    pub zone: ZoneId,
    /// Département code.
    pub departement: String,
    /// Commune, when known.
    pub commune: Option<String>,
    /// INSEE code of the commune.
    pub insee: Option<String>,
    /// Point, when known.
    pub point: Option<(f64, f64)>,
    /// Radius of uncertainty in metres.
    pub radius_m: Option<f64>,
    /// `pidf-lo`, `trunk-default` or `national-default`.
    pub source: &'static str,
    /// Why the caller's own location could not be used.
    pub problem: Option<String>,
}

/// Locates a call from what its INVITE carried; a bad or unknown location falls back to the
/// trunk's default and then to the national default, never refusing the call.
pub fn locate_call(
    territory: &Territory,
    plan: &Plan,
    locations: &[PidfLocation],
    trunk: Option<&str>,
    mut problem: Option<String>,
) -> CallPlace {
    for location in locations {
        match place_of(territory, &location.value) {
            Ok(Some(place)) => match plan.zone_id(&place.departement) {
                Some(zone) => {
                    let (point, radius_m) = match &location.value {
                        LocationValue::Geodetic(shape) => {
                            let c = shape.centre();
                            (Some((c.lat, c.lon)), c.uncertainty_m)
                        }
                        LocationValue::Civic(_) => (None, None),
                    };
                    return CallPlace {
                        zone,
                        departement: place.departement,
                        commune: place.commune,
                        insee: place.insee,
                        point,
                        radius_m,
                        source: "pidf-lo",
                        problem,
                    };
                }
                None => {
                    problem = Some(format!(
                        "département {} is served by no CTA",
                        place.departement
                    ))
                }
            },
            Ok(None) => problem = Some("location outside the territory".into()),
            Err(e) => problem = Some(e.to_string()),
        }
    }
    if let Some(t) = trunk.and_then(|id| plan.trunk(id)) {
        let place = t
            .default_point
            .and_then(|(lat, lon)| territory.locate(lat, lon));
        return CallPlace {
            zone: t.default_zone,
            departement: plan.zone(t.default_zone).code.clone(),
            commune: place.as_ref().and_then(|p| p.commune.clone()),
            insee: place.and_then(|p| p.insee),
            point: t.default_point,
            radius_m: None,
            source: "trunk-default",
            problem,
        };
    }
    CallPlace {
        zone: plan.default_zone,
        departement: plan.zone(plan.default_zone).code.clone(),
        commune: None,
        insee: None,
        point: None,
        radius_m: None,
        source: "national-default",
        problem,
    }
}

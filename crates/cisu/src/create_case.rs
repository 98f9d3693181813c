//! The RC-EDA `createCase` of a call. The schema has no field for the département, the position's
//! source or its radius: they go both to `location.freetext`, which the schema asks receivers to
//! show, and to `additionalInformation.customMap`, where a partner's system can read them.

use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use serde_json::Value;

use crate::facts::{CaseFacts, Channel, FactsError, PositionSource};
use crate::time::hub_timestamp;

/// Radius up to which a point is `EXACTE` (a GNSS fix).
pub const EXACT_RADIUS_M_MAX: f64 = 50.0;
/// Radius up to which a point is good to the address.
pub const ADDRESS_RADIUS_M_MAX: f64 = 150.0;
/// Radius up to which a point is good to the street.
pub const STREET_RADIUS_M_MAX: f64 = 1_000.0;

/// Builds the `createCase` body of a call. `case_shared_at` is when the case was first shared:
/// the schema wants `creation` set then and never changed by later updates, so the caller keeps it.
pub fn create_case(
    facts: &CaseFacts,
    case_shared_at: &DateTime<FixedOffset>,
) -> Result<Value, FactsError> {
    facts.check()?;
    let time = |field, at| hub_timestamp(at).map_err(|source| FactsError::Time { field, source });
    let shared_at = time("case_shared_at", case_shared_at)?;
    let received_at = time("received_at", &facts.received_at)?;
    let case_id = facts.case_id();
    let caller_uri = facts.caller_uri();
    let qualification = Qualification {
        whats_happen: CodeLabel {
            code: &facts.qualification.code,
            label: &facts.qualification.label,
        },
    };
    let location = location(facts, &received_at);
    let notes = facts
        .note
        .as_deref()
        .map(|freetext| {
            vec![Note {
                creation: &shared_at,
                freetext,
            }]
        })
        .unwrap_or_default();
    let organization = format!("fr.fire.{}", facts.organisation);
    let case = CreateCase {
        case_id: &case_id,
        sender_case_id: &facts.call_id,
        creation: &shared_at,
        reference_version: &facts.qualification.nomenclature_version,
        qualification: qualification.clone(),
        location: location.clone(),
        initial_alert: Alert {
            // One alert per call: its id is the case's, marked as the first alert.
            id: format!("{case_id}.A1"),
            reception: &received_at,
            reporting: "STANDARD",
            notes,
            caller: Caller {
                caller_contact: Contact {
                    channel: "PERSONNE",
                    kind: "TEL",
                    detail: &caller_uri,
                },
                freetext: match facts.channel {
                    Channel::Voice => "Appel vocal",
                    Channel::Text => "Alerte écrite (SMS, texte en temps réel)",
                },
            },
            location,
            qualification,
            call_taker: CallTaker {
                organization: &organization,
                control_room: &facts.cta_id,
                calltaker_id: &facts.call_taker_login,
            },
        },
        additional_information: additional_information(facts),
    };
    // Serializing plain structs of strings and numbers cannot fail.
    Ok(serde_json::to_value(case).expect("createCase serializes"))
}

fn location<'a>(facts: &'a CaseFacts, received_at: &'a str) -> Location<'a> {
    let city = facts.commune.as_ref().map(|commune| {
        // The schema takes five digits only: a Corsican code (2A…, 2B…) goes in `detail`.
        if commune.insee.bytes().all(|b| b.is_ascii_digit()) {
            City {
                name: &commune.name,
                insee_code: Some(&commune.insee),
                detail: None,
            }
        } else {
            City {
                name: &commune.name,
                insee_code: None,
                detail: Some(format!("Code INSEE {}", commune.insee)),
            }
        }
    });
    let geometry = facts.position.map(|position| Geometry {
        datetime: received_at,
        point: Point {
            coord: Coord {
                lat: position.lat,
                lon: position.lon,
                precision: precision(&position),
            },
        },
    });
    let label = match (&facts.commune, &facts.departement) {
        (Some(commune), Some(departement)) => format!("{} ({departement})", commune.name),
        (Some(commune), None) => commune.name.clone(),
        (None, Some(departement)) => format!("Département {departement}"),
        (None, None) => "Lieu inconnu".to_owned(),
    };
    Location {
        loc_id: format!("{}-L1", facts.call_id),
        loc_label: label,
        city,
        geometry,
        // The platform answers French emergency numbers: the call is French even at sea.
        country: "FR",
        freetext: location_text(facts),
    }
}

fn precision(position: &crate::facts::Position) -> &'static str {
    match (position.source, position.accuracy_m) {
        (PositionSource::Default, _) | (_, None) => "INCONNUE",
        (_, Some(m)) if m <= EXACT_RADIUS_M_MAX => "EXACTE",
        (_, Some(m)) if m <= ADDRESS_RADIUS_M_MAX => "ADRESSE",
        (_, Some(m)) if m <= STREET_RADIUS_M_MAX => "RUE",
        (_, Some(_)) => "VILLE",
    }
}

fn source_name(source: PositionSource) -> &'static str {
    match source {
        PositionSource::PidfLo => "PIDF-LO",
        PositionSource::Aml => "AML",
        PositionSource::Default => "DEFAUT",
    }
}

fn location_text(facts: &CaseFacts) -> String {
    let mut parts = Vec::new();
    if let Some(departement) = &facts.departement {
        parts.push(format!("Département {departement}."));
    }
    match &facts.position {
        Some(p) if p.source == PositionSource::Default => parts.push(
            "Position par défaut : l'appel n'a transmis aucune localisation du requérant.".into(),
        ),
        Some(p) => match p.accuracy_m {
            Some(m) => parts.push(format!(
                "Position {} à {m:.0} m près.",
                source_name(p.source)
            )),
            None => parts.push(format!(
                "Position {}, sans rayon d'incertitude.",
                source_name(p.source)
            )),
        },
        None => parts.push("Aucune position.".into()),
    }
    parts.join(" ")
}

fn additional_information(facts: &CaseFacts) -> Option<AdditionalInformation> {
    let mut entries = Vec::new();
    if let Some(departement) = &facts.departement {
        entries.push(Entry {
            key: "departement",
            label: "Département",
            value: departement.clone(),
        });
    }
    if let Some(position) = &facts.position {
        entries.push(Entry {
            key: "positionSource",
            label: "Source de la position",
            value: source_name(position.source).into(),
        });
        if let Some(m) = position.accuracy_m {
            entries.push(Entry {
                key: "positionAccuracyM",
                label: "Rayon d'incertitude (m)",
                value: format!("{m:.0}"),
            });
        }
    }
    (!entries.is_empty()).then_some(AdditionalInformation {
        custom_map: entries,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateCase<'a> {
    case_id: &'a str,
    sender_case_id: &'a str,
    creation: &'a str,
    reference_version: &'a str,
    qualification: Qualification<'a>,
    location: Location<'a>,
    initial_alert: Alert<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_information: Option<AdditionalInformation>,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Qualification<'a> {
    whats_happen: CodeLabel<'a>,
}

#[derive(Serialize, Clone)]
struct CodeLabel<'a> {
    code: &'a str,
    label: &'a str,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Location<'a> {
    #[serde(rename = "locID")]
    loc_id: String,
    loc_label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<City<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    geometry: Option<Geometry<'a>>,
    country: &'static str,
    freetext: String,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct City<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    insee_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize, Clone)]
struct Geometry<'a> {
    datetime: &'a str,
    point: Point,
}

#[derive(Serialize, Clone)]
struct Point {
    coord: Coord,
}

#[derive(Serialize, Clone)]
struct Coord {
    lat: f64,
    lon: f64,
    precision: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Alert<'a> {
    id: String,
    reception: &'a str,
    reporting: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<Note<'a>>,
    caller: Caller<'a>,
    location: Location<'a>,
    qualification: Qualification<'a>,
    call_taker: CallTaker<'a>,
}

#[derive(Serialize)]
struct Note<'a> {
    creation: &'a str,
    freetext: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Caller<'a> {
    caller_contact: Contact<'a>,
    freetext: &'static str,
}

#[derive(Serialize)]
struct Contact<'a> {
    channel: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    detail: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallTaker<'a> {
    organization: &'a str,
    control_room: &'a str,
    calltaker_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdditionalInformation {
    custom_map: Vec<Entry>,
}

#[derive(Serialize)]
struct Entry {
    key: &'static str,
    label: &'static str,
    value: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Commune, Position, marseille};

    fn shared_at() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-07-14T12:03:00+02:00").unwrap()
    }

    #[test]
    fn a_located_call_carries_its_commune_point_and_radius() {
        let case = create_case(&marseille(), &shared_at()).unwrap();
        assert_eq!(case["caseId"], "fr.fire.sdis13.20260714-000042");
        assert_eq!(case["creation"], "2026-07-14T12:03:00+02:00");
        assert_eq!(case["referenceVersion"], "1.3.1");
        assert_eq!(case["qualification"]["whatsHappen"]["code"], "C01.01.01");
        let location = &case["location"];
        assert_eq!(location["city"]["inseeCode"], "13055");
        assert_eq!(location["city"]["name"], "Marseille");
        assert_eq!(location["geometry"]["point"]["coord"]["lat"], 43.2965);
        assert_eq!(
            location["geometry"]["point"]["coord"]["precision"],
            "EXACTE"
        );
        assert_eq!(
            location["freetext"],
            "Département 13. Position PIDF-LO à 12 m près."
        );
        let alert = &case["initialAlert"];
        assert_eq!(alert["reception"], "2026-07-14T12:00:05+02:00");
        assert_eq!(alert["caller"]["callerContact"]["detail"], "+33601020304");
        assert_eq!(alert["callTaker"]["controlRoom"], "CTA13");
        assert_eq!(alert["callTaker"]["calltakerId"], "ota-13-1");
        assert_eq!(
            alert["notes"][0]["freetext"],
            marseille().note.unwrap().as_str()
        );
        let map = &case["additionalInformation"]["customMap"];
        assert_eq!(map[0]["value"], "13");
        assert_eq!(map[1]["value"], "PIDF-LO");
        assert_eq!(map[2]["value"], "12");
    }

    #[test]
    fn the_case_id_is_the_same_for_every_message_of_a_call() {
        let first = create_case(&marseille(), &shared_at()).unwrap();
        let mut later = marseille();
        later.note = Some("Second blessé découvert.".into());
        let update = create_case(&later, &shared_at()).unwrap();
        assert_eq!(first["caseId"], update["caseId"]);
        assert_eq!(first["creation"], update["creation"]);
    }

    #[test]
    fn radius_sets_precision() {
        let at = |accuracy_m, source| {
            precision(&Position {
                lat: 0.0,
                lon: 0.0,
                accuracy_m,
                source,
            })
        };
        assert_eq!(at(Some(50.0), PositionSource::Aml), "EXACTE");
        assert_eq!(at(Some(120.0), PositionSource::Aml), "ADRESSE");
        assert_eq!(at(Some(800.0), PositionSource::PidfLo), "RUE");
        assert_eq!(at(Some(5_000.0), PositionSource::PidfLo), "VILLE");
        assert_eq!(at(None, PositionSource::PidfLo), "INCONNUE");
        assert_eq!(at(Some(10.0), PositionSource::Default), "INCONNUE");
    }

    #[test]
    fn a_default_position_says_so() {
        let mut facts = marseille();
        facts.position = Some(Position {
            lat: 43.5,
            lon: 5.0,
            accuracy_m: None,
            source: PositionSource::Default,
        });
        let case = create_case(&facts, &shared_at()).unwrap();
        let text = case["location"]["freetext"].as_str().unwrap();
        assert!(text.contains("Position par défaut"), "{text}");
        assert_eq!(
            case["location"]["geometry"]["point"]["coord"]["precision"],
            "INCONNUE"
        );
        assert_eq!(
            case["additionalInformation"]["customMap"][1]["value"],
            "DEFAUT"
        );
    }

    #[test]
    fn a_corsican_commune_keeps_its_code_in_detail() {
        let mut facts = marseille();
        facts.commune = Some(Commune {
            insee: "2A004".into(),
            name: "Ajaccio".into(),
        });
        facts.departement = Some("2A".into());
        let case = create_case(&facts, &shared_at()).unwrap();
        assert!(case["location"]["city"].get("inseeCode").is_none());
        assert_eq!(case["location"]["city"]["detail"], "Code INSEE 2A004");
        assert_eq!(case["location"]["locLabel"], "Ajaccio (2A)");
    }

    #[test]
    fn an_unlocated_text_alert_has_no_city_nor_point() {
        let mut facts = marseille();
        facts.commune = None;
        facts.departement = None;
        facts.position = None;
        facts.note = None;
        facts.channel = Channel::Text;
        let case = create_case(&facts, &shared_at()).unwrap();
        assert!(case["location"].get("city").is_none());
        assert!(case["location"].get("geometry").is_none());
        assert!(case["initialAlert"].get("notes").is_none());
        assert!(case.get("additionalInformation").is_none());
        assert_eq!(case["location"]["locLabel"], "Lieu inconnu");
        assert_eq!(
            case["initialAlert"]["caller"]["freetext"],
            "Alerte écrite (SMS, texte en temps réel)"
        );
    }

    #[test]
    fn bad_facts_build_nothing() {
        let facts = CaseFacts {
            call_id: String::new(),
            ..marseille()
        };
        assert_eq!(
            create_case(&facts, &shared_at()),
            Err(FactsError::Empty { field: "call_id" })
        );
    }
}

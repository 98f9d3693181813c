//! What the platform knows of a call when it hands the case over. The server maps its own record
//! to [`CaseFacts`]; [`CaseFacts::check`] refuses, with the field and the reason, what the hub's
//! schemas would refuse later, so that a transfer fails at the call-taker's desk and not silently
//! at the partner's.

use std::fmt;

use chrono::{DateTime, FixedOffset};

use crate::MASK;

/// The longest identifier (call, login, centre) carried into a message.
pub const ID_LEN_MAX: usize = 64;
/// The longest free-text note carried; a longer one is refused rather than cut.
pub const NOTE_LEN_MAX: usize = 4_000;
/// The most dot-separated parts of an organisation: the case id holds ten at most, four fixed.
pub const ORGANISATION_PARTS_MAX: usize = 7;

/// A call as the platform knows it when the call-taker transfers it.
#[derive(Clone, PartialEq)]
pub struct CaseFacts {
    /// The platform's number for the call, unique in it; the last part of the case id.
    pub call_id: String,
    /// The `{organisation}` of `fr.fire.{organisation}.{case}`, e.g. `sdis13`.
    pub organisation: String,
    /// When the call reached the platform.
    pub received_at: DateTime<FixedOffset>,
    /// The caller's number as the network gave it (`+33…`, `06…` or `0033…`).
    pub caller_number: String,
    /// How the caller reached the platform.
    pub channel: Channel,
    /// The call-taker's login.
    pub call_taker_login: String,
    /// The call-handling centre (CTA) that took the call, e.g. `CTA13`.
    pub cta_id: String,
    /// The commune the caller is in, when located on land.
    pub commune: Option<Commune>,
    /// The département code (`13`, `2A`, `974`), when located.
    pub departement: Option<String>,
    /// The caller's position, when the call carried one or a default was applied.
    pub position: Option<Position>,
    /// What happens, in the CISU nomenclature.
    pub qualification: Qualification,
    /// The call-taker's free-text note.
    pub note: Option<String>,
}

/// How the caller reached the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// A voice call.
    Voice,
    /// A written alert: SMS to the 114, real-time text.
    Text,
}

/// A commune by its official code and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commune {
    /// The INSEE code (`13055`, or `2A004` in Corsica).
    pub insee: String,
    /// The official name.
    pub name: String,
}

/// A caller's position and how much to trust it.
#[derive(Clone, Copy, PartialEq)]
pub struct Position {
    /// Latitude, WGS 84 degrees.
    pub lat: f64,
    /// Longitude, WGS 84 degrees.
    pub lon: f64,
    /// Radius of uncertainty in metres, when the source gives one.
    pub accuracy_m: Option<f64>,
    /// Where the position came from.
    pub source: PositionSource,
}

/// Where a caller's position came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PositionSource {
    /// PIDF-LO carried by the call (RFC 4119).
    PidfLo,
    /// Advanced Mobile Location, by SMS or HTTPS.
    Aml,
    /// No position came with the call: the trunk's or the national default was applied.
    Default,
}

/// A qualification code of the CISU nomenclature and the version of that nomenclature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qualification {
    /// `whatsHappen` code, `Cnn.nn.nn`.
    pub code: String,
    /// Its label, as the nomenclature words it.
    pub label: String,
    /// The nomenclature's version the code comes from (`referenceVersion`).
    pub nomenclature_version: String,
}

/// A fact that the hub's schemas would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactsError {
    /// A required identifier is empty.
    #[error("{field} is empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// An identifier is longer than a message may carry.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// A field holds characters or a shape the hub refuses.
    #[error("{field} is malformed: {reason}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A time whose year the hub cannot write.
    #[error("{field}: {source}")]
    Time {
        /// The field.
        field: &'static str,
        /// Why.
        source: crate::time::OutOfRange,
    },
}

impl CaseFacts {
    /// Checks every field against what the schemas accept, naming the first one that fails.
    pub fn check(&self) -> Result<(), FactsError> {
        check_id("call_id", &self.call_id, false)?;
        check_id("organisation", &self.organisation, true)?;
        if self.organisation.split('.').count() > ORGANISATION_PARTS_MAX {
            return Err(FactsError::Malformed {
                field: "organisation",
                reason: "more than seven dot-separated parts",
            });
        }
        check_text("caller_number", &self.caller_number, ID_LEN_MAX)?;
        check_text("call_taker_login", &self.call_taker_login, ID_LEN_MAX)?;
        check_text("cta_id", &self.cta_id, ID_LEN_MAX)?;
        if let Some(commune) = &self.commune {
            check_insee(&commune.insee)?;
            check_text("commune.name", &commune.name, ID_LEN_MAX)?;
        }
        if let Some(departement) = &self.departement {
            let shaped = (2..=3).contains(&departement.len())
                && departement
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'A' || b == b'B');
            if !shaped {
                return Err(FactsError::Malformed {
                    field: "departement",
                    reason: "not a département code",
                });
            }
        }
        if let Some(position) = &self.position {
            position.check()?;
        }
        check_qualification(&self.qualification)?;
        if let Some(note) = &self.note
            && note.chars().count() > NOTE_LEN_MAX
        {
            return Err(FactsError::TooLong {
                field: "note",
                max: NOTE_LEN_MAX,
            });
        }
        crate::time::hub_timestamp(&self.received_at).map_err(|source| FactsError::Time {
            field: "received_at",
            source,
        })?;
        Ok(())
    }

    /// The shared case id, `fr.fire.{organisation}.{call}`: built from the call alone, so every
    /// message about the call names the same case.
    pub fn case_id(&self) -> String {
        format!("fr.fire.{}.{}", self.organisation, self.call_id)
    }

    /// The caller's number as the schema asks, `+{country}{number}`; French national numbers
    /// gain `+33`, anything unrecognised (a withheld number's label) goes as it came.
    pub fn caller_uri(&self) -> String {
        international_number(&self.caller_number)
    }
}

impl Position {
    fn check(&self) -> Result<(), FactsError> {
        let on_earth = self.lat.is_finite()
            && self.lon.is_finite()
            && (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lon);
        if !on_earth {
            return Err(FactsError::Malformed {
                field: "position",
                reason: "not a WGS 84 point",
            });
        }
        if let Some(accuracy) = self.accuracy_m
            && (!accuracy.is_finite() || accuracy < 0.0)
        {
            return Err(FactsError::Malformed {
                field: "position.accuracy_m",
                reason: "not a distance",
            });
        }
        Ok(())
    }
}

/// A French national number (`0X XX XX XX XX`) or an international prefix `00` in E.164 form.
fn international_number(number: &str) -> String {
    let digits: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .collect();
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = digits.strip_prefix('+')
        && all_digits(rest)
    {
        return format!("+{rest}");
    }
    if let Some(rest) = digits.strip_prefix("00")
        && all_digits(rest)
    {
        return format!("+{rest}");
    }
    if let Some(rest) = digits.strip_prefix('0')
        && rest.len() == 9
        && all_digits(rest)
    {
        return format!("+33{rest}");
    }
    number.to_owned()
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), FactsError> {
    if value.trim().is_empty() {
        return Err(FactsError::Empty { field });
    }
    if value.chars().count() > max {
        return Err(FactsError::TooLong { field, max });
    }
    Ok(())
}

/// Case id parts are `[A-Za-z0-9_-]+` (the schema's `caseId` pattern), joined by dots.
fn check_id(field: &'static str, value: &str, dots: bool) -> Result<(), FactsError> {
    check_text(field, value, ID_LEN_MAX)?;
    let part_ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let ok = if dots {
        value.split('.').all(part_ok)
    } else {
        part_ok(value)
    };
    if ok {
        Ok(())
    } else {
        Err(FactsError::Malformed {
            field,
            reason: "only letters, digits, '_' and '-' may appear",
        })
    }
}

fn check_insee(insee: &str) -> Result<(), FactsError> {
    let bytes = insee.as_bytes();
    let corsica = bytes.len() == 5 && bytes[0] == b'2' && matches!(bytes[1], b'A' | b'B');
    let digits_from = if corsica { 2 } else { 0 };
    if bytes.len() == 5 && bytes[digits_from..].iter().all(u8::is_ascii_digit) {
        Ok(())
    } else {
        Err(FactsError::Malformed {
            field: "commune.insee",
            reason: "not an INSEE code",
        })
    }
}

fn check_qualification(qualification: &Qualification) -> Result<(), FactsError> {
    // `Cnn.nn.nn`, as the schema's pattern `^C\d{2}(\.\d{2}){2}$`.
    let code = qualification.code.as_bytes();
    let shaped = code.len() == 9
        && code[0] == b'C'
        && code[3] == b'.'
        && code[6] == b'.'
        && [1, 2, 4, 5, 7, 8].iter().all(|&i| code[i].is_ascii_digit());
    if !shaped {
        return Err(FactsError::Malformed {
            field: "qualification.code",
            reason: "not a CISU code Cnn.nn.nn",
        });
    }
    check_text("qualification.label", &qualification.label, 255)?;
    check_text(
        "qualification.nomenclature_version",
        &qualification.nomenclature_version,
        16,
    )
}

/// Masks the caller's number, position and note: a log line that formats the facts must not
/// carry them.
impl fmt::Debug for CaseFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaseFacts")
            .field("call_id", &self.call_id)
            .field("organisation", &self.organisation)
            .field("received_at", &self.received_at)
            .field("caller_number", &MASK)
            .field("channel", &self.channel)
            .field("call_taker_login", &self.call_taker_login)
            .field("cta_id", &self.cta_id)
            .field("commune", &self.commune)
            .field("departement", &self.departement)
            .field("position", &self.position.map(|_| MASK))
            .field("qualification", &self.qualification)
            .field("note", &self.note.as_ref().map(|_| MASK))
            .finish()
    }
}

/// Masks the coordinates; the source is no secret.
impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Position")
            .field("lat", &MASK)
            .field("lon", &MASK)
            .field("accuracy_m", &self.accuracy_m)
            .field("source", &self.source)
            .finish()
    }
}

/// A call located in Marseille by PIDF-LO, for the tests of this crate.
#[cfg(test)]
pub(crate) fn marseille() -> CaseFacts {
    CaseFacts {
        call_id: "20260714-000042".into(),
        organisation: "sdis13".into(),
        received_at: DateTime::parse_from_rfc3339("2026-07-14T12:00:05+02:00").unwrap(),
        caller_number: "06 01 02 03 04".into(),
        channel: Channel::Voice,
        call_taker_login: "ota-13-1".into(),
        cta_id: "CTA13".into(),
        commune: Some(Commune {
            insee: "13055".into(),
            name: "Marseille".into(),
        }),
        departement: Some("13".into()),
        position: Some(Position {
            lat: 43.2965,
            lon: 5.3698,
            accuracy_m: Some(12.0),
            source: PositionSource::PidfLo,
        }),
        qualification: Qualification {
            code: "C01.01.01".into(),
            label: "Véhicule léger, fourgon".into(),
            nomenclature_version: "1.3.1".into(),
        },
        note: Some("Collision devant le 12 rue de Rome, un conducteur blessé, conscient.".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_passes_its_checks() {
        assert_eq!(marseille().check(), Ok(()));
        assert_eq!(marseille().case_id(), "fr.fire.sdis13.20260714-000042");
    }

    #[test]
    fn numbers_become_international() {
        assert_eq!(international_number("06 01 02 03 04"), "+33601020304");
        assert_eq!(international_number("0033601020304"), "+33601020304");
        assert_eq!(international_number("+32 2 123 45 67"), "+3221234567");
        assert_eq!(international_number("anonymous"), "anonymous");
        assert_eq!(international_number("112"), "112");
    }

    #[test]
    fn a_call_id_with_a_dot_would_split_the_case_id() {
        let facts = CaseFacts {
            call_id: "42.1".into(),
            ..marseille()
        };
        assert!(matches!(
            facts.check(),
            Err(FactsError::Malformed {
                field: "call_id",
                ..
            })
        ));
    }

    #[test]
    fn an_organisation_in_parts_is_accepted_within_the_limit() {
        let facts = CaseFacts {
            organisation: "secourir.sdis13".into(),
            ..marseille()
        };
        assert_eq!(facts.check(), Ok(()));
        let facts = CaseFacts {
            organisation: "a.b.c.d.e.f.g.h".into(),
            ..marseille()
        };
        assert!(facts.check().is_err());
    }

    #[test]
    fn each_refusal_names_its_field() {
        let mut facts = marseille();
        facts.qualification.code = "C7.3.2".into();
        assert!(matches!(
            facts.check(),
            Err(FactsError::Malformed {
                field: "qualification.code",
                ..
            })
        ));
        let mut facts = marseille();
        facts.position.as_mut().unwrap().lat = f64::NAN;
        assert!(matches!(
            facts.check(),
            Err(FactsError::Malformed {
                field: "position",
                ..
            })
        ));
        let mut facts = marseille();
        facts.commune.as_mut().unwrap().insee = "1305".into();
        assert!(matches!(
            facts.check(),
            Err(FactsError::Malformed {
                field: "commune.insee",
                ..
            })
        ));
        let facts = CaseFacts {
            cta_id: " ".into(),
            ..marseille()
        };
        assert_eq!(facts.check(), Err(FactsError::Empty { field: "cta_id" }));
        let facts = CaseFacts {
            note: Some("x".repeat(NOTE_LEN_MAX + 1)),
            ..marseille()
        };
        assert!(matches!(
            facts.check(),
            Err(FactsError::TooLong { field: "note", .. })
        ));
    }

    #[test]
    fn corsican_codes_are_insee_codes() {
        let mut facts = marseille();
        facts.commune = Some(Commune {
            insee: "2A004".into(),
            name: "Ajaccio".into(),
        });
        facts.departement = Some("2A".into());
        assert_eq!(facts.check(), Ok(()));
    }

    #[test]
    fn debug_masks_the_personal_fields() {
        let printed = format!("{:?}", marseille());
        assert!(!printed.contains("06 01"), "{printed}");
        assert!(!printed.contains("43.29"), "{printed}");
        assert!(!printed.contains("rue de Rome"), "{printed}");
        assert!(printed.contains("ota-13-1"), "{printed}");
    }
}

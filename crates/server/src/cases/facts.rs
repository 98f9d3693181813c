//! What the platform knows of a call, mapped to the case a partner receives: from the core's
//! live call when a call-taker hands it over, from the store's record when `secourir cisu`
//! prints it. The message itself is the `secourir-cisu` crate's.

use secourir_cisu::envelope::create_case_message;
use secourir_cisu::facts::{Commune, NOTE_LEN_MAX};
use secourir_cisu::time::paris_time;
use secourir_cisu::{
    CaseFacts, Channel, FactsError, Kind, Outgoing, Position, PositionSource, Qualification, Route,
    SendParams, Status,
};
use secourir_config::{Plan, Service};
use secourir_core::{CallInfo, Medium, Whereabouts};
use secourir_store::{CallRecord, TranscriptLine};

/// The qualification of a call nobody qualified, when the configuration has no table: the
/// nomenclature's "other nature of fact", which claims nothing about the call.
pub const DEFAULT_QUALIFICATION: (&str, &str) = ("C11.00.00", "Autre nature de fait");

/// The CISU nomenclature's version the codes come from (`referenceVersion`).
pub const NOMENCLATURE_VERSION: &str = "1.3";

/// How long a case stays worth delivering: past an hour the partner is told by phone.
pub const EXPIRES_AFTER_MS: i64 = 3_600_000;

/// The nature of fact `code` names in the configured table; without a code, or with one the
/// table lacks, the table's first (the default).
pub fn qualification(plan: &Plan, code: Option<&str>) -> Qualification {
    let table = plan.hub.as_ref().map(|h| h.qualifications.as_slice());
    let chosen = table.and_then(|t| {
        code.and_then(|code| t.iter().find(|q| q.code == code))
            .or_else(|| t.first())
    });
    let (code, label) = chosen.map_or(DEFAULT_QUALIFICATION, |q| {
        (q.code.as_str(), q.label.as_str())
    });
    Qualification {
        code: code.to_owned(),
        label: label.to_owned(),
        nomenclature_version: NOMENCLATURE_VERSION.to_owned(),
    }
}

/// The part of a `distributionID` after `senderID_`: the call, the partner and the message's
/// rank, so that an acknowledgement read after a restart still names its call.
pub fn local_id(call: u64, to: Service, rank: u32) -> String {
    format!("{call}-{}-{rank}", secourir_http::service_name(to))
}

/// The call a `distributionID` of ours is about, read back from its [`local_id`].
pub fn call_of(distribution_id: &str) -> Option<(u64, &str)> {
    let local = distribution_id.rsplit_once('_')?.1;
    let mut parts = local.split('-');
    let call = parts.next()?.parse().ok()?;
    let to = parts.next()?;
    Some((call, to))
}

/// The createCase of `facts` in its envelope, sent now and deliverable for an hour.
pub fn message(
    route: &Route,
    local_id: String,
    kind: Kind,
    facts: &CaseFacts,
    now_ms: i64,
) -> Result<Outgoing, String> {
    let now = paris_time(now_ms).ok_or("the clock is out of range")?;
    let expires = paris_time(now_ms + EXPIRES_AFTER_MS).ok_or("the clock is out of range")?;
    let params = SendParams {
        local_id,
        sent_at: now,
        expires_at: expires,
        kind,
        status: Status::Actual,
    };
    create_case_message(route, &params, facts, &now).map_err(|e| e.to_string())
}

/// The CTA that took the call, else the one serving its zone (a call that never queued).
pub fn cta_of(record: &CallRecord, plan: &Plan) -> Option<String> {
    if let Some(cta) = &record.cta {
        return Some(cta.clone());
    }
    let zone = plan.zone_id(&record.departement)?;
    Some(plan.cta(plan.home_cta(zone)).id.clone())
}

/// The `{organisation}` of the case id: `sdis13` for `cta-13`, the CTA's id otherwise (`bspp`):
/// the fire service the CTA belongs to, as partners name it.
pub fn organisation(cta: &str) -> String {
    match cta.strip_prefix("cta-") {
        Some(code) if departement_shaped(code) => format!("sdis{}", code.to_ascii_lowercase()),
        Some(rest) => rest.to_owned(),
        None => cta.to_owned(),
    }
}

fn departement_shaped(code: &str) -> bool {
    (2..=3).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'a' | b'b' | b'A' | b'B'))
}

/// Where the caller is, as a case says it.
fn place(
    insee: Option<&str>,
    commune: Option<&str>,
    point: Option<(f64, f64)>,
    radius_m: Option<f64>,
    source: &str,
) -> (Option<Commune>, Option<Position>) {
    let commune = match (insee, commune) {
        (Some(insee), Some(name)) => Some(Commune {
            insee: insee.to_owned(),
            name: name.to_owned(),
        }),
        _ => None,
    };
    let position = point.map(|(lat, lon)| Position {
        lat,
        lon,
        accuracy_m: radius_m,
        source: if source.starts_with("pidf") {
            PositionSource::PidfLo
        } else if source == "aml" {
            PositionSource::Aml
        } else {
            PositionSource::Default
        },
    });
    (commune, position)
}

/// A withheld number has no digits to send; the label says why.
fn number(caller: Option<&str>) -> String {
    caller
        .filter(|c| !c.trim().is_empty())
        .unwrap_or("anonymous")
        .to_owned()
}

/// What the case says of a call in hand: the core's view of it, the call-taker's note and
/// chosen nature of fact.
pub fn of_call(
    info: &CallInfo,
    plan: &Plan,
    login: &str,
    note: Option<String>,
    qualification: Qualification,
) -> Result<CaseFacts, FactsError> {
    let received_at = paris_time(info.offered_at.0 as i64).ok_or(FactsError::Malformed {
        field: "received_at",
        reason: "not a time",
    })?;
    let cta = plan.cta(info.cta).id.clone();
    let place_of = info.place.as_deref();
    let (commune, position) = match place_of {
        Some(Whereabouts {
            commune,
            insee,
            point,
            radius_m,
            source,
            ..
        }) => place(
            insee.as_deref(),
            commune.as_deref(),
            *point,
            *radius_m,
            source,
        ),
        None => (None, None),
    };
    let facts = CaseFacts {
        call_id: info.call.0.to_string(),
        organisation: organisation(&cta),
        received_at,
        caller_number: number(info.caller.as_deref()),
        channel: match info.medium {
            Medium::Voice => Channel::Voice,
            Medium::Text => Channel::Text,
        },
        call_taker_login: login.to_owned(),
        cta_id: cta,
        commune,
        departement: Some(plan.zone(info.zone).code.clone()),
        position,
        qualification,
        note: note.filter(|n| !n.trim().is_empty()),
    };
    facts.check()?;
    Ok(facts)
}

/// What the case says of a recorded call: the store's record, its CTA, and for a text
/// conversation its lines as the note.
pub fn of_record(
    record: &CallRecord,
    cta: &str,
    transcript: &[TranscriptLine],
    qualification: Qualification,
) -> Result<CaseFacts, FactsError> {
    let received_at = paris_time(record.offered_at).ok_or(FactsError::Malformed {
        field: "received_at",
        reason: "not a time",
    })?;
    let call_taker = record.call_taker.clone().ok_or(FactsError::Empty {
        field: "call_taker_login",
    })?;
    let (commune, position) = place(
        record.insee.as_deref(),
        record.commune.as_deref(),
        record.lat.zip(record.lon),
        record.radius_m,
        &record.location_source,
    );
    let facts = CaseFacts {
        call_id: record.call.to_string(),
        organisation: organisation(cta),
        received_at,
        caller_number: number(record.caller.as_deref()),
        channel: if record.medium == "text" {
            Channel::Text
        } else {
            Channel::Voice
        },
        call_taker_login: call_taker,
        cta_id: cta.to_owned(),
        commune,
        departement: Some(record.departement.clone()).filter(|d| !d.is_empty()),
        position,
        qualification,
        note: note(transcript),
    };
    facts.check()?;
    Ok(facts)
}

/// The conversation as the partner reads it, in French, first lines first (they say what
/// happened); lines past the note's limit are left out and the note says so.
fn note(transcript: &[TranscriptLine]) -> Option<String> {
    const CUT: &str = "\n[suite de la conversation non reprise]";
    let mut note = String::new();
    for line in transcript {
        let who = match line.author.as_str() {
            "caller" => "Appelant",
            "call_taker" => "Opérateur",
            // The platform's own messages (welcome, queue position) say nothing of the case.
            _ => continue,
        };
        let next = format!(
            "{}{who} : {}",
            if note.is_empty() { "" } else { "\n" },
            line.text
        );
        if note.chars().count() + next.chars().count() + CUT.chars().count() > NOTE_LEN_MAX {
            note.push_str(CUT);
            break;
        }
        note.push_str(&next);
    }
    Some(note).filter(|n| !n.is_empty())
}

#[cfg(test)]
#[path = "facts_tests.rs"]
mod tests;

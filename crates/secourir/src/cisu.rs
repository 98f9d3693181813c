//! `secourir cisu`: the CISU message the platform would send the partner for a recorded call,
//! printed whether or not it was sent, so that what the Hub Santé receives can be read and
//! checked before the platform sends anything. The store's record is mapped to
//! [`CaseFacts`] here; the message itself is the `secourir-cisu` crate's.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args as ClapArgs;
use secourir_cisu::envelope::create_case_message;
use secourir_cisu::facts::{Commune, NOTE_LEN_MAX};
use secourir_cisu::time::paris_time;
use secourir_cisu::{
    CaseFacts, Channel, FactsError, Kind, Position, PositionSource, Qualification, Route,
    SendParams, Status,
};
use secourir_config::{Plan, Service};
use secourir_store::{CallRecord, TranscriptLine};

/// The qualification of a call nobody qualified yet: the nomenclature's own "other nature of
/// fact" (C11.00.00), which claims nothing about the call. The console does not let the
/// call-taker choose one yet.
pub const DEFAULT_QUALIFICATION: (&str, &str, &str) = ("C11.00.00", "Autre nature de fait", "1.3");

/// How long a case stays worth delivering: past an hour the partner is told by phone.
const EXPIRES_AFTER_MS: i64 = 3_600_000;

/// Options of `secourir cisu`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The call's platform number (as `secourir calls` lists it).
    pub call: u64,
    /// The platform's data directory.
    #[arg(long, default_value = "var")]
    pub data_dir: PathBuf,
    /// The national configuration: its `[hub]` and the partner's `hub_id`.
    #[arg(long, default_value = "config/france.toml")]
    pub config: PathBuf,
    /// The partner service the case goes to: 15 (SAMU) or 17 (police).
    #[arg(long, default_value = "15")]
    pub to: String,
}

/// Prints the EDXL-DE envelope of the call's createCase, pretty JSON.
pub fn run(args: &Args) -> ExitCode {
    match message(args) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("{why}");
            ExitCode::from(2)
        }
    }
}

fn message(args: &Args) -> Result<String, String> {
    let plan = crate::load_plan(&args.config)?;
    let config = args.config.display();
    let hub = plan.hub.as_ref().ok_or_else(|| {
        format!("{config}: no [hub] table: the platform has no client id on the hub")
    })?;
    let service = Service::parse(&args.to)
        .ok_or_else(|| format!("--to {:?}: not a service (15, 17)", args.to))?;
    let recipient = plan
        .partner_hub_id(service)
        .ok_or_else(|| format!("{config}: no partner service {} with a hub_id", args.to))?;
    let store = secourir_store::Store::open_read_only(&args.data_dir).map_err(|e| e.to_string())?;
    let record = store
        .call(args.call)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "call {} is not in the store of {}",
                args.call,
                args.data_dir.display()
            )
        })?;
    let transcript = if record.medium == "text" {
        store.transcript(record.call).map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    let cta = cta_of(&record, &plan)
        .ok_or_else(|| format!("call {}: no CTA took it nor serves its zone", record.call))?;
    let facts =
        facts(&record, &cta, &transcript).map_err(|e| format!("call {}: {e}", record.call))?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let now = paris_time(now_ms).ok_or("the clock is out of range")?;
    let expires = paris_time(now_ms + EXPIRES_AFTER_MS).ok_or("the clock is out of range")?;
    let route = Route {
        sender_id: hub.client_id.clone(),
        recipient_id: recipient.to_owned(),
    };
    let params = SendParams {
        local_id: format!("{}-1", record.call),
        sent_at: now,
        expires_at: expires,
        kind: Kind::Report,
        status: Status::Actual,
    };
    let out = create_case_message(&route, &params, &facts, &now)
        .map_err(|e| format!("call {}: {e}", record.call))?;
    let value: serde_json::Value =
        serde_json::from_slice(&out.body).map_err(|e| format!("the message: {e}"))?;
    serde_json::to_string_pretty(&value).map_err(|e| format!("the message: {e}"))
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

/// What the case says of a recorded call: the store's record, its CTA, and for a text
/// conversation its lines as the note.
pub fn facts(
    record: &CallRecord,
    cta: &str,
    transcript: &[TranscriptLine],
) -> Result<CaseFacts, FactsError> {
    let received_at = paris_time(record.offered_at).ok_or(FactsError::Malformed {
        field: "received_at",
        reason: "not a time",
    })?;
    let call_taker = record.call_taker.clone().ok_or(FactsError::Empty {
        field: "call_taker_login",
    })?;
    let commune = match (&record.insee, &record.commune) {
        (Some(insee), Some(name)) => Some(Commune {
            insee: insee.clone(),
            name: name.clone(),
        }),
        _ => None,
    };
    let position = match (record.lat, record.lon) {
        (Some(lat), Some(lon)) => Some(Position {
            lat,
            lon,
            accuracy_m: record.radius_m,
            source: match record.location_source.as_str() {
                "pidf-lo" => PositionSource::PidfLo,
                "aml" => PositionSource::Aml,
                _ => PositionSource::Default,
            },
        }),
        _ => None,
    };
    let (code, label, version) = DEFAULT_QUALIFICATION;
    let facts = CaseFacts {
        call_id: record.call.to_string(),
        organisation: organisation(cta),
        received_at,
        // A withheld number has no digits to send; the label says why.
        caller_number: record
            .caller
            .clone()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| "anonymous".to_owned()),
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
        qualification: Qualification {
            code: code.to_owned(),
            label: label.to_owned(),
            nomenclature_version: version.to_owned(),
        },
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
#[path = "cisu_tests.rs"]
mod tests;

//! `secourir cisu`: the CISU message the platform would send the partner for a recorded call,
//! printed whether or not it was sent, so that what the Hub Santé receives can be read and
//! checked before the platform sends anything. The record is mapped to the case as the platform
//! maps a live call (`secourir_server::cases::facts`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args as ClapArgs;
use secourir_cisu::{Kind, Route};
use secourir_config::Service;
use secourir_server::cases::facts;

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
    let cta = facts::cta_of(&record, &plan)
        .ok_or_else(|| format!("call {}: no CTA took it nor serves its zone", record.call))?;
    let case = facts::of_record(
        &record,
        &cta,
        &transcript,
        facts::qualification(&plan, None),
    )
    .map_err(|e| format!("call {}: {e}", record.call))?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let route = Route {
        sender_id: hub.client_id.clone(),
        recipient_id: recipient.to_owned(),
    };
    let local_id = facts::local_id(record.call, service, 1);
    let out = facts::message(&route, local_id, Kind::Report, &case, now_ms)
        .map_err(|e| format!("call {}: {e}", record.call))?;
    let value: serde_json::Value =
        serde_json::from_slice(&out.body).map_err(|e| format!("the message: {e}"))?;
    serde_json::to_string_pretty(&value).map_err(|e| format!("the message: {e}"))
}

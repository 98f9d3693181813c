//! What a start finds in the store: the call numbers already handed out, the calls a crash left
//! open, and the call-back entries still to work.
//!
//! A call the store saw offered and never ended was cut by a crash: its caller may still need
//! help, so it is closed as abandoned, said so in its trail, and put on its CTA's call-back
//! list. Every entry of the lists goes back into the core, where call-takers work them.

use secourir_config::Plan;
use secourir_core::{AgentId, CallId, Event, Instant};
use secourir_store::{Store, Write};

/// Reason written on a call a crash interrupted.
pub(crate) const INTERRUPTED: &str = "interrompu : la plateforme s'est arrêtée pendant l'appel";

/// What the driver must know and do before the first call.
pub(crate) struct Recovered {
    /// Highest call number ever handed out (or reserved): numbering goes on above it.
    pub(crate) last_call: u64,
    /// Records closing the interrupted calls.
    pub(crate) writes: Vec<Write>,
    /// Call-back entries to give back to the core.
    pub(crate) events: Vec<Event>,
    /// Calls closed as interrupted.
    pub(crate) interrupted: usize,
}

/// Reads the store in `dir` as a start finds it.
pub(crate) fn recover(
    dir: &std::path::Path,
    recordings: &std::path::Path,
    plan: &Plan,
    now: Instant,
) -> Result<Recovered, secourir_store::StoreError> {
    let store = Store::open_read_only(dir)?;
    let last_call = store.last_call()?;
    let open = store.open_calls()?;
    let zone_of = |departement: Option<&str>| {
        departement
            .and_then(|d| plan.zone_id(d))
            .unwrap_or(plan.default_zone)
    };
    let mut writes = Vec::with_capacity(open.len() * 3);
    let mut events = Vec::new();
    let at = now.0 as i64;
    for call in &open {
        let zone = zone_of(Some(&call.departement));
        let cta = plan.cta(plan.home_cta(zone)).id.clone();
        writes.push(Write::Trail {
            call: call.call,
            at,
            step: "appel interrompu par un arrêt de la plateforme : à rappeler".into(),
        });
        writes.push(Write::Ended {
            call: call.call,
            at,
            outcome: "abandoned".into(),
            reason: INTERRUPTED.into(),
        });
        writes.push(Write::Callback {
            call: call.call,
            cta,
            state: "pending".into(),
            by: None,
            at,
        });
        // The conversation recorded until the crash: mended so that it plays, and linked.
        let path = recordings.join(format!("call-{}.wav", call.call));
        if path.exists() {
            match secourir_media::repair_recording(&path) {
                Some((recording, repaired)) => {
                    writes.push(Write::Recording {
                        call: call.call,
                        path: recording.path.display().to_string(),
                        sha256: recording.sha256.clone(),
                        duration_ms: recording.duration_ms,
                    });
                    if repaired {
                        writes.push(Write::Trail {
                            call: call.call,
                            at,
                            step: format!(
                                "enregistrement réparé après l'interruption : {} ({} ms, sha256 {})",
                                recording.path.display(),
                                recording.duration_ms,
                                recording.sha256
                            ),
                        });
                    }
                }
                None => writes.push(Write::Trail {
                    call: call.call,
                    at,
                    step: format!(
                        "enregistrement illisible après l'interruption : {}",
                        path.display()
                    ),
                }),
            }
        }
        events.push(Event::CallbackRestored {
            call: CallId(call.call),
            zone,
            caller: call
                .caller
                .as_ref()
                .map(|c| c.expose().clone().into_boxed_str()),
            at: now,
            taken_by: None,
        });
    }
    for entry in store.callbacks(None)? {
        if open.iter().any(|c| c.call == entry.call) {
            continue;
        }
        let taken_by = entry
            .taken_by
            .as_deref()
            .filter(|_| entry.state == "taken")
            .and_then(|login| plan.call_taker(login))
            .map(|(index, _)| AgentId(index as u32));
        events.push(Event::CallbackRestored {
            call: CallId(entry.call),
            zone: zone_of(entry.departement.as_deref()),
            caller: entry.caller.map(String::into_boxed_str),
            at: Instant(entry.created_at.max(0) as u64),
            taken_by,
        });
    }
    Ok(Recovered {
        last_call,
        writes,
        events,
        interrupted: open.len(),
    })
}

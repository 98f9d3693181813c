//! How `secourir calls` shows the records: the `--since` span it reads and the table it prints.

use std::path::Path;
use std::time::Duration;

use crate::CallRecord;

/// Parses a `--since` span: `90s`, `15m`, `1h`, `2d` or combinations such as `1h30m`.
pub fn parse_since(text: &str) -> Result<Duration, String> {
    const HINT: &str = "write a span such as 90s, 15m, 1h, 2d or 1h30m";
    // Callers subtract the span from now in milliseconds; beyond this it would overflow.
    const MAX_SECS: u64 = i64::MAX as u64 / 1000;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty duration: {HINT}"));
    }
    let too_long = || format!("{text:?}: too long a span");
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("{text:?}: unknown unit {c:?}; {HINT}")),
        };
        if number.is_empty() {
            return Err(format!("{text:?}: a number must come before {c:?}; {HINT}"));
        }
        let value: u64 = number.parse().map_err(|_| too_long())?;
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .filter(|&t| t <= MAX_SECS)
            .ok_or_else(too_long)?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "{text:?}: the last number has no unit (s, m, h or d); {HINT}"
        ));
    }
    Ok(Duration::from_secs(total))
}

/// `HH:MM:SS` of a time of day, from the milliseconds alone so the table needs no time zone.
fn clock(ms: i64) -> String {
    let day = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

/// `m:ss`, or `h:mm:ss` past an hour: how operators read call lengths.
fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The state of a call in the operators' words.
fn state(c: &CallRecord) -> String {
    match (c.outcome.as_deref(), c.answered_at, c.queued_at) {
        (Some("completed"), ..) => "traité".into(),
        (Some("transferred"), ..) => "transféré".into(),
        (Some("abandoned"), ..) => "abandonné".into(),
        (Some("rejected"), ..) => "rejeté".into(),
        (Some(other), ..) => other.into(),
        (None, Some(_), _) => "en conversation".into(),
        (None, None, Some(_)) => "en attente".into(),
        (None, None, None) => "en cours".into(),
    }
}

/// Formats calls as an aligned table for a terminal; times are UTC, the duration runs from
/// arrival to end so that abandoned calls show how long the caller waited.
pub fn format_table(calls: &[CallRecord]) -> String {
    const COLUMNS: usize = 11;
    let header = [
        "appel",
        "reçu (UTC)",
        "appelant",
        "dépt",
        "commune",
        "CTA",
        "opérateur",
        "état",
        "raison",
        "enregistrement",
        "durée",
    ];
    let mut rows: Vec<[String; COLUMNS]> = vec![header.map(str::to_owned)];
    for c in calls {
        // The file's name says which recording; its path and SHA-256 are in --json, as are a
        // text conversation's lines.
        let recording = match (&c.recording_path, c.medium.as_str()) {
            (_, "text") => match &c.transcript_sha256 {
                Some(sha256) => format!("écrit, sha256 {}…", &sha256[..sha256.len().min(12)]),
                None => "écrit, en cours".into(),
            },
            (Some(path), _) => Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            (None, _) => String::new(),
        };
        rows.push([
            c.call.to_string(),
            clock(c.offered_at),
            c.caller.clone().unwrap_or_else(|| "inconnu".into()),
            c.departement.clone(),
            c.commune.clone().unwrap_or_default(),
            c.cta.clone().unwrap_or_default(),
            c.call_taker.clone().unwrap_or_default(),
            state(c),
            c.reason.clone().unwrap_or_default(),
            recording,
            c.ended_at
                .map(|e| span(e - c.offered_at))
                .unwrap_or_default(),
        ]);
    }
    let widths: Vec<usize> = (0..COLUMNS)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if calls.is_empty() {
        out.push_str("(aucun appel)\n");
    }
    out
}

//! The store's record mapped to the case's facts, and those facts through the createCase.

use super::*;

/// The qualification of a call nobody qualified.
fn default() -> Qualification {
    let (code, label) = DEFAULT_QUALIFICATION;
    Qualification {
        code: code.into(),
        label: label.into(),
        nomenclature_version: NOMENCLATURE_VERSION.into(),
    }
}

/// A voice call from Marseille located by PIDF-LO, answered by ota-13-1 at CTA 13.
fn marseille() -> CallRecord {
    CallRecord {
        call: 42,
        emergency_call_id: "urn:emergency:uid:callid:42:test".into(),
        caller: Some("0601020304".into()),
        service: "urn:service:sos.fire".into(),
        // 2026-07-14T10:00:05Z: 12:00:05 in Paris.
        offered_at: 1_784_023_205_000,
        queued_at: Some(1_784_023_206_000),
        answered_at: Some(1_784_023_210_000),
        ended_at: None,
        lat: Some(43.2965),
        lon: Some(5.3698),
        radius_m: Some(50.0),
        location_source: "pidf-lo".into(),
        departement: "13".into(),
        commune: Some("Marseille".into()),
        insee: Some("13055".into()),
        trunk: None,
        cta: Some("cta-13".into()),
        call_taker: Some("ota-13-1".into()),
        outcome: None,
        reason: None,
        recording_path: None,
        recording_sha256: None,
        recording_ms: None,
        medium: "voice".into(),
        transcript_sha256: None,
    }
}

fn case(facts: &CaseFacts) -> serde_json::Value {
    secourir_cisu::create_case(facts, &facts.received_at).expect("the createCase builds")
}

#[test]
fn a_located_call_carries_its_place_position_and_people() {
    let facts = of_record(&marseille(), "cta-13", &[], default()).expect("facts");
    assert_eq!(facts.case_id(), "fr.fire.sdis13.42");
    assert_eq!(facts.received_at.to_rfc3339(), "2026-07-14T12:00:05+02:00");
    assert_eq!(facts.channel, Channel::Voice);
    assert_eq!(facts.call_taker_login, "ota-13-1");
    assert_eq!(facts.note, None);
    let position = facts.position.expect("a position");
    assert_eq!(position.source, PositionSource::PidfLo);
    assert_eq!(position.accuracy_m, Some(50.0));
    let case = case(&facts);
    assert_eq!(case["caseId"], "fr.fire.sdis13.42");
    assert_eq!(case["location"]["city"]["inseeCode"], "13055");
    assert_eq!(
        case["initialAlert"]["caller"]["callerContact"]["detail"],
        "+33601020304"
    );
    assert_eq!(
        case["qualification"]["whatsHappen"]["code"],
        DEFAULT_QUALIFICATION.0
    );
}

#[test]
fn a_call_with_the_default_position_says_it_is_a_default() {
    let mut record = marseille();
    record.location_source = "national-default".into();
    record.lat = Some(48.8566);
    record.lon = Some(2.3522);
    record.radius_m = None;
    record.commune = None;
    record.insee = None;
    record.caller = None;
    let facts = of_record(&record, "cta-13", &[], default()).expect("facts");
    let position = facts.position.expect("the default point");
    assert_eq!(position.source, PositionSource::Default);
    assert_eq!(facts.commune, None);
    assert_eq!(facts.caller_number, "anonymous");
    let case = case(&facts);
    assert!(case["location"].get("city").is_none(), "{case:#}");
}

#[test]
fn a_text_call_is_written_and_its_conversation_is_the_note() {
    let mut record = marseille();
    record.medium = "text".into();
    let line = |author: &str, text: &str| TranscriptLine {
        at: record.offered_at,
        author: author.into(),
        login: None,
        text: text.into(),
    };
    let transcript = [
        line(
            "platform",
            "Vous êtes en relation avec les sapeurs-pompiers.",
        ),
        line("caller", "Mon voisin est tombé, il ne répond plus."),
        line("call_taker", "Quelle adresse ?"),
    ];
    let facts = of_record(&record, "cta-13", &transcript, default()).expect("facts");
    assert_eq!(facts.channel, Channel::Text);
    assert_eq!(
        facts.note.as_deref(),
        Some("Appelant : Mon voisin est tombé, il ne répond plus.\nOpérateur : Quelle adresse ?")
    );
}

#[test]
fn a_long_conversation_is_cut_and_says_so() {
    let long = TranscriptLine {
        at: 0,
        author: "caller".into(),
        login: None,
        text: "a".repeat(1_500),
    };
    let note = note(&[long.clone(), long.clone(), long.clone()]).expect("a note");
    assert!(note.chars().count() <= NOTE_LEN_MAX);
    assert!(
        note.ends_with("[suite de la conversation non reprise]"),
        "{note}"
    );
    assert_eq!(note.matches("Appelant : ").count(), 2);
}

#[test]
fn a_call_nobody_answered_names_no_call_taker_and_is_refused() {
    let mut record = marseille();
    record.call_taker = None;
    assert_eq!(
        of_record(&record, "cta-13", &[], default()).err(),
        Some(FactsError::Empty {
            field: "call_taker_login"
        })
    );
}

#[test]
fn the_organisation_is_the_fire_service_of_the_cta() {
    assert_eq!(organisation("cta-13"), "sdis13");
    assert_eq!(organisation("cta-2a"), "sdis2a");
    assert_eq!(organisation("cta-974"), "sdis974");
    assert_eq!(organisation("bspp"), "bspp");
}

#[test]
fn a_message_id_names_its_call_and_partner() {
    let id = format!(
        "fr.fire.secourir.sdis13_{}",
        local_id(42, Service::Ambulance, 3)
    );
    assert_eq!(id, "fr.fire.secourir.sdis13_42-15-3");
    assert_eq!(call_of(&id), Some((42, "15")));
    assert_eq!(call_of("fr.health.samu13_abc"), None);
}

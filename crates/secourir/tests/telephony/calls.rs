//! Calls end to end with SIPp peers: located, queued, overflowed, handed to the SAMU, lent.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::Digest;

use super::*;

/// Root mean square of one channel of a stereo WAV.
fn channel_rms(samples: &[i16], channel: usize) -> f64 {
    let values: Vec<f64> = samples
        .iter()
        .skip(channel)
        .step_by(2)
        .map(|&s| f64::from(s))
        .collect();
    (values.iter().map(|v| v * v).sum::<f64>() / values.len().max(1) as f64).sqrt()
}

#[test]
fn a_located_call_to_18_reaches_its_cta_is_answered_and_recorded() {
    let platform = Platform::start();
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let answering = platform.call_taker("ota-13-1", phone, 1);
    platform.set_state("ota-13-1", "available");
    let caller = platform.caller("0601020304", 43.2965, 5.3698, 6_000);
    platform.wait_call("the call answered", |c| c["call_taker"] == "ota-13-1");
    // The caller's phone sends its AML position during the conversation.
    let aml = ureq::post(&platform.url("/api/aml"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .content_type("text/plain")
        .send("A\"ML=1;lt=+43.28511;lg=+5.38022;rd=8;top=20261122143000;lc=68;pm=G;si=208150000000001;ei=356708041746734;mcc=208;mnc=15;ml=124;cs=0601020304")
        .expect("AML accepted");
    assert_eq!(aml.status().as_u16(), 200);
    wait_ok(caller, "caller");
    wait_ok(answering, "call-taker phone");

    let call = platform.wait_call("a completed call", |c| field(c, "outcome") == "completed");
    assert_eq!(field(&call, "departement"), "13");
    assert_eq!(field(&call, "commune"), "Marseille");
    assert_eq!(field(&call, "location_source"), "pidf-lo");
    assert_eq!(field(&call, "cta"), "cta-13");
    assert_eq!(field(&call, "call_taker"), "ota-13-1");
    assert_eq!(field(&call, "caller"), "0601020304");
    assert!(
        field(&call, "emergency_call_id")
            .as_str()
            .is_some_and(|id| id.starts_with("urn:emergency:uid:callid:"))
    );

    let path = PathBuf::from(
        field(&call, "recording_path")
            .as_str()
            .expect("a recording"),
    );
    let bytes = std::fs::read(&path).expect("recording exists");
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    assert_eq!(field(&call, "recording_sha256"), sha.as_str());
    let mut wav = hound::WavReader::new(std::io::Cursor::new(bytes)).expect("a WAV");
    let spec = wav.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
    let seconds = samples.len() as f64 / 2.0 / 8000.0;
    let answered = field(&call, "answered_at").as_i64().expect("answered");
    let ended = field(&call, "ended_at").as_i64().expect("ended");
    let talk = (ended - answered) as f64 / 1000.0;
    assert!(
        (seconds - talk).abs() < 1.0,
        "recording lasts {seconds:.2} s, the conversation {talk:.2} s"
    );
    assert!(seconds > 4.0, "recording too short: {seconds:.2} s");
    assert!(channel_rms(&samples, 0) > 100.0, "caller's side is silent");
    assert!(
        channel_rms(&samples, 1) > 100.0,
        "call-taker's side is silent"
    );

    // Numbers and positions are personal data: the log of the whole call (at the production
    // level, info) holds neither, in any form the platform received them.
    let log = platform.full_log();
    assert!(
        log.contains("emergency call offered") && log.contains("AML location applied"),
        "{log}"
    );
    for secret in [
        "0601020304",
        "601020304",
        "43.2965",
        "5.3698",
        "43.28511",
        "5.38022",
    ] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
}

#[test]
fn a_queued_caller_hears_the_announcement_then_is_answered_and_one_who_hangs_up_gets_a_call_back() {
    let platform = Platform::start();
    let phone = free_port();
    platform.register("ota-13-2", phone);
    platform.set_state("ota-13-2", "paused");

    // Nobody available: the caller is answered by the platform and waits with the announcement.
    let answering = platform.call_taker("ota-13-2", phone, 1);
    // The caller stays 8 s after the platform answers: long enough to be answered by the
    // call-taker made available below, even on a loaded machine.
    let caller = platform.caller("0611111111", 43.2965, 5.3698, 8_000);
    let waiting = platform.wait_call("a queued call", |c| {
        field(c, "caller") == "0611111111" && !field(c, "queued_at").is_null()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let trail = platform.trail(field(&waiting, "call"));
        if trail.iter().any(|s| s == "annonce attente") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no queue announcement: {trail:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(field(&platform.calls()[0], "answered_at").is_null());
    platform.set_state("ota-13-2", "available");
    wait_ok(caller, "queued caller");
    wait_ok(answering, "call-taker phone");
    let answered = platform.wait_call("the queued call completed", |c| {
        field(c, "caller") == "0611111111" && field(c, "outcome") == "completed"
    });
    assert_eq!(field(&answered, "call_taker"), "ota-13-2");

    // Paused again: this caller gives up after 2 s in the queue.
    platform.set_state("ota-13-2", "paused");
    let caller = platform.caller("0622222222", 43.2965, 5.3698, 2_000);
    wait_ok(caller, "impatient caller");
    let abandoned = platform.wait_call("an abandoned call", |c| {
        field(c, "caller") == "0622222222" && field(c, "outcome") == "abandoned"
    });
    let id = field(&abandoned, "call").as_u64().expect("call number");
    let callbacks = platform.get("/api/callbacks?cta=cta-13");
    let entry = callbacks
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["call"] == id)
        .unwrap_or_else(|| panic!("no call-back entry for {id}: {callbacks}"));
    assert_eq!(entry["state"], "pending");
    assert_eq!(entry["caller"], "0622222222");
    let (status, _) = platform.post(
        &format!("/api/callbacks/{id}/taken"),
        json!({ "by": "ota-13-2" }),
    );
    assert_eq!(status, 200);
    let (status, _) = platform.post(
        &format!("/api/callbacks/{id}/done"),
        json!({ "by": "ota-13-2" }),
    );
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while platform
        .get("/api/callbacks?cta=cta-13")
        .as_array()
        .is_some_and(|l| l.iter().any(|c| c["call"] == id))
    {
        assert!(
            Instant::now() < deadline,
            "call-back still listed after done"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_call_from_an_unstaffed_departement_overflows_to_a_partner() {
    let platform = Platform::start();
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let answering = platform.call_taker("ota-13-1", phone, 1);
    platform.set_state("ota-13-1", "available");
    // Toulon, in the Var: nobody of cta-83 is logged in; cta-13 is its partner.
    let caller = platform.caller("0633333333", 43.1242, 5.9280, 3_000);
    wait_ok(caller, "caller from the Var");
    wait_ok(answering, "call-taker phone");
    let call = platform.wait_call("the Var call completed", |c| {
        field(c, "outcome") == "completed"
    });
    assert_eq!(field(&call, "departement"), "83");
    assert_eq!(field(&call, "commune"), "Toulon");
    assert_eq!(field(&call, "cta"), "cta-13");
    assert_eq!(field(&call, "call_taker"), "ota-13-1");
}

/// The status and body of an answer, errors included.
#[test]
fn a_call_taker_hands_a_call_to_the_samu_and_the_caller_stays_on_the_line() {
    // The shipped configuration plus a SAMU reachable on loopback (a SIPp answerer).
    let samu = free_port();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("france-with-samu.toml");
    let shipped = shipped();
    std::fs::write(
        &config,
        format!("{shipped}\n[[partner_service]]\nservice = \"15\"\nname = \"SAMU 13\"\nuri = \"sip:15@127.0.0.1:{samu}\"\n"),
    )
    .expect("write config");
    let platform = Platform::with_config(&config);
    let partner = platform.partner("samu", samu);
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let answering = platform.call_taker("ota-13-1", phone, 1);
    platform.set_state("ota-13-1", "available");
    let caller = platform.caller("0699999999", 43.2965, 5.3698, 6_000);
    let call = platform.wait_call("the call answered", |c| !c["answered_at"].is_null());
    let id = call["call"].as_u64().expect("number");
    let cookie = session(&platform, "ota-13-1");
    let response = ureq::post(&platform.url(&format!("/api/console/calls/{id}/transfer")))
        .header("Cookie", &cookie)
        .send_json(json!({ "to": "15", "summary": "Malaise, homme 60 ans, conscient" }))
        .expect("transfer");
    assert_eq!(response.status().as_u16(), 200);
    // The call-taker's phone is hung up at once; the caller talks to the SAMU, then hangs up.
    wait_ok(answering, "call-taker phone");
    wait_ok(caller, "caller");
    wait_ok(partner, "SAMU");
    let done = platform.wait_call("the transferred call", |c| c["outcome"] == "transferred");
    assert_eq!(done["reason"], "transféré au 15 (SAMU)");
    let trail = platform.trail(&json!(id));
    assert!(
        trail
            .iter()
            .any(|s| s.starts_with("transfert demandé au SAMU 13 par ota-13-1 : Malaise")),
        "{trail:?}"
    );
    assert!(
        trail
            .iter()
            .any(|s| s == "transféré au SAMU 13 par ota-13-1"),
        "{trail:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !platform.get(&format!("/api/calls/{id}"))["trail"]
        .to_string()
        .contains("enregistrement avec le partenaire")
    {
        assert!(
            Instant::now() < deadline,
            "no recording of the conversation with the SAMU"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Without a partner for the 17, the console is told so.
    let (status, _) = console_post(
        &platform,
        "ota-13-2",
        &format!("/api/console/calls/{id}/transfer"),
        json!({ "to": "17" }),
    );
    assert_eq!(status, 409);
}

/// National mutual aid with real phones: Marseille's only call-taker is busy, so the next
/// Marseille caller is answered at once by a call-taker of the BSPP, which lends one of its two
/// and keeps the other (its reserve) for its own caller, who calls during the burst.
#[test]
fn a_burst_beyond_its_staff_is_answered_by_a_lender_that_keeps_its_reserve() {
    // The shipped configuration, with short wrap-ups so that the burst drains within the test,
    // and a national call volume that each CTA's reserve reads before it has seen 30 minutes
    // of traffic: 500,000 calls a year make the BSPP's share (10%) need one call-taker.
    let shipped = shipped();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("france.toml");
    let changed = shipped
        .replace("\nwrap_up_s = 20 ", "\nwrap_up_s = 2 ")
        .replace(
            "\nmean_handling_s = 90\n",
            "\nmean_handling_s = 90\nexpected_calls_per_year = 500_000\n",
        );
    assert_ne!(changed, shipped);
    std::fs::write(&config, changed).expect("write");
    let platform = Platform::with_config(&config);
    let mut phones = Vec::new();
    for (login, calls) in [("ota-13-1", 3), ("ota-bspp-1", 3), ("ota-bspp-2", 3)] {
        let port = free_port();
        platform.register(login, port);
        phones.push(Reaped(platform.call_taker(login, port, calls)));
        platform.set_state(login, "available");
    }
    let answered = |name: &str| {
        let name = name.to_owned();
        platform.wait_call(&format!("{name} answered"), move |c| {
            c["caller"] == name.as_str() && c["call_taker"].is_string()
        })
    };
    let mut callers = Vec::new();
    callers.push(Reaped(platform.caller(
        "0600000001",
        43.2965,
        5.3698,
        8_000,
    )));
    let first = answered("0600000001");
    assert_eq!(field(&first, "call_taker"), "ota-13-1");
    callers.push(Reaped(platform.caller(
        "0600000002",
        43.2965,
        5.3698,
        20_000,
    )));
    let lent = answered("0600000002");
    assert_eq!(field(&lent, "departement"), "13");
    assert_eq!(field(&lent, "cta"), "bspp", "{lent}");
    let lender = field(&lent, "call_taker")
        .as_str()
        .expect("login")
        .to_owned();
    assert!(lender.starts_with("ota-bspp-"), "{lender}");
    // The third Marseille caller finds nobody to spare: the BSPP keeps its last call-taker.
    callers.push(Reaped(platform.caller(
        "0600000003",
        43.2965,
        5.3698,
        15_000,
    )));
    let waiting = platform.wait_call("the third caller queued", |c| c["caller"] == "0600000003");
    assert!(waiting["call_taker"].is_null(), "{waiting}");
    // A Parisian calls during the burst: the reserve answers at once.
    callers.push(Reaped(platform.caller(
        "0600000075",
        48.8566,
        2.3522,
        4_000,
    )));
    let own = answered("0600000075");
    assert_eq!(field(&own, "departement"), "75");
    assert_eq!(field(&own, "cta"), "bspp");
    assert_ne!(field(&own, "call_taker"), lender.as_str());
    let wait_ms = own["answered_at"].as_i64().expect("answered")
        - own["offered_at"].as_i64().expect("offered");
    assert!(
        wait_ms < 3_000,
        "the lender's own caller waited {wait_ms} ms"
    );
    // The third Marseille caller is answered once a call-taker frees up, after the Parisian.
    let third = answered("0600000003");
    assert!(
        third["answered_at"].as_i64() >= own["answered_at"].as_i64(),
        "{third} / {own}"
    );
    // The BSPP's call-taker hands the Marseille call back with a summary: it goes to the head
    // of Marseille's queue, before the third caller, and Marseille's call-taker takes it.
    let (code, body) = console_post(
        &platform,
        &lender,
        &format!("/api/console/calls/{}/handback", field(&lent, "call")),
        json!({ "summary": "feu de broussailles, route de la Gineste" }),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = console_post(
        &platform,
        "ota-13-1",
        &format!("/api/console/calls/{}/handback", field(&first, "call")),
        json!({}),
    );
    assert_eq!(
        code, 403,
        "not talking with that caller any more, or never: {body}"
    );
    let home = platform.wait_call("the handed-back call answered at home", |c| {
        c["caller"] == "0600000002" && c["call_taker"] == "ota-13-1"
    });
    assert_eq!(field(&home, "cta"), "cta-13");
    let trail = platform.trail(field(&lent, "call"));
    for step in [
        "entraide cta-13 → bspp".to_owned(),
        format!("rendu au cta-13 par {lender} (bspp) : feu de broussailles, route de la Gineste"),
        "décroché par ota-13-1".to_owned(),
    ] {
        assert!(trail.contains(&step), "no {step:?} in {trail:?}");
    }
    // The conversation after the hand-back has its own recording, traced when the call ends.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !platform
        .trail(field(&lent, "call"))
        .iter()
        .any(|s| s.starts_with("enregistrement après retour au CTA d'origine"))
    {
        assert!(Instant::now() < deadline, "no second recording traced");
        std::thread::sleep(Duration::from_millis(200));
    }
    for mut caller in callers {
        let deadline = Instant::now() + Duration::from_secs(45);
        while caller.0.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "a caller did not finish");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

//! A located call's case handed to the SAMU from the console in Chromium, through a real
//! RabbitMQ standing for the Hub Santé (its dispatcher and a SAMU that acknowledges, as the
//! hub crate's tests have them): read by the SAMU as the official schemas want it, and shown
//! "reçu par le SAMU"; then the same with the broker down for 30 s.

use std::sync::{Arc, Mutex};

use super::*;

// The hub crate's own stand-ins, shared rather than copied; this test uses part of them.
#[allow(dead_code)]
#[path = "../../../hub/tests/support/mod.rs"]
mod hub;

use hub::hub_role::{self, HubRole, PLATFORM, SAMU_ACKS, Seen};
use hub::rabbit::Broker;

/// The shipped configuration with a SAMU answering on loopback, its client id on the hub, and
/// the hub on `broker`.
fn with_hub(dir: &std::path::Path, samu: u16, broker: &str) -> std::path::PathBuf {
    let config = dir.join("france-with-hub.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[[partner_service]]\nservice = \"15\"\nname = \"SAMU 13\"\nuri = \"sip:15@127.0.0.1:{samu}\"\nhub_id = \"{SAMU_ACKS}\"\n\n[hub]\nurl = \"{broker}\"\nclient_id = \"{PLATFORM}\"\n",
            shipped()
        ),
    )
    .expect("write config");
    config
}

/// The createCase inside an envelope a partner received.
fn create_case(envelope: &serde_json::Value) -> &serde_json::Value {
    &envelope["content"][0]["jsonContent"]["embeddedJsonContent"]["message"]["createCase"]
}

/// What the SAMU received, parsed, in order.
fn received(seen: &Mutex<Seen>) -> Vec<serde_json::Value> {
    seen.lock()
        .unwrap()
        .bodies
        .get(SAMU_ACKS)
        .map(|bodies| {
            bodies
                .iter()
                .map(|b| serde_json::from_slice(b).expect("JSON"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits, as long as a broker's return may take, for `css` to say `text`.
async fn wait_text_long(browser: &Client, css: &str, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && let Ok(t) = element.text().await
            && t.contains(text)
        {
            return t;
        }
        assert!(Instant::now() < deadline, "no {css} with {text:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_located_call_s_case_reaches_the_samu_through_the_hub_even_when_the_broker_was_down() {
    let mut broker = tokio::task::block_in_place(Broker::start);
    let uri = broker.uri();
    hub_role::declare_topology(&uri).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut stand_ins = Some(HubRole::start(&uri, seen.clone()).await);

    let samu = free_port();
    let dir = tempfile::tempdir().expect("dir");
    let platform = Platform::with_config(&with_hub(dir.path(), samu, &uri));
    let partner = platform.partner("samu", samu);
    let driver = Driver::start();
    let browser = driver.browser("cases").await;
    log_in(&browser, &platform, "ota-13-1").await;
    wait_text(&browser, "#who", "CTA-CODIS Bouches-du-Rhône").await;
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let _answering = Reaped(platform.call_taker("ota-13-1", phone, 2));
    click(&browser, "#pause").await;
    wait_text(&browser, "#my-status", "en pause").await;

    // A caller in Marseille, located by PIDF-LO, taken from the console.
    let _caller = Reaped(platform.caller("0699999999", 43.2965, 5.3698, 6_000));
    wait_text(&browser, "#queue tbody tr", "Marseille").await;
    press(&browser, "\u{E007}").await;
    wait_text(&browser, "#cur-duration", "en conversation depuis").await;
    let call = platform.wait_call("the first call answered", |c| {
        c["caller"] == "0699999999" && !c["answered_at"].is_null()
    });
    let first = call["call"].as_u64().expect("number");

    // The call-taker says what happens and hands the call to the SAMU: the case goes with it.
    click(&browser, "#qualification option[value='C11.02.01']").await;
    write_note(&browser, "Homme 60 ans au sol, respire").await;
    click(&browser, "#to15").await;
    wait_text(&browser, "#message", "Appel transféré").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while received(&seen).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the SAMU received no case: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let detail = platform.get(&format!("/api/calls/{first}"));
        if detail["cases"][0]["state"] == "acked" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not acknowledged on record: {detail:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = wait_text(&browser, "#cases tbody tr", "reçu par le SAMU").await;
    assert!(row.contains(&first.to_string()), "{row}");
    screenshot(&browser, "console-case-acknowledged").await;
    wait_ok(partner, "the SAMU's phone");

    let cases = received(&seen);
    assert_eq!(cases.len(), 1, "the SAMU received one case");
    let errors: Vec<String> = cisu_validator()
        .iter_errors(&cases[0])
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}\n{:#}", errors.join("\n"), cases[0]);
    let case = create_case(&cases[0]);
    assert_eq!(case["caseId"], format!("fr.fire.sdis13.{first}"));
    assert_eq!(case["location"]["city"]["inseeCode"], "13055");
    assert_eq!(case["location"]["city"]["name"], "Marseille");
    let point = &case["location"]["geometry"]["point"]["coord"];
    assert!(
        (point["lat"].as_f64().expect("lat") - 43.2965).abs() < 1e-6,
        "{case:#}"
    );
    assert_eq!(case["qualification"]["whatsHappen"]["code"], "C11.02.01");
    assert!(case.to_string().contains("Homme 60 ans au sol"), "{case:#}");

    // The record keeps what went on the wire and that the SAMU acknowledged it.
    let detail = platform.get(&format!("/api/calls/{first}"));
    let on_record = &detail["cases"][0];
    assert_eq!(on_record["state"], "acked", "{detail:#}");
    assert_eq!(on_record["partner"], SAMU_ACKS);
    assert_eq!(
        on_record["body"]["distributionID"], cases[0]["distributionID"],
        "{detail:#}"
    );

    // A SAMU hands the fire service a case of its own (the official gas leak example): it
    // arrives in the console as such.
    let example: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../cisu/tests/official/sample/examples/RC-EDA/RC-EDA-FuiteDeGaz-AliceGregoireNormand.01.json"
        ))
        .expect("the official example"),
    )
    .expect("JSON");
    let route = secourir_cisu::Route {
        sender_id: SAMU_ACKS.into(),
        recipient_id: PLATFORM.into(),
    };
    let sent_at = hub_role::now();
    let params = secourir_cisu::SendParams {
        local_id: format!("gaz-{}", std::process::id()),
        sent_at,
        expires_at: sent_at + chrono::TimeDelta::hours(1),
        kind: secourir_cisu::Kind::Report,
        status: secourir_cisu::Status::Exercise,
    };
    let theirs =
        secourir_cisu::envelope::wrap(&route, &params, "createCase", example["createCase"].clone())
            .expect("the partner's message");
    if let Some(stand_ins) = &stand_ins {
        stand_ins.publish_as(SAMU_ACKS, &theirs).await;
    }
    let row = wait_text(&browser, "#received tbody tr", "Fuite de gaz").await;
    assert!(row.contains(SAMU_ACKS), "{row}");

    // The broker goes down, as the hub's would.
    if let Some(stand_ins) = stand_ins.take() {
        stand_ins.stop().await;
    }
    tokio::task::block_in_place(|| broker.kill());
    wait_text_long(&browser, "#hub-state", "Hub Santé injoignable").await;

    // A second caller; the case is sent without the voice, and waits on disk.
    let _second = Reaped(platform.caller_until_hung_up("0688888888", 43.2965, 5.3698));
    wait_text(&browser, "#queue tbody tr", "0688888888").await;
    press(&browser, "\u{E007}").await;
    wait_text(&browser, "#cur-duration", "en conversation depuis").await;
    let second = platform.wait_call("the second call answered", |c| {
        c["caller"] == "0688888888" && !c["answered_at"].is_null()
    })["call"]
        .as_u64()
        .expect("number");
    click(&browser, "#case15").await;
    wait_text(&browser, "#cur-cases", "hub injoignable").await;
    screenshot(&browser, "console-case-waiting").await;

    // 30 s later the broker is back, and so are the hub's processes.
    tokio::time::sleep(Duration::from_secs(30)).await;
    tokio::task::block_in_place(|| broker.start_again());
    let stand_ins = HubRole::start(&uri, seen.clone()).await;
    wait_text_long(&browser, "#cur-cases", "reçu par le SAMU").await;
    let cases = received(&seen);
    let ids: Vec<&str> = cases
        .iter()
        .map(|c| c["distributionID"].as_str().expect("id"))
        .collect();
    let again: Vec<&&str> = ids
        .iter()
        .filter(|id| id.contains(&format!("_{second}-15-")))
        .collect();
    assert_eq!(again.len(), 1, "delivered once after the outage: {ids:?}");
    assert_eq!(
        create_case(cases.last().expect("a case"))["caseId"],
        format!("fr.fire.sdis13.{second}")
    );
    // What the call-taker learns next changes the nature of fact: the SAMU gets an update.
    click(&browser, "#qualification option[value='C04.02.01']").await;
    wait_text(&browser, "#cases tbody tr", "(mise à jour)").await;
    let row = wait_text_long(&browser, "#cases tbody tr:first-child", "reçu par le SAMU").await;
    assert!(row.contains("mise à jour"), "{row}");
    let last = received(&seen).pop().expect("the update");
    assert_eq!(last["distributionKind"], "Update");
    assert_eq!(
        create_case(&last)["qualification"]["whatsHappen"]["code"],
        "C04.02.01"
    );
    press(&browser, "f").await;
    wait_text(&browser, "#current-none", "Pas d'appel en cours").await;
    let detail = platform.get(&format!("/api/calls/{second}"));
    let states: Vec<&str> = detail["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| c["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["acked", "acked"], "{detail:#}");
    stand_ins.stop().await;
    browser.close().await.unwrap();
}

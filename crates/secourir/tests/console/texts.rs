//! A caller who writes, answered from the console in Chromium with the keyboard alone.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_taker_answers_a_caller_who_writes_with_a_ready_made_phrase() {
    let platform = Platform::start();
    let driver = Driver::start();
    let browser = driver.browser("texts").await;
    log_in(&browser, &platform, "ota-13-1").await;
    wait_text(&browser, "#who", "CTA-CODIS Bouches-du-Rhône").await;
    click(&browser, "#pause").await;
    wait_text(&browser, "#my-status", "en pause").await;

    // A deaf caller in Marseille writes through a DEC112 chat app, with the phone's position.
    let port = free_port();
    let caller = sipp(&platform.dir.path().join("texter"))
        .args(["-sf", &format!("{SIPP_DIR}/texter.xml"), "-m", "1"])
        .args(["-key", "caller", "+33612345679"])
        .args(["-key", "lat", "43.2965", "-key", "lon", "5.3698"])
        .args([
            "-key",
            "first",
            "Mon voisin est tombé, je ne peux pas parler",
        ])
        .args(["-key", "second", "Bâtiment B, 2e étage"])
        .args(["-p", &port.to_string()])
        .arg(format!("127.0.0.1:{}", platform.sip))
        .spawn()
        .expect("sipp runs");
    let row = wait_text(&browser, "#queue tbody tr", "écrit").await;
    assert!(
        row.contains("+33612345679") && row.contains("Marseille"),
        "{row}"
    );

    // Enter takes it: no phone rings, the conversation is in hand at once.
    press(&browser, "\u{E007}").await;
    wait_text(&browser, "#chat-lines", "je ne peux pas parler").await;
    wait_text(&browser, "#cur-commune", "Marseille").await;
    screenshot(&browser, "console-text").await;
    // 1 sends the first question; the caller, who waits for a question, answers and closes the
    // conversation from their app: it leaves the call-taker's hands.
    press(&browser, "1").await;
    wait_text(&browser, "#current-none", "Pas d'appel en cours").await;
    wait_ok(caller, "the caller's side of the conversation");
    let call = platform.wait_call("the written conversation on record", |c| {
        c["caller"] == "+33612345679" && c["transcript_sha256"].is_string()
    });
    assert_eq!(call["call_taker"], "ota-13-1");
    let detail = platform.get(&format!("/api/calls/{}", call["call"]));
    let said: Vec<(&str, &str)> = detail["transcript"]
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l["author"] != "platform")
        .map(|l| (l["author"].as_str().unwrap(), l["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        said,
        [
            ("caller", "Mon voisin est tombé, je ne peux pas parler"),
            ("call_taker", "Où êtes-vous ?"),
            ("caller", "Bâtiment B, 2e étage"),
        ],
        "{detail}"
    );
    browser.close().await.unwrap();
}

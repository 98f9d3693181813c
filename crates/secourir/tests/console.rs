//! The console and the supervision room in a real browser: headless Chromium (Debian's
//! `chromium` and `chromium-driver`) driven through WebDriver, against the platform and SIPp
//! phones and callers on loopback. Screenshots land in `target/tmp/screenshots/`.

mod common;

// Tests in files of their own beside this one, named by `#[path]` (see telephony.rs).
#[path = "console/cases.rs"]
mod cases;
#[path = "console/texts.rs"]
mod texts;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

struct Driver {
    child: Child,
    port: u16,
    _profiles: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        // Its own process group, so that the browsers it starts go with it even when a test
        // fails before closing them.
        let child = Command::new("chromedriver")
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (scripts/setup installs chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver {
            child,
            port,
            _profiles: tempfile::tempdir().expect("profiles"),
        }
    }

    async fn browser(&self, name: &str) -> Client {
        self.browser_trusting(name, None).await
    }

    /// A browser that also trusts the certificate whose key has this SPKI hash, and no other
    /// that its own roots do not vouch for.
    async fn browser_trusting(&self, name: &str, spki_sha256: Option<&str>) -> Client {
        let profile = self._profiles.path().join(name);
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1366,768".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if let Some(spki) = spki_sha256 {
            args.push(format!("--ignore-certificate-errors-spki-list={spki}"));
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        // Plain HTTP to the local chromedriver: no TLS stack needed.
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(group) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn log_in(browser: &Client, platform: &Platform, login: &str) {
    browser.goto(&platform.url("/")).await.expect("page");
    let field = browser
        .wait()
        .for_element(Locator::Css("#login"))
        .await
        .expect("login form");
    field.send_keys(login).await.expect("type");
    if let Some(code) = one_time_code(login) {
        browser
            .find(Locator::Css("#code"))
            .await
            .expect("code field")
            .send_keys(&code)
            .await
            .expect("type the code");
    }
    browser
        .find(Locator::Css("#password"))
        .await
        .expect("password")
        .send_keys("secourir\u{E007}")
        .await
        .expect("type and Enter");
}

/// Waits until `css` matches an element whose text contains `text`.
async fn wait_text(browser: &Client, css: &str, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(elements) = browser.find_all(Locator::Css(css)).await {
            for e in elements {
                if let Ok(t) = e.text().await
                    && t.contains(text)
                {
                    return t;
                }
            }
        }
        assert!(Instant::now() < deadline, "no {css} with {text:?}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Types `keys` on the page, as a call-taker at the keyboard does.
async fn press(browser: &Client, keys: &str) {
    browser
        .find(Locator::Css("body"))
        .await
        .expect("the page")
        .send_keys(keys)
        .await
        .expect("keys typed");
}

/// Clicks the first element matching `css`.
async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click on {css}: {e}"));
}

async fn screenshot(browser: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let png = browser.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_taker_logs_in_picks_a_call_with_the_keyboard_talks_and_ends_it() {
    let platform = Platform::start();
    let driver = Driver::start();
    let browser = driver.browser("ota").await;

    // A wrong password is refused without saying which part was wrong.
    browser.goto(&platform.url("/")).await.expect("page");
    browser
        .wait()
        .for_element(Locator::Css("#login"))
        .await
        .expect("form");
    browser
        .find(Locator::Css("#login"))
        .await
        .unwrap()
        .send_keys("ota-13-1")
        .await
        .unwrap();
    browser
        .find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys("faux\u{E007}")
        .await
        .unwrap();
    wait_text(&browser, "#login-error", "Identifiants invalides").await;
    browser.refresh().await.unwrap();
    log_in(&browser, &platform, "ota-13-1").await;
    wait_text(&browser, "#who", "CTA-CODIS Bouches-du-Rhône").await;

    let phone = free_port();
    platform.register("ota-13-1", phone);
    let answering = platform.call_taker("ota-13-1", phone, 1);
    click(&browser, "#pause").await;
    wait_text(&browser, "#my-status", "en pause").await;

    let caller = platform.caller_until_hung_up("0655555555", 43.2965, 5.3698);
    let row = wait_text(&browser, "#queue tbody tr", "Marseille").await;
    assert!(
        row.contains("0655555555") && row.contains("PIDF-LO") && row.contains("normale"),
        "{row}"
    );
    screenshot(&browser, "console-queue").await;

    // Enter picks the selected call; the phone rings, answers, the call is in progress.
    press(&browser, "\u{E007}").await;
    wait_text(&browser, "#message", "pris").await;
    // The result is in sight at 1366×768, above the fold.
    let in_sight = browser
        .execute(
            "const r = document.getElementById('message').getBoundingClientRect(); \
             return r.top >= 0 && r.bottom <= window.innerHeight;",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(in_sight, json!(true), "the message is below the fold");
    wait_text(&browser, "#cur-commune", "Marseille").await;
    wait_text(&browser, "#my-status", "en communication").await;
    // The duration counts from the answer; the wait before it is said apart.
    wait_text(&browser, "#cur-duration", "en conversation depuis").await;
    browser
        .wait()
        .for_element(Locator::Css("#caller-dot"))
        .await
        .expect("the caller is drawn on the département");
    // An AML SMS from the caller's phone moves the point while the call goes on.
    let response = ureq::post(&platform.url("/api/aml"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .content_type("text/plain")
        .send("A\"ML=1;lt=+43.28500;lg=+5.38000;rd=8;top=20261122143000;lc=68;pm=G;si=208150000000001;ei=356708041746734;mcc=208;mnc=15;ml=124;cs=+33655555555")
        .expect("AML accepted");
    assert_eq!(response.status().as_u16(), 200);
    wait_text(&browser, "#cur-loc", "AML").await;
    browser
        .wait()
        .for_element(Locator::Css("#accuracy-circle"))
        .await
        .expect("the circle of uncertainty is drawn around the caller");
    wait_text(&browser, "#cur-loc", "43.28500").await;
    screenshot(&browser, "console-call").await;
    assert!(
        browser
            .find_all(Locator::Css("#queue tbody tr"))
            .await
            .unwrap()
            .is_empty(),
        "the picked call left the queue"
    );

    // F ends it; the caller is hung up; the call is on record as completed.
    press(&browser, "f").await;
    wait_text(&browser, "#message", "Appel terminé").await;
    wait_ok(caller, "caller");
    wait_ok(answering, "call-taker phone");
    let call = platform.wait_call("the console's call", |c| c["outcome"] == "completed");
    assert_eq!(call["call_taker"], "ota-13-1");
    assert_eq!(call["reason"], "l'opérateur a raccroché");
    wait_text(&browser, "#my-status", "fin d'appel").await;
    wait_text(&browser, "#recent tbody tr", "traité").await;
    // A result does not stay once stale.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !browser
        .find(Locator::Css("#message"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the message stays");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_call_takers_pick_the_same_call_and_exactly_one_wins() {
    let platform = Platform::start();
    let driver = Driver::start();
    let first = driver.browser("first").await;
    let second = driver.browser("second").await;
    log_in(&first, &platform, "ota-13-1").await;
    log_in(&second, &platform, "ota-13-2").await;
    let mut phones = Vec::new();
    for (browser, login) in [(&first, "ota-13-1"), (&second, "ota-13-2")] {
        wait_text(browser, "#who", "CTA-CODIS").await;
        let phone = free_port();
        platform.register(login, phone);
        phones.push(Reaped(platform.call_taker(login, phone, 1)));
        click(browser, "#pause").await;
        wait_text(browser, "#my-status", "en pause").await;
    }
    // Each sees the other among the colleagues of the CTA, with their state.
    wait_text(&first, "#colleagues tbody tr", "ota-13-2").await;
    wait_text(&first, "#colleagues tbody tr", "en pause").await;
    wait_text(&second, "#colleagues tbody tr", "ota-13-1").await;
    let caller = platform.caller_until_hung_up("0666666666", 43.2965, 5.3698);
    wait_text(&first, "#queue tbody tr", "0666666666").await;
    wait_text(&second, "#queue tbody tr", "0666666666").await;
    // Each console holds its own "Prendre" button, then both are pressed at the same instant.
    // The winner's pick takes the row off the other console at once, so a WebDriver click on
    // the loser's button could find it gone; pressing the held buttons sends both picks every
    // time, and the platform must refuse exactly one.
    for browser in [&first, &second] {
        let held = browser
            .execute(
                "window.pickButton = document.querySelector('#queue tbody tr button.pick'); return window.pickButton !== null;",
                vec![],
            )
            .await
            .expect("script");
        assert_eq!(held, json!(true));
    }
    let press = "window.pickButton.click(); return true;";
    let (a, b) = tokio::join!(first.execute(press, vec![]), second.execute(press, vec![]));
    a.expect("first press");
    b.expect("second press");
    let one = wait_text(&first, "#message", "Appel").await;
    let two = wait_text(&second, "#message", "Appel").await;
    let wins = [&one, &two].iter().filter(|m| m.contains("pris :")).count();
    let refusals = [&one, &two]
        .iter()
        .filter(|m| m.contains("déjà pris"))
        .count();
    assert_eq!((wins, refusals), (1, 1), "{one} / {two}");
    // The loser's queue is empty at once.
    for browser in [&first, &second] {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !browser
            .find_all(Locator::Css("#queue tbody tr"))
            .await
            .unwrap()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "the call stayed in a queue");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let winner = if one.contains("pris :") {
        &first
    } else {
        &second
    };
    wait_text(winner, "#my-status", "en communication").await;
    click(winner, "#hangup").await;
    wait_ok(caller, "caller");
    first.close().await.unwrap();
    second.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_supervisor_sees_the_map_and_turns_crisis_mode_on() {
    let platform = Platform::start();
    let driver = Driver::start();
    let browser = driver.browser("chef").await;
    log_in(&browser, &platform, "chef-13").await;
    browser
        .wait()
        .for_element(Locator::Css("#france path[data-dep='13']"))
        .await
        .expect("the map of France");
    wait_text(&browser, "#ctas tbody tr", "Bouches-du-Rhône").await;
    // The load in words, not by colour alone.
    wait_text(&browser, "#ctas tbody tr", "calme").await;
    // Mutual aid in figures: the shares of offered calls, the reserve, what can be lent, what
    // is lent, and what was left idle while a call waited elsewhere.
    for header in [
        "≤ 15 s des offerts",
        "≤ 60 s des offerts",
        "Réserve",
        "Prêtables",
        "Prêtés",
        "restés libres",
    ] {
        wait_text(&browser, "#ctas thead", header).await;
    }
    let cells = browser
        .execute(
            "return document.querySelector('#ctas tbody tr').cells.length;",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(cells, json!(17));

    // A call waiting in the Bouches-du-Rhône colours the département. Nobody answers it, so
    // the caller stays queued until the test ends (a caller hanging up after a few seconds
    // would leave the map only a short window, missed when the machine is loaded).
    let _caller = Reaped(platform.caller_until_hung_up("0677777777", 43.2965, 5.3698));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let class = browser
            .find(Locator::Css("#france path[data-dep='13']"))
            .await
            .unwrap()
            .attr("class")
            .await
            .unwrap()
            .unwrap_or_default();
        if class.contains("l1") || class.contains("l2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "département 13 not coloured: {class}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // With a call waiting, the room is redrawn four times a second; its CTA rows are updated
    // in place, so that the row read now is the same node after several pictures.
    let clock_and_row = "return [document.getElementById('clock').textContent, \
         document.querySelector('#ctas tbody tr') === (window.firstCta ??= document.querySelector('#ctas tbody tr'))];";
    let first = browser
        .execute(clock_and_row, vec![])
        .await
        .expect("script");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = browser
            .execute(clock_and_row, vec![])
            .await
            .expect("script");
        assert_eq!(now[1], json!(true), "the CTA table was rebuilt");
        if now[0] != first[0] {
            break;
        }
        assert!(Instant::now() < deadline, "the room's clock did not move");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser
        .find(Locator::Css("#crisis-dep"))
        .await
        .unwrap()
        .send_keys("13")
        .await
        .unwrap();
    click(&browser, "#crisis-form button[type='submit']").await;
    // Nothing changes before the supervisor confirms what it does.
    wait_text(
        &browser,
        "#crisis-confirm",
        "Activer le mode crise pour le 13",
    )
    .await;
    click(&browser, "#crisis-confirm-yes").await;
    wait_text(
        &browser,
        "#journal li",
        "chef-13 : mode crise activé pour le 13",
    )
    .await;
    wait_text(&browser, "#crisis-list", "13 Bouches-du-Rhône").await;
    screenshot(&browser, "supervision-map").await;
    let class = browser
        .find(Locator::Css("#france path[data-dep='13']"))
        .await
        .unwrap()
        .attr("class")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(class.contains("crisis"), "{class}");
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_comes_alive_within_seconds() {
    let platform = Platform::demo(&["--calls-per-second", "20"]);
    let driver = Driver::start();
    let browser = driver.browser("demo").await;
    log_in(&browser, &platform, "chef-13").await;
    browser
        .wait()
        .for_element(Locator::Css("#france path[data-dep='75']"))
        .await
        .expect("the map of France");
    // Simulated calls are answered by simulated call-takers somewhere in France within seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answered: u64 = browser
            .execute(
                "return [...document.querySelectorAll('#ctas tbody tr td:nth-child(8)')].map(td => parseInt((td.textContent.match(/de (\\d+)/) || [0, 0])[1])).reduce((a, b) => a + b, 0);",
                vec![],
            )
            .await
            .expect("script")
            .as_u64()
            .unwrap_or(0);
        let busy: u64 = browser
            .execute(
                "return [...document.querySelectorAll('#ctas tbody tr td:nth-child(6)')].map(td => parseInt(td.textContent)).reduce((a, b) => a + b, 0);",
                vec![],
            )
            .await
            .expect("script")
            .as_u64()
            .unwrap_or(0);
        if answered > 0 && busy > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not come alive: {answered} answered, {busy} busy"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    screenshot(&browser, "demo-supervision").await;
    let calls = platform.calls();
    assert!(calls.len() >= 20, "{} calls", calls.len());
    assert!(calls.iter().all(|c| c["trunk"] == "simulation"));
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_caller_is_called_back_from_the_console() {
    let platform = Platform::start();
    let driver = Driver::start();
    let browser = driver.browser("rappel").await;
    log_in(&browser, &platform, "ota-13-2").await;
    wait_text(&browser, "#who", "Bouches-du-Rhône").await;
    click(&browser, "#pause").await;
    wait_text(&browser, "#my-status", "en pause").await;

    // Nobody available in the CTA: the caller gives up after 2 s of announcement; the
    // call-back list of the open console gains the call without a reload.
    let caller = platform.caller("0612121212", 43.2965, 5.3698, 2_000);
    wait_ok(caller, "impatient caller");
    let row = wait_text(&browser, "#callbacks tbody tr", "0612121212").await;
    assert!(row.contains("à rappeler"), "{row}");

    // The same number calls again: its row in the queue says it is to be called back.
    let again = Reaped(platform.caller_until_hung_up("0612121212", 43.2965, 5.3698));
    let queued = wait_text(&browser, "#queue tbody tr", "0612121212").await;
    assert!(queued.contains("à rappeler (appel"), "{queued}");
    drop(again);

    // Enter on the row's button: "Rappeler", then "Fait". The row is found again until the
    // button shows the expected label, since the list refreshes on its own.
    let press = |label: &'static str| {
        let browser = browser.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                for row in browser
                    .find_all(Locator::Css("#callbacks tbody tr"))
                    .await
                    .unwrap_or_default()
                {
                    if !row.text().await.unwrap_or_default().contains("0612121212") {
                        continue;
                    }
                    if let Ok(button) = row.find(Locator::Css("button")).await
                        && button.text().await.is_ok_and(|t| t == label)
                        && button.send_keys("\u{E007}").await.is_ok()
                    {
                        return;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "no call-back row for 0612121212 with {label:?}"
                );
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    };
    press("Rappeler").await;
    wait_text(
        &browser,
        "#callbacks tbody tr",
        "rappel en cours (ota-13-2)",
    )
    .await;
    screenshot(&browser, "console-callbacks").await;
    press("Fait").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut listed = false;
        for row in browser
            .find_all(Locator::Css("#callbacks tbody tr"))
            .await
            .unwrap()
        {
            listed |= row.text().await.unwrap_or_default().contains("0612121212");
        }
        if !listed {
            break;
        }
        assert!(Instant::now() < deadline, "the call-back is still listed");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // The first of the number's two calls, the one that was abandoned.
    let call = platform.wait_call("the abandoned call", |c| {
        c["caller"] == "0612121212" && c["outcome"] == "abandoned"
    });
    let trail = platform.trail(&call["call"]);
    for step in ["rappel pris par ota-13-2", "rappel fait par ota-13-2"] {
        assert!(trail.iter().any(|s| s == step), "no {step:?} in {trail:?}");
    }
    browser.close().await.unwrap();
}

/// Over HTTPS the console works as in clear: the call-taker logs in, the live view (a `wss:`
/// WebSocket) shows a caller, and the session cookie never reaches the page's scripts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_over_https() {
    let pki = TestPki::new();
    let platform = Platform::over_tls(&pki, &[]);
    let driver = Driver::start();
    let browser = driver
        .browser_trusting("https", Some(&pki.spki_sha256))
        .await;
    log_in(&browser, &platform, "ota-13-1").await;
    wait_text(&browser, "#who", "CTA-CODIS Bouches-du-Rhône").await;
    let scheme = browser
        .execute("return location.protocol + ' ' + document.cookie;", vec![])
        .await
        .expect("script");
    assert_eq!(
        scheme,
        json!("https: "),
        "the page or its cookie is not as it should be"
    );

    let phone = free_port();
    platform.register("ota-13-1", phone);
    let _answering = Reaped(platform.call_taker("ota-13-1", phone, 1));
    click(&browser, "#pause").await;
    wait_text(&browser, "#my-status", "en pause").await;
    let _caller = Reaped(platform.caller_until_hung_up("0655555556", 43.2965, 5.3698));
    let row = wait_text(&browser, "#queue tbody tr", "Marseille").await;
    assert!(row.contains("0655555556"), "{row}");
    screenshot(&browser, "console-https").await;
    browser.close().await.unwrap();
}

/// Types `text` into the summary box of the call in hand.
async fn write_note(browser: &Client, text: &str) {
    browser
        .find(Locator::Css("#summary"))
        .await
        .expect("summary box")
        .send_keys(text)
        .await
        .expect("type the note");
}

/// A call's note belongs to that call: the note written on one caller is not carried into the
/// hand-back of the next. (A call-taker of CTA 13 wrote about a man taken ill, ended that
/// call, answered a Var caller for CTA 83 and handed them back: the hand-back carried both
/// notes, half of it about another person.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_goes_with_its_own_call_and_never_into_the_next_caller_s_hand_back() {
    let platform = Platform::start();
    let driver = Driver::start();
    let browser = driver.browser("note").await;
    log_in(&browser, &platform, "ota-13-1").await;
    wait_text(&browser, "#who", "Bouches-du-Rhône").await;
    let phone = free_port();
    platform.register("ota-13-1", phone);
    let _answering = Reaped(platform.call_taker("ota-13-1", phone, 2));
    // Someone is signed in at the Var's CTA, so that a call can be handed back to it.
    let var_phone = free_port();
    platform.register("ota-83-1", var_phone);
    platform.set_state("ota-83-1", "paused");
    click(&browser, "#pause").await;
    wait_text(&browser, "#my-status", "en pause").await;

    // First caller, in Marseille: picked, a note written, the call ended.
    let _first = Reaped(platform.caller_until_hung_up("0611111111", 43.2965, 5.3698));
    wait_text(&browser, "#queue tbody tr", "0611111111").await;
    click(&browser, "#queue tbody tr button.pick").await;
    wait_text(&browser, "#my-status", "en communication").await;
    write_note(
        &browser,
        "Malaise sur la voie publique, homme 60 ans, conscient",
    )
    .await;
    click(&browser, "#hangup").await;
    wait_text(&browser, "#message", "Appel terminé").await;
    click(&browser, "#pause").await;
    wait_text(&browser, "#my-status", "en pause").await;

    // Second caller, in Toulon: a Var call picked by CTA 13, then handed back with its note.
    let _second = Reaped(platform.caller_until_hung_up("0622222222", 43.1242, 5.9280));
    let row = wait_text(&browser, "#queue tbody tr", "0622222222").await;
    assert!(row.contains("Toulon"), "{row}");
    click(&browser, "#queue tbody tr button.pick").await;
    wait_text(&browser, "#my-status", "en communication").await;
    wait_text(&browser, "#cur-caller", "0622222222").await;
    let left = browser
        .find(Locator::Css("#summary"))
        .await
        .expect("summary box")
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default();
    assert_eq!(left, "", "the summary box holds another caller's note");
    write_note(
        &browser,
        "Feu de broussailles, route de Vidauban, pas de victime",
    )
    .await;
    press(&browser, "r").await;
    wait_text(&browser, "#message", "rendu au CTA d'origine").await;
    let call = platform.wait_call("the Var call", |c| c["caller"] == "0622222222");
    let trail = platform.trail(&call["call"]);
    let handed = trail
        .iter()
        .find(|s| s.starts_with("rendu au cta-83"))
        .unwrap_or_else(|| panic!("no hand-back in {trail:?}"));
    assert_eq!(
        handed,
        "rendu au cta-83 par ota-13-1 (cta-13) : Feu de broussailles, route de Vidauban, pas de victime"
    );
    browser.close().await.unwrap();
}

/// A room supervisor acts on the zones their own CTA serves: CTA 13's supervisor puts the
/// Bouches-du-Rhône in crisis mode, but not La Réunion or Corse-du-Sud, and is told so where
/// they read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_sets_crisis_mode_only_for_the_zones_of_their_own_cta() {
    let platform = Platform::start();
    let driver = Driver::start();
    let browser = driver.browser("chef-scope").await;
    log_in(&browser, &platform, "chef-13").await;
    browser
        .wait()
        .for_element(Locator::Css("#france path[data-dep='13']"))
        .await
        .expect("the map of France");
    let field = browser.find(Locator::Css("#crisis-dep")).await.unwrap();
    for departement in ["974", "2A"] {
        field.clear().await.unwrap();
        field.send_keys(departement).await.unwrap();
        click(&browser, "#crisis-form button[type='submit']").await;
        click(&browser, "#crisis-confirm-yes").await;
        let said = wait_text(&browser, "#crisis-result", departement).await;
        assert!(
            said.contains("Refusé") && said.contains("votre CTA"),
            "{said}"
        );
    }
    field.clear().await.unwrap();
    field.send_keys("13").await.unwrap();
    click(&browser, "#crisis-form button[type='submit']").await;
    // Cancelled, nothing is asked of the platform.
    click(&browser, "#crisis-confirm-no").await;
    wait_text(&browser, "#crisis-result", "non activé").await;
    click(&browser, "#crisis-form button[type='submit']").await;
    click(&browser, "#crisis-confirm-yes").await;
    wait_text(&browser, "#crisis-result", "Mode crise activé pour le 13").await;
    // Asked straight from the page's session, the API says the same; the room's picture shows
    // only the 13 in crisis.
    let codes = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             Promise.all(['974', '2A', '13'].map((d) => fetch(`/api/supervision/crisis/${d}`,
               { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{\"on\": true}' })
               .then((r) => r.status))).then(done);",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(codes, json!([403, 403, 204]));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let in_crisis = browser
            .execute(
                "return snapshot ? snapshot.zones.filter((z) => z.crisis).map((z) => z.departement) : null;",
                vec![],
            )
            .await
            .expect("script");
        if in_crisis == json!(["13"]) {
            break;
        }
        assert!(Instant::now() < deadline, "zones in crisis: {in_crisis}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_whose_session_ended_elsewhere_says_so_and_stops() {
    let platform = Platform::start();
    let driver = Driver::start();
    let first = driver.browser("first-screen").await;
    let second = driver.browser("second-screen").await;
    for screen in [&first, &second] {
        log_in(screen, &platform, "ota-13-1").await;
        wait_text(screen, "#who", "CTA-CODIS Bouches-du-Rhône").await;
    }
    // Signed out on the first screen: the second one, still showing the console, says at once
    // that its session is over and asks to sign in again, rather than freezing.
    click(&first, "#logout").await;
    wait_text(&second, "#login-error", "Session terminée").await;
    let shown = |css: &'static str| {
        let second = &second;
        async move {
            second
                .find(Locator::Css(css))
                .await
                .expect(css)
                .is_displayed()
                .await
                .expect("displayed")
        }
    };
    assert!(shown("#login-view").await, "the sign-in form is shown");
    assert!(!shown("#console-view").await, "the stale console is gone");
    assert!(!shown("#link-lost").await, "no reconnection is attempted");
    // Signing in again brings the console back on that screen.
    let password = second.find(Locator::Css("#password")).await.unwrap();
    second
        .find(Locator::Css("#login"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    second
        .find(Locator::Css("#login"))
        .await
        .unwrap()
        .send_keys("ota-13-1")
        .await
        .unwrap();
    password.send_keys("secourir\u{E007}").await.unwrap();
    wait_text(&second, "#who", "CTA-CODIS Bouches-du-Rhône").await;
    for screen in [first, second] {
        screen.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_a_usable_position_is_said_unknown_and_never_drawn_as_located() {
    let platform = Platform::start();
    let driver = Driver::start();
    let browser = driver.browser("bspp").await;
    log_in(&browser, &platform, "ota-bspp-1").await;
    wait_text(&browser, "#who", "BSPP").await;
    let phone = free_port();
    platform.register("ota-bspp-1", phone);
    let answering = platform.call_taker("ota-bspp-1", phone, 1);
    click(&browser, "#pause").await;
    wait_text(&browser, "#my-status", "en pause").await;
    // A position off the territory: the call falls back to the national default (Paris).
    let caller = platform.caller_until_hung_up("0655555577", 0.0, 0.0);
    let row = wait_text(&browser, "#queue tbody tr", "0655555577").await;
    assert!(row.contains("position inconnue"), "{row}");
    press(&browser, "\u{E007}").await;
    wait_text(
        &browser,
        "#cur-loc",
        "Position inconnue : demandez l'adresse",
    )
    .await;
    wait_text(&browser, "#my-status", "en communication").await;
    assert!(
        browser
            .find_all(Locator::Css("#caller-dot, #accuracy-circle"))
            .await
            .unwrap()
            .is_empty(),
        "a default position is drawn as if the caller were there"
    );
    press(&browser, "f").await;
    wait_text(&browser, "#message", "Appel terminé").await;
    wait_ok(caller, "caller");
    wait_ok(answering, "call-taker phone");
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_take_button_stays_in_reach_on_a_narrow_screen() {
    let platform = Platform::start();
    let driver = Driver::start();
    let browser = driver.browser("narrow").await;
    log_in(&browser, &platform, "ota-13-1").await;
    wait_text(&browser, "#who", "CTA-CODIS Bouches-du-Rhône").await;
    click(&browser, "#pause").await;
    wait_text(&browser, "#my-status", "en pause").await;
    let _caller = Reaped(platform.caller_until_hung_up("0655555588", 43.2965, 5.3698));
    wait_text(&browser, "#queue tbody tr", "0655555588").await;
    // 1024 px wide, as a screen at 125 % zoom or a small one: the button is not under the map.
    browser.set_window_size(1024, 768).await.expect("resize");
    let reachable = browser
        .execute(
            "const b = document.querySelector('#queue tbody tr button'); \
             b.scrollIntoView({ block: 'center', inline: 'center' }); \
             const r = b.getBoundingClientRect(); \
             const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2); \
             return at === b || b.contains(at);",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(reachable, json!(true), "the take button is covered");
    click(&browser, "#queue tbody tr button").await;
    wait_text(&browser, "#message", "Appel").await;
    browser.close().await.unwrap();
}

/// The serious and critical WCAG 2 A/AA violations axe-core finds in the page as it is.
async fn accessibility_violations(browser: &Client) -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/tools/axe-core-4.10.2/axe.min.js"
    );
    let axe = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (scripts/setup installs axe-core)"));
    browser
        .execute(&format!("{axe}\nreturn true;"), vec![])
        .await
        .expect("axe-core loads");
    let found = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] }).then((r) => done(
               r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
                 .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)));",
            vec![],
        )
        .await
        .expect("axe-core runs");
    serde_json::from_value(found).expect("a list of violations")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_the_room_have_no_serious_accessibility_violation() {
    let platform = Platform::start();
    let driver = Driver::start();
    let ota = driver.browser("a11y-ota").await;
    log_in(&ota, &platform, "ota-13-1").await;
    wait_text(&ota, "#who", "CTA-CODIS Bouches-du-Rhône").await;
    click(&ota, "#pause").await;
    wait_text(&ota, "#my-status", "en pause").await;
    let _caller = Reaped(platform.caller_until_hung_up("0655555599", 43.2965, 5.3698));
    wait_text(&ota, "#queue tbody tr", "0655555599").await;
    let console = accessibility_violations(&ota).await;
    let chef = driver.browser("a11y-chef").await;
    log_in(&chef, &platform, "chef-13").await;
    chef.wait()
        .for_element(Locator::Css("#france path[data-dep='13']"))
        .await
        .expect("the map of France");
    wait_text(&chef, "#ctas tbody tr", "Bouches-du-Rhône").await;
    let room = accessibility_violations(&chef).await;
    assert!(
        console.is_empty() && room.is_empty(),
        "console: {console:#?}\nroom: {room:#?}"
    );
    ota.close().await.unwrap();
    chef.close().await.unwrap();
}

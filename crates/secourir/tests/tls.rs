//! SIP over TLS and HTTPS with real peers. Debian's SIPp is built without TLS, so SIPp's phone
//! and caller reach the platform through stunnel (Debian's `stunnel4`, OpenSSL), which checks
//! the platform's certificate against a test CA; the platform sees TLS connections and nothing
//! else. The API is read over HTTPS and is not served in clear. A caller's device that insists on
//! SRTP (Debian's baresip) calls over SIP over TLS.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// stunnel in client mode: each `(accept, connect)` pair turns SIPp's TCP on `accept` into TLS
/// to the platform on `connect`, verifying its certificate. Returns once it listens.
fn stunnel(pki: &TestPki, dir: &Path, services: &[(u16, u16)]) -> Reaped {
    let log = dir.join("stunnel.log");
    let mut conf = format!("foreground = yes\npid =\noutput = {}\n", log.display());
    for (i, (accept, connect)) in services.iter().enumerate() {
        conf.push_str(&format!(
            "[peer{i}]\nclient = yes\naccept = 127.0.0.1:{accept}\nconnect = 127.0.0.1:{connect}\n\
             CAfile = {}\nverifyChain = yes\ncheckIP = 127.0.0.1\n",
            pki.ca.display()
        ));
    }
    let path = dir.join("stunnel.conf");
    std::fs::write(&path, conf).expect("stunnel.conf");
    let child = Command::new("stunnel")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stunnel runs (scripts/setup installs stunnel4)");
    let reaped = Reaped(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Configuration successful") {
            return reaped;
        }
        assert!(Instant::now() < deadline, "stunnel did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_call_over_sip_tls_reaches_a_phone_registered_over_tls() {
    let pki = TestPki::new();
    let platform = Platform::over_tls(&pki, &[]);
    let (phone_side, caller_side) = (free_port(), free_port());
    let _tunnel = stunnel(
        &pki,
        platform.dir.path(),
        &[(phone_side, platform.sips), (caller_side, platform.sips)],
    );

    // The phone registers over TLS and keeps its connection: the platform rings it on it.
    let phone = Reaped(
        sipp(&platform.dir.path().join("phone"))
            .args(["-sf", &format!("{SIPP_DIR}/register-and-stay.xml")])
            .args(["-oocsf", &format!("{SIPP_DIR}/call-taker.xml")])
            .args(["-t", "t1", "-m", "1", "-d", "40000", "-trace_msg"])
            .args(["-s", "ota-13-1", "-au", "ota-13-1", "-ap", "secourir"])
            .args(["-mi", "127.0.0.1", "-mp", &free_media_port().to_string()])
            .arg(format!("127.0.0.1:{phone_side}"))
            .spawn()
            .expect("sipp runs"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !platform.full_log().contains("phone registered") {
        assert!(
            Instant::now() < deadline,
            "the phone did not register over TLS:\n{}",
            platform.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    platform.set_state("ota-13-1", "available");

    // An operator's trunk brings a located call over TLS.
    let caller = sipp(&platform.dir.path().join("caller"))
        .args(["-sf", &format!("{SIPP_DIR}/caller-18.xml"), "-m", "1"])
        .args(["-t", "t1", "-d", "2000"])
        .args(["-key", "lat", "43.2965", "-key", "lon", "5.3698"])
        .args(["-key", "caller", "0611000001"])
        .args(["-mi", "127.0.0.1", "-mp", &free_media_port().to_string()])
        .arg(format!("127.0.0.1:{caller_side}"))
        .spawn()
        .expect("sipp runs");
    wait_ok(caller, "caller over TLS");
    let call = platform.wait_call("the call over TLS completed", |c| {
        c["caller"] == "0611000001" && c["outcome"] == "completed"
    });
    assert_eq!(call["call_taker"], "ota-13-1", "{call}");
    assert_eq!(call["commune"], "Marseille", "{call}");
    drop(phone);
    // The phone was rung on its own TLS connection, not at the TCP address in its Contact.
    let messages = std::fs::read_dir(platform.dir.path().join("phone"))
        .expect("phone dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with("_messages.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    let invite = messages
        .split("INVITE sip:")
        .nth(1)
        .expect("the phone received an INVITE");
    assert!(invite.contains("Via: SIP/2.0/TLS"), "{invite}");

    let log = platform.full_log();
    for secret in ["Authorization", "response=", "nonce=", TOKEN] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn the_api_is_served_over_https_only_with_a_secure_cookie_and_hsts() {
    let pki = TestPki::new();
    let platform = Platform::over_tls(&pki, &[]);

    let response = platform
        .agent
        .get(&platform.url("/api/health"))
        .call()
        .expect("health over HTTPS");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000")
    );

    let login = platform
        .agent
        .post(&platform.url("/api/login"))
        .send_json(json!({ "login": "ota-13-1", "password": "secourir" }))
        .expect("login over HTTPS");
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    // In clear, the port answers nothing an HTTP client can read.
    let clear = ureq::get(&format!("http://127.0.0.1:{}/api/health", platform.http)).call();
    assert!(clear.is_err(), "plain HTTP answered: {clear:?}");

    // A client that does not trust the test CA is refused by its own TLS, as it should be.
    let untrusting = ureq::get(&platform.url("/api/health")).call();
    assert!(untrusting.is_err(), "an unverified certificate was taken");

    let session = cookie.split(';').next().unwrap_or_default();
    let log = platform.full_log();
    assert!(
        !log.contains(session.trim_start_matches("secourir_session=")),
        "the session token is in the log"
    );
}

#[test]
fn a_certificate_that_cannot_be_read_is_refused_at_start_with_the_line_of_the_table() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("tls.toml");
    let text = format!(
        "{}\n[tls]\ncertificate = \"absent.pem\"\nprivate_key = \"absent.key\"\n",
        shipped()
    );
    let line = text.lines().position(|l| l == "[tls]").expect("table") + 1;
    std::fs::write(&config, text).expect("config");
    let output = Command::new(env!("CARGO_BIN_EXE_secourir"))
        .current_dir(dir.path())
        .args(["serve", "--config"])
        .arg(&config)
        .args([
            "--sip",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--api-token",
            TOKEN,
        ])
        .arg("--data-dir")
        .arg(dir.path().join("var"))
        .output()
        .expect("secourir runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("line {line}: certificate ")) && stderr.contains("absent.pem"),
        "{stderr}"
    );
}

fn wav_samples(path: &Path) -> Vec<i16> {
    hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .samples::<i16>()
        .map(Result::unwrap)
        .collect()
}

/// Zero crossings per second of one channel of interleaved samples, and its RMS: a 440 Hz tone
/// crosses 880 times a second; SRTP read as RTP (noise) about 4,000.
fn crossings_and_rms(samples: &[i16], channels: usize, channel: usize) -> (f64, f64) {
    let side: Vec<f64> = samples
        .iter()
        .skip(channel)
        .step_by(channels)
        .map(|&s| f64::from(s))
        .collect();
    let crossings = side
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let seconds = side.len().max(1) as f64 / 8_000.0;
    let rms = (side.iter().map(|v| v * v).sum::<f64>() / side.len().max(1) as f64).sqrt();
    (crossings as f64 / seconds, rms)
}

/// A caller's device that insists on SRTP (baresip, `mediaenc=srtp-mand`) calls over SIP over
/// TLS: the platform answers RTP/SAVP with its own SDES key, the call-taker hears the caller
/// (the recording holds the caller's 440 Hz tone, not noise) and the caller hears the platform.
#[test]
fn a_caller_insisting_on_srtp_over_tls_is_heard_and_hears_the_platform() {
    let pki = TestPki::new();
    let platform = Platform::over_tls(&pki, &[]);
    let phone = free_port();
    platform.register("ota-bspp-1", phone);
    let _answering = Reaped(platform.call_taker("ota-bspp-1", phone, 1));
    platform.set_state("ota-bspp-1", "available");

    let dir = platform.dir.path().join("baresip");
    std::fs::create_dir_all(dir.join("snd")).expect("baresip dir");
    let tone = dir.join("tone.wav");
    let mut wav = hound::WavWriter::create(
        &tone,
        hound::WavSpec {
            channels: 1,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        },
    )
    .expect("tone");
    for i in 0..8_000 * 30 {
        let t = f64::from(i) / 8_000.0;
        wav.write_sample((8_000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16)
            .expect("sample");
    }
    wav.finalize().expect("tone written");
    std::fs::write(
        dir.join("config"),
        format!(
            // net_interface keeps its media on loopback too (by default it takes the address
            // of the default route's interface).
            "poll_method epoll\nnet_interface 127.0.0.1\nsip_listen 127.0.0.1:{}\nsip_cafile {}\n\
             audio_player alsa,null\naudio_alert alsa,null\naudio_source aufile,{}\n\
             module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n\
             module alsa.so\nmodule srtp.so\nmodule sndfile.so\nmodule_app account.so\n\
             module_app menu.so\nsnd_path {}\n",
            free_port(),
            pki.ca.display(),
            tone.display(),
            dir.join("snd").display()
        ),
    )
    .expect("config");
    std::fs::write(
        dir.join("accounts"),
        "<sip:0611223344@127.0.0.1>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMA\n",
    )
    .expect("accounts");
    std::fs::write(dir.join("contacts"), "").expect("contacts");
    let caller = Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .args([
            "-e",
            &format!("/dial sip:18@127.0.0.1:{};transport=tls", platform.sips),
            "-t",
            "12",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("baresip runs (scripts/setup installs baresip-core)");
    let said = String::from_utf8_lossy(&caller.stdout).replace('\r', "\n");
    assert!(
        said.contains("SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)"),
        "{said}"
    );

    let call = platform.wait_call("the SRTP call completed", |c| {
        c["outcome"] == "completed" && c["recording_path"].is_string()
    });
    assert_eq!(call["call_taker"], "ota-bspp-1", "{call}");
    let path = call["recording_path"].as_str().expect("recording");
    let samples = wav_samples(Path::new(path));
    let (crossings, rms) = crossings_and_rms(&samples, 2, 0);
    println!("srtp: the caller's side recorded at {crossings:.0} crossings/s, RMS {rms:.0}");
    assert!(
        (700.0..1_100.0).contains(&crossings) && rms > 1_000.0,
        "the caller's side is not their tone: {crossings:.0} crossings/s, RMS {rms:.0}; {} samples, the other side {:?}\n{said}",
        samples.len(),
        crossings_and_rms(&samples, 2, 1)
    );

    // What the caller's device decrypted: the platform's announcement and the call-taker.
    let heard = std::fs::read_dir(dir.join("snd"))
        .expect("dumps")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with("-dec.wav"))
        .expect("baresip's dump of what it heard");
    let samples = wav_samples(&heard.path());
    let (crossings, rms) = crossings_and_rms(&samples, 1, 0);
    println!("srtp: the caller heard {crossings:.0} crossings/s, RMS {rms:.0}");
    assert!(
        rms > 100.0 && crossings < 3_000.0,
        "the caller heard silence or noise: {crossings:.0} crossings/s, RMS {rms:.0}"
    );
    assert!(
        !platform.full_log().contains("inline:"),
        "a media key in the log"
    );
}

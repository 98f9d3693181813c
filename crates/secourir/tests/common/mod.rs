//! The platform and its SIPp peers, started on free loopback ports for a test and stopped after.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const TOKEN: &str = "test-token";
pub const SIPP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sipp");

/// Media port ranges handed to each test so that parallel tests never share one.
static NEXT_RANGE: AtomicU16 = AtomicU16::new(0);

/// Media ports handed to SIPp peers, below the kernel's ephemeral range (where `free_port`
/// and the platforms' media ranges live) so that a peer's RTP, RTCP and spare ports never
/// collide with a port another test is about to bind.
static NEXT_MEDIA: AtomicU16 = AtomicU16::new(0);

/// The first of four consecutive UDP ports free on 127.0.0.1, for a SIPp peer's `-mp` (SIPp
/// binds the port after it too, and refuses to start if it cannot).
pub fn free_media_port() -> u16 {
    const FIRST: u16 = 20_000;
    const BLOCKS: u16 = 3_000;
    for _ in 0..BLOCKS {
        let block = NEXT_MEDIA.fetch_add(1, Ordering::Relaxed) % BLOCKS;
        let port = FIRST + block * 4;
        let free = (port..port + 4).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok());
        if free {
            return port;
        }
    }
    panic!("no four free media ports on loopback");
}

/// SIP and HTTP ports handed out by this test process, below the kernel's ephemeral range:
/// there no outgoing connection takes one between the moment it is chosen and the moment a
/// platform binds it (a cluster node may wait seconds for its log before it listens).
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A UDP and TCP port both free on 127.0.0.1, from 16,000 to 19,999.
pub fn free_port() -> u16 {
    const FIRST: u16 = 16_000;
    const COUNT: u16 = 4_000;
    let offset = (std::process::id() % u32::from(COUNT)) as u16;
    for _ in 0..COUNT {
        let port = FIRST
            + NEXT_PORT
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_add(offset)
                % COUNT;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port on loopback");
}

pub struct Platform {
    child: Option<Child>,
    pub sip: u16,
    pub http: u16,
    /// SIP over TLS port, 0 without TLS.
    pub sips: u16,
    /// The HTTP client of the API; over TLS it trusts the test CA.
    pub agent: ureq::Agent,
    https: bool,
    pub dir: tempfile::TempDir,
    command: String,
    extra: Vec<String>,
    media_first: u16,
    /// RUST_LOG of the process.
    log_filter: String,
}

impl Platform {
    pub fn start() -> Platform {
        Platform::start_with("serve", &[])
    }

    /// The media port range the platform was given, first and last.
    pub fn media_range(&self) -> (u16, u16) {
        (self.media_first, self.media_first + 399)
    }

    /// `secourir serve` with another configuration file.
    pub fn with_config(config: &Path) -> Platform {
        let config = config.to_string_lossy().into_owned();
        Platform::start_with("serve", &["--config", &config])
    }

    /// `secourir serve` as one node of a cluster whose log is on the NATS servers at `urls`.
    pub fn node(urls: &str, name: &str, site: &str, extra: &[&str]) -> Platform {
        let mut args = vec!["--cluster", urls, "--node", name, "--site", site];
        args.extend_from_slice(extra);
        Platform::start_with("serve", &args)
    }

    /// `secourir serve` with the shipped configuration and a `[tls]` table naming `pki`'s
    /// certificate: SIP over TLS on `sips`, the API over HTTPS only.
    pub fn over_tls(pki: &TestPki, extra: &[&str]) -> Platform {
        let config = pki.dir.join("tls.toml");
        std::fs::write(
            &config,
            format!(
                "{}\n[tls]\ncertificate = {:?}\nprivate_key = {:?}\n",
                shipped(),
                pki.certificate,
                pki.private_key
            ),
        )
        .expect("config written");
        let sips = free_port();
        let mut args = vec![
            "--config".to_owned(),
            config.display().to_string(),
            "--sips".to_owned(),
            format!("127.0.0.1:{sips}"),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut platform = Platform::start_with("serve", &args);
        platform.sips = sips;
        platform.https = true;
        platform.agent = pki.agent();
        platform
    }

    /// `secourir serve` logging with this RUST_LOG.
    pub fn logging(filter: &str) -> Platform {
        let mut platform = Platform::start();
        platform.log_filter = filter.to_owned();
        platform.start_again();
        platform
    }

    /// `secourir demo` instead of `serve`, with these extra arguments.
    pub fn demo(extra: &[&str]) -> Platform {
        Platform::start_with("demo", extra)
    }

    fn start_with(command: &str, extra: &[&str]) -> Platform {
        let dir = tempfile::tempdir().expect("temp dir");
        let n = NEXT_RANGE.fetch_add(1, Ordering::Relaxed);
        let mut platform = Platform {
            child: None,
            sip: free_port(),
            http: free_port(),
            sips: 0,
            agent: ureq::Agent::new_with_defaults(),
            https: false,
            dir,
            command: command.to_owned(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            media_first: 40_000 + n * 400,
            log_filter: "info,rsipstack=warn".to_owned(),
        };
        platform.spawn();
        platform
    }

    /// Starts the process on this platform's ports and data directory; returns once it listens.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("platform.log"))
            .expect("log file");
        let first = self.media_first;
        let mut child = Command::new(env!("CARGO_BIN_EXE_secourir"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .args([
                self.command.as_str(),
                "--sip",
                &format!("127.0.0.1:{}", self.sip),
            ])
            .args(&self.extra)
            .args(["--http", &format!("127.0.0.1:{}", self.http)])
            .args(["--media-ports", &format!("{first}-{}", first + 399)])
            .args(["--api-token", TOKEN])
            .arg("--data-dir")
            .arg(self.dir.path())
            .env("RUST_LOG", &self.log_filter)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("secourir serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.next().and_then(Result::ok).unwrap_or_default();
        assert!(
            ready.contains("Secourir écoute"),
            "platform did not start: {ready:?}"
        );
        // Keep draining so the platform never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The process's resident memory, in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// The process's open file descriptors (Linux).
    pub fn open_descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the process to read its configuration file again (SIGHUP).
    pub fn hang_up(&self) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
    }

    /// Asks the process to stop (SIGTERM) and waits for it; its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the platform did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the platform again on the same data directory, on new ports.
    pub fn start_again(&mut self) {
        self.kill();
        self.sip = free_port();
        self.http = free_port();
        self.spawn();
    }

    /// The platform's whole log so far.
    pub fn full_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("platform.log")).unwrap_or_default()
    }

    /// The end of the platform's log, for failure messages.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("platform.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.http)
    }

    pub fn get(&self, path: &str) -> Value {
        let mut response = self
            .agent
            .get(&self.url(path))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        response.body_mut().read_json().expect("json")
    }

    /// The Prometheus exposition, read with the API token.
    pub fn metrics(&self) -> String {
        self.agent
            .get(&self.url("/metrics"))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .call()
            .expect("metrics")
            .body_mut()
            .read_to_string()
            .expect("text")
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .agent
            .post(&self.url(path))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        let mut response = response;
        let value = response.body_mut().read_json().unwrap_or(Value::Null);
        (status, value)
    }

    pub fn set_state(&self, login: &str, state: &str) {
        let (status, body) = self.post(
            &format!("/api/call-takers/{login}/state"),
            json!({ "state": state }),
        );
        assert_eq!(status, 200, "{body}");
    }

    pub fn calls(&self) -> Vec<Value> {
        match self.get("/api/calls?since=1h") {
            Value::Array(calls) => calls,
            other => panic!("calls: {other}"),
        }
    }

    /// The steps of a call's trail, oldest first.
    pub fn trail(&self, call: &Value) -> Vec<String> {
        self.get(&format!("/api/calls/{call}"))["trail"]
            .as_array()
            .expect("trail")
            .iter()
            .filter_map(|t| t["step"].as_str().map(str::to_owned))
            .collect()
    }

    /// Waits until a call satisfies `done`, and returns it.
    pub fn wait_call(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(call) = self.calls().into_iter().find(|c| done(c)) {
                return call;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:?}\n{}",
                self.calls(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs register.xml for a call-taker from `port`.
    pub fn register(&self, login: &str, port: u16) {
        let status = sipp(&self.dir.path().join(format!("reg-{login}")))
            .args(["-sf", &format!("{SIPP_DIR}/register.xml"), "-m", "1"])
            .args(["-s", login, "-au", login, "-ap", "secourir"])
            .args(["-p", &port.to_string()])
            .arg(format!("127.0.0.1:{}", self.sip))
            .status()
            .expect("sipp runs");
        assert!(status.success(), "registration of {login} failed: {status}");
    }

    /// Starts call-taker.xml answering on `port`, for `calls` calls, whichever node of a
    /// cluster rings it (its replies go where each request came from).
    pub fn phone(&self, login: &str, port: u16, calls: u32) -> Child {
        let media = free_media_port();
        sipp(&self.dir.path().join(format!("phone-{login}")))
            .args(["-sf", &format!("{SIPP_DIR}/call-taker.xml")])
            .args(["-m", &calls.to_string()])
            .args(["-p", &port.to_string(), "-mi", "127.0.0.1"])
            .args(["-mp", &media.to_string()])
            .spawn()
            .expect("sipp runs")
    }

    /// Starts call-taker.xml answering on `port`, for `calls` calls.
    pub fn call_taker(&self, login: &str, port: u16, calls: u32) -> Child {
        let media = free_media_port();
        sipp(&self.dir.path().join(format!("phone-{login}")))
            .args([
                "-sf",
                &format!("{SIPP_DIR}/call-taker.xml"),
                "-m",
                &calls.to_string(),
            ])
            .args([
                "-p",
                &port.to_string(),
                "-mi",
                "127.0.0.1",
                "-mp",
                &media.to_string(),
            ])
            .args(["-rsa", &format!("127.0.0.1:{}", self.sip)])
            .arg(format!("127.0.0.1:{}", self.sip))
            .spawn()
            .expect("sipp runs")
    }

    /// A partner service (the SAMU, say) answering one handed-over call on `port`, as a SIPp
    /// answerer.
    pub fn partner(&self, name: &str, port: u16) -> Child {
        sipp(&self.dir.path().join(name))
            .args(["-sf", &format!("{SIPP_DIR}/call-taker.xml"), "-m", "1"])
            .args([
                "-p",
                &port.to_string(),
                "-mi",
                "127.0.0.1",
                "-mp",
                &free_media_port().to_string(),
            ])
            .arg(format!("127.0.0.1:{}", self.sip))
            .spawn()
            .expect("sipp runs")
    }

    /// Places one located call to 18 that stays until the platform hangs up.
    pub fn caller_until_hung_up(&self, name: &str, lat: f64, lon: f64) -> Child {
        let port = free_port();
        let media = free_media_port();
        sipp(&self.dir.path().join(format!("caller-{name}")))
            .args([
                "-sf",
                &format!("{SIPP_DIR}/caller-18-until-bye.xml"),
                "-m",
                "1",
            ])
            .args([
                "-key",
                "lat",
                &lat.to_string(),
                "-key",
                "lon",
                &lon.to_string(),
            ])
            .args(["-key", "caller", name])
            .args([
                "-p",
                &port.to_string(),
                "-mi",
                "127.0.0.1",
                "-mp",
                &media.to_string(),
            ])
            .arg(format!("127.0.0.1:{}", self.sip))
            .spawn()
            .expect("sipp runs")
    }

    /// Places one located call to 18 lasting `hold_ms` after the answer.
    pub fn caller(&self, name: &str, lat: f64, lon: f64, hold_ms: u32) -> Child {
        let port = free_port();
        let media = free_media_port();
        sipp(&self.dir.path().join(format!("caller-{name}")))
            .args(["-sf", &format!("{SIPP_DIR}/caller-18.xml"), "-m", "1"])
            .args(["-d", &hold_ms.to_string()])
            .args([
                "-key",
                "lat",
                &lat.to_string(),
                "-key",
                "lon",
                &lon.to_string(),
            ])
            .args(["-key", "caller", name])
            .args([
                "-p",
                &port.to_string(),
                "-mi",
                "127.0.0.1",
                "-mp",
                &media.to_string(),
            ])
            .arg(format!("127.0.0.1:{}", self.sip))
            .spawn()
            .expect("sipp runs")
    }
}

/// A peer process that is killed when dropped, so that a failing test leaves none behind.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.kill();
        // A failing test's platform tells what it saw: its temporary directory goes with it.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("platform.log"));
            let log = log.unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- last lines of the platform's log ---\n{}",
                tail.join("\n")
            );
        }
    }
}

pub fn status_and_body(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> (u16, String) {
    let mut response = response.expect("an answer");
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// POSTs to the console API as `login`, logged in afresh.
pub fn console_post(platform: &Platform, login: &str, path: &str, body: Value) -> (u16, String) {
    let response = platform
        .agent
        .post(&platform.url(path))
        .header("Cookie", &session(platform, login))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(body);
    status_and_body(response)
}

/// Logs in to the console API and returns the session cookie.
pub fn session(platform: &Platform, login: &str) -> String {
    let response = platform
        .agent
        .post(&platform.url("/api/login"))
        .send_json(json!({ "login": login, "password": "secourir", "code": one_time_code(login) }))
        .expect("login");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie");
    cookie.split(';').next().unwrap_or_default().to_owned()
}

/// The console's one-time code of now for `login`, as `secourir totp` prints it from the shipped
/// configuration; None for an account without a second factor.
pub fn one_time_code(login: &str) -> Option<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_secourir"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(["totp", login])
        .output()
        .expect("secourir totp runs");
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// SIPp on loopback, bounded in time, writing its logs into `dir`.
pub fn sipp(dir: &Path) -> Command {
    std::fs::create_dir_all(dir).expect("log dir");
    let mut command = Command::new("sipp");
    command
        .current_dir(dir)
        .args(["-i", "127.0.0.1", "-nostdin", "-trace_err"])
        .args(["-timeout", "40s", "-timeout_error"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

pub fn wait_ok(mut child: Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{what} failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A test certificate authority and the platform's certificate for 127.0.0.1 and localhost,
/// signed by it, written as PEM files in a directory of their own.
pub struct TestPki {
    pub dir: PathBuf,
    _dir: tempfile::TempDir,
    /// The CA's certificate, PEM, for peers that verify the platform.
    pub ca: PathBuf,
    ca_der: Vec<u8>,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// Base64 of the SHA-256 of the platform key's SubjectPublicKeyInfo: what Chromium's
    /// `--ignore-certificate-errors-spki-list` trusts, and nothing else.
    pub spki_sha256: String,
}

impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PublicKeyData,
        };
        use sha2::Digest;
        let dir = tempfile::tempdir().expect("pki dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Secourir test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("platform key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("platform params");
        params
            .distinguished_name
            .push(DnType::CommonName, "secourir.test");
        let certificate = params
            .signed_by(&key, &issuer)
            .expect("platform certificate");
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("pem written");
            path
        };
        let spki = sha2::Sha256::digest(key.subject_public_key_info());
        TestPki {
            dir: dir.path().to_owned(),
            ca: write("ca.pem", ca.pem()),
            ca_der: ca.der().to_vec(),
            certificate: write("platform.pem", format!("{}{}", certificate.pem(), ca.pem())),
            private_key: write("platform.key", key.serialize_pem()),
            spki_sha256: data_encoding::BASE64.encode(&spki),
            _dir: dir,
        }
    }

    /// An HTTP client that trusts this CA alone.
    pub fn agent(&self) -> ureq::Agent {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let roots = vec![Certificate::from_der(&self.ca_der).to_owned()];
        ureq::Agent::config_builder()
            .tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::Specific(std::sync::Arc::new(roots)))
                    .build(),
            )
            .build()
            .into()
    }
}

/// The shipped national configuration's text.
pub fn shipped() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/france.toml"
    ))
    .expect("the shipped configuration")
}

/// The shipped configuration with every line starting with `prefix` replaced by `line`,
/// written in `dir` as `name`; its path.
pub fn shipped_with_line(dir: &Path, name: &str, prefix: &str, line: &str) -> PathBuf {
    let shipped = shipped();
    let text: Vec<&str> = shipped
        .lines()
        .map(|l| if l.starts_with(prefix) { line } else { l })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, text.join("\n")).expect("config written");
    path
}

/// A number from the environment variable `name`, else `default` (the benchmarks set them).
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The shipped configuration with `rule` placed before the last (catch-all) rule.
pub fn shipped_with_rule(rule: &str) -> String {
    let shipped = shipped();
    let last = shipped
        .find("[[rule_set.rule]]\nname = \"par défaut")
        .expect("the catch-all rule");
    format!("{}{rule}\n{}", &shipped[..last], &shipped[last..])
}

/// The rule that sends CTA 13's calls to CTA 83 (CTA 13 evacuated).
pub const EVACUATE_13: &str = "[[rule_set.rule]]\nname = \"CTA 13 évacué : appels au CTA 83\"\nwhen = { zones = [\"13\"] }\nroute = [\"cta-83\"]\n";

/// A SIPp caller placing `calls` calls at `rate` per second to `node`, each held `hold_ms`
/// after the answer, its logs in `name` under the node's directory; each caller's number is
/// `06` and the call's number in the run.
pub fn load(node: &Platform, name: &str, rate: u32, calls: u32, hold_ms: u32) -> Child {
    // An operator's traffic: through a trunk of the configuration.
    load_command(node, name, rate, calls, hold_ms, OPERATOR_TRUNK)
        .spawn()
        .expect("sipp runs")
}

/// The Request-URI parameter of calls through an operator trunk of the shipped configuration.
pub const OPERATOR_TRUNK: &str = ";trunk=ingress-13";

/// The command `load` runs, to add to, its calls naming `trunk` in their Request-URI
/// ([`OPERATOR_TRUNK`], or a parameter naming no trunk).
pub fn load_command(
    node: &Platform,
    name: &str,
    rate: u32,
    calls: u32,
    hold_ms: u32,
    trunk: &str,
) -> Command {
    let port = free_port();
    let media = free_media_port();
    let mut command = sipp(&node.dir.path().join(name));
    command
        .args(["-sf", &format!("{SIPP_DIR}/../bench/sipp/caller-load.xml")])
        .args(["-key", "trunk", trunk])
        .args(["-r", &rate.to_string(), "-m", &calls.to_string()])
        .args(["-d", &hold_ms.to_string(), "-l", "1000"])
        .args(["-p", &port.to_string(), "-mi", "127.0.0.1"])
        .args(["-mp", &media.to_string()])
        .arg(format!("127.0.0.1:{}", node.sip));
    command
}

/// The three call-takers of the test, their phones one SIPp answerer registered on `node`.
pub fn staff(node: &Platform) -> Reaped {
    staff_with(node, &["ota-13-1", "ota-13-2", "ota-83-1"])
}

/// These call-takers, their phones one SIPp answerer registered on `node`.
pub fn staff_with(node: &Platform, logins: &[&str]) -> Reaped {
    let port = free_port();
    for &login in logins {
        node.register(login, port);
    }
    let phones = Reaped(node.phone(&format!("phones-{port}"), port, 10_000));
    for &login in logins {
        node.set_state(login, "available");
    }
    phones
}

/// The shipped configuration without the pause after each call, so that three call-takers
/// keep up with the load; its path.
pub fn no_wrap_up(dir: &std::path::Path) -> String {
    shipped_with_line(dir, "no-wrap-up.toml", "wrap_up_s = ", "wrap_up_s = 0")
        .to_string_lossy()
        .into_owned()
}

/// Sends one datagram and returns the whole final answer, if one comes within `patience`.
pub fn exchange_within(
    socket: &UdpSocket,
    to: u16,
    datagram: &[u8],
    patience: Duration,
) -> Option<String> {
    socket.send_to(datagram, ("127.0.0.1", to)).expect("send");
    let mut buf = vec![0u8; 65_536];
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                // Provisional answers (100 Trying) come before the final one.
                if !text.starts_with("SIP/2.0 1") {
                    return Some(text);
                }
            }
            Err(_) => continue,
        }
    }
    None
}

/// A UDP socket on `ip` whose reads give up after 100 ms.
pub fn udp_socket(ip: &str) -> UdpSocket {
    let socket = UdpSocket::bind((ip, 0)).expect("bind a loopback address");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    socket
}

/// The official Hub Santé schemas kept by the CISU crate, each registered under its own name
/// (they all declare the same `$id`), as that crate's `tests/schemas.rs` does.
pub fn cisu_validator() -> jsonschema::Validator {
    const BASE: &str = "classpath:/json-schema/";
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cisu/tests/official/json-schema");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".schema.json"))
        .collect();
    names.sort();
    assert!(names.len() >= 24, "only {names:?}");
    let mut registry = jsonschema::Registry::new();
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name)).expect("a schema");
        let mut schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
        let uri = format!("{BASE}{name}");
        schema["$id"] = serde_json::Value::String(uri.clone());
        registry = registry.add(uri, schema).expect("a schema registers");
    }
    let registry = registry.prepare().expect("the schemas resolve");
    jsonschema::options()
        .with_registry(&registry)
        .should_validate_formats(true)
        .offline()
        .build(&serde_json::json!({ "$ref": format!("{BASE}EDXL-DE-full.schema.json") }))
        .expect("the envelope's validator")
}

//! A real RabbitMQ (Debian's `rabbitmq-server`) for one test: its own ports on 127.0.0.1, its own
//! node name, data, logs, configuration and epmd, killed or stopped and started again on demand,
//! and killed by `Drop` whatever the test's outcome.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where Debian installs the broker's own start script (the `/usr/sbin` one switches user).
const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/// A broker on a loaded two-core machine starts in about ten seconds; this is the bound.
const START_WAIT_MAX: Duration = Duration::from_secs(120);

static NODES: AtomicU32 = AtomicU32::new(0);

/// One broker and the epmd it registers with.
pub struct Broker {
    dir: tempfile::TempDir,
    /// The AMQP port.
    pub port: u16,
    dist_port: u16,
    epmd_port: u16,
    node: String,
    epmd: Child,
    server: Option<Child>,
}

impl Broker {
    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Broker {
        assert!(
            Path::new(SERVER).exists() && Path::new("/usr/bin/epmd").exists(),
            "{SERVER} is missing: this test needs Debian's rabbitmq-server package \
             (scripts/setup installs it)"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        for sub in ["mnesia", "log", "home"] {
            std::fs::create_dir(dir.path().join(sub)).expect("a broker directory");
        }
        let [port, dist_port, epmd_port] = free_ports();
        let config = format!("listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n");
        std::fs::write(dir.path().join("rabbitmq.conf"), config).expect("broker configuration");
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").expect("plugins file");
        std::fs::write(dir.path().join("env.conf"), "").expect("env file");
        let epmd = Command::new("/usr/bin/epmd")
            .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("epmd starts");
        let node = format!(
            "secourir-test-{}-{}@localhost",
            std::process::id(),
            NODES.fetch_add(1, Ordering::Relaxed)
        );
        let mut broker = Broker {
            dir,
            port,
            dist_port,
            epmd_port,
            node,
            epmd,
            server: None,
        };
        wait_port(epmd_port, Instant::now() + Duration::from_secs(10), || None)
            .unwrap_or_else(|e| panic!("epmd: {e}"));
        broker.spawn();
        broker
    }

    /// The URI a client connects with (the default user, allowed here on loopback).
    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The running broker's process id (the Erlang VM itself, the start script having exec'd it).
    #[allow(
        dead_code,
        reason = "the delivery bench reads the broker's CPU time; the test does not"
    )]
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// Kills the broker at once, as a crash would: no goodbye to its clients.
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            // Already dead is fine: the point is that it is not running.
            let _ = server.kill();
            let _ = server.wait();
        }
    }

    /// Stops the broker as an operator would (SIGTERM): it closes its clients' connections
    /// and writes its queues' state before exiting.
    pub fn stop(&mut self) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        let pid = rustix::process::Pid::from_raw(server.id() as i32).expect("a child's pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let deadline = Instant::now() + START_WAIT_MAX;
        while server.try_wait().expect("the broker's status").is_none() {
            if Instant::now() >= deadline {
                let _ = server.kill();
                let _ = server.wait();
                panic!("the broker did not stop within {START_WAIT_MAX:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts the broker again on the same ports and data: durable queues and persistent
    /// messages come back.
    pub fn start_again(&mut self) {
        assert!(self.server.is_none(), "stop or kill the broker first");
        // The dead broker's sockets may hold its ports for a moment: the new one would fail to
        // bind its distribution port.
        for port in [self.port, self.dist_port] {
            wait_free(port, Instant::now() + START_WAIT_MAX);
        }
        self.spawn();
    }

    fn spawn(&mut self) {
        let path = |sub: &str| self.dir.path().join(sub);
        let stdout = std::fs::File::create(path("log/stdout.log")).expect("stdout log");
        let stderr = stdout.try_clone().expect("stderr log");
        let server = Command::new(SERVER)
            .env("HOME", path("home"))
            // The script then execs the VM itself: killing this child kills the broker.
            .env("RUNNING_UNDER_SYSTEMD", "true")
            .env("RABBITMQ_CONF_ENV_FILE", path("env.conf"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                // reuseaddr: a broker started again binds its distribution port even while
                // the dead one's connections on it linger in TIME_WAIT.
                "-kernel inet_dist_use_interface {127,0,0,1} -kernel inet_dist_listen_options [{reuseaddr,true}]",
            )
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", path("rabbitmq.pid"))
            // A killed broker's crash dump stays in its own directory, not in the crate's.
            .env("ERL_CRASH_DUMP", path("log/erl_crash.dump"))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("{SERVER} does not start: {e}"));
        self.server = Some(server);
        let deadline = Instant::now() + START_WAIT_MAX;
        let log_dir = path("log");
        let server = self.server.as_mut().expect("just spawned");
        let exited = || {
            server
                .try_wait()
                .ok()
                .flatten()
                .map(|status| status.to_string())
        };
        if let Err(error) = wait_port(self.port, deadline, exited) {
            panic!("the broker did not start: {error}\n{}", tail_logs(&log_dir));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        // epmd is ours: started for this broker alone.
        let _ = self.epmd.kill();
        let _ = self.epmd.wait();
    }
}

/// Waits until `port` can be listened on again on loopback, or `deadline` passes.
fn wait_free(port: u16, deadline: Instant) {
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "port {port} still held by the dead broker"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three distinct ports free on loopback now.
fn free_ports() -> [u16; 3] {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect();
    [ports[0], ports[1], ports[2]]
}

/// Waits until `port` accepts a connection, or the deadline passes, or `exited` says why not.
fn wait_port(
    port: u16,
    deadline: Instant,
    mut exited: impl FnMut() -> Option<String>,
) -> Result<(), String> {
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = exited() {
            return Err(format!("it exited ({status})"));
        }
        if Instant::now() >= deadline {
            return Err(format!("port {port} still closed after {START_WAIT_MAX:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tail_logs(dir: &PathBuf) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let start = content.len().saturating_sub(4_000);
        let start = (start..content.len())
            .find(|&i| content.is_char_boundary(i))
            .unwrap_or(0);
        text.push_str(&format!(
            "--- {}\n{}\n",
            entry.path().display(),
            &content[start..]
        ));
    }
    text
}

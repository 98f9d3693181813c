//! Three NATS servers clustered with JetStream on loopback, for the tests that need the real
//! replicated log; shared by the crates' tests (included by path).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The NATS server the setup script installs (the current release), or `SECOURIR_NATS_SERVER`.
pub fn nats_server() -> PathBuf {
    if let Ok(path) = std::env::var("SECOURIR_NATS_SERVER") {
        return path.into();
    }
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/tools/nats-server-2.15.1/bin/nats-server"
    ));
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup (it installs nats-server 2.15.1)",
        path.display()
    );
    path
}

/// Ports handed to NATS servers by this test process, below the kernel's ephemeral range, so
/// that no outgoing connection takes one before its server binds it.
static NEXT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

/// A TCP port free on 127.0.0.1, from 12,000 to 15,999.
pub fn free_port() -> u16 {
    const FIRST: u16 = 12_000;
    const COUNT: u16 = 4_000;
    let offset = (std::process::id() % u32::from(COUNT)) as u16;
    for _ in 0..COUNT {
        let next = NEXT_PORT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = FIRST + next.wrapping_add(offset) % COUNT;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port");
}

/// Three NATS servers clustered with JetStream on loopback; all killed when dropped.
pub struct NatsCluster {
    servers: Vec<(String, u16, Option<Child>)>,
    /// Client and cluster port of each server.
    ports: Vec<(u16, u16)>,
    routes: String,
    dir: tempfile::TempDir,
}

impl NatsCluster {
    pub fn start() -> NatsCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes = ports
            .iter()
            .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = NatsCluster {
            servers: Vec::new(),
            ports,
            routes,
            dir,
        };
        for i in 0..3 {
            let child = cluster.spawn(i);
            let port = cluster.ports[i].0;
            cluster.servers.push((format!("n{i}"), port, Some(child)));
        }
        cluster
    }

    /// Starts server `i` on its ports and its store directory.
    fn spawn(&self, i: usize) -> Child {
        let name = format!("n{i}");
        let (port, cluster) = self.ports[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))
            .expect("log file");
        Command::new(nats_server())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-n", &name])
            .args(["--cluster_name", "secourir"])
            .args(["--cluster", &format!("nats://127.0.0.1:{cluster}")])
            .args(["--routes", &self.routes, "-js"])
            // Clients keep to the addresses they were given (a test's proxy in between).
            .arg("--no_advertise")
            .arg("-sd")
            .arg(self.dir.path().join(&name))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts")
    }

    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.servers[i].1)
    }

    pub fn urls(&self) -> String {
        (0..self.servers.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn kill(&mut self, name: &str) {
        for (n, _, child) in &mut self.servers {
            if n == name
                && let Some(mut child) = child.take()
            {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Starts a killed server again, with what its store kept.
    pub fn restart(&mut self, name: &str) {
        let i = self
            .servers
            .iter()
            .position(|(n, _, _)| n == name)
            .expect("a server of the cluster");
        if self.servers[i].2.is_none() {
            let child = self.spawn(i);
            self.servers[i].2 = Some(child);
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for (_, _, child) in &mut self.servers {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

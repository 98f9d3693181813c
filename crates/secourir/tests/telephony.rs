//! The platform on the wire, against real SIPp peers on loopback: callers with PIDF-LO, call-taker
//! phones that register with digest and answer, recordings checked, malformed input refused.
//!
//! Every peer is started here on free loopback ports and stopped at the end of its test. SIPp
//! (Debian's `sip-tester`) must be installed: `scripts/setup` does it; without it these tests
//! fail rather than skip.

mod common;

// One test binary: its tests are in modules under telephony/, named by `#[path]` because a crate
// root's modules are looked up beside it, where Cargo would take each for a binary of its own.
#[path = "telephony/calls.rs"]
mod calls;
#[path = "telephony/http.rs"]
mod http;
#[path = "telephony/registration.rs"]
mod registration;
#[path = "telephony/wire.rs"]
mod wire;

use common::*;
use serde_json::Value;

fn field<'a>(call: &'a Value, name: &str) -> &'a Value {
    call.get(name).unwrap_or(&Value::Null)
}

/// Opens `count` TCP connections to `port` from 127.1.x.y sources, `per_source` from each,
/// and holds them open without a word.
fn silent_connections(
    runtime: &tokio::runtime::Runtime,
    port: u16,
    count: usize,
    per_source: usize,
) -> Vec<tokio::net::TcpStream> {
    // This process holds them all: its descriptor limit must allow it.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= count as u64 + 1_000,
        "this test holds {count} connections; the descriptor limit is {hard}"
    );
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(hard),
            maximum: limit.maximum,
        },
    )
    .expect("raise the descriptor limit");
    runtime.block_on(async {
        let mut held = Vec::with_capacity(count);
        for i in 0..count {
            let source = i / per_source;
            let ip =
                std::net::Ipv4Addr::new(127, 1, (source / 250) as u8, (source % 250 + 1) as u8);
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.bind((ip, 0).into()).expect("bind a loopback source");
            let stream = socket
                .connect(([127, 0, 0, 1], port).into())
                .await
                .expect("connect");
            held.push(stream);
        }
        held
    })
}

//! The port pairs, bound on the range once and kept: legs come and go on them without a bind.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::leg::{LegState, Port};
use crate::relay::receive;
use crate::{LegId, Media, MediaConfig};

/// The port pairs: those carrying a leg, and those closed, oldest first.
#[derive(Default)]
pub(crate) struct Ports {
    pub(crate) open: HashMap<LegId, Arc<Port>>,
    pub(crate) closed: VecDeque<(Arc<Port>, Instant)>,
    /// Every pair bound, with the tasks reading it.
    pub(crate) bound: Vec<[JoinHandle<()>; 2]>,
    pub(crate) next_port: u32,
}

/// The lowest even port of the range, where RTP ports start (RFC 3550: RTP even, RTCP next).
pub(crate) fn first_port(config: &MediaConfig) -> u32 {
    let min = u32::from(config.port_min);
    min + min % 2
}
impl Media {
    /// Binds a fresh pair on the range, from where the last search stopped.
    pub(crate) fn bind_pair(
        &self,
        ports: &mut Ports,
    ) -> Option<(std::net::UdpSocket, std::net::UdpSocket)> {
        let max = self.inner.config.port_max;
        let first = first_port(&self.inner.config);
        // RTP ports p = first, first + 2, … while RTCP p + 1 stays within the range.
        let pairs = if u32::from(max) > first {
            (u32::from(max) - first - 1) / 2 + 1
        } else {
            0
        };
        // Every pair of the range is tried before giving up: a port held by another program
        // is skipped, never a reason to refuse a caller while the range has free ones.
        if ports.bound.len() as u32 >= pairs {
            return None;
        }
        for _ in 0..pairs {
            let port = ports.next_port;
            ports.next_port = if port + 3 > u32::from(max) {
                first
            } else {
                port + 2
            };
            let (Ok(rtp_port), Ok(rtcp_port)) = (u16::try_from(port), u16::try_from(port + 1))
            else {
                continue;
            };
            let ip = self.inner.config.ip;
            let Ok(rtp) = std::net::UdpSocket::bind(SocketAddr::new(ip, rtp_port)) else {
                continue;
            };
            let Ok(rtcp) = std::net::UdpSocket::bind(SocketAddr::new(ip, rtcp_port)) else {
                continue;
            };
            return Some((rtp, rtcp));
        }
        None
    }

    /// Starts reading a freshly bound pair.
    pub(crate) fn adopt(
        &self,
        ports: &mut Ports,
        rtp: std::net::UdpSocket,
        rtcp: std::net::UdpSocket,
    ) -> Option<Arc<Port>> {
        let local = rtp.local_addr().ok()?;
        rtp.set_nonblocking(true).ok()?;
        rtcp.set_nonblocking(true).ok()?;
        let rtp = UdpSocket::from_std(rtp).ok()?;
        let rtcp = UdpSocket::from_std(rtcp).ok()?;
        let port = Arc::new(Port {
            rtp,
            local,
            state: Mutex::new(LegState::new(None)),
        });
        let receiving = tokio::spawn(receive(port.clone(), self.inner.events.clone()));
        // RTCP is read and dropped: the port pair stays ours and peers get no ICMP errors.
        let rtcp_task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while rtcp.recv_from(&mut buf).await.is_ok() {}
        });
        ports.bound.push([receiving, rtcp_task]);
        Some(port)
    }
}

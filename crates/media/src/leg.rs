//! A port pair and what it knows of the leg it carries: its peer, codec, outgoing stream and keys.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

use crate::recorder::Recorder;
use crate::srtp::Srtp;
use crate::{Codec, LegId};

/// The RTP stream a leg sends: its own SSRC, sequence and timestamp, whoever's audio it carries.
#[derive(Debug)]
pub(crate) struct Outgoing {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    first: bool,
}

impl Outgoing {
    pub(crate) fn packet(&mut self, pt: u8, payload: &[u8], samples: u32) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + payload.len());
        p.push(0x80);
        p.push(if self.first { 0x80 | pt } else { pt });
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.timestamp.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples);
        p
    }
}

/// An RTP and RTCP port pair, bound once and kept for the platform's life: legs come and go
/// on it without a socket, a bind or a task per call.
pub(crate) struct Port {
    pub(crate) rtp: UdpSocket,
    pub(crate) local: SocketAddr,
    pub(crate) state: Mutex<LegState>,
}

/// What the port pair of an open leg does with its audio. A closed pair has no `leg` and drops
/// whatever it receives.
pub(crate) struct LegState {
    pub(crate) leg: Option<LegId>,
    pub(crate) remote: Option<SocketAddr>,
    /// The remote came from SDP: only its IP may send (any port, NATs rewrite ports).
    pub(crate) remote_fixed: bool,
    pub(crate) codec: Codec,
    pub(crate) dtmf_pt: Option<u8>,
    pub(crate) out: Outgoing,
    pub(crate) peer: Option<Arc<Port>>,
    pub(crate) recorder: Option<(Arc<Mutex<Recorder>>, usize)>,
    pub(crate) last_dtmf: Option<u32>,
    /// Frames louder than [`SPEECH_RMS`](crate::SPEECH_RMS) heard while not bridged.
    pub(crate) voiced: u16,
    /// Whether [`MediaEvent::Heard`](crate::MediaEvent::Heard) was reported.
    pub(crate) heard: bool,
    /// SRTP (RFC 3711) with the keys the offer and the answer exchanged; None: RTP.
    pub(crate) srtp: Option<Srtp>,
}

impl LegState {
    pub(crate) fn new(leg: Option<LegId>) -> LegState {
        // RFC 3550 wants SSRC, sequence and timestamp unpredictable; `RandomState` is seeded by
        // the OS, which saves a dependency on a random number generator.
        let seed = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            leg.map_or(0, |l| l.0),
        );
        LegState {
            leg,
            remote: None,
            remote_fixed: false,
            codec: Codec::Pcma,
            dtmf_pt: None,
            out: Outgoing {
                ssrc: (seed >> 32) as u32,
                seq: seed as u16,
                timestamp: (seed >> 16) as u32,
                first: true,
            },
            peer: None,
            recorder: None,
            voiced: 0,
            heard: false,
            last_dtmf: None,
            srtp: None,
        }
    }
}

impl LegState {
    /// The packet as it goes on the wire: protected when the leg is SRTP; None when it cannot
    /// be (it is then not sent).
    pub(crate) fn seal(&mut self, packet: Vec<u8>) -> Option<Vec<u8>> {
        match &mut self.srtp {
            None => Some(packet),
            Some(srtp) => srtp.outbound.encrypt_rtp(&packet).ok().map(|b| b.to_vec()),
        }
    }
}

//! What a received datagram is to a leg (audio, a key press, noise), read without trusting it.

use std::net::SocketAddr;

use crate::Codec;
use crate::leg::LegState;

/// The key an RFC 4733 event code stands for.
fn dtmf_digit(event: u8) -> Option<u8> {
    match event {
        0..=9 => Some(b'0' + event),
        10 => Some(b'*'),
        11 => Some(b'#'),
        12..=15 => Some(b'A' + event - 12),
        _ => None,
    }
}

/// What one received datagram means to a leg.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// G.711 audio.
    Audio {
        codec: Codec,
        payload_type: u8,
        payload: &'a [u8],
    },
    /// An RFC 4733 event packet; all packets of one press share the timestamp.
    Key { timestamp: u32, digit: u8 },
    /// Valid RTP the anchor has no use for (comfort noise, unknown events, other codecs).
    Ignored,
    /// Not RTP at all.
    Garbage,
}

/// Reads a datagram without trusting any of it: every length is checked by `rtp_rs`.
pub(crate) fn classify(datagram: &[u8], dtmf_pt: Option<u8>) -> Incoming<'_> {
    let Ok(packet) = rtp_rs::RtpReader::new(datagram) else {
        return Incoming::Garbage;
    };
    let payload_type = packet.payload_type();
    let payload = packet.payload();
    if Some(payload_type) == dtmf_pt {
        return match payload.first().copied().and_then(dtmf_digit) {
            Some(digit) if payload.len() >= 4 => Incoming::Key {
                timestamp: packet.timestamp(),
                digit,
            },
            _ => Incoming::Ignored,
        };
    }
    match Codec::of_payload_type(payload_type) {
        Some(codec) if !payload.is_empty() => Incoming::Audio {
            codec,
            payload_type,
            payload,
        },
        _ => Incoming::Ignored,
    }
}

/// Whether a leg takes RTP from `from`, learning it as the remote if it has none yet.
pub(crate) fn accepts(state: &mut LegState, from: SocketAddr) -> bool {
    match state.remote {
        // Symmetric RTP: answer where the peer speaks from until its SDP says otherwise.
        None => {
            state.remote = Some(from);
            true
        }
        // Only the SDP's host may inject audio into an emergency call; its port may differ
        // behind a NAT.
        Some(remote) if state.remote_fixed => remote.ip() == from.ip(),
        Some(_) => true,
    }
}

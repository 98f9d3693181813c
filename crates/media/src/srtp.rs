//! SRTP (RFC 3711) on a leg: the keys exchanged in SDP, and the packets they protect.

use crate::{MediaError, sdp};

/// The two SRTP contexts of a leg: the peer's key reads what it sends, the anchor's protects
/// what the anchor sends.
pub(crate) struct Srtp {
    pub(crate) inbound: webrtc_srtp::context::Context,
    pub(crate) outbound: webrtc_srtp::context::Context,
}

/// The keys of an SRTP leg, master key then master salt each.
pub struct SrtpKeys {
    /// The suite both keys are for.
    pub suite: sdp::CryptoSuite,
    /// The peer's, from its offer.
    pub theirs: [u8; 30],
    /// The anchor's, in its answer.
    pub ours: [u8; 30],
}

impl std::fmt::Debug for SrtpKeys {
    // Media keys never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Packets of the replay window (RFC 3711 §3.3.2), as libsrtp keeps by default.
const SRTP_REPLAY_WINDOW: usize = 128;

pub(crate) fn srtp_context(
    suite: sdp::CryptoSuite,
    key_salt: &[u8; 30],
    receiving: bool,
) -> Result<webrtc_srtp::context::Context, MediaError> {
    use webrtc_srtp::protection_profile::ProtectionProfile;
    let profile = match suite {
        sdp::CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        sdp::CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
    };
    // The crate checks no replay unless asked: a packet captured and sent again would be heard
    // twice.
    let replay = receiving.then(|| webrtc_srtp::option::srtp_replay_protection(SRTP_REPLAY_WINDOW));
    webrtc_srtp::context::Context::new(&key_salt[..16], &key_salt[16..], profile, replay, None)
        .map_err(|e| MediaError::SrtpKey(format!("key refused: {e}")))
}

//! SRTP legs: what the peer sends is read with its key, what it gets is sealed with ours.

use super::*;

/// An SRTP leg bridged to an RTP one: what the SRTP peer sends is read with its key and
/// relayed in clear; what goes back to it is protected with the anchor's key; a packet sent
/// again, in clear or under another key is not heard.
#[tokio::test]
async fn an_srtp_leg_is_read_with_the_peers_key_and_answered_with_ours() {
    use webrtc_srtp::context::Context;
    use webrtc_srtp::protection_profile::ProtectionProfile;
    let (media, _events) = Media::new(config(32_100));
    let (a, a_local) = media.open_leg().unwrap();
    let (b, b_local) = media.open_leg().unwrap();
    let (caller, taker) = (phone(), phone());
    media.set_remote(a, caller.local_addr().unwrap(), Codec::Pcma, None);
    media.set_remote(b, taker.local_addr().unwrap(), Codec::Pcma, None);
    let theirs = [7u8; 30];
    let ours = [9u8; 30];
    media
        .set_srtp(
            a,
            &SrtpKeys {
                suite: sdp::CryptoSuite::AesCm128HmacSha1_80,
                theirs,
                ours,
            },
        )
        .unwrap();
    media.bridge(a, b, None);
    let context = |key: &[u8; 30]| {
        Context::new(
            &key[..16],
            &key[16..],
            ProtectionProfile::Aes128CmHmacSha1_80,
            None,
            None,
        )
        .unwrap()
    };
    let mut caller_out = context(&theirs);
    let voice = [0x55u8; FRAME];
    let protected = caller_out.encrypt_rtp(&rtp(8, 1, 160, &voice)).unwrap();
    assert_ne!(
        &protected[12..12 + FRAME],
        &voice[..],
        "the payload is encrypted"
    );
    caller.send_to(&protected, a_local).await.unwrap();
    let relayed = recv_packets(&taker, 1).await;
    assert_eq!(relayed.len(), 1, "the caller's packet was not relayed");
    assert_eq!(&relayed[0][12..], &voice[..], "relayed in clear, as sent");

    // The same packet again (captured and replayed), in clear, or under another key: not heard.
    caller.send_to(&protected, a_local).await.unwrap();
    caller
        .send_to(&rtp(8, 2, 320, &voice), a_local)
        .await
        .unwrap();
    let mut stranger = context(&[1u8; 30]);
    let forged = stranger.encrypt_rtp(&rtp(8, 3, 480, &voice)).unwrap();
    caller.send_to(&forged, a_local).await.unwrap();
    assert!(
        recv_packets(&taker, 1).await.is_empty(),
        "a replayed, unprotected or forged packet was relayed"
    );

    // Back to the caller: protected with the anchor's key.
    let reply = [0x2Au8; FRAME];
    taker
        .send_to(&rtp(8, 1, 160, &reply), b_local)
        .await
        .unwrap();
    let back = recv_packets(&caller, 1).await;
    assert_eq!(back.len(), 1, "nothing came back to the caller");
    let mut caller_in = context(&ours);
    let plain = caller_in.decrypt_rtp(&back[0]).expect("our key reads it");
    assert_eq!(&plain[12..], &reply[..]);
}

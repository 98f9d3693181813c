//! What a leg takes in: the SDP's host alone once known, each datagram classified, none a panic.

use super::*;
use crate::classify::{Incoming, accepts, classify};

#[test]
fn the_sdp_host_alone_may_send_once_known() {
    let mut state = LegState::new(Some(LegId(1)));
    let phone: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    let nat_port: SocketAddr = "10.0.0.1:4242".parse().unwrap();
    let stranger: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    assert!(accepts(&mut state, nat_port), "symmetric RTP before SDP");
    assert_eq!(state.remote, Some(nat_port));
    assert!(
        accepts(&mut state, stranger),
        "lenient until the SDP is known"
    );
    state.remote = Some(phone);
    state.remote_fixed = true;
    assert!(accepts(&mut state, nat_port));
    assert!(!accepts(&mut state, stranger));
    assert_eq!(state.remote, Some(phone));
}

#[test]
fn datagrams_are_classified() {
    assert_eq!(classify(&[], Some(101)), Incoming::Garbage);
    assert_eq!(
        classify(&[0x40; 20], Some(101)),
        Incoming::Garbage,
        "version 1"
    );
    let audio = rtp(8, 1, 160, &[0xD5; FRAME]);
    assert_eq!(
        classify(&audio, Some(101)),
        Incoming::Audio {
            codec: Codec::Pcma,
            payload_type: 8,
            payload: &[0xD5; FRAME]
        }
    );
    let key = rtp(101, 1, 800, &[5, 0x8A, 0, 160]);
    assert_eq!(
        classify(&key, Some(101)),
        Incoming::Key {
            timestamp: 800,
            digit: b'5'
        }
    );
    assert_eq!(
        classify(&key, None),
        Incoming::Ignored,
        "no telephone-event agreed"
    );
    assert_eq!(
        classify(&rtp(101, 1, 800, &[5]), Some(101)),
        Incoming::Ignored
    );
    assert_eq!(
        classify(&rtp(13, 1, 0, &[0; 4]), Some(101)),
        Incoming::Ignored,
        "comfort noise"
    );
    assert_eq!(classify(&rtp(8, 1, 0, &[]), None), Incoming::Ignored);
}

proptest::proptest! {
    #[test]
    fn random_datagrams_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let _ = classify(&bytes, Some(101));
    }

    #[test]
    fn random_headers_never_panic(
        first in proptest::prelude::any::<u8>(),
        pt in proptest::prelude::any::<u8>(),
        rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
    ) {
        // Version 2 with every flag, CSRC count, extension and padding combination.
        let mut bytes = vec![0x80 | (first & 0x3F), pt];
        bytes.extend(rest);
        let _ = classify(&bytes, Some(pt & 0x7F));
    }
}

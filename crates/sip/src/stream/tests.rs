//! Tests of TCP framing and of the seats connections take, whatever the bytes and the crowd.

use proptest::prelude::*;

use super::*;

const INVITE: &[u8] = b"INVITE sip:18@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK-1\r\nSubject: fum\xe9e\r\nContent-Length: 4\r\n\r\nv=0\n";

#[test]
fn a_message_is_framed_by_its_content_length_whatever_bytes_its_headers_hold() {
    assert_eq!(frame(INVITE), Frame::Message(INVITE.len()));
    let mut two = INVITE.to_vec();
    two.extend_from_slice(INVITE);
    assert_eq!(frame(&two), Frame::Message(INVITE.len()));
    assert_eq!(frame(&INVITE[..INVITE.len() - 1]), Frame::Partial);
    assert_eq!(frame(&INVITE[..40]), Frame::Partial);
}

#[test]
fn keep_alives_and_stray_bytes() {
    assert_eq!(frame(b"\r\n\r\nINVITE"), Frame::KeepAlive(4));
    assert_eq!(frame(b"\r\n"), Frame::Partial);
    assert_eq!(frame(b"\r\nINVITE"), Frame::KeepAlive(2));
    assert_eq!(frame(b"\nINVITE"), Frame::Skip);
    assert_eq!(frame(b""), Frame::Partial);
}

#[test]
fn a_compact_or_missing_length_and_an_unreadable_one() {
    let compact = b"OPTIONS sip:x SIP/2.0\r\nl: 2\r\n\r\nabcd";
    assert_eq!(frame(compact), Frame::Message(compact.len() - 2));
    let none = b"OPTIONS sip:x SIP/2.0\r\nVia: x\r\n\r\nabcd";
    assert_eq!(frame(none), Frame::Message(none.len() - 4));
    let bad = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: lots\r\n\r\n";
    assert!(matches!(
        frame(bad),
        Frame::Unframeable {
            head: Some(_),
            code: 400,
            ..
        }
    ));
}

#[test]
fn too_large_is_refused_before_it_is_read() {
    let huge = b"INVITE sip:18@x SIP/2.0\r\nContent-Length: 10000000\r\n\r\n";
    assert!(matches!(frame(huge), Frame::Unframeable { code: 513, .. }));
    let endless = vec![b'a'; MAX_STREAM_MESSAGE + 1];
    assert!(matches!(
        frame(&endless),
        Frame::Unframeable { head: None, .. }
    ));
}

#[test]
fn seats_are_bounded_per_source_and_given_back() {
    let census = Arc::new(Mutex::new(Census::default()));
    let token = CancellationToken::new();
    let one: std::net::IpAddr = "192.0.2.1".parse().expect("addr");
    let other: std::net::IpAddr = "192.0.2.2".parse().expect("addr");
    let held: Vec<Seat> = (0..MAX_CONNECTIONS_PER_SOURCE)
        .map(|_| seat(&census, one, &token).expect("room"))
        .collect();
    assert_eq!(seat(&census, one, &token).err(), Some(Refused::Source));
    let _ = seat(&census, other, &token).expect("another source has room");
    drop(held);
    let census = census.lock().expect("census");
    assert_eq!(census.total, 0);
    assert!(census.per_source.is_empty());
    assert!(census.silent.is_empty());
}

#[test]
fn a_full_room_makes_the_oldest_silent_connection_give_way() {
    let census = Arc::new(Mutex::new(Census::default()));
    let tokens: Vec<CancellationToken> = (0..=MAX_CONNECTIONS)
        .map(|_| CancellationToken::new())
        .collect();
    let held: Vec<Seat> = (0..MAX_CONNECTIONS)
        .map(|i| {
            let source = std::net::IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
            seat(&census, source, &tokens[i]).expect("room")
        })
        .collect();
    // The first one spoke: it keeps its seat, and the second, silent, gives way.
    held[0].spoke();
    let newcomer: std::net::IpAddr = "192.0.2.9".parse().expect("addr");
    let _seated = seat(&census, newcomer, &tokens[MAX_CONNECTIONS]).expect("seated");
    assert!(!tokens[0].is_cancelled());
    assert!(tokens[1].is_cancelled());
    assert!(!tokens[2].is_cancelled());
    // When every connection has spoken, a newcomer is refused.
    for seat in &held {
        seat.spoke();
    }
    census.lock().expect("census").silent.clear();
    assert_eq!(
        seat(&census, newcomer, &tokens[0]).err(),
        Some(Refused::Total)
    );
}

proptest! {
    #[test]
    fn framing_never_panics_and_never_overruns(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        match frame(&bytes) {
            Frame::Message(n) | Frame::KeepAlive(n) => prop_assert!(n > 0 && n <= bytes.len()),
            Frame::Skip => prop_assert!(!bytes.is_empty()),
            Frame::Unframeable { head: Some(h), .. } => prop_assert!(h <= bytes.len()),
            _ => {}
        }
    }
}

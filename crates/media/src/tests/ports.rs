//! Port pairs: they run out cleanly and come back, and none is opened for signalling alone.

use super::*;

#[tokio::test]
async fn ports_run_out_cleanly_and_come_back() {
    let (media, _events) = Media::new(MediaConfig {
        ip: "127.0.0.1".parse().unwrap(),
        port_min: 31_800,
        port_max: 31_805,
        signalling_only: false,
        events: 4_096,
    });
    let mut legs = Vec::new();
    while let Ok((leg, _)) = media.open_leg() {
        legs.push(leg);
    }
    assert_eq!(legs.len(), 3);
    assert!(matches!(media.open_leg(), Err(MediaError::NoPorts(..))));
    media.close(legs[1]);
    let (_, local) = media.open_leg().expect("a closed pair serves again");
    assert!((31_800..=31_805).contains(&local.port()));
    assert_eq!(media.open_legs(), 3);
}

#[tokio::test]
async fn signalling_only_opens_no_socket() {
    let (media, _events) = Media::new(MediaConfig {
        signalling_only: true,
        events: 4_096,
        ..config(32_000)
    });
    let (a, local) = media.open_leg().unwrap();
    let (b, _) = media.open_leg().unwrap();
    assert_ne!(a, b);
    assert_eq!(local.port(), 9, "SDP points at the discard port");
    media.play(a, Arc::new(Audio::from_samples(vec![0; 160])), true);
    media.bridge(a, b, Some(PathBuf::from("/nonexistent/never.wav")));
    assert_eq!(media.open_legs(), 0);
    assert!(media.close(a).is_none());
}

use std::net::UdpSocket as StdUdp;

use sha2::{Digest, Sha256};

use super::*;

mod classify;
mod ports;
mod recording;
mod srtp;

fn config(first: u16) -> MediaConfig {
    MediaConfig {
        ip: "127.0.0.1".parse().unwrap(),
        port_min: first,
        port_max: first + 99,
        signalling_only: false,
        events: 4_096,
    }
}

fn phone() -> tokio::net::UdpSocket {
    let s = StdUdp::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    tokio::net::UdpSocket::from_std(s).unwrap()
}

fn tone(freq: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| (8_000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin()) as i16)
        .collect()
}

fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Energy of a signal at one frequency (Goertzel), normalised by length.
fn power_at(samples: &[i16], freq: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2) / samples.len().max(1) as f64
}

async fn recv_packets(socket: &tokio::net::UdpSocket, count: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while out.len() < count {
        match tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => out.push(buf[..n].to_vec()),
            _ => break,
        }
    }
    out
}

#[tokio::test]
async fn an_announcement_is_played_in_20_ms_packets() {
    let (media, _events) = Media::new(config(31_000));
    let (leg, local) = media.open_leg().unwrap();
    assert_eq!(local.port() % 2, 0, "RTP on an even port");
    let caller = phone();
    media.set_remote(leg, caller.local_addr().unwrap(), Codec::Pcma, None);
    let audio = Arc::new(Audio::from_samples(tone(440.0, 1600)));
    media.play(leg, audio.clone(), true);
    let packets = recv_packets(&caller, 15).await;
    assert_eq!(packets.len(), 15, "a looped announcement keeps coming");
    let mut decoded = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let r = rtp_rs::RtpReader::new(p).unwrap();
        assert_eq!(r.payload_type(), 8);
        assert_eq!(r.payload().len(), FRAME);
        assert_eq!(r.mark(), i == 0, "marker on the first packet only");
        decoded.extend(r.payload().iter().map(|&c| g711::alaw_decode(c)));
    }
    let seqs: Vec<u16> = packets
        .iter()
        .map(|p| u16::from_be_bytes([p[2], p[3]]))
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    // The first 10 packets are the source, then it loops.
    for (a, b) in decoded.iter().zip(audio.samples()) {
        assert!((i32::from(*a) - i32::from(*b)).abs() < 300);
    }
    // Cadence: about 25 packets in half a second; loose bounds, the machine may be busy.
    let window = std::time::Instant::now();
    let mut count = 0;
    let mut buf = [0u8; 2048];
    while window.elapsed() < Duration::from_millis(500) {
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(50), caller.recv_from(&mut buf)).await
        {
            count += 1;
        }
    }
    assert!((15..=35).contains(&count), "{count} packets in 500 ms");
    assert!(media.close(leg).is_none());
    assert_eq!(media.open_legs(), 0);
}

#[tokio::test]
async fn a_bridge_relays_transcodes_and_records_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let (media, mut events) = Media::new(config(31_200));
    let (a, a_local) = media.open_leg().unwrap();
    let (b, b_local) = media.open_leg().unwrap();
    let caller = phone();
    let taker = phone();
    media.set_remote(a, caller.local_addr().unwrap(), Codec::Pcma, None);
    media.set_remote(b, taker.local_addr().unwrap(), Codec::Pcmu, None);
    let path = dir.path().join("call-1.wav");
    media.bridge(a, b, Some(path.clone()));
    let started = std::time::Instant::now();
    let caller_voice = tone(440.0, 8000);
    let taker_voice = tone(1000.0, 8000);
    let mut heard_by_taker = Vec::new();
    let mut heard_by_caller = Vec::new();
    let mut buf = [0u8; 2048];
    for i in 0..50usize {
        let chunk = |v: &[i16], c: Codec| -> Vec<u8> {
            v[i * FRAME..(i + 1) * FRAME]
                .iter()
                .map(|&s| c.encode(s))
                .collect()
        };
        caller
            .send_to(
                &rtp(
                    8,
                    i as u16,
                    (i * FRAME) as u32,
                    &chunk(&caller_voice, Codec::Pcma),
                ),
                a_local,
            )
            .await
            .unwrap();
        taker
            .send_to(
                &rtp(
                    0,
                    i as u16,
                    (i * FRAME) as u32,
                    &chunk(&taker_voice, Codec::Pcmu),
                ),
                b_local,
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Ok((n, _)) = taker.try_recv_from(&mut buf) {
            let r = rtp_rs::RtpReader::new(&buf[..n]).unwrap();
            assert_eq!(r.payload_type(), 0, "transcoded to the call-taker's µ-law");
            heard_by_taker.extend(r.payload().iter().map(|&c| g711::ulaw_decode(c)));
        }
        while let Ok((n, _)) = caller.try_recv_from(&mut buf) {
            let r = rtp_rs::RtpReader::new(&buf[..n]).unwrap();
            assert_eq!(r.payload_type(), 8);
            heard_by_caller.extend(r.payload().iter().map(|&c| g711::alaw_decode(c)));
        }
    }
    let bridged = started.elapsed();
    assert!(
        heard_by_taker.len() >= 40 * FRAME,
        "call-taker heard {} samples",
        heard_by_taker.len()
    );
    assert!(heard_by_caller.len() >= 40 * FRAME);
    assert!(power_at(&heard_by_taker, 440.0) > 100.0 * power_at(&heard_by_taker, 1000.0));
    assert!(power_at(&heard_by_caller, 1000.0) > 100.0 * power_at(&heard_by_caller, 440.0));

    assert_eq!(
        media.close(b),
        Some(path.clone()),
        "the bridge was recorded"
    );
    // The caller, left alone, can be played an announcement again (back in the queue).
    media.play(a, Arc::new(Audio::from_samples(tone(440.0, 800))), false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut announced = 0;
    while let Ok((n, _)) = caller.try_recv_from(&mut buf) {
        announced += usize::from(n == 12 + FRAME);
    }
    assert!(
        announced >= 2,
        "{announced} announcement packets after the bridge"
    );
    assert!(media.close(a).is_none(), "one recording per bridge");
    let recording = match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
        Ok(Some(MediaEvent::Recorded {
            path: reported,
            recording: Some(recording),
        })) if reported == path => recording,
        other => panic!("expected the finished recording, got {other:?}"),
    };
    assert_eq!(recording.path, path);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(recording.sha256, hex::encode(Sha256::digest(&bytes)));
    assert_eq!(recording.bytes, bytes.len() as u64);
    let mut wav = hound::WavReader::open(&path).unwrap();
    let spec = wav.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let frames: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
    let seconds = frames.len() as f64 / 16_000.0;
    let expected = bridged.as_secs_f64();
    assert!(
        (seconds - expected).abs() < expected * 0.1 + 0.05,
        "{seconds} s recorded for {expected} s bridged"
    );
    let left: Vec<i16> = frames.iter().step_by(2).copied().collect();
    let right: Vec<i16> = frames.iter().skip(1).step_by(2).copied().collect();
    assert!(
        power_at(&left, 440.0) > 100.0 * power_at(&left, 1000.0),
        "caller on the left"
    );
    assert!(
        power_at(&right, 1000.0) > 100.0 * power_at(&right, 440.0),
        "call-taker on the right"
    );
}

#[tokio::test]
async fn a_key_press_is_reported_once() {
    let (media, mut events) = Media::new(config(31_400));
    let (leg, local) = media.open_leg().unwrap();
    let caller = phone();
    media.set_remote(leg, caller.local_addr().unwrap(), Codec::Pcma, Some(101));
    // RFC 4733: several packets of the same event share a timestamp; the last three carry E.
    for (i, end) in [false, false, false, true, true, true]
        .into_iter()
        .enumerate()
    {
        let payload = [1u8, if end { 0x8A } else { 0x0A }, 0x01, 0x40];
        caller
            .send_to(&rtp(101, 100 + i as u16, 8_000, &payload), local)
            .await
            .unwrap();
    }
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .unwrap();
    assert_eq!(event, Some(MediaEvent::Dtmf { leg, digit: b'1' }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(events.try_recv().is_err(), "one event per press");
    let payload = [11u8, 0x0A, 0x01, 0x40];
    caller
        .send_to(&rtp(101, 200, 16_000, &payload), local)
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .unwrap();
    assert_eq!(event, Some(MediaEvent::Dtmf { leg, digit: b'#' }));
}

#[tokio::test]
async fn garbage_does_not_stop_a_leg() {
    let (media, _events) = Media::new(config(31_600));
    let (a, a_local) = media.open_leg().unwrap();
    let (b, b_local) = media.open_leg().unwrap();
    let caller = phone();
    let taker = phone();
    let prankster = phone();
    media.set_remote(b, taker.local_addr().unwrap(), Codec::Pcma, None);
    media.bridge(a, b, None);
    for junk in [
        &b""[..],
        b"\x80",
        b"\xff\xff\xff",
        &[0x8f; 12][..],
        &[0x90, 8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff][..],
    ] {
        prankster.send_to(junk, a_local).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    caller
        .send_to(&rtp(8, 1, 160, &[0xD5; FRAME]), a_local)
        .await
        .unwrap();
    let got = recv_packets(&taker, 1).await;
    assert_eq!(got.len(), 1, "the leg still relays after garbage");
    // Leg `a` had no SDP: it learnt its remote from the first real RTP, not from the garbage.
    taker
        .send_to(&rtp(8, 1, 160, &[0xD5; FRAME]), b_local)
        .await
        .unwrap();
    assert_eq!(recv_packets(&caller, 1).await.len(), 1);
    let mut buf = [0u8; 64];
    assert!(prankster.try_recv_from(&mut buf).is_err());
}

#[tokio::test]
async fn a_new_bridge_detaches_the_former_peer() {
    let (media, _events) = Media::new(config(31_700));
    let mut legs = Vec::new();
    let mut phones = Vec::new();
    for _ in 0..3 {
        let (leg, local) = media.open_leg().unwrap();
        let p = phone();
        media.set_remote(leg, p.local_addr().unwrap(), Codec::Pcma, None);
        legs.push((leg, local));
        phones.push(p);
    }
    let [(a, _), (b, b_local), (c, c_local)] = legs[..] else {
        unreachable!()
    };
    media.bridge(a, b, None);
    media.bridge(a, c, None);
    phones[1]
        .send_to(&rtp(8, 1, 160, &[0xD5; FRAME]), b_local)
        .await
        .unwrap();
    phones[2]
        .send_to(&rtp(8, 1, 160, &[0xD5; FRAME]), c_local)
        .await
        .unwrap();
    assert_eq!(
        recv_packets(&phones[0], 2).await.len(),
        1,
        "only c reaches a"
    );
}

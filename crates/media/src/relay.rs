//! The tasks that move audio: each port pair's receiver, and the one timer of all announcements.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::debug;

use crate::classify::{Incoming, accepts, classify};
use crate::leg::Port;
use crate::{FRAME, Inner, MediaEvent, SPEECH_FRAMES, SPEECH_RMS, lock};

/// Root mean square of decoded samples.
fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}
/// Sends the next 20 ms of every announcement being played, all from one timer.
pub(crate) async fn play_all(inner: Weak<Inner>) {
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    // After a stall, resume on the 20 ms grid rather than bursting packets.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut payload = [0u8; FRAME];
    let mut due = Vec::new();
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        {
            let mut playing = lock(&inner.playing);
            playing.retain(|_, p| {
                let samples = p.audio.samples();
                if p.at >= samples.len() {
                    if !p.looped || samples.is_empty() {
                        return false;
                    }
                    p.at = 0;
                }
                let mut state = lock(&p.port.state);
                if state.peer.is_some() {
                    // Bridged meanwhile: the conversation has the leg now.
                    return false;
                }
                if let Some(remote) = state.remote {
                    let codec = state.codec;
                    for (i, byte) in payload.iter_mut().enumerate() {
                        *byte = codec.encode(samples.get(p.at + i).copied().unwrap_or(0));
                    }
                    let packet = state
                        .out
                        .packet(codec.payload_type(), &payload, FRAME as u32);
                    if let Some(packet) = state.seal(packet) {
                        due.push((p.port.clone(), packet, remote));
                    }
                    p.at += FRAME;
                }
                true
            });
        }
        for (port, packet, remote) in due.drain(..) {
            // A full socket buffer loses one packet of announcement, never the timer.
            let _ = port.rtp.try_send_to(&packet, remote);
        }
    }
}

/// Reads a port pair's RTP for as long as the platform runs: key presses become events; audio
/// goes to the bridged peer and the recorder; a closed pair drops everything.
pub(crate) async fn receive(port: Arc<Port>, events: mpsc::Sender<MediaEvent>) {
    let mut buf = vec![0u8; 2048];
    let mut samples = Vec::with_capacity(FRAME);
    loop {
        let (len, from) = match port.rtp.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                debug!(port = %port.local, error = %e, "RTP receive error");
                // ICMP errors from a gone peer surface here and are harmless; anything else
                // could repeat at once, so give the other calls the core meanwhile.
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                ) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                continue;
            }
        };
        let mut dtmf = None;
        let mut heard = None;
        let decrypted;
        let forward = {
            let mut state = lock(&port.state);
            let Some(leg) = state.leg else {
                continue;
            };
            let datagram: &[u8] = match state.srtp.as_mut() {
                None => &buf[..len],
                // What does not authenticate (plain RTP, another key, a replay) is not heard.
                Some(srtp) => match srtp.inbound.decrypt_rtp(&buf[..len]) {
                    Ok(plain) => {
                        decrypted = plain;
                        &decrypted
                    }
                    Err(e) => {
                        debug!(port = %port.local, error = %e, "SRTP packet refused");
                        continue;
                    }
                },
            };
            let incoming = classify(datagram, state.dtmf_pt);
            if incoming == Incoming::Garbage {
                continue;
            }
            if !accepts(&mut state, from) {
                continue;
            }
            match incoming {
                Incoming::Key { timestamp, digit } => {
                    if state.last_dtmf != Some(timestamp) {
                        state.last_dtmf = Some(timestamp);
                        dtmf = Some((leg, digit));
                    }
                    None
                }
                Incoming::Audio {
                    codec,
                    payload_type,
                    payload,
                } => {
                    samples.clear();
                    samples.extend(payload.iter().map(|&c| codec.decode(c)));
                    if state.peer.is_none() && !state.heard && rms(&samples) > SPEECH_RMS {
                        state.voiced += 1;
                        if state.voiced >= SPEECH_FRAMES {
                            state.heard = true;
                            heard = Some(leg);
                        }
                    }
                    if let Some((recorder, side)) = &state.recorder {
                        lock(recorder).push(*side, &samples);
                    }
                    state
                        .peer
                        .clone()
                        .map(|peer| (peer, codec, payload_type, payload))
                }
                Incoming::Ignored | Incoming::Garbage => None,
            }
        };
        if let Some((leg, digit)) = dtmf {
            let _ = events.try_send(MediaEvent::Dtmf { leg, digit });
        }
        if let Some(leg) = heard {
            let _ = events.try_send(MediaEvent::Heard { leg });
        }
        let Some((peer, codec, payload_type, payload)) = forward else {
            continue;
        };
        let sent = {
            let mut state = lock(&peer.state);
            state.remote.map(|remote| {
                let out_codec = state.codec;
                // The peer gets the anchor's own stream (SSRC, sequence, timestamp), so a
                // switch from announcement to conversation is seamless for its jitter buffer.
                let packet = if out_codec == codec {
                    state
                        .out
                        .packet(payload_type, payload, payload.len() as u32)
                } else {
                    let transcoded: Vec<u8> =
                        samples.iter().map(|&s| out_codec.encode(s)).collect();
                    state.out.packet(
                        out_codec.payload_type(),
                        &transcoded,
                        transcoded.len() as u32,
                    )
                };
                state.seal(packet).map(|packet| (packet, remote))
            })
        }
        .flatten();
        if let Some((packet, remote)) = sent {
            let _ = peer.rtp.send_to(&packet, remote).await;
        }
    }
}

//! The RTP media anchor of Secourir: every call's audio goes through the platform, so that the
//! caller hears announcements while queued, the call-taker and the caller hear each other once
//! bridged (G.711 A-law or µ-law, transcoded if they differ), RFC 4733 key presses reach the
//! crisis menu, and every conversation is recorded as one stereo WAV (caller left, call-taker
//! right) with its SHA-256.
//!
//! It is an I/O shell: it decides nothing, the platform tells it what to play and what to bridge.

pub mod g711;
pub mod sdp;

mod classify;
mod leg;
mod ports;
mod recorder;
mod relay;
mod srtp;

pub use recorder::{repair_recording, sha256_of};
pub use srtp::SrtpKeys;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::leg::LegState;
use crate::leg::Port;
use crate::ports::{Ports, first_port};
use crate::recorder::{Recorder, hash_file};
use crate::relay::play_all;
use crate::srtp::{Srtp, srtp_context};

/// Samples in one 20 ms G.711 packet.
const FRAME: usize = 160;
/// A closed port pair is not given to another call before this, so that the last packets of
/// the former peer cannot reach the next caller; while younger, a fresh pair is bound instead.
const REUSE_AFTER: Duration = Duration::from_secs(1);

/// Root mean square of a 20 ms frame above which the caller is making a sound: about
/// -40 dBFS, above the comfort noise and line hiss of a silent call.
pub const SPEECH_RMS: f64 = 330.0;
/// Such frames (not necessarily in a row) that make a caller heard: 100 ms of sound.
pub const SPEECH_FRAMES: u16 = 5;

/// A G.711 codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// µ-law, payload type 0.
    Pcmu,
    /// A-law, payload type 8.
    Pcma,
}

impl Codec {
    /// Its static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    fn of_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    fn decode(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => g711::ulaw_decode(code),
            Codec::Pcma => g711::alaw_decode(code),
        }
    }

    fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => g711::ulaw_encode(sample),
            Codec::Pcma => g711::alaw_encode(sample),
        }
    }
}

/// Errors of the media anchor.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Every port pair of the range is taken.
    #[error("no free RTP port pair left in {0}-{1}")]
    NoPorts(u16, u16),
    /// An SDP body is unusable.
    #[error("SDP: {0}")]
    Sdp(String),
    /// SRTP was offered, or asked, with no key the anchor can use.
    #[error("SRTP: {0}")]
    SrtpKey(String),
    /// An audio file is unusable.
    #[error("audio {path}: {reason}")]
    Audio {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Where media binds and which ports it may use.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Address bound and announced in SDP.
    pub ip: IpAddr,
    /// First port of the range.
    pub port_min: u16,
    /// Last port of the range.
    pub port_max: u16,
    /// Open no socket at all: legs exist only as numbers and SDP points at the discard port.
    /// For measuring the signalling plane alone; callers hear nothing and nothing is recorded.
    pub signalling_only: bool,
    /// Happenings (DTMF, finished recordings) the platform has not taken yet; at the bound the
    /// media task waits before reporting.
    pub events: usize,
}

/// One side of a call's media: an RTP and RTCP port pair facing one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

/// Something heard on a leg, or a recording done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The caller spoke (or made some sound) while not bridged to anyone: reported once per
    /// leg, after [`SPEECH_FRAMES`] frames louder than [`SPEECH_RMS`]. A silent robot of a
    /// flood never is.
    Heard {
        /// The leg.
        leg: LegId,
    },
    /// A key pressed (RFC 4733), reported once per press.
    Dtmf {
        /// The leg.
        leg: LegId,
        /// `b'0'..=b'9'`, `b'*'`, `b'#'`, `b'A'..=b'D'`.
        digit: u8,
    },
    /// A recording that [`Media::close`] announced is finished and hashed; `None` when it
    /// could not be finished (the reason is logged).
    Recorded {
        /// The file the bridge was recorded to.
        path: PathBuf,
        /// What was written.
        recording: Option<Recording>,
    },
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// The WAV file.
    pub path: PathBuf,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its length.
    pub duration_ms: u64,
    /// Its size.
    pub bytes: u64,
}

/// Audio to play: 8 kHz mono 16-bit samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    samples: Vec<i16>,
}

impl Audio {
    /// Audio from samples.
    pub fn from_samples(samples: Vec<i16>) -> Audio {
        Audio { samples }
    }

    /// Reads an 8 kHz mono 16-bit PCM WAV file.
    pub fn from_wav(path: &Path) -> Result<Audio, MediaError> {
        let fail = |reason: String| MediaError::Audio {
            path: path.display().to_string(),
            reason,
        };
        let reader = hound::WavReader::open(path).map_err(|e| fail(e.to_string()))?;
        let spec = reader.spec();
        if spec.sample_rate != 8000 || spec.channels != 1 || spec.bits_per_sample != 16 {
            return Err(fail("must be 8 kHz mono 16-bit PCM".into()));
        }
        let samples = reader
            .into_samples::<i16>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.to_string()))?;
        Ok(Audio { samples })
    }

    /// Its length in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 / 8
    }

    /// Its samples.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in one call's task must not silence every other call.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An announcement being played to a leg.
struct Playing {
    port: Arc<Port>,
    audio: Arc<Audio>,
    at: usize,
    looped: bool,
}
struct Inner {
    config: MediaConfig,
    ports: Mutex<Ports>,
    playing: Mutex<HashMap<LegId, Playing>>,
    player_started: AtomicBool,
    next_leg: AtomicU64,
    events: mpsc::Sender<MediaEvent>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for tasks in &lock(&self.ports).bound {
            for task in tasks {
                task.abort();
            }
        }
    }
}

/// The media anchor; cheap to clone.
#[derive(Clone)]
pub struct Media {
    inner: Arc<Inner>,
}

impl Media {
    /// A media anchor, and the receiver of what it hears.
    pub fn new(config: MediaConfig) -> (Media, mpsc::Receiver<MediaEvent>) {
        let (events, rx) = mpsc::channel(config.events.max(1));
        let media = Media {
            inner: Arc::new(Inner {
                ports: Mutex::new(Ports {
                    next_port: first_port(&config),
                    ..Ports::default()
                }),
                config,
                playing: Mutex::new(HashMap::new()),
                player_started: AtomicBool::new(false),
                next_leg: AtomicU64::new(1),
                events,
            }),
        };
        (media, rx)
    }

    /// Legs open now.
    pub fn open_legs(&self) -> usize {
        lock(&self.inner.ports).open.len()
    }

    /// Gives a leg an RTP port (even, in the range) and RTCP on the next one.
    pub fn open_leg(&self) -> Result<(LegId, SocketAddr), MediaError> {
        let id = LegId(self.inner.next_leg.fetch_add(1, Ordering::Relaxed));
        if self.inner.config.signalling_only {
            return Ok((id, SocketAddr::new(self.inner.config.ip, 9)));
        }
        let mut ports = lock(&self.inner.ports);
        let rested = ports
            .closed
            .front()
            .is_some_and(|(_, since)| since.elapsed() >= REUSE_AFTER);
        let port = if rested {
            ports.closed.pop_front().map(|(port, _)| port)
        } else {
            match self.bind_pair(&mut ports) {
                Some((rtp, rtcp)) => self.adopt(&mut ports, rtp, rtcp),
                // Out of ports (or of file descriptors): a pair closed a moment ago is better
                // than no call.
                None => ports.closed.pop_front().map(|(port, _)| port),
            }
        };
        let Some(port) = port else {
            return Err(MediaError::NoPorts(
                self.inner.config.port_min,
                self.inner.config.port_max,
            ));
        };
        *lock(&port.state) = LegState::new(Some(id));
        let local = port.local;
        ports.open.insert(id, port);
        Ok((id, local))
    }

    fn port(&self, id: LegId) -> Option<Arc<Port>> {
        lock(&self.inner.ports).open.get(&id).cloned()
    }

    /// Where the peer's RTP goes, its codec and its telephone-event payload type.
    pub fn set_remote(&self, id: LegId, remote: SocketAddr, codec: Codec, dtmf_pt: Option<u8>) {
        if let Some(port) = self.port(id) {
            let mut state = lock(&port.state);
            state.remote = Some(remote);
            state.remote_fixed = true;
            state.codec = codec;
            state.dtmf_pt = dtmf_pt;
        }
    }

    /// Protects the leg with SRTP from now on: what it receives is read with the peer's key
    /// (and dropped when it does not authenticate), what it sends is protected with ours.
    pub fn set_srtp(&self, id: LegId, keys: &SrtpKeys) -> Result<(), MediaError> {
        let srtp = Srtp {
            inbound: srtp_context(keys.suite, &keys.theirs, true)?,
            outbound: srtp_context(keys.suite, &keys.ours, false)?,
        };
        if let Some(port) = self.port(id) {
            lock(&port.state).srtp = Some(srtp);
        }
        Ok(())
    }

    /// Plays audio to a leg in 20 ms packets, looping if asked, until bridged, closed or replaced.
    pub fn play(&self, id: LegId, audio: Arc<Audio>, looped: bool) {
        let Some(port) = self.port(id) else {
            return;
        };
        lock(&self.inner.playing).insert(
            id,
            Playing {
                port,
                audio,
                at: 0,
                looped,
            },
        );
        if !self.inner.player_started.swap(true, Ordering::AcqRel) {
            tokio::spawn(play_all(Arc::downgrade(&self.inner)));
        }
    }

    /// Relays audio both ways between two legs and, given a path, records the conversation:
    /// left channel `a` (the caller), right channel `b` (the call-taker).
    pub fn bridge(&self, a: LegId, b: LegId, record_to: Option<PathBuf>) {
        let (Some(port_a), Some(port_b)) = (self.port(a), self.port(b)) else {
            return;
        };
        {
            let mut playing = lock(&self.inner.playing);
            playing.remove(&a);
            playing.remove(&b);
        }
        let recorder = record_to
            .as_deref()
            .and_then(Recorder::create)
            .map(|r| Arc::new(Mutex::new(r)));
        for (port, peer, side) in [(&port_a, &port_b, 0), (&port_b, &port_a, 1)] {
            let old_peer = {
                let mut state = lock(&port.state);
                state.recorder = recorder.clone().map(|r| (r, side));
                state.peer.replace(peer.clone())
            };
            // A leg bridged elsewhere (a transfer) leaves its former peer silent, not relaying
            // into a conversation it no longer belongs to; the former recording ends with it.
            if let Some(old) = old_peer
                && !Arc::ptr_eq(&old, &port_a)
                && !Arc::ptr_eq(&old, &port_b)
            {
                let mut state = lock(&old.state);
                state.peer = None;
                state.recorder = None;
            }
        }
    }

    /// Closes a leg; its port pair rests, then serves another call. If the leg carried a
    /// recording, it is finished and hashed off the caller's task and reported as
    /// [`MediaEvent::Recorded`]; the path returned says which one to expect.
    pub fn close(&self, id: LegId) -> Option<PathBuf> {
        lock(&self.inner.playing).remove(&id);
        let port = {
            let mut ports = lock(&self.inner.ports);
            let port = ports.open.remove(&id)?;
            ports.closed.push_back((port.clone(), Instant::now()));
            port
        };
        let (peer, recorder) = {
            let mut state = lock(&port.state);
            let peer = state.peer.take();
            let recorder = state.recorder.take();
            *state = LegState::new(None);
            (peer, recorder)
        };
        if let Some(peer) = peer {
            let mut state = lock(&peer.state);
            state.peer = None;
            state.recorder = None;
        }
        let (recorder, _) = recorder?;
        let path = lock(&recorder).path.clone();
        let events = self.inner.events.clone();
        let reported = path.clone();
        tokio::task::spawn_blocking(move || {
            let finished = lock(&recorder).finish();
            let recording = finished.and_then(|(path, duration_ms)| {
                let (sha256, bytes) = hash_file(&path)?;
                Some(Recording {
                    path,
                    sha256,
                    duration_ms,
                    bytes,
                })
            });
            let _ = events.blocking_send(MediaEvent::Recorded {
                path: reported,
                recording,
            });
        });
        Some(path)
    }
}

#[cfg(test)]
mod tests;

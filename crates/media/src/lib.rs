//! The RTP media anchor of Secourir: every call's audio goes through the platform, so that the
//! caller hears announcements while queued, the call-taker and the caller hear each other once
//! bridged (G.711 A-law or µ-law, transcoded if they differ), RFC 4733 key presses reach the
//! crisis menu, and every conversation is recorded as one stereo WAV (caller left, call-taker
//! right) with its SHA-256.
//!
//! It is an I/O shell: it decides nothing, the platform tells it what to play and what to bridge.

pub mod g711;
pub mod sdp;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

/// Samples in one 20 ms G.711 packet.
const FRAME: usize = 160;
/// Audio kept per side of a recording beyond what was written: 200 ms bounds memory and delay.
const RECORD_BACKLOG: usize = 1_600;
/// Audio a side of a recording gathers before it is written (40 ms), so that a packet arriving
/// a little after the other side's does not punch a 20 ms hole of silence into the file.
const RECORD_CUSHION: usize = 2 * FRAME;
/// A closed port pair is not given to another call before this, so that the last packets of
/// the former peer cannot reach the next caller; while younger, a fresh pair is bound instead.
const REUSE_AFTER: Duration = Duration::from_secs(1);

/// Root mean square of a 20 ms frame above which the caller is making a sound: about
/// -40 dBFS, above the comfort noise and line hiss of a silent call.
pub const SPEECH_RMS: f64 = 330.0;
/// Such frames (not necessarily in a row) that make a caller heard: 100 ms of sound.
pub const SPEECH_FRAMES: u16 = 5;

/// Root mean square of decoded samples.
fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

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

/// The RTP stream a leg sends: its own SSRC, sequence and timestamp, whoever's audio it carries.
#[derive(Debug)]
struct Outgoing {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    first: bool,
}

impl Outgoing {
    fn packet(&mut self, pt: u8, payload: &[u8], samples: u32) -> Vec<u8> {
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

/// A stereo recording being written. Audio is written as it arrives, up to the time elapsed,
/// so the file lasts exactly as long as the bridge without a timer per call.
struct Recorder {
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    path: PathBuf,
    sides: [VecDeque<i16>; 2],
    primed: [bool; 2],
    started: Instant,
    frames: u64,
}

impl Recorder {
    fn create(path: &Path) -> Option<Recorder> {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let created = match hound::WavWriter::create(path, spec) {
            // The directory is made once, by the first recording that needs it.
            Err(hound::Error::IoError(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                hound::WavWriter::create(path, spec)
            }
            other => other,
        };
        match created {
            Ok(writer) => Some(Recorder {
                writer: Some(writer),
                path: path.to_owned(),
                sides: [VecDeque::new(), VecDeque::new()],
                primed: [false; 2],
                started: Instant::now(),
                frames: 0,
            }),
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot create the recording");
                None
            }
        }
    }

    fn push(&mut self, side: usize, samples: &[i16]) {
        let queue = &mut self.sides[side];
        queue.extend(samples);
        let excess = queue.len().saturating_sub(RECORD_BACKLOG);
        queue.drain(..excess);
        self.catch_up();
    }

    /// Writes frames up to the time elapsed: a side's audio once it has its cushion, silence
    /// where it has none.
    fn catch_up(&mut self) {
        let due = self.started.elapsed().as_millis() as u64 * 8;
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        while self.frames < due {
            // Bounded chunks: hound's sample writer buffers one chunk at a time.
            let chunk = (due - self.frames).min(8_000);
            let mut samples = writer.get_i16_writer(chunk as u32 * 2);
            for _ in 0..chunk {
                for side in 0..2 {
                    let queue = &mut self.sides[side];
                    let primed = &mut self.primed[side];
                    if !*primed && queue.len() >= RECORD_CUSHION {
                        *primed = true;
                    }
                    let sample = if *primed { queue.pop_front() } else { None };
                    if sample.is_none() {
                        *primed = false;
                    }
                    samples.write_sample(sample.unwrap_or(0));
                }
            }
            if samples.flush().is_err() {
                warn!(path = %self.path.display(), "recording write failed");
                self.writer = None;
                return;
            }
            self.frames += chunk;
        }
    }

    /// Writes what is due and closes the file; later pushes write nothing.
    fn finish(&mut self) -> Option<(PathBuf, u64)> {
        self.catch_up();
        let writer = self.writer.take()?;
        if let Err(e) = writer.finalize() {
            warn!(path = %self.path.display(), error = %e, "recording not finalised");
            return None;
        }
        Some((self.path.clone(), self.frames / 8))
    }
}

/// What the port pair of an open leg does with its audio. A closed pair has no `leg` and drops
/// whatever it receives.
struct LegState {
    leg: Option<LegId>,
    remote: Option<SocketAddr>,
    /// The remote came from SDP: only its IP may send (any port, NATs rewrite ports).
    remote_fixed: bool,
    codec: Codec,
    dtmf_pt: Option<u8>,
    out: Outgoing,
    peer: Option<Arc<Port>>,
    recorder: Option<(Arc<Mutex<Recorder>>, usize)>,
    last_dtmf: Option<u32>,
    /// Frames louder than [`SPEECH_RMS`] heard while not bridged.
    voiced: u16,
    /// Whether [`MediaEvent::Heard`] was reported.
    heard: bool,
    /// SRTP (RFC 3711) with the keys the offer and the answer exchanged; None: RTP.
    srtp: Option<Srtp>,
}

/// The two SRTP contexts of a leg: the peer's key reads what it sends, the anchor's protects
/// what the anchor sends.
struct Srtp {
    inbound: webrtc_srtp::context::Context,
    outbound: webrtc_srtp::context::Context,
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

fn srtp_context(
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

impl LegState {
    /// The packet as it goes on the wire: protected when the leg is SRTP; None when it cannot
    /// be (it is then not sent).
    fn seal(&mut self, packet: Vec<u8>) -> Option<Vec<u8>> {
        match &mut self.srtp {
            None => Some(packet),
            Some(srtp) => srtp.outbound.encrypt_rtp(&packet).ok().map(|b| b.to_vec()),
        }
    }
}

impl LegState {
    fn new(leg: Option<LegId>) -> LegState {
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

/// An RTP and RTCP port pair, bound once and kept for the platform's life: legs come and go
/// on it without a socket, a bind or a task per call.
struct Port {
    rtp: UdpSocket,
    local: SocketAddr,
    state: Mutex<LegState>,
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

/// The port pairs: those carrying a leg, and those closed, oldest first.
#[derive(Default)]
struct Ports {
    open: HashMap<LegId, Arc<Port>>,
    closed: VecDeque<(Arc<Port>, Instant)>,
    /// Every pair bound, with the tasks reading it.
    bound: Vec<[JoinHandle<()>; 2]>,
    next_port: u32,
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

    /// Binds a fresh pair on the range, from where the last search stopped.
    fn bind_pair(&self, ports: &mut Ports) -> Option<(std::net::UdpSocket, std::net::UdpSocket)> {
        let max = self.inner.config.port_max;
        let first = first_port(&self.inner.config);
        // RTP ports p = first, first + 2, … while RTCP p + 1 stays within the range.
        let pairs = if u32::from(max) > first {
            (u32::from(max) - first - 1) / 2 + 1
        } else {
            0
        };
        // Every pair of the range is tried before giving up: a port held by another program
        // is skipped, never a reason to refuse a caller while the range has free ones.
        if ports.bound.len() as u32 >= pairs {
            return None;
        }
        for _ in 0..pairs {
            let port = ports.next_port;
            ports.next_port = if port + 3 > u32::from(max) {
                first
            } else {
                port + 2
            };
            let (Ok(rtp_port), Ok(rtcp_port)) = (u16::try_from(port), u16::try_from(port + 1))
            else {
                continue;
            };
            let ip = self.inner.config.ip;
            let Ok(rtp) = std::net::UdpSocket::bind(SocketAddr::new(ip, rtp_port)) else {
                continue;
            };
            let Ok(rtcp) = std::net::UdpSocket::bind(SocketAddr::new(ip, rtcp_port)) else {
                continue;
            };
            return Some((rtp, rtcp));
        }
        None
    }

    /// Starts reading a freshly bound pair.
    fn adopt(
        &self,
        ports: &mut Ports,
        rtp: std::net::UdpSocket,
        rtcp: std::net::UdpSocket,
    ) -> Option<Arc<Port>> {
        let local = rtp.local_addr().ok()?;
        rtp.set_nonblocking(true).ok()?;
        rtcp.set_nonblocking(true).ok()?;
        let rtp = UdpSocket::from_std(rtp).ok()?;
        let rtcp = UdpSocket::from_std(rtcp).ok()?;
        let port = Arc::new(Port {
            rtp,
            local,
            state: Mutex::new(LegState::new(None)),
        });
        let receiving = tokio::spawn(receive(port.clone(), self.inner.events.clone()));
        // RTCP is read and dropped: the port pair stays ours and peers get no ICMP errors.
        let rtcp_task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while rtcp.recv_from(&mut buf).await.is_ok() {}
        });
        ports.bound.push([receiving, rtcp_task]);
        Some(port)
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

/// Sends the next 20 ms of every announcement being played, all from one timer.
async fn play_all(inner: Weak<Inner>) {
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

/// The lowest even port of the range, where RTP ports start (RFC 3550: RTP even, RTCP next).
fn first_port(config: &MediaConfig) -> u32 {
    let min = u32::from(config.port_min);
    min + min % 2
}

/// Makes a recording cut by a crash playable and describes it; whether its header had to be
/// mended comes with it. A WAV writer sets the RIFF and `data` sizes only when it finishes, so a
/// crash leaves them at zero: they are set from the file's length, to a whole number of frames.
/// `None` when the file is not a WAV at all (cut before its header).
pub fn repair_recording(path: &Path) -> Option<(Recording, bool)> {
    use std::io::{Seek, SeekFrom, Write as _};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .ok()?;
    let len = file.metadata().ok()?.len();
    let mut riff = [0u8; 12];
    file.read_exact(&mut riff).ok()?;
    if &riff[..4] != b"RIFF" || &riff[8..] != b"WAVE" {
        return None;
    }
    let (mut channels, mut rate, mut bits) = (0u64, 0u64, 0u64);
    let mut at = 12u64;
    let mut repaired = false;
    let mut data_bytes = None;
    while at + 8 <= len {
        file.seek(SeekFrom::Start(at)).ok()?;
        let mut head = [0u8; 8];
        file.read_exact(&mut head).ok()?;
        let size = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        if &head[..4] == b"fmt " {
            let mut fmt = [0u8; 16];
            file.read_exact(&mut fmt).ok()?;
            channels = u64::from(u16::from_le_bytes([fmt[2], fmt[3]]));
            rate = u64::from(u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]));
            bits = u64::from(u16::from_le_bytes([fmt[14], fmt[15]]));
        } else if &head[..4] == b"data" {
            let frame = (channels * bits / 8).max(1);
            let actual = (len - at - 8) / frame * frame;
            if size != actual {
                let actual32 = u32::try_from(actual).ok()?;
                file.seek(SeekFrom::Start(at + 4)).ok()?;
                file.write_all(&actual32.to_le_bytes()).ok()?;
                let riff_size = u32::try_from(at + 8 + actual - 8).ok()?;
                file.seek(SeekFrom::Start(4)).ok()?;
                file.write_all(&riff_size.to_le_bytes()).ok()?;
                file.set_len(at + 8 + actual).ok()?;
                file.sync_all().ok()?;
                repaired = true;
            }
            data_bytes = Some(actual);
            break;
        }
        at += 8 + size + (size & 1);
    }
    let data = data_bytes?;
    let per_second = channels * rate * bits / 8;
    let duration_ms = (data * 1000).checked_div(per_second).unwrap_or(0);
    drop(file);
    let (sha256, bytes) = hash_file(path)?;
    Some((
        Recording {
            path: path.to_path_buf(),
            sha256,
            duration_ms,
            bytes,
        },
        repaired,
    ))
}

/// The SHA-256 (hex) and length of a file: to check a recording copied from another node.
pub fn sha256_of(path: &Path) -> Option<(String, u64)> {
    hash_file(path)
}

fn hash_file(path: &Path) -> Option<(String, u64)> {
    let mut file = File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Some((hex::encode(hasher.finalize()), total))
}

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
enum Incoming<'a> {
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
fn classify(datagram: &[u8], dtmf_pt: Option<u8>) -> Incoming<'_> {
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
fn accepts(state: &mut LegState, from: SocketAddr) -> bool {
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

/// Reads a port pair's RTP for as long as the platform runs: key presses become events; audio
/// goes to the bridged peer and the recorder; a closed pair drops everything.
async fn receive(port: Arc<Port>, events: mpsc::Sender<MediaEvent>) {
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

#[cfg(test)]
mod tests;

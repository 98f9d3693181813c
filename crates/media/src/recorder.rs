//! Recordings: the stereo WAV written as a bridge goes, its SHA-256, and its repair after a crash.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tracing::warn;

use crate::{FRAME, Recording};

/// Audio kept per side of a recording beyond what was written: 200 ms bounds memory and delay.
const RECORD_BACKLOG: usize = 1_600;
/// Audio a side of a recording gathers before it is written (40 ms), so that a packet arriving
/// a little after the other side's does not punch a 20 ms hole of silence into the file.
const RECORD_CUSHION: usize = 2 * FRAME;
/// A stereo recording being written. Audio is written as it arrives, up to the time elapsed,
/// so the file lasts exactly as long as the bridge without a timer per call.
pub(crate) struct Recorder {
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    pub(crate) path: PathBuf,
    sides: [VecDeque<i16>; 2],
    primed: [bool; 2],
    started: Instant,
    frames: u64,
}

impl Recorder {
    pub(crate) fn create(path: &Path) -> Option<Recorder> {
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

    pub(crate) fn push(&mut self, side: usize, samples: &[i16]) {
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
    pub(crate) fn finish(&mut self) -> Option<(PathBuf, u64)> {
        self.catch_up();
        let writer = self.writer.take()?;
        if let Err(e) = writer.finalize() {
            warn!(path = %self.path.display(), error = %e, "recording not finalised");
            return None;
        }
        Some((self.path.clone(), self.frames / 8))
    }
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

pub(crate) fn hash_file(path: &Path) -> Option<(String, u64)> {
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

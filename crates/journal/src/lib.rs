//! The core's inputs as a log. The core is deterministic: fed the same events at the same
//! instants it gives the same commands. So every event the platform feeds it is written here,
//! with its instant, in order; reading the file back and feeding it to a fresh core with the
//! same configuration replays the day exactly, and with another configuration answers "what
//! if" on real traffic. The same entries are what a cluster replicates.
//!
//! A file is a header (the configuration it ran with) and entries, each framed as its length
//! and CRC-32 (little endian) before its bytes, so that a torn last entry (the process killed
//! mid-write) is told apart from a damaged file. Since version 2 each entry's payload starts
//! with a tag: an input of the core, or a configuration taken live, whose place among the
//! inputs a replay must keep. Versions 1 and 2 were in the compact wire format, which a version
//! whose types grew would misread: they are refused with the version to replay them with.
//! Since version 3 entries are in the named format, so that a later version of the platform
//! replays an earlier one's journal.

mod applier;
mod writer;

use std::io::Read;
use std::path::Path;

use secourir_core::{Event, Instant};
use secourir_wire::Format;
use serde::{Deserialize, Serialize};

pub use applier::{Applier, ReadAgain};
pub use writer::{Journal, JournalSender};

/// First bytes of every journal file, with the format's version.
const MAGIC: &[u8; 8] = b"SCRJRN03";

/// The versions in the compact format: no longer read.
const MAGICS_COMPACT: [&[u8; 8]; 2] = [b"SCRJRN01", b"SCRJRN02"];

/// How this version writes a journal's header and entries.
const FORMAT: Format = Format::Named;

/// Tag of an entry that is an input of the core.
const TAG_INPUT: u8 = 0;

/// Tag of an entry that is a configuration taken live.
const TAG_CONFIG: u8 = 1;

/// Longest frame accepted when reading: far above any event, so that a damaged length is not
/// taken for a frame of gigabytes.
const MAX_FRAME: u32 = 1 << 20;

/// What a journal says about the run that wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The national configuration's TOML, as the platform loaded it.
    pub config: String,
    /// The demonstration's simulated call-takers were added to the configuration's.
    pub simulated_call_takers: bool,
    /// When the platform started, ms since the epoch.
    pub started_at: u64,
    /// The node that wrote it.
    pub node: String,
}

/// One input of the core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The instant it was fed with.
    pub at: Instant,
    /// The event.
    pub event: Event,
}

/// A configuration the platform took live, without a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reconfigured {
    /// When.
    pub at: Instant,
    /// The configuration's TOML.
    pub config: String,
}

/// A configuration taken live, and its place among the inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// How many of the journal's inputs came before it.
    pub after: usize,
    /// The change.
    pub change: Reconfigured,
}

/// A journal read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Its header.
    pub header: Header,
    /// Its inputs of the core, in order.
    pub entries: Vec<Entry>,
    /// The configurations taken live, in order.
    pub changes: Vec<Change>,
    /// The last entry was cut short (the process died while writing it) and was left out.
    pub torn_tail: bool,
}

/// Why a journal cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file would not open or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a journal of this version.
    #[error("not a Secourir journal (or another version of one)")]
    NotAJournal,
    /// A journal in the compact format of the versions before numbered formats.
    #[error(
        "a journal of a version before numbered wire formats: replay it with the version that introduced format 2, which reads both"
    )]
    Compact,
    /// A frame in the middle of the file does not match its checksum or cannot be decoded.
    #[error("entry {index} at byte {offset} is damaged: {reason}")]
    Damaged {
        /// Its position among the entries (0 is the header).
        index: usize,
        /// Its first byte in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The bytes of one frame: length, CRC-32, payload.
pub(crate) fn frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads a journal file.
pub fn read(path: &Path) -> Result<Recorded, JournalError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    parse(&bytes)
}

/// Reads a journal from its bytes.
pub fn parse(bytes: &[u8]) -> Result<Recorded, JournalError> {
    let Some(body) = bytes.strip_prefix(MAGIC) else {
        if MAGICS_COMPACT.iter().any(|m| bytes.starts_with(*m)) {
            return Err(JournalError::Compact);
        }
        return Err(JournalError::NotAJournal);
    };
    let format = FORMAT;
    let mut frames = Frames {
        bytes: body,
        offset: MAGIC.len() as u64,
    };
    let damaged = |index: usize, offset: u64, reason: String| JournalError::Damaged {
        index,
        offset,
        reason,
    };
    let header: Header = match frames.next_payload() {
        Ok(Some(payload)) => format
            .decode(payload)
            .map_err(|_| JournalError::NotAJournal)?,
        Ok(None) | Err(Frame::Torn) | Err(Frame::Damaged(_)) => {
            return Err(JournalError::NotAJournal);
        }
    };
    let mut entries = Vec::new();
    let mut changes = Vec::new();
    let mut torn_tail = false;
    loop {
        let index = entries.len() + changes.len() + 1;
        let offset = frames.offset;
        match frames.next_payload() {
            Ok(Some(payload)) => {
                let decode_error =
                    |e: secourir_wire::WireError| damaged(index, offset, e.to_string());
                match payload.split_first() {
                    Some((&TAG_INPUT, input)) => {
                        entries.push(format.decode(input).map_err(decode_error)?);
                    }
                    Some((&TAG_CONFIG, change)) => changes.push(Change {
                        after: entries.len(),
                        change: format.decode(change).map_err(decode_error)?,
                    }),
                    _ => {
                        return Err(damaged(index, offset, "unknown kind of entry".into()));
                    }
                }
            }
            Ok(None) => break,
            Err(Frame::Torn) => {
                torn_tail = true;
                break;
            }
            Err(Frame::Damaged(reason)) => return Err(damaged(index, offset, reason)),
        }
    }
    Ok(Recorded {
        header,
        entries,
        changes,
        torn_tail,
    })
}

/// Why a frame could not be taken.
enum Frame {
    /// It ends past the end of the file, or is the last one and fails its checksum: the last
    /// write was cut short.
    Torn,
    /// It fails its checksum with frames after it: the file is damaged.
    Damaged(String),
}

struct Frames<'a> {
    bytes: &'a [u8],
    /// Position of `bytes` in the file.
    offset: u64,
}

impl<'a> Frames<'a> {
    /// The next frame's payload; None at a clean end.
    fn next_payload(&mut self) -> Result<Option<&'a [u8]>, Frame> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let Some((head, rest)) = self.bytes.split_first_chunk::<8>() else {
            return Err(Frame::Torn);
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if rest.len() < len as usize {
            return Err(Frame::Torn);
        }
        if len > MAX_FRAME {
            return Err(Frame::Damaged(format!("frame of {len} bytes")));
        }
        let (payload, rest) = rest.split_at(len as usize);
        if crc32fast::hash(payload) != crc {
            return Err(if rest.is_empty() {
                Frame::Torn
            } else {
                Frame::Damaged("checksum does not match".into())
            });
        }
        self.bytes = rest;
        self.offset += 8 + u64::from(len);
        Ok(Some(payload))
    }
}

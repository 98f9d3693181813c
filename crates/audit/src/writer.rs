//! The log on disk: one JWS per line, appended, each append on disk before it returns; and the
//! same file read back for verification.
//!
//! Durability: every `append` (and every `append_batch`, for all its events at once) ends with
//! `fdatasync`. An audit record counts only once it survives a power cut, and the caller is told
//! so by `Ok`; `fdatasync` is enough because an append changes only the data and the length,
//! which it covers. A writer thread draining a queue passes what it drained to `append_batch`
//! and pays one sync for them all (the bench shows both costs).
//!
//! After a crash: a line is written with its newline in one `write`, so the only damage a crash
//! leaves is a last line without its newline. `open` completes it if it is a whole event that
//! follows the chain (the crash came between the bytes and the sync), and otherwise cuts it off:
//! such an event was never acknowledged, so the log loses nothing it promised. What it did is
//! told by [`Writer::repair`], for the caller to record. A last *complete* line that is not an
//! event of this key is no crash's doing: `open` refuses the log ([`OpenError::BrokenLastLine`])
//! rather than chain onto something it cannot vouch for; start a new file, keep the old one for
//! `verify`.
//!
//! One writer per file: `open` takes an exclusive lock (`flock`), so a second process on the
//! same host is refused. In a cluster each node writes its own file with its own chain.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::chain::{Chain, Head};
use crate::event::LogEvent;
use crate::jws::{self, LineError};
use crate::key::{PublicKey, SecretKey, sync_parent};
use crate::verify::{Broken, BrokenKind, Report, Verifier};

/// The longest line the writer writes and the readers read: bounds the memory a damaged or
/// hostile file can make a reader take. An event near it (a LoST response with a boundary by
/// value) should log a reference and a hash instead.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// What `open` did to the log's end after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// A torn last line was cut off.
    Cut {
        /// Where the torn line began.
        offset: u64,
        /// How many bytes it had.
        bytes: u64,
    },
    /// The last line was a whole event short of its newline; the newline was added.
    Completed {
        /// That event's sequence number.
        seq: u64,
    },
}

/// Why a log could not be opened for writing.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another writer holds the log.
    #[error("{0}: another writer holds this log")]
    Locked(PathBuf),
    /// The last complete line is not an event this key signed.
    #[error("{path}: the last line (at byte {offset}) cannot be chained onto: {error}")]
    BrokenLastLine {
        /// The log.
        path: PathBuf,
        /// Where the line begins.
        offset: u64,
        /// What is wrong with it.
        error: LineError,
    },
    /// The end of the log holds a line longer than any event.
    #[error("{0}: its last line is longer than any event ({MAX_LINE_BYTES} bytes)")]
    LineTooLong(PathBuf),
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

/// Why an event was not appended; the chain is where it was, the event is not in the log.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The event's line would exceed [`MAX_LINE_BYTES`].
    #[error("an event of {bytes} bytes exceeds the {MAX_LINE_BYTES}-byte line limit")]
    TooLarge {
        /// Its line's length.
        bytes: usize,
    },
    /// The write or the sync failed.
    #[error("audit log: {0}")]
    Io(#[from] io::Error),
    /// An earlier failure left the file's end unknown: reopen the log (which repairs its end).
    #[error("audit log: an earlier write failed; reopen the log")]
    Poisoned,
}

/// Appends signed events to one log file.
#[derive(Debug)]
pub struct Writer {
    file: File,
    path: PathBuf,
    chain: Chain,
    /// The length of the file that holds whole lines only.
    len: u64,
    /// Set when the file's end is no longer known (a failed sync, a failed undo).
    poisoned: bool,
    repair: Option<Repair>,
}

impl Writer {
    /// Opens the log at `path` (created, mode 0600, if absent) and resumes its chain, repairing
    /// a torn last line; refused if another writer holds it or its last line is broken.
    pub fn open(path: &Path, key: SecretKey) -> Result<Writer, OpenError> {
        let io = |source| OpenError::Io {
            path: path.to_owned(),
            source,
        };
        let mut options = OpenOptions::new();
        options.read(true).append(true).mode(0o600);
        let (file, created) = match options.clone().create_new(true).open(path) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                (options.open(path).map_err(io)?, false)
            }
            Err(e) => return Err(io(e)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::Locked(path.to_owned()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        if created {
            sync_parent(path).map_err(io)?;
        }
        let len = file.metadata().map_err(io)?.len();
        let mut writer = Writer {
            file,
            path: path.to_owned(),
            chain: Chain::new(key),
            len,
            poisoned: false,
            repair: None,
        };
        writer.resume()?;
        Ok(writer)
    }

    /// Reads the end of the file: the chain resumes from its last whole line, and a torn line
    /// after it is completed or cut.
    fn resume(&mut self) -> Result<(), OpenError> {
        let io = |source| OpenError::Io {
            path: self.path.clone(),
            source,
        };
        // The last whole line and a torn one after it fit in this window, or the file is damaged.
        let window = self.len.min(2 * MAX_LINE_BYTES as u64 + 2);
        let start = self.len - window;
        let mut tail = vec![0u8; window as usize];
        self.file.read_exact_at(&mut tail, start).map_err(io)?;
        let whole_end = match tail.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if start == 0 => 0,
            None => return Err(OpenError::LineTooLong(self.path.clone())),
        };
        if whole_end > 0 {
            let body = &tail[..whole_end - 1];
            let line_start = match body.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if start == 0 => 0,
                None => return Err(OpenError::LineTooLong(self.path.clone())),
            };
            let key = self.chain_key();
            self.chain = Chain::resume(key, &body[line_start..]).map_err(|error| {
                OpenError::BrokenLastLine {
                    path: self.path.clone(),
                    offset: start + line_start as u64,
                    error,
                }
            })?;
        }
        let torn = &tail[whole_end..];
        if torn.is_empty() {
            return Ok(());
        }
        let offset = start + whole_end as u64;
        if let Some(seq) = self.follows(torn) {
            let chain = Chain::resume(self.chain_key(), torn);
            self.file.write_all(b"\n").map_err(io)?;
            self.file.sync_data().map_err(io)?;
            // `follows` checked the line with this key: resuming from it cannot fail.
            self.chain = chain.expect("a line that follows the chain resumes it");
            self.len += 1;
            self.repair = Some(Repair::Completed { seq });
        } else {
            self.file.set_len(offset).map_err(io)?;
            self.file.sync_data().map_err(io)?;
            self.repair = Some(Repair::Cut {
                offset,
                bytes: self.len - offset,
            });
            self.len = offset;
        }
        Ok(())
    }

    /// The `seq` of `line` if it is the chain's next event, signed by its key.
    fn follows(&self, line: &[u8]) -> Option<u64> {
        let key = self.chain.public_key();
        let payload = jws::open(line, &key, &jws::header_for(&key)).ok()?;
        let links = jws::links(&payload).ok()?;
        let expected_prev = self.chain.head().map(|h| h.hash.as_str());
        (links.seq == self.chain.next_seq() && links.prev_hash.as_deref() == expected_prev)
            .then_some(links.seq)
    }

    fn chain_key(&self) -> SecretKey {
        self.chain.key().clone()
    }

    /// Signs `event` as the chain's next, appends its line and syncs; returns the line.
    pub fn append(&mut self, event: &LogEvent) -> Result<String, WriteError> {
        let mut lines = self.append_batch(std::slice::from_ref(event))?;
        // One event in, one line out.
        Ok(lines.pop().expect("one line per event"))
    }

    /// Signs `events` in order, appends their lines in one write and syncs once; all or none.
    pub fn append_batch(&mut self, events: &[LogEvent]) -> Result<Vec<String>, WriteError> {
        if self.poisoned {
            return Err(WriteError::Poisoned);
        }
        let before = self.chain.head().cloned();
        let mut lines = Vec::with_capacity(events.len());
        let mut bytes = Vec::new();
        for event in events {
            let line = self.chain.sign(event);
            if line.len() > MAX_LINE_BYTES {
                self.chain.rewind(before);
                return Err(WriteError::TooLarge { bytes: line.len() });
            }
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            lines.push(line);
        }
        if let Err(e) = self.file.write_all(&bytes) {
            self.chain.rewind(before);
            // Part of the bytes may be in: cut them, or the next line would follow a torn one.
            if self.file.set_len(self.len).is_err() {
                self.poisoned = true;
            }
            return Err(WriteError::Io(e));
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed sync the kernel may have dropped the pages or may still write
            // them: the file's end is unknown, and retrying the sync would not tell. Stop here;
            // reopening reads what the disk holds.
            self.chain.rewind(before);
            self.poisoned = true;
            return Err(WriteError::Io(e));
        }
        self.len += bytes.len() as u64;
        Ok(lines)
    }

    /// The last event in the log, none while it is empty.
    pub fn head(&self) -> Option<&Head> {
        self.chain.head()
    }

    /// The key that verifies this log.
    pub fn public_key(&self) -> PublicKey {
        self.chain.public_key()
    }

    /// What `open` repaired at the log's end, if anything.
    pub fn repair(&self) -> Option<&Repair> {
        self.repair.as_ref()
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log's length in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.len
    }
}

/// Why a log file could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyFileError {
    /// The log is broken.
    #[error("{0}")]
    Broken(#[from] Broken),
    /// Reading it failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Verifies the log at `path` against `key`.
pub fn verify_file(path: &Path, key: &PublicKey) -> Result<Report, VerifyFileError> {
    verify_reader(BufReader::new(File::open(path)?), Verifier::new(key))
}

/// Verifies a log read from `reader` with `verifier` (one made with [`Verifier::expect_head`],
/// say); a last line without its newline that is no whole event is named `Truncated`.
pub fn verify_reader<R: BufRead>(
    mut reader: R,
    mut verifier: Verifier,
) -> Result<Report, VerifyFileError> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        let terminated = line.last() == Some(&b'\n');
        if terminated {
            line.pop();
        }
        let number = verifier.lines() + 1;
        let too_long = !terminated && line.len() > MAX_LINE_BYTES;
        match verifier.push(&line) {
            Err(mut broken) => {
                if !terminated
                    && !too_long
                    && broken.line == number
                    && broken.kind == BrokenKind::Changed
                {
                    broken.kind = BrokenKind::Truncated;
                }
                return Err(broken.into());
            }
            // Only a forgery of this key's could make a prefix verify; no line is this long.
            Ok(()) if too_long => {
                return Err(Broken {
                    line: number,
                    kind: BrokenKind::Changed,
                    seq: None,
                    reason: format!("longer than any event ({MAX_LINE_BYTES} bytes)"),
                }
                .into());
            }
            Ok(()) => {}
        }
        if !terminated {
            // EOF, or the over-long case returned above: either way nothing follows.
            break;
        }
    }
    Ok(verifier.finish()?)
}

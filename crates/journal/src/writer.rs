//! Writing the journal off the driver's task: the driver encodes each entry into a batch and
//! hands whole batches to a thread that appends them to the file, so that the core's loop never
//! waits for the disk.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use secourir_core::{Event, Instant};

use crate::{FORMAT, Header, MAGIC, Reconfigured, TAG_CONFIG, TAG_INPUT, frame};

/// Batches the writer thread's channel holds. A batch is one turn of the driver's loop.
const QUEUE: usize = 4_096;

/// Bytes held on the driver's side while the channel is full; beyond, the oldest held batch is
/// dropped and counted: the journal serves replays, and the driver must never wait for it.
const HELD_BYTES: usize = 64 << 20;

/// A journal being written.
pub struct Journal;

/// The driver's end of a journal.
pub struct JournalSender {
    tx: Option<SyncSender<Vec<u8>>>,
    pending: Vec<u8>,
    /// One entry's bytes, reused so that recording allocates nothing on the driver's path.
    scratch: Vec<u8>,
    held: std::collections::VecDeque<Vec<u8>>,
    held_bytes: usize,
    lost: Arc<AtomicU64>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Journal {
    /// Creates the file with its header and starts its writer thread.
    pub fn start(path: &Path, header: &Header) -> std::io::Result<JournalSender> {
        let mut file = BufWriter::new(File::create_new(path)?);
        file.write_all(MAGIC)?;
        let mut head = Vec::new();
        frame(
            &FORMAT.encode(header).map_err(std::io::Error::other)?,
            &mut head,
        );
        file.write_all(&head)?;
        file.flush()?;
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || append(file, &rx))?;
        Ok(JournalSender {
            tx: Some(tx),
            pending: Vec::new(),
            scratch: Vec::new(),
            held: std::collections::VecDeque::new(),
            held_bytes: 0,
            lost: Arc::default(),
            thread: Some(thread),
        })
    }
}

fn append(mut file: BufWriter<File>, rx: &Receiver<Vec<u8>>) -> std::io::Result<()> {
    while let Ok(batch) = rx.recv() {
        file.write_all(&batch)?;
        // Everything already waiting goes out in the same write to the OS.
        while let Ok(more) = rx.try_recv() {
            file.write_all(&more)?;
        }
        // In the page cache, a batch survives the process being killed.
        file.flush()?;
    }
    file.flush()?;
    file.get_ref().sync_all()
}

impl JournalSender {
    /// Adds one input of the core to the current batch.
    pub fn record(&mut self, at: Instant, event: &Event) {
        let entry = EntryRef { at, event };
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.push(TAG_INPUT);
        match FORMAT.encode_into(&entry, scratch) {
            Ok(payload) => {
                frame(&payload, &mut self.pending);
                self.scratch = payload;
            }
            // Every event serializes; should one not, the replay says where the gap is.
            Err(_) => {
                self.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Adds a configuration taken live to the current batch, between the inputs before it
    /// and those after.
    pub fn record_config(&mut self, at: Instant, config: &str) {
        let change = Reconfigured {
            at,
            config: config.to_owned(),
        };
        match FORMAT.encode_into(&change, vec![TAG_CONFIG]) {
            Ok(payload) => frame(&payload, &mut self.pending),
            Err(_) => {
                self.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Hands the current batch to the writer thread, never waiting for it.
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            self.held_bytes += batch.len();
            self.held.push_back(batch);
        }
        let Some(tx) = &self.tx else {
            return;
        };
        while let Some(batch) = self.held.pop_front() {
            let len = batch.len();
            match tx.try_send(batch) {
                Ok(()) => self.held_bytes -= len,
                Err(TrySendError::Full(batch)) => {
                    self.held.push_front(batch);
                    break;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.held_bytes -= len;
                    self.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        while self.held_bytes > HELD_BYTES {
            let Some(lost) = self.held.pop_front() else {
                break;
            };
            self.held_bytes -= lost.len();
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Batches lost so far (the disk too far behind, or the writer gone).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Writes everything still held, waiting this time, and closes the file.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.flush();
        if let Some(tx) = self.tx.take() {
            for batch in self.held.drain(..) {
                if tx.send(batch).is_err() {
                    break;
                }
            }
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("journal writer panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for JournalSender {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// An entry borrowed for writing; encodes exactly as [`crate::Entry`] (same fields, same
/// order), which the round-trip test holds.
#[derive(serde::Serialize)]
struct EntryRef<'a> {
    at: Instant,
    event: &'a Event,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Entry;
    use secourir_core::{AgentId, CallId};

    fn header() -> Header {
        Header {
            config: "[national]\n".into(),
            simulated_call_takers: false,
            started_at: 1_700_000_000_000,
            node: "test".into(),
        }
    }

    fn events() -> Vec<Entry> {
        (0..100u64)
            .map(|i| Entry {
                at: Instant(1_700_000_000_000 + i * 10),
                event: if i % 2 == 0 {
                    Event::CallerHungUp { call: CallId(i) }
                } else {
                    Event::AgentReady {
                        agent: AgentId(i as u32),
                    }
                },
            })
            .collect()
    }

    fn write(path: &Path, entries: &[Entry]) {
        let mut journal = Journal::start(path, &header()).expect("start");
        for (i, entry) in entries.iter().enumerate() {
            journal.record(entry.at, &entry.event);
            if i % 7 == 0 {
                journal.flush();
            }
        }
        journal.finish().expect("finish");
        assert_eq!(journal.lost(), 0);
    }

    #[test]
    fn what_is_written_reads_back_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j");
        write(&path, &events());
        let read = crate::read(&path).expect("read");
        assert_eq!(read.header, header());
        assert_eq!(read.entries, events());
        assert!(!read.torn_tail);
    }

    #[test]
    fn a_torn_last_entry_is_left_out_and_said() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j");
        write(&path, &events());
        let bytes = std::fs::read(&path).expect("bytes");
        for cut in 1..12 {
            let read = crate::parse(&bytes[..bytes.len() - cut]).expect("read");
            assert!(read.torn_tail, "cut {cut}");
            assert_eq!(read.entries, events()[..99]);
        }
    }

    #[test]
    fn damage_before_the_end_is_refused_with_its_place() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j");
        write(&path, &events());
        let mut bytes = std::fs::read(&path).expect("bytes");
        // A byte inside the payload of the tenth frame (the header is the first).
        let mut at = crate::MAGIC.len();
        for _ in 0..10 {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("len"));
            at += 8 + len as usize;
        }
        bytes[at + 8] ^= 0x55;
        match crate::parse(&bytes) {
            Err(crate::JournalError::Damaged { index, .. }) => assert!(index > 1 && index < 100),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            crate::parse(b"not a journal"),
            Err(crate::JournalError::NotAJournal)
        ));
    }

    #[test]
    fn a_configuration_taken_live_keeps_its_place_among_the_inputs() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j");
        let entries = events();
        let mut journal = Journal::start(&path, &header()).expect("start");
        for (i, entry) in entries.iter().enumerate() {
            if i == 40 {
                journal.record_config(entry.at, "[national]\ncapacity = 9\n");
            }
            journal.record(entry.at, &entry.event);
        }
        journal.finish().expect("finish");
        let read = crate::read(&path).expect("read");
        assert_eq!(read.entries, entries);
        assert_eq!(
            read.changes,
            vec![crate::Change {
                after: 40,
                change: Reconfigured {
                    at: entries[40].at,
                    config: "[national]\ncapacity = 9\n".into(),
                },
            }]
        );
    }

    #[test]
    fn a_journal_of_the_compact_format_is_refused_and_says_what_reads_it() {
        for magic in crate::MAGICS_COMPACT {
            let mut bytes = magic.to_vec();
            bytes.extend_from_slice(&[0; 16]);
            let refused = crate::parse(&bytes).unwrap_err();
            assert!(matches!(refused, crate::JournalError::Compact));
            assert!(refused.to_string().contains("introduced format 2"));
        }
    }
}

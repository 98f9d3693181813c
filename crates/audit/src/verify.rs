//! Verification: every signature, every link, and the first line where the log stops being the
//! chain its writer wrote, named by its line number and what happened there.
//!
//! What each kind means, and how it is told:
//! - `Changed`: the line is no event signed by the key (a byte changed, a line cut, garbage), or
//!   it is signed but does not link to the line before it (`prevHash`), or its `seq` is wrong
//!   for a first event.
//! - `WrongKey`: the line is intact but signed by another key than the one given.
//! - `Removed`: `seq` jumps forward (events are missing before this line) and the missing ones
//!   never show up later.
//! - `Reordered`: `seq` goes backwards or repeats: named at the first line out of place (for two
//!   lines swapped, the first of the two), which is where `seq` first jumped forward if it did.
//! - `Truncated`: the last line has no newline and is no whole event (a crash mid-write, or a
//!   copy cut short); only readers that see the newlines can tell (`verify_file`).
//!
//! A jump forward is only named once the rest of the log shows whether the missing events come
//! later (reordered) or never (removed), so the verifier holds at most one such suspicion. Events
//! cut off the end of a log leave no trace in the chain: compare the report's head with one kept
//! elsewhere ([`Verifier::expect_head`]).

use std::collections::BTreeMap;

use crate::chain::Head;
use crate::jws::{self, LineError};
use crate::key::PublicKey;

/// What is wrong at the line a [`Broken`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenKind {
    /// The line was changed (or is not an event at all).
    Changed,
    /// Events are missing before the line.
    Removed,
    /// The line is out of its place.
    Reordered,
    /// The line is signed by another key.
    WrongKey,
    /// The last line stops short.
    Truncated,
}

/// The first place a log breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind:?}: {reason}")]
pub struct Broken {
    /// The line, from 1.
    pub line: u64,
    /// What happened there.
    pub kind: BrokenKind,
    /// The `seq` that line carries, when it could be read.
    pub seq: Option<u64>,
    /// In words, for the operator.
    pub reason: String,
}

/// A log found whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Events (lines) in the log.
    pub events: u64,
    /// Events per `logEventType`.
    pub by_type: BTreeMap<String, u64>,
    /// The last event, none for an empty log.
    pub head: Option<Head>,
    /// The first event's `timestamp`, as written.
    pub first_timestamp: Option<String>,
    /// The last event's `timestamp`, as written.
    pub last_timestamp: Option<String>,
}

/// A jump forward of `seq`, not yet known to be a removal or a reordering.
#[derive(Debug, Clone)]
struct Gap {
    line: u64,
    expected: u64,
    found: u64,
}

/// Checks a log line by line, holding only the previous line's hash and at most one gap.
#[derive(Debug, Clone)]
pub struct Verifier {
    key: PublicKey,
    header: String,
    line: u64,
    /// The `seq` and hash of the last line read.
    last: Option<Head>,
    gap: Option<Gap>,
    expected_head: Option<Head>,
    report: Report,
    broken: Option<Broken>,
}

impl Verifier {
    /// A verifier of a log signed by `key`.
    pub fn new(key: &PublicKey) -> Verifier {
        Verifier {
            key: *key,
            header: jws::header_for(key),
            line: 0,
            last: None,
            gap: None,
            expected_head: None,
            report: Report::default(),
            broken: None,
        }
    }

    /// Also requires the log to reach `head`, recorded elsewhere: the events cut off its end
    /// are then named as removed.
    pub fn expect_head(mut self, head: Head) -> Verifier {
        self.expected_head = Some(head);
        self
    }

    /// Reads the next line (without its newline). An error names the first broken line, which
    /// may be an earlier one; every later call returns it again.
    pub fn push(&mut self, line: &[u8]) -> Result<(), Broken> {
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        self.line += 1;
        self.read(line).map_err(|broken| {
            // A gap seen earlier is the first break, whatever this line shows.
            let first = match self.gap.take() {
                Some(gap) if gap.line < broken.line => removed(&gap),
                _ => broken,
            };
            self.broken = Some(first.clone());
            first
        })
    }

    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// The report, once every line is read; or the first broken line.
    pub fn finish(mut self) -> Result<Report, Broken> {
        if let Some(broken) = self.broken {
            return Err(broken);
        }
        if let Some(gap) = self.gap.take() {
            return Err(removed(&gap));
        }
        if let Some(head) = &self.expected_head {
            self.check_reaches(head)?;
        }
        self.report.head = self.last.clone();
        Ok(self.report)
    }

    fn read(&mut self, line: &[u8]) -> Result<(), Broken> {
        let here = self.line;
        let payload = match jws::open(line, &self.key, &self.header) {
            Ok(payload) => payload,
            Err(error) => return Err(unreadable(here, &error)),
        };
        let links = match jws::links(&payload) {
            Ok(links) => links,
            Err(error) => return Err(unreadable(here, &error)),
        };
        let seq = links.seq;
        let hash = jws::line_hash(line);
        let broken = |kind, reason: String| Broken {
            line: here,
            kind,
            seq: Some(seq),
            reason,
        };
        match &self.last {
            None if seq == 1 && links.prev_hash.is_none() => {}
            None if seq == 1 => {
                return Err(broken(
                    BrokenKind::Changed,
                    "the first event names a previous one".into(),
                ));
            }
            None if seq == 0 => {
                return Err(broken(BrokenKind::Changed, "seq 0 is no event's".into()));
            }
            None => {
                // The log starts after 1: its first events are missing, or moved further down.
                self.gap = Some(Gap {
                    line: here,
                    expected: 1,
                    found: seq,
                });
            }
            Some(last) if seq == last.seq + 1 => {
                if links.prev_hash.as_deref() != Some(last.hash.as_str()) {
                    return Err(broken(
                        BrokenKind::Changed,
                        format!(
                            "seq {seq} follows seq {} but does not name it (prevHash): one of the \
                             two lines was replaced",
                            last.seq
                        ),
                    ));
                }
            }
            Some(last) if seq > last.seq => {
                // The first jump is the one to name; a later one is judged only if it remains.
                if self.gap.is_none() {
                    self.gap = Some(Gap {
                        line: here,
                        expected: last.seq + 1,
                        found: seq,
                    });
                }
            }
            Some(last) => {
                let reason = format!("seq {seq} comes after seq {}", last.seq);
                return Err(match self.gap.take() {
                    Some(gap) => Broken {
                        line: gap.line,
                        kind: BrokenKind::Reordered,
                        seq: Some(gap.found),
                        reason: format!(
                            "seq {} stands where seq {} should, which comes later (line {here}: \
                             {reason})",
                            gap.found, gap.expected
                        ),
                    },
                    None => broken(BrokenKind::Reordered, reason),
                });
            }
        }
        if let Some(head) = &self.expected_head
            && head.seq == seq
            && head.hash != hash
        {
            return Err(broken(
                BrokenKind::Changed,
                "this event is not the head recorded elsewhere".into(),
            ));
        }
        self.count(&links.log_event_type, &links.timestamp);
        self.last = Some(Head { seq, hash });
        Ok(())
    }

    fn count(&mut self, log_event_type: &str, timestamp: &str) {
        let report = &mut self.report;
        report.events += 1;
        match report.by_type.get_mut(log_event_type) {
            Some(n) => *n += 1,
            None => {
                report.by_type.insert(log_event_type.to_owned(), 1);
            }
        }
        if report.first_timestamp.is_none() {
            report.first_timestamp = Some(timestamp.to_owned());
        }
        report.last_timestamp = Some(timestamp.to_owned());
    }

    fn check_reaches(&self, head: &Head) -> Result<(), Broken> {
        let last_seq = self.last.as_ref().map_or(0, |l| l.seq);
        if last_seq < head.seq {
            return Err(Broken {
                line: self.line + 1,
                kind: BrokenKind::Removed,
                seq: None,
                reason: format!(
                    "the log ends at seq {last_seq}, the head recorded elsewhere is seq {}: \
                     events {}..={} are missing at its end",
                    head.seq,
                    last_seq + 1,
                    head.seq
                ),
            });
        }
        Ok(())
    }
}

/// The break a line that is no event of this key makes.
fn unreadable(here: u64, error: &LineError) -> Broken {
    let kind = match error {
        LineError::OtherKey { .. } => BrokenKind::WrongKey,
        _ => BrokenKind::Changed,
    };
    Broken {
        line: here,
        kind,
        seq: None,
        reason: error.to_string(),
    }
}

fn removed(gap: &Gap) -> Broken {
    let missing = if gap.found - gap.expected == 1 {
        format!("event seq {} is", gap.expected)
    } else {
        format!("events seq {}..={} are", gap.expected, gap.found - 1)
    };
    Broken {
        line: gap.line,
        kind: BrokenKind::Removed,
        seq: Some(gap.found),
        reason: format!("{missing} missing before this line (seq {})", gap.found),
    }
}

/// Verifies a whole log given as lines (without their newlines), signed by `key`.
pub fn verify<I, L>(lines: I, key: &PublicKey) -> Result<Report, Broken>
where
    I: IntoIterator<Item = L>,
    L: AsRef<[u8]>,
{
    let mut verifier = Verifier::new(key);
    for line in lines {
        verifier.push(line.as_ref())?;
    }
    verifier.finish()
}

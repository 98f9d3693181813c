//! Who wrote what, when: the written record of a conversation, sealed with SHA-256 so that a
//! changed line is seen, as a recording's hash shows a changed sample.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Who wrote a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "login", rename_all = "snake_case")]
pub enum Author {
    /// The caller.
    Caller,
    /// A call-taker, by login.
    CallTaker(String),
    /// The platform itself (the welcome, a refused message).
    Platform,
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// When it was written (received or sent), ms since the epoch.
    pub at_ms: u64,
    /// Who wrote it.
    pub from: Author,
    /// What was written.
    pub text: String,
}

/// A conversation's lines, in the order they were written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// The lines.
    pub lines: Vec<Line>,
}

impl Transcript {
    /// Adds a line.
    pub fn push(&mut self, at_ms: u64, from: Author, text: impl Into<String>) {
        self.lines.push(Line {
            at_ms,
            from,
            text: text.into(),
        });
    }

    /// SHA-256, hex, of the lines as JSON, one per line: what `secourir calls` and the API
    /// show, and what a reader recomputes from the lines to check them.
    pub fn sha256(&self) -> String {
        let mut hash = Sha256::new();
        for line in &self.lines {
            // A line always serializes: plain strings and numbers.
            if let Ok(json) = serde_json::to_vec(line) {
                hash.update(&json);
            }
            hash.update(b"\n");
        }
        hex::encode(hash.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_changes_the_seal() {
        let mut t = Transcript::default();
        t.push(1_000, Author::Caller, "Au feu");
        t.push(
            2_500,
            Author::CallTaker("ota-13-1".into()),
            "Où êtes-vous ?",
        );
        let sealed = t.sha256();
        assert_eq!(sealed.len(), 64);
        assert_eq!(sealed, t.clone().sha256());
        let mut changed = t.clone();
        changed.lines[0].text = "Au feu !".into();
        assert_ne!(changed.sha256(), sealed);
        let mut moved = t.clone();
        moved.lines[1].at_ms += 1;
        assert_ne!(moved.sha256(), sealed);
        assert_eq!(
            serde_json::to_string(&t.lines[1].from).unwrap(),
            r#"{"kind":"call_taker","login":"ota-13-1"}"#
        );
    }
}

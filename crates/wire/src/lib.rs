//! The formats of what one version of the platform writes and another may read: the cluster's
//! log (every node applies every other node's entries), the journals (replayed by a later
//! version) and the snapshots (a restarting node takes another's). A cluster is upgraded node
//! by node, so for a while nodes of two versions share the log: each version reads the format
//! of the one before it, and writes no newer format than the oldest member reads.
//!
//! - Format 1, compact (postcard), fields by position, was written by the versions before
//!   formats had numbers. A field added to any type shifts every field after it, so a reader
//!   whose types grew would not fail on it but misread it: this version refuses it. The
//!   version that introduced format 2 reads both, and is the step between them.
//! - Format 2, **named** (MessagePack with field and variant names, through serde): a field
//!   added with a default is read from entries that lack it, an unknown field is skipped, and
//!   a variant is found by its name. So the types can grow from one version to the next;
//!   what an older reader cannot take (a new variant) waits for the format number to say
//!   every member reads it.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A format this version reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// MessagePack with names: types may gain fields with defaults.
    Named,
}

/// The format this version writes.
pub const NEWEST: Format = Format::Named;

/// The oldest format this version reads.
pub const OLDEST_READ: Format = Format::Named;

/// Why bytes could not be written or read in a format.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The format number is not one this version reads.
    #[error("format {0} is not read by this version (it reads {first} to {last}){hint}", first = OLDEST_READ.number(), last = NEWEST.number(), hint = if *.0 == 1 { ": format 1 is read by the version that introduced format 2, the step between them" } else { "" })]
    Unknown(u16),
    /// The bytes are not a value of the expected type in that format.
    #[error("{format:?}: {reason}")]
    Decode {
        /// The format.
        format: Format,
        /// What the decoder said.
        reason: String,
    },
    /// The value could not be written.
    #[error("{format:?}: {reason}")]
    Encode {
        /// The format.
        format: Format,
        /// What the encoder said.
        reason: String,
    },
}

impl Format {
    /// The number of the newest format this version reads, as its messages announce it.
    pub const NEWEST_NUMBER: u16 = 2;

    /// The format's number, as headers and file magics carry it.
    pub fn number(self) -> u16 {
        match self {
            Format::Named => 2,
        }
    }

    /// The format numbered `number`, if this version reads it.
    pub fn from_number(number: u16) -> Result<Format, WireError> {
        match number {
            2 => Ok(Format::Named),
            other => Err(WireError::Unknown(other)),
        }
    }

    /// The newest format both this version and a reader of formats up to `number` read; this
    /// version writes no older format than its own oldest, so a reader of format 1 only (a
    /// version before numbered formats) meets entries it cannot read, stops applying the log
    /// and says so.
    pub fn for_reader(_number: u16) -> Format {
        NEWEST
    }

    /// Appends `value`'s bytes in this format to `out`, which is returned.
    pub fn encode_into<T: Serialize + ?Sized>(
        self,
        value: &T,
        mut out: Vec<u8>,
    ) -> Result<Vec<u8>, WireError> {
        match self {
            Format::Named => {
                rmp_serde::encode::write_named(&mut out, value).map_err(|e| WireError::Encode {
                    format: self,
                    reason: e.to_string(),
                })?;
                Ok(out)
            }
        }
    }

    /// `value`'s bytes in this format.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, WireError> {
        self.encode_into(value, Vec::new())
    }

    /// The value `bytes` hold in this format.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, WireError> {
        match self {
            Format::Named => rmp_serde::from_slice(bytes).map_err(|e| WireError::Decode {
                format: self,
                reason: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Kind {
        Voice,
        Text { relay: Option<String> },
    }

    /// A type as an older version wrote it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Before {
        call: u64,
        caller: Option<String>,
        zone: u16,
    }

    /// The same type a version later: one field more, with a default.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct After {
        call: u64,
        caller: Option<String>,
        #[serde(default = "voice")]
        kind: Kind,
        zone: u16,
    }

    fn voice() -> Kind {
        Kind::Voice
    }

    #[test]
    fn a_named_entry_of_the_version_before_is_read_with_the_default() {
        let before = Before {
            call: 7,
            caller: Some("+33612345678".into()),
            zone: 13,
        };
        let bytes = Format::Named.encode(&before).unwrap();
        let after: After = Format::Named.decode(&bytes).unwrap();
        assert_eq!(after.call, 7);
        assert_eq!(after.zone, 13);
        assert_eq!(after.kind, Kind::Voice);
    }

    #[test]
    fn a_named_entry_of_the_version_after_is_read_without_its_new_field() {
        let after = After {
            call: 7,
            caller: None,
            kind: Kind::Text { relay: None },
            zone: 83,
        };
        let before: Before = Format::Named
            .decode(&Format::Named.encode(&after).unwrap())
            .unwrap();
        assert_eq!(
            before,
            Before {
                call: 7,
                caller: None,
                zone: 83
            }
        );
    }

    #[test]
    fn numbers_name_the_formats_and_an_unknown_one_is_refused() {
        assert_eq!(Format::from_number(2).unwrap(), Format::Named);
        assert_eq!(NEWEST.number(), Format::NEWEST_NUMBER);
        let refused = Format::from_number(1).unwrap_err().to_string();
        assert!(refused.contains("the step between them"), "{refused}");
        assert!(matches!(Format::from_number(3), Err(WireError::Unknown(3))));
        assert_eq!(Format::for_reader(1), NEWEST);
    }

    proptest! {
        #[test]
        fn the_format_gives_back_what_it_was_given(
            call in any::<u64>(),
            caller in proptest::option::of(".{0,20}"),
            zone in any::<u16>(),
            relay in proptest::option::of("[a-z]{0,8}"),
        ) {
            let value = After { call, caller, kind: Kind::Text { relay }, zone };
            let bytes = Format::Named.encode(&value).unwrap();
            prop_assert_eq!(&Format::Named.decode::<After>(&bytes).unwrap(), &value);
        }

        #[test]
        fn no_bytes_make_the_decoder_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Format::Named.decode::<After>(&bytes);
        }
    }
}

//! Callers' numbers and positions are personal data: the RGPD allows keeping them in the call's
//! record, not spreading them through logs that operators copy, ship and keep for months.
//! [`Personal`] holds such a value; its `Debug` and `Display` print a mask, so a log line that
//! formats a record, an event or a request carries no number and no coordinates. The value is
//! read only on purpose, with [`Personal::expose`], where it is stored or shown to a call-taker.

use std::fmt;

/// What logs print in place of a personal value.
pub const MASK: &str = "‹masqué›";

/// A caller's number, position or any other personal value, masked in logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Personal<T>(T);

impl<T> Personal<T> {
    /// Wraps a personal value.
    pub const fn new(value: T) -> Personal<T> {
        Personal(value)
    }

    /// The value itself, for the store, the API and the console; never for a log.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The value itself, unwrapped.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Personal<T> {
    fn from(value: T) -> Personal<T> {
        Personal(value)
    }
}

impl From<&str> for Personal<String> {
    fn from(value: &str) -> Personal<String> {
        Personal(value.to_owned())
    }
}

impl<T> fmt::Debug for Personal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<T> fmt::Display for Personal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Serialized as the value itself: the API and the store are where it belongs.
impl<T: serde::Serialize> serde::Serialize for Personal<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Record {
        call: u64,
        caller: Option<Personal<String>>,
        lat: Option<Personal<f64>>,
    }

    #[test]
    fn logs_see_a_mask_and_the_api_sees_the_value() {
        let record = Record {
            call: 7,
            caller: Some("0601020304".into()),
            lat: Some(Personal::new(43.2965)),
        };
        let logged = format!("{record:?} {}", record.caller.as_ref().expect("set"));
        assert!(
            !logged.contains("0601020304") && !logged.contains("43.29"),
            "{logged}"
        );
        assert!(
            logged.contains("call: 7") && logged.contains(MASK),
            "{logged}"
        );
        let json = serde_json::to_string(&record.caller).expect("json");
        assert_eq!(json, "\"0601020304\"");
        assert_eq!(record.caller.expect("set").expose(), "0601020304");
    }
}

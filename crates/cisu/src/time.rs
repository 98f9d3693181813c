//! Timestamps as the hub wants them. The schemas take `YYYY-MM-DDThh:mm:ss±hh:mm` only: no
//! fraction of a second and no `Z`, and RC-DE asks for UTC to be written `-00:00`.

use chrono::{DateTime, Datelike, FixedOffset, TimeZone};
use chrono_tz::Europe::Paris;

/// A time the hub cannot carry: its year does not fit the schemas' four digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}: the year must have four digits for the hub")]
pub struct OutOfRange(pub String);

/// Formats a time for the hub, refusing years its pattern cannot hold.
pub fn hub_timestamp(at: &DateTime<FixedOffset>) -> Result<String, OutOfRange> {
    if !(1000..=9999).contains(&at.year()) {
        return Err(OutOfRange(at.to_rfc3339()));
    }
    let local = at.format("%Y-%m-%dT%H:%M:%S");
    if at.offset().local_minus_utc() == 0 {
        Ok(format!("{local}-00:00"))
    } else {
        Ok(format!("{local}{}", at.format("%:z")))
    }
}

/// The platform's instants are unix milliseconds; the French partners read Paris time.
pub fn paris_time(unix_ms: i64) -> Option<DateTime<FixedOffset>> {
    let at = Paris.timestamp_millis_opt(unix_ms).single()?;
    Some(at.fixed_offset())
}

/// Reads a hub timestamp back, for the times partners send.
pub fn parse_hub_timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summer_and_winter_offsets_come_from_paris() {
        // 2026-07-14T10:00:00Z and 2026-01-14T10:00:00Z.
        let summer = paris_time(1_784_023_200_000).unwrap();
        let winter = paris_time(1_768_384_800_000).unwrap();
        assert_eq!(hub_timestamp(&summer).unwrap(), "2026-07-14T12:00:00+02:00");
        assert_eq!(hub_timestamp(&winter).unwrap(), "2026-01-14T11:00:00+01:00");
    }

    #[test]
    fn fractions_are_dropped_and_utc_is_minus_zero() {
        let utc = DateTime::parse_from_rfc3339("2026-03-01T08:15:30.987Z").unwrap();
        assert_eq!(hub_timestamp(&utc).unwrap(), "2026-03-01T08:15:30-00:00");
    }

    #[test]
    fn a_five_digit_year_is_refused() {
        let far = DateTime::parse_from_rfc3339("9999-12-31T23:00:00-02:00").unwrap();
        let far = far + chrono::TimeDelta::days(2);
        assert!(hub_timestamp(&far).is_err());
    }

    #[test]
    fn partners_times_read_back() {
        let at = parse_hub_timestamp("2024-08-13T10:20:00+02:00").unwrap();
        assert_eq!(hub_timestamp(&at).unwrap(), "2024-08-13T10:20:00+02:00");
        assert!(parse_hub_timestamp("13/08/2024").is_none());
    }
}

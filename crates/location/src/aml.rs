//! Advanced Mobile Location (ETSI TS 103 625): SMS text v1/v2 and the HTTPS form.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{LocationError, MAX_AML_HTTPS_BYTES, MAX_AML_SMS_BYTES, Position, checked, number};

const EXTRA_KEYS_MAX: usize = 32;

/// One AML message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AmlReport {
    /// Format version (1 or 2 for SMS; as sent for HTTPS).
    pub version: u32,
    /// Where the handset is; none when it could not fix a position (`pm=N`).
    pub position: Option<Position>,
    /// Time of positioning, Unix seconds.
    pub time_of_positioning: Option<i64>,
    /// Positioning method (G GNSS, W Wi-Fi, C cell, F fused, N none; or the HTTPS source name).
    pub method: Option<String>,
    /// Level of confidence, percent.
    pub confidence: Option<u8>,
    /// Caller's number, when sent.
    pub caller: Option<String>,
    /// IMSI.
    pub imsi: Option<String>,
    /// IMEI.
    pub imei: Option<String>,
    /// Mobile country and network codes.
    pub mcc_mnc: Option<(String, String)>,
    /// Whether the declared message length (`ml`) matched, when declared.
    pub length_ok: Option<bool>,
    /// Other keys, kept rather than refused (bounded).
    pub extra: BTreeMap<String, String>,
}

/// Parses an AML SMS (`A"ML=1;lt=…;lg=…;rd=…;top=…;…`).
pub fn parse_aml_sms(text: &str) -> Result<AmlReport, LocationError> {
    if text.len() > MAX_AML_SMS_BYTES {
        return Err(LocationError::TooLarge {
            size: text.len(),
            limit: MAX_AML_SMS_BYTES,
        });
    }
    let text = text.trim();
    let rest = text
        .strip_prefix("A\"ML=")
        .ok_or_else(|| LocationError::Malformed("an AML SMS starts with A\"ML=".into()))?;
    let mut fields = rest.split(';');
    let version: u32 = fields
        .next()
        .and_then(|v| v.trim().parse().ok())
        .filter(|v| (1..=9).contains(v))
        .ok_or_else(|| LocationError::Malformed("bad AML version".into()))?;
    let mut report = AmlReport {
        version,
        ..AmlReport::default()
    };
    let (mut lat, mut lon, mut radius) = (None, None, None);
    for field in fields {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| LocationError::Malformed(format!("AML field without '=': {field:?}")))?;
        let value = value.trim();
        match key.trim() {
            "lt" => lat = parse_optional(value, "lt")?,
            "lg" => lon = parse_optional(value, "lg")?,
            "rd" => radius = parse_optional(value, "rd")?,
            "top" => {
                report.time_of_positioning = (!value.is_empty())
                    .then(|| compact_time(value))
                    .transpose()?
            }
            "lc" => report.confidence = value.parse().ok().filter(|c| *c <= 100),
            "pm" => report.method = (!value.is_empty()).then(|| value.to_owned()),
            "si" => report.imsi = (!value.is_empty()).then(|| value.to_owned()),
            "ei" => report.imei = (!value.is_empty()).then(|| value.to_owned()),
            "cs" | "msisdn" => report.caller = (!value.is_empty()).then(|| value.to_owned()),
            "mcc" => {
                report.mcc_mnc = Some((
                    value.to_owned(),
                    report.mcc_mnc.take().map(|m| m.1).unwrap_or_default(),
                ))
            }
            "mnc" => {
                report.mcc_mnc = Some((
                    report.mcc_mnc.take().map(|m| m.0).unwrap_or_default(),
                    value.to_owned(),
                ))
            }
            "ml" => {
                report.length_ok = value
                    .parse::<usize>()
                    .ok()
                    .map(|ml| ml == text.chars().count())
            }
            other => {
                if report.extra.len() < EXTRA_KEYS_MAX {
                    report.extra.insert(other.to_owned(), value.to_owned());
                }
            }
        }
    }
    report.position = position(lat, lon, radius, report.method.as_deref())?;
    Ok(report)
}

/// Parses the AML HTTPS form; with a key, the HMAC-SHA256 of the raw body (hex) must match.
pub fn parse_aml_https(
    body: &[u8],
    hmac: Option<(&[u8], &str)>,
) -> Result<AmlReport, LocationError> {
    if body.len() > MAX_AML_HTTPS_BYTES {
        return Err(LocationError::TooLarge {
            size: body.len(),
            limit: MAX_AML_HTTPS_BYTES,
        });
    }
    if let Some((key, signature)) = hmac {
        let expected = hex::decode(signature.trim()).map_err(|_| LocationError::BadSignature)?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(key).map_err(|_| LocationError::BadSignature)?;
        mac.update(body);
        mac.verify_slice(&expected)
            .map_err(|_| LocationError::BadSignature)?;
    }
    let mut report = AmlReport::default();
    let (mut lat, mut lon, mut radius) = (None, None, None);
    for (key, value) in form_urlencoded::parse(body) {
        let key = key.strip_prefix("gt_").unwrap_or(&key).to_owned();
        let value = value.trim();
        match key.as_str() {
            "v" => report.version = value.parse().unwrap_or(0),
            "location_latitude" => lat = parse_optional(value, "location_latitude")?,
            "location_longitude" => lon = parse_optional(value, "location_longitude")?,
            "location_accuracy" => radius = parse_optional(value, "location_accuracy")?,
            "location_time" => {
                // Milliseconds since the epoch.
                report.time_of_positioning = value.parse::<i64>().ok().map(|ms| ms / 1000);
            }
            "location_source" => report.method = (!value.is_empty()).then(|| value.to_owned()),
            "location_certainty" => {
                report.confidence = number(value).map(|c| c.clamp(0.0, 100.0) as u8)
            }
            "device_number" | "emergency_caller" => {
                report.caller = (!value.is_empty()).then(|| value.to_owned())
            }
            "imsi" => report.imsi = (!value.is_empty()).then(|| value.to_owned()),
            "imei" => report.imei = (!value.is_empty()).then(|| value.to_owned()),
            _ => {
                if report.extra.len() < EXTRA_KEYS_MAX {
                    report.extra.insert(key, value.to_owned());
                }
            }
        }
    }
    report.position = position(lat, lon, radius, report.method.as_deref())?;
    if report.position.is_none() && report.extra.is_empty() && report.version == 0 {
        return Err(LocationError::Malformed("not an AML form".into()));
    }
    Ok(report)
}

fn parse_optional(value: &str, name: &str) -> Result<Option<f64>, LocationError> {
    if value.is_empty() {
        return Ok(None);
    }
    number(value)
        .map(Some)
        .ok_or_else(|| LocationError::Malformed(format!("{name}: not a number: {value:?}")))
}

fn position(
    lat: Option<f64>,
    lon: Option<f64>,
    radius: Option<f64>,
    method: Option<&str>,
) -> Result<Option<Position>, LocationError> {
    if method == Some("N") {
        return Ok(None);
    }
    match (lat, lon) {
        (Some(lat), Some(lon)) => {
            let (lat, lon) = checked(lat, lon)?;
            if radius.is_some_and(|r| r < 0.0) {
                return Err(LocationError::Malformed("negative radius".into()));
            }
            Ok(Some(Position {
                lat,
                lon,
                uncertainty_m: radius,
            }))
        }
        (None, None) => Ok(None),
        _ => Err(LocationError::Malformed(
            "latitude without longitude".into(),
        )),
    }
}

/// `YYYYMMDDhhmmss` (UTC) to Unix seconds.
fn compact_time(text: &str) -> Result<i64, LocationError> {
    let bad = || LocationError::Malformed(format!("bad time of positioning {text:?}"));
    if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |range: std::ops::Range<usize>| text[range].parse::<i64>().map_err(|_| bad());
    let (y, m, d, hh, mm, ss) = (
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(8..10)?,
        n(10..12)?,
        n(12..14)?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "A\"ML=1;lt=+55.74317;lg=-4.26881;rd=10;top=20170317133624;lc=68;pm=W;si=234302543446355;ei=356708041746734;mcc=234;mnc=30;ml=124";

    #[test]
    fn sms_v1() {
        let r = parse_aml_sms(V1).expect("v1");
        assert_eq!(r.version, 1);
        let p = r.position.expect("position");
        assert_eq!(
            (p.lat, p.lon, p.uncertainty_m),
            (55.74317, -4.26881, Some(10.0))
        );
        assert_eq!(r.time_of_positioning, Some(1_489_757_784));
        assert_eq!(r.method.as_deref(), Some("W"));
        assert_eq!(r.confidence, Some(68));
        assert_eq!(r.mcc_mnc, Some(("234".into(), "30".into())));
        assert_eq!(r.length_ok, Some(V1.len() == 124));
    }

    #[test]
    fn sms_v2_and_no_position() {
        let v2 = "A\"ML=2;lt=43.29650;lg=5.36980;rd=8;top=20261122143000;lc=68;pm=F;alt=45;vacc=12;cs=+33612345678;mcc=208;mnc=15";
        let r = parse_aml_sms(v2).expect("v2");
        assert_eq!(r.version, 2);
        assert_eq!(r.caller.as_deref(), Some("+33612345678"));
        assert_eq!(r.extra.get("alt").map(String::as_str), Some("45"));
        let none = parse_aml_sms(
            "A\"ML=1;lt=;lg=;rd=;top=20170317133624;lc=;pm=N;si=1;ei=2;mcc=208;mnc=15",
        )
        .expect("no fix");
        assert_eq!(none.position, None);
    }

    #[test]
    fn sms_failures() {
        assert!(matches!(
            parse_aml_sms("hello"),
            Err(LocationError::Malformed(_))
        ));
        assert!(matches!(
            parse_aml_sms("A\"ML=1;lt=400;lg=5"),
            Err(LocationError::BadCoordinates { .. })
        ));
        assert!(matches!(
            parse_aml_sms("A\"ML=1;lt=43;lg=abc"),
            Err(LocationError::Malformed(_))
        ));
        assert!(matches!(
            parse_aml_sms(&"A\"ML=1;".repeat(400)),
            Err(LocationError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_aml_sms("A\"ML=1;top=2017"),
            Err(LocationError::Malformed(_))
        ));
    }

    #[test]
    fn https_with_and_without_hmac() {
        let body = b"v=3&emergency_number=112&location_latitude=48.8530&location_longitude=2.3499&location_accuracy=15&location_time=1763821800000&location_source=gps&device_number=%2B33612345678";
        let r = parse_aml_https(body, None).expect("form");
        let p = r.position.expect("position");
        assert_eq!((p.lat, p.lon), (48.853, 2.3499));
        assert_eq!(r.caller.as_deref(), Some("+33612345678"));
        assert_eq!(r.time_of_positioning, Some(1_763_821_800));
        let key = "secret partagé".as_bytes();
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        mac.update(body);
        let good = hex::encode(mac.finalize().into_bytes());
        assert!(parse_aml_https(body, Some((key, &good))).is_ok());
        assert_eq!(
            parse_aml_https(body, Some((key, "00ff"))),
            Err(LocationError::BadSignature)
        );
        assert_eq!(
            parse_aml_https(body, Some((key, ""))),
            Err(LocationError::BadSignature)
        );
        let mut tampered = body.to_vec();
        tampered[30] = b'9';
        assert_eq!(
            parse_aml_https(&tampered, Some((key, &good))),
            Err(LocationError::BadSignature)
        );
        let gt = b"gt_location_latitude=43.3&gt_location_longitude=5.4";
        assert!(parse_aml_https(gt, None).expect("gt_").position.is_some());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,600}", bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_aml_sms(&text);
            let _ = parse_aml_sms(&format!("A\"ML=1;{text}"));
            let _ = parse_aml_https(&bytes, None);
            let _ = parse_aml_https(&bytes, Some((b"k", "abcd")));
        }
    }
}

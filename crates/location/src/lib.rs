//! The caller's location as it arrives with an emergency call, parsed from untrusted bytes.
//!
//! Accepted: PIDF-LO by value (RFC 4119) with the shapes of RFC 5491 (Point, Circle, Ellipse,
//! Polygon; Sphere, Ellipsoid and ArcBand as their centre) and civic addresses (RFC 5139), as an
//! `application/pidf+xml` body or inside `multipart/mixed`; Advanced Mobile Location (ETSI TS 103
//! 625) as SMS text v1 and v2 and as the HTTPS form, with an HMAC-SHA256 check when a key is set.
//!
//! Limits: 64 KiB of SIP body or XML, 1 KiB of AML SMS, 16 KiB of AML HTTPS, XML nesting 32 deep,
//! 16 locations a document, 1,024 polygon vertices, 16 MIME parts. Any DOCTYPE or ENTITY is
//! refused. Every failure is a [`LocationError`]; nothing here panics on input.

mod aml;
mod pidf;

pub use aml::{AmlReport, parse_aml_https, parse_aml_sms};
pub use pidf::{parse_pidf, parse_sip_body, sip_body_part};

/// Largest SIP body (or PIDF-LO document) accepted.
pub const MAX_SIP_BODY_BYTES: usize = 64 * 1024;
/// Largest AML SMS text accepted.
pub const MAX_AML_SMS_BYTES: usize = 1024;
/// Largest AML HTTPS body accepted.
pub const MAX_AML_HTTPS_BYTES: usize = 16 * 1024;

/// A WGS84 position with its uncertainty radius.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Position {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Radius of uncertainty, metres.
    pub uncertainty_m: Option<f64>,
}

/// A geodetic shape of RFC 5491.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A point.
    Point {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lon: f64,
    },
    /// A circle (also a sphere's centre and radius).
    Circle {
        /// Latitude of the centre.
        lat: f64,
        /// Longitude of the centre.
        lon: f64,
        /// Radius, metres.
        radius_m: f64,
    },
    /// An ellipse.
    Ellipse {
        /// Latitude of the centre.
        lat: f64,
        /// Longitude of the centre.
        lon: f64,
        /// Semi-major axis, metres.
        semi_major_m: f64,
        /// Semi-minor axis, metres.
        semi_minor_m: f64,
        /// Orientation, degrees.
        orientation_deg: f64,
    },
    /// A polygon, as (lat, lon) vertices.
    Polygon {
        /// Vertices.
        points: Vec<(f64, f64)>,
    },
}

impl Shape {
    /// The centre of the shape, with the uncertainty the shape implies.
    pub fn centre(&self) -> Position {
        match self {
            Shape::Point { lat, lon } => Position {
                lat: *lat,
                lon: *lon,
                uncertainty_m: None,
            },
            Shape::Circle { lat, lon, radius_m } => Position {
                lat: *lat,
                lon: *lon,
                uncertainty_m: Some(*radius_m),
            },
            Shape::Ellipse {
                lat,
                lon,
                semi_major_m,
                ..
            } => Position {
                lat: *lat,
                lon: *lon,
                uncertainty_m: Some(*semi_major_m),
            },
            Shape::Polygon { points } => {
                // A closed ring repeats its first vertex: count it once.
                let open = match (points.first(), points.last()) {
                    (Some(a), Some(b)) if points.len() > 1 && a == b => &points[..points.len() - 1],
                    _ => &points[..],
                };
                let n = open.len().max(1) as f64;
                let lat = open.iter().map(|p| p.0).sum::<f64>() / n;
                let lon = open.iter().map(|p| p.1).sum::<f64>() / n;
                let radius = open
                    .iter()
                    .map(|p| {
                        let dy = (p.0 - lat) * 111_195.0;
                        let dx = (p.1 - lon) * 111_195.0 * lat.to_radians().cos();
                        (dx * dx + dy * dy).sqrt()
                    })
                    .fold(0.0, f64::max);
                Position {
                    lat,
                    lon,
                    uncertainty_m: Some(radius),
                }
            }
        }
    }
}

/// A civic address of RFC 5139 (in France: A1 région, A2 département, A3 commune, PC code postal).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CivicAddress {
    /// Country (ISO 3166 alpha-2).
    pub country: Option<String>,
    /// A1 to A6, from the largest division to the smallest.
    pub divisions: [Option<String>; 6],
    /// Road (RD, or A6 in older documents).
    pub road: Option<String>,
    /// House number and suffix.
    pub house_number: Option<String>,
    /// Postal code.
    pub postcode: Option<String>,
    /// City (A3).
    pub city: Option<String>,
    /// Landmark, location or name details.
    pub details: Option<String>,
}

/// A location value of a PIDF-LO document.
#[derive(Debug, Clone, PartialEq)]
pub enum LocationValue {
    /// A shape.
    Geodetic(Shape),
    /// A civic address.
    Civic(Box<CivicAddress>),
}

/// One location of a PIDF-LO document.
#[derive(Debug, Clone, PartialEq)]
pub struct PidfLocation {
    /// The value.
    pub value: LocationValue,
    /// How it was determined (GPS, Cell, Manual, …).
    pub method: Option<String>,
    /// When, as written in the document.
    pub timestamp: Option<String>,
}

/// Where a call's location came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LocationSource {
    /// A PIDF-LO carried with the call.
    PidfLo,
    /// Advanced Mobile Location, by SMS or HTTPS.
    Aml,
    /// The default of the ingress trunk.
    Default,
}

/// Why a location could not be read; the caller falls back to the ingress default.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LocationError {
    /// Larger than the limit.
    #[error("too large: {size} bytes, at most {limit}")]
    TooLarge {
        /// Size received.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Not well-formed, or not what it claims to be.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A DOCTYPE or ENTITY declaration: refused outright.
    #[error("forbidden: DTD and entity declarations are refused")]
    Forbidden,
    /// A valid document with no location in it.
    #[error("no location in the document")]
    NoLocation,
    /// Coordinates outside the Earth.
    #[error("bad coordinates: latitude {lat}, longitude {lon}")]
    BadCoordinates {
        /// Latitude read.
        lat: f64,
        /// Longitude read.
        lon: f64,
    },
    /// A body type that carries no location this crate reads.
    #[error("unsupported content type {0:?}")]
    UnsupportedContentType(String),
    /// The AML HMAC did not match, or was missing while a key is configured.
    #[error("bad or missing signature")]
    BadSignature,
}

/// Checks a latitude and longitude read from input.
pub(crate) fn checked(lat: f64, lon: f64) -> Result<(f64, f64), LocationError> {
    if lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
    {
        Ok((lat, lon))
    } else {
        Err(LocationError::BadCoordinates { lat, lon })
    }
}

/// Parses a number written by a sender (optional `+`, decimal point).
pub(crate) fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

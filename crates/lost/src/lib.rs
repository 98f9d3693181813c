//! A LoST server (RFC 5222, Location-to-Service Translation) acting as the ECRF of the
//! platform's territory: an upstream routing proxy asks which call-handling centre (CTA) serves a
//! position or an address, and gets the CTA's queue URI on this platform.
//!
//! Sans-IO: [`Ecrf::handle_request`] takes the body of a `POST` (`application/lost+xml`) and the
//! time, and returns the body and status to send. It reads no clock and touches no socket, so
//! the HTTP shell is a few lines and every answer can be tested byte for byte.
//!
//! The answer follows the platform's own routing exactly: a position in département `D` maps to
//! `plan.cta(plan.home_cta(plan.zone_id(D)))`, the CTA a call from there would ring.
//!
//! What it reads:
//! - `findService` for `urn:service:sos` (service number 112) and `urn:service:sos.fire` (18);
//!   `urn:service:sos.ambulance` and `urn:service:sos.police` get a `notFound` (the SAMU and
//!   the police route their own calls), any other service a `serviceNotImplemented`;
//! - locations in profile `geodetic-2d` (a `gml:Point`; the centre of an RFC 5491 circle,
//!   ellipse or arc band; the mean of a polygon's vertices) and `civic` (RFC 5139: the commune
//!   by its INSEE code in `ADDCODE`, else by postcode `PC` and city `A3`);
//! - `listServices`, `listServicesByLocation`, and `getServiceBoundary` with the keys that
//!   mappings hand out (`departement-13`);
//! - a request whose `path` already names this server is a `loop`.

#![warn(missing_docs)]

mod boundary;
mod request;
mod response;
mod service;
mod xml;

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use secourir_config::{CtaId, Plan};
use secourir_territory::Territory;

use crate::boundary::Boundaries;
use crate::request::{Civic, Location, LocationValue, Request};
use crate::service::{Requested, classify};
use crate::xml::clip;

pub use crate::boundary::VERTICES_MAX;
pub use crate::service::Service;
pub use crate::xml::{LOST_NS as NAMESPACE, REQUEST_BYTES_MAX};

/// The media type of LoST requests and answers (RFC 5222 section 18.2).
pub const CONTENT_TYPE: &str = "application/lost+xml";
/// How long a client may reuse a mapping unless told otherwise: a plan taken live moves a
/// département to another CTA within this time at most.
pub const MAPPING_TTL_S_DEFAULT: u32 = 3_600;
/// Longest `source` name accepted (a DNS name).
const SOURCE_BYTES_MAX: usize = 253;

/// ISO 3166 codes a French civic address may carry: France and its overseas départements.
const COUNTRIES: [&str; 6] = ["FR", "GP", "MQ", "GF", "RE", "YT"];

/// Why the server cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcrfError {
    /// The source name is not a domain-like name, as RFC 5222's `appUniqueString` requires.
    #[error("LoST source {0:?} is not a name of the form host.domain (letters, digits, hyphens)")]
    Source(String),
    /// The SIP authority cannot follow the `@` of a SIP URI.
    #[error("SIP authority {0:?} is not a host[:port]")]
    SipAuthority(String),
}

/// The LoST error elements this server writes (RFC 5222 section 13.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `badRequest`: not XML, not LoST, or a request this server cannot read.
    BadRequest,
    /// `locationProfileUnrecognized`: no location in `geodetic-2d` or `civic`.
    LocationProfileUnrecognized,
    /// `locationInvalid`: a location in a known profile whose content cannot be used.
    LocationInvalid,
    /// `notFound`: no CTA for that place (at sea, abroad, a département the plan does not
    /// serve), an unknown boundary key, or a service routed outside this platform.
    NotFound,
    /// `serviceNotImplemented`: a service URN this server does not map.
    ServiceNotImplemented,
    /// `loop`: the request's path already went through this server.
    Loop,
}

impl ErrorKind {
    /// The element's name.
    pub fn element(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "badRequest",
            ErrorKind::LocationProfileUnrecognized => "locationProfileUnrecognized",
            ErrorKind::LocationInvalid => "locationInvalid",
            ErrorKind::NotFound => "notFound",
            ErrorKind::ServiceNotImplemented => "serviceNotImplemented",
            ErrorKind::Loop => "loop",
        }
    }
}

/// What an answer said, for the shell's logs and metrics (no need to read the body again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A mapping to a CTA.
    Mapping {
        /// The service mapped.
        service: Service,
        /// The département of the location used.
        departement: String,
        /// The CTA named.
        cta: CtaId,
    },
    /// A list of services.
    ServiceList,
    /// A service boundary.
    Boundary,
    /// A LoST error.
    Error(ErrorKind),
}

/// An answer to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status: 200 for every LoST answer, errors included (RFC 5222 section 13).
    pub status: u16,
    /// The `application/lost+xml` body.
    pub body: Vec<u8>,
    /// What the body says.
    pub outcome: Outcome,
}

/// The ECRF: the plan and the territory, and the names to answer with.
#[derive(Debug)]
pub struct Ecrf {
    plan: Arc<Plan>,
    territory: &'static Territory,
    sip_authority: String,
    source_id: String,
    boundaries: Boundaries,
    mapping_ttl_s: u32,
    last_updated: Option<DateTime<Utc>>,
}

/// An error on its way to becoming a response.
struct Failure {
    kind: ErrorKind,
    message: String,
    unsupported_profiles: String,
}

fn failure(kind: ErrorKind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        message: message.into(),
        unsupported_profiles: String::new(),
    }
}

impl Ecrf {
    /// A server for this plan and territory. `sip_authority` is the platform's SIP `host:port`
    /// (queue URIs are `sip:<cta id>@<sip_authority>`); `source_id` is this server's name in
    /// `source` and `via` (a DNS-like name, `ecrf.secourir.example`). Computes every
    /// département's boundary (a few tens of milliseconds).
    pub fn new(
        plan: Arc<Plan>,
        territory: &'static Territory,
        sip_authority: String,
        source_id: String,
    ) -> Result<Ecrf, EcrfError> {
        if !is_app_unique_string(&source_id) {
            return Err(EcrfError::Source(source_id));
        }
        let authority_ok = !sip_authority.is_empty()
            && sip_authority.len() <= SOURCE_BYTES_MAX + 8
            && sip_authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
        if !authority_ok {
            return Err(EcrfError::SipAuthority(sip_authority));
        }
        Ok(Ecrf {
            plan,
            territory,
            sip_authority,
            source_id,
            boundaries: Boundaries::new(territory),
            mapping_ttl_s: MAPPING_TTL_S_DEFAULT,
            last_updated: None,
        })
    }

    /// Sets how long clients may reuse a mapping ([`MAPPING_TTL_S_DEFAULT`] otherwise); 0
    /// writes `expires="NO-CACHE"`.
    pub fn with_mapping_ttl_s(mut self, ttl_s: u32) -> Ecrf {
        self.mapping_ttl_s = ttl_s;
        self
    }

    /// Sets the `lastUpdated` of every mapping: when the plan was taken. Without it, each
    /// mapping says it was computed at the request's `now`.
    pub fn with_last_updated(mut self, at: DateTime<Utc>) -> Ecrf {
        self.last_updated = Some(at);
        self
    }

    /// This server's name in `source` and `via`.
    pub fn source_id(&self) -> &str {
        &self.source_id
    }

    /// The queue URI of a CTA, as mappings give it.
    pub fn queue_uri(&self, cta: CtaId) -> String {
        let id = &self.plan.cta(cta).id;
        let mut user = String::with_capacity(id.len());
        for byte in id.bytes() {
            // RFC 3261 `unreserved` stays as it is; anything else is escaped.
            if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
                user.push(char::from(byte));
            } else {
                user.push_str(&format!("%{byte:02X}"));
            }
        }
        format!("sip:{user}@{}", self.sip_authority)
    }

    /// Answers one request: its body as received, and the time of the request.
    pub fn handle_request(&self, body: &[u8], now: DateTime<Utc>) -> Response {
        let (body, outcome) = match self.answer(body, now) {
            Ok(answer) => answer,
            Err(failure) => (
                response::error(
                    failure.kind,
                    &failure.message,
                    &self.source_id,
                    &failure.unsupported_profiles,
                ),
                Outcome::Error(failure.kind),
            ),
        };
        Response {
            status: 200,
            body,
            outcome,
        }
    }

    fn answer(&self, body: &[u8], now: DateTime<Utc>) -> Result<(Vec<u8>, Outcome), Failure> {
        let tree = xml::parse(body).map_err(|e| failure(ErrorKind::BadRequest, e.0))?;
        let request = request::read(&tree).map_err(|e| failure(ErrorKind::BadRequest, e.0))?;
        if request
            .path()
            .iter()
            .any(|via| via.eq_ignore_ascii_case(&self.source_id))
        {
            return Err(failure(
                ErrorKind::Loop,
                "this server is already in the request's path",
            ));
        }
        match request {
            Request::FindService {
                locations,
                service,
                path,
                boundary_by_value,
            } => self.find_service(
                &locations,
                service.as_deref(),
                &path,
                boundary_by_value,
                now,
            ),
            Request::ListServices { service, path } => {
                let services = children(service.as_deref())?;
                let body = response::service_list(&services, &path, &self.source_id, None);
                Ok((body, Outcome::ServiceList))
            }
            Request::ListServicesByLocation {
                locations,
                service,
                path,
            } => {
                let services = children(service.as_deref())?;
                let location = chosen(&locations)?;
                self.route(&location.value)?;
                let body =
                    response::service_list(&services, &path, &self.source_id, Some(&location.id));
                Ok((body, Outcome::ServiceList))
            }
            Request::GetServiceBoundary { key } => {
                let boundary = self.boundaries.by_key(&key).ok_or_else(|| {
                    failure(
                        ErrorKind::NotFound,
                        format!("no service boundary has the key {:?}", clip(&key)),
                    )
                })?;
                Ok((
                    response::boundary(boundary, &self.source_id),
                    Outcome::Boundary,
                ))
            }
        }
    }

    fn find_service(
        &self,
        locations: &[Location],
        service: Option<&str>,
        path: &[String],
        boundary_by_value: bool,
        now: DateTime<Utc>,
    ) -> Result<(Vec<u8>, Outcome), Failure> {
        let service = match service.map(classify) {
            None => {
                return Err(failure(
                    ErrorKind::BadRequest,
                    "findService without a service",
                ));
            }
            Some(Requested::Served(service)) => service,
            Some(Requested::ElsewhereInFrance) => {
                return Err(failure(
                    ErrorKind::NotFound,
                    "this server maps only the fire service (sos, sos.fire); the SAMU and \
                     the police route their own calls",
                ));
            }
            Some(Requested::Unknown) => {
                return Err(failure(
                    ErrorKind::ServiceNotImplemented,
                    "this server maps urn:service:sos and urn:service:sos.fire",
                ));
            }
        };
        let location = chosen(locations)?;
        let (departement, cta) = self.route(&location.value)?;
        let boundary = self
            .boundaries
            .of_departement(&departement)
            .ok_or_else(|| failure(ErrorKind::NotFound, "no service boundary for this place"))?;
        let expires =
            match now.checked_add_signed(TimeDelta::seconds(i64::from(self.mapping_ttl_s))) {
                Some(at) if self.mapping_ttl_s > 0 => rfc3339(at),
                _ => "NO-CACHE".to_owned(),
            };
        let last_updated = rfc3339(self.last_updated.unwrap_or(now));
        let uri = self.queue_uri(cta);
        let source_id = format!("{}-{departement}", service.tag());
        let mapping = response::Mapping {
            display_name: &self.plan.cta(cta).name,
            service: service.urn(),
            uri: &uri,
            service_number: service.number(),
            expires: &expires,
            last_updated: &last_updated,
            source: &self.source_id,
            source_id: &source_id,
            boundary,
            boundary_by_value,
        };
        let body = response::find_service(&mapping, path, &location.id);
        Ok((
            body,
            Outcome::Mapping {
                service,
                departement,
                cta,
            },
        ))
    }

    /// The département of a location and the CTA that answers its calls.
    fn route(&self, value: &LocationValue) -> Result<(String, CtaId), Failure> {
        let departement = match value {
            LocationValue::Point { lat, lon } => self
                .territory
                .locate(*lat, *lon)
                .map(|place| place.departement)
                .ok_or_else(|| {
                    failure(
                        ErrorKind::NotFound,
                        "no CTA serves this position: it is at sea or outside France",
                    )
                })?,
            LocationValue::Civic(civic) => self.civic_departement(civic)?,
            LocationValue::Invalid(reason) => {
                return Err(failure(ErrorKind::LocationInvalid, clip(reason)));
            }
            // chosen() never returns a location in a profile this server does not read.
            LocationValue::Unrecognized => {
                return Err(failure(
                    ErrorKind::LocationProfileUnrecognized,
                    "no location in a profile this server reads",
                ));
            }
        };
        // Exactly the platform's routing: the home CTA of the département's zone.
        let zone = self.plan.zone_id(&departement).ok_or_else(|| {
            failure(
                ErrorKind::NotFound,
                format!("no CTA of this platform serves département {departement}"),
            )
        })?;
        Ok((departement, self.plan.home_cta(zone)))
    }

    fn civic_departement(&self, civic: &Civic) -> Result<String, Failure> {
        if let Some(country) = &civic.country
            && !COUNTRIES.iter().any(|c| c.eq_ignore_ascii_case(country))
        {
            return Err(failure(
                ErrorKind::NotFound,
                "no CTA serves this address: it is outside France",
            ));
        }
        let by_code = civic
            .addcode
            .as_deref()
            .and_then(|code| self.territory.commune(code));
        let commune = by_code.or_else(|| {
            self.territory
                .find_commune(civic.postcode.as_deref(), civic.city.as_deref())
        });
        match commune {
            Some(commune) => Ok(commune.departement.clone()),
            None if civic.addcode.is_none() && civic.postcode.is_none() && civic.city.is_none() => {
                Err(failure(
                    ErrorKind::LocationInvalid,
                    "the civic address has none of ADDCODE (INSEE code), PC and A3",
                ))
            }
            None => Err(failure(
                ErrorKind::NotFound,
                "no commune matches this civic address",
            )),
        }
    }
}

/// The first location in a profile this server reads (RFC 5222 section 12: the server uses
/// the first it understands, and says which in `locationUsed`).
fn chosen(locations: &[Location]) -> Result<&Location, Failure> {
    if let Some(location) = locations
        .iter()
        .find(|l| l.value != LocationValue::Unrecognized)
    {
        return Ok(location);
    }
    let mut profiles: Vec<String> = Vec::new();
    for location in locations {
        let token: String = location
            .profile
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || ".-_:".contains(*c))
            .take(64)
            .collect();
        if !token.is_empty() && !profiles.contains(&token) {
            profiles.push(token);
        }
    }
    if profiles.is_empty() {
        profiles.push("unknown".to_owned());
    }
    Err(Failure {
        kind: ErrorKind::LocationProfileUnrecognized,
        message: "this server reads the geodetic-2d and civic profiles".to_owned(),
        unsupported_profiles: profiles.join(" "),
    })
}

/// The services listed under a parent (RFC 5222 section 9): both without one, the children
/// of `urn:service:sos` under it.
fn children(parent: Option<&str>) -> Result<Vec<&'static str>, Failure> {
    match parent.map(classify) {
        None => Ok(Service::ALL.iter().map(|s| s.urn()).collect()),
        Some(Requested::Served(Service::Sos)) => Ok(vec![Service::Fire.urn()]),
        Some(Requested::Served(Service::Fire) | Requested::ElsewhereInFrance) => Ok(Vec::new()),
        Some(Requested::Unknown) => Err(failure(
            ErrorKind::ServiceNotImplemented,
            "this server maps urn:service:sos and urn:service:sos.fire",
        )),
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Whether a name fits RFC 5222's `appUniqueString`: dot-separated labels of letters, digits
/// and hyphens, at least two of them.
pub fn is_app_unique_string(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= SOURCE_BYTES_MAX
        && labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && labels
            .last()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_unique_strings() {
        for good in ["ecrf.secourir.example", "a.b", "127.0.0.1", "x-1.y2"] {
            assert!(is_app_unique_string(good), "{good}");
        }
        for bad in ["localhost", "a.", ".a", "a..b", "a.b-", "a b.c", "é.fr", ""] {
            assert!(!is_app_unique_string(bad), "{bad}");
        }
    }

    #[test]
    fn construction_checks_its_names() {
        let plan = secourir_config::fixtures::one_cta_plan("");
        let territory = Territory::france();
        let build = |authority: &str, source: &str| {
            Ecrf::new(
                plan.clone(),
                territory,
                authority.to_owned(),
                source.to_owned(),
            )
            .map(|_| ())
        };
        assert_eq!(build("127.0.0.1:5060", "ecrf.example"), Ok(()));
        assert_eq!(build("[::1]:5060", "ecrf.example"), Ok(()));
        assert!(matches!(
            build("127.0.0.1:5060", "localhost"),
            Err(EcrfError::Source(_))
        ));
        assert!(matches!(
            build("a@b", "ecrf.example"),
            Err(EcrfError::SipAuthority(_))
        ));
    }
}

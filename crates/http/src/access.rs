//! Who may do what on the HTTP API. Machines (the API token: SBC, SMS gateway, supervision
//! tools) read every CTA and act through the machine routes; people (console sessions) read
//! what their role and CTA allow, and act only through the console's routes, where the core
//! checks each action against their CTA. So a call-taker's session is never as strong as the
//! token: it cannot set another call-taker's state, move a caller's position, or work a
//! call-back in someone else's name.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secourir_config::Plan;
use tracing::{info, warn};

use crate::protocol::{AppState, problem};
use crate::sessions::Session;

/// A request refused: its status and what the person is told.
pub(crate) struct Refusal(StatusCode, &'static str);

impl axum::response::IntoResponse for Refusal {
    fn into_response(self) -> Response {
        problem(self.0, self.1)
    }
}

/// Who asks.
pub(crate) enum Asker {
    /// The API token.
    Machine,
    /// A console session.
    Person(Session),
}

impl Asker {
    /// The one CTA whose records this asker may read; `None`: every CTA.
    pub(crate) fn scope(&self) -> Option<&str> {
        match self {
            Asker::Machine => None,
            Asker::Person(s) if s.role.supervises() => None,
            Asker::Person(s) => Some(s.cta.as_str()),
        }
    }

    /// Whether a call record (handled by `cta`, answered by `call_taker`, from `departement`)
    /// is this asker's to read: a call-taker reads their CTA's calls, those of its zones, and
    /// those they answered themselves.
    pub(crate) fn reads_call(
        &self,
        plan: &Plan,
        cta: Option<&str>,
        call_taker: Option<&str>,
        departement: &str,
    ) -> bool {
        let (Some(own), Asker::Person(session)) = (self.scope(), self) else {
            return true;
        };
        cta == Some(own)
            || call_taker == Some(session.login.as_str())
            || plan
                .zone_id(departement)
                .is_some_and(|zone| plan.cta(plan.home_cta(zone)).id == own)
    }
}

/// Whether the request carries the API token, compared in constant time.
fn token(state: &AppState, headers: &HeaderMap) -> bool {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare without an early exit so the time taken says nothing about the token.
    let expected = state.token.as_bytes();
    let given = given.as_bytes();
    let mut diff = expected.len() ^ given.len();
    for (i, &b) in expected.iter().enumerate() {
        diff |= usize::from(b ^ given.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// The asker of a request: the API token or a console session; 401 otherwise.
pub(crate) fn asker(state: &AppState, headers: &HeaderMap) -> Result<Asker, Refusal> {
    if token(state, headers) {
        return Ok(Asker::Machine);
    }
    match state.web.session(headers) {
        Some(session) => Ok(Asker::Person(session)),
        None => {
            info!("API request with a wrong or missing token");
            Err(Refusal(StatusCode::UNAUTHORIZED, "unauthorised"))
        }
    }
}

/// A machine's route: the API token only. A person's session is no credential here, so it gets
/// 401 as no credential does (RFC 9110 §15.5.2): people act through the console's routes,
/// which the core checks against their CTA.
pub(crate) fn machine(state: &AppState, headers: &HeaderMap) -> Result<(), Refusal> {
    match asker(state, headers)? {
        Asker::Machine => Ok(()),
        Asker::Person(session) => {
            warn!(login = %session.login, "machine route asked with a console session");
            Err(Refusal(
                StatusCode::UNAUTHORIZED,
                "réservé aux équipements (jeton d'API)",
            ))
        }
    }
}

/// The supervision's route: the API token or a supervisor's session.
pub(crate) fn supervision(state: &AppState, headers: &HeaderMap) -> Result<(), Refusal> {
    match asker(state, headers)? {
        Asker::Person(session) if !session.role.supervises() => {
            warn!(login = %session.login, "supervision route asked without the role");
            Err(Refusal(StatusCode::FORBIDDEN, "réservé au chef de salle"))
        }
        _ => Ok(()),
    }
}

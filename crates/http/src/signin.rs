//! Signing in to the pages: the pages themselves, login with argon2-hashed passwords and the
//! session cookie, logout, and who is signed in.

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use secourir_config::{CallTaker, Plan};
use secourir_throttle::{Lockout, Verdict};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::protocol::{ApiCall, AppState, problem};
use crate::sessions::{COOKIE, Session};

pub(crate) async fn index() -> Html<&'static str> {
    Html(include_str!("../web/index.html"))
}

pub(crate) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../web/app.js"),
    )
        .into_response()
}

pub(crate) async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../web/style.css"),
    )
        .into_response()
}

/// Console credentials.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Credentials {
    login: String,
    password: String,
    /// One-time code of the second factor (RFC 6238), for the accounts that have one.
    #[serde(default)]
    code: Option<String>,
}

#[derive(Serialize)]
struct Me {
    login: String,
    name: Option<String>,
    role: &'static str,
    cta: String,
    cta_name: String,
    partners: Vec<String>,
    /// What the console offers for handing a case through the hub, when there is one.
    cases: Option<CaseChoices>,
}

/// The partners a case may go to through the hub, and the natures of fact to choose from.
#[derive(Serialize)]
struct CaseChoices {
    /// `15`, `17`: the partners with a client id on the hub.
    to: Vec<&'static str>,
    /// The configured natures of fact, the default first.
    qualifications: Vec<Qualification>,
}

/// A nature of fact, as the console lists it.
#[derive(Serialize)]
struct Qualification {
    code: String,
    label: String,
}

fn me_of(plan: &Plan, session: &Session) -> Me {
    let taker = plan.call_taker(&session.login).map(|(_, t)| t);
    let cta = plan.cta_id(&session.cta).map(|c| plan.cta(c));
    Me {
        login: session.login.clone(),
        name: taker.and_then(|t| t.name.clone()),
        role: session.role.as_str(),
        cta: session.cta.clone(),
        cta_name: cta.map(|c| c.name.clone()).unwrap_or_default(),
        partners: session.partners.clone(),
        cases: plan.hub.as_ref().map(|hub| CaseChoices {
            to: plan
                .partner_hub_ids
                .iter()
                .map(|(service, _)| crate::service_name(*service))
                .collect(),
            qualifications: hub
                .qualifications
                .iter()
                .map(|q| Qualification {
                    code: q.code.clone(),
                    label: q.label.clone(),
                })
                .collect(),
        }),
    }
}

/// A hash no password matches, checked for a login that does not exist (or has no console
/// password) so that it takes as long as a wrong password: the time tells nothing.
pub(crate) fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        use argon2::PasswordHasher;
        let salt = argon2::password_hash::SaltString::encode_b64(b"secourir-decoy-salt")
            .unwrap_or_else(|_| {
                argon2::password_hash::SaltString::from_b64("c2VjcmV0").expect("salt")
            });
        Argon2::default()
            .hash_password(uuid::Uuid::new_v4().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Whether `taker` needs no second factor, or `code` is a good one of theirs not used before
/// (it is then used).
fn second_factor(state: &AppState, taker: &CallTaker, code: Option<&str>) -> bool {
    let Some(secret) = &taker.totp_secret else {
        return true;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut used = state
        .web
        .codes_used
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let last = used.get(&taker.login).copied();
    match code.and_then(|code| crate::totp::step_of(secret, code, now, last)) {
        Some(step) => {
            used.insert(taker.login.clone(), step);
            true
        }
        None => {
            warn!(login = %taker.login, "console login refused: one-time code missing or wrong");
            false
        }
    }
}

#[utoipa::path(post, path = "/api/login", tag = "console", request_body = Credentials, responses((status = 200, description = "Logged in; sets the session cookie"), (status = 401, description = "identifiants invalides (no hint which part)"), (status = 429, description = "trop de tentatives: try again after Retry-After seconds")))]
pub(crate) async fn login(
    State(state): State<AppState>,
    source: Option<axum::extract::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: Result<Json<Credentials>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(credentials)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "identifiant et mot de passe attendus",
        );
    };
    let peer = source.map(|s| s.0.0);
    let source = peer.map(|p| p.ip());
    let login = credentials.login.clone();
    let auth = |outcome| {
        secourir_audit::Body::Authentication(secourir_audit::Authentication {
            login: login.clone(),
            outcome,
            method: "console".into(),
        })
    };
    let verdict = {
        let mut throttle = state.web.throttle.lock().unwrap_or_else(|e| e.into_inner());
        throttle.check(&login, source, std::time::Instant::now())
    };
    if let Verdict::Wait(wait) = verdict {
        let seconds = wait.as_secs().max(1);
        // Counted, not logged one by one: a guessing loop must not flood the log.
        metrics::counter!("secourir_login_held_back_total").increment(1);
        let mut response = problem(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("trop de tentatives : réessayez dans {seconds} s"),
        );
        if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let plan = state.web.plan.clone();
    // argon2 is deliberately slow: keep it off the runtime's threads.
    let verified = tokio::task::spawn_blocking(move || {
        let taker = plan.call_taker(&credentials.login).map(|(_, t)| t);
        let stored = taker.and_then(|t| t.web_password.as_deref());
        let hash = PasswordHash::new(stored.unwrap_or(decoy_hash())).ok()?;
        Argon2::default()
            .verify_password(credentials.password.as_bytes(), &hash)
            .ok()?;
        let taker = taker.filter(|_| stored.is_some())?;
        Some((taker.clone(), credentials.code))
    })
    .await
    .ok()
    .flatten()
    // The second factor, where the account has one: a missing or wrong code is answered as a
    // wrong password, so that nobody learns the password was right.
    .filter(|(taker, code)| second_factor(&state, taker, code.as_deref()))
    .map(|(taker, _)| taker);
    let Some(taker) = verified else {
        warn!(%login, ?source, "console login refused");
        state.audit(
            auth(secourir_audit::AuthenticationOutcome::Failed),
            peer,
            None,
        );
        let locked = {
            let mut throttle = state.web.throttle.lock().unwrap_or_else(|e| e.into_inner());
            throttle.failed(&login, source, std::time::Instant::now())
        };
        for lockout in locked {
            let what = match lockout {
                Lockout::LoginFrom { login, source } => format!(
                    "connexions de {login} depuis {source} bloquées 15 min après des mots de passe faux"
                ),
                Lockout::Source(ip) => {
                    format!("connexions depuis {ip} bloquées 15 min après des mots de passe faux")
                }
                Lockout::LoginFromUnknown(login) => format!(
                    "connexions de {login} depuis des adresses inconnues bloquées 15 min après des mots de passe faux"
                ),
            };
            warn!(%what, "console login locked out");
            state.audit(
                auth(secourir_audit::AuthenticationOutcome::LockedOut),
                peer,
                None,
            );
            metrics::counter!("secourir_login_lockouts_total").increment(1);
            let _ = state.driver.try_send(ApiCall::Note { what });
        }
        // One answer for an unknown login and a wrong password alike.
        return problem(StatusCode::UNAUTHORIZED, "identifiants invalides");
    };
    state.audit(
        auth(secourir_audit::AuthenticationOutcome::SignedIn),
        peer,
        Some(&taker.login),
    );
    // From now on, wrong passwords from elsewhere cannot hold this console back.
    state
        .web
        .throttle
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .succeeded(&taker.login, source, std::time::Instant::now());
    let plan = &state.web.plan;
    let cta = plan.cta(taker.cta);
    let session = Session::new(
        taker.login.clone(),
        taker.role,
        cta.id.clone(),
        cta.partners
            .iter()
            .map(|p| plan.cta(*p).id.clone())
            .collect(),
    );
    let me = me_of(plan, &session);
    let token = state.web.open(session);
    info!(login = %taker.login, role = taker.role.as_str(), "console login");
    let secure = if state.https { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}");
    let mut response = Json(me).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[utoipa::path(post, path = "/api/logout", tag = "console", responses((status = 204, description = "Logged out")))]
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(session) = state.web.session(&headers) {
        state.web.close(&session.login);
        info!(login = %session.login, "console logout");
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("secourir_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

pub(crate) fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Session, StatusCode> {
    state.web.session(headers).ok_or(StatusCode::UNAUTHORIZED)
}

#[utoipa::path(get, path = "/api/me", tag = "console", security(("session" = [])), responses((status = 200, description = "Who is logged in"), (status = 401, description = "Not logged in")))]
pub(crate) async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Ok(session) => Json(me_of(&state.web.plan, &session)).into_response(),
        Err(code) => problem(code, "non connecté"),
    }
}

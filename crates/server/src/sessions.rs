//! Who is logged in to the pages: login with argon2-hashed passwords, the session cookie, and
//! what a session may see.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use secourir_config::{Plan, Role};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::live::Snapshot;
use crate::protocol::{AppState, problem};

/// A session lasts a shift and a half.
const SESSION_LIFETIME: Duration = Duration::from_secs(18 * 3600);
const COOKIE: &str = "secourir_session";

/// Who is logged in to a page.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) login: String,
    pub(crate) role: Role,
    pub(crate) cta: String,
    /// CTAs whose queues this person may see and pick from: their own and its partners.
    pub(crate) partners: Vec<String>,
    expires: Instant,
}

/// The pages' shared state.
#[derive(Clone)]
pub(crate) struct Web {
    pub(crate) plan: Arc<Plan>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    pub(crate) snapshots: watch::Receiver<Arc<Snapshot>>,
    /// The territory's outlines, drawn once.
    pub(crate) outlines: Arc<std::sync::OnceLock<String>>,
}

impl Web {
    pub(crate) fn new(plan: Arc<Plan>, snapshots: watch::Receiver<Arc<Snapshot>>) -> Web {
        Web {
            plan,
            sessions: Arc::new(Mutex::new(HashMap::new())),
            snapshots,
            outlines: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// The session named by the request's cookie, if alive.
    pub(crate) fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let token = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|kv| {
                kv.trim()
                    .strip_prefix(&format!("{COOKIE}="))
                    .map(str::to_owned)
            })?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.get(&token).cloned()
    }
}

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
}

#[derive(Serialize)]
struct Me {
    login: String,
    name: Option<String>,
    role: &'static str,
    cta: String,
    cta_name: String,
    partners: Vec<String>,
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
    }
}

#[utoipa::path(post, path = "/api/login", tag = "console", request_body = Credentials, responses((status = 200, description = "Logged in; sets the session cookie"), (status = 401, description = "identifiants invalides (no hint which part)")))]
pub(crate) async fn login(
    State(state): State<AppState>,
    body: Result<Json<Credentials>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(credentials)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "identifiant et mot de passe attendus",
        );
    };
    let plan = state.web.plan.clone();
    let login = credentials.login.clone();
    // argon2 is deliberately slow: keep it off the runtime's threads.
    let verified = tokio::task::spawn_blocking(move || {
        let (_, taker) = plan.call_taker(&credentials.login)?;
        let hash = PasswordHash::new(taker.web_password.as_deref()?).ok()?;
        Argon2::default()
            .verify_password(credentials.password.as_bytes(), &hash)
            .ok()?;
        Some(taker.clone())
    })
    .await
    .ok()
    .flatten();
    let Some(taker) = verified else {
        warn!(%login, "console login refused");
        // One answer for an unknown login and a wrong password alike.
        return problem(StatusCode::UNAUTHORIZED, "identifiants invalides");
    };
    let plan = &state.web.plan;
    let cta = plan.cta(taker.cta);
    let session = Session {
        login: taker.login.clone(),
        role: taker.role,
        cta: cta.id.clone(),
        partners: cta
            .partners
            .iter()
            .map(|p| plan.cta(*p).id.clone())
            .collect(),
        expires: Instant::now() + SESSION_LIFETIME,
    };
    let token =
        uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
    let me = me_of(plan, &session);
    state
        .web
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), session);
    info!(login = %taker.login, role = taker.role.as_str(), "console login");
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    let mut response = Json(me).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[utoipa::path(post, path = "/api/logout", tag = "console", responses((status = 204, description = "Logged out")))]
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(session) = state.web.session(&headers) {
        state
            .web
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, s| s.login != session.login);
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

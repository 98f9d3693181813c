//! Signing in to the pages: the pages themselves, login with argon2-hashed passwords and the
//! session cookie, logout, and who is signed in.

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use secourir_config::Plan;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::protocol::{AppState, problem};
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

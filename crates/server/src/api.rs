//! The HTTP API: call-takers' availability, the call list, the call-back list and the platform's
//! health. Every route but `/api/health` wants `Authorization: Bearer <token>`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

/// What a call-taker asks to become.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WantedState {
    /// Ready for calls (logs in if needed).
    Available,
    /// On pause.
    Paused,
    /// Logged out.
    Offline,
}

/// A call-taker as the API shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallTakerView {
    /// Login.
    pub login: String,
    /// CTA.
    pub cta: String,
    /// available, ringing, talking, wrap-up, paused, offline.
    pub status: String,
    /// Whether their phone is registered.
    pub phone_registered: bool,
}

/// Health figures of the running platform.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlatformStatus {
    /// Calls admitted and not ended.
    pub live_calls: usize,
    /// Phones registered.
    pub registered_phones: usize,
    /// Media legs open.
    pub open_media_legs: usize,
    /// Malformed SIP requests answered with an error.
    pub malformed_refused: u64,
    /// Datagrams dropped as not SIP.
    pub datagrams_dropped: u64,
}

/// Why an API request failed.
#[derive(Debug)]
pub enum ApiError {
    /// No such thing.
    NotFound(&'static str),
    /// Not this person's to do.
    Forbidden(&'static str),
    /// The core refused a pick.
    Pick(secourir_core::PickRefusal),
    /// The core refused a call-back step.
    Callback(secourir_core::CallbackRefusal),
    /// The core refused a hand-back.
    HandBack(secourir_core::HandBackRefusal),
    /// The state of things forbids it now (HTTP 409).
    Conflict(String),
    /// A partner service did not take the call (HTTP 502).
    Upstream(String),
}

impl ApiError {
    /// The HTTP answer to this error.
    pub(crate) fn response(&self) -> Response {
        use secourir_core::{CallbackRefusal, HandBackRefusal, PickRefusal};
        match self {
            ApiError::NotFound(what) => problem(StatusCode::NOT_FOUND, what),
            ApiError::Forbidden(what) => problem(StatusCode::FORBIDDEN, what),
            ApiError::Conflict(what) => problem(StatusCode::CONFLICT, what),
            ApiError::Upstream(what) => problem(StatusCode::BAD_GATEWAY, what),
            ApiError::HandBack(HandBackRefusal::NotTheirs) => problem(
                StatusCode::FORBIDDEN,
                "vous n'êtes pas en communication avec cet appel",
            ),
            ApiError::HandBack(HandBackRefusal::OwnCall) => problem(
                StatusCode::CONFLICT,
                "cet appel est déjà celui de votre CTA",
            ),
            ApiError::HandBack(HandBackRefusal::HomeUnreachable) => problem(
                StatusCode::CONFLICT,
                "personne n'est connecté au CTA d'origine : gardez l'appel",
            ),
            ApiError::Pick(PickRefusal::AlreadyTaken) => {
                problem(StatusCode::CONFLICT, "appel déjà pris")
            }
            ApiError::Pick(PickRefusal::NotReady) => problem(
                StatusCode::CONFLICT,
                "vous avez déjà un appel ou n'êtes pas connecté",
            ),
            ApiError::Pick(PickRefusal::Forbidden) => {
                problem(StatusCode::FORBIDDEN, "appel d'un autre CTA")
            }
            ApiError::Pick(PickRefusal::UnknownCall) => {
                problem(StatusCode::NOT_FOUND, "appel inconnu")
            }
            ApiError::Callback(CallbackRefusal::NotLoggedIn) => problem(
                StatusCode::CONFLICT,
                "connectez-vous (disponible ou en pause) pour traiter un rappel",
            ),
            ApiError::Callback(CallbackRefusal::Unknown) => problem(
                StatusCode::NOT_FOUND,
                "aucun rappel pour cet appel dans ce CTA",
            ),
        }
    }
}

/// A request for the driver, which owns the routing core.
pub(crate) enum ApiCall {
    SetState {
        login: String,
        state: WantedState,
        reply: oneshot::Sender<Result<String, ApiError>>,
    },
    CallTakers {
        reply: oneshot::Sender<Vec<CallTakerView>>,
    },
    Callback {
        call: u64,
        login: String,
        done: bool,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    Status {
        reply: oneshot::Sender<PlatformStatus>,
    },
    Pick {
        login: String,
        call: u64,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    HangUp {
        login: String,
        call: u64,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    Crisis {
        login: String,
        departement: String,
        on: bool,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    Transfer {
        login: String,
        call: u64,
        to: String,
        summary: String,
        reply: oneshot::Sender<Result<String, ApiError>>,
    },
    HandBack {
        login: String,
        call: u64,
        summary: String,
        reply: oneshot::Sender<Result<String, ApiError>>,
    },
    Aml {
        caller: String,
        lat: f64,
        lon: f64,
        radius_m: Option<f64>,
        reply: oneshot::Sender<Option<u64>>,
    },
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) driver: mpsc::Sender<ApiCall>,
    pub(crate) token: Arc<str>,
    pub(crate) data_dir: Arc<PathBuf>,
    pub(crate) web: crate::web::Web,
}

/// The router of the API and the pages.
pub(crate) fn router(
    driver: mpsc::Sender<ApiCall>,
    token: String,
    data_dir: PathBuf,
    web: crate::web::Web,
) -> Router {
    let state = AppState {
        driver,
        token: token.into(),
        data_dir: Arc::new(data_dir),
        web,
    };
    crate::web::routes()
        .route("/api/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .route("/api/call-takers", get(call_takers))
        .route("/api/call-takers/{login}/state", post(set_state))
        .route("/api/calls", get(calls))
        .route("/api/calls/{call}", get(call_detail))
        .route("/api/aml", post(aml))
        .route("/api/callbacks", get(callbacks))
        .route("/api/callbacks/{call}/taken", post(callback_taken))
        .route("/api/callbacks/{call}/done", post(callback_done))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log_refusals,
        ))
        .with_state(state)
}

/// Logs every request refused, with who asked: a 403 or a 409 on an emergency call is
/// something a supervisor may have to explain later.
async fn log_refusals(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // Only the cookies are kept: the session is looked up for refusals alone.
    let mut cookies = HeaderMap::new();
    for value in request.headers().get_all(axum::http::header::COOKIE) {
        cookies.append(axum::http::header::COOKIE, value.clone());
    }
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let who = state.web.session(&cookies).map(|s| s.login);
        warn!(
            %method,
            %path,
            status = status.as_u16(),
            login = %who.as_deref().unwrap_or("-"),
            "request refused"
        );
    }
    response
}

pub(crate) fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// The refusal to send when the request lacks the right token.
pub(crate) fn refused(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    if state.web.session(headers).is_some() {
        return None;
    }
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
    if diff == 0 {
        None
    } else {
        info!("API request with a wrong or missing token");
        Some(problem(StatusCode::UNAUTHORIZED, "unauthorised"))
    }
}

/// Asks the driver; None when the platform is stopping.
pub(crate) async fn ask<T>(
    state: &AppState,
    make: impl FnOnce(oneshot::Sender<T>) -> ApiCall,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    state.driver.send(make(tx)).await.ok()?;
    rx.await.ok()
}

pub(crate) fn stopping() -> Response {
    problem(StatusCode::SERVICE_UNAVAILABLE, "platform stopping")
}

/// The OpenAPI document of this API, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Secourir", description = "Emergency-call platform of the French fire and rescue services: call-takers, calls, call-backs, console and supervision."),
    paths(
        health, metrics, call_takers, set_state, calls, call_detail, aml, callbacks, callback_taken,
        callback_done, crate::web::login, crate::web::logout, crate::web::me, crate::web::my_state,
        crate::web::pick, crate::web::hang_up, crate::web::transfer, crate::web::hand_back, crate::web::call_back, crate::web::crisis,
        crate::web::outlines, crate::web::live
    ),
    components(schemas(PlatformStatus, CallTakerView, WantedState, StateBody, CallbackBody, crate::web::TransferBody, crate::web::HandBackBody)),
    modifiers(&Security)
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("secourir_session"))),
        );
    }
}

async fn openapi() -> Response {
    use utoipa::OpenApi;
    match ApiDoc::openapi().to_json() {
        Ok(json) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// An Advanced Mobile Location report (ETSI TS 103 625) from the operators' gateway: the HTTPS
/// form, or the SMS text as `text/plain`. It updates the location of the caller's live call.
#[utoipa::path(post, path = "/api/aml", tag = "calls", security(("token" = [])), request_body(content = String, description = "AML HTTPS form (application/x-www-form-urlencoded) or AML SMS text (text/plain)"), responses((status = 200, description = "Applied to the caller's live call"), (status = 202, description = "Valid, but no live call from this number"), (status = 400, description = "Not an AML report, or no position")))]
async fn aml(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let report = if form {
        secourir_location::parse_aml_https(&body, None)
    } else {
        match std::str::from_utf8(&body) {
            Ok(text) => secourir_location::parse_aml_sms(text),
            Err(_) => return problem(StatusCode::BAD_REQUEST, "AML SMS must be text"),
        }
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            info!(error = %e, "AML report refused");
            return problem(StatusCode::BAD_REQUEST, &format!("AML: {e}"));
        }
    };
    let (Some(position), Some(caller)) = (report.position, report.caller) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "AML report without position or caller number",
        );
    };
    match ask(&state, |reply| ApiCall::Aml {
        caller: caller.clone(),
        lat: position.lat,
        lon: position.lon,
        radius_m: position.uncertainty_m,
        reply,
    })
    .await
    {
        Some(Some(call)) => Json(serde_json::json!({ "call": call })).into_response(),
        Some(None) => {
            info!(caller = %secourir_privacy::Personal::new(&caller), "AML report for no live call");
            (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({ "call": null })),
            )
                .into_response()
        }
        None => stopping(),
    }
}

/// Prometheus exposition of the platform's counters, gauges and answer-time histograms.
#[utoipa::path(get, path = "/metrics", tag = "supervision", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
async fn metrics() -> Response {
    match crate::metrics_handle() {
        Some(handle) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            handle.render(),
        )
            .into_response(),
        None => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed",
        ),
    }
}

#[utoipa::path(get, path = "/api/health", tag = "platform", responses((status = 200, description = "Live figures", body = PlatformStatus)))]
async fn health(State(state): State<AppState>) -> Response {
    match ask(&state, |reply| ApiCall::Status { reply }).await {
        Some(status) => Json(status).into_response(),
        None => stopping(),
    }
}

#[utoipa::path(get, path = "/api/call-takers", tag = "call-takers", security(("token" = []), ("session" = [])), responses((status = 200, body = Vec<CallTakerView>), (status = 401, description = "Wrong or missing token")))]
async fn call_takers(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    match ask(&state, |reply| ApiCall::CallTakers { reply }).await {
        Some(list) => Json(list).into_response(),
        None => stopping(),
    }
}

/// A call-taker's wanted state.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct StateBody {
    /// available, paused or offline.
    pub(crate) state: WantedState,
}

#[utoipa::path(post, path = "/api/call-takers/{login}/state", tag = "call-takers", security(("token" = [])), params(("login" = String, Path, description = "Call-taker login")), request_body = StateBody, responses((status = 200, description = "New status"), (status = 400, description = "Bad body"), (status = 401, description = "Wrong or missing token"), (status = 404, description = "Unknown call-taker")))]
async fn set_state(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(login): Path<String>,
    body: Result<Json<StateBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let Ok(Json(body)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "body must be {\"state\": \"available\" | \"paused\" | \"offline\"}",
        );
    };
    let wanted = body.state;
    match ask(&state, |reply| ApiCall::SetState {
        login: login.clone(),
        state: wanted,
        reply,
    })
    .await
    {
        Some(Ok(status)) => {
            info!(%login, ?wanted, %status, "call-taker state set");
            Json(serde_json::json!({ "login": login, "status": status })).into_response()
        }
        Some(Err(e)) => e.response(),
        None => stopping(),
    }
}

#[derive(Deserialize)]
struct CallsQuery {
    since: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/calls", tag = "calls", security(("token" = []), ("session" = [])), params(("since" = Option<String>, Query, description = "90s, 15m, 1h, 2d; default 1h"), ("limit" = Option<usize>, Query, description = "At most; default 1000")), responses((status = 200, description = "Call detail records, newest first"), (status = 400, description = "Bad duration"), (status = 401, description = "Wrong or missing token")))]
async fn calls(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallsQuery>,
) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let since = match secourir_store::parse_since(q.since.as_deref().unwrap_or("1h")) {
        Ok(d) => d,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e),
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let from = now_ms - since.as_millis() as i64;
    let limit = q.limit.unwrap_or(1000).min(10_000);
    let dir = state.data_dir.clone();
    let result = tokio::task::spawn_blocking(move || {
        secourir_store::Store::open_read_only(&dir).and_then(|s| s.calls_since(from, limit))
    })
    .await;
    match result {
        Ok(Ok(calls)) => Json(calls).into_response(),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "store read failed"),
    }
}

#[utoipa::path(get, path = "/api/calls/{call}", tag = "calls", security(("token" = []), ("session" = [])), params(("call" = u64, Path, description = "Call number")), responses((status = 200, description = "The record and its trail"), (status = 404, description = "No such call")))]
async fn call_detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let dir = state.data_dir.clone();
    let result = tokio::task::spawn_blocking(move || {
        let store = secourir_store::Store::open_read_only(&dir)?;
        Ok::<_, secourir_store::StoreError>((store.call(call)?, store.trail(call)?))
    })
    .await;
    match result {
        Ok(Ok((Some(record), trail))) => {
            Json(serde_json::json!({ "call": record, "trail": trail })).into_response()
        }
        Ok(Ok((None, _))) => problem(StatusCode::NOT_FOUND, "no such call"),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "store read failed"),
    }
}

#[derive(Deserialize)]
struct CallbacksQuery {
    cta: Option<String>,
}

#[utoipa::path(get, path = "/api/callbacks", tag = "calls", security(("token" = []), ("session" = [])), params(("cta" = Option<String>, Query, description = "CTA identifier, e.g. cta-13")), responses((status = 200, description = "Call-back entries not yet done, oldest first")))]
async fn callbacks(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbacksQuery>,
) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let dir = state.data_dir.clone();
    let result = tokio::task::spawn_blocking(move || {
        secourir_store::Store::open_read_only(&dir).and_then(|s| s.callbacks(q.cta.as_deref()))
    })
    .await;
    match result {
        Ok(Ok(list)) => Json(list).into_response(),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "store read failed"),
    }
}

/// Who works a call-back.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct CallbackBody {
    by: String,
}

async fn callback_change(
    state: AppState,
    headers: HeaderMap,
    call: u64,
    body: Option<Json<CallbackBody>>,
    done: bool,
) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let Some(Json(body)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "body must be {\"by\": \"<login>\"}",
        );
    };
    match ask(&state, |reply| ApiCall::Callback {
        call,
        login: body.by.clone(),
        done,
        reply,
    })
    .await
    {
        Some(Ok(())) => {
            Json(serde_json::json!({ "call": call, "state": if done { "done" } else { "taken" } }))
                .into_response()
        }
        Some(Err(e)) => e.response(),
        None => stopping(),
    }
}

#[utoipa::path(post, path = "/api/callbacks/{call}/taken", tag = "calls", security(("token" = [])), params(("call" = u64, Path, description = "Call number")), request_body = CallbackBody, responses((status = 200, description = "Taken"), (status = 404, description = "Unknown call-taker, or no call-back for this call in their CTA"), (status = 409, description = "The call-taker is logged out")))]
async fn callback_taken(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
    body: Option<Json<CallbackBody>>,
) -> Response {
    callback_change(state, headers, call, body, false).await
}

#[utoipa::path(post, path = "/api/callbacks/{call}/done", tag = "calls", security(("token" = [])), params(("call" = u64, Path, description = "Call number")), request_body = CallbackBody, responses((status = 200, description = "Done"), (status = 404, description = "Unknown call-taker, or no call-back for this call in their CTA"), (status = 409, description = "The call-taker is logged out")))]
async fn callback_done(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
    body: Option<Json<CallbackBody>>,
) -> Response {
    callback_change(state, headers, call, body, true).await
}

//! The HTTP router of the API and the pages, with its OpenAPI document.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::mpsc;
use tracing::warn;

use crate::protocol::{
    ApiCall, AppState, CallTakerView, ClusterStatus, PlatformStatus, StateBody, WantedState,
    problem,
};
use crate::sessions::Web;
use crate::{api, signin, web};

/// The router of the API and the pages.
pub(crate) fn router(
    driver: mpsc::Sender<ApiCall>,
    token: String,
    data_dir: PathBuf,
    web: Web,
    https: bool,
) -> Router {
    // Made now, so that the first unknown login costs no more than a wrong password.
    signin::decoy_hash();
    let state = AppState {
        driver,
        token: token.into(),
        data_dir: Arc::new(data_dir),
        web,
        https,
    };
    Router::new()
        .route("/", get(signin::index))
        .route("/app.js", get(signin::script))
        .route("/style.css", get(signin::style))
        .route("/api/login", post(signin::login))
        .route("/api/logout", post(signin::logout))
        .route("/api/me", get(signin::me))
        .route("/api/me/state", post(web::my_state))
        .route("/api/ws", get(web::live))
        .route("/api/console/calls/{call}/pick", post(web::pick))
        .route("/api/console/calls/{call}/hangup", post(web::hang_up))
        .route("/api/console/calls/{call}/transfer", post(web::transfer))
        .route("/api/console/calls/{call}/handback", post(web::hand_back))
        .route("/api/console/callbacks/{call}/{step}", post(web::call_back))
        .route("/api/supervision/crisis/{departement}", post(web::crisis))
        .route("/api/territory/outlines", get(web::outlines))
        .route("/api/health", get(api::health))
        .route("/metrics", get(api::metrics))
        .route("/api/openapi.json", get(openapi))
        .route("/api/call-takers", get(api::call_takers))
        .route("/api/call-takers/{login}/state", post(api::set_state))
        .route("/api/calls", get(api::calls))
        .route("/api/calls/{call}", get(api::call_detail))
        .route("/api/aml", post(api::aml))
        .route("/api/callbacks", get(api::callbacks))
        .route("/api/callbacks/{call}/taken", post(api::callback_taken))
        .route("/api/callbacks/{call}/done", post(api::callback_done))
        .layer(axum::middleware::from_fn(same_origin))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log_refusals,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .with_state(state)
}

/// Refuses a state-changing request, or the WebSocket's opening, sent by a page of another
/// site: a browser names the page's origin, and a call-taker's session cookie must not act
/// for a page that is not the console. Machines (SBC, SMS gateway) send no Origin.
async fn same_origin(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::{Method, header};
    let changes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || request.headers().contains_key(header::UPGRADE);
    if changes {
        let headers = request.headers();
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let origin_host = origin.map(|o| {
            o.strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"))
                .unwrap_or("")
        });
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "cross-site");
        if cross_site || origin_host.is_some_and(|o| Some(o) != host) {
            warn!(origin = ?origin, host = ?host, path = %request.uri().path(), "request from another site refused");
            return problem(StatusCode::FORBIDDEN, "origine refusée");
        }
    }
    next.run(request).await
}

/// Headers every answer carries: the pages load nothing but their own files and are never
/// framed by another site, no answer is sniffed into another type, and under HTTPS the browser
/// never comes back over plain HTTP.
async fn security_headers(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::HeaderValue;
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if state.https {
        headers.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
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
    // A request held back (429) is counted where it is held back: a guessing loop must not
    // write a line per attempt.
    if (status.is_client_error() || status.is_server_error())
        && status != axum::http::StatusCode::TOO_MANY_REQUESTS
    {
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

/// The OpenAPI document of this API, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Secourir", description = "Emergency-call platform of the French fire and rescue services: call-takers, calls, call-backs, console and supervision."),
    paths(
        api::health, api::metrics, api::call_takers, api::set_state, api::calls, api::call_detail,
        api::aml, api::callbacks, api::callback_taken, api::callback_done, signin::login,
        signin::logout, signin::me, web::my_state, web::pick, web::hang_up, web::transfer,
        web::hand_back, web::call_back, web::crisis, web::outlines, web::live
    ),
    components(schemas(PlatformStatus, ClusterStatus, CallTakerView, WantedState, StateBody, api::CallbackBody, web::TransferBody, web::HandBackBody)),
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

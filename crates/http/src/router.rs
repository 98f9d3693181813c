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
    services: crate::Services,
) -> Router {
    // Made now, so that the first unknown login costs no more than a wrong password.
    signin::decoy_hash();
    let state = AppState {
        driver,
        token: token.into(),
        data_dir: Arc::new(data_dir),
        web,
        https,
        audit: services.audit,
        lost: services.lost,
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
        .route("/api/console/calls/{call}/text", post(web::write))
        .route("/api/console/calls/{call}/case", post(web::case))
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
        .route("/api/calls/{call}/log", get(api::call_log))
        .route("/lost", post(crate::lost::find))
        .route("/api/aml", post(api::aml))
        .route("/api/callbacks", get(api::callbacks))
        .route("/api/callbacks/{call}/taken", post(api::callback_taken))
        .route("/api/callbacks/{call}/done", post(api::callback_done))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(plain_errors_as_problems))
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

async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "aucune ressource à cette adresse")
}

/// Turns the framework's own refusals (a path that does not parse, a body that is not the JSON
/// expected, a WebSocket opening without its headers, a method not allowed) into problem
/// details: their plain texts name Rust types and are not for the API's users.
async fn plain_errors_as_problems(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let detail = match status {
        StatusCode::BAD_REQUEST => "requête mal formée",
        StatusCode::NOT_FOUND => "aucune ressource à cette adresse",
        StatusCode::METHOD_NOT_ALLOWED => "méthode non permise sur cette adresse",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "type de contenu non pris en charge",
        StatusCode::PAYLOAD_TOO_LARGE => "contenu trop grand",
        StatusCode::UNPROCESSABLE_ENTITY => "contenu illisible",
        s if s.is_server_error() => "erreur de la plateforme",
        _ => "requête refusée",
    };
    let mut problem = problem(status, detail);
    // What the framework said about the method stays said: the methods allowed.
    if let Some(allow) = response.headers().get(axum::http::header::ALLOW) {
        problem
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    problem
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
        api::health, api::metrics, api::call_takers, api::set_state, api::calls, api::call_detail, api::call_log, crate::lost::find,
        api::aml, api::callbacks, api::callback_taken, api::callback_done, signin::login,
        signin::logout, signin::me, web::my_state, web::pick, web::hang_up, web::transfer,
        web::hand_back, web::write, web::case, web::call_back, web::crisis, web::outlines, web::live
    ),
    components(schemas(PlatformStatus, ClusterStatus, CallTakerView, WantedState, StateBody, api::CallbackBody, web::TransferBody, web::HandBackBody, web::WriteBody, web::CaseBody, crate::CaseSent)),
    modifiers(&Security, &Refusals)
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

/// The refusals every route may give, documented once for all of them as the access layer and
/// the extractors give them: who may not ask, and what does not parse.
struct Refusals;

impl utoipa::Modify for Refusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::ResponseBuilder;
        use utoipa::openapi::path::ParameterIn;
        let refusal = |text: &str| {
            ResponseBuilder::new()
                .description(text)
                .content(
                    "application/problem+json",
                    utoipa::openapi::ContentBuilder::new().build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let responses = &mut operation.responses.responses;
                let mut add = |code: &str, text: &str| {
                    responses
                        .entry(code.to_owned())
                        .or_insert_with(|| refusal(text).into());
                };
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add("401", "Not signed in, or a wrong or missing token");
                    add("403", "Not for this role, or not for this CTA");
                }
                let parsed =
                    operation.request_body.is_some()
                        || operation.parameters.iter().flatten().any(|p| {
                            matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query)
                        })
                        || path == "/api/ws";
                if parsed {
                    add("400", "A path, query or body that does not parse");
                }
                if operation.request_body.is_some() {
                    add("422", "A JSON body of another shape than documented");
                }
                if path != "/api/openapi.json" {
                    add("503", "The platform is stopping");
                }
            }
        }
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

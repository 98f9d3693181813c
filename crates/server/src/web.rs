//! The pages of the call-takers and the room supervisors: login with argon2-hashed passwords and a
//! session cookie, the live picture over WebSocket, and the console's actions (pick, hang up,
//! pause, crisis mode), each checked against the role and the CTA of the person asking.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use secourir_config::{Plan, Role};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::api::{ApiCall, AppState, StateBody, ask, problem, stopping};
use crate::live::Snapshot;

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
    partners: Vec<String>,
    expires: Instant,
}

/// The pages' shared state.
#[derive(Clone)]
pub(crate) struct Web {
    plan: Arc<Plan>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    outlines: Arc<std::sync::OnceLock<String>>,
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

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/", get(index))
        .route("/app.js", get(script))
        .route("/style.css", get(style))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/me/state", post(my_state))
        .route("/api/ws", get(live))
        .route("/api/console/calls/{call}/pick", post(pick))
        .route("/api/console/calls/{call}/hangup", post(hang_up))
        .route("/api/console/calls/{call}/transfer", post(transfer))
        .route("/api/console/calls/{call}/handback", post(hand_back))
        .route("/api/console/callbacks/{call}/{step}", post(call_back))
        .route("/api/supervision/crisis/{departement}", post(crisis))
        .route("/api/territory/outlines", get(outlines))
}

async fn index() -> Html<&'static str> {
    Html(include_str!("../web/index.html"))
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../web/app.js"),
    )
        .into_response()
}

async fn style() -> Response {
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

fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Session, StatusCode> {
    state.web.session(headers).ok_or(StatusCode::UNAUTHORIZED)
}

#[utoipa::path(get, path = "/api/me", tag = "console", security(("session" = [])), responses((status = 200, description = "Who is logged in"), (status = 401, description = "Not logged in")))]
pub(crate) async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Ok(session) => Json(me_of(&state.web.plan, &session)).into_response(),
        Err(code) => problem(code, "non connecté"),
    }
}

#[utoipa::path(post, path = "/api/me/state", tag = "console", security(("session" = [])), request_body = StateBody, responses((status = 200, description = "New status"), (status = 401, description = "Not logged in")))]
pub(crate) async fn my_state(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<StateBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(code) => return problem(code, "non connecté"),
    };
    let Ok(Json(body)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "état attendu : available, paused, offline",
        );
    };
    match ask(&state, |reply| ApiCall::SetState {
        login: session.login.clone(),
        state: body.state,
        reply,
    })
    .await
    {
        Some(Ok(status)) => Json(serde_json::json!({ "status": status })).into_response(),
        Some(Err(e)) => e.response(),
        None => stopping(),
    }
}

#[utoipa::path(post, path = "/api/console/calls/{call}/pick", tag = "console", security(("session" = [])), params(("call" = u64, Path, description = "Call number")), responses((status = 200, description = "Picked: the phone rings"), (status = 403, description = "Another CTA's call"), (status = 404, description = "Unknown call"), (status = 409, description = "Already taken, or the call-taker is busy")))]
pub(crate) async fn pick(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(code) => return problem(code, "non connecté"),
    };
    let result = ask(&state, |reply| ApiCall::Pick {
        login: session.login.clone(),
        call,
        reply,
    })
    .await;
    match result {
        Some(Ok(())) => {
            info!(login = %session.login, call, "call picked");
            Json(serde_json::json!({ "call": call, "picked": true })).into_response()
        }
        Some(Err(e)) => e.response(),
        None => stopping(),
    }
}

#[utoipa::path(post, path = "/api/console/calls/{call}/hangup", tag = "console", security(("session" = [])), params(("call" = u64, Path, description = "Call number")), responses((status = 204, description = "Ended"), (status = 403, description = "Not this call-taker's call")))]
pub(crate) async fn hang_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(code) => return problem(code, "non connecté"),
    };
    match ask(&state, |reply| ApiCall::HangUp {
        login: session.login.clone(),
        call,
        reply,
    })
    .await
    {
        Some(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Some(Err(e)) => e.response(),
        None => stopping(),
    }
}

/// Where a call-taker hands their call, and what the partner should know.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct TransferBody {
    /// 15 (SAMU), 17 (police) or a urn:service:sos.* URN.
    to: String,
    /// Summary of the call for the partner.
    #[serde(default)]
    summary: String,
}

#[utoipa::path(post, path = "/api/console/calls/{call}/transfer", tag = "console", security(("session" = [])), params(("call" = u64, Path, description = "Call number")), request_body = TransferBody, responses((status = 200, description = "The partner answered: the caller is with them"), (status = 403, description = "Not this call-taker's call"), (status = 409, description = "No partner configured for this service, or a transfer is under way"), (status = 502, description = "The partner did not answer")))]
pub(crate) async fn transfer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
    body: Result<Json<TransferBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(code) => return problem(code, "non connecté"),
    };
    let Ok(Json(body)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "{\"to\": \"15\", \"summary\": \"…\"} attendu",
        );
    };
    match ask(&state, |reply| ApiCall::Transfer {
        login: session.login.clone(),
        call,
        to: body.to.clone(),
        summary: body.summary.clone(),
        reply,
    })
    .await
    {
        Some(Ok(partner)) => {
            info!(login = %session.login, call, %partner, "call handed over");
            Json(serde_json::json!({ "call": call, "partner": partner })).into_response()
        }
        Some(Err(e)) => {
            info!(login = %session.login, call, error = ?e, "transfer failed");
            e.response()
        }
        None => stopping(),
    }
}

/// What a call-taker holding another CTA's call says when handing it back.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct HandBackBody {
    /// What the home CTA's call-taker should know, shown to them with the call.
    #[serde(default)]
    summary: String,
}

#[utoipa::path(post, path = "/api/console/calls/{call}/handback", tag = "console", security(("session" = [])), params(("call" = u64, Path, description = "Call number")), request_body = HandBackBody, responses((status = 200, description = "The caller waits at the head of the home CTA's queue"), (status = 403, description = "Not this call-taker's call"), (status = 409, description = "The call is of the call-taker's own CTA, or nobody of the home CTA is logged in")))]
pub(crate) async fn hand_back(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
    body: Result<Json<HandBackBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(code) => return problem(code, "non connecté"),
    };
    let Ok(Json(body)) = body else {
        return problem(StatusCode::BAD_REQUEST, "{\"summary\": \"…\"} attendu");
    };
    match ask(&state, |reply| ApiCall::HandBack {
        login: session.login.clone(),
        call,
        summary: body.summary.chars().take(2_000).collect(),
        reply,
    })
    .await
    {
        Some(Ok(home)) => {
            info!(login = %session.login, call, %home, "call handed back to its home CTA");
            Json(serde_json::json!({ "call": call, "home": home })).into_response()
        }
        Some(Err(e)) => e.response(),
        None => stopping(),
    }
}

#[utoipa::path(post, path = "/api/console/callbacks/{call}/{step}", tag = "console", security(("session" = [])), params(("call" = u64, Path, description = "Call number"), ("step" = String, Path, description = "taken or done")), responses((status = 204, description = "Updated"), (status = 404, description = "Unknown step, or no call-back for this call in this CTA"), (status = 409, description = "The call-taker is logged out")))]
pub(crate) async fn call_back(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((call, step)): Path<(u64, String)>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(code) => return problem(code, "non connecté"),
    };
    let done = match step.as_str() {
        "taken" => false,
        "done" => true,
        _ => return problem(StatusCode::NOT_FOUND, "étape inconnue : taken ou done"),
    };
    match ask(&state, |reply| ApiCall::Callback {
        call,
        login: session.login.clone(),
        done,
        reply,
    })
    .await
    {
        Some(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Some(Err(e)) => e.response(),
        None => stopping(),
    }
}

/// Crisis mode on or off.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct CrisisBody {
    on: bool,
}

#[utoipa::path(post, path = "/api/supervision/crisis/{departement}", tag = "supervision", security(("session" = [])), params(("departement" = String, Path, description = "Département code")), request_body = CrisisBody, responses((status = 204, description = "Changed and logged"), (status = 403, description = "Only for chef_de_salle and admin"), (status = 404, description = "Unknown département")))]
pub(crate) async fn crisis(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(departement): Path<String>,
    body: Result<Json<CrisisBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(code) => return problem(code, "non connecté"),
    };
    if !session.role.supervises() {
        warn!(login = %session.login, %departement, "crisis mode asked without the role");
        return problem(StatusCode::FORBIDDEN, "réservé au chef de salle");
    }
    let Ok(Json(body)) = body else {
        return problem(StatusCode::BAD_REQUEST, "{\"on\": true | false} attendu");
    };
    match ask(&state, |reply| ApiCall::Crisis {
        login: session.login.clone(),
        departement: departement.clone(),
        on: body.on,
        reply,
    })
    .await
    {
        Some(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Some(Err(e)) => e.response(),
        None => stopping(),
    }
}

/// Simplified outlines of every département, `{code: [[ [lon, lat], … ], …]}`, for drawing the
/// map and the caller's position without any tile server.
#[utoipa::path(get, path = "/api/territory/outlines", tag = "territory", responses((status = 200, description = "Simplified outline of every département, {code: {name, rings}}")))]
pub(crate) async fn outlines(State(state): State<AppState>) -> Response {
    let web = state.web.clone();
    let body = tokio::task::spawn_blocking(move || {
        web.outlines
            .get_or_init(|| {
                use geo::Simplify;
                let territory = secourir_territory::Territory::france();
                let mut out = serde_json::Map::new();
                for d in territory.departements() {
                    let rings: Vec<Vec<[f64; 2]>> = d
                        .outline()
                        .simplify(0.005)
                        .0
                        .iter()
                        .map(|p| {
                            p.exterior()
                                .coords()
                                .map(|c| [(c.x * 1e4).round() / 1e4, (c.y * 1e4).round() / 1e4])
                                .collect()
                        })
                        .collect();
                    out.insert(
                        d.code.clone(),
                        serde_json::json!({ "name": d.name, "rings": rings }),
                    );
                }
                serde_json::Value::Object(out).to_string()
            })
            .clone()
    })
    .await
    .unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        body,
    )
        .into_response()
}

/// What one person sees of a snapshot: a call-taker their CTA's queue and partners' calls open
/// to mutual aid; a supervisor everything.
fn view_for(session: &Session, snapshot: &Snapshot) -> serde_json::Value {
    let calls: Vec<_> = snapshot
        .calls
        .iter()
        .filter(|c| {
            session.role.supervises()
                || c.cta == session.cta
                || c.call_taker.as_deref() == Some(session.login.as_str())
                || (c.mutual_aid && session.partners.contains(&c.cta))
        })
        .collect();
    let agents: Vec<_> = snapshot
        .agents
        .iter()
        .filter(|a| session.role.supervises() || a.cta == session.cta)
        .collect();
    serde_json::json!({
        "at": snapshot.at,
        "calls": calls,
        "agents": agents,
        "ctas": snapshot.ctas,
        "zones": snapshot.zones,
        "journal": if session.role.supervises() { serde_json::to_value(&snapshot.journal).unwrap_or_default() } else { serde_json::Value::Array(vec![]) },
    })
}

#[utoipa::path(get, path = "/api/ws", tag = "console", security(("session" = [])), responses((status = 101, description = "WebSocket: JSON pictures of queues, calls, call-takers and CTA figures, filtered by role and CTA")))]
pub(crate) async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(code) => return problem(code, "non connecté"),
    };
    let snapshots = state.web.snapshots.clone();
    upgrade.on_upgrade(move |socket| push(socket, session, snapshots))
}

async fn push(
    mut socket: WebSocket,
    session: Session,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
) {
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        let text = view_for(&session, &snapshot).to_string();
        if socket.send(Message::Text(text.into())).await.is_err() {
            return;
        }
        tokio::select! {
            changed = snapshots.changed() => if changed.is_err() { return },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => {}
            },
        }
    }
}

//! The console's and the supervision room's actions (state, pick, hang up, transfer, hand back,
//! call-backs, crisis mode), each checked against the role and the CTA of the person asking, and
//! the live picture over WebSocket.

use std::sync::Arc;

use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secourir_core::{Ask, CallId, Granted};
use serde::Deserialize;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::live::Snapshot;
use crate::protocol::{
    ApiCall, ApiError, AppState, StateBody, ask, ask_core, problem, service_name, status_name,
    stopping,
};
use crate::sessions::Session;
use crate::signin::signed_in;

/// Longest summary a call-taker may send with a transfer or a hand-back; beyond, it is cut.
const SUMMARY_MAX_CHARS: usize = 2_000;

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
    match ask_core(&state, &session.login, Ask::State(body.state.into())).await {
        Some(Ok(Granted::Status(status))) => {
            Json(serde_json::json!({ "status": status_name(status) })).into_response()
        }
        Some(Ok(_)) => unexpected(),
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
    match ask_core(&state, &session.login, Ask::Pick(CallId(call))).await {
        Some(Ok(_)) => {
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
    match ask_core(&state, &session.login, Ask::HangUp(CallId(call))).await {
        Some(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
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
    /// With a hub: the nature of fact of the case sent with the voice (a configured code).
    #[serde(default)]
    qualification: Option<String>,
}

#[utoipa::path(post, path = "/api/console/calls/{call}/transfer", tag = "console", security(("session" = [])), params(("call" = u64, Path, description = "Call number")), request_body = TransferBody, responses((status = 200, description = "The partner answered: the caller is with them"), (status = 404, description = "Not a service a call is handed to (15, 17, urn:service:sos.*)"), (status = 403, description = "Not this call-taker's call"), (status = 409, description = "No partner configured for this service, or a transfer is under way"), (status = 502, description = "The partner did not answer")))]
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
    let Some(to) = secourir_config::Service::parse(&body.to) else {
        return ApiError::NotFound("service inconnu : 15, 17 ou urn:service:sos.*").response();
    };
    let summary: String = body.summary.chars().take(SUMMARY_MAX_CHARS).collect();
    // The case goes to the partner's system as its phone rings; the voice never waits on the
    // hub, and a case the hub cannot take is shown on the call, not a reason to keep the caller.
    if state.web.plan.hub.is_some() && state.web.plan.partner_hub_id(to).is_some() {
        match send_case(
            &state,
            &session.login,
            call,
            to,
            body.qualification,
            &summary,
        )
        .await
        {
            Some(Err(e @ (ApiError::Forbidden(_) | ApiError::NotFound(_)))) => {
                return e.response();
            }
            Some(Err(e)) => {
                warn!(login = %session.login, call, error = ?e, "case not handed to the hub")
            }
            Some(Ok(_)) | None => {}
        }
    }
    let ask = Ask::Transfer {
        call: CallId(call),
        to,
        summary: summary.into(),
    };
    match ask_core(&state, &session.login, ask).await {
        Some(Ok(_)) => {
            let partner = state
                .web
                .plan
                .partner_service(to)
                .map_or_else(|| service_name(to).to_owned(), |p| p.name.clone());
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

/// Asks the driver to hand a call's case to a partner through the hub.
async fn send_case(
    state: &AppState,
    login: &str,
    call: u64,
    to: secourir_config::Service,
    qualification: Option<String>,
    note: &str,
) -> Option<Result<crate::CaseSent, ApiError>> {
    let login = login.to_owned();
    let note = note.to_owned();
    crate::protocol::ask(state, |reply| ApiCall::Case {
        login,
        call,
        to,
        qualification,
        note,
        reply,
    })
    .await
}

/// The case a call-taker hands to a partner without handing over the voice.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct CaseBody {
    /// 15 (SAMU) or 17 (police): a partner with a client id on the hub.
    #[schema(pattern = "^(15|17)$")]
    to: String,
    /// A nature of fact of the configured table (`Cnn.nn.nn`); the call's last, or the table's
    /// first, when absent.
    #[serde(default)]
    #[schema(pattern = r"^C\d{2}\.\d{2}\.\d{2}$")]
    qualification: Option<String>,
    /// The call-taker's note for the partner, at most 4,000 characters.
    #[serde(default)]
    #[schema(max_length = 4000)]
    note: String,
}

/// Longest note a case carries (the CISU crate's bound).
const CASE_NOTE_MAX_CHARS: usize = 4_000;

#[utoipa::path(post, path = "/api/console/calls/{call}/case", tag = "console", security(("session" = [])), params(("call" = u64, Path, description = "Call number")), request_body = CaseBody, responses((status = 202, description = "On disk and followed until the partner acknowledges; its state is shown on the call", body = crate::CaseSent), (status = 400, description = "Not a JSON body, or a note too long"), (status = 403, description = "Not this call-taker's call"), (status = 404, description = "Not a partner service (15, 17), or a nature of fact not in the configured table"), (status = 409, description = "No hub, or no hub client id for this partner, or the hub's outbox cannot take it")))]
pub(crate) async fn case(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
    body: Result<Json<CaseBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(code) => return problem(code, "non connecté"),
    };
    let Ok(Json(body)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "{\"to\": \"15\", \"qualification\": \"C11.00.00\", \"note\": \"…\"} attendu",
        );
    };
    let Some(to) = secourir_config::Service::parse(&body.to).filter(|s| {
        matches!(
            s,
            secourir_config::Service::Ambulance | secourir_config::Service::Police
        )
    }) else {
        return ApiError::NotFound("partenaire inconnu : 15 ou 17").response();
    };
    if body.note.chars().count() > CASE_NOTE_MAX_CHARS {
        return problem(
            StatusCode::BAD_REQUEST,
            "note trop longue (4 000 caractères au plus)",
        );
    }
    if let Some(code) = &body.qualification
        && !state
            .web
            .plan
            .hub
            .as_ref()
            .is_some_and(|h| h.qualifications.iter().any(|q| &q.code == code))
    {
        return ApiError::NotFound("nature de fait inconnue").response();
    }
    match send_case(
        &state,
        &session.login,
        call,
        to,
        body.qualification,
        &body.note,
    )
    .await
    {
        Some(Ok(sent)) => {
            info!(login = %session.login, call, id = %sent.distribution_id, "case handed to the hub");
            (StatusCode::ACCEPTED, Json(sent)).into_response()
        }
        Some(Err(e)) => e.response(),
        None => stopping(),
    }
}

/// What a call-taker writes to a caller who writes.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct WriteBody {
    /// The text, at most 1,000 characters, not blank.
    #[schema(min_length = 1, max_length = 1000, pattern = r"\S")]
    text: String,
}

/// Longest reply a call-taker sends in one message: a caller reads it on a phone.
const REPLY_MAX_CHARS: usize = 1_000;

#[utoipa::path(post, path = "/api/console/calls/{call}/text", tag = "console", security(("session" = [])), params(("call" = u64, Path, description = "Call number")), request_body = WriteBody, responses((status = 202, description = "Sent to the caller and on record; a refusal by the caller's side is shown on the call"), (status = 400, description = "Empty or too long"), (status = 403, description = "Not this call-taker's conversation"), (status = 409, description = "Not a text conversation in progress")))]
pub(crate) async fn write(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
    body: Result<Json<WriteBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(code) => return problem(code, "non connecté"),
    };
    let Ok(Json(body)) = body else {
        return problem(StatusCode::BAD_REQUEST, "{\"text\": \"…\"} attendu");
    };
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > REPLY_MAX_CHARS {
        return problem(
            StatusCode::BAD_REQUEST,
            "message vide ou trop long (1 000 caractères au plus)",
        );
    }
    let login = session.login.clone();
    let text = text.to_owned();
    let written = crate::protocol::ask(&state, |reply| ApiCall::Write {
        login,
        call,
        text,
        reply,
    })
    .await;
    match written {
        Some(Ok(())) => StatusCode::ACCEPTED.into_response(),
        Some(Err(e)) => e.response(),
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
    let ask = Ask::HandBack {
        call: CallId(call),
        summary: body.summary.chars().take(SUMMARY_MAX_CHARS).collect(),
    };
    match ask_core(&state, &session.login, ask).await {
        Some(Ok(Granted::HandedBack(home))) => {
            let home = state.web.plan.cta(home).id.clone();
            info!(login = %session.login, call, %home, "call handed back to its home CTA");
            Json(serde_json::json!({ "call": call, "home": home })).into_response()
        }
        Some(Ok(_)) => unexpected(),
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
    let ask = if done {
        Ask::CallbackDone(CallId(call))
    } else {
        Ask::CallbackTaken(CallId(call))
    };
    match ask_core(&state, &session.login, ask).await {
        Some(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
        Some(Err(e)) => e.response(),
        None => stopping(),
    }
}

/// The core answered with a grant of another kind: a defect, said as such.
fn unexpected() -> Response {
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "réponse inattendue du cœur de routage",
    )
}

/// Crisis mode on or off.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct CrisisBody {
    on: bool,
}

#[utoipa::path(post, path = "/api/supervision/crisis/{departement}", tag = "supervision", security(("session" = [])), params(("departement" = String, Path, description = "Département code")), request_body = CrisisBody, responses((status = 204, description = "Changed and logged"), (status = 403, description = "Only for chef_de_salle (the zones their CTA serves) and admin (every zone)"), (status = 404, description = "Unknown département")))]
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
    // A room supervisor acts on the zones their own CTA serves; an administrator on all.
    let cta = match session.role {
        secourir_config::Role::Admin => None,
        _ => Some(session.cta.clone()),
    };
    match ask(&state, |reply| ApiCall::Crisis {
        login: session.login.clone(),
        cta,
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
    let cases: Vec<_> = snapshot
        .cases
        .iter()
        .filter(|c| session.role.supervises() || c.cta == session.cta)
        .collect();
    serde_json::json!({
        "at": snapshot.at,
        "calls": calls,
        "agents": agents,
        "ctas": snapshot.ctas,
        "zones": snapshot.zones,
        "journal": if session.role.supervises() { serde_json::to_value(&snapshot.journal).unwrap_or_default() } else { serde_json::Value::Array(vec![]) },
        "cases": cases,
        "hub": snapshot.hub,
        "received": snapshot.received,
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
    let web = state.web.clone();
    upgrade.on_upgrade(move |socket| push(socket, session, snapshots, web, headers))
}

/// How often an open live page renews its session (and finds it closed by a logout).
const LIVE_PAGE_RENEWS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

async fn push(
    mut socket: WebSocket,
    session: Session,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    web: crate::sessions::Web,
    headers: HeaderMap,
) {
    let mut renew = tokio::time::interval(LIVE_PAGE_RENEWS_EVERY);
    let mut closings = web.closings();
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        let text = view_for(&session, &snapshot).to_string();
        if socket.send(Message::Text(text.into())).await.is_err() {
            return;
        }
        tokio::select! {
            changed = snapshots.changed() => if changed.is_err() { return },
            // An open page is a console in use: it keeps its session alive, and stops when
            // the session is closed (logged out elsewhere, or expired).
            _ = renew.tick() => if web.session(&headers).is_none() {
                let _ = socket.send(Message::Close(None)).await;
                return;
            },
            // A logout somewhere: this page stops at once if it was this login's.
            Ok(()) = closings.changed() => if web.session(&headers).is_none() {
                let _ = socket.send(Message::Close(None)).await;
                return;
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => {}
            },
        }
    }
}

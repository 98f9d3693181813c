//! The machine API: call-takers' availability, the call list, the call-back list, AML reports
//! and the platform's health. Every route but `/api/health` wants `Authorization: Bearer <token>`
//! or a console session, as `access` says: the routes that act are the token's alone, and a
//! call-taker's session reads its own CTA only.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::info;

use secourir_core::{Ask, CallId, Granted};

use crate::access;
use crate::protocol::{
    ApiCall, AppState, CallTakerView, PlatformStatus, StateBody, ask, ask_core, problem,
    status_name, stopping,
};

/// An Advanced Mobile Location report (ETSI TS 103 625) from the operators' gateway: the HTTPS
/// form, or the SMS text as `text/plain`. It updates the location of the caller's live call.
#[utoipa::path(post, path = "/api/aml", tag = "calls", security(("token" = [])), request_body(content = String, description = "AML HTTPS form (application/x-www-form-urlencoded) or AML SMS text (text/plain)"), responses((status = 200, description = "Applied to the caller's live call"), (status = 202, description = "Valid, but no live call from this number"), (status = 400, description = "Not an AML report, or no position")))]
pub(crate) async fn aml(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = access::machine(&state, &headers) {
        return r.into_response();
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
        Some(Ok(Granted::Located(call))) => {
            Json(serde_json::json!({ "call": call.0 })).into_response()
        }
        Some(Ok(_) | Err(_)) => {
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
#[utoipa::path(get, path = "/metrics", tag = "supervision", security(("token" = []), ("session" = [])), responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"), (status = 401, description = "Wrong or missing token")))]
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // The figures say how loaded each CTA is, and when: for supervision, not for anyone.
    if let Err(r) = access::supervision(&state, &headers) {
        return r.into_response();
    }
    match crate::prometheus::handle() {
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
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    match ask(&state, |reply| ApiCall::Status { reply }).await {
        Some(status) => Json(status).into_response(),
        None => stopping(),
    }
}

#[utoipa::path(get, path = "/api/call-takers", tag = "call-takers", security(("token" = []), ("session" = [])), responses((status = 200, body = Vec<CallTakerView>), (status = 401, description = "Wrong or missing token")))]
pub(crate) async fn call_takers(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let asker = match access::asker(&state, &headers) {
        Ok(asker) => asker,
        Err(r) => return r.into_response(),
    };
    match ask(&state, |reply| ApiCall::CallTakers { reply }).await {
        Some(mut list) => {
            if let Some(cta) = asker.scope() {
                list.retain(|t| t.cta == cta);
            }
            Json(list).into_response()
        }
        None => stopping(),
    }
}

#[utoipa::path(post, path = "/api/call-takers/{login}/state", tag = "call-takers", security(("token" = [])), params(("login" = String, Path, description = "Call-taker login")), request_body = StateBody, responses((status = 200, description = "New status"), (status = 400, description = "Bad body"), (status = 401, description = "Wrong or missing token"), (status = 404, description = "Unknown call-taker")))]
pub(crate) async fn set_state(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(login): Path<String>,
    body: Result<Json<StateBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = access::machine(&state, &headers) {
        return r.into_response();
    }
    let Ok(Json(body)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "body must be {\"state\": \"available\" | \"paused\" | \"offline\"}",
        );
    };
    let wanted = body.state;
    match ask_core(&state, &login, Ask::State(wanted.into())).await {
        Some(Ok(Granted::Status(status))) => {
            let status = status_name(status);
            info!(%login, ?wanted, %status, "call-taker state set");
            Json(serde_json::json!({ "login": login, "status": status })).into_response()
        }
        Some(Ok(other)) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("unexpected answer of the core: {other:?}"),
        ),
        Some(Err(e)) => e.response(),
        None => stopping(),
    }
}

#[derive(Deserialize)]
pub(crate) struct CallsQuery {
    since: Option<String>,
    limit: Option<usize>,
    cta: Option<String>,
}

/// Whether `since` is what the OpenAPI document says it is, `^([0-9]{1,6}[smhd]){1,4}$`:
/// the API takes exactly what it documents, no more.
fn documented_span(text: &str) -> bool {
    let mut groups = 0;
    let mut digits = 0;
    for c in text.chars() {
        match c {
            '0'..='9' if digits < 6 => digits += 1,
            's' | 'm' | 'h' | 'd' if digits > 0 && groups < 4 => {
                groups += 1;
                digits = 0;
            }
            _ => return false,
        }
    }
    groups > 0 && digits == 0
}

#[utoipa::path(get, path = "/api/calls", tag = "calls", security(("token" = []), ("session" = [])), params(("since" = Option<String>, Query, description = "90s, 15m, 1h, 2d, 1h30m; default 1h", pattern = "^([0-9]{1,6}[smhd]){1,4}$"), ("limit" = Option<usize>, Query, description = "At most; default 1000"), ("cta" = Option<String>, Query, description = "Only the calls of this CTA (the limit then counts its calls only)")), responses((status = 200, description = "Call detail records, newest first"), (status = 400, description = "Bad duration"), (status = 401, description = "Wrong or missing token")))]
pub(crate) async fn calls(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallsQuery>,
) -> Response {
    let asker = match access::asker(&state, &headers) {
        Ok(asker) => asker,
        Err(r) => return r.into_response(),
    };
    let since = q.since.as_deref().unwrap_or("1h");
    if !documented_span(since) {
        return problem(
            StatusCode::BAD_REQUEST,
            "since: up to four spans of up to six digits and a unit, such as 90s, 15m, 1h, 2d or 1h30m",
        );
    }
    let since = match secourir_store::parse_since(since) {
        Ok(d) => d,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e),
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let from = now_ms - since.as_millis() as i64;
    let limit = q.limit.unwrap_or(1000).min(10_000);
    let dir = state.data_dir.clone();
    let cta = q.cta;
    let result = tokio::task::spawn_blocking(move || {
        let store = secourir_store::Store::open_read_only(&dir)?;
        match cta {
            Some(cta) => store.cta_calls_since(&cta, from, limit),
            None => store.calls_since(from, limit),
        }
    })
    .await;
    let plan = &state.web.plan;
    match result {
        Ok(Ok(mut calls)) => {
            calls.retain(|c| {
                asker.reads_call(
                    plan,
                    c.cta.as_deref(),
                    c.call_taker.as_deref(),
                    &c.departement,
                )
            });
            Json(calls).into_response()
        }
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "store read failed"),
    }
}

/// A call's record and what `more` reads beside it from the store (off the runtime's threads),
/// answered by `answer` if the asker may read that call; another CTA's call is answered as no
/// call at all: its existence is not theirs.
async fn read_call<T: Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    call: u64,
    more: impl FnOnce(&secourir_store::Store, &std::path::Path) -> Result<T, secourir_store::StoreError>
    + Send
    + 'static,
    answer: impl FnOnce(secourir_store::CallRecord, T) -> Response,
) -> Response {
    let asker = match access::asker(state, headers) {
        Ok(asker) => asker,
        Err(r) => return r.into_response(),
    };
    let dir = state.data_dir.clone();
    let result = tokio::task::spawn_blocking(move || {
        let store = secourir_store::Store::open_read_only(&dir)?;
        match store.call(call)? {
            Some(record) => Ok(Some((record, more(&store, dir.as_path())?))),
            None => Ok::<_, secourir_store::StoreError>(None),
        }
    })
    .await;
    match result {
        Ok(Ok(Some((record, more))))
            if asker.reads_call(
                &state.web.plan,
                record.cta.as_deref(),
                record.call_taker.as_deref(),
                &record.departement,
            ) =>
        {
            answer(record, more)
        }
        Ok(Ok(_)) => problem(StatusCode::NOT_FOUND, "no such call"),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "store read failed"),
    }
}

#[utoipa::path(get, path = "/api/calls/{call}", tag = "calls", security(("token" = []), ("session" = [])), params(("call" = u64, Path, description = "Call number")), responses((status = 200, description = "The record and its trail"), (status = 404, description = "No such call")))]
pub(crate) async fn call_detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
) -> Response {
    let more = move |store: &secourir_store::Store, _: &std::path::Path| {
        Ok((
            store.trail(call)?,
            store.transcript(call)?,
            store.case_messages(call)?,
        ))
    };
    read_call(
        &state,
        &headers,
        call,
        more,
        |record, (trail, transcript, cases)| {
            let mut body = serde_json::json!({ "call": record, "trail": trail });
            if record.medium == "text" {
                body["transcript"] = serde_json::json!(transcript);
            }
            if !cases.is_empty() {
                body["cases"] = serde_json::json!(cases);
            }
            Json(body).into_response()
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/calls/{call}/log", tag = "calls", security(("token" = []), ("session" = [])), params(("call" = u64, Path, description = "Call number")), responses((status = 200, description = "The call's events in the signed audit trail, oldest first: each as its JSON and as the signed line (JWS) it is in the log; `secourir audit verify` checks the whole log"), (status = 401, description = "No token or session"), (status = 404, description = "No such call, or another CTA's")))]
pub(crate) async fn call_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
) -> Response {
    // The whole log is read: it is one node's, and a call's events are spread through it.
    let more = |_: &secourir_store::Store, dir: &std::path::Path| {
        Ok(std::fs::read_to_string(dir.join("audit").join("events.log")).unwrap_or_default())
    };
    read_call(&state, &headers, call, more, |record, text| {
        let events: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|line| {
                let event = secourir_audit::unverified_payload(line)?;
                (event["callId"] == record.emergency_call_id.as_str())
                    .then(|| serde_json::json!({ "event": event, "jws": line }))
            })
            .collect();
        Json(events).into_response()
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct CallbacksQuery {
    cta: Option<String>,
}

#[utoipa::path(get, path = "/api/callbacks", tag = "calls", security(("token" = []), ("session" = [])), params(("cta" = Option<String>, Query, description = "CTA identifier, e.g. cta-13")), responses((status = 200, description = "Call-back entries not yet done, oldest first")))]
pub(crate) async fn callbacks(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbacksQuery>,
) -> Response {
    let asker = match access::asker(&state, &headers) {
        Ok(asker) => asker,
        Err(r) => return r.into_response(),
    };
    let cta = match (asker.scope(), q.cta) {
        (None, asked) => asked,
        (Some(own), None) => Some(own.to_owned()),
        (Some(own), Some(asked)) if asked == own => Some(asked),
        (Some(_), Some(_)) => {
            return problem(StatusCode::FORBIDDEN, "liste de rappel d'un autre CTA");
        }
    };
    let dir = state.data_dir.clone();
    let result = tokio::task::spawn_blocking(move || {
        secourir_store::Store::open_read_only(&dir).and_then(|s| s.callbacks(cta.as_deref()))
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
    if let Err(r) = access::machine(&state, &headers) {
        return r.into_response();
    }
    let Some(Json(body)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "body must be {\"by\": \"<login>\"}",
        );
    };
    let ask = if done {
        Ask::CallbackDone(CallId(call))
    } else {
        Ask::CallbackTaken(CallId(call))
    };
    match ask_core(&state, &body.by, ask).await {
        Some(Ok(_)) => {
            Json(serde_json::json!({ "call": call, "state": if done { "done" } else { "taken" } }))
                .into_response()
        }
        Some(Err(e)) => e.response(),
        None => stopping(),
    }
}

#[utoipa::path(post, path = "/api/callbacks/{call}/taken", tag = "calls", security(("token" = [])), params(("call" = u64, Path, description = "Call number")), request_body = CallbackBody, responses((status = 200, description = "Taken"), (status = 404, description = "Unknown call-taker, or no call-back for this call in their CTA"), (status = 409, description = "The call-taker is logged out")))]
pub(crate) async fn callback_taken(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
    body: Option<Json<CallbackBody>>,
) -> Response {
    callback_change(state, headers, call, body, false).await
}

#[utoipa::path(post, path = "/api/callbacks/{call}/done", tag = "calls", security(("token" = [])), params(("call" = u64, Path, description = "Call number")), request_body = CallbackBody, responses((status = 200, description = "Done"), (status = 404, description = "Unknown call-taker, or no call-back for this call in their CTA"), (status = 409, description = "The call-taker is logged out")))]
pub(crate) async fn callback_done(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call): Path<u64>,
    body: Option<Json<CallbackBody>>,
) -> Response {
    callback_change(state, headers, call, body, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_taken_exactly_as_documented() {
        for good in ["1h", "90s", "1h30m", "999999d", "1d2h3m4s"] {
            assert!(documented_span(good), "{good}");
        }
        for bad in [
            "",
            " 1h",
            "1h ",
            "h",
            "1",
            "1234567s",
            "1d2h3m4s5s",
            "1x",
            "1H",
        ] {
            assert!(!documented_span(bad), "{bad}");
        }
    }
}

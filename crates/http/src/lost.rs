//! `POST /lost`: the LoST server (RFC 5222) over the territory, as an upstream routing proxy
//! asks it which CTA serves a position or an address. The answers are the `secourir-lost`
//! crate's; here the body is bounded, the time given, and the query and its answer logged in
//! the signed audit trail.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::protocol::AppState;

#[utoipa::path(post, path = "/lost", tag = "lost", request_body(content = String, content_type = "application/lost+xml", description = "A LoST request (RFC 5222): findService, listServices, listServicesByLocation or getServiceBoundary"), responses((status = 200, description = "The LoST answer, or a LoST error (badRequest, notFound, locationProfileUnrecognized, loop…) as RFC 5222 section 13 wants it: always 200", content_type = "application/lost+xml", body = String), (status = 400, description = "An empty body"), (status = 415, description = "Not application/lost+xml"), (status = 413, description = "A body over 64 KiB"), (status = 503, description = "No LoST server configured")))]
pub(crate) async fn find(
    State(state): State<AppState>,
    source: Option<axum::extract::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let Some(ecrf) = state.lost.clone() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no LoST server").into_response();
    };
    // What is not a LoST message at all is refused at the HTTP level; a LoST message with a
    // problem gets the RFC's error element, with 200.
    let xml = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.starts_with("application/lost+xml") || v.contains("/xml")
        });
    if !xml {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a LoST request is application/lost+xml",
        )
            .into_response();
    }
    if body.is_empty() {
        return (StatusCode::BAD_REQUEST, "empty LoST request").into_response();
    }
    if body.len() > secourir_lost::REQUEST_BYTES_MAX {
        return (StatusCode::PAYLOAD_TOO_LARGE, "LoST request over 64 KiB").into_response();
    }
    let peer = source.map(|s| s.0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| chrono::DateTime::from_timestamp_millis(d.as_millis() as i64))
        .unwrap_or_default();
    let query_id = uuid::Uuid::new_v4().to_string();
    state.audit(
        secourir_audit::Body::LostQuery(secourir_audit::LostQuery {
            query_adapter: "http".into(),
            direction: secourir_audit::Direction::Incoming,
            query_id: query_id.clone(),
            malformed_query: None,
        }),
        peer,
        None,
    );
    let answer = ecrf.handle_request(&body, now);
    let status = match &answer.outcome {
        secourir_lost::Outcome::Error(kind) => kind.element().to_owned(),
        _ => "ok".to_owned(),
    };
    state.audit(
        secourir_audit::Body::LostResponse(secourir_audit::LostResponse {
            response_adapter: "http".into(),
            direction: secourir_audit::Direction::Outgoing,
            response_status: Some(status),
            response_id: query_id,
            malformed_response: None,
        }),
        peer,
        None,
    );
    (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, secourir_lost::CONTENT_TYPE)],
        answer.body,
    )
        .into_response()
}

//! What the HTTP handlers and the driver exchange: the requests, their errors and the views
//! they return, and the state every handler shares. It imports no handler, so that the API and
//! the pages stay leaves.

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secourir_core::{Ask, Denied, Granted};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::sessions::Web;

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
    /// The configuration in force.
    pub config: ConfigStatus,
    /// In a cluster: this node's seat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
}

/// The configuration in force, so that supervision sees every node run the same one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConfigStatus {
    /// SHA-256 of its text, hex.
    pub sha256: String,
    /// Configurations taken live since the start.
    pub changes: u64,
    /// When the last one was taken, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<u64>,
}

/// A cluster node's seat, for supervision.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClusterStatus {
    /// The node's name.
    pub node: String,
    /// Its site.
    pub site: String,
    /// Its inputs have not reached the log for a while: it serves its new calls alone.
    pub cut_off: bool,
    /// Calls it is serving alone, not yet given to the log.
    pub calls_alone: usize,
    /// The last entry of the log applied here.
    pub applied_seq: u64,
    /// The first entry this node's version cannot read: it applies the log no further and
    /// serves its calls alone until it runs the version the others run.
    pub unreadable_seq: Option<u64>,
    /// The entry of the snapshot this node started from: it applied only the log's entries
    /// after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_from: Option<u64>,
    /// That snapshot was another node's, replicated: the log no longer held the entries this
    /// node needed (a new node, or one away for long).
    pub snapshot_shared: bool,
    /// Every node has a snapshot at this entry or after: the log is trimmed below it.
    pub kept_by_all: u64,
    /// The wire format this node writes the log in: the newest that every member present
    /// reads (1 while a node of a version before numbered formats is a member).
    pub writes_format: u16,
    /// The newest wire format this node's version reads.
    pub reads_format: u16,
}

/// Why an API request failed.
#[derive(Debug)]
pub enum ApiError {
    /// No such thing.
    NotFound(&'static str),
    /// Not this person's to do.
    Forbidden(&'static str),
    /// The core did not grant the request.
    Denied(Denied),
    /// The request does not fit the state of things (not a text conversation, say).
    Conflict(&'static str),
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> ApiError {
        ApiError::Denied(denied)
    }
}

impl ApiError {
    /// The HTTP answer to this error, in the call-taker's words.
    pub(crate) fn response(&self) -> Response {
        use secourir_core::{CallbackRefusal, HandBackRefusal, PickRefusal};
        let (status, text): (StatusCode, String) = match self {
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, (*what).into()),
            ApiError::Forbidden(what) => (StatusCode::FORBIDDEN, (*what).into()),
            ApiError::Conflict(what) => (StatusCode::CONFLICT, (*what).into()),
            ApiError::Denied(denied) => match denied {
                Denied::HandBack(HandBackRefusal::NotTheirs) | Denied::NotTheirCall => (
                    StatusCode::FORBIDDEN,
                    "vous n'êtes pas en communication avec cet appel".into(),
                ),
                Denied::HandBack(HandBackRefusal::OwnCall) => (
                    StatusCode::CONFLICT,
                    "cet appel est déjà celui de votre CTA".into(),
                ),
                Denied::HandBack(HandBackRefusal::HomeUnreachable) => (
                    StatusCode::CONFLICT,
                    "personne n'est connecté au CTA d'origine : gardez l'appel".into(),
                ),
                Denied::Pick(PickRefusal::AlreadyTaken) => {
                    (StatusCode::CONFLICT, "appel déjà pris".into())
                }
                Denied::Pick(PickRefusal::NotReady) => (
                    StatusCode::CONFLICT,
                    "vous avez déjà un appel ou n'êtes pas connecté".into(),
                ),
                Denied::Pick(PickRefusal::Forbidden) => {
                    (StatusCode::FORBIDDEN, "appel d'un autre CTA".into())
                }
                Denied::Pick(PickRefusal::UnknownCall) => {
                    (StatusCode::NOT_FOUND, "appel inconnu".into())
                }
                Denied::Callback(CallbackRefusal::NotLoggedIn) => (
                    StatusCode::CONFLICT,
                    "connectez-vous (disponible ou en pause) pour traiter un rappel".into(),
                ),
                Denied::Callback(CallbackRefusal::Unknown) => (
                    StatusCode::NOT_FOUND,
                    "aucun rappel pour cet appel dans ce CTA".into(),
                ),
                Denied::UnknownAgent => (StatusCode::NOT_FOUND, "opérateur inconnu".into()),
                Denied::NoPartner(service) => (
                    StatusCode::CONFLICT,
                    format!(
                        "aucun partenaire configuré pour le {}",
                        service_name(*service)
                    ),
                ),
                Denied::TransferPending => (StatusCode::CONFLICT, "transfert déjà en cours".into()),
                Denied::PartnerFailed(0) => (
                    StatusCode::BAD_GATEWAY,
                    "le partenaire n'a pas pris l'appel (injoignable)".into(),
                ),
                Denied::PartnerFailed(code) => (
                    StatusCode::BAD_GATEWAY,
                    format!("le partenaire n'a pas pris l'appel ({code})"),
                ),
                Denied::CallEnded => (StatusCode::CONFLICT, "l'appel a pris fin".into()),
                Denied::NoLiveCall => (
                    StatusCode::ACCEPTED,
                    "aucun appel en cours depuis ce numéro".into(),
                ),
            },
        };
        problem(status, &text)
    }
}

/// How a call-taker names a partner service.
pub fn service_name(service: secourir_config::Service) -> &'static str {
    use secourir_config::Service;
    match service {
        Service::Ambulance => "15",
        Service::Police => "17",
        Service::Fire => "18",
        Service::Sos => "112",
        Service::Other => "service demandé",
    }
}

/// A case message handed to the hub.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CaseSent {
    /// Its `distributionID`: acknowledgements and errors name it.
    pub distribution_id: String,
    /// `Report` for the first send to this partner, `Update` after.
    pub kind: &'static str,
}

/// A request for the driver, which owns the routing core.
pub enum ApiCall {
    /// A call-taker's request, answered by the core.
    Ask {
        login: String,
        ask: Ask,
        reply: oneshot::Sender<Result<Granted, ApiError>>,
    },
    /// An AML position for the live call from this number.
    Aml {
        caller: String,
        lat: f64,
        lon: f64,
        radius_m: Option<f64>,
        reply: oneshot::Sender<Result<Granted, ApiError>>,
    },
    /// Every call-taker's account, phone and status.
    CallTakers {
        reply: oneshot::Sender<Vec<CallTakerView>>,
    },
    /// The platform's own state.
    Status {
        reply: oneshot::Sender<PlatformStatus>,
    },
    /// A room supervisor turns crisis mode on or off for a département.
    Crisis {
        login: String,
        /// The supervisor's CTA; `None` for a national role (admin), who acts on every zone.
        cta: Option<String>,
        departement: String,
        on: bool,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// A call-taker writes to the caller of the text conversation they are in.
    Write {
        login: String,
        call: u64,
        text: String,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// A call-taker hands the case of the call they hold to a partner through the hub.
    Case {
        login: String,
        call: u64,
        to: secourir_config::Service,
        /// A code of the configured table; None: the call's last, else the table's first.
        qualification: Option<String>,
        /// The call-taker's note for the partner.
        note: String,
        reply: oneshot::Sender<Result<CaseSent, ApiError>>,
    },
    /// A line for the supervisors' journal (a lock-out), by the platform itself.
    Note { what: String },
    /// A new configuration's text, to take without a restart: what became of it, in words.
    Reconfigure {
        text: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
}

impl From<WantedState> for secourir_core::WantedState {
    fn from(wanted: WantedState) -> Self {
        match wanted {
            WantedState::Available => secourir_core::WantedState::Available,
            WantedState::Paused => secourir_core::WantedState::Paused,
            WantedState::Offline => secourir_core::WantedState::Offline,
        }
    }
}

/// The name of a call-taker status in the API.
pub fn status_name(status: secourir_core::AgentStatus) -> &'static str {
    use secourir_core::AgentStatus;
    match status {
        AgentStatus::Available => "available",
        AgentStatus::Ringing(_) => "ringing",
        AgentStatus::Talking(_) => "talking",
        AgentStatus::WrapUp => "wrap-up",
        AgentStatus::Paused => "paused",
        AgentStatus::Offline => "offline",
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) driver: mpsc::Sender<ApiCall>,
    pub(crate) token: Arc<str>,
    pub(crate) data_dir: Arc<PathBuf>,
    pub(crate) web: Web,
    /// Served over HTTPS: the session cookie is `Secure` and browsers are told to stay on HTTPS.
    pub(crate) https: bool,
    /// The signed audit trail: sign-ins and LoST queries go there.
    pub(crate) audit: Option<secourir_audit::Trail>,
    /// The LoST server over the territory (`POST /lost`).
    pub(crate) lost: Option<Arc<secourir_lost::Ecrf>>,
}

impl AppState {
    /// Logs an event in the audit trail, stamped now.
    pub(crate) fn audit(
        &self,
        body: secourir_audit::Body,
        peer: Option<std::net::SocketAddr>,
        agent: Option<&str>,
    ) {
        let Some(trail) = &self.audit else { return };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut common = trail.common(now, None);
        common.ip_address_port = peer.map(|p| p.to_string());
        common.agency_agent_id = agent.map(str::to_owned);
        trail.log(common, body);
    }
}

/// Asks the core on behalf of a call-taker; None when the platform is stopping.
pub(crate) async fn ask_core(
    state: &AppState,
    login: &str,
    ask: Ask,
) -> Option<Result<Granted, ApiError>> {
    let login = login.to_owned();
    self::ask(state, |reply| ApiCall::Ask { login, ask, reply }).await
}

/// An error answer that says what went wrong in words, and nothing of the platform inside.
pub(crate) fn problem(status: StatusCode, message: &str) -> Response {
    // RFC 9457 problem details, with the words the console shows (`error`, kept for it).
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": message,
        "error": message,
    });
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
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

/// A call-taker's wanted state.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct StateBody {
    /// available, paused or offline.
    pub(crate) state: WantedState,
}

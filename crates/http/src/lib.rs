//! The HTTP side of the platform: the API and its OpenAPI document, the call-takers' console,
//! the supervision room's live picture, sign-in and sessions, and the bounds on connections.
//! It knows nothing of SIP, media or the cluster: what it asks of the platform goes as an
//! [`ApiCall`] to the driver, and what it shows comes as a [`Snapshot`] the driver draws.

mod access;
mod api;
mod connections;
mod live;
mod lost;
mod prometheus;
mod protocol;
mod router;
mod sessions;
mod signin;
mod totp;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use secourir_config::Plan;
use tokio::sync::{mpsc, watch};

pub use live::{Board, CaseView, HubView, ReceivedView, Snapshot, TextLineView};
pub use prometheus::handle as prometheus_handle;
pub use protocol::{
    ApiCall, ApiError, CallTakerView, CaseSent, ClusterStatus, ConfigStatus, PlatformStatus,
    WantedState, service_name, status_name,
};
pub use totp::code_at as totp_code;

/// An HTTP connection must bring a request's headers within this delay, ms: a browser or a
/// machine sends them at once, and a connection held silent only takes a descriptor.
const HTTP_HEADERS_WITHIN_MS: u64 = 10_000;

/// The router of the API and the pages: requests go to the driver on `driver`, the live
/// picture comes from `snapshots`, people sign in against `plan`'s accounts.
pub fn router(
    driver: mpsc::Sender<ApiCall>,
    token: String,
    data_dir: PathBuf,
    plan: Arc<Plan>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    https: bool,
    services: Services,
) -> axum::Router {
    let web = sessions::Web::new(plan, snapshots);
    router::router(driver, token, data_dir, web, https, services)
}

/// What the HTTP side answers with besides the driver.
#[derive(Clone, Default)]
pub struct Services {
    /// The signed audit trail: sign-ins and LoST queries are logged there.
    pub audit: Option<secourir_audit::Trail>,
    /// The LoST server over the territory, for `POST /lost`.
    pub lost: Option<Arc<secourir_lost::Ecrf>>,
}

/// Serves `router` on `listener`, over TLS when a certificate is given, until `stop` ends.
/// Connections are bounded in all and per source (`connections`); a connection must bring its
/// first request, and each request its headers, within [`HTTP_HEADERS_WITHIN_MS`] (over TLS,
/// the handshake its own 10 s): connections held open and silent would otherwise keep their
/// descriptors for ever, and the process's descriptors are the SIP connections' and the media
/// ports' too.
pub fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let listener = listener.into_std()?;
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        stop.await;
        stopping.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    let headers_within = Some(std::time::Duration::from_millis(HTTP_HEADERS_WITHIN_MS));
    match tls {
        None => {
            let mut server = axum_server::from_tcp(listener)?
                .acceptor(connections::Bounded::default())
                .first_request_timeout(headers_within);
            server
                .http_builder()
                .http1()
                .header_read_timeout(headers_within);
            tokio::spawn(async move {
                if let Err(e) = server.handle(handle).serve(service).await {
                    tracing::error!(error = %e, "HTTP server stopped");
                }
            });
        }
        Some(tls) => {
            // HTTP/1.1 only: the console's WebSocket opens over it, and nothing here gains
            // from h2.
            let mut config = (*tls).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let tls = axum_server::tls_rustls::RustlsAcceptor::new(
                axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)),
            )
            .acceptor(connections::Bounded::default());
            let mut server = axum_server::from_tcp(listener)?
                .acceptor(tls)
                .first_request_timeout(headers_within);
            server
                .http_builder()
                .http1()
                .header_read_timeout(headers_within);
            tokio::spawn(async move {
                if let Err(e) = server.handle(handle).serve(service).await {
                    tracing::error!(error = %e, "HTTPS server stopped");
                }
            });
        }
    }
    Ok(())
}

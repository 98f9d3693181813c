//! The Secourir platform process: the SIP shell, the RTP media anchor, the embedded store and the
//! HTTP API around one routing core, which a single driver task owns.

mod announcements;
mod arrival;
pub mod cases;
mod cluster;
mod driver;
mod legs;
mod limits;
mod locating;
mod node;
mod records;
mod recovery;
mod requests;
mod signalling;
mod snapshot;
mod starting;
mod suspects;
mod texts;
pub mod tls;
mod writer;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use secourir_config::Plan;
use secourir_http::ApiCall;
use secourir_media::{Audio, Media, MediaConfig};
use secourir_sip::{Numbering, Sip, SipConfig, SipEvent};
use secourir_territory::Territory;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use announcements::load_announcements;
use starting::{open_journal, starting_point, usable_snapshot};

pub use arrival::Arrival;
pub use limits::PEER_QUEUE;
pub use limits::SNAPSHOT_EVERY;
pub use locating::{CallPlace, PlaceError, locate_call, place_of};
pub use secourir_http::{
    CallTakerView, ClusterStatus, ConfigStatus, PlatformStatus, WantedState, totp_code,
};
pub use signalling::Signalling;

/// The announcements shipped with the platform, by file name: 8 kHz mono WAV made from the text
/// beside each (see `announcements/generate.sh`).
const SHIPPED_ANNOUNCEMENTS: [(&str, &[u8]); 3] = [
    (
        "attente.wav",
        include_bytes!("../../../announcements/attente.wav"),
    ),
    (
        "crise.wav",
        include_bytes!("../../../announcements/crise.wav"),
    ),
    (
        "occupe.wav",
        include_bytes!("../../../announcements/occupe.wav"),
    ),
];

/// The LoST server over the territory, naming the CTAs' queues on this platform's SIP address;
/// None (and said) if that address cannot be written in a LoST answer.
fn lost_server(
    plan: &Arc<Plan>,
    territory: &'static Territory,
    sip: SocketAddr,
) -> Option<Arc<secourir_lost::Ecrf>> {
    match secourir_lost::Ecrf::new(
        plan.clone(),
        territory,
        sip.to_string(),
        "ecrf.secourir".into(),
    ) {
        Ok(ecrf) => Some(Arc::new(ecrf)),
        Err(e) => {
            tracing::warn!(error = %e, "no LoST server: POST /lost answers 503");
            None
        }
    }
}

/// How to run the platform.
pub struct ServeOptions {
    /// SIP over UDP.
    pub sip: SocketAddr,
    /// SIP over TCP; the same address as UDP when None is not wanted.
    pub sip_tcp: Option<SocketAddr>,
    /// HTTP API; served over HTTPS when `tls` is set.
    pub http: SocketAddr,
    /// The certificate for SIP over TLS and HTTPS, from the configuration's `[tls]`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// SIP over TLS (SIPS), when `tls` is set.
    pub sips: Option<SocketAddr>,
    /// Where the store and the recordings live.
    pub data_dir: PathBuf,
    /// Address the media sockets bind to and announce in SDP.
    pub media_ip: IpAddr,
    /// First and last RTP port.
    pub media_ports: (u16, u16),
    /// Token the API wants.
    pub api_token: String,
    /// Directory of announcement files overriding the shipped ones.
    pub announcements_dir: Option<PathBuf>,
    /// Anchor no media (no announcement, no audio, no recording): to measure signalling alone.
    pub signalling_only: bool,
    /// Simulated people in place of real ones (the demonstration), if any.
    pub peers: Option<Box<dyn Peers>>,
    /// Write every input of the core to `journal/<start>.journal` in the data directory, with
    /// this header (the configuration the plan was loaded from), for `secourir replay`.
    pub journal: Option<secourir_journal::Header>,
    /// Run as one node of a cluster sharing its core through a replicated log.
    pub cluster: Option<ClusterOptions>,
    /// The configuration's text the plan was read from.
    pub config_text: String,
    /// How a new configuration's text is read, to take it without a restart.
    pub read_config: ConfigReader,
    /// The Hub Santé, from the configuration's `[hub]`: cases handed to the partners there.
    pub hub: Option<secourir_hub::HubConfig>,
}

/// Reads a configuration's text into a plan, as the platform was started (the territory's
/// zones, the demonstration's call-takers): a configuration taken live, or found in the
/// cluster's log, is read by it. The error gives `NAME:LINE:COLUMN: reason` lines.
#[derive(Clone)]
pub struct ConfigReader(pub Arc<ReadConfig>);

/// What [`ConfigReader`] calls.
pub type ReadConfig = dyn Fn(&str) -> Result<Plan, String> + Send + Sync;

impl ConfigReader {
    /// The plan `text` describes, or why it is refused.
    pub fn read(&self, text: &str) -> Result<Plan, String> {
        (self.0)(text)
    }
}

impl std::fmt::Debug for ConfigReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigReader")
    }
}

/// One node of a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// NATS servers holding the log, comma-separated.
    pub urls: String,
    /// This node's name, unique in the cluster and kept across restarts.
    pub node: String,
    /// Its site (datacentre).
    pub site: String,
    /// Entries of the log between two snapshots.
    pub snapshot_every: u64,
}

/// Errors that stop the platform from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory is unusable.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The store would not open.
    #[error("store: {0}")]
    Store(#[from] secourir_store::StoreError),
    /// SIP would not start.
    #[error(transparent)]
    Sip(#[from] secourir_sip::SipError),
    /// The audit trail would not open.
    #[error(transparent)]
    Audit(#[from] secourir_audit::TrailError),
    /// The hub's outbox would not open.
    #[error("hub: {0}")]
    Hub(#[from] secourir_hub::StartError),
    /// HTTP would not bind.
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Http {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The cluster could not be joined.
    #[error(transparent)]
    Cluster(#[from] node::JoinError),
    /// An announcement file is unreadable.
    #[error("announcement {name}: {reason}")]
    Announcement {
        /// File.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Addresses the running platform actually bound.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// SIP UDP.
    pub sip: SocketAddr,
    /// SIP over TLS.
    pub sips: Option<SocketAddr>,
    /// HTTP or HTTPS.
    pub http: SocketAddr,
    /// Whether the API and the console are served over HTTPS.
    pub https: bool,
}

/// A running platform; dropping it does not stop it, [`Platform::stop`] does.
pub struct Platform {
    /// Where it listens.
    pub bound: Bound,
    /// The driver's requests, for [`Platform::reconfigure`].
    api: mpsc::Sender<secourir_http::ApiCall>,
    stop: Option<oneshot::Sender<()>>,
    driver: tokio::task::JoinHandle<()>,
    cancel: rsipstack::platform::CancellationToken,
    /// The store's writer: joined at stop, so that the last records reach the disk.
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Platform {
    /// Takes a new configuration's text without a restart (in a cluster, every node takes it
    /// from the log): what became of it, or why it was refused, in words.
    pub async fn reconfigure(&self, text: String) -> Result<String, String> {
        let (reply, answer) = oneshot::channel();
        self.api
            .send(secourir_http::ApiCall::Reconfigure { text, reply })
            .await
            .map_err(|_| "the platform is stopping".to_owned())?;
        answer
            .await
            .map_err(|_| "the platform is stopping".to_owned())?
    }

    /// Hangs up live calls, finishes recordings, and stops listening.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.driver).await;
        // The driver is gone with its sender: the writer commits what it holds and ends.
        if let Some(writer) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
        self.cancel.cancel();
    }
}

/// The core's inputs a cluster's log holds (NATS servers at `urls`), in the log's order and
/// with the instants every node applied them at, the nodes running `plan`: for
/// `secourir replay --cluster`. The configurations the nodes took live come among them,
/// read by `read`.
pub async fn cluster_inputs(
    urls: &str,
    plan: Arc<Plan>,
    read: &ConfigReader,
) -> Result<Vec<(secourir_core::Instant, secourir_core::Input)>, String> {
    let entries = node::read_all(urls).await.map_err(|e| e.to_string())?;
    Ok(cluster::core_inputs(plan, entries, read))
}

/// People other than the SIP side's, plugged in where real ones would be: the demonstration's
/// simulated callers and phones. The platform knows them only by this.
pub trait Peers: Send {
    /// Starts them beside the SIP shell `sip`; what they ask of the platform goes to `api`.
    fn start(self: Box<Self>, sip: Sip, plan: Arc<Plan>, api: mpsc::Sender<ApiCall>) -> Started;
}

/// Peers started: the signalling the legs talk to, and what the peers send the driver.
pub struct Started {
    /// Rings their phones (and the SIP shell's, for real ones).
    pub signalling: Box<dyn Signalling>,
    /// Their phones' answers and hang-ups, as the SIP shell reports real ones.
    pub events: mpsc::Receiver<SipEvent>,
    /// Their new calls.
    pub arrivals: mpsc::Receiver<Arrival>,
}

/// Starts the platform and returns once it listens.
pub async fn start(plan: Arc<Plan>, mut options: ServeOptions) -> Result<Platform, ServeError> {
    let recordings = options.data_dir.join("recordings");
    std::fs::create_dir_all(&recordings).map_err(|source| ServeError::DataDir {
        path: recordings.clone(),
        source,
    })?;
    let announcements = load_announcements(&plan, options.announcements_dir.as_ref())?;
    if secourir_http::prometheus_handle().is_none() {
        tracing::warn!("Prometheus recorder could not be installed: /metrics will answer 503");
    }
    let territory = Territory::france();
    let (mut store, writer, settled) = writer::start(&options.data_dir)?;
    let started_at = secourir_core::Instant(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    );
    // In a cluster the log, not this node's store, says which calls are open and which
    // numbers are taken: the store only keeps what the log led to.
    let mut joined = None;
    let mut resumed = None;
    let mut seeded = None;
    let recovered = match &options.cluster {
        Some(cluster) => {
            let mark = secourir_store::Store::open_read_only(&options.data_dir)?.log_applied()?;
            let local = usable_snapshot(&options.data_dir, mark, &plan, &options.read_config);
            let reached = node::Reached::reach(&cluster.urls).await?;
            let (usable, shared) =
                starting_point(&reached, local, &plan, &options.read_config).await?;
            let from = usable.as_ref().map_or(1, |(s, _)| s.seq + 1);
            let (mut node, earlier) = node::Node::join(
                reached,
                &cluster.node,
                &cluster.site,
                started_at.0,
                mark,
                recordings.clone(),
                from,
            )
            .await?;
            info!(node = %cluster.node, site = %cluster.site, slot = node.slot, from, "cluster joined");
            node.snapshot_every = cluster.snapshot_every;
            if let Some((snapshot, core)) = usable {
                node.members = snapshot.members.clone();
                node.applied = secourir_core::Instant(snapshot.clock);
                node.failover.applied_from(snapshot.seq);
                node.snapshot_from = Some(snapshot.seq);
                node.shared_from = shared;
                if shared {
                    seeded = Some((snapshot.records.clone(), snapshot.seq));
                }
                node.records = snapshot
                    .records
                    .iter()
                    .map(|(at, r)| (r.call, (*at, r.clone())))
                    .collect();
                resumed = Some((core, snapshot.config));
            }
            let calls = earlier
                .iter()
                .flat_map(|(_, batch)| {
                    batch.items.iter().filter_map(|input| match input {
                        secourir_cluster::Input::Offered { record, .. } => Some(record.call),
                        _ => None,
                    })
                })
                .chain(
                    node.members
                        .highest_call(&cluster.node)
                        .map(secourir_core::CallId),
                );
            let first = secourir_cluster::first_call(node.slot, calls);
            joined = Some((node, earlier));
            recovery::Recovered {
                last_call: first.saturating_sub(1),
                writes: Vec::new(),
                events: Vec::new(),
                interrupted: 0,
            }
        }
        None => recovery::recover(&options.data_dir, &recordings, &plan, started_at)?,
    };
    if recovered.interrupted > 0 {
        tracing::warn!(
            calls = recovered.interrupted,
            "calls left open by an interruption: closed, their callers on the call-back lists"
        );
    }
    let last_call = recovered.last_call;
    for write in recovered.writes {
        store.send(write);
    }
    store.flush();
    let mut secret = [0u8; 32];
    let seed = uuid::Uuid::new_v4();
    let seed2 = uuid::Uuid::new_v4();
    secret[..16].copy_from_slice(seed.as_bytes());
    secret[16..].copy_from_slice(seed2.as_bytes());
    let cancel = rsipstack::platform::CancellationToken::new();
    let (sip, sip_events) = Sip::start(
        &SipConfig {
            udp: options.sip,
            tcp: options.sip_tcp,
            tls: options.sips.zip(options.tls.clone()),
            events: limits::SIP_EVENTS,
        },
        plan.clone(),
        secret,
        match &joined {
            Some(_) => Numbering {
                first: last_call + 1,
                step: secourir_cluster::SLOTS,
            },
            None => Numbering {
                first: last_call + 1,
                step: 1,
            },
        },
        cancel.clone(),
    )
    .await?;
    let (media, media_events) = Media::new(MediaConfig {
        ip: options.media_ip,
        port_min: options.media_ports.0,
        port_max: options.media_ports.1,
        signalling_only: options.signalling_only,
        events: limits::MEDIA_EVENTS,
    });
    let listener = tokio::net::TcpListener::bind(options.http)
        .await
        .map_err(|source| ServeError::Http {
            addr: options.http,
            source,
        })?;
    let http = listener.local_addr().map_err(|source| ServeError::Http {
        addr: options.http,
        source,
    })?;
    let (api_tx, api_rx) = mpsc::channel(limits::API_QUEUE);
    let api_control = api_tx.clone();
    let (snapshots, snapshot_rx) =
        tokio::sync::watch::channel(Arc::new(secourir_http::Snapshot::default()));
    // Each node signs its own chain, named for the node.
    let element = options
        .cluster
        .as_ref()
        .map_or_else(|| "secourir".to_owned(), |c| c.node.clone());
    let audit =
        secourir_audit::Trail::start(&options.data_dir.join("audit"), &element, "secourir")?;
    {
        let text = &options.config_text;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        audit.log(
            audit.common(now, None),
            secourir_audit::Body::ConfigurationChange(secourir_audit::ConfigurationChange {
                change_type: secourir_audit::ConfigurationChangeType::Loaded,
                sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
                previous_sha256: None,
                source: "start".into(),
                editor: None,
                summary: None,
            }),
        );
    }
    let router = secourir_http::router(
        api_tx.clone(),
        options.api_token.clone(),
        options.data_dir.clone(),
        plan.clone(),
        snapshot_rx,
        options.tls.is_some(),
        secourir_http::Services {
            audit: Some(audit.clone()),
            lost: lost_server(&plan, territory, sip.local_addr()),
        },
    );
    let stop = cancel.clone();
    secourir_http::serve(listener, router, options.tls.clone(), async move {
        stop.cancelled().await
    })
    .map_err(|source| ServeError::Http { addr: http, source })?;
    let bound = Bound {
        sip: sip.local_addr(),
        sips: sip.tls_addr(),
        http,
        https: options.tls.is_some(),
    };
    let instance = format!("secourir-{}", &seed.simple().to_string()[..8]);
    // Without the demonstration the peer inputs stay empty; their senders live as long as the
    // driver, so that the loop never sees them closed.
    let (peer_tx, mut peers) = mpsc::channel(limits::PEER_QUEUE);
    let (arrival_tx, mut arrivals) = mpsc::channel(limits::PEER_QUEUE);
    let signalling: Box<dyn Signalling> = match options.peers.take() {
        Some(simulated) => {
            let started = simulated.start(sip.clone(), plan.clone(), api_tx);
            peers = started.events;
            arrivals = started.arrivals;
            started.signalling
        }
        None => Box::new(sip.clone()),
    };
    let legs = legs::Legs::new(signalling, media, plan.clone(), announcements, recordings);
    let mut records = records::Records::new(store, plan.clone());
    records.audit = Some(audit);
    // In a cluster the log is the journal.
    let journal = match (&options.journal, &joined) {
        (Some(header), None) => Some(open_journal(&options.data_dir, header, &instance)?),
        _ => None,
    };
    // Without a hub the reports' input stays empty; its sender lives as long as the driver.
    let (no_hub, mut hub_reports) = mpsc::channel(1);
    let pump = match options.hub.take() {
        Some(config) => {
            let (pump, reports) = cases::Pump::start(config)?;
            hub_reports = reports;
            Some(pump)
        }
        None => None,
    };
    let mut driver = driver::Driver::new(plan, territory, instance, sip, legs, records, snapshots);
    driver.cases = cases::Cases::new(pump);
    driver.journal = journal;
    driver.config = driver::Config::new(options.read_config.clone(), &options.config_text);
    driver.data_dir = options.data_dir.clone();
    if let Some((core, config)) = resumed {
        driver.resume(core, &config);
    }
    if let Some((records, seq)) = seeded {
        driver.seed(&records, seq);
    }
    match joined {
        Some((node, earlier)) => driver.join(node, earlier)?,
        None => driver.restore(last_call, recovered.events),
    }
    let (stop_tx, stop_rx) = oneshot::channel();
    let inputs = driver::Inputs {
        sip: sip_events,
        peers,
        arrivals,
        media: media_events,
        api: api_rx,
        settled,
        hub: hub_reports,
        stop: stop_rx,
    };
    let run = tokio::spawn(async move {
        let _keep = (peer_tx, arrival_tx, no_hub);
        driver.run(inputs).await;
    });
    let driver = tokio::spawn(async move {
        if let Err(e) = run.await
            && e.is_panic()
        {
            // The core found its own state broken (or the driver has a defect): going on would
            // route calls from a corrupt state. Exit, so that the supervisor restarts the
            // platform and the recovery closes every open call onto the call-back lists.
            tracing::error!("the driver stopped on a defect: exiting for a clean restart");
            std::process::exit(70);
        }
    });
    info!(sip = %bound.sip, http = %bound.http, "platform ready");
    Ok(Platform {
        bound,
        api: api_control,
        stop: Some(stop_tx),
        driver,
        cancel,
        writer: Some(writer),
    })
}

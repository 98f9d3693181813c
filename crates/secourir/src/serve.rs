//! `secourir serve` and `secourir calls`: the platform on the wire, and its call list.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args as ClapArgs;
use secourir_server::ServeOptions;

/// Options of `secourir serve`.
#[derive(ClapArgs, Debug)]
pub struct ServeArgs {
    /// SIP address, UDP and TCP.
    #[arg(long, default_value = "127.0.0.1:5060")]
    pub sip: SocketAddr,
    /// HTTP API address; HTTPS when the configuration has a `[tls]` table.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// SIP over TLS address, when the configuration has a `[tls]` table (default: the SIP
    /// address's port plus one, 5061 beside 5060).
    #[arg(long)]
    pub sips: Option<SocketAddr>,
    /// Where the store (secourir.sqlite) and the recordings live.
    #[arg(long, default_value = "var")]
    pub data_dir: PathBuf,
    /// National configuration; the shipped one is built in.
    #[arg(long, default_value = "config/france.toml")]
    pub config: PathBuf,
    /// RTP port range, FIRST-LAST.
    #[arg(long, default_value = "20000-39999")]
    pub media_ports: String,
    /// Address media binds to and announces in SDP (default: the SIP address).
    #[arg(long)]
    pub media_ip: Option<IpAddr>,
    /// API token (else $SECOURIR_API_TOKEN, else one is made and written to DATA_DIR/api-token).
    #[arg(long)]
    pub api_token: Option<String>,
    /// Directory of announcement WAV files replacing the shipped ones.
    #[arg(long)]
    pub announcements: Option<PathBuf>,
    /// Do not listen for SIP over TCP.
    #[arg(long)]
    pub no_tcp: bool,
    /// Anchor no media: no announcement, no audio, no recording. Only to measure the
    /// signalling plane; never for real calls.
    #[arg(long)]
    pub signalling_only: bool,
    /// Run as one node of a cluster: the NATS servers holding the shared log,
    /// `nats://127.0.0.1:4222,nats://127.0.0.1:4223,…` (three for a replicated log).
    #[arg(long, value_name = "URLS")]
    pub cluster: Option<String>,
    /// This node's name in the cluster, unique and kept across restarts.
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub node: Option<String>,
    /// The site (datacentre) this node runs in.
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub site: Option<String>,
    /// Entries of the cluster log between two snapshots of this node: each is replicated,
    /// and the log is trimmed below the oldest of the nodes' latest ones.
    #[arg(long, value_name = "ENTRIES", requires = "cluster", default_value_t = secourir_server::SNAPSHOT_EVERY,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub snapshot_every: u64,
}

fn parse_ports(text: &str) -> Result<(u16, u16), String> {
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("--media-ports {text:?}: expected FIRST-LAST, e.g. 20000-39999"))?;
    let a: u16 = a
        .trim()
        .parse()
        .map_err(|_| format!("--media-ports: {a:?} is not a port"))?;
    let b: u16 = b
        .trim()
        .parse()
        .map_err(|_| format!("--media-ports: {b:?} is not a port"))?;
    if a >= b || b - a < 3 {
        return Err(format!(
            "--media-ports {text:?}: the range must hold at least 4 ports"
        ));
    }
    Ok((a, b))
}

fn api_token(args: &ServeArgs) -> Result<String, String> {
    if let Some(token) = &args.api_token {
        return Ok(token.clone());
    }
    if let Ok(token) = std::env::var("SECOURIR_API_TOKEN")
        && !token.is_empty()
    {
        return Ok(token);
    }
    let path = args.data_dir.join("api-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim().to_owned();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    std::fs::create_dir_all(&args.data_dir)
        .and_then(|()| std::fs::write(&path, format!("{token}\n")))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(token)
}

/// Options of `secourir demo`.
#[derive(ClapArgs, Debug)]
pub struct DemoArgs {
    /// The platform's own options.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Simulated calls per second across France.
    #[arg(long, default_value_t = 2.0)]
    pub calls_per_second: f64,
    /// Mean conversation of a simulated call-taker, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub handling_s: f64,
}

/// Runs the platform with simulated callers and call-takers until Ctrl-C.
pub fn demo(args: &DemoArgs) -> ExitCode {
    if !(args.calls_per_second > 0.0 && args.calls_per_second <= 1000.0) {
        eprintln!("--calls-per-second: between 0 and 1000");
        return ExitCode::from(2);
    }
    let options = secourir_demo::DemoOptions {
        calls_per_second: args.calls_per_second,
        handling_s: args.handling_s,
        ..Default::default()
    };
    run(&args.serve, Some(options))
}

/// Descriptors one call with anchored media holds: two RTP/RTCP port pairs and its recording.
const FILES_PER_CALL: u64 = 5;

/// Lifts the soft limit on open files to the hard one: Debian's default soft limit of 1024
/// would refuse media ports after about two hundred simultaneous calls.
fn raise_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), hard) = (limit.current, limit.maximum) else {
        return; // unlimited already
    };
    let wanted = hard.unwrap_or(1 << 20);
    let now = if wanted > soft {
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(wanted),
                maximum: hard,
            },
        ) {
            Ok(()) => wanted,
            Err(e) => {
                tracing::warn!(soft, error = %e, "cannot raise the open files limit");
                soft
            }
        }
    } else {
        soft
    };
    let calls = now / FILES_PER_CALL;
    if calls < 4_000 {
        tracing::warn!(
            open_files = now,
            "the open files limit allows about {calls} simultaneous calls with media; raise it (ulimit -Hn, LimitNOFILE=) for the national sizing"
        );
    } else {
        tracing::info!(open_files = now, "open files limit");
    }
}

/// Runs the platform until Ctrl-C.
pub fn serve(args: &ServeArgs) -> ExitCode {
    run(args, None)
}

fn run(args: &ServeArgs, demo: Option<secourir_demo::DemoOptions>) -> ExitCode {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let wanted = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,rsipstack=warn".into());
    // The SIP stack logs whole messages below WARN, digest credentials included: whatever
    // RUST_LOG asks, none of them reaches the log. The platform's own lines say what happened.
    let no_raw_sip = tracing_subscriber::filter::filter_fn(|meta| {
        !meta.target().starts_with("rsipstack") || *meta.level() <= tracing::Level::WARN
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(wanted)
                .with_filter(no_raw_sip),
        )
        .init();
    raise_open_files_limit();
    let loaded = crate::read_config(&args.config).and_then(|text| {
        crate::plan_from_text(&text, &args.config.display().to_string()).map(|p| (p, text))
    });
    let (mut plan, config_text) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let demo = demo.map(|options| (options, secourir_demo::add_simulated_call_takers(&mut plan)));
    let simulated = demo
        .as_ref()
        .map(|(_, first)| plan.call_takers.len() - first);
    let plan = Arc::new(plan);
    let media_ports = match parse_ports(&args.media_ports) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let token = match api_token(args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot keep the API token: {e}");
            return ExitCode::from(2);
        }
    };
    let cluster = match (&args.cluster, &args.node) {
        (None, _) => None,
        (Some(_), _) if demo.is_some() => {
            eprintln!("--cluster: the demonstration runs on one machine; use `secourir serve`");
            return ExitCode::from(2);
        }
        (Some(_), None) => {
            eprintln!("--cluster needs --node NAME, the node's name in the cluster");
            return ExitCode::from(2);
        }
        (Some(urls), Some(node)) => Some(secourir_server::ClusterOptions {
            urls: urls.clone(),
            node: node.clone(),
            site: args.site.clone().unwrap_or_default(),
            snapshot_every: args.snapshot_every,
        }),
    };
    let tls = match &plan.tls {
        Some(files) => {
            // Paths are read from where the configuration file is, as a person writing it means.
            let dir = args
                .config
                .parent()
                .filter(|_| args.config.exists())
                .unwrap_or(std::path::Path::new("."));
            match secourir_server::tls::server_config(
                &dir.join(&files.certificate),
                &dir.join(&files.private_key),
            ) {
                Ok(config) => Some(config),
                Err(e) => {
                    eprintln!("{}: line {}: {e}", args.config.display(), files.line);
                    return ExitCode::from(2);
                }
            }
        }
        None if args.sips.is_some() => {
            eprintln!(
                "--sips: the configuration {} has no [tls] table naming the certificate and key",
                args.config.display()
            );
            return ExitCode::from(2);
        }
        None => None,
    };
    let hub = plan.hub.as_ref().map(|settings| {
        // Paths are read from where the configuration file is, as for [tls].
        let dir = args
            .config
            .parent()
            .filter(|_| args.config.exists())
            .unwrap_or(std::path::Path::new("."));
        hub_config(settings, dir, &args.data_dir)
    });
    let sips = tls.as_ref().map(|_| {
        args.sips.unwrap_or_else(|| {
            let port = match args.sip.port() {
                0 => 0,
                p => p.saturating_add(1),
            };
            SocketAddr::new(args.sip.ip(), port)
        })
    });
    let name = args.config.display().to_string();
    let with_simulated = demo.is_some();
    let read_config = secourir_server::ConfigReader(Arc::new(move |text: &str| {
        let mut plan = crate::plan_from_text(text, &name)?;
        if with_simulated {
            secourir_demo::add_simulated_call_takers(&mut plan);
        }
        Ok(plan)
    }));
    let options = ServeOptions {
        cluster,
        config_text: config_text.clone(),
        read_config,
        hub,
        sip: args.sip,
        sip_tcp: (!args.no_tcp).then_some(args.sip),
        http: args.http,
        tls,
        sips,
        data_dir: args.data_dir.clone(),
        media_ip: args.media_ip.unwrap_or(args.sip.ip()),
        media_ports,
        api_token: token,
        announcements_dir: args.announcements.clone(),
        signalling_only: args.signalling_only,
        journal: Some(secourir_journal::Header {
            config: config_text,
            simulated_call_takers: demo.is_some(),
            started_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            node: String::new(),
        }),
        peers: demo.map(|(options, first)| {
            Box::new(secourir_demo::Demo::new(options, first)) as Box<dyn secourir_server::Peers>
        }),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let platform = match secourir_server::start(plan, options).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("secourir serve: {e}");
                return ExitCode::FAILURE;
            }
        };
        let scheme = if platform.bound.https { "https" } else { "http" };
        let sips = platform
            .bound
            .sips
            .map(|a| format!(", SIP sur TLS {a}"))
            .unwrap_or_default();
        println!(
            "Secourir écoute : SIP {} (UDP et TCP){sips}, API {scheme}://{} — données dans {}",
            platform.bound.sip,
            platform.bound.http,
            args.data_dir.display()
        );
        if let Some(simulated) = simulated {
            println!(
                "Démonstration : appels simulés dans toute la France, {simulated} opérateurs simulés.\n\
                 Ouvrez {scheme}://{} — salle : chef-13 / secourir et le code à usage unique \
                 que donne `secourir totp chef-13` ; opératrice : ota-13-1 / secourir \
                 (son téléphone : voir le README).",
                platform.bound.http
            );
        }
        if args.signalling_only {
            println!("ATTENTION : --signalling-only, aucun média ancré : pour mesurer, jamais pour de vrais appels.");
        }
        // SIGTERM (systemd, a supervisor) drains exactly like Ctrl-C: callers are told, not cut.
        // SIGHUP reads the configuration file again and takes it without a restart.
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hangup)) =
            (signal(SignalKind::terminate()), signal(SignalKind::hangup()))
        else {
            eprintln!("cannot listen for SIGTERM and SIGHUP");
            platform.stop().await;
            return ExitCode::FAILURE;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = hangup.recv() => reload(&platform, &args.config).await,
            }
        }
        println!("Arrêt : appels en cours raccrochés, enregistrements terminés.");
        platform.stop().await;
        ExitCode::SUCCESS
    })
}

/// Reads the configuration file again and gives it to the platform, saying what became of it.
async fn reload(platform: &secourir_server::Platform, path: &std::path::Path) {
    let text = match crate::read_config(path) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(reason = %e, "SIGHUP: configuration not read; the one in force stays");
            println!("Configuration refusée : {e}");
            return;
        }
    };
    match platform.reconfigure(text).await {
        Ok(what) => {
            tracing::info!(file = %path.display(), "SIGHUP: {what}");
            println!("Configuration rechargée : {}", path.display());
        }
        Err(why) => {
            tracing::warn!(file = %path.display(), reason = %why, "SIGHUP: configuration refused; the one in force stays");
            println!("Configuration refusée : {why}");
        }
    }
}

/// Options of `secourir calls`.
#[derive(ClapArgs, Debug)]
pub struct CallsArgs {
    /// How far back: 90s, 15m, 1h, 2d, 1h30m.
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The platform's data directory.
    #[arg(long, default_value = "var")]
    pub data_dir: PathBuf,
    /// At most this many calls.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

/// Lists recent calls from the store.
pub fn calls(args: &CallsArgs) -> ExitCode {
    let since = match secourir_store::parse_since(&args.since) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("--since: {e}");
            return ExitCode::from(2);
        }
    };
    let store = match secourir_store::Store::open_read_only(&args.data_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let listed = store.calls_since(now_ms - since.as_millis() as i64, args.limit);
    if let Ok(calls) = &listed
        && calls.len() == args.limit
    {
        // Said on stderr, so that the table or the JSON stays whole for a program reading it.
        eprintln!(
            "the {} most recent calls only (--limit {}): there may be more since {}",
            calls.len(),
            args.limit,
            args.since
        );
    }
    match listed {
        Ok(calls) if args.json => {
            // A text conversation's record carries its lines, as the call's API does.
            let mut listed = Vec::with_capacity(calls.len());
            for call in &calls {
                let mut value = serde_json::to_value(call).unwrap_or_default();
                if call.medium == "text" {
                    match store.transcript(call.call) {
                        Ok(lines) => value["transcript"] = serde_json::json!(lines),
                        Err(e) => {
                            eprintln!("{e}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
                // The cases handed to partners, as the JSON that went on the wire.
                match store.case_messages(call.call) {
                    Ok(cases) if !cases.is_empty() => value["cases"] = serde_json::json!(cases),
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::FAILURE;
                    }
                }
                listed.push(value);
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&listed).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(calls) => {
            print!("{}", secourir_store::format_table(&calls));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The hub's connection from the configuration's `[hub]`: the outbox beside the store, the
/// certificates relative to the configuration file. A lost link is tried again within 5 s, not
/// the hub crate's 30 s: a case waits for the link, and so does the partner.
fn hub_config(
    settings: &secourir_config::HubSettings,
    config_dir: &std::path::Path,
    data_dir: &std::path::Path,
) -> secourir_hub::HubConfig {
    let mut config = secourir_hub::HubConfig::new(
        settings.url.clone(),
        settings.client_id.clone(),
        settings.exchange.clone(),
        data_dir.join("hub-outbox.sqlite"),
    );
    config.reconnect_max_ms = 5_000;
    if let (Some((certificate, key)), Some(ca)) = (&settings.identity, &settings.ca) {
        config.tls = Some(secourir_hub::TlsFiles {
            ca_cert: config_dir.join(ca),
            client_cert: config_dir.join(certificate),
            client_key: config_dir.join(key),
        });
    }
    config
}

//! Starting the gate: data directory, log key, database, background checkpoints, HTTP server
//! with graceful shutdown and optional TLS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use countersign_core::checkpoint::NoteSigner;
use countersign_core::jws;

use crate::db::Db;
use crate::http::{AppState, router};
use crate::service::{Gate, GateConfig};

/// The origin line of this gate's checkpoints unless configured otherwise.
pub const DEFAULT_ORIGIN: &str = "countersign-gate/log";

/// Where state lives when no flag says otherwise: `$COUNTERSIGN_GATE_DATA`, else the user's data
/// directory (`$XDG_DATA_HOME` or `~/.local/share`) under `countersign-gate`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("COUNTERSIGN_GATE_DATA") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("countersign-gate")
}

/// Loads the log signing key from `path`, creating it (mode 0600) on first use.
pub fn load_or_create_log_key(path: &Path, origin: &str) -> anyhow::Result<NoteSigner> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading log key {}: {e}", path.display()))?;
        return NoteSigner::parse(text.trim())
            .map_err(|e| anyhow::anyhow!("log key {}: {e}", path.display()));
    }
    let signer = NoteSigner::new(origin, jws::generate_signing_key())
        .map_err(|e| anyhow::anyhow!("creating log key: {e}"))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    write_private(path, &format!("{}\n", signer.to_skey()))?;
    Ok(signer)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)?;
    Ok(())
}

/// How to open a gate.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub log_key: Option<PathBuf>,
    pub origin: String,
    pub config: GateConfig,
}

/// Opens the database (creating the data directory for SQLite) and the gate on it.
pub async fn open_gate(options: &OpenOptions) -> anyhow::Result<Gate> {
    std::fs::create_dir_all(&options.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "creating data directory {}: {e}",
            options.data_dir.display()
        )
    })?;
    let db = match &options.database_url {
        Some(url) => Db::open(url).await?,
        None => Db::open_sqlite(&options.data_dir.join("gate.sqlite")).await?,
    };
    let key_path = options
        .log_key
        .clone()
        .unwrap_or_else(|| options.data_dir.join("log-key"));
    let signer = load_or_create_log_key(&key_path, &options.origin)?;
    Ok(Gate::open(db, &options.origin, signer, options.config.clone()).await?)
}

/// TLS material for the listener.
#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How long shutdown waits for in-flight requests before it closes their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves the HTTP API until `shutdown` resolves; in-flight requests are then given 30 s to
/// finish.
pub async fn serve(
    gate: Arc<Gate>,
    listener: std::net::TcpListener,
    tls: Option<Tls>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(gate, listener, tls, metrics, None, shutdown).await
}

/// [`serve`], plus push delivery of releases to a webhook.
pub async fn serve_with(
    gate: Arc<Gate>,
    listener: std::net::TcpListener,
    tls: Option<Tls>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    webhook: Option<crate::webhook::Webhook>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let body_limit = gate
        .config
        .max_output_bytes
        .saturating_mul(gate.config.max_batch)
        .min(64 * 1024 * 1024);
    let app = router(
        AppState {
            gate: gate.clone(),
            metrics,
        },
        body_limit,
        Duration::from_secs(30),
    );
    let checkpoints = tokio::spawn(checkpoint_loop(gate.clone()));
    let supervision = tokio::spawn(crate::service::supervision_loop(gate.clone()));
    let deliveries =
        webhook.map(|hook| tokio::spawn(crate::webhook::deliver_forever(gate.clone(), hook)));
    // One server for both: axum-server bounds how long a connection may take to send a
    // request's head (axum::serve left a connection that never finished its headers open for
    // good, one file descriptor each), and drains in-flight requests on shutdown.
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let head_timeout = gate.config.request_head_timeout;
    let result = match tls {
        None => {
            bounded(
                axum_server::from_tcp(listener)?.handle(handle),
                head_timeout,
            )
            .serve(service)
            .await
        }
        Some(tls) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .map_err(|e| anyhow::anyhow!("TLS certificate or key: {e}"))?;
            bounded(
                axum_server::from_tcp_rustls(listener, config)?.handle(handle),
                head_timeout,
            )
            .serve(service)
            .await
        }
    }
    .map_err(anyhow::Error::from);
    checkpoints.abort();
    supervision.abort();
    if let Some(deliveries) = deliveries {
        deliveries.abort();
    }
    // A last checkpoint so that everything committed before shutdown is covered by a signature.
    if let Err(e) = gate.log.checkpoint(&gate.db).await {
        tracing::warn!(error = %e, "final checkpoint failed");
    }
    gate.db.close().await;
    result
}

/// `server` with the request-head timeout, on the first request and on every later one.
fn bounded<A: axum_server::Address, Acceptor>(
    server: axum_server::Server<A, Acceptor>,
    timeout: Duration,
) -> axum_server::Server<A, Acceptor> {
    let mut server = server.first_request_timeout(timeout);
    server.http_builder().http1().header_read_timeout(timeout);
    server
}

/// Signs a checkpoint every second while the log grows.
async fn checkpoint_loop(gate: Arc<Gate>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = gate.log.checkpoint(&gate.db).await {
            tracing::warn!(error = %e, "periodic checkpoint failed");
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

//! `countersign-gate`: run the gate and administer it (users, keys, API keys, policies, audit
//! export, demo data).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

// Ingest allocates heavily (JSON values, canonical bytes); mimalloc measured faster than glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use countersign_gate::server::{self, DEFAULT_ORIGIN, OpenOptions, Tls};
use countersign_gate::service::Role;
use countersign_gate::{Gate, GateConfig};

#[derive(Debug, Parser)]
#[command(
    name = "countersign-gate",
    version,
    about = "The Countersign gate: routes AI outputs by policy, holds what needs a human, takes signed decisions and keeps the audit log."
)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct StoreArgs {
    /// Directory for the embedded database and the log key (default: $COUNTERSIGN_GATE_DATA or
    /// ~/.local/share/countersign-gate).
    #[arg(long, global = true, env = "COUNTERSIGN_GATE_DATA")]
    data_dir: Option<PathBuf>,
    /// Use PostgreSQL instead of the embedded SQLite, e.g. postgres://user@host/db.
    #[arg(long, global = true, env = "COUNTERSIGN_DATABASE_URL")]
    database_url: Option<String>,
    /// The log's checkpoint signing key (default: DATA_DIR/log-key, created on first use).
    /// Gate instances sharing one database must share this key.
    #[arg(long, global = true)]
    log_key: Option<PathBuf>,
    /// The origin line of the log's checkpoints; fixed when the log is created.
    #[arg(long, global = true, default_value = DEFAULT_ORIGIN)]
    origin: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API.
    Serve(ServeArgs),
    /// Manage users (reviewers, seniors, supervisors, admins).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage reviewer device keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Create API keys for source systems and downstream consumers.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Validate, activate, roll back and list routing policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Export the audit log for outside verification.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Seed a fresh gate with the German-credit demo: policy, users, a source and model outputs.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8470")]
    listen: SocketAddr,
    /// Log as JSON lines (for log collectors) instead of text.
    #[arg(long)]
    json_logs: bool,
    /// PEM certificate chain; with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Largest accepted output in bytes (canonical JSON).
    #[arg(long, default_value_t = 256 * 1024)]
    max_output_bytes: usize,
    /// Also push every release to this URL (HMAC-signed, retried until it answers 2xx; a
    /// redirect is not followed and counts as a failure, so give the final URL).
    #[arg(long, requires = "webhook_secret_file")]
    webhook: Option<String>,
    /// File holding the webhook's HMAC secret.
    #[arg(long, requires = "webhook")]
    webhook_secret_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user and print a one-time enrollment code for their desk.
    Create {
        name: String,
        #[arg(long, value_parser = ["reviewer", "senior", "supervisor", "admin"])]
        role: String,
        /// Largest amount the user may decide.
        #[arg(long, default_value_t = 0.0)]
        authority: f64,
    },
    /// Print a new one-time enrollment code for an existing user (a new device).
    EnrollCode { name: String },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Revoke a device key: decisions the gate processes from now on under it are refused.
    Revoke {
        key_id: String,
        #[arg(long, default_value = "revoked by an admin")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create an API key and print it (shown once; stored hashed).
    Create {
        #[arg(value_parser = ["source", "consumer"])]
        kind: String,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Check a policy file without activating it.
    Validate { file: PathBuf },
    /// Validate and activate a policy file (its version must be newer than any before).
    Activate { file: PathBuf },
    /// Re-activate the previous policy version.
    Rollback,
    /// List stored policy versions.
    List,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Write the log, its checkpoints and every reviewer key into DIR (created, must be empty).
    Export {
        dir: PathBuf,
        /// With --to: a bundle for the entries logged in [FROM, TO) (RFC 3339): the log up to
        /// the first checkpoint covering them, with the range in the manifest.
        #[arg(long, requires = "to")]
        from: Option<String>,
        #[arg(long, requires = "from")]
        to: Option<String>,
    },
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// How many model outputs to post.
    #[arg(long, default_value_t = 200)]
    outputs: usize,
    /// Write the demo credentials (enrollment codes, API keys) to this JSON file.
    #[arg(long)]
    credentials: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("countersign-gate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("countersign-gate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn open_options(store: &StoreArgs, config: GateConfig) -> OpenOptions {
    OpenOptions {
        data_dir: store
            .data_dir
            .clone()
            .unwrap_or_else(server::default_data_dir),
        database_url: store.database_url.clone(),
        log_key: store.log_key.clone(),
        origin: store.origin.clone(),
        config,
    }
}

async fn open(store: &StoreArgs) -> anyhow::Result<Gate> {
    server::open_gate(&open_options(store, GateConfig::default())).await
}

const ADMIN: &str = "admin-cli";

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(&cli.store, args).await,
        Command::User(UserCommand::Create {
            name,
            role,
            authority,
        }) => {
            let gate = open(&cli.store).await?;
            let role: Role = role.parse()?;
            let created = gate.create_user(&name, role, authority, ADMIN).await?;
            println!("user {} ({role}, authority {authority})", created.user.name);
            println!("enrollment code: {}", created.enrollment_code);
            Ok(())
        }
        Command::User(UserCommand::EnrollCode { name }) => {
            let gate = open(&cli.store).await?;
            println!("{}", gate.new_enrollment_code(&name).await?);
            Ok(())
        }
        Command::Key(KeyCommand::Revoke { key_id, reason }) => {
            let gate = open(&cli.store).await?;
            let index = gate.revoke_key(&key_id, ADMIN, &reason).await?;
            println!("key {key_id} revoked at log index {index}");
            Ok(())
        }
        Command::Apikey(ApiKeyCommand::Create { kind, name }) => {
            let gate = open(&cli.store).await?;
            let kind: &'static str = if kind == "source" {
                "source"
            } else {
                "consumer"
            };
            let key = gate.create_api_key(kind, &name, ADMIN).await?;
            println!("{}", key.token);
            Ok(())
        }
        Command::Policy(PolicyCommand::Validate { file }) => {
            let text = read_policy(&file)?;
            let policy = countersign_policy::Policy::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!(
                "{}: valid (version {}, \"{}\")",
                file.display(),
                policy.version(),
                policy.name()
            );
            Ok(())
        }
        Command::Policy(PolicyCommand::Activate { file }) => {
            let text = read_policy(&file)?;
            let gate = open(&cli.store).await?;
            let version = gate
                .activate_policy(&text, ADMIN)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.message))?;
            println!("policy version {version} is active");
            Ok(())
        }
        Command::Policy(PolicyCommand::Rollback) => {
            let gate = open(&cli.store).await?;
            let version = gate.rollback_policy(ADMIN).await?;
            println!("policy version {version} is active again");
            Ok(())
        }
        Command::Policy(PolicyCommand::List) => {
            let gate = open(&cli.store).await?;
            for p in gate.list_policies().await? {
                println!(
                    "{}{:>4}  {}  {}  {}",
                    if p.active { "*" } else { " " },
                    p.version,
                    p.activated_at.to_rfc3339(),
                    &p.sha256[..12],
                    p.name
                );
            }
            Ok(())
        }
        Command::Demo(args) => {
            let gate = open(&cli.store).await?;
            countersign_gate::demo::seed(&gate, args.outputs, args.credentials.as_deref()).await
        }
        Command::Audit(AuditCommand::Export { dir, from, to }) => {
            let range = match (from, to) {
                (Some(from), Some(to)) => Some((rfc3339_ms(&from)?, rfc3339_ms(&to)?)),
                _ => None,
            };
            let gate = open(&cli.store).await?;
            let summary = gate.export_bundle_range(&dir, range).await?;
            println!(
                "exported {} entries, {} checkpoints, {} keys to {} (root {})",
                summary.entries,
                summary.checkpoints,
                summary.keys,
                dir.display(),
                summary.root_base64
            );
            Ok(())
        }
    }
}

fn rfc3339_ms(text: &str) -> anyhow::Result<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| anyhow::anyhow!("`{text}` is not an RFC 3339 time: {e}"))
}

/// The largest policy file read; real ones are a few kilobytes.
const MAX_POLICY_BYTES: u64 = 1024 * 1024;

fn read_policy(file: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Read as _;
    let shown = file.display();
    let opened = std::fs::File::open(file).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    // The length is checked on the bytes read, not on the metadata: a device or a pipe reports
    // none and would otherwise be read without end.
    let mut bytes = Vec::new();
    opened
        .take(MAX_POLICY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        anyhow::bail!("{shown}: a policy file is limited to 1 MiB");
    }
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{shown}: a policy file is UTF-8 text"))
}

async fn serve(store: &StoreArgs, args: ServeArgs) -> anyhow::Result<()> {
    init_tracing(args.json_logs);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
    let config = GateConfig {
        max_output_bytes: args.max_output_bytes,
        ..GateConfig::default()
    };
    let options = open_options(store, config);
    let gate = Arc::new(server::open_gate(&options).await?);
    let listener = std::net::TcpListener::bind(args.listen)
        .map_err(|e| anyhow::anyhow!("listening on {}: {e}", args.listen))?;
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(Tls { cert, key }),
        _ => None,
    };
    tracing::info!(
        listen = %listener.local_addr()?,
        backend = gate.db.backend(),
        tls = tls.is_some(),
        origin = %options.origin,
        "countersign-gate serving"
    );
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("listening on {}", listener.local_addr()?);
    server::serve(
        gate,
        listener,
        tls,
        Some(metrics),
        server::shutdown_signal(),
    )
    .await
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

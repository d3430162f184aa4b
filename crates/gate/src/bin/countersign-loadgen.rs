//! Load generator for the gate: starts a gate in-process on loopback (SQLite in a temporary
//! directory, or PostgreSQL) and drives it over HTTP the way sources and desks do, then prints
//! throughput and latency figures.
//!
//! The client runs in the same process as the gate, so on a small machine the figures include the
//! client's own CPU use (JSON encoding, Ed25519 signing, HTTP). That makes them a lower bound for
//! the gate alone, which is the honest direction for a target check.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

// Ingest allocates heavily (JSON values, canonical bytes); mimalloc measured faster than glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, ValueEnum};
use countersign_core::jws::{self, SigningKey};
use countersign_core::{Decision, DecisionKind, DecisionOutcome, V1, new_id};
use countersign_gate::api::{
    ClaimResponse, ClaimedItem, EnrollResponse, IngestResponse, IngestStatus, PushResponse,
};
use countersign_gate::server::{self, OpenOptions};
use countersign_gate::service::Role;
use countersign_gate::{Gate, GateConfig};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// The gate's test policy: `refer` goes to a human alone, large amounts need two approvals, low
/// confidence needs one, everything else is released automatically.
const POLICY: &str = include_str!("../../../../examples/policy/test.toml");

/// Authority of the reviewers the load generator enrolls: above every single-approval item.
const REVIEWER_AUTHORITY: f64 = 25_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Ingest,
    Review,
    Push,
}

/// Drives a Countersign gate over HTTP on loopback and reports throughput and latency.
#[derive(Debug, Parser)]
#[command(name = "countersign-loadgen", version)]
struct Args {
    /// Scenarios to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ingest,review,push"
    )]
    scenarios: Vec<Scenario>,
    /// PostgreSQL URL for the gate; without it the gate runs on SQLite in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// With --database-url: create a throwaway database per scenario on that server (the URL must
    /// allow CREATE DATABASE) and drop it afterwards, so scenarios do not see each other's data.
    #[arg(long, requires = "database_url")]
    fresh_database: bool,
    /// Outputs ingested before each scenario, untimed (auto lane, so they are released and never
    /// queue for review): the scenario then runs on a gate with a history instead of an empty
    /// database. An empty SQLite file measures more than a grown one in one respect: below
    /// 1 GiB every COMMIT that follows a b-tree rebalance scans the writer's whole page cache
    /// (BENCHMARKS.md); 360 000 outputs make about 1.2 GiB.
    #[arg(long, default_value_t = 0)]
    history_outputs: usize,
    /// ingest: outputs to post.
    #[arg(long, default_value_t = 20_000)]
    outputs: usize,
    /// ingest: outputs per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// ingest: concurrent clients.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// review: reviewer counts to run, each as its own round.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    reviewers: Vec<usize>,
    /// review: decisions per round (shared by the reviewers of the round).
    #[arg(long, default_value_t = 2_000)]
    review_decisions: usize,
    /// review: items another device holds on offline leases during the round, ahead of the
    /// reviewers' items in the queue (a team with laptops out in the field).
    #[arg(long, default_value_t = 0)]
    held_leases: usize,
    /// review: loops each reviewer starts per second, on a fixed schedule (an open loop); a
    /// loop's latency then counts from its scheduled start, so a slow gate cannot hide its
    /// queueing by delaying the next request. Without it every reviewer starts the next loop as
    /// soon as the last one ends, which measures saturation.
    #[arg(long)]
    review_pace: Option<f64>,
    /// review: write one CSV line per loop to `PATH-N` (N reviewers): reviewer, start (µs after
    /// the round began), claim, sign and push (µs). Shows whether slow loops come together, and
    /// when, which percentiles cannot.
    #[arg(long, value_name = "PATH")]
    loop_trace: Option<std::path::PathBuf>,
    /// push: decisions one device claims offline, signs and pushes.
    #[arg(long, default_value_t = 10_000)]
    push_decisions: usize,
    /// push: decisions per push request.
    #[arg(long, default_value_t = 500)]
    push_batch: usize,
    /// Time limit of each scenario's measured phase, in seconds; a scenario that reaches it stops
    /// and reports what it did.
    #[arg(long, default_value_t = 300)]
    time_limit: u64,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Log the gate's tracing events to stderr with this filter, e.g. `sqlx::query=debug` to
    /// time every SQL statement when profiling.
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: &'static str,
    cores: usize,
    results: Vec<ScenarioResult>,
}

#[derive(Debug, Serialize)]
struct ScenarioResult {
    scenario: String,
    /// Units completed in the measured phase (outputs or decisions).
    count: usize,
    unit: &'static str,
    seconds: f64,
    per_second: f64,
    /// False when the time limit stopped the scenario early.
    completed: bool,
    latencies: Vec<Latency>,
    /// Other timed phases (e.g. claiming and signing before a push), in seconds.
    phases: Vec<Phase>,
}

#[derive(Debug, Serialize)]
struct Latency {
    what: &'static str,
    samples: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Serialize)]
struct Phase {
    what: &'static str,
    seconds: f64,
}

impl Latency {
    fn of(what: &'static str, mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        Latency {
            what,
            samples: samples.len(),
            p50_ms: percentile_ms(&samples, 50.0),
            p99_ms: percentile_ms(&samples, 99.0),
            max_ms: samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        }
    }
}

/// Nearest-rank percentile of sorted samples, in milliseconds.
fn percentile_ms(sorted: &[Duration], pct: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

#[allow(clippy::cast_precision_loss)]
fn rate(count: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// A gate served on a loopback port for the length of one scenario.
struct RunningGate {
    gate: Arc<Gate>,
    base: String,
    http: reqwest::Client,
    source_token: String,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// (server admin URL, database name) of a throwaway PostgreSQL database to drop afterwards.
    throwaway: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl RunningGate {
    async fn start(args: &Args) -> anyhow::Result<RunningGate> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let (database_url, throwaway) = match &args.database_url {
            Some(url) if args.fresh_database => {
                let (db_url, name) = create_database(url).await?;
                (Some(db_url), Some((url.clone(), name)))
            }
            Some(url) => (Some(url.clone()), None),
            None => (None, None),
        };
        let options = OpenOptions {
            data_dir: dir.path().to_path_buf(),
            database_url,
            log_key: Some(dir.path().join("log-key")),
            origin: "loadgen.countersign/log".into(),
            config: GateConfig::default(),
        };
        let gate = Arc::new(server::open_gate(&options).await?);
        if gate.active_policy().is_none() {
            gate.activate_policy(POLICY, "loadgen").await?;
        }
        let source_token = gate
            .create_api_key("source", "scorer", "loadgen")
            .await?
            .token;
        let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let served = gate.clone();
        let server = tokio::spawn(async move {
            server::serve(served, listener, None, None, async {
                let _ = stopped.await;
            })
            .await
        });
        let running = RunningGate {
            gate,
            base,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .context("building the HTTP client")?,
            source_token,
            stop: Some(stop),
            server,
            throwaway,
            _dir: dir,
        };
        if args.history_outputs > 0 {
            let began = Instant::now();
            for (body, n) in encode_batches("history", args.history_outputs, 500, |_| Kind::Auto)? {
                running.ingest(body, n).await?;
            }
            // The background WAL checkpoint copies the history into the database file for a
            // few seconds more; the measured phase should not carry that.
            tokio::time::sleep(Duration::from_secs(5)).await;
            eprintln!(
                "history: {} outputs in {:.1} s, data directory {} MiB",
                args.history_outputs,
                began.elapsed().as_secs_f64(),
                directory_bytes(running._dir.path()) >> 20
            );
        }
        Ok(running)
    }

    async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.await.context("gate server task")??;
        if let Some((admin, name)) = self.throwaway.take() {
            drop_database(&admin, &name).await?;
        }
        Ok(())
    }

    /// Posts a JSON body and decodes a 200 answer; anything else is an error naming the status.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<T> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("POST {path}"))?;
        if !status.is_success() {
            bail!(
                "POST {path} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("decoding the answer to POST {path}"))
    }

    /// Posts pre-encoded outputs and checks that every one was accepted.
    async fn ingest(&self, body: Vec<u8>, expected: usize) -> anyhow::Result<()> {
        let response: IngestResponse = self
            .post("/v1/outputs", Some(&self.source_token), body)
            .await?;
        if response.results.len() != expected {
            bail!(
                "ingest answered {} results for {expected} outputs",
                response.results.len()
            );
        }
        if let Some(bad) = response
            .results
            .iter()
            .find(|r| r.status != IngestStatus::Accepted)
        {
            bail!(
                "output {:?} was not accepted: {:?}",
                bad.output_id,
                bad.error
            );
        }
        Ok(())
    }

    /// Creates a reviewer and enrolls a desk for them over the API.
    async fn desk(&self, name: &str) -> anyhow::Result<Desk> {
        let created = self
            .gate
            .create_user(name, Role::Reviewer, REVIEWER_AUTHORITY, "loadgen")
            .await?;
        let key = jws::generate_signing_key();
        let body = json!({
            "code": created.enrollment_code,
            "public_key": jws::public_jwk(&key.verifying_key()),
            "device_name": format!("{name}-laptop"),
        });
        let enrolled: EnrollResponse = self
            .post("/v1/enroll", None, serde_json::to_vec(&body)?)
            .await?;
        Ok(Desk {
            token: enrolled.token,
            device_id: enrolled.device_id,
            key_id: enrolled.key_id,
            key,
            seq: 0,
        })
    }

    async fn claim(
        &self,
        desk: &Desk,
        limit: u32,
        offline: bool,
    ) -> anyhow::Result<Vec<ClaimedItem>> {
        let body = serde_json::to_vec(&json!({"limit": limit, "offline": offline}))?;
        let response: ClaimResponse = self.post("/v1/claims", Some(&desk.token), body).await?;
        Ok(response.items)
    }

    /// Claims `count` items on offline leases, in claims of at most the gate's `max_claim`,
    /// stopping early at `deadline`.
    async fn claim_offline(
        &self,
        desk: &Desk,
        count: usize,
        deadline: Instant,
    ) -> anyhow::Result<Vec<ClaimedItem>> {
        let max_claim = self.gate.config.max_claim as usize;
        let mut claimed = Vec::with_capacity(count);
        while claimed.len() < count && Instant::now() < deadline {
            let want = (count - claimed.len()).min(max_claim);
            let items = self.claim(desk, u32::try_from(want)?, true).await?;
            if items.is_empty() {
                bail!(
                    "the queue ran dry after {} of {count} offline claims",
                    claimed.len()
                );
            }
            claimed.extend(items);
        }
        Ok(claimed)
    }

    /// Pushes signed decisions and checks that every one was applied.
    async fn push(&self, desk: &Desk, decisions: &[String]) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&json!({ "decisions": decisions }))?;
        let response: PushResponse = self.post("/v1/decisions", Some(&desk.token), body).await?;
        if response.results.len() != decisions.len() {
            bail!(
                "push answered {} results for {} decisions",
                response.results.len(),
                decisions.len()
            );
        }
        if let Some(bad) = response
            .results
            .iter()
            .find(|r| !matches!(r.outcome, Some(DecisionOutcome::Applied)))
        {
            bail!(
                "decision {} was not applied: {:?} {:?}",
                bad.position,
                bad.outcome,
                bad.error
            );
        }
        Ok(())
    }
}

/// Creates a database with a fresh name on the server at `admin_url` and returns its URL.
async fn create_database(admin_url: &str) -> anyhow::Result<(String, String)> {
    let name = format!("countersign_loadgen_{}", new_id().simple());
    let pool = sqlx::PgPool::connect(admin_url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .context("creating a throwaway database")?;
    pool.close().await;
    let (server, _) = admin_url
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .ok_or_else(|| anyhow!("the database URL must end in /DATABASE"))?;
    Ok((format!("{server}/{name}"), name))
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(admin_url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&pool)
        .await
        .with_context(|| format!("dropping throwaway database {name}"))?;
    pool.close().await;
    Ok(())
}

/// An enrolled device: its credential and signing key.
struct Desk {
    token: String,
    device_id: String,
    key_id: String,
    key: SigningKey,
    seq: u64,
}

impl Desk {
    /// Signs an approval of a claimed item, as the desk does on the reviewer's keystroke.
    fn approve(&mut self, claimed: &ClaimedItem) -> anyhow::Result<String> {
        self.seq += 1;
        let decision = Decision {
            v: V1,
            decision_id: new_id(),
            item_id: claimed.lease.item_id,
            item_version: claimed.lease.item_version,
            lease_id: claimed.lease.lease_id,
            lease_epoch: claimed.lease.epoch,
            evidence_sha256: claimed.evidence_sha256.clone(),
            kind: DecisionKind::Approve,
            corrections: Vec::new(),
            reason_codes: Vec::new(),
            comment: None,
            key_id: self.key_id.clone(),
            device_id: self.device_id.clone(),
            device_seq: self.seq,
            decided_at: chrono::Utc::now(),
        };
        jws::sign_decision(&decision, &self.key).map_err(|e| anyhow!("signing a decision: {e}"))
    }
}

/// Which lane an output is built to land in under [`POLICY`].
#[derive(Debug, Clone, Copy)]
enum Kind {
    Auto,
    LowConfidence,
    FourEyes,
    Refer,
}

impl Kind {
    /// A realistic mix: 75% auto, 15% low-confidence review, 5% four-eyes, 5% human-only.
    fn mixed(i: usize) -> Kind {
        match i % 20 {
            0 => Kind::Refer,
            1 => Kind::FourEyes,
            2..=4 => Kind::LowConfidence,
            _ => Kind::Auto,
        }
    }
}

/// Bytes of the files under `dir` (the SQLite database and its WAL, for the history report).
fn directory_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => directory_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A credit-scoring output shaped like the demo model's, with the fields the policy reads.
fn output(run: &str, i: usize, kind: Kind) -> Value {
    // Deterministic spread of values so that rows differ without a random number generator.
    let spread = (i.wrapping_mul(2_654_435_761) >> 7) % 1000;
    #[allow(clippy::cast_precision_loss)]
    let frac = spread as f64 / 1000.0;
    let (amount, confidence, decision) = match kind {
        Kind::Auto => (1_000 + (spread * 9) as i64, 0.8 + 0.19 * frac, "approve"),
        Kind::LowConfidence => (2_000 + (spread * 12) as i64, 0.5 + 0.19 * frac, "approve"),
        Kind::FourEyes => (16_000 + (spread * 30) as i64, 0.85 + 0.1 * frac, "approve"),
        Kind::Refer => (3_000 + (spread * 10) as i64, 0.6 + 0.3 * frac, "refer"),
    };
    let term = 12 + (spread % 5) as i64 * 12;
    let age = 20 + (spread % 50) as i64;
    json!({
        "v": 1,
        "output_id": format!("{run}-{i}"),
        "source": "scorer",
        "model": {"name": "credit-scorer", "version": "2.3.1"},
        "subject": format!("application-{run}-{i}"),
        "produced_at": "2026-11-23T10:00:00Z",
        "input": {
            "status_of_existing_checking_account": "0 <= ... < 200 DM",
            "duration_in_month": term,
            "credit_history": "existing credits paid back duly till now",
            "purpose": "car (new)",
            "credit_amount": amount,
            "savings_account_and_bonds": "... < 100 DM",
            "present_employment_since": "1 <= ... < 4 years",
            "installment_rate_in_percentage_of_disposable_income": 2,
            "personal_status_and_sex": "male : single",
            "age_in_years": age,
            "housing": "own",
            "job": "skilled employee / official",
            "foreign_worker": "yes"
        },
        "proposal": {"decision": decision, "amount": amount, "term_months": term},
        "outcome_schema": [
            {"name": "decision", "label": "Decision", "type": "choice", "values": ["approve", "decline", "refer"]},
            {"name": "amount", "label": "Amount (EUR)", "type": "integer", "min": 0, "max": 100000},
            {"name": "term_months", "label": "Term (months)", "type": "integer", "min": 1, "max": 120}
        ],
        "confidence": confidence,
        "score": confidence,
        "evidence": {
            "attributions": [
                {"feature": "status_of_existing_checking_account", "value": "0 <= ... < 200 DM", "weight": -0.31},
                {"feature": "duration_in_month", "value": term, "weight": -0.22},
                {"feature": "credit_amount", "value": amount, "weight": -0.18},
                {"feature": "credit_history", "value": "existing credits paid back duly till now", "weight": 0.12},
                {"feature": "savings_account_and_bonds", "value": "... < 100 DM", "weight": -0.09},
                {"feature": "age_in_years", "value": age, "weight": 0.04}
            ],
            "reason_codes": [
                {"code": "R-duration", "text": "Long duration raises the risk"},
                {"code": "R-checking", "text": "Low balance on the checking account"}
            ],
            "documents": [{"title": "Application summary", "text": "Applicant asks for a new car loan."}],
            "rationale": "Score driven by the checking account status and the loan duration."
        }
    })
}

/// Outputs encoded as request bodies of `batch` each, ready to post.
fn encode_batches(
    run: &str,
    count: usize,
    batch: usize,
    kind: impl Fn(usize) -> Kind,
) -> anyhow::Result<Vec<(Vec<u8>, usize)>> {
    let mut bodies = Vec::with_capacity(count.div_ceil(batch));
    let mut start = 0;
    while start < count {
        let end = (start + batch).min(count);
        let outputs: Vec<Value> = (start..end).map(|i| output(run, i, kind(i))).collect();
        bodies.push((serde_json::to_vec(&outputs)?, end - start));
        start = end;
    }
    Ok(bodies)
}

/// Ingests `count` single-approval review items (untimed set-up for the desk scenarios).
async fn preload_review_items(gate: &RunningGate, run: &str, count: usize) -> anyhow::Result<()> {
    for (body, n) in encode_batches(run, count, 500, |_| Kind::LowConfidence)? {
        gate.ingest(body, n).await?;
    }
    Ok(())
}

async fn run_ingest(args: &Args) -> anyhow::Result<ScenarioResult> {
    if args.batch == 0 || args.concurrency == 0 {
        bail!("--batch and --concurrency must be at least 1");
    }
    let gate = Arc::new(RunningGate::start(args).await?);
    let bodies = encode_batches("ingest", args.outputs, args.batch, Kind::mixed)?;
    let queue = Arc::new(std::sync::Mutex::new(bodies.into_iter()));
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.time_limit);
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..args.concurrency {
        let (gate, queue, done) = (gate.clone(), queue.clone(), done.clone());
        clients.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let next = queue
                    .lock()
                    .map_err(|_| anyhow!("queue lock poisoned"))?
                    .next();
                let Some((body, n)) = next else { break };
                let sent = Instant::now();
                gate.ingest(body, n).await?;
                latencies.push(sent.elapsed());
                done.fetch_add(n, Ordering::Relaxed);
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = clients.join_next().await {
        latencies.extend(joined??);
    }
    let elapsed = started.elapsed();
    let count = done.load(Ordering::Relaxed);
    Arc::into_inner(gate)
        .ok_or_else(|| anyhow!("gate still in use"))?
        .shutdown()
        .await?;
    Ok(ScenarioResult {
        scenario: format!(
            "ingest (batch {}, {} clients)",
            args.batch, args.concurrency
        ),
        count,
        unit: "outputs",
        seconds: elapsed.as_secs_f64(),
        per_second: rate(count, elapsed),
        completed: count == args.outputs,
        latencies: vec![Latency::of("ingest request", latencies)],
        phases: Vec::new(),
    })
}

async fn run_review(args: &Args, reviewers: usize) -> anyhow::Result<ScenarioResult> {
    if reviewers == 0 {
        bail!("--reviewers counts must be at least 1");
    }
    let period = match args.review_pace {
        Some(pace) if pace.is_finite() && pace > 0.0 => Some(Duration::from_secs_f64(1.0 / pace)),
        Some(pace) => {
            bail!("--review-pace must be a positive number of loops per second, not {pace}")
        }
        None => None,
    };
    let gate = Arc::new(RunningGate::start(args).await?);
    if args.held_leases > 0 {
        // Ingested first, so they come first in the queue's order.
        preload_review_items(&gate, "held", args.held_leases).await?;
        let holder = gate.desk("offline-holder").await?;
        let setup_deadline = Instant::now() + Duration::from_secs(args.time_limit);
        let held = gate
            .claim_offline(&holder, args.held_leases, setup_deadline)
            .await?;
        if held.len() < args.held_leases {
            bail!(
                "only {} of {} items could be held",
                held.len(),
                args.held_leases
            );
        }
    }
    preload_review_items(&gate, "review", args.review_decisions).await?;
    let mut desks = Vec::with_capacity(reviewers);
    for r in 0..reviewers {
        desks.push(gate.desk(&format!("reviewer-{r}")).await?);
    }
    let remaining = Arc::new(AtomicUsize::new(args.review_decisions));
    let deadline = Instant::now() + Duration::from_secs(args.time_limit);
    let started = Instant::now();
    let mut loops = JoinSet::new();
    for (r, mut desk) in desks.into_iter().enumerate() {
        let (gate, remaining) = (gate.clone(), remaining.clone());
        // Reviewers' schedules are staggered evenly over one period.
        let mut scheduled = period.map(|p| started + p.mul_f64(r as f64 / reviewers as f64));
        loops.spawn(async move {
            let (mut iterations, mut trace) = (Vec::new(), Vec::new());
            while Instant::now() < deadline
                && remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
            {
                if let Some(at) = scheduled {
                    tokio::time::sleep_until(at.into()).await;
                }
                let begin = Instant::now();
                let items = gate.claim(&desk, 1, false).await?;
                let claimed_at = Instant::now();
                let Some(item) = items.first() else {
                    bail!("the review queue ran dry before the round ended");
                };
                let signed = desk.approve(item)?;
                let push_begin = Instant::now();
                gate.push(&desk, &[signed]).await?;
                let end = Instant::now();
                trace.push((
                    r,
                    begin - started,
                    claimed_at - begin,
                    push_begin - claimed_at,
                    end - push_begin,
                ));
                iterations.push(end - scheduled.unwrap_or(begin));
                if let (Some(at), Some(p)) = (scheduled.as_mut(), period) {
                    *at += p;
                }
            }
            anyhow::Ok((iterations, trace))
        });
    }
    let (mut iterations, mut traces) = (Vec::new(), Vec::new());
    while let Some(joined) = loops.join_next().await {
        let (i, t) = joined??;
        iterations.extend(i);
        traces.extend(t);
    }
    let claims = traces.iter().map(|t| t.2).collect();
    let pushes = traces.iter().map(|t| t.4).collect();
    if let Some(path) = &args.loop_trace {
        traces.sort_by_key(|t| t.1);
        let mut csv = String::from("reviewer,start_us,claim_us,sign_us,push_us\n");
        for (reviewer, start, claim, sign, push) in &traces {
            csv.push_str(&format!(
                "{reviewer},{},{},{},{}\n",
                start.as_micros(),
                claim.as_micros(),
                sign.as_micros(),
                push.as_micros()
            ));
        }
        let mut name = path.as_os_str().to_owned();
        name.push(format!("-{reviewers}"));
        std::fs::write(&name, csv)
            .with_context(|| format!("writing {}", std::path::Path::new(&name).display()))?;
    }
    let elapsed = started.elapsed();
    let count = iterations.len();
    Arc::into_inner(gate)
        .ok_or_else(|| anyhow!("gate still in use"))?
        .shutdown()
        .await?;
    Ok(ScenarioResult {
        scenario: format!(
            "review loop ({reviewers} reviewer{}{}{})",
            if reviewers == 1 { "" } else { "s" },
            args.review_pace
                .map(|p| format!(", {p}/s each"))
                .unwrap_or_default(),
            if args.held_leases > 0 {
                format!(", {} held offline", args.held_leases)
            } else {
                String::new()
            }
        ),
        count,
        unit: "decisions",
        seconds: elapsed.as_secs_f64(),
        per_second: rate(count, elapsed),
        completed: count == args.review_decisions,
        latencies: vec![
            Latency::of("claim+sign+push", iterations),
            Latency::of("claim", claims),
            Latency::of("push", pushes),
        ],
        phases: Vec::new(),
    })
}

async fn run_push(args: &Args) -> anyhow::Result<ScenarioResult> {
    if args.push_batch == 0 {
        bail!("--push-batch must be at least 1");
    }
    let gate = RunningGate::start(args).await?;
    preload_review_items(&gate, "push", args.push_decisions).await?;
    let mut desk = gate.desk("offline-reviewer").await?;
    let deadline = Instant::now() + Duration::from_secs(args.time_limit);
    let started = Instant::now();
    let claimed = gate
        .claim_offline(&desk, args.push_decisions, deadline)
        .await?;
    let claim_time = started.elapsed();
    let signing = Instant::now();
    let signed = claimed
        .iter()
        .map(|item| desk.approve(item))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sign_time = signing.elapsed();
    let pushing = Instant::now();
    let mut pushed = 0;
    let mut latencies = Vec::new();
    for chunk in signed.chunks(args.push_batch) {
        if Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        gate.push(&desk, chunk).await?;
        latencies.push(sent.elapsed());
        pushed += chunk.len();
    }
    let push_time = pushing.elapsed();
    let total = started.elapsed();
    gate.shutdown().await?;
    Ok(ScenarioResult {
        scenario: format!("offline push (batch {})", args.push_batch),
        count: pushed,
        unit: "decisions",
        seconds: push_time.as_secs_f64(),
        per_second: rate(pushed, push_time),
        completed: pushed == args.push_decisions,
        latencies: vec![Latency::of("push request", latencies)],
        phases: vec![
            Phase {
                what: "claim (offline, chunks of max_claim)",
                seconds: claim_time.as_secs_f64(),
            },
            Phase {
                what: "sign",
                seconds: sign_time.as_secs_f64(),
            },
            Phase {
                what: "push",
                seconds: push_time.as_secs_f64(),
            },
            Phase {
                what: "claim+sign+push",
                seconds: total.as_secs_f64(),
            },
        ],
    })
}

fn print_table(report: &Report) {
    println!("backend: {}   cores: {}", report.backend, report.cores);
    println!(
        "{:<36} {:>9} {:>9} {:>12}  latency p50 / p99 / max (ms)",
        "scenario", "count", "seconds", "per second"
    );
    for r in &report.results {
        let mark = if r.completed { "" } else { " (time limit)" };
        println!(
            "{:<36} {:>9} {:>9.2} {:>12.0}  {}{mark}",
            r.scenario, r.count, r.seconds, r.per_second, r.unit
        );
        for l in &r.latencies {
            println!(
                "    {:<32} {:>9} samples  {:.2} / {:.2} / {:.2}",
                l.what, l.samples, l.p50_ms, l.p99_ms, l.max_ms
            );
        }
        for p in &r.phases {
            println!("    {:<32} {:>9.2} s", p.what, p.seconds);
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(filter) = &args.log {
        match tracing_subscriber::EnvFilter::try_new(filter) {
            Ok(filter) => tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init(),
            Err(e) => {
                eprintln!("countersign-loadgen: --log: {e}");
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = run(&args).await {
        eprintln!("countersign-loadgen: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    if let Some(url) = &args.database_url
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        bail!("--database-url must be a postgres:// URL (without it the gate runs on SQLite)");
    }
    let mut report = Report {
        backend: if args.database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        results: Vec::new(),
    };
    for scenario in &args.scenarios {
        match scenario {
            Scenario::Ingest => report.results.push(run_ingest(args).await?),
            Scenario::Review => {
                for &reviewers in &args.reviewers {
                    report.results.push(run_review(args, reviewers).await?);
                }
            }
            Scenario::Push => report.results.push(run_push(args).await?),
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

//! Benchmark of the supervisor queries on a gate whose SQLite log holds many decisions.
//!
//! Seeding writes, in multi-row statements through the gate's own storage, the rows a gate
//! would have written for each decision: the output, its item and item version (with the
//! served item), the lease, the signed decision (a real Ed25519 JWS) and its log entries
//! (`output_received`, `routed`, `decided` or `conflict`, with the Merkle tree's nodes), spread
//! over `--days` days. Release documents are not written (no query reads them). Then the gate's
//! own background fold turns the decisions into the supervision tables, and every supervisor
//! query is timed `--samples` times with varying parameters.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use countersign_core::jws::{self, SigningKey};
use countersign_core::merkle::{Frontier, leaf_hash};
use countersign_core::{
    AuditEntry, AuditEventKind, Decision, DecisionKind, Evidence, FieldEdit, Lane, ModelRef,
    Routing, ServedItem, V1, sha256_hex,
};
use countersign_gate::api::supervision::{
    DecisionQuery, InclusionBatchRequest, LeaseQuery, OverrideQuery, ReviewerQuery,
};
use countersign_gate::db::{Tx, ms_to_time, now_ms};
use countersign_gate::server::{self, OpenOptions};
use countersign_gate::service::{Principal, Role, User};
use countersign_gate::{Gate, GateConfig, on_tx};
use serde_json::{Value, json};
use sqlx::QueryBuilder;
use uuid::Uuid;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const POLICY: &str = include_str!("../../../../examples/policy/test.toml");
const DAY_MS: i64 = 86_400_000;
/// Items written per transaction while seeding.
const SEED_CHUNK: usize = 20_000;

/// Times the supervisor queries on an SQLite gate seeded with many logged decisions.
#[derive(Debug, Parser)]
#[command(name = "countersign-supervision-bench", version)]
struct Args {
    /// Logged decisions to seed.
    #[arg(long, default_value_t = 1_000_000)]
    decisions: usize,
    /// Reviewers (each with one desk) sharing them.
    #[arg(long, default_value_t = 50)]
    reviewers: usize,
    /// Model versions the outputs come from.
    #[arg(long, default_value_t = 5)]
    models: usize,
    /// Days the decisions are spread over, ending now.
    #[arg(long, default_value_t = 90)]
    days: i64,
    /// Items under an active lease (not decided yet), for the open-leases query.
    #[arg(long, default_value_t = 2_000)]
    open_leases: usize,
    /// Timed runs of each query.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Keep the database in this directory (created) instead of a temporary one.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// A tiny deterministic generator: the figures must not depend on the run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

struct Reviewer {
    user: User,
    device_id: String,
    key: SigningKey,
    key_id: String,
    seq: u64,
}

/// A `log_entries` row: index, bytes, kind, item, time.
type EntryRow = (i64, Vec<u8>, &'static str, Option<String>, i64);

/// The log as seeding appends to it.
struct Log {
    frontier: Frontier,
    entries: Vec<EntryRow>,
    nodes: Vec<(i64, i64, Vec<u8>)>,
}

impl Log {
    fn append(
        &mut self,
        kind: AuditEventKind,
        kind_name: &'static str,
        actor: &str,
        item_id: Option<Uuid>,
        at: i64,
        data: Value,
    ) -> anyhow::Result<u64> {
        let index = self.frontier.size();
        let entry = AuditEntry {
            v: V1,
            index,
            at: ms_to_time(at),
            kind,
            actor: actor.to_owned(),
            item_id,
            data,
        };
        let bytes = countersign_gate::canon::to_vec(&entry).map_err(|e| anyhow::anyhow!("{e}"))?;
        // As the gate writes them: interior nodes only, leaves are their entries' hashes.
        for (id, hash) in self.frontier.append(leaf_hash(&bytes)) {
            if id.level == 0 {
                continue;
            }
            self.nodes
                .push((i64::from(id.level), i64::try_from(id.index)?, hash.to_vec()));
        }
        self.entries.push((
            i64::try_from(index)?,
            bytes,
            kind_name,
            item_id.map(|i| i.to_string()),
            at,
        ));
        Ok(index)
    }

    async fn flush(&mut self, tx: &mut Tx) -> anyhow::Result<()> {
        let entries = std::mem::take(&mut self.entries);
        for chunk in entries.chunks(2000) {
            on_tx!(tx, conn => {
                let mut q = QueryBuilder::new("INSERT INTO log_entries (idx, entry, kind, item_id, at) ");
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(e.0).push_bind(e.1.clone()).push_bind(e.2).push_bind(e.3.clone()).push_bind(e.4);
                });
                q.build().execute(conn).await?;
            });
        }
        let nodes = std::mem::take(&mut self.nodes);
        for chunk in nodes.chunks(5000) {
            on_tx!(tx, conn => {
                let mut q = QueryBuilder::new("INSERT INTO log_nodes (level, idx, hash) ");
                q.push_values(chunk, |mut b, n| {
                    b.push_bind(n.0).push_bind(n.1).push_bind(n.2.clone());
                });
                q.build().execute(conn).await?;
            });
        }
        let size = i64::try_from(self.frontier.size())?;
        on_tx!(tx, conn => {
            sqlx::query("UPDATE log_head SET size = $1 WHERE id = 1").bind(size).execute(conn).await?;
        });
        Ok(())
    }
}

/// One row per table, for one seeded item.
#[derive(Default)]
struct Rows {
    outputs: Vec<[Value; 11]>,
    items: Vec<[Value; 13]>,
    versions: Vec<[Value; 7]>,
    leases: Vec<[Value; 10]>,
    decisions: Vec<[Value; 13]>,
}

async fn insert_rows<const N: usize>(
    tx: &mut Tx,
    head: &str,
    rows: &[[Value; N]],
) -> anyhow::Result<()> {
    for chunk in rows.chunks(30_000 / N) {
        on_tx!(tx, conn => {
            let mut q = QueryBuilder::new(head);
            q.push_values(chunk, |mut b, row| {
                for v in row {
                    match v {
                        Value::Null => { b.push_bind(None::<i64>); }
                        Value::Number(n) => match n.as_i64() {
                            Some(i) => { b.push_bind(i); }
                            None => { b.push_bind(n.as_f64().unwrap_or(0.0)); }
                        },
                        Value::String(s) => { b.push_bind(s.clone()); }
                        other => { b.push_bind(other.to_string()); }
                    }
                }
            });
            q.build().execute(conn).await?;
        });
    }
    Ok(())
}

impl Rows {
    async fn flush(&mut self, tx: &mut Tx) -> anyhow::Result<()> {
        insert_rows(tx, "INSERT INTO outputs (output_id, source, subject, model_name, model_version, body, body_sha256, received_at, lane, item_id, item_version) ", &std::mem::take(&mut self.outputs)).await?;
        insert_rows(tx, "INSERT INTO items (item_id, subject, current_version, lane, status, authority_required, approvals_required, escalation_level, due_at, received_at, outcome, active_lease_id, lease_expires_at) ", &std::mem::take(&mut self.items)).await?;
        insert_rows(tx, "INSERT INTO item_versions (item_id, version, output_id, routing, served, served_sha256, created_at) ", &std::mem::take(&mut self.versions)).await?;
        insert_rows(tx, "INSERT INTO leases (lease_id, item_id, item_version, epoch, user_id, device_id, leased_at, expires_at, state, offline) ", &std::mem::take(&mut self.leases)).await?;
        insert_rows(tx, "INSERT INTO decisions (decision_id, device_id, device_seq, jws_sha256, user_id, key_id, item_id, kind, outcome, outcome_code, log_index, received_at, item_version) ", &std::mem::take(&mut self.decisions)).await?;
        Ok(())
    }
}

fn routing(lane: Lane, rule: &str, amount: i64) -> Routing {
    Routing {
        policy_version: 1,
        rule: rule.to_owned(),
        lane,
        authority_required: f64::from(i32::try_from(amount).unwrap_or(0)),
        approvals_required: 1,
        sla_seconds: 4 * 3600,
        qa_sample_rate: 0.0,
    }
}

#[allow(clippy::too_many_lines)]
async fn seed(gate: &Gate, args: &Args) -> anyhow::Result<(Vec<Reviewer>, Vec<Uuid>)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = now_ms() - args.days * DAY_MS;
    let mut log = Log {
        frontier: Frontier::new(),
        entries: Vec::new(),
        nodes: Vec::new(),
    };
    let mut tx = gate.db.begin_write().await?;
    {
        let size = gate
            .log
            .size(&mut tx)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(size == 0, "the benchmark seeds an empty gate");
    }
    let mut reviewers = Vec::with_capacity(args.reviewers);
    for r in 0..args.reviewers {
        let user = User {
            user_id: Uuid::now_v7().to_string(),
            name: format!("reviewer-{r:03}"),
            role: if r % 10 == 9 {
                Role::Senior
            } else {
                Role::Reviewer
            },
            authority_limit: 25_000.0,
        };
        let key = jws::generate_signing_key();
        let key_id = jws::key_id(&key.verifying_key());
        let device_id = Uuid::now_v7().to_string();
        log.append(AuditEventKind::UserCreated, "user_created", "bench", None, start, json!({"user_id": user.user_id, "name": user.name, "role": user.role.as_str(), "authority_limit": user.authority_limit}))?;
        let enrolled = log.append(AuditEventKind::KeyEnrolled, "key_enrolled", &user.name, None, start, json!({"user_id": user.user_id, "device_id": device_id, "device_name": format!("{}-laptop", user.name), "key_id": key_id, "public_key": jws::public_jwk(&key.verifying_key())}))?;
        on_tx!(&mut tx, conn => {
            sqlx::query("INSERT INTO users (user_id, name, role, authority_limit, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&user.user_id).bind(&user.name).bind(user.role.as_str()).bind(user.authority_limit).bind(start)
                .execute(&mut *conn).await?;
            sqlx::query("INSERT INTO devices (device_id, user_id, name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&device_id).bind(&user.user_id).bind(format!("{}-laptop", user.name)).bind(start)
                .execute(&mut *conn).await?;
            sqlx::query("INSERT INTO device_keys (key_id, device_id, user_id, public_key, enrolled_at_index, status) VALUES ($1, $2, $3, $4, $5, 'active')")
                .bind(&key_id).bind(&device_id).bind(&user.user_id).bind(key.verifying_key().to_bytes().to_vec()).bind(i64::try_from(enrolled)?)
                .execute(&mut *conn).await?;
        });
        reviewers.push(Reviewer {
            user,
            device_id,
            key,
            key_id,
            seq: 0,
        });
    }
    log.flush(&mut tx).await?;
    tx.commit().await?;

    let span = args.days * DAY_MS;
    let total = args.decisions + args.open_leases;
    let mut sample_items = Vec::new();
    let mut rows = Rows::default();
    let mut tx = gate.db.begin_write().await?;
    for i in 0..total {
        let decided = i < args.decisions;
        let at = start + span * i64::try_from(i)? / i64::try_from(total)?;
        let received = at - 10 * 60_000 - i64::try_from(rng.below(50 * 60_000))?;
        let model = ModelRef {
            name: "credit-scorer".to_owned(),
            version: format!("{}.0", 1 + rng.below(args.models)),
        };
        let item_id = Uuid::now_v7();
        let output_id = format!("o-{i}");
        let subject = format!("APP-{i}");
        let amount = i64::try_from(1000 + rng.below(14_000))?;
        let human_only = rng.below(20) == 0;
        let lane = if human_only {
            Lane::HumanOnly
        } else {
            Lane::Review
        };
        let rule = if human_only {
            "human-only"
        } else {
            "low-confidence"
        };
        let routing = routing(lane, rule, amount);
        let proposal = json!({"decision": "approve", "amount": amount, "term_months": 24});
        let body = json!({
            "v": 1, "output_id": output_id, "source": "scorer", "model": model, "subject": subject,
            "produced_at": ms_to_time(received), "input": {"credit_amount": amount, "age_in_years": 35},
            "proposal": proposal, "confidence": 0.5, "score": 0.5,
            "evidence": {"attributions": [{"feature": "credit_amount", "value": amount, "weight": -0.4}], "reason_codes": [], "documents": []}
        });
        let body = String::from_utf8(
            countersign_gate::canon::value_to_vec(&body).map_err(|e| anyhow::anyhow!("{e}"))?,
        )?;
        let body_sha256 = sha256_hex(body.as_bytes());
        let served = ServedItem {
            v: V1,
            item_id,
            item_version: 1,
            output_id: output_id.clone(),
            source: "scorer".to_owned(),
            subject: subject.clone(),
            model: model.clone(),
            routing: routing.clone(),
            received_at: ms_to_time(received),
            due_at: ms_to_time(received + 4 * 3_600_000),
            input: serde_json::from_value(json!({"credit_amount": amount, "age_in_years": 35}))?,
            proposal: (!human_only)
                .then(|| serde_json::from_value(proposal.clone()))
                .transpose()?,
            confidence: (!human_only).then_some(0.5),
            score: (!human_only).then_some(0.5),
            outcome_schema: Vec::new(),
            evidence: Evidence::default(),
            protected_features: Vec::new(),
            allowed_reasons: Vec::new(),
        };
        let served_text = String::from_utf8(
            countersign_gate::canon::to_vec(&served).map_err(|e| anyhow::anyhow!("{e}"))?,
        )?;
        let served_sha256 = sha256_hex(served_text.as_bytes());
        log.append(AuditEventKind::OutputReceived, "output_received", "scorer", None, received, json!({"output_id": output_id, "source": "scorer", "subject": subject, "model": model, "body_sha256": body_sha256}))?;
        log.append(AuditEventKind::Routed, "routed", "gate", Some(item_id), received, json!({"output_id": output_id, "routing": routing, "item_version": 1, "evidence_sha256": served_sha256, "evaluation_error": null}))?;
        let r = rng.below(reviewers.len());
        let leased_at = at - 5 * 60_000;
        let lease_id = Uuid::now_v7();
        let (status, state, kind, outcome) = if !decided {
            ("pending", "active", None, None)
        } else {
            let roll = rng.below(100);
            let kind = if human_only || roll < 11 {
                DecisionKind::Correct
            } else if roll < 15 {
                DecisionKind::Escalate
            } else {
                DecisionKind::Approve
            };
            let conflict = rng.below(100) < 3;
            let status = if conflict {
                "pending"
            } else if kind == DecisionKind::Escalate {
                "escalated"
            } else {
                "released"
            };
            (
                status,
                if conflict { "withdrawn" } else { "decided" },
                Some(kind),
                Some(conflict),
            )
        };
        let expires_at = if decided {
            leased_at + 30 * 60_000
        } else {
            now_ms() + 3_600_000
        };
        let (active_lease, lease_expires) = if decided {
            (Value::Null, Value::Null)
        } else {
            (json!(lease_id.to_string()), json!(expires_at))
        };
        rows.outputs.push([
            json!(output_id),
            json!("scorer"),
            json!(subject),
            json!(model.name),
            json!(model.version),
            json!(body),
            json!(body_sha256),
            json!(received),
            json!(lane.as_str()),
            json!(item_id.to_string()),
            json!(1),
        ]);
        rows.items.push([
            json!(item_id.to_string()),
            json!(subject),
            json!(1),
            json!(lane.as_str()),
            json!(status),
            json!(amount),
            json!(1),
            json!(i64::from(kind == Some(DecisionKind::Escalate))),
            json!(received + 4 * 3_600_000),
            json!(received),
            if human_only {
                Value::Null
            } else {
                json!(proposal.to_string())
            },
            active_lease,
            lease_expires,
        ]);
        rows.versions.push([
            json!(item_id.to_string()),
            json!(1),
            json!(output_id),
            json!(serde_json::to_string(&routing)?),
            json!(served_text),
            json!(served_sha256),
            json!(received),
        ]);
        let reviewer = &mut reviewers[r];
        rows.leases.push([
            json!(lease_id.to_string()),
            json!(item_id.to_string()),
            json!(1),
            json!(1),
            json!(reviewer.user.user_id),
            json!(reviewer.device_id),
            json!(leased_at),
            json!(expires_at),
            json!(state),
            json!(i64::from(rng.below(4) == 0)),
        ]);
        if let (Some(kind), Some(conflict)) = (kind, outcome) {
            reviewer.seq += 1;
            let corrections = match kind {
                DecisionKind::Correct if human_only => vec![
                    FieldEdit {
                        field: "decision".into(),
                        from: Value::Null,
                        to: json!(if rng.below(3) == 0 {
                            "decline"
                        } else {
                            "approve"
                        }),
                    },
                    FieldEdit {
                        field: "amount".into(),
                        from: Value::Null,
                        to: json!(amount - i64::try_from(rng.below(2))? * 500),
                    },
                    FieldEdit {
                        field: "term_months".into(),
                        from: Value::Null,
                        to: json!(24),
                    },
                ],
                DecisionKind::Correct if rng.below(3) == 0 => vec![FieldEdit {
                    field: "term_months".into(),
                    from: json!(24),
                    to: json!(36),
                }],
                DecisionKind::Correct => vec![FieldEdit {
                    field: "amount".into(),
                    from: json!(amount),
                    to: json!(amount - 500),
                }],
                _ => Vec::new(),
            };
            let decision = Decision {
                v: V1,
                decision_id: Uuid::now_v7(),
                item_id,
                item_version: 1,
                lease_id,
                lease_epoch: 1,
                evidence_sha256: served_sha256.clone(),
                kind,
                corrections,
                reason_codes: if kind == DecisionKind::Approve {
                    Vec::new()
                } else {
                    vec!["affordability".to_owned()]
                },
                comment: None,
                key_id: reviewer.key_id.clone(),
                device_id: reviewer.device_id.clone(),
                device_seq: reviewer.seq,
                decided_at: ms_to_time(at - i64::try_from(1000 + rng.below(120_000))?),
            };
            let signed = jws::sign_decision(&decision, &reviewer.key)?;
            let result = if conflict {
                json!({"outcome": "conflict", "reason": "withdrawn"})
            } else {
                json!({"outcome": "applied"})
            };
            let (entry_kind, kind_name) = if conflict {
                (AuditEventKind::Conflict, "conflict")
            } else {
                (AuditEventKind::Decided, "decided")
            };
            let index = log.append(entry_kind, kind_name, &reviewer.user.name, Some(item_id), at, json!({"decision_id": decision.decision_id, "device_id": reviewer.device_id, "device_seq": reviewer.seq, "key_id": reviewer.key_id, "user_id": reviewer.user.user_id, "jws": signed, "result": result}))?;
            rows.decisions.push([
                json!(decision.decision_id.to_string()),
                json!(reviewer.device_id),
                json!(reviewer.seq),
                json!(sha256_hex(signed.as_bytes())),
                json!(reviewer.user.user_id),
                json!(reviewer.key_id),
                json!(item_id.to_string()),
                json!(kind.as_str()),
                json!(if conflict { "conflict" } else { "applied" }),
                if conflict {
                    json!("withdrawn")
                } else {
                    Value::Null
                },
                json!(index),
                json!(at),
                json!(1),
            ]);
            if i % (args.decisions / 1000).max(1) == 0 {
                sample_items.push(item_id);
            }
        }
        if (i + 1) % SEED_CHUNK == 0 || i + 1 == total {
            rows.flush(&mut tx).await?;
            log.flush(&mut tx).await?;
            tx.commit().await?;
            tx = gate.db.begin_write().await?;
            if (i + 1) % (SEED_CHUNK * 10) == 0 {
                eprintln!("seeded {} items", i + 1);
            }
        }
    }
    tx.commit().await?;
    Ok((reviewers, sample_items))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn day(ms: i64) -> String {
    ms_to_time(ms).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[allow(clippy::too_many_lines)]
async fn run(args: Args) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let options = OpenOptions {
        data_dir: dir.clone(),
        database_url: None,
        log_key: Some(dir.join("log-key")),
        origin: "bench.countersign/log".to_owned(),
        config: GateConfig::default(),
    };
    let gate = server::open_gate(&options).await?;
    let started = Instant::now();
    let (reviewers, items) = seed(&gate, &args).await.context("seeding")?;
    let seeded = started.elapsed();
    gate.activate_policy(POLICY, "bench")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let signed = gate
        .log
        .checkpoint(&gate.db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let folded_at = gate
        .fold_supervision()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let folded = started.elapsed();
    let facts: i64 = {
        let mut tx = gate.db.begin_read().await?;
        on_tx!(&mut tx, conn => {
            sqlx::query_scalar("SELECT COUNT(*) FROM decision_facts").fetch_one(conn).await?
        })
    };
    let db_bytes = std::fs::metadata(dir.join("gate.sqlite"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "seeded {} decisions ({} log entries) in {:.1} s; folded {facts} decisions in {:.1} s (log size {folded_at}); database {} MB",
        args.decisions,
        signed.checkpoint.size,
        seeded.as_secs_f64(),
        folded.as_secs_f64(),
        db_bytes / 1_000_000
    );

    let supervisor = Principal::Device {
        device_id: reviewers[0].device_id.clone(),
        user: User {
            user_id: "bench-supervisor".to_owned(),
            name: "bench-supervisor".to_owned(),
            role: Role::Supervisor,
            authority_limit: 0.0,
        },
    };
    let now = now_ms();
    let first_day = now - args.days * DAY_MS;
    let mut rng = Rng(42);
    let names: Vec<String> = reviewers.iter().map(|r| r.user.name.clone()).collect();
    let models: Vec<String> = (1..=args.models)
        .map(|v| format!("credit-scorer@{v}.0"))
        .collect();
    let random_day = |rng: &mut Rng| {
        first_day
            + i64::try_from(rng.below(usize::try_from(args.days).unwrap_or(1))).unwrap_or(0)
                * DAY_MS
    };

    println!(
        "{:<58} {:>9} {:>9} {:>9}",
        "query", "p50 ms", "p95 ms", "max ms"
    );
    macro_rules! time {
        ($name:expr, |$rng:ident| $call:expr) => {{
            let mut times = Vec::with_capacity(args.samples);
            for _ in 0..args.samples {
                let $rng = &mut rng;
                let t = Instant::now();
                let result = async { $call }.await;
                times.push(t.elapsed());
                if let Err(e) = result {
                    anyhow::bail!("{}: {e}", $name);
                }
            }
            times.sort();
            println!(
                "{:<58} {:>9.2} {:>9.2} {:>9.2}",
                $name,
                percentile(&times, 50.0).as_secs_f64() * 1000.0,
                percentile(&times, 95.0).as_secs_f64() * 1000.0,
                times.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
            );
        }};
    }
    time!("decisions: newest page (50)", |_r| gate
        .search_decisions(&supervisor, &DecisionQuery::default())
        .await);
    time!("decisions: by reviewer", |r| gate
        .search_decisions(
            &supervisor,
            &DecisionQuery {
                reviewer: Some(names[r.below(names.len())].clone()),
                ..Default::default()
            }
        )
        .await);
    time!("decisions: by model version", |r| gate
        .search_decisions(
            &supervisor,
            &DecisionQuery {
                model: Some(models[r.below(models.len())].clone()),
                ..Default::default()
            }
        )
        .await);
    time!("decisions: reviewer + kind=escalate + lane=review", |r| {
        gate.search_decisions(
            &supervisor,
            &DecisionQuery {
                reviewer: Some(names[r.below(names.len())].clone()),
                kind: Some("escalate".into()),
                lane: Some("review".into()),
                ..Default::default()
            },
        )
        .await
    });
    time!("decisions: conflicts", |_r| gate
        .search_decisions(
            &supervisor,
            &DecisionQuery {
                conflict: Some(true),
                ..Default::default()
            }
        )
        .await);
    time!("decisions: one day (random), 100 per page", |r| {
        let from = random_day(r);
        gate.search_decisions(
            &supervisor,
            &DecisionQuery {
                from: Some(day(from)),
                to: Some(day(from + DAY_MS)),
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
    });
    time!(
        "decisions: reviewer + model + kind=correct in a week",
        |r| {
            let from = random_day(r);
            gate.search_decisions(
                &supervisor,
                &DecisionQuery {
                    reviewer: Some(names[r.below(names.len())].clone()),
                    model: Some(models[r.below(models.len())].clone()),
                    kind: Some("correct".into()),
                    from: Some(day(from)),
                    to: Some(day(from + 7 * DAY_MS)),
                    ..Default::default()
                },
            )
            .await
        }
    );
    let deep = gate
        .search_decisions(
            &supervisor,
            &DecisionQuery {
                limit: Some(500),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .next_cursor;
    time!("decisions: next page after 500", |_r| gate
        .search_decisions(
            &supervisor,
            &DecisionQuery {
                cursor: deep.clone(),
                ..Default::default()
            }
        )
        .await);
    time!(
        format!("reviewers: all {}, {} days", names.len(), args.days),
        |_r| gate
            .reviewer_stats(
                &supervisor,
                &ReviewerQuery {
                    from: Some(day(first_day)),
                    ..Default::default()
                }
            )
            .await
    );
    time!("reviewers: one, 30 days, fast_seconds=10", |r| gate
        .reviewer_stats(
            &supervisor,
            &ReviewerQuery {
                reviewer: Some(names[r.below(names.len())].clone()),
                from: Some(day(now - 30 * DAY_MS)),
                fast_seconds: Some(10),
                ..Default::default()
            }
        )
        .await);
    time!(
        format!("override rate: all models, per day, {} days", args.days),
        |_r| gate
            .override_rates(
                &supervisor,
                &OverrideQuery {
                    from: Some(day(first_day)),
                    ..Default::default()
                }
            )
            .await
    );
    time!("override rate: one model, per hour, 7 days", |r| gate
        .override_rates(
            &supervisor,
            &OverrideQuery {
                model: Some(models[r.below(models.len())].clone()),
                from: Some(day(now - 7 * DAY_MS)),
                bucket: Some("hour".into()),
                ..Default::default()
            }
        )
        .await);
    time!("override rate: all models, per week, all time", |_r| gate
        .override_rates(
            &supervisor,
            &OverrideQuery {
                bucket: Some("week".into()),
                ..Default::default()
            }
        )
        .await);
    time!("corrected fields: all models, all time", |_r| gate
        .corrected_fields(&supervisor, &OverrideQuery::default())
        .await);
    time!("models: list with breaker windows", |_r| gate
        .model_statuses(&supervisor)
        .await);
    time!(format!("open leases: all ({})", args.open_leases), |_r| {
        gate.open_leases(&supervisor, &LeaseQuery::default()).await
    });
    time!("open leases: one reviewer", |r| gate
        .open_leases(
            &supervisor,
            &LeaseQuery {
                reviewer: Some(names[r.below(names.len())].clone()),
                ..Default::default()
            }
        )
        .await);
    time!("trail of an item (entries with proofs, keys)", |r| gate
        .item_trail(&supervisor, items[r.below(items.len())])
        .await);
    let size = signed.checkpoint.size;
    time!("batch inclusion: 1000 random entries", |r| {
        let indices: Vec<u64> = (0..1000).map(|_| r.next() % size).collect();
        gate.inclusion_batch(&InclusionBatchRequest { size, indices })
            .await
    });
    gate.db.close().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

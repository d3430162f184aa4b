//! A real gate on loopback (in-process, fresh SQLite file), review items for it, and the
//! gate-side audit the end-to-end tests end with: which decisions the gate applied, how often,
//! read from its audit log over HTTP (as an auditor would) and from its decisions table.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use countersign_core::{AuditEntry, AuditEventKind};
use countersign_gate::service::Role;
use countersign_gate::{Gate, GateConfig, server};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

/// The gate tests' policy: amounts up to 15 000 with confidence under 0.7 go to review with one
/// approval.
pub const TEST_POLICY: &str = include_str!("../../examples/policy/test.toml");

/// A gate serving HTTP on 127.0.0.1, stopped when dropped.
#[derive(Debug)]
pub struct LoopbackGate {
    pub gate: Arc<Gate>,
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    source_token: String,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl LoopbackGate {
    pub async fn start() -> LoopbackGate {
        let dir = tempfile::tempdir().expect("temp dir for the gate");
        let options = server::OpenOptions {
            data_dir: dir.path().to_path_buf(),
            database_url: None,
            log_key: Some(dir.path().join("log-key")),
            origin: "e2e.countersign/log".into(),
            config: GateConfig::default(),
        };
        let gate = Arc::new(server::open_gate(&options).await.expect("open the gate"));
        gate.activate_policy(TEST_POLICY, "e2e")
            .await
            .expect("activate the test policy");
        let source_token = gate
            .create_api_key("source", "scorer", "e2e")
            .await
            .expect("source API key")
            .token;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = gate.clone();
        tokio::spawn(async move {
            let _ = server::serve(served, listener, None, None, async {
                let _ = stopped.await;
            })
            .await;
        });
        LoopbackGate {
            gate,
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            source_token,
            stop: Some(stop),
            _dir: dir,
        }
    }

    /// Posts `count` model outputs that the policy sends to review (one approval, amounts
    /// 1 000..=15 000) and returns their item ids.
    pub async fn ingest_review_items(&self, count: usize) -> Vec<Uuid> {
        let run = Uuid::now_v7().simple().to_string();
        let mut items = Vec::with_capacity(count);
        let outputs: Vec<Value> = (0..count)
            .map(|i| review_output(&format!("{run}-{i}"), 1000 + (i % 15) as i64 * 1000))
            .collect();
        for batch in outputs.chunks(1000) {
            let response = self
                .http
                .post(format!("{}/v1/outputs", self.base))
                .bearer_auth(&self.source_token)
                .json(&batch)
                .send()
                .await
                .expect("post outputs");
            assert_eq!(response.status().as_u16(), 200, "ingest");
            let body: Value = response.json().await.expect("ingest response");
            for result in body["results"].as_array().expect("results") {
                let item = result["item_id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("output was not held for review: {result}"));
                items.push(item);
            }
        }
        items
    }

    /// Creates a reviewer (authority 25 000) and returns an enrollment code for them.
    pub async fn reviewer(&self, name: &str) -> String {
        self.gate
            .create_user(name, Role::Reviewer, 25_000.0, "e2e")
            .await
            .expect("create reviewer")
            .enrollment_code
    }

    /// Reads the whole audit log over HTTP and the decisions table.
    pub async fn audit(&self) -> GateAudit {
        let mut audit = GateAudit::default();
        let mut start = 0u64;
        loop {
            let response = self
                .http
                .get(format!(
                    "{}/v1/log/entries?start={start}&limit=1000",
                    self.base
                ))
                .send()
                .await
                .expect("get log entries");
            assert_eq!(response.status().as_u16(), 200, "log entries");
            let body: Value = response.json().await.expect("log entries body");
            let entries = body["entries"].as_array().expect("entries").clone();
            if entries.is_empty() {
                break;
            }
            for record in &entries {
                let entry: AuditEntry =
                    serde_json::from_value(record["entry"].clone()).expect("an audit entry");
                audit.log_size = audit.log_size.max(entry.index + 1);
                let decision = || -> Uuid {
                    entry.data["decision_id"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .expect("a decision entry names its decision")
                };
                match entry.kind {
                    AuditEventKind::Decided => audit
                        .decided
                        .entry(decision())
                        .or_default()
                        .push(entry.index),
                    AuditEventKind::Conflict | AuditEventKind::Rejected => {
                        audit
                            .not_applied
                            .push((entry.kind, decision(), entry.data.clone()));
                    }
                    AuditEventKind::Released => {
                        if let Some(item) = entry.item_id {
                            *audit.released.entry(item).or_default() += 1;
                        }
                    }
                    _ => {}
                }
            }
            start += entries.len() as u64;
        }
        let mut tx = self.gate.db.begin_read().await.expect("read transaction");
        let rows: Vec<(String, String, String, i64)> = countersign_gate::on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT decision_id, item_id, outcome, device_seq FROM decisions ORDER BY log_index")
                .fetch_all(conn)
                .await
                .expect("read decisions")
        });
        audit.rows = rows
            .into_iter()
            .map(|(decision_id, item_id, outcome, device_seq)| GateDecision {
                decision_id: decision_id.parse().expect("decision id"),
                item_id: item_id.parse().expect("item id"),
                outcome,
                device_seq,
            })
            .collect();
        audit
    }
}

impl Drop for LoopbackGate {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn review_output(id: &str, amount: i64) -> Value {
    json!({
        "v": 1,
        "output_id": format!("out-{id}"),
        "source": "scorer",
        "model": {"name": "credit-scorer", "version": "1.0"},
        "subject": format!("application-{id}"),
        "produced_at": "2026-11-23T10:00:00Z",
        "input": {"credit_amount": amount, "age_in_years": 35},
        "proposal": {"decision": "approve", "amount": amount, "term_months": 24},
        "outcome_schema": [
            {"name": "decision", "label": "Decision", "type": "choice", "values": ["approve", "decline", "refer"]},
            {"name": "amount", "label": "Amount (EUR)", "type": "integer", "min": 0, "max": 100000},
            {"name": "term_months", "label": "Term (months)", "type": "integer", "min": 1, "max": 120}
        ],
        "confidence": 0.55,
        "score": 0.55,
        "evidence": {
            "attributions": [{"feature": "credit_amount", "value": amount, "weight": -0.4}],
            "reason_codes": [{"code": "R-amount", "text": "High amount"}],
            "documents": [],
            "rationale": "Low confidence."
        }
    })
}

/// One row of the gate's decisions table.
#[derive(Debug, Clone)]
pub struct GateDecision {
    pub decision_id: Uuid,
    pub item_id: Uuid,
    pub outcome: String,
    pub device_seq: i64,
}

/// What the gate recorded about decisions.
#[derive(Debug, Default)]
pub struct GateAudit {
    pub log_size: u64,
    /// Decision id → the log indices of its `decided` entries (exactly one when applied once).
    pub decided: BTreeMap<Uuid, Vec<u64>>,
    /// `conflict` and `rejected` entries: (kind, decision id, data).
    pub not_applied: Vec<(AuditEventKind, Uuid, Value)>,
    /// Item id → number of `released` entries.
    pub released: BTreeMap<Uuid, u32>,
    pub rows: Vec<GateDecision>,
}

impl GateAudit {
    /// Every problem found, given the decisions that must have been applied (`must`) and the
    /// ones that may have been (`may`: saved on the desk, e.g. committed by a process killed
    /// before it printed that it had saved them). `items` are the items decided, one decision
    /// each. An empty list means: each decision in `must` applied exactly once, nothing else
    /// applied, nothing conflicting or rejected, each item released once.
    pub fn problems(
        &self,
        must: &BTreeSet<Uuid>,
        may: &BTreeSet<Uuid>,
        items: &BTreeSet<Uuid>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        for id in must {
            match self.decided.get(id).map(Vec::len) {
                None => problems.push(format!("decision {id} is missing from the gate's log")),
                Some(1) => {}
                Some(n) => problems.push(format!("decision {id} is logged as decided {n} times")),
            }
        }
        for (id, indices) in &self.decided {
            if !must.contains(id) && !may.contains(id) {
                problems.push(format!(
                    "decision {id} was applied (log {indices:?}) but the desk never saved it"
                ));
            } else if indices.len() > 1 && !must.contains(id) {
                problems.push(format!("decision {id} is logged as decided {indices:?}"));
            }
        }
        for (kind, id, data) in &self.not_applied {
            problems.push(format!("decision {id} was not applied: {kind:?} {data}"));
        }
        let mut applied_per_item: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        let mut rows_per_decision: BTreeMap<Uuid, u32> = BTreeMap::new();
        for row in &self.rows {
            *rows_per_decision.entry(row.decision_id).or_default() += 1;
            if row.outcome == "applied" {
                applied_per_item
                    .entry(row.item_id)
                    .or_default()
                    .push(row.decision_id);
                if !self.decided.contains_key(&row.decision_id) {
                    problems.push(format!(
                        "decision {} is applied in the table but has no log entry",
                        row.decision_id
                    ));
                }
            } else {
                problems.push(format!(
                    "decision {} has outcome {} on the gate",
                    row.decision_id, row.outcome
                ));
            }
        }
        for (id, n) in rows_per_decision {
            if n > 1 {
                problems.push(format!("decision {id} has {n} rows on the gate"));
            }
        }
        for item in items {
            match applied_per_item.get(item).map(Vec::as_slice) {
                Some([_]) => {}
                None | Some([]) => problems.push(format!("item {item} has no applied decision")),
                Some(many) => problems.push(format!("item {item} has decisions {many:?} applied")),
            }
            match self.released.get(item) {
                Some(1) => {}
                other => problems.push(format!("item {item} released {other:?} times")),
            }
        }
        for item in applied_per_item.keys() {
            if !items.contains(item) {
                problems.push(format!("item {item} was decided but not by this test"));
            }
        }
        problems
    }
}

/// Fails with the first problems found, and how many there were.
pub fn assert_no_problems(problems: &[String]) {
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(20).map(String::as_str).collect();
        panic!(
            "{} problem(s) on the gate:\n  {}",
            problems.len(),
            shown.join("\n  ")
        );
    }
}

//! A real gate on loopback for the tests: in-process, on a fresh SQLite file or a fresh
//! PostgreSQL database, reached over HTTP like any desk or source would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use countersign_core::jws::{self, SigningKey};
use countersign_core::{Decision, DecisionKind, FieldEdit, V1, new_id};
use countersign_gate::server;
use countersign_gate::service::Role;
use countersign_gate::{Gate, GateConfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

pub const TEST_POLICY: &str = include_str!("../../../../examples/policy/test.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestGate {
    pub gate: Arc<Gate>,
    pub base: String,
    pub http: reqwest::Client,
    pub source_token: String,
    pub consumer_token: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// A fresh PostgreSQL database for one test, from the server `make test` starts.
pub async fn fresh_postgres_url() -> String {
    let admin = std::env::var("COUNTERSIGN_TEST_POSTGRES").expect(
        "COUNTERSIGN_TEST_POSTGRES is not set: run the tests with `make test`, which starts a PostgreSQL server",
    );
    let name = format!("cs_test_{}", Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create test database");
    pool.close().await;
    let (base, _) = admin
        .rsplit_once('/')
        .expect("COUNTERSIGN_TEST_POSTGRES ends in /DATABASE");
    format!("{base}/{name}")
}

impl TestGate {
    pub async fn start(backend: Backend) -> TestGate {
        Self::start_with(backend, GateConfig::default(), None).await
    }

    pub async fn start_with(
        backend: Backend,
        config: GateConfig,
        database_url: Option<String>,
    ) -> TestGate {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match (backend, database_url) {
            (_, Some(url)) => Some(url),
            (Backend::Sqlite, None) => None,
            (Backend::Postgres, None) => Some(fresh_postgres_url().await),
        };
        let options = server::OpenOptions {
            data_dir: dir.path().to_path_buf(),
            database_url,
            log_key: Some(dir.path().join("log-key")),
            origin: "test.countersign/log".into(),
            config,
        };
        let gate = Arc::new(server::open_gate(&options).await.unwrap());
        if gate.active_policy().is_none() {
            gate.activate_policy(TEST_POLICY, "test").await.unwrap();
        }
        let source_token = gate
            .create_api_key("source", "scorer", "test")
            .await
            .unwrap()
            .token;
        let consumer_token = gate
            .create_api_key("consumer", "loans", "test")
            .await
            .unwrap()
            .token;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let served = gate.clone();
        let server = tokio::spawn(async move {
            server::serve(served, listener, None, None, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestGate {
            gate,
            base,
            http: reqwest::Client::new(),
            source_token,
            consumer_token,
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
        }
    }

    /// The data directory (the SQLite database, unless on PostgreSQL), for other gate
    /// processes sharing this gate's database.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The log key file, for other gate processes sharing this gate's database.
    pub fn gate_log_key_path(&self) -> std::path::PathBuf {
        self._dir.path().join("log-key")
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.post(path, token, serde_json::to_vec(body).unwrap())
            .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn ingest(&self, outputs: &[Value]) -> Vec<Value> {
        let (status, body) = self
            .post_json(
                "/v1/outputs",
                Some(&self.source_token),
                &Value::Array(outputs.to_vec()),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["results"].as_array().unwrap().clone()
    }

    /// Creates a user and enrolls a desk for them.
    pub async fn desk(&self, name: &str, role: Role, authority: f64) -> Desk {
        let created = self
            .gate
            .create_user(name, role, authority, "test")
            .await
            .unwrap();
        self.enroll(name, &created.enrollment_code).await
    }

    pub async fn enroll(&self, name: &str, code: &str) -> Desk {
        let key = jws::generate_signing_key();
        let (status, body) = self
            .post_json(
                "/v1/enroll",
                None,
                &json!({"code": code, "public_key": jws::public_jwk(&key.verifying_key()), "device_name": format!("{name}-laptop")}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        Desk {
            name: name.to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
            device_id: body["device_id"].as_str().unwrap().to_owned(),
            key_id: body["key_id"].as_str().unwrap().to_owned(),
            key,
            seq: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub async fn claim(&self, desk: &Desk, limit: u32) -> Vec<Value> {
        let (status, body) = self
            .post_json("/v1/claims", Some(&desk.token), &json!({"limit": limit}))
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    pub async fn push(&self, desk: &Desk, jws: &[String]) -> Vec<Value> {
        let (status, body) = self
            .post_json(
                "/v1/decisions",
                Some(&desk.token),
                &json!({"decisions": jws}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["results"].as_array().unwrap().clone()
    }

    pub async fn releases(&self) -> Vec<Value> {
        let (status, body) = self
            .get(
                "/v1/releases?after=0&limit=1000",
                Some(&self.consumer_token),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["releases"].as_array().unwrap().clone()
    }

    pub async fn count(&self, table: &str) -> i64 {
        let mut tx = self.gate.db.begin_read().await.unwrap();
        let sql = format!("SELECT COUNT(*) FROM {table}");
        countersign_gate::on_tx!(&mut tx, conn => {
            sqlx::query_scalar::<_, i64>(&sql).fetch_one(conn).await.unwrap()
        })
    }
}

pub struct Desk {
    pub name: String,
    pub token: String,
    pub device_id: String,
    pub key_id: String,
    pub key: SigningKey,
    pub seq: std::sync::atomic::AtomicU64,
}

impl Desk {
    /// Signs a decision on a claimed item (as returned by /v1/claims).
    pub fn decide(
        &self,
        claimed: &Value,
        kind: DecisionKind,
        corrections: Vec<FieldEdit>,
        reasons: &[&str],
    ) -> String {
        self.decide_at(claimed, kind, corrections, reasons, chrono::Utc::now())
    }

    /// [`Desk::decide`], signed as decided at `decided_at`.
    pub fn decide_at(
        &self,
        claimed: &Value,
        kind: DecisionKind,
        corrections: Vec<FieldEdit>,
        reasons: &[&str],
        decided_at: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let lease = &claimed["lease"];
        let decision = Decision {
            v: V1,
            decision_id: new_id(),
            item_id: lease["item_id"].as_str().unwrap().parse().unwrap(),
            item_version: u32::try_from(lease["item_version"].as_u64().unwrap()).unwrap(),
            lease_id: lease["lease_id"].as_str().unwrap().parse().unwrap(),
            lease_epoch: u32::try_from(lease["epoch"].as_u64().unwrap()).unwrap(),
            evidence_sha256: claimed["evidence_sha256"].as_str().unwrap().to_owned(),
            kind,
            corrections,
            reason_codes: reasons.iter().map(|r| (*r).to_owned()).collect(),
            comment: None,
            key_id: self.key_id.clone(),
            device_id: self.device_id.clone(),
            device_seq: seq,
            decided_at,
        };
        jws::sign_decision(&decision, &self.key).unwrap()
    }

    pub fn approve(&self, claimed: &Value) -> String {
        self.decide(claimed, DecisionKind::Approve, vec![], &[])
    }
}

/// A model output for the test policy: `amount` and `confidence` pick the lane.
pub fn output(id: &str, subject: &str, amount: i64, confidence: f64, decision: &str) -> Value {
    json!({
        "v": 1,
        "output_id": id,
        "source": "scorer",
        "model": {"name": "credit-scorer", "version": "1.0"},
        "subject": subject,
        "produced_at": "2026-11-23T10:00:00Z",
        "input": {"credit_amount": amount, "age_in_years": 35},
        "proposal": {"decision": decision, "amount": amount, "term_months": 24},
        "outcome_schema": [
            {"name": "decision", "label": "Decision", "type": "choice", "values": ["approve", "decline", "refer"]},
            {"name": "amount", "label": "Amount (EUR)", "type": "integer", "min": 0, "max": 100000},
            {"name": "term_months", "label": "Term (months)", "type": "integer", "min": 1, "max": 120}
        ],
        "confidence": confidence,
        "score": confidence,
        "evidence": {
            "attributions": [{"feature": "credit_amount", "value": amount, "weight": -0.4}, {"feature": "age_in_years", "value": 35, "weight": 0.1}],
            "reason_codes": [{"code": "R-amount", "text": "High amount"}],
            "documents": [{"title": "Summary", "text": "plain text"}],
            "rationale": "The amount is high."
        }
    })
}

pub fn outcome_of(result: &Value) -> String {
    result["outcome"]["outcome"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

/// Runs an async test body against both backends.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$gate:ident| $body:block) => {
        mod $name {
            use super::*;
            async fn run($gate: common::TestGate) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(common::TestGate::start(common::Backend::Sqlite).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(common::TestGate::start(common::Backend::Postgres).await).await;
            }
        }
    };
}

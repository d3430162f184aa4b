//! A real gate on loopback for the desk's tests: in-process, on a SQLite file in a directory the
//! test owns, so it can be stopped and started again on the same data and the same port. The
//! approach follows crates/gate/tests/common/mod.rs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use countersign_core::jws;
use countersign_desk::Desk;
use countersign_gate::service::Role;
use countersign_gate::{Gate, GateConfig, server};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const TEST_POLICY: &str = include_str!("../../../../examples/policy/test.toml");
pub const ORIGIN: &str = "test.countersign/log";

pub struct TestGate {
    pub gate: Arc<Gate>,
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub source_token: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// Makes the OS keyring (the real Secret Service under `make test`) the desk's key store.
pub fn keyring() {
    countersign_desk::use_os_keyring().expect(
        "these tests need a Secret Service: run them with `make test`, or under dbus-run-session with gnome-keyring unlocked",
    );
}

impl TestGate {
    /// Opens (or re-opens) the gate whose data is in `dir`, with the log key `log_key`, on
    /// `addr` (port 0 for any).
    pub async fn start_at(dir: &Path, log_key: &Path, addr: SocketAddr) -> TestGate {
        let options = server::OpenOptions {
            data_dir: dir.to_path_buf(),
            database_url: None,
            log_key: Some(log_key.to_path_buf()),
            origin: ORIGIN.into(),
            config: GateConfig::default(),
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
        let listener = std::net::TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
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
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            source_token,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub async fn start(dir: &Path) -> TestGate {
        Self::start_at(dir, &dir.join("log-key"), "127.0.0.1:0".parse().unwrap()).await
    }

    /// Stops serving and closes the database; in-flight requests finish first.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
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
        let results = body["results"].as_array().unwrap().clone();
        for r in &results {
            assert_ne!(r["status"], "rejected", "{r}");
        }
        results
    }

    /// A new user's one-time enrollment code.
    pub async fn user(&self, name: &str, role: Role, authority: f64) -> String {
        self.gate
            .create_user(name, role, authority, "test")
            .await
            .unwrap()
            .enrollment_code
    }

    /// A reviewer (authority 50 000) with a desk enrolled on "<name>-laptop" in a fresh directory.
    pub async fn reviewer_desk(&self, name: &str) -> (tempfile::TempDir, Desk) {
        let code = self.user(name, Role::Reviewer, 50_000.0).await;
        let dir = temp();
        let desk = Desk::enroll(dir.path(), &self.base, &code, &format!("{name}-laptop"))
            .await
            .unwrap();
        (dir, desk)
    }

    /// A supervisor's API token (enrolled with a throwaway key; supervisors do not sign here).
    pub async fn supervisor_token(&self, name: &str) -> String {
        let code = self.user(name, Role::Supervisor, 0.0).await;
        let key = jws::generate_signing_key();
        let (status, body) = self
            .post_json(
                "/v1/enroll",
                None,
                &json!({"code": code, "public_key": jws::public_jwk(&key.verifying_key()), "device_name": "supervisor"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Rows of the gate's `decisions` table for a device, by outcome.
    pub async fn decisions_of(&self, device_id: &str) -> Vec<(String, String)> {
        let mut tx = self.gate.db.begin_read().await.unwrap();
        countersign_gate::on_tx!(&mut tx, conn => {
            sqlx::query_as::<_, (String, String)>("SELECT decision_id, outcome FROM decisions WHERE device_id = $1 ORDER BY device_seq")
                .bind(device_id)
                .fetch_all(conn)
                .await
                .unwrap()
        })
    }

    /// How many audit log entries hold a given decision id (a decision applied twice would show
    /// up twice).
    pub async fn log_entries_naming(&self, decision_id: &str) -> i64 {
        let mut tx = self.gate.db.begin_read().await.unwrap();
        let pattern = format!("%{decision_id}%");
        countersign_gate::on_tx!(&mut tx, conn => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM log_entries WHERE kind = 'decided' AND CAST(entry AS TEXT) LIKE $1")
                .bind(&pattern)
                .fetch_one(conn)
                .await
                .unwrap()
        })
    }
}

/// A model output for the test policy: `amount`, `confidence` and `decision` pick the lane
/// (`refer` goes to a human alone, confidence below 0.7 to review, above 15 000 to four-eyes).
pub fn output(id: &str, subject: &str, amount: i64, confidence: f64, decision: &str) -> Value {
    json!({
        "v": 1,
        "output_id": id,
        "source": "scorer",
        "model": {"name": "credit-scorer", "version": "1.0"},
        "subject": subject,
        "produced_at": "2026-11-23T10:00:00Z",
        "input": {"credit_amount": amount, "age_in_years": 35, "personal_status_and_sex": "female"},
        "proposal": {"decision": decision, "amount": amount, "term_months": 24},
        "outcome_schema": [
            {"name": "decision", "label": "Decision", "type": "choice", "values": ["approve", "decline", "refer"]},
            {"name": "amount", "label": "Amount (EUR)", "type": "integer", "min": 0, "max": 100000},
            {"name": "term_months", "label": "Term (months)", "type": "integer", "min": 1, "max": 120}
        ],
        "confidence": confidence,
        "score": confidence,
        "evidence": {
            "attributions": [
                {"feature": "credit_amount", "value": amount, "weight": -0.4},
                {"feature": "age_in_years", "value": 35, "weight": 0.1},
                {"feature": "personal_status_and_sex", "value": "female", "weight": 0.0}
            ],
            "reason_codes": [{"code": "R-amount", "text": "High amount"}],
            "documents": [{"title": "Summary", "text": "<b>plain</b> text"}],
            "rationale": "The amount is high."
        }
    })
}

/// `n` review-lane outputs (low confidence) with subjects `{prefix}-{i}`.
pub fn review_outputs(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            output(
                &format!("{prefix}-out-{i}"),
                &format!("{prefix}-{i}"),
                5000 + i as i64,
                0.5,
                "approve",
            )
        })
        .collect()
}

pub fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

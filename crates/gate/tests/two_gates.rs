//! Two gate processes on one PostgreSQL database, claiming concurrently: no item is ever handed
//! to two reviewers, and decisions through either process land in one consistent log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{Backend, TestGate, output};
use countersign_gate::service::Role;
use serde_json::json;

struct GateProcess {
    child: Child,
    base: String,
}

impl Drop for GateProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_gate(
    database_url: &str,
    log_key: &std::path::Path,
    data_dir: &std::path::Path,
) -> GateProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_countersign-gate"))
        .args(["--database-url", database_url])
        .arg("--log-key")
        .arg(log_key)
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--origin",
            "test.countersign/log",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start countersign-gate");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from the gate: {line:?}"))
        .to_owned();
    GateProcess {
        child,
        base: format!("http://{addr}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gate_processes_never_hand_one_item_to_two_reviewers() {
    let url = common::fresh_postgres_url().await;
    // Set up through an in-process gate on the same database: policy, source, reviewers, items.
    let setup = TestGate::start_with(
        Backend::Postgres,
        countersign_gate::GateConfig::default(),
        Some(url.clone()),
    )
    .await;
    let items = 120;
    let outputs: Vec<_> = (0..items)
        .map(|i| output(&format!("o-{i}"), &format!("APP-{i}"), 1000, 0.5, "approve"))
        .collect();
    for chunk in outputs.chunks(60) {
        for r in setup.ingest(chunk).await {
            assert_eq!(r["lane"], "review");
        }
    }
    let mut desks = Vec::new();
    for i in 0..8 {
        desks.push(
            setup
                .desk(&format!("reviewer-{i}"), Role::Reviewer, 10_000.0)
                .await,
        );
    }
    let key_path = setup.gate_log_key_path();
    let dir = tempfile::tempdir().unwrap();
    let gates = [
        spawn_gate(&url, &key_path, &dir.path().join("a")),
        spawn_gate(&url, &key_path, &dir.path().join("b")),
    ];
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for (i, desk) in desks.iter().enumerate() {
        let base = gates[i % 2].base.clone();
        let token = desk.token.clone();
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let resp = http
                    .post(format!("{base}/v1/claims"))
                    .bearer_auth(&token)
                    .json(&json!({"limit": 3}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                let body: serde_json::Value = resp.json().await.unwrap();
                let claimed = body["items"].as_array().unwrap().clone();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed);
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    for task in tasks {
        for claimed in task.await.unwrap() {
            let item_id = claimed["lease"]["item_id"].as_str().unwrap().to_owned();
            assert!(
                seen.insert(item_id.clone()),
                "item {item_id} was handed out twice"
            );
            all.push(claimed);
        }
    }
    assert_eq!(seen.len(), items, "every item claimed exactly once");

    // Decisions pushed through both processes land in one log whose checkpoints agree.
    for (i, desk) in desks.iter().enumerate() {
        let mine: Vec<String> = all
            .iter()
            .filter(|c| c["lease"]["device_id"] == desk.device_id.as_str())
            .map(|c| desk.approve(c))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let resp = http
            .post(format!("{}/v1/decisions", gates[(i + 1) % 2].base))
            .bearer_auth(&desk.token)
            .json(&json!({"decisions": mine}))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = resp.json().await.unwrap();
        for r in body["results"].as_array().unwrap() {
            assert_eq!(r["outcome"]["outcome"], "applied", "{r}");
        }
    }
    assert_eq!(setup.count("releases").await, i64::try_from(items).unwrap());
    let mut checkpoints = Vec::new();
    for gate in &gates {
        let body: serde_json::Value = http
            .get(format!("{}/v1/log/checkpoint", gate.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        checkpoints.push((
            body["size"].as_u64().unwrap(),
            body["root"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(checkpoints[0], checkpoints[1], "both processes see one log");
    drop(gates);
    setup.stop().await;
}

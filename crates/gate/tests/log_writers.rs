//! The log stays one consistent RFC 6962 tree however its writers interleave: another process
//! appending between this gate's requests (an admin command on the same SQLite file), requests
//! abandoned after they appended, and many concurrent pushes sharing group commits and
//! checkpoints. Each scenario ends with an exported bundle that must verify, and with every
//! receipt a push returned proving its entry under a checkpoint the bundle holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{Backend, TestGate, outcome_of, output};
use countersign_core::AuditEventKind;
use countersign_core::bundle::{BundleFiles, verify_bundle};
use countersign_core::checkpoint::{NoteVerifier, verify_receipt};
use countersign_gate::log::WriteTx;
use countersign_gate::server;
use countersign_gate::service::Role;
use serde_json::{Value, json};

/// Exports the gate's log and verifies it as an auditor would; returns the checkpoint notes
/// the bundle holds.
async fn verified_bundle(g: &TestGate) -> HashSet<String> {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("bundle");
    g.gate.export_bundle(&dir).await.unwrap();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let (manifest, entries, checkpoints, keys) = (
        read("manifest.json"),
        read("entries.jsonl"),
        read("checkpoints.jsonl"),
        read("keys.jsonl"),
    );
    verify_bundle(
        &BundleFiles {
            manifest: &manifest,
            entries: &entries,
            checkpoints: &checkpoints,
            keys: &keys,
        },
        Some(&g.gate.log_public_key()),
    )
    .unwrap();
    String::from_utf8(checkpoints)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["checkpoint"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Every receipt proves its entry under its checkpoint, signed by the log key.
fn check_receipts(g: &TestGate, results: &[Value]) -> Vec<String> {
    let verifier = NoteVerifier::parse(&g.gate.log_public_key()).unwrap();
    let mut notes = Vec::new();
    for r in results {
        let receipt: countersign_core::checkpoint::Receipt =
            serde_json::from_value(r["receipt"].clone()).unwrap();
        let (_, entry) = leaf_of(g, receipt.leaf_index);
        verify_receipt(&receipt, &entry, &verifier, g.gate.log.origin()).unwrap();
        notes.push(receipt.checkpoint.clone());
    }
    notes
}

fn leaf_of(g: &TestGate, index: u64) -> (u64, Vec<u8>) {
    let db = g.gate.db.clone();
    let log = &g.gate.log;
    futures_lite_block(async move {
        let mut tx = db.begin_read().await.unwrap();
        log.entries(&mut tx, index, index + 1)
            .await
            .unwrap()
            .pop()
            .unwrap()
    })
}

/// Runs a future to completion from synchronous test code inside the multi-threaded runtime.
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_appending_between_requests_is_noticed() {
    let g = TestGate::start(Backend::Sqlite).await;
    let rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
    g.ingest(&[
        output("a-1", "S-1", 5000, 0.5, "approve"),
        output("a-2", "S-2", 5000, 0.5, "approve"),
    ])
    .await;
    let claimed = g.claim(&rita, 2).await;
    let first = g.push(&rita, &[rita.approve(&claimed[0])]).await;
    assert_eq!(outcome_of(&first[0]), "applied");

    // An admin command opens the same database file as a second process would, and appends.
    let admin = server::open_gate(&server::OpenOptions {
        data_dir: g.data_dir().to_path_buf(),
        database_url: None,
        log_key: Some(g.gate_log_key_path()),
        origin: "test.countersign/log".into(),
        config: countersign_gate::GateConfig::default(),
    })
    .await
    .unwrap();
    admin
        .create_user("alex", Role::Reviewer, 1000.0, "admin")
        .await
        .unwrap();
    admin
        .create_api_key("source", "other", "admin")
        .await
        .unwrap();
    admin.db.close().await;

    // The serving gate goes on from the log as the other process left it.
    let second = g.push(&rita, &[rita.approve(&claimed[1])]).await;
    assert_eq!(outcome_of(&second[0]), "applied");
    g.ingest(&[output("a-3", "S-3", 1000, 0.95, "approve")])
        .await;
    let mut notes = check_receipts(&g, &first);
    notes.extend(check_receipts(&g, &second));
    let bundled = verified_bundle(&g).await;
    for note in notes {
        assert!(
            bundled.contains(&note),
            "a receipt's checkpoint is missing from the bundle"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_abandoned_after_appending_leave_no_trace() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let g = TestGate::start(backend).await;
        let before = g.count("log_entries").await;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..24 {
            let gate = g.gate.clone();
            tasks.spawn(async move {
                if i % 3 == 0 {
                    // Appends two entries and goes away without committing.
                    let mut wtx = WriteTx::begin(&gate.db).await.unwrap();
                    for _ in 0..2 {
                        wtx.append(
                            &gate.log,
                            AuditEventKind::ApiKeyCreated,
                            "test",
                            None,
                            json!({"abandoned": i}),
                        )
                        .await
                        .unwrap();
                    }
                    drop(wtx);
                } else {
                    gate.create_api_key("consumer", &format!("c-{i}"), "test")
                        .await
                        .unwrap();
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert_eq!(g.count("log_entries").await, before + 16, "{backend:?}");
        verified_bundle(&g).await;
        let entries: Vec<String> = {
            let mut tx = g.gate.db.begin_read().await.unwrap();
            let size = g.gate.log.size(&mut tx).await.unwrap();
            g.gate
                .log
                .entries(&mut tx, 0, size)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, e)| String::from_utf8(e).unwrap())
                .collect()
        };
        assert!(
            !entries.iter().any(|e| e.contains("abandoned")),
            "{backend:?}: an abandoned append reached the log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_share_commits_and_every_receipt_is_covered() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let g = Arc::new(TestGate::start(backend).await);
        let outputs: Vec<Value> = (0..48)
            .map(|i| output(&format!("c-{i}"), &format!("S-{i}"), 5000, 0.5, "approve"))
            .collect();
        g.ingest(&outputs).await;
        let mut desks = Vec::new();
        for r in 0..8 {
            desks.push(g.desk(&format!("r{r}"), Role::Reviewer, 10_000.0).await);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for desk in desks {
            let g = g.clone();
            tasks.spawn(async move {
                let mut results = Vec::new();
                for _ in 0..6 {
                    let claimed = g.claim(&desk, 1).await;
                    let pushed = g.push(&desk, &[desk.approve(&claimed[0])]).await;
                    assert_eq!(outcome_of(&pushed[0]), "applied");
                    results.extend(pushed);
                }
                results
            });
        }
        let mut results = Vec::new();
        while let Some(done) = tasks.join_next().await {
            results.extend(done.unwrap());
        }
        assert_eq!(results.len(), 48);
        let notes = check_receipts(&g, &results);
        let bundled = verified_bundle(&g).await;
        for note in notes {
            assert!(
                bundled.contains(&note),
                "{backend:?}: a receipt's checkpoint is not stored"
            );
        }
        // Consumers receive exactly the document the `released` entry logs, at its index.
        let releases = g.releases().await;
        assert_eq!(releases.len(), 48, "{backend:?}");
        for record in &releases {
            let seq = record["release_seq"].as_u64().unwrap();
            let (_, entry) = leaf_of(&g, seq);
            let entry: Value = serde_json::from_slice(&entry).unwrap();
            assert_eq!(entry["kind"], "released");
            assert_eq!(entry["data"], record["release"], "{backend:?}");
            assert_eq!(record["release"]["release_seq"], seq);
        }
    }
}

/// The log stores no leaf nodes: a process that has cached nothing derives the leaves it needs
/// from the entries, and its roots and proofs are those of a tree built from the entries alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_process_proves_from_the_entries_without_stored_leaves() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(common::fresh_postgres_url().await),
        };
        let g = TestGate::start_with(
            backend,
            countersign_gate::GateConfig::default(),
            database_url.clone(),
        )
        .await;
        let rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
        let outputs: Vec<Value> = (0..7)
            .map(|i| output(&format!("f-{i}"), &format!("S-{i}"), 5000, 0.5, "approve"))
            .collect();
        g.ingest(&outputs).await;
        let claimed = g.claim(&rita, 3).await;
        let approvals: Vec<String> = claimed.iter().map(|c| rita.approve(c)).collect();
        g.push(&rita, &approvals).await;
        assert_eq!(
            g.count("log_nodes WHERE level = 0").await,
            0,
            "{backend:?}: leaf nodes were stored"
        );

        let fresh = server::open_gate(&server::OpenOptions {
            data_dir: g.data_dir().to_path_buf(),
            database_url,
            log_key: Some(g.gate_log_key_path()),
            origin: "test.countersign/log".into(),
            config: countersign_gate::GateConfig::default(),
        })
        .await
        .unwrap();
        let mut tx = fresh.db.begin_read().await.unwrap();
        let size = fresh.log.size(&mut tx).await.unwrap();
        assert!(size > 20, "{backend:?}: only {size} entries");
        let mut expected = countersign_core::merkle::MemoryTree::new();
        for (_, entry) in fresh.log.entries(&mut tx, 0, size).await.unwrap() {
            expected.append(countersign_core::merkle::leaf_hash(&entry));
        }
        // Odd and even sizes, so that roots and proofs need leaves on both sides.
        for at in [1, 2, 3, size / 2, size - 1, size] {
            assert_eq!(
                fresh.log.root_at(&mut tx, at).await.unwrap(),
                expected.root_at(at).unwrap(),
                "{backend:?}: root at {at}"
            );
            for index in [0, at / 2, at - 1] {
                assert_eq!(
                    fresh.log.inclusion_proof(&mut tx, index, at).await.unwrap(),
                    expected.inclusion_proof(index, at).unwrap(),
                    "{backend:?}: inclusion of {index} in {at}"
                );
            }
            assert_eq!(
                fresh
                    .log
                    .consistency_proof(&mut tx, at, size)
                    .await
                    .unwrap(),
                expected.consistency_proof(at, size).unwrap(),
                "{backend:?}: consistency of {at} with {size}"
            );
        }
        drop(tx);
        fresh.db.close().await;
        g.stop().await;
    }
}

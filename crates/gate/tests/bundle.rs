//! A real gate's audit-bundle export verifies with `countersign_core::bundle`, and any damage
//! to the exported files is caught and pinned to the entry (or range of entries) it touches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Backend, TestGate, outcome_of, output};
use countersign_core::bundle::{BundleError, BundleFiles, BundleReport, verify_bundle};
use countersign_core::{DecisionKind, FieldEdit};
use countersign_gate::service::Role;
use serde_json::{Value, json};

/// The four files as read from an export directory.
#[derive(Clone)]
struct Files {
    manifest: Vec<u8>,
    entries: Vec<u8>,
    checkpoints: Vec<u8>,
    keys: Vec<u8>,
}

impl Files {
    fn read(dir: &Path) -> Files {
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        Files {
            manifest: read("manifest.json"),
            entries: read("entries.jsonl"),
            checkpoints: read("checkpoints.jsonl"),
            keys: read("keys.jsonl"),
        }
    }

    fn verify(&self, log_key: &str) -> Result<BundleReport, BundleError> {
        verify_bundle(
            &BundleFiles {
                manifest: &self.manifest,
                entries: &self.entries,
                checkpoints: &self.checkpoints,
                keys: &self.keys,
            },
            Some(log_key),
        )
    }

    /// (offset, length) of each line of entries.jsonl, without its newline.
    fn entry_spans(&self) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let mut start = 0;
        for (i, &b) in self.entries.iter().enumerate() {
            if b == b'\n' {
                spans.push((start, i - start));
                start = i + 1;
            }
        }
        spans
    }
}

async fn push_one(g: &TestGate, desk: &common::Desk, jws: String) -> String {
    let results = g.push(desk, &[jws]).await;
    outcome_of(&results[0])
}

async fn checkpoint(g: &TestGate) {
    g.gate.log.checkpoint(&g.gate.db).await.unwrap();
}

/// Drives the gate through every kind of event a bundle holds; returns the number of signed
/// decisions pushed.
async fn mixed_workload(g: &TestGate) -> u64 {
    let results = g
        .ingest(&[
            output("o-auto", "APP-1", 3000, 0.95, "approve"),
            output("o-approve", "APP-2", 5000, 0.5, "approve"),
            output("o-correct", "APP-3", 6000, 0.5, "approve"),
            output("o-human", "APP-4", 4000, 0.9, "refer"),
            output("o-escalate", "APP-5", 12_000, 0.5, "approve"),
            output("o-withdraw", "APP-6", 5000, 0.5, "approve"),
            output("o-supersede", "APP-7", 5000, 0.5, "approve"),
        ])
        .await;
    let lanes: Vec<&str> = results
        .iter()
        .map(|r| r["lane"].as_str().unwrap())
        .collect();
    assert_eq!(
        lanes,
        [
            "auto",
            "review",
            "review",
            "human_only",
            "review",
            "review",
            "review"
        ]
    );
    let rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
    let rob = g.desk("rob", Role::Reviewer, 15_000.0).await;
    let sam = g.desk("sam", Role::Senior, 100_000.0).await;
    let sue = g.desk("sue", Role::Supervisor, 0.0).await;
    checkpoint(g).await;

    let claimed = g.claim(&rita, 10).await;
    assert_eq!(claimed.len(), 5, "everything within rita's authority");
    let by_output = |id: &str| {
        claimed
            .iter()
            .find(|c| c["item"]["output_id"] == id)
            .unwrap()
            .clone()
    };
    let mut decisions = 0;

    assert_eq!(
        push_one(g, &rita, rita.approve(&by_output("o-approve"))).await,
        "applied"
    );
    decisions += 1;
    let correction = vec![FieldEdit {
        field: "amount".into(),
        from: json!(6000),
        to: json!(4500),
    }];
    let correct = rita.decide(
        &by_output("o-correct"),
        DecisionKind::Correct,
        correction,
        &["affordability"],
    );
    assert_eq!(push_one(g, &rita, correct).await, "applied");
    decisions += 1;

    // human_only: approving a withheld proposal is rejected; a full human outcome applies.
    let human = by_output("o-human");
    assert_eq!(push_one(g, &rita, rita.approve(&human)).await, "rejected");
    let edits = [
        ("decision", json!("decline")),
        ("amount", json!(0)),
        ("term_months", json!(12)),
    ]
    .into_iter()
    .map(|(field, to)| FieldEdit {
        field: field.into(),
        from: Value::Null,
        to,
    })
    .collect();
    let decide = rita.decide(&human, DecisionKind::Correct, edits, &["affordability"]);
    assert_eq!(push_one(g, &rita, decide).await, "applied");
    decisions += 2;
    checkpoint(g).await;

    // A supervisor withdraws a lease: the reviewer's decision made offline conflicts.
    let withdrawn = by_output("o-withdraw");
    let lease_id = withdrawn["lease"]["lease_id"].as_str().unwrap();
    let (status, body) = g
        .post_json(
            &format!("/v1/leases/{lease_id}/withdraw?reason=audit"),
            Some(&sue.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        push_one(g, &rita, rita.approve(&withdrawn)).await,
        "conflict"
    );
    decisions += 1;

    // A newer output supersedes a held item.
    let results = g
        .ingest(&[output("o-supersede-2", "APP-7", 5500, 0.5, "approve")])
        .await;
    assert_eq!(results[0]["item_version"], 2);
    let superseded = by_output("o-supersede");
    assert_eq!(
        push_one(g, &rita, rita.approve(&superseded)).await,
        "conflict"
    );
    decisions += 1;

    // Escalation to a senior, who approves.
    let claimed = g.claim(&rob, 5).await;
    let escalated = claimed
        .iter()
        .find(|c| c["item"]["output_id"] == "o-escalate")
        .unwrap();
    let escalate = rob.decide(escalated, DecisionKind::Escalate, vec![], &["needs-senior"]);
    assert_eq!(push_one(g, &rob, escalate).await, "applied");
    let claimed = g.claim(&sam, 5).await;
    let escalated = claimed
        .iter()
        .find(|c| c["item"]["output_id"] == "o-escalate")
        .unwrap();
    assert_eq!(push_one(g, &sam, sam.approve(escalated)).await, "applied");
    decisions += 2;
    checkpoint(g).await;

    // A key is revoked while a decision it signed is still in the outbox.
    g.ingest(&[output("o-revoked", "APP-8", 2000, 0.5, "approve")])
        .await;
    let claimed = g.claim(&rita, 5).await;
    let pending = claimed
        .iter()
        .find(|c| c["item"]["output_id"] == "o-revoked")
        .unwrap();
    let late = rita.approve(pending);
    g.gate
        .revoke_key(&rita.key_id, "admin", "laptop stolen")
        .await
        .unwrap();
    assert_eq!(push_one(g, &rita, late).await, "rejected");
    decisions += 1;
    g.ingest(&[output("o-auto-2", "APP-9", 1000, 0.95, "approve")])
        .await;
    decisions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_bundle_verifies_and_every_tampering_is_caught() {
    let g = TestGate::start(Backend::Sqlite).await;
    let decisions = mixed_workload(&g).await;
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("bundle");
    let summary = g.gate.export_bundle(&dir).await.unwrap();
    let log_key = g.gate.log_public_key();
    assert_eq!(
        std::fs::read_to_string(dir.join("log-key.vkey"))
            .unwrap()
            .trim(),
        log_key
    );

    let files = Files::read(&dir);
    let report = files.verify(&log_key).unwrap();
    assert_eq!(report.entries, summary.entries);
    assert_eq!(report.size, summary.entries);
    assert_eq!(report.checkpoints, summary.checkpoints);
    assert!(report.checkpoints >= 4, "{report:?}");
    assert_eq!(report.keys, summary.keys);
    assert_eq!(report.keys, 4);
    assert_eq!(report.decisions, decisions);
    assert_eq!(report.origin, "test.countersign/log");
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(report.root),
        summary.root_base64
    );
    let keys: Vec<Value> = files
        .keys
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(
        keys.iter().filter(|k| k["status"] == "revoked").count(),
        1,
        "{keys:?}"
    );

    // One flipped byte in the first, middle and last entry, and in a decision entry.
    let spans = files.entry_spans();
    assert_eq!(spans.len() as u64, report.entries);
    let decision_index = spans
        .iter()
        .position(|&(start, len)| {
            let entry: Value = serde_json::from_slice(&files.entries[start..start + len]).unwrap();
            entry["kind"] == "decided"
        })
        .unwrap();
    for index in [0, spans.len() / 2, spans.len() - 1, decision_index] {
        let (start, len) = spans[index];
        let mut tampered = files.clone();
        tampered.entries[start + len / 2] ^= 0x01;
        let err = tampered.verify(&log_key).unwrap_err();
        let (first, last) = err
            .entry_range()
            .unwrap_or_else(|| panic!("entry {index}: {err}"));
        let index = index as u64;
        assert!(first <= index && index <= last, "entry {index}: {err}");
        assert!(err.to_string().starts_with("entries.jsonl line"), "{err}");
    }

    // A changed signature in a decision entry is pinned to that very entry.
    let (start, len) = spans[decision_index];
    let line = &files.entries[start..start + len];
    let jws_at = line.windows(7).position(|w| w == b"\"jws\":\"").unwrap() + 7;
    let dot = jws_at + line[jws_at..].iter().rposition(|&b| b == b'.').unwrap();
    let mut tampered = files.clone();
    let at = start + dot + 20;
    tampered.entries[at] = if tampered.entries[at] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let err = tampered.verify(&log_key).unwrap_err();
    assert_eq!(
        err.entry_range(),
        Some((decision_index as u64, decision_index as u64)),
        "{err}"
    );
    assert!(err.to_string().contains("does not verify"), "{err}");

    // An entry removed.
    let removed = spans.len() / 3;
    let (start, len) = spans[removed];
    let mut tampered = files.clone();
    tampered.entries.drain(start..=start + len);
    let err = tampered.verify(&log_key).unwrap_err();
    assert_eq!(
        err.entry_range(),
        Some((removed as u64, removed as u64)),
        "{err}"
    );

    // A checkpoint tampered with.
    let mut tampered = files.clone();
    let mut lines: Vec<Value> = files
        .checkpoints
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let note = lines[1]["checkpoint"].as_str().unwrap().to_owned();
    let mut body: Vec<String> = note.split('\n').map(str::to_owned).collect();
    body[2] = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    lines[1]["checkpoint"] = json!(body.join("\n"));
    tampered.checkpoints = lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let err = tampered.verify(&log_key).unwrap_err();
    assert!(
        matches!(err, BundleError::Checkpoint { line: 2, .. }),
        "{err:?}"
    );

    // keys.jsonl: a key attributed to someone else, and a key left out.
    let mut tampered = files.clone();
    let mut changed = keys.clone();
    changed[0]["user"] = json!("mallory");
    tampered.keys = changed
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let err = tampered.verify(&log_key).unwrap_err();
    assert!(matches!(err, BundleError::Key { line: 1, .. }), "{err:?}");
    let mut tampered = files.clone();
    tampered.keys = keys[1..]
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let err = tampered.verify(&log_key).unwrap_err();
    assert!(matches!(err, BundleError::Keys(_)), "{err:?}");

    // The bundle proves nothing against another gate's key.
    let other = countersign_core::checkpoint::NoteSigner::generate("test.countersign/log")
        .unwrap()
        .verifier()
        .to_vkey();
    assert!(matches!(
        files.verify(&other),
        Err(BundleError::Manifest(_))
    ));
    g.stop().await;
}

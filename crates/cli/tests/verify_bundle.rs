//! `countersign verify-bundle` on a bundle a real gate exported after a small mixed workload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;
use countersign_core::jws;
use countersign_core::{Decision, DecisionKind, V1, new_id};
use countersign_gate::api::{ClaimRequest, EnrollRequest};
use countersign_gate::server::{OpenOptions, open_gate};
use countersign_gate::service::Role;
use serde_json::json;

const POLICY: &str = r#"
version = 1
name = "bundle test"
[[reasons]]
code = "ok"
text = "fine"
[[rules]]
id = "review-low"
when = 'confidence < 0.7'
lane = "review"
sla = "1h"
[[rules]]
id = "default"
when = 'true'
lane = "auto"
"#;

fn output(i: usize, confidence: f64) -> serde_json::Value {
    json!({
        "v": 1, "output_id": format!("o-{i}"), "source": "scorer",
        "model": {"name": "m", "version": "1"}, "subject": format!("S-{i}"),
        "produced_at": "2026-11-23T10:00:00Z", "input": {"x": i},
        "proposal": {"decision": "approve"}, "confidence": confidence
    })
}

async fn export_bundle(dir: &std::path::Path) -> String {
    let gate = open_gate(&OpenOptions {
        data_dir: dir.join("gate"),
        database_url: None,
        log_key: None,
        origin: "bundle.test/log".into(),
        config: countersign_gate::GateConfig::default(),
    })
    .await
    .unwrap();
    gate.activate_policy(POLICY, "test").await.unwrap();
    let outputs: Vec<_> = (0..6)
        .map(|i| output(i, if i % 2 == 0 { 0.5 } else { 0.9 }))
        .collect();
    gate.ingest("scorer", &serde_json::to_vec(&outputs).unwrap())
        .await
        .unwrap();
    let user = gate
        .create_user("rita", Role::Reviewer, 100.0, "test")
        .await
        .unwrap();
    let key = jws::generate_signing_key();
    let enrolled = gate
        .enroll(&EnrollRequest {
            code: user.enrollment_code,
            public_key: jws::public_jwk(&key.verifying_key()),
            device_name: "laptop".into(),
        })
        .await
        .unwrap();
    let principal = gate.authenticate(&enrolled.token).await.unwrap();
    let claimed = gate
        .claim(
            &principal,
            &ClaimRequest {
                limit: 10,
                offline: false,
                offline_hours: None,
                queue: Default::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let signed: Vec<String> = claimed
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let decision = Decision {
                v: V1,
                decision_id: new_id(),
                item_id: c.lease.item_id,
                item_version: c.lease.item_version,
                lease_id: c.lease.lease_id,
                lease_epoch: c.lease.epoch,
                evidence_sha256: c.evidence_sha256.clone(),
                kind: DecisionKind::Approve,
                corrections: vec![],
                reason_codes: vec![],
                comment: None,
                key_id: enrolled.key_id.clone(),
                device_id: enrolled.device_id.clone(),
                device_seq: u64::try_from(i).unwrap() + 1,
                decided_at: chrono::Utc::now(),
            };
            jws::sign_decision(&decision, &key).unwrap()
        })
        .collect();
    gate.push_decisions(&principal, &signed).await.unwrap();
    gate.export_bundle(&dir.join("bundle")).await.unwrap();
    gate.log_public_key()
}

/// The CLI's input limit, 16 MiB.
const CLI_INPUT_LIMIT: u64 = 16 << 20;

/// `countersign verify-bundle BUNDLE ARGS`; one that does not end within 30 s fails.
fn verify(bundle: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("countersign")
        .unwrap()
        .arg("verify-bundle")
        .arg(bundle)
        .args(args)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_bundle_verifies_and_any_changed_byte_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log_key = export_bundle(dir.path()).await;
    let bundle = dir.path().join("bundle");
    let out = verify(&bundle, &["--log-key", &log_key]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("bundle verifies: bundle.test/log"),
        "{stdout}"
    );
    assert!(stdout.contains("3 signed decisions"), "{stdout}");

    // Change one byte of one entry: verification fails and names where.
    let entries_path = bundle.join("entries.jsonl");
    let original = std::fs::read(&entries_path).unwrap();
    let lines: Vec<&[u8]> = original
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let target = lines.len() / 2;
    let mut tampered = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut line = line.to_vec();
        if i == target {
            let pos = line.iter().position(|b| *b == b'"').unwrap() + 1;
            line[pos] ^= 0x01;
        }
        tampered.extend_from_slice(&line);
        tampered.push(b'\n');
    }
    std::fs::write(&entries_path, &tampered).unwrap();
    let out = verify(&bundle, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("entries.jsonl"), "{stderr}");

    // Remove one entry instead.
    let mut removed = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if i != target {
            removed.extend_from_slice(line);
            removed.push(b'\n');
        }
    }
    std::fs::write(&entries_path, &removed).unwrap();
    let out = verify(&bundle, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("entries.jsonl"));

    // A bundle file that is a device or a directory is refused at once, not read without end.
    #[cfg(unix)]
    for name in ["manifest.json", "entries.jsonl", "keys.jsonl"] {
        let path = bundle.join(name);
        let kept = dir.path().join(format!("kept-{name}"));
        std::fs::rename(&path, &kept).unwrap();
        for what in ["a device", "a directory"] {
            if what == "a device" {
                std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
            } else {
                std::fs::create_dir(&path).unwrap();
            }
            let out = verify(&bundle, &[]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} as {what}: {stderr}");
            assert!(
                stderr.contains("is not a regular file"),
                "{name} as {what}: {stderr}"
            );
            if path.is_dir() {
                std::fs::remove_dir(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
        std::fs::rename(&kept, &path).unwrap();
    }
    // An oversized manifest is refused before it is read.
    let manifest = bundle.join("manifest.json");
    let kept_manifest = std::fs::read(&manifest).unwrap();
    std::fs::File::create(&manifest)
        .unwrap()
        .set_len(CLI_INPUT_LIMIT + 1)
        .unwrap();
    let out = verify(&bundle, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("input limit"));
    std::fs::write(&manifest, kept_manifest).unwrap();

    // A different log key than the one the auditor trusts.
    std::fs::write(&entries_path, &original).unwrap();
    let other = countersign_core::checkpoint::NoteSigner::new(
        "bundle.test/log",
        jws::generate_signing_key(),
    )
    .unwrap()
    .verifier()
    .to_vkey();
    let out = verify(&bundle, &["--log-key", &other]);
    assert_eq!(out.status.code(), Some(1));
}

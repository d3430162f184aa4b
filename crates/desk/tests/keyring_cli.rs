//! The `countersign-desk` binary with the real Secret Service: secrets land in the keyring and
//! nowhere else, `decide` prints its `saved` line, errors have their codes and exit status, and
//! without a Secret Service the desk says what to do instead of falling back to a file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Output;

use countersign_gate::service::Role;
use support::{TestGate, keyring, review_outputs, temp};

const BIN: &str = env!("CARGO_BIN_EXE_countersign-desk");

async fn desk_cmd(dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .await
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_keeps_secrets_in_the_keyring_and_prints_saved_after_commit() {
    keyring();
    let gdir = temp();
    let gate = TestGate::start(gdir.path()).await;
    gate.ingest(&review_outputs("cli", 2)).await;
    let code = gate.user("gina", Role::Reviewer, 50_000.0).await;
    let ddir = temp();

    let out = desk_cmd(
        ddir.path(),
        &[
            "enroll",
            "--gate",
            &gate.base,
            "--code",
            &code,
            "--device-name",
            "gina-laptop",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let account = stdout(&out).trim().to_owned();

    // The secrets are in the Secret Service...
    let key = keyring_core::Entry::new("countersign-desk", &format!("{account}/signing-key"))
        .unwrap()
        .get_password()
        .unwrap();
    let token = keyring_core::Entry::new("countersign-desk", &format!("{account}/api-token"))
        .unwrap()
        .get_password()
        .unwrap();
    assert!(token.len() > 20);
    // ...and in no file of the data directory.
    for entry in walk(ddir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&token), "token found in {}", entry.display());
        assert!(!text.contains(&key), "key found in {}", entry.display());
    }

    let out = desk_cmd(ddir.path(), &["claim", "--limit", "2"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("claimed 2"));
    let out = desk_cmd(ddir.path(), &["queue", "--json"]).await;
    let queue: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let first = queue[0]["item_id"].as_str().unwrap().to_owned();
    let second = queue[1]["item_id"].as_str().unwrap().to_owned();

    let out = desk_cmd(ddir.path(), &["decide", &first, "approve"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    let parts: Vec<&str> = line.trim_end().split(' ').collect();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert_eq!(
        (parts[0], parts[2], parts[3]),
        ("saved", "seq", "1"),
        "{line}"
    );
    uuid::Uuid::parse_str(parts[1]).unwrap();

    let out = desk_cmd(ddir.path(), &["decide", &first, "approve"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).starts_with("error[already_decided]: "),
        "{}",
        stderr(&out)
    );

    let out = desk_cmd(
        ddir.path(),
        &[
            "decide",
            &second,
            "correct",
            "--set",
            "amount=3000",
            "--reason",
            "affordability",
            "--comment",
            "too high",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).trim_end().ends_with(" seq 2"));

    let out = desk_cmd(ddir.path(), &["sync", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (report["pushed"].as_u64(), report["applied"].as_u64()),
        (Some(2), Some(2)),
        "{report}"
    );
    let out = desk_cmd(ddir.path(), &["status", "--json"]).await;
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["pending_sync"], 0);
    assert_eq!(status["account"]["account_id"], account.as_str());
    let out = desk_cmd(ddir.path(), &["decisions", "--json"]).await;
    let records: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(records.iter().all(|r| r["state"] == "applied"));

    // Usage errors exit with 2.
    let out = desk_cmd(ddir.path(), &["decide"]).await;
    assert_eq!(out.status.code(), Some(2));
    // The log file is in the data directory, with the sync's spans.
    let logs: Vec<_> = walk(&ddir.path().join("logs"));
    assert!(!logs.is_empty());
    let log = logs
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<String>();
    assert!(log.contains("sync"), "{log}");
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_service_enrollment_fails_clearly_and_writes_nothing() {
    let ddir = temp();
    let out = tokio::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(ddir.path())
        .args(["enroll", "--gate", "http://127.0.0.1:9", "--code", "c"])
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/countersign-test-bus",
        )
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error[keyring_unavailable]: "), "{err}");
    assert!(err.contains("never stores keys in a file"), "{err}");
    assert!(!ddir.path().join("accounts").exists());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

//! Helpers shared by the integration tests, which all run the real `countersign` binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use countersign_core::jws::{self, SigningKey};
use countersign_core::model::Decision;
use ed25519_dalek::Signer as _;
use serde_json::{Value, json};

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    /// Asserts success: exit 0 and nothing on stderr.
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success, got {self:?}");
        assert_eq!(self.stderr, "", "stderr on success: {self:?}");
        self
    }

    /// Asserts a failure reported the one way the command line promises: exit `code`, nothing on
    /// stdout, exactly one line on stderr starting with `countersign: `, which contains `needle`,
    /// and no panic.
    pub fn fails(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(self.code, code, "wrong exit status: {self:?}");
        assert!(self.stdout.is_empty(), "stdout on failure: {self:?}");
        assert_one_line_error(&self.stderr);
        assert!(
            self.stderr.contains(needle),
            "stderr {:?} does not contain {needle:?}",
            self.stderr
        );
        self
    }
}

pub fn assert_one_line_error(stderr: &str) {
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint: {stderr}"
    );
    assert!(stderr.starts_with("countersign: "), "no prefix: {stderr:?}");
    assert!(stderr.ends_with('\n'), "no final newline: {stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
}

pub fn countersign() -> assert_cmd::Command {
    assert_cmd::cargo::cargo_bin_cmd!("countersign")
}

/// Runs `countersign args...`, feeding `stdin` (empty when `None`).
pub fn run(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = countersign();
    cmd.args(args);
    cmd.write_stdin(stdin.unwrap_or_default().to_vec());
    let output = cmd.output().expect("the binary runs");
    let stderr = String::from_utf8(output.stderr).expect("stderr is UTF-8");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    Run {
        code: output
            .status
            .code()
            .expect("exited normally, not by a signal"),
        stdout: output.stdout,
        stderr,
    }
}

/// A fixed test key; each seed gives a different key.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn kid(key: &SigningKey) -> String {
    jws::key_id(&key.verifying_key())
}

pub fn public_b64url(key: &SigningKey) -> String {
    URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

/// A correction signed by `key`, as JSON.
pub fn decision_json(key: &SigningKey) -> Value {
    json!({
        "v": 1,
        "decision_id": "01956a1e-7c3b-7000-8000-000000000001",
        "item_id": "01956a1e-7c3b-7000-8000-000000000002",
        "item_version": 1,
        "lease_id": "01956a1e-7c3b-7000-8000-000000000003",
        "lease_epoch": 0,
        "evidence_sha256": "ab".repeat(32),
        "kind": "correct",
        "corrections": [{"field": "amount", "from": 12000, "to": 9000}],
        "reason_codes": ["affordability"],
        "comment": "Income does not support 12 000 € over 36 months",
        "key_id": kid(key),
        "device_id": "laptop-17",
        "device_seq": 42,
        "decided_at": "2025-03-01T09:30:00Z"
    })
}

pub fn decision(key: &SigningKey) -> Decision {
    serde_json::from_value(decision_json(key)).unwrap()
}

/// A decision signed by the library.
pub fn signed_decision(key: &SigningKey) -> String {
    jws::sign_decision(&decision(key), key).unwrap()
}

/// The three decoded parts of a compact JWS.
pub fn split(jws: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let parts: Vec<&str> = jws.split('.').collect();
    assert_eq!(parts.len(), 3);
    (unb64(parts[0]), unb64(parts[1]), unb64(parts[2]))
}

/// Signs arbitrary header and payload bytes as a compact JWS, bypassing every check the
/// library makes, to produce validly signed but hostile decisions.
pub fn sign_raw(header: &[u8], payload: &[u8], key: &SigningKey) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

/// Joins already decoded parts into a compact JWS without signing.
pub fn join(header: &[u8], payload: &[u8], signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(payload), b64(signature))
}

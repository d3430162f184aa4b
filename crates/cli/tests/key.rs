//! `countersign key` and `countersign decision sign`, end to end with `decision verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{decision_json, run};
use countersign_core::jws;
use serde_json::Value;

struct Generated {
    dir: tempfile::TempDir,
    jwk: Value,
}

impl Generated {
    fn key_path(&self) -> String {
        self.dir
            .path()
            .join("reviewer.key")
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn kid(&self) -> String {
        self.jwk["kid"].as_str().unwrap().to_owned()
    }

    fn jwk_path(&self) -> String {
        let path = self.dir.path().join("reviewer.jwk");
        std::fs::write(&path, self.jwk.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

fn generate() -> Generated {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reviewer.key");
    let out = run(&["key", "generate", "--out", path.to_str().unwrap()], None);
    out.ok();
    let jwk: Value = serde_json::from_slice(&out.stdout).unwrap();
    Generated { dir, jwk }
}

#[test]
fn generate_writes_a_private_seed_and_prints_the_public_jwk() {
    let g = generate();
    let text = std::fs::read_to_string(g.key_path()).unwrap();
    assert!(text.ends_with('\n'));
    let seed = URL_SAFE_NO_PAD.decode(text.trim_end()).unwrap();
    let key = jws::SigningKey::from_bytes(&seed.try_into().unwrap());
    assert_eq!(g.jwk, jws::public_jwk(&key.verifying_key()));
    assert_eq!(g.kid(), jws::key_id(&key.verifying_key()));
    assert_eq!(g.jwk["kty"], "OKP");
    assert_eq!(g.jwk["crv"], "Ed25519");
    assert!(g.jwk.get("d").is_none(), "private part printed: {}", g.jwk);
}

#[cfg(unix)]
#[test]
fn generated_key_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let g = generate();
    let mode = std::fs::metadata(g.key_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

#[test]
fn generated_keys_differ() {
    assert_ne!(generate().kid(), generate().kid());
}

#[test]
fn generate_never_overwrites() {
    let g = generate();
    let before = std::fs::read(g.key_path()).unwrap();
    run(&["key", "generate", "--out", &g.key_path()], None).fails(2, "already exists");
    assert_eq!(std::fs::read(g.key_path()).unwrap(), before);
    let missing_dir = g.dir.path().join("no/such/dir/k.key");
    run(
        &["key", "generate", "--out", missing_dir.to_str().unwrap()],
        None,
    )
    .fails(2, "cannot create");
}

#[test]
fn public_prints_the_same_jwk() {
    let g = generate();
    let out = run(&["key", "public", "--key", &g.key_path()], None);
    out.ok();
    assert_eq!(
        out.stdout_text(),
        format!(
            "{}\n",
            String::from_utf8(countersign_core::canonical::to_canonical_bytes(&g.jwk).unwrap())
                .unwrap()
        )
    );
}

#[test]
fn public_reads_a_private_jwk() {
    let key = common::key(5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.jwk");
    let mut jwk = jws::public_jwk(&key.verifying_key());
    jwk["d"] = URL_SAFE_NO_PAD.encode(key.to_bytes()).into();
    std::fs::write(&path, jwk.to_string()).unwrap();
    let out = run(&["key", "public", "--key", path.to_str().unwrap()], None);
    out.ok();
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, jws::public_jwk(&key.verifying_key()));
}

#[test]
fn bad_private_key_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let cases: [(&[u8], &str); 4] = [
        (b"", "32 bytes, found 0"),
        (b"hello world", "expected a 32-byte Ed25519 seed"),
        (b"\xff\xfe", "not text"),
        (
            br#"{"kty":"OKP","crv":"Ed25519","x":"AAAA"}"#,
            "no private part",
        ),
    ];
    for (contents, why) in cases {
        std::fs::write(&path, contents).unwrap();
        run(&["key", "public", "--key", path.to_str().unwrap()], None).fails(2, why);
    }
    let missing = dir.path().join("missing");
    run(&["key", "public", "--key", missing.to_str().unwrap()], None)
        .fails(2, "No such file or directory");
}

#[test]
fn sign_then_verify_round_trip() {
    let g = generate();
    let mut decision = decision_json(&common::key(0));
    decision["key_id"] = g.kid().into();
    let out = run(
        &["decision", "sign", "--key", &g.key_path()],
        Some(decision.to_string().as_bytes()),
    );
    out.ok();
    let jws = out.stdout_text();
    assert!(jws.ends_with('\n'));
    assert_eq!(jws.trim_end().split('.').count(), 3);

    let verified = run(
        &["decision", "verify", "-n", "--public-key", &g.jwk_path()],
        Some(jws.as_bytes()),
    );
    verified.ok();
    let expected = countersign_core::canonical::to_canonical_bytes(&decision).unwrap();
    assert_eq!(verified.stdout, expected);

    // The library agrees, with the key given as the generated JWK.
    let key = jws::parse_public_key(&g.jwk.to_string()).unwrap();
    let decoded = jws::verify_decision(jws.trim_end(), &key).unwrap();
    assert_eq!(decoded.payload, expected);
}

#[test]
fn sign_refuses_a_decision_for_another_key() {
    let g = generate();
    let decision = decision_json(&common::key(0));
    let out = run(
        &["decision", "sign", "--key", &g.key_path()],
        Some(decision.to_string().as_bytes()),
    );
    out.fails(2, &format!("the signing key's id is {:?}", g.kid()));
}

#[test]
fn sign_refuses_invalid_decisions() {
    let g = generate();
    let base = {
        let mut d = decision_json(&common::key(0));
        d["key_id"] = g.kid().into();
        d
    };
    let mut unknown = base.clone();
    unknown["aproved_by"] = "x".into();
    let mut no_reason = base.clone();
    no_reason["reason_codes"] = serde_json::json!([]);
    let mut version = base.clone();
    version["v"] = 2.into();
    let duplicated = base.to_string().replacen(
        "\"kind\":\"correct\"",
        "\"kind\":\"correct\",\"kind\":\"approve\"",
        1,
    );
    let cases = [
        (unknown.to_string(), "unknown field `aproved_by`"),
        (no_reason.to_string(), "needs at least one reason code"),
        (version.to_string(), "unsupported format version 2"),
        (duplicated, "duplicate object key \"kind\""),
        ("[]".to_owned(), "not a valid decision"),
        ("{".to_owned(), "not a valid decision"),
    ];
    for (input, why) in cases {
        run(
            &["decision", "sign", "--key", &g.key_path()],
            Some(input.as_bytes()),
        )
        .fails(2, why);
    }
}

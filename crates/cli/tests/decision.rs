//! `countersign decision verify` and `inspect` on decisions signed by the library, tampered
//! with, or validly signed over hostile payloads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{decision_json, join, key, kid, public_b64url, run, sign_raw, signed_decision, split};
use countersign_core::canonical;
use countersign_core::jws;
use serde_json::Value;

/// Writes the public JWK of `key` to a file and returns the file.
fn jwk_file(key: &jws::SigningKey) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    let jwk = jws::public_jwk(&key.verifying_key());
    std::fs::write(file.path(), serde_json::to_vec_pretty(&jwk).unwrap()).unwrap();
    file
}

fn verify_with(public_key: &str, jws: &str) -> common::Run {
    run(
        &["decision", "verify", "--public-key", public_key],
        Some(jws.as_bytes()),
    )
}

fn expected_payload(key: &jws::SigningKey) -> Vec<u8> {
    canonical::to_canonical_bytes(&common::decision(key)).unwrap()
}

#[test]
fn library_signed_decision_verifies_with_a_jwk_file() {
    let k = key(1);
    let jwk = jwk_file(&k);
    let out = verify_with(jwk.path().to_str().unwrap(), &signed_decision(&k));
    out.ok();
    let mut expected = expected_payload(&k);
    expected.push(b'\n');
    assert_eq!(out.stdout, expected);
}

#[test]
fn library_signed_decision_verifies_with_inline_keys() {
    let k = key(1);
    let jws = signed_decision(&k);
    let mut expected = expected_payload(&k);
    expected.push(b'\n');
    let inline_jwk = jws::public_jwk(&k.verifying_key()).to_string();
    let hex: String = k
        .verifying_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for public_key in [public_b64url(&k), inline_jwk, hex] {
        let out = verify_with(&public_key, &jws);
        out.ok();
        assert_eq!(out.stdout, expected, "{public_key}");
    }
}

#[test]
fn jws_from_a_file_with_surrounding_whitespace() {
    let k = key(1);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("\n  {}\r\n\n", signed_decision(&k))).unwrap();
    let out = run(
        &[
            "decision",
            "verify",
            "-n",
            "-k",
            &public_b64url(&k),
            file.path().to_str().unwrap(),
        ],
        None,
    );
    out.ok();
    assert_eq!(out.stdout, expected_payload(&k));
}

/// Flips one bit of the decoded part `part` (0 header, 1 payload, 2 signature) at every
/// `step`-th position, re-encodes, and expects each result to be refused.
fn flip_every(part: usize, step: usize, reason: Option<&str>) -> usize {
    let k = key(1);
    let public = public_b64url(&k);
    let jws = signed_decision(&k);
    let (header, payload, signature) = split(&jws);
    let mut parts = [header, payload, signature];
    let len = parts[part].len();
    let mut tried = 0;
    for at in (0..len).step_by(step) {
        let bit = 1u8 << (at % 8);
        parts[part][at] ^= bit;
        let tampered = join(&parts[0], &parts[1], &parts[2]);
        parts[part][at] ^= bit;
        let out = verify_with(&public, &tampered);
        out.fails(1, "countersign: decision does not verify: ");
        if let Some(reason) = reason {
            assert!(out.stderr.contains(reason), "byte {at}: {}", out.stderr);
        }
        tried += 1;
    }
    tried
}

#[test]
fn flipped_payload_bytes_fail() {
    assert!(flip_every(1, 5, Some("signature is invalid")) > 60);
}

#[test]
fn flipped_signature_bytes_fail() {
    // Every byte of the 64-byte signature, the scalar half included (verify_strict refuses a
    // non-canonical scalar as surely as a wrong one).
    assert_eq!(flip_every(2, 1, Some("signature is invalid")), 64);
}

#[test]
fn flipped_header_bytes_fail() {
    // The reason varies with the byte: broken JSON, another alg, typ or kid, or, when the header
    // still reads the same, the signature.
    assert!(flip_every(0, 1, None) > 60);
}

#[test]
fn changed_characters_of_the_compact_form_fail() {
    let k = key(1);
    let public = public_b64url(&k);
    let jws = signed_decision(&k);
    let mut tried = 0;
    for at in (0..jws.len()).step_by(7) {
        let mut bytes = jws.clone().into_bytes();
        bytes[at] = match bytes[at] {
            b'.' => b'A',
            b'A' => b'B',
            _ => b'A',
        };
        let tampered = String::from_utf8(bytes).unwrap();
        verify_with(&public, &tampered).fails(1, "decision does not verify: ");
        tried += 1;
    }
    assert!(tried > 50);
    // Truncated, extended, or with an extra part.
    verify_with(&public, &jws[..jws.len() - 1]).fails(1, "decision does not verify: ");
    verify_with(&public, &format!("{jws}A")).fails(1, "decision does not verify: ");
    verify_with(&public, &format!("{jws}.")).fails(1, "expected 3 dot-separated parts");
}

#[test]
fn reordered_payload_fails_as_not_canonical() {
    let k = key(1);
    let (header, payload, _) = split(&signed_decision(&k));
    let Value::Object(members) = serde_json::from_slice::<Value>(&payload).unwrap() else {
        panic!("payload is an object");
    };
    // The same members, in reverse order: the same decision to a lenient reader.
    let reordered = format!(
        "{{{}}}",
        members
            .iter()
            .rev()
            .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&reordered).unwrap(),
        Value::Object(members)
    );
    let resigned = sign_raw(&header, reordered.as_bytes(), &k);
    verify_with(&public_b64url(&k), &resigned).fails(1, "not canonical");
    // Whitespace alone is enough.
    let mut spaced = payload.clone();
    spaced.insert(1, b' ');
    let resigned = sign_raw(&header, &spaced, &k);
    verify_with(&public_b64url(&k), &resigned).fails(1, "not canonical");
}

#[test]
fn duplicated_key_in_payload_fails_naming_it() {
    let k = key(1);
    let (header, payload, _) = split(&signed_decision(&k));
    // A lenient parser keeps the last "kind" and reads an approval; the signed bytes also say
    // "correct". Two readers, two decisions: it must be refused, naming the key.
    let payload = String::from_utf8(payload).unwrap();
    let duplicated = payload.replacen(
        "\"kind\":\"correct\"",
        "\"kind\":\"correct\",\"kind\":\"approve\"",
        1,
    );
    assert_ne!(duplicated, payload);
    let resigned = sign_raw(&header, duplicated.as_bytes(), &k);
    verify_with(&public_b64url(&k), &resigned).fails(1, r#"duplicate object key "kind""#);
}

#[test]
fn another_key_fails() {
    let signer = key(1);
    let other = key(2);
    let jws = signed_decision(&signer);
    verify_with(&public_b64url(&other), &jws).fails(1, &kid(&signer));
    let jwk = jwk_file(&other);
    verify_with(jwk.path().to_str().unwrap(), &jws).fails(1, "its kid names the key");

    // A forger who knows the victim's kid: the header names the other key, but the signature
    // is still the signer's.
    let (header, payload, _) = split(&jws);
    let header = String::from_utf8(header)
        .unwrap()
        .replace(&kid(&signer), &kid(&other));
    let forged = sign_raw(header.as_bytes(), &payload, &signer);
    verify_with(&public_b64url(&other), &forged).fails(1, "signature is invalid");
}

#[test]
fn changed_alg_fails() {
    let k = key(1);
    let (header, payload, _) = split(&signed_decision(&k));
    let header = String::from_utf8(header).unwrap();
    assert!(header.contains(r#""alg":"EdDSA""#));
    for alg in ["none", "HS256", "ES256", "eddsa", "Ed25519", ""] {
        let changed = header.replace(r#""alg":"EdDSA""#, &format!(r#""alg":"{alg}""#));
        let resigned = sign_raw(changed.as_bytes(), &payload, &k);
        verify_with(&public_b64url(&k), &resigned).fails(1, "unsupported JWS algorithm");
    }
    // alg none with an empty signature, the classic downgrade.
    let none = header.replace(r#""alg":"EdDSA""#, r#""alg":"none""#);
    let unsigned = format!(
        "{}.{}.",
        common::b64(none.as_bytes()),
        common::b64(&payload)
    );
    verify_with(&public_b64url(&k), &unsigned).fails(1, "unsupported JWS algorithm");
}

#[test]
fn missing_typ_or_kid_fails() {
    let k = key(1);
    let (_, payload, _) = split(&signed_decision(&k));
    let no_typ = format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, kid(&k));
    verify_with(
        &public_b64url(&k),
        &sign_raw(no_typ.as_bytes(), &payload, &k),
    )
    .fails(1, "typ");
    let no_kid = r#"{"alg":"EdDSA","typ":"countersign-decision+jws"}"#;
    verify_with(
        &public_b64url(&k),
        &sign_raw(no_kid.as_bytes(), &payload, &k),
    )
    .fails(1, "no kid");
}

#[test]
fn validly_signed_non_decisions_fail() {
    let k = key(1);
    let (header, _, _) = split(&signed_decision(&k));
    let mut value = decision_json(&k);
    value["approved_by"] = "someone".into();
    let unknown_field = canonical::to_canonical_bytes(&value).unwrap();
    verify_with(&public_b64url(&k), &sign_raw(&header, &unknown_field, &k))
        .fails(1, "not a valid decision");

    let mut value = decision_json(&k);
    value["key_id"] = kid(&key(3)).into();
    let other_key_id = canonical::to_canonical_bytes(&value).unwrap();
    verify_with(&public_b64url(&k), &sign_raw(&header, &other_key_id, &k))
        .fails(1, "key_id differs");
}

#[test]
fn malformed_input_fails_with_one_line() {
    let public = public_b64url(&key(1));
    for garbage in [
        "",
        "   \n",
        "not a jws",
        "a.b",
        "a.b.c",
        "....",
        "\u{1b}[2J.x.y",
    ] {
        verify_with(&public, garbage).fails(1, "decision does not verify: ");
    }
    let out = run(
        &["decision", "verify", "--public-key", &public],
        Some(b"\xff\xfe.\x00.x"),
    );
    out.fails(1, "decision does not verify: ");
}

#[test]
fn unusable_keys_are_input_errors() {
    let jws = signed_decision(&key(1));
    verify_with("not-a-key", &jws).fails(2, "neither an existing file nor a key");
    verify_with("/no/such/reviewer.jwk", &jws).fails(2, "neither an existing file nor a key");
    verify_with(r#"{"kty":"RSA"}"#, &jws).fails(2, "kty must be");
    // Sixteen bytes in base64url: decodes, but is not an Ed25519 key.
    verify_with("AAAAAAAAAAAAAAAAAAAAAA", &jws).fails(2, "32 bytes");
    let empty = tempfile::NamedTempFile::new().unwrap();
    verify_with(empty.path().to_str().unwrap(), &jws).fails(2, "public key file");
    let dir = tempfile::tempdir().unwrap();
    let missing_jws = dir.path().join("missing.jws");
    run(
        &[
            "decision",
            "verify",
            "-k",
            &public_b64url(&key(1)),
            missing_jws.to_str().unwrap(),
        ],
        None,
    )
    .fails(2, "cannot read");
}

#[test]
fn inspect_shows_header_and_payload_unverified() {
    let k = key(1);
    let jws = signed_decision(&k);
    let out = run(&["decision", "inspect"], Some(jws.as_bytes()));
    out.ok();
    let text = out.stdout_text();
    assert!(text.starts_with("UNVERIFIED"), "{text}");
    assert!(text.contains(&format!("kid: {}", kid(&k))), "{text}");
    assert!(
        text.contains("\"typ\": \"countersign-decision+jws\""),
        "{text}"
    );
    assert!(text.contains("\"evidence_sha256\""), "{text}");
    assert!(text.contains("payload is canonical JSON: yes"), "{text}");
    assert!(
        text.contains("payload is a well-formed decision: yes"),
        "{text}"
    );
}

#[test]
fn inspect_shows_what_is_wrong_without_verifying() {
    let k = key(1);
    let (header, payload, _) = split(&signed_decision(&k));
    let mut spaced = payload.clone();
    spaced.insert(1, b' ');
    // Signed by nobody: inspect does not check.
    let unsigned = join(&header, &spaced, &[0; 64]);
    let out = run(&["decision", "inspect"], Some(unsigned.as_bytes()));
    out.ok();
    let text = out.stdout_text();
    assert!(text.contains("UNVERIFIED"), "{text}");
    assert!(text.contains("payload is canonical JSON: no"), "{text}");

    let not_json = join(&header, b"\x1b[31mred", &[0; 64]);
    let out = run(&["decision", "inspect"], Some(not_json.as_bytes()));
    out.ok();
    let text = out.stdout_text();
    assert!(text.contains("payload: not valid JSON"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape reached the terminal: {text}"
    );

    run(&["decision", "inspect"], Some(b"garbage")).fails(2, "cannot inspect standard input");
}

//! Signed decisions: JWS (RFC 7515) compact serialization, EdDSA over Ed25519 (RFC 8037).
//!
//! Everything here is checked so that a generic JOSE library, given the reviewer's public JWK,
//! accepts exactly the decisions the gate accepts: signatures are checked with `verify_strict`
//! (which refuses small-order keys and non-canonical signatures, like libsodium and OpenSSL), and
//! base64url is decoded strictly (no padding, no stray characters, no non-zero trailing bits), so
//! one signature has exactly one textual form.
//!
//! A decision's payload must be the RFC 8785 canonical bytes of the [`Decision`]: a payload that
//! is validly signed but not canonical (re-ordered keys, a duplicated key, extra whitespace) is
//! refused, because two readers could disagree on what such bytes say.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer as _};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroize as _;

use crate::canonical::{self, CanonError};
use crate::model::{Decision, FieldEdit};

pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// The only JWS algorithm accepted: EdDSA, which RFC 8037 defines for Ed25519 keys.
pub const ALG: &str = "EdDSA";

/// The `typ` header of a signed decision (explicit typing, RFC 8725 section 3.11), so that a
/// reviewer's signature over some other JSON document can never pass for a decision.
pub const DECISION_TYP: &str = "countersign-decision+jws";

/// Longest compact JWS accepted, in bytes. A decision is a few kilobytes; anything near this size
/// is hostile or broken, and is refused before any decoding work.
pub const MAX_JWS_LEN: usize = 1 << 20;

/// Longest signed decision a gate takes, in bytes of compact JWS. A desk refuses to save a longer
/// one (an endless comment, a huge corrected value), so the reviewer hears it while deciding
/// rather than after a sync.
pub const MAX_DECISION_JWS_BYTES: usize = 64 * 1024;

/// Integers beyond this magnitude are rounded in JCS (every JSON number is a double), so a
/// decision that holds one could not be signed exactly.
const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// Why a JWS or a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("malformed JWS: {0}")]
    Malformed(String),
    #[error("JWS is {size} bytes, more than the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("unsupported JWS algorithm {0}: only EdDSA (Ed25519) is accepted")]
    UnsupportedAlgorithm(String),
    #[error("JWS kid is {found:?}, expected {expected:?}")]
    KidMismatch { expected: String, found: String },
    #[error("JWS header has no kid")]
    MissingKid,
    #[error("JWS header has a crit parameter, and no critical extension is supported")]
    CriticalHeader,
    #[error("JWS typ is {found}, expected {expected:?}")]
    UnexpectedType { expected: String, found: String },
    #[error("JWS signature does not verify")]
    BadSignature,
    #[error("signed payload is not canonical JSON: {0}")]
    PayloadNotCanonical(CanonError),
    #[error("signed payload is not a valid decision: {0}")]
    InvalidDecision(String),
    #[error("the decision's key_id differs from the key that signs it")]
    KeyMismatch,
    #[error("invalid Ed25519 public key: {0}")]
    InvalidKey(String),
}

/// A new Ed25519 key from the operating system's random number generator.
///
/// # Panics
///
/// If the operating system cannot supply randomness, which leaves no safe way to make a key.
pub fn generate_signing_key() -> SigningKey {
    let mut seed = [0u8; 32];
    #[allow(clippy::expect_used)]
    getrandom::getrandom(&mut seed).expect("the operating system's random number generator failed");
    let key = SigningKey::from_bytes(&seed);
    seed.zeroize();
    key
}

/// The key's RFC 7638 JWK thumbprint (SHA-256, base64url): the `kid` of everything it signs.
pub fn key_id(key: &VerifyingKey) -> String {
    // The RFC 7638 input is the JCS form of the required members. With members in sorted order
    // and an `x` made only of base64url characters (which never need escaping), this literal is
    // that form; a unit test checks it against the canonicalizer.
    let input = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(key.as_bytes())
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(input.as_bytes()))
}

/// The key as a public JWK (RFC 8037), with its thumbprint as `kid`.
pub fn public_jwk(key: &VerifyingKey) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(key.as_bytes()),
        "kid": key_id(key),
    })
}

/// Reads a public key given as a JWK object (`kty` OKP, `crv` Ed25519; a `kid`, if present, must
/// be the key's thumbprint), or as its 32 bytes in base64url, base64 or 64 hex digits.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, JwsError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(JwsError::InvalidKey("empty input".into()));
    }
    let bytes = if text.starts_with('{') {
        return parse_jwk(text);
    } else if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|e| JwsError::InvalidKey(format!("bad hex: {e}")))?
    } else {
        [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or_else(|| {
                JwsError::InvalidKey(
                    "expected a JWK, 32 bytes in base64url or base64, or 64 hex digits".into(),
                )
            })?
    };
    key_from_bytes(&bytes)
}

fn parse_jwk(text: &str) -> Result<VerifyingKey, JwsError> {
    let invalid = |why: &str| JwsError::InvalidKey(format!("JWK {why}"));
    let jwk = canonical::parse_strict(text.as_bytes())
        .map_err(|e| JwsError::InvalidKey(format!("JWK is not valid JSON: {e}")))?;
    let Value::Object(jwk) = jwk else {
        return Err(invalid("is not a JSON object"));
    };
    if jwk.get("kty").and_then(Value::as_str) != Some("OKP") {
        return Err(invalid("kty must be \"OKP\""));
    }
    if jwk.get("crv").and_then(Value::as_str) != Some("Ed25519") {
        return Err(invalid("crv must be \"Ed25519\""));
    }
    if jwk.contains_key("d") {
        return Err(invalid(
            "holds a private key (member d); give the public key only",
        ));
    }
    let x = jwk
        .get("x")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("has no x string"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(x)
        .map_err(|e| invalid(&format!("x is not unpadded base64url: {e}")))?;
    let key = key_from_bytes(&bytes)?;
    match jwk.get("kid") {
        None => {}
        Some(Value::String(kid)) if *kid == key_id(&key) => {}
        Some(found) => {
            return Err(invalid(&format!(
                "kid {found} is not the key's thumbprint {:?}",
                key_id(&key)
            )));
        }
    }
    Ok(key)
}

fn key_from_bytes(bytes: &[u8]) -> Result<VerifyingKey, JwsError> {
    let bytes: &[u8; 32] = bytes.try_into().map_err(|_| {
        JwsError::InvalidKey(format!(
            "an Ed25519 public key is 32 bytes, found {}",
            bytes.len()
        ))
    })?;
    let key = VerifyingKey::from_bytes(bytes)
        .map_err(|_| JwsError::InvalidKey("not a point on the Ed25519 curve".into()))?;
    if key.is_weak() {
        return Err(JwsError::InvalidKey(
            "a small-order point, which verifies forged signatures".into(),
        ));
    }
    Ok(key)
}

#[derive(Serialize)]
struct ProtectedHeader<'a> {
    alg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    typ: Option<&'a str>,
}

fn sign_with_header(header: &ProtectedHeader<'_>, payload: &[u8], key: &SigningKey) -> String {
    #[allow(clippy::expect_used)]
    let header =
        canonical::to_canonical_bytes(header).expect("a header made of strings always serializes");
    let mut jws = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 90);
    URL_SAFE_NO_PAD.encode_string(&header, &mut jws);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut jws);
    let signature = key.sign(jws.as_bytes());
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut jws);
    jws
}

/// Signs `payload` as a compact JWS whose protected header is the JCS form of
/// `{"alg":"EdDSA","kid":kid}` (`kid` left out when `None`).
pub fn sign_compact(payload: &[u8], kid: Option<&str>, key: &SigningKey) -> String {
    let header = ProtectedHeader {
        alg: ALG,
        kid,
        typ: None,
    };
    sign_with_header(&header, payload, key)
}

/// A JWS whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJws {
    pub header: Value,
    pub payload: Vec<u8>,
}

/// A compact JWS taken apart: checked for shape, nothing decoded or verified yet.
struct Parts<'a> {
    header_b64: &'a str,
    /// `b64(header) '.' b64(payload)`: the bytes the signature covers.
    signing_input: &'a str,
    payload_b64: &'a str,
    signature_b64: &'a str,
}

fn split(jws: &str) -> Result<Parts<'_>, JwsError> {
    if jws.is_empty() {
        return Err(JwsError::Malformed("empty input".into()));
    }
    if jws.len() > MAX_JWS_LEN {
        return Err(JwsError::TooLarge {
            size: jws.len(),
            max: MAX_JWS_LEN,
        });
    }
    let mut parts = jws.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed(format!(
            "expected 3 dot-separated parts, found {}",
            jws.split('.').count()
        )));
    };
    let signing_input = &jws[..header_b64.len() + 1 + payload_b64.len()];
    Ok(Parts {
        header_b64,
        signing_input,
        payload_b64,
        signature_b64,
    })
}

type Header = serde_json::Map<String, Value>;

/// Decodes and parses a protected header (strictly: a duplicated parameter is refused).
fn parse_header(header_b64: &str) -> Result<Header, JwsError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|e| JwsError::Malformed(format!("header is not unpadded base64url: {e}")))?;
    match canonical::parse_strict(&bytes) {
        Ok(Value::Object(header)) => Ok(header),
        Ok(_) => Err(JwsError::Malformed("header is not a JSON object".into())),
        Err(e) => Err(JwsError::Malformed(format!("header is not JSON: {e}"))),
    }
}

/// Refuses any algorithm but EdDSA and any critical extension.
fn check_alg(header: &Header) -> Result<(), JwsError> {
    match header.get("alg") {
        Some(Value::String(alg)) if alg == ALG => {}
        Some(Value::String(alg)) => return Err(JwsError::UnsupportedAlgorithm(alg.clone())),
        Some(other) => return Err(JwsError::UnsupportedAlgorithm(other.to_string())),
        None => return Err(JwsError::Malformed("header has no alg".into())),
    }
    if header.contains_key("crit") {
        return Err(JwsError::CriticalHeader);
    }
    Ok(())
}

fn check_kid(header: &Header, expected: &str) -> Result<(), JwsError> {
    match header.get("kid") {
        Some(Value::String(kid)) if kid == expected => Ok(()),
        Some(Value::String(kid)) => Err(JwsError::KidMismatch {
            expected: expected.to_owned(),
            found: kid.clone(),
        }),
        Some(_) => Err(JwsError::Malformed("kid is not a string".into())),
        None => Err(JwsError::MissingKid),
    }
}

impl Parts<'_> {
    /// Decodes signature and payload strictly, then checks the signature.
    fn verify(&self, key: &VerifyingKey) -> Result<Vec<u8>, JwsError> {
        // 64 bytes are exactly 86 unpadded base64url characters.
        if self.signature_b64.len() != 86 {
            return Err(JwsError::Malformed(format!(
                "an Ed25519 signature is 86 base64url characters, found {}",
                self.signature_b64.len()
            )));
        }
        let mut signature = [0u8; 66];
        let n = URL_SAFE_NO_PAD
            .decode_slice(self.signature_b64, &mut signature)
            .map_err(|e| JwsError::Malformed(format!("signature is not base64url: {e}")))?;
        let signature: &[u8; 64] = signature[..n]
            .try_into()
            .map_err(|_| JwsError::Malformed("signature is not 64 bytes".into()))?;
        // Decoding before verifying costs nothing when the JWS is good, and names the actual
        // problem (padding, a stray character) when it is not.
        let payload = URL_SAFE_NO_PAD
            .decode(self.payload_b64)
            .map_err(|e| JwsError::Malformed(format!("payload is not unpadded base64url: {e}")))?;
        key.verify_strict(
            self.signing_input.as_bytes(),
            &Signature::from_bytes(signature),
        )
        .map_err(|_| JwsError::BadSignature)?;
        Ok(payload)
    }
}

/// Verifies a compact JWS: `alg` must be exactly EdDSA, `crit` is refused, the header's `kid` must
/// equal `expected_kid` when one is given, and the signature must pass `verify_strict`.
pub fn verify_compact(
    jws: &str,
    key: &VerifyingKey,
    expected_kid: Option<&str>,
) -> Result<VerifiedJws, JwsError> {
    let parts = split(jws)?;
    let header = parse_header(parts.header_b64)?;
    check_alg(&header)?;
    if let Some(expected) = expected_kid {
        check_kid(&header, expected)?;
    }
    let payload = parts.verify(key)?;
    Ok(VerifiedJws {
        header: Value::Object(header),
        payload,
    })
}

/// The header of a compact JWS, decoded but not verified: enough to find its `kid`, and so the
/// key to verify it with. Nothing in it may be trusted before verification.
pub fn decision_header(jws: &str) -> Result<Value, JwsError> {
    parse_header(split(jws)?.header_b64).map(Value::Object)
}

/// Signs a decision with its reviewer's key: a compact JWS with header
/// `{"alg":"EdDSA","kid":<key id>,"typ":"countersign-decision+jws"}` over the decision's JCS
/// bytes. Refuses a decision that names another key, is not well formed, or holds an integer that
/// JCS would round.
pub fn sign_decision(decision: &Decision, key: &SigningKey) -> Result<String, JwsError> {
    let kid = key_id(&key.verifying_key());
    if decision.key_id != kid {
        return Err(JwsError::KeyMismatch);
    }
    decision
        .check_shape()
        .map_err(|e| JwsError::InvalidDecision(e.to_string()))?;
    check_exact_numbers(decision)?;
    let payload = canonical::to_canonical_bytes(decision)
        .map_err(|e| JwsError::InvalidDecision(e.to_string()))?;
    let header = ProtectedHeader {
        alg: ALG,
        kid: Some(&kid),
        typ: Some(DECISION_TYP),
    };
    Ok(sign_with_header(&header, &payload, key))
}

/// A decision whose signature, encoding and shape all checked out.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedDecision {
    pub decision: Decision,
    /// The signed JCS bytes, exactly as received.
    pub payload: Vec<u8>,
}

/// Verifies a signed decision against its reviewer's key: typed header with the key's `kid`,
/// `verify_strict` signature, canonical payload, a valid [`Decision`] naming the same key.
pub fn verify_decision(jws: &str, key: &VerifyingKey) -> Result<VerifiedDecision, JwsError> {
    let parts = split(jws)?;
    let kid = key_id(key);
    // sign_decision writes exactly this header; recognising it saves decoding and parsing it.
    // Any other spelling gets the full checks, which accept it if it says the same thing.
    if parts.header_b64 != URL_SAFE_NO_PAD.encode(decision_header_json(&kid)) {
        let header = parse_header(parts.header_b64)?;
        check_alg(&header)?;
        match header.get("typ") {
            Some(Value::String(typ)) if typ == DECISION_TYP => {}
            other => {
                return Err(JwsError::UnexpectedType {
                    expected: DECISION_TYP.to_owned(),
                    found: other.map_or_else(|| "absent".to_owned(), Value::to_string),
                });
            }
        }
        check_kid(&header, &kid)?;
    }
    let payload = parts.verify(key)?;
    // Canonical bytes have no duplicate keys and no lone surrogates, so the ordinary (lenient)
    // deserializer cannot read anything else out of them than any other verifier would.
    let text = canonical::canonical_text(&payload).map_err(JwsError::PayloadNotCanonical)?;
    let decision: Decision =
        serde_json::from_str(text).map_err(|e| JwsError::InvalidDecision(e.to_string()))?;
    if decision.key_id != kid {
        return Err(JwsError::KeyMismatch);
    }
    decision
        .check_shape()
        .map_err(|e| JwsError::InvalidDecision(e.to_string()))?;
    check_exact_numbers(&decision)?;
    Ok(VerifiedDecision { decision, payload })
}

/// The JCS form of a decision's protected header. A key id is base64url, which never needs
/// escaping, so the literal is canonical (a unit test checks it against the canonicalizer).
fn decision_header_json(kid: &str) -> String {
    format!(r#"{{"alg":"{ALG}","kid":"{kid}","typ":"{DECISION_TYP}"}}"#)
}

/// Refuses integers that JCS would round to a different value, which would make the signed bytes
/// say something else than the decision they were made from.
fn check_exact_numbers(decision: &Decision) -> Result<(), JwsError> {
    if decision.device_seq > MAX_EXACT_INTEGER {
        return Err(inexact("device_seq"));
    }
    for FieldEdit { field, from, to } in &decision.corrections {
        if !exact_in_jcs(from) || !exact_in_jcs(to) {
            return Err(inexact(&format!("the correction of `{field}`")));
        }
    }
    Ok(())
}

fn inexact(place: &str) -> JwsError {
    JwsError::InvalidDecision(format!(
        "{place} holds an integer beyond 2^53, which JSON numbers cannot carry exactly; use a string"
    ))
}

fn exact_in_jcs(value: &Value) -> bool {
    match value {
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u <= MAX_EXACT_INTEGER,
            (None, Some(i)) => i.unsigned_abs() <= MAX_EXACT_INTEGER,
            (None, None) => true,
        },
        Value::Array(items) => items.iter().all(exact_in_jcs),
        Value::Object(members) => members.values().all(exact_in_jcs),
        Value::Null | Value::Bool(_) | Value::String(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn thumbprint_input_is_the_canonical_form() {
        let vk = key(7).verifying_key();
        let members =
            json!({"kty": "OKP", "x": URL_SAFE_NO_PAD.encode(vk.as_bytes()), "crv": "Ed25519"});
        let canonical = canonical::to_canonical_bytes(&members).unwrap();
        assert_eq!(
            key_id(&vk),
            URL_SAFE_NO_PAD.encode(Sha256::digest(&canonical))
        );
    }

    #[test]
    fn headers_are_canonical_even_with_odd_kids() {
        for kid in [
            "plain",
            "quote\" back\\slash",
            "ctl\u{1}\u{1f}\u{7f}",
            "é😂/</",
        ] {
            let jws = sign_compact(b"x", Some(kid), &key(1));
            let header = URL_SAFE_NO_PAD
                .decode(jws.split('.').next().unwrap())
                .unwrap();
            canonical::check_canonical(&header).unwrap();
            let verified = verify_compact(&jws, &key(1).verifying_key(), Some(kid)).unwrap();
            assert_eq!(verified.header["kid"], kid);
        }
    }

    #[test]
    fn decision_header_literal_is_canonical() {
        let kid = key_id(&key(3).verifying_key());
        let literal = decision_header_json(&kid);
        let header = ProtectedHeader {
            alg: ALG,
            kid: Some(&kid),
            typ: Some(DECISION_TYP),
        };
        assert_eq!(
            literal.as_bytes(),
            canonical::to_canonical_bytes(&header).unwrap()
        );
        canonical::check_canonical(literal.as_bytes()).unwrap();
    }

    #[test]
    fn generated_keys_differ() {
        let a = generate_signing_key();
        let b = generate_signing_key();
        assert_ne!(a.to_bytes(), b.to_bytes());
    }

    #[test]
    fn exactness_limit_is_two_to_the_53() {
        assert!(exact_in_jcs(&json!(9_007_199_254_740_992_u64)));
        assert!(!exact_in_jcs(&json!(9_007_199_254_740_993_u64)));
        assert!(!exact_in_jcs(&json!([{"a": -9_007_199_254_740_993_i64}])));
        assert!(exact_in_jcs(&json!(1e300)));
    }
}

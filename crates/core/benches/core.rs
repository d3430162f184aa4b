//! Benchmarks of the core's hot paths: canonical JSON and signed decisions.
//!
//! Run with `cargo bench -p countersign-core --bench core`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use countersign_core::canonical::{canonicalize, check_canonical, to_canonical_bytes};
use countersign_core::jws::{SigningKey, VerifyingKey, key_id, sign_decision, verify_decision};
use countersign_core::{Decision, DecisionKind, FieldEdit, V1};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::Signature;
use serde_json::json;
use uuid::Uuid;

/// A realistic correction: a reviewer lowers the amount, lengthens the term, adds conditions and
/// explains why at some length. Its JCS form is about 2 KB.
fn correction(key: &SigningKey, seq: u64) -> Decision {
    Decision {
        v: V1,
        decision_id: Uuid::from_u128(0x0190_8f3a_7c11_7d2e_8a4b_5c6d_7e8f_9000 + u128::from(seq)),
        item_id: Uuid::from_u128(0x0190_8f39_0000_7000_8000_0000_0000_0042),
        item_version: 3,
        lease_id: Uuid::from_u128(0x0190_8f39_1111_7000_8000_0000_0000_0007),
        lease_epoch: 2,
        evidence_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        kind: DecisionKind::Correct,
        corrections: vec![
            FieldEdit {
                field: "decision".into(),
                from: json!("approve"),
                to: json!("approve_with_conditions"),
            },
            FieldEdit {
                field: "amount".into(),
                from: json!(12000),
                to: json!(9000),
            },
            FieldEdit {
                field: "term_months".into(),
                from: json!(36),
                to: json!(48),
            },
            FieldEdit {
                field: "interest_rate".into(),
                from: json!(0.0725),
                to: json!(0.0815),
            },
            FieldEdit {
                field: "monthly_instalment".into(),
                from: json!(366.12),
                to: json!(211.37),
            },
            FieldEdit {
                field: "conditions".into(),
                from: json!([]),
                to: json!([
                    "proof of employment dated within the last 3 months",
                    "co-signer for the amount above 7 500 EUR",
                    "direct debit from a salary account"
                ]),
            },
            FieldEdit {
                field: "collateral".into(),
                from: json!(null),
                to: json!({"kind": "vehicle", "estimated_value": 6500, "currency": "EUR", "registration_checked": true}),
            },
        ],
        reason_codes: vec![
            "affordability".into(),
            "debt_to_income_above_policy".into(),
            "short_employment_history".into(),
            "existing_credits_at_other_banks".into(),
            "collateral_available".into(),
        ],
        comment: Some(
            "Applicant's income covers the instalment at 12 000 EUR only if the second existing \
             credit is ignored; the bureau report shows it running until next year. Reduced the \
             amount to 9 000 EUR over 48 months, which keeps the instalment under 30 % of net \
             income. The vehicle offered as collateral was checked against the registry. The \
             model's attribution leans heavily on 'personal status and sex' and 'foreign worker', \
             which our policy treats as protected: I did not rely on either. Please confirm the \
             employment letter before release; the current one is four months old. Second \
             review requested because the amount is within 10 % of my authority limit. \
             Ünïcödé: Größe, déjà vu, 12 € — fine."
                .into(),
        ),
        key_id: key_id(&key.verifying_key()),
        device_id: "laptop-7f3a2c9e-credit-team-north".into(),
        device_seq: 1041 + seq,
        decided_at: DateTime::parse_from_rfc3339("2026-03-14T09:26:53.589Z")
            .unwrap()
            .to_utc(),
    }
}

fn benches(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[0x42; 32]);
    let verifying = key.verifying_key();
    let decision = correction(&key, 0);
    let payload = to_canonical_bytes(&decision).unwrap();
    let jws = sign_decision(&decision, &key).unwrap();
    eprintln!(
        "decision: {} bytes of JCS, {} bytes of JWS",
        payload.len(),
        jws.len()
    );

    // The same decision as a sender might write it: pretty-printed, keys in struct order.
    let pretty = serde_json::to_vec_pretty(&decision).unwrap();
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("canonicalize_decision_2kb", |b| {
        b.iter(|| canonicalize(black_box(&pretty)).unwrap())
    });
    group.bench_function("to_canonical_bytes_decision", |b| {
        b.iter(|| to_canonical_bytes(black_box(&decision)).unwrap())
    });
    group.bench_function("sign_decision", |b| {
        b.iter(|| sign_decision(black_box(&decision), &key).unwrap())
    });
    group.bench_function("verify_decision", |b| {
        b.iter(|| verify_decision(black_box(&jws), &verifying).unwrap())
    });

    group.bench_function("check_canonical_decision", |b| {
        b.iter(|| check_canonical(black_box(&payload)).unwrap())
    });
    // Baseline: verify_strict alone over exactly the bytes a JWS signature covers.
    let (signing_input, signature_b64) = jws.rsplit_once('.').unwrap();
    let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature_b64).unwrap()).unwrap();
    group.bench_function("raw_verify_strict", |b| {
        b.iter(|| {
            verifying
                .verify_strict(black_box(signing_input.as_bytes()), &signature)
                .unwrap()
        })
    });
    group.finish();
    interleaved_ratio(&jws, signing_input, &signature, &verifying);

    let batch: Vec<String> = (0..1000)
        .map(|seq| sign_decision(&correction(&key, seq), &key).unwrap())
        .collect();
    let mut group = c.benchmark_group("core_batch");
    group.sample_size(10);
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("verify_1000_decisions", |b| {
        b.iter(|| {
            for jws in &batch {
                black_box(verify_decision(black_box(jws), &verifying).unwrap());
            }
        })
    });
    group.finish();
}

/// The ratio verify_decision / verify_strict measured with the two calls alternating, so that
/// load from other processes (which shifts criterion's one-after-the-other runs) hits both alike.
fn interleaved_ratio(jws: &str, signing_input: &str, signature: &Signature, key: &VerifyingKey) {
    const ROUNDS: usize = 20_000;
    let (mut raw, mut full) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for _ in 0..ROUNDS {
        let start = Instant::now();
        key.verify_strict(black_box(signing_input.as_bytes()), signature)
            .unwrap();
        raw.push(start.elapsed());
        let start = Instant::now();
        black_box(verify_decision(black_box(jws), key).unwrap());
        full.push(start.elapsed());
    }
    raw.sort();
    full.sort();
    let (raw, full) = (raw[ROUNDS / 2], full[ROUNDS / 2]);
    println!(
        "interleaved medians over {ROUNDS} rounds: verify_strict {raw:?}, verify_decision \
         {full:?}, ratio {:.3}",
        full.as_secs_f64() / raw.as_secs_f64()
    );
}

criterion_group!(core, benches);
criterion_main!(core);

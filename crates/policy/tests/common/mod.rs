//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use countersign_core::Output;
use serde_json::{Value, json};

pub const DEMO: &str = include_str!("../../../../examples/policy/demo.toml");
pub const INVALID: &str = include_str!("../../../../examples/policy/invalid.toml");

/// A German-credit output as the demo scorer sends it; `patch` overrides top-level fields.
pub fn output(patch: Value) -> Output {
    let mut base = json!({
        "v": 1,
        "output_id": "out-1",
        "source": "loan-origination",
        "model": {"name": "credit-scorer", "version": "1.0"},
        "subject": "application-17",
        "produced_at": "2026-03-01T10:00:00Z",
        "input": {"duration_in_month": 24, "credit_amount": 5000, "age_in_years": 35},
        "proposal": {"decision": "approve", "amount": 5000, "term_months": 24},
        "confidence": 0.92,
        "score": 0.81,
        "evidence": {
            "attributions": [
                {"feature": "duration_in_month", "value": 24, "weight": -0.30},
                {"feature": "credit_amount", "value": 5000, "weight": 0.50},
                {"feature": "age_in_years", "value": 35, "weight": 0.05}
            ],
            "reason_codes": [{"code": "good-history", "text": "Good credit history"}]
        }
    });
    if let (Value::Object(base), Value::Object(patch)) = (&mut base, patch) {
        for (k, v) in patch {
            base.insert(k, v);
        }
    }
    serde_json::from_value(base).expect("a valid output")
}

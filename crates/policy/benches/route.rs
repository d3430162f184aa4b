//! Routing cost per output with the demo policy: the gate's ingest hot path.

use std::hint::black_box;

use countersign_core::Output;
use countersign_policy::{Policy, RouteContext};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

const DEMO: &str = include_str!("../../../examples/policy/demo.toml");

fn output(confidence: f64, decision: &str) -> Output {
    let value = json!({
        "v": 1,
        "output_id": "bench-1",
        "source": "loan-origination",
        "model": {"name": "credit-scorer", "version": "1.0"},
        "subject": "application-17",
        "produced_at": "2026-03-01T10:00:00Z",
        "input": {
            "status_of_existing_checking_account": "... < 0 DM", "duration_in_month": 24,
            "credit_history": "existing credits paid back duly till now", "purpose": "car (new)",
            "credit_amount": 5000, "savings_account_and_bonds": "... < 100 DM",
            "present_employment_since": "1 <= ... < 4 years",
            "installment_rate_in_percentage_of_disposable_income": 3,
            "personal_status_and_sex": "male : single", "other_debtors_or_guarantors": "none",
            "present_residence_since": 2, "property": "car or other", "age_in_years": 35,
            "other_installment_plans": "none", "housing": "own",
            "number_of_existing_credits_at_this_bank": 1, "job": "skilled employee / official",
            "number_of_people_being_liable_to_provide_maintenance_for": 1,
            "telephone": "none", "foreign_worker": "yes"
        },
        "proposal": {"decision": decision, "amount": 5000, "term_months": 24},
        "confidence": confidence,
        "score": 0.81,
        "evidence": {
            "attributions": [
                {"feature": "status_of_existing_checking_account", "value": "... < 0 DM", "weight": -0.42},
                {"feature": "duration_in_month", "value": 24, "weight": -0.30},
                {"feature": "credit_history", "value": "existing credits paid back duly till now", "weight": 0.12},
                {"feature": "purpose", "value": "car (new)", "weight": -0.08},
                {"feature": "credit_amount", "value": 5000, "weight": 0.21},
                {"feature": "savings_account_and_bonds", "value": "... < 100 DM", "weight": -0.15},
                {"feature": "age_in_years", "value": 35, "weight": 0.04},
                {"feature": "personal_status_and_sex", "value": "male : single", "weight": 0.03},
                {"feature": "foreign_worker", "value": "yes", "weight": -0.02}
            ],
            "reason_codes": [{"code": "checking-account", "text": "No checking account balance"}]
        }
    });
    serde_json::from_value(value).expect("a valid output")
}

fn route(c: &mut Criterion) {
    let policy = Policy::parse(DEMO).expect("the demo policy is valid");
    let ctx = RouteContext::default();
    // Falls through all six rules: the most work per output.
    let auto = output(0.92, "approve");
    // Stops at the fourth rule.
    let low = output(0.55, "approve");
    c.bench_function("route demo policy: auto (all 6 rules)", |b| {
        b.iter(|| policy.route(black_box(&auto), &ctx))
    });
    c.bench_function("route demo policy: low confidence (4 rules)", |b| {
        b.iter(|| policy.route(black_box(&low), &ctx))
    });
    c.bench_function("parse and validate demo policy", |b| {
        b.iter(|| Policy::parse(black_box(DEMO)))
    });
}

criterion_group!(benches, route);
criterion_main!(benches);

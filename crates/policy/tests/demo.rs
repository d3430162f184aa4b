//! The demo policy routes each kind of German-credit output as its rules say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{DEMO, INVALID, output};
use countersign_core::{Lane, Routing};
use countersign_policy::{Policy, RouteContext};
use serde_json::json;

fn demo() -> Policy {
    Policy::parse(DEMO).expect("the demo policy is valid")
}

fn route(patch: serde_json::Value) -> Routing {
    demo()
        .route(&output(patch), &RouteContext::default())
        .unwrap()
}

#[test]
fn demo_policy_parses_with_its_settings() {
    let policy = demo();
    assert_eq!(policy.version(), 1);
    assert_eq!(policy.name(), "German credit: standard review");
    assert_eq!(
        policy.protected_features(),
        ["personal_status_and_sex", "age_in_years", "foreign_worker"]
    );
    assert_eq!(policy.probation(), ["credit-scorer@2.0"]);
    assert_eq!(policy.default_lease(), Duration::from_secs(30 * 60));
    assert_eq!(policy.max_offline_lease(), Duration::from_secs(72 * 3600));
    assert_eq!(policy.fallback_sla(), Duration::from_secs(24 * 3600));
    assert_eq!(
        policy.rule_ids(),
        [
            "protected-attribute-weight",
            "large-amount",
            "model-on-probation",
            "low-confidence",
            "decline",
            "default"
        ]
    );
    assert!(policy.reasons().len() >= 5);
    assert!(policy.reasons().iter().any(|r| r.code == "affordability"
        && r.text == "Repayments are not affordable on the stated income"));
    assert_eq!(policy.source_text(), DEMO);
    assert_eq!(
        policy.sha256(),
        countersign_core::sha256_hex(DEMO.as_bytes())
    );
    assert_eq!(policy.sha256().len(), 64);
}

#[test]
fn ordinary_confident_approval_is_auto_with_qa_sampling() {
    let r = route(json!({}));
    assert_eq!(
        r,
        Routing {
            policy_version: 1,
            rule: "default".into(),
            lane: Lane::Auto,
            authority_required: 0.0,
            approvals_required: 0,
            sla_seconds: 0,
            qa_sample_rate: 0.05,
        }
    );
}

#[test]
fn heavy_protected_attribution_is_human_only() {
    // |0.40| on a protected feature out of 0.40 + 0.30 + 0.50 = 1.2 in total: a third.
    let r = route(json!({"evidence": {"attributions": [
        {"feature": "personal_status_and_sex", "value": "female : divorced/separated/married", "weight": -0.40},
        {"feature": "duration_in_month", "value": 24, "weight": -0.30},
        {"feature": "credit_amount", "value": 5000, "weight": 0.50}
    ]}}));
    assert_eq!(r.rule, "protected-attribute-weight");
    assert_eq!(r.lane, Lane::HumanOnly);
    assert_eq!(r.authority_required, 5000.0);
    assert_eq!(r.approvals_required, 1);
    assert_eq!(r.sla_seconds, 8 * 3600);
    assert_eq!(r.qa_sample_rate, 0.0);
}

#[test]
fn large_amount_needs_four_eyes_and_authority_of_the_amount() {
    let r = route(json!({"proposal": {"decision": "approve", "amount": 18000, "term_months": 48}}));
    assert_eq!(r.rule, "large-amount");
    assert_eq!(r.lane, Lane::Review);
    assert_eq!(r.approvals_required, 2);
    assert_eq!(r.authority_required, 18000.0);
    assert_eq!(r.sla_seconds, 8 * 3600);
    // 15000 itself is not above the bound.
    let r = route(json!({"proposal": {"decision": "approve", "amount": 15000, "term_months": 48}}));
    assert_eq!(r.rule, "default");
}

#[test]
fn model_on_probation_is_reviewed() {
    let r = route(json!({"model": {"name": "credit-scorer", "version": "2.0"}}));
    assert_eq!(r.rule, "model-on-probation");
    assert_eq!(r.lane, Lane::Review);
    assert_eq!(r.approvals_required, 1);
    assert_eq!(r.sla_seconds, 4 * 3600);
}

#[test]
fn low_confidence_is_reviewed_with_authority_of_the_amount() {
    let r = route(json!({"confidence": 0.55,
        "proposal": {"decision": "approve", "amount": 7300, "term_months": 24}}));
    assert_eq!(r.rule, "low-confidence");
    assert_eq!(r.lane, Lane::Review);
    assert_eq!(r.authority_required, 7300.0);
}

#[test]
fn every_decline_is_signed_by_a_human() {
    let r = route(json!({"proposal": {"decision": "decline", "amount": 2000, "term_months": 12}}));
    assert_eq!(r.rule, "decline");
    assert_eq!(r.lane, Lane::Review);
    assert_eq!(r.sla_seconds, 24 * 3600);
}

#[test]
fn first_matching_rule_wins() {
    // Large, low-confidence decline from the model on probation with a heavy protected weight:
    // every rule matches, the first one decides.
    let all = json!({
        "model": {"name": "credit-scorer", "version": "2.0"},
        "confidence": 0.4,
        "proposal": {"decision": "decline", "amount": 20000, "term_months": 60},
        "evidence": {"attributions": [{"feature": "foreign_worker", "value": "yes", "weight": 1.0}]}
    });
    assert_eq!(route(all.clone()).rule, "protected-attribute-weight");
    let mut without_protected = all.clone();
    without_protected["evidence"] = json!({});
    assert_eq!(route(without_protected.clone()).rule, "large-amount");
    let mut small = without_protected.clone();
    small["proposal"]["amount"] = json!(9000);
    assert_eq!(route(small.clone()).rule, "model-on-probation");
    small["model"]["version"] = json!("1.0");
    assert_eq!(route(small.clone()).rule, "low-confidence");
    small["confidence"] = json!(0.95);
    assert_eq!(route(small.clone()).rule, "decline");
    small["proposal"]["decision"] = json!("approve");
    assert_eq!(route(small).rule, "default");
}

#[test]
fn tripped_circuit_breaker_sends_auto_to_review() {
    let policy = demo();
    let tripped = HashSet::from(["credit-scorer@1.0".to_owned()]);
    let routed = policy
        .route_detailed(&output(json!({})), &RouteContext::new(&tripped))
        .unwrap();
    assert_eq!(routed.routing.rule, "default+circuit-breaker");
    assert_eq!(routed.routing.lane, Lane::Review);
    assert_eq!(routed.routing.approvals_required, 1);
    assert_eq!(routed.routing.sla_seconds, 24 * 3600);
    assert_eq!(routed.routing.qa_sample_rate, 0.0);
    // The fallback authority (the amount) applies.
    assert_eq!(routed.routing.authority_required, 5000.0);
    assert_eq!(routed.error, None);
    // Held lanes are left alone, and other models are not affected.
    let decline = output(json!({"proposal": {"decision": "decline", "amount": 2000}}));
    let r = policy
        .route(&decline, &RouteContext::new(&tripped))
        .unwrap();
    assert_eq!(r.rule, "decline");
    let other = output(json!({"model": {"name": "other-scorer", "version": "1.0"}}));
    let r = policy.route(&other, &RouteContext::new(&tripped)).unwrap();
    assert_eq!(r.rule, "default");
    assert_eq!(r.lane, Lane::Auto);
}

#[test]
fn invalid_example_is_refused_with_rule_and_position() {
    let err = Policy::parse(INVALID).unwrap_err();
    assert_eq!(err.rule.as_deref(), Some("low-confidence"));
    assert_eq!(err.field.as_deref(), Some("when"));
    assert_eq!((err.line, err.column), (Some(10), Some(8)));
    let text = err.to_string();
    assert!(
        text.starts_with("rule \"low-confidence\" (line 10, column 8): when: Syntax error"),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
}

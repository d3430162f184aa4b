//! Routing semantics: variables, authorities, failures and the circuit breaker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::output;
use countersign_core::Lane;
use countersign_policy::{
    EvalError, NO_RULE_MATCHED, Policy, RouteContext, RouteError, protected_weight,
};
use serde_json::json;

/// A policy with one held rule per condition, then nothing: unmatched outputs fall through.
fn policy(rules: &str) -> Policy {
    let doc = format!(
        "version = 7\nname = \"test\"\n\
         protected_features = [\"age_in_years\", \"foreign_worker\"]\n\
         probation = [\"credit-scorer@2.0\"]\n{rules}"
    );
    Policy::parse(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"))
}

fn held(id: &str, when: &str) -> String {
    format!("[[rules]]\nid = \"{id}\"\nwhen = '{when}'\nlane = \"review\"\nsla = \"1h\"\n")
}

fn rule_for(p: &Policy, patch: serde_json::Value) -> String {
    p.route(&output(patch), &RouteContext::default())
        .unwrap()
        .rule
}

#[test]
fn protected_weight_is_the_share_of_absolute_weight() {
    let out = output(json!({"evidence": {"attributions": [
        {"feature": "age_in_years", "value": 22, "weight": -0.3},
        {"feature": "foreign_worker", "value": "yes", "weight": 0.1},
        {"feature": "credit_amount", "value": 9000, "weight": 0.4},
        {"feature": "duration_in_month", "value": 48, "weight": -0.2}
    ]}}));
    // (0.3 + 0.1) / (0.3 + 0.1 + 0.4 + 0.2) = 0.4
    let protected = ["age_in_years".to_owned(), "foreign_worker".to_owned()];
    assert!((protected_weight(&out, &protected) - 0.4).abs() < 1e-12);
    let p = policy(&(held("above", "protected_weight > 0.399999") + &held("below", "true")));
    assert_eq!(
        p.route(&out, &RouteContext::default()).unwrap().rule,
        "above"
    );
    let p = policy(&(held("above", "protected_weight > 0.400001") + &held("below", "true")));
    assert_eq!(
        p.route(&out, &RouteContext::default()).unwrap().rule,
        "below"
    );
    // No attributions: 0, not a division by zero.
    let none = output(json!({"evidence": {}}));
    assert_eq!(protected_weight(&none, &protected), 0.0);
    assert_eq!(rule_for(&p, json!({"evidence": {}})), "below");
}

#[test]
fn authority_comes_from_its_expression() {
    let p = policy(
        r#"[[rules]]
id = "scaled"
when = 'true'
lane = "review"
authority = 'amount * 1.5 + double(proposal.term_months)'
approvals = 3
sla = 5400
"#,
    );
    let r = p
        .route(
            &output(
                json!({"proposal": {"decision": "approve", "amount": 10000, "term_months": 36}}),
            ),
            &RouteContext::default(),
        )
        .unwrap();
    assert_eq!(r.rule, "scaled");
    assert_eq!(r.policy_version, 7);
    assert_eq!(r.authority_required, 15036.0);
    assert_eq!(r.approvals_required, 3);
    assert_eq!(r.sla_seconds, 5400);
    // An integer authority is accepted too.
    let p = policy(
        "[[rules]]\nid = \"int\"\nwhen = 'true'\nlane = \"review\"\nauthority = '25000'\nsla = \"1h\"\n",
    );
    let r = p
        .route(&output(json!({})), &RouteContext::default())
        .unwrap();
    assert_eq!(r.authority_required, 25000.0);
}

#[test]
fn every_variable_is_available() {
    let cases = [
        "model.name == \"credit-scorer\" && model.version == \"1.0\"",
        "model_id == \"credit-scorer@1.0\"",
        "confidence == 0.92",
        "score == 0.81",
        "proposal.term_months == 24",
        "input.age_in_years == 35",
        "amount == 5000.0",
        "decision == \"approve\"",
        "attributions[\"credit_amount\"] == 0.5 && size(attributions) == 3",
        "protected_weight > 0.05 && protected_weight < 0.06",
        "!on_probation",
        "reason_codes == [\"good-history\"]",
        "!circuit_open",
        "output.subject == \"application-17\" && output.evidence.attributions.size() == 3",
        "output.produced_at == \"2026-03-01T10:00:00Z\"",
    ];
    for (i, case) in cases.iter().enumerate() {
        let p = policy(&(held("hit", case) + &held("miss", "true")));
        assert_eq!(rule_for(&p, json!({})), "hit", "case {i}: {case}");
    }
    // Defaults when the proposal lacks the fields, and a missing score is null.
    let p = policy(
        &(held("hit", "amount == 0.0 && decision == \"\" && score == null")
            + &held("miss", "true")),
    );
    assert_eq!(
        rule_for(&p, json!({"proposal": {"amount": "lots"}, "score": null})),
        "hit"
    );
}

#[test]
fn evaluation_error_routes_to_review_and_is_reported() {
    let p = policy(
        r#"[[rules]]
id = "checking"
when = 'input.checking_account == "none"'
lane = "auto"

[[rules]]
id = "default"
when = 'true'
lane = "auto"
"#,
    );
    let routed = p
        .route_detailed(&output(json!({})), &RouteContext::default())
        .unwrap();
    assert_eq!(routed.routing.rule, "checking!error");
    assert_eq!(routed.routing.lane, Lane::Review);
    assert_eq!(routed.routing.approvals_required, 1);
    assert_eq!(routed.routing.sla_seconds, 24 * 3600);
    assert_eq!(routed.routing.qa_sample_rate, 0.0);
    assert_eq!(
        routed.error,
        Some(EvalError {
            rule: "checking".into(),
            field: "when",
            message: "No such key: checking_account".into(),
        })
    );
    // With the key present the rule evaluates normally.
    let r = p
        .route(
            &output(json!({"input": {"checking_account": "none"}})),
            &RouteContext::default(),
        )
        .unwrap();
    assert_eq!((r.rule.as_str(), r.lane), ("checking", Lane::Auto));
}

#[test]
fn failing_human_only_rule_stays_human_only_and_authority_failures_count() {
    let p = policy(
        r#"[fallback]
approvals = 2
sla = "12h"
authority = 'amount'

[[rules]]
id = "sensitive"
when = 'input.flagged'
lane = "human_only"
approvals = 1
sla = "2h"

[[rules]]
id = "priced"
when = 'true'
lane = "review"
authority = 'double(input.limit)'
sla = "3h"
"#,
    );
    let routed = p
        .route_detailed(&output(json!({})), &RouteContext::default())
        .unwrap();
    let r = &routed.routing;
    assert_eq!(
        (r.rule.as_str(), r.lane),
        ("sensitive!error", Lane::HumanOnly)
    );
    // The stricter approvals, the rule's own SLA, the fallback authority.
    assert_eq!((r.approvals_required, r.sla_seconds), (2, 2 * 3600));
    assert_eq!(r.authority_required, 5000.0);

    let routed = p
        .route_detailed(
            &output(json!({"input": {"flagged": false}})),
            &RouteContext::default(),
        )
        .unwrap();
    assert_eq!(routed.routing.rule, "priced!error");
    assert_eq!(routed.routing.lane, Lane::Review);
    assert_eq!(routed.error.as_ref().map(|e| e.field), Some("authority"));

    let r = p
        .route(
            &output(json!({"input": {"flagged": false, "limit": 30000}})),
            &RouteContext::default(),
        )
        .unwrap();
    assert_eq!((r.rule.as_str(), r.authority_required), ("priced", 30000.0));

    // A negative authority is an error too, not a limit anyone meets.
    let r = p
        .route(
            &output(json!({"input": {"flagged": false, "limit": -1}})),
            &RouteContext::default(),
        )
        .unwrap();
    assert_eq!(r.rule, "priced!error");
}

#[test]
fn no_matching_rule_goes_to_review_with_the_fallback() {
    let p = policy(&format!(
        "[fallback]\nsla = \"6h\"\nauthority = 'amount * 2.0'\n{}",
        held("never", "false")
    ));
    let routed = p
        .route_detailed(&output(json!({})), &RouteContext::default())
        .unwrap();
    assert_eq!(routed.routing.rule, NO_RULE_MATCHED);
    assert_eq!(routed.routing.lane, Lane::Review);
    assert_eq!(routed.routing.sla_seconds, 6 * 3600);
    assert_eq!(routed.routing.approvals_required, 1);
    assert_eq!(routed.routing.authority_required, 10000.0);
    assert_eq!(routed.error, None);
}

#[test]
fn circuit_breaker_is_visible_to_expressions_and_forces_review() {
    let p = policy(
        r#"[[rules]]
id = "tripped-decline"
when = 'circuit_open && decision == "decline"'
lane = "human_only"
sla = "1h"

[[rules]]
id = "auto"
when = 'true'
lane = "auto"
authority = 'amount'
qa_sample_rate = 0.1
"#,
    );
    let tripped = HashSet::from(["credit-scorer@1.0".to_owned()]);
    let ctx = RouteContext::new(&tripped);
    let decline = output(json!({"proposal": {"decision": "decline", "amount": 100}}));
    assert_eq!(p.route(&decline, &ctx).unwrap().rule, "tripped-decline");
    assert_eq!(
        p.route(&decline, &RouteContext::default()).unwrap().rule,
        "auto"
    );
    let r = p.route(&output(json!({})), &ctx).unwrap();
    assert_eq!(r.rule, "auto+circuit-breaker");
    assert_eq!(r.lane, Lane::Review);
    assert_eq!(r.authority_required, 5000.0);
    assert_eq!(r.qa_sample_rate, 0.0);
    let r = p
        .route(&output(json!({})), &RouteContext::default())
        .unwrap();
    assert_eq!(
        (r.rule.as_str(), r.lane, r.qa_sample_rate),
        ("auto", Lane::Auto, 0.1)
    );
}

#[test]
fn probation_is_by_exact_model_id() {
    let p = policy(&(held("probation", "on_probation") + &held("other", "true")));
    assert_eq!(
        rule_for(
            &p,
            json!({"model": {"name": "credit-scorer", "version": "2.0"}})
        ),
        "probation"
    );
    assert_eq!(
        rule_for(
            &p,
            json!({"model": {"name": "credit-scorer", "version": "2.0.1"}})
        ),
        "other"
    );
}

#[test]
fn malformed_outputs_are_refused() {
    let p = policy(&held("any", "true"));
    let ctx = RouteContext::default();
    let mut out = output(json!({}));
    out.confidence = 1.5;
    assert_eq!(p.route(&out, &ctx), Err(RouteError::BadConfidence(1.5)));
    out.confidence = f64::NAN;
    assert!(matches!(
        p.route(&out, &ctx),
        Err(RouteError::BadConfidence(_))
    ));
    let mut out = output(json!({}));
    out.score = Some(f64::INFINITY);
    assert!(matches!(p.route(&out, &ctx), Err(RouteError::BadScore(_))));
    let mut out = output(json!({}));
    out.evidence.attributions[0].weight = f64::NAN;
    assert_eq!(
        p.route(&out, &ctx),
        Err(RouteError::BadAttribution {
            feature: "duration_in_month".into()
        })
    );
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let mut out = output(json!({}));
    out.input.insert("nested".into(), deep);
    let err = p.route(&out, &ctx).unwrap_err();
    assert_eq!(
        err,
        RouteError::TooDeep {
            field: "input",
            limit: 64
        }
    );
    assert_eq!(err.to_string(), "input nests deeper than 64 levels");
}

#[test]
fn policy_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
    let p = std::sync::Arc::new(policy(&held("any", "amount >= 0.0")));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = std::sync::Arc::clone(&p);
            std::thread::spawn(move || {
                p.route(&output(json!({})), &RouteContext::default())
                    .unwrap()
                    .rule
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), "any");
    }
}

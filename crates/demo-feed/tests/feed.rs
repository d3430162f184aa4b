//! The demo feed end to end: training quality, determinism, exact attributions and well-formed
//! outputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use countersign_core::{Output, canonical};
use countersign_demo_feed::{
    Applicant, Encoding, FeedError, HOSTILE_MARKUP, ModelVersion, PROTECTED_ATTRIBUTES, Scorer,
    TrainConfig, applicants, dataset, demo_outputs, hostile_output, outcome_schema, parse_dataset,
};
use serde_json::{Value, json};

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T09:30:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn both() -> [Scorer; 2] {
    [
        Scorer::train(ModelVersion::V1).unwrap(),
        Scorer::train(ModelVersion::V2).unwrap(),
    ]
}

#[test]
fn training_is_deterministic() {
    let first = Scorer::train(ModelVersion::V1).unwrap();
    let second = Scorer::train(ModelVersion::V1).unwrap();
    // Bit-for-bit: PartialEq on f64 coefficients, not a tolerance.
    assert_eq!(first, second);
    let coefficients = |s: &Scorer| -> Vec<u64> {
        std::iter::once(s.intercept())
            .chain(s.columns().iter().map(|c| c.coefficient))
            .map(f64::to_bits)
            .collect()
    };
    assert_eq!(coefficients(&first), coefficients(&second));

    // The same split seed trains the same model; another seed, another one.
    let data = dataset().unwrap();
    let config = ModelVersion::V2.config();
    let fit = |seed| {
        let (train, _) = data.split(0.25, seed).unwrap();
        Scorer::fit(ModelVersion::V2.model(), &train, &config).unwrap()
    };
    assert_eq!(fit(11), fit(11));
    assert_ne!(coefficients(&fit(11)), coefficients(&fit(12)));
}

#[test]
fn models_separate_good_from_bad_well_above_chance() {
    let data = dataset().unwrap();
    for scorer in both() {
        let metrics = scorer.evaluate(&data.applicants);
        assert_eq!(metrics.count, 1000);
        let auc = metrics.auc.unwrap();
        // 70% of the applications are good: accuracy must beat always saying "approve".
        assert!(auc > 0.78, "{}: training AUC {auc}", scorer.model());
        assert!(
            metrics.accuracy > 0.74,
            "{}: training accuracy {}",
            scorer.model(),
            metrics.accuracy
        );
    }
    for version in ModelVersion::ALL {
        let mut aucs = Vec::new();
        let mut accuracies = Vec::new();
        for seed in 0..5 {
            let (train, held_out) = data.split(0.25, seed).unwrap();
            let scorer = Scorer::fit(version.model(), &train, &version.config()).unwrap();
            let metrics = scorer.evaluate(&held_out.applicants);
            assert_eq!(metrics.count, 250);
            aucs.push(metrics.auc.unwrap());
            accuracies.push(metrics.accuracy);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(mean(&aucs) > 0.74, "{version}: held-out AUCs {aucs:?}");
        assert!(
            aucs.iter().all(|&a| a > 0.70),
            "{version}: held-out AUCs {aucs:?}"
        );
        assert!(
            mean(&accuracies) > 0.71,
            "{version}: held-out accuracies {accuracies:?}"
        );
    }
}

#[test]
fn attributions_add_up_to_the_logit() {
    let applicants = applicants().unwrap();
    for scorer in both() {
        for applicant in &applicants {
            let attributions = scorer.attributions(applicant);
            assert_eq!(attributions.len(), 20);
            let sum: f64 = attributions.iter().map(|a| a.weight).sum();
            let logit = scorer.logit(applicant);
            assert!(
                (sum + scorer.base_logit() - logit).abs() < 1e-9,
                "{} row {}: {sum} + {} != {logit}",
                scorer.model(),
                applicant.row,
                scorer.base_logit()
            );
            let p = scorer.probability(applicant);
            assert!((p - 1.0 / (1.0 + (-logit).exp())).abs() < 1e-12);
        }
    }
}

#[test]
fn one_hot_columns_are_summed_into_one_attribution_per_attribute() {
    let data =
        parse_dataset("colour,size,creditability\nred,1,good\ngreen,2,bad\nblue,4,good\n").unwrap();
    let config = TrainConfig {
        l2: 0.5,
        ..TrainConfig::default()
    };
    let model = ModelVersion::V1.model();
    let scorer = Scorer::fit(model, &data, &config).unwrap();

    let columns = scorer.columns();
    let levels: Vec<&str> = columns
        .iter()
        .filter_map(|c| match &c.encoding {
            Encoding::Level(level) => Some(level.as_str()),
            Encoding::Standardised { .. } => None,
        })
        .collect();
    assert_eq!(levels, ["blue", "green", "red"]);
    for c in &columns[..3] {
        assert!((c.mean - 1.0 / 3.0).abs() < 1e-15);
        assert_ne!(c.coefficient, 0.0);
    }
    let size = &columns[3];
    let Encoding::Standardised { mean, std_dev } = size.encoding else {
        panic!("size should be numeric: {:?}", size.encoding);
    };
    assert!((mean - 7.0 / 3.0).abs() < 1e-12);
    assert!((std_dev - 14f64.sqrt() / 3.0).abs() < 1e-12);

    let coefficient = |level: &str| {
        columns
            .iter()
            .find(|c| c.encoding == Encoding::Level(level.into()))
            .unwrap()
            .coefficient
    };
    for applicant in &data.applicants {
        let colour = applicant.values["colour"].as_str().unwrap();
        let x = applicant.values["size"].as_f64().unwrap();
        let expected_colour: f64 = ["blue", "green", "red"]
            .iter()
            .map(|level| {
                let hit = if *level == colour { 1.0 } else { 0.0 };
                coefficient(level) * (hit - 1.0 / 3.0)
            })
            .sum();
        let z = (x - mean) / std_dev;
        let expected_size = size.coefficient * (z - size.mean);

        let attributions = scorer.attributions(applicant);
        assert_eq!(attributions.len(), 2);
        assert_eq!(attributions[0].feature, "colour");
        assert_eq!(attributions[0].value, json!(colour));
        assert!((attributions[0].weight - expected_colour).abs() < 1e-12);
        assert_eq!(attributions[1].feature, "size");
        assert!((attributions[1].weight - expected_size).abs() < 1e-12);

        let logit = scorer.intercept() + coefficient(colour) + size.coefficient * z;
        assert!((scorer.logit(applicant) - logit).abs() < 1e-12);
        let sum = attributions[0].weight + attributions[1].weight;
        assert!((sum + scorer.base_logit() - logit).abs() < 1e-12);
    }
}

#[test]
fn version_two_gives_no_weight_to_protected_attributes() {
    let [v1, v2] = both();
    let applicants = applicants().unwrap();
    for attribute in PROTECTED_ATTRIBUTES {
        assert!(v1.uses(attribute), "v1 should be trained on {attribute}");
        assert!(!v2.uses(attribute), "v2 must not be trained on {attribute}");
    }
    let mut v1_leans = false;
    for applicant in &applicants {
        for a in v2.attributions(applicant) {
            if PROTECTED_ATTRIBUTES.contains(&a.feature.as_str()) {
                assert_eq!(a.weight, 0.0, "row {}: {}", applicant.row, a.feature);
                assert_eq!(a.value, applicant.values[&a.feature]);
            }
        }
        v1_leans |= v1
            .attributions(applicant)
            .iter()
            .any(|a| PROTECTED_ATTRIBUTES.contains(&a.feature.as_str()) && a.weight.abs() > 0.1);
    }
    assert!(v1_leans, "v1 should visibly lean on protected attributes");

    // Changing only protected attributes moves v1's score but never v2's.
    let mut changed = applicants[1].clone();
    changed.values.insert("age_in_years".into(), json!(70));
    changed.values.insert("foreign_worker".into(), json!("no"));
    changed.values.insert(
        "personal_status_and_sex".into(),
        json!("female : divorced/separated/married"),
    );
    assert_eq!(v2.logit(&changed), v2.logit(&applicants[1]));
    assert_ne!(v1.logit(&changed), v1.logit(&applicants[1]));
}

#[test]
fn unreadable_values_count_as_average_and_never_panic() {
    let scorer = Scorer::train(ModelVersion::V1).unwrap();
    let mut applicant = applicants().unwrap()[0].clone();
    applicant
        .values
        .insert("purpose".into(), json!("spaceship"));
    applicant.values.remove("age_in_years");
    applicant
        .values
        .insert("credit_amount".into(), json!("a lot"));
    let attributions = scorer.attributions(&applicant);
    for feature in ["purpose", "age_in_years", "credit_amount"] {
        let a = attributions.iter().find(|a| a.feature == feature).unwrap();
        assert_eq!(a.weight, 0.0, "{feature}");
    }
    let age = attributions
        .iter()
        .find(|a| a.feature == "age_in_years")
        .unwrap();
    assert_eq!(age.value, Value::Null);
    let sum: f64 = attributions.iter().map(|a| a.weight).sum();
    assert!((sum + scorer.base_logit() - scorer.logit(&applicant)).abs() < 1e-9);
    // The proposal's amount cannot be read: the schema flags it instead of the feed failing.
    let output = scorer.output(&applicant, "n", at());
    let amount = &outcome_schema()[1];
    assert!(amount.check(&output.proposal["amount"]).is_err());
}

#[test]
fn outputs_are_well_formed_and_round_trip() {
    let outputs = demo_outputs(1000, "run-7", at()).unwrap();
    assert_eq!(outputs.len(), 1000);
    let schema = outcome_schema();
    let names: BTreeSet<&str> = schema.iter().map(|s| s.name.as_str()).collect();
    let header = dataset().unwrap().attributes;
    for output in &outputs {
        let json = serde_json::to_string(output).unwrap();
        let back: Output = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, output);
        canonical::to_canonical_bytes(output).unwrap();

        assert_eq!(output.source, "credit-scoring");
        assert_eq!(output.produced_at, at());
        assert_eq!(output.outcome_schema, schema);
        let keys: BTreeSet<&str> = output.proposal.keys().map(String::as_str).collect();
        assert_eq!(keys, names);
        for spec in &schema {
            spec.check(&output.proposal[&spec.name])
                .unwrap_or_else(|e| panic!("{}: {e}", output.output_id));
        }
        let input: Vec<&str> = output.input.keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = header.iter().map(|a| a.name.as_str()).collect();
        expected.sort_unstable();
        assert_eq!(input, expected);
        assert_eq!(output.proposal["amount"], output.input["credit_amount"]);
        assert_eq!(
            output.proposal["term_months"],
            output.input["duration_in_month"]
        );

        let p = output.score.unwrap();
        assert!((0.0..=1.0).contains(&p));
        assert_eq!(output.confidence, p.max(1.0 - p));
        let approve = p >= 0.5;
        assert_eq!(
            output.proposal["decision"],
            if approve { "approve" } else { "decline" }
        );
        assert_eq!(output.evidence.documents.len(), 1);
        assert_eq!(output.evidence.documents[0].title, "Application summary");
        assert!(
            output.evidence.documents[0]
                .text
                .starts_with(&format!("Application {}\n", output.subject))
        );
        // Documents reach human_only reviewers, so they must not leak the model's view.
        let summary = &output.evidence.documents[0].text;
        assert!(
            !summary.contains("P(good)")
                && !summary.contains("approve")
                && !summary.contains("decline"),
            "the application summary leaks the model's proposal: {summary}"
        );
        assert!(
            output
                .evidence
                .rationale
                .as_deref()
                .unwrap()
                .contains(&format!(
                    "proposes to {} {} EUR over {} months",
                    output.proposal["decision"].as_str().unwrap(),
                    output.proposal["amount"],
                    output.proposal["term_months"]
                ))
        );
    }
    let ids: BTreeSet<&str> = outputs.iter().map(|o| o.output_id.as_str()).collect();
    assert_eq!(ids.len(), outputs.len());
    assert_eq!(outputs[122].output_id, "credit-scorer@1.0-123-run-7");
    assert_eq!(outputs[122].subject, "APP-000123");
    assert_eq!(outputs[4].output_id, "credit-scorer@2.0-5-run-7");
}

#[test]
fn demo_outputs_mix_versions_deterministically_and_keep_ids_unique_past_the_data() {
    let first = demo_outputs(100, "a", at()).unwrap();
    assert_eq!(first, demo_outputs(100, "a", at()).unwrap());
    let v2 = first.iter().filter(|o| o.model.version == "2.0").count();
    assert_eq!(v2, 20);
    assert!(
        first.iter().all(|o| o.model.name == "credit-scorer"
            && ["1.0", "2.0"].contains(&o.model.version.as_str()))
    );
    let other = demo_outputs(100, "b", at()).unwrap();
    assert_ne!(first[0].output_id, other[0].output_id);
    assert_eq!(first[0].score, other[0].score);

    let many = demo_outputs(2100, "a", at()).unwrap();
    let ids: BTreeSet<&str> = many.iter().map(|o| o.output_id.as_str()).collect();
    assert_eq!(ids.len(), 2100);
    assert_eq!(many[1000].subject, many[0].subject);
    assert_eq!(many[1000].output_id, "credit-scorer@1.0-1-a.1");
    assert!(demo_outputs(0, "a", at()).unwrap().is_empty());
}

#[test]
fn reason_codes_name_the_strongest_attributes_in_the_proposal_direction() {
    let scorer = Scorer::train(ModelVersion::V1).unwrap();
    let mut duration_seen = false;
    let mut protected_seen = false;
    for applicant in applicants().unwrap() {
        let output = scorer.output(&applicant, "r", at());
        let approve = output.proposal["decision"] == "approve";
        let mut pushing: Vec<_> = output
            .evidence
            .attributions
            .iter()
            .filter(|a| {
                if approve {
                    a.weight > 0.0
                } else {
                    a.weight < 0.0
                }
            })
            .collect();
        pushing.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        let expected: Vec<String> = pushing
            .iter()
            .take(3)
            .map(|a| format!("R-{}", a.feature))
            .collect();
        let codes: Vec<&str> = output
            .evidence
            .reason_codes
            .iter()
            .map(|r| r.code.as_str())
            .collect();
        assert_eq!(codes, expected, "row {}", applicant.row);
        let verb = if approve { "raises" } else { "lowers" };
        for reason in &output.evidence.reason_codes {
            let protected = PROTECTED_ATTRIBUTES
                .iter()
                .any(|p| reason.code == format!("R-{p}"));
            protected_seen |= protected;
            let ending = format!(
                "{verb} the score{}",
                if protected {
                    " (protected attribute)"
                } else {
                    ""
                }
            );
            assert!(reason.text.ends_with(&ending), "{}", reason.text);
            if !approve && reason.code == "R-duration_in_month" {
                duration_seen = true;
                assert_eq!(
                    reason.text,
                    format!(
                        "Long loan duration ({} months) lowers the score",
                        applicant.values["duration_in_month"]
                    )
                );
            }
        }
        let rationale = output.evidence.rationale.as_deref().unwrap();
        assert!(rationale.contains("Protected attributes"));
    }
    assert!(duration_seen && protected_seen);

    let v2 = Scorer::train(ModelVersion::V2).unwrap();
    let output = v2.output(&applicants().unwrap()[0], "r", at());
    assert!(
        output
            .evidence
            .rationale
            .unwrap()
            .contains("does not use protected attributes")
    );
}

#[test]
fn hostile_output_carries_markup_as_plain_data() {
    let scorer = Scorer::train(ModelVersion::V1).unwrap();
    let base = scorer.output(&applicants().unwrap()[3], "h", at());
    let hostile = hostile_output(&base);
    assert_eq!(hostile.output_id, format!("{}-hostile", base.output_id));
    let rationale = hostile.evidence.rationale.as_deref().unwrap();
    assert!(rationale.contains("<img src=x onerror=alert(1)>"));
    assert!(rationale.contains("<script>alert(1)</script>"));
    assert!(
        hostile.input["purpose"]
            .as_str()
            .unwrap()
            .contains(HOSTILE_MARKUP)
    );
    assert!(
        hostile
            .evidence
            .documents
            .iter()
            .any(|d| d.text.contains("<script>"))
    );
    let json = serde_json::to_string(&hostile).unwrap();
    let back: Output = serde_json::from_str(&json).unwrap();
    assert_eq!(back, hostile);
    assert_eq!(hostile.proposal, base.proposal);
}

#[test]
fn csv_errors_are_clear_and_one_line() {
    let err = parse_dataset("colour,size,creditability\nred,1,good\nblue,\"4,bad\n").unwrap_err();
    let message = err.to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(message.starts_with("CSV line 3:"), "{message}");
    assert!(matches!(err, FeedError::Csv { line: 3, .. }));

    let err =
        parse_dataset("colour,size,creditability\nred,1,good\nred,2,bad,extra\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "CSV line 3: expected 3 fields as in the header, found 4"
    );
}

#[test]
fn training_refuses_data_it_cannot_learn_from() {
    let config = TrainConfig::default();
    let model = ModelVersion::V1.model();
    let one_class = parse_dataset("size,creditability\n1,good\n2,good\n").unwrap();
    let err = Scorer::fit(model.clone(), &one_class, &config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "training credit-scorer@1.0 failed: the data needs both good and bad applications"
    );

    // A hand-made dataset whose values do not match the declared kind.
    let mut data = parse_dataset("size,creditability\n1,good\n2,bad\n").unwrap();
    data.applicants.push(Applicant {
        row: 3,
        values: serde_json::Map::from_iter([("size".to_owned(), json!("big"))]),
        good: true,
    });
    let err = Scorer::fit(model, &data, &config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "application row 3: `size` must be a number"
    );
}

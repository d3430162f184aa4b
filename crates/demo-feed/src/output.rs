//! Turning a score into the output the gate receives: proposal, evidence and words for people.

use countersign_core::{
    Attribution, Document, Evidence, FieldSpec, FieldType, Output, ReasonCode, Timestamp, V1,
};
use serde_json::{Map, Value, json};

use crate::data::Applicant;
use crate::scorer::{PROTECTED_ATTRIBUTES, Scorer};

/// The `source` of every demo output.
pub const SOURCE: &str = "credit-scoring";

/// How many reason codes an output carries at most.
const REASONS: usize = 3;

/// The fields of a credit proposal, as a reviewer may correct them.
pub fn outcome_schema() -> Vec<FieldSpec> {
    vec![
        FieldSpec {
            name: "decision".into(),
            label: "Decision".into(),
            field_type: FieldType::Choice {
                values: vec!["approve".into(), "decline".into()],
            },
        },
        FieldSpec {
            name: "amount".into(),
            label: "Amount (EUR)".into(),
            field_type: FieldType::Integer {
                min: Some(250),
                max: Some(20_000),
            },
        },
        FieldSpec {
            name: "term_months".into(),
            label: "Term (months)".into(),
            field_type: FieldType::Integer {
                min: Some(4),
                max: Some(72),
            },
        },
    ]
}

/// Words for a numeric attribute: its label, unit, and the adjectives for a value above and below
/// the training average.
struct Numeric {
    label: &'static str,
    unit: &'static str,
    high: &'static str,
    low: &'static str,
}

const NUMERIC: &[(&str, Numeric)] = &[
    (
        "duration_in_month",
        Numeric {
            label: "loan duration",
            unit: " months",
            high: "long",
            low: "short",
        },
    ),
    (
        "credit_amount",
        Numeric {
            label: "credit amount",
            unit: " EUR",
            high: "high",
            low: "low",
        },
    ),
    (
        "installment_rate_in_percentage_of_disposable_income",
        Numeric {
            label: "instalment rate relative to disposable income",
            unit: " on a 1-4 scale",
            high: "high",
            low: "low",
        },
    ),
    (
        "present_residence_since",
        Numeric {
            label: "time at present residence",
            unit: " on a 1-4 scale",
            high: "long",
            low: "short",
        },
    ),
    (
        "age_in_years",
        Numeric {
            label: "age",
            unit: " years",
            high: "older",
            low: "younger",
        },
    ),
    (
        "number_of_existing_credits_at_this_bank",
        Numeric {
            label: "number of existing credits at this bank",
            unit: "",
            high: "high",
            low: "low",
        },
    ),
    (
        "number_of_people_being_liable_to_provide_maintenance_for",
        Numeric {
            label: "number of dependants",
            unit: "",
            high: "high",
            low: "low",
        },
    ),
];

const CATEGORICAL: &[(&str, &str)] = &[
    ("status_of_existing_checking_account", "checking account"),
    ("credit_history", "credit history"),
    ("purpose", "purpose"),
    ("savings_account_and_bonds", "savings"),
    ("present_employment_since", "employed for"),
    ("personal_status_and_sex", "personal status and sex"),
    ("other_debtors_or_guarantors", "other debtors or guarantors"),
    ("property", "property"),
    ("other_installment_plans", "other instalment plans"),
    ("housing", "housing"),
    ("job", "job"),
    ("telephone", "telephone"),
    ("foreign_worker", "foreign worker"),
];

/// A readable label for an attribute.
pub fn label(attribute: &str) -> String {
    NUMERIC
        .iter()
        .find(|(name, _)| *name == attribute)
        .map(|(_, n)| n.label)
        .or_else(|| {
            CATEGORICAL
                .iter()
                .find(|(name, _)| *name == attribute)
                .map(|(_, label)| *label)
        })
        .map_or_else(|| attribute.replace('_', " "), str::to_owned)
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "missing".into(),
        other => other.to_string(),
    }
}

/// A phrase naming an attribute and its value, e.g. `long loan duration (48 months)` or
/// `checking account "... < 0 DM"`. `above_average` picks the adjective of a numeric attribute.
fn phrase(attribute: &str, value: &Value, above_average: bool) -> String {
    if value.is_number() {
        let (label, unit, high, low) = match NUMERIC.iter().find(|(name, _)| *name == attribute) {
            Some((_, n)) => (n.label.to_owned(), n.unit, n.high, n.low),
            None => (label(attribute), "", "high", "low"),
        };
        let adjective = if above_average { high } else { low };
        format!("{adjective} {label} ({value}{unit})")
    } else {
        format!("{} \"{}\"", label(attribute), value_text(value))
    }
}

fn is_protected(attribute: &str) -> bool {
    PROTECTED_ATTRIBUTES.contains(&attribute)
}

/// Whether a numeric value lies above the training average of its attribute.
fn above_average(scorer: &Scorer, attribution: &Attribution) -> bool {
    use crate::scorer::Encoding;
    scorer
        .columns()
        .iter()
        .find(|c| c.attribute == attribution.feature)
        .and_then(|c| match c.encoding {
            Encoding::Standardised { mean, .. } => attribution.value.as_f64().map(|v| v > mean),
            Encoding::Level(_) => None,
        })
        .unwrap_or(false)
}

struct Factor {
    feature: String,
    phrase: String,
}

/// The attributions pushing one way, strongest first, at most `REASONS` of them.
fn strongest(scorer: &Scorer, attributions: &[Attribution], positive: bool) -> Vec<Factor> {
    let mut pushing: Vec<&Attribution> = attributions
        .iter()
        .filter(|a| {
            if positive {
                a.weight > 0.0
            } else {
                a.weight < 0.0
            }
        })
        .collect();
    pushing.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
    pushing
        .into_iter()
        .take(REASONS)
        .map(|a| Factor {
            feature: a.feature.clone(),
            phrase: phrase(&a.feature, &a.value, above_average(scorer, a)),
        })
        .collect()
}

fn reason(factor: &Factor, positive: bool) -> ReasonCode {
    let verb = if positive { "raises" } else { "lowers" };
    let protected = if is_protected(&factor.feature) {
        " (protected attribute)"
    } else {
        ""
    };
    ReasonCode {
        code: format!("R-{}", factor.feature),
        text: format!("{} {verb} the score{protected}", capitalise(&factor.phrase)),
    }
}

fn join(factors: &[Factor]) -> String {
    factors
        .iter()
        .map(|f| f.phrase.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The share of the total absolute attribution weight on protected attributes, as the policy
/// computes it.
fn protected_share(attributions: &[Attribution]) -> f64 {
    let total: f64 = attributions.iter().map(|a| a.weight.abs()).sum();
    let protected: f64 = attributions
        .iter()
        .filter(|a| is_protected(&a.feature))
        .map(|a| a.weight.abs())
        .sum();
    if total > 0.0 { protected / total } else { 0.0 }
}

fn int_value(values: &Map<String, Value>, attribute: &str) -> i64 {
    // Saturating float-to-int conversion is what we want for an out-of-range value: the
    // outcome schema then flags it instead of the feed failing.
    #[allow(clippy::cast_possible_truncation)]
    values
        .get(attribute)
        .and_then(Value::as_f64)
        .map_or(0, |v| v.round() as i64)
}

pub(crate) fn build(
    scorer: &Scorer,
    applicant: &Applicant,
    nonce: &str,
    produced_at: Timestamp,
) -> Output {
    let model = scorer.model();
    let p = scorer.probability(applicant);
    let approve = p >= scorer.threshold();
    let decision = if approve { "approve" } else { "decline" };
    let amount = int_value(&applicant.values, "credit_amount");
    let term = int_value(&applicant.values, "duration_in_month");
    let attributions = scorer.attributions(applicant);

    let against = strongest(scorer, &attributions, false);
    let for_ = strongest(scorer, &attributions, true);
    let reason_codes = if approve {
        for_.iter().map(|f| reason(f, true)).collect()
    } else {
        against.iter().map(|f| reason(f, false)).collect()
    };

    let mut rationale = format!(
        "{model} estimates a {:.0}% chance that the applicant repays (approval threshold {:.0}%) \
         and proposes to {decision} {amount} EUR over {term} months.",
        p * 100.0,
        scorer.threshold() * 100.0,
    );
    if !against.is_empty() {
        rationale.push_str(&format!(" Main factors against: {}.", join(&against)));
    }
    if !for_.is_empty() {
        rationale.push_str(&format!(" Main factors for: {}.", join(&for_)));
    }
    if PROTECTED_ATTRIBUTES.iter().any(|a| scorer.uses(a)) {
        rationale.push_str(&format!(
            " Protected attributes (personal status and sex, age, foreign worker) carry {:.0}% of \
             the total attribution weight.",
            protected_share(&attributions) * 100.0
        ));
    } else {
        rationale.push_str(" This model version does not use protected attributes.");
    }
    rationale.push_str(&format!(
        " Weights are contributions to the log-odds of repayment, measured from the average \
         applicant (log-odds {:.2}).",
        scorer.base_logit()
    ));

    // The summary is the applicant's file, not the model's view of it: it carries no score and no
    // proposal, because documents reach reviewers of `human_only` items, who must decide without
    // seeing what the model proposed.
    let mut summary = format!(
        "Application {}\nRequested: {amount} EUR over {term} months\n\nApplicant data:\n",
        applicant.subject()
    );
    for name in scorer.attributes() {
        let value = applicant.values.get(name).unwrap_or(&Value::Null);
        let unit = match NUMERIC.iter().find(|(n, _)| n == name) {
            Some((_, numeric)) if value.is_number() => numeric.unit,
            _ => "",
        };
        summary.push_str(&format!("- {}: {}{unit}\n", label(name), value_text(value)));
    }

    Output {
        v: V1,
        output_id: format!("{model}-{}-{nonce}", applicant.row),
        source: SOURCE.to_owned(),
        model,
        subject: applicant.subject(),
        produced_at,
        input: applicant.values.clone(),
        proposal: json_object(json!({
            "decision": decision,
            "amount": amount,
            "term_months": term,
        })),
        outcome_schema: outcome_schema(),
        confidence: p.max(1.0 - p),
        score: Some(p),
        evidence: Evidence {
            attributions,
            reason_codes,
            documents: vec![Document {
                title: "Application summary".into(),
                text: summary,
                uri: None,
            }],
            rationale: Some(rationale),
        },
    }
}

fn json_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Markup that a page must show as text, never run.
pub const HOSTILE_MARKUP: &str = "<img src=x onerror=alert(1)><script>alert(1)</script>";

/// A copy of `base` whose model text carries markup, for tests that model text is treated as data
/// (escaped, never interpreted). The rationale, a reason code, a cited document (title, text and a
/// `javascript:` link) and the `purpose` in the input snapshot and its attribution all carry
/// `<img src=x onerror=alert(1)>` and `<script>alert(1)</script>`. The id gets a `-hostile`
/// suffix so that it does not collide with `base`.
pub fn hostile_output(base: &Output) -> Output {
    let mut output = base.clone();
    output.output_id = format!("{}-hostile", base.output_id);
    let rationale = base.evidence.rationale.as_deref().unwrap_or_default();
    output.evidence.rationale = Some(format!("{HOSTILE_MARKUP} {rationale}"));
    output.evidence.reason_codes.push(ReasonCode {
        code: "R-markup".into(),
        text: format!("Applicant wrote {HOSTILE_MARKUP} in the form"),
    });
    output.evidence.documents.push(Document {
        title: "<img src=x onerror=alert(1)>Letter".into(),
        text: format!("<script>alert(1)</script>\n{HOSTILE_MARKUP}"),
        uri: Some("javascript:alert(1)".into()),
    });
    let purpose = format!("radio/television {HOSTILE_MARKUP}");
    output
        .input
        .insert("purpose".into(), Value::String(purpose.clone()));
    for attribution in &mut output.evidence.attributions {
        if attribution.feature == "purpose" {
            attribution.value = Value::String(purpose.clone());
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_read_naturally() {
        assert_eq!(
            phrase("duration_in_month", &json!(48), true),
            "long loan duration (48 months)"
        );
        assert_eq!(
            phrase("age_in_years", &json!(22), false),
            "younger age (22 years)"
        );
        assert_eq!(
            phrase(
                "status_of_existing_checking_account",
                &json!("... < 0 DM"),
                false
            ),
            "checking account \"... < 0 DM\""
        );
        assert_eq!(
            phrase("colour_of_car", &json!(3), true),
            "high colour of car (3)"
        );
        assert_eq!(capitalise("long loan"), "Long loan");
        assert_eq!(capitalise(""), "");
    }

    #[test]
    fn protected_share_matches_the_policy_definition() {
        let a = |feature: &str, weight: f64| Attribution {
            feature: feature.into(),
            value: Value::Null,
            weight,
        };
        let attributions = [
            a("age_in_years", -1.0),
            a("duration_in_month", 2.0),
            a("foreign_worker", 1.0),
        ];
        assert!((protected_share(&attributions) - 0.5).abs() < 1e-12);
        assert_eq!(protected_share(&[]), 0.0);
    }
}

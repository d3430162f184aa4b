//! Every validation error names the rule, the field and the exact line and column.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use countersign_policy::{Policy, PolicyError};

fn refuse(doc: &str) -> PolicyError {
    match Policy::parse(doc) {
        Ok(_) => panic!("policy accepted:\n{doc}"),
        Err(e) => e,
    }
}

/// Asserts rule id, field and position, and that the message is one line.
fn assert_at(
    err: &PolicyError,
    rule: Option<&str>,
    field: Option<&str>,
    line: usize,
    column: usize,
) {
    assert_eq!(err.rule.as_deref(), rule, "{err}");
    assert_eq!(err.field.as_deref(), field, "{err}");
    assert_eq!((err.line, err.column), (Some(line), Some(column)), "{err}");
    assert!(!err.to_string().contains('\n'), "one line: {err}");
}

const OK: &str = r#"version = 1
name = "t"

[[rules]]
id = "default"
when = 'true'
lane = "auto"
"#;

#[test]
fn a_minimal_policy_is_accepted() {
    let p = Policy::parse(OK).unwrap();
    assert_eq!(p.rule_ids(), ["default"]);
}

#[test]
fn bad_cel_syntax() {
    let err = refuse(
        r#"version = 1
name = "t"

[[rules]]
id = "low-confidence"
when = 'confidence <'
lane = "review"
sla = "4h"
"#,
    );
    assert_at(&err, Some("low-confidence"), Some("when"), 6, 8);
    assert!(err.message.starts_with("Syntax error"), "{err}");
    assert!(
        err.to_string()
            .starts_with("rule \"low-confidence\" (line 6, column 8): when: Syntax error"),
        "{err}"
    );
}

#[test]
fn cel_type_error_is_caught_by_the_dry_run() {
    let err = refuse(
        r#"version = 1
name = "t"

[[rules]]
id = "first"
when = 'false'
lane = "auto"

[[rules]]
id = "typed"
when = 'confidence > "x"'
lane = "review"
sla = "4h"
"#,
    );
    assert_at(&err, Some("typed"), Some("when"), 11, 8);
    assert!(err.message.contains("no matching overload"), "{err}");
    assert!(err.message.contains("dry run"), "{err}");
}

#[test]
fn dry_run_reaches_past_a_short_circuit() {
    // On the first sample confidence is 0 and the right side is never evaluated; the second
    // sample is confident, so the string-vs-int comparison is found.
    let err = refuse(
        r#"version = 1
name = "t"
[[rules]]
id = "hidden"
when = 'confidence > 0.5 && decision > 1'
lane = "review"
sla = "4h"
"#,
    );
    assert_at(&err, Some("hidden"), Some("when"), 5, 8);
    assert!(err.message.contains("(string, int)"), "{err}");
}

#[test]
fn condition_must_be_a_bool_and_authority_a_number() {
    let err = refuse(
        r#"version = 1
name = "t"
[[rules]]
id = "r"
when = 'amount'
lane = "review"
sla = "4h"
"#,
    );
    assert_at(&err, Some("r"), Some("when"), 5, 8);
    assert!(
        err.message
            .starts_with("must evaluate to a bool, but gives a double"),
        "{err}"
    );

    let err = refuse(
        r#"version = 1
name = "t"
[[rules]]
id = "r"
when = 'true'
lane = "review"
authority = 'decision'
sla = "4h"
"#,
    );
    assert_at(&err, Some("r"), Some("authority"), 7, 13);
    assert!(
        err.message
            .starts_with("must evaluate to a number, but gives a string"),
        "{err}"
    );
}

#[test]
fn unknown_variable() {
    let err = refuse(
        r#"version = 1
name = "t"

[[rules]]
id = "typo"
when = '''
  amount > 100.0 ||
  confidance < 0.5'''
lane = "review"
sla = "4h"
"#,
    );
    assert_at(&err, Some("typo"), Some("when"), 6, 8);
    assert!(
        err.message.starts_with("unknown variable `confidance`"),
        "{err}"
    );
}

#[test]
fn data_dependent_failures_do_not_refuse_a_policy() {
    // The samples have no `input.checking_account`: that is a fact about the sample, not a
    // mistake in the policy.
    Policy::parse(
        r#"version = 1
name = "t"
[[rules]]
id = "no-account"
when = 'input.checking_account == "none"'
lane = "review"
authority = 'double(input.credit_amount)'
sla = "4h"
"#,
    )
    .unwrap();
}

#[test]
fn unknown_field() {
    let err = refuse(
        r#"version = 1
name = "t"

[[rules]]
id = "a"
when = 'true'
lane = "review"
sla = "4h"

[[rules]]
id = "b"
when = 'true'
lane = "review"
slaa = "4h"
"#,
    );
    assert_at(&err, Some("b"), None, 14, 1);
    assert!(err.message.starts_with("unknown field `slaa`"), "{err}");
    assert_eq!(err.rule_index, Some(1));

    let err = refuse("version = 1\nname = \"t\"\nowner = \"me\"\n");
    assert_at(&err, None, None, 3, 1);
    assert!(err.message.starts_with("unknown field `owner`"), "{err}");
}

#[test]
fn duplicate_id() {
    let err = refuse(
        r#"version = 1
name = "t"

[[rules]]
id = "same"
when = 'confidence < 0.5'
lane = "review"
sla = "4h"

[[rules]]
id = "same"
when = 'true'
lane = "auto"
"#,
    );
    assert_at(&err, Some("same"), Some("id"), 11, 6);
    assert!(
        err.message.contains("rule #1 (line 4) already uses it"),
        "{err}"
    );
}

#[test]
fn bad_rule_id() {
    let err = refuse(
        r#"version = 1
name = "t"
[[rules]]
id = "Not Valid"
when = 'true'
lane = "auto"
"#,
    );
    assert_at(&err, Some("Not Valid"), Some("id"), 4, 6);
}

#[test]
fn bad_lane() {
    let err = refuse(
        r#"version = 1
name = "t"
[[rules]]
id = "r"
when = 'true'
lane = "automatic"
"#,
    );
    assert_at(&err, Some("r"), Some("lane"), 6, 8);
    assert!(err.message.contains("unknown lane `automatic`"), "{err}");
}

#[test]
fn qa_rate_out_of_range() {
    let err = refuse(
        r#"version = 1
name = "t"
[[rules]]
id = "r"
when = 'true'
lane = "auto"
qa_sample_rate = 1.5
"#,
    );
    assert_at(&err, Some("r"), Some("qa_sample_rate"), 7, 18);
    assert_eq!(err.message, "must be between 0 and 1, got 1.5");

    let err = refuse(
        r#"version = 1
name = "t"
[[rules]]
id = "r"
when = 'true'
lane = "review"
sla = 3600
qa_sample_rate = 0.5
"#,
    );
    assert_at(&err, Some("r"), Some("qa_sample_rate"), 8, 18);
}

#[test]
fn missing_sla_points_at_the_rule() {
    let err = refuse(
        r#"version = 1
name = "t"

[[rules]]
id = "ok"
when = 'false'
lane = "human_only"
sla = "2d"

[[rules]]
id = "no-sla"
when = 'true'
lane = "review"
"#,
    );
    assert_at(&err, Some("no-sla"), Some("sla"), 10, 1);
    assert!(err.message.contains("needs an sla"), "{err}");
}

#[test]
fn bad_sla_and_approvals() {
    let err = refuse(
        r#"version = 1
name = "t"
[[rules]]
id = "r"
when = 'true'
lane = "review"
sla = "4 fortnights"
"#,
    );
    assert_at(&err, Some("r"), Some("sla"), 7, 7);
    assert!(err.message.contains("is not a duration"), "{err}");

    let err = refuse(
        r#"version = 1
name = "t"
[[rules]]
id = "r"
when = 'true'
lane = "review"
approvals = 0
sla = "4h"
"#,
    );
    assert_at(&err, Some("r"), Some("approvals"), 7, 13);

    let err = refuse(
        r#"version = 1
name = "t"
[[rules]]
id = "r"
when = 'true'
lane = "auto"
approvals = 2
"#,
    );
    assert_at(&err, Some("r"), Some("approvals"), 7, 13);
    assert!(err.message.contains("releases without approval"), "{err}");
}

#[test]
fn empty_rules() {
    let err = refuse("version = 1\nname = \"t\"\nrules = []\n");
    assert_at(&err, None, Some("rules"), 3, 9);
    assert_eq!(err.message, "a policy needs at least one rule");

    let err = refuse("version = 1\nname = \"t\"\n");
    assert_eq!((err.line, err.rule.as_deref()), (None, None));
    assert!(err.message.contains("at least one rule"), "{err}");
}

#[test]
fn toml_errors_inside_a_rule_name_it() {
    // An unterminated string on line 6.
    let err = refuse(
        r#"version = 1
name = "t"

[[rules]]
id = "broken"
when = 'true
lane = "auto"
"#,
    );
    assert_eq!(err.rule.as_deref(), Some("broken"), "{err}");
    assert_eq!(err.line, Some(6), "{err}");

    // A missing field is reported at the rule's header.
    let err = refuse(
        r#"version = 1
name = "t"

[[rules]]
id = "no-when"
lane = "auto"
"#,
    );
    assert_at(&err, Some("no-when"), None, 4, 1);
    assert!(err.message.contains("missing field `when`"), "{err}");

    // A rule without an id is named by its position.
    let err = refuse(
        r#"version = 1
name = "t"
[[rules]]
id = "a"
when = 'true'
lane = "auto"
[[rules]]
when = 'true'
lane = "auto"
"#,
    );
    assert_eq!(
        (err.rule.as_deref(), err.rule_index),
        (None, Some(1)),
        "{err}"
    );
    assert_eq!(err.line, Some(7), "{err}");
    assert!(
        err.to_string().starts_with("rule #2 (line 7, column 1): "),
        "{err}"
    );

    // A value of the wrong type names its field.
    let err = refuse(
        r#"version = 1
name = "t"
[[rules]]
id = "a"
when = 'true'
lane = "auto"
qa_sample_rate = "often"
"#,
    );
    assert_at(&err, Some("a"), Some("qa_sample_rate"), 7, 18);
}

#[test]
fn top_level_values_are_checked() {
    let err = refuse(&OK.replace("version = 1\n", ""));
    assert_eq!((err.line, err.field.as_deref()), (None, None), "{err}");
    assert_eq!(err.to_string(), "missing field `version`");
    let err = refuse("version = 1\nname = \"t\"\n[rules]\nid = \"a\"\n");
    assert_at(&err, None, Some("rules"), 3, 1);
    let err = refuse(&OK.replace("version = 1", "version = 0"));
    assert_at(&err, None, Some("version"), 1, 11);
    let err = refuse(&OK.replace("version = 1", "version = \"one\""));
    assert_at(&err, None, Some("version"), 1, 11);
    let err = refuse(&OK.replace("name = \"t\"", "name = \"  \""));
    assert_at(&err, None, Some("name"), 2, 8);
    let err = refuse(&OK.replace(
        "name = \"t\"\n",
        "name = \"t\"\nprobation = [\"credit-scorer\"]\n",
    ));
    assert_at(&err, None, Some("probation"), 3, 14);
    let err = refuse(&OK.replace(
        "name = \"t\"\n",
        "name = \"t\"\ndefault_lease_minutes = 0\n",
    ));
    assert_at(&err, None, Some("default_lease_minutes"), 3, 25);
    let err = refuse(&OK.replace(
        "name = \"t\"\n",
        "name = \"t\"\n[[reasons]]\ncode = \"a\"\ntext = \"A\"\n[[reasons]]\ncode = \"a\"\ntext = \"again\"\n",
    ));
    assert_at(&err, None, Some("reasons.code"), 7, 8);
    let err = refuse(&OK.replace(
        "name = \"t\"\n",
        "name = \"t\"\n[fallback]\nsla = \"soon\"\n",
    ));
    assert_at(&err, None, Some("fallback.sla"), 4, 7);
    let err = refuse(&OK.replace(
        "name = \"t\"\n",
        "name = \"t\"\n[fallback]\nauthority = 'amount > 1.0'\n",
    ));
    assert_at(&err, None, Some("fallback.authority"), 4, 13);
    assert!(err.message.contains("must evaluate to a number"), "{err}");
}

#[test]
fn circuit_breaker_and_qa_are_read_and_checked() {
    let p = Policy::parse(&format!(
        "{OK}\n[circuit_breaker]\nwindow = 200\nthreshold = 0.3\nmin_decisions = 50\n\n[qa]\nsla = \"3d\"\n"
    ))
    .unwrap();
    let breaker = p.circuit_breaker().unwrap();
    assert_eq!(
        (breaker.window, breaker.min_decisions, breaker.threshold),
        (200, 50, 0.3)
    );
    assert_eq!(p.qa_sla().as_secs(), 3 * 24 * 3600);
    // Without the tables: no breaker, QA items get a week.
    let p = Policy::parse(OK).unwrap();
    assert!(p.circuit_breaker().is_none());
    assert_eq!(p.qa_sla().as_secs(), 7 * 24 * 3600);
    // min_decisions defaults to the whole window.
    let p = Policy::parse(&format!(
        "{OK}\n[circuit_breaker]\nwindow = 20\nthreshold = 0\n"
    ))
    .unwrap();
    assert_eq!(p.circuit_breaker().unwrap().min_decisions, 20);
}

#[test]
fn bad_circuit_breaker_values_point_at_the_value() {
    // Line 10 of each document holds the bad value: OK has 7 lines, then a blank one and the
    // table header.
    for (table, field, column, message) in [
        (
            "window = 0\nthreshold = 0.3",
            "circuit_breaker.window",
            10,
            "must be from 1 to 100000 decisions, got 0",
        ),
        (
            "window = 100001\nthreshold = 0.3",
            "circuit_breaker.window",
            10,
            "must be from 1 to 100000 decisions, got 100001",
        ),
        (
            "threshold = 1.0\nwindow = 10",
            "circuit_breaker.threshold",
            13,
            "must be at least 0 and below 1 (a share of overridden decisions), got 1",
        ),
        (
            "threshold = -0.1\nwindow = 10",
            "circuit_breaker.threshold",
            13,
            "must be at least 0 and below 1 (a share of overridden decisions), got -0.1",
        ),
        (
            "min_decisions = 11\nwindow = 10\nthreshold = 0.5",
            "circuit_breaker.min_decisions",
            17,
            "must be from 1 to the window (10), got 11",
        ),
    ] {
        let err = refuse(&format!("{OK}\n[circuit_breaker]\n{table}\n"));
        assert_at(&err, None, Some(field), 10, column);
        assert_eq!(err.message, message);
    }
    let err = refuse(&format!("{OK}\n[circuit_breaker]\nwindow = 10\n"));
    assert!(err.message.contains("missing field `threshold`"), "{err}");
    let err = refuse(&format!(
        "{OK}\n[circuit_breaker]\nwindow = 10\nthreshold = 0.2\nthreshhold = 0.3\n"
    ));
    assert!(err.message.contains("unknown field `threshhold`"), "{err}");
    let err = refuse(&format!("{OK}\n[qa]\nsla = \"soon\"\n"));
    assert_at(&err, None, Some("qa.sla"), 10, 7);
}

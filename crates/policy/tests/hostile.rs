//! Huge and hostile documents are refused with an error, never a panic or a stack overflow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::output;
use countersign_policy::{
    MAX_EXPRESSION_BYTES, MAX_EXPRESSION_DEPTH, MAX_POLICY_BYTES, MAX_RULES, Policy, RouteContext,
};
use serde_json::json;

fn with_when(when: &str) -> String {
    format!(
        "version = 1\nname = \"t\"\n[[rules]]\nid = \"hostile\"\nwhen = '{when}'\nlane = \"review\"\nsla = \"1h\"\n"
    )
}

#[test]
fn a_megabyte_expression_is_refused() {
    let doc = with_when("true && ".repeat(1 << 17).trim_end_matches(" && "));
    assert!(doc.len() > 1 << 20);
    let err = Policy::parse(&doc).unwrap_err();
    assert!(
        err.message
            .contains(&format!("the limit is {MAX_POLICY_BYTES}")),
        "{err}"
    );
}

#[test]
fn an_expression_over_the_limit_is_refused_with_its_position() {
    let when = vec!["confidence > 0.5"; 300].join(" || ");
    assert!(when.len() > MAX_EXPRESSION_BYTES);
    let err = Policy::parse(&with_when(&when)).unwrap_err();
    assert_eq!(err.rule.as_deref(), Some("hostile"));
    assert_eq!((err.line, err.column), (Some(5), Some(8)));
    assert!(err.message.contains("bytes long"), "{err}");
}

#[test]
fn deep_nesting_in_expressions_is_refused() {
    let cases = [
        format!("{}true{}", "(".repeat(1500), ")".repeat(1500)),
        format!("{}1{} > 0", "int(".repeat(800), ")".repeat(800)),
        format!("{}1{} > 0", "[".repeat(1500), "]".repeat(1500)),
        format!("{} > 0", vec!["1"; 1500].join("+")),
        format!("input{} == 1", ".a".repeat(1500)),
    ];
    for when in cases {
        let err = Policy::parse(&with_when(&when)).unwrap_err();
        assert_eq!(err.rule.as_deref(), Some("hostile"), "{err}");
        assert_eq!(err.field.as_deref(), Some("when"), "{err}");
        assert!(
            err.message.contains("nests deeper") || err.message.contains("Syntax error"),
            "{err}"
        );
    }
}

#[test]
fn long_unary_chains_fold_away() {
    // The parser folds `!!x` and `--x`: a long chain is harmless and routes like its fold.
    for when in [
        format!("{}true", "!".repeat(3000)),
        format!("{}1 > 0", "-".repeat(3000)),
    ] {
        let policy = Policy::parse(&with_when(&when)).unwrap();
        let r = policy
            .route(&output(json!({})), &RouteContext::default())
            .unwrap();
        assert_eq!(r.rule, "hostile");
    }
}

#[test]
fn nested_loops_are_refused() {
    let when = "reason_codes.all(a, reason_codes.all(b, reason_codes.all(c, a + b + c != \"\")))";
    let err = Policy::parse(&with_when(when)).unwrap_err();
    assert!(err.message.contains("cannot be nested"), "{err}");
}

#[test]
fn deep_toml_is_refused() {
    let doc = format!(
        "version = 1\nname = \"t\"\nx = {}1{}\n",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let err = Policy::parse(&doc).unwrap_err();
    assert!(err.message.contains("recurs"), "{err}");
    let doc = format!(
        "version = 1\nname = \"t\"\nx = {}1{}\n",
        "{a=".repeat(50_000),
        "}".repeat(50_000)
    );
    assert!(Policy::parse(&doc).is_err());
}

#[test]
fn too_many_rules_are_refused() {
    let mut doc = String::from("version = 1\nname = \"t\"\n");
    for i in 0..=MAX_RULES {
        doc.push_str(&format!(
            "[[rules]]\nid = \"r{i}\"\nwhen = 'false'\nlane = \"auto\"\n"
        ));
    }
    let err = Policy::parse(&doc).unwrap_err();
    assert!(err.message.contains("rules; the limit is"), "{err}");
}

#[test]
fn garbage_is_refused() {
    for doc in [
        "",
        "\u{0}\u{1}\u{2}",
        "[[[[",
        "version = 1\nname = \"t\"\n[[rules]]\n= 'x'",
        "🙂 = 1",
    ] {
        assert!(Policy::parse(doc).is_err(), "{doc:?}");
    }
}

#[test]
fn the_deepest_accepted_expression_routes_on_a_small_stack() {
    // `a + a + ... > 0.0` with n terms is n + 1 levels deep. Routing happens on the caller's
    // thread, so the deepest accepted expression must fit half the default 2 MiB thread stack,
    // even in a debug build.
    let chain = |n: usize| format!("{} > 0.0", vec!["amount"; n].join(" + "));
    let err = Policy::parse(&with_when(&chain(MAX_EXPRESSION_DEPTH))).unwrap_err();
    assert!(err.message.contains("nests deeper than"), "{err}");
    let policy = Policy::parse(&with_when(&chain(MAX_EXPRESSION_DEPTH - 1))).unwrap();
    let routing = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            policy
                .route(&output(json!({})), &RouteContext::default())
                .unwrap()
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(routing.rule, "hostile");
}

//! Help on every command and subcommand, and usage errors reported like every other failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::run;

const COMMANDS: &[&[&str]] = &[
    &[],
    &["canon"],
    &["decision"],
    &["decision", "verify"],
    &["decision", "inspect"],
    &["decision", "sign"],
    &["key"],
    &["key", "generate"],
    &["key", "public"],
    &["proof"],
    &["proof", "inclusion"],
    &["proof", "consistency"],
];

#[test]
fn long_help_has_usage_and_an_example_everywhere() {
    for command in COMMANDS {
        let mut args = command.to_vec();
        args.push("--help");
        let out = run(&args, None);
        out.ok();
        let text = out.stdout_text();
        let usage = format!(
            "Usage: {}",
            ["countersign"]
                .iter()
                .chain(command.iter())
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert!(text.contains(&usage), "{args:?}: {text}");
        let examples = text.split("Examples:\n").nth(1).unwrap_or_default();
        assert!(examples.starts_with("  $ "), "{args:?}: {text}");
        assert!(examples.contains("countersign "), "{args:?}: {text}");
    }
}

#[test]
fn short_help_and_help_subcommand_work() {
    for command in COMMANDS {
        let mut args = command.to_vec();
        args.push("-h");
        let out = run(&args, None);
        out.ok();
        assert!(out.stdout_text().contains("Usage: countersign"), "{args:?}");
        let mut args = vec!["help"];
        args.extend_from_slice(command);
        let out = run(&args, None);
        out.ok();
        assert!(out.stdout_text().contains("Usage: countersign"), "{args:?}");
    }
}

#[test]
fn version_is_printed() {
    let out = run(&["--version"], None);
    out.ok();
    assert_eq!(
        out.stdout_text(),
        format!("countersign {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_are_one_line_with_status_2() {
    run(&[], None).fails(2, "requires a subcommand");
    run(&["decision"], None).fails(2, "[subcommands: verify, inspect, sign");
    run(&["bogus"], None).fails(2, "unrecognized subcommand 'bogus'");
    run(&["canon", "--bogus"], None).fails(2, "unexpected argument '--bogus'");
    run(&["canon", "a", "b"], None).fails(2, "unexpected argument 'b'");
    run(&["decision", "verify"], None).fails(2, "--public-key <KEY>");
    run(&["key", "generate"], None).fails(2, "--out <FILE>");
    run(&["canon", "--sha256", "--no-newline"], None).fails(2, "cannot be used with");
}

//! `countersign-gate policy validate|activate|rollback|list` through the binary, as an admin
//! runs them: an invalid or hostile file is refused with where it is wrong, and the active
//! policy stays.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const DEMO_POLICY: &str = include_str!("../../../examples/policy/demo.toml");

/// Runs `countersign-gate policy ARGS`; one that does not end within 30 s (a file read without
/// end) fails the test instead of hanging it.
fn policy(data_dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_countersign-gate"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("policy")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`policy {}` did not end", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The active version as `policy list` marks it.
fn active(data_dir: &Path) -> String {
    let out = policy(data_dir, &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    listed
        .lines()
        .find_map(|l| l.strip_prefix('*'))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no active version in {listed:?}"))
}

#[test]
fn policies_are_validated_activated_and_rolled_back_and_a_bad_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gate");
    let file = |name: &str, body: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path.display().to_string()
    };
    let v1 = file("v1.toml", DEMO_POLICY.as_bytes());
    let v2 = file(
        "v2.toml",
        DEMO_POLICY
            .replacen("version = 1", "version = 2", 1)
            .as_bytes(),
    );
    // A rule whose condition is not a valid expression: the error names the rule and where.
    let broken = file(
        "broken.toml",
        DEMO_POLICY
            .replacen("version = 1", "version = 3", 1)
            .replacen("'amount > 15000.0'", "'amount > > 15000.0'", 1)
            .as_bytes(),
    );

    let out = policy(&data, &["validate", &v1]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("valid (version 1"),
        "{}",
        text(&out.stdout)
    );

    let out = policy(&data, &["validate", &broken]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("large-amount"), "the rule is named: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    assert!(policy(&data, &["activate", &v1]).status.success());
    assert!(policy(&data, &["activate", &v2]).status.success());
    assert_eq!(active(&data), "2");
    // Refused: an invalid policy, an older version, and files that are not policies at all.
    let oversized = file("big.toml", &vec![b'#'; 1024 * 1024 + 1]);
    let not_utf8 = file("latin1.toml", b"name = \"caf\xe9\"\n");
    for (args, says) in [
        (vec!["activate", broken.as_str()], "large-amount"),
        (vec!["activate", v1.as_str()], "version"),
        (vec!["activate", oversized.as_str()], "limited to 1 MiB"),
        (vec!["activate", not_utf8.as_str()], "UTF-8"),
        (vec!["validate", "/dev/zero"], "limited to 1 MiB"),
        (vec!["activate", "/no/such/policy.toml"], "policy.toml"),
    ] {
        let out = policy(&data, &args);
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = text(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(active(&data), "2", "{args:?} changed the active policy");
    }

    let out = policy(&data, &["rollback"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(active(&data), "1");
}

//! `countersign proof` against the transparency-dev/merkle RFC 6962 vectors that
//! crates/core/tests/vectors holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::run;
use serde_json::Value;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/vectors/rfc6962")
}

fn vector(rel: &str) -> String {
    vectors().join(rel).to_str().unwrap().to_owned()
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

#[test]
fn happy_paths_verify() {
    let out = run(
        &["proof", "inclusion", &vector("inclusion/1/happy-path.json")],
        None,
    );
    out.ok();
    assert_eq!(
        out.stdout_text(),
        "inclusion proof verifies: leaf 0 in tree of size 8\n"
    );
    let out = run(
        &[
            "proof",
            "consistency",
            &vector("consistency/1/happy-path.json"),
        ],
        None,
    );
    out.ok();
    assert_eq!(
        out.stdout_text(),
        "consistency proof verifies: tree of size 8 extends tree of size 1\n"
    );
    // A null proof is an empty one.
    let out = run(
        &["proof", "inclusion", &vector("inclusion/0/happy-path.json")],
        None,
    );
    out.ok();
    assert_eq!(
        out.stdout_text(),
        "inclusion proof verifies: leaf 0 in tree of size 1\n"
    );
}

#[test]
fn reads_standard_input() {
    let text = std::fs::read(vector("consistency/2/happy-path.json")).unwrap();
    run(&["proof", "consistency"], Some(&text)).ok();
    run(&["proof", "consistency", "-"], Some(&text)).ok();
}

#[test]
fn want_err_vectors_fail_with_their_reason() {
    run(
        &[
            "proof",
            "inclusion",
            &vector("inclusion/1/modified-proof[1]-bit-@3.json"),
        ],
        None,
    )
    .fails(
        1,
        "inclusion proof does not verify: proof does not lead to the expected root",
    );
    run(
        &[
            "proof",
            "inclusion",
            &vector("inclusion/1/removed-component.json"),
        ],
        None,
    )
    .fails(1, "inclusion proof does not verify: proof has");
    run(
        &[
            "proof",
            "inclusion",
            &vector("inclusion/1/leafIdx-plus-@1.json"),
        ],
        None,
    )
    .fails(1, "inclusion proof does not verify: ");
    run(
        &[
            "proof",
            "inclusion",
            &vector("inclusion/single-entry/empty-leaf.json"),
        ],
        None,
    )
    .fails(1, "leafHash is not a 32-byte hash (it has 0 bytes)");
    run(
        &[
            "proof",
            "consistency",
            &vector("consistency/1/swapped-roots.json"),
        ],
        None,
    )
    .fails(1, "consistency proof does not verify: ");
    run(
        &[
            "proof",
            "consistency",
            &vector("consistency/1/truncated-proof.json"),
        ],
        None,
    )
    .fails(1, "consistency proof does not verify: proof has");
    // The vectors for a shrinking tree carry 12-byte "roots"; with real hashes the reason is
    // the sizes.
    let happy = std::fs::read_to_string(vector("consistency/1/happy-path.json")).unwrap();
    let shrinking = happy.replace("\"size1\": 1,", "\"size1\": 9,");
    assert_ne!(shrinking, happy);
    run(&["proof", "consistency"], Some(shrinking.as_bytes()))
        .fails(1, "tree size 9 cannot be followed by the smaller size 8");
}

/// Every vector: exit 0 exactly when it does not set wantErr, 1 otherwise. The one documented
/// deviation (12-byte "roots" that the Go library never reads) is refused for its hash length.
#[test]
fn every_vector_gets_the_expected_exit_status() {
    let root = vectors();
    let mut files = Vec::new();
    json_files(&root, &mut files);
    files.sort();
    assert_eq!(files.len(), 196, "the vector copy lost or gained files");
    let (mut accepted, mut refused) = (0, 0);
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let command = if rel.starts_with("inclusion/") {
            "inclusion"
        } else {
            "consistency"
        };
        let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let want_err = doc["wantErr"].as_bool().unwrap();
        let out = run(&["proof", command, path.to_str().unwrap()], None);
        if rel == "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json" {
            out.fails(1, "root1 is not a 32-byte hash (it has 12 bytes)");
            continue;
        }
        if want_err {
            out.fails(1, &format!("{command} proof does not verify: "));
            refused += 1;
        } else {
            out.ok();
            accepted += 1;
        }
    }
    assert_eq!((accepted, refused), (11, 184));
}

#[test]
fn malformed_documents_are_input_errors() {
    let happy = std::fs::read_to_string(vector("inclusion/1/happy-path.json")).unwrap();
    let negative = happy.replace("\"leafIdx\": 0", "\"leafIdx\": -1");
    assert_ne!(negative, happy);
    let duplicated = happy.replacen("{", "{\"root\": \"AAAA\",", 1);
    let cases = [
        ("not json".to_owned(), "is not an inclusion proof"),
        ("{}".to_owned(), "missing field `leafIdx`"),
        (negative, "invalid value: integer `-1`"),
        (duplicated, "duplicate object key \"root\""),
        ("[]".to_owned(), "is not an inclusion proof"),
    ];
    for (input, why) in cases {
        run(&["proof", "inclusion"], Some(input.as_bytes())).fails(2, why);
    }
    // An inclusion proof handed to the consistency check.
    run(&["proof", "consistency"], Some(happy.as_bytes())).fails(2, "missing field `size1`");
    run(&["proof", "inclusion", "/no/such/proof.json"], None).fails(2, "cannot read");
    let bad_b64 = happy.replace("\"root\": \"", "\"root\": \"!");
    run(&["proof", "inclusion"], Some(bad_b64.as_bytes())).fails(1, "root is not base64");
}

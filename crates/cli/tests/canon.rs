//! `countersign canon` against the RFC 8785 examples and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;

use common::run;

#[test]
fn brief_example_from_stdin() {
    let out = run(&["canon"], Some(br#"{"b":1,"a":[1.0,2e2]}"#));
    out.ok();
    assert_eq!(out.stdout, b"{\"a\":[1,200],\"b\":1}\n");
    // `-` is standard input too.
    let dash = run(&["canon", "-"], Some(b"{\"b\":1,\"a\":[1.0,2e2]}\n"));
    dash.ok();
    assert_eq!(dash.stdout, out.stdout);
}

#[test]
fn no_newline_prints_the_exact_bytes() {
    let out = run(
        &["canon", "--no-newline"],
        Some(br#"{"b":1,"a":[1.0,2e2]}"#),
    );
    out.ok();
    assert_eq!(out.stdout, br#"{"a":[1,200],"b":1}"#);
    let short = run(&["canon", "-n"], Some(b" [ true , null ] "));
    short.ok();
    assert_eq!(short.stdout, b"[true,null]");
}

#[test]
fn sha256_hashes_the_canonical_bytes() {
    let out = run(&["canon", "--sha256"], Some(b"{ \"b\" : 1, \"a\" : 2 }"));
    out.ok();
    let expected = countersign_core::sha256_hex(br#"{"a":2,"b":1}"#);
    assert_eq!(out.stdout_text(), format!("{expected}\n"));
}

#[test]
fn reads_a_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"{\n  \"z\": [1e21, 1e-7, 0.000001, -0],\n  \"y\": \"\\u00e9\\n\"\n}\n")
        .unwrap();
    let out = run(&["canon", file.path().to_str().unwrap()], None);
    out.ok();
    assert_eq!(
        out.stdout_text(),
        "{\"y\":\"é\\n\",\"z\":[1e+21,1e-7,0.000001,0]}\n"
    );
}

/// RFC 8785 section 3.2.2's sample, with its expected output.
#[test]
fn rfc8785_sample() {
    let input = br#"{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"#;
    let out = run(&["canon", "-n"], Some(input));
    out.ok();
    assert_eq!(
        out.stdout_text(),
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
}

/// RFC 8785 section 3.2.3: members sorted by UTF-16 code units, not by code points or UTF-8.
#[test]
fn rfc8785_sorting_sample() {
    let input = br#"{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"#;
    let out = run(&["canon", "-n"], Some(input));
    out.ok();
    let text = out.stdout_text();
    let values: Vec<&str> = text.split('"').skip(3).step_by(4).collect();
    assert_eq!(
        values,
        [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small Letter O With Diaeresis",
            "Euro Sign",
            "Emoji: Grinning Face",
            "Hebrew Letter Dalet With Dagesh"
        ]
    );
    assert!(text.starts_with("{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":"));
}

#[test]
fn duplicate_key_is_refused() {
    run(&["canon"], Some(br#"{"a":1,"b":{"c":2,"c":3}}"#))
        .fails(2, r#"duplicate object key "c" at /b/c"#);
    run(&["canon"], Some(br#"{"a":1,"a":1}"#)).fails(2, r#"duplicate object key "a""#);
}

#[test]
fn invalid_json_is_refused() {
    for input in [
        &b"{\"a\":}"[..],
        b"",
        b"   ",
        b"[1,2,]",
        b"{'a':1}",
        b"NaN",
        b"1e400",
        b"[1] [2]",
        b"\"unterminated",
        b"{\"a\":1}\n{\"b\":2}",
    ] {
        let out = run(&["canon"], Some(input));
        out.fails(2, "cannot canonicalize standard input: ");
    }
    run(&["canon"], Some(b"{\"a\" 1}")).fails(2, "invalid JSON at line 1 column");
}

#[test]
fn lone_surrogates_invalid_utf8_and_deep_nesting_are_refused() {
    run(&["canon"], Some(br#"["\ud800"]"#)).fails(2, "unpaired UTF-16 surrogate");
    run(&["canon"], Some(br#"{"\udc00x":1}"#)).fails(2, "unpaired UTF-16 surrogate");
    run(&["canon"], Some(b"[\"\xff\xfe\"]")).fails(2, "not valid UTF-8");
    let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
    run(&["canon"], Some(deep.as_bytes())).fails(2, "nest deeper than 128 levels");
    // Far deeper than any stack could take if the parser recursed without a limit.
    let hostile = "[{\"a\":".repeat(200_000);
    run(&["canon"], Some(hostile.as_bytes())).fails(2, "nest deeper than 128 levels");
    let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
    run(&["canon", "-n"], Some(ok.as_bytes())).ok();
}

#[test]
fn missing_and_unreadable_files_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    run(&["canon", missing.to_str().unwrap()], None).fails(2, "No such file or directory");
    run(&["canon", dir.path().to_str().unwrap()], None).fails(2, "cannot read");
}

#[test]
fn oversized_input_is_refused() {
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().set_len((16 << 20) + 1).unwrap();
    run(&["canon", file.path().to_str().unwrap()], None).fails(2, "16 MiB input limit");
}

#[test]
fn hostile_file_names_stay_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let name = dir.path().join("evil\nname\u{1b}[31m.json");
    std::fs::write(&name, b"{\"a\":1,\"a\":2}").unwrap();
    let out = run(&["canon", name.to_str().unwrap()], None);
    out.fails(2, "evil\\nname\\u{1b}[31m.json");
    assert!(!out.stderr.contains('\u{1b}'));
}

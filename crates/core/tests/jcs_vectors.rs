//! RFC 8785 conformance: the cyberphone vectors, and the strict reader's refusals.

use std::fs;
use std::path::Path;

use countersign_core::canonical::{
    CanonError, MAX_DEPTH, canonicalize, check_canonical, parse_strict, to_canonical_bytes,
};
use serde_json::json;

#[test]
fn cyberphone_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/jcs");
    let mut names: Vec<_> = fs::read_dir(dir.join("input"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    names.sort();
    let mut passed = 0;
    for name in &names {
        let input = fs::read(dir.join("input").join(name)).unwrap();
        let expected = fs::read(dir.join("output").join(name)).unwrap();
        let actual = canonicalize(&input).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&actual),
            String::from_utf8_lossy(&expected),
            "{name:?}"
        );
        assert_eq!(actual, expected, "{name:?}");
        assert_eq!(check_canonical(&expected), Ok(()), "{name:?}");
        assert_eq!(
            check_canonical(&input),
            Err(CanonError::NotCanonical),
            "{name:?}"
        );
        assert_eq!(canonicalize(&expected).unwrap(), expected, "{name:?}");
        passed += 1;
    }
    println!("JCS vectors: {passed} passed");
    assert!(
        passed >= 6,
        "expected the 6 cyberphone vectors, ran {passed}"
    );
    assert_eq!(passed, names.len());
}

#[test]
fn sorts_keys_and_writes_numbers_as_ecmascript_does() {
    assert_eq!(
        canonicalize(br#"{"b":1,"a":[1.0,2e2]}"#).unwrap(),
        br#"{"a":[1,200],"b":1}"#
    );
    assert_eq!(
        canonicalize(br#"[-0, 0.0, 1E21, 1e-7, 123456789012345678901234567890]"#).unwrap(),
        br#"[0,0,1e+21,1e-7,1.2345678901234568e+29]"#
    );
}

/// JCS numbers are IEEE-754 doubles: integers beyond 2^53 round as JavaScript's JSON.parse
/// rounds them, whether serde_json read them as u64 or (beyond u64) as f64.
#[test]
fn large_integers_round_to_the_nearest_double() {
    let cases: [(&str, &str); 6] = [
        ("9007199254740992", "9007199254740992"),
        ("9007199254740993", "9007199254740992"),
        ("9007199254740995", "9007199254740996"),
        ("18446744073709551615", "18446744073709552000"),
        ("18446744073709551616", "18446744073709552000"),
        ("-9223372036854775809", "-9223372036854776000"),
    ];
    for (input, expected) in cases {
        assert_eq!(
            String::from_utf8(canonicalize(input.as_bytes()).unwrap()).unwrap(),
            expected,
            "{input}"
        );
    }
    assert_eq!(
        to_canonical_bytes(&9_007_199_254_740_993_u64).unwrap(),
        b"9007199254740992"
    );
    assert!(matches!(
        canonicalize(b"1e400"),
        Err(CanonError::InvalidJson { .. })
    ));
}

#[test]
fn duplicate_keys_are_refused_with_their_path() {
    assert_eq!(
        parse_strict(br#"{"a":1,"a":2}"#),
        Err(CanonError::DuplicateKey {
            key: "a".into(),
            path: "/a".into()
        })
    );
    let nested = br#"{"x":[{"k":1},{"k":1,"z":{"a/b~":0,"a/b~":1}}]}"#;
    let err = parse_strict(nested).unwrap_err();
    assert_eq!(
        err,
        CanonError::DuplicateKey {
            key: "a/b~".into(),
            path: "/x/1/z/a~1b~0".into()
        }
    );
    assert_eq!(
        err.to_string(),
        r#"duplicate object key "a/b~" at /x/1/z/a~1b~0"#
    );
    // Escapes are decoded before comparing: these are the same key.
    assert!(matches!(
        canonicalize(br#"{"a":1,"\u0061":2}"#),
        Err(CanonError::DuplicateKey { key, .. }) if key == "a"
    ));
    assert!(matches!(
        check_canonical(br#"{"a":1,"a":1}"#),
        Err(CanonError::DuplicateKey { .. })
    ));
}

#[test]
fn lone_surrogates_are_refused() {
    for input in [
        r#""\ud800""#,
        r#""\udc00""#,
        r#""\ud800\u0041""#,
        r#""\ud800x""#,
        r#""\udbff\n""#,
        r#"{"\ud800":1}"#,
        r#"["ok","\ude02\ud83d"]"#,
    ] {
        assert_eq!(
            parse_strict(input.as_bytes()),
            Err(CanonError::LoneSurrogate),
            "{input}"
        );
    }
    assert_eq!(
        canonicalize(br#""\ud83d\ude02""#).unwrap(),
        "\"😂\"".as_bytes()
    );
}

#[test]
fn nesting_is_limited_without_exhausting_the_stack() {
    let within = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(canonicalize(within.as_bytes()).is_ok());
    assert_eq!(check_canonical(within.as_bytes()), Ok(()));
    let beyond = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert_eq!(
        parse_strict(beyond.as_bytes()),
        Err(CanonError::TooDeep { max: MAX_DEPTH })
    );
    assert_eq!(
        check_canonical(beyond.as_bytes()),
        Err(CanonError::TooDeep { max: MAX_DEPTH })
    );
    // Hostile inputs, unterminated: refused at the limit, long before the stack runs out.
    let bomb = "[".repeat(100_000);
    assert_eq!(
        parse_strict(bomb.as_bytes()),
        Err(CanonError::TooDeep { max: MAX_DEPTH })
    );
    assert_eq!(
        check_canonical(bomb.as_bytes()),
        Err(CanonError::TooDeep { max: MAX_DEPTH })
    );
    let objects = r#"{"a":"#.repeat(100_000);
    assert_eq!(
        canonicalize(objects.as_bytes()),
        Err(CanonError::TooDeep { max: MAX_DEPTH })
    );
}

#[test]
fn invalid_utf8_is_refused() {
    for input in [
        &b"\"\xff\""[..],
        b"\"\xc0\xaf\"",
        b"\"\xed\xa0\x80\"",
        b"[\"a\"]\x80",
    ] {
        assert_eq!(parse_strict(input), Err(CanonError::NotUtf8), "{input:?}");
        assert_eq!(
            check_canonical(input),
            Err(CanonError::NotUtf8),
            "{input:?}"
        );
    }
}

#[test]
fn syntax_errors_say_where() {
    let err = parse_strict(b"{\"a\":1}\n x").unwrap_err();
    assert_eq!(
        err,
        CanonError::InvalidJson {
            line: 2,
            column: 2,
            message: "trailing characters".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "invalid JSON at line 2 column 2: trailing characters"
    );
    for input in [
        &b""[..],
        b"[1,]",
        b"{'a':1}",
        b"NaN",
        b"[1] [2]",
        b"\"\x01\"",
    ] {
        let err = parse_strict(input).unwrap_err();
        assert!(
            matches!(err, CanonError::InvalidJson { .. }),
            "{input:?}: {err}"
        );
        assert!(!err.to_string().contains('\n'));
    }
}

#[test]
fn non_finite_numbers_cannot_be_serialized() {
    #[derive(serde::Serialize)]
    struct Score {
        value: f64,
    }
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(to_canonical_bytes(&value), Err(CanonError::NonFinite));
        assert_eq!(
            to_canonical_bytes(&Score { value }),
            Err(CanonError::NonFinite)
        );
        assert_eq!(
            to_canonical_bytes(&vec![1.0, value]),
            Err(CanonError::NonFinite)
        );
    }
    assert_eq!(
        to_canonical_bytes(&Score { value: 0.5 }).unwrap(),
        br#"{"value":0.5}"#
    );
}

#[test]
fn other_serialization_failures_keep_their_message() {
    struct Refuses;
    impl serde::Serialize for Refuses {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refused on purpose"))
        }
    }
    let err = to_canonical_bytes(&vec![Refuses]).unwrap_err();
    assert!(
        matches!(&err, CanonError::Serialize(m) if m.contains("refused on purpose")),
        "{err}"
    );
    let mut non_string_keys = std::collections::BTreeMap::new();
    non_string_keys.insert((1, 2), "pair");
    assert!(matches!(
        to_canonical_bytes(&non_string_keys),
        Err(CanonError::Serialize(_))
    ));
}

#[test]
fn check_canonical_refuses_every_other_spelling() {
    let canonical = br#"{"a":[1,"x"],"b":{"c":null}}"#;
    assert_eq!(check_canonical(canonical), Ok(()));
    assert_eq!(
        to_canonical_bytes(&json!({"b": {"c": null}, "a": [1, "x"]})).unwrap(),
        canonical
    );
    for variant in [
        r#"{"b":{"c":null},"a":[1,"x"]}"#,
        r#"{"a":[1,"x"],"b":{"c":null}} "#,
        r#" {"a":[1,"x"],"b":{"c":null}}"#,
        r#"{"a": [1,"x"],"b":{"c":null}}"#,
        "{\"a\":[1,\"x\"],\n\"b\":{\"c\":null}}",
        r#"{"a":[1.0,"x"],"b":{"c":null}}"#,
        r#"{"a":[1e0,"x"],"b":{"c":null}}"#,
        r#"{"a":[1,"\u0078"],"b":{"c":null}}"#,
        r#"{"\u0061":[1,"x"],"b":{"c":null}}"#,
    ] {
        assert_eq!(
            check_canonical(variant.as_bytes()),
            Err(CanonError::NotCanonical),
            "{variant}"
        );
        assert_eq!(
            canonicalize(variant.as_bytes()).unwrap(),
            canonical,
            "{variant}"
        );
    }
}

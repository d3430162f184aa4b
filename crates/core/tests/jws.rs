//! Signed decisions against the published vectors, and every way a JWS can be bent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::DateTime;
use countersign_core::canonical::{CanonError, to_canonical_bytes};
use countersign_core::jws::{
    DECISION_TYP, JwsError, MAX_JWS_LEN, SigningKey, VerifyingKey, decision_header,
    generate_signing_key, key_id, parse_public_key, public_jwk, sign_compact, sign_decision,
    verify_compact, verify_decision,
};
use countersign_core::{Decision, DecisionKind, FieldEdit, V1};
use ed25519_dalek::{Signature, Signer as _};
use serde_json::{Value, json};
use uuid::Uuid;

// RFC 8037 appendix A.1: the Ed25519 private key (d) and its public key (x).
const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
// Appendix A.3: the JWK thumbprint of that public key.
const RFC8037_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
// Appendix A.4: "Example of Ed25519 signing" signed with header {"alg":"EdDSA"}.
const RFC8037_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn rfc8037_key() -> SigningKey {
    let d: [u8; 32] = URL_SAFE_NO_PAD
        .decode(RFC8037_D)
        .unwrap()
        .try_into()
        .unwrap();
    SigningKey::from_bytes(&d)
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn decision(key: &SigningKey) -> Decision {
    Decision {
        v: V1,
        decision_id: Uuid::from_u128(0x0190_8f3a_7c11_7d2e_8a4b_5c6d_7e8f_9001),
        item_id: Uuid::from_u128(0x0190_8f39_0000_7000_8000_0000_0000_0042),
        item_version: 2,
        lease_id: Uuid::from_u128(0x0190_8f39_1111_7000_8000_0000_0000_0007),
        lease_epoch: 1,
        evidence_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        kind: DecisionKind::Correct,
        corrections: vec![FieldEdit {
            field: "amount".into(),
            from: json!(12000),
            to: json!(9000.5),
        }],
        reason_codes: vec!["affordability".into()],
        comment: Some("Instalment \"too high\" — reduced.\n".into()),
        key_id: key_id(&key.verifying_key()),
        device_id: "laptop-1".into(),
        device_seq: 7,
        decided_at: DateTime::parse_from_rfc3339("2026-03-14T09:26:53.589Z")
            .unwrap()
            .to_utc(),
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A correctly signed compact JWS over any header and payload bytes: what an attacker holding
/// the key, or a buggy client, could produce.
fn forge(header: &[u8], payload: &[u8], key: &SigningKey) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

fn decision_header_for(key: &SigningKey) -> Vec<u8> {
    to_canonical_bytes(
        &json!({"alg": "EdDSA", "kid": key_id(&key.verifying_key()), "typ": DECISION_TYP}),
    )
    .unwrap()
}

#[test]
fn rfc8037_appendix_a() {
    let signing = rfc8037_key();
    let verifying = signing.verifying_key();
    // A.1 / A.2: the public key derived from d is x.
    assert_eq!(b64(verifying.as_bytes()), RFC8037_X);
    let public = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}"}}"#);
    assert_eq!(parse_public_key(&public).unwrap(), verifying);
    // A.3: the thumbprint.
    assert_eq!(key_id(&verifying), RFC8037_THUMBPRINT);
    assert_eq!(
        public_jwk(&verifying),
        json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": RFC8037_THUMBPRINT})
    );
    // A.4: signing reproduces the RFC's JWS exactly (Ed25519 is deterministic).
    assert_eq!(
        sign_compact(b"Example of Ed25519 signing", None, &signing),
        RFC8037_JWS
    );
    // A.5: and it verifies.
    let verified = verify_compact(RFC8037_JWS, &verifying, None).unwrap();
    assert_eq!(verified.payload, b"Example of Ed25519 signing");
    assert_eq!(verified.header, json!({"alg": "EdDSA"}));
    // It has no kid, so a caller that expects one is refused.
    assert_eq!(
        verify_compact(RFC8037_JWS, &verifying, Some(RFC8037_THUMBPRINT)),
        Err(JwsError::MissingKid)
    );
}

/// RFC 8032 section 7.1: secret key, public key, message, signature (all hex).
const RFC8032: [(&str, &str, &str, &str, &str); 5] = [
    (
        "TEST 1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "TEST 2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "TEST 3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "TEST 1024",
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        concat!(
            "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1",
            "e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d",
            "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a",
            "7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e",
            "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10",
            "3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1",
            "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d",
            "502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270",
            "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b",
            "eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba",
            "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b",
            "e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7",
            "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d",
            "cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df",
            "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7",
            "984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4",
            "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09",
            "43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f",
            "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161",
            "0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d",
            "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca",
            "c60c905c15fc910840b94c00a0b9d0",
        ),
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    ),
    (
        "TEST SHA(abc)",
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
];

#[test]
fn rfc8032_section_7_1() {
    for (name, secret, public, message, signature) in RFC8032 {
        let secret: [u8; 32] = hex::decode(secret).unwrap().try_into().unwrap();
        let message = hex::decode(message).unwrap();
        let signing = SigningKey::from_bytes(&secret);
        let verifying = signing.verifying_key();
        assert_eq!(hex::encode(verifying.as_bytes()), public, "{name}");
        let signed = signing.sign(&message);
        assert_eq!(hex::encode(signed.to_bytes()), signature, "{name}");
        assert!(verifying.verify_strict(&message, &signed).is_ok(), "{name}");
        let mut other = message.clone();
        other.push(0);
        assert!(verifying.verify_strict(&other, &signed).is_err(), "{name}");
        // The public key is accepted in every textual form parse_public_key reads.
        assert_eq!(parse_public_key(public).unwrap(), verifying, "{name}");
        assert_eq!(
            parse_public_key(&format!("  {}\n", STANDARD.encode(verifying.as_bytes()))).unwrap(),
            verifying,
            "{name}"
        );
        assert_eq!(
            parse_public_key(&public_jwk(&verifying).to_string()).unwrap(),
            verifying,
            "{name}"
        );
    }
    // TEST 1024's message is 1023 bytes long.
    assert_eq!(RFC8032[3].3.len(), 2046);
}

#[test]
fn decision_round_trip() {
    let signing = key(1);
    let d = decision(&signing);
    let jws = sign_decision(&d, &signing).unwrap();
    let verified = verify_decision(&jws, &signing.verifying_key()).unwrap();
    assert_eq!(verified.decision, d);
    assert_eq!(verified.payload, to_canonical_bytes(&d).unwrap());
    let header = decision_header(&jws).unwrap();
    assert_eq!(
        header,
        json!({"alg": "EdDSA", "kid": d.key_id, "typ": DECISION_TYP})
    );
    // A generic JWS verifier, told the kid, accepts it too.
    let generic = verify_compact(&jws, &signing.verifying_key(), Some(&d.key_id)).unwrap();
    assert_eq!(generic.payload, verified.payload);
    // Fresh keys work the same way.
    let fresh = generate_signing_key();
    let d = decision(&fresh);
    let verified = verify_decision(&sign_decision(&d, &fresh).unwrap(), &fresh.verifying_key());
    assert_eq!(verified.unwrap().decision, d);
}

#[test]
fn any_changed_character_is_refused() {
    let signing = rfc8037_key();
    let verifying = signing.verifying_key();
    for (i, c) in RFC8037_JWS.char_indices() {
        let replacement = if c == 'A' { 'B' } else { 'A' };
        let mut tampered = RFC8037_JWS.to_owned();
        tampered.replace_range(i..=i, &replacement.to_string());
        assert!(
            verify_compact(&tampered, &verifying, None).is_err(),
            "position {i}"
        );
    }
}

#[test]
fn any_flipped_byte_of_header_payload_or_signature_is_refused() {
    let signing = key(2);
    let verifying = signing.verifying_key();
    // The smallest decision, an approval, keeps this loop of verifications short.
    let mut d = decision(&signing);
    d.kind = DecisionKind::Approve;
    d.corrections.clear();
    d.reason_codes.clear();
    d.comment = None;
    let jws = sign_decision(&d, &signing).unwrap();
    let parts: Vec<Vec<u8>> = jws
        .split('.')
        .map(|part| URL_SAFE_NO_PAD.decode(part).unwrap())
        .collect();
    let mut checked = 0;
    for part in 0..3 {
        for position in 0..parts[part].len() {
            let mut bent = parts.clone();
            bent[part][position] ^= 0x01;
            let tampered = bent.iter().map(|p| b64(p)).collect::<Vec<_>>().join(".");
            let result = verify_decision(&tampered, &verifying);
            assert!(result.is_err(), "part {part}, byte {position}");
            checked += 1;
        }
    }
    assert_eq!(checked, parts.iter().map(Vec::len).sum::<usize>());
    assert!(verify_decision(&jws, &verifying).is_ok());
}

#[test]
fn signed_but_reordered_payload_is_not_canonical() {
    let signing = key(3);
    let d = decision(&signing);
    // serde_json writes struct fields in declaration order, not in JCS order.
    let reordered = serde_json::to_vec(&d).unwrap();
    let jws = forge(&decision_header_for(&signing), &reordered, &signing);
    assert_eq!(
        verify_decision(&jws, &signing.verifying_key()),
        Err(JwsError::PayloadNotCanonical(CanonError::NotCanonical))
    );
    let spaced = serde_json::to_vec_pretty(&d).unwrap();
    let jws = forge(&decision_header_for(&signing), &spaced, &signing);
    assert_eq!(
        verify_decision(&jws, &signing.verifying_key()),
        Err(JwsError::PayloadNotCanonical(CanonError::NotCanonical))
    );
}

#[test]
fn signed_payload_with_a_duplicate_key_names_it() {
    let signing = key(4);
    let d = decision(&signing);
    let canonical = String::from_utf8(to_canonical_bytes(&d).unwrap()).unwrap();
    // The first "kind" wins for some JSON readers, the last for others.
    let doubled = canonical.replace(
        r#""kind":"correct""#,
        r#""kind":"approve","kind":"correct""#,
    );
    assert_ne!(doubled, canonical);
    let jws = forge(&decision_header_for(&signing), doubled.as_bytes(), &signing);
    let err = verify_decision(&jws, &signing.verifying_key()).unwrap_err();
    assert_eq!(
        err,
        JwsError::PayloadNotCanonical(CanonError::DuplicateKey {
            key: "kind".into(),
            path: "/kind".into()
        })
    );
    assert!(
        err.to_string().contains(r#"duplicate object key "kind""#),
        "{err}"
    );
}

#[test]
fn only_eddsa_is_accepted() {
    let signing = key(5);
    let verifying = signing.verifying_key();
    let kid = key_id(&verifying);
    let payload = to_canonical_bytes(&decision(&signing)).unwrap();
    for alg in [
        "none", "HS256", "ES256", "RS256", "Ed25519", "eddsa", "EdDSA ",
    ] {
        let header = json!({"alg": alg, "kid": kid, "typ": DECISION_TYP}).to_string();
        let jws = forge(header.as_bytes(), &payload, &signing);
        let expected = JwsError::UnsupportedAlgorithm(alg.into());
        assert_eq!(
            verify_decision(&jws, &verifying),
            Err(expected.clone()),
            "{alg}"
        );
        assert_eq!(
            verify_compact(&jws, &verifying, None),
            Err(expected),
            "{alg}"
        );
    }
    // An unsigned token in the shape "alg":"none" tokens take.
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(&payload));
    assert_eq!(
        verify_compact(&none, &verifying, None),
        Err(JwsError::UnsupportedAlgorithm("none".into()))
    );
    let numeric = forge(br#"{"alg":1}"#, b"x", &signing);
    assert_eq!(
        verify_compact(&numeric, &verifying, None),
        Err(JwsError::UnsupportedAlgorithm("1".into()))
    );
    let missing = forge(br#"{"kid":"k"}"#, b"x", &signing);
    assert!(matches!(
        verify_compact(&missing, &verifying, None),
        Err(JwsError::Malformed(m)) if m.contains("no alg")
    ));
}

#[test]
fn kid_must_name_the_verifying_key() {
    let signing = key(6);
    let other = key(7);
    let verifying = signing.verifying_key();
    let d = decision(&signing);
    let payload = to_canonical_bytes(&d).unwrap();

    let no_kid = json!({"alg": "EdDSA", "typ": DECISION_TYP}).to_string();
    let jws = forge(no_kid.as_bytes(), &payload, &signing);
    assert_eq!(verify_decision(&jws, &verifying), Err(JwsError::MissingKid));

    // Signed by us but verified with another key: the kid tells.
    let jws = sign_decision(&d, &signing).unwrap();
    assert_eq!(
        verify_decision(&jws, &other.verifying_key()),
        Err(JwsError::KidMismatch {
            expected: key_id(&other.verifying_key()),
            found: d.key_id.clone(),
        })
    );
    assert_eq!(
        verify_compact(&jws, &verifying, Some("someone-else")),
        Err(JwsError::KidMismatch {
            expected: "someone-else".into(),
            found: d.key_id.clone(),
        })
    );

    // Another key claiming our kid: the signature tells.
    let jws = forge(&decision_header_for(&signing), &payload, &other);
    assert_eq!(
        verify_decision(&jws, &verifying),
        Err(JwsError::BadSignature)
    );
    assert_eq!(
        verify_compact(&jws, &verifying, None),
        Err(JwsError::BadSignature)
    );

    // A signed decision naming a different key in its body.
    let mut foreign = d.clone();
    foreign.key_id = key_id(&other.verifying_key());
    let jws = forge(
        &decision_header_for(&signing),
        &to_canonical_bytes(&foreign).unwrap(),
        &signing,
    );
    assert_eq!(
        verify_decision(&jws, &verifying),
        Err(JwsError::KeyMismatch)
    );
    assert_eq!(
        sign_decision(&foreign, &signing),
        Err(JwsError::KeyMismatch)
    );
}

#[test]
fn critical_headers_and_wrong_types_are_refused() {
    let signing = key(8);
    let verifying = signing.verifying_key();
    let kid = key_id(&verifying);
    let payload = to_canonical_bytes(&decision(&signing)).unwrap();
    let crit =
        json!({"alg": "EdDSA", "kid": kid, "typ": DECISION_TYP, "crit": ["b64"], "b64": false});
    let jws = forge(crit.to_string().as_bytes(), &payload, &signing);
    assert_eq!(
        verify_decision(&jws, &verifying),
        Err(JwsError::CriticalHeader)
    );
    assert_eq!(
        verify_compact(&jws, &verifying, None),
        Err(JwsError::CriticalHeader)
    );

    for typ in [json!("JWT"), json!(null), json!(1)] {
        let header = json!({"alg": "EdDSA", "kid": kid, "typ": typ});
        let jws = forge(header.to_string().as_bytes(), &payload, &signing);
        assert_eq!(
            verify_decision(&jws, &verifying),
            Err(JwsError::UnexpectedType {
                expected: DECISION_TYP.into(),
                found: typ.to_string()
            })
        );
    }
    // The RFC's own JWS is validly signed but is no decision.
    let rfc = rfc8037_key();
    assert!(matches!(
        verify_decision(RFC8037_JWS, &rfc.verifying_key()),
        Err(JwsError::UnexpectedType { found, .. }) if found == "absent"
    ));
    // A duplicated header parameter is refused before anything else.
    let doubled = format!(r#"{{"alg":"EdDSA","alg":"none","kid":"{kid}"}}"#);
    let jws = forge(doubled.as_bytes(), &payload, &signing);
    assert!(matches!(
        verify_compact(&jws, &verifying, None),
        Err(JwsError::Malformed(m)) if m.contains("duplicate object key \"alg\"")
    ));
}

#[test]
fn other_spellings_of_the_decision_header_are_accepted() {
    // A generic JOSE library may order the members differently or add harmless ones.
    let signing = key(13);
    let verifying = signing.verifying_key();
    let kid = key_id(&verifying);
    let d = decision(&signing);
    let payload = to_canonical_bytes(&d).unwrap();
    for header in [
        format!(r#"{{"typ":"{DECISION_TYP}","kid":"{kid}","alg":"EdDSA"}}"#),
        format!(r#"{{ "alg": "EdDSA", "kid": "{kid}", "typ": "{DECISION_TYP}", "cty": "json" }}"#),
    ] {
        let jws = forge(header.as_bytes(), &payload, &signing);
        assert_eq!(
            verify_decision(&jws, &verifying).unwrap().decision,
            d,
            "{header}"
        );
    }
}

#[test]
fn encoding_is_strict() {
    let signing = key(9);
    let verifying = signing.verifying_key();
    let jws = sign_decision(&decision(&signing), &signing).unwrap();
    let (header, rest) = jws.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let malformed = |candidate: &str| {
        let result = verify_decision(candidate, &verifying);
        assert!(
            matches!(result, Err(JwsError::Malformed(_))),
            "{candidate:.60}: {result:?}"
        );
    };
    malformed(&format!("{header}=.{payload}.{signature}"));
    malformed(&format!("{header}.{payload}=.{signature}"));
    malformed(&format!("{header}.{payload}.{signature}=="));
    malformed(&format!("{header}.{payload}.{signature}.{signature}"));
    malformed(&format!("{header}.{payload}"));
    malformed(&format!("{header} .{payload}.{signature}"));
    malformed(&format!("{header}.{payload}.+{}", &signature[1..]));
    malformed(&format!("{header}.{payload}.{}/", &signature[..85]));
    malformed(&format!("{header}.{payload}.{}", &signature[1..]));
    malformed(&format!(".{payload}.{signature}"));
    malformed("");
    malformed("...");
    malformed("not a jws");
    // Standard base64 with padding of a valid header is refused.
    let std_header = STANDARD.encode(URL_SAFE_NO_PAD.decode(header).unwrap());
    if std_header != header {
        malformed(&format!("{std_header}.{payload}.{signature}"));
    }
    // The last of 86 characters carries 4 unused bits: changing only those is refused, or one
    // signature would have 16 spellings.
    let last = signature.as_bytes()[85];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.iter().position(|&c| c == last).unwrap();
    assert_eq!(
        index & 0x0f,
        0,
        "a canonical encoding leaves the low bits zero"
    );
    let sibling = alphabet[index | 0x01] as char;
    malformed(&format!("{header}.{payload}.{}{sibling}", &signature[..85]));

    let huge = "A".repeat(MAX_JWS_LEN + 1);
    assert_eq!(
        verify_decision(&huge, &verifying),
        Err(JwsError::TooLarge {
            size: MAX_JWS_LEN + 1,
            max: MAX_JWS_LEN
        })
    );
    assert!(matches!(
        decision_header(&huge),
        Err(JwsError::TooLarge { .. })
    ));
    assert!(matches!(
        decision_header("a.b"),
        Err(JwsError::Malformed(_))
    ));
    let text_header = format!("{}.{payload}.{signature}", b64(b"not json"));
    assert!(matches!(
        decision_header(&text_header),
        Err(JwsError::Malformed(m)) if m.contains("header is not JSON")
    ));
    let array_header = format!("{}.{payload}.{signature}", b64(b"[]"));
    assert!(matches!(
        decision_header(&array_header),
        Err(JwsError::Malformed(m)) if m.contains("not a JSON object")
    ));
    assert!(verify_decision(&jws, &verifying).is_ok());
}

#[test]
fn signed_payloads_that_are_not_decisions_are_refused() {
    let signing = key(10);
    let verifying = signing.verifying_key();
    let header = decision_header_for(&signing);
    let invalid = |payload: &Value, needle: &str| {
        let jws = forge(&header, &to_canonical_bytes(payload).unwrap(), &signing);
        match verify_decision(&jws, &verifying) {
            Err(JwsError::InvalidDecision(message)) => {
                assert!(message.contains(needle), "{message} lacks {needle}");
            }
            other => panic!("{payload}: {other:?}"),
        }
    };
    let good = serde_json::to_value(decision(&signing)).unwrap();
    invalid(&json!({"hello": "world"}), "unknown field");
    invalid(&json!([1, 2, 3]), "");
    invalid(&json!("a decision"), "");
    let mut v2 = good.clone();
    v2["v"] = json!(2);
    invalid(&v2, "unsupported format version 2");
    let mut extra = good.clone();
    extra["approved_by"] = json!("someone");
    invalid(&extra, "unknown field `approved_by`");
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("lease_id");
    invalid(&missing, "missing field `lease_id`");
    let mut no_reason = good.clone();
    no_reason["reason_codes"] = json!([]);
    invalid(&no_reason, "needs at least one reason code");
    let mut huge_seq = good.clone();
    huge_seq["device_seq"] = json!(9_007_199_254_740_994_u64);
    invalid(&huge_seq, "beyond 2^53");
    // Payloads that are not even JSON.
    let jws = forge(&header, b"\xff\xfe", &signing);
    assert_eq!(
        verify_decision(&jws, &verifying),
        Err(JwsError::PayloadNotCanonical(CanonError::NotUtf8))
    );
    let jws = forge(&header, b"{\"v\":1", &signing);
    assert!(matches!(
        verify_decision(&jws, &verifying),
        Err(JwsError::PayloadNotCanonical(
            CanonError::InvalidJson { .. }
        ))
    ));
}

#[test]
fn sign_decision_refuses_what_verification_would() {
    let signing = key(11);
    let mut d = decision(&signing);
    d.reason_codes.clear();
    assert!(matches!(
        sign_decision(&d, &signing),
        Err(JwsError::InvalidDecision(m)) if m.contains("reason code")
    ));
    let mut d = decision(&signing);
    d.device_seq = (1 << 53) + 1;
    assert!(matches!(
        sign_decision(&d, &signing),
        Err(JwsError::InvalidDecision(m)) if m.contains("device_seq")
    ));
    let mut d = decision(&signing);
    d.corrections[0].to = json!({"nested": [u64::MAX]});
    assert!(matches!(
        sign_decision(&d, &signing),
        Err(JwsError::InvalidDecision(m)) if m.contains("`amount`")
    ));
    let mut d = decision(&signing);
    d.device_seq = 1 << 53;
    assert!(sign_decision(&d, &signing).is_ok());
}

#[test]
fn public_keys_are_read_strictly() {
    let verifying = rfc8037_key().verifying_key();
    let bytes = verifying.as_bytes();
    for text in [
        RFC8037_X.to_owned(),
        format!("{RFC8037_X}\n"),
        hex::encode(bytes),
        hex::encode_upper(bytes),
        STANDARD.encode(bytes),
        format!(
            r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}","kid":"{RFC8037_THUMBPRINT}"}}"#
        ),
        format!(r#" {{"crv":"Ed25519","x":"{RFC8037_X}","kty":"OKP","use":"sig"}} "#),
    ] {
        assert_eq!(parse_public_key(&text), Ok(verifying), "{text}");
    }
    let invalid = |text: &str, needle: &str| match parse_public_key(text) {
        Err(JwsError::InvalidKey(message)) => {
            assert!(message.contains(needle), "{text}: {message} lacks {needle}");
            assert!(!message.contains('\n'));
        }
        other => panic!("{text}: {other:?}"),
    };
    invalid("", "empty");
    invalid("   ", "empty");
    invalid("zz", "expected a JWK");
    invalid(&hex::encode(&bytes[..31]), "32 bytes");
    invalid(&URL_SAFE_NO_PAD.encode([0u8; 33]), "32 bytes");
    invalid(
        &format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}","d":"{RFC8037_D}"}}"#),
        "private key",
    );
    invalid(
        &format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}","kid":"other"}}"#),
        "thumbprint",
    );
    invalid(
        &format!(r#"{{"kty":"EC","crv":"Ed25519","x":"{RFC8037_X}"}}"#),
        "kty",
    );
    invalid(
        &format!(r#"{{"kty":"OKP","crv":"X25519","x":"{RFC8037_X}"}}"#),
        "crv",
    );
    invalid(r#"{"kty":"OKP","crv":"Ed25519"}"#, "no x");
    invalid(
        &format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}="}}"#),
        "base64url",
    );
    invalid(
        &format!(r#"{{"kty":"OKP","kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}"}}"#),
        "duplicate",
    );
    invalid("[1]", "expected a JWK");
    // The identity point has small order: every signature "verifies" under it.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    invalid(&hex::encode(identity), "small-order");
    // y = 2 is not on the curve.
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    invalid(&hex::encode(off_curve), "not a point");
}

#[test]
fn errors_are_single_lines() {
    let errors = [
        JwsError::Malformed("x".into()),
        JwsError::TooLarge { size: 2, max: 1 },
        JwsError::UnsupportedAlgorithm("none".into()),
        JwsError::KidMismatch {
            expected: "a".into(),
            found: "b".into(),
        },
        JwsError::MissingKid,
        JwsError::CriticalHeader,
        JwsError::UnexpectedType {
            expected: DECISION_TYP.into(),
            found: "absent".into(),
        },
        JwsError::BadSignature,
        JwsError::PayloadNotCanonical(CanonError::NotCanonical),
        JwsError::InvalidDecision("x".into()),
        JwsError::KeyMismatch,
        JwsError::InvalidKey("x".into()),
    ];
    for error in errors {
        let text = error.to_string();
        assert!(!text.is_empty() && !text.contains('\n'), "{text}");
    }
}

#[test]
fn signatures_with_a_non_canonical_scalar_are_refused() {
    // verify_strict refuses S >= L (a malleated signature), which plain `verify` in some
    // libraries accepts: adding the group order L to S gives a second valid-looking signature.
    let signing = key(12);
    let verifying: VerifyingKey = signing.verifying_key();
    let jws = sign_compact(b"payload", None, &signing);
    let (input, signature) = jws.rsplit_once('.').unwrap();
    let mut bytes: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .unwrap()
        .try_into()
        .unwrap();
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    let l: [u8; 32] =
        hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
            .unwrap()
            .try_into()
            .unwrap();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(bytes[32 + i]) + u16::from(l[i]) + carry;
        bytes[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    let malleated = format!("{input}.{}", b64(&bytes));
    assert_eq!(
        verify_compact(&malleated, &verifying, None),
        Err(JwsError::BadSignature)
    );
    assert!(
        verifying
            .verify_strict(input.as_bytes(), &Signature::from_bytes(&bytes))
            .is_err()
    );
}

//! Signed notes, checkpoints and receipts: the examples of the C2SP specifications and of Go's
//! reference implementation byte for byte, round trips, and every malformation we know of.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use countersign_core::checkpoint::{
    Checkpoint, MAX_NOTE_BYTES, MAX_SIGNATURES, NoteError, NoteSigner, NoteVerifier, Receipt,
    ReceiptError, sign_checkpoint, sign_note, verify_checkpoint, verify_note, verify_receipt,
};
use countersign_core::merkle::{MemoryTree, ProofError, leaf_hash};
use ed25519_dalek::SigningKey;

// ---------------------------------------------------------------------------------------------
// Published examples

/// c2sp.org/signed-note, "Verifier keys", Example.
const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

/// c2sp.org/signed-note, the opening example (its key is not published).
const SPEC_POEM_NOTE: &str = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u{e8} subito sera.\n\n\u{2014} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";

/// c2sp.org/tlog-checkpoint, the opening example (its key is not published).
const SPEC_CHECKPOINT_NOTE: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

/// golang.org/x/mod/sumdb/note documentation and note_test.go (BSD-3-Clause): a published
/// private key, so signing its text must reproduce the published note exactly.
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";
/// transparency-dev/formats note tests: a verifier key whose base64 contains '+'.
const PLUS_VKEY: &str = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6";

fn peter_note() -> String {
    format!("{PETER_TEXT}\n{PETER_SIG}")
}

#[test]
fn signed_note_spec_example_verifies() {
    let verifier = NoteVerifier::parse(SPEC_VKEY).unwrap();
    assert_eq!(verifier.name(), "example.com/foo");
    assert_eq!(verifier.key_id(), [0x53, 0x0d, 0x90, 0x3a]);
    assert_eq!(verifier.to_vkey(), SPEC_VKEY);
    assert_eq!(
        verify_note(SPEC_NOTE, &verifier).unwrap(),
        "This is an example message.\n"
    );
}

#[test]
fn go_reference_example_resigns_byte_for_byte() {
    let signer = NoteSigner::parse(PETER_SKEY).unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
    assert_eq!(signer.to_skey(), PETER_SKEY);
    assert_eq!(signer.verifier().to_vkey(), PETER_VKEY);
    assert_eq!(signer.verifier(), NoteVerifier::parse(PETER_VKEY).unwrap());
    // Ed25519 is deterministic, so this is a known-answer test of the whole signing path.
    assert_eq!(sign_note(PETER_TEXT, &signer).unwrap(), peter_note());
    assert_eq!(
        verify_note(&peter_note(), &signer.verifier()).unwrap(),
        PETER_TEXT
    );
}

#[test]
fn go_reference_doubly_signed_note() {
    let peter = NoteVerifier::parse(PETER_VKEY).unwrap();
    let enoch = NoteVerifier::parse(ENOCH_VKEY).unwrap();
    let both = format!("{PETER_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    assert_eq!(verify_note(&both, &peter).unwrap(), PETER_TEXT);
    assert_eq!(verify_note(&both, &enoch).unwrap(), PETER_TEXT);
    let reversed = format!("{PETER_TEXT}\n{ENOCH_SIG}{PETER_SIG}");
    assert_eq!(verify_note(&reversed, &peter).unwrap(), PETER_TEXT);
    // Enoch's key in the Go example derives from the all-zero seed: re-sign and compare.
    let enoch_signer = NoteSigner::new("EnochRoot", SigningKey::from_bytes(&[0; 32])).unwrap();
    assert_eq!(enoch_signer.verifier().to_vkey(), ENOCH_VKEY);
    let resigned = sign_note(PETER_TEXT, &enoch_signer).unwrap();
    assert_eq!(resigned, format!("{PETER_TEXT}\n{ENOCH_SIG}"));
}

#[test]
fn key_with_plus_in_base64_round_trips() {
    let verifier = NoteVerifier::parse(PLUS_VKEY).unwrap();
    assert_eq!(verifier.name(), "TEST");
    assert_eq!(verifier.to_vkey(), PLUS_VKEY);
}

#[test]
fn spec_poem_with_a_blank_line_in_its_text() {
    // The poem's key is unpublished: its signature is from an unknown key, which is ignored,
    // not an error in the note's form.
    let foo = NoteVerifier::parse(SPEC_VKEY).unwrap();
    assert_eq!(
        verify_note(SPEC_POEM_NOTE, &foo),
        Err(NoteError::NoSignature {
            name: "example.com/foo".into(),
            key_id: "530d903a".into()
        })
    );
    // Cosigned by a key we hold, the note opens to the text up to the *last* blank line.
    let witness = NoteSigner::new("witness.example", SigningKey::from_bytes(&[7; 32])).unwrap();
    let text = SPEC_POEM_NOTE
        .split("\n\n\u{2014}")
        .next()
        .unwrap()
        .to_owned()
        + "\n";
    assert!(text.contains("\n\n"), "the poem has an internal blank line");
    let own_line = sign_note(&text, &witness).unwrap()[text.len() + 1..].to_owned();
    let cosigned = format!("{SPEC_POEM_NOTE}{own_line}");
    assert_eq!(verify_note(&cosigned, &witness.verifier()).unwrap(), text);
    assert_eq!(
        verify_note(&sign_note(&text, &witness).unwrap(), &witness.verifier()).unwrap(),
        text
    );
}

#[test]
fn spec_checkpoint_example_parses_and_cosigns() {
    let origin = "example.com/behind-the-sofa";
    let body = SPEC_CHECKPOINT_NOTE
        .split("\n\n")
        .next()
        .unwrap()
        .to_owned()
        + "\n";
    let checkpoint = Checkpoint::parse_body(&body).unwrap();
    assert_eq!(checkpoint.origin, origin);
    assert_eq!(checkpoint.size, 20_852_163);
    assert_eq!(
        hex::encode(checkpoint.root),
        hex::encode(
            B64.decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
                .unwrap()
        )
    );
    assert!(checkpoint.extensions.is_empty());
    assert_eq!(checkpoint.to_body(), body);

    // Its signature is by a key we do not know, so alone it proves nothing to us...
    let witness = NoteSigner::new("witness.example", SigningKey::from_bytes(&[9; 32])).unwrap();
    assert!(matches!(
        verify_checkpoint(SPEC_CHECKPOINT_NOTE, &witness.verifier(), origin),
        Err(NoteError::NoSignature { .. })
    ));
    // ...and with our cosignature added it opens to the same checkpoint.
    let ours = sign_checkpoint(&checkpoint, &witness).unwrap();
    let own_line = &ours[body.len() + 1..];
    let cosigned = format!("{SPEC_CHECKPOINT_NOTE}{own_line}");
    assert_eq!(
        verify_checkpoint(&cosigned, &witness.verifier(), origin).unwrap(),
        checkpoint
    );
    assert_eq!(
        verify_checkpoint(&cosigned, &witness.verifier(), "example.com/other"),
        Err(NoteError::WrongOrigin {
            expected: "\"example.com/other\"".into(),
            got: "\"example.com/behind-the-sofa\"".into()
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Keys

/// Every proper substring and every one-byte change of a key string must be refused, as in the
/// tests of Go's `sumdb/note`.
fn assert_all_manglings_refused(key: &str, parse: impl Fn(&str) -> bool) {
    let bytes = key.as_bytes();
    for i in 0..=bytes.len() {
        for j in i + 1..=bytes.len() {
            if (i, j) != (0, bytes.len()) {
                let part = std::str::from_utf8(&bytes[i..j]).unwrap();
                assert!(!parse(part), "accepted substring {part:?}");
            }
        }
    }
    for i in 0..bytes.len() {
        let mut changed = bytes.to_vec();
        changed[i] += 1;
        let changed = String::from_utf8(changed).unwrap();
        assert!(!parse(&changed), "accepted mangled key {changed:?}");
    }
}

#[test]
fn mangled_keys_are_refused() {
    assert_all_manglings_refused(PETER_VKEY, |k| NoteVerifier::parse(k).is_ok());
    assert_all_manglings_refused(SPEC_VKEY, |k| NoteVerifier::parse(k).is_ok());
    assert_all_manglings_refused(PETER_SKEY, |k| NoteSigner::parse(k).is_ok());

    // From Go's tests: a key of the wrong length and an unknown type, each with a matching id.
    assert!(matches!(
        NoteVerifier::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        ),
        Err(NoteError::MalformedKey { .. })
    ));
    let long_key = B64.encode([[1u8].as_slice(), &[7u8; 33]].concat());
    assert_eq!(
        NoteVerifier::parse(&format!("PeterNeumann+cc469956+{long_key}")),
        Err(NoteError::MalformedKey {
            kind: "verifier",
            reason: "an Ed25519 key is 32 bytes"
        })
    );
    assert!(matches!(
        NoteVerifier::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::UnsupportedKeyType(_))
    ));
    // Upper-case hex is not the spec's encoding.
    assert!(NoteVerifier::parse(&SPEC_VKEY.replace("530d903a", "530D903A")).is_err());
    assert!(matches!(
        NoteVerifier::parse(&SPEC_VKEY.replace("530d903a", "530d903b")),
        Err(NoteError::KeyIdMismatch { .. })
    ));
    assert!(matches!(
        NoteSigner::parse(&PETER_SKEY.replace("PRIVATE+KEY+", "")),
        Err(NoteError::MalformedKey { .. })
    ));
}

#[test]
fn invalid_key_names_and_weak_keys_are_refused() {
    let key = SigningKey::from_bytes(&[1; 32]);
    for name in ["", "a b", "a+b", "a\u{a0}b", "tab\there", "new\nline"] {
        assert!(
            matches!(
                NoteSigner::new(name, key.clone()),
                Err(NoteError::InvalidKeyName { .. })
            ),
            "{name:?}"
        );
    }
    // The identity point has small order: a key that "verifies" anything under lax rules.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
    assert_eq!(
        NoteVerifier::new("weak", weak).unwrap_err(),
        NoteError::WeakKey
    );
}

#[test]
fn signer_debug_hides_the_secret() {
    let signer = NoteSigner::parse(PETER_SKEY).unwrap();
    let shown = format!("{signer:?}");
    assert!(shown.contains("PeterNeumann") && shown.contains("c74f20a3"));
    let secret = PETER_SKEY.splitn(5, '+').nth(4).unwrap();
    let seed = &B64.decode(secret).unwrap()[1..];
    assert!(!shown.contains(secret) && !shown.contains(&hex::encode(seed)));
    assert!(!shown.contains(&format!("{seed:?}")[1..20]));
}

#[test]
fn generated_keys_round_trip() {
    let signer = NoteSigner::generate("gate.example/log").unwrap();
    let again = NoteSigner::parse(&signer.to_skey()).unwrap();
    assert_eq!(again.verifier(), signer.verifier());
    assert_eq!(
        NoteVerifier::parse(&signer.verifier().to_vkey()).unwrap(),
        signer.verifier()
    );
    assert_ne!(
        NoteSigner::generate("gate.example/log").unwrap().verifier(),
        signer.verifier()
    );
}

// ---------------------------------------------------------------------------------------------
// Notes and checkpoints: round trips and malformations

const ORIGIN: &str = "countersign.example/audit";

fn gate() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[42; 32])).unwrap()
}

fn sample() -> Checkpoint {
    Checkpoint {
        origin: ORIGIN.into(),
        size: 1234,
        root: leaf_hash(b"root"),
        extensions: Vec::new(),
    }
}

fn signed_sample() -> String {
    sign_checkpoint(&sample(), &gate()).unwrap()
}

/// Replaces the checkpoint body of a signed note, keeping its signature lines.
fn with_body(note: &str, body: &str) -> String {
    let split = note.rfind("\n\n").unwrap();
    format!("{body}{}", &note[split + 1..])
}

fn b64_root(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

#[test]
fn checkpoints_round_trip() {
    let gate = gate();
    for cp in [
        sample(),
        Checkpoint {
            size: 0,
            root: countersign_core::merkle::empty_root(),
            ..sample()
        },
        Checkpoint {
            size: u64::MAX,
            ..sample()
        },
        Checkpoint {
            extensions: vec!["ext one".into(), "\u{2014} looks like a signature".into()],
            ..sample()
        },
    ] {
        let note = sign_checkpoint(&cp, &gate).unwrap();
        assert!(note.starts_with(&cp.to_body()));
        assert_eq!(Checkpoint::parse_body(&cp.to_body()).unwrap(), cp);
        assert_eq!(
            verify_checkpoint(&note, &gate.verifier(), ORIGIN).unwrap(),
            cp
        );
    }
    let note = signed_sample();
    let body = format!("{ORIGIN}\n1234\n{}\n", b64_root(&leaf_hash(b"root")));
    assert_eq!(note.split("\n\n").next().unwrap().to_owned() + "\n", body);
    assert!(note.ends_with('\n') && note.matches('\n').count() == 5);
}

/// Signs `body` as it stands (no checkpoint validation) and checks it with the gate's key.
fn open_body(body: &str) -> Result<Checkpoint, NoteError> {
    let gate = gate();
    let note = sign_note(body, &gate)?;
    verify_checkpoint(&note, &gate.verifier(), ORIGIN)
}

#[test]
fn malformed_checkpoint_bodies_are_refused() {
    let root = b64_root(&leaf_hash(b"root"));
    let ok = format!("{ORIGIN}\n5\n{root}\n");
    assert_eq!(open_body(&ok).unwrap().size, 5);

    // Origin.
    assert_eq!(
        open_body(&format!("\n5\n{root}\n")),
        Err(NoteError::EmptyOrigin)
    );
    assert!(matches!(
        open_body(&format!("other.example/log\n5\n{root}\n")),
        Err(NoteError::WrongOrigin { .. })
    ));
    assert!(matches!(
        open_body(&format!("{ORIGIN} \n5\n{root}\n")),
        Err(NoteError::WrongOrigin { .. })
    ));

    // Tree size: canonical decimal only.
    for size in [
        "",
        "abc",
        "0x10",
        "1e3",
        " 5",
        "5 ",
        "-1",
        "+5",
        "05",
        "00",
        "007",
        "5.0",
        "٥",
        "18446744073709551616",
    ] {
        assert!(
            matches!(
                open_body(&format!("{ORIGIN}\n{size}\n{root}\n")),
                Err(NoteError::BadTreeSize(_))
            ),
            "size {size:?}"
        );
    }
    assert_eq!(
        open_body(&format!("{ORIGIN}\n18446744073709551615\n{root}\n"))
            .unwrap()
            .size,
        u64::MAX
    );
    assert_eq!(
        open_body(&format!("{ORIGIN}\n0\n{root}\n")).unwrap().size,
        0
    );

    // Root hash: standard, padded, canonical base64 of exactly 32 bytes.
    let bytes = leaf_hash(b"root");
    let non_canonical = {
        // The last character carries 4 unused bits; setting one must not go unnoticed.
        let mut r = root.clone().into_bytes();
        let at = r.len() - 2;
        r[at] = if r[at] == b'B' { b'C' } else { b'B' };
        String::from_utf8(r).unwrap()
    };
    for bad in [
        String::new(),
        b64_root(&bytes[..31]),
        b64_root(&[bytes.as_slice(), &[0]].concat()),
        root.trim_end_matches('=').to_owned(),
        root.replace('+', "-").replace('/', "_") + if root.contains(['+', '/']) { "" } else { "!" },
        format!(" {root}"),
        non_canonical,
        hex::encode(bytes),
    ] {
        assert_eq!(
            open_body(&format!("{ORIGIN}\n5\n{bad}\n")),
            Err(NoteError::BadRootHash),
            "root {bad:?}"
        );
    }

    // Shape.
    assert_eq!(
        open_body(&format!("{ORIGIN}\n5\n")),
        Err(NoteError::TooFewLines { lines: 2 })
    );
    assert_eq!(
        open_body(&format!("{ORIGIN}\n5\n{root}\next\n\nmore\n")),
        Err(NoteError::EmptyExtensionLine { line: 5 })
    );
    assert_eq!(
        Checkpoint::parse_body(&format!("{ORIGIN}\n5\n{root}")),
        Err(NoteError::MissingFinalNewline)
    );
    assert!(matches!(
        Checkpoint::parse_body(&format!("{ORIGIN}\r\n5\r\n{root}\r\n")),
        Err(NoteError::ControlCharacter { code: 0x0d, .. })
    ));

    // A checkpoint that would not parse back is never signed.
    let gate = gate();
    for bad in [
        Checkpoint {
            origin: String::new(),
            ..sample()
        },
        Checkpoint {
            origin: "a\nb".into(),
            ..sample()
        },
        Checkpoint {
            extensions: vec![String::new()],
            ..sample()
        },
        Checkpoint {
            extensions: vec!["x\ny".into()],
            ..sample()
        },
    ] {
        assert!(sign_checkpoint(&bad, &gate).is_err(), "{bad:?}");
    }
}

#[test]
fn tampered_signed_checkpoints_are_refused() {
    let gate = gate();
    let verifier = gate.verifier();
    let note = signed_sample();
    let body_len = sample().to_body().len();
    let bad_signature = Err(NoteError::BadSignature {
        name: ORIGIN.into(),
        key_id: hex::encode(gate.key_id()),
    });
    let no_signature = Err(NoteError::NoSignature {
        name: ORIGIN.into(),
        key_id: hex::encode(gate.key_id()),
    });

    // The text: a different size, or any flipped bit anywhere in it.
    let bigger = note.replacen("\n1234\n", "\n1235\n", 1);
    assert_eq!(verify_checkpoint(&bigger, &verifier, ORIGIN), bad_signature);
    for i in 0..body_len {
        // Bits 0-6 keep the byte ASCII, so the note stays a string; each byte gets one.
        let bit = i % 7;
        let mut bytes = note.clone().into_bytes();
        bytes[i] ^= 1 << bit;
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(
            verify_checkpoint(&tampered, &verifier, ORIGIN).is_err(),
            "flipped bit {bit} of byte {i}"
        );
    }

    // The signature: decode, flip each bit of the Ed25519 signature, re-encode.
    let line = &note[body_len + 1..];
    let (prefix, b64) = line.trim_end().rsplit_once(' ').unwrap();
    let sig = B64.decode(b64).unwrap();
    assert_eq!(sig.len(), 68);
    for i in 4..sig.len() {
        let mut s = sig.clone();
        s[i] ^= 1 << (i % 8);
        let tampered = format!("{}{prefix} {}\n", &note[..=body_len], B64.encode(&s));
        assert_eq!(
            verify_checkpoint(&tampered, &verifier, ORIGIN),
            bad_signature,
            "flipped signature byte {i}"
        );
    }
    // A malleated signature (S + L, the same point equation) is refused by verify_strict.
    let mut malleated = sig.clone();
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (byte, add) in malleated[36..].iter_mut().zip(l) {
        let sum = u16::from(*byte) + u16::from(add) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    let tampered = format!(
        "{}{prefix} {}\n",
        &note[..=body_len],
        B64.encode(&malleated)
    );
    assert_eq!(
        verify_checkpoint(&tampered, &verifier, ORIGIN),
        bad_signature
    );
    // A truncated signature from our key is a bad signature, not an unknown key.
    let tampered = format!(
        "{}{prefix} {}\n",
        &note[..=body_len],
        B64.encode(&sig[..40])
    );
    assert_eq!(
        verify_checkpoint(&tampered, &verifier, ORIGIN),
        bad_signature
    );

    // Wrong key id or wrong name: a signature of some other key, ignored, so none is left.
    let mut other_id = sig.clone();
    other_id[0] ^= 1;
    let tampered = format!("{}{prefix} {}\n", &note[..=body_len], B64.encode(&other_id));
    assert_eq!(
        verify_checkpoint(&tampered, &verifier, ORIGIN),
        no_signature
    );
    let tampered = note.replace(
        &format!("\u{2014} {ORIGIN} "),
        "\u{2014} other.example/log ",
    );
    assert_eq!(
        verify_checkpoint(&tampered, &verifier, ORIGIN),
        no_signature
    );

    // Signed by another key only.
    let other = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[43; 32])).unwrap();
    let by_other = sign_checkpoint(&sample(), &other).unwrap();
    assert_eq!(
        verify_checkpoint(&by_other, &verifier, ORIGIN),
        no_signature
    );
    // ...while a note signed by both opens for either, whatever the order.
    let other_line = &by_other[body_len + 1..];
    for both in [format!("{note}{other_line}"), format!("{by_other}{line}")] {
        assert_eq!(
            verify_checkpoint(&both, &verifier, ORIGIN).unwrap(),
            sample()
        );
        assert_eq!(
            verify_checkpoint(&both, &other.verifier(), ORIGIN).unwrap(),
            sample()
        );
    }
    // Our key's valid signature does not excuse a bad one by the same key.
    let bad_line = format!("{prefix} {}\n", B64.encode(&malleated));
    assert_eq!(
        verify_checkpoint(&format!("{note}{bad_line}"), &verifier, ORIGIN),
        bad_signature
    );
    // Duplicates of a valid line are harmless.
    assert!(verify_checkpoint(&format!("{note}{line}"), &verifier, ORIGIN).is_ok());

    // CRLF line endings.
    let crlf = note.replace('\n', "\r\n");
    assert!(matches!(
        verify_checkpoint(&crlf, &verifier, ORIGIN),
        Err(NoteError::ControlCharacter { code: 0x0d, .. })
    ));

    // Extra blank lines: before the signatures (changes the signed text), between signatures
    // (the earlier one becomes text), at the end (no signature after the last blank line), at
    // the start.
    let extra_before = format!("{}\n{}", &note[..=body_len], &note[body_len..]);
    assert_eq!(
        verify_checkpoint(&extra_before, &verifier, ORIGIN),
        bad_signature
    );
    let between = format!("{by_other}\n{line}");
    assert_eq!(
        verify_checkpoint(&between, &verifier, ORIGIN),
        bad_signature
    );
    assert_eq!(
        verify_checkpoint(&format!("{note}\n"), &verifier, ORIGIN),
        Err(NoteError::MissingSignatures)
    );
    assert_eq!(
        verify_checkpoint(&format!("\n{note}"), &verifier, ORIGIN),
        bad_signature
    );
    // No final newline, no signature block at all.
    assert_eq!(
        verify_checkpoint(note.trim_end_matches('\n'), &verifier, ORIGIN),
        Err(NoteError::MissingSignatures)
    );
    assert_eq!(
        verify_checkpoint(&sample().to_body(), &verifier, ORIGIN),
        Err(NoteError::MissingSignatures)
    );
    assert_eq!(
        verify_checkpoint("", &verifier, ORIGIN),
        Err(NoteError::MissingSignatures)
    );
}

#[test]
fn malformed_signature_lines_are_refused() {
    let verifier = gate().verifier();
    let note = signed_sample();
    let body = sample().to_body();
    let sig = B64.encode([1u8; 68]);
    for (line, reason) in [
        (format!("- {ORIGIN} {sig}"), "it does not start"),
        (format!("\u{2014}{ORIGIN} {sig}"), "it does not start"),
        (format!("\u{2014} {ORIGIN}"), "no space"),
        (format!("\u{2014} {ORIGIN} {sig} "), "not standard base64"),
        (format!("\u{2014} {ORIGIN}  {sig}"), "not standard base64"),
        (format!("\u{2014} {ORIGIN} !!!!"), "not standard base64"),
        (
            format!("\u{2014} {ORIGIN} {}", sig.trim_end_matches('=')),
            "not standard base64",
        ),
        (
            format!("\u{2014} {ORIGIN} {}", B64.encode([1u8; 4])),
            "shorter",
        ),
        (format!("\u{2014} a+b {sig}"), "invalid key name"),
        (format!("\u{2014}  {sig}"), "invalid key name"),
    ] {
        // Put the bad line after a good signature: one malformed line spoils the note.
        let tampered = format!("{note}{line}\n");
        match verify_note(&tampered, &verifier) {
            Err(NoteError::MalformedSignatureLine { line: 2, reason: r }) => {
                assert!(r.contains(reason), "{line:?}: {r}")
            }
            other => panic!("{line:?}: {other:?}"),
        }
    }
    // Too many signature lines.
    let other_line = format!("\u{2014} other.example {sig}\n");
    let crowded = format!("{note}{}", other_line.repeat(MAX_SIGNATURES));
    assert_eq!(
        verify_note(&crowded, &verifier),
        Err(NoteError::TooManySignatures {
            max: MAX_SIGNATURES
        })
    );
    let many = format!(
        "{body}\n{}{}",
        other_line.repeat(15),
        &note[body.len() + 1..]
    );
    assert!(verify_note(&many, &verifier).is_ok(), "16 signatures");
    // Too large.
    let huge = format!("{}{}", "x".repeat(MAX_NOTE_BYTES), note);
    assert!(matches!(
        verify_note(&huge, &verifier),
        Err(NoteError::TooLarge { .. })
    ));
    // Control characters anywhere, including in signature lines.
    assert!(matches!(
        verify_note(&note.replace(' ', "\t"), &verifier),
        Err(NoteError::ControlCharacter { code: 9, .. })
    ));
    assert!(matches!(
        verify_note(&format!("{note}\u{0}"), &verifier),
        Err(NoteError::ControlCharacter { code: 0, .. })
    ));
}

#[test]
fn sign_note_refuses_bad_texts() {
    let gate = gate();
    assert_eq!(sign_note("", &gate), Err(NoteError::EmptyText));
    assert_eq!(
        sign_note("no newline", &gate),
        Err(NoteError::MissingFinalNewline)
    );
    assert!(matches!(
        sign_note("crlf\r\n", &gate),
        Err(NoteError::ControlCharacter { code: 0x0d, .. })
    ));
    assert!(matches!(
        sign_note("nul\u{0}\n", &gate),
        Err(NoteError::ControlCharacter { .. })
    ));
    assert!(matches!(
        sign_note(&"x\n".repeat(MAX_NOTE_BYTES / 2), &gate),
        Err(NoteError::TooLarge { .. })
    ));
    // Texts with blank lines are allowed by the spec and survive a round trip.
    let text = "first\n\nthird\n\n";
    let note = sign_note(text, &gate).unwrap();
    assert_eq!(verify_note(&note, &gate.verifier()).unwrap(), text);
}

// ---------------------------------------------------------------------------------------------
// Receipts

fn log_with_receipts(entries: usize) -> (MemoryTree, Vec<Vec<u8>>, String) {
    let entries: Vec<Vec<u8>> = (0..entries)
        .map(|i| format!("{{\"event\":{i}}}").into_bytes())
        .collect();
    let mut tree = MemoryTree::new();
    for e in &entries {
        tree.append(leaf_hash(e));
    }
    let cp = Checkpoint {
        origin: ORIGIN.into(),
        size: tree.size(),
        root: tree.root(),
        extensions: Vec::new(),
    };
    let note = sign_checkpoint(&cp, &gate()).unwrap();
    (tree, entries, note)
}

#[test]
fn receipts_verify_for_every_entry_and_survive_json() {
    let (tree, entries, note) = log_with_receipts(37);
    let verifier = gate().verifier();
    for (i, entry) in entries.iter().enumerate() {
        let i = i as u64;
        let receipt = Receipt::new(
            i,
            tree.size(),
            &tree.inclusion_proof(i, tree.size()).unwrap(),
            note.clone(),
        );
        let json = serde_json::to_string(&receipt).unwrap();
        let back: Receipt = serde_json::from_str(&json).unwrap();
        assert_eq!(back, receipt);
        let cp = verify_receipt(&back, entry, &verifier, ORIGIN).unwrap();
        assert_eq!((cp.size, cp.root), (tree.size(), tree.root()));
    }
}

#[test]
fn forged_receipts_are_refused() {
    let (tree, entries, note) = log_with_receipts(37);
    let verifier = gate().verifier();
    let size = tree.size();
    let receipt = Receipt::new(
        5,
        size,
        &tree.inclusion_proof(5, size).unwrap(),
        note.clone(),
    );
    assert!(verify_receipt(&receipt, &entries[5], &verifier, ORIGIN).is_ok());

    // Another entry, another index, another key, another origin.
    assert_eq!(
        verify_receipt(&receipt, &entries[6], &verifier, ORIGIN),
        Err(ReceiptError::Proof(ProofError::RootMismatch))
    );
    let moved = Receipt {
        leaf_index: 6,
        ..receipt.clone()
    };
    assert!(verify_receipt(&moved, &entries[5], &verifier, ORIGIN).is_err());
    let stranger = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap();
    assert!(matches!(
        verify_receipt(&receipt, &entries[5], &stranger.verifier(), ORIGIN),
        Err(ReceiptError::Checkpoint(NoteError::NoSignature { .. }))
    ));
    assert!(matches!(
        verify_receipt(&receipt, &entries[5], &verifier, "other.example/log"),
        Err(ReceiptError::Checkpoint(NoteError::WrongOrigin { .. }))
    ));

    // A tree size that is not the checkpoint's, even with a proof valid for that size.
    let smaller = Receipt::new(5, 20, &tree.inclusion_proof(5, 20).unwrap(), note.clone());
    assert_eq!(
        verify_receipt(&smaller, &entries[5], &verifier, ORIGIN),
        Err(ReceiptError::SizeMismatch {
            receipt: 20,
            checkpoint: size
        })
    );
    // A checkpoint whose text was swapped for another size keeps no valid signature.
    let swapped = Receipt {
        checkpoint: with_body(&note, &note.replacen("\n37\n", "\n20\n", 1)),
        ..smaller
    };
    assert!(matches!(
        verify_receipt(&swapped, &entries[5], &verifier, ORIGIN),
        Err(ReceiptError::Checkpoint(_))
    ));

    // Proof elements.
    let mut bad = receipt.clone();
    bad.inclusion_proof[2] = B64.encode([0u8; 31]);
    assert_eq!(
        verify_receipt(&bad, &entries[5], &verifier, ORIGIN),
        Err(ReceiptError::BadProofElement { index: 2 })
    );
    bad.inclusion_proof[2] = "not base64!".into();
    assert_eq!(
        verify_receipt(&bad, &entries[5], &verifier, ORIGIN),
        Err(ReceiptError::BadProofElement { index: 2 })
    );
    let mut flipped = receipt.clone();
    let mut h = B64.decode(&flipped.inclusion_proof[0]).unwrap();
    h[0] ^= 1;
    flipped.inclusion_proof[0] = B64.encode(h);
    assert_eq!(
        verify_receipt(&flipped, &entries[5], &verifier, ORIGIN),
        Err(ReceiptError::Proof(ProofError::RootMismatch))
    );
    let mut short = receipt.clone();
    short.inclusion_proof.pop();
    assert!(matches!(
        verify_receipt(&short, &entries[5], &verifier, ORIGIN),
        Err(ReceiptError::Proof(ProofError::WrongProofLength { .. }))
    ));

    // The JSON form refuses unknown fields and other versions.
    let mut json = serde_json::to_value(&receipt).unwrap();
    json["extra"] = serde_json::json!(true);
    assert!(serde_json::from_value::<Receipt>(json.clone()).is_err());
    json.as_object_mut().unwrap().remove("extra");
    json["v"] = serde_json::json!(2);
    assert!(serde_json::from_value::<Receipt>(json).is_err());
}

#[test]
fn error_messages_are_single_lines() {
    let errors = [
        verify_note("x", &gate().verifier()).unwrap_err(),
        Checkpoint::parse_body(&format!("{ORIGIN}\n{}\nroot\n", "9".repeat(500))).unwrap_err(),
        NoteVerifier::parse("a\nb+00000000+AQ==").unwrap_err(),
        verify_checkpoint(
            &sign_note(
                &format!("evil\norigin\n5\n{}\n", B64.encode([0; 32])),
                &gate(),
            )
            .unwrap(),
            &gate().verifier(),
            ORIGIN,
        )
        .unwrap_err(),
    ];
    for e in errors {
        let message = e.to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.len() < 300, "{message}");
    }
}

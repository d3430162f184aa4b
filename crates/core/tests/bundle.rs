//! Audit-bundle verification: bundles built here with the core library, as the gate builds them,
//! verify; every kind of damage or lie in any of the files is caught and pinned to its place.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use countersign_core::bundle::{BundleError, BundleFiles, BundleReport, verify_bundle};
use countersign_core::canonical::to_canonical_bytes;
use countersign_core::checkpoint::{Checkpoint, NoteSigner, sign_checkpoint};
use countersign_core::jws::{self, SigningKey};
use countersign_core::merkle::{MemoryTree, leaf_hash};
use countersign_core::{AuditEntry, AuditEventKind, Decision, DecisionKind, V1};
use serde_json::{Value, json};
use uuid::Uuid;

const ORIGIN: &str = "test.countersign/log";

/// A change made to a JSON document of the bundle.
type Change = Box<dyn Fn(&mut Value)>;
/// A change made to the data of a logged decision.
type Tweak = fn(&mut Value);

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
        .unwrap()
        .to_utc()
}

fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

struct Reviewer {
    name: String,
    user_id: String,
    device_id: String,
    key: SigningKey,
    key_id: String,
    seq: u64,
}

struct Key {
    key_id: String,
    device_id: String,
    user: String,
    jwk: Value,
    enrolled: u64,
    revoked: Option<u64>,
    rotated: bool,
}

/// A log built the way the gate builds it, with the files of its export.
struct LogBuilder {
    signer: NoteSigner,
    lines: Vec<Vec<u8>>,
    tree: MemoryTree,
    checkpoints: Vec<(u64, String)>,
    keys: Vec<Key>,
    counter: u128,
}

struct Bundle {
    manifest: Vec<u8>,
    entries: Vec<u8>,
    checkpoints: Vec<u8>,
    keys: Vec<u8>,
    vkey: String,
}

impl Bundle {
    fn files(&self) -> BundleFiles<'_> {
        BundleFiles {
            manifest: &self.manifest,
            entries: &self.entries,
            checkpoints: &self.checkpoints,
            keys: &self.keys,
        }
    }

    fn verify(&self) -> Result<BundleReport, BundleError> {
        verify_bundle(&self.files(), Some(&self.vkey))
    }

    fn entry_lines(&self) -> Vec<Vec<u8>> {
        self.entries
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn set_entry_lines(&mut self, lines: &[Vec<u8>]) {
        self.entries = lines
            .iter()
            .flat_map(|l| [l.as_slice(), b"\n"].concat())
            .collect();
    }

    /// The byte offset of entry `index`'s line in entries.jsonl.
    fn entry_offset(&self, index: usize) -> usize {
        self.entry_lines()[..index]
            .iter()
            .map(|l| l.len() + 1)
            .sum()
    }

    fn manifest_json(&self) -> Value {
        serde_json::from_slice(&self.manifest).unwrap()
    }

    fn set_manifest(&mut self, value: &Value) {
        self.manifest = serde_json::to_vec_pretty(value).unwrap();
    }
}

impl LogBuilder {
    fn new() -> Self {
        LogBuilder {
            signer: NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[7; 32])).unwrap(),
            lines: Vec::new(),
            tree: MemoryTree::new(),
            checkpoints: Vec::new(),
            keys: Vec::new(),
            counter: 0,
        }
    }

    fn next_id(&mut self) -> Uuid {
        self.counter += 1;
        uuid(self.counter)
    }

    fn size(&self) -> u64 {
        self.lines.len() as u64
    }

    fn append(
        &mut self,
        kind: AuditEventKind,
        actor: &str,
        item_id: Option<Uuid>,
        data: Value,
    ) -> u64 {
        let index = self.size();
        let entry = AuditEntry {
            v: V1,
            index,
            at: at(),
            kind,
            actor: actor.to_owned(),
            item_id,
            data,
        };
        let bytes = to_canonical_bytes(&entry).unwrap();
        self.tree.append(leaf_hash(&bytes));
        self.lines.push(bytes);
        index
    }

    fn noise(&mut self, n: usize) {
        for i in 0..n {
            let id = self.next_id();
            self.append(
                AuditEventKind::OutputReceived,
                "scorer",
                None,
                json!({"output_id": format!("o-{id}"), "source": "scorer", "n": i}),
            );
        }
    }

    fn checkpoint(&mut self) {
        let note = self.sign_at(self.size(), &self.signer.clone());
        self.checkpoints.push((self.size(), note));
    }

    fn sign_at(&self, size: u64, signer: &NoteSigner) -> String {
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: self.tree.root_at(size).unwrap(),
            extensions: vec![],
        };
        sign_checkpoint(&cp, signer).unwrap()
    }

    fn reviewer(&mut self, name: &str, seed: u8) -> Reviewer {
        let user_id = self.next_id().to_string();
        self.append(
            AuditEventKind::UserCreated,
            "admin",
            None,
            json!({"user_id": user_id, "name": name, "role": "reviewer", "authority_limit": 10000.0}),
        );
        let key = SigningKey::from_bytes(&[seed; 32]);
        let key_id = jws::key_id(&key.verifying_key());
        let device_id = self.next_id().to_string();
        let jwk = jws::public_jwk(&key.verifying_key());
        let enrolled = self.append(
            AuditEventKind::KeyEnrolled,
            name,
            None,
            json!({"user_id": user_id, "device_id": device_id, "device_name": format!("{name}-laptop"), "key_id": key_id, "public_key": jwk}),
        );
        self.keys.push(Key {
            key_id: key_id.clone(),
            device_id: device_id.clone(),
            user: name.to_owned(),
            jwk,
            enrolled,
            revoked: None,
            rotated: false,
        });
        Reviewer {
            name: name.to_owned(),
            user_id,
            device_id,
            key,
            key_id,
            seq: 0,
        }
    }

    fn rotate(&mut self, r: &mut Reviewer, seed: u8) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let key_id = jws::key_id(&key.verifying_key());
        let jwk = jws::public_jwk(&key.verifying_key());
        let enrolled = self.append(
            AuditEventKind::KeyRotated,
            &r.name,
            None,
            json!({"device_id": r.device_id, "key_id": key_id, "public_key": jwk}),
        );
        for k in &mut self.keys {
            if k.device_id == r.device_id {
                k.rotated = true;
            }
        }
        self.keys.push(Key {
            key_id: key_id.clone(),
            device_id: r.device_id.clone(),
            user: r.name.clone(),
            jwk,
            enrolled,
            revoked: None,
            rotated: false,
        });
        r.key = key;
        r.key_id = key_id;
    }

    fn revoke(&mut self, key_id: &str) -> u64 {
        let index = self.append(
            AuditEventKind::KeyRevoked,
            "admin",
            None,
            json!({"key_id": key_id, "reason": "laptop lost"}),
        );
        for k in &mut self.keys {
            if k.key_id == key_id {
                k.revoked = Some(index);
            }
        }
        index
    }

    /// A decision signed by `r`, as the gate would check it.
    fn signed(&mut self, r: &mut Reviewer, signer: Option<&SigningKey>) -> (Decision, String) {
        r.seq += 1;
        let decision = Decision {
            v: V1,
            decision_id: self.next_id(),
            item_id: self.next_id(),
            item_version: 1,
            lease_id: self.next_id(),
            lease_epoch: 0,
            evidence_sha256: "ab".repeat(32),
            kind: DecisionKind::Approve,
            corrections: vec![],
            reason_codes: vec![],
            comment: None,
            key_id: r.key_id.clone(),
            device_id: r.device_id.clone(),
            device_seq: r.seq,
            decided_at: at(),
        };
        let jws = jws::sign_decision(&decision, signer.unwrap_or(&r.key)).unwrap();
        (decision, jws)
    }

    /// Logs a decision entry; `tweak` may alter its data to lie about the decision.
    fn decide_with(
        &mut self,
        r: &mut Reviewer,
        kind: AuditEventKind,
        tweak: impl FnOnce(&mut Value),
    ) -> u64 {
        let (decision, jws) = self.signed(r, None);
        let result = match kind {
            AuditEventKind::Decided => json!({"outcome": "applied"}),
            AuditEventKind::Conflict => json!({"outcome": "conflict", "reason": "withdrawn"}),
            _ => {
                json!({"outcome": "rejected", "code": "key_revoked", "message": "the signing key was revoked"})
            }
        };
        let mut data = json!({
            "decision_id": decision.decision_id,
            "device_id": r.device_id,
            "device_seq": decision.device_seq,
            "key_id": decision.key_id,
            "user_id": r.user_id,
            "jws": jws,
            "result": result,
        });
        tweak(&mut data);
        let name = r.name.clone();
        self.append(kind, &name, Some(decision.item_id), data)
    }

    fn decide(&mut self, r: &mut Reviewer, kind: AuditEventKind) -> u64 {
        self.decide_with(r, kind, |_| {})
    }

    /// The export of the log as it stands, signed at its current size.
    fn export(&mut self) -> Bundle {
        if self.checkpoints.last().map(|c| c.0) != Some(self.size()) {
            self.checkpoint();
        }
        let note = self.checkpoints.last().unwrap().1.clone();
        let vkey = self.signer.verifier().to_vkey();
        let manifest = json!({
            "v": 1,
            "format": "countersign-audit-bundle",
            "origin": ORIGIN,
            "log_public_key": vkey,
            "size": self.size(),
            "root": B64.encode(self.tree.root()),
            "checkpoint": note,
        });
        let mut entries = Vec::new();
        for line in &self.lines {
            entries.extend_from_slice(line);
            entries.push(b'\n');
        }
        let mut checkpoints = String::new();
        for (size, note) in &self.checkpoints {
            checkpoints.push_str(&json!({"size": size, "checkpoint": note}).to_string());
            checkpoints.push('\n');
        }
        let mut keys = String::new();
        for k in &self.keys {
            let status = if k.revoked.is_some() {
                "revoked"
            } else if k.rotated {
                "rotated"
            } else {
                "active"
            };
            keys.push_str(
                &json!({
                    "key_id": k.key_id,
                    "device_id": k.device_id,
                    "user": k.user,
                    "jwk": k.jwk,
                    "status": status,
                    "enrolled_at_index": k.enrolled,
                    "revoked_at_index": k.revoked,
                })
                .to_string(),
            );
            keys.push('\n');
        }
        Bundle {
            manifest: serde_json::to_vec_pretty(&manifest).unwrap(),
            entries,
            checkpoints: checkpoints.into_bytes(),
            keys: keys.into_bytes(),
            vkey,
        }
    }
}

/// A log of 40 entries with two reviewers, decisions of every kind, a rotation, a revocation
/// (and a rejected decision after it), and checkpoints at 10, 20, 29 and 40.
struct Sample {
    bundle: Bundle,
    /// Index of an applied decision.
    decided: u64,
    /// Index of the rejected decision signed after its key's revocation.
    rejected_after_revocation: u64,
}

fn sample() -> Sample {
    let mut log = LogBuilder::new();
    log.append(
        AuditEventKind::PolicyActivated,
        "admin",
        None,
        json!({"version": 1, "name": "test", "sha256": "00"}),
    );
    let mut rita = log.reviewer("rita", 1);
    let mut sam = log.reviewer("sam", 2);
    log.noise(5);
    log.checkpoint();
    let decided = log.decide(&mut rita, AuditEventKind::Decided);
    log.decide(&mut sam, AuditEventKind::Conflict);
    log.noise(8);
    log.checkpoint();
    log.rotate(&mut rita, 3);
    log.decide(&mut rita, AuditEventKind::Decided);
    log.decide(&mut sam, AuditEventKind::Rejected);
    let sam_key = sam.key_id.clone();
    log.revoke(&sam_key);
    let rejected_after_revocation = log.decide(&mut sam, AuditEventKind::Rejected);
    log.noise(4);
    log.checkpoint();
    log.decide(&mut rita, AuditEventKind::Decided);
    log.noise(10);
    assert_eq!(log.size(), 40);
    Sample {
        bundle: log.export(),
        decided,
        rejected_after_revocation,
    }
}

fn entry_index(err: &BundleError) -> u64 {
    match err {
        BundleError::Entry { index, .. } => *index,
        other => panic!("expected an entry error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// A good bundle

#[test]
fn a_faithful_export_verifies_and_is_counted() {
    let s = sample();
    let report = s.bundle.verify().unwrap();
    assert_eq!(report.origin, ORIGIN);
    assert_eq!(report.size, 40);
    assert_eq!(report.entries, 40);
    assert_eq!(report.checkpoints, 4);
    assert_eq!(report.decisions, 6);
    assert_eq!(report.keys, 3);
    let manifest = s.bundle.manifest_json();
    assert_eq!(B64.encode(report.root), manifest["root"]);
    // Without an expected key the bundle is checked against the key it names itself.
    assert_eq!(verify_bundle(&s.bundle.files(), None).unwrap(), report);
    assert!(report.to_string().contains("40 entries"));
}

#[test]
fn an_empty_log_verifies() {
    let mut log = LogBuilder::new();
    let b = log.export();
    let report = b.verify().unwrap();
    assert_eq!((report.size, report.entries, report.decisions), (0, 0, 0));
    assert_eq!(report.checkpoints, 1);
}

#[test]
fn many_decisions_are_checked_in_parallel_and_the_first_bad_one_is_named() {
    let mut log = LogBuilder::new();
    let mut rita = log.reviewer("rita", 1);
    let mut bad = Vec::new();
    // Enough decisions for two threads of 256; debug builds sign slowly, so not many more.
    for i in 0..600 {
        if i == 250 || i == 450 {
            // A signature character changed: only the signature is wrong.
            let index = log.decide_with(&mut rita, AuditEventKind::Decided, |d| {
                let mut jws = d["jws"].as_str().unwrap().to_owned().into_bytes();
                let at = jws.len() - 10;
                jws[at] = if jws[at] == b'A' { b'B' } else { b'A' };
                d["jws"] = json!(String::from_utf8(jws).unwrap());
            });
            bad.push(index);
        } else {
            log.decide(&mut rita, AuditEventKind::Decided);
        }
    }
    let b = log.export();
    let err = b.verify().unwrap_err();
    assert_eq!(entry_index(&err), bad[0], "{err}");
    assert!(err.to_string().contains("does not verify"), "{err}");
}

#[test]
fn many_good_decisions_verify() {
    let mut log = LogBuilder::new();
    let mut rita = log.reviewer("rita", 1);
    for i in 0..600u32 {
        log.decide(&mut rita, AuditEventKind::Decided);
        if i.is_multiple_of(200) {
            log.checkpoint();
        }
    }
    let report = log.export().verify().unwrap();
    assert_eq!(report.decisions, 600);
    assert_eq!(report.checkpoints, 4);
}

// ---------------------------------------------------------------------------------------------
// manifest.json

#[test]
fn manifest_must_be_what_it_says() {
    let s = sample();
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "unknown field",
            Box::new(|m| m["extra"] = json!(1)),
            "unknown field",
        ),
        (
            "version",
            Box::new(|m| m["v"] = json!(2)),
            "unsupported format version 2",
        ),
        ("format", Box::new(|m| m["format"] = json!("zip")), "format"),
        ("size", Box::new(|m| m["size"] = json!(39)), "size is 39"),
        (
            "root",
            Box::new(|m| m["root"] = json!(B64.encode([0u8; 32]))),
            "root differs",
        ),
        (
            "root shape",
            Box::new(|m| m["root"] = json!("abc")),
            "root is not base64",
        ),
        (
            "origin",
            Box::new(|m| m["origin"] = json!("other/log")),
            "origin",
        ),
        (
            "checkpoint",
            Box::new(|m| {
                let note = m["checkpoint"]
                    .as_str()
                    .unwrap()
                    .replacen("\n40\n", "\n41\n", 1);
                m["checkpoint"] = json!(note);
            }),
            "does not verify",
        ),
        (
            "key",
            Box::new(|m| m["log_public_key"] = json!("nonsense")),
            "log_public_key",
        ),
    ];
    for (what, change, expected) in cases {
        let mut b = clone_bundle(&s.bundle);
        let mut m = b.manifest_json();
        change(&mut m);
        b.set_manifest(&m);
        let err = verify_bundle(&b.files(), None).unwrap_err();
        assert!(matches!(err, BundleError::Manifest(_)), "{what}: {err:?}");
        assert!(
            err.to_string().starts_with("manifest.json: "),
            "{what}: {err}"
        );
        assert!(err.to_string().contains(expected), "{what}: {err}");
    }
    let mut b = clone_bundle(&s.bundle);
    b.manifest = b"{\"v\":1,\"v\":1}".to_vec();
    assert!(matches!(b.verify(), Err(BundleError::Manifest(_))));
    b.manifest = b"[]".to_vec();
    assert!(matches!(b.verify(), Err(BundleError::Manifest(_))));
}

fn clone_bundle(b: &Bundle) -> Bundle {
    Bundle {
        manifest: b.manifest.clone(),
        entries: b.entries.clone(),
        checkpoints: b.checkpoints.clone(),
        keys: b.keys.clone(),
        vkey: b.vkey.clone(),
    }
}

#[test]
fn a_bundle_from_another_log_key_is_refused_when_the_key_is_known() {
    let s = sample();
    let other = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[8; 32])).unwrap();
    let err = verify_bundle(&s.bundle.files(), Some(&other.verifier().to_vkey())).unwrap_err();
    assert!(matches!(err, BundleError::Manifest(_)), "{err:?}");
    assert!(
        err.to_string().contains("not the expected log key"),
        "{err}"
    );
    assert!(verify_bundle(&s.bundle.files(), Some("junk")).is_err());

    // A whole log re-signed by someone else verifies only against their own key.
    let mut log = LogBuilder::new();
    log.signer = other.clone();
    log.noise(3);
    let forged = log.export();
    assert!(verify_bundle(&forged.files(), None).is_ok());
    let err = verify_bundle(&forged.files(), Some(&s.bundle.vkey)).unwrap_err();
    assert!(matches!(err, BundleError::Manifest(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// entries.jsonl

#[test]
fn a_non_canonical_line_is_named() {
    let mut b = sample().bundle;
    let mut lines = b.entry_lines();
    let mut v: Value = serde_json::from_slice(&lines[12]).unwrap();
    v["actor"] = json!("x");
    lines[12] = serde_json::to_vec_pretty(&v)
        .unwrap()
        .into_iter()
        .filter(|&c| c != b'\n')
        .collect();
    b.set_entry_lines(&lines);
    let err = b.verify().unwrap_err();
    assert_eq!(entry_index(&err), 12);
    assert!(
        err.to_string()
            .starts_with("entries.jsonl line 13 (index 12): is not canonical JSON"),
        "{err}"
    );
}

#[test]
fn a_line_that_is_not_an_entry_is_named() {
    let mut b = sample().bundle;
    let mut lines = b.entry_lines();
    lines[3] = br#"{"hello":"world"}"#.to_vec();
    b.set_entry_lines(&lines);
    let err = b.verify().unwrap_err();
    assert_eq!(entry_index(&err), 3);
    assert!(err.to_string().contains("is not an audit entry"), "{err}");
}

#[test]
fn a_changed_byte_is_localised_between_checkpoints() {
    // Checkpoints at 10, 20, 29 and 40 (see `sample`): a change in entry 20 breaks the checkpoint
    // of size 29, while the one of size 20 still matches.
    let s = sample();
    for (index, first, last) in [(20usize, 20, 28), (2, 0, 9), (39, 29, 39)] {
        let mut b = clone_bundle(&s.bundle);
        let line = &b.entry_lines()[index];
        // The actor's first letter: the line stays canonical JSON and a valid entry.
        let at = b.entry_offset(index) + find(line, b"\"actor\":\"") + 9;
        b.entries[at] ^= 0x01;
        let err = b.verify().unwrap_err();
        assert_eq!(err.entry_range(), Some((first, last)), "{index}: {err}");
        assert!(
            err.to_string().starts_with(&format!(
                "entries.jsonl lines {} to {} (indices {first} to {last})",
                first + 1,
                last + 1
            )),
            "{err}"
        );
        assert!(
            err.to_string().contains("one of these entries was changed"),
            "{err}"
        );
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn a_changed_decision_is_named_exactly() {
    let s = sample();
    let mut b = clone_bundle(&s.bundle);
    let index = usize::try_from(s.decided).unwrap();
    let line = &b.entry_lines()[index];
    // A character of the JWS signature: the signature no longer verifies.
    let at = b.entry_offset(index) + find(line, b"\"jws\":\"") + 7 + 300;
    b.entries[at] = if b.entries[at] == b'A' { b'B' } else { b'A' };
    let err = b.verify().unwrap_err();
    assert_eq!(entry_index(&err), s.decided, "{err}");
}

#[test]
fn removed_inserted_and_reordered_entries_are_named() {
    let s = sample();
    let lines = s.bundle.entry_lines();

    let mut b = clone_bundle(&s.bundle);
    let mut removed = lines.clone();
    removed.remove(17);
    b.set_entry_lines(&removed);
    let err = b.verify().unwrap_err();
    assert_eq!(entry_index(&err), 17);
    assert!(
        err.to_string().contains("holds the entry with index 18"),
        "{err}"
    );

    let mut b = clone_bundle(&s.bundle);
    let mut repeated = lines.clone();
    repeated.insert(5, lines[4].clone());
    b.set_entry_lines(&repeated);
    assert_eq!(entry_index(&b.verify().unwrap_err()), 5);

    let mut b = clone_bundle(&s.bundle);
    let mut swapped = lines.clone();
    swapped.swap(30, 31);
    b.set_entry_lines(&swapped);
    assert_eq!(entry_index(&b.verify().unwrap_err()), 30);

    let mut b = clone_bundle(&s.bundle);
    b.set_entry_lines(&lines[..35]);
    let err = b.verify().unwrap_err();
    assert_eq!(
        err,
        BundleError::MissingEntries {
            found: 35,
            expected: 40
        }
    );
    assert_eq!(err.entry_range(), Some((35, 39)));
    assert!(
        err.to_string().contains("entries 35 to 39 are missing"),
        "{err}"
    );

    let mut b = clone_bundle(&s.bundle);
    let mut longer = lines.clone();
    let mut extra: Value = serde_json::from_slice(&lines[39]).unwrap();
    extra["index"] = json!(40);
    longer.push(to_canonical_bytes(&extra).unwrap());
    b.set_entry_lines(&longer);
    let err = b.verify().unwrap_err();
    assert_eq!(entry_index(&err), 40);
    assert!(err.to_string().contains("beyond the 40 entries"), "{err}");
}

#[test]
fn a_cut_or_padded_file_is_refused() {
    let s = sample();
    let mut b = clone_bundle(&s.bundle);
    b.entries.pop();
    let err = b.verify().unwrap_err();
    assert_eq!(entry_index(&err), 39);
    assert!(
        err.to_string().contains("does not end with a newline"),
        "{err}"
    );

    let mut b = clone_bundle(&s.bundle);
    let at = b.entry_offset(10);
    b.entries.insert(at, b'\n');
    let err = b.verify().unwrap_err();
    assert_eq!(entry_index(&err), 10);
    assert!(err.to_string().contains("is empty"), "{err}");

    let mut b = clone_bundle(&s.bundle);
    let at = b.entry_offset(10) - 1;
    b.entries.insert(at, b'\r');
    assert_eq!(entry_index(&b.verify().unwrap_err()), 9);
}

// ---------------------------------------------------------------------------------------------
// checkpoints.jsonl

fn checkpoint_lines(b: &Bundle) -> Vec<Value> {
    b.checkpoints
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn set_checkpoint_lines(b: &mut Bundle, lines: &[Value]) {
    b.checkpoints = lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
}

#[test]
fn checkpoints_must_verify_and_follow_each_other() {
    let s = sample();
    let lines = checkpoint_lines(&s.bundle);
    assert_eq!(lines.len(), 4);

    let mut b = clone_bundle(&s.bundle);
    let mut tampered = lines.clone();
    let note = tampered[1]["checkpoint"]
        .as_str()
        .unwrap()
        .replacen("\n20\n", "\n19\n", 1);
    tampered[1]["checkpoint"] = json!(note);
    tampered[1]["size"] = json!(19);
    set_checkpoint_lines(&mut b, &tampered);
    let err = b.verify().unwrap_err();
    assert!(
        matches!(err, BundleError::Checkpoint { line: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not verify"), "{err}");

    let mut b = clone_bundle(&s.bundle);
    let mut sized = lines.clone();
    sized[0]["size"] = json!(9);
    set_checkpoint_lines(&mut b, &sized);
    let err = b.verify().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("checkpoints.jsonl line 1: size is 9"),
        "{err}"
    );

    let mut b = clone_bundle(&s.bundle);
    let mut reordered = lines.clone();
    reordered.swap(0, 1);
    set_checkpoint_lines(&mut b, &reordered);
    let err = b.verify().unwrap_err();
    assert!(
        matches!(err, BundleError::Checkpoint { line: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("increasing order"), "{err}");

    let mut b = clone_bundle(&s.bundle);
    let mut unknown = lines.clone();
    unknown[2]["note"] = json!("x");
    set_checkpoint_lines(&mut b, &unknown);
    assert!(matches!(
        b.verify(),
        Err(BundleError::Checkpoint { line: 3, .. })
    ));

    let mut b = clone_bundle(&s.bundle);
    b.checkpoints.pop();
    assert!(matches!(
        b.verify(),
        Err(BundleError::Checkpoint { line: 4, .. })
    ));
}

#[test]
fn a_checkpoint_by_another_key_is_refused() {
    let s = sample();
    let mut other = LogBuilder::new();
    other.signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[8; 32])).unwrap();
    other.noise(3);
    other.checkpoint();
    let mut b = clone_bundle(&s.bundle);
    let mut lines = checkpoint_lines(&b);
    lines.insert(0, json!({"size": 3, "checkpoint": other.checkpoints[0].1}));
    set_checkpoint_lines(&mut b, &lines);
    let err = b.verify().unwrap_err();
    assert!(
        matches!(err, BundleError::Checkpoint { line: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("no signature"), "{err}");
}

#[test]
fn a_signed_checkpoint_of_another_history_is_caught() {
    // The log key signed a checkpoint of size 10 over different entries: a fork. Every signature
    // is valid; only the entries show it.
    let s = sample();
    let mut fork = LogBuilder::new();
    fork.noise(10);
    let forked_note = fork.sign_at(10, &fork.signer.clone());
    let mut b = clone_bundle(&s.bundle);
    let mut lines = checkpoint_lines(&b);
    assert_eq!(lines[0]["size"], 10);
    lines[0]["checkpoint"] = json!(forked_note);
    set_checkpoint_lines(&mut b, &lines);
    let err = b.verify().unwrap_err();
    assert_eq!(err.entry_range(), Some((0, 9)), "{err}");

    // A checkpoint at the manifest's size with another root is a fork too.
    let mut fork = LogBuilder::new();
    fork.noise(40);
    let forked_note = fork.sign_at(40, &fork.signer.clone());
    let mut b = clone_bundle(&s.bundle);
    let mut lines = checkpoint_lines(&b);
    lines[3]["checkpoint"] = json!(forked_note);
    set_checkpoint_lines(&mut b, &lines);
    let err = b.verify().unwrap_err();
    assert!(
        matches!(err, BundleError::Checkpoint { line: 4, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("forked"), "{err}");
}

#[test]
fn a_checkpoint_beyond_the_manifest_is_refused() {
    let mut log = LogBuilder::new();
    log.noise(5);
    log.checkpoint();
    let early = log.export();
    log.noise(2);
    log.checkpoint();
    let late = log.export();
    let mut b = early;
    b.checkpoints = late.checkpoints;
    let err = b.verify().unwrap_err();
    assert!(
        matches!(err, BundleError::Checkpoint { line: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("beyond"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Signed decisions and keys in the log

/// Builds a log with one reviewer whose decision entry (or the log around it) is made by `make`,
/// and returns the verification error with the index of the entry that should be named.
fn lying_log(make: impl FnOnce(&mut LogBuilder, &mut Reviewer) -> u64) -> (BundleError, u64) {
    let mut log = LogBuilder::new();
    let mut rita = log.reviewer("rita", 1);
    log.noise(2);
    let index = make(&mut log, &mut rita);
    log.noise(2);
    let err = log.export().verify().unwrap_err();
    (err, index)
}

#[test]
fn logged_decisions_must_match_their_signed_content() {
    let cases: Vec<(&str, Tweak, &str)> = vec![
        (
            "decision_id",
            |d| d["decision_id"] = json!(uuid(999)),
            "decision_id",
        ),
        ("device_seq", |d| d["device_seq"] = json!(99), "device_seq"),
        (
            "device_id",
            |d| d["device_id"] = json!("another-device"),
            "belongs to device",
        ),
        (
            "user_id",
            |d| d["user_id"] = json!("someone-else"),
            "belongs to user",
        ),
        (
            "key_id",
            |d| d["key_id"] = json!("other-kid"),
            "the entry names key other-kid",
        ),
        (
            "result",
            |d| d["result"] = json!({"outcome": "rejected", "code": "x", "message": "y"}),
            "records the result",
        ),
        (
            "data",
            |d| {
                d.as_object_mut().unwrap().remove("jws");
            },
            "unexpected data",
        ),
        ("jws", |d| d["jws"] = json!("not.a.jws"), "decision JWS"),
    ];
    for (what, tweak, expected) in cases {
        let (err, index) = lying_log(|log, r| log.decide_with(r, AuditEventKind::Decided, tweak));
        assert_eq!(entry_index(&err), index, "{what}: {err}");
        assert!(err.to_string().contains(expected), "{what}: {err}");
    }
}

#[test]
fn a_decision_for_another_item_is_caught() {
    let (err, index) = lying_log(|log, r| {
        let (decision, jws) = log.signed(r, None);
        let other_item = log.next_id();
        log.append(
            AuditEventKind::Decided,
            "rita",
            Some(other_item),
            json!({"decision_id": decision.decision_id, "device_id": r.device_id, "device_seq": decision.device_seq, "key_id": r.key_id, "user_id": r.user_id, "jws": jws, "result": {"outcome": "applied"}}),
        )
    });
    assert_eq!(entry_index(&err), index);
    assert!(err.to_string().contains("item_id"), "{err}");
}

#[test]
fn a_decision_by_a_key_the_log_never_enrolled_is_caught() {
    let (err, index) = lying_log(|log, r| {
        let stranger = SigningKey::from_bytes(&[42; 32]);
        r.key_id = jws::key_id(&stranger.verifying_key());
        r.key = stranger;
        log.decide(r, AuditEventKind::Decided)
    });
    assert_eq!(entry_index(&err), index);
    assert!(
        err.to_string().contains("which no earlier entry enrolls"),
        "{err}"
    );
}

#[test]
fn a_decision_applied_after_its_key_was_revoked_is_caught() {
    let (err, index) = lying_log(|log, r| {
        let key = r.key_id.clone();
        log.revoke(&key);
        log.decide(r, AuditEventKind::Decided)
    });
    assert_eq!(entry_index(&err), index);
    assert!(err.to_string().contains("was revoked at index"), "{err}");

    let (err, index) = lying_log(|log, r| {
        let key = r.key_id.clone();
        log.revoke(&key);
        log.decide(r, AuditEventKind::Conflict)
    });
    assert_eq!(entry_index(&err), index);
}

#[test]
fn a_revoked_key_keeps_its_earlier_decisions_and_may_be_rejected_later() {
    let s = sample();
    assert!(s.rejected_after_revocation > 0);
    s.bundle.verify().unwrap();
}

#[test]
fn key_entries_must_be_coherent() {
    let (err, index) = lying_log(|log, r| {
        let wrong_kid = jws::key_id(&SigningKey::from_bytes(&[5; 32]).verifying_key());
        let jwk = jws::public_jwk(&r.key.verifying_key());
        log.append(
            AuditEventKind::KeyRotated,
            "rita",
            None,
            json!({"device_id": r.device_id, "key_id": wrong_kid, "public_key": jwk}),
        )
    });
    assert_eq!(entry_index(&err), index);
    assert!(err.to_string().contains("has the id"), "{err}");

    let (err, index) = lying_log(|log, _| log.revoke("no-such-key"));
    assert_eq!(entry_index(&err), index);
    assert!(err.to_string().contains("never enrolled"), "{err}");

    let (err, index) = lying_log(|log, r| {
        let key = r.key_id.clone();
        log.revoke(&key);
        log.revoke(&key)
    });
    assert_eq!(entry_index(&err), index);
    assert!(err.to_string().contains("already revoked"), "{err}");

    let (err, index) = lying_log(|log, _| {
        let key = SigningKey::from_bytes(&[6; 32]);
        let jwk = jws::public_jwk(&key.verifying_key());
        log.append(
            AuditEventKind::KeyRotated,
            "rita",
            None,
            json!({"device_id": "ghost", "key_id": jws::key_id(&key.verifying_key()), "public_key": jwk}),
        );
        log.size() - 1
    });
    assert_eq!(entry_index(&err), index);
    assert!(err.to_string().contains("never enrolled"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// keys.jsonl

fn key_lines(b: &Bundle) -> Vec<Value> {
    b.keys
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn set_key_lines(b: &mut Bundle, lines: &[Value]) {
    b.keys = lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
}

#[test]
fn the_key_list_must_match_the_log() {
    let s = sample();
    let lines = key_lines(&s.bundle);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["status"], "rotated");
    assert_eq!(lines[1]["status"], "revoked");
    let other_jwk = jws::public_jwk(&SigningKey::from_bytes(&[9; 32]).verifying_key());
    let cases: Vec<(&str, usize, Change, &str)> = vec![
        (
            "jwk",
            0,
            Box::new(move |k| k["jwk"] = other_jwk.clone()),
            "another JWK",
        ),
        (
            "device",
            1,
            Box::new(|k| k["device_id"] = json!("d")),
            "for device",
        ),
        (
            "user",
            2,
            Box::new(|k| k["user"] = json!("mallory")),
            "for user",
        ),
        (
            "enrolled",
            0,
            Box::new(|k| k["enrolled_at_index"] = json!(0)),
            "enrolled at index",
        ),
        (
            "unrevoked",
            1,
            Box::new(|k| k["revoked_at_index"] = Value::Null),
            "revoked never",
        ),
        (
            "revoked",
            2,
            Box::new(|k| k["revoked_at_index"] = json!(39)),
            "revoked at index 39",
        ),
        (
            "status",
            1,
            Box::new(|k| k["status"] = json!("active")),
            "status",
        ),
        (
            "status name",
            0,
            Box::new(|k| k["status"] = json!("fine")),
            "status",
        ),
        (
            "key id",
            2,
            Box::new(|k| k["key_id"] = json!("unknown")),
            "not enrolled in the log",
        ),
        (
            "field",
            2,
            Box::new(|k| k["note"] = json!("x")),
            "unknown field",
        ),
    ];
    for (what, line, change, expected) in cases {
        let mut b = clone_bundle(&s.bundle);
        let mut changed = lines.clone();
        change(&mut changed[line]);
        set_key_lines(&mut b, &changed);
        let err = b.verify().unwrap_err();
        assert!(
            matches!(err, BundleError::Key { line: l, .. } if l == line + 1),
            "{what}: {err:?}"
        );
        assert!(err.to_string().contains(expected), "{what}: {err}");
    }

    let mut b = clone_bundle(&s.bundle);
    set_key_lines(&mut b, &[lines[0].clone(), lines[2].clone()]);
    let err = b.verify().unwrap_err();
    assert!(matches!(err, BundleError::Keys(_)), "{err:?}");
    assert!(err.to_string().contains("is missing"), "{err}");

    let mut b = clone_bundle(&s.bundle);
    set_key_lines(
        &mut b,
        &[
            lines[0].clone(),
            lines[1].clone(),
            lines[2].clone(),
            lines[1].clone(),
        ],
    );
    let err = b.verify().unwrap_err();
    assert!(matches!(err, BundleError::Key { line: 4, .. }), "{err:?}");
    assert!(err.to_string().contains("listed again"), "{err}");
}

/// A million entries, one in five a signed decision, must verify in well under a minute.
/// Run with `cargo test --release -p countersign-core --test bundle -- --ignored --nocapture`.
#[test]
#[ignore = "builds a million-entry log; run in release mode"]
fn a_million_entries_verify_quickly() {
    let mut log = LogBuilder::new();
    let mut reviewers: Vec<Reviewer> = (0..8)
        .map(|i| log.reviewer(&format!("r{i}"), i + 1))
        .collect();
    let mut n = 0usize;
    while log.size() < 1_000_000 {
        if n.is_multiple_of(5) {
            let r = &mut reviewers[n % 8];
            log.decide(r, AuditEventKind::Decided);
        } else {
            log.noise(1);
        }
        if log.size().is_multiple_of(100_000) {
            log.checkpoint();
        }
        n += 1;
    }
    let bundle = log.export();
    let cpu_before = cpu_seconds();
    let started = std::time::Instant::now();
    let report = bundle.verify().unwrap();
    let elapsed = started.elapsed();
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    eprintln!("verified {report} in {elapsed:?} (CPU time {cpu:?} s)");
    assert_eq!(report.entries, 1_000_000);
    assert!(elapsed < std::time::Duration::from_secs(60), "{elapsed:?}");
}

/// The process's CPU time (user + system) where /proc tells it: on a busy machine, wall-clock
/// time says little.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

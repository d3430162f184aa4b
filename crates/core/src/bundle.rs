//! Verification of an exported audit bundle (format in `docs/audit-bundle.md`).
//!
//! The gate's log is only worth something if an outsider can check it without trusting the gate.
//! [`verify_bundle`] re-derives everything from the exported files: the Merkle root of the
//! entries against the signed checkpoints, every signed decision against the key the log itself
//! enrolled, and the exported key list against the log. It takes the files' contents, not paths,
//! so it runs wherever the core does; the caller reads the files.
//!
//! Work is one pass over the entries with O(log n) tree state. Ed25519 verification dominates,
//! so signed decisions are collected in batches and checked on all available cores.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::canonical;
use crate::checkpoint::{Checkpoint, NoteVerifier, verify_checkpoint};
use crate::jws::{self, VerifyingKey};
use crate::merkle::{Frontier, Hash, hash_from_slice, leaf_hash};
use crate::model::{AuditEntry, AuditEventKind, DecisionOutcome, Timestamp, V1};

/// The `format` value of a bundle manifest.
pub const BUNDLE_FORMAT: &str = "countersign-audit-bundle";

/// Signed decisions collected before their signatures are checked together.
const SIGNATURE_BATCH: usize = 8192;
/// Fewest signatures worth a thread of their own.
const MIN_SIGNATURES_PER_THREAD: usize = 256;

/// The contents of a bundle's files.
#[derive(Debug, Clone, Copy)]
pub struct BundleFiles<'a> {
    pub manifest: &'a [u8],
    pub entries: &'a [u8],
    pub checkpoints: &'a [u8],
    pub keys: &'a [u8],
}

/// What a bundle that verified contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    pub origin: String,
    /// The tree size of the manifest's checkpoint.
    pub size: u64,
    pub root: Hash,
    /// Entries read (equal to `size`).
    pub entries: u64,
    /// Lines of checkpoints.jsonl, each verified against the entries.
    pub checkpoints: usize,
    /// Entries of kind `decided`, `conflict` or `rejected`, each with a verified signature.
    pub decisions: u64,
    /// Lines of keys.jsonl, each matched against the log.
    pub keys: usize,
    /// The date range the bundle was exported for, checked against the entries' times.
    pub range: Option<BundleRange>,
}

/// The date range of a bundle exported for one (`manifest.json`'s `range`). The bundle still
/// holds the whole log prefix up to its checkpoint, since the Merkle root needs every leaf;
/// `first_index..end_index` are the entries logged in the range.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BundleRange {
    /// Start of the range, inclusive.
    pub from: Timestamp,
    /// End of the range, exclusive.
    pub to: Timestamp,
    /// The lowest index whose `at` is at or after `from` (the bundle's size if none is).
    pub first_index: u64,
    /// One past the highest index whose `at` is before `to` (0 if none is).
    pub end_index: u64,
}

impl fmt::Display for BundleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} entries, root {}, {} checkpoints, {} signed decisions, {} keys",
            self.origin,
            self.entries,
            B64.encode(self.root),
            self.checkpoints,
            self.decisions,
            self.keys
        )?;
        if let Some(range) = &self.range {
            write!(
                f,
                "; range {} to {}: entries {} to {}",
                range
                    .from
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                range
                    .to
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                range.first_index,
                range.end_index
            )?;
        }
        Ok(())
    }
}

/// Why a bundle does not verify. Each message names the file and, where it can be told, the first
/// entry (line and index; lines count from 1, indices from 0) that cannot be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("manifest.json: {0}")]
    Manifest(String),
    #[error("checkpoints.jsonl line {line}: {reason}")]
    Checkpoint { line: usize, reason: String },
    #[error("entries.jsonl line {line} (index {index}): {reason}", line = index + 1)]
    Entry { index: u64, reason: String },
    /// The damage lies somewhere in entries `first..=last`, which no longer hash to a signed root.
    #[error("entries.jsonl lines {} to {} (indices {first} to {last}): {reason}", first + 1, last + 1)]
    EntryRange {
        first: u64,
        last: u64,
        reason: String,
    },
    #[error(
        "entries.jsonl has {found} lines, but the checkpoint signs {expected} entries: entries {found} to {} are missing",
        expected - 1
    )]
    MissingEntries { found: u64, expected: u64 },
    #[error("keys.jsonl line {line}: {reason}")]
    Key { line: usize, reason: String },
    #[error("keys.jsonl: {0}")]
    Keys(String),
}

impl BundleError {
    /// The entry indices the error points at, first and last inclusive, when it is about entries.
    pub fn entry_range(&self) -> Option<(u64, u64)> {
        match self {
            BundleError::Entry { index, .. } => Some((*index, *index)),
            BundleError::EntryRange { first, last, .. } => Some((*first, *last)),
            BundleError::MissingEntries { found, expected } => Some((*found, expected - 1)),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[allow(dead_code)]
    v: V1,
    format: String,
    origin: String,
    log_public_key: String,
    size: u64,
    root: String,
    checkpoint: String,
    #[serde(default)]
    range: Option<BundleRange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    size: u64,
    checkpoint: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyLine {
    key_id: String,
    device_id: String,
    user: String,
    jwk: Value,
    status: String,
    enrolled_at_index: u64,
    revoked_at_index: Option<u64>,
}

#[derive(Deserialize)]
struct UserCreatedData {
    user_id: String,
    name: String,
}

#[derive(Deserialize)]
struct KeyEnrolledData {
    user_id: String,
    device_id: String,
    key_id: String,
    public_key: Value,
}

#[derive(Deserialize)]
struct KeyRotatedData {
    device_id: String,
    key_id: String,
    public_key: Value,
}

#[derive(Deserialize)]
struct KeyRevokedData {
    key_id: String,
}

#[derive(Deserialize)]
struct DecisionData {
    decision_id: Uuid,
    device_id: String,
    device_seq: u64,
    key_id: String,
    user_id: String,
    jws: String,
    result: DecisionOutcome,
}

/// A reviewer key as the log enrolled it.
struct KeyRecord {
    key: VerifyingKey,
    jwk: Value,
    device_id: String,
    user_id: String,
    enrolled_at: u64,
    revoked_at: Option<u64>,
}

/// A signed decision waiting for its signature check, with what the log entry says about it.
struct SignatureJob {
    index: u64,
    key: VerifyingKey,
    item_id: Option<Uuid>,
    data: DecisionData,
}

/// Everything the pass over the entries learns that the key list is checked against.
#[derive(Default)]
struct LogState {
    users: HashMap<String, String>,
    devices: HashMap<String, String>,
    keys: HashMap<String, KeyRecord>,
    decisions: u64,
}

/// Verifies a bundle. `expected_log_key` is the gate's note verifier key as the auditor obtained
/// it independently of the bundle; without it, the bundle is only shown consistent with the key it
/// names itself.
pub fn verify_bundle(
    files: &BundleFiles,
    expected_log_key: Option<&str>,
) -> Result<BundleReport, BundleError> {
    let manifest = read_manifest(files.manifest)?;
    let verifier = NoteVerifier::parse(manifest.log_public_key.trim()).map_err(|e| {
        BundleError::Manifest(format!(
            "log_public_key is not a signed-note verifier key: {e}"
        ))
    })?;
    if let Some(expected) = expected_log_key {
        let expected = NoteVerifier::parse(expected.trim()).map_err(|e| {
            BundleError::Manifest(format!("the expected log key is not a verifier key: {e}"))
        })?;
        if expected != verifier {
            return Err(BundleError::Manifest(format!(
                "log_public_key {} is not the expected log key {}",
                verifier.to_vkey(),
                expected.to_vkey()
            )));
        }
    }
    let head = verify_checkpoint(&manifest.checkpoint, &verifier, &manifest.origin)
        .map_err(|e| BundleError::Manifest(format!("checkpoint: {e}")))?;
    if head.size != manifest.size {
        return Err(BundleError::Manifest(format!(
            "size is {}, but the signed checkpoint has size {}",
            manifest.size, head.size
        )));
    }
    let root = B64
        .decode(&manifest.root)
        .ok()
        .and_then(|bytes| hash_from_slice(&bytes).ok())
        .ok_or_else(|| BundleError::Manifest("root is not base64 of 32 bytes".into()))?;
    if root != head.root {
        return Err(BundleError::Manifest(
            "root differs from the root of the signed checkpoint".into(),
        ));
    }

    if let Some(range) = &manifest.range {
        check_range_shape(range, head.size)?;
    }
    let checkpoints = read_checkpoints(files.checkpoints, &verifier, &head)?;
    let log = scan_entries(files.entries, &head, &checkpoints, manifest.range.as_ref())?;
    let keys = check_keys(files.keys, &log)?;
    Ok(BundleReport {
        origin: head.origin,
        size: head.size,
        root: head.root,
        entries: head.size,
        checkpoints: checkpoints.len(),
        decisions: log.decisions,
        keys,
        range: manifest.range,
    })
}

fn check_range_shape(range: &BundleRange, size: u64) -> Result<(), BundleError> {
    if range.from >= range.to {
        return Err(BundleError::Manifest(
            "range: `from` must be before `to`".into(),
        ));
    }
    if range.first_index > range.end_index || range.end_index > size {
        return Err(BundleError::Manifest(format!(
            "range: entries {} to {} do not lie within the bundle's {size} entries",
            range.first_index, range.end_index
        )));
    }
    Ok(())
}

/// Checks that `first_index` and `end_index` are what the range's times make them: entries
/// before `first_index` were logged before `from` and entry `first_index` at or after it; entries
/// from `end_index` on were logged at or after `to` and entry `end_index - 1` before it.
fn check_range_entry(range: &BundleRange, index: u64, at: Timestamp) -> Result<(), BundleError> {
    let wrong = |what: &str| {
        Err(entry_error(
            index,
            format!(
                "was logged at {}, which contradicts the manifest's range: {what}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ),
        ))
    };
    if index < range.first_index && at >= range.from {
        return wrong("entries before first_index must be older than `from`");
    }
    if index == range.first_index && at < range.from {
        return wrong("entry first_index must not be older than `from`");
    }
    if index >= range.end_index && at < range.to {
        return wrong("entries from end_index on must not be older than `to`");
    }
    if index + 1 == range.end_index && at >= range.to {
        return wrong("entry end_index - 1 must be older than `to`");
    }
    Ok(())
}

fn read_manifest(bytes: &[u8]) -> Result<Manifest, BundleError> {
    let value = canonical::parse_strict(bytes)
        .map_err(|e| BundleError::Manifest(format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(BundleError::Manifest("not a JSON object".into()));
    }
    let manifest: Manifest =
        serde_json::from_value(value).map_err(|e| BundleError::Manifest(e.to_string()))?;
    if manifest.format != BUNDLE_FORMAT {
        return Err(BundleError::Manifest(format!(
            "format is {:?}, expected {BUNDLE_FORMAT:?}",
            manifest.format
        )));
    }
    Ok(manifest)
}

/// Splits a JSON-lines file into its lines, numbered from 1. Every line must end in a newline
/// and none may be empty; a file without lines is empty.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, Result<&[u8], &'static str>)> {
    let mut rest = bytes;
    let mut number = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        number += 1;
        let line = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let line = &rest[..end];
                rest = &rest[end + 1..];
                if line.is_empty() {
                    Err("is empty")
                } else {
                    Ok(line)
                }
            }
            None => {
                rest = &[];
                Err("does not end with a newline (the file was cut short?)")
            }
        };
        Some((number, line))
    })
}

/// Reads and verifies every checkpoint the gate signed up to the manifest's.
fn read_checkpoints(
    bytes: &[u8],
    verifier: &NoteVerifier,
    head: &Checkpoint,
) -> Result<Vec<Checkpoint>, BundleError> {
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    for (line, text) in lines(bytes) {
        let err = |reason: String| BundleError::Checkpoint { line, reason };
        let text = text.map_err(|e| err(e.to_owned()))?;
        let value = canonical::parse_strict(text).map_err(|e| err(format!("not JSON: {e}")))?;
        let parsed: CheckpointLine =
            serde_json::from_value(value).map_err(|e| err(e.to_string()))?;
        let cp = verify_checkpoint(&parsed.checkpoint, verifier, &head.origin)
            .map_err(|e| err(format!("checkpoint: {e}")))?;
        if cp.size != parsed.size {
            return Err(err(format!(
                "size is {}, but the signed checkpoint has size {}",
                parsed.size, cp.size
            )));
        }
        if let Some(previous) = checkpoints.last()
            && cp.size <= previous.size
        {
            return Err(err(format!(
                "size {} does not follow size {}: checkpoints must be in increasing order",
                cp.size, previous.size
            )));
        }
        if cp.size > head.size {
            return Err(err(format!(
                "size {} is beyond the manifest's checkpoint of size {}",
                cp.size, head.size
            )));
        }
        if cp.size == head.size && cp.root != head.root {
            return Err(err(format!(
                "signs another root than the manifest's checkpoint for the same size {}: the log forked",
                cp.size
            )));
        }
        checkpoints.push(cp);
    }
    Ok(checkpoints)
}

fn entry_error(index: u64, reason: impl Into<String>) -> BundleError {
    BundleError::Entry {
        index,
        reason: reason.into(),
    }
}

/// One pass over entries.jsonl: shape of every line, the tree against every checkpoint, and
/// the keys and signed decisions the entries carry.
fn scan_entries(
    bytes: &[u8],
    head: &Checkpoint,
    checkpoints: &[Checkpoint],
    range: Option<&BundleRange>,
) -> Result<LogState, BundleError> {
    let mut state = LogState::default();
    let mut pending: Vec<SignatureJob> = Vec::new();
    match scan_lines(bytes, head, checkpoints, range, &mut state, &mut pending) {
        // Decisions queued for a signature check all come before the entry that failed, so a bad
        // signature among them is the first thing wrong.
        Err(e) => Err(check_signatures(&mut pending).err().unwrap_or(e)),
        Ok(()) => {
            check_signatures(&mut pending)?;
            Ok(state)
        }
    }
}

fn scan_lines(
    bytes: &[u8],
    head: &Checkpoint,
    checkpoints: &[Checkpoint],
    range: Option<&BundleRange>,
    state: &mut LogState,
    pending: &mut Vec<SignatureJob>,
) -> Result<(), BundleError> {
    let mut frontier = Frontier::new();
    // Size of the last checkpoint whose root the entries reproduced: damage lies after it.
    let mut verified_up_to = 0;
    let mut upcoming = checkpoints.iter().peekable();
    let mut check_roots = |frontier: &Frontier, verified_up_to: &mut u64| {
        let size = frontier.size();
        while let Some(cp) = upcoming.next_if(|cp| cp.size == size) {
            if cp.root != frontier.root() {
                return Err(root_mismatch(*verified_up_to, cp.size));
            }
            *verified_up_to = size;
        }
        Ok(())
    };
    check_roots(&frontier, &mut verified_up_to)?;

    for (number, line) in lines(bytes) {
        let index = number as u64 - 1;
        let line = line.map_err(|e| entry_error(index, e))?;
        if index >= head.size {
            return Err(entry_error(
                index,
                format!(
                    "is beyond the {} entries the checkpoint signs: an entry was inserted or appended",
                    head.size
                ),
            ));
        }
        canonical::check_canonical(line)
            .map_err(|e| entry_error(index, format!("is not canonical JSON: {e}")))?;
        let entry: AuditEntry = serde_json::from_slice(line)
            .map_err(|e| entry_error(index, format!("is not an audit entry: {e}")))?;
        if entry.index != index {
            return Err(entry_error(
                index,
                format!(
                    "holds the entry with index {}: an entry is missing, repeated or out of order",
                    entry.index
                ),
            ));
        }
        frontier.append(leaf_hash(line));
        if let Some(range) = range {
            check_range_entry(range, index, entry.at)?;
        }
        check_entry(entry, state, pending)?;
        if pending.len() >= SIGNATURE_BATCH {
            check_signatures(pending)?;
        }
        check_roots(&frontier, &mut verified_up_to)?;
    }
    if frontier.size() < head.size {
        return Err(BundleError::MissingEntries {
            found: frontier.size(),
            expected: head.size,
        });
    }
    if frontier.root() != head.root {
        return Err(root_mismatch(verified_up_to, head.size));
    }
    Ok(())
}

fn root_mismatch(verified_up_to: u64, size: u64) -> BundleError {
    let narrowed = if verified_up_to == 0 {
        "no earlier checkpoint narrows it down".to_owned()
    } else {
        format!("the checkpoint of size {verified_up_to} before them matches")
    };
    BundleError::EntryRange {
        first: verified_up_to,
        last: size.saturating_sub(1),
        reason: format!(
            "the entries do not hash to the root of the signed checkpoint of size {size} ({narrowed}): one of these entries was changed"
        ),
    }
}

/// Takes the entry's data apart (moving it out, as the entry is not needed whole afterwards).
fn data<T: for<'de> Deserialize<'de>>(entry: &mut AuditEntry) -> Result<T, BundleError> {
    serde_json::from_value(std::mem::take(&mut entry.data)).map_err(|e| {
        entry_error(
            entry.index,
            format!("{} entry has unexpected data: {e}", kind_name(entry.kind)),
        )
    })
}

fn kind_name(kind: AuditEventKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A public key as the log records it: a JWK whose thumbprint is the key id it is logged under.
fn logged_key(index: u64, key_id: &str, jwk: &Value) -> Result<VerifyingKey, BundleError> {
    let key = jws::parse_public_key(&jwk.to_string())
        .map_err(|e| entry_error(index, format!("public_key of key {key_id}: {e}")))?;
    let thumbprint = jws::key_id(&key);
    if thumbprint != key_id {
        return Err(entry_error(
            index,
            format!("logs key {key_id}, but its public key has the id {thumbprint}"),
        ));
    }
    Ok(key)
}

/// What the entry itself tells about keys and decisions, checked against what came before it.
fn check_entry(
    mut entry: AuditEntry,
    state: &mut LogState,
    pending: &mut Vec<SignatureJob>,
) -> Result<(), BundleError> {
    let index = entry.index;
    match entry.kind {
        AuditEventKind::UserCreated => {
            let d: UserCreatedData = data(&mut entry)?;
            if state.users.insert(d.user_id.clone(), d.name).is_some() {
                return Err(entry_error(
                    index,
                    format!("creates user {} a second time", d.user_id),
                ));
            }
        }
        AuditEventKind::KeyEnrolled => {
            let d: KeyEnrolledData = data(&mut entry)?;
            let key = logged_key(index, &d.key_id, &d.public_key)?;
            if state
                .devices
                .insert(d.device_id.clone(), d.user_id.clone())
                .is_some()
            {
                return Err(entry_error(
                    index,
                    format!("enrolls device {} a second time", d.device_id),
                ));
            }
            add_key(
                state,
                index,
                d.key_id,
                key,
                d.public_key,
                d.device_id,
                d.user_id,
            )?;
        }
        AuditEventKind::KeyRotated => {
            let d: KeyRotatedData = data(&mut entry)?;
            let key = logged_key(index, &d.key_id, &d.public_key)?;
            let user_id = state.devices.get(&d.device_id).cloned().ok_or_else(|| {
                entry_error(
                    index,
                    format!(
                        "rotates the key of device {}, which was never enrolled",
                        d.device_id
                    ),
                )
            })?;
            add_key(
                state,
                index,
                d.key_id,
                key,
                d.public_key,
                d.device_id,
                user_id,
            )?;
        }
        AuditEventKind::KeyRevoked => {
            let d: KeyRevokedData = data(&mut entry)?;
            let record = state.keys.get_mut(&d.key_id).ok_or_else(|| {
                entry_error(
                    index,
                    format!("revokes key {}, which was never enrolled", d.key_id),
                )
            })?;
            if let Some(earlier) = record.revoked_at {
                return Err(entry_error(
                    index,
                    format!(
                        "revokes key {}, already revoked at index {earlier}",
                        d.key_id
                    ),
                ));
            }
            record.revoked_at = Some(index);
        }
        AuditEventKind::Decided | AuditEventKind::Conflict | AuditEventKind::Rejected => {
            let d: DecisionData = data(&mut entry)?;
            let key = decision_key(&entry, &d, state)?;
            state.decisions += 1;
            pending.push(SignatureJob {
                index,
                key,
                item_id: entry.item_id,
                data: d,
            });
        }
        _ => {}
    }
    Ok(())
}

fn add_key(
    state: &mut LogState,
    index: u64,
    key_id: String,
    key: VerifyingKey,
    jwk: Value,
    device_id: String,
    user_id: String,
) -> Result<(), BundleError> {
    if state.keys.contains_key(&key_id) {
        return Err(entry_error(
            index,
            format!("enrolls key {key_id} a second time"),
        ));
    }
    state.keys.insert(
        key_id,
        KeyRecord {
            key,
            jwk,
            device_id,
            user_id,
            enrolled_at: index,
            revoked_at: None,
        },
    );
    Ok(())
}

/// The key a logged decision must verify with: the one its JWS `kid` names, enrolled earlier in
/// the log by the same device and user, and not revoked before the decision took effect.
fn decision_key(
    entry: &AuditEntry,
    d: &DecisionData,
    state: &LogState,
) -> Result<VerifyingKey, BundleError> {
    let index = entry.index;
    let err = |reason: String| entry_error(index, reason);
    let header = jws::decision_header(&d.jws).map_err(|e| err(format!("decision JWS: {e}")))?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| err("decision JWS names no key (kid)".into()))?;
    if kid != d.key_id {
        return Err(err(format!(
            "decision JWS is signed by key {kid}, but the entry names key {}",
            d.key_id
        )));
    }
    let record = state.keys.get(kid).ok_or_else(|| {
        err(format!(
            "decision is signed by key {kid}, which no earlier entry enrolls"
        ))
    })?;
    if record.device_id != d.device_id {
        return Err(err(format!(
            "decision is from device {}, but key {kid} belongs to device {}",
            d.device_id, record.device_id
        )));
    }
    if record.user_id != d.user_id {
        return Err(err(format!(
            "decision is attributed to user {}, but key {kid} belongs to user {}",
            d.user_id, record.user_id
        )));
    }
    let outcome_fits = matches!(
        (entry.kind, &d.result),
        (AuditEventKind::Decided, DecisionOutcome::Applied)
            | (AuditEventKind::Conflict, DecisionOutcome::Conflict { .. })
            | (AuditEventKind::Rejected, DecisionOutcome::Rejected { .. })
    );
    if !outcome_fits {
        return Err(err(format!(
            "{} entry records the result {}",
            kind_name(entry.kind),
            serde_json::to_string(&d.result).unwrap_or_default()
        )));
    }
    // After a revocation the gate still logs what a revoked key signs, but only as rejected.
    if let Some(revoked) = record.revoked_at
        && entry.kind != AuditEventKind::Rejected
    {
        return Err(err(format!(
            "{} entry for a decision signed by key {kid}, which was revoked at index {revoked}",
            kind_name(entry.kind)
        )));
    }
    Ok(record.key)
}

/// Checks one signed decision against its key and against what its entry says about it.
fn check_signature(job: &SignatureJob) -> Result<(), BundleError> {
    let err = |reason: String| entry_error(job.index, reason);
    let verified = jws::verify_decision(&job.data.jws, &job.key)
        .map_err(|e| err(format!("signed decision does not verify: {e}")))?;
    let decision = verified.decision;
    let d = &job.data;
    let mismatch = if decision.decision_id != d.decision_id {
        Some((
            "decision_id",
            decision.decision_id.to_string(),
            d.decision_id.to_string(),
        ))
    } else if decision.device_id != d.device_id {
        Some(("device_id", decision.device_id.clone(), d.device_id.clone()))
    } else if decision.device_seq != d.device_seq {
        Some((
            "device_seq",
            decision.device_seq.to_string(),
            d.device_seq.to_string(),
        ))
    } else if Some(decision.item_id) != job.item_id {
        Some((
            "item_id",
            decision.item_id.to_string(),
            job.item_id
                .map_or_else(|| "none".to_owned(), |i| i.to_string()),
        ))
    } else {
        None
    };
    match mismatch {
        Some((field, signed, logged)) => Err(err(format!(
            "the signed decision has {field} {signed}, but the entry records {logged}"
        ))),
        None => Ok(()),
    }
}

/// Checks the queued signatures on all available cores and empties the queue. Reports the
/// failure with the lowest index.
fn check_signatures(jobs: &mut Vec<SignatureJob>) -> Result<(), BundleError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len() / MIN_SIGNATURES_PER_THREAD)
        .max(1);
    let result = if threads == 1 {
        jobs.iter().try_for_each(check_signature)
    } else {
        let chunk = jobs.len().div_ceil(threads);
        let first_failure = std::thread::scope(|scope| {
            let handles: Vec<_> = jobs
                .chunks(chunk)
                .map(|part| {
                    let check = move || part.iter().try_for_each(check_signature);
                    // If no thread can be started, the work is done here instead.
                    std::thread::Builder::new()
                        .spawn_scoped(scope, check)
                        .map_err(|_| part)
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| match handle {
                    Ok(handle) => handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    Err(part) => part.iter().try_for_each(check_signature),
                })
                .find_map(Result::err)
        });
        first_failure.map_or(Ok(()), Err)
    };
    jobs.clear();
    result
}

/// Matches keys.jsonl against the keys the log enrolled and revoked.
fn check_keys(bytes: &[u8], log: &LogState) -> Result<usize, BundleError> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, text) in lines(bytes) {
        let err = |reason: String| BundleError::Key { line, reason };
        let text = text.map_err(|e| err(e.to_owned()))?;
        let value = canonical::parse_strict(text).map_err(|e| err(format!("not JSON: {e}")))?;
        let k: KeyLine = serde_json::from_value(value).map_err(|e| err(e.to_string()))?;
        let id = &k.key_id;
        if let Some(earlier) = seen.insert(id.clone(), line) {
            return Err(err(format!(
                "key {id} is listed again (first on line {earlier})"
            )));
        }
        let record = log
            .keys
            .get(id)
            .ok_or_else(|| err(format!("key {id} is not enrolled in the log")))?;
        if k.jwk != record.jwk {
            return Err(err(format!(
                "key {id} has another JWK than the log enrolled"
            )));
        }
        if k.device_id != record.device_id {
            return Err(err(format!(
                "key {id} is listed for device {}, the log enrolled it for device {}",
                k.device_id, record.device_id
            )));
        }
        match log.users.get(&record.user_id) {
            Some(name) if *name == k.user => {}
            Some(name) => {
                return Err(err(format!(
                    "key {id} is listed for user {:?}, the log enrolled it for user {name:?}",
                    k.user
                )));
            }
            None => {
                return Err(err(format!(
                    "key {id} belongs to user {}, whom the log never created",
                    record.user_id
                )));
            }
        }
        if k.enrolled_at_index != record.enrolled_at {
            return Err(err(format!(
                "key {id} is listed as enrolled at index {}, the log enrolled it at index {}",
                k.enrolled_at_index, record.enrolled_at
            )));
        }
        if k.revoked_at_index != record.revoked_at {
            let show = |at: Option<u64>| {
                at.map_or_else(|| "never".to_owned(), |i| format!("at index {i}"))
            };
            return Err(err(format!(
                "key {id} is listed as revoked {}, the log revoked it {}",
                show(k.revoked_at_index),
                show(record.revoked_at)
            )));
        }
        let status_fits = match k.status.as_str() {
            "revoked" => record.revoked_at.is_some(),
            "active" | "rotated" => record.revoked_at.is_none(),
            _ => false,
        };
        if !status_fits {
            return Err(err(format!(
                "key {id} has status {:?}, which does not fit its revocation in the log",
                k.status
            )));
        }
    }
    if let Some((id, record)) = log
        .keys
        .iter()
        .filter(|(id, _)| !seen.contains_key(*id))
        .min_by_key(|(_, record)| record.enrolled_at)
    {
        return Err(BundleError::Keys(format!(
            "key {id}, enrolled at index {}, is missing",
            record.enrolled_at
        )));
    }
    Ok(seen.len())
}

//! Checkpoints (C2SP tlog-checkpoint) signed as notes (C2SP signed-note), and receipts.
//!
//! A checkpoint names a log (its *origin*), a tree size and the RFC 6962 root at that size. The
//! gate signs each one as a signed note with its Ed25519 key, so any tool that speaks the
//! transparency-log ecosystem's note format (Go's `sumdb/note`, transparency-dev, Sigsum, ...)
//! can check it. A [`Receipt`] bundles a signed checkpoint with the inclusion proof of one log
//! entry, so a single document proves that entry is in the log the gate committed to.
//!
//! Formats, with the examples of the specifications as tests:
//! - <https://c2sp.org/signed-note>: `text || "\n" || ("— " name " " base64(key id || signature) "\n")+`
//! - <https://c2sp.org/tlog-checkpoint>: `origin "\n" size "\n" base64(root) "\n" (extension "\n")*`

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::merkle::{Hash, ProofError, hash_from_slice, leaf_hash, verify_inclusion};

/// The largest note accepted or produced. The signed-note spec requires room for at least 16
/// signatures of up to ~5 kB each (post-quantum ones); checkpoints are far smaller.
pub const MAX_NOTE_BYTES: usize = 1 << 20;

/// The most signature lines read from one note, as Go's `sumdb/note` does, so a hostile note
/// cannot make a verifier parse without end.
pub const MAX_SIGNATURES: usize = 100;

/// The signature type byte of Ed25519 in key ids and key strings.
pub const SIG_TYPE_ED25519: u8 = 0x01;

const SIG_LINE_PREFIX: &str = "\u{2014} ";
const SKEY_PREFIX: &str = "PRIVATE+KEY+";

/// Why a note, a key or a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("note is {len} bytes, more than the {max} allowed")]
    TooLarge { len: usize, max: usize },
    #[error("note contains the control character U+{code:04X} at byte {offset}")]
    ControlCharacter { offset: usize, code: u32 },
    #[error("note text is empty")]
    EmptyText,
    #[error("note text does not end with a newline")]
    MissingFinalNewline,
    #[error("note has no blank line followed by signature lines")]
    MissingSignatures,
    #[error("signature line {line} is malformed: {reason}")]
    MalformedSignatureLine { line: usize, reason: &'static str },
    #[error("note has more than {max} signatures")]
    TooManySignatures { max: usize },
    #[error("key name {name} is invalid: it must be non-empty without spaces or '+'")]
    InvalidKeyName { name: String },
    #[error("malformed {kind} key: {reason}")]
    MalformedKey {
        kind: &'static str,
        reason: &'static str,
    },
    #[error("unsupported signature type 0x{0:02x}: only Ed25519 (0x01) is supported")]
    UnsupportedKeyType(u8),
    #[error("key id {got} does not match the key, which has id {expected}")]
    KeyIdMismatch { expected: String, got: String },
    #[error("weak Ed25519 public key refused")]
    WeakKey,
    #[error("could not generate a key: {0}")]
    Randomness(String),
    #[error("signature by {name}+{key_id} does not verify")]
    BadSignature { name: String, key_id: String },
    #[error("note has no signature by {name}+{key_id}")]
    NoSignature { name: String, key_id: String },
    #[error("checkpoint has {lines} lines, needs at least 3 (origin, tree size, root hash)")]
    TooFewLines { lines: usize },
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    #[error("checkpoint {field} contains a control character")]
    ControlCharacterInField { field: &'static str },
    #[error("checkpoint tree size {0} is not a decimal number without leading zeros")]
    BadTreeSize(String),
    #[error("checkpoint root hash is not base64 of 32 bytes")]
    BadRootHash,
    #[error("checkpoint extension line {line} is empty")]
    EmptyExtensionLine { line: usize },
    #[error("checkpoint is for origin {got}, expected {expected}")]
    WrongOrigin { expected: String, got: String },
}

/// Quotes text from outside for an error message, cut short so a hostile note cannot flood logs.
fn quoted(text: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut cut: String = text.chars().take(MAX_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

fn hex_id(id: [u8; 4]) -> String {
    hex::encode(id)
}

/// A key name: non-empty, no Unicode white space, no `+` (the vkey separator).
fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(NoteError::InvalidKeyName { name: quoted(name) });
    }
    // Key names are parts of notes and key strings, which carry no control characters.
    if name.chars().any(char::is_control) {
        return Err(NoteError::InvalidKeyName { name: quoted(name) });
    }
    Ok(())
}

/// The Ed25519 key id: `SHA-256(name || "\n" || 0x01 || public key)[..4]`.
pub fn ed25519_key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([SIG_TYPE_ED25519])
        .chain_update(key.as_bytes())
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Refuses anything a signed note may not contain: too many bytes, and ASCII control
/// characters other than newline (which also rules out CR, so CRLF notes are refused).
fn check_note_bytes(text: &str) -> Result<(), NoteError> {
    if text.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge {
            len: text.len(),
            max: MAX_NOTE_BYTES,
        });
    }
    match text.bytes().position(|b| b < 0x20 && b != b'\n') {
        Some(offset) => Err(NoteError::ControlCharacter {
            offset,
            code: u32::from(text.as_bytes()[offset]),
        }),
        None => Ok(()),
    }
}

/// Splits `<name>+<8 hex digits>+<base64>`, the tail of both key strings.
fn split_key(key: &str, kind: &'static str) -> Result<(String, [u8; 4], Vec<u8>), NoteError> {
    let malformed = |reason| NoteError::MalformedKey { kind, reason };
    // The name has no '+' and the hex none either, so the base64 (which may) is the rest.
    let mut parts = key.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected <name>+<key id>+<key>"));
    };
    check_key_name(name)?;
    if id_hex.len() != 8
        || !id_hex
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(malformed("key id is not 8 lowercase hex digits"));
    }
    let mut id = [0u8; 4];
    hex::decode_to_slice(id_hex, &mut id).map_err(|_| malformed("key id is not hex"))?;
    let bytes = B64
        .decode(key_b64)
        .map_err(|_| malformed("key is not standard base64"))?;
    match bytes.first() {
        None => Err(malformed("key is empty")),
        Some(&SIG_TYPE_ED25519) if bytes.len() == 33 => Ok((name.to_owned(), id, bytes)),
        Some(&SIG_TYPE_ED25519) => Err(malformed("an Ed25519 key is 32 bytes")),
        Some(&other) => Err(NoteError::UnsupportedKeyType(other)),
    }
}

fn check_key_id(claimed: [u8; 4], actual: [u8; 4]) -> Result<(), NoteError> {
    if claimed == actual {
        Ok(())
    } else {
        Err(NoteError::KeyIdMismatch {
            expected: hex_id(actual),
            got: hex_id(claimed),
        })
    }
}

/// A named Ed25519 key that signs notes. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    key_id: [u8; 4],
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &hex_id(self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key_id = ed25519_key_id(name, &key.verifying_key());
        Ok(Self {
            name: name.to_owned(),
            key,
            key_id,
        })
    }

    /// A fresh key from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(seed.as_mut()).map_err(|e| NoteError::Randomness(e.to_string()))?;
        Self::new(name, SigningKey::from_bytes(&seed))
    }

    /// Reads a signer key `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`, the format of
    /// Go's `sumdb/note`. The key id must match the key.
    pub fn parse(skey: &str) -> Result<Self, NoteError> {
        let rest = skey
            .strip_prefix(SKEY_PREFIX)
            .ok_or(NoteError::MalformedKey {
                kind: "signer",
                reason: "does not start with PRIVATE+KEY+",
            })?;
        let (name, claimed_id, bytes) = split_key(rest, "signer")?;
        let bytes = Zeroizing::new(bytes);
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&bytes[1..]);
        let signer = Self::new(&name, SigningKey::from_bytes(&seed))?;
        check_key_id(claimed_id, signer.key_id)?;
        Ok(signer)
    }

    /// The signer key string. It holds the secret key: store it like one.
    pub fn to_skey(&self) -> String {
        let mut bytes = Zeroizing::new([0u8; 33]);
        bytes[0] = SIG_TYPE_ED25519;
        bytes[1..].copy_from_slice(self.key.as_bytes());
        format!(
            "{SKEY_PREFIX}{}+{}+{}",
            self.name,
            hex_id(self.key_id),
            B64.encode(bytes.as_ref())
        )
    }

    /// The verifier of this signer's signatures.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
            key_id: self.key_id,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The signature line for `text`, newline included.
    fn signature_line(&self, text: &str) -> String {
        let signature = self.key.sign(text.as_bytes());
        let mut bytes = Vec::with_capacity(4 + Signature::BYTE_SIZE);
        bytes.extend_from_slice(&self.key_id);
        bytes.extend_from_slice(&signature.to_bytes());
        format!("{SIG_LINE_PREFIX}{} {}\n", self.name, B64.encode(bytes))
    }
}

/// A named Ed25519 public key that verifies notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
    key_id: [u8; 4],
}

impl NoteVerifier {
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        check_key_name(name)?;
        // A small-order key would "verify" forged signatures under lax rules; refuse it
        // outright rather than rely on every check staying strict.
        if key.is_weak() {
            return Err(NoteError::WeakKey);
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: ed25519_key_id(name, &key),
            key,
        })
    }

    /// Reads a verifier key `<name>+<hex key id>+<base64(0x01 || public key)>`. The key id must
    /// match the key.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let (name, claimed_id, bytes) = split_key(vkey, "verifier")?;
        let mut public = [0u8; 32];
        public.copy_from_slice(&bytes[1..]);
        let key = VerifyingKey::from_bytes(&public).map_err(|_| NoteError::MalformedKey {
            kind: "verifier",
            reason: "not a valid Ed25519 public key",
        })?;
        let verifier = Self::new(&name, key)?;
        check_key_id(claimed_id, verifier.key_id)?;
        Ok(verifier)
    }

    /// The verifier key string.
    pub fn to_vkey(&self) -> String {
        let mut bytes = Vec::with_capacity(33);
        bytes.push(SIG_TYPE_ED25519);
        bytes.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex_id(self.key_id),
            B64.encode(bytes)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    fn verify(&self, text: &str, signature: &[u8]) -> Result<(), NoteError> {
        let bad = || NoteError::BadSignature {
            name: self.name.clone(),
            key_id: hex_id(self.key_id),
        };
        let signature = Signature::from_slice(signature).map_err(|_| bad())?;
        // verify_strict refuses malleable and small-order edge cases, so whatever passes here
        // also passes libsodium, OpenSSL and Go's crypto/ed25519.
        self.key
            .verify_strict(text.as_bytes(), &signature)
            .map_err(|_| bad())
    }
}

/// Checks that `text` can be the text of a signed note: non-empty, ending in a newline, free of
/// control characters other than newline, and small enough to sign.
fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() {
        return Err(NoteError::EmptyText);
    }
    if !text.ends_with('\n') {
        return Err(NoteError::MissingFinalNewline);
    }
    check_note_bytes(text)
}

/// Signs `text` as a note: the text, a blank line, and one signature line.
///
/// The text may contain blank lines, as the spec allows: readers split at the last one.
pub fn sign_note(text: &str, signer: &NoteSigner) -> Result<String, NoteError> {
    check_text(text)?;
    let line = signer.signature_line(text);
    let note = format!("{text}\n{line}");
    check_note_bytes(&note)?;
    Ok(note)
}

/// Opens a signed note and returns its text, which is only to be trusted because this returns
/// `Ok`: the note must carry a valid signature by `verifier`'s key.
///
/// As the spec requires, signatures by other keys (a different name or key id) are ignored, so
/// witnesses may cosign and logs may rotate keys; every signature by `verifier`'s key must
/// verify. Malformed notes are refused whole.
pub fn verify_note(note: &str, verifier: &NoteVerifier) -> Result<String, NoteError> {
    check_note_bytes(note)?;
    // The text ends at the last blank line; the text itself may contain blank lines.
    let split = note.rfind("\n\n").ok_or(NoteError::MissingSignatures)?;
    let (text, signatures) = (&note[..=split], &note[split + 2..]);
    let Some(signatures) = signatures.strip_suffix('\n') else {
        return Err(NoteError::MissingSignatures);
    };

    let mut verified = false;
    for (n, line) in signatures.split('\n').enumerate() {
        let line_no = n + 1;
        if line_no > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        let malformed = |reason| NoteError::MalformedSignatureLine {
            line: line_no,
            reason,
        };
        let rest = line
            .strip_prefix(SIG_LINE_PREFIX)
            .ok_or(malformed("it does not start with an em dash and a space"))?;
        let (name, signature_b64) = rest
            .split_once(' ')
            .ok_or(malformed("no space between key name and signature"))?;
        if check_key_name(name).is_err() {
            return Err(malformed("invalid key name"));
        }
        let signature = B64
            .decode(signature_b64)
            .map_err(|_| malformed("signature is not standard base64"))?;
        if signature.len() < 5 {
            return Err(malformed("signature is shorter than a key id and one byte"));
        }
        let (key_id, signature) = signature.split_at(4);
        if name == verifier.name && key_id == verifier.key_id {
            verifier.verify(text, signature)?;
            verified = true;
        }
    }
    if !verified {
        return Err(NoteError::NoSignature {
            name: verifier.name.clone(),
            key_id: hex_id(verifier.key_id),
        });
    }
    Ok(text.to_owned())
}

/// A tree head of a log: the body of a C2SP tlog-checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log; its verifier key usually carries the same name.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Opaque extension lines, each non-empty. Not auditable by log monitors; best left empty.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: origin, size, base64 root and extension lines, each ending in a newline.
    pub fn to_body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        body
    }

    /// Checks that [`Checkpoint::to_body`] gives a text that parses back to this checkpoint.
    pub fn validate(&self) -> Result<(), NoteError> {
        if self.origin.is_empty() {
            return Err(NoteError::EmptyOrigin);
        }
        if self.origin.chars().any(char::is_control) {
            return Err(NoteError::ControlCharacterInField { field: "origin" });
        }
        for (n, line) in self.extensions.iter().enumerate() {
            if line.is_empty() {
                return Err(NoteError::EmptyExtensionLine { line: n + 4 });
            }
            if line.chars().any(char::is_control) {
                return Err(NoteError::ControlCharacterInField {
                    field: "extension line",
                });
            }
        }
        Ok(())
    }

    /// Parses a checkpoint body. Strict: the size must be canonical decimal, the root exactly 32
    /// bytes of canonical base64, and no line (extensions included) may be empty.
    pub fn parse_body(text: &str) -> Result<Self, NoteError> {
        check_note_bytes(text)?;
        let body = text
            .strip_suffix('\n')
            .ok_or(NoteError::MissingFinalNewline)?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(NoteError::TooFewLines { lines: lines.len() });
        };
        if origin.is_empty() {
            return Err(NoteError::EmptyOrigin);
        }
        let size = parse_tree_size(size)?;
        let root = B64
            .decode(root)
            .ok()
            .and_then(|bytes| hash_from_slice(&bytes).ok())
            .ok_or(NoteError::BadRootHash)?;
        if let Some(n) = extensions.iter().position(|line| line.is_empty()) {
            return Err(NoteError::EmptyExtensionLine { line: n + 4 });
        }
        Ok(Self {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
        })
    }
}

/// ASCII decimal without sign or leading zeros ("0" alone is zero), within `u64`.
fn parse_tree_size(text: &str) -> Result<u64, NoteError> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| NoteError::BadTreeSize(quoted(text)))
}

/// Signs a checkpoint as a note.
pub fn sign_checkpoint(cp: &Checkpoint, signer: &NoteSigner) -> Result<String, NoteError> {
    cp.validate()?;
    sign_note(&cp.to_body(), signer)
}

/// Opens a signed checkpoint: it must carry a valid signature by `verifier`, parse strictly and
/// name `expected_origin`.
pub fn verify_checkpoint(
    note: &str,
    verifier: &NoteVerifier,
    expected_origin: &str,
) -> Result<Checkpoint, NoteError> {
    let text = verify_note(note, verifier)?;
    let checkpoint = Checkpoint::parse_body(&text)?;
    if checkpoint.origin != expected_origin {
        return Err(NoteError::WrongOrigin {
            expected: quoted(expected_origin),
            got: quoted(&checkpoint.origin),
        });
    }
    Ok(checkpoint)
}

/// Proof that one entry is in the log: the inclusion proof of its leaf in the tree of a signed
/// checkpoint. Self-contained: with the gate's verifier key, the log's origin and the entry's
/// bytes, anyone can check it offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub v: crate::V1,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The RFC 9162 inclusion proof, leaf side first, each hash in standard base64.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint note for `tree_size`.
    pub checkpoint: String,
}

impl Receipt {
    pub fn new(leaf_index: u64, tree_size: u64, proof: &[Hash], checkpoint: String) -> Self {
        Self {
            v: crate::V1,
            leaf_index,
            tree_size,
            inclusion_proof: proof.iter().map(|h| B64.encode(h)).collect(),
            checkpoint,
        }
    }

    /// The decoded inclusion proof.
    pub fn proof_hashes(&self) -> Result<Vec<Hash>, ReceiptError> {
        self.inclusion_proof
            .iter()
            .enumerate()
            .map(|(index, text)| {
                B64.decode(text)
                    .ok()
                    .and_then(|bytes| hash_from_slice(&bytes).ok())
                    .ok_or(ReceiptError::BadProofElement { index })
            })
            .collect()
    }
}

/// Why a receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("receipt checkpoint: {0}")]
    Checkpoint(#[from] NoteError),
    #[error("receipt is for tree size {receipt} but its checkpoint is for tree size {checkpoint}")]
    SizeMismatch { receipt: u64, checkpoint: u64 },
    #[error("receipt inclusion proof element {index} is not base64 of 32 bytes")]
    BadProofElement { index: usize },
    #[error("receipt inclusion proof: {0}")]
    Proof(#[from] ProofError),
}

/// Checks a receipt for `entry_bytes`: its checkpoint is signed by `verifier` for `origin`, is
/// for the receipt's tree size, and the proof includes the entry's leaf hash at `leaf_index`.
/// Returns the checkpoint the entry is proven to be in.
pub fn verify_receipt(
    receipt: &Receipt,
    entry_bytes: &[u8],
    verifier: &NoteVerifier,
    origin: &str,
) -> Result<Checkpoint, ReceiptError> {
    let checkpoint = verify_checkpoint(&receipt.checkpoint, verifier, origin)?;
    if checkpoint.size != receipt.tree_size {
        return Err(ReceiptError::SizeMismatch {
            receipt: receipt.tree_size,
            checkpoint: checkpoint.size,
        });
    }
    let proof = receipt.proof_hashes()?;
    verify_inclusion(
        &leaf_hash(entry_bytes),
        receipt.leaf_index,
        receipt.tree_size,
        &proof,
        &checkpoint.root,
    )?;
    Ok(checkpoint)
}

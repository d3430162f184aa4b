//! `countersign decision`: verify, inspect and sign decisions (JWS compact serialization, EdDSA
//! over Ed25519, payload the RFC 8785 bytes of the decision).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Subcommand};
use countersign_core::canonical;
use countersign_core::jws::{self, JwsError, VerifyingKey};
use countersign_core::model::Decision;
use serde_json::Value;

use crate::failure::{Failure, Outcome};
use crate::input::Input;
use crate::key::read_signing_key;

/// Verify, inspect or sign reviewers' decisions.
///
/// A decision is a JWS in compact serialization (RFC 7515): header, payload and signature in
/// base64url, separated by dots. The signature is EdDSA over Ed25519 (RFC 8037), the header's kid
/// is the RFC 7638 thumbprint of the reviewer's key and the payload is the RFC 8785 canonical
/// JSON of the decision. Any JOSE library can check one; this command also checks everything
/// Countersign's gate checks.
#[derive(Debug, Subcommand)]
#[command(after_long_help = "\
Examples:
  $ countersign decision inspect decision.jws
  $ countersign decision verify --public-key reviewer.jwk decision.jws")]
pub enum DecisionCommand {
    Verify(VerifyArgs),
    Inspect(InspectArgs),
    Sign(SignArgs),
}

/// Verify a signed decision against its reviewer's public key.
///
/// Checks that the header has alg EdDSA, typ countersign-decision+jws and the key's thumbprint
/// as kid, that the signature verifies (strictly: no malleable signatures, no weak keys), that the
/// payload is canonical JSON (a validly signed but re-ordered or duplicated payload is refused,
/// since readers could disagree on what it says), and that it is a well-formed decision naming
/// the same key.
///
/// On success prints the signed payload, the decision's canonical JSON, followed by one newline
/// (none with --no-newline), and exits 0. Otherwise prints one line saying why on stderr and
/// exits 1 (2 when the key or the file cannot be read).
#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  $ countersign decision verify --public-key reviewer.jwk decision.jws
  {\"corrections\":[],\"decided_at\":\"2025-03-01T09:30:00Z\",…}

  $ countersign decision verify --public-key 11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo < decision.jws
  countersign: decision does not verify: signature is invalid")]
pub struct VerifyArgs {
    /// The reviewer's public key: a file holding it, or the key itself, as a JWK (JSON), as its
    /// 32 bytes in base64url or base64, or as 64 hex digits.
    #[arg(short = 'k', long, value_name = "KEY")]
    public_key: OsString,

    /// The compact JWS; standard input when absent or `-`. Surrounding whitespace is ignored.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,

    /// Print exactly the payload bytes, without the final newline.
    #[arg(short = 'n', long)]
    no_newline: bool,
}

/// Show the header and payload of a decision without verifying it.
///
/// Everything shown is UNVERIFIED: anyone can write any header and payload. Use it to find the
/// kid, and so the key to verify with, or to see why a decision is refused.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  $ countersign decision inspect decision.jws
  UNVERIFIED: the signature has not been checked; nothing below can be trusted.
  …
  kid: kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k
  …")]
pub struct InspectArgs {
    /// The compact JWS; standard input when absent or `-`.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
}

/// Sign a decision with a private key file and print the compact JWS.
///
/// The decision JSON is read strictly and must be a well-formed decision (format version 1, no
/// unknown fields) whose key_id is the signing key's thumbprint, as `countersign key public`
/// prints it in kid. Meant for test fixtures and demos; reviewers sign on their desk.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  $ countersign key generate --out reviewer.key > reviewer.jwk
  $ countersign decision sign --key reviewer.key decision.json > decision.jws
  $ countersign decision verify --public-key reviewer.jwk decision.jws")]
pub struct SignArgs {
    /// The private key file: a base64url seed as `key generate` writes it, or a private JWK.
    #[arg(short = 'k', long, value_name = "FILE")]
    key: PathBuf,

    /// The decision as JSON; standard input when absent or `-`.
    #[arg(value_name = "DECISION.json")]
    file: Option<PathBuf>,
}

pub fn run(command: &DecisionCommand) -> Outcome {
    match command {
        DecisionCommand::Verify(args) => verify(args),
        DecisionCommand::Inspect(args) => inspect(args),
        DecisionCommand::Sign(args) => sign(args),
    }
}

fn verify(args: &VerifyArgs) -> Outcome {
    let key = load_public_key(&args.public_key)?;
    let input = Input::read(args.file.as_deref())?;
    let does_not_verify =
        |why: String| Failure::rejected(format!("decision does not verify: {why}"));
    let jws = input
        .text()
        .map_err(|_| does_not_verify("the JWS is not text".into()))?
        .trim();
    let verified = jws::verify_decision(jws, &key).map_err(|e| does_not_verify(reason(&e)))?;
    let mut out = verified.payload;
    if !args.no_newline {
        out.push(b'\n');
    }
    Ok(out)
}

/// The reason a decision was refused, in the words an auditor needs.
fn reason(err: &JwsError) -> String {
    match err {
        JwsError::BadSignature => "signature is invalid".into(),
        JwsError::KidMismatch { expected, found } => {
            format!("its kid names the key {found:?}, but the public key given has id {expected:?}")
        }
        other => other.to_string(),
    }
}

/// Reads `--public-key`: a file holding the key when one exists at that path, otherwise the key
/// text itself.
fn load_public_key(arg: &OsString) -> Outcome<VerifyingKey> {
    let path = Path::new(arg);
    if path.exists() {
        let input = Input::read_file(path)?;
        let text = input.text()?;
        return jws::parse_public_key(text)
            .map_err(|e| Failure::input(format!("public key file {}: {e}", input.name)));
    }
    let text = arg.to_str().unwrap_or_default();
    jws::parse_public_key(text).map_err(|e| {
        Failure::input(format!(
            "--public-key {:?} is neither an existing file nor a key: {e}",
            truncate(&arg.to_string_lossy(), 60)
        ))
    })
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn inspect(args: &InspectArgs) -> Outcome {
    let input = Input::read(args.file.as_deref())?;
    let malformed = |why: String| Failure::input(format!("cannot inspect {}: {why}", input.name));
    let jws = input
        .text()
        .map_err(|_| malformed("the JWS is not text".into()))?
        .trim();
    let header = jws::decision_header(jws).map_err(|e| malformed(e.to_string()))?;
    // decision_header has checked that there are exactly three parts.
    let payload_b64 = jws.split('.').nth(1).unwrap_or_default();

    let mut out = String::new();
    out.push_str("UNVERIFIED: the signature has not been checked; nothing below can be trusted.\n");
    out.push_str("Verify with: countersign decision verify --public-key KEY FILE\n\n");
    let kid = match header.get("kid") {
        Some(Value::String(kid)) => kid.clone(),
        Some(other) => format!("{other} (not a string)"),
        None => "(none)".into(),
    };
    let _ = writeln!(out, "kid: {kid}");
    let _ = writeln!(out, "header:\n{}", pretty(&header));
    match URL_SAFE_NO_PAD.decode(payload_b64) {
        Err(e) => {
            let _ = writeln!(out, "payload: not unpadded base64url ({e})");
        }
        Ok(payload) => describe_payload(&payload, &mut out),
    }
    Ok(out.into_bytes())
}

fn describe_payload(payload: &[u8], out: &mut String) {
    let value = match canonical::parse_strict(payload) {
        Ok(value) => value,
        Err(e) => {
            let _ = writeln!(out, "payload: not valid JSON ({e})");
            let _ = writeln!(out, "{}", String::from_utf8_lossy(payload).escape_debug());
            return;
        }
    };
    let _ = writeln!(out, "payload:\n{}", pretty(&value));
    let canonical = match canonical::check_canonical(payload) {
        Ok(()) => "yes".to_owned(),
        Err(e) => format!("no ({e})"),
    };
    let _ = writeln!(out, "payload is canonical JSON: {canonical}");
    let shape = match serde_json::from_value::<Decision>(value) {
        Ok(decision) => match decision.check_shape() {
            Ok(()) => "yes".to_owned(),
            Err(e) => format!("no ({e})"),
        },
        Err(e) => format!("no ({e})"),
    };
    let _ = writeln!(out, "payload is a well-formed decision: {shape}");
}

/// Indented JSON for people. Strings keep their JSON escapes, so control characters in a hostile
/// payload reach the terminal inert.
fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("(cannot display: {e})"))
}

fn sign(args: &SignArgs) -> Outcome {
    let key = read_signing_key(&args.key)?;
    let input = Input::read(args.file.as_deref())?;
    let invalid =
        |why: String| Failure::input(format!("{} is not a valid decision: {why}", input.name));
    let value = canonical::parse_strict(&input.bytes).map_err(|e| invalid(e.to_string()))?;
    let decision: Decision = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    let kid = jws::key_id(&key.verifying_key());
    if decision.key_id != kid {
        return Err(invalid(format!(
            "its key_id is {:?}, but the signing key's id is {kid:?}",
            decision.key_id
        )));
    }
    let signed = jws::sign_decision(&decision, &key).map_err(|e| match e {
        JwsError::InvalidDecision(why) => invalid(why),
        other => Failure::input(format!("cannot sign {}: {other}", input.name)),
    })?;
    let mut out = signed.into_bytes();
    out.push(b'\n');
    Ok(out)
}

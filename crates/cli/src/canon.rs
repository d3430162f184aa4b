//! `countersign canon`: the RFC 8785 form of a JSON document.

use std::path::PathBuf;

use clap::Args;
use countersign_core::canonical;

use crate::failure::{Failure, Outcome};
use crate::input::Input;

/// Print the RFC 8785 (JCS) canonical form of a JSON document.
///
/// The canonical form is what Countersign hashes and signs: object members sorted by their
/// UTF-16 code units, no whitespace, numbers in their shortest ECMAScript form, strings with
/// only the escapes JCS requires.
///
/// The input is read strictly, under I-JSON rules: duplicate object keys, unpaired surrogate
/// escapes, invalid UTF-8 and nesting deeper than 128 levels are refused (exit status 2), since
/// two readers could otherwise disagree on what the document says.
///
/// The canonical bytes are followed by one newline so that the output reads well on a terminal;
/// use --no-newline for the exact bytes, or --sha256 for their hash.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  $ echo '{\"b\":1,\"a\":[1.0,2e2]}' | countersign canon
  {\"a\":[1,200],\"b\":1}

  Check the evidence_sha256 of a decision against the item the reviewer was shown:
  $ countersign canon --sha256 served-item.json")]
pub struct CanonArgs {
    /// The JSON document; standard input when absent or `-`.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,

    /// Print exactly the canonical bytes, without the final newline.
    #[arg(short = 'n', long)]
    no_newline: bool,

    /// Print the lowercase hex SHA-256 of the canonical bytes instead of the bytes (the form of a
    /// decision's evidence_sha256).
    #[arg(long, conflicts_with = "no_newline")]
    sha256: bool,
}

pub fn run(args: &CanonArgs) -> Outcome {
    let input = Input::read(args.file.as_deref())?;
    let mut out = canonical::canonicalize(&input.bytes)
        .map_err(|e| Failure::input(format!("cannot canonicalize {}: {e}", input.name)))?;
    if args.sha256 {
        out = countersign_core::sha256_hex(&out).into_bytes();
    }
    if !args.no_newline {
        out.push(b'\n');
    }
    Ok(out)
}

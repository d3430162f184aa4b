//! `countersign verify-bundle DIR`: checks an audit bundle exported by the gate, offline.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use countersign_core::bundle::{BundleFiles, verify_bundle};

use crate::failure::{Failure, Outcome};
use crate::input::{MAX_INPUT_BYTES, io_reason, too_large};

/// Verify an audit bundle exported with `countersign-gate audit export DIR`.
///
/// Checks every entry's canonical form and index, the Merkle root against the signed checkpoint,
/// every checkpoint's signature and consistency, every reviewer key against the log's own
/// enrollment entries, and every signed decision in the log with its signer's key. The format is
/// described in docs/audit-bundle.md so it can also be checked without this tool.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Examples:
  $ countersign-gate audit export /tmp/bundle
  $ countersign verify-bundle /tmp/bundle --log-key gate.vkey
  bundle verifies: countersign-gate/log: 1843 entries, root ..., 12 checkpoints, 310 signed decisions, 4 keys")]
pub struct VerifyBundleArgs {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The gate's checkpoint verifier key, obtained independently of the bundle (a file or the
    /// key text). Without it the bundle is only shown consistent with the key it names itself.
    #[arg(long)]
    pub log_key: Option<String>,
}

/// Reads one bundle file whole. Unlike the other commands' inputs a bundle's entries may run to
/// gigabytes, so no fixed limit applies to them; but each must be a regular file and is read
/// only to the length it had when opened, so that a device, a pipe or a file still being
/// written (a bundle symlinked to `/dev/zero`) is refused instead of filling memory. The
/// manifest is a few hundred bytes and keeps the common input limit.
fn read(dir: &Path, name: &str) -> Outcome<Vec<u8>> {
    let path = dir.join(name);
    let shown = path.display();
    let cannot =
        |e: &std::io::Error| Failure::input(format!("cannot read {shown}: {}", io_reason(e)));
    let file = std::fs::File::open(&path).map_err(|e| cannot(&e))?;
    let meta = file.metadata().map_err(|e| cannot(&e))?;
    if !meta.is_file() {
        return Err(Failure::input(format!("{shown} is not a regular file")));
    }
    let len = meta.len();
    if name == MANIFEST && len > MAX_INPUT_BYTES {
        return Err(too_large(&shown.to_string()));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(usize::try_from(len).unwrap_or(usize::MAX))
        .map_err(|_| Failure::input(format!("{shown} ({len} bytes) does not fit in memory")))?;
    file.take(len)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(&e))?;
    Ok(bytes)
}

const MANIFEST: &str = "manifest.json";

pub fn run(args: &VerifyBundleArgs) -> Outcome {
    let manifest = read(&args.dir, MANIFEST)?;
    let entries = read(&args.dir, "entries.jsonl")?;
    let checkpoints = read(&args.dir, "checkpoints.jsonl")?;
    let keys = read(&args.dir, "keys.jsonl")?;
    let log_key = match &args.log_key {
        Some(given) if Path::new(given).is_file() => Some(
            std::fs::read_to_string(given)
                .map_err(|e| Failure::input(format!("cannot read {given}: {}", io_reason(&e))))?,
        ),
        Some(given) => Some(given.clone()),
        None => None,
    };
    let files = BundleFiles {
        manifest: &manifest,
        entries: &entries,
        checkpoints: &checkpoints,
        keys: &keys,
    };
    let report = verify_bundle(&files, log_key.as_deref())
        .map_err(|e| Failure::rejected(format!("bundle does not verify: {e}")))?;
    let note = if log_key.is_none() {
        " (log key taken from the bundle itself; pass --log-key to pin it)"
    } else {
        ""
    };
    Ok(format!("bundle verifies: {report}{note}\n").into_bytes())
}

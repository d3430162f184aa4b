//! Exporting an audit bundle for a date range to a directory the supervisor picked. The gate
//! sends a tar of the bundle's files; the desk unpacks only those five regular files into a
//! hidden directory beside the destination, verifies what it wrote there with
//! `countersign_core::bundle::verify_bundle` against the log key pinned at enrollment, and only
//! then gives it its name. A bundle that does not verify is removed, never left looking valid.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, SubsecRound as _, Utc};
use countersign_core::bundle::{BundleFiles, verify_bundle};

use super::types::BundleExport;
use crate::Desk;
use crate::error::{DeskError, ErrorCode};

/// The files of a bundle (docs/audit-bundle.md), as the tar holds them under `countersign-bundle/`.
const FILES: [&str; 5] = [
    "manifest.json",
    "entries.jsonl",
    "checkpoints.jsonl",
    "keys.jsonl",
    "log-key.vkey",
];
const TAR_DIR: &str = "countersign-bundle";

fn unverified(message: impl Into<String>) -> DeskError {
    DeskError::new(ErrorCode::BundleUnverified, message)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A name in `dir` not taken yet: `countersign-bundle-<from>-<to>`, then `-2`, `-3`...
fn free_name(dir: &Path, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<PathBuf, DeskError> {
    let base = format!("countersign-bundle-{}-{}", stamp(from), stamp(to));
    for n in 1..1000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let path = dir.join(name);
        if !path.exists() {
            return Ok(path);
        }
    }
    Err(DeskError::invalid_input(format!(
        "{} holds too many bundles named {base}: choose another directory",
        dir.display()
    )))
}

/// Unpacks the bundle's files from the tar at `tar` into `into`; anything else in the tar
/// (other names, links, directories beyond the bundle's own) is refused.
fn unpack(tar: &Path, into: &Path) -> Result<(), DeskError> {
    let file = std::fs::File::open(tar)?;
    let mut archive = tar::Archive::new(file);
    let mut found = Vec::new();
    for entry in archive
        .entries()
        .map_err(|e| unverified(format!("the gate's bundle is not a tar: {e}")))?
    {
        let mut entry = entry.map_err(|e| unverified(format!("the gate's bundle tar: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| unverified(format!("a name in the bundle tar: {e}")))?
            .into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() && path == Path::new(TAR_DIR) {
            continue;
        }
        let name = path
            .strip_prefix(TAR_DIR)
            .ok()
            .and_then(|p| p.to_str())
            .filter(|n| FILES.contains(n))
            .ok_or_else(|| {
                unverified(format!(
                    "the bundle tar holds {}, which is not a bundle file",
                    path.display()
                ))
            })?
            .to_owned();
        if !kind.is_file() || found.contains(&name) {
            return Err(unverified(format!(
                "the bundle tar's {name} is not a single regular file"
            )));
        }
        let mut out = std::fs::File::create(into.join(&name))?;
        std::io::copy(&mut entry, &mut out)?;
        out.sync_all()?;
        found.push(name);
    }
    if let Some(missing) = FILES.iter().find(|f| !found.iter().any(|n| n == *f)) {
        return Err(unverified(format!("the bundle has no {missing}")));
    }
    Ok(())
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, DeskError> {
    let mut bytes = Vec::new();
    std::fs::File::open(dir.join(name))?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Verifies the bundle written in `dir` as an auditor would: from the files on disk.
fn verify_written(
    dir: &Path,
    log_key: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<countersign_core::bundle::BundleReport, DeskError> {
    let manifest = read(dir, "manifest.json")?;
    let entries = read(dir, "entries.jsonl")?;
    let checkpoints = read(dir, "checkpoints.jsonl")?;
    let keys = read(dir, "keys.jsonl")?;
    let report = verify_bundle(
        &BundleFiles {
            manifest: &manifest,
            entries: &entries,
            checkpoints: &checkpoints,
            keys: &keys,
        },
        Some(log_key),
    )
    .map_err(|e| unverified(format!("the exported bundle does not verify: {e}")))?;
    let vkey = String::from_utf8(read(dir, "log-key.vkey")?).unwrap_or_default();
    if vkey.trim() != log_key.trim() {
        return Err(unverified(
            "the bundle's log-key.vkey is not the gate's log key this desk enrolled with",
        ));
    }
    match &report.range {
        Some(range) if range.from == from && range.to == to => Ok(report),
        _ => Err(unverified(
            "the gate sent a bundle for another date range than the one asked for",
        )),
    }
}

impl Desk {
    /// Exports the audit bundle of `[from, to)` into a new directory inside `dir`, verified there
    /// before this returns.
    pub async fn export_bundle(
        &self,
        dir: &Path,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<BundleExport, DeskError> {
        let client = self.supervising().await?.clone();
        // The gate keeps times to the millisecond; the manifest's range is compared with these.
        let (from, to) = (from.trunc_subsecs(3), to.trunc_subsecs(3));
        if from >= to {
            return Err(DeskError::invalid_input(
                "the range must start before it ends",
            ));
        }
        if !dir.is_absolute() || !dir.is_dir() {
            return Err(DeskError::invalid_input(format!(
                "{} is not a directory on this computer: choose an existing folder",
                dir.display()
            )));
        }
        let target = free_name(dir, from, to)?;
        let partial = dir.join(format!(
            ".{}.partial-{}",
            target
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("countersign-bundle"),
            countersign_core::new_id().simple()
        ));
        std::fs::create_dir(&partial)?;
        let result = async {
            let tar_path = partial.join("bundle.tar");
            let query = serde_urlencoded::to_string([
                ("from", from.to_rfc3339_opts(SecondsFormat::Millis, true)),
                ("to", to.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ])
            .map_err(|e| DeskError::invalid_input(format!("range: {e}")))?;
            let mut file = std::fs::File::create(&tar_path)?;
            client
                .download(&format!("/v1/supervision/bundle?{query}"), &mut file)
                .await?;
            file.sync_all()?;
            drop(file);
            let log_key = self.inner.verifier.to_vkey();
            let into = partial.clone();
            let report = tokio::task::spawn_blocking(move || {
                unpack(&tar_path, &into)?;
                std::fs::remove_file(&tar_path)?;
                verify_written(&into, &log_key, from, to)
            })
            .await
            .map_err(|e| DeskError::storage(format!("the bundle check stopped: {e}")))??;
            std::fs::rename(&partial, &target)?;
            Ok::<_, DeskError>(report)
        }
        .await;
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(e);
            }
        };
        let range = report.range.clone();
        tracing::info!(path = %target.display(), size = report.size, "audit bundle exported and verified");
        Ok(BundleExport {
            path: target.display().to_string(),
            from,
            to,
            size: report.size,
            root_b64: base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                report.root,
            ),
            checkpoints: u32::try_from(report.checkpoints).unwrap_or(u32::MAX),
            decisions: report.decisions,
            keys: u32::try_from(report.keys).unwrap_or(u32::MAX),
            first_index: range.as_ref().map_or(0, |r| r.first_index),
            end_index: range.as_ref().map_or(0, |r| r.end_index),
            summary: report.to_string(),
        })
    }
}

//! Export of the audit log as a self-contained bundle an auditor verifies without the gate
//! (`countersign verify-bundle DIR`; format in docs/audit-bundle.md).

use std::fs;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;

use super::Gate;
use crate::db::DbError;
use crate::error::GateError;
use crate::log::{to_i64, to_u64};
use crate::on_tx;

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct BundleSummary {
    pub entries: u64,
    pub checkpoints: usize,
    pub keys: usize,
    pub root_base64: String,
}

const PAGE: u64 = 10_000;

#[derive(sqlx::FromRow)]
struct KeyRow {
    key_id: String,
    device_id: String,
    user: String,
    public_key: Vec<u8>,
    status: String,
    enrolled_at_index: i64,
    revoked_at_index: Option<i64>,
}

fn io_error(path: &Path, err: &std::io::Error) -> GateError {
    GateError::internal(format!("writing {}: {err}", path.display()))
}

/// The files of a bundle, in the order a tar of it holds them.
pub const BUNDLE_FILES: [&str; 5] = [
    "manifest.json",
    "entries.jsonl",
    "checkpoints.jsonl",
    "keys.jsonl",
    "log-key.vkey",
];

impl Gate {
    /// Writes the whole log as of its latest checkpoint into `dir` (created; must be empty).
    pub async fn export_bundle(&self, dir: &Path) -> Result<BundleSummary, GateError> {
        self.export_bundle_range(dir, None).await
    }

    /// A supervisor's bundle for `[from, to)` (RFC 3339), as a tar of the bundle's files under
    /// `countersign-bundle/`, in an unnamed temporary file positioned at its start.
    pub async fn bundle_tar(
        &self,
        principal: &super::Principal,
        from: &str,
        to: &str,
    ) -> Result<fs::File, GateError> {
        principal.supervisor()?;
        let range = (
            super::oversight::parse_time("from", from)?,
            super::oversight::parse_time("to", to)?,
        );
        let dir = tempfile::tempdir()
            .map_err(|e| GateError::internal(format!("temporary directory: {e}")))?;
        let bundle = dir.path().join("countersign-bundle");
        self.export_bundle_range(&bundle, Some(range)).await?;
        tokio::task::spawn_blocking(move || {
            let _keep = dir;
            let mut file = tempfile::tempfile()
                .map_err(|e| GateError::internal(format!("temporary file: {e}")))?;
            let mut tar = tar::Builder::new(&mut file);
            for name in BUNDLE_FILES {
                tar.append_path_with_name(bundle.join(name), format!("countersign-bundle/{name}"))
                    .map_err(|e| io_error(&bundle.join(name), &e))?;
            }
            tar.finish().map_err(|e| io_error(&bundle, &e))?;
            drop(tar);
            std::io::Seek::rewind(&mut file).map_err(|e| io_error(&bundle, &e))?;
            Ok(file)
        })
        .await
        .map_err(|e| GateError::internal(format!("writing the bundle: {e}")))?
    }

    /// Writes the log into `dir` (created; must be empty): all of it as of the latest checkpoint,
    /// or, for a range `[from, to)` in milliseconds, the prefix up to the first stored checkpoint
    /// that covers every entry logged in the range, with the range in the manifest (the earlier
    /// entries are needed to recompute the signed root).
    pub async fn export_bundle_range(
        &self,
        dir: &Path,
        range: Option<(i64, i64)>,
    ) -> Result<BundleSummary, GateError> {
        if let Some((from, to)) = range
            && from >= to
        {
            return Err(GateError::bad_request(
                "invalid_range",
                "`from` must be before `to`",
            ));
        }
        if dir.exists()
            && fs::read_dir(dir)
                .map_err(|e| io_error(dir, &e))?
                .next()
                .is_some()
        {
            return Err(GateError::bad_request(
                "bundle_dir_not_empty",
                format!("{} is not empty", dir.display()),
            ));
        }
        fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
        let latest = self.log.checkpoint(&self.db).await?;
        let mut tx = self.db.begin_read().await?;
        let (size, note, root, manifest_range) = match range {
            None => (
                latest.checkpoint.size,
                latest.note.clone(),
                latest.checkpoint.root.to_vec(),
                None,
            ),
            Some((from, to)) => {
                let latest_size = to_i64(latest.checkpoint.size);
                let (first, last): (Option<i64>, Option<i64>) = on_tx!(&mut tx, conn => {
                    sqlx::query_as("SELECT (SELECT MIN(idx) FROM log_entries WHERE at >= $1 AND idx < $3), (SELECT MAX(idx) FROM log_entries WHERE at < $2 AND idx < $3)")
                        .bind(from)
                        .bind(to)
                        .bind(latest_size)
                        .fetch_one(conn)
                        .await
                        .map_err(DbError::from)?
                });
                let first = first.unwrap_or(latest_size);
                let end = last.map_or(0, |l| l + 1);
                let covering: Option<(i64, String, Vec<u8>)> = on_tx!(&mut tx, conn => {
                    sqlx::query_as("SELECT size, note, root FROM checkpoints WHERE size >= $1 AND size >= 1 ORDER BY size LIMIT 1")
                        .bind(end)
                        .fetch_optional(conn)
                        .await
                        .map_err(DbError::from)?
                });
                let (cp_size, note, root) = covering.ok_or_else(|| {
                    GateError::conflict(
                        "no_checkpoint",
                        "no signed checkpoint covers the range yet",
                    )
                })?;
                let first = first.min(cp_size);
                let bundle_range = countersign_core::bundle::BundleRange {
                    from: crate::db::ms_to_time(from),
                    to: crate::db::ms_to_time(to),
                    first_index: to_u64(first),
                    end_index: to_u64(end),
                };
                (to_u64(cp_size), note, root, Some(bundle_range))
            }
        };

        let entries_path = dir.join("entries.jsonl");
        let mut entries = std::io::BufWriter::new(
            fs::File::create(&entries_path).map_err(|e| io_error(&entries_path, &e))?,
        );
        let mut start = 0;
        while start < size {
            let end = (start + PAGE).min(size);
            for (_, bytes) in self.log.entries(&mut tx, start, end).await? {
                entries
                    .write_all(&bytes)
                    .map_err(|e| io_error(&entries_path, &e))?;
                entries
                    .write_all(b"\n")
                    .map_err(|e| io_error(&entries_path, &e))?;
            }
            start = end;
        }
        entries.flush().map_err(|e| io_error(&entries_path, &e))?;

        let notes: Vec<(i64, String)> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT size, note FROM checkpoints WHERE size <= $1 ORDER BY size")
                .bind(to_i64(size))
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        let checkpoints_path = dir.join("checkpoints.jsonl");
        let mut lines = String::new();
        for (cp_size, note) in &notes {
            lines.push_str(&json!({"size": to_u64(*cp_size), "checkpoint": note}).to_string());
            lines.push('\n');
        }
        fs::write(&checkpoints_path, lines).map_err(|e| io_error(&checkpoints_path, &e))?;

        let keys: Vec<KeyRow> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT k.key_id, k.device_id, u.name AS user, k.public_key, k.status, k.enrolled_at_index, k.revoked_at_index FROM device_keys k JOIN users u ON u.user_id = k.user_id WHERE k.enrolled_at_index < $1 ORDER BY k.enrolled_at_index")
                .bind(to_i64(size))
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        let keys_path = dir.join("keys.jsonl");
        let mut lines = String::new();
        for KeyRow {
            key_id,
            device_id,
            user,
            public_key,
            status,
            enrolled_at_index: enrolled,
            revoked_at_index: revoked,
        } in &keys
        {
            let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public_key);
            let revoked = revoked.filter(|r| to_u64(*r) < size);
            lines.push_str(
                &json!({
                    "key_id": key_id,
                    "device_id": device_id,
                    "user": user,
                    "jwk": {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": key_id},
                    "status": if revoked.is_some() { "revoked" } else if status == "revoked" { "active" } else { status.as_str() },
                    "enrolled_at_index": to_u64(*enrolled),
                    "revoked_at_index": revoked.map(to_u64),
                })
                .to_string(),
            );
            lines.push('\n');
        }
        fs::write(&keys_path, lines).map_err(|e| io_error(&keys_path, &e))?;

        let vkey_path = dir.join("log-key.vkey");
        fs::write(&vkey_path, format!("{}\n", self.log_public_key()))
            .map_err(|e| io_error(&vkey_path, &e))?;
        let root_base64 = B64.encode(root);
        let manifest_path = dir.join("manifest.json");
        let mut manifest = json!({
            "v": 1,
            "format": "countersign-audit-bundle",
            "origin": self.log.origin(),
            "log_public_key": self.log_public_key(),
            "size": size,
            "root": root_base64,
            "checkpoint": note,
        });
        if let Some(range) = &manifest_range {
            manifest["range"] = serde_json::to_value(range)
                .map_err(|e| GateError::internal(format!("bundle range: {e}")))?;
        }
        fs::write(
            &manifest_path,
            serde_json::to_string_pretty(&manifest)
                .map_err(|e| GateError::internal(e.to_string()))?,
        )
        .map_err(|e| io_error(&manifest_path, &e))?;
        Ok(BundleSummary {
            entries: size,
            checkpoints: notes.len(),
            keys: keys.len(),
            root_base64,
        })
    }
}

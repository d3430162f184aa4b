//! The log integrity check: one action that checks, from this desk, that the gate's log is the
//! one it always was. The gate's current checkpoint and every checkpoint it lists must be signed
//! by the pinned log key; every checkpoint this desk ever saw must be extended by the current
//! one (a consistency proof each); and every log entry this desk holds (its own signed
//! decisions, and the entries of trails it verified) must still be in the current tree with the
//! same bytes (an inclusion proof each, in batches). Problems are collected, not stopped at, so
//! the report shows all of them.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::Utc;
use countersign_api::CheckpointResponse;
use countersign_api::ProofResponse;
use countersign_api::supervision::{
    CheckpointsResponse, InclusionBatchRequest, InclusionBatchResponse,
};
use countersign_core::checkpoint::{Checkpoint, verify_checkpoint};
use countersign_core::merkle::{
    Hash, hash_from_slice, leaf_hash, verify_consistency, verify_inclusion,
};
use sqlx::Row as _;

use super::types::{IntegrityPhase, IntegrityProgress, IntegrityReport};
use crate::Desk;
use crate::client::GateClient;
use crate::error::{DeskError, ErrorCode};
use crate::store::{to_i64, to_u64, ts};
use crate::sync::decode_hashes;

/// Indices per batch inclusion request (the gate's limit).
pub(crate) const PROOF_BATCH: usize = 1000;
/// Checkpoints per page of the gate's list (its limit).
const CHECKPOINT_PAGE: u32 = 1000;

/// An entry this desk holds and expects to find unchanged at its index.
struct Held {
    leaf: Hash,
    own: bool,
}

fn root_of(hex_text: &str) -> Option<Hash> {
    hex::decode(hex_text)
        .ok()
        .and_then(|b| hash_from_slice(&b).ok())
}

impl Desk {
    /// Runs the log integrity check, reporting progress. A failing check is a report with
    /// `ok: false` and its problems; an `Err` means the check could not run (gate unreachable).
    /// A checkpoint the gate's log does not extend stops this desk's sync, as the sync's own
    /// check does.
    pub async fn check_log(
        &self,
        progress: &(dyn Fn(IntegrityProgress) + Send + Sync),
    ) -> Result<IntegrityReport, DeskError> {
        let client = self.client().await?.clone();
        // Checkpoints this desk accepts meanwhile (a sync's) would race with the comparison.
        let _running = self.inner.sync_lock.lock().await;
        let mut problems = Vec::new();
        let current: CheckpointResponse = client.get("/v1/log/checkpoint").await?;
        let head = match verify_checkpoint(
            &current.checkpoint,
            &self.inner.verifier,
            &self.inner.account.log_origin,
        ) {
            Ok(head) => head,
            Err(e) => {
                problems.push(format!(
                    "the gate's current checkpoint is not signed by the log key this desk enrolled with: {e}"
                ));
                return self
                    .integrity_report(None, problems, Counts::default())
                    .await;
            }
        };
        let mut counts = Counts::default();
        let seen = self.seen_checkpoints().await?;
        counts.seen = seen.len() as u64;

        let listed_agree = self
            .check_listed(&client, &head, &seen, progress, &mut counts, &mut problems)
            .await?;
        let consistent = self
            .check_seen(&client, &head, &seen, progress, &mut counts, &mut problems)
            .await?;
        self.check_held(&client, &head, progress, &mut counts, &mut problems)
            .await?;

        if consistent && listed_agree {
            sqlx::query("INSERT OR IGNORE INTO checkpoints (size, root_hex, note, verified_at) VALUES (?, ?, ?, ?)")
                .bind(to_i64(head.size))
                .bind(hex::encode(head.root))
                .bind(&current.checkpoint)
                .bind(ts(Utc::now()))
                .execute(self.pool())
                .await?;
        } else {
            let why = problems.join("; ");
            sqlx::query("UPDATE sync_state SET log_inconsistent = COALESCE(log_inconsistent, ?)")
                .bind(format!("the log integrity check failed: {why}"))
                .execute(self.pool())
                .await?;
        }
        self.integrity_report(Some(&head), problems, counts).await
    }

    async fn integrity_report(
        &self,
        head: Option<&Checkpoint>,
        problems: Vec<String>,
        c: Counts,
    ) -> Result<IntegrityReport, DeskError> {
        let report = IntegrityReport {
            ok: problems.is_empty(),
            checked_at: Utc::now(),
            log_size: head.map_or(0, |h| h.size),
            root_hex: head.map(|h| hex::encode(h.root)).unwrap_or_default(),
            gate_checkpoints_signed: c.listed_signed,
            gate_checkpoints: c.listed,
            seen_checkpoints_consistent: c.seen_consistent,
            seen_checkpoints: c.seen,
            own_decisions_proven: c.own_proven,
            own_decisions: c.own,
            trail_entries_proven: c.trail_proven,
            trail_entries: c.trail,
            problems,
        };
        tracing::info!(
            ok = report.ok,
            size = report.log_size,
            problems = report.problems.len(),
            "log integrity checked"
        );
        Ok(report)
    }

    /// (size, root) of every checkpoint this desk verified, smallest first.
    async fn seen_checkpoints(&self) -> Result<Vec<(u64, Hash)>, DeskError> {
        let rows = sqlx::query("SELECT size, root_hex FROM checkpoints ORDER BY size")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let root: String = r.try_get("root_hex")?;
                Ok((
                    to_u64(r.try_get("size")?),
                    root_of(&root).ok_or_else(|| DeskError::storage("a stored checkpoint root"))?,
                ))
            })
            .collect()
    }

    /// Signatures of every checkpoint the gate lists, and agreement with this desk's own at the
    /// same sizes; returns false when the gate signed another tree than one this desk saw.
    async fn check_listed(
        &self,
        client: &GateClient,
        head: &Checkpoint,
        seen: &[(u64, Hash)],
        progress: &(dyn Fn(IntegrityProgress) + Send + Sync),
        counts: &mut Counts,
        problems: &mut Vec<String>,
    ) -> Result<bool, DeskError> {
        let seen: BTreeMap<u64, Hash> = seen.iter().copied().collect();
        let mut agree = true;
        let mut after = 0u64;
        progress(IntegrityProgress {
            phase: IntegrityPhase::Checkpoints,
            done: 0,
            total: head.size,
        });
        loop {
            let page: CheckpointsResponse = client
                .get(&format!(
                    "/v1/log/checkpoints?after={after}&limit={CHECKPOINT_PAGE}"
                ))
                .await?;
            let last = page.checkpoints.last().map(|c| c.size);
            for listed in &page.checkpoints {
                if listed.size > head.size {
                    continue;
                }
                counts.listed += 1;
                match verify_checkpoint(
                    &listed.checkpoint,
                    &self.inner.verifier,
                    &self.inner.account.log_origin,
                ) {
                    Err(e) => problems.push(format!(
                        "the gate's checkpoint of size {} is not validly signed: {e}",
                        listed.size
                    )),
                    Ok(cp) if cp.size != listed.size || B64.encode(cp.root) != listed.root => {
                        problems.push(format!(
                            "the gate lists a checkpoint of size {} whose signed note says otherwise",
                            listed.size
                        ));
                    }
                    Ok(cp) => {
                        counts.listed_signed += 1;
                        if let Some(root) = seen.get(&cp.size)
                            && *root != cp.root
                        {
                            agree = false;
                            problems.push(format!(
                                "the gate signed a tree of {} entries whose root differs from the one this desk saw: its log is forked",
                                cp.size
                            ));
                        }
                    }
                }
            }
            progress(IntegrityProgress {
                phase: IntegrityPhase::Checkpoints,
                done: last.unwrap_or(head.size).min(head.size),
                total: head.size,
            });
            match last {
                Some(size)
                    if page.checkpoints.len() as u32 >= CHECKPOINT_PAGE && size < head.size =>
                {
                    after = size;
                }
                _ => break,
            }
        }
        progress(IntegrityProgress {
            phase: IntegrityPhase::Checkpoints,
            done: head.size,
            total: head.size,
        });
        Ok(agree)
    }

    /// A consistency proof from every checkpoint this desk saw to the current one. Returns
    /// whether all held.
    async fn check_seen(
        &self,
        client: &GateClient,
        head: &Checkpoint,
        seen: &[(u64, Hash)],
        progress: &(dyn Fn(IntegrityProgress) + Send + Sync),
        counts: &mut Counts,
        problems: &mut Vec<String>,
    ) -> Result<bool, DeskError> {
        let total = seen.len() as u64;
        let mut all = true;
        for (done, (size, root)) in seen.iter().enumerate() {
            progress(IntegrityProgress {
                phase: IntegrityPhase::Consistency,
                done: done as u64,
                total,
            });
            let problem = if *size > head.size {
                Some(format!(
                    "the gate's log went back from {size} entries (seen by this desk) to {}: it rewrote its history",
                    head.size
                ))
            } else if *size == head.size || *size == 0 {
                (*size == head.size && *root != head.root).then(|| {
                    format!(
                        "the gate signed two different trees of {size} entries: its log is forked"
                    )
                })
            } else {
                let proof: Result<ProofResponse, DeskError> = client
                    .get(&format!(
                        "/v1/log/proof/consistency?from={size}&to={}",
                        head.size
                    ))
                    .await;
                match proof {
                    Err(e) if e.code == ErrorCode::GateRefused => Some(format!(
                        "the gate cannot prove its log of {} entries extends the {size} this desk saw: {}",
                        head.size, e.message
                    )),
                    Err(e) => return Err(e),
                    Ok(p) => match decode_hashes(&p.proof) {
                        Err(e) => Some(e.message),
                        Ok(hashes) => verify_consistency(*size, head.size, root, &head.root, &hashes)
                            .err()
                            .map(|e| {
                                format!(
                                    "the gate's log of {} entries does not extend the {size} this desk saw ({e}): it rewrote or forked its history",
                                    head.size
                                )
                            }),
                    },
                }
            };
            match problem {
                Some(p) => {
                    all = false;
                    problems.push(p);
                }
                None => counts.seen_consistent += 1,
            }
        }
        progress(IntegrityProgress {
            phase: IntegrityPhase::Consistency,
            done: total,
            total,
        });
        Ok(all)
    }

    /// Inclusion in the current tree, with unchanged bytes, of every entry this desk holds.
    async fn check_held(
        &self,
        client: &GateClient,
        head: &Checkpoint,
        progress: &(dyn Fn(IntegrityProgress) + Send + Sync),
        counts: &mut Counts,
        problems: &mut Vec<String>,
    ) -> Result<(), DeskError> {
        let mut held: BTreeMap<u64, Held> = BTreeMap::new();
        let trail_rows = sqlx::query("SELECT log_index, leaf_hash_hex FROM trail_entries")
            .fetch_all(self.pool())
            .await?;
        for r in &trail_rows {
            let hash: String = r.try_get("leaf_hash_hex")?;
            let leaf = root_of(&hash).ok_or_else(|| DeskError::storage("a stored leaf hash"))?;
            held.insert(to_u64(r.try_get("log_index")?), Held { leaf, own: false });
        }
        let own_rows = sqlx::query("SELECT leaf_index, entry FROM receipts")
            .fetch_all(self.pool())
            .await?;
        for r in &own_rows {
            let entry: String = r.try_get("entry")?;
            held.insert(
                to_u64(r.try_get("leaf_index")?),
                Held {
                    leaf: leaf_hash(entry.as_bytes()),
                    own: true,
                },
            );
        }
        counts.own = held.values().filter(|h| h.own).count() as u64;
        counts.trail = held.len() as u64 - counts.own;
        let total = held.len() as u64;
        let mut done = 0u64;
        progress(IntegrityProgress {
            phase: IntegrityPhase::Inclusion,
            done,
            total,
        });
        let (beyond, indices): (Vec<u64>, Vec<u64>) =
            held.keys().copied().partition(|i| *i >= head.size);
        for index in beyond {
            problems.push(format!(
                "entry {index}, which this desk holds, is beyond the gate's log of {} entries",
                head.size
            ));
        }
        for chunk in indices.chunks(PROOF_BATCH) {
            let response: InclusionBatchResponse = client
                .post(
                    "/v1/log/proofs/inclusion",
                    &InclusionBatchRequest {
                        size: head.size,
                        indices: chunk.to_vec(),
                    },
                )
                .await?;
            let proven: BTreeMap<u64, _> = response.entries.iter().map(|e| (e.index, e)).collect();
            for index in chunk {
                let Some(expected) = held.get(index) else {
                    continue;
                };
                let what = if expected.own {
                    "the decision this desk signed at entry"
                } else {
                    "the trail entry"
                };
                let Some(entry) = proven.get(index) else {
                    problems.push(format!("the gate did not prove {what} {index}"));
                    continue;
                };
                let bytes = entry.entry.get().as_bytes();
                let proof: Option<Vec<Hash>> = entry
                    .proof
                    .iter()
                    .map(|h| B64.decode(h).ok().and_then(|b| hash_from_slice(&b).ok()))
                    .collect();
                if leaf_hash(bytes) != expected.leaf {
                    problems.push(format!(
                        "{what} {index} changed: the gate now serves other bytes there"
                    ));
                } else if proof.is_none_or(|p| {
                    verify_inclusion(&expected.leaf, *index, head.size, &p, &head.root).is_err()
                }) {
                    problems.push(format!(
                        "{what} {index} is not proven in the current tree of {} entries",
                        head.size
                    ));
                } else if expected.own {
                    counts.own_proven += 1;
                } else {
                    counts.trail_proven += 1;
                }
            }
            done += chunk.len() as u64;
            progress(IntegrityProgress {
                phase: IntegrityPhase::Inclusion,
                done,
                total,
            });
        }
        progress(IntegrityProgress {
            phase: IntegrityPhase::Inclusion,
            done: total,
            total,
        });
        Ok(())
    }
}

#[derive(Default)]
struct Counts {
    listed: u64,
    listed_signed: u64,
    seen: u64,
    seen_consistent: u64,
    own: u64,
    own_proven: u64,
    trail: u64,
    trail_proven: u64,
}

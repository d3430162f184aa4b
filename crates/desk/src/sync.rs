//! The sync: check the gate's log still extends what this desk saw, push the outbox in sequence
//! order, verify every receipt, and only then learn what changed on the gate and renew leases.
//! Every step is idempotent, so the process may be killed at any moment and simply run again.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::Utc;
use countersign_api::{
    CheckpointResponse, EntriesResponse, LeaseIds, LeasesResponse, ProofResponse, PushRequest,
    PushResponse, PushResult,
};
use countersign_core::checkpoint::{Checkpoint, Receipt, verify_checkpoint};
use countersign_core::merkle::{
    Hash, hash_from_slice, leaf_hash, verify_consistency, verify_inclusion,
};
use countersign_core::{ConflictReason, DecisionOutcome};
use sqlx::Row as _;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::Desk;
use crate::client::GateClient;
use crate::error::{DeskError, ErrorCode};
use crate::store::{to_i64, to_u64, ts};
use crate::types::{SyncPhase, SyncProgress, SyncReport};

/// Decisions per push; the gate takes up to 1000.
const PUSH_BATCH: usize = 500;

/// Leases that end later than this are not sent for renewal. The gate extends a lease to its
/// policy's online lease from now (30 minutes by default) and never shortens one, so a lease far
/// from its end, such as an offline checkout of 72 hours, comes back unchanged: asking for
/// 10 000 of them on every sync cost 50 requests and 10 000 row updates for nothing. Any lease
/// still gets renewed many syncs (every 30 s) before it could lapse.
const RENEW_WITHIN: chrono::Duration = chrono::Duration::hours(2);

pub(crate) fn inconsistent(message: impl Into<String>) -> DeskError {
    DeskError::new(ErrorCode::LogInconsistent, message)
}

struct Pending {
    seq: i64,
    decision_id: String,
    jws: String,
}

/// How much of a sync to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Check the log, push, then learn the gate's lease states and renew.
    Full,
    /// Check the log and push the outbox; leases are left to the next full sync.
    Push,
}

impl Desk {
    /// Runs one sync. A sync asked for while another runs waits for it, then runs.
    pub async fn sync(
        &self,
        progress: &(dyn Fn(SyncProgress) + Send + Sync),
    ) -> Result<SyncReport, DeskError> {
        self.sync_scope(Scope::Full, progress).await
    }

    /// Sends the saved decisions and verifies their receipts, without learning lease states:
    /// what a decision needs at once. Reading and renewing every lease (10 000 on an offline
    /// checkout) after each key press kept the desk's database and both CPUs busy while the
    /// reviewer's next item was painted.
    pub async fn push_decisions(
        &self,
        progress: &(dyn Fn(SyncProgress) + Send + Sync),
    ) -> Result<SyncReport, DeskError> {
        self.sync_scope(Scope::Push, progress).await
    }

    pub(crate) async fn sync_scope(
        &self,
        scope: Scope,
        progress: &(dyn Fn(SyncProgress) + Send + Sync),
    ) -> Result<SyncReport, DeskError> {
        let _running = self.inner.sync_lock.lock().await;
        let span = tracing::info_span!("sync", account = %self.inner.account.account_id);
        let result = async {
            if let Some(why) = self.log_inconsistency().await? {
                return Err(inconsistent(format!(
                    "sync is stopped: the gate's log failed a consistency check earlier ({why}); report this to your administrator, decisions stay saved on this device"
                )));
            }
            let client = self.client().await?.clone();
            self.run_sync(&client, scope, progress).await
        }
        .instrument(span)
        .await;
        self.after_sync(&result).await?;
        result
    }

    async fn log_inconsistency(&self) -> Result<Option<String>, DeskError> {
        Ok(
            sqlx::query_scalar("SELECT log_inconsistent FROM sync_state")
                .fetch_one(self.pool())
                .await?,
        )
    }

    async fn after_sync(&self, result: &Result<SyncReport, DeskError>) -> Result<(), DeskError> {
        let now = ts(Utc::now());
        match result {
            Ok(report) => {
                tracing::info!(?report, "sync done");
                sqlx::query("UPDATE sync_state SET last_contact_at = ?, last_contact_ok = 1, last_sync_at = ?, last_error = NULL")
                    .bind(&now)
                    .bind(&now)
                    .execute(self.pool())
                    .await?;
            }
            Err(e) => {
                tracing::warn!(error = %e, "sync failed");
                sqlx::query("UPDATE sync_state SET last_error = ?")
                    .bind(e.to_string())
                    .execute(self.pool())
                    .await?;
                self.record_contact(&Err(e.clone())).await?;
                if e.code == ErrorCode::LogInconsistent {
                    sqlx::query(
                        "UPDATE sync_state SET log_inconsistent = COALESCE(log_inconsistent, ?)",
                    )
                    .bind(&e.message)
                    .execute(self.pool())
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn run_sync(
        &self,
        client: &GateClient,
        scope: Scope,
        progress: &(dyn Fn(SyncProgress) + Send + Sync),
    ) -> Result<SyncReport, DeskError> {
        let mut report = SyncReport::default();
        progress(SyncProgress {
            phase: SyncPhase::Verify,
            done: 0,
            total: 1,
        });
        let size = self
            .verify_checkpoint_with(client)
            .instrument(tracing::info_span!("verify"))
            .await?;
        report.checkpoint_size = Some(size);
        progress(SyncProgress {
            phase: SyncPhase::Verify,
            done: 1,
            total: 1,
        });

        self.push(client, progress, &mut report)
            .instrument(tracing::info_span!("push"))
            .await?;

        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
                .fetch_one(self.pool())
                .await?;
        if pending > 0 || scope == Scope::Push {
            // Server state may only be applied over acknowledged decisions.
            return Ok(report);
        }
        let active = self
            .pull(client, progress, &mut report)
            .instrument(tracing::info_span!("pull"))
            .await?;
        self.renew(client, progress, &mut report, active)
            .instrument(tracing::info_span!("renew"))
            .await?;
        if let Some(size) = self.latest_checkpoint().await?.map(|(s, _)| s) {
            report.checkpoint_size = Some(size);
        }
        Ok(report)
    }

    /// Fetches and checks the gate's latest checkpoint (used at enrollment too).
    pub(crate) async fn verify_latest_checkpoint(&self) -> Result<u64, DeskError> {
        let client = self.client().await?.clone();
        self.verify_checkpoint_with(&client).await
    }

    async fn verify_checkpoint_with(&self, client: &GateClient) -> Result<u64, DeskError> {
        let response: CheckpointResponse = client.get("/v1/log/checkpoint").await?;
        let checkpoint = self.open_checkpoint(&response.checkpoint)?;
        self.accept_checkpoint(client, &checkpoint, &response.checkpoint)
            .await?;
        Ok(checkpoint.size)
    }

    fn open_checkpoint(&self, note: &str) -> Result<Checkpoint, DeskError> {
        verify_checkpoint(note, &self.inner.verifier, &self.inner.account.log_origin).map_err(|e| {
            inconsistent(format!(
                "the gate served a checkpoint that is not validly signed by its log key: {e}"
            ))
        })
    }

    async fn latest_checkpoint(&self) -> Result<Option<(u64, Hash)>, DeskError> {
        let row = sqlx::query("SELECT size, root_hex FROM checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| -> Result<(u64, Hash), DeskError> {
            let root: String = r.try_get("root_hex")?;
            let bytes = hex::decode(&root).map_err(DeskError::storage)?;
            Ok((
                to_u64(r.try_get("size")?),
                hash_from_slice(&bytes).map_err(DeskError::storage)?,
            ))
        })
        .transpose()
    }

    /// Accepts a signed checkpoint only if it extends the latest one this desk verified, proven
    /// by the gate's consistency proof. A smaller tree, a different root at the same size or a
    /// failing proof means the gate rewrote or forked its history.
    pub(crate) async fn accept_checkpoint(
        &self,
        client: &GateClient,
        checkpoint: &Checkpoint,
        note: &str,
    ) -> Result<(), DeskError> {
        if let Some((size, root)) = self.latest_checkpoint().await? {
            if checkpoint.size < size {
                return Err(inconsistent(format!(
                    "the gate's log went back from {size} to {} entries: it rewrote its history",
                    checkpoint.size
                )));
            }
            if checkpoint.size == size {
                if checkpoint.root != root {
                    return Err(inconsistent(format!(
                        "the gate signed two different trees of {size} entries: its log is forked"
                    )));
                }
                return Ok(());
            }
            if size > 0 {
                let proof: ProofResponse = client
                    .get(&format!(
                        "/v1/log/proof/consistency?from={size}&to={}",
                        checkpoint.size
                    ))
                    .await
                    .map_err(|e| {
                        if e.code == ErrorCode::GateRefused {
                            inconsistent(format!(
                                "the gate cannot prove its log of {} entries extends the {size} this desk saw: {}",
                                checkpoint.size, e.message
                            ))
                        } else {
                            e
                        }
                    })?;
                let hashes = decode_hashes(&proof.proof)?;
                verify_consistency(size, checkpoint.size, &root, &checkpoint.root, &hashes)
                    .map_err(|e| {
                        inconsistent(format!(
                            "the gate's log of {} entries does not extend the {size} entries this desk saw ({e}): it rewrote or forked its history",
                            checkpoint.size
                        ))
                    })?;
            }
        }
        sqlx::query("INSERT OR IGNORE INTO checkpoints (size, root_hex, note, verified_at) VALUES (?, ?, ?, ?)")
            .bind(to_i64(checkpoint.size))
            .bind(hex::encode(checkpoint.root))
            .bind(note)
            .bind(ts(Utc::now()))
            .execute(self.pool())
            .await?;
        tracing::debug!(size = checkpoint.size, "checkpoint verified");
        Ok(())
    }

    async fn push(
        &self,
        client: &GateClient,
        progress: &(dyn Fn(SyncProgress) + Send + Sync),
        report: &mut SyncReport,
    ) -> Result<(), DeskError> {
        let rows = sqlx::query(
            "SELECT device_seq, decision_id, jws FROM outbox WHERE state = 'pending' ORDER BY device_seq",
        )
        .fetch_all(self.pool())
        .await?;
        let pending: Vec<Pending> = rows
            .iter()
            .map(|r| -> Result<Pending, DeskError> {
                Ok(Pending {
                    seq: r.try_get("device_seq")?,
                    decision_id: r.try_get("decision_id")?,
                    jws: r.try_get("jws")?,
                })
            })
            .collect::<Result<_, _>>()?;
        let total = pending.len() as u64;
        progress(SyncProgress {
            phase: SyncPhase::Push,
            done: 0,
            total,
        });
        let mut done = 0u64;
        for batch in pending.chunks(PUSH_BATCH) {
            let span = tracing::info_span!("push_batch", first = batch[0].seq, count = batch.len());
            self.push_batch(client, batch, report)
                .instrument(span)
                .await?;
            done += batch.len() as u64;
            progress(SyncProgress {
                phase: SyncPhase::Push,
                done,
                total,
            });
        }
        Ok(())
    }

    async fn push_batch(
        &self,
        client: &GateClient,
        batch: &[Pending],
        report: &mut SyncReport,
    ) -> Result<(), DeskError> {
        let request = PushRequest {
            decisions: batch.iter().map(|p| p.jws.clone()).collect(),
        };
        let response: PushResponse = client
            .post("/v1/decisions", &request)
            .instrument(tracing::info_span!("gate_push"))
            .await?;
        if response.results.len() != batch.len() {
            return Err(DeskError::refused(
                "bad_response",
                &format!(
                    "the gate answered {} results for {} decisions",
                    response.results.len(),
                    batch.len()
                ),
            ));
        }
        // Each receipt names the log entry of its decision; fetch those entries to check that
        // each holds exactly the decision sent, and that the proofs lead to signed checkpoints.
        let indexes: Vec<u64> = response
            .results
            .iter()
            .filter_map(|r| r.receipt.as_ref().map(|rc| rc.leaf_index))
            .collect();
        let entries = fetch_entries(client, &indexes)
            .instrument(tracing::info_span!("fetch_entries"))
            .await?;
        let verifying = tracing::info_span!("verify_receipts").entered();
        let mut checkpoints: HashMap<String, Checkpoint> = HashMap::new();
        let mut updates = Vec::with_capacity(batch.len());
        for (pending, result) in batch.iter().zip(&response.results) {
            updates.push(self.judge_result(pending, result, &entries, &mut checkpoints)?);
        }
        drop(verifying);
        // Every checkpoint the receipts lead to must extend what this desk saw.
        let mut by_size: Vec<(&String, &Checkpoint)> = checkpoints.iter().collect();
        by_size.sort_by_key(|(_, c)| c.size);
        for (note, checkpoint) in by_size {
            self.accept_checkpoint(client, checkpoint, note).await?;
        }
        self.store_results(&updates, report)
            .instrument(tracing::info_span!("store_results"))
            .await
    }

    async fn store_results(
        &self,
        updates: &[Update],
        report: &mut SyncReport,
    ) -> Result<(), DeskError> {
        let now = ts(Utc::now());
        let mut tx = self.pool().begin().await?;
        // Set statements per chunk: one statement per decision costs more than the SQL itself.
        for chunk in updates.chunks(500) {
            let mut q = sqlx::QueryBuilder::new(
                "UPDATE outbox SET state = v.column2, reason = v.column3, leaf_index = v.column4, acked_at = ",
            );
            q.push_bind(&now);
            q.push(" FROM (");
            q.push_values(chunk, |mut row, u| {
                row.push_bind(u.seq)
                    .push_bind(u.state)
                    .push_bind(u.reason.as_deref())
                    .push_bind(u.receipt.as_ref().map(|(r, _)| to_i64(r.leaf_index)));
            });
            q.push(") AS v WHERE outbox.device_seq = v.column1 AND outbox.state = 'pending'");
            q.build().execute(&mut *tx).await?;
            let with_receipts: Vec<(&Update, String)> = chunk
                .iter()
                .filter_map(|u| {
                    u.receipt
                        .as_ref()
                        .map(|(r, _)| serde_json::to_string(r).map(|text| (u, text)))
                })
                .collect::<Result<_, _>>()
                .map_err(DeskError::storage)?;
            if !with_receipts.is_empty() {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT OR REPLACE INTO receipts (device_seq, leaf_index, tree_size, receipt, entry, verified_at) ",
                );
                q.push_values(&with_receipts, |mut row, (u, text)| {
                    if let Some((receipt, entry)) = &u.receipt {
                        row.push_bind(u.seq)
                            .push_bind(to_i64(receipt.leaf_index))
                            .push_bind(to_i64(receipt.tree_size))
                            .push_bind(text.as_str())
                            .push_bind(entry.as_str())
                            .push_bind(&now);
                    }
                });
                q.build().execute(&mut *tx).await?;
            }
        }
        for u in updates {
            match u.state {
                "applied" => report.applied += 1,
                "conflict" => report.conflicts += 1,
                "rejected" => report.rejected += 1,
                _ => report.refused += 1,
            }
            report.pushed += 1;
        }
        tx.commit().await?;
        Ok(())
    }

    fn judge_result(
        &self,
        pending: &Pending,
        result: &PushResult,
        entries: &BTreeMap<u64, String>,
        checkpoints: &mut HashMap<String, Checkpoint>,
    ) -> Result<Update, DeskError> {
        if let Some(error) = &result.error {
            // Refused outright, nothing recorded on the gate; the ones behind it go on.
            tracing::warn!(
                seq = pending.seq,
                code = error.code,
                message = error.message,
                "decision refused"
            );
            return Ok(Update {
                seq: pending.seq,
                state: "refused",
                reason: Some(format!("{}: {}", error.code, error.message)),
                receipt: None,
            });
        }
        let (Some(outcome), Some(receipt)) = (&result.outcome, &result.receipt) else {
            return Err(DeskError::refused(
                "bad_response",
                "the gate acknowledged a decision without an outcome and a receipt",
            ));
        };
        if result.decision_id.map(|id| id.to_string()).as_deref()
            != Some(pending.decision_id.as_str())
            || result.device_seq != Some(to_u64(pending.seq))
        {
            return Err(DeskError::refused(
                "bad_response",
                "the gate's answer names another decision than the one sent",
            ));
        }
        let entry = entries.get(&receipt.leaf_index).ok_or_else(|| {
            inconsistent(format!(
                "the gate does not serve log entry {}",
                receipt.leaf_index
            ))
        })?;
        check_entry(entry, receipt.leaf_index, &pending.jws, outcome)?;
        let checkpoint = match checkpoints.get(&receipt.checkpoint) {
            Some(c) => c.clone(),
            None => {
                let c = self.open_checkpoint(&receipt.checkpoint)?;
                checkpoints.insert(receipt.checkpoint.clone(), c.clone());
                c
            }
        };
        if checkpoint.size != receipt.tree_size {
            return Err(inconsistent(
                "a receipt's tree size differs from its checkpoint's",
            ));
        }
        let proof = receipt
            .proof_hashes()
            .map_err(|e| inconsistent(format!("receipt: {e}")))?;
        verify_inclusion(
            &leaf_hash(entry.as_bytes()),
            receipt.leaf_index,
            receipt.tree_size,
            &proof,
            &checkpoint.root,
        )
        .map_err(|e| {
            inconsistent(format!(
                "the receipt of decision {} does not prove it is in the log: {e}",
                pending.seq
            ))
        })?;
        let (state, reason) = match outcome {
            DecisionOutcome::Applied => ("applied", None),
            DecisionOutcome::Conflict { reason } => ("conflict", Some(conflict_text(*reason))),
            DecisionOutcome::Rejected { code, message } => {
                ("rejected", Some(format!("{code}: {message}")))
            }
        };
        Ok(Update {
            seq: pending.seq,
            state,
            reason,
            receipt: Some((receipt.clone(), entry.clone())),
        })
    }

    /// Learns the gate's state of this device's leases; returns the ids still active and
    /// undecided here.
    async fn pull(
        &self,
        client: &GateClient,
        progress: &(dyn Fn(SyncProgress) + Send + Sync),
        report: &mut SyncReport,
    ) -> Result<Vec<Uuid>, DeskError> {
        let response: LeasesResponse = client.get("/v1/leases?all=true").await?;
        let total = response.leases.len() as u64;
        progress(SyncProgress {
            phase: SyncPhase::Pull,
            done: 0,
            total,
        });
        let local: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT lease_id, lease_state, lease_expires_at, lease_epoch FROM items",
        )
        .fetch_all(self.pool())
        .await?;
        let local: HashMap<String, (String, String, i64)> = local
            .into_iter()
            .map(|(id, state, expires, epoch)| (id, (state, expires, epoch)))
            .collect();
        let mut active = Vec::new();
        // Ended leases grouped by their new state, so each group is one statement per chunk.
        let mut ended: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut tx = self.pool().begin().await?;
        for state in &response.leases {
            let lease_id = state.lease.lease_id.to_string();
            let Some((local_state, local_expires, local_epoch)) = local.get(&lease_id) else {
                continue;
            };
            report.pulled += 1;
            if state.state == "active" {
                // Compared here rather than in SQL: a sync that changes nothing writes nothing,
                // so it never holds the write lock a decision is waiting for.
                let expires = ts(state.lease.expires_at);
                let epoch = i64::from(state.lease.epoch);
                if *local_expires != expires || *local_epoch != epoch {
                    sqlx::query(
                        "UPDATE items SET lease_expires_at = ?, lease_epoch = ? WHERE lease_id = ?",
                    )
                    .bind(&expires)
                    .bind(epoch)
                    .bind(&lease_id)
                    .execute(&mut *tx)
                    .await?;
                }
                active.push(state.lease.lease_id);
            } else if *local_state != state.state {
                match state.state.as_str() {
                    "withdrawn" | "reassigned" | "returned" => report.withdrawn += 1,
                    "superseded" => report.superseded += 1,
                    _ => {}
                }
                tracing::debug!(lease_id, state = state.state, "lease ended on the gate");
                ended
                    .entry(state.state.as_str())
                    .or_default()
                    .push(lease_id);
            }
        }
        for (state, ids) in &ended {
            for chunk in ids.chunks(500) {
                let mut q = sqlx::QueryBuilder::new("UPDATE items SET lease_state = ");
                q.push_bind(*state);
                q.push(" WHERE lease_id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        progress(SyncProgress {
            phase: SyncPhase::Pull,
            done: total,
            total,
        });
        // Only undecided leases need renewing.
        let decided: HashSet<String> = sqlx::query_scalar("SELECT lease_id FROM outbox")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .collect();
        active.retain(|id| !decided.contains(&id.to_string()));
        Ok(active)
    }

    async fn renew(
        &self,
        client: &GateClient,
        progress: &(dyn Fn(SyncProgress) + Send + Sync),
        report: &mut SyncReport,
        mut active: Vec<Uuid>,
    ) -> Result<(), DeskError> {
        let before: HashMap<String, String> = {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT lease_id, lease_expires_at FROM items WHERE lease_state = 'active'",
            )
            .fetch_all(self.pool())
            .await?;
            rows.into_iter().collect()
        };
        let horizon = ts(Utc::now() + RENEW_WITHIN);
        active.retain(|id| {
            before
                .get(&id.to_string())
                .is_none_or(|expires| *expires < horizon)
        });
        let total = active.len() as u64;
        progress(SyncProgress {
            phase: SyncPhase::Renew,
            done: 0,
            total,
        });
        let mut done = 0;
        for chunk in active.chunks(200) {
            let response: LeasesResponse = client
                .post(
                    "/v1/leases/renew",
                    &LeaseIds {
                        lease_ids: chunk.to_vec(),
                    },
                )
                .await?;
            let mut tx = self.pool().begin().await?;
            for state in &response.leases {
                let lease_id = state.lease.lease_id.to_string();
                let expires = ts(state.lease.expires_at);
                if before.get(&lease_id).is_some_and(|b| *b < expires) {
                    report.renewed += 1;
                }
                let lease_state = if state.state == "active" {
                    "active"
                } else {
                    state.state.as_str()
                };
                sqlx::query(
                    "UPDATE items SET lease_expires_at = ?, lease_state = ? WHERE lease_id = ?",
                )
                .bind(&expires)
                .bind(lease_state)
                .bind(&lease_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            done += chunk.len() as u64;
            progress(SyncProgress {
                phase: SyncPhase::Renew,
                done,
                total,
            });
        }
        Ok(())
    }
}

struct Update {
    seq: i64,
    state: &'static str,
    reason: Option<String>,
    receipt: Option<(Receipt, String)>,
}

fn conflict_text(reason: ConflictReason) -> String {
    match reason {
        ConflictReason::Withdrawn => "withdrawn",
        ConflictReason::Reassigned => "reassigned",
        ConflictReason::Superseded => "superseded",
        ConflictReason::Expired => "expired",
        ConflictReason::AlreadyResolved => "already_resolved",
    }
    .to_owned()
}

pub(crate) fn decode_hashes(proof: &[String]) -> Result<Vec<Hash>, DeskError> {
    proof
        .iter()
        .map(|h| {
            B64.decode(h)
                .ok()
                .and_then(|b| hash_from_slice(&b).ok())
                .ok_or_else(|| inconsistent("the gate served a malformed consistency proof"))
        })
        .collect()
}

/// The log entry must be the one this decision made: same index, same signed bytes, same
/// outcome as the gate reported.
fn check_entry(
    entry: &str,
    index: u64,
    jws: &str,
    outcome: &DecisionOutcome,
) -> Result<(), DeskError> {
    let value: serde_json::Value = serde_json::from_str(entry)
        .map_err(|e| inconsistent(format!("log entry {index} is not JSON: {e}")))?;
    let data = &value["data"];
    let same_outcome = serde_json::to_value(outcome).ok().as_ref() == Some(&data["result"]);
    if value["index"].as_u64() != Some(index) || data["jws"].as_str() != Some(jws) || !same_outcome
    {
        return Err(inconsistent(format!(
            "log entry {index} does not hold the decision the gate acknowledged there"
        )));
    }
    Ok(())
}

/// Fetches the log entries at `indexes` (in pages of contiguous ranges).
async fn fetch_entries(
    client: &GateClient,
    indexes: &[u64],
) -> Result<BTreeMap<u64, String>, DeskError> {
    let mut wanted: Vec<u64> = indexes.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = BTreeMap::new();
    let Some(&last) = wanted.last() else {
        return Ok(found);
    };
    let mut i = 0;
    while i < wanted.len() {
        let start = wanted[i];
        // Only as far as the last entry wanted: on a busy gate the entries after it are other
        // desks' work, which this desk would download and throw away.
        let limit = (last - start + 1).min(1000);
        let response: EntriesResponse = client
            .get(&format!("/v1/log/entries?start={start}&limit={limit}"))
            .await?;
        if response.entries.is_empty() {
            return Err(inconsistent(format!(
                "the gate does not serve log entry {start}"
            )));
        }
        for e in response.entries {
            found.insert(e.index, e.entry.get().to_owned());
        }
        while i < wanted.len() && found.contains_key(&wanted[i]) {
            i += 1;
        }
        if i < wanted.len() && wanted[i] == start {
            return Err(inconsistent(format!(
                "the gate does not serve log entry {start}"
            )));
        }
    }
    Ok(found)
}

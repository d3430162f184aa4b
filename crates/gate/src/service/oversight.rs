//! What supervisors read: an item's decision trail with proofs, the decision search, reviewer
//! and model statistics (definitions in `supervision.rs`), open leases, and the log-integrity
//! reads a desk uses to check the whole log. Every statistic comes from the folded tables, read
//! through indexes, so none scans the decisions.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use countersign_core::jws::{self, VerifyingKey};
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::Gate;
use super::identity::{Principal, user_by_name};
use super::queue::parse_uuid;
use super::supervision::{
    BUCKETS, DAY_MS, DEFAULT_WINDOW, HOUR_MS, REVIEWER_DAY_COLUMNS, ReviewerDay, ReviewerDayFlat,
    TIME_BUCKETS_MS, default_breaker, split_model,
};
use crate::api::Queue;
use crate::api::supervision::{
    Agreement, BreakerConfig, CheckpointsResponse, CorrectedFieldsResponse, DecisionPage,
    DecisionQuery, DecisionSummary, FieldChanges, FlagRecord, InclusionBatchRequest,
    InclusionBatchResponse, ItemTrail, LeaseQuery, ModelFieldChanges, ModelStatus, ModelsResponse,
    OpenLease, OpenLeasesResponse, OverridePoint, OverrideQuery, OverrideRateResponse,
    OverrideSeries, ProofCheckpoint, ProvenEntry, QaOrigin, ReviewerQuery, ReviewerStats,
    ReviewerStatsResponse, RubberStamp, SignerKey, StoredCheckpoint, TimeHistogram, TrailDecision,
    TrailItem, TrailLease, TrailRelease, TrailVersion,
};
use crate::db::{DbError, Tx, ms_to_time, now_ms, push_in_list};
use crate::error::GateError;
use crate::log::{SignedCheckpoint, to_i64, to_u64};
use crate::on_tx;

/// Most indices in one batch inclusion request.
pub const MAX_BATCH_PROOFS: usize = 1000;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;
const DEFAULT_FAST_SECONDS: u64 = 5;
/// 1970-01-05, the first Monday after the epoch: weeks start on Mondays.
const FIRST_MONDAY_MS: i64 = 4 * DAY_MS;
const WEEK_MS: i64 = 7 * DAY_MS;
/// Longest range of an hourly series (31 days: 744 points per model version).
const MAX_HOURLY_MS: i64 = 31 * DAY_MS;

/// An RFC 3339 time as milliseconds.
pub(crate) fn parse_time(field: &str, text: &str) -> Result<i64, GateError> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            GateError::bad_request(
                "invalid_time",
                format!("`{field}` must be an RFC 3339 time such as 2026-11-23T00:00:00Z: {e}"),
            )
        })
}

/// `[from, to)` as asked, with defaults, refused when empty.
fn range(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), GateError> {
    let from = from
        .map(|t| parse_time("from", t))
        .transpose()?
        .unwrap_or(0);
    let to = to
        .map(|t| parse_time("to", t))
        .transpose()?
        .unwrap_or_else(|| now_ms().saturating_add(1));
    if from >= to {
        return Err(GateError::bad_request(
            "invalid_range",
            "`from` must be before `to`",
        ));
    }
    Ok((from, to))
}

fn floor_to(ms: i64, unit: i64, origin: i64) -> i64 {
    (ms - origin).div_euclid(unit) * unit + origin
}

fn ceil_to(ms: i64, unit: i64, origin: i64) -> i64 {
    let floor = floor_to(ms, unit, origin);
    if floor == ms { ms } else { floor + unit }
}

fn one_of<'a>(
    field: &str,
    value: Option<&'a str>,
    allowed: &[&str],
) -> Result<Option<&'a str>, GateError> {
    match value {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(v) => Err(GateError::bad_request(
            "invalid_filter",
            format!("`{field}` must be one of {}, not `{v}`", allowed.join(", ")),
        )),
    }
}

#[allow(clippy::cast_precision_loss)]
fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn raw(text: String) -> Result<Box<RawValue>, GateError> {
    RawValue::from_string(text).map_err(|e| GateError::internal(format!("stored JSON: {e}")))
}

fn queue_of(text: &str) -> Queue {
    if text == "qa" {
        Queue::Qa
    } else {
        Queue::Review
    }
}

#[derive(sqlx::FromRow)]
struct FactRow {
    log_index: i64,
    decision_id: String,
    user_id: String,
    device_id: String,
    item_id: String,
    item_version: i64,
    queue: String,
    kind: String,
    outcome: String,
    outcome_code: Option<String>,
    model_name: String,
    model_version: String,
    lane: String,
    rule: String,
    policy_version: i64,
    logged_at: i64,
    decided_at: i64,
    time_on_item_ms: Option<i64>,
    due_at: i64,
    sla_breached: i64,
    overrode: i64,
    changed_fields: Option<String>,
    reviewer: Option<String>,
    flags: i64,
}

#[derive(sqlx::FromRow)]
struct QaRow {
    item_id: String,
    origin: String,
    output_id: String,
    release_seq: Option<i64>,
    decision_id: Option<String>,
    source_item_id: Option<String>,
    source_version: Option<i64>,
    requested_by: String,
    reason: String,
    log_index: i64,
    status: String,
}

const QA_COLUMNS: &str = "q.item_id, q.origin, q.output_id, q.release_seq, q.decision_id, q.source_item_id, q.source_version, q.requested_by, q.reason, q.log_index, i.status";

impl QaRow {
    fn into_origin(self) -> Result<QaOrigin, GateError> {
        Ok(QaOrigin {
            item_id: parse_uuid(&self.item_id)?,
            origin: self.origin,
            output_id: self.output_id,
            release_seq: self.release_seq.map(to_u64),
            decision_id: self.decision_id.as_deref().map(parse_uuid).transpose()?,
            source_item_id: self.source_item_id.as_deref().map(parse_uuid).transpose()?,
            source_item_version: self.source_version.and_then(|v| u32::try_from(v).ok()),
            requested_by: self.requested_by,
            reason: self.reason,
            status: self.status,
            log_index: to_u64(self.log_index),
        })
    }
}

impl Gate {
    /// Folds what is left, so a supervisor sees every decision logged before the query.
    async fn fresh(&self) -> Result<u64, GateError> {
        self.fold_supervision().await
    }

    async fn user_id_of(&self, tx: &mut Tx, name: &str) -> Result<String, GateError> {
        user_by_name(tx, name)
            .await?
            .map(|u| u.user_id)
            .ok_or_else(|| GateError::not_found("unknown_user", format!("no user `{name}`")))
    }

    /// The proofs of `indices` under `checkpoint`, with each entry's bytes.
    async fn proven_entries(
        &self,
        tx: &mut Tx,
        indices: &[u64],
        size: u64,
    ) -> Result<Vec<ProvenEntry>, GateError> {
        let mut bytes: HashMap<u64, (String, Vec<u8>)> = HashMap::new();
        let wanted: Vec<i64> = indices
            .iter()
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .map(to_i64)
            .collect();
        for chunk in wanted.chunks(400) {
            let rows: Vec<(i64, String, Vec<u8>)> = on_tx!(tx, conn => {
                let mut q = QueryBuilder::new("SELECT idx, kind, entry FROM log_entries WHERE idx IN");
                push_in_list(&mut q, chunk.iter().copied());
                q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
            });
            bytes.extend(rows.into_iter().map(|(i, k, e)| (to_u64(i), (k, e))));
        }
        let mut out = Vec::with_capacity(indices.len());
        for index in indices {
            let (kind, entry) = bytes
                .get(index)
                .cloned()
                .ok_or_else(|| GateError::internal(format!("log entry {index} is missing")))?;
            let proof = self.log.inclusion_proof(tx, *index, size).await?;
            let text = String::from_utf8(entry)
                .map_err(|_| GateError::internal("stored entry is not UTF-8"))?;
            out.push(ProvenEntry {
                index: *index,
                kind,
                entry: raw(text)?,
                proof: proof.iter().map(|h| B64.encode(h)).collect(),
            });
        }
        Ok(out)
    }

    fn proof_checkpoint(&self, signed: &SignedCheckpoint) -> ProofCheckpoint {
        ProofCheckpoint {
            origin: signed.checkpoint.origin.clone(),
            size: signed.checkpoint.size,
            root: B64.encode(signed.checkpoint.root),
            checkpoint: signed.note.clone(),
            log_public_key: self.log_public_key(),
        }
    }

    /// Everything about one item, each part tied to its log entries, all proven against one
    /// signed checkpoint.
    pub async fn item_trail(
        &self,
        principal: &Principal,
        item_id: Uuid,
    ) -> Result<ItemTrail, GateError> {
        principal.supervisor()?;
        let signed = self.log.checkpoint(&self.db).await?;
        let size = signed.checkpoint.size;
        let mut tx = self.db.begin_read().await?;
        let id = item_id.to_string();
        type ItemDbRow = (
            String,
            String,
            String,
            i64,
            i64,
            i64,
            f64,
            i64,
            Option<String>,
            String,
        );
        let item: Option<ItemDbRow> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT subject, status, lane, current_version, escalation_level, approvals_required, authority_required, due_at, outcome, queue FROM items WHERE item_id = $1")
                .bind(&id)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let Some((
            mut subject,
            status,
            lane,
            current_version,
            escalation,
            approvals,
            authority,
            due_at,
            outcome,
            queue,
        )) = item
        else {
            return Err(GateError::not_found(
                "unknown_item",
                format!("no item {item_id}"),
            ));
        };
        // Entries about the item, as far as the checkpoint covers them.
        let mut indices: Vec<(i64, String)> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT idx, kind FROM log_entries WHERE item_id = $1 AND idx < $2 ORDER BY idx")
                .bind(&id)
                .bind(to_i64(size))
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });

        type VersionDbRow = (
            i64,
            String,
            String,
            String,
            String,
            i64,
            String,
            String,
            String,
            String,
        );
        let version_rows: Vec<VersionDbRow> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT v.version, v.output_id, v.routing, v.served, v.served_sha256, v.created_at, o.body, o.body_sha256, o.model_name, o.model_version FROM item_versions v JOIN outputs o ON o.output_id = v.output_id WHERE v.item_id = $1 ORDER BY v.version")
                .bind(&id)
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        let qa: Option<QaOrigin> = {
            let sql = format!(
                "SELECT {QA_COLUMNS} FROM qa_items q JOIN items i ON i.item_id = q.item_id WHERE q.item_id = $1"
            );
            let row: Option<QaRow> = on_tx!(&mut tx, conn => {
                sqlx::query_as(&sql).bind(&id).fetch_optional(conn).await.map_err(DbError::from)?
            });
            row.map(QaRow::into_origin).transpose()?
        };
        // The routed (or qa_queued) entry of each version, and the output_received entry the
        // gate logs just before a routed one.
        let routed: Vec<(i64, Option<i64>)> = indices
            .iter()
            .filter(|(_, kind)| kind == "routed")
            .map(|(i, _)| (*i, Some(*i - 1)))
            .collect();
        let mut extra: Vec<i64> = Vec::new();
        let mut versions = Vec::with_capacity(version_rows.len());
        for (
            n,
            (
                version,
                output_id,
                routing,
                served,
                served_sha256,
                created_at,
                body,
                body_sha256,
                model_name,
                model_version,
            ),
        ) in version_rows.into_iter().enumerate()
        {
            let (routed_index, received_index) = match &qa {
                Some(origin) => (origin.log_index, None),
                None => {
                    let (r, received) = routed.get(n).copied().ok_or_else(|| {
                        GateError::internal(format!(
                            "item {item_id} version {version} has no routed entry"
                        ))
                    })?;
                    (to_u64(r), received.map(to_u64))
                }
            };
            if let Some(received) = received_index {
                extra.push(to_i64(received));
            }
            versions.push(TrailVersion {
                version: u32::try_from(version).unwrap_or_default(),
                output_id,
                output: raw(body)?,
                body_sha256,
                model: format!("{model_name}@{model_version}"),
                routing: serde_json::from_str(&routing)
                    .map_err(|e| GateError::internal(format!("stored routing: {e}")))?,
                served: raw(served)?,
                evidence_sha256: served_sha256,
                received_at: ms_to_time(created_at),
                received_index,
                routed_index,
            });
        }
        if let Some(origin) = &qa {
            subject = versions
                .first()
                .and_then(|v| serde_json::from_str::<Value>(v.served.get()).ok())
                .and_then(|s| s.get("subject").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            // A sample names the release it samples: its output_received, routed and released
            // entries (logged without an item) belong to the trail too.
            if let Some(seq) = origin.release_seq {
                let seq = to_i64(seq);
                extra.extend([seq - 2, seq - 1, seq]);
            }
        }

        type LeaseDbRow = (
            String,
            i64,
            i64,
            String,
            String,
            i64,
            i64,
            i64,
            String,
            Option<String>,
        );
        let lease_rows: Vec<LeaseDbRow> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT l.lease_id, l.item_version, l.epoch, l.user_id, l.device_id, l.leased_at, l.expires_at, l.offline, l.state, u.name FROM leases l LEFT JOIN users u ON u.user_id = l.user_id WHERE l.item_id = $1 ORDER BY l.leased_at")
                .bind(&id)
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        type DecisionDbRow = (
            String,
            i64,
            String,
            String,
            i64,
            i64,
            String,
            String,
            Option<String>,
            Vec<u8>,
            String,
            i64,
            Option<String>,
        );
        let decision_rows: Vec<DecisionDbRow> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT d.decision_id, d.log_index, d.user_id, d.device_id, d.device_seq, d.item_version, d.kind, d.outcome, d.outcome_code, e.entry, d.key_id, d.received_at, u.name FROM decisions d JOIN log_entries e ON e.idx = d.log_index LEFT JOIN users u ON u.user_id = d.user_id WHERE d.item_id = $1 AND d.log_index < $2 ORDER BY d.log_index")
                .bind(&id)
                .bind(to_i64(size))
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        let decision_ids: Vec<String> = decision_rows.iter().map(|d| d.0.clone()).collect();
        let key_ids: Vec<String> = decision_rows
            .iter()
            .map(|d| d.10.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let keys = self.signer_keys(&mut tx, &key_ids).await?;
        let flags = self.flags_of(&mut tx, &decision_ids).await?;

        // Which entries are about which lease: their data names it.
        let entries_so_far = self
            .proven_entries(
                &mut tx,
                &indices.iter().map(|(i, _)| to_u64(*i)).collect::<Vec<_>>(),
                size,
            )
            .await?;
        let mut lease_entries: HashMap<String, Vec<u64>> = HashMap::new();
        for e in &entries_so_far {
            if let Ok(value) = serde_json::from_str::<Value>(e.entry.get()) {
                let data = &value["data"];
                for field in ["lease_id", "from_lease_id", "to_lease_id"] {
                    if let Some(lease) = data.get(field).and_then(Value::as_str) {
                        lease_entries
                            .entry(lease.to_owned())
                            .or_default()
                            .push(e.index);
                    }
                }
                if let Some(list) = data.get("leases_withdrawn").and_then(Value::as_array) {
                    for lease in list.iter().filter_map(Value::as_str) {
                        lease_entries
                            .entry(lease.to_owned())
                            .or_default()
                            .push(e.index);
                    }
                }
            }
        }
        let leases = lease_rows
            .into_iter()
            .map(
                |(
                    lease_id,
                    version,
                    epoch,
                    user_id,
                    device_id,
                    leased_at,
                    expires_at,
                    offline,
                    state,
                    name,
                )| {
                    Ok(TrailLease {
                        lease_id: parse_uuid(&lease_id)?,
                        item_version: u32::try_from(version).unwrap_or_default(),
                        epoch: u32::try_from(epoch).unwrap_or_default(),
                        reviewer: name.unwrap_or_default(),
                        user_id,
                        device_id,
                        leased_at: ms_to_time(leased_at),
                        expires_at: ms_to_time(expires_at),
                        offline: offline != 0,
                        state,
                        entry_indices: lease_entries.remove(&lease_id).unwrap_or_default(),
                    })
                },
            )
            .collect::<Result<Vec<_>, GateError>>()?;
        let mut decisions = Vec::with_capacity(decision_rows.len());
        for (
            decision_id,
            log_index,
            user_id,
            device_id,
            device_seq,
            version,
            kind,
            outcome,
            code,
            entry,
            key_id,
            received_at,
            name,
        ) in decision_rows
        {
            let jws = super::supervision::logged_jws(&entry)?;
            let key = keys.get(&key_id).cloned().ok_or_else(|| {
                GateError::internal(format!("decision {decision_id} names unknown key {key_id}"))
            })?;
            decisions.push(TrailDecision {
                flags: flags.get(&decision_id).cloned().unwrap_or_default(),
                decision_id: parse_uuid(&decision_id)?,
                log_index: to_u64(log_index),
                reviewer: name.unwrap_or_default(),
                user_id,
                device_id,
                device_seq: to_u64(device_seq),
                item_version: u32::try_from(version).unwrap_or_default(),
                kind,
                outcome,
                outcome_code: code,
                jws,
                key,
                logged_at: ms_to_time(received_at),
            });
        }
        let release: Option<(i64, Vec<u8>, i64)> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT r.release_seq, e.entry, r.log_index FROM releases r JOIN log_entries e ON e.idx = r.log_index WHERE r.item_id = $1 AND r.log_index < $2")
                .bind(&id)
                .bind(to_i64(size))
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let release = release
            .map(|(seq, entry, index)| {
                Ok::<_, GateError>(TrailRelease {
                    release_seq: to_u64(seq),
                    release: super::releases::entry_data(&entry)?,
                    log_index: to_u64(index),
                })
            })
            .transpose()?;
        let sql = format!(
            "SELECT {QA_COLUMNS} FROM qa_items q JOIN items i ON i.item_id = q.item_id WHERE q.source_item_id = $1 OR q.release_seq = $2 ORDER BY q.log_index"
        );
        let release_seq = release.as_ref().map_or(-1, |r| to_i64(r.release_seq));
        let qa_rows: Vec<QaRow> = on_tx!(&mut tx, conn => {
            sqlx::query_as(&sql).bind(&id).bind(release_seq).fetch_all(conn).await.map_err(DbError::from)?
        });
        let qa_items = qa_rows
            .into_iter()
            .map(QaRow::into_origin)
            .collect::<Result<Vec<_>, _>>()?;

        let mut entries = entries_so_far;
        extra.retain(|i| *i >= 0 && to_u64(*i) < size);
        extra.sort_unstable();
        extra.dedup();
        if !extra.is_empty() {
            let more = self
                .proven_entries(
                    &mut tx,
                    &extra.iter().map(|i| to_u64(*i)).collect::<Vec<_>>(),
                    size,
                )
                .await?;
            entries.extend(more);
            entries.sort_by_key(|e| e.index);
            entries.dedup_by_key(|e| e.index);
        }
        indices.clear();
        let escalation_indices = entries
            .iter()
            .filter(|e| e.kind == "escalated")
            .map(|e| e.index)
            .collect();
        Ok(ItemTrail {
            item: TrailItem {
                item_id,
                subject,
                queue: queue_of(&queue),
                status,
                lane,
                current_version: u32::try_from(current_version).unwrap_or_default(),
                escalation_level: u32::try_from(escalation).unwrap_or_default(),
                approvals_required: u32::try_from(approvals).unwrap_or_default(),
                authority_required: authority,
                due_at: ms_to_time(due_at),
                outcome: outcome
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| GateError::internal(format!("stored outcome: {e}")))?,
            },
            qa,
            versions,
            leases,
            decisions,
            escalation_indices,
            release,
            qa_items,
            entries,
            checkpoint: self.proof_checkpoint(&signed),
        })
    }

    async fn signer_keys(
        &self,
        tx: &mut Tx,
        key_ids: &[String],
    ) -> Result<HashMap<String, SignerKey>, GateError> {
        let mut keys = HashMap::new();
        for chunk in key_ids.chunks(400) {
            type KeyRow = (String, Vec<u8>, String, i64, Option<i64>);
            let rows: Vec<KeyRow> = on_tx!(tx, conn => {
                let mut q = QueryBuilder::new("SELECT key_id, public_key, status, enrolled_at_index, revoked_at_index FROM device_keys WHERE key_id IN");
                push_in_list(&mut q, chunk.iter().map(String::as_str));
                q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
            });
            for (key_id, public_key, status, enrolled, revoked) in rows {
                let bytes: [u8; 32] = public_key
                    .as_slice()
                    .try_into()
                    .map_err(|_| GateError::internal("stored public key is not 32 bytes"))?;
                let key = VerifyingKey::from_bytes(&bytes)
                    .map_err(|e| GateError::internal(format!("stored public key: {e}")))?;
                keys.insert(
                    key_id.clone(),
                    SignerKey {
                        key_id,
                        jwk: jws::public_jwk(&key),
                        status,
                        enrolled_at_index: to_u64(enrolled),
                        revoked_at_index: revoked.map(to_u64),
                    },
                );
            }
        }
        Ok(keys)
    }

    async fn flags_of(
        &self,
        tx: &mut Tx,
        decision_ids: &[String],
    ) -> Result<HashMap<String, Vec<FlagRecord>>, GateError> {
        let mut flags: HashMap<String, Vec<FlagRecord>> = HashMap::new();
        for chunk in decision_ids.chunks(400) {
            let rows: Vec<(String, String, String, String, i64, i64)> = on_tx!(tx, conn => {
                let mut q = QueryBuilder::new("SELECT flag_id, decision_id, flagged_by, reason, log_index, created_at FROM decision_flags WHERE decision_id IN");
                push_in_list(&mut q, chunk.iter().map(String::as_str));
                q.push(" ORDER BY log_index");
                q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
            });
            for (flag_id, decision_id, flagged_by, reason, log_index, created_at) in rows {
                flags
                    .entry(decision_id.clone())
                    .or_default()
                    .push(FlagRecord {
                        flag_id: parse_uuid(&flag_id)?,
                        decision_id: parse_uuid(&decision_id)?,
                        flagged_by,
                        reason,
                        log_index: to_u64(log_index),
                        flagged_at: ms_to_time(created_at),
                    });
            }
        }
        Ok(flags)
    }

    /// Decisions matching every given filter, newest first, a page at a time.
    pub async fn search_decisions(
        &self,
        principal: &Principal,
        query: &DecisionQuery,
    ) -> Result<DecisionPage, GateError> {
        principal.supervisor()?;
        let limit = query.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(GateError::bad_request(
                "invalid_limit",
                format!("`limit` must be from 1 to {MAX_PAGE}"),
            ));
        }
        let cursor = query
            .cursor
            .as_deref()
            .map(|c| {
                c.parse::<u64>().map_err(|_| {
                    GateError::bad_request(
                        "invalid_cursor",
                        "`cursor` must be a `next_cursor` the gate returned",
                    )
                })
            })
            .transpose()?;
        let lane = one_of("lane", query.lane.as_deref(), &["review", "human_only"])?;
        let kind = one_of(
            "kind",
            query.kind.as_deref(),
            &["approve", "correct", "escalate"],
        )?;
        let outcome = one_of(
            "outcome",
            query.outcome.as_deref(),
            &["applied", "conflict", "rejected"],
        )?;
        let queue = one_of("queue", query.queue.as_deref(), &["review", "qa"])?;
        let model = query.model.as_deref().map(split_model).transpose()?;
        let from = query
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?;
        let to = query
            .to
            .as_deref()
            .map(|t| parse_time("to", t))
            .transpose()?;
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(GateError::bad_request(
                "invalid_range",
                "`from` must be before `to`",
            ));
        }
        let as_of = self.fresh().await?;
        let mut tx = self.db.begin_read().await?;
        let user = match &query.reviewer {
            Some(name) => Some(self.user_id_of(&mut tx, name).await?),
            None => None,
        };
        // A time range becomes a range of log indices, so any index serves it.
        let (first, last): (Option<i64>, Option<i64>) = if from.is_some() || to.is_some() {
            on_tx!(&mut tx, conn => {
                sqlx::query_as("SELECT (SELECT log_index FROM decision_facts WHERE logged_at >= $1 ORDER BY logged_at LIMIT 1), (SELECT log_index FROM decision_facts WHERE logged_at < $2 ORDER BY logged_at DESC LIMIT 1)")
                    .bind(from.unwrap_or(i64::MIN))
                    .bind(to.unwrap_or(i64::MAX))
                    .fetch_one(conn)
                    .await
                    .map_err(DbError::from)?
            })
        } else {
            (None, None)
        };
        let lower = from.map(|_| first.unwrap_or(i64::MAX));
        let upper = to.map(|_| last.map_or(-1, |l| l + 1));
        let fetch = i64::from(limit) + 1;
        let rows: Vec<FactRow> = on_tx!(&mut tx, conn => {
            let mut q = QueryBuilder::new("SELECT f.log_index, f.decision_id, f.user_id, f.device_id, f.item_id, f.item_version, f.queue, f.kind, f.outcome, f.outcome_code, f.model_name, f.model_version, f.lane, f.rule, f.policy_version, f.logged_at, f.decided_at, f.time_on_item_ms, f.due_at, f.sla_breached, f.overrode, f.changed_fields, u.name AS reviewer, (SELECT COUNT(*) FROM decision_flags g WHERE g.decision_id = f.decision_id) AS flags FROM decision_facts f LEFT JOIN users u ON u.user_id = f.user_id WHERE 1 = 1");
            if let Some(user) = &user {
                q.push(" AND f.user_id = ").push_bind(user.clone());
            }
            if let Some((name, version)) = model {
                q.push(" AND f.model_name = ").push_bind(name.to_owned());
                q.push(" AND f.model_version = ").push_bind(version.to_owned());
            }
            if let Some(lane) = lane {
                q.push(" AND f.lane = ").push_bind(lane.to_owned());
            }
            if let Some(kind) = kind {
                q.push(" AND f.kind = ").push_bind(kind.to_owned());
            }
            if let Some(outcome) = outcome {
                q.push(" AND f.outcome = ").push_bind(outcome.to_owned());
            }
            match query.conflict {
                Some(true) => { q.push(" AND f.outcome = 'conflict'"); }
                Some(false) => { q.push(" AND f.outcome <> 'conflict'"); }
                None => {}
            }
            if let Some(queue) = queue {
                q.push(" AND f.queue = ").push_bind(queue.to_owned());
            }
            if query.flagged == Some(true) {
                q.push(" AND EXISTS (SELECT 1 FROM decision_flags g WHERE g.decision_id = f.decision_id)");
            } else if query.flagged == Some(false) {
                q.push(" AND NOT EXISTS (SELECT 1 FROM decision_flags g WHERE g.decision_id = f.decision_id)");
            }
            if let Some(lower) = lower {
                q.push(" AND f.log_index >= ").push_bind(lower);
            }
            if let Some(upper) = upper {
                q.push(" AND f.log_index < ").push_bind(upper);
            }
            if let Some(from) = from {
                q.push(" AND f.logged_at >= ").push_bind(from);
            }
            if let Some(to) = to {
                q.push(" AND f.logged_at < ").push_bind(to);
            }
            if let Some(cursor) = cursor {
                q.push(" AND f.log_index < ").push_bind(to_i64(cursor));
            }
            q.push(" ORDER BY f.log_index DESC LIMIT ").push_bind(fetch);
            q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
        });
        let more = rows.len() > limit as usize;
        let mut decisions = Vec::with_capacity(rows.len().min(limit as usize));
        for row in rows.into_iter().take(limit as usize) {
            decisions.push(summary(row)?);
        }
        let next_cursor = more
            .then(|| {
                decisions
                    .last()
                    .map(|d: &DecisionSummary| d.log_index.to_string())
            })
            .flatten();
        Ok(DecisionPage {
            decisions,
            next_cursor,
            as_of_log_size: as_of,
        })
    }

    /// Per reviewer over whole UTC days.
    pub async fn reviewer_stats(
        &self,
        principal: &Principal,
        query: &ReviewerQuery,
    ) -> Result<ReviewerStatsResponse, GateError> {
        principal.supervisor()?;
        let fast_seconds = query.fast_seconds.unwrap_or(DEFAULT_FAST_SECONDS);
        let fast_bucket = TIME_BUCKETS_MS
            .iter()
            .position(|upper| *upper == fast_seconds.saturating_mul(1000))
            .ok_or_else(|| {
                let allowed: Vec<String> = TIME_BUCKETS_MS
                    .iter()
                    .map(|ms| (ms / 1000).to_string())
                    .collect();
                GateError::bad_request(
                    "invalid_threshold",
                    format!("`fast_seconds` must be one of {}", allowed.join(", ")),
                )
            })?;
        let (from, to) = range(query.from.as_deref(), query.to.as_deref())?;
        let (from, to) = (floor_to(from, DAY_MS, 0), ceil_to(to, DAY_MS, 0));
        let as_of = self.fresh().await?;
        let mut tx = self.db.begin_read().await?;
        let only = match &query.reviewer {
            Some(name) => Some(self.user_id_of(&mut tx, name).await?),
            None => None,
        };
        let users: Vec<(String, String, String)> = on_tx!(&mut tx, conn => {
            let mut q = QueryBuilder::new("SELECT user_id, name, role FROM users WHERE ");
            match &only {
                Some(user) => { q.push("user_id = ").push_bind(user.clone()); }
                None => { q.push("role IN ('reviewer', 'senior')"); }
            }
            q.push(" ORDER BY name");
            q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
        });
        let rows: Vec<ReviewerDayFlat> = on_tx!(&mut tx, conn => {
            let mut q = QueryBuilder::new("SELECT user_id, day, ");
            q.push(REVIEWER_DAY_COLUMNS).push(" FROM reviewer_days WHERE day >= ").push_bind(from)
                .push(" AND day < ").push_bind(to);
            if let Some(user) = &only {
                q.push(" AND user_id = ").push_bind(user.clone());
            }
            q.push(" ORDER BY user_id, day");
            q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
        });
        let mut totals: HashMap<String, ReviewerDay> = HashMap::new();
        for row in rows {
            let (user, _, day) = row.split();
            totals.entry(user).or_default().merge(&day);
        }
        let reviewers = users
            .into_iter()
            .map(|(user_id, name, role)| {
                let t = totals.remove(&user_id).unwrap_or_default();
                reviewer_summary(user_id, name, role, &t, fast_seconds, fast_bucket)
            })
            .collect();
        Ok(ReviewerStatsResponse {
            from: ms_to_time(from),
            to: ms_to_time(to),
            reviewers,
            as_of_log_size: as_of,
        })
    }

    /// Override rate per model version and time bucket.
    pub async fn override_rates(
        &self,
        principal: &Principal,
        query: &OverrideQuery,
    ) -> Result<OverrideRateResponse, GateError> {
        principal.supervisor()?;
        let bucket =
            one_of("bucket", query.bucket.as_deref(), &["hour", "day", "week"])?.unwrap_or("day");
        let (unit, origin) = match bucket {
            "hour" => (HOUR_MS, 0),
            "week" => (WEEK_MS, FIRST_MONDAY_MS),
            _ => (DAY_MS, 0),
        };
        let model = query.model.as_deref().map(split_model).transpose()?;
        let (from, to) = range(query.from.as_deref(), query.to.as_deref())?;
        let (from, to) = (floor_to(from, unit, origin), ceil_to(to, unit, origin));
        let as_of = self.fresh().await?;
        let mut tx = self.db.begin_read().await?;
        if unit == HOUR_MS && to - from > MAX_HOURLY_MS {
            return Err(GateError::bad_request(
                "range_too_long",
                "hourly buckets cover at most 31 days; use `bucket=day` or `week` for longer",
            ));
        }
        // Summed per bucket in the database: the hours of a long range are many rows.
        type BucketRow = (String, String, i64, i64, i64, i64, i64, i64, i64, i64);
        let rows: Vec<BucketRow> = on_tx!(&mut tx, conn => {
            let mut q = QueryBuilder::new("SELECT model_name, model_version, ((hour - ");
            q.push_bind(origin).push(") / ").push_bind(unit).push(") * ").push_bind(unit).push(" + ").push_bind(origin)
                .push(" AS bucket, CAST(SUM(decisions) AS BIGINT), CAST(SUM(overrides) AS BIGINT), CAST(SUM(approve) AS BIGINT), CAST(SUM(correct) AS BIGINT), CAST(SUM(escalate) AS BIGINT), CAST(SUM(qa_decisions) AS BIGINT), CAST(SUM(qa_overrides) AS BIGINT) FROM model_hours WHERE hour >= ");
            q.push_bind(from).push(" AND hour < ").push_bind(to);
            if let Some((name, version)) = model {
                q.push(" AND model_name = ").push_bind(name.to_owned())
                    .push(" AND model_version = ").push_bind(version.to_owned());
            }
            q.push(" GROUP BY model_name, model_version, bucket ORDER BY model_name, model_version, bucket");
            q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
        });
        let mut series: BTreeMap<String, Vec<OverridePoint>> = BTreeMap::new();
        for (
            name,
            version,
            start,
            decisions,
            overrides,
            approve,
            correct,
            escalate,
            qa_decisions,
            qa_overrides,
        ) in rows
        {
            series
                .entry(format!("{name}@{version}"))
                .or_default()
                .push(OverridePoint {
                    start: ms_to_time(start),
                    decisions: count(decisions),
                    overrides: count(overrides),
                    override_rate: share(count(overrides), count(decisions)).unwrap_or(0.0),
                    approve: count(approve),
                    correct: count(correct),
                    escalate: count(escalate),
                    qa_decisions: count(qa_decisions),
                    qa_overrides: count(qa_overrides),
                });
        }
        let series = series
            .into_iter()
            .map(|(model, points)| OverrideSeries { model, points })
            .collect();
        Ok(OverrideRateResponse {
            bucket: bucket.to_owned(),
            from: ms_to_time(from),
            to: ms_to_time(to),
            series,
            as_of_log_size: as_of,
        })
    }

    /// Which fields decisions left different from the proposal, per model version.
    pub async fn corrected_fields(
        &self,
        principal: &Principal,
        query: &OverrideQuery,
    ) -> Result<CorrectedFieldsResponse, GateError> {
        principal.supervisor()?;
        if query.bucket.is_some() {
            return Err(GateError::bad_request(
                "invalid_filter",
                "`bucket` does not apply to corrected fields",
            ));
        }
        let model = query.model.as_deref().map(split_model).transpose()?;
        let (from, to) = range(query.from.as_deref(), query.to.as_deref())?;
        let (from, to) = (floor_to(from, DAY_MS, 0), ceil_to(to, DAY_MS, 0));
        let as_of = self.fresh().await?;
        let mut tx = self.db.begin_read().await?;
        let rows: Vec<(String, String, String, i64)> = on_tx!(&mut tx, conn => {
            let mut q = QueryBuilder::new("SELECT model_name, model_version, field, CAST(SUM(changes) AS BIGINT) AS n FROM model_field_days WHERE day >= ");
            q.push_bind(from).push(" AND day < ").push_bind(to);
            if let Some((name, version)) = model {
                q.push(" AND model_name = ").push_bind(name.to_owned())
                    .push(" AND model_version = ").push_bind(version.to_owned());
            }
            q.push(" GROUP BY model_name, model_version, field ORDER BY model_name, model_version, n DESC, field");
            q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
        });
        let mut models: BTreeMap<String, Vec<FieldChanges>> = BTreeMap::new();
        for (name, version, field, changes) in rows {
            models
                .entry(format!("{name}@{version}"))
                .or_default()
                .push(FieldChanges {
                    field,
                    changes: count(changes),
                });
        }
        Ok(CorrectedFieldsResponse {
            from: ms_to_time(from),
            to: ms_to_time(to),
            models: models
                .into_iter()
                .map(|(model, fields)| ModelFieldChanges { model, fields })
                .collect(),
            as_of_log_size: as_of,
        })
    }

    /// Every model version with decisions or a breaker, its window and its breaker.
    pub async fn model_statuses(&self, principal: &Principal) -> Result<ModelsResponse, GateError> {
        principal.supervisor()?;
        let as_of = self.fresh().await?;
        let config = self.active_policy().and_then(|p| p.circuit_breaker());
        let window_size = config.map_or(DEFAULT_WINDOW, |c| c.window);
        let mut tx = self.db.begin_read().await?;
        let totals: Vec<(String, String, i64, i64)> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT model_name, model_version, CAST(SUM(decisions) AS BIGINT), CAST(SUM(overrides) AS BIGINT) FROM model_hours GROUP BY model_name, model_version")
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        let mut breakers = self.breaker_states(&mut tx).await?;
        let mut all: BTreeMap<(String, String), (i64, i64)> = totals
            .into_iter()
            .map(|(name, version, d, o)| ((name, version), (d, o)))
            .collect();
        for key in breakers.keys() {
            all.entry(key.clone()).or_default();
        }
        let mut models = Vec::with_capacity(all.len());
        for ((name, version), (decisions, overrides)) in all {
            let window = self.window(&mut tx, &name, &version, window_size).await?;
            models.push(ModelStatus {
                model: format!("{name}@{version}"),
                decisions: count(decisions),
                overrides: count(overrides),
                window_decisions: count(window.decisions),
                window_overrides: count(window.overrides),
                window_override_rate: window.rate(),
                breaker: breakers
                    .remove(&(name, version))
                    .unwrap_or_else(default_breaker),
            });
        }
        Ok(ModelsResponse {
            circuit_breaker: config.map(|c| BreakerConfig {
                window: c.window,
                min_decisions: c.min_decisions,
                threshold: c.threshold,
            }),
            models,
            as_of_log_size: as_of,
        })
    }

    /// Every active lease, who holds it on which desk, and since when.
    pub async fn open_leases(
        &self,
        principal: &Principal,
        query: &LeaseQuery,
    ) -> Result<OpenLeasesResponse, GateError> {
        principal.supervisor()?;
        let queue = one_of("queue", query.queue.as_deref(), &["review", "qa"])?;
        let mut tx = self.db.begin_read().await?;
        let user = match &query.reviewer {
            Some(name) => Some(self.user_id_of(&mut tx, name).await?),
            None => None,
        };
        type Row = (
            String,
            String,
            i64,
            i64,
            String,
            Option<String>,
            String,
            String,
            i64,
            i64,
            i64,
            String,
            String,
            String,
            i64,
        );
        // Devices are few: each one's active leases come from the (device_id, state) index.
        let rows: Vec<Row> = on_tx!(&mut tx, conn => {
            let mut q = QueryBuilder::new("SELECT l.lease_id, l.item_id, l.item_version, l.epoch, l.user_id, u.name, l.device_id, d.name, l.leased_at, l.expires_at, l.offline, i.queue, i.lane, o.subject, i.due_at \
                FROM devices d CROSS JOIN leases l \
                JOIN users u ON u.user_id = l.user_id \
                JOIN items i ON i.item_id = l.item_id \
                JOIN item_versions v ON v.item_id = l.item_id AND v.version = l.item_version \
                JOIN outputs o ON o.output_id = v.output_id \
                WHERE l.device_id = d.device_id AND l.state = 'active'");
            if let Some(user) = &user {
                q.push(" AND l.user_id = ").push_bind(user.clone());
            }
            if let Some(offline) = query.offline {
                q.push(" AND l.offline = ").push_bind(i64::from(offline));
            }
            if let Some(queue) = queue {
                q.push(" AND i.queue = ").push_bind(queue.to_owned());
            }
            q.push(" ORDER BY l.leased_at, l.lease_id");
            q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
        });
        let now = now_ms();
        let leases = rows
            .into_iter()
            .map(
                |(
                    lease_id,
                    item_id,
                    version,
                    epoch,
                    user_id,
                    name,
                    device_id,
                    device_name,
                    leased_at,
                    expires_at,
                    offline,
                    queue,
                    lane,
                    subject,
                    due_at,
                )| {
                    Ok(OpenLease {
                        lease_id: parse_uuid(&lease_id)?,
                        item_id: parse_uuid(&item_id)?,
                        item_version: u32::try_from(version).unwrap_or_default(),
                        queue: queue_of(&queue),
                        lane,
                        subject,
                        epoch: u32::try_from(epoch).unwrap_or_default(),
                        reviewer: name.unwrap_or_default(),
                        user_id,
                        device_id,
                        device_name,
                        leased_at: ms_to_time(leased_at),
                        expires_at: ms_to_time(expires_at),
                        offline: offline != 0,
                        lapsed: expires_at < now,
                        due_at: ms_to_time(due_at),
                    })
                },
            )
            .collect::<Result<Vec<_>, GateError>>()?;
        Ok(OpenLeasesResponse { leases })
    }

    /// Inclusion proofs of many entries against one tree size, with the entries' bytes.
    pub async fn inclusion_batch(
        &self,
        request: &InclusionBatchRequest,
    ) -> Result<InclusionBatchResponse, GateError> {
        if request.indices.is_empty() || request.indices.len() > MAX_BATCH_PROOFS {
            return Err(GateError::bad_request(
                "invalid_batch",
                format!("ask for 1 to {MAX_BATCH_PROOFS} indices"),
            ));
        }
        let mut tx = self.db.begin_read().await?;
        let size = self.log.size(&mut tx).await?;
        if request.size > size || request.size == 0 {
            return Err(GateError::bad_request(
                "size_beyond_log",
                format!("the size must be from 1 to the log's {size} entries"),
            ));
        }
        if let Some(bad) = request.indices.iter().find(|i| **i >= request.size) {
            return Err(GateError::bad_request(
                "index_beyond_size",
                format!("index {bad} is not below size {}", request.size),
            ));
        }
        let entries = self
            .proven_entries(&mut tx, &request.indices, request.size)
            .await?;
        Ok(InclusionBatchResponse {
            size: request.size,
            entries,
        })
    }

    /// The signed checkpoints the gate stored, in increasing size.
    pub async fn stored_checkpoints(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<CheckpointsResponse, GateError> {
        if !(1..=1000).contains(&limit) {
            return Err(GateError::bad_request(
                "invalid_limit",
                "`limit` must be from 1 to 1000",
            ));
        }
        // Checkpoints handed out in receipts are stored by the next periodic checkpoint.
        self.log.checkpoint(&self.db).await?;
        let mut tx = self.db.read_statement().await?;
        let rows: Vec<(i64, Vec<u8>, String)> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT size, root, note FROM checkpoints WHERE size > $1 ORDER BY size LIMIT $2")
                .bind(to_i64(after))
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        Ok(CheckpointsResponse {
            checkpoints: rows
                .into_iter()
                .map(|(size, root, note)| StoredCheckpoint {
                    size: to_u64(size),
                    root: B64.encode(root),
                    checkpoint: note,
                })
                .collect(),
        })
    }
}

fn summary(row: FactRow) -> Result<DecisionSummary, GateError> {
    Ok(DecisionSummary {
        decision_id: parse_uuid(&row.decision_id)?,
        log_index: to_u64(row.log_index),
        logged_at: ms_to_time(row.logged_at),
        decided_at: ms_to_time(row.decided_at),
        reviewer: row.reviewer.unwrap_or_default(),
        user_id: row.user_id,
        device_id: row.device_id,
        item_id: parse_uuid(&row.item_id)?,
        item_version: u32::try_from(row.item_version).unwrap_or_default(),
        queue: queue_of(&row.queue),
        kind: row.kind,
        outcome: row.outcome,
        outcome_code: row.outcome_code,
        model: format!("{}@{}", row.model_name, row.model_version),
        lane: row.lane,
        rule: row.rule,
        policy_version: u32::try_from(row.policy_version).unwrap_or_default(),
        time_on_item_ms: row.time_on_item_ms.map(count),
        due_at: ms_to_time(row.due_at),
        sla_breached: row.sla_breached != 0,
        overrode: row.overrode != 0,
        changed_fields: row
            .changed_fields
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| GateError::internal(format!("stored changed fields: {e}")))?
            .unwrap_or_default(),
        flags: u32::try_from(row.flags).unwrap_or_default(),
    })
}

fn agreement(pairs: i64, agreed: i64) -> Agreement {
    Agreement {
        pairs: count(pairs),
        agreed: count(agreed),
        rate: share(count(agreed), count(pairs)),
    }
}

fn reviewer_summary(
    user_id: String,
    reviewer: String,
    role: String,
    t: &ReviewerDay,
    fast_seconds: u64,
    fast_bucket: usize,
) -> ReviewerStats {
    let applied = count(t.applied);
    let fast: i64 = t.approve_histogram.0[..=fast_bucket].iter().sum();
    let timed_approvals: i64 = t.approve_histogram.0.iter().sum();
    #[allow(clippy::cast_precision_loss)]
    let mean = (t.timed > 0).then(|| t.time_on_item_ms as f64 / t.timed as f64);
    let mut upper_ms: Vec<Option<u64>> = TIME_BUCKETS_MS.iter().map(|u| Some(*u)).collect();
    upper_ms.push(None);
    debug_assert_eq!(upper_ms.len(), BUCKETS);
    ReviewerStats {
        reviewer,
        user_id,
        role,
        decisions: count(t.decisions),
        applied,
        conflicts: count(t.conflict),
        rejected: count(t.rejected),
        approve: count(t.approve),
        correct: count(t.correct),
        escalate: count(t.escalate),
        approve_share: share(count(t.approve), applied),
        correct_share: share(count(t.correct), applied),
        escalate_share: share(count(t.escalate), applied),
        mean_time_on_item_ms: mean,
        time_on_item: TimeHistogram {
            upper_ms,
            counts: t.time_histogram.0.iter().map(|c| count(*c)).collect(),
        },
        sla_breaches: count(t.sla_breaches),
        four_eyes: agreement(t.four_eyes_pairs, t.four_eyes_agreed),
        qa: agreement(t.qa_pairs, t.qa_agreed),
        rubber_stamp: RubberStamp {
            fast_seconds,
            fast_approvals: count(fast),
            fast_approval_share: share(count(fast), count(timed_approvals)),
            longest_approval_run: count(t.run_max),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_to_their_grid() {
        let monday = FIRST_MONDAY_MS + 3 * WEEK_MS;
        assert_eq!(
            floor_to(monday + 5 * DAY_MS, WEEK_MS, FIRST_MONDAY_MS),
            monday
        );
        assert_eq!(
            ceil_to(monday + 1, WEEK_MS, FIRST_MONDAY_MS),
            monday + WEEK_MS
        );
        assert_eq!(ceil_to(monday, WEEK_MS, FIRST_MONDAY_MS), monday);
        assert_eq!(floor_to(DAY_MS + 5, DAY_MS, 0), DAY_MS);
        // 1970-01-05 was a Monday.
        let first = chrono::DateTime::from_timestamp_millis(FIRST_MONDAY_MS).unwrap_or_default();
        assert_eq!(chrono::Datelike::weekday(&first), chrono::Weekday::Mon);
    }
}

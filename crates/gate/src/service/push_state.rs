//! What a push reads and writes, set-based across the whole push.
//!
//! A push of N decisions used to run about a dozen statements per decision. Here the rows its
//! checks need (earlier decisions of the device, items, leases, item versions with their outputs,
//! applied decisions per item) are read up front with a few `IN (...)` queries, and its writes
//! (decisions, lease states, item updates, releases) are gathered and written with a few
//! multi-row statements before the log entries and the commit.
//!
//! Correctness rests on two rules. Rows this push changes are never served from the prefetch:
//! once a decision has been processed, its item and lease are dropped from the cache and a later
//! decision on them reads the database, after the pending writes are flushed. Decisions are only
//! ever inserted, so the per-item lists of applied decisions and the map of earlier decisions are
//! kept current in memory as the push inserts. Everything happens inside the push's write
//! transaction, so nobody else changes these rows meanwhile.

use std::collections::{HashMap, HashSet};

use super::queue::{LEASE_COLUMNS, LeaseRow};
use super::releases::{ReleaseRow, insert_releases};
use crate::db::{DbError, Select, fetch_sets, owned_chunks, push_in_list};
use crate::error::GateError;
use crate::log::{WriteTx, to_i64};
use crate::{on_tx, write_later};

/// Ids per `IN (...)` list: well under SQLite's limit on bound parameters.
const CHUNK: usize = 400;

const EARLIER_COLUMNS: &str = "decision_id, device_id, device_seq, jws_sha256, outcome, outcome_code, outcome_message, log_index";

#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct EarlierDecision {
    pub decision_id: String,
    pub device_id: String,
    pub device_seq: i64,
    pub jws_sha256: String,
    pub outcome: String,
    pub outcome_code: Option<String>,
    pub outcome_message: Option<String>,
    pub log_index: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct ItemRow {
    pub item_id: String,
    pub lane: String,
    pub status: String,
    pub current_version: i64,
    pub authority_required: f64,
    pub approvals_required: i64,
    pub escalation_level: i64,
    pub outcome: Option<String>,
    pub queue: String,
}

pub(super) const ITEM_COLUMNS: &str = "item_id, lane, status, current_version, authority_required, approvals_required, escalation_level, outcome, queue";

/// An item version with what a release of it needs. Versions never change once written.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct VersionRow {
    pub item_id: String,
    pub version: i64,
    /// The served item's JCS text, read only for decisions that are checked against it
    /// (reasons, corrections); see [`PushState::served`].
    pub served: Option<String>,
    pub served_sha256: String,
    pub routing: String,
    pub output_id: String,
    pub source: String,
    pub subject: String,
    pub model_name: String,
    pub model_version: String,
}

/// The columns of [`VersionRow`], from `item_versions v JOIN outputs o`; the served item itself
/// (about 2 KB) only when asked for.
fn version_columns(with_served: bool) -> String {
    let served = if with_served {
        "v.served"
    } else {
        "NULL AS served"
    };
    format!(
        "v.item_id, v.version, {served}, v.served_sha256, v.routing, o.output_id, o.source, o.subject, o.model_name, o.model_version"
    )
}

/// An applied decision on an item, as four-eyes, approval counting and release traces see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct AppliedDecision {
    pub item_id: String,
    pub item_version: i64,
    pub user_id: String,
    pub kind: String,
    pub log_index: i64,
    pub decision_id: String,
    pub key_id: String,
    pub user_name: String,
}

/// A decision row waiting to be inserted.
pub(super) struct NewDecision {
    pub decision_id: String,
    pub device_seq: i64,
    pub jws_sha256: String,
    pub user_id: String,
    pub key_id: String,
    pub item_id: String,
    pub item_version: i64,
    pub kind: &'static str,
    pub outcome: &'static str,
    pub outcome_code: Option<String>,
    pub outcome_message: Option<String>,
    pub log_index: i64,
    pub received_at: i64,
}

/// The ids of the rows one pushed decision is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RowKeys {
    pub device_seq: i64,
    pub decision_id: String,
    pub item_id: String,
    pub lease_id: String,
    /// Checked against the served item (reasons or corrections).
    pub needs_served: bool,
}

impl RowKeys {
    pub fn of(d: &countersign_core::Decision) -> Self {
        RowKeys {
            device_seq: to_i64(d.device_seq),
            decision_id: d.decision_id.to_string(),
            item_id: d.item_id.to_string(),
            lease_id: d.lease_id.to_string(),
            needs_served: !d.reason_codes.is_empty()
                || d.kind == countersign_core::DecisionKind::Correct,
        }
    }

    /// The ids a signed decision names, read from its payload before its signature is checked.
    /// Only for prefetching rows while the signatures are verified: nothing is decided on them,
    /// and a decision whose rows were not prefetched is read from the database when processed.
    pub fn hint(jws: &str) -> Option<Self> {
        use base64::Engine as _;
        #[derive(serde::Deserialize)]
        struct Named {
            decision_id: uuid::Uuid,
            item_id: uuid::Uuid,
            lease_id: uuid::Uuid,
            device_seq: u64,
            kind: countersign_core::DecisionKind,
            #[serde(default)]
            reason_codes: Vec<String>,
        }
        let payload = jws.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        let named: Named = serde_json::from_slice(&bytes).ok()?;
        Some(RowKeys {
            device_seq: to_i64(named.device_seq),
            decision_id: named.decision_id.to_string(),
            item_id: named.item_id.to_string(),
            lease_id: named.lease_id.to_string(),
            needs_served: !named.reason_codes.is_empty()
                || named.kind == countersign_core::DecisionKind::Correct,
        })
    }
}

/// The state of one push: prefetched rows and pending writes.
#[derive(Default)]
pub(super) struct PushState {
    device_id: String,
    /// Status of each key the push names, read under the log lock: a revocation committed
    /// since the signature check still cuts every decision processed after it.
    pub key_statuses: HashMap<String, String>,
    /// The device's highest sequence number before this push.
    pub last_seq: Option<i64>,
    by_seq: HashMap<i64, EarlierDecision>,
    by_id: HashMap<String, EarlierDecision>,
    /// Prefetched items; `None` means known not to exist. Absent: not cached (read the database).
    items: HashMap<String, Option<ItemRow>>,
    leases: HashMap<String, Option<LeaseRow>>,
    /// Items whose versions and applied decisions were prefetched.
    covered: HashSet<String>,
    versions: HashMap<(String, i64), VersionRow>,
    applied: HashMap<String, Vec<AppliedDecision>>,
    new_decisions: Vec<NewDecision>,
    /// Lease id, new state, whether the epoch is bumped.
    lease_states: Vec<(String, &'static str, bool)>,
    /// Item id and the lease whose hold on it ends.
    freed: Vec<(String, String)>,
    escalated: Vec<String>,
    outcomes: Vec<(String, String)>,
    released: Vec<String>,
    releases: Vec<ReleaseRow>,
}

impl PushState {
    /// Reads what the decisions of a push will be checked against, and the current status of
    /// the keys `kids` and the device's last sequence number, all in one read set.
    pub async fn load(
        wtx: &mut WriteTx,
        device_id: &str,
        decisions: &[RowKeys],
        kids: &[&str],
    ) -> Result<Self, GateError> {
        let mut state = PushState {
            device_id: device_id.to_owned(),
            ..PushState::default()
        };
        let seqs: Vec<i64> = decisions.iter().map(|d| d.device_seq).collect();
        let ids: Vec<&str> = decisions.iter().map(|d| d.decision_id.as_str()).collect();
        let items: Vec<String> = decisions
            .iter()
            .map(|d| d.item_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let leases: Vec<String> = decisions
            .iter()
            .map(|d| d.lease_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for id in &items {
            state.items.insert(id.clone(), None);
            state.covered.insert(id.clone());
        }
        for id in &leases {
            state.leases.insert(id.clone(), None);
        }

        // Which statement each result set answers.
        enum Read {
            KeyStatus,
            LastSeq,
            Earlier,
            Items,
            Versions,
            Applied,
            Leases,
        }
        let mut reads = Vec::new();
        let mut selects = Vec::new();
        for chunk in kids.chunks(CHUNK) {
            reads.push(Read::KeyStatus);
            selects.push(
                Select::new("SELECT key_id, status FROM device_keys WHERE key_id IN")
                    .in_list(chunk.iter().copied()),
            );
        }
        reads.push(Read::LastSeq);
        selects.push(
            Select::new("SELECT MAX(device_seq) FROM decisions WHERE device_id = ").bind(device_id),
        );
        for (seqs, ids) in seqs.chunks(CHUNK).zip(ids.chunks(CHUNK)) {
            reads.push(Read::Earlier);
            selects.push(
                Select::new(format!(
                    "SELECT {EARLIER_COLUMNS} FROM decisions WHERE (device_id = "
                ))
                .bind(device_id)
                .push(" AND device_seq IN")
                .in_list(seqs.iter().copied())
                .push(") OR decision_id IN")
                .in_list(ids.iter().copied()),
            );
        }
        // Only reasons and corrections are checked against the served item.
        let needs_served: HashSet<&str> = decisions
            .iter()
            .filter(|d| d.needs_served)
            .map(|d| d.item_id.as_str())
            .collect();
        for chunk in items.chunks(CHUNK) {
            let list = || chunk.iter().map(String::as_str);
            reads.push(Read::Items);
            selects.push(
                Select::new(format!("SELECT {ITEM_COLUMNS} FROM items WHERE item_id IN"))
                    .in_list(list()),
            );
            let (with, without): (Vec<&str>, Vec<&str>) =
                list().partition(|id| needs_served.contains(*id));
            for (with_served, ids) in [(true, with), (false, without)] {
                if ids.is_empty() {
                    continue;
                }
                reads.push(Read::Versions);
                selects.push(
                    Select::new(format!(
                        "SELECT {} FROM item_versions v JOIN outputs o ON o.output_id = v.output_id WHERE v.item_id IN",
                        version_columns(with_served)
                    ))
                    .in_list(ids),
                );
            }
            reads.push(Read::Applied);
            selects.push(
                Select::new("SELECT d.item_id, d.item_version, d.user_id, d.kind, d.log_index, d.decision_id, d.key_id, u.name AS user_name FROM decisions d JOIN users u ON u.user_id = d.user_id WHERE d.outcome = 'applied' AND d.item_id IN")
                    .in_list(list()),
            );
        }
        for chunk in leases.chunks(CHUNK) {
            reads.push(Read::Leases);
            selects.push(
                Select::new(format!(
                    "SELECT {LEASE_COLUMNS} FROM leases WHERE lease_id IN"
                ))
                .in_list(chunk.iter().map(String::as_str)),
            );
        }

        let sets = fetch_sets(&mut wtx.tx, selects).await?;
        for (read, set) in reads.into_iter().zip(sets) {
            match read {
                Read::KeyStatus => state.key_statuses.extend(set.decode::<(String, String)>()?),
                Read::LastSeq => {
                    state.last_seq = set
                        .decode::<(Option<i64>,)>()?
                        .into_iter()
                        .next()
                        .and_then(|(s,)| s);
                }
                Read::Earlier => {
                    for row in set.decode::<EarlierDecision>()? {
                        state.remember_decision(row);
                    }
                }
                Read::Items => {
                    for row in set.decode::<ItemRow>()? {
                        state.items.insert(row.item_id.clone(), Some(row));
                    }
                }
                Read::Versions => {
                    for row in set.decode::<VersionRow>()? {
                        state
                            .versions
                            .insert((row.item_id.clone(), row.version), row);
                    }
                }
                Read::Applied => {
                    for row in set.decode::<AppliedDecision>()? {
                        state
                            .applied
                            .entry(row.item_id.clone())
                            .or_default()
                            .push(row);
                    }
                }
                Read::Leases => {
                    for row in set.decode::<LeaseRow>()? {
                        state.leases.insert(row.lease_id.clone(), Some(row));
                    }
                }
            }
        }
        Ok(state)
    }

    /// Reads the earlier decisions under `keys`' sequence number or decision id, for a decision
    /// that was not prefetched (its payload read differently as a hint). Pending writes go
    /// first, so the decisions of this push are seen as well.
    pub async fn load_earlier(
        &mut self,
        wtx: &mut WriteTx,
        keys: &RowKeys,
    ) -> Result<(), GateError> {
        self.sync(wtx).await?;
        let sql = format!(
            "SELECT {EARLIER_COLUMNS} FROM decisions WHERE (device_id = $1 AND device_seq = $2) OR decision_id = $3"
        );
        let rows: Vec<EarlierDecision> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_as(&sql)
                .bind(&self.device_id)
                .bind(keys.device_seq)
                .bind(&keys.decision_id)
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        for row in rows {
            self.remember_decision(row);
        }
        Ok(())
    }

    fn remember_decision(&mut self, row: EarlierDecision) {
        if row.device_id == self.device_id {
            self.by_seq.insert(row.device_seq, row.clone());
        }
        self.by_id.insert(row.decision_id.clone(), row);
    }

    /// Earlier decisions under the same sequence number of this device or the same decision id.
    pub fn earlier(&self, device_seq: i64, decision_id: &str) -> Vec<&EarlierDecision> {
        self.by_seq
            .get(&device_seq)
            .into_iter()
            .chain(self.by_id.get(decision_id))
            .collect()
    }

    pub async fn item(
        &mut self,
        wtx: &mut WriteTx,
        item_id: &str,
    ) -> Result<Option<ItemRow>, GateError> {
        if let Some(cached) = self.items.get(item_id) {
            return Ok(cached.clone());
        }
        self.sync(wtx).await?;
        let sql = format!("SELECT {ITEM_COLUMNS} FROM items WHERE item_id = $1");
        let row: Option<ItemRow> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_as(&sql)
                .bind(item_id)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        Ok(row)
    }

    pub async fn lease(
        &mut self,
        wtx: &mut WriteTx,
        lease_id: &str,
    ) -> Result<Option<LeaseRow>, GateError> {
        if let Some(cached) = self.leases.get(lease_id) {
            return Ok(cached.clone());
        }
        self.sync(wtx).await?;
        super::queue::lease_by_id(&mut wtx.tx, lease_id).await
    }

    pub async fn version(
        &mut self,
        wtx: &mut WriteTx,
        item_id: &str,
        version: i64,
    ) -> Result<Option<VersionRow>, GateError> {
        if self.covered.contains(item_id) {
            return Ok(self.versions.get(&(item_id.to_owned(), version)).cloned());
        }
        self.sync(wtx).await?;
        let sql = format!(
            "SELECT {} FROM item_versions v JOIN outputs o ON o.output_id = v.output_id WHERE v.item_id = $1 AND v.version = $2",
            version_columns(true)
        );
        let row: Option<VersionRow> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_as(&sql)
                .bind(item_id)
                .bind(version)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        Ok(row)
    }

    /// The served item of a version, as JCS text. Versions never change, so no pending write
    /// matters here.
    pub async fn served(
        &mut self,
        wtx: &mut WriteTx,
        item_id: &str,
        version: i64,
    ) -> Result<Option<String>, GateError> {
        if let Some(served) = self
            .versions
            .get(&(item_id.to_owned(), version))
            .and_then(|v| v.served.clone())
        {
            return Ok(Some(served));
        }
        let served: Option<String> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_scalar("SELECT served FROM item_versions WHERE item_id = $1 AND version = $2")
                .bind(item_id)
                .bind(version)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        Ok(served)
    }

    /// Applied decisions on an item, in log order.
    pub async fn applied(
        &mut self,
        wtx: &mut WriteTx,
        item_id: &str,
    ) -> Result<Vec<AppliedDecision>, GateError> {
        let mut rows = if self.covered.contains(item_id) {
            self.applied.get(item_id).cloned().unwrap_or_default()
        } else {
            self.sync(wtx).await?;
            let rows: Vec<AppliedDecision> = on_tx!(&mut wtx.tx, conn => {
                sqlx::query_as("SELECT d.item_id, d.item_version, d.user_id, d.kind, d.log_index, d.decision_id, d.key_id, u.name AS user_name FROM decisions d JOIN users u ON u.user_id = d.user_id WHERE d.outcome = 'applied' AND d.item_id = $1")
                    .bind(item_id)
                    .fetch_all(conn)
                    .await
                    .map_err(DbError::from)?
            });
            rows
        };
        rows.sort_by_key(|r| r.log_index);
        Ok(rows)
    }

    /// Records a decision for insertion; an applied one counts for its item from now on.
    pub fn insert_decision(&mut self, row: NewDecision, user_name: &str) {
        if row.outcome == "applied" && self.covered.contains(&row.item_id) {
            self.applied
                .entry(row.item_id.clone())
                .or_default()
                .push(AppliedDecision {
                    item_id: row.item_id.clone(),
                    item_version: row.item_version,
                    user_id: row.user_id.clone(),
                    kind: row.kind.to_owned(),
                    log_index: row.log_index,
                    decision_id: row.decision_id.clone(),
                    key_id: row.key_id.clone(),
                    user_name: user_name.to_owned(),
                });
        }
        self.remember_decision(EarlierDecision {
            decision_id: row.decision_id.clone(),
            device_id: self.device_id.clone(),
            device_seq: row.device_seq,
            jws_sha256: row.jws_sha256.clone(),
            outcome: row.outcome.to_owned(),
            outcome_code: row.outcome_code.clone(),
            outcome_message: row.outcome_message.clone(),
            log_index: row.log_index,
        });
        self.new_decisions.push(row);
    }

    /// Forgets the cached rows a processed decision may have changed.
    pub fn touched(&mut self, item_id: &str, lease_id: &str) {
        self.items.remove(item_id);
        self.leases.remove(lease_id);
    }

    /// Ends a lease: its new state, and the item no longer held by it.
    pub fn end_lease(&mut self, lease: &LeaseRow, state: &'static str, bump_epoch: bool) {
        self.lease_states
            .push((lease.lease_id.clone(), state, bump_epoch));
        self.freed
            .push((lease.item_id.clone(), lease.lease_id.clone()));
        self.touched(&lease.item_id, &lease.lease_id);
    }

    pub fn escalate(&mut self, item_id: &str) {
        self.escalated.push(item_id.to_owned());
    }

    pub fn set_outcome(&mut self, item_id: &str, outcome: String) {
        self.outcomes.push((item_id.to_owned(), outcome));
    }

    /// A QA item has all the decisions it needs: it is done, and nothing is released.
    pub fn finish_qa(&mut self, item_id: &str) {
        self.released.push(item_id.to_owned());
    }

    /// The item is released with `release`.
    pub fn release(&mut self, item_id: &str, release: ReleaseRow) {
        self.released.push(item_id.to_owned());
        self.releases.push(release);
    }

    /// Queues everything pending, in an order that keeps each item's final state right: leases
    /// end, items are freed, escalated, corrected and released. The writes run with the
    /// transaction's next round trip ([`write_later!`]); [`PushState::sync`] runs them now.
    pub async fn flush(&mut self, wtx: &mut WriteTx) -> Result<(), GateError> {
        let device_id = self.device_id.clone();
        let decisions = std::mem::take(&mut self.new_decisions);
        for chunk in owned_chunks(decisions, 100) {
            write_later!(wtx, q => {
                q.push("INSERT INTO decisions (decision_id, device_id, device_seq, jws_sha256, user_id, key_id, item_id, item_version, kind, outcome, outcome_code, outcome_message, log_index, received_at) ");
                q.push_values(chunk, |mut b, d| {
                    b.push_bind(d.decision_id).push_bind(device_id.clone()).push_bind(d.device_seq)
                        .push_bind(d.jws_sha256).push_bind(d.user_id)
                        .push_bind(d.key_id).push_bind(d.item_id).push_bind(d.item_version)
                        .push_bind(d.kind).push_bind(d.outcome).push_bind(d.outcome_code)
                        .push_bind(d.outcome_message).push_bind(d.log_index).push_bind(d.received_at);
                });
            });
        }
        let lease_states = std::mem::take(&mut self.lease_states);
        let mut groups: HashMap<(&'static str, bool), Vec<String>> = HashMap::new();
        for (lease_id, state, bump) in lease_states {
            groups.entry((state, bump)).or_default().push(lease_id);
        }
        for ((state, bump), ids) in groups {
            for chunk in ids.chunks(CHUNK) {
                write_later!(wtx, q => {
                    q.push("UPDATE leases SET state = ");
                    q.push_bind(state).push(", epoch = epoch + ").push_bind(i64::from(bump)).push(" WHERE lease_id IN");
                    push_in_list(q, chunk.iter().cloned());
                });
            }
        }
        let released: HashSet<String> = std::mem::take(&mut self.released).into_iter().collect();
        // A released item's own update frees it, so only the others are freed here.
        let freed: Vec<(String, String)> = std::mem::take(&mut self.freed)
            .into_iter()
            .filter(|(item, _)| !released.contains(item))
            .collect();
        for chunk in freed.chunks(CHUNK / 2) {
            write_later!(wtx, q => {
                q.push("UPDATE items SET active_lease_id = NULL, lease_expires_at = NULL WHERE ");
                for (i, (item, lease)) in chunk.iter().enumerate() {
                    if i > 0 {
                        q.push(" OR ");
                    }
                    q.push("(item_id = ").push_bind(item.clone()).push(" AND active_lease_id = ").push_bind(lease.clone()).push(")");
                }
            });
        }
        let escalated = std::mem::take(&mut self.escalated);
        for chunk in escalated.chunks(CHUNK) {
            write_later!(wtx, q => {
                q.push("UPDATE items SET status = 'escalated', escalation_level = escalation_level + 1 WHERE item_id IN");
                push_in_list(q, chunk.iter().cloned());
            });
        }
        // Each correction in turn: a later one on the same item must win.
        for (item_id, outcome) in std::mem::take(&mut self.outcomes) {
            write_later!(wtx, q => {
                q.push("UPDATE items SET outcome = ").push_bind(outcome.clone())
                    .push(" WHERE item_id = ").push_bind(item_id.clone());
            });
        }
        let released: Vec<String> = released.into_iter().collect();
        for chunk in released.chunks(CHUNK) {
            write_later!(wtx, q => {
                q.push("UPDATE items SET status = 'released', active_lease_id = NULL, lease_expires_at = NULL WHERE item_id IN");
                push_in_list(q, chunk.iter().cloned());
            });
        }
        let releases = std::mem::take(&mut self.releases);
        for chunk in releases.chunks(CHUNK / 2) {
            write_later!(wtx, q => {
                q.push("UPDATE outputs SET release_seq = CASE output_id");
                for r in chunk {
                    q.push(" WHEN ").push_bind(r.output_id.clone()).push(" THEN ").push_bind(to_i64(r.release_seq));
                }
                q.push(" END WHERE output_id IN");
                push_in_list(q, chunk.iter().map(|r| r.output_id.clone()));
            });
        }
        insert_releases(wtx, releases).await
    }

    /// Writes everything pending now, before a read of rows this push may have changed.
    pub async fn sync(&mut self, wtx: &mut WriteTx) -> Result<(), GateError> {
        self.flush(wtx).await?;
        wtx.run_deferred().await
    }
}

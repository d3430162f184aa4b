//! Supervision statistics, folded from the audit log off the decision path.
//!
//! A push only logs its decisions. A background task (woken after every push and ingest, and
//! once a second for decisions another gate instance logged) reads the decision entries logged
//! since it last ran, in log order, and writes one row per decision into `decision_facts` and
//! the sums supervisors ask for into `reviewer_days` (per reviewer and UTC day) and
//! `model_hours` / `model_field_days` (per model version and UTC hour or day). How far it got
//! is the log size stored under `decisions` in `supervision_state`; a batch is written only if
//! that value is still what it read (compare-and-set), so several instances sharing one
//! PostgreSQL database never fold a decision twice. Supervisor queries first fold whatever is
//! left themselves, so they see every decision logged before they started.
//!
//! Definitions (every figure is about decisions as the log recorded them):
//!
//! - **logged at**: the gate's time in the decision's log entry; date ranges and buckets use it.
//! - **decided at**: the signed `decided_at`, clamped to [lease start, logged at] (a desk's clock
//!   can be wrong, but a decision cannot precede its lease or follow its logging).
//! - **time on item**: decided at − the later of the lease's start and the decided-at of the same
//!   device's previous logged decision (a reviewer works through a claimed batch one item after
//!   another). Unknown when the decision names no lease the gate knows.
//! - **SLA breach**: an applied decision decided after the item version's due time (received +
//!   the routing's SLA; for a QA item, the policy's QA SLA).
//! - **override**: an applied decision that escalates, or that leaves an outcome differing from
//!   the model's proposal in some field (for a `human_only` item the proposal was withheld, so
//!   the human's outcome is compared with it). For a single review that is exactly "correct or
//!   escalate"; an approval of someone else's correction also counts. **Override rate** =
//!   overrides / applied human decisions (review, human-only and QA items).
//! - **changed fields**: the fields such a decision left different from the proposal.
//! - **verdict** of an applied decision: the outcome it left, or "escalate".
//! - **four-eyes agreement**: on an item version needing two or more approvals, each applied
//!   decision and the applied decision before it by another reviewer form a pair, unless that
//!   earlier one escalated (it handed over rather than decided); they agree when their verdicts
//!   are equal. Both reviewers count the pair, on the later decision's day.
//! - **QA agreement**: a decision on a re-review QA item and the decision it re-reviews form a
//!   pair for both reviewers; they agree when their verdicts are equal.
//! - **longest approval run**: the most consecutive applied approvals by one reviewer, in log
//!   order, with no applied correction or escalation between.
//!
//! The circuit breaker is checked after each batch, so it trips a moment after the decision
//! that crossed the threshold: once pushes pause for 200 ms, and within about two seconds under
//! steady load (or at once when a supervisor query folds first).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use countersign_core::{AuditEventKind, Decision, DecisionKind, DecisionOutcome, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sqlx::QueryBuilder;

use super::Gate;
use crate::db::{DbError, Select, Tx, fetch_sets, ms_to_time, now_ms};
use crate::error::GateError;
use crate::log::{WriteTx, to_i64, to_u64};
use crate::on_tx;

/// Upper bounds, in milliseconds, of the time-on-item histogram's buckets; one more bucket holds
/// everything longer. The rubber-stamp threshold is one of these.
pub const TIME_BUCKETS_MS: [u64; 11] = [
    1_000, 2_000, 3_000, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000,
];
pub(crate) const BUCKETS: usize = TIME_BUCKETS_MS.len() + 1;
/// The window reported for model versions when the policy configures no circuit breaker.
pub const DEFAULT_WINDOW: u32 = 200;
pub(crate) const DAY_MS: i64 = 86_400_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;
/// Decision entries per folded batch: one batch is one short write.
const FOLD_BATCH: i64 = 500;
/// Sampled releases turned into QA items per write.
const SAMPLE_BATCH: i64 = 200;
/// Ids per `IN (...)` list.
const CHUNK: usize = 400;
/// The background fold waits for this long without a push or ingest before it runs...
const FOLD_QUIET: Duration = Duration::from_millis(200);
/// ...but no longer than this after the first one.
const FOLD_AT_MOST_EVERY: Duration = Duration::from_secs(2);
/// How far the log may grow past a stored position with nothing to fold before the position
/// is stored anyway: a write per fold would queue behind (and hold up) the pushes, while a
/// position left far behind makes every fold re-read a long stretch of the log.
const UNSAVED_STRETCH: i64 = 10_000;

/// What the gate keeps in memory for supervision: the tripped model versions routing reads on
/// every ingest, and the background task's wake-up.
#[derive(Debug, Default)]
pub struct Supervision {
    wake: tokio::sync::Notify,
    tripped: RwLock<Arc<HashSet<String>>>,
    /// Held while folding, so one process folds one batch at a time.
    fold: tokio::sync::Mutex<()>,
    /// Log sizes up to which this process found no sampled release and no decision entry left
    /// to fold. Stored positions move only when there is something to fold (or far behind);
    /// without these, every fold would re-read the log from the stored position. Entries below
    /// a size once read never change, so this holds whichever instance folds.
    scanned: std::sync::Mutex<(i64, i64)>,
}

impl Supervision {
    /// Asks the background task to fold what was just logged.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Model ids (`name@version`) whose circuit breaker is tripped.
    pub fn tripped_models(&self) -> Arc<HashSet<String>> {
        self.tripped
            .read()
            .map(|t| Arc::clone(&t))
            .unwrap_or_default()
    }

    fn scanned(&self) -> (i64, i64) {
        self.scanned.lock().map(|s| *s).unwrap_or_default()
    }

    fn note_scanned(&self, samples: Option<i64>, decisions: Option<i64>) {
        if let Ok(mut scanned) = self.scanned.lock() {
            if let Some(s) = samples {
                scanned.0 = scanned.0.max(s);
            }
            if let Some(d) = decisions {
                scanned.1 = scanned.1.max(d);
            }
        }
    }

    fn set_tripped(&self, models: HashSet<String>) {
        if let Ok(mut slot) = self.tripped.write() {
            *slot = Arc::new(models);
        }
    }
}

/// Runs the folding until the task is aborted: after wake-ups, and once a second regardless.
pub async fn supervision_loop(gate: Arc<Gate>) {
    let mut gauges_due = tokio::time::Instant::now();
    loop {
        let _woken =
            tokio::time::timeout(Duration::from_secs(1), gate.supervision.wake.notified()).await;
        // Fold once traffic pauses (or every couple of seconds under steady load): folding after
        // each request would take CPU and turns on the SQLite writer from the requests
        // themselves. Queries fold what is left themselves, so they never see stale figures.
        let first = tokio::time::Instant::now();
        while first.elapsed() < FOLD_AT_MOST_EVERY
            && tokio::time::timeout(FOLD_QUIET, gate.supervision.wake.notified())
                .await
                .is_ok()
        {}
        if let Err(e) = gate.fold_supervision().await {
            tracing::warn!(error = %e, "folding supervision statistics failed");
        }
        // Another gate instance sharing the database may have tripped or reset a breaker.
        if let Err(e) = gate.reload_tripped().await {
            tracing::warn!(error = %e, "reading circuit breakers failed");
        }
        if tokio::time::Instant::now() >= gauges_due {
            gauges_due = tokio::time::Instant::now() + Duration::from_secs(5);
            if let Err(e) = gate.refresh_gauges().await {
                tracing::warn!(error = %e, "refreshing queue gauges failed");
            }
        }
    }
}

/// A decision entry as the log holds it (only what folding needs).
#[derive(Deserialize)]
struct LoggedDecision {
    index: u64,
    at: Timestamp,
    data: LoggedDecisionData,
}

#[derive(Deserialize)]
struct LoggedDecisionData {
    decision_id: uuid::Uuid,
    device_id: String,
    device_seq: u64,
    user_id: String,
    jws: String,
    result: DecisionOutcome,
}

/// The JWS of a logged decision, from its log entry's bytes: the entry is where the gate keeps
/// it (`data.jws`), the decision row holds only its hash.
pub(crate) fn logged_jws(entry: &[u8]) -> Result<String, GateError> {
    #[derive(Deserialize)]
    struct Entry {
        data: Data,
    }
    #[derive(Deserialize)]
    struct Data {
        jws: String,
    }
    let entry: Entry = serde_json::from_slice(entry)
        .map_err(|e| GateError::internal(format!("logged decision entry: {e}")))?;
    Ok(entry.data.jws)
}

/// The signed decision inside a JWS the gate already verified when it was pushed.
pub(crate) fn signed_decision(jws: &str) -> Result<Decision, GateError> {
    let payload = jws
        .split('.')
        .nth(1)
        .ok_or_else(|| GateError::internal("a logged JWS has no payload"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| GateError::internal(format!("logged JWS payload: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| GateError::internal(format!("logged decision: {e}")))
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct VersionInfo {
    item_id: String,
    version: i64,
    routing: String,
    created_at: i64,
    output_id: String,
    model_name: String,
    model_version: String,
    queue: String,
}

/// The routing fields folding uses.
#[derive(Debug, Clone, Deserialize)]
struct RoutingInfo {
    policy_version: i64,
    rule: String,
    lane: String,
    approvals_required: i64,
    sla_seconds: i64,
}

/// One row of `decision_facts`.
#[derive(Debug, Clone)]
struct Fact {
    log_index: i64,
    decision_id: String,
    user_id: String,
    device_id: String,
    device_seq: i64,
    item_id: String,
    item_version: i64,
    queue: String,
    kind: &'static str,
    outcome: &'static str,
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
    sla_breached: bool,
    overrode: bool,
    verdict: Option<String>,
    changed_fields: Vec<String>,
}

/// Counts per time-on-item bucket, stored as a JSON array.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Histogram(pub [i64; BUCKETS]);

impl From<String> for Histogram {
    fn from(text: String) -> Self {
        let mut out = [0; BUCKETS];
        if let Ok(counts) = serde_json::from_str::<Vec<i64>>(&text) {
            for (slot, count) in out.iter_mut().zip(counts) {
                *slot = count;
            }
        }
        Histogram(out)
    }
}

/// A row of `reviewer_days`, as read and as written back.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub(crate) struct ReviewerDay {
    pub decisions: i64,
    pub applied: i64,
    pub approve: i64,
    pub correct: i64,
    pub escalate: i64,
    pub conflict: i64,
    pub rejected: i64,
    pub timed: i64,
    pub time_on_item_ms: i64,
    pub sla_breaches: i64,
    pub four_eyes_pairs: i64,
    pub four_eyes_agreed: i64,
    pub qa_pairs: i64,
    pub qa_agreed: i64,
    pub run_head: i64,
    pub run_tail: i64,
    pub run_max: i64,
    #[sqlx(try_from = "String")]
    pub time_histogram: Histogram,
    #[sqlx(try_from = "String")]
    pub approve_histogram: Histogram,
}

pub(crate) const REVIEWER_DAY_COLUMNS: &str = "decisions, applied, approve, correct, escalate, conflict, rejected, timed, time_on_item_ms, sla_breaches, four_eyes_pairs, four_eyes_agreed, qa_pairs, qa_agreed, run_head, run_tail, run_max, time_histogram, approve_histogram";

impl ReviewerDay {
    /// Counts one more applied decision of the reviewer, in log order.
    fn push_applied(&mut self, approve: bool) {
        let all_approvals = self.run_head == self.applied;
        self.applied += 1;
        if approve {
            if all_approvals {
                self.run_head += 1;
            }
            self.run_tail += 1;
            self.run_max = self.run_max.max(self.run_tail);
        } else {
            self.run_tail = 0;
        }
    }

    /// Adds a later stretch of the same reviewer's decisions (`later` follows `self` in log order).
    pub(crate) fn merge(&mut self, later: &ReviewerDay) {
        let head = if self.run_head == self.applied {
            self.applied + later.run_head
        } else {
            self.run_head
        };
        let tail = if later.run_tail == later.applied {
            self.run_tail + later.applied
        } else {
            later.run_tail
        };
        self.run_max = self
            .run_max
            .max(later.run_max)
            .max(self.run_tail + later.run_head);
        self.run_head = head;
        self.run_tail = tail;
        self.decisions += later.decisions;
        self.applied += later.applied;
        self.approve += later.approve;
        self.correct += later.correct;
        self.escalate += later.escalate;
        self.conflict += later.conflict;
        self.rejected += later.rejected;
        self.timed += later.timed;
        self.time_on_item_ms += later.time_on_item_ms;
        self.sla_breaches += later.sla_breaches;
        self.four_eyes_pairs += later.four_eyes_pairs;
        self.four_eyes_agreed += later.four_eyes_agreed;
        self.qa_pairs += later.qa_pairs;
        self.qa_agreed += later.qa_agreed;
        for (a, b) in self.time_histogram.0.iter_mut().zip(later.time_histogram.0) {
            *a += b;
        }
        for (a, b) in self
            .approve_histogram
            .0
            .iter_mut()
            .zip(later.approve_histogram.0)
        {
            *a += b;
        }
    }
}

fn histogram_text(h: &Histogram) -> String {
    serde_json::to_string(&h.0[..]).unwrap_or_else(|_| "[]".to_owned())
}

/// The bucket of a time on item.
pub(crate) fn bucket_of(ms: i64) -> usize {
    let ms = u64::try_from(ms).unwrap_or(0);
    TIME_BUCKETS_MS
        .iter()
        .position(|upper| ms < *upper)
        .unwrap_or(TIME_BUCKETS_MS.len())
}

#[derive(Debug, Clone, Default)]
struct ModelHour {
    decisions: i64,
    overrides: i64,
    approve: i64,
    correct: i64,
    escalate: i64,
    qa_decisions: i64,
    qa_overrides: i64,
}

/// An item version's outcome as its applied decisions moved it, for the versions whose
/// comparisons need it.
#[derive(Debug, Clone)]
struct Replay {
    proposal: Map<String, Value>,
    current: Option<Map<String, Value>>,
    /// The last applied decision on the version: user id, kind and verdict.
    last: Option<(String, DecisionKind, String)>,
}

/// What an applied decision left: its verdict, whether it overrode the model and which fields.
struct Verdict {
    verdict: String,
    overrode: bool,
    changed: Vec<String>,
}

impl Replay {
    fn new(proposal: Map<String, Value>, human_only: bool) -> Self {
        Replay {
            current: (!human_only).then(|| proposal.clone()),
            proposal,
            last: None,
        }
    }

    /// Applies one applied decision and says what it left.
    fn apply(&mut self, user_id: &str, decision: &Decision) -> Result<Verdict, GateError> {
        let verdict = match decision.kind {
            DecisionKind::Escalate => Verdict {
                verdict: "escalate".to_owned(),
                overrode: true,
                changed: Vec::new(),
            },
            DecisionKind::Approve | DecisionKind::Correct => {
                if decision.kind == DecisionKind::Correct {
                    let current = self.current.get_or_insert_with(Map::new);
                    for edit in &decision.corrections {
                        current.insert(edit.field.clone(), edit.to.clone());
                    }
                }
                let after = self.current.clone().unwrap_or_default();
                let changed: Vec<String> = after
                    .iter()
                    .filter(|(field, value)| self.proposal.get(*field) != Some(*value))
                    .map(|(field, _)| field.clone())
                    .collect();
                let bytes = crate::canon::value_to_vec(&Value::Object(after))?;
                Verdict {
                    verdict: countersign_core::sha256_hex(&bytes),
                    overrode: !changed.is_empty(),
                    changed,
                }
            }
        };
        self.last = Some((user_id.to_owned(), decision.kind, verdict.verdict.clone()));
        Ok(verdict)
    }
}

fn proposal_of(body: &str) -> Result<Map<String, Value>, GateError> {
    let output: Value = serde_json::from_str(body)
        .map_err(|e| GateError::internal(format!("stored output: {e}")))?;
    Ok(output
        .get("proposal")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default())
}

fn kind_str(kind: DecisionKind) -> &'static str {
    kind.as_str()
}

/// `(item_id, version)` of a decision on a version.
type VersionKey = (String, i64);

impl Gate {
    /// Folds everything logged so far into the supervision tables: QA items for sampled
    /// releases, then decisions. Returns the log size the statistics now cover.
    pub async fn fold_supervision(&self) -> Result<u64, GateError> {
        let _folding = self.supervision.fold.lock().await;
        loop {
            let sampled = self.fold_samples().await?;
            let (folded, done) = self.fold_decisions().await?;
            if done && sampled {
                return Ok(folded);
            }
        }
    }

    /// Turns the next sampled `auto` releases into QA items; true once none are left.
    async fn fold_samples(&self) -> Result<bool, GateError> {
        let mut tx = self.db.begin_read().await?;
        let size = self.log.size(&mut tx).await?;
        let start = stored_position(&mut tx, "qa_samples").await?;
        if to_u64(start) >= size {
            return Ok(true);
        }
        let from = start.max(self.supervision.scanned().0);
        let sampled: Vec<(i64, String)> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT release_seq, output_id FROM releases WHERE release_seq >= $1 AND release_seq < $2 AND qa_sampled = 1 ORDER BY release_seq LIMIT $3")
                .bind(from)
                .bind(to_i64(size))
                .bind(SAMPLE_BATCH)
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        drop(tx);
        let full = i64::try_from(sampled.len()).unwrap_or(0) == SAMPLE_BATCH;
        let end = match sampled.last() {
            Some((seq, _)) if full => seq + 1,
            _ => to_i64(size),
        };
        if sampled.is_empty() {
            self.supervision.note_scanned(Some(end), None);
            if end - start < UNSAVED_STRETCH {
                return Ok(true);
            }
        }
        let mut wtx = WriteTx::begin(&self.db).await?;
        if !move_position(&mut wtx.tx, "qa_samples", start, end).await? {
            // Another gate instance took this stretch.
            return Ok(false);
        }
        for (release_seq, output_id) in &sampled {
            self.queue_sample(&mut wtx, *release_seq, output_id).await?;
        }
        wtx.commit(&self.log).await?;
        self.supervision.note_scanned(Some(end), None);
        if !sampled.is_empty() {
            metrics::counter!("countersign_qa_items_total", "origin" => "sample")
                .increment(sampled.len() as u64);
        }
        Ok(!full)
    }

    /// Folds the next batch of decision entries. Returns the log size folded through and
    /// whether nothing is left.
    async fn fold_decisions(&self) -> Result<(u64, bool), GateError> {
        let mut tx = self.db.begin_read().await?;
        let size = self.log.size(&mut tx).await?;
        let start = stored_position(&mut tx, "decisions").await?;
        if to_u64(start) >= size {
            return Ok((to_u64(start), true));
        }
        let from = start.max(self.supervision.scanned().1);
        let rows: Vec<(i64, Vec<u8>)> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT idx, entry FROM log_entries WHERE idx >= $1 AND idx < $2 AND kind IN ('decided', 'conflict', 'rejected') ORDER BY idx LIMIT $3")
                .bind(from)
                .bind(to_i64(size))
                .bind(FOLD_BATCH)
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        let full = i64::try_from(rows.len()).unwrap_or(0) == FOLD_BATCH;
        let end = match rows.last() {
            Some((idx, _)) if full => idx + 1,
            _ => to_i64(size),
        };
        if rows.is_empty() {
            self.supervision.note_scanned(None, Some(end));
            if end - start < UNSAVED_STRETCH {
                return Ok((to_u64(end), true));
            }
        }
        // Parsing a batch of entries and their signed decisions takes milliseconds of CPU: on
        // the blocking pool, so that it never holds up a request's task on the runtime.
        let logged = tokio::task::spawn_blocking(move || {
            let mut logged = Vec::with_capacity(rows.len());
            for (_, bytes) in &rows {
                let entry: LoggedDecision = serde_json::from_slice(bytes)
                    .map_err(|e| GateError::internal(format!("logged decision entry: {e}")))?;
                let decision = signed_decision(&entry.data.jws)?;
                logged.push((entry, decision));
            }
            Ok::<_, GateError>(logged)
        })
        .await
        .map_err(|e| GateError::internal(format!("folding decisions: {e}")))??;
        let folded = self.fold_batch(&mut tx, from, &logged).await?;
        drop(tx);

        let mut wtx = self.db.begin_write_unlogged().await?;
        if !move_position(&mut wtx, "decisions", start, end).await? {
            return Ok((to_u64(start), false));
        }
        folded.write(&mut wtx).await?;
        wtx.commit().await?;
        self.supervision.note_scanned(None, Some(end));
        folded.record_metrics();
        self.check_breakers(&folded.models_touched).await?;
        Ok((to_u64(end), !full))
    }

    /// Computes the facts and sums of one batch (`logged`, all at or after log index `start`).
    async fn fold_batch(
        &self,
        tx: &mut Tx,
        start: i64,
        logged: &[(LoggedDecision, Decision)],
    ) -> Result<Folded, GateError> {
        let mut folded = Folded::default();
        if logged.is_empty() {
            return Ok(folded);
        }
        let items: Vec<String> = logged
            .iter()
            .map(|(_, d)| d.item_id.to_string())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let leases: Vec<String> = logged
            .iter()
            .map(|(_, d)| d.lease_id.to_string())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let devices: Vec<String> = logged
            .iter()
            .map(|(e, _)| e.data.device_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let users: Vec<String> = logged
            .iter()
            .map(|(e, _)| e.data.user_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();

        enum Read {
            Versions,
            Leases,
            Previous,
            Earlier,
            Qa,
        }
        let mut reads = Vec::new();
        let mut selects = Vec::new();
        for chunk in items.chunks(CHUNK) {
            let list = || chunk.iter().map(String::as_str);
            reads.push(Read::Versions);
            selects.push(
                Select::new("SELECT v.item_id, v.version, v.routing, v.created_at, v.output_id, o.model_name, o.model_version, i.queue FROM item_versions v JOIN outputs o ON o.output_id = v.output_id JOIN items i ON i.item_id = v.item_id WHERE v.item_id IN")
                    .in_list(list()),
            );
            reads.push(Read::Earlier);
            selects.push(
                Select::new("SELECT item_id, item_version FROM decision_facts WHERE outcome = 'applied' AND item_id IN")
                    .in_list(list()),
            );
            reads.push(Read::Qa);
            selects.push(
                Select::new("SELECT item_id, decision_id FROM qa_items WHERE origin = 're_review' AND item_id IN")
                    .in_list(list()),
            );
        }
        for chunk in leases.chunks(CHUNK) {
            reads.push(Read::Leases);
            selects.push(
                Select::new("SELECT lease_id, leased_at FROM leases WHERE lease_id IN")
                    .in_list(chunk.iter().map(String::as_str)),
            );
        }
        for chunk in devices.chunks(CHUNK) {
            reads.push(Read::Previous);
            // One index probe per device for its latest folded decision (a filter on all of the
            // device's facts would read each of them on every batch).
            selects.push(
                Select::new("SELECT d.device_id, (SELECT f.decided_at FROM decision_facts f WHERE f.device_id = d.device_id ORDER BY f.device_seq DESC LIMIT 1) AS decided_at FROM devices d WHERE d.device_id IN")
                    .in_list(chunk.iter().map(String::as_str)),
            );
        }
        let mut versions: HashMap<VersionKey, VersionInfo> = HashMap::new();
        let mut lease_start: HashMap<String, i64> = HashMap::new();
        let mut previous: HashMap<String, i64> = HashMap::new();
        let mut earlier_applied: HashSet<VersionKey> = HashSet::new();
        let mut re_reviews: HashMap<String, String> = HashMap::new();
        for (read, set) in reads.into_iter().zip(fetch_sets(tx, selects).await?) {
            match read {
                Read::Versions => {
                    for v in set.decode::<VersionInfo>()? {
                        versions.insert((v.item_id.clone(), v.version), v);
                    }
                }
                Read::Leases => lease_start.extend(set.decode::<(String, i64)>()?),
                Read::Previous => previous.extend(
                    set.decode::<(String, Option<i64>)>()?
                        .into_iter()
                        .filter_map(|(device, at)| at.map(|at| (device, at))),
                ),
                Read::Earlier => earlier_applied.extend(set.decode::<(String, i64)>()?),
                Read::Qa => re_reviews.extend(set.decode::<(String, String)>()?),
            }
        }
        let mut routings: HashMap<VersionKey, RoutingInfo> = HashMap::new();
        for (key, v) in &versions {
            let routing: RoutingInfo = serde_json::from_str(&v.routing)
                .map_err(|e| GateError::internal(format!("stored routing: {e}")))?;
            routings.insert(key.clone(), routing);
        }

        // Versions whose outcome must be followed decision by decision.
        let mut applied_in_batch: HashMap<VersionKey, usize> = HashMap::new();
        for (entry, d) in logged {
            if matches!(entry.data.result, DecisionOutcome::Applied) {
                *applied_in_batch
                    .entry((d.item_id.to_string(), i64::from(d.item_version)))
                    .or_default() += 1;
            }
        }
        let replayed: HashSet<VersionKey> = applied_in_batch
            .iter()
            .filter(|(key, count)| {
                let routing = routings.get(*key);
                **count > 1
                    || earlier_applied.contains(*key)
                    || routing.is_some_and(|r| r.lane == "human_only" || r.approvals_required > 1)
                    || versions.get(*key).is_some_and(|v| v.queue == "qa")
            })
            .map(|(key, _)| key.clone())
            .collect();
        let mut replays = self
            .load_replays(tx, start, &replayed, &versions, &routings)
            .await?;

        let day_keys: Vec<(String, i64)> = logged
            .iter()
            .map(|(e, _)| {
                (
                    e.data.user_id.clone(),
                    e.at.timestamp_millis().div_euclid(DAY_MS) * DAY_MS,
                )
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut days = self.load_reviewer_days(tx, &users, &day_keys).await?;

        for (entry, d) in logged {
            let key: VersionKey = (d.item_id.to_string(), i64::from(d.item_version));
            let info = versions.get(&key);
            let routing = routings.get(&key);
            let logged_at = entry.at.timestamp_millis();
            let leased = lease_start.get(&d.lease_id.to_string()).copied();
            let decided_at = d
                .decided_at
                .timestamp_millis()
                .max(leased.unwrap_or(i64::MIN))
                .min(logged_at);
            let device = entry.data.device_id.clone();
            let time_on_item = leased.map(|leased| {
                let from = previous
                    .get(&device)
                    .map_or(leased, |prev| leased.max(*prev));
                (decided_at - from).max(0)
            });
            previous.insert(device.clone(), decided_at);
            let due_at = match (info, routing) {
                (Some(v), Some(r)) => v
                    .created_at
                    .saturating_add(r.sla_seconds.saturating_mul(1000)),
                _ => logged_at,
            };
            let (outcome, outcome_code) = match &entry.data.result {
                DecisionOutcome::Applied => ("applied", None),
                DecisionOutcome::Conflict { reason } => (
                    "conflict",
                    serde_json::to_value(reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned)),
                ),
                DecisionOutcome::Rejected { code, .. } => ("rejected", Some(code.clone())),
            };
            let applied = outcome == "applied";
            let queue = info.map_or_else(|| "review".to_owned(), |v| v.queue.clone());
            let mut fact = Fact {
                log_index: to_i64(entry.index),
                decision_id: entry.data.decision_id.to_string(),
                user_id: entry.data.user_id.clone(),
                device_id: device,
                device_seq: to_i64(entry.data.device_seq),
                item_id: key.0.clone(),
                item_version: key.1,
                queue: queue.clone(),
                kind: kind_str(d.kind),
                outcome,
                outcome_code,
                model_name: info.map(|v| v.model_name.clone()).unwrap_or_default(),
                model_version: info.map(|v| v.model_version.clone()).unwrap_or_default(),
                lane: routing.map(|r| r.lane.clone()).unwrap_or_default(),
                rule: routing.map(|r| r.rule.clone()).unwrap_or_default(),
                policy_version: routing.map_or(0, |r| r.policy_version),
                logged_at,
                decided_at,
                time_on_item_ms: time_on_item,
                due_at,
                sla_breached: decided_at > due_at,
                overrode: false,
                verdict: None,
                changed_fields: Vec::new(),
            };
            let day = days
                .entry((fact.user_id.clone(), logged_at.div_euclid(DAY_MS) * DAY_MS))
                .or_default();
            day.decisions += 1;
            match outcome {
                "conflict" => day.conflict += 1,
                "rejected" => day.rejected += 1,
                _ => {}
            }
            if applied {
                let mut pair: Option<(String, bool)> = None;
                if let Some(replay) = replays.get_mut(&key) {
                    let before = replay.last.clone();
                    let verdict = replay.apply(&fact.user_id, d)?;
                    if routing.is_some_and(|r| r.approvals_required > 1)
                        && let Some((other, kind, earlier)) = before
                        && other != fact.user_id
                        && kind != DecisionKind::Escalate
                    {
                        pair = Some((other, earlier == verdict.verdict));
                    }
                    fact.overrode = verdict.overrode;
                    fact.changed_fields = verdict.changed;
                    fact.verdict = Some(verdict.verdict);
                } else {
                    match d.kind {
                        DecisionKind::Approve => {}
                        DecisionKind::Escalate => fact.overrode = true,
                        DecisionKind::Correct => {
                            fact.overrode = true;
                            fact.changed_fields =
                                d.corrections.iter().map(|c| c.field.clone()).collect();
                        }
                    }
                }
                let day = days
                    .entry((fact.user_id.clone(), logged_at.div_euclid(DAY_MS) * DAY_MS))
                    .or_default();
                match d.kind {
                    DecisionKind::Approve => day.approve += 1,
                    DecisionKind::Correct => day.correct += 1,
                    DecisionKind::Escalate => day.escalate += 1,
                }
                day.push_applied(d.kind == DecisionKind::Approve);
                if let Some(ms) = time_on_item {
                    day.timed += 1;
                    day.time_on_item_ms += ms;
                    day.time_histogram.0[bucket_of(ms)] += 1;
                    if d.kind == DecisionKind::Approve {
                        day.approve_histogram.0[bucket_of(ms)] += 1;
                    }
                }
                if fact.sla_breached {
                    day.sla_breaches += 1;
                }
                let day_start = logged_at.div_euclid(DAY_MS) * DAY_MS;
                if let Some((other, agreed)) = pair {
                    let own = days.entry((fact.user_id.clone(), day_start)).or_default();
                    own.four_eyes_pairs += 1;
                    own.four_eyes_agreed += i64::from(agreed);
                    let theirs = folded.pairs_of(&mut days, other, day_start);
                    theirs.four_eyes_pairs += 1;
                    theirs.four_eyes_agreed += i64::from(agreed);
                }
                if let Some(original) = re_reviews.get(&fact.item_id)
                    && let Some((other, verdict, index)) = self.verdict_of(tx, original).await?
                {
                    let agreed = fact.verdict.as_deref() == Some(verdict.as_str());
                    let own = days.entry((fact.user_id.clone(), day_start)).or_default();
                    own.qa_pairs += 1;
                    own.qa_agreed += i64::from(agreed);
                    let theirs = folded.pairs_of(&mut days, other, day_start);
                    theirs.qa_pairs += 1;
                    theirs.qa_agreed += i64::from(agreed);
                    folded.verdicts.push((index, verdict));
                }
                if !fact.model_name.is_empty() {
                    let model = (fact.model_name.clone(), fact.model_version.clone());
                    let hour = folded
                        .model_hours
                        .entry((
                            model.0.clone(),
                            model.1.clone(),
                            logged_at.div_euclid(HOUR_MS) * HOUR_MS,
                        ))
                        .or_default();
                    hour.decisions += 1;
                    hour.overrides += i64::from(fact.overrode);
                    match d.kind {
                        DecisionKind::Approve => hour.approve += 1,
                        DecisionKind::Correct => hour.correct += 1,
                        DecisionKind::Escalate => hour.escalate += 1,
                    }
                    if queue == "qa" {
                        hour.qa_decisions += 1;
                        hour.qa_overrides += i64::from(fact.overrode);
                    }
                    for field in &fact.changed_fields {
                        *folded
                            .field_days
                            .entry((
                                model.0.clone(),
                                model.1.clone(),
                                logged_at.div_euclid(DAY_MS) * DAY_MS,
                                field.clone(),
                            ))
                            .or_default() += 1;
                    }
                    if let Some(v) = info {
                        folded.latencies.push((
                            fact.lane.clone(),
                            (decided_at - v.created_at).max(0),
                            fact.sla_breached,
                        ));
                    }
                    folded.models_touched.insert(model);
                }
            }
            folded.facts.push(fact);
        }
        folded.days = days;
        Ok(folded)
    }

    /// The outcome of each version in `keys` as its applied decisions before log index `start`
    /// left it.
    async fn load_replays(
        &self,
        tx: &mut Tx,
        start: i64,
        keys: &HashSet<VersionKey>,
        versions: &HashMap<VersionKey, VersionInfo>,
        routings: &HashMap<VersionKey, RoutingInfo>,
    ) -> Result<HashMap<VersionKey, Replay>, GateError> {
        let mut replays = HashMap::new();
        if keys.is_empty() {
            return Ok(replays);
        }
        let outputs: Vec<String> = keys
            .iter()
            .filter_map(|k| versions.get(k).map(|v| v.output_id.clone()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let items: Vec<String> = keys
            .iter()
            .map(|(item, _)| item.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut bodies: HashMap<String, String> = HashMap::new();
        for chunk in outputs.chunks(CHUNK) {
            let rows: Vec<(String, String)> = on_tx!(tx, conn => {
                let mut q = QueryBuilder::new("SELECT output_id, body FROM outputs WHERE output_id IN");
                crate::db::push_in_list(&mut q, chunk.iter().map(String::as_str));
                q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
            });
            bodies.extend(rows);
        }
        let mut earlier: Vec<(String, i64, String, Vec<u8>, i64)> = Vec::new();
        for chunk in items.chunks(CHUNK) {
            let rows: Vec<(String, i64, String, Vec<u8>, i64)> = on_tx!(tx, conn => {
                let mut q = QueryBuilder::new("SELECT d.item_id, d.item_version, d.user_id, e.entry, d.log_index FROM decisions d JOIN log_entries e ON e.idx = d.log_index WHERE d.outcome = 'applied' AND d.log_index < ");
                q.push_bind(start).push(" AND d.item_id IN");
                crate::db::push_in_list(&mut q, chunk.iter().map(String::as_str));
                q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
            });
            earlier.extend(rows);
        }
        earlier.sort_by_key(|row| row.4);
        for key in keys {
            let (Some(v), Some(r)) = (versions.get(key), routings.get(key)) else {
                continue;
            };
            let body = bodies
                .get(&v.output_id)
                .ok_or_else(|| GateError::internal("a decided version's output is missing"))?;
            replays.insert(
                key.clone(),
                Replay::new(proposal_of(body)?, r.lane == "human_only"),
            );
        }
        for (item_id, version, user_id, entry, _) in earlier {
            if let Some(replay) = replays.get_mut(&(item_id, version)) {
                replay.apply(&user_id, &signed_decision(&logged_jws(&entry)?)?)?;
            }
        }
        Ok(replays)
    }

    /// The reviewer, verdict and log index of an applied decision, by replaying its item
    /// version up to it; `None` if it was not applied.
    pub(crate) async fn verdict_of(
        &self,
        tx: &mut Tx,
        decision_id: &str,
    ) -> Result<Option<(String, String, i64)>, GateError> {
        let row: Option<(String, i64, i64, String)> = on_tx!(tx, conn => {
            sqlx::query_as("SELECT item_id, item_version, log_index, outcome FROM decisions WHERE decision_id = $1")
                .bind(decision_id)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let Some((item_id, version, index, outcome)) = row else {
            return Ok(None);
        };
        if outcome != "applied" {
            return Ok(None);
        }
        let version_row: Option<(String, String)> = on_tx!(tx, conn => {
            sqlx::query_as("SELECT o.body, v.routing FROM item_versions v JOIN outputs o ON o.output_id = v.output_id WHERE v.item_id = $1 AND v.version = $2")
                .bind(&item_id)
                .bind(version)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let Some((body, routing)) = version_row else {
            return Ok(None);
        };
        let routing: RoutingInfo = serde_json::from_str(&routing)
            .map_err(|e| GateError::internal(format!("stored routing: {e}")))?;
        let decisions: Vec<(String, Vec<u8>, i64)> = on_tx!(tx, conn => {
            sqlx::query_as("SELECT d.user_id, e.entry, d.log_index FROM decisions d JOIN log_entries e ON e.idx = d.log_index WHERE d.item_id = $1 AND d.item_version = $2 AND d.outcome = 'applied' AND d.log_index <= $3 ORDER BY d.log_index")
                .bind(&item_id)
                .bind(version)
                .bind(index)
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        let mut replay = Replay::new(proposal_of(&body)?, routing.lane == "human_only");
        let mut last = None;
        for (user_id, entry, log_index) in decisions {
            let verdict = replay.apply(&user_id, &signed_decision(&logged_jws(&entry)?)?)?;
            last = Some((user_id, verdict.verdict, log_index));
        }
        Ok(last.filter(|(_, _, i)| *i == index))
    }

    async fn load_reviewer_days(
        &self,
        tx: &mut Tx,
        users: &[String],
        keys: &[(String, i64)],
    ) -> Result<HashMap<(String, i64), ReviewerDay>, GateError> {
        let wanted: HashSet<&(String, i64)> = keys.iter().collect();
        let (Some(first), Some(last)) = (
            keys.iter().map(|k| k.1).min(),
            keys.iter().map(|k| k.1).max(),
        ) else {
            return Ok(HashMap::new());
        };
        let mut days = HashMap::new();
        for chunk in users.chunks(CHUNK) {
            let sql_head = format!(
                "SELECT user_id, day, {REVIEWER_DAY_COLUMNS} FROM reviewer_days WHERE day >= "
            );
            let rows: Vec<ReviewerDayFlat> = on_tx!(tx, conn => {
                let mut q = QueryBuilder::new(sql_head.as_str());
                q.push_bind(first).push(" AND day <= ").push_bind(last).push(" AND user_id IN");
                crate::db::push_in_list(&mut q, chunk.iter().map(String::as_str));
                q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
            });
            for row in rows {
                let (user, day, stats) = row.split();
                if wanted.contains(&(user.clone(), day)) {
                    days.insert((user, day), stats);
                }
            }
        }
        Ok(days)
    }

    /// Trips the breakers of the model versions whose window now exceeds the threshold.
    async fn check_breakers(&self, models: &HashSet<(String, String)>) -> Result<(), GateError> {
        let breaker = self.active_policy().and_then(|p| p.circuit_breaker());
        for (name, version) in models {
            let mut tx = self.db.read_statement().await?;
            let size = breaker.map_or(DEFAULT_WINDOW, |b| b.window);
            let window = self.window(&mut tx, name, version, size).await?;
            drop(tx);
            // The gauge is the rate over the breaker's window (the last 200 decisions without
            // one): what the breaker compares with its threshold.
            metrics::gauge!("countersign_model_override_rate", "model" => format!("{name}@{version}"))
                .set(window.rate().unwrap_or(0.0));
            let Some(breaker) = breaker else {
                continue;
            };
            if window.tripped {
                continue;
            }
            let exceeded = window.decisions >= i64::from(breaker.min_decisions)
                && window.rate().is_some_and(|r| r > breaker.threshold);
            if exceeded {
                self.trip(name, version, &window, breaker).await?;
            }
        }
        Ok(())
    }

    /// The model version's breaker state and its last `size` applied decisions after the last
    /// reset.
    pub(crate) async fn window(
        &self,
        tx: &mut Tx,
        name: &str,
        version: &str,
        size: u32,
    ) -> Result<Window, GateError> {
        let state: Option<(String, i64)> = on_tx!(tx, conn => {
            sqlx::query_as("SELECT state, counts_after FROM circuit_breakers WHERE model_name = $1 AND model_version = $2")
                .bind(name)
                .bind(version)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let (tripped, after) = match state {
            Some((state, after)) => (state == "tripped", after),
            None => (false, -1),
        };
        let (decisions, overrides, last): (i64, Option<i64>, Option<i64>) = on_tx!(tx, conn => {
            sqlx::query_as("SELECT COUNT(*), CAST(SUM(w.overrode) AS BIGINT), MAX(w.log_index) FROM (SELECT overrode, log_index FROM decision_facts WHERE model_name = $1 AND model_version = $2 AND outcome = 'applied' AND log_index > $3 ORDER BY log_index DESC LIMIT $4) w")
                .bind(name)
                .bind(version)
                .bind(after)
                .bind(i64::from(size))
                .fetch_one(conn)
                .await
                .map_err(DbError::from)?
        });
        Ok(Window {
            tripped,
            decisions,
            overrides: overrides.unwrap_or(0),
            through: last,
        })
    }

    async fn trip(
        &self,
        name: &str,
        version: &str,
        window: &Window,
        breaker: countersign_policy::CircuitBreaker,
    ) -> Result<(), GateError> {
        let model = format!("{name}@{version}");
        let mut wtx = WriteTx::begin(&self.db).await?;
        let state: Option<String> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_scalar("SELECT state FROM circuit_breakers WHERE model_name = $1 AND model_version = $2")
                .bind(name)
                .bind(version)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        if state.as_deref() == Some("tripped") {
            return Ok(());
        }
        let policy_version = self.active_policy().map(|p| p.version());
        let index = wtx
            .append(
                &self.log,
                AuditEventKind::CircuitTripped,
                "gate",
                None,
                json!({
                    "model": {"name": name, "version": version},
                    "window": breaker.window,
                    "min_decisions": breaker.min_decisions,
                    "threshold": breaker.threshold,
                    "decisions": window.decisions,
                    "overrides": window.overrides,
                    "override_rate": window.rate(),
                    "through_index": window.through,
                    "policy_version": policy_version,
                }),
            )
            .await?;
        let now = now_ms();
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("INSERT INTO circuit_breakers (model_name, model_version, state, counts_after, tripped_at, tripped_index, window_decisions, window_overrides) VALUES ($1, $2, 'tripped', -1, $3, $4, $5, $6) \
                         ON CONFLICT (model_name, model_version) DO UPDATE SET state = 'tripped', tripped_at = excluded.tripped_at, tripped_index = excluded.tripped_index, window_decisions = excluded.window_decisions, window_overrides = excluded.window_overrides")
                .bind(name)
                .bind(version)
                .bind(now)
                .bind(to_i64(index))
                .bind(window.decisions)
                .bind(window.overrides)
                .execute(conn)
                .await
                .map_err(DbError::from)?;
        });
        wtx.commit(&self.log).await?;
        tracing::warn!(%model, rate = window.rate(), "circuit breaker tripped: its auto outputs go to review");
        metrics::counter!("countersign_circuit_trips_total", "model" => model).increment(1);
        self.reload_tripped().await
    }

    /// A supervisor resets a tripped breaker: the model version is routed by the policy again,
    /// and only decisions logged from now on count towards the next trip.
    pub async fn reset_breaker(
        &self,
        principal: &super::Principal,
        model: &str,
        reason: &str,
    ) -> Result<crate::api::supervision::BreakerState, GateError> {
        let supervisor = principal.supervisor()?;
        let reason = super::qa::check_reason(reason)?;
        let (name, version) = split_model(model)?;
        let mut wtx = WriteTx::begin(&self.db).await?;
        let state: Option<(String, Option<i64>)> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_as("SELECT state, tripped_index FROM circuit_breakers WHERE model_name = $1 AND model_version = $2")
                .bind(name)
                .bind(version)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let tripped_index = match state {
            Some((state, index)) if state == "tripped" => index,
            _ => {
                return Err(GateError::conflict(
                    "breaker_not_tripped",
                    format!("the circuit breaker of {model} is not tripped"),
                ));
            }
        };
        let index = wtx
            .append(
                &self.log,
                AuditEventKind::CircuitReset,
                &supervisor.name,
                None,
                json!({
                    "model": {"name": name, "version": version},
                    "reason": reason,
                    "tripped_index": tripped_index,
                }),
            )
            .await?;
        let now = now_ms();
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("UPDATE circuit_breakers SET state = 'closed', counts_after = $1, reset_at = $2, reset_index = $1, reset_by = $3, reset_reason = $4 WHERE model_name = $5 AND model_version = $6")
                .bind(to_i64(index))
                .bind(now)
                .bind(&supervisor.name)
                .bind(reason)
                .bind(name)
                .bind(version)
                .execute(conn)
                .await
                .map_err(DbError::from)?;
        });
        wtx.commit(&self.log).await?;
        self.reload_tripped().await?;
        let mut tx = self.db.read_statement().await?;
        Ok(self
            .breaker_states(&mut tx)
            .await?
            .remove(&(name.to_owned(), version.to_owned()))
            .unwrap_or_else(closed_breaker))
    }

    /// Re-reads which breakers are tripped (another gate instance may have tripped or reset one).
    pub(crate) async fn reload_tripped(&self) -> Result<(), GateError> {
        let mut tx = self.db.read_statement().await?;
        let rows: Vec<(String, String)> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT model_name, model_version FROM circuit_breakers WHERE state = 'tripped'")
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        let tripped: HashSet<String> = rows
            .into_iter()
            .map(|(name, version)| format!("{name}@{version}"))
            .collect();
        for model in &tripped {
            metrics::gauge!("countersign_circuit_breaker_tripped", "model" => model.clone())
                .set(1.0);
        }
        self.supervision.set_tripped(tripped);
        Ok(())
    }

    pub(crate) async fn breaker_states(
        &self,
        tx: &mut Tx,
    ) -> Result<HashMap<(String, String), crate::api::supervision::BreakerState>, GateError> {
        type Row = (
            String,
            String,
            String,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = on_tx!(tx, conn => {
            sqlx::query_as("SELECT model_name, model_version, state, tripped_at, tripped_index, reset_at, reset_index, reset_by, reset_reason FROM circuit_breakers")
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        Ok(rows
            .into_iter()
            .map(
                |(
                    name,
                    version,
                    state,
                    tripped_at,
                    tripped_index,
                    reset_at,
                    reset_index,
                    reset_by,
                    reset_reason,
                )| {
                    (
                        (name, version),
                        crate::api::supervision::BreakerState {
                            state,
                            tripped_at: tripped_at.map(ms_to_time),
                            tripped_index: tripped_index.map(to_u64),
                            reset_at: reset_at.map(ms_to_time),
                            reset_index: reset_index.map(to_u64),
                            reset_by,
                            reset_reason,
                        },
                    )
                },
            )
            .collect())
    }

    /// Queue depth and overdue items per queue, lane and status, for `/metrics`.
    pub async fn refresh_gauges(&self) -> Result<(), GateError> {
        let mut tx = self.db.read_statement().await?;
        let now = now_ms();
        let rows: Vec<(String, String, String, i64, i64)> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT queue, lane, status, COUNT(*), CAST(SUM(CASE WHEN due_at < $1 THEN 1 ELSE 0 END) AS BIGINT) FROM items WHERE queue IN ('review', 'qa') AND status IN ('pending', 'escalated') GROUP BY queue, lane, status")
                .bind(now)
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        for queue in ["review", "qa"] {
            for lane in ["review", "human_only"] {
                for status in ["pending", "escalated"] {
                    let found = rows
                        .iter()
                        .find(|r| r.0 == queue && r.1 == lane && r.2 == status);
                    let (depth, overdue) = found.map_or((0, 0), |r| (r.3, r.4));
                    let labels = [("queue", queue), ("lane", lane), ("status", status)];
                    #[allow(clippy::cast_precision_loss)]
                    {
                        metrics::gauge!("countersign_queue_depth", &labels).set(depth as f64);
                        metrics::gauge!("countersign_items_overdue", &labels).set(overdue as f64);
                    }
                }
            }
        }
        Ok(())
    }
}

fn closed_breaker() -> crate::api::supervision::BreakerState {
    crate::api::supervision::BreakerState {
        state: "closed".to_owned(),
        tripped_at: None,
        tripped_index: None,
        reset_at: None,
        reset_index: None,
        reset_by: None,
        reset_reason: None,
    }
}

pub(crate) fn default_breaker() -> crate::api::supervision::BreakerState {
    closed_breaker()
}

/// How far the fold got, as stored under `key` in `supervision_state`.
async fn stored_position(tx: &mut Tx, key: &str) -> Result<i64, GateError> {
    let value: i64 = on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT value FROM supervision_state WHERE key = $1")
            .bind(key)
            .fetch_one(conn)
            .await
            .map_err(DbError::from)?
    });
    Ok(value)
}

/// Moves the stored position `key` from `from` to `to` if nobody moved it meanwhile (another
/// gate instance folding the same stretch); false if someone did.
async fn move_position(tx: &mut Tx, key: &str, from: i64, to: i64) -> Result<bool, GateError> {
    let moved = on_tx!(tx, conn => {
        sqlx::query("UPDATE supervision_state SET value = $1 WHERE key = $2 AND value = $3")
            .bind(to)
            .bind(key)
            .bind(from)
            .execute(conn)
            .await
            .map_err(DbError::from)?
            .rows_affected()
    });
    Ok(moved == 1)
}

/// `name@version` into its parts, as ingest accepts them.
pub(crate) fn split_model(model: &str) -> Result<(&str, &str), GateError> {
    model
        .rsplit_once('@')
        .filter(|(name, version)| !name.is_empty() && !version.is_empty() && model.len() <= 257)
        .ok_or_else(|| {
            GateError::bad_request(
                "invalid_model",
                format!("`{model}` is not a model id; write name@version"),
            )
        })
}

/// A model version's recent applied decisions, as the circuit breaker sees them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub tripped: bool,
    pub decisions: i64,
    pub overrides: i64,
    pub through: Option<i64>,
}

impl Window {
    pub fn rate(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        (self.decisions > 0).then(|| self.overrides as f64 / self.decisions as f64)
    }
}

/// A `reviewer_days` row with its key.
#[derive(sqlx::FromRow)]
pub(crate) struct ReviewerDayFlat {
    pub user_id: String,
    pub day: i64,
    #[sqlx(flatten)]
    pub stats: ReviewerDay,
}

impl ReviewerDayFlat {
    pub(crate) fn split(self) -> (String, i64, ReviewerDay) {
        (self.user_id, self.day, self.stats)
    }
}

/// What one batch folds into: rows to insert and sums to add.
#[derive(Default)]
struct Folded {
    facts: Vec<Fact>,
    /// Whole new values of the reviewer days the batch read or made.
    days: HashMap<(String, i64), ReviewerDay>,
    /// Pairs counted for reviewers whose day the batch did not read: added to what is stored.
    pair_adds: HashMap<(String, i64), ReviewerDay>,
    model_hours: BTreeMap<(String, String, i64), ModelHour>,
    field_days: BTreeMap<(String, String, i64, String), i64>,
    /// Verdicts of re-reviewed decisions, computed when their QA decision came.
    verdicts: Vec<(i64, String)>,
    /// Lane, decision latency (ms from receipt to decision) and SLA breach per applied decision.
    latencies: Vec<(String, i64, bool)>,
    models_touched: HashSet<(String, String)>,
}

impl Folded {
    /// Where to count a pair for `user` on `day`: their day as the batch holds it, or (for a
    /// reviewer the batch did not read) an addition to the stored one.
    fn pairs_of<'a>(
        &'a mut self,
        days: &'a mut HashMap<(String, i64), ReviewerDay>,
        user: String,
        day: i64,
    ) -> &'a mut ReviewerDay {
        let key = (user, day);
        if days.contains_key(&key) {
            days.entry(key).or_default()
        } else {
            self.pair_adds.entry(key).or_default()
        }
    }

    async fn write(&self, tx: &mut Tx) -> Result<(), GateError> {
        for chunk in self.facts.chunks(100) {
            on_tx!(tx, conn => {
                let mut q = QueryBuilder::new("INSERT INTO decision_facts (log_index, decision_id, user_id, device_id, device_seq, item_id, item_version, queue, kind, outcome, outcome_code, model_name, model_version, lane, rule, policy_version, logged_at, decided_at, time_on_item_ms, due_at, sla_breached, overrode, verdict, changed_fields) ");
                q.push_values(chunk, |mut b, f| {
                    let changed = (!f.changed_fields.is_empty())
                        .then(|| serde_json::to_string(&f.changed_fields).unwrap_or_default());
                    b.push_bind(f.log_index).push_bind(f.decision_id.clone()).push_bind(f.user_id.clone())
                        .push_bind(f.device_id.clone()).push_bind(f.device_seq).push_bind(f.item_id.clone())
                        .push_bind(f.item_version).push_bind(f.queue.clone()).push_bind(f.kind)
                        .push_bind(f.outcome).push_bind(f.outcome_code.clone()).push_bind(f.model_name.clone())
                        .push_bind(f.model_version.clone()).push_bind(f.lane.clone()).push_bind(f.rule.clone())
                        .push_bind(f.policy_version).push_bind(f.logged_at).push_bind(f.decided_at)
                        .push_bind(f.time_on_item_ms).push_bind(f.due_at).push_bind(i64::from(f.sla_breached))
                        .push_bind(i64::from(f.overrode)).push_bind(f.verdict.clone()).push_bind(changed);
                });
                q.push(" ON CONFLICT (log_index) DO NOTHING");
                q.build().execute(conn).await.map_err(DbError::from)?;
            });
        }
        let days: Vec<(&(String, i64), &ReviewerDay)> = self.days.iter().collect();
        for chunk in days.chunks(100) {
            on_tx!(tx, conn => {
                let mut q = QueryBuilder::new(format!("INSERT INTO reviewer_days (user_id, day, {REVIEWER_DAY_COLUMNS}) "));
                q.push_values(chunk, |mut b, ((user, day), d)| {
                    b.push_bind(user.clone()).push_bind(*day).push_bind(d.decisions).push_bind(d.applied)
                        .push_bind(d.approve).push_bind(d.correct).push_bind(d.escalate).push_bind(d.conflict)
                        .push_bind(d.rejected).push_bind(d.timed).push_bind(d.time_on_item_ms)
                        .push_bind(d.sla_breaches).push_bind(d.four_eyes_pairs).push_bind(d.four_eyes_agreed)
                        .push_bind(d.qa_pairs).push_bind(d.qa_agreed).push_bind(d.run_head).push_bind(d.run_tail)
                        .push_bind(d.run_max).push_bind(histogram_text(&d.time_histogram))
                        .push_bind(histogram_text(&d.approve_histogram));
                });
                q.push(" ON CONFLICT (user_id, day) DO UPDATE SET ");
                let columns: Vec<String> = REVIEWER_DAY_COLUMNS
                    .split(", ")
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                q.push(columns.join(", "));
                q.build().execute(conn).await.map_err(DbError::from)?;
            });
        }
        let adds: Vec<(&(String, i64), &ReviewerDay)> = self.pair_adds.iter().collect();
        for chunk in adds.chunks(100) {
            on_tx!(tx, conn => {
                let mut q = QueryBuilder::new(format!("INSERT INTO reviewer_days (user_id, day, {REVIEWER_DAY_COLUMNS}) "));
                let empty = histogram_text(&Histogram::default());
                q.push_values(chunk, |mut b, ((user, day), d)| {
                    b.push_bind(user.clone()).push_bind(*day);
                    for _ in 0..10 {
                        b.push_bind(0_i64);
                    }
                    b.push_bind(d.four_eyes_pairs).push_bind(d.four_eyes_agreed)
                        .push_bind(d.qa_pairs).push_bind(d.qa_agreed);
                    for _ in 0..3 {
                        b.push_bind(0_i64);
                    }
                    b.push_bind(empty.clone()).push_bind(empty.clone());
                });
                q.push(" ON CONFLICT (user_id, day) DO UPDATE SET four_eyes_pairs = reviewer_days.four_eyes_pairs + excluded.four_eyes_pairs, four_eyes_agreed = reviewer_days.four_eyes_agreed + excluded.four_eyes_agreed, qa_pairs = reviewer_days.qa_pairs + excluded.qa_pairs, qa_agreed = reviewer_days.qa_agreed + excluded.qa_agreed");
                q.build().execute(conn).await.map_err(DbError::from)?;
            });
        }
        let hours: Vec<_> = self.model_hours.iter().collect();
        for chunk in hours.chunks(100) {
            on_tx!(tx, conn => {
                let mut q = QueryBuilder::new("INSERT INTO model_hours (model_name, model_version, hour, decisions, overrides, approve, correct, escalate, qa_decisions, qa_overrides) ");
                q.push_values(chunk, |mut b, ((name, version, hour), h)| {
                    b.push_bind(name.clone()).push_bind(version.clone()).push_bind(*hour)
                        .push_bind(h.decisions).push_bind(h.overrides).push_bind(h.approve)
                        .push_bind(h.correct).push_bind(h.escalate).push_bind(h.qa_decisions)
                        .push_bind(h.qa_overrides);
                });
                q.push(" ON CONFLICT (model_name, model_version, hour) DO UPDATE SET decisions = model_hours.decisions + excluded.decisions, overrides = model_hours.overrides + excluded.overrides, approve = model_hours.approve + excluded.approve, correct = model_hours.correct + excluded.correct, escalate = model_hours.escalate + excluded.escalate, qa_decisions = model_hours.qa_decisions + excluded.qa_decisions, qa_overrides = model_hours.qa_overrides + excluded.qa_overrides");
                q.build().execute(conn).await.map_err(DbError::from)?;
            });
        }
        let fields: Vec<_> = self.field_days.iter().collect();
        for chunk in fields.chunks(100) {
            on_tx!(tx, conn => {
                let mut q = QueryBuilder::new("INSERT INTO model_field_days (model_name, model_version, day, field, changes) ");
                q.push_values(chunk, |mut b, ((name, version, day, field), n)| {
                    b.push_bind(name.clone()).push_bind(version.clone()).push_bind(*day)
                        .push_bind(field.clone()).push_bind(**n);
                });
                q.push(" ON CONFLICT (model_name, model_version, day, field) DO UPDATE SET changes = model_field_days.changes + excluded.changes");
                q.build().execute(conn).await.map_err(DbError::from)?;
            });
        }
        for (index, verdict) in &self.verdicts {
            on_tx!(tx, conn => {
                sqlx::query("UPDATE decision_facts SET verdict = $1 WHERE log_index = $2")
                    .bind(verdict)
                    .bind(*index)
                    .execute(conn)
                    .await
                    .map_err(DbError::from)?;
            });
        }
        Ok(())
    }

    fn record_metrics(&self) {
        #[allow(clippy::cast_precision_loss)]
        for (lane, latency_ms, breached) in &self.latencies {
            metrics::histogram!("countersign_decision_latency_seconds", "lane" => lane.clone())
                .record(*latency_ms as f64 / 1000.0);
            if *breached {
                metrics::counter!("countersign_sla_breaches_total", "lane" => lane.clone())
                    .increment(1);
            }
        }
        for ((name, version, _), hour) in &self.model_hours {
            let model = format!("{name}@{version}");
            metrics::counter!("countersign_model_decisions_total", "model" => model.clone())
                .increment(u64::try_from(hour.decisions).unwrap_or(0));
            metrics::counter!("countersign_model_overrides_total", "model" => model)
                .increment(u64::try_from(hour.overrides).unwrap_or(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day_of(kinds: &str) -> ReviewerDay {
        let mut day = ReviewerDay::default();
        for k in kinds.chars() {
            day.push_applied(k == 'a');
        }
        day
    }

    #[test]
    fn approval_runs_merge_across_stretches() {
        let whole = "aacaaaeaa";
        let expected = day_of(whole);
        assert_eq!(
            (expected.run_head, expected.run_tail, expected.run_max),
            (2, 2, 3)
        );
        // Any split into stretches merges back to the same runs.
        for cut in 0..=whole.len() {
            let mut first = day_of(&whole[..cut]);
            first.merge(&day_of(&whole[cut..]));
            assert_eq!(
                (first.applied, first.run_head, first.run_tail, first.run_max),
                (9, 2, 2, 3),
                "cut at {cut}"
            );
        }
        let all = day_of("aaaa");
        let mut merged = all.clone();
        merged.merge(&day_of("aa"));
        assert_eq!(
            (merged.run_head, merged.run_tail, merged.run_max),
            (6, 6, 6)
        );
    }

    #[test]
    fn time_buckets() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(999), 0);
        assert_eq!(bucket_of(1_000), 1);
        assert_eq!(bucket_of(4_999), 3);
        assert_eq!(bucket_of(10_000_000), BUCKETS - 1);
    }
}

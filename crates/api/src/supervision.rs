//! The wire types of the supervisor endpoints (`/v1/supervision/...`) and of the log-integrity
//! endpoints a desk uses to check the whole log. Definitions of every statistic are in the gate's
//! `service/supervision.rs` and in the OpenAPI description.
//!
//! With the `ts` feature the answers the desk hands on to its UI as they are also derive
//! `ts_rs::TS` (some under the name the UI knows them by, e.g. `ReviewerReport`). A field the gate
//! leaves out when empty is `field?: T | null` there: absent, never `null`, in what the desk
//! sends. The desk exports them with u64 as `number` (counts and indices far below 2^53).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

/// Which queue a claim takes items from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    /// Held outputs waiting for a human (the default).
    #[default]
    Review,
    /// After-the-fact review: sampled `auto` releases and supervisors' re-reviews. A QA decision
    /// never changes a release; it feeds the statistics.
    Qa,
}

impl Queue {
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Review => "review",
            Queue::Qa => "qa",
        }
    }
}

/// A signed checkpoint every proof in a response is made against.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProofCheckpoint {
    pub origin: String,
    pub size: u64,
    /// Base64 root hash.
    pub root: String,
    /// The signed note (C2SP tlog-checkpoint); verify it with `log_public_key`.
    pub checkpoint: String,
    pub log_public_key: String,
}

/// One audit-log entry with its inclusion proof against the response's checkpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProvenEntry {
    pub index: u64,
    /// The entry's `kind`, for convenience (it is inside `entry` too).
    pub kind: String,
    /// The entry exactly as logged: its canonical JSON (RFC 8785), i.e. the Merkle leaf bytes.
    #[schema(value_type = Object)]
    pub entry: Box<RawValue>,
    /// RFC 6962 inclusion proof (base64 hashes) of leaf `index` in the checkpoint's tree.
    pub proof: Vec<String>,
}

/// The item as the gate holds it now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrailItem {
    pub item_id: Uuid,
    /// The original subject (for a QA item: the subject of the output it reviews).
    pub subject: String,
    pub queue: Queue,
    /// `pending`, `escalated`, `released` (for a QA item: decided) or `superseded`.
    pub status: String,
    pub lane: String,
    pub current_version: u32,
    pub escalation_level: u32,
    pub approvals_required: u32,
    pub authority_required: f64,
    pub due_at: DateTime<Utc>,
    /// The outcome a release would carry now; null while a `human_only` item has none.
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<serde_json::Value>,
}

/// Where a QA item comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct QaOrigin {
    pub item_id: Uuid,
    /// `sample` (a sampled `auto` release) or `re_review` (a supervisor's re-review of a decision).
    pub origin: String,
    pub output_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub release_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub decision_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub source_item_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub source_item_version: Option<u32>,
    pub requested_by: String,
    pub reason: String,
    /// `pending`, `escalated` or `released` (decided).
    pub status: String,
    /// Index of its `qa_queued` entry.
    pub log_index: u64,
}

/// One version of the item: the output as received and how it was routed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrailVersion {
    pub version: u32,
    pub output_id: String,
    /// The output exactly as stored (its canonical JSON); `body_sha256` is its SHA-256.
    #[schema(value_type = Object)]
    pub output: Box<RawValue>,
    pub body_sha256: String,
    pub model: String,
    /// The routing: `policy_version`, `rule`, `lane`, `authority_required`, `approvals_required`,
    /// `sla_seconds`, `qa_sample_rate`.
    #[schema(value_type = Object)]
    pub routing: serde_json::Value,
    /// The item as served to reviewers (canonical JSON); decisions name its SHA-256.
    #[schema(value_type = Object)]
    pub served: Box<RawValue>,
    pub evidence_sha256: String,
    pub received_at: DateTime<Utc>,
    /// Index of the `output_received` entry (absent for a QA item's own version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_index: Option<u64>,
    /// Index of the `routed` (or, for a QA item, `qa_queued`) entry.
    pub routed_index: u64,
}

/// One lease of the item.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrailLease {
    pub lease_id: Uuid,
    pub item_version: u32,
    pub epoch: u32,
    pub reviewer: String,
    pub user_id: String,
    pub device_id: String,
    pub leased_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub offline: bool,
    /// `active`, `returned`, `expired`, `withdrawn`, `reassigned`, `superseded` or `decided`.
    pub state: String,
    /// Indices of the entries about this lease (`leased`, `lease_renewed`, `withdrawn`, ...).
    pub entry_indices: Vec<u64>,
}

/// A reviewer key as the gate holds it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignerKey {
    pub key_id: String,
    /// The public key as an RFC 8037 JWK: verify the decision's JWS with it.
    #[schema(value_type = Object)]
    pub jwk: serde_json::Value,
    /// `active`, `rotated` or `revoked`.
    pub status: String,
    /// Index of the `key_enrolled` or `key_rotated` entry that logged the key.
    pub enrolled_at_index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at_index: Option<u64>,
}

/// A supervisor's flag on a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FlagRecord {
    pub flag_id: Uuid,
    pub decision_id: Uuid,
    pub flagged_by: String,
    pub reason: String,
    pub log_index: u64,
    pub flagged_at: DateTime<Utc>,
}

/// One logged decision with what the desk needs to check it itself.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrailDecision {
    pub decision_id: Uuid,
    pub log_index: u64,
    pub reviewer: String,
    pub user_id: String,
    pub device_id: String,
    pub device_seq: u64,
    pub item_version: u32,
    /// `approve`, `correct` or `escalate`.
    pub kind: String,
    /// `applied`, `conflict` or `rejected`.
    pub outcome: String,
    /// The conflict reason or the rejection code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome_code: Option<String>,
    /// The reviewer's signed decision (compact JWS, EdDSA): verify it with `key.jwk`.
    pub jws: String,
    pub key: SignerKey,
    pub logged_at: DateTime<Utc>,
    pub flags: Vec<FlagRecord>,
}

/// The release of the item.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrailRelease {
    pub release_seq: u64,
    /// The released document as logged (its `released` entry's data).
    #[schema(value_type = Object)]
    pub release: Box<RawValue>,
    pub log_index: u64,
}

/// Everything about one item, every part tied to an audit-log entry with its inclusion proof
/// against one signed checkpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemTrail {
    pub item: TrailItem,
    /// Set for a QA item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qa: Option<QaOrigin>,
    pub versions: Vec<TrailVersion>,
    pub leases: Vec<TrailLease>,
    /// Every logged decision on the item: applied, conflicts and rejections, in log order.
    pub decisions: Vec<TrailDecision>,
    /// Indices of the `escalated` entries.
    pub escalation_indices: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<TrailRelease>,
    /// QA items made from this item (samples of its release, re-reviews of its decisions).
    pub qa_items: Vec<QaOrigin>,
    /// Every entry the parts above refer to, in log order, each with its proof.
    pub entries: Vec<ProvenEntry>,
    pub checkpoint: ProofCheckpoint,
}

/// One decision as the search lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DecisionSummary {
    pub decision_id: Uuid,
    pub log_index: u64,
    pub logged_at: DateTime<Utc>,
    /// The signed `decided_at`, clamped to [lease start, logged_at].
    pub decided_at: DateTime<Utc>,
    pub reviewer: String,
    pub user_id: String,
    pub device_id: String,
    pub item_id: Uuid,
    pub item_version: u32,
    pub queue: Queue,
    pub kind: String,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub outcome_code: Option<String>,
    /// `name@version`.
    pub model: String,
    pub lane: String,
    pub rule: String,
    pub policy_version: u32,
    /// Milliseconds; absent when the gate knows no lease for the decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub time_on_item_ms: Option<u64>,
    pub due_at: DateTime<Utc>,
    /// Decided after `due_at`.
    pub sla_breached: bool,
    /// An applied decision that escalated, or left an outcome different from the proposal.
    pub overrode: bool,
    /// Fields an applied decision left different from the model's proposal.
    pub changed_fields: Vec<String>,
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DecisionPage {
    /// Newest first.
    pub decisions: Vec<DecisionSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub next_cursor: Option<String>,
    /// Statistics cover the decisions logged before this log size.
    pub as_of_log_size: u64,
}

/// Counts per time-on-item bucket: bucket `i` holds times below `upper_ms[i]` and at or above
/// the bucket before; the last bucket (upper `null`) holds the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TimeHistogram {
    pub upper_ms: Vec<Option<u64>>,
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Agreement {
    pub pairs: u64,
    pub agreed: u64,
    /// agreed / pairs; absent without pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RubberStamp {
    /// The threshold asked for (`fast_seconds`).
    pub fast_seconds: u64,
    /// Applied approvals with a time on item below the threshold.
    pub fast_approvals: u64,
    /// fast_approvals / applied approvals with a known time on item.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub fast_approval_share: Option<f64>,
    /// The longest run of consecutive applied approvals (no correction or escalation between).
    pub longest_approval_run: u64,
}

/// One reviewer over a range of whole UTC days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReviewerStats {
    pub reviewer: String,
    pub user_id: String,
    pub role: String,
    /// Every logged decision: applied + conflict + rejected.
    pub decisions: u64,
    pub applied: u64,
    pub conflicts: u64,
    pub rejected: u64,
    pub approve: u64,
    pub correct: u64,
    pub escalate: u64,
    /// Shares of applied decisions; absent without applied decisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub approve_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub correct_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub escalate_share: Option<f64>,
    /// Mean time on item over applied decisions with a known time, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub mean_time_on_item_ms: Option<f64>,
    pub time_on_item: TimeHistogram,
    /// Applied decisions made after the item's due time.
    pub sla_breaches: u64,
    pub four_eyes: Agreement,
    pub qa: Agreement,
    pub rubber_stamp: RubberStamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "ReviewerReport"))]
pub struct ReviewerStatsResponse {
    /// Start of the first whole UTC day counted.
    pub from: DateTime<Utc>,
    /// End (exclusive) of the last whole UTC day counted.
    pub to: DateTime<Utc>,
    pub reviewers: Vec<ReviewerStats>,
    pub as_of_log_size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OverridePoint {
    /// Start of the bucket.
    pub start: DateTime<Utc>,
    /// Applied human decisions (review, human-only and QA items).
    pub decisions: u64,
    pub overrides: u64,
    pub override_rate: f64,
    pub approve: u64,
    pub correct: u64,
    pub escalate: u64,
    /// Of `decisions`, those on QA items, and their overrides.
    pub qa_decisions: u64,
    pub qa_overrides: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OverrideSeries {
    pub model: String,
    /// Buckets with at least one decision, in time order.
    pub points: Vec<OverridePoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "OverrideReport"))]
pub struct OverrideRateResponse {
    /// `hour`, `day` or `week` (weeks start on Monday, UTC).
    pub bucket: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub series: Vec<OverrideSeries>,
    pub as_of_log_size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FieldChanges {
    pub field: String,
    pub changes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ModelFieldChanges {
    pub model: String,
    /// Most changed first.
    pub fields: Vec<FieldChanges>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "CorrectedFields"))]
pub struct CorrectedFieldsResponse {
    /// Whole UTC days counted.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub models: Vec<ModelFieldChanges>,
    pub as_of_log_size: u64,
}

/// A model version's circuit breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BreakerState {
    /// `closed` (routing as the policy says) or `tripped` (its `auto` outputs are reviewed).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub tripped_at: Option<DateTime<Utc>>,
    /// Index of the `circuit_tripped` entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub tripped_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub reset_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub reset_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub reset_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub reset_reason: Option<String>,
}

/// The active policy's `[circuit_breaker]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BreakerConfig {
    pub window: u32,
    pub min_decisions: u32,
    pub threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ModelStatus {
    pub model: String,
    /// All applied human decisions ever logged on it, and their overrides.
    pub decisions: u64,
    pub overrides: u64,
    /// Over the breaker's window: its last `window` applied decisions logged after the last reset
    /// (200 when the policy has no breaker).
    pub window_decisions: u64,
    pub window_overrides: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub window_override_rate: Option<f64>,
    pub breaker: BreakerState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "ModelsReport"))]
pub struct ModelsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub circuit_breaker: Option<BreakerConfig>,
    pub models: Vec<ModelStatus>,
    pub as_of_log_size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBreakerRequest {
    /// `name@version`.
    pub model: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    /// Why: shown to supervisors and logged.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "RereviewResult"))]
pub struct RereviewResponse {
    /// The new QA item.
    pub qa: QaOrigin,
    pub evidence_sha256: String,
}

/// An open lease, as supervisors see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OpenLease {
    pub lease_id: Uuid,
    pub item_id: Uuid,
    pub item_version: u32,
    pub queue: Queue,
    pub lane: String,
    pub subject: String,
    pub epoch: u32,
    pub reviewer: String,
    pub user_id: String,
    pub device_id: String,
    pub device_name: String,
    pub leased_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub offline: bool,
    /// Past `expires_at` but not yet taken back (it is, at the next claim that reaches it).
    pub lapsed: bool,
    pub due_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OpenLeasesResponse {
    pub leases: Vec<OpenLease>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InclusionBatchRequest {
    /// The tree size to prove against: a checkpoint the caller holds, at most the log's size.
    pub size: u64,
    /// Leaf indices below `size`; at most 1000.
    pub indices: Vec<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InclusionBatchResponse {
    pub size: u64,
    /// One per requested index, in the order asked.
    pub entries: Vec<ProvenEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredCheckpoint {
    pub size: u64,
    /// Base64 root hash.
    pub root: String,
    /// The signed note.
    pub checkpoint: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointsResponse {
    /// In increasing size.
    pub checkpoints: Vec<StoredCheckpoint>,
}

/// Filters of the decision search. Every filter is optional; they combine with AND.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DecisionQuery {
    /// A reviewer's user name.
    pub reviewer: Option<String>,
    /// A model version, `name@version`.
    pub model: Option<String>,
    /// `review` or `human_only` (the lane of the decided item).
    pub lane: Option<String>,
    /// `approve`, `correct` or `escalate`.
    pub kind: Option<String>,
    /// `applied`, `conflict` or `rejected`.
    pub outcome: Option<String>,
    /// `true`: only conflicts; `false`: no conflicts.
    pub conflict: Option<bool>,
    /// `review` or `qa`.
    pub queue: Option<String>,
    /// `true`: only decisions a supervisor flagged.
    pub flagged: Option<bool>,
    /// Logged at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Logged before this time (RFC 3339).
    pub to: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500; default 50.
    pub limit: Option<u32>,
}

/// A date range, for statistics kept per UTC day or hour.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReviewerQuery {
    /// Only this reviewer (user name); default every user who decides.
    pub reviewer: Option<String>,
    /// Start (RFC 3339), rounded down to its UTC day; default: the beginning.
    pub from: Option<String>,
    /// End (RFC 3339, exclusive), rounded up to a UTC day; default: now.
    pub to: Option<String>,
    /// Rubber-stamp threshold in seconds: one of 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600;
    /// default 5.
    pub fast_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverrideQuery {
    /// Only this model version (`name@version`); default every one.
    pub model: Option<String>,
    /// Start (RFC 3339), rounded down to the bucket; default: the beginning.
    pub from: Option<String>,
    /// End (RFC 3339, exclusive); default: now.
    pub to: Option<String>,
    /// `hour` (for ranges up to 31 days), `day` (default) or `week`.
    pub bucket: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "LeaseFilter"))]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeaseQuery {
    /// Only this reviewer's leases (user name).
    pub reviewer: Option<String>,
    /// Only offline (`true`) or online (`false`) leases.
    pub offline: Option<bool>,
    /// `review` or `qa`.
    pub queue: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckpointQuery {
    /// Only checkpoints larger than this size; default 0.
    pub after: Option<u64>,
    /// At most this many, 1 to 1000; default 1000.
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BundleQuery {
    /// Start of the range (RFC 3339), inclusive.
    pub from: String,
    /// End of the range (RFC 3339), exclusive.
    pub to: String,
}

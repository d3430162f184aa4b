//! What the supervisor views show and send. The statistics and the supervisor's actions answer
//! with the gate's own types (`countersign_api::supervision`, whose definitions are in the gate's
//! `service/supervision.rs`), handed on to the UI as they are: the wire crate's `ts` feature
//! derives `ts_rs::TS` on them, a few under the names the UI knows them by (re-exported under
//! those names here). Defined here are what is the desk's own: the filters, whose dates are typed
//! (the gate's queries take text), the trail with what this desk verified of it, the lease change,
//! the integrity check and the bundle export.

use chrono::{DateTime, Utc};
pub use countersign_api::Queue;
pub use countersign_api::supervision::{
    Agreement, BreakerConfig, BreakerState, CorrectedFieldsResponse as CorrectedFields,
    DecisionPage, DecisionSummary, FieldChanges, FlagRecord, LeaseQuery as LeaseFilter,
    ModelFieldChanges, ModelStatus, ModelsResponse as ModelsReport, OpenLease, OverridePoint,
    OverrideRateResponse as OverrideReport, OverrideSeries, QaOrigin,
    RereviewResponse as RereviewResult, ReviewerStats, ReviewerStatsResponse as ReviewerReport,
    RubberStamp, TimeHistogram,
};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

/// Filters of the decision search; every one optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct DecisionFilter {
    pub reviewer: Option<String>,
    /// `name@version`.
    pub model: Option<String>,
    /// `review` or `human_only`.
    pub lane: Option<String>,
    /// `approve`, `correct` or `escalate`.
    pub kind: Option<String>,
    /// `applied`, `conflict` or `rejected`.
    pub outcome: Option<String>,
    /// `true`: only conflicts; `false`: none.
    pub conflict: Option<bool>,
    /// `review` or `qa`.
    pub queue: Option<String>,
    pub flagged: Option<bool>,
    /// Logged at or after.
    pub from: Option<DateTime<Utc>>,
    /// Logged before.
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// A date range and the rubber-stamp threshold for the reviewer statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct ReviewerFilter {
    pub reviewer: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// One of 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600; the gate's default is 5.
    #[ts(type = "number | null")]
    pub fast_seconds: Option<u64>,
}

/// The range (and bucket, for the override rate) of the model statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct ModelFilter {
    pub model: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// `hour` (ranges up to 31 days), `day` or `week`.
    pub bucket: Option<String>,
}

/// What a withdrawal or reassignment left: for a withdrawal the withdrawn lease, for a
/// reassignment the new lease of the reviewer the item went to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct LeaseChange {
    pub lease_id: Uuid,
    pub item_id: Uuid,
    /// `withdrawn` for a withdrawal, `active` for the new lease of a reassignment.
    pub state: String,
}

/// One check the desk made itself: did it hold, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Check {
    pub ok: bool,
    /// What was checked, or what failed.
    pub detail: String,
}

impl Check {
    pub fn pass(detail: impl Into<String>) -> Self {
        Self {
            ok: true,
            detail: detail.into(),
        }
    }

    pub fn fail(detail: impl Into<String>) -> Self {
        Self {
            ok: false,
            detail: detail.into(),
        }
    }
}

/// The signed checkpoint a trail's proofs lead to, as the desk checked it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TrailCheckpoint {
    #[ts(type = "number")]
    pub size: u64,
    pub root_hex: String,
    /// The signed note, as text.
    pub note: String,
    /// Signed by the gate's log key this desk pinned at enrollment, for its origin.
    pub signature: Check,
    /// Extends every checkpoint this desk saw before (a consistency proof).
    pub consistency: Check,
}

/// Where in an item's life a step of its trail belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum TrailStage {
    Output,
    Routing,
    Lease,
    Decision,
    Escalation,
    Release,
    Qa,
    Other,
}

/// A signed decision as the desk checked it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DecisionCheck {
    pub decision_id: Uuid,
    pub reviewer: String,
    pub kind: String,
    pub outcome: String,
    pub outcome_code: Option<String>,
    pub item_version: u32,
    pub logged_at: DateTime<Utc>,
    /// The compact JWS, as text.
    pub jws: String,
    /// The signed payload (the decision's canonical JSON), decoded for reading.
    pub payload: String,
    pub key_id: String,
    /// `active`, `rotated` or `revoked`.
    pub key_status: String,
    /// The JWS verifies with the key, names this decision, and is what the log entry holds.
    pub signature: Check,
    /// The key is the one a proven log entry enrolled for this key id.
    pub key: Check,
    pub flags: Vec<FlagRecord>,
}

/// One audit-log entry of the trail, in log order, with the desk's verdict on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct TrailStep {
    pub stage: TrailStage,
    #[ts(type = "number")]
    pub index: u64,
    /// The entry's `kind` (`output_received`, `routed`, `leased`, `decided`...).
    pub kind: String,
    pub at: Option<DateTime<Utc>>,
    pub actor: String,
    /// One line for people, built from the entry's data (plain text).
    pub summary: String,
    /// The entry exactly as logged (its canonical JSON, the Merkle leaf bytes).
    pub entry: String,
    /// The inclusion proof of these bytes leads to the checkpoint's root.
    pub inclusion: Check,
    /// What the part of the trail that refers to this entry says agrees with the entry.
    pub content: Check,
    pub decision: Option<DecisionCheck>,
}

/// The item as the gate holds it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct TrailItem {
    pub item_id: Uuid,
    pub subject: String,
    pub queue: String,
    pub status: String,
    pub lane: String,
    pub current_version: u32,
    pub escalation_level: u32,
    pub approvals_required: u32,
    pub authority_required: f64,
    pub due_at: DateTime<Utc>,
    #[ts(type = "unknown")]
    pub outcome: Option<serde_json::Value>,
    /// The model of the current version, `name@version`.
    pub model: String,
}

/// A decision trail and what the desk verified of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct TrailView {
    pub item: TrailItem,
    pub qa: Option<QaOrigin>,
    /// QA items made from this one.
    pub qa_items: Vec<QaOrigin>,
    pub checkpoint: TrailCheckpoint,
    pub steps: Vec<TrailStep>,
    /// Parts of the trail that point at an entry the gate did not prove.
    pub missing: Vec<String>,
    /// Every check held: signature, consistency, each inclusion, each content and decision check.
    pub verified: bool,
    /// How many checks failed.
    pub failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum IntegrityPhase {
    /// The gate's current checkpoint and every checkpoint it lists: signatures.
    Checkpoints,
    /// Every checkpoint this desk saw: consistency with the current one.
    Consistency,
    /// Every decision (and trail entry) this desk holds: inclusion in the current tree.
    Inclusion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct IntegrityProgress {
    pub phase: IntegrityPhase,
    #[ts(type = "number")]
    pub done: u64,
    #[ts(type = "number")]
    pub total: u64,
}

/// The result of the log integrity check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct IntegrityReport {
    /// Every check held.
    pub ok: bool,
    pub checked_at: DateTime<Utc>,
    /// The gate's current checkpoint, checked against everything below.
    #[ts(type = "number")]
    pub log_size: u64,
    pub root_hex: String,
    /// Checkpoints the gate lists whose signatures verified (of `gate_checkpoints`).
    #[ts(type = "number")]
    pub gate_checkpoints_signed: u64,
    #[ts(type = "number")]
    pub gate_checkpoints: u64,
    /// Checkpoints this desk saw that the current one extends (of `seen_checkpoints`).
    #[ts(type = "number")]
    pub seen_checkpoints_consistent: u64,
    #[ts(type = "number")]
    pub seen_checkpoints: u64,
    /// Decisions this desk signed whose log entries are proven in the current tree (of `own_decisions`).
    #[ts(type = "number")]
    pub own_decisions_proven: u64,
    #[ts(type = "number")]
    pub own_decisions: u64,
    /// Entries of trails this desk verified that are still proven, unchanged (of `trail_entries`).
    #[ts(type = "number")]
    pub trail_entries_proven: u64,
    #[ts(type = "number")]
    pub trail_entries: u64,
    /// Each problem found, in words; empty when `ok`.
    pub problems: Vec<String>,
}

/// An audit bundle written to disk and verified there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct BundleExport {
    /// The directory holding the bundle's five files.
    pub path: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    #[ts(type = "number")]
    pub size: u64,
    pub root_b64: String,
    pub checkpoints: u32,
    #[ts(type = "number")]
    pub decisions: u64,
    pub keys: u32,
    /// The range's entries: `first_index` to `end_index - 1`.
    #[ts(type = "number")]
    pub first_index: u64,
    #[ts(type = "number")]
    pub end_index: u64,
    /// `countersign verify-bundle`'s one-line summary of what verified.
    pub summary: String,
}

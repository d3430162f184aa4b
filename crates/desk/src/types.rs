//! The desk's public data: what the shell and the UI show and send. Every type serializes to
//! the JSON the UI reads and derives `ts_rs::TS` so the Tauri crate can export TypeScript for it
//! (u64 fields are typed `number` there: they are counts and sequence numbers far below 2^53).

use chrono::{DateTime, Utc};
use countersign_core::{DecisionKind, FieldEdit, JsonObject, Lane, ServedItem};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

/// One enrolled account: a user of one gate, on this device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Account {
    pub account_id: String,
    pub gate_url: String,
    pub user_name: String,
    pub role: String,
    pub authority_limit: f64,
    pub device_id: String,
    pub key_id: String,
    pub log_origin: String,
    pub enrolled_at: DateTime<Utc>,
}

/// The last checkpoint of the gate's log this desk verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct CheckpointInfo {
    #[ts(type = "number")]
    pub size: u64,
    pub root_hex: String,
    pub verified_at: DateTime<Utc>,
}

/// What the desk knows locally; computing it never waits on the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DeskStatus {
    pub account: Account,
    /// The last contact with the gate succeeded and is less than 60 seconds old.
    pub online: bool,
    #[ts(type = "number")]
    pub queue_count: u64,
    #[ts(type = "number")]
    pub pending_sync: u64,
    #[ts(type = "number")]
    pub conflicts: u64,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub checkpoint: Option<CheckpointInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ClaimReport {
    pub claimed: u32,
    pub offline: bool,
    pub items: Vec<QueueEntry>,
}

/// One item in the reviewer's queue, summarised for a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct QueueEntry {
    pub item_id: Uuid,
    pub item_version: u32,
    pub lease_id: Uuid,
    pub subject: String,
    /// `name@version`.
    pub model: String,
    pub lane: Lane,
    /// The proposal's numeric `amount`, else the input's `credit_amount` or `amount`.
    pub amount: Option<f64>,
    /// E.g. "approve 12 000 / 36 months"; `None` for `human_only` items.
    pub proposal_summary: Option<String>,
    pub confidence: Option<f64>,
    pub due_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub lease_expires_at: DateTime<Utc>,
    pub offline: bool,
    pub rule: String,
    pub escalation_level: u32,
}

/// One row of the queue list: what a row shows (subject, amount, proposal, confidence, lane,
/// SLA, offline, escalation) and what sorting needs. The window holds 10 000 of these, so the
/// rest of a [`QueueEntry`] (lease, model, rule) comes with the item when it is opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct QueueRow {
    pub item_id: Uuid,
    pub item_version: u32,
    pub subject: String,
    pub lane: Lane,
    pub amount: Option<f64>,
    /// E.g. "approve 12 000 / 36 months"; `None` for `human_only` items.
    pub proposal_summary: Option<String>,
    pub confidence: Option<f64>,
    pub due_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub offline: bool,
    pub escalation_level: u32,
}

/// Everything about one item, with the evidence exactly as the gate served it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ItemDetail {
    pub entry: QueueEntry,
    pub item: ServedItem,
    /// Lowercase hex SHA-256 of the served item's canonical bytes; a decision names it.
    pub evidence_sha256: String,
    #[ts(type = "Record<string, unknown> | null")]
    pub current_outcome: Option<JsonObject>,
    pub approvals_required: u32,
    pub approvals_given: u32,
    /// Protected features whose attribution weight is not zero.
    pub protected_attributions: Vec<String>,
    pub decided: Option<DecisionRecord>,
}

/// One field a correction sets; the desk fills in the value that was shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct CorrectionInput {
    pub field: String,
    #[ts(type = "unknown")]
    pub to: serde_json::Value,
}

/// A reviewer's decision as the UI asks for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DecideRequest {
    pub item_id: Uuid,
    pub kind: DecisionKind,
    #[serde(default)]
    pub corrections: Vec<CorrectionInput>,
    #[serde(default)]
    pub reason_codes: Vec<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// A decision durably written to the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SavedDecision {
    pub decision_id: Uuid,
    #[ts(type = "number")]
    pub device_seq: u64,
    pub item_id: Uuid,
    pub kind: DecisionKind,
    pub saved_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    Push,
    Verify,
    Pull,
    Renew,
}

/// Progress of a running sync, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SyncProgress {
    pub phase: SyncPhase,
    #[ts(type = "number")]
    pub done: u64,
    #[ts(type = "number")]
    pub total: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SyncReport {
    #[ts(type = "number")]
    pub pushed: u64,
    #[ts(type = "number")]
    pub applied: u64,
    #[ts(type = "number")]
    pub conflicts: u64,
    #[ts(type = "number")]
    pub rejected: u64,
    #[ts(type = "number")]
    pub refused: u64,
    #[ts(type = "number")]
    pub pulled: u64,
    #[ts(type = "number")]
    pub withdrawn: u64,
    #[ts(type = "number")]
    pub superseded: u64,
    #[ts(type = "number")]
    pub renewed: u64,
    #[ts(type = "number | null")]
    pub checkpoint_size: Option<u64>,
}

/// Where a decision stands with the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum DecisionState {
    /// Saved on this device, not yet acknowledged by the gate.
    Pending,
    Applied,
    /// Kept in the log but not applied (withdrawn, reassigned, superseded, expired...).
    Conflict,
    /// Kept in the log and refused by the gate's checks (authority, four-eyes...).
    Rejected,
    /// Refused outright by the gate; nothing was recorded there.
    Refused,
}

impl DecisionState {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionState::Pending => "pending",
            DecisionState::Applied => "applied",
            DecisionState::Conflict => "conflict",
            DecisionState::Rejected => "rejected",
            DecisionState::Refused => "refused",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => DecisionState::Pending,
            "applied" => DecisionState::Applied,
            "conflict" => DecisionState::Conflict,
            "rejected" => DecisionState::Rejected,
            "refused" => DecisionState::Refused,
            _ => return None,
        })
    }
}

/// A signed decision and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DecisionRecord {
    pub decision_id: Uuid,
    #[ts(type = "number")]
    pub device_seq: u64,
    pub item_id: Uuid,
    pub item_version: u32,
    pub subject: String,
    pub kind: DecisionKind,
    pub corrections: Vec<FieldEdit>,
    pub reason_codes: Vec<String>,
    pub comment: Option<String>,
    pub decided_at: DateTime<Utc>,
    pub state: DecisionState,
    /// The gate's conflict reason, or its rejection code and message.
    pub reason: Option<String>,
    #[ts(type = "number | null")]
    pub leaf_index: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PurgeReport {
    #[ts(type = "number")]
    pub items_purged: u64,
}

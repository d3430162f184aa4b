//! The request and response bodies of the gate's HTTP API, shared by the gate and the desk so
//! both sides of the wire use one definition. The domain types they carry are in
//! `countersign_core`; these add what only the wire needs. No I/O here.

use countersign_core::checkpoint::Receipt;
use countersign_core::{DecisionOutcome, Lane, Lease};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

pub mod supervision;
pub use supervision::Queue;

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code, e.g. `unauthorized`, `output_too_large`.
    pub code: String,
    /// One line for people.
    pub message: String,
}

/// What happened to one posted output.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IngestResult {
    /// Position of the output in the posted batch.
    pub position: usize,
    pub output_id: Option<String>,
    /// `accepted`, `duplicate` (the same output was posted before; nothing changed) or `rejected`.
    pub status: IngestStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub lane: Option<Lane>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_version: Option<u32>,
    /// Set when the output was released at once (`auto` lane).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// The HTTP status the refusal deserves, used when a single output (not a batch) was posted.
    #[serde(skip)]
    pub http_status: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IngestStatus {
    Accepted,
    Duplicate,
    Rejected,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IngestResponse {
    pub results: Vec<IngestResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time enrollment code an admin handed to the reviewer.
    pub code: String,
    /// The device's Ed25519 public key: a JWK (`{"kty":"OKP","crv":"Ed25519","x":...}`) or the
    /// 32 raw bytes in base64url.
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
    /// A name for the device, e.g. the laptop's host name.
    pub device_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    pub user_id: String,
    pub user_name: String,
    pub role: String,
    pub authority_limit: f64,
    pub device_id: String,
    pub key_id: String,
    /// The API credential of this device; shown once, stored hashed by the gate.
    pub token: String,
    /// The origin line of the gate's log checkpoints.
    pub log_origin: String,
    /// The gate's checkpoint verifier key (C2SP signed-note vkey).
    pub log_public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// The new Ed25519 public key (JWK or base64url of the 32 raw bytes).
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
    /// A compact JWS made with the NEW key (kid = its thumbprint) whose payload is exactly
    /// `countersign rotate-key <device_id> <new key id>`: proof the device holds the key.
    pub proof: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RotateKeyResponse {
    pub key_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub user_id: String,
    pub user_name: String,
    pub role: String,
    pub authority_limit: f64,
    pub device_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// How many items to claim (at most the gate's limit).
    pub limit: u32,
    /// Ask for a long lease, to work offline.
    #[serde(default)]
    pub offline: bool,
    /// Length of an offline lease in hours; bounded by the policy.
    #[serde(default)]
    pub offline_hours: Option<u32>,
    /// `review` (default) or `qa`: the QA queue holds sampled `auto` releases and re-reviews.
    #[serde(default)]
    pub queue: Queue,
}

/// An item checked out to the caller.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClaimedItem {
    #[schema(value_type = Object)]
    pub lease: Lease,
    /// The item exactly as served (a `ServedItem`, canonical JSON). `evidence_sha256` is the
    /// SHA-256 of these bytes; a decision must name it.
    #[schema(value_type = Object)]
    pub item: Box<RawValue>,
    pub evidence_sha256: String,
    /// The outcome a release would carry now (the proposal or an earlier reviewer's correction);
    /// absent while a `human_only` item has no human outcome.
    #[schema(value_type = Option<Object>)]
    pub current_outcome: Option<serde_json::Value>,
    pub approvals_required: u32,
    pub approvals_given: u32,
    pub escalation_level: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClaimResponse {
    pub items: Vec<ClaimedItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseIds {
    pub lease_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignRequest {
    /// The user name to hand the item to.
    pub to_user: String,
}

/// The state of one lease as the gate sees it now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LeaseState {
    #[schema(value_type = Object)]
    pub lease: Lease,
    /// `active`, `returned`, `expired`, `withdrawn`, `reassigned`, `superseded` or `decided`.
    pub state: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeasesResponse {
    pub leases: Vec<LeaseState>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// Signed decisions (JWS compact), in per-device sequence order.
    pub decisions: Vec<String>,
}

/// What the gate did with one pushed decision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PushResult {
    pub position: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_seq: Option<u64>,
    /// `applied`, `conflict` (kept, not applied) or `rejected`, for a validly signed decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<DecisionOutcome>,
    /// Proof that the decision is in the log, under a signed checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub receipt: Option<Receipt>,
    /// Set when the decision was refused outright (not validly signed, replayed under another
    /// sequence number...): nothing was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// True when this repeats a decision the gate had already processed.
    #[serde(default)]
    pub repeated: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PushResponse {
    pub results: Vec<PushResult>,
}

/// One released outcome, as downstream consumers pull it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReleaseRecord {
    pub release_seq: u64,
    #[schema(value_type = Object)]
    pub release: Box<RawValue>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReleasesResponse {
    pub releases: Vec<ReleaseRecord>,
    /// Pass this as `after` to get the next page; acknowledge it to move the durable cursor.
    pub next_cursor: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    pub cursor: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointResponse {
    pub origin: String,
    pub size: u64,
    /// Base64 root hash.
    pub root: String,
    /// The signed note.
    pub checkpoint: String,
    pub log_public_key: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProofResponse {
    /// Base64 hashes.
    pub proof: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntryRecord {
    pub index: u64,
    /// The entry's canonical JSON (its leaf bytes).
    #[schema(value_type = Object)]
    pub entry: Box<RawValue>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntriesResponse {
    pub entries: Vec<EntryRecord>,
}

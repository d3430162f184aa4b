//! Domain types shared by the gate, the desk and auditors.
//!
//! Everything that is signed or logged carries an explicit `"v": 1` so that a future format can be
//! told apart instead of being misread. Types that arrive from outside the trust boundary refuse
//! unknown fields: a misspelt field would otherwise be silently ignored and change the meaning of a
//! signed document.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// RFC 3339 UTC timestamp.
pub type Timestamp = DateTime<Utc>;

/// A JSON object: the shape of input snapshots and outcomes.
pub type JsonObject = Map<String, Value>;

/// The format version `1`. Serializes as the number 1 and refuses any other value, so a document
/// written by a later format is rejected rather than misread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct V1;

impl Serialize for V1 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(1)
    }
}

impl<'de> Deserialize<'de> for V1 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let version = u64::deserialize(deserializer)?;
        if version == 1 {
            Ok(V1)
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported format version {version}, this build reads version 1"
            )))
        }
    }
}

/// Which model produced an output.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// One feature's contribution to the model's score.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribution {
    pub feature: String,
    /// The value the model saw for this feature, as in the input snapshot.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub value: Value,
    /// Signed contribution to the score (for a linear model: coefficient x centred value).
    pub weight: f64,
}

/// A machine-readable reason with its words for people.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonCode {
    pub code: String,
    pub text: String,
}

/// A document the model cited. Its text is data: it is never interpreted as markup.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub title: String,
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// What the model offers to justify its proposal.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    #[serde(default)]
    pub attributions: Vec<Attribution>,
    #[serde(default)]
    pub reason_codes: Vec<ReasonCode>,
    #[serde(default)]
    pub documents: Vec<Document>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
}

/// The type of one outcome field, so a reviewer's correction can be validated and edited with the
/// right control.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FieldType {
    /// One of a fixed set of strings.
    Choice { values: Vec<String> },
    /// A whole number within bounds.
    Integer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    /// A decimal number within bounds.
    Number {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// Free text up to a length.
    Text {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_len: Option<u32>,
    },
}

/// Declares one field of an outcome: its name, its label for people and its type.
// No `deny_unknown_fields` here: serde does not support it together with `flatten`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldSpec {
    pub name: String,
    pub label: String,
    #[serde(flatten)]
    pub field_type: FieldType,
}

/// Why a field value does not fit its [`FieldSpec`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("field `{field}` expects one of {allowed:?}")]
    NotAChoice { field: String, allowed: Vec<String> },
    #[error("field `{field}` expects a whole number")]
    NotAnInteger { field: String },
    #[error("field `{field}` expects a number")]
    NotANumber { field: String },
    #[error("field `{field}` expects text")]
    NotText { field: String },
    #[error("field `{field}` is out of range: {detail}")]
    OutOfRange { field: String, detail: String },
    #[error("field `{field}` is not part of this outcome")]
    UnknownField { field: String },
}

impl FieldSpec {
    /// Checks that `value` is acceptable for this field.
    pub fn check(&self, value: &Value) -> Result<(), FieldError> {
        let field = || self.name.clone();
        match &self.field_type {
            FieldType::Choice { values } => match value.as_str() {
                Some(s) if values.iter().any(|v| v == s) => Ok(()),
                _ => Err(FieldError::NotAChoice {
                    field: field(),
                    allowed: values.clone(),
                }),
            },
            FieldType::Integer { min, max } => {
                let n = value
                    .as_i64()
                    .ok_or_else(|| FieldError::NotAnInteger { field: field() })?;
                check_bounds(field, n, *min, *max)
            }
            FieldType::Number { min, max } => {
                let n = value
                    .as_f64()
                    .ok_or_else(|| FieldError::NotANumber { field: field() })?;
                check_bounds(field, n, *min, *max)
            }
            FieldType::Text { max_len } => {
                let s = value
                    .as_str()
                    .ok_or_else(|| FieldError::NotText { field: field() })?;
                match max_len {
                    Some(limit) if s.chars().count() > *limit as usize => {
                        Err(FieldError::OutOfRange {
                            field: field(),
                            detail: format!("longer than {limit} characters"),
                        })
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

fn check_bounds<T: PartialOrd + fmt::Display + Copy>(
    field: impl Fn() -> String,
    n: T,
    min: Option<T>,
    max: Option<T>,
) -> Result<(), FieldError> {
    if let Some(min) = min
        && n < min
    {
        return Err(FieldError::OutOfRange {
            field: field(),
            detail: format!("below the minimum {min}"),
        });
    }
    if let Some(max) = max
        && n > max
    {
        return Err(FieldError::OutOfRange {
            field: field(),
            detail: format!("above the maximum {max}"),
        });
    }
    Ok(())
}

/// One AI model result as a source system posts it to the gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub v: V1,
    /// Chosen by the source; the gate is idempotent on it.
    pub output_id: String,
    /// The source system that sent it.
    pub source: String,
    pub model: ModelRef,
    /// What the output is about, e.g. a credit application id. A newer output for the same subject
    /// supersedes a held item.
    pub subject: String,
    pub produced_at: Timestamp,
    /// The input snapshot the model saw.
    pub input: JsonObject,
    /// The proposed outcome, e.g. `{"decision": "approve", "amount": 12000, "term_months": 36}`.
    pub proposal: JsonObject,
    /// The types of the outcome's fields; a reviewer's correction is checked against them.
    #[serde(default)]
    pub outcome_schema: Vec<FieldSpec>,
    /// The model's own confidence in its proposal, in `[0, 1]`.
    pub confidence: f64,
    /// The raw score, when the model has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default)]
    pub evidence: Evidence,
}

/// What the policy decides for an output.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Released at once; a sample goes to QA review afterwards.
    Auto,
    /// Held; a human approves, corrects or escalates the AI's proposal.
    Review,
    /// Held; the AI's proposal is withheld and a human decides alone.
    HumanOnly,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Auto => "auto",
            Lane::Review => "review",
            Lane::HumanOnly => "human_only",
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Lane {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Lane::Auto),
            "review" => Ok(Lane::Review),
            "human_only" => Ok(Lane::HumanOnly),
            other => Err(format!(
                "unknown lane `{other}` (expected auto, review or human_only)"
            )),
        }
    }
}

/// What the policy recorded when it routed an output.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    pub policy_version: u32,
    /// The id of the rule that matched.
    pub rule: String,
    pub lane: Lane,
    /// The authority limit a reviewer needs to decide the item (e.g. the amount at stake).
    pub authority_required: f64,
    /// Distinct approvals needed before release (2 = four-eyes).
    pub approvals_required: u32,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub sla_seconds: u64,
    /// Share of `auto` outputs sampled into QA review, in `[0, 1]`.
    pub qa_sample_rate: f64,
}

/// An item as the gate serves it to a reviewer: one version of a held output. Its JCS bytes are
/// what `evidence_sha256` in a decision hashes, so a decision names exactly what was shown.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServedItem {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub v: V1,
    pub item_id: Uuid,
    /// Starts at 1; a newer output for the same subject makes a new version.
    pub item_version: u32,
    pub output_id: String,
    pub source: String,
    pub subject: String,
    pub model: ModelRef,
    pub routing: Routing,
    pub received_at: Timestamp,
    pub due_at: Timestamp,
    pub input: JsonObject,
    /// Absent for `human_only` items: a human decides alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<JsonObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default)]
    pub outcome_schema: Vec<FieldSpec>,
    pub evidence: Evidence,
    /// Features the bank's policy treats as protected; a reviewer sees them marked.
    #[serde(default)]
    pub protected_features: Vec<String>,
    /// The reason codes a reviewer may give.
    #[serde(default)]
    pub allowed_reasons: Vec<ReasonCode>,
}

/// An item checked out to one reviewer until a deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    pub lease_id: Uuid,
    pub item_id: Uuid,
    pub item_version: u32,
    /// Bumped by the gate whenever it withdraws or reassigns the lease; a decision must name the
    /// current epoch.
    pub epoch: u32,
    pub reviewer: String,
    pub device_id: String,
    pub leased_at: Timestamp,
    pub expires_at: Timestamp,
    /// An offline checkout: a long lease.
    pub offline: bool,
}

/// The kind of a human decision.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// Accept the proposal as is.
    Approve,
    /// Replace the proposal with the reviewer's outcome.
    Correct,
    /// Hand the item to a higher authority.
    Escalate,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Approve => "approve",
            DecisionKind::Correct => "correct",
            DecisionKind::Escalate => "escalate",
        }
    }
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field a correction changes.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldEdit {
    pub field: String,
    /// The value that was shown (null when the field was absent or the proposal withheld).
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub from: Value,
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub to: Value,
}

/// A reviewer's decision on one item version. It is signed on the reviewer's device as a JWS
/// whose payload is the JCS bytes of this structure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub v: V1,
    /// UUIDv7, made on the device.
    pub decision_id: Uuid,
    pub item_id: Uuid,
    pub item_version: u32,
    pub lease_id: Uuid,
    pub lease_epoch: u32,
    /// Lowercase hex SHA-256 of the JCS bytes of the [`ServedItem`] the reviewer saw.
    pub evidence_sha256: String,
    pub kind: DecisionKind,
    /// Field edits; non-empty exactly when `kind` is `correct`.
    #[serde(default)]
    pub corrections: Vec<FieldEdit>,
    #[serde(default)]
    pub reason_codes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The reviewer's key id (the JWS `kid`).
    pub key_id: String,
    pub device_id: String,
    /// Per-device sequence number, starting at 1, with no gaps.
    pub device_seq: u64,
    pub decided_at: Timestamp,
}

/// Why a decision is not well formed on its own, before any state is consulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionShapeError {
    #[error("evidence_sha256 must be 64 lowercase hex digits")]
    BadEvidenceHash,
    #[error("a correction must change at least one field")]
    EmptyCorrection,
    #[error("only a correction may carry field edits")]
    EditsWithoutCorrection,
    #[error("a {0} needs at least one reason code")]
    MissingReason(DecisionKind),
    #[error("field `{0}` is corrected more than once")]
    DuplicateEdit(String),
    #[error("the correction of `{0}` does not change its value")]
    NoOpEdit(String),
    #[error("device_seq must start at 1")]
    ZeroSequence,
}

impl Decision {
    /// Checks the rules a decision must meet whatever the item: hash shape, and that a correction
    /// changes something and, like an escalation, gives a reason.
    pub fn check_shape(&self) -> Result<(), DecisionShapeError> {
        let hash_ok = self.evidence_sha256.len() == 64
            && self
                .evidence_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hash_ok {
            return Err(DecisionShapeError::BadEvidenceHash);
        }
        if self.device_seq == 0 {
            return Err(DecisionShapeError::ZeroSequence);
        }
        match self.kind {
            DecisionKind::Correct => {
                if self.corrections.is_empty() {
                    return Err(DecisionShapeError::EmptyCorrection);
                }
                let mut seen = std::collections::BTreeSet::new();
                for edit in &self.corrections {
                    if !seen.insert(edit.field.as_str()) {
                        return Err(DecisionShapeError::DuplicateEdit(edit.field.clone()));
                    }
                    if edit.from == edit.to {
                        return Err(DecisionShapeError::NoOpEdit(edit.field.clone()));
                    }
                }
            }
            DecisionKind::Approve | DecisionKind::Escalate => {
                if !self.corrections.is_empty() {
                    return Err(DecisionShapeError::EditsWithoutCorrection);
                }
            }
        }
        if matches!(self.kind, DecisionKind::Correct | DecisionKind::Escalate)
            && self.reason_codes.is_empty()
        {
            return Err(DecisionShapeError::MissingReason(self.kind));
        }
        Ok(())
    }
}

/// Why a validly signed decision was kept but not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictReason {
    Withdrawn,
    Reassigned,
    Superseded,
    Expired,
    AlreadyResolved,
}

/// What the gate did with a pushed decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum DecisionOutcome {
    Applied,
    Conflict { reason: ConflictReason },
    Rejected { code: String, message: String },
}

/// The kinds of event in the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEventKind {
    OutputReceived,
    Routed,
    Superseded,
    Leased,
    LeaseRenewed,
    LeaseReturned,
    LeaseExpired,
    Withdrawn,
    Reassigned,
    Decided,
    Conflict,
    Rejected,
    Escalated,
    Released,
    PolicyActivated,
    PolicyRolledBack,
    UserCreated,
    KeyEnrolled,
    KeyRotated,
    KeyRevoked,
    ApiKeyCreated,
    /// An item was put into the QA queue: a sampled `auto` release, or a supervisor's re-review
    /// of a decision.
    QaQueued,
    /// A supervisor flagged a logged decision for attention.
    DecisionFlagged,
    /// A model version's override rate crossed the policy's circuit-breaker threshold: its
    /// `auto` outputs are reviewed until a supervisor resets it.
    CircuitTripped,
    /// A supervisor reset a tripped circuit breaker.
    CircuitReset,
}

/// One entry of the audit log. The log's leaf bytes are the JCS bytes of this structure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub v: V1,
    /// The entry's leaf index in the log.
    pub index: u64,
    pub at: Timestamp,
    pub kind: AuditEventKind,
    /// Who caused the event: a user, a device, a source or the gate itself.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<Uuid>,
    /// Event details; for `decided`, `conflict` and `rejected` this holds the decision's JWS.
    pub data: Value,
}

/// Lowercase hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A new UUIDv7 (time-ordered), as DESIGN.md asks for decisions and items.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decision() -> Decision {
        Decision {
            v: V1,
            decision_id: Uuid::nil(),
            item_id: Uuid::nil(),
            item_version: 1,
            lease_id: Uuid::nil(),
            lease_epoch: 0,
            evidence_sha256: "a".repeat(64),
            kind: DecisionKind::Approve,
            corrections: vec![],
            reason_codes: vec![],
            comment: None,
            key_id: "k".into(),
            device_id: "d".into(),
            device_seq: 1,
            decided_at: DateTime::from_timestamp(0, 0).expect("epoch"),
        }
    }

    #[test]
    fn version_other_than_one_is_refused() {
        let mut value = serde_json::to_value(decision()).unwrap();
        value["v"] = json!(2);
        let err = serde_json::from_value::<Decision>(value).unwrap_err();
        assert!(err.to_string().contains("unsupported format version 2"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut value = serde_json::to_value(decision()).unwrap();
        value["aproved_by"] = json!("someone");
        assert!(serde_json::from_value::<Decision>(value).is_err());
    }

    #[test]
    fn correction_must_change_something_and_give_a_reason() {
        let mut d = decision();
        d.kind = DecisionKind::Correct;
        assert_eq!(d.check_shape(), Err(DecisionShapeError::EmptyCorrection));
        d.corrections = vec![FieldEdit {
            field: "amount".into(),
            from: json!(12000),
            to: json!(12000),
        }];
        assert_eq!(
            d.check_shape(),
            Err(DecisionShapeError::NoOpEdit("amount".into()))
        );
        d.corrections[0].to = json!(9000);
        assert_eq!(
            d.check_shape(),
            Err(DecisionShapeError::MissingReason(DecisionKind::Correct))
        );
        d.reason_codes = vec!["affordability".into()];
        assert_eq!(d.check_shape(), Ok(()));
    }

    #[test]
    fn approve_with_edits_and_bad_hash_are_refused() {
        let mut d = decision();
        d.evidence_sha256 = "A".repeat(64);
        assert_eq!(d.check_shape(), Err(DecisionShapeError::BadEvidenceHash));
        d.evidence_sha256 = "0".repeat(64);
        d.corrections = vec![FieldEdit {
            field: "amount".into(),
            from: json!(1),
            to: json!(2),
        }];
        assert_eq!(
            d.check_shape(),
            Err(DecisionShapeError::EditsWithoutCorrection)
        );
    }

    #[test]
    fn field_specs_check_values() {
        let amount = FieldSpec {
            name: "amount".into(),
            label: "Amount (EUR)".into(),
            field_type: FieldType::Integer {
                min: Some(250),
                max: Some(20_000),
            },
        };
        assert!(amount.check(&json!(1000)).is_ok());
        assert!(amount.check(&json!(100)).is_err());
        assert!(amount.check(&json!("1000")).is_err());
        let decision = FieldSpec {
            name: "decision".into(),
            label: "Decision".into(),
            field_type: FieldType::Choice {
                values: vec!["approve".into(), "decline".into()],
            },
        };
        assert!(decision.check(&json!("decline")).is_ok());
        assert!(decision.check(&json!("maybe")).is_err());
        let spec_json = serde_json::to_value(&amount).unwrap();
        assert_eq!(
            spec_json,
            json!({"name":"amount","label":"Amount (EUR)","type":"integer","min":250,"max":20000})
        );
    }
}

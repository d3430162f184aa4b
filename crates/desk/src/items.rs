//! Items as the reviewer sees them, and the checks a decision must pass before it is signed.

use std::borrow::Cow;
use std::collections::BTreeSet;

use countersign_api::ClaimedItem;
use countersign_core::{DecisionKind, FieldEdit, Lane, ServedItem};
use serde_json::Value;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use crate::error::DeskError;
use crate::store::{parse_ts, to_u64};
use crate::types::{DecideRequest, DecisionRecord, DecisionState, QueueEntry, QueueRow};

/// Undecided items whose lease holds at `?` (now) and whose evidence is still here.
pub const QUEUE_FILTER: &str = "i.lease_state = 'active' AND i.lease_expires_at > ? AND i.served IS NOT NULL AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.lease_id = i.lease_id)";

pub const ENTRY_COLUMNS: &str =
    "i.entry, i.lease_id, i.lease_expires_at, i.offline, i.escalation_level";

pub const ROW_COLUMNS: &str =
    "i.item_id, i.item_version, i.entry, i.due_at, i.received_at, i.offline, i.escalation_level";

pub const RECORD_COLUMNS: &str =
    "device_seq, decision_id, subject, decision, state, reason, leaf_index";

pub fn queue_entry(served: &ServedItem, claimed: &ClaimedItem) -> QueueEntry {
    let amount = served
        .proposal
        .as_ref()
        .and_then(|p| p.get("amount"))
        .and_then(Value::as_f64)
        .or_else(|| served.input.get("credit_amount").and_then(Value::as_f64))
        .or_else(|| served.input.get("amount").and_then(Value::as_f64));
    QueueEntry {
        item_id: served.item_id,
        item_version: served.item_version,
        lease_id: claimed.lease.lease_id,
        subject: served.subject.clone(),
        model: served.model.to_string(),
        lane: served.routing.lane,
        amount,
        proposal_summary: match served.routing.lane {
            Lane::HumanOnly => None,
            _ => served.proposal.as_ref().map(summary),
        },
        confidence: served.confidence,
        due_at: served.due_at,
        received_at: served.received_at,
        lease_expires_at: claimed.lease.expires_at,
        offline: claimed.lease.offline,
        rule: served.routing.rule.clone(),
        escalation_level: claimed.escalation_level,
    }
}

/// Digits in groups of three, e.g. `12 000`.
fn grouped(n: f64) -> String {
    if n.fract() != 0.0 || n.abs() >= 1e15 {
        return n.to_string();
    }
    let digits = format!("{}", n.abs() as i64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    if n < 0.0 { format!("-{out}") } else { out }
}

/// "approve 12 000 / 36 months" for a credit proposal; other shapes as `field value` pairs.
pub fn summary(proposal: &countersign_core::JsonObject) -> String {
    let mut parts = Vec::new();
    if let Some(decision) = proposal.get("decision").and_then(Value::as_str) {
        parts.push(decision.to_owned());
    }
    if let Some(amount) = proposal.get("amount").and_then(Value::as_f64) {
        parts.push(grouped(amount));
    }
    let mut text = parts.join(" ");
    if let Some(term) = proposal.get("term_months").and_then(Value::as_u64) {
        text.push_str(&format!(" / {term} months"));
    }
    if text.is_empty() {
        text = proposal
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k} {s}"),
                other => format!("{k} {other}"),
            })
            .collect::<Vec<_>>()
            .join(", ");
    }
    text.trim().to_owned()
}

pub fn entry_from_row(row: &SqliteRow) -> Result<QueueEntry, DeskError> {
    let mut entry: QueueEntry =
        serde_json::from_str(&row.try_get::<String, _>("entry")?).map_err(DeskError::storage)?;
    // The lease columns move with renewals and re-claims; the stored summary does not.
    entry.lease_id = row
        .try_get::<String, _>("lease_id")?
        .parse()
        .map_err(DeskError::storage)?;
    entry.lease_expires_at = parse_ts(&row.try_get::<String, _>("lease_expires_at")?)?;
    entry.offline = row.try_get::<i64, _>("offline")? != 0;
    entry.escalation_level = u32::try_from(row.try_get::<i64, _>("escalation_level")?).unwrap_or(0);
    Ok(entry)
}

/// The parts of a stored entry a queue row shows, read without the rest (no ids or times to
/// parse, strings borrowed from the row).
#[derive(serde::Deserialize)]
struct RowFields<'a> {
    #[serde(borrow)]
    subject: Cow<'a, str>,
    lane: Lane,
    amount: Option<f64>,
    #[serde(borrow)]
    proposal_summary: Option<Cow<'a, str>>,
    confidence: Option<f64>,
}

pub fn queue_row_from_row(row: &SqliteRow) -> Result<QueueRow, DeskError> {
    let text: &str = row.try_get("entry")?;
    let fields: RowFields<'_> = serde_json::from_str(text).map_err(DeskError::storage)?;
    Ok(QueueRow {
        item_id: row
            .try_get::<&str, _>("item_id")?
            .parse()
            .map_err(DeskError::storage)?,
        item_version: u32::try_from(row.try_get::<i64, _>("item_version")?).unwrap_or(0),
        subject: fields.subject.into_owned(),
        lane: fields.lane,
        amount: fields.amount,
        proposal_summary: fields.proposal_summary.map(Cow::into_owned),
        confidence: fields.confidence,
        due_at: parse_ts(row.try_get("due_at")?)?,
        received_at: parse_ts(row.try_get("received_at")?)?,
        offline: row.try_get::<i64, _>("offline")? != 0,
        escalation_level: u32::try_from(row.try_get::<i64, _>("escalation_level")?).unwrap_or(0),
    })
}

pub fn record_from_row(row: &SqliteRow) -> Result<DecisionRecord, DeskError> {
    let decision: countersign_core::Decision =
        serde_json::from_str(&row.try_get::<String, _>("decision")?).map_err(DeskError::storage)?;
    let state: String = row.try_get("state")?;
    Ok(DecisionRecord {
        decision_id: decision.decision_id,
        device_seq: to_u64(row.try_get("device_seq")?),
        item_id: decision.item_id,
        item_version: decision.item_version,
        subject: row.try_get("subject")?,
        kind: decision.kind,
        corrections: decision.corrections,
        reason_codes: decision.reason_codes,
        comment: decision.comment,
        decided_at: decision.decided_at,
        state: DecisionState::parse(&state)
            .ok_or_else(|| DeskError::storage(format!("unknown decision state {state}")))?,
        reason: row.try_get("reason")?,
        leaf_index: row.try_get::<Option<i64>, _>("leaf_index")?.map(to_u64),
    })
}

/// Protected features the model gave a non-zero weight.
pub fn protected_attributions(item: &ServedItem) -> Vec<String> {
    let mut out: Vec<String> = item
        .evidence
        .attributions
        .iter()
        .filter(|a| a.weight != 0.0 && item.protected_features.contains(&a.feature))
        .map(|a| a.feature.clone())
        .collect();
    out.dedup();
    out
}

/// Checks a decision against the item as shown and returns its field edits (with `from` filled
/// from what was shown).
pub fn validate(
    item: &ServedItem,
    current_outcome: Option<&Value>,
    request: &DecideRequest,
) -> Result<Vec<FieldEdit>, DeskError> {
    let invalid = |m: String| DeskError::invalid_decision(m);
    for code in &request.reason_codes {
        if !item.allowed_reasons.iter().any(|r| &r.code == code) {
            let allowed: Vec<&str> = item
                .allowed_reasons
                .iter()
                .map(|r| r.code.as_str())
                .collect();
            return Err(invalid(format!(
                "unknown reason code `{code}`; this item allows: {}",
                allowed.join(", ")
            )));
        }
    }
    let reasons: BTreeSet<&String> = request.reason_codes.iter().collect();
    if reasons.len() != request.reason_codes.len() {
        return Err(invalid("a reason code is given twice".to_owned()));
    }
    match request.kind {
        DecisionKind::Approve => {
            if item.routing.lane == Lane::HumanOnly && current_outcome.is_none() {
                return Err(invalid(
                    "this item is human-only: the AI proposal cannot be approved; decide it yourself with a correction".to_owned(),
                ));
            }
            if !request.corrections.is_empty() {
                return Err(invalid(
                    "an approval takes no field changes; use correct".to_owned(),
                ));
            }
            Ok(Vec::new())
        }
        DecisionKind::Escalate => {
            if !request.corrections.is_empty() {
                return Err(invalid("an escalation takes no field changes".to_owned()));
            }
            if request.reason_codes.is_empty() {
                return Err(invalid("an escalation needs a reason code".to_owned()));
            }
            Ok(Vec::new())
        }
        DecisionKind::Correct => {
            if request.reason_codes.is_empty() {
                return Err(invalid("a correction needs a reason code".to_owned()));
            }
            if request.corrections.is_empty() {
                return Err(invalid(
                    "a correction must change at least one field".to_owned(),
                ));
            }
            // What the reviewer was shown as the outcome now: the proposal or an earlier
            // reviewer's correction, as the gate computed it at the claim.
            let shown = current_outcome.and_then(Value::as_object);
            let mut seen = BTreeSet::new();
            let mut edits = Vec::with_capacity(request.corrections.len());
            for c in &request.corrections {
                if !seen.insert(c.field.as_str()) {
                    return Err(invalid(format!("field `{}` is corrected twice", c.field)));
                }
                if !item.outcome_schema.is_empty() {
                    let spec = item
                        .outcome_schema
                        .iter()
                        .find(|s| s.name == c.field)
                        .ok_or_else(|| {
                            invalid(format!("field `{}` is not part of this outcome", c.field))
                        })?;
                    spec.check(&c.to).map_err(|e| invalid(e.to_string()))?;
                }
                let from = shown
                    .and_then(|o| o.get(&c.field))
                    .cloned()
                    .unwrap_or(Value::Null);
                if from == c.to {
                    return Err(invalid(format!(
                        "the correction of `{}` does not change its value",
                        c.field
                    )));
                }
                edits.push(FieldEdit {
                    field: c.field.clone(),
                    from,
                    to: c.to.clone(),
                });
            }
            if item.routing.lane == Lane::HumanOnly && shown.is_none() {
                let missing: Vec<&str> = item
                    .outcome_schema
                    .iter()
                    .filter(|spec| !seen.contains(spec.name.as_str()))
                    .map(|spec| spec.name.as_str())
                    .collect();
                if !missing.is_empty() {
                    return Err(invalid(format!(
                        "this item is human-only: give the whole outcome; missing {}",
                        missing.join(", ")
                    )));
                }
            }
            Ok(edits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries_read_like_a_credit_decision() {
        let p = json!({"decision": "approve", "amount": 12000, "term_months": 36});
        assert_eq!(
            summary(p.as_object().unwrap_or(&Default::default())),
            "approve 12 000 / 36 months"
        );
        let p = json!({"label": "spam"});
        assert_eq!(
            summary(p.as_object().unwrap_or(&Default::default())),
            "label spam"
        );
        assert_eq!(grouped(1_234_567.0), "1 234 567");
        assert_eq!(grouped(950.0), "950");
    }
}

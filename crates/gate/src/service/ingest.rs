//! Ingest: AI systems post outputs; each is validated, stored, routed by the active policy and
//! logged. `auto` outputs are released at once; held ones become (or supersede) an item.

use std::collections::HashSet;

use countersign_core::{
    AuditEventKind, Evidence, Lane, Output, Routing, ServedItem, V1, canonical, new_id, sha256_hex,
};
use countersign_policy::RouteContext;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Gate;
use super::releases::ReleaseDraft;
use crate::api::{IngestResult, IngestStatus};
use crate::db::{DbError, ms_to_time, now_ms};
use crate::error::GateError;
use crate::log::WriteTx;
use crate::on_tx;

const ID_MAX: usize = 128;
const SUBJECT_MAX: usize = 256;

#[derive(sqlx::FromRow)]
struct StoredOutput {
    body_sha256: String,
    lane: String,
    item_id: Option<String>,
    item_version: Option<i64>,
    release_seq: Option<i64>,
}

/// An output that passed validation, ready to be stored.
struct ValidOutput {
    position: usize,
    output: Output,
    body: String,
    body_sha256: String,
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn check_identifier(field: &str, value: &str, max: usize) -> Result<(), GateError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@' | '/'));
    if ok {
        Ok(())
    } else {
        Err(GateError::unprocessable(
            "invalid_output",
            format!("`{field}` must be 1-{max} characters of letters, digits and . _ - : @ /"),
        ))
    }
}

fn check_unit_interval(field: &str, value: f64) -> Result<(), GateError> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(GateError::unprocessable(
            "invalid_output",
            format!("`{field}` must be a number between 0 and 1"),
        ))
    }
}

impl Gate {
    fn validate_output(
        &self,
        source: &str,
        position: usize,
        value: Value,
    ) -> Result<ValidOutput, GateError> {
        let nesting = depth(&value);
        if nesting > self.config.max_output_depth {
            return Err(GateError::unprocessable(
                "output_too_deep",
                format!(
                    "the output nests {nesting} levels deep; the limit is {}",
                    self.config.max_output_depth
                ),
            ));
        }
        let body = canonical::to_canonical_bytes(&value)
            .map_err(|e| GateError::unprocessable("invalid_output", e.to_string()))?;
        if body.len() > self.config.max_output_bytes {
            return Err(GateError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "output_too_large",
                format!(
                    "the output is {} bytes; the limit is {}",
                    body.len(),
                    self.config.max_output_bytes
                ),
            ));
        }
        let output: Output = serde_json::from_value(value)
            .map_err(|e| GateError::unprocessable("invalid_output", e.to_string()))?;
        check_identifier("output_id", &output.output_id, ID_MAX)?;
        check_identifier("model.name", &output.model.name, ID_MAX)?;
        check_identifier("model.version", &output.model.version, ID_MAX)?;
        if output.subject.is_empty()
            || output.subject.len() > SUBJECT_MAX
            || output.subject.chars().any(char::is_control)
        {
            return Err(GateError::unprocessable(
                "invalid_output",
                format!("`subject` must be 1-{SUBJECT_MAX} printable characters"),
            ));
        }
        if output.source != source {
            return Err(GateError::forbidden(
                "source_mismatch",
                format!(
                    "the output says source `{}` but the API key belongs to `{source}`",
                    output.source
                ),
            ));
        }
        check_unit_interval("confidence", output.confidence)?;
        for spec in &output.outcome_schema {
            if let Some(value) = output.proposal.get(&spec.name) {
                spec.check(value).map_err(|e| {
                    GateError::unprocessable("invalid_output", format!("proposal: {e}"))
                })?;
            }
        }
        let body = String::from_utf8(body)
            .map_err(|_| GateError::internal("canonical JSON is always UTF-8"))?;
        let body_sha256 = sha256_hex(body.as_bytes());
        Ok(ValidOutput {
            position,
            output,
            body,
            body_sha256,
        })
    }

    /// Ingests one output or a batch (a JSON array) from a source system. Each output is judged on
    /// its own: an invalid one is reported and changes nothing, the valid ones are stored in one
    /// transaction.
    pub async fn ingest(&self, source: &str, raw: &[u8]) -> Result<Vec<IngestResult>, GateError> {
        let document = canonical::parse_strict(raw)
            .map_err(|e| GateError::bad_request("malformed_json", e.to_string()))?;
        let values = match document {
            Value::Array(values) => values,
            single @ Value::Object(_) => vec![single],
            _ => {
                return Err(GateError::bad_request(
                    "malformed_request",
                    "post one output object or an array of them",
                ));
            }
        };
        if values.is_empty() {
            return Err(GateError::bad_request(
                "empty_batch",
                "the batch holds no outputs",
            ));
        }
        if values.len() > self.config.max_batch {
            return Err(GateError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                format!(
                    "{} outputs in one request; the limit is {}",
                    values.len(),
                    self.config.max_batch
                ),
            ));
        }
        let policy = self.active_policy().ok_or_else(|| {
            GateError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "no_active_policy",
                "no policy is active; an admin must activate one before outputs can be routed",
            )
        })?;
        let mut results: Vec<IngestResult> = Vec::with_capacity(values.len());
        let mut valid = Vec::with_capacity(values.len());
        for (position, value) in values.into_iter().enumerate() {
            let output_id = value
                .get("output_id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            match self.validate_output(source, position, value) {
                Ok(v) => valid.push(v),
                Err(e) => results.push(rejected(position, output_id, &e)),
            }
        }
        let tripped = HashSet::new();
        let context = RouteContext {
            tripped_models: &tripped,
        };
        let mut wtx = WriteTx::begin(&self.db).await?;
        let mut seen_in_batch = HashSet::new();
        for v in valid {
            if !seen_in_batch.insert(v.output.output_id.clone()) {
                results.push(rejected(
                    v.position,
                    Some(v.output.output_id.clone()),
                    &GateError::unprocessable(
                        "duplicate_in_batch",
                        "this output_id appears twice in the batch",
                    ),
                ));
                continue;
            }
            let result = self.store_output(&mut wtx, &policy, &context, v).await?;
            results.push(result);
        }
        wtx.commit(&self.log).await?;
        results.sort_by_key(|r| r.position);
        for r in &results {
            let status = match r.status {
                IngestStatus::Accepted => "accepted",
                IngestStatus::Duplicate => "duplicate",
                IngestStatus::Rejected => "rejected",
            };
            metrics::counter!("countersign_outputs_total", "status" => status).increment(1);
        }
        Ok(results)
    }

    async fn store_output(
        &self,
        wtx: &mut WriteTx,
        policy: &countersign_policy::Policy,
        context: &RouteContext<'_>,
        v: ValidOutput,
    ) -> Result<IngestResult, GateError> {
        let ValidOutput {
            position,
            output,
            body,
            body_sha256,
        } = v;
        let existing: Option<StoredOutput> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_as("SELECT body_sha256, lane, item_id, item_version, release_seq FROM outputs WHERE output_id = $1")
                .bind(&output.output_id)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        if let Some(StoredOutput {
            body_sha256: sha,
            lane,
            item_id,
            item_version,
            release_seq,
        }) = existing
        {
            if sha != body_sha256 {
                return Ok(rejected(
                    position,
                    Some(output.output_id),
                    &GateError::conflict(
                        "output_id_reused",
                        "this output_id was already used for a different output",
                    ),
                ));
            }
            return Ok(IngestResult {
                position,
                output_id: Some(output.output_id),
                status: IngestStatus::Duplicate,
                lane: lane.parse().ok(),
                item_id: item_id.and_then(|i| i.parse().ok()),
                item_version: item_version.and_then(|v| u32::try_from(v).ok()),
                release_seq: release_seq.and_then(|s| u64::try_from(s).ok()),
                error: None,
            });
        }

        let (routing, evaluation_error) = match policy.route_detailed(&output, context) {
            Ok(routed) => (
                routed.routing,
                routed
                    .error
                    .map(|e| json!({"rule": e.rule, "field": e.field, "message": e.message})),
            ),
            Err(e) => {
                return Ok(rejected(
                    position,
                    Some(output.output_id),
                    &GateError::unprocessable("routing_failed", e.to_string()),
                ));
            }
        };
        let now = now_ms();
        wtx.append(
            &self.log,
            AuditEventKind::OutputReceived,
            &output.source,
            None,
            json!({
                "output_id": output.output_id,
                "source": output.source,
                "subject": output.subject,
                "model": output.model,
                "body_sha256": body_sha256,
            }),
        )
        .await?;
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("INSERT INTO outputs (output_id, source, subject, model_name, model_version, body, body_sha256, received_at, lane) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(&output.output_id)
                .bind(&output.source)
                .bind(&output.subject)
                .bind(&output.model.name)
                .bind(&output.model.version)
                .bind(&body)
                .bind(&body_sha256)
                .bind(now)
                .bind(routing.lane.as_str())
                .execute(conn)
                .await
                .map_err(DbError::from)?;
        });

        if routing.lane == Lane::Auto {
            wtx.append(
                &self.log,
                AuditEventKind::Routed,
                "gate",
                None,
                json!({"output_id": output.output_id, "routing": routing, "evaluation_error": evaluation_error}),
            )
            .await?;
            let qa_sampled = qa_sample(&output.output_id, routing.qa_sample_rate);
            let release_seq = self
                .release(
                    wtx,
                    ReleaseDraft {
                        item_id: None,
                        item_version: None,
                        output: &output,
                        routing: &routing,
                        outcome: Value::Object(output.proposal.clone()),
                        decided_by: "policy",
                        decisions: Vec::new(),
                        qa_sampled,
                    },
                )
                .await?;
            return Ok(IngestResult {
                position,
                output_id: Some(output.output_id),
                status: IngestStatus::Accepted,
                lane: Some(Lane::Auto),
                item_id: None,
                item_version: None,
                release_seq: Some(release_seq),
                error: None,
            });
        }

        let held: Option<(String, i64)> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_as("SELECT item_id, current_version FROM items WHERE subject = $1 AND status IN ('pending', 'escalated')")
                .bind(&output.subject)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let sla_ms = i64::try_from(routing.sla_seconds)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        let due_at = now.saturating_add(sla_ms);
        let (item_id, version) = match &held {
            Some((id, version)) => (
                id.parse::<Uuid>()
                    .map_err(|_| GateError::internal("stored item id is not a UUID"))?,
                u32::try_from(*version).unwrap_or(u32::MAX - 1) + 1,
            ),
            None => (new_id(), 1),
        };
        let served = self.served_item(item_id, version, &output, &routing, now, due_at, policy);
        let served_bytes = canonical::to_canonical_bytes(&served)
            .map_err(|e| GateError::internal(format!("canonical served item: {e}")))?;
        let served_sha256 = sha256_hex(&served_bytes);
        let served_text = String::from_utf8(served_bytes)
            .map_err(|_| GateError::internal("canonical JSON is always UTF-8"))?;
        wtx.append(
            &self.log,
            AuditEventKind::Routed,
            "gate",
            Some(item_id),
            json!({
                "output_id": output.output_id,
                "routing": routing,
                "item_version": version,
                "evidence_sha256": served_sha256,
                "evaluation_error": evaluation_error,
            }),
        )
        .await?;
        let outcome = match routing.lane {
            Lane::HumanOnly => None,
            _ => Some(Value::Object(output.proposal.clone()).to_string()),
        };
        if held.is_some() {
            let withdrawn: Vec<(String,)> = on_tx!(&mut wtx.tx, conn => {
                sqlx::query_as("UPDATE leases SET state = 'superseded', epoch = epoch + 1 WHERE item_id = $1 AND state = 'active' RETURNING lease_id")
                    .bind(item_id.to_string())
                    .fetch_all(conn)
                    .await
                    .map_err(DbError::from)?
            });
            wtx.append(
                &self.log,
                AuditEventKind::Superseded,
                "gate",
                Some(item_id),
                json!({
                    "from_version": version - 1,
                    "to_version": version,
                    "output_id": output.output_id,
                    "leases_withdrawn": withdrawn.into_iter().map(|(l,)| l).collect::<Vec<_>>(),
                }),
            )
            .await?;
            on_tx!(&mut wtx.tx, conn => {
                sqlx::query("UPDATE items SET current_version = $1, lane = $2, status = 'pending', authority_required = $3, approvals_required = $4, escalation_level = 0, due_at = $5, received_at = $6, outcome = $7, active_lease_id = NULL, lease_expires_at = NULL WHERE item_id = $8")
                    .bind(i64::from(version))
                    .bind(routing.lane.as_str())
                    .bind(routing.authority_required)
                    .bind(i64::from(routing.approvals_required))
                    .bind(due_at)
                    .bind(now)
                    .bind(&outcome)
                    .bind(item_id.to_string())
                    .execute(conn)
                    .await
                    .map_err(DbError::from)?;
            });
        } else {
            on_tx!(&mut wtx.tx, conn => {
                sqlx::query("INSERT INTO items (item_id, subject, current_version, lane, status, authority_required, approvals_required, due_at, received_at, outcome) VALUES ($1, $2, 1, $3, 'pending', $4, $5, $6, $7, $8)")
                    .bind(item_id.to_string())
                    .bind(&output.subject)
                    .bind(routing.lane.as_str())
                    .bind(routing.authority_required)
                    .bind(i64::from(routing.approvals_required))
                    .bind(due_at)
                    .bind(now)
                    .bind(&outcome)
                    .execute(conn)
                    .await
                    .map_err(DbError::from)?;
            });
        }
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("INSERT INTO item_versions (item_id, version, output_id, routing, served, served_sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(item_id.to_string())
                .bind(i64::from(version))
                .bind(&output.output_id)
                .bind(serde_json::to_string(&routing).map_err(|e| GateError::internal(e.to_string()))?)
                .bind(&served_text)
                .bind(&served_sha256)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
            sqlx::query("UPDATE outputs SET item_id = $1, item_version = $2 WHERE output_id = $3")
                .bind(item_id.to_string())
                .bind(i64::from(version))
                .bind(&output.output_id)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
        });
        Ok(IngestResult {
            position,
            output_id: Some(output.output_id),
            status: IngestStatus::Accepted,
            lane: Some(routing.lane),
            item_id: Some(item_id),
            item_version: Some(version),
            release_seq: None,
            error: None,
        })
    }

    /// The item as a reviewer will see it. For `human_only` the AI's proposal and everything that
    /// argues for it (confidence, score, attributions, reason codes, rationale) are withheld.
    #[allow(clippy::too_many_arguments)]
    fn served_item(
        &self,
        item_id: Uuid,
        item_version: u32,
        output: &Output,
        routing: &Routing,
        received_at: i64,
        due_at: i64,
        policy: &countersign_policy::Policy,
    ) -> ServedItem {
        let human_only = routing.lane == Lane::HumanOnly;
        let evidence = if human_only {
            Evidence {
                attributions: Vec::new(),
                reason_codes: Vec::new(),
                documents: output.evidence.documents.clone(),
                rationale: None,
            }
        } else {
            output.evidence.clone()
        };
        ServedItem {
            v: V1,
            item_id,
            item_version,
            output_id: output.output_id.clone(),
            source: output.source.clone(),
            subject: output.subject.clone(),
            model: output.model.clone(),
            routing: routing.clone(),
            received_at: ms_to_time(received_at),
            due_at: ms_to_time(due_at),
            input: output.input.clone(),
            proposal: (!human_only).then(|| output.proposal.clone()),
            confidence: (!human_only).then_some(output.confidence),
            score: if human_only { None } else { output.score },
            outcome_schema: output.outcome_schema.clone(),
            evidence,
            protected_features: policy.protected_features().to_vec(),
            allowed_reasons: policy.reasons().to_vec(),
        }
    }
}

/// Whether an `auto` output goes to QA review: a uniform draw derived from the output id, so the
/// choice is reproducible and the sampled share matches the rate.
pub(crate) fn qa_sample(output_id: &str, rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    let digest = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        output_id.as_bytes(),
    ));
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    #[allow(clippy::cast_precision_loss)]
    let draw = (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
    draw < rate
}

fn rejected(position: usize, output_id: Option<String>, error: &GateError) -> IngestResult {
    IngestResult {
        position,
        output_id,
        status: IngestStatus::Rejected,
        lane: None,
        item_id: None,
        item_version: None,
        release_seq: None,
        error: Some(error.body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qa_sampling_matches_the_rate() {
        let sampled = (0..20_000)
            .filter(|i| qa_sample(&format!("out-{i}"), 0.05))
            .count();
        // 5% of 20 000 = 1000, standard deviation about 31: four sigma either side.
        assert!((876..=1124).contains(&sampled), "sampled {sampled}");
        assert!(!qa_sample("x", 0.0));
        assert!(qa_sample("x", 1.0));
    }

    #[test]
    fn depth_counts_nesting() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({"a": [1]})), 2);
    }
}

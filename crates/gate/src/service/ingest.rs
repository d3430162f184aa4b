//! Ingest: AI systems post outputs; each is validated, stored, routed by the active policy and
//! logged. `auto` outputs are released at once; held ones become (or supersede) an item.

use std::collections::HashSet;

use countersign_core::{
    AuditEventKind, Evidence, Lane, Output, Routing, ServedItem, V1, canonical, new_id, sha256_hex,
};
use countersign_policy::{Policy, RouteContext};
use serde_json::{Value, json};
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::Gate;
use super::releases::{
    PreparedRelease, ReleaseDraft, ReleaseRow, append_release, insert_releases, prepare_release,
};
use crate::api::{IngestResult, IngestStatus};
use crate::db::{DbError, ms_to_time, now_ms, owned_chunks, push_in_list};
use crate::error::GateError;
use crate::log::{PreparedEntry, WriteTx, to_i64};
use crate::service::GateConfig;
use crate::{on_tx, write_later};

const ID_MAX: usize = 128;
const SUBJECT_MAX: usize = 256;

/// Outputs per look-up query: well under SQLite's limit on bound parameters.
const PREFETCH_CHUNK: usize = 500;
/// Rows per multi-row INSERT.
const INSERT_CHUNK: usize = 200;

#[derive(sqlx::FromRow)]
struct StoredOutput {
    output_id: String,
    body_sha256: String,
    lane: String,
    item_id: Option<String>,
    item_version: Option<i64>,
    release_seq: Option<i64>,
}

/// Where the held item of a subject is: already stored, or created earlier in this batch (at
/// `slot` of the pending items).
#[derive(Debug, Clone, Copy)]
enum Held {
    Stored {
        item_id: Uuid,
        version: u32,
    },
    New {
        item_id: Uuid,
        version: u32,
        slot: usize,
    },
}

struct OutputRow {
    output_id: String,
    source: String,
    subject: String,
    model_name: String,
    model_version: String,
    body: String,
    body_sha256: String,
    received_at: i64,
    lane: &'static str,
    item_id: Option<String>,
    item_version: Option<i64>,
    release_seq: Option<i64>,
}

struct ItemRow {
    item_id: String,
    subject: String,
    version: i64,
    lane: &'static str,
    authority_required: f64,
    approvals_required: i64,
    due_at: i64,
    received_at: i64,
    outcome: Option<String>,
}

struct ItemVersionRow {
    item_id: String,
    version: i64,
    output_id: String,
    routing: String,
    served: String,
    served_sha256: String,
    created_at: i64,
}

/// What one ingest request writes, gathered so that it goes to the database in a few multi-row
/// statements instead of several statements per output.
#[derive(Default)]
struct Batch {
    stored: std::collections::HashMap<String, StoredOutput>,
    held: std::collections::HashMap<String, Held>,
    outputs: Vec<OutputRow>,
    items: Vec<ItemRow>,
    item_versions: Vec<ItemVersionRow>,
    releases: Vec<ReleaseRow>,
}

impl Batch {
    /// Queues the gathered rows, parents before children (outputs, items, versions, releases).
    async fn flush(self, wtx: &mut WriteTx) -> Result<(), GateError> {
        for chunk in owned_chunks(self.outputs, INSERT_CHUNK) {
            write_later!(wtx, q => {
                q.push("INSERT INTO outputs (output_id, source, subject, model_name, model_version, body, body_sha256, received_at, lane, item_id, item_version, release_seq) ");
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.output_id).push_bind(r.source).push_bind(r.subject)
                        .push_bind(r.model_name).push_bind(r.model_version).push_bind(r.body)
                        .push_bind(r.body_sha256).push_bind(r.received_at).push_bind(r.lane)
                        .push_bind(r.item_id).push_bind(r.item_version).push_bind(r.release_seq);
                });
            });
        }
        for chunk in owned_chunks(self.items, INSERT_CHUNK) {
            write_later!(wtx, q => {
                q.push("INSERT INTO items (item_id, subject, current_version, lane, status, authority_required, approvals_required, due_at, received_at, outcome) ");
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.item_id).push_bind(r.subject).push_bind(r.version).push_bind(r.lane)
                        .push_bind("pending").push_bind(r.authority_required).push_bind(r.approvals_required)
                        .push_bind(r.due_at).push_bind(r.received_at).push_bind(r.outcome);
                });
            });
        }
        for chunk in owned_chunks(self.item_versions, INSERT_CHUNK) {
            write_later!(wtx, q => {
                q.push("INSERT INTO item_versions (item_id, version, output_id, routing, served, served_sha256, created_at) ");
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.item_id).push_bind(r.version).push_bind(r.output_id)
                        .push_bind(r.routing).push_bind(r.served).push_bind(r.served_sha256)
                        .push_bind(r.created_at);
                });
            });
        }
        insert_releases(wtx, self.releases).await
    }
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

fn validate_output(
    config: &GateConfig,
    source: &str,
    position: usize,
    value: Value,
) -> Result<ValidOutput, GateError> {
    let nesting = depth(&value);
    if nesting > config.max_output_depth {
        return Err(GateError::unprocessable(
            "output_too_deep",
            format!(
                "the output nests {nesting} levels deep; the limit is {}",
                config.max_output_depth
            ),
        ));
    }
    let body = crate::canon::value_to_vec(&value)
        .map_err(|e| GateError::unprocessable("invalid_output", e.message))?;
    if body.len() > config.max_output_bytes {
        return Err(GateError::too_large(
            "output_too_large",
            format!(
                "the output is {} bytes; the limit is {}",
                body.len(),
                config.max_output_bytes
            ),
        ));
    }
    let output: Output = serde_json::from_value(value)
        .map_err(|e| GateError::unprocessable("invalid_output", e.to_string()))?;
    let body = String::from_utf8(body)
        .map_err(|_| GateError::internal("canonical JSON is always UTF-8"))?;
    check_output(source, position, output, body)
}

/// An output posted in its canonical form, read without building a `Value`: its text is its
/// body as it is, and it is deserialized once. `None` when it is not canonical or fails a check
/// made here; the general path ([`validate_output`]) then judges it and names the error.
fn canonical_output(config: &GateConfig, text: &str) -> Option<(Output, String)> {
    if text.len() > config.max_output_bytes
        || canonical::canonical_depth(text.as_bytes())? > config.max_output_depth
    {
        return None;
    }
    let output = serde_json::from_str(text).ok()?;
    Some((output, text.to_owned()))
}

/// The checks on a parsed output that do not depend on how it was read.
fn check_output(
    source: &str,
    position: usize,
    output: Output,
    body: String,
) -> Result<ValidOutput, GateError> {
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
    let body_sha256 = sha256_hex(body.as_bytes());
    Ok(ValidOutput {
        position,
        output,
        body,
        body_sha256,
    })
}

/// The parts of a held output's record that depend on which item it lands in.
struct HeldParts {
    item_id: Uuid,
    version: u32,
    served_text: String,
    served_sha256: String,
    routed: PreparedEntry,
}

/// What an accepted output will write, built before the writer is taken: everything but the
/// log indexes. A held output is prepared as the first version of a new item; the rare output
/// that supersedes a held item is rebuilt under the writer, where the item is known.
struct Prepared {
    position: usize,
    output: Output,
    body: String,
    body_sha256: String,
    routing: Routing,
    evaluation_error: Option<Value>,
    received_at: i64,
    received: PreparedEntry,
    lane: Lanes,
}

enum Lanes {
    Auto {
        routed: PreparedEntry,
        release: PreparedRelease,
    },
    Held {
        due_at: i64,
        new_item: HeldParts,
    },
}

/// One output of a request after the checks and preparation that need no lock.
enum Checked {
    Ready(Box<Prepared>),
    Rejected(IngestResult),
}

/// Parses and validates a request body and prepares every valid output: the CPU-heavy part of
/// ingest, run on the blocking pool so that concurrent requests use every core while one of
/// them holds the writer.
fn check_and_prepare(
    config: &GateConfig,
    policy: &Policy,
    context: &RouteContext<'_>,
    source: &str,
    raw: &[u8],
) -> Result<Vec<Checked>, GateError> {
    if let Some(checked) = check_and_prepare_batch(config, policy, context, source, raw) {
        return Ok(checked);
    }
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
    if values.len() > config.max_batch {
        return Err(GateError::too_large(
            "batch_too_large",
            format!(
                "{} outputs in one request; the limit is {}",
                values.len(),
                config.max_batch
            ),
        ));
    }
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(position, value)| check_value(config, policy, context, source, position, value))
        .collect())
}

/// Validates and prepares one output read into a `Value`; a refusal names the output's id when
/// it has one.
fn check_value(
    config: &GateConfig,
    policy: &Policy,
    context: &RouteContext<'_>,
    source: &str,
    position: usize,
    value: Value,
) -> Checked {
    let output_id = value
        .get("output_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let prepared =
        validate_output(config, source, position, value).and_then(|v| prepare(v, policy, context));
    prepared.unwrap_or_else(|e| Checked::Rejected(rejected(position, output_id, &e)))
}

/// [`check_and_prepare`] for a batch (a JSON array) read one output at a time: an output in
/// canonical form is read straight from its text ([`canonical_output`]), any other one as
/// before. Sources that post canonical JSON skip the strict parse into a `Value`, its canonical
/// form and the `Value` turned into an `Output`: about a tenth of ingest's CPU per output
/// (BENCHMARKS.md, "Fifth pass"). `None` when the
/// request is not such a batch, or any output in it is not strict JSON or not an object: the
/// general path then judges the whole request and says what is wrong with it.
fn check_and_prepare_batch(
    config: &GateConfig,
    policy: &Policy,
    context: &RouteContext<'_>,
    source: &str,
    raw: &[u8],
) -> Option<Vec<Checked>> {
    let texts = serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(raw).ok()?;
    if texts.is_empty() || texts.len() > config.max_batch {
        return None;
    }
    let mut checked = Vec::with_capacity(texts.len());
    for (position, text) in texts.into_iter().enumerate() {
        let text = text.get();
        checked.push(match canonical_output(config, text) {
            Some((output, body)) => {
                let output_id = output.output_id.clone();
                check_output(source, position, output, body)
                    .and_then(|v| prepare(v, policy, context))
                    .unwrap_or_else(|e| Checked::Rejected(rejected(position, Some(output_id), &e)))
            }
            None => match canonical::parse_strict(text.as_bytes()) {
                Ok(value @ Value::Object(_)) => {
                    check_value(config, policy, context, source, position, value)
                }
                _ => return None,
            },
        });
    }
    Some(checked)
}

/// Routes a valid output and builds its log entries, served item and release.
fn prepare(
    v: ValidOutput,
    policy: &Policy,
    context: &RouteContext<'_>,
) -> Result<Checked, GateError> {
    let ValidOutput {
        position,
        output,
        body,
        body_sha256,
    } = v;
    let (routing, evaluation_error) = match policy.route_detailed(&output, context) {
        Ok(routed) => (
            routed.routing,
            routed
                .error
                .map(|e| json!({"rule": e.rule, "field": e.field, "message": e.message})),
        ),
        Err(e) => {
            return Ok(Checked::Rejected(rejected(
                position,
                Some(output.output_id),
                &GateError::unprocessable("routing_failed", e.to_string()),
            )));
        }
    };
    let now = now_ms();
    let received = PreparedEntry::from_value(
        AuditEventKind::OutputReceived,
        &output.source,
        None,
        now,
        &json!({
            "output_id": output.output_id,
            "source": output.source,
            "subject": output.subject,
            "model": output.model,
            "body_sha256": body_sha256,
        }),
    )?;
    let lane = if routing.lane == Lane::Auto {
        let routed = PreparedEntry::from_value(
            AuditEventKind::Routed,
            "gate",
            None,
            now,
            &json!({"output_id": output.output_id, "routing": routing, "evaluation_error": evaluation_error}),
        )?;
        let qa_sampled = qa_sample(&output.output_id, routing.qa_sample_rate);
        let release = prepare_release(
            ReleaseDraft {
                item_id: None,
                item_version: None,
                output: (&output).into(),
                routing: &routing,
                outcome: Value::Object(output.proposal.clone()),
                decided_by: "policy",
                decisions: Vec::new(),
                qa_sampled,
            },
            now,
        )?;
        Lanes::Auto { routed, release }
    } else {
        let due_at = now.saturating_add(sla_ms(&routing));
        let new_item = held_parts(
            new_id(),
            1,
            &output,
            &routing,
            evaluation_error.as_ref(),
            now,
            due_at,
            policy,
        )?;
        Lanes::Held { due_at, new_item }
    };
    Ok(Checked::Ready(Box::new(Prepared {
        position,
        output,
        body,
        body_sha256,
        routing,
        evaluation_error,
        received_at: now,
        received,
        lane,
    })))
}

fn sla_ms(routing: &Routing) -> i64 {
    i64::try_from(routing.sla_seconds)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

/// The served item and `routed` entry of `output` as version `version` of item `item_id`.
#[allow(clippy::too_many_arguments)]
fn held_parts(
    item_id: Uuid,
    version: u32,
    output: &Output,
    routing: &Routing,
    evaluation_error: Option<&Value>,
    now: i64,
    due_at: i64,
    policy: &Policy,
) -> Result<HeldParts, GateError> {
    let served = served_item(item_id, version, output, routing, now, due_at, policy);
    let served_bytes = crate::canon::to_vec(&served)?;
    let served_sha256 = sha256_hex(&served_bytes);
    let served_text = String::from_utf8(served_bytes)
        .map_err(|_| GateError::internal("canonical JSON is always UTF-8"))?;
    let routed = PreparedEntry::from_value(
        AuditEventKind::Routed,
        "gate",
        Some(item_id),
        now,
        &json!({
            "output_id": output.output_id,
            "routing": routing,
            "item_version": version,
            "evidence_sha256": served_sha256,
            "evaluation_error": evaluation_error,
        }),
    )?;
    Ok(HeldParts {
        item_id,
        version,
        served_text,
        served_sha256,
        routed,
    })
}

impl Gate {
    /// Ingests one output or a batch (a JSON array) from a source system. Each output is judged on
    /// its own: an invalid one is reported and changes nothing, the valid ones are stored in one
    /// transaction.
    pub async fn ingest(&self, source: &str, raw: &[u8]) -> Result<Vec<IngestResult>, GateError> {
        let policy = self.active_policy().ok_or_else(|| {
            GateError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "no_active_policy",
                "no policy is active; an admin must activate one before outputs can be routed",
            )
        })?;
        let (config, source_owned, raw) = (self.config.clone(), source.to_owned(), raw.to_vec());
        let checked = {
            let policy = policy.clone();
            let tripped = self.supervision.tripped_models();
            tokio::task::spawn_blocking(move || {
                let context = RouteContext {
                    tripped_models: &tripped,
                };
                check_and_prepare(&config, &policy, &context, &source_owned, &raw)
            })
            .await
            .map_err(|e| GateError::internal(format!("ingest preparation failed: {e}")))??
        };
        let mut results: Vec<IngestResult> = Vec::with_capacity(checked.len());
        let mut ready = Vec::with_capacity(checked.len());
        for c in checked {
            match c {
                Checked::Ready(p) => ready.push(*p),
                Checked::Rejected(r) => results.push(r),
            }
        }
        let mut wtx = WriteTx::begin(&self.db).await?;
        let mut batch = Batch::default();
        self.prefetch(&mut wtx, &ready, &mut batch).await?;
        let mut seen_in_batch = HashSet::new();
        for p in ready {
            if !seen_in_batch.insert(p.output.output_id.clone()) {
                results.push(rejected(
                    p.position,
                    Some(p.output.output_id.clone()),
                    &GateError::unprocessable(
                        "duplicate_in_batch",
                        "this output_id appears twice in the batch",
                    ),
                ));
                continue;
            }
            let result = self.store_output(&mut wtx, &mut batch, &policy, p).await?;
            results.push(result);
        }
        batch.flush(&mut wtx).await?;
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
        self.supervision.wake();
        Ok(results)
    }

    /// Looks up, in two queries for the whole batch, which outputs were seen before and which
    /// subjects already have a held item.
    async fn prefetch(
        &self,
        wtx: &mut WriteTx,
        ready: &[Prepared],
        batch: &mut Batch,
    ) -> Result<(), GateError> {
        for chunk in ready.chunks(PREFETCH_CHUNK) {
            let found: Vec<StoredOutput> = on_tx!(&mut wtx.tx, conn => {
                let mut q = QueryBuilder::new(
                    "SELECT output_id, body_sha256, lane, item_id, item_version, release_seq FROM outputs WHERE output_id IN",
                );
                push_in_list(&mut q, chunk.iter().map(|p| p.output.output_id.as_str()));
                q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
            });
            batch
                .stored
                .extend(found.into_iter().map(|o| (o.output_id.clone(), o)));
            // Without statistics SQLite's planner prefers the queue index on `status`, which
            // scans every held item (2.4 ms per batch with 7 000 held, growing with the queue);
            // the partial unique index on held subjects finds each in one probe.
            let by_subject = if wtx.tx.is_postgres() {
                ""
            } else {
                " INDEXED BY items_one_held_per_subject"
            };
            let sql = format!(
                "SELECT subject, item_id, current_version FROM items{by_subject} WHERE status IN ('pending', 'escalated') AND subject IN"
            );
            let held: Vec<(String, String, i64)> = on_tx!(&mut wtx.tx, conn => {
                let mut q = QueryBuilder::new(sql.as_str());
                push_in_list(&mut q, chunk.iter().map(|p| p.output.subject.as_str()));
                q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
            });
            for (subject, item_id, version) in held {
                let item_id = item_id
                    .parse()
                    .map_err(|_| GateError::internal("stored item id is not a UUID"))?;
                let version = u32::try_from(version).unwrap_or(u32::MAX - 1);
                batch
                    .held
                    .insert(subject, Held::Stored { item_id, version });
            }
        }
        Ok(())
    }

    async fn store_output(
        &self,
        wtx: &mut WriteTx,
        batch: &mut Batch,
        policy: &Policy,
        p: Prepared,
    ) -> Result<IngestResult, GateError> {
        let Prepared {
            position,
            output,
            body,
            body_sha256,
            routing,
            evaluation_error,
            received_at: now,
            received,
            lane,
        } = p;
        if let Some(stored) = batch.stored.get(&output.output_id) {
            if stored.body_sha256 != body_sha256 {
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
                lane: stored.lane.parse().ok(),
                item_id: stored.item_id.as_deref().and_then(|i| i.parse().ok()),
                item_version: stored.item_version.and_then(|v| u32::try_from(v).ok()),
                release_seq: stored.release_seq.and_then(|s| u64::try_from(s).ok()),
                error: None,
                http_status: None,
            });
        }
        wtx.append_prepared(&self.log, &received).await?;
        let mut row = OutputRow {
            output_id: output.output_id.clone(),
            source: output.source.clone(),
            subject: output.subject.clone(),
            model_name: output.model.name.clone(),
            model_version: output.model.version.clone(),
            body,
            body_sha256,
            received_at: now,
            lane: routing.lane.as_str(),
            item_id: None,
            item_version: None,
            release_seq: None,
        };

        let (due_at, new_item) = match lane {
            Lanes::Auto { routed, release } => {
                wtx.append_prepared(&self.log, &routed).await?;
                let release = append_release(wtx, &self.log, release).await?;
                let release_seq = release.release_seq;
                row.release_seq = Some(to_i64(release_seq));
                batch.releases.push(release);
                batch.outputs.push(row);
                return Ok(IngestResult {
                    position,
                    output_id: Some(output.output_id),
                    status: IngestStatus::Accepted,
                    lane: Some(Lane::Auto),
                    item_id: None,
                    item_version: None,
                    release_seq: Some(release_seq),
                    error: None,
                    http_status: None,
                });
            }
            Lanes::Held { due_at, new_item } => (due_at, new_item),
        };

        let held = batch.held.get(&output.subject).copied();
        let parts = match held {
            Some(
                Held::Stored { item_id, version }
                | Held::New {
                    item_id, version, ..
                },
            ) => held_parts(
                item_id,
                version + 1,
                &output,
                &routing,
                evaluation_error.as_ref(),
                now,
                due_at,
                policy,
            )?,
            None => new_item,
        };
        let HeldParts {
            item_id,
            version,
            served_text,
            served_sha256,
            routed,
        } = parts;
        wtx.append_prepared(&self.log, &routed).await?;
        let outcome = match routing.lane {
            Lane::HumanOnly => None,
            _ => Some(Value::Object(output.proposal.clone()).to_string()),
        };
        let item = ItemRow {
            item_id: item_id.to_string(),
            subject: output.subject.clone(),
            version: i64::from(version),
            lane: routing.lane.as_str(),
            authority_required: routing.authority_required,
            approvals_required: i64::from(routing.approvals_required),
            due_at,
            received_at: now,
            outcome,
        };
        match held {
            Some(Held::Stored { .. }) => {
                // A held item from an earlier request: withdraw its leases and move it on.
                let withdrawn: Vec<(String,)> = on_tx!(&mut wtx.tx, conn => {
                    sqlx::query_as("UPDATE leases SET state = 'superseded', epoch = epoch + 1 WHERE item_id = $1 AND state = 'active' RETURNING lease_id")
                        .bind(&item.item_id)
                        .fetch_all(conn)
                        .await
                        .map_err(DbError::from)?
                });
                self.log_superseded(
                    wtx,
                    item_id,
                    version,
                    &output.output_id,
                    withdrawn.into_iter().map(|(l,)| l).collect(),
                )
                .await?;
                on_tx!(&mut wtx.tx, conn => {
                    sqlx::query("UPDATE items SET current_version = $1, lane = $2, status = 'pending', authority_required = $3, approvals_required = $4, escalation_level = 0, due_at = $5, received_at = $6, outcome = $7, active_lease_id = NULL, lease_expires_at = NULL WHERE item_id = $8")
                        .bind(item.version)
                        .bind(item.lane)
                        .bind(item.authority_required)
                        .bind(item.approvals_required)
                        .bind(item.due_at)
                        .bind(item.received_at)
                        .bind(&item.outcome)
                        .bind(&item.item_id)
                        .execute(conn)
                        .await
                        .map_err(DbError::from)?;
                });
                batch
                    .held
                    .insert(output.subject.clone(), Held::Stored { item_id, version });
            }
            Some(Held::New { slot, .. }) => {
                // Created earlier in this very batch: nobody can hold a lease on it yet.
                self.log_superseded(wtx, item_id, version, &output.output_id, Vec::new())
                    .await?;
                batch.items[slot] = item;
                batch.held.insert(
                    output.subject.clone(),
                    Held::New {
                        item_id,
                        version,
                        slot,
                    },
                );
            }
            None => {
                batch.held.insert(
                    output.subject.clone(),
                    Held::New {
                        item_id,
                        version,
                        slot: batch.items.len(),
                    },
                );
                batch.items.push(item);
            }
        }
        batch.item_versions.push(ItemVersionRow {
            item_id: item_id.to_string(),
            version: i64::from(version),
            output_id: output.output_id.clone(),
            routing: serde_json::to_string(&routing)
                .map_err(|e| GateError::internal(e.to_string()))?,
            served: served_text,
            served_sha256,
            created_at: now,
        });
        row.item_id = Some(item_id.to_string());
        row.item_version = Some(i64::from(version));
        batch.outputs.push(row);
        Ok(IngestResult {
            position,
            output_id: Some(output.output_id),
            status: IngestStatus::Accepted,
            lane: Some(routing.lane),
            item_id: Some(item_id),
            item_version: Some(version),
            release_seq: None,
            error: None,
            http_status: None,
        })
    }

    async fn log_superseded(
        &self,
        wtx: &mut WriteTx,
        item_id: Uuid,
        version: u32,
        output_id: &str,
        leases_withdrawn: Vec<String>,
    ) -> Result<(), GateError> {
        wtx.append(
            &self.log,
            AuditEventKind::Superseded,
            "gate",
            Some(item_id),
            json!({
                "from_version": version - 1,
                "to_version": version,
                "output_id": output_id,
                "leases_withdrawn": leases_withdrawn,
            }),
        )
        .await?;
        Ok(())
    }
}

/// The item as a reviewer will see it. For `human_only` the AI's proposal and everything that
/// argues for it (confidence, score, attributions, reason codes, rationale) are withheld.
#[allow(clippy::too_many_arguments)]
pub(super) fn served_item(
    item_id: Uuid,
    item_version: u32,
    output: &Output,
    routing: &Routing,
    received_at: i64,
    due_at: i64,
    policy: &Policy,
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
        http_status: Some(error.status.as_u16()),
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

    #[test]
    fn canonical_depth_counts_as_depth_does() {
        for value in [
            json!(1),
            json!("[{"),
            json!([]),
            json!({"a": [1, {"b": []}], "c": "]]]"}),
            // Brackets after an escaped quote or an escaped backslash are inside the string.
            json!({"a": "x\"[[[", "b": "\\", "c": [[["\\\"{"]]]}),
            json!([[[[[[[[1]]]]]]]]),
        ] {
            let text = crate::canon::value_to_vec(&value).unwrap();
            assert_eq!(
                canonical::canonical_depth(&text),
                Some(depth(&value)),
                "{}",
                String::from_utf8_lossy(&text)
            );
        }
    }

    fn sample_output() -> Value {
        json!({
            "v": 1,
            "output_id": "o-1",
            "source": "scorer",
            "model": {"name": "m", "version": "1"},
            "subject": "APP-1",
            "produced_at": "2026-11-23T10:00:00Z",
            // Numbers whose canonical spelling differs from serde_json's own.
            "input": {"big": 1e21, "tiny": 1e-7, "tenth": 0.1, "whole": 100.0, "neg_zero": -0.0,
                      "text": "caf\u{e9} \u{1f600} \"quoted\" \\ \u{1}", "\u{e000}": 1, "\u{1f600}": 2},
            "proposal": {"decision": "approve", "amount": 5000},
            "confidence": 0.9,
            "evidence": {"rationale": "<img src=x onerror=alert(1)>"}
        })
    }

    #[test]
    fn a_canonical_output_is_read_to_the_same_body_as_any_other_spelling() {
        let config = GateConfig::default();
        let value = sample_output();
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        let canonical_text = String::from_utf8(canonical::canonicalize(&pretty).unwrap()).unwrap();
        let (output, body) = canonical_output(&config, &canonical_text).expect("canonical");
        let read = |text: &[u8]| {
            validate_output(&config, "scorer", 0, canonical::parse_strict(text).unwrap()).unwrap()
        };
        // The same text read the general way gives the same output, and any spelling of it
        // the same body (so a repeat in another spelling is a duplicate, not a reuse).
        assert_eq!(output, read(canonical_text.as_bytes()).output);
        let general = read(&pretty);
        assert_eq!(body, general.body);
        let fast = check_output("scorer", 0, output, body).unwrap();
        assert_eq!(fast.body_sha256, general.body_sha256);
        // Not canonical: left to the general path.
        assert!(canonical_output(&config, std::str::from_utf8(&pretty).unwrap()).is_none());
    }

    #[test]
    fn a_canonical_output_over_a_limit_is_left_to_the_general_path() {
        let mut config = GateConfig::default();
        let text =
            String::from_utf8(crate::canon::value_to_vec(&sample_output()).unwrap()).unwrap();
        assert!(canonical_output(&config, &text).is_some());
        config.max_output_depth = 1;
        assert!(canonical_output(&config, &text).is_none());
        config = GateConfig::default();
        config.max_output_bytes = text.len() - 1;
        assert!(canonical_output(&config, &text).is_none());
    }
}

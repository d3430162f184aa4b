//! Signed decisions pushed by desks. The gate checks each one itself — signature, key, item
//! version, lease and epoch, evidence hash, authority, four-eyes, lane — and logs every validly
//! signed decision with its outcome. Repeats are harmless: a decision is applied at most once.

use countersign_core::jws::{self, JwsError, MAX_DECISION_JWS_BYTES, VerifyingKey};
use countersign_core::{
    AuditEventKind, ConflictReason, Decision, DecisionKind, DecisionOutcome, Lane, Routing,
    ServedItem, sha256_hex,
};
use serde_json::{Map, Value, json};
use sqlx::QueryBuilder;
use std::collections::HashMap;

use super::Gate;
use super::identity::User;
use super::push_state::{AppliedDecision, ItemRow, NewDecision, PushState, RowKeys};
use super::queue::{LeaseRow, parse_uuid};
use super::releases::{ReleaseDraft, TraceDecision};
use crate::api::PushResult;
use crate::canon::Template;
use crate::db::{DbError, now_ms, push_in_list};
use crate::error::GateError;
use crate::log::{PreparedEntry, WriteTx, to_i64, to_u64};
use crate::{on_tx, write_later};

/// What processing one pushed decision came to.
enum Processed {
    /// Validly signed: logged at `log_index` with `outcome`.
    Logged {
        decision_id: uuid::Uuid,
        device_seq: u64,
        outcome: DecisionOutcome,
        log_index: u64,
        repeated: bool,
    },
    /// Refused outright; nothing recorded.
    Refused(GateError),
}

fn rejected(code: &str, message: impl Into<String>) -> DecisionOutcome {
    DecisionOutcome::Rejected {
        code: code.to_owned(),
        message: message.into(),
    }
}

fn conflict(reason: ConflictReason) -> DecisionOutcome {
    DecisionOutcome::Conflict { reason }
}

fn jws_error(err: &JwsError) -> GateError {
    let code = match err {
        JwsError::BadSignature => "bad_signature",
        JwsError::PayloadNotCanonical(_) => "payload_not_canonical",
        JwsError::InvalidDecision(_) => "invalid_decision",
        JwsError::KidMismatch { .. } | JwsError::KeyMismatch => "key_mismatch",
        JwsError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
        _ => "malformed_jws",
    };
    GateError::unprocessable(code, err.to_string())
}

impl Gate {
    /// Processes signed decisions from one device, in order, and returns per decision its outcome
    /// and a receipt proving it is in the log.
    pub async fn push_decisions(
        &self,
        principal: &super::Principal,
        decisions: &[String],
    ) -> Result<Vec<PushResult>, GateError> {
        let (device_id, user) = principal.device()?;
        if decisions.len() > self.config.max_push {
            return Err(GateError::too_large(
                "batch_too_large",
                format!(
                    "{} decisions in one push; the limit is {}",
                    decisions.len(),
                    self.config.max_push
                ),
            ));
        }
        let started = std::time::Instant::now();
        let (mut checks, to_verify) = self.precheck_keys(device_id, decisions).await?;
        let kids: Vec<String> = to_verify
            .iter()
            .map(|(_, _, _, kid)| kid.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let kids: Vec<&str> = kids.iter().map(String::as_str).collect();
        // The rows each decision names, by position, read with one read set under the writer.
        let (mut verifications, hints, mut wtx, mut state) = if to_verify.len() <= VERIFY_INLINE_MAX
        {
            let results = verify_all(to_verify);
            let hints: HashMap<usize, RowKeys> = results
                .iter()
                .filter_map(|(i, v)| v.as_ref().ok().map(|(d, _)| (*i, RowKeys::of(d))))
                .collect();
            let keys: Vec<RowKeys> = hints.values().cloned().collect();
            let mut wtx = WriteTx::begin(&self.db).await?;
            let state = PushState::load(&mut wtx, device_id, &keys, &kids).await?;
            (Verifications::done(results), hints, wtx, state)
        } else {
            // Signatures are checked on the blocking pool, in order, while the writer reads the
            // rows the decisions name, taken from their unverified payloads (a forged one only
            // costs a read); everything is decided on the verified decisions alone. Each
            // decision is processed as soon as its own signature is checked, so processing
            // overlaps the checks of the decisions after it.
            let hints: HashMap<usize, RowKeys> = to_verify
                .iter()
                .filter_map(|(i, jws, _, _)| RowKeys::hint(jws).map(|h| (*i, h)))
                .collect();
            let keys: Vec<RowKeys> = hints.values().cloned().collect();
            let verifications = Verifications::spawn(to_verify);
            let mut wtx = WriteTx::begin(&self.db).await?;
            let state = PushState::load(&mut wtx, device_id, &keys, &kids).await?;
            (verifications, hints, wtx, state)
        };
        let statuses = std::mem::take(&mut state.key_statuses);
        let mut last_seq = state.last_seq;
        let mut processed = Vec::with_capacity(decisions.len());
        for (position, jws) in decisions.iter().enumerate() {
            let check = match checks.get_mut(position).and_then(Option::take) {
                Some(refused) => refused,
                None => {
                    let check = verifications.next(device_id, position).await?;
                    if let Precheck::Verified { decision, .. } = &check {
                        let keys = RowKeys::of(decision);
                        if hints.get(&position) != Some(&keys) {
                            state.load_earlier(&mut wtx, &keys).await?;
                        }
                    }
                    check
                }
            };
            let result = match check {
                Precheck::Verified { decision, kid } => {
                    let status = statuses.get(&kid).map_or("revoked", String::as_str);
                    self.process_verified(
                        &mut wtx,
                        &mut state,
                        device_id,
                        user,
                        jws,
                        decision,
                        status,
                        &mut last_seq,
                    )
                    .await?
                }
                Precheck::Refused { error, alarm } => {
                    if let Some((kind, detail)) = alarm {
                        self.alarm(&mut wtx, kind, detail).await?;
                    }
                    Processed::Refused(error)
                }
            };
            processed.push(result);
        }
        state.flush(&mut wtx).await?;
        let checkpoint = wtx.commit_with_checkpoint(&self.log, &self.db).await?;
        let mut tx = self.db.read_statement().await?;
        let mut results = Vec::with_capacity(processed.len());
        for (position, p) in processed.into_iter().enumerate() {
            results.push(match p {
                Processed::Logged {
                    decision_id,
                    device_seq,
                    outcome,
                    log_index,
                    repeated,
                } => {
                    let kind = match &outcome {
                        DecisionOutcome::Applied => "applied",
                        DecisionOutcome::Conflict { .. } => "conflict",
                        DecisionOutcome::Rejected { .. } => "rejected",
                    };
                    metrics::counter!("countersign_decisions_total", "outcome" => kind)
                        .increment(1);
                    PushResult {
                        position,
                        decision_id: Some(decision_id),
                        device_seq: Some(device_seq),
                        outcome: Some(outcome),
                        receipt: Some(self.log.receipt(&mut tx, log_index, &checkpoint).await?),
                        error: None,
                        repeated,
                    }
                }
                Processed::Refused(error) => {
                    metrics::counter!("countersign_decisions_total", "outcome" => "refused")
                        .increment(1);
                    PushResult {
                        position,
                        decision_id: None,
                        device_seq: None,
                        outcome: None,
                        receipt: None,
                        error: Some(error.body()),
                        repeated: false,
                    }
                }
            });
        }
        metrics::histogram!("countersign_push_seconds").record(started.elapsed().as_secs_f64());
        self.supervision.wake();
        Ok(results)
    }

    async fn alarm(&self, wtx: &mut WriteTx, kind: &str, detail: Value) -> Result<(), GateError> {
        tracing::warn!(alarm = kind, %detail, "security alarm");
        metrics::counter!("countersign_alarms_total", "kind" => kind.to_owned()).increment(1);
        let (at, detail) = (now_ms(), detail.to_string());
        write_later!(wtx, q => {
            q.push("INSERT INTO alarms (at, kind, detail) VALUES (").push_bind(at)
                .push(", ").push_bind(kind.to_owned())
                .push(", ").push_bind(detail.clone()).push(")");
        });
        Ok(())
    }

    /// The checks that need no lock before the signatures: size, header and key of this
    /// device. Returns the refusals so far (by position) and the signatures to verify.
    async fn precheck_keys(
        &self,
        device_id: &str,
        decisions: &[String],
    ) -> Result<(Vec<Option<Precheck>>, Vec<ToVerify>), GateError> {
        let mut kids = Vec::with_capacity(decisions.len());
        for jws in decisions {
            kids.push(header_kid(jws));
        }
        let wanted: Vec<&str> = kids
            .iter()
            .filter_map(|k| k.as_ref().ok().map(String::as_str))
            .collect();
        let keys = self.load_keys(&wanted).await?;
        let mut checks: Vec<Option<Precheck>> = Vec::with_capacity(decisions.len());
        let mut to_verify = Vec::new();
        for (i, kid) in kids.into_iter().enumerate() {
            let kid = match kid {
                Ok(kid) => kid,
                Err(error) => {
                    checks.push(Some(Precheck::Refused { error, alarm: None }));
                    continue;
                }
            };
            match keys.get(&kid) {
                None => checks.push(Some(Precheck::Refused {
                    error: GateError::unprocessable(
                        "unknown_key",
                        format!("no enrolled key `{kid}`"),
                    ),
                    alarm: Some(("unknown_key", json!({"device_id": device_id, "kid": kid}))),
                })),
                Some((key_device, _)) if key_device != device_id => {
                    checks.push(Some(Precheck::Refused {
                        error: GateError::forbidden(
                            "key_not_of_this_device",
                            "the decision is signed with another device's key",
                        ),
                        alarm: Some(("foreign_key", json!({"device_id": device_id, "kid": kid}))),
                    }))
                }
                Some((_, key)) => {
                    to_verify.push((i, decisions[i].clone(), *key, kid));
                    checks.push(None);
                }
            }
        }
        Ok((checks, to_verify))
    }
}

/// A signature to verify: position in the push, JWS, key, key id.
type ToVerify = (usize, String, VerifyingKey, String);

/// The precheck of one decision completed with its signature check.
fn precheck_of(device_id: &str, result: Verification) -> Precheck {
    match result {
        Ok((decision, _)) if decision.device_id != device_id => Precheck::Refused {
            error: GateError::forbidden("wrong_device", "the decision names another device"),
            alarm: None,
        },
        Ok((decision, kid)) => Precheck::Verified { decision, kid },
        Err((e, kid)) => Precheck::Refused {
            error: jws_error(&e),
            alarm: Some((
                "invalid_decision_signature",
                json!({"device_id": device_id, "kid": kid, "reason": e.to_string()}),
            )),
        },
    }
}

impl Gate {
    /// The device and public key of each key id. A key id is the thumbprint of its key and a
    /// key never moves to another device, so what was read once stays true; only the status
    /// changes, and that is read under the log lock ([`PushState::load`]).
    async fn load_keys(
        &self,
        kids: &[&str],
    ) -> Result<HashMap<String, (String, VerifyingKey)>, GateError> {
        let mut keys = HashMap::new();
        let mut missing = Vec::new();
        if let Ok(cache) = self.device_keys.lock() {
            for kid in kids {
                match cache.get(*kid) {
                    Some(known) => {
                        keys.insert((*kid).to_owned(), known.clone());
                    }
                    None => missing.push(*kid),
                }
            }
        } else {
            missing.extend_from_slice(kids);
        }
        if missing.is_empty() {
            return Ok(keys);
        }
        let mut tx = self.db.read_statement().await?;
        let mut loaded = Vec::new();
        for chunk in missing.chunks(500) {
            let rows: Vec<(String, String, Vec<u8>)> = on_tx!(&mut tx, conn => {
                let mut q = QueryBuilder::new("SELECT key_id, device_id, public_key FROM device_keys WHERE key_id IN");
                push_in_list(&mut q, chunk.iter().copied());
                q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
            });
            for (kid, device, public_key) in rows {
                let bytes: [u8; 32] = public_key
                    .as_slice()
                    .try_into()
                    .map_err(|_| GateError::internal("stored public key is not 32 bytes"))?;
                let key = VerifyingKey::from_bytes(&bytes)
                    .map_err(|e| GateError::internal(format!("stored public key: {e}")))?;
                loaded.push((kid, (device, key)));
            }
        }
        if let Ok(mut cache) = self.device_keys.lock() {
            if cache.len() + loaded.len() > super::DEVICE_KEY_CACHE_LIMIT {
                cache.clear();
            }
            cache.extend(loaded.iter().cloned());
        }
        keys.extend(loaded);
        Ok(keys)
    }

    #[allow(clippy::too_many_arguments)]
    async fn process_verified(
        &self,
        wtx: &mut WriteTx,
        state: &mut PushState,
        device_id: &str,
        user: &User,
        jws: &str,
        decision: Decision,
        key_status: &str,
        last_seq: &mut Option<i64>,
    ) -> Result<Processed, GateError> {
        let jws_sha256 = sha256_hex(jws.as_bytes());

        // Idempotency: the same decision again returns what the gate did the first time.
        let earlier = state.earlier(
            to_i64(decision.device_seq),
            &decision.decision_id.to_string(),
        );
        if !earlier.is_empty() {
            if let Some(same) = earlier.iter().find(|e| e.jws_sha256 == jws_sha256) {
                return Ok(Processed::Logged {
                    decision_id: decision.decision_id,
                    device_seq: decision.device_seq,
                    outcome: stored_outcome(
                        &same.outcome,
                        same.outcome_code.clone(),
                        same.outcome_message.clone(),
                    ),
                    log_index: to_u64(same.log_index),
                    repeated: true,
                });
            }
            self.alarm(
                wtx,
                "sequence_reused",
                json!({"device_id": device_id, "device_seq": decision.device_seq, "decision_id": decision.decision_id}),
            )
            .await?;
            return Ok(Processed::Refused(GateError::conflict(
                "sequence_reused",
                "this device already used that sequence number or decision id for a different decision",
            )));
        }

        // The lease and item rows judge() read, handed on so apply() need not read them again.
        let mut applied_on = None;
        let outcome = self
            .judge(
                wtx,
                state,
                user,
                &decision,
                key_status,
                *last_seq,
                &mut applied_on,
            )
            .await?;
        let kind = match &outcome {
            DecisionOutcome::Applied => AuditEventKind::Decided,
            DecisionOutcome::Conflict { .. } => AuditEventKind::Conflict,
            DecisionOutcome::Rejected { .. } => AuditEventKind::Rejected,
        };
        let data = decided_data(&decision, device_id, &user.user_id, jws, &outcome)?;
        let entry = PreparedEntry::new(kind, &user.name, Some(decision.item_id), now_ms(), &data)?;
        let log_index = wtx.append_prepared(&self.log, &entry).await?;
        let (outcome_name, code, message) = match &outcome {
            DecisionOutcome::Applied => ("applied", None, None),
            DecisionOutcome::Conflict { reason } => (
                "conflict",
                Some(
                    serde_json::to_value(reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                ),
                None,
            ),
            DecisionOutcome::Rejected { code, message } => {
                ("rejected", Some(code.clone()), Some(message.clone()))
            }
        };
        state.insert_decision(
            NewDecision {
                decision_id: decision.decision_id.to_string(),
                device_seq: to_i64(decision.device_seq),
                jws_sha256,
                user_id: user.user_id.clone(),
                key_id: decision.key_id.clone(),
                item_id: decision.item_id.to_string(),
                item_version: i64::from(decision.item_version),
                kind: decision.kind.as_str(),
                outcome: outcome_name,
                outcome_code: code,
                outcome_message: message,
                log_index: to_i64(log_index),
                received_at: now_ms(),
            },
            &user.name,
        );
        *last_seq = Some(last_seq.map_or(to_i64(decision.device_seq), |l| {
            l.max(to_i64(decision.device_seq))
        }));
        if let Some((lease, item)) = applied_on {
            self.apply(wtx, state, user, &decision, &lease, item)
                .await?;
        }
        state.touched(
            &decision.item_id.to_string(),
            &decision.lease_id.to_string(),
        );
        Ok(Processed::Logged {
            decision_id: decision.decision_id,
            device_seq: decision.device_seq,
            outcome,
            log_index,
            repeated: false,
        })
    }

    /// Decides what a validly signed decision comes to, without changing anything but an
    /// expired lease.
    #[allow(clippy::too_many_arguments)]
    async fn judge(
        &self,
        wtx: &mut WriteTx,
        state: &mut PushState,
        user: &User,
        decision: &Decision,
        key_status: &str,
        last_seq: Option<i64>,
        applied_on: &mut Option<(LeaseRow, ItemRow)>,
    ) -> Result<DecisionOutcome, GateError> {
        if key_status == "revoked" {
            return Ok(rejected("key_revoked", "the signing key was revoked"));
        }
        if let Some(last) = last_seq
            && to_i64(decision.device_seq) <= last
        {
            return Ok(rejected(
                "sequence_out_of_order",
                format!("sequence {} arrives after {last}", decision.device_seq),
            ));
        }
        if !user.role.decides() {
            return Ok(rejected(
                "role_cannot_decide",
                format!("a {} does not decide items", user.role),
            ));
        }
        let item_id = decision.item_id.to_string();
        let Some(item) = state.item(wtx, &item_id).await? else {
            return Ok(rejected("unknown_item", "no such item"));
        };
        let Some(lease) = state.lease(wtx, &decision.lease_id.to_string()).await? else {
            return Ok(rejected("unknown_lease", "no such lease"));
        };
        if lease.item_id != item_id || lease.item_version != i64::from(decision.item_version) {
            return Ok(rejected(
                "lease_mismatch",
                "the lease is for another item or version",
            ));
        }
        if lease.device_id != decision.device_id {
            return Ok(rejected(
                "not_lease_holder",
                "the lease is held by another device",
            ));
        }
        let version = i64::from(decision.item_version);
        if version > item.current_version {
            return Ok(rejected("unknown_item_version", "no such item version"));
        }
        if version < item.current_version || lease.state == "superseded" {
            return Ok(conflict(ConflictReason::Superseded));
        }
        match lease.state.as_str() {
            "withdrawn" | "returned" => return Ok(conflict(ConflictReason::Withdrawn)),
            "reassigned" => return Ok(conflict(ConflictReason::Reassigned)),
            "expired" => return Ok(conflict(ConflictReason::Expired)),
            "decided" => return Ok(conflict(ConflictReason::AlreadyResolved)),
            _ => {}
        }
        if lease.epoch != i64::from(decision.lease_epoch) {
            return Ok(conflict(ConflictReason::Withdrawn));
        }
        if lease.expires_at < now_ms() {
            state.end_lease(&lease, "expired", false);
            return Ok(conflict(ConflictReason::Expired));
        }
        if matches!(item.status.as_str(), "released" | "superseded") {
            return Ok(conflict(ConflictReason::AlreadyResolved));
        }
        let served_sha256 = state
            .version(wtx, &item_id, version)
            .await?
            .map(|v| v.served_sha256);
        let Some(served_sha256) = served_sha256 else {
            return Ok(rejected("unknown_item_version", "no such item version"));
        };
        if served_sha256 != decision.evidence_sha256 {
            return Ok(rejected(
                "evidence_mismatch",
                "the decision names evidence the gate did not serve for this item version",
            ));
        }
        // Reading and parsing the served item costs more than the rest of the checks; only
        // reasons and corrections need it.
        let served: Option<ServedItem> =
            if decision.reason_codes.is_empty() && decision.kind != DecisionKind::Correct {
                None
            } else {
                let text = state.served(wtx, &item_id, version).await?.ok_or_else(|| {
                    GateError::internal("an item version without its served item")
                })?;
                Some(
                    serde_json::from_str(&text)
                        .map_err(|e| GateError::internal(format!("stored served item: {e}")))?,
                )
            };
        if let Some(served) = &served
            && let Some(unknown) = decision
                .reason_codes
                .iter()
                .find(|code| !served.allowed_reasons.iter().any(|r| &r.code == *code))
        {
            return Ok(rejected(
                "unknown_reason",
                format!("reason code `{unknown}` is not one this item allows"),
            ));
        }
        if decision.kind == DecisionKind::Escalate {
            *applied_on = Some((lease, item));
            return Ok(DecisionOutcome::Applied);
        }
        if user.authority_limit < item.authority_required {
            return Ok(rejected(
                "authority_exceeded",
                format!(
                    "this item needs authority {} and the reviewer's limit is {}",
                    item.authority_required, user.authority_limit
                ),
            ));
        }
        if item.status == "escalated"
            && item.escalation_level > 0
            && user.role != super::Role::Senior
        {
            return Ok(rejected(
                "needs_senior",
                "an escalated item is decided by a senior reviewer",
            ));
        }
        let already = state.applied(wtx, &item_id).await?.iter().any(|d| {
            d.item_version == version
                && d.user_id == user.user_id
                && matches!(d.kind.as_str(), "approve" | "correct")
        });
        if already {
            return Ok(rejected(
                "four_eyes_same_reviewer",
                "this reviewer already approved this item; another person must",
            ));
        }
        let current: Option<Map<String, Value>> = item
            .outcome
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| GateError::internal(format!("stored outcome: {e}")))?;
        let lane: Lane = item
            .lane
            .parse()
            .map_err(|e: String| GateError::internal(e))?;
        match decision.kind {
            DecisionKind::Approve => {
                if current.is_none() {
                    return Ok(rejected(
                        "nothing_to_approve",
                        "a human_only item has no proposal to approve; a reviewer must decide the outcome",
                    ));
                }
            }
            DecisionKind::Correct => {
                let Some(served) = &served else {
                    return Err(GateError::internal(
                        "a correction is checked against its item",
                    ));
                };
                if let Err(message) = check_corrections(served, current.as_ref(), lane, decision) {
                    return Ok(rejected("invalid_correction", message));
                }
            }
            DecisionKind::Escalate => {}
        }
        *applied_on = Some((lease, item));
        Ok(DecisionOutcome::Applied)
    }

    /// The effect of an applied decision: the lease ends, the outcome may change, the item may be
    /// escalated or released.
    async fn apply(
        &self,
        wtx: &mut WriteTx,
        state: &mut PushState,
        user: &User,
        decision: &Decision,
        lease: &LeaseRow,
        item: ItemRow,
    ) -> Result<(), GateError> {
        let item_id = decision.item_id.to_string();
        let version = i64::from(decision.item_version);
        state.end_lease(lease, "decided", false);
        let mut outcome_now = item.outcome.clone();
        match decision.kind {
            DecisionKind::Escalate => {
                state.escalate(&item_id);
                wtx.append(
                    &self.log,
                    AuditEventKind::Escalated,
                    &user.name,
                    Some(decision.item_id),
                    json!({
                        "decision_id": decision.decision_id,
                        "item_version": decision.item_version,
                        "escalation_level": item.escalation_level + 1,
                        "reason_codes": decision.reason_codes,
                    }),
                )
                .await?;
                return Ok(());
            }
            DecisionKind::Correct => {
                let mut outcome: Map<String, Value> = item
                    .outcome
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| GateError::internal(format!("stored outcome: {e}")))?
                    .unwrap_or_default();
                for edit in &decision.corrections {
                    outcome.insert(edit.field.clone(), edit.to.clone());
                }
                let text = Value::Object(outcome).to_string();
                state.set_outcome(&item_id, text.clone());
                outcome_now = Some(text);
            }
            DecisionKind::Approve => {}
        }
        let given = approvals_given(&state.applied(wtx, &item_id).await?, version);
        if i64::from(given) < item.approvals_required {
            return Ok(());
        }
        if item.queue == crate::api::Queue::Qa.as_str() {
            state.finish_qa(&item_id);
            return Ok(());
        }
        self.release_item(wtx, state, &item_id, version, outcome_now)
            .await
    }

    async fn release_item(
        &self,
        wtx: &mut WriteTx,
        state: &mut PushState,
        item_id: &str,
        version: i64,
        outcome: Option<String>,
    ) -> Result<(), GateError> {
        let Some(stored) = state.version(wtx, item_id, version).await? else {
            return Err(GateError::internal(format!(
                "item {item_id} has no version {version} to release"
            )));
        };
        // The release names the output by its stored columns: parsing the whole stored output
        // for four fields was the costliest step of a push that releases.
        let model = countersign_core::ModelRef {
            name: stored.model_name.clone(),
            version: stored.model_version.clone(),
        };
        let routing: Routing = serde_json::from_str(&stored.routing)
            .map_err(|e| GateError::internal(format!("stored routing: {e}")))?;
        let outcome: Value = outcome
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| GateError::internal(format!("stored outcome: {e}")))?
            .unwrap_or(Value::Null);
        let decisions = state
            .applied(wtx, item_id)
            .await?
            .into_iter()
            .map(|d| {
                Ok(TraceDecision {
                    decision_id: parse_uuid(&d.decision_id)?,
                    kind: d.kind,
                    key_id: d.key_id,
                    user: d.user_name,
                    log_index: to_u64(d.log_index),
                })
            })
            .collect::<Result<Vec<_>, GateError>>()?;
        let item_uuid = parse_uuid(item_id)?;
        let release = self
            .release_entry(
                wtx,
                ReleaseDraft {
                    item_id: Some(item_uuid),
                    item_version: u32::try_from(version).ok(),
                    output: super::releases::Released {
                        output_id: &stored.output_id,
                        source: &stored.source,
                        subject: &stored.subject,
                        model: &model,
                    },
                    routing: &routing,
                    outcome,
                    decided_by: "humans",
                    decisions,
                    qa_sampled: false,
                },
            )
            .await?;
        state.release(item_id, release);
        Ok(())
    }
}

/// The data of a decision's log entry, written straight as JCS: the signed JWS is most of it,
/// and copying it into a JSON value to canonicalise it again was a noticeable share of a push.
fn decided_data(
    decision: &Decision,
    device_id: &str,
    user_id: &str,
    jws: &str,
    outcome: &DecisionOutcome,
) -> Result<Template, GateError> {
    let result = serde_json::to_value(outcome)
        .map_err(|e| GateError::internal(format!("decision outcome: {e}")))?;
    // Members in JCS order: decision_id, device_id, device_seq, jws, key_id, result, user_id.
    let mut t = Template::fixed(b"{\"decision_id\":".to_vec());
    t.push_string(&decision.decision_id.to_string())?;
    t.push(b",\"device_id\":");
    t.push_string(device_id)?;
    t.push(b",\"device_seq\":");
    t.push(decision.device_seq.to_string().as_bytes());
    t.push(b",\"jws\":");
    t.push_string(jws)?;
    t.push(b",\"key_id\":");
    t.push_string(&decision.key_id)?;
    t.push(b",\"result\":");
    t.push(&crate::canon::value_to_vec(&result)?);
    t.push(b",\"user_id\":");
    t.push_string(user_id)?;
    t.push(b"}");
    Ok(t)
}

/// Checks a correction against the item: known fields with valid values, `from` matching what
/// the reviewer was shown, and for a `human_only` item a complete outcome.
fn check_corrections(
    served: &ServedItem,
    current: Option<&Map<String, Value>>,
    lane: Lane,
    decision: &Decision,
) -> Result<(), String> {
    for edit in &decision.corrections {
        if !served.outcome_schema.is_empty() {
            let spec = served
                .outcome_schema
                .iter()
                .find(|s| s.name == edit.field)
                .ok_or_else(|| format!("field `{}` is not part of this outcome", edit.field))?;
            spec.check(&edit.to).map_err(|e| e.to_string())?;
        }
        let shown = current
            .and_then(|c| c.get(&edit.field))
            .cloned()
            .unwrap_or(Value::Null);
        if shown != edit.from {
            return Err(format!(
                "the correction of `{}` starts from {} but the current value is {}",
                edit.field, edit.from, shown
            ));
        }
    }
    if lane == Lane::HumanOnly && current.is_none() {
        let missing: Vec<&str> = served
            .outcome_schema
            .iter()
            .filter(|s| !decision.corrections.iter().any(|e| e.field == s.name))
            .map(|s| s.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "a human_only decision must give the whole outcome; missing {}",
                missing.join(", ")
            ));
        }
    }
    Ok(())
}

/// Distinct reviewers whose approval or correction counts towards the outcome of `version`:
/// those since the latest correction or escalation on it (a correction replaces the outcome
/// others approved, and an escalation asks for a higher authority).
fn approvals_given(applied: &[AppliedDecision], version: i64) -> u32 {
    let on_version = || applied.iter().filter(|d| d.item_version == version);
    let floor = on_version()
        .filter(|d| matches!(d.kind.as_str(), "correct" | "escalate"))
        .map(|d| d.log_index)
        .max()
        .unwrap_or(0);
    let users: std::collections::HashSet<&str> = on_version()
        .filter(|d| matches!(d.kind.as_str(), "approve" | "correct") && d.log_index >= floor)
        .map(|d| d.user_id.as_str())
        .collect();
    u32::try_from(users.len()).unwrap_or(u32::MAX)
}

fn stored_outcome(outcome: &str, code: Option<String>, message: Option<String>) -> DecisionOutcome {
    match outcome {
        "applied" => DecisionOutcome::Applied,
        "conflict" => {
            let reason = code
                .and_then(|c| serde_json::from_value(Value::String(c)).ok())
                .unwrap_or(ConflictReason::Withdrawn);
            DecisionOutcome::Conflict { reason }
        }
        _ => DecisionOutcome::Rejected {
            code: code.unwrap_or_default(),
            message: message.unwrap_or_default(),
        },
    }
}

/// A pushed decision after the checks that need no lock.
enum Precheck {
    Verified {
        decision: Decision,
        kid: String,
    },
    Refused {
        error: GateError,
        alarm: Option<(&'static str, Value)>,
    },
}

/// The key id a JWS names, or why it cannot be read.
fn header_kid(jws: &str) -> Result<String, GateError> {
    if jws.len() > MAX_DECISION_JWS_BYTES {
        return Err(GateError::unprocessable(
            "decision_too_large",
            format!("a signed decision is limited to {MAX_DECISION_JWS_BYTES} bytes"),
        ));
    }
    let header = jws::decision_header(jws).map_err(|e| jws_error(&e))?;
    header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            GateError::unprocessable("malformed_jws", "the JWS header names no key (kid)")
        })
}

type Verification = Result<(Decision, String), (JwsError, String)>;

/// Pushes up to this size are verified on the calling task: handing a few signature checks to
/// the blocking pool costs more in thread wake-ups than it saves.
const VERIFY_INLINE_MAX: usize = 4;

fn verify_all(chunk: Vec<ToVerify>) -> Vec<(usize, Verification)> {
    chunk
        .into_iter()
        .map(|(i, jws, key, kid)| {
            let result = match jws::verify_decision(&jws, &key) {
                Ok(v) => Ok((v.decision, kid)),
                Err(e) => Err((e, kid)),
            };
            (i, result)
        })
        .collect()
}

/// Decisions per signature-checking task: small enough that the first decisions of a push are
/// processed while the later ones are still being checked.
const VERIFY_CHUNK: usize = 32;

/// The signature checks of a push, handed out in position order as they finish.
struct Verifications {
    ready: std::collections::VecDeque<(usize, Verification)>,
    pending: std::collections::VecDeque<tokio::sync::oneshot::Receiver<Vec<(usize, Verification)>>>,
}

impl Verifications {
    fn done(results: Vec<(usize, Verification)>) -> Self {
        Verifications {
            ready: results.into(),
            pending: std::collections::VecDeque::new(),
        }
    }

    /// Checks the signatures on every core, chunk after chunk in position order, so that the
    /// first chunks are done first.
    fn spawn(work: Vec<ToVerify>) -> Self {
        static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        // available_parallelism reads cgroup files on every call.
        let threads = *CORES
            .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
        let mut queue = std::collections::VecDeque::new();
        let mut pending = std::collections::VecDeque::new();
        for chunk in crate::db::owned_chunks(work, VERIFY_CHUNK) {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            queue.push_back((chunk, sender));
            pending.push_back(receiver);
        }
        let workers = threads.min(queue.len());
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for _ in 0..workers {
            let queue = queue.clone();
            tokio::task::spawn_blocking(move || {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some((chunk, sender)) = next else { break };
                    // A closed receiver means the push already failed; nobody waits for this.
                    let _ignored = sender.send(verify_all(chunk));
                }
            });
        }
        Verifications {
            ready: std::collections::VecDeque::new(),
            pending,
        }
    }

    /// The completed precheck of the decision at `position`: the next one to be checked.
    async fn next(&mut self, device_id: &str, position: usize) -> Result<Precheck, GateError> {
        if self.ready.is_empty()
            && let Some(receiver) = self.pending.pop_front()
        {
            let chunk = receiver
                .await
                .map_err(|e| GateError::internal(format!("signature check failed: {e}")))?;
            self.ready.extend(chunk);
        }
        match self.ready.pop_front() {
            Some((i, result)) if i == position => Ok(precheck_of(device_id, result)),
            _ => Err(GateError::internal("a pushed decision was not checked")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn decided_data_is_the_canonical_json_of_its_members() {
        let decision = Decision {
            v: countersign_core::V1,
            decision_id: countersign_core::new_id(),
            item_id: countersign_core::new_id(),
            item_version: 2,
            lease_id: countersign_core::new_id(),
            lease_epoch: 1,
            evidence_sha256: "ab".repeat(32),
            kind: DecisionKind::Approve,
            corrections: Vec::new(),
            reason_codes: Vec::new(),
            comment: None,
            key_id: "k\"ey".into(),
            device_id: "dev-1".into(),
            device_seq: 9_007_199_254_740_000,
            decided_at: chrono::Utc::now(),
        };
        let outcomes = [
            DecisionOutcome::Applied,
            conflict(ConflictReason::Superseded),
            rejected("key_revoked", "the signing key was revoked \u{1f600}"),
        ];
        for outcome in outcomes {
            let expected = crate::canon::value_to_vec(&json!({
                "decision_id": decision.decision_id,
                "device_id": "dev-1",
                "device_seq": decision.device_seq,
                "key_id": decision.key_id,
                "user_id": "u-\u{e9}",
                "jws": "eyJ.x_y-z.sig",
                "result": outcome,
            }))
            .unwrap();
            let written = decided_data(&decision, "dev-1", "u-\u{e9}", "eyJ.x_y-z.sig", &outcome)
                .unwrap()
                .render(0);
            assert_eq!(
                String::from_utf8(written).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }
}

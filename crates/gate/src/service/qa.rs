//! The QA queue and supervisors' flags.
//!
//! A QA item is an ordinary item in queue `qa`, so desks claim it (`ClaimRequest.queue = qa`),
//! sign and push decisions on it exactly as on a held item, and the gate checks those like any
//! other. Two things differ: reaching its approvals completes it without a release (a QA
//! decision never changes what was released), and it is never leased to a user it excludes —
//! whoever made the decision it re-reviews (claim and reassign both check). Its decisions count
//! in the statistics like any other, so QA feeds the override rate.
//!
//! QA items come from two places: the background task turns each `auto` release the policy
//! sampled (`qa_sampled`) into one, and a supervisor can ask for any applied decision to be
//! re-reviewed. A re-review is blind: the QA reviewer is served what the original reviewer was
//! served (the proposal withheld for `human_only`), not the original decision.

use countersign_core::{AuditEventKind, Lane, Output, Routing, ServedItem, new_id, sha256_hex};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Gate;
use super::identity::Principal;
use super::queue::parse_uuid;
use crate::api::supervision::{FlagRecord, QaOrigin, RereviewResponse};
use crate::db::{DbError, Tx, ms_to_time, now_ms};
use crate::error::GateError;
use crate::log::{WriteTx, to_i64, to_u64};
use crate::on_tx;

/// Longest reason a supervisor may give.
const REASON_MAX_CHARS: usize = 500;
/// The routing rule QA items are served under.
pub const QA_SAMPLE_RULE: &str = "qa-sample";
pub const QA_RE_REVIEW_RULE: &str = "qa-re-review";

/// A reason as given, trimmed; refused when empty, too long or holding control characters.
pub(crate) fn check_reason(reason: &str) -> Result<&str, GateError> {
    let reason = reason.trim();
    if reason.is_empty()
        || reason.chars().count() > REASON_MAX_CHARS
        || reason.chars().any(char::is_control)
    {
        return Err(GateError::unprocessable(
            "invalid_reason",
            format!("give a reason of 1 to {REASON_MAX_CHARS} printable characters"),
        ));
    }
    Ok(reason)
}

/// Whether `user_id` may not be handed QA item `item_id`.
pub(crate) async fn excludes(tx: &mut Tx, item_id: &str, user_id: &str) -> Result<bool, GateError> {
    let found: i64 = on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT COUNT(*) FROM qa_exclusions WHERE item_id = $1 AND user_id = $2")
            .bind(item_id)
            .bind(user_id)
            .fetch_one(conn)
            .await
            .map_err(DbError::from)?
    });
    Ok(found > 0)
}

/// The item subject of a QA item. Ingest refuses control characters in subjects, so no output
/// can ever name it (and supersede the QA item), and the one-held-item-per-subject rule never
/// ties a QA item to the output it reviews.
fn qa_subject(item_id: Uuid) -> String {
    format!("\u{1}qa\u{1}{item_id}")
}

/// What a new QA item is made of.
struct NewQaItem<'a> {
    served: ServedItem,
    origin: &'static str,
    release_seq: Option<i64>,
    decision: Option<(&'a str, i64)>,
    source: Option<(&'a str, i64)>,
    requested_by: &'a str,
    reason: &'a str,
    excluded: Vec<String>,
}

impl Gate {
    /// The routing a QA item is served under.
    fn qa_routing(&self, rule: &str, lane: Lane, authority: f64) -> Result<Routing, GateError> {
        let policy = self.active_policy().ok_or_else(|| {
            GateError::conflict(
                "no_active_policy",
                "no policy is active; QA items take their SLA from it",
            )
        })?;
        Ok(Routing {
            policy_version: policy.version(),
            rule: rule.to_owned(),
            lane,
            authority_required: authority,
            approvals_required: 1,
            sla_seconds: policy.qa_sla().as_secs(),
            qa_sample_rate: 0.0,
        })
    }

    /// Puts sampled release `release_seq` of output `output_id` into the QA queue. QA decisions
    /// change nothing, so any reviewer may take a sample (authority 0).
    pub(super) async fn queue_sample(
        &self,
        wtx: &mut WriteTx,
        release_seq: i64,
        output_id: &str,
    ) -> Result<(), GateError> {
        let body: Option<String> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_scalar("SELECT body FROM outputs WHERE output_id = $1")
                .bind(output_id)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let body = body.ok_or_else(|| GateError::internal("a sampled release has no output"))?;
        let output: Output = serde_json::from_str(&body)
            .map_err(|e| GateError::internal(format!("stored output: {e}")))?;
        let policy = self
            .active_policy()
            .ok_or_else(|| GateError::internal("QA sampling without an active policy"))?;
        let routing = self.qa_routing(QA_SAMPLE_RULE, Lane::Review, 0.0)?;
        let now = now_ms();
        let due = now.saturating_add(to_i64(routing.sla_seconds).saturating_mul(1000));
        let item_id = new_id();
        let served = super::ingest::served_item(item_id, 1, &output, &routing, now, due, &policy);
        self.insert_qa_item(
            wtx,
            NewQaItem {
                served,
                origin: "sample",
                release_seq: Some(release_seq),
                decision: None,
                source: None,
                requested_by: "gate",
                reason: "sampled by the policy's qa_sample_rate",
                excluded: Vec::new(),
            },
        )
        .await
        .map(|_| ())
    }

    /// A supervisor asks for an applied decision to be reviewed again, by someone else.
    pub async fn rereview(
        &self,
        principal: &Principal,
        decision_id: Uuid,
        reason: &str,
    ) -> Result<RereviewResponse, GateError> {
        let supervisor = principal.supervisor()?;
        let reason = check_reason(reason)?;
        let mut wtx = WriteTx::begin(&self.db).await?;
        let id = decision_id.to_string();
        let decision: Option<(String, i64, String, i64)> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_as("SELECT item_id, item_version, outcome, log_index FROM decisions WHERE decision_id = $1")
                .bind(&id)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let Some((item_id, version, outcome, log_index)) = decision else {
            return Err(GateError::not_found(
                "unknown_decision",
                format!("no decision {decision_id}"),
            ));
        };
        if outcome != "applied" {
            return Err(GateError::unprocessable(
                "decision_not_applied",
                format!(
                    "decision {decision_id} was not applied ({outcome}): there is nothing to re-review"
                ),
            ));
        }
        let pending: Option<String> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_scalar("SELECT q.item_id FROM qa_items q JOIN items i ON i.item_id = q.item_id WHERE q.decision_id = $1 AND i.status IN ('pending', 'escalated')")
                .bind(&id)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        if let Some(pending) = pending {
            return Err(GateError::conflict(
                "rereview_pending",
                format!("QA item {pending} already re-reviews this decision"),
            ));
        }
        let stored: Option<(String, String)> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_as("SELECT served, routing FROM item_versions WHERE item_id = $1 AND version = $2")
                .bind(&item_id)
                .bind(version)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let (served, routing) =
            stored.ok_or_else(|| GateError::internal("a decided version is missing"))?;
        let mut served: ServedItem = serde_json::from_str(&served)
            .map_err(|e| GateError::internal(format!("stored served item: {e}")))?;
        let original: Routing = serde_json::from_str(&routing)
            .map_err(|e| GateError::internal(format!("stored routing: {e}")))?;
        let excluded: Vec<String> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_scalar("SELECT DISTINCT user_id FROM decisions WHERE item_id = $1 AND item_version = $2 AND outcome = 'applied' ORDER BY user_id")
                .bind(&item_id)
                .bind(version)
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        let routing = self.qa_routing(
            QA_RE_REVIEW_RULE,
            original.lane,
            original.authority_required,
        )?;
        let now = now_ms();
        let due = now.saturating_add(to_i64(routing.sla_seconds).saturating_mul(1000));
        served.item_id = new_id();
        served.item_version = 1;
        served.routing = routing;
        served.received_at = ms_to_time(now);
        served.due_at = ms_to_time(due);
        let (qa, evidence_sha256) = self
            .insert_qa_item(
                &mut wtx,
                NewQaItem {
                    served,
                    origin: "re_review",
                    release_seq: None,
                    decision: Some((&id, log_index)),
                    source: Some((&item_id, version)),
                    requested_by: &supervisor.name,
                    reason,
                    excluded,
                },
            )
            .await?;
        wtx.commit(&self.log).await?;
        metrics::counter!("countersign_qa_items_total", "origin" => "re_review").increment(1);
        Ok(RereviewResponse {
            qa,
            evidence_sha256,
        })
    }

    /// Stores a QA item and logs its `qa_queued` entry; returns it and its evidence hash.
    async fn insert_qa_item(
        &self,
        wtx: &mut WriteTx,
        new: NewQaItem<'_>,
    ) -> Result<(QaOrigin, String), GateError> {
        let served = new.served;
        let item_id = served.item_id;
        let routing = served.routing.clone();
        let served_bytes = crate::canon::to_vec(&served)?;
        let served_sha256 = sha256_hex(&served_bytes);
        let served_text = String::from_utf8(served_bytes)
            .map_err(|_| GateError::internal("canonical JSON is always UTF-8"))?;
        let outcome = served
            .proposal
            .clone()
            .filter(|_| routing.lane != Lane::HumanOnly)
            .map(|p| Value::Object(p).to_string());
        let now = now_ms();
        let due = served.due_at.timestamp_millis();
        let index = wtx
            .append(
                &self.log,
                AuditEventKind::QaQueued,
                new.requested_by,
                Some(item_id),
                json!({
                    "origin": new.origin,
                    "output_id": served.output_id,
                    "release_seq": new.release_seq,
                    "decision_id": new.decision.map(|d| d.0),
                    "decision_index": new.decision.map(|d| d.1),
                    "source_item_id": new.source.map(|s| s.0),
                    "source_item_version": new.source.map(|s| s.1),
                    "reason": new.reason,
                    "routing": routing,
                    "evidence_sha256": served_sha256,
                    "excluded_user_ids": new.excluded,
                }),
            )
            .await?;
        let id = item_id.to_string();
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("INSERT INTO items (item_id, subject, current_version, lane, status, authority_required, approvals_required, due_at, received_at, outcome, queue) VALUES ($1, $2, 1, $3, 'pending', $4, 1, $5, $6, $7, 'qa')")
                .bind(&id)
                .bind(qa_subject(item_id))
                .bind(routing.lane.as_str())
                .bind(routing.authority_required)
                .bind(due)
                .bind(now)
                .bind(&outcome)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
            sqlx::query("INSERT INTO item_versions (item_id, version, output_id, routing, served, served_sha256, created_at) VALUES ($1, 1, $2, $3, $4, $5, $6)")
                .bind(&id)
                .bind(&served.output_id)
                .bind(serde_json::to_string(&routing).map_err(|e| GateError::internal(e.to_string()))?)
                .bind(&served_text)
                .bind(&served_sha256)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
            sqlx::query("INSERT INTO qa_items (item_id, origin, output_id, release_seq, decision_id, source_item_id, source_version, requested_by, reason, log_index, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
                .bind(&id)
                .bind(new.origin)
                .bind(&served.output_id)
                .bind(new.release_seq)
                .bind(new.decision.map(|d| d.0))
                .bind(new.source.map(|s| s.0))
                .bind(new.source.map(|s| s.1))
                .bind(new.requested_by)
                .bind(new.reason)
                .bind(to_i64(index))
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
            for user in &new.excluded {
                sqlx::query("INSERT INTO qa_exclusions (item_id, user_id) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(user)
                    .execute(&mut *conn)
                    .await
                    .map_err(DbError::from)?;
            }
        });
        let qa = QaOrigin {
            item_id,
            origin: new.origin.to_owned(),
            output_id: served.output_id.clone(),
            release_seq: new.release_seq.map(to_u64),
            decision_id: new.decision.map(|d| parse_uuid(d.0)).transpose()?,
            source_item_id: new.source.map(|s| parse_uuid(s.0)).transpose()?,
            source_item_version: new.source.and_then(|s| u32::try_from(s.1).ok()),
            requested_by: new.requested_by.to_owned(),
            reason: new.reason.to_owned(),
            status: "pending".to_owned(),
            log_index: index,
        };
        Ok((qa, served_sha256))
    }

    /// A supervisor flags a logged decision (of any outcome) for attention, with a reason.
    pub async fn flag_decision(
        &self,
        principal: &Principal,
        decision_id: Uuid,
        reason: &str,
    ) -> Result<FlagRecord, GateError> {
        let supervisor = principal.supervisor()?;
        let reason = check_reason(reason)?;
        let mut wtx = WriteTx::begin(&self.db).await?;
        let id = decision_id.to_string();
        let decision: Option<(String, i64)> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_as("SELECT item_id, log_index FROM decisions WHERE decision_id = $1")
                .bind(&id)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let Some((item_id, decision_index)) = decision else {
            return Err(GateError::not_found(
                "unknown_decision",
                format!("no decision {decision_id}"),
            ));
        };
        let flag_id = new_id();
        let index = wtx
            .append(
                &self.log,
                AuditEventKind::DecisionFlagged,
                &supervisor.name,
                Some(parse_uuid(&item_id)?),
                json!({
                    "flag_id": flag_id,
                    "decision_id": decision_id,
                    "decision_index": decision_index,
                    "reason": reason,
                }),
            )
            .await?;
        let now = now_ms();
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("INSERT INTO decision_flags (flag_id, decision_id, flagged_by, reason, log_index, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(flag_id.to_string())
                .bind(&id)
                .bind(&supervisor.name)
                .bind(reason)
                .bind(to_i64(index))
                .bind(now)
                .execute(conn)
                .await
                .map_err(DbError::from)?;
        });
        wtx.commit(&self.log).await?;
        Ok(FlagRecord {
            flag_id,
            decision_id,
            flagged_by: supervisor.name.clone(),
            reason: reason.to_owned(),
            log_index: index,
            flagged_at: ms_to_time(now),
        })
    }
}

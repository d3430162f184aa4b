//! Releases: the final outcome of an output with its trace, handed to downstream consumers
//! through a durable cursor.

use countersign_core::{AuditEventKind, Output, Routing, V1};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::Gate;
use crate::api::{ReleaseRecord, ReleasesResponse};
use crate::db::{DbError, ms_to_time, now_ms};
use crate::error::GateError;
use crate::log::{WriteTx, to_i64, to_u64};
use crate::{on_tx, write_later};

/// One decision that led to a release.
#[derive(Debug, Clone, Serialize)]
pub struct TraceDecision {
    pub decision_id: Uuid,
    pub kind: String,
    pub key_id: String,
    pub user: String,
    pub log_index: u64,
}

/// What a release says of the output it releases.
pub(crate) struct Released<'a> {
    pub output_id: &'a str,
    pub source: &'a str,
    pub subject: &'a str,
    pub model: &'a countersign_core::ModelRef,
}

impl<'a> From<&'a Output> for Released<'a> {
    fn from(output: &'a Output) -> Self {
        Released {
            output_id: &output.output_id,
            source: &output.source,
            subject: &output.subject,
            model: &output.model,
        }
    }
}

pub(crate) struct ReleaseDraft<'a> {
    pub item_id: Option<Uuid>,
    pub item_version: Option<u32>,
    pub output: Released<'a>,
    pub routing: &'a Routing,
    pub outcome: Value,
    /// `policy` for the `auto` lane, `humans` otherwise.
    pub decided_by: &'static str,
    pub decisions: Vec<TraceDecision>,
    pub qa_sampled: bool,
}

/// A release as stored.
pub(crate) struct ReleaseRow {
    pub release_seq: u64,
    pub item_id: Option<String>,
    pub output_id: String,
    pub body: String,
    pub released_at: i64,
    pub qa_sampled: bool,
}

/// Stores releases in multi-row statements.
pub(crate) async fn insert_releases(
    wtx: &mut WriteTx,
    rows: Vec<ReleaseRow>,
) -> Result<(), GateError> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<ReleaseRow> = rows.by_ref().take(200).collect();
        write_later!(wtx, q => {
            q.push("INSERT INTO releases (release_seq, item_id, output_id, body, released_at, qa_sampled, log_index) ");
            q.push_values(chunk, |mut b, r| {
                b.push_bind(to_i64(r.release_seq))
                    .push_bind(r.item_id)
                    .push_bind(r.output_id)
                    .push_bind(r.body)
                    .push_bind(r.released_at)
                    .push_bind(i64::from(r.qa_sampled))
                    .push_bind(to_i64(r.release_seq));
            });
        });
    }
    Ok(())
}

/// The released document, as logged and as consumers receive it.
#[derive(Debug, Serialize)]
struct ReleaseDocument<'a> {
    v: V1,
    release_seq: u64,
    output_id: &'a str,
    source: &'a str,
    subject: &'a str,
    model: &'a countersign_core::ModelRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_version: Option<u32>,
    lane: countersign_core::Lane,
    policy_version: u32,
    rule: &'a str,
    decided_by: &'static str,
    outcome: &'a Value,
    decisions: &'a [TraceDecision],
    qa_sampled: bool,
    released_at: chrono::DateTime<chrono::Utc>,
}

impl Gate {
    /// Logs a release inside `wtx` and returns the row to store; the release sequence number is
    /// its log index.
    pub(crate) async fn release_entry(
        &self,
        wtx: &mut WriteTx,
        draft: ReleaseDraft<'_>,
    ) -> Result<ReleaseRow, GateError> {
        let now = now_ms();
        let release_seq = wtx
            .log_size()
            .ok_or_else(|| GateError::internal("release before any log entry"))?;
        let document = ReleaseDocument {
            v: V1,
            release_seq,
            output_id: draft.output.output_id,
            source: draft.output.source,
            subject: draft.output.subject,
            model: draft.output.model,
            item_id: draft.item_id,
            item_version: draft.item_version,
            lane: draft.routing.lane,
            policy_version: draft.routing.policy_version,
            rule: &draft.routing.rule,
            decided_by: draft.decided_by,
            outcome: &draft.outcome,
            decisions: &draft.decisions,
            qa_sampled: draft.qa_sampled,
            released_at: ms_to_time(now),
        };
        let body = serde_json::to_value(&document)
            .map_err(|e| GateError::internal(format!("release document: {e}")))?;
        let body_bytes = crate::canon::value_to_vec(&body)?;
        let index = wtx
            .append_canonical(
                &self.log,
                AuditEventKind::Released,
                "gate",
                draft.item_id,
                &body_bytes,
            )
            .await?;
        let body_text = String::from_utf8(body_bytes)
            .map_err(|_| GateError::internal("release document is not canonical JSON"))?;
        debug_assert_eq!(index, release_seq);
        metrics::counter!("countersign_releases_total", "lane" => draft.routing.lane.as_str())
            .increment(1);
        Ok(ReleaseRow {
            release_seq,
            item_id: draft.item_id.map(|i| i.to_string()),
            output_id: draft.output.output_id.to_owned(),
            body: body_text,
            released_at: now,
            qa_sampled: draft.qa_sampled,
        })
    }

    pub async fn pull_releases(
        &self,
        consumer: &str,
        after: Option<u64>,
        limit: u32,
    ) -> Result<ReleasesResponse, GateError> {
        let limit = limit.clamp(1, 1000);
        let mut tx = self.db.begin_read().await?;
        let after = match after {
            Some(after) => after,
            None => {
                let stored: Option<i64> = on_tx!(&mut tx, conn => {
                    sqlx::query_scalar("SELECT position FROM consumer_cursors WHERE consumer = $1")
                        .bind(consumer)
                        .fetch_optional(conn)
                        .await
                        .map_err(DbError::from)?
                });
                stored.map_or(0, to_u64)
            }
        };
        // Cursor 0 means "from the start"; release sequence numbers are log indexes, and the
        // first log entry can never be a release, so position 0 is never skipped.
        let rows: Vec<(i64, String)> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT release_seq, body FROM releases WHERE release_seq > $1 ORDER BY release_seq LIMIT $2")
                .bind(to_i64(after))
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        let mut next_cursor = after;
        let mut releases = Vec::with_capacity(rows.len());
        for (seq, body) in rows {
            next_cursor = to_u64(seq);
            releases.push(ReleaseRecord {
                release_seq: to_u64(seq),
                release: serde_json::value::RawValue::from_string(body)
                    .map_err(|e| GateError::internal(format!("stored release: {e}")))?,
            });
        }
        Ok(ReleasesResponse {
            releases,
            next_cursor,
        })
    }

    /// Moves a consumer's durable cursor forward (never backwards).
    pub async fn ack_releases(&self, consumer: &str, cursor: u64) -> Result<u64, GateError> {
        let mut wtx = WriteTx::begin(&self.db).await?;
        let stored: Option<i64> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_scalar("SELECT position FROM consumer_cursors WHERE consumer = $1")
                .bind(consumer)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let position = stored.map_or(0, to_u64).max(cursor);
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("INSERT INTO consumer_cursors (consumer, position) VALUES ($1, $2) ON CONFLICT (consumer) DO UPDATE SET position = excluded.position")
                .bind(consumer)
                .bind(to_i64(position))
                .execute(conn)
                .await
                .map_err(DbError::from)?;
        });
        wtx.commit(&self.log).await?;
        Ok(position)
    }
}

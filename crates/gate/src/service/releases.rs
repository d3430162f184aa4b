//! Releases: the final outcome of an output with its trace, handed to downstream consumers
//! through a durable cursor.

use countersign_core::{AuditEventKind, Output, Routing, V1};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::Gate;
use crate::api::{ReleaseRecord, ReleasesResponse};
use crate::canon::Template;
use crate::db::{DbError, ms_to_time, now_ms, owned_chunks};
use crate::error::GateError;
use crate::log::{PreparedEntry, WriteTx, to_i64, to_u64};
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

/// A release as stored; its document is the data of its log entry.
pub(crate) struct ReleaseRow {
    pub release_seq: u64,
    pub item_id: Option<String>,
    pub output_id: String,
    pub released_at: i64,
    pub qa_sampled: bool,
}

/// Stores releases in multi-row statements.
pub(crate) async fn insert_releases(
    wtx: &mut WriteTx,
    rows: Vec<ReleaseRow>,
) -> Result<(), GateError> {
    for chunk in owned_chunks(rows, 200) {
        write_later!(wtx, q => {
            q.push("INSERT INTO releases (release_seq, item_id, output_id, released_at, qa_sampled, log_index) ");
            q.push_values(chunk, |mut b, r| {
                b.push_bind(to_i64(r.release_seq))
                    .push_bind(r.item_id)
                    .push_bind(r.output_id)
                    .push_bind(r.released_at)
                    .push_bind(i64::from(r.qa_sampled))
                    .push_bind(to_i64(r.release_seq));
            });
        });
    }
    Ok(())
}

/// The `data` member of a stored log entry, byte for byte.
pub(crate) fn entry_data(entry: &[u8]) -> Result<Box<serde_json::value::RawValue>, GateError> {
    #[derive(serde::Deserialize)]
    struct Entry<'a> {
        #[serde(borrow)]
        data: &'a serde_json::value::RawValue,
    }
    let parsed: Entry<'_> = serde_json::from_slice(entry)
        .map_err(|e| GateError::internal(format!("stored release entry: {e}")))?;
    Ok(parsed.data.to_owned())
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

/// A release built before its log index, which is also its release sequence number, is known.
pub(crate) struct PreparedRelease {
    entry: PreparedEntry,
    item_id: Option<String>,
    output_id: String,
    released_at: i64,
    qa_sampled: bool,
    lane: countersign_core::Lane,
}

/// Builds the release document and its log entry; [`append_release`] logs it.
pub(crate) fn prepare_release(
    draft: ReleaseDraft<'_>,
    now: i64,
) -> Result<PreparedRelease, GateError> {
    let document = ReleaseDocument {
        v: V1,
        release_seq: 0,
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
    let value = serde_json::to_value(&document)
        .map_err(|e| GateError::internal(format!("release document: {e}")))?;
    let body = Template::object_with_hole(&value, "release_seq")?;
    let entry = PreparedEntry::new(AuditEventKind::Released, "gate", draft.item_id, now, &body)?;
    Ok(PreparedRelease {
        entry,
        item_id: draft.item_id.map(|i| i.to_string()),
        output_id: draft.output.output_id.to_owned(),
        released_at: now,
        qa_sampled: draft.qa_sampled,
        lane: draft.routing.lane,
    })
}

/// Logs a prepared release inside `wtx` and returns the row to store; the release sequence
/// number is its log index.
pub(crate) async fn append_release(
    wtx: &mut WriteTx,
    log: &crate::log::AuditLog,
    prepared: PreparedRelease,
) -> Result<ReleaseRow, GateError> {
    let release_seq = wtx.append_prepared(log, &prepared.entry).await?;
    metrics::counter!("countersign_releases_total", "lane" => prepared.lane.as_str()).increment(1);
    Ok(ReleaseRow {
        release_seq,
        item_id: prepared.item_id,
        output_id: prepared.output_id,
        released_at: prepared.released_at,
        qa_sampled: prepared.qa_sampled,
    })
}

impl Gate {
    /// Logs a release inside `wtx` and returns the row to store.
    pub(crate) async fn release_entry(
        &self,
        wtx: &mut WriteTx,
        draft: ReleaseDraft<'_>,
    ) -> Result<ReleaseRow, GateError> {
        let prepared = prepare_release(draft, now_ms())?;
        append_release(wtx, &self.log, prepared).await
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
        let rows: Vec<(i64, Vec<u8>)> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT r.release_seq, e.entry FROM releases r JOIN log_entries e ON e.idx = r.log_index WHERE r.release_seq > $1 ORDER BY r.release_seq LIMIT $2")
                .bind(to_i64(after))
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        let mut next_cursor = after;
        let mut releases = Vec::with_capacity(rows.len());
        for (seq, entry) in rows {
            next_cursor = to_u64(seq);
            releases.push(ReleaseRecord {
                release_seq: to_u64(seq),
                release: entry_data(&entry)?,
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

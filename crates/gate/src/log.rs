//! The audit log: an RFC 6962 Merkle log stored next to the state it describes.
//!
//! Entries are appended inside the same transaction as their effect ([`WriteTx::append`]); the
//! hashes of completed perfect subtrees are stored so that roots and proofs for any size need only
//! `O(log n)` rows. Stored nodes never change, so a process-wide cache of them is always valid,
//! even with several gate processes sharing one PostgreSQL database.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use countersign_core::checkpoint::{
    Checkpoint, NoteSigner, NoteVerifier, Receipt, sign_checkpoint,
};
use countersign_core::merkle::{self, Frontier, Hash, NodeId};
use countersign_core::{AuditEventKind, V1};
use serde_json::Value;
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::canon::Template;
use crate::db::{Db, DbError, SqliteTx, Tx, now_ms};
use crate::error::GateError;
use crate::on_tx;

/// Rows per multi-row INSERT: well under SQLite's limit on bound parameters.
const INSERT_CHUNK: usize = 400;
/// Nodes kept in the process cache before it is cleared (about 80 MB at most).
const NODE_CACHE_LIMIT: usize = 1_000_000;

/// The gate's view of its log: identity, signing key and a cache of immutable tree nodes.
#[derive(Debug)]
pub struct AuditLog {
    origin: String,
    signer: NoteSigner,
    nodes: Mutex<HashMap<NodeId, Hash>>,
    latest: Mutex<Option<SignedCheckpoint>>,
    /// The right edge of the largest log this process committed: the next writer starts from it
    /// when the log still has that size, instead of reading the frontier's nodes.
    committed: Mutex<Option<Frontier>>,
    /// Checkpoints handed out in receipts but not yet stored; [`AuditLog::checkpoint`] (run every
    /// second while there is traffic) stores them. Each covers only committed entries, so one
    /// lost in a crash is still a valid signature over the log, merely absent from the table.
    unsaved: Mutex<Vec<SignedCheckpoint>>,
}

/// A checkpoint and its signed-note text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: String,
}

impl AuditLog {
    pub fn new(origin: String, signer: NoteSigner) -> Self {
        AuditLog {
            origin,
            signer,
            nodes: Mutex::new(HashMap::new()),
            latest: Mutex::new(None),
            committed: Mutex::new(None),
            unsaved: Mutex::new(Vec::new()),
        }
    }

    /// The frontier this process last committed, if the log still has its size.
    fn committed_frontier(&self, size: u64) -> Option<Frontier> {
        self.committed
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|f| f.size() == size)
    }

    fn note_committed(&self, frontier: &Frontier) {
        if let Ok(mut committed) = self.committed.lock()
            && committed
                .as_ref()
                .is_none_or(|c| c.size() < frontier.size())
        {
            *committed = Some(frontier.clone());
        }
    }

    fn sign(&self, size: u64, root: Hash) -> Result<SignedCheckpoint, GateError> {
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
            extensions: Vec::new(),
        };
        let note = sign_checkpoint(&checkpoint, &self.signer)
            .map_err(|e| GateError::internal(format!("signing checkpoint: {e}")))?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// A signed checkpoint covering the committed log `committed`: the latest one if it is at
    /// least as large, else a new one (to be stored by the next [`AuditLog::checkpoint`]).
    pub fn checkpoint_of(&self, committed: &Frontier) -> Result<SignedCheckpoint, GateError> {
        let mut latest = self
            .latest
            .lock()
            .map_err(|_| GateError::internal("checkpoint lock poisoned"))?;
        if let Some(l) = latest.as_ref()
            && l.checkpoint.size >= committed.size()
        {
            return Ok(l.clone());
        }
        let signed = self.sign(committed.size(), committed.root())?;
        *latest = Some(signed.clone());
        drop(latest);
        if let Ok(mut unsaved) = self.unsaved.lock() {
            unsaved.push(signed.clone());
        }
        Ok(signed)
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    fn cached(&self, id: NodeId) -> Option<Hash> {
        self.nodes.lock().ok().and_then(|m| m.get(&id).copied())
    }

    fn remember(&self, found: &[(NodeId, Hash)]) {
        if let Ok(mut cache) = self.nodes.lock() {
            if cache.len() + found.len() > NODE_CACHE_LIMIT {
                cache.clear();
            }
            cache.extend(found.iter().copied());
        }
    }

    /// Fetches the given perfect-subtree hashes, from the cache or the database.
    pub async fn load_nodes(
        &self,
        tx: &mut Tx,
        ids: &[NodeId],
    ) -> Result<HashMap<NodeId, Hash>, GateError> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.cached(*id) {
                Some(hash) => {
                    found.insert(*id, hash);
                }
                None => missing.push(*id),
            }
        }
        // Leaves are not stored as nodes: a leaf's hash is that of its entry, which the log
        // keeps anyway, so the writer saves one row per entry and proofs hash the few they need.
        let (leaves, missing): (Vec<NodeId>, Vec<NodeId>) =
            missing.into_iter().partition(|id| id.level == 0);
        for chunk in leaves.chunks(INSERT_CHUNK) {
            let rows: Vec<(i64, Vec<u8>)> = on_tx!(tx, conn => {
                let mut q = QueryBuilder::new("SELECT idx, entry FROM log_entries WHERE idx IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(to_i64(id.index));
                }
                q.push(")");
                q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
            });
            let fetched: Vec<(NodeId, Hash)> = rows
                .into_iter()
                .map(|(idx, entry)| (NodeId::new(0, to_u64(idx)), merkle::leaf_hash(&entry)))
                .collect();
            self.remember(&fetched);
            found.extend(fetched);
        }
        for chunk in missing.chunks(INSERT_CHUNK) {
            let rows: Vec<(i64, i64, Vec<u8>)> = on_tx!(tx, conn => {
                let mut q = QueryBuilder::new("SELECT level, idx, hash FROM log_nodes WHERE ");
                for (i, id) in chunk.iter().enumerate() {
                    if i > 0 {
                        q.push(" OR ");
                    }
                    q.push("(level = ")
                        .push_bind(i64::from(id.level))
                        .push(" AND idx = ")
                        .push_bind(to_i64(id.index))
                        .push(")");
                }
                q.build_query_as().fetch_all(conn).await.map_err(DbError::from)?
            });
            let mut fetched = Vec::with_capacity(rows.len());
            for (level, idx, hash) in rows {
                let id = NodeId {
                    level: u8::try_from(level)
                        .map_err(|_| GateError::internal("bad node level"))?,
                    index: to_u64(idx),
                };
                let hash = merkle::hash_from_slice(&hash)
                    .map_err(|e| GateError::internal(format!("stored node {id:?}: {e}")))?;
                fetched.push((id, hash));
            }
            self.remember(&fetched);
            found.extend(fetched);
        }
        Ok(found)
    }

    /// The log's size as committed.
    pub async fn size(&self, tx: &mut Tx) -> Result<u64, GateError> {
        let size: i64 = on_tx!(tx, conn => {
            sqlx::query_scalar("SELECT size FROM log_head WHERE id = 1")
                .fetch_one(conn)
                .await
                .map_err(DbError::from)?
        });
        Ok(to_u64(size))
    }

    /// The root hash of the log at `size`.
    pub async fn root_at(&self, tx: &mut Tx, size: u64) -> Result<Hash, GateError> {
        let ids = merkle::root_nodes(size);
        let nodes = self.load_nodes(tx, &ids).await?;
        merkle::root_from_nodes(size, |id| nodes.get(&id).copied())
            .map_err(|e| GateError::internal(format!("log root at {size}: {e}")))
    }

    pub async fn inclusion_proof(
        &self,
        tx: &mut Tx,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, GateError> {
        let plan = merkle::inclusion_plan(index, size)
            .map_err(|e| GateError::bad_request("invalid_proof_request", e.to_string()))?;
        let nodes = self.load_nodes(tx, &plan.nodes()).await?;
        plan.assemble(|id| nodes.get(&id).copied())
            .map_err(|e| GateError::internal(format!("inclusion proof: {e}")))
    }

    pub async fn consistency_proof(
        &self,
        tx: &mut Tx,
        size1: u64,
        size2: u64,
    ) -> Result<Vec<Hash>, GateError> {
        let plan = merkle::consistency_plan(size1, size2)
            .map_err(|e| GateError::bad_request("invalid_proof_request", e.to_string()))?;
        let nodes = self.load_nodes(tx, &plan.nodes()).await?;
        plan.assemble(|id| nodes.get(&id).copied())
            .map_err(|e| GateError::internal(format!("consistency proof: {e}")))
    }

    /// A signed checkpoint covering everything committed so far; signs a new one only when the
    /// log has grown since the last, and stores every checkpoint handed out since the last call.
    pub async fn checkpoint(&self, db: &Db) -> Result<SignedCheckpoint, GateError> {
        let mut tx = db.begin_read().await?;
        let size = self.size(&mut tx).await?;
        let known = self.latest.lock().ok().and_then(|l| l.clone());
        let signed = match known {
            Some(latest) if latest.checkpoint.size >= size => latest,
            _ => {
                let root = self.root_at(&mut tx, size).await?;
                drop(tx);
                let signed_now = self.sign(size, root)?;
                self.note_latest(&signed_now);
                if let Ok(mut unsaved) = self.unsaved.lock() {
                    unsaved.push(signed_now.clone());
                }
                signed_now
            }
        };
        self.store_unsaved(db).await?;
        Ok(signed)
    }

    /// Stores the checkpoints handed out but not yet in the `checkpoints` table.
    async fn store_unsaved(&self, db: &Db) -> Result<(), GateError> {
        let pending: Vec<SignedCheckpoint> = match self.unsaved.lock() {
            Ok(mut unsaved) => std::mem::take(&mut *unsaved),
            Err(_) => return Err(GateError::internal("checkpoint lock poisoned")),
        };
        if pending.is_empty() {
            return Ok(());
        }
        let stored = async {
            let mut tx = db.begin_write().await?;
            let now = now_ms();
            for chunk in pending.chunks(INSERT_CHUNK) {
                on_tx!(&mut tx, conn => {
                    let mut q = QueryBuilder::new("INSERT INTO checkpoints (size, root, note, created_at) ");
                    q.push_values(chunk, |mut row, signed| {
                        row.push_bind(to_i64(signed.checkpoint.size))
                            .push_bind(signed.checkpoint.root.to_vec())
                            .push_bind(signed.note.as_str())
                            .push_bind(now);
                    });
                    q.push(" ON CONFLICT (size) DO NOTHING");
                    q.build().execute(conn).await.map_err(DbError::from)?;
                });
            }
            tx.commit().await?;
            Ok::<(), GateError>(())
        }
        .await;
        if stored.is_err()
            && let Ok(mut unsaved) = self.unsaved.lock()
        {
            unsaved.extend(pending);
        }
        stored
    }

    fn note_latest(&self, signed: &SignedCheckpoint) {
        if let Ok(mut latest) = self.latest.lock()
            && latest
                .as_ref()
                .is_none_or(|l| l.checkpoint.size < signed.checkpoint.size)
        {
            *latest = Some(signed.clone());
        }
    }

    /// A receipt for the entry at `index` under `checkpoint`.
    pub async fn receipt(
        &self,
        tx: &mut Tx,
        index: u64,
        checkpoint: &SignedCheckpoint,
    ) -> Result<Receipt, GateError> {
        let proof = self
            .inclusion_proof(tx, index, checkpoint.checkpoint.size)
            .await?;
        Ok(Receipt {
            v: V1,
            leaf_index: index,
            tree_size: checkpoint.checkpoint.size,
            inclusion_proof: proof.iter().map(|h| B64.encode(h)).collect(),
            checkpoint: checkpoint.note.clone(),
        })
    }

    /// Reads the stored bytes of entries `[start, end)`.
    pub async fn entries(
        &self,
        tx: &mut Tx,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, GateError> {
        let rows: Vec<(i64, Vec<u8>)> = on_tx!(tx, conn => {
            sqlx::query_as("SELECT idx, entry FROM log_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx")
                .bind(to_i64(start))
                .bind(to_i64(end))
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        Ok(rows.into_iter().map(|(i, e)| (to_u64(i), e)).collect())
    }
}

/// An audit entry written before its log index is known, so that the work of building it
/// happens outside the writer; [`WriteTx::append_prepared`] fills in the index.
#[derive(Debug, Clone)]
pub struct PreparedEntry {
    template: Template,
    kind: AuditEventKind,
    item_id: Option<Uuid>,
    at: i64,
}

impl PreparedEntry {
    /// An entry of `kind` by `actor` at `at` (ms since the epoch) with `data`, whose holes (if
    /// any, such as a release's `release_seq`) also take the entry's index.
    pub fn new(
        kind: AuditEventKind,
        actor: &str,
        item_id: Option<Uuid>,
        at: i64,
        data: &Template,
    ) -> Result<Self, GateError> {
        // The members of an AuditEntry in JCS order: actor, at, data, index, item_id, kind, v.
        let at_text = serde_json::to_string(&crate::db::ms_to_time(at))
            .map_err(|e| GateError::internal(format!("audit entry time: {e}")))?;
        let mut template = Template::fixed(b"{\"actor\":".to_vec());
        template.push_string(actor)?;
        template.push(b",\"at\":");
        template.push(at_text.as_bytes());
        template.push(b",\"data\":");
        template.append(data);
        template.push(b",\"index\":");
        template.hole();
        if let Some(item_id) = item_id {
            template.push(b",\"item_id\":");
            template.push_string(&item_id.to_string())?;
        }
        template.push(b",\"kind\":");
        template.push_string(kind_name(kind))?;
        template.push(b",\"v\":1}");
        Ok(PreparedEntry {
            template,
            kind,
            item_id,
            at,
        })
    }

    /// [`PreparedEntry::new`] with the data as a JSON value.
    pub fn from_value(
        kind: AuditEventKind,
        actor: &str,
        item_id: Option<Uuid>,
        at: i64,
        data: &Value,
    ) -> Result<Self, GateError> {
        let data = Template::fixed(crate::canon::value_to_vec(data)?);
        Self::new(kind, actor, item_id, at, &data)
    }

    /// The entry's bytes at log index `index`.
    pub fn render(&self, index: u64) -> Vec<u8> {
        self.template.render(index)
    }
}

/// An entry appended in a transaction, written at commit.
#[derive(Debug)]
struct PendingEntry {
    index: u64,
    bytes: Vec<u8>,
    kind: &'static str,
    item_id: Option<String>,
    at: i64,
}

/// A writing transaction that can append to the audit log. The log head is locked from the
/// start, and the appended entries and tree nodes are flushed just before commit.
pub struct WriteTx {
    pub tx: Tx,
    frontier: Option<Frontier>,
    pending_entries: Vec<PendingEntry>,
    pending_nodes: Vec<(NodeId, Hash)>,
    /// SQLite: writes queued by [`write_later!`] to run in one round trip, at the latest with the
    /// savepoint's release. Every statement is a hand-off to sqlx's SQLite worker thread and
    /// back, and on the single writer those add up to most of a small request's time.
    deferred: Option<QueryBuilder<'static, sqlx::Sqlite>>,
}

/// Queues a write whose result nobody reads: on SQLite it runs with the next round trip of the
/// transaction ([`WriteTx::run_deferred`] or the commit), on PostgreSQL at once. `$q` is a
/// `QueryBuilder` to write exactly one statement into; bind owned values, since on SQLite the
/// statement outlives the caller's borrows.
#[macro_export]
macro_rules! write_later {
    ($wtx:expr, $q:ident => $body:block) => {{
        let wtx: &mut $crate::log::WriteTx = $wtx;
        if let Some($q) = wtx.deferred_sqlite() {
            $body
        } else if let $crate::db::Tx::Postgres(pg) = &mut wtx.tx {
            let mut builder = sqlx::QueryBuilder::<sqlx::Postgres>::new("");
            {
                let $q = &mut builder;
                $body
            }
            let conn: &mut sqlx::PgConnection = pg;
            builder
                .build()
                .execute(conn)
                .await
                .map_err($crate::db::DbError::from)?;
        } else {
            return Err($crate::error::GateError::internal(
                "a write outside a write transaction",
            ));
        }
    }};
}

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx")
            .field("tx", &self.tx)
            .field("frontier", &self.frontier)
            .field("pending_entries", &self.pending_entries.len())
            .finish_non_exhaustive()
    }
}

impl WriteTx {
    pub async fn begin(db: &Db) -> Result<Self, GateError> {
        Ok(WriteTx {
            tx: db.begin_write().await?,
            frontier: None,
            pending_entries: Vec::new(),
            pending_nodes: Vec::new(),
            deferred: None,
        })
    }

    /// The queue of deferred SQLite statements, ready for one more (see [`write_later!`]);
    /// `None` on PostgreSQL.
    pub fn deferred_sqlite(&mut self) -> Option<&mut QueryBuilder<'static, sqlx::Sqlite>> {
        if !matches!(self.tx, Tx::Sqlite(SqliteTx::Write(_))) {
            return None;
        }
        let q = self.deferred.get_or_insert_with(|| QueryBuilder::new(""));
        if !q.sql().is_empty() {
            q.push("; ");
        }
        Some(q)
    }

    /// Runs the queued writes now, before a read that must see them.
    pub async fn run_deferred(&mut self) -> Result<(), GateError> {
        if let Some(mut q) = self.deferred.take()
            && !q.sql().is_empty()
            && let Tx::Sqlite(sqlite) = &mut self.tx
        {
            let conn: &mut sqlx::SqliteConnection = sqlite;
            q.build().execute(conn).await.map_err(DbError::from)?;
        }
        Ok(())
    }

    async fn frontier(&mut self, log: &AuditLog) -> Result<&mut Frontier, GateError> {
        if self.frontier.is_none() {
            let known = match &self.tx {
                Tx::Sqlite(SqliteTx::Write(guard)) => guard.log_frontier().cloned(),
                _ => None,
            };
            let frontier = match known {
                Some(frontier) => frontier,
                None => {
                    let size = log.size(&mut self.tx).await?;
                    match log.committed_frontier(size) {
                        Some(frontier) => frontier,
                        None => {
                            let ids = merkle::root_nodes(size);
                            let nodes = log.load_nodes(&mut self.tx, &ids).await?;
                            let hashes = ids
                                .iter()
                                .map(|id| {
                                    nodes.get(id).copied().ok_or_else(|| {
                                        GateError::internal(format!("log node {id:?} is missing"))
                                    })
                                })
                                .collect::<Result<Vec<_>, _>>()?;
                            Frontier::from_nodes(size, hashes)
                                .map_err(|e| GateError::internal(format!("log frontier: {e}")))?
                        }
                    }
                }
            };
            self.frontier = Some(frontier);
        }
        self.frontier
            .as_mut()
            .ok_or_else(|| GateError::internal("log frontier not loaded"))
    }

    /// Appends one entry and returns its index. The entry is written when the transaction
    /// commits, atomically with everything else it did.
    pub async fn append(
        &mut self,
        log: &AuditLog,
        kind: AuditEventKind,
        actor: &str,
        item_id: Option<Uuid>,
        data: Value,
    ) -> Result<u64, GateError> {
        let entry = PreparedEntry::from_value(kind, actor, item_id, now_ms(), &data)?;
        self.append_prepared(log, &entry).await
    }

    /// Appends an entry built beforehand and returns its index.
    pub async fn append_prepared(
        &mut self,
        log: &AuditLog,
        entry: &PreparedEntry,
    ) -> Result<u64, GateError> {
        let frontier = self.frontier(log).await?;
        let index = frontier.size();
        let bytes = entry.render(index);
        let completed = frontier.append(merkle::leaf_hash(&bytes));
        self.pending_nodes.extend(completed);
        self.pending_entries.push(PendingEntry {
            index,
            bytes,
            kind: kind_name(entry.kind),
            item_id: entry.item_id.map(|i| i.to_string()),
            at: entry.at,
        });
        Ok(index)
    }

    /// The log size this transaction will leave behind.
    pub fn log_size(&self) -> Option<u64> {
        self.frontier.as_ref().map(Frontier::size)
    }

    /// Flushes appended entries and nodes, moves the log head and commits.
    pub async fn commit(self, log: &AuditLog) -> Result<(), GateError> {
        self.commit_inner(log).await.map(|_| ())
    }

    /// Commits and returns a signed checkpoint that covers every entry this transaction
    /// appended, for receipts. The checkpoint is signed after the commit, outside the writer,
    /// and the requests of one group commit share it.
    pub async fn commit_with_checkpoint(
        self,
        log: &AuditLog,
        db: &Db,
    ) -> Result<SignedCheckpoint, GateError> {
        let appended = !self.pending_entries.is_empty();
        match self.commit_inner(log).await? {
            Some(committed) if appended => log.checkpoint_of(&committed),
            // Nothing new was logged (only repeats or refusals): the latest checkpoint covers
            // every earlier entry.
            _ => log.checkpoint(db).await,
        }
    }

    /// Commits; returns the log's right edge as that commit left it, when this transaction
    /// appended to the log.
    async fn commit_inner(mut self, log: &AuditLog) -> Result<Option<Frontier>, GateError> {
        let Some(size) = self.log_size() else {
            match self.tx {
                Tx::Sqlite(SqliteTx::Write(guard)) => {
                    guard.finish(self.deferred.take(), None).await?;
                }
                tx => tx.commit().await?,
            }
            return Ok(None);
        };
        let committed = match self.tx {
            Tx::Sqlite(SqliteTx::Write(guard)) => {
                // The queued writes, entries, nodes and head go with the savepoint's release in
                // one round trip.
                let mut q = self
                    .deferred
                    .take()
                    .unwrap_or_else(|| QueryBuilder::new(""));
                if !q.sql().is_empty() {
                    q.push("; ");
                }
                let entries = std::mem::take(&mut self.pending_entries);
                write_log_rows(&mut q, entries, &self.pending_nodes, size);
                guard
                    .finish(Some(q), self.frontier.clone())
                    .await?
                    .ok_or_else(|| GateError::internal("the commit left no log frontier"))?
            }
            Tx::Postgres(ref mut pg) => {
                let conn: &mut sqlx::PgConnection = pg;
                let entries = std::mem::take(&mut self.pending_entries);
                for chunk in crate::db::owned_chunks(entries, INSERT_CHUNK) {
                    let mut q = QueryBuilder::new("");
                    write_log_rows(&mut q, chunk, &[], 0);
                    q.build().execute(&mut *conn).await.map_err(DbError::from)?;
                }
                let interior: Vec<(NodeId, Hash)> = self
                    .pending_nodes
                    .iter()
                    .filter(|(id, _)| id.level > 0)
                    .copied()
                    .collect();
                for chunk in interior.chunks(INSERT_CHUNK) {
                    let mut q = QueryBuilder::new("");
                    write_log_rows(&mut q, Vec::new(), chunk, 0);
                    q.build().execute(&mut *conn).await.map_err(DbError::from)?;
                }
                sqlx::query("UPDATE log_head SET size = $1 WHERE id = 1")
                    .bind(to_i64(size))
                    .execute(&mut *conn)
                    .await
                    .map_err(DbError::from)?;
                self.tx.commit().await?;
                self.frontier
                    .clone()
                    .ok_or_else(|| GateError::internal("log frontier not loaded"))?
            }
            Tx::Sqlite(_) => {
                return Err(GateError::internal(
                    "a log append outside the SQLite writer",
                ));
            }
        };
        log.remember(&self.pending_nodes);
        if let Some(own) = &self.frontier {
            log.note_committed(own);
        }
        Ok(Some(committed))
    }
}

/// Appends the statements that store `entries` and `nodes` (multi-row INSERTs in chunks) and,
/// when `size` is not 0, move the log head to it. Statements are separated by `;` for SQLite's
/// multi-statement execution; PostgreSQL callers pass one kind of row at a time.
fn write_log_rows<'a, DB>(
    q: &mut QueryBuilder<'a, DB>,
    entries: Vec<PendingEntry>,
    nodes: &[(NodeId, Hash)],
    size: u64,
) where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'static str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut first = true;
    let mut separate = |q: &mut QueryBuilder<'a, DB>| {
        if !std::mem::take(&mut first) {
            q.push("; ");
        }
    };
    for chunk in crate::db::owned_chunks(entries, INSERT_CHUNK) {
        separate(q);
        q.push("INSERT INTO log_entries (idx, entry, kind, item_id, at) ");
        q.push_values(chunk, |mut row, e| {
            row.push_bind(to_i64(e.index))
                .push_bind(e.bytes)
                .push_bind(e.kind)
                .push_bind(e.item_id)
                .push_bind(e.at);
        });
    }
    // Leaves are derived from their entries when a proof needs them (see `load_nodes`).
    let interior: Vec<&(NodeId, Hash)> = nodes.iter().filter(|(id, _)| id.level > 0).collect();
    for chunk in interior.chunks(INSERT_CHUNK) {
        separate(q);
        q.push("INSERT INTO log_nodes (level, idx, hash) ");
        q.push_values(chunk, |mut row, (id, hash)| {
            row.push_bind(i64::from(id.level))
                .push_bind(to_i64(id.index))
                .push_bind(hash.to_vec());
        });
    }
    if size > 0 {
        separate(q);
        q.push("UPDATE log_head SET size = ")
            .push_bind(to_i64(size))
            .push(" WHERE id = 1");
    }
}

/// The serde name of an event kind, as stored in the `kind` column.
pub fn kind_name(kind: AuditEventKind) -> &'static str {
    use AuditEventKind as K;
    match kind {
        K::OutputReceived => "output_received",
        K::Routed => "routed",
        K::Superseded => "superseded",
        K::Leased => "leased",
        K::LeaseRenewed => "lease_renewed",
        K::LeaseReturned => "lease_returned",
        K::LeaseExpired => "lease_expired",
        K::Withdrawn => "withdrawn",
        K::Reassigned => "reassigned",
        K::Decided => "decided",
        K::Conflict => "conflict",
        K::Rejected => "rejected",
        K::Escalated => "escalated",
        K::Released => "released",
        K::PolicyActivated => "policy_activated",
        K::PolicyRolledBack => "policy_rolled_back",
        K::UserCreated => "user_created",
        K::KeyEnrolled => "key_enrolled",
        K::KeyRotated => "key_rotated",
        K::KeyRevoked => "key_revoked",
        K::ApiKeyCreated => "api_key_created",
        K::QaQueued => "qa_queued",
        K::DecisionFlagged => "decision_flagged",
        K::CircuitTripped => "circuit_tripped",
        K::CircuitReset => "circuit_reset",
    }
}

/// Database integers are signed; log positions never exceed `i64::MAX`.
pub fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use countersign_core::AuditEntry;
    use serde_json::json;

    /// A prepared entry renders exactly the JCS bytes of the AuditEntry it stands for.
    #[test]
    fn a_prepared_entry_is_the_canonical_audit_entry() {
        let cases = [
            (
                AuditEventKind::Decided,
                "rita \"r\" \u{e9}",
                Some(countersign_core::new_id()),
                json!({"jws": "a.b.c", "n": 1.5}),
            ),
            (AuditEventKind::OutputReceived, "scorer", None, json!({})),
            (
                AuditEventKind::Released,
                "gate",
                Some(countersign_core::new_id()),
                json!({"release_seq": 12, "z": [null]}),
            ),
        ];
        for (kind, actor, item_id, data) in cases {
            for (at, index) in [
                (1_764_580_000_000_i64, 0_u64),
                (1_764_580_000_123, 12),
                (1_764_580_000_100, 987_654_321),
            ] {
                let entry = AuditEntry {
                    v: V1,
                    index,
                    at: crate::db::ms_to_time(at),
                    kind,
                    actor: actor.to_owned(),
                    item_id,
                    data: data.clone(),
                };
                let prepared = PreparedEntry::from_value(kind, actor, item_id, at, &data).unwrap();
                assert_eq!(
                    String::from_utf8(prepared.render(index)).unwrap(),
                    String::from_utf8(
                        countersign_core::canonical::to_canonical_bytes(&entry).unwrap()
                    )
                    .unwrap()
                );
            }
        }
        // A hole in the data takes the entry's index too.
        let data = json!({"release_seq": 0, "outcome": {"release_seq": "kept"}});
        let template = Template::object_with_hole(&data, "release_seq").unwrap();
        let prepared = PreparedEntry::new(
            AuditEventKind::Released,
            "gate",
            None,
            1_764_580_000_000,
            &template,
        )
        .unwrap();
        let mut filled = data.clone();
        filled["release_seq"] = json!(77);
        let entry = AuditEntry {
            v: V1,
            index: 77,
            at: crate::db::ms_to_time(1_764_580_000_000),
            kind: AuditEventKind::Released,
            actor: "gate".into(),
            item_id: None,
            data: filled,
        };
        assert_eq!(
            prepared.render(77),
            countersign_core::canonical::to_canonical_bytes(&entry).unwrap()
        );
    }
}

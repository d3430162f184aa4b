//! Storage: one interface over an embedded SQLite file or a shared PostgreSQL database.
//!
//! The two backends differ only in their migrations (column types) and in how a claim locks rows,
//! so the queries are written once and the [`on_tx!`] macro expands each body for both concrete
//! connection types. That keeps the SQLite and PostgreSQL code paths from drifting apart while
//! still using sqlx's native drivers rather than its `Any` driver.
//!
//! Every writing transaction takes the audit log's head first (SQLite: the single writer
//! connection; PostgreSQL: `SELECT ... FOR UPDATE` on `log_head`). The log is one sequence, so
//! writes serialize on it anyway, and taking it first gives every transaction the same lock order.
//!
//! SQLite writes use group commit (see [`SqliteWriter`]): the requests that queue for the writer
//! while one durable commit is under way run as savepoints of one transaction and share the next
//! commit's fsync. Each request still learns its own result only once that commit is on disk.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use countersign_core::merkle::Frontier;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

/// Expands `$body` once per backend with `$conn` bound to the concrete connection
/// (`&mut SqliteConnection` or `&mut PgConnection`).
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::db::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

/// The database the gate keeps its state in.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite {
        /// One connection: SQLite has one writer, and queuing writers here avoids busy errors.
        writer: SqliteWriter,
        reader: SqlitePool,
        wal: Arc<WalCheckpointer>,
    },
    Postgres(PgPool),
}

/// Copies the SQLite write-ahead log back into the database file on its own connection.
///
/// SQLite's default is to do this inside the COMMIT that crosses 1 000 WAL pages, so every few
/// dozen commits one batch of requests waited while a few MB were copied and the database file
/// synced. Here the writer never checkpoints by itself (`wal_autocheckpoint = 0`); a background
/// task runs PASSIVE checkpoints, which never block the writer and do the copying. But the WAL
/// only starts over from its beginning when a write transaction begins after *everything* in
/// it was copied, which under steady load never happens between two back-to-back commits (the
/// WAL grew by 50 MB a second in the review benchmark). So once the background has seen the WAL
/// past [`WAL_RESTART_FRAMES`], the committer runs one more PASSIVE checkpoint right after a
/// COMMIT, before the next transaction: it only copies the frames since the last background
/// pass, and the next transaction restarts the WAL.
#[derive(Debug)]
pub struct WalCheckpointer {
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// How often the background checkpoint runs.
const WAL_CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// WAL size (in pages) past which the writer lets the WAL start over.
const WAL_RESTART_FRAMES: i64 = 1000;

impl WalCheckpointer {
    fn start(mut conn: SqliteConnection, frames: Arc<std::sync::atomic::AtomicI64>) -> Self {
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(WAL_CHECKPOINT_EVERY);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let done: Result<(i64, i64, i64), _> =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&mut conn)
                        .await;
                match done {
                    Ok((_busy, log, _copied)) => {
                        frames.store(log, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                }
            }
        });
        WalCheckpointer {
            task: std::sync::Mutex::new(Some(task)),
        }
    }

    fn stop(&self) {
        if let Some(task) = self.task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An open transaction on either backend.
#[derive(Debug)]
pub enum Tx {
    Sqlite(SqliteTx),
    Postgres(PgTx),
}

/// An SQLite transaction: a read snapshot, one request's savepoint on the writer, or a reader
/// connection outside a transaction (each statement its own snapshot).
#[derive(Debug)]
pub enum SqliteTx {
    Read(Transaction<'static, Sqlite>),
    Write(WriteGuard),
    Autocommit(PoolConnection<Sqlite>),
}

impl Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match self {
            SqliteTx::Read(tx) => tx,
            SqliteTx::Write(guard) => &guard.state.conn,
            SqliteTx::Autocommit(conn) => conn,
        }
    }
}

impl DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            SqliteTx::Read(tx) => tx,
            SqliteTx::Write(guard) => &mut guard.state.conn,
            SqliteTx::Autocommit(conn) => conn,
        }
    }
}

/// A PostgreSQL transaction, or a pooled connection outside one.
#[derive(Debug)]
pub enum PgTx {
    Tx(Transaction<'static, Postgres>),
    Autocommit(PoolConnection<Postgres>),
}

impl Deref for PgTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match self {
            PgTx::Tx(tx) => tx,
            PgTx::Autocommit(conn) => conn,
        }
    }
}

impl DerefMut for PgTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            PgTx::Tx(tx) => tx,
            PgTx::Autocommit(conn) => conn,
        }
    }
}

/// The single SQLite writer connection with group commit.
///
/// A request takes the connection, opens the shared transaction if none is open, and runs inside
/// `SAVEPOINT request`. Finishing releases the savepoint, registers for the next commit, hands
/// the connection on and queues a commit behind the requests already waiting (the mutex is
/// FIFO), so everything that queued during the previous fsync is committed by one `COMMIT`.
/// A request that fails or is dropped leaves a mark and the next holder rolls back to its
/// savepoint, so one failure does not undo or poison the others. A request's `commit` returns
/// only when the `COMMIT` covering it succeeded (WAL, `synchronous=FULL`: on disk); if that
/// commit fails, every request of the batch gets the error and none of them took effect.
#[derive(Clone)]
pub struct SqliteWriter {
    state: Arc<Mutex<WriterState>>,
    /// Wakes the committer: a request released its savepoint and waits for a COMMIT.
    commit_wanted: Arc<tokio::sync::Notify>,
    /// Requests waiting for the connection.
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    _committer: Arc<AbortOnDrop>,
}

/// Stops a background task when the last handle to it goes.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteWriter")
    }
}

struct WriterState {
    conn: SqliteConnection,
    /// The shared transaction is open.
    open: bool,
    /// The last holder left without finishing: its savepoint is still open and must be undone.
    abandoned: bool,
    /// An empty `request` savepoint is open for the next request: each request releases its own
    /// and opens the next one in the same round trip, so a request that finds the transaction
    /// open starts without one.
    savepoint_ready: bool,
    /// Requests whose savepoints were released into the open transaction, awaiting its commit.
    waiters: Vec<oneshot::Sender<Result<Option<Frontier>, String>>>,
    /// The audit log's right edge as the next request will find it: after the last released
    /// savepoint. Kept here, not re-read from `log_head` and `log_nodes` by every request, because
    /// only this connection writes while the shared transaction is open; it is dropped whenever
    /// the transaction is lost and checked against `log_head` when a new one begins, in case
    /// another process (an admin command) wrote in between.
    log_frontier: Option<Frontier>,
    closed: bool,
}

/// One request's hold on the writer, inside its savepoint.
pub struct WriteGuard {
    state: OwnedMutexGuard<WriterState>,
    commit_wanted: Arc<tokio::sync::Notify>,
    finished: bool,
}

impl std::fmt::Debug for WriteGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteGuard")
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.state.abandoned = true;
            // The committer undoes it, so that a failed request does not leave the transaction
            // (and SQLite's write lock) open until the next request comes.
            self.commit_wanted.notify_one();
        }
    }
}

/// Counts a request as waiting for the writer for as long as it waits, even if it gives up.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl WriterState {
    /// Undoes what an abandoned request left behind.
    async fn tidy(&mut self) {
        if !self.abandoned {
            return;
        }
        self.abandoned = false;
        // ROLLBACK TO keeps the savepoint open, now empty: ready for the next request.
        let undone = sqlx::query("ROLLBACK TO SAVEPOINT request")
            .execute(&mut self.conn)
            .await;
        match undone {
            // SQLite may have rolled back the whole transaction itself (I/O error, full disk):
            // nothing of the batch is stored, so every waiting request fails.
            Err(e) => self.abort(&format!("write transaction lost: {e}")).await,
            Ok(_) if self.waiters.is_empty() => self.abort("nothing to commit").await,
            Ok(_) => self.savepoint_ready = true,
        }
    }

    async fn abort(&mut self, why: &str) {
        if self.open {
            let _ignored = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
        }
        self.open = false;
        self.savepoint_ready = false;
        self.log_frontier = None;
        for waiter in self.waiters.drain(..) {
            let _ignored = waiter.send(Err(why.to_owned()));
        }
    }

    /// Opens the shared transaction with an empty savepoint ready for a request.
    async fn open_transaction(&mut self) -> Result<(), DbError> {
        // IMMEDIATE: take the write lock now, waiting (busy_timeout) for another process such as
        // a command-line admin tool, rather than failing on a later upgrade. The log's size
        // comes in the same round trip, to see whether anyone else appended.
        let begun = sqlx::query_scalar::<_, i64>(
            "BEGIN IMMEDIATE; SAVEPOINT request; SELECT size FROM log_head WHERE id = 1",
        )
        .fetch_optional(&mut self.conn)
        .await;
        let size = match begun {
            Ok(size) => size,
            Err(e) => {
                // A failed BEGIN may still have opened the transaction before SAVEPOINT failed.
                let _ignored = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
                return Err(e.into());
            }
        };
        let current = size.and_then(|s| u64::try_from(s).ok());
        if self.log_frontier.as_ref().map(Frontier::size) != current {
            self.log_frontier = None;
        }
        self.open = true;
        self.savepoint_ready = true;
        Ok(())
    }

    /// Commits the shared transaction, if anyone is waiting for it, and tells them how it went.
    async fn flush(&mut self) {
        self.tidy().await;
        if !self.open || self.waiters.is_empty() {
            return;
        }
        let committed = sqlx::query("COMMIT").execute(&mut self.conn).await;
        match committed {
            Ok(_) => {
                self.open = false;
                self.savepoint_ready = false;
                metrics::histogram!("countersign_sqlite_group_commit_size")
                    .record(self.waiters.len() as f64);
                for waiter in self.waiters.drain(..) {
                    let _ignored = waiter.send(Ok(self.log_frontier.clone()));
                }
            }
            Err(e) => self.abort(&format!("commit failed: {e}")).await,
        }
    }
}

impl SqliteWriter {
    fn new(conn: SqliteConnection, wal_frames: Arc<std::sync::atomic::AtomicI64>) -> Self {
        let state = Arc::new(Mutex::new(WriterState {
            conn,
            open: false,
            abandoned: false,
            savepoint_ready: false,
            waiters: Vec::new(),
            log_frontier: None,
            closed: false,
        }));
        let commit_wanted = Arc::new(tokio::sync::Notify::new());
        // One committer for all requests. Woken by a finished request, it queues for the
        // connection behind the requests already waiting (the mutex is FIFO), so its COMMIT
        // covers all of them. (A commit task per request used to interleave commits with the
        // queue and averaged under two requests per fsync with eight busy reviewers.)
        let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (weak, wanted, queued, frames) = (
            Arc::downgrade(&state),
            commit_wanted.clone(),
            waiting.clone(),
            wal_frames,
        );
        let committer = tokio::spawn(async move {
            loop {
                wanted.notified().await;
                let Some(state) = weak.upgrade() else { break };
                let mut state = state.lock().await;
                state.flush().await;
                if state.closed {
                    break;
                }
                if !state.open
                    && frames.load(std::sync::atomic::Ordering::Relaxed) >= WAL_RESTART_FRAMES
                {
                    frames.store(0, std::sync::atomic::Ordering::Relaxed);
                    let done = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                        .execute(&mut state.conn)
                        .await;
                    if let Err(e) = done {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
                // Requests queued during the COMMIT: open their transaction now, so the first
                // of them starts without a round trip. If that fails, it will try itself.
                if !state.open && queued.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                    let _ignored = state.open_transaction().await;
                }
            }
        });
        SqliteWriter {
            state,
            commit_wanted,
            waiting,
            _committer: Arc::new(AbortOnDrop(committer)),
        }
    }

    async fn begin(&self) -> Result<WriteGuard, DbError> {
        let waiting = Waiting::new(&self.waiting);
        let mut state = self.state.clone().lock_owned().await;
        drop(waiting);
        if state.closed {
            return Err(DbError::Sqlx(sqlx::Error::PoolClosed));
        }
        state.tidy().await;
        if !state.open {
            state.open_transaction().await?;
        } else if !state.savepoint_ready {
            sqlx::query("SAVEPOINT request")
                .execute(&mut state.conn)
                .await?;
        }
        state.savepoint_ready = false;
        Ok(WriteGuard {
            state,
            commit_wanted: self.commit_wanted.clone(),
            finished: false,
        })
    }

    async fn close(&self) {
        let mut state = self.state.lock().await;
        state.flush().await;
        state.abort("the database was closed").await;
        state.closed = true;
        drop(state);
        self.commit_wanted.notify_one();
    }
}

impl WriteGuard {
    /// The audit log's right edge at the start of this request, when the writer knows it.
    pub fn log_frontier(&self) -> Option<&Frontier> {
        self.state.log_frontier.as_ref()
    }

    /// Keeps this request's changes and returns once a commit including them is durable.
    async fn commit(self) -> Result<(), DbError> {
        self.finish(None, None).await.map(|_| ())
    }

    /// Runs `last` (this request's deferred writes, if any) and releases the savepoint in one
    /// round trip, records `log_frontier` as the log's new right edge when the request appended
    /// to it, and returns once a commit including the request is durable, with the right edge
    /// that commit left.
    pub async fn finish(
        mut self,
        last: Option<QueryBuilder<'_, Sqlite>>,
        log_frontier: Option<Frontier>,
    ) -> Result<Option<Frontier>, DbError> {
        match last {
            Some(mut q) => {
                if !q.sql().is_empty() {
                    q.push("; ");
                }
                q.push("RELEASE SAVEPOINT request; SAVEPOINT request");
                q.build().execute(&mut self.state.conn).await?;
            }
            None => {
                sqlx::query("RELEASE SAVEPOINT request; SAVEPOINT request")
                    .execute(&mut self.state.conn)
                    .await?;
            }
        }
        self.state.savepoint_ready = true;
        if let Some(frontier) = log_frontier {
            self.state.log_frontier = Some(frontier);
        }
        let (done, outcome) = oneshot::channel();
        self.state.waiters.push(done);
        self.finished = true;
        let wanted = self.commit_wanted.clone();
        drop(self);
        // The committer runs the COMMIT, so it happens even if this request's caller goes away.
        wanted.notify_one();
        match outcome.await {
            Ok(Ok(committed)) => Ok(committed),
            Ok(Err(why)) => Err(DbError::GroupCommit(why)),
            Err(_) => Err(DbError::GroupCommit("the writer went away".to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database commit failed: {0}")]
    GroupCommit(String),
    #[error("unsupported database URL `{0}` (expected sqlite:PATH or postgres://...)")]
    UnsupportedUrl(String),
}

impl Db {
    /// Opens (creating when missing) the embedded SQLite database at `path` and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self, DbError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A decision reported as stored must survive a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Rows come back from sqlx's worker thread through a bounded channel; at the default
            // of 50 a push's read set of a few thousand rows stalled the worker many times.
            .row_buffer_size(1024);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                options
                    .clone()
                    // Savepoint journals stay in memory instead of spilling to temporary files.
                    .pragma("temp_store", "memory")
                    .pragma("cache_size", "-65536")
                    .pragma("wal_autocheckpoint", "0"),
            )
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&writer).await?;
        let wal_frames = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let writer = SqliteWriter::new(writer.acquire().await?.detach(), wal_frames.clone());
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?
            .acquire()
            .await?
            .detach();
        let wal = Arc::new(WalCheckpointer::start(checkpointer, wal_frames));
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true).pragma("cache_size", "-16384"))
            .await?;
        Ok(Db::Sqlite {
            writer,
            reader,
            wal,
        })
    }

    /// Connects to PostgreSQL and migrates the database.
    pub async fn open_postgres(url: &str) -> Result<Self, DbError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Db::Postgres(pool))
    }

    /// Opens a database from a URL: `postgres://...`, `sqlite:PATH` or a plain file path.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url).await
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            Self::open_sqlite(Path::new(path)).await
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            Self::open_sqlite(Path::new(path)).await
        } else if url.contains("://") {
            Err(DbError::UnsupportedUrl(url.to_owned()))
        } else {
            Self::open_sqlite(Path::new(url)).await
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Begins a transaction that may write; it holds the log head until it ends.
    pub async fn begin_write(&self) -> Result<Tx, DbError> {
        match self {
            Db::Sqlite { writer, .. } => Ok(Tx::Sqlite(SqliteTx::Write(writer.begin().await?))),
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT size FROM log_head WHERE id = 1 FOR UPDATE")
                    .execute(&mut *tx)
                    .await?;
                Ok(Tx::Postgres(PgTx::Tx(tx)))
            }
        }
    }

    /// Begins a transaction that may write but never appends to the audit log, so on PostgreSQL
    /// it does not take the log head and does not wait for (or hold up) the transactions that
    /// do. On SQLite it is an ordinary write on the single writer.
    pub async fn begin_write_unlogged(&self) -> Result<Tx, DbError> {
        match self {
            Db::Sqlite { writer, .. } => Ok(Tx::Sqlite(SqliteTx::Write(writer.begin().await?))),
            Db::Postgres(pool) => Ok(Tx::Postgres(PgTx::Tx(pool.begin().await?))),
        }
    }

    /// Begins a read-only transaction: a consistent snapshot that never blocks writers.
    pub async fn begin_read(&self) -> Result<Tx, DbError> {
        match self {
            Db::Sqlite { reader, .. } => Ok(Tx::Sqlite(SqliteTx::Read(reader.begin().await?))),
            Db::Postgres(pool) => Ok(Tx::Postgres(PgTx::Tx(pool.begin().await?))),
        }
    }

    /// A reading connection outside any transaction, for a read that is one statement: it is a
    /// snapshot on its own and saves the BEGIN and COMMIT round trips of [`Db::begin_read`].
    pub async fn read_statement(&self) -> Result<Tx, DbError> {
        match self {
            Db::Sqlite { reader, .. } => {
                Ok(Tx::Sqlite(SqliteTx::Autocommit(reader.acquire().await?)))
            }
            Db::Postgres(pool) => Ok(Tx::Postgres(PgTx::Autocommit(pool.acquire().await?))),
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        let result = match self {
            Db::Sqlite { reader, .. } => sqlx::query("SELECT 1").execute(reader).await.map(|_| ()),
            Db::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        };
        result.is_ok()
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite {
                writer,
                reader,
                wal,
            } => {
                wal.stop();
                writer.close().await;
                reader.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(SqliteTx::Read(tx)) => tx.commit().await?,
            Tx::Sqlite(SqliteTx::Write(guard)) => guard.commit().await?,
            Tx::Postgres(PgTx::Tx(tx)) => tx.commit().await?,
            Tx::Sqlite(SqliteTx::Autocommit(_)) | Tx::Postgres(PgTx::Autocommit(_)) => {}
        }
        Ok(())
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }
}

/// A value bound into a [`Select`].
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}

/// One SELECT of a read set ([`fetch_sets`]): its text around the bound arguments.
#[derive(Debug, Clone, Default)]
pub struct Select {
    /// `parts.len() == args.len() + 1`: an argument goes between each two parts.
    parts: Vec<String>,
    args: Vec<Arg>,
}

impl Select {
    pub fn new(sql: impl Into<String>) -> Self {
        Select {
            parts: vec![sql.into()],
            args: Vec::new(),
        }
    }

    pub fn push(mut self, sql: &str) -> Self {
        if let Some(last) = self.parts.last_mut() {
            last.push_str(sql);
        }
        self
    }

    pub fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self.parts.push(String::new());
        self
    }

    /// ` (a, b, ...)` with every value bound.
    pub fn in_list<A: Into<Arg>>(mut self, values: impl IntoIterator<Item = A>) -> Self {
        self = self.push(" (");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self = self.push(", ");
            }
            self = self.bind(value);
        }
        self.push(")")
    }

    fn build_into<'a, DB>(self, q: &mut QueryBuilder<'a, DB>)
    where
        DB: sqlx::Database,
        i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
        String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    {
        let mut parts = self.parts.into_iter();
        if let Some(first) = parts.next() {
            q.push(first);
        }
        for (arg, part) in self.args.into_iter().zip(parts) {
            match arg {
                Arg::Int(v) => q.push_bind(v),
                Arg::Text(v) => q.push_bind(v),
            };
            q.push(part);
        }
    }
}

/// The rows one [`Select`] of a read set returned.
pub enum RowSet {
    Sqlite(Vec<sqlx::sqlite::SqliteRow>),
    Postgres(Vec<sqlx::postgres::PgRow>),
}

impl std::fmt::Debug for RowSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (backend, rows) = match self {
            RowSet::Sqlite(rows) => ("sqlite", rows.len()),
            RowSet::Postgres(rows) => ("postgres", rows.len()),
        };
        write!(f, "RowSet({backend}, {rows} rows)")
    }
}

impl RowSet {
    pub fn decode<T>(&self) -> Result<Vec<T>, DbError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        match self {
            RowSet::Sqlite(rows) => rows
                .iter()
                .map(|r| T::from_row(r).map_err(DbError::from))
                .collect(),
            RowSet::Postgres(rows) => rows
                .iter()
                .map(|r| T::from_row(r).map_err(DbError::from))
                .collect(),
        }
    }
}

/// Runs several SELECTs and returns their rows, one set per SELECT in order. On SQLite they go
/// to the connection's worker thread as one multi-statement query: inside the writer every
/// round trip to that thread is time all other writers wait. PostgreSQL does not take several
/// statements with bound arguments in one query, so there they run one after the other.
pub async fn fetch_sets(tx: &mut Tx, selects: Vec<Select>) -> Result<Vec<RowSet>, DbError> {
    use futures_util::TryStreamExt as _;
    use sqlx::Executor as _;
    match tx {
        Tx::Sqlite(sqlite) => {
            let count = selects.len();
            let mut q: QueryBuilder<'_, Sqlite> = QueryBuilder::new("");
            for (i, select) in selects.into_iter().enumerate() {
                if i > 0 {
                    q.push("; ");
                }
                select.build_into(&mut q);
            }
            let conn: &mut SqliteConnection = sqlite;
            let mut sets = Vec::with_capacity(count);
            let mut current = Vec::new();
            let mut stream = conn.fetch_many(q.build());
            while let Some(item) = stream.try_next().await? {
                match item {
                    sqlx::Either::Left(_done) => {
                        sets.push(RowSet::Sqlite(std::mem::take(&mut current)))
                    }
                    sqlx::Either::Right(row) => current.push(row),
                }
            }
            if sets.len() != count {
                return Err(DbError::Sqlx(sqlx::Error::Protocol(format!(
                    "a read set of {count} statements returned {} results",
                    sets.len()
                ))));
            }
            Ok(sets)
        }
        Tx::Postgres(pg) => {
            let conn: &mut PgConnection = pg;
            let mut sets = Vec::with_capacity(selects.len());
            for select in selects {
                let mut q: QueryBuilder<'_, Postgres> = QueryBuilder::new("");
                select.build_into(&mut q);
                sets.push(RowSet::Postgres(q.build().fetch_all(&mut *conn).await?));
            }
            Ok(sets)
        }
    }
}

/// Milliseconds since the Unix epoch, the storage form of every timestamp.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn ms_to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// `rows` in owned chunks of at most `size`: multi-row statements bind their rows by value (a
/// deferred statement outlives the caller's borrows).
pub fn owned_chunks<T>(rows: Vec<T>, size: usize) -> impl Iterator<Item = Vec<T>> {
    let mut rows = rows.into_iter().peekable();
    std::iter::from_fn(move || {
        rows.peek()?;
        Some(rows.by_ref().take(size.max(1)).collect())
    })
}

/// Appends ` (v1, v2, ...)` with every value bound: the list of a set-based `IN` over one chunk.
pub fn push_in_list<'args, DB, T>(
    q: &mut sqlx::QueryBuilder<'args, DB>,
    values: impl IntoIterator<Item = T>,
) where
    DB: sqlx::Database,
    T: 'args + sqlx::Encode<'args, DB> + sqlx::Type<DB>,
{
    q.push(" (");
    let mut list = q.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    q.push(")");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    async fn insert(db: &Db, key: &str) -> Result<(), DbError> {
        let mut tx = db.begin_write().await?;
        on_tx!(&mut tx, conn => {
            sqlx::query("INSERT INTO meta (key, value) VALUES ($1, 'v')")
                .bind(key)
                .execute(conn)
                .await?;
        });
        tx.commit().await
    }

    async fn keys(db: &Db) -> Vec<String> {
        let mut tx = db.begin_read().await.unwrap();
        on_tx!(&mut tx, conn => {
            sqlx::query_scalar("SELECT key FROM meta WHERE key LIKE 'k%' ORDER BY key")
                .fetch_all(conn)
                .await
                .unwrap()
        })
    }

    /// A request that gives up inside its savepoint does not leave SQLite's write lock taken:
    /// another process (an admin command) can write soon after, without any other request.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_request_releases_the_write_lock() {
        use sqlx::Connection as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let db = Db::open_sqlite(&path).await.unwrap();
        insert(&db, "k1").await.unwrap();
        let mut tx = db.begin_write().await.unwrap();
        on_tx!(&mut tx, conn => {
            sqlx::query("INSERT INTO meta (key, value) VALUES ('k2', 'v')")
                .execute(conn)
                .await
                .unwrap();
        });
        drop(tx);
        let mut other = SqliteConnection::connect_with(
            &SqliteConnectOptions::new()
                .filename(&path)
                .busy_timeout(Duration::from_millis(2000)),
        )
        .await
        .unwrap();
        sqlx::query("BEGIN IMMEDIATE; INSERT INTO meta (key, value) VALUES ('k3', 'v'); COMMIT")
            .execute(&mut other)
            .await
            .unwrap();
        assert_eq!(keys(&db).await, ["k1", "k3"]);
        // And the gate's writer goes on after the other process wrote.
        insert(&db, "k4").await.unwrap();
        assert_eq!(keys(&db).await, ["k1", "k3", "k4"]);
    }

    /// Under a steady stream of writes the WAL still starts over: it used to grow by every page
    /// written, since a background checkpoint never catches up between two commits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let db = Db::open_sqlite(&path).await.unwrap();
        let value = "x".repeat(3000);
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..8 {
            let (db, value) = (db.clone(), value.clone());
            tasks.spawn(async move {
                for i in 0..1000 {
                    let mut tx = db.begin_write().await.unwrap();
                    on_tx!(&mut tx, conn => {
                        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2)")
                            .bind(format!("w{t}-{i}"))
                            .bind(&value)
                            .execute(conn)
                            .await
                            .unwrap();
                    });
                    tx.commit().await.unwrap();
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        // 8 000 rows of 3 KB are over 24 MB of pages; without restarts the WAL holds them all.
        let wal = std::fs::metadata(dir.path().join("g.db-wal"))
            .unwrap()
            .len();
        assert!(wal < 12 << 20, "the WAL grew to {wal} bytes");
    }

    /// Concurrent writers share commits; a failing or abandoned one undoes only its own work,
    /// and every successful commit is visible to a fresh reader once it has returned.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_isolates_failed_requests() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("g.db")).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40 {
            let db = db.clone();
            tasks.spawn(async move {
                match i % 4 {
                    // A statement fails inside the request: its earlier insert must go too.
                    1 => {
                        let mut tx = db.begin_write().await.unwrap();
                        let failed: Result<(), DbError> = on_tx!(&mut tx, conn => {
                            sqlx::query("INSERT INTO meta (key, value) VALUES ($1, 'v')")
                                .bind(format!("k{i:02}-lost"))
                                .execute(&mut *conn)
                                .await
                                .unwrap();
                            sqlx::query("INSERT INTO no_such_table VALUES (1)")
                                .execute(&mut *conn)
                                .await
                                .map(|_| ())
                                .map_err(DbError::from)
                        });
                        assert!(failed.is_err());
                        drop(tx);
                        (i, false)
                    }
                    // Abandoned without commit (an error path or a dropped request).
                    2 => {
                        let mut tx = db.begin_write().await.unwrap();
                        on_tx!(&mut tx, conn => {
                            sqlx::query("INSERT INTO meta (key, value) VALUES ($1, 'v')")
                                .bind(format!("k{i:02}-lost"))
                                .execute(conn)
                                .await
                                .unwrap();
                        });
                        tokio::task::yield_now().await;
                        drop(tx);
                        (i, false)
                    }
                    _ => {
                        insert(&db, &format!("k{i:02}")).await.unwrap();
                        // Committed means visible to any new reader (and on disk).
                        let seen = keys(&db).await;
                        assert!(seen.contains(&format!("k{i:02}")), "{i} not visible");
                        (i, true)
                    }
                }
            });
        }
        let mut expected = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (i, kept) = done.unwrap();
            if kept {
                expected.push(format!("k{i:02}"));
            }
        }
        expected.sort();
        assert_eq!(keys(&db).await, expected);
        // A duplicate key fails that request alone; the writer keeps working afterwards.
        assert!(insert(&db, "k00").await.is_err());
        insert(&db, "k99").await.unwrap();
        expected.push("k99".to_owned());
        db.close().await;
        let reopened = Db::open_sqlite(&dir.path().join("g.db")).await.unwrap();
        assert_eq!(keys(&reopened).await, expected);
    }
}

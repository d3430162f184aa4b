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

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};
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
    },
    Postgres(PgPool),
}

/// An open transaction on either backend.
#[derive(Debug)]
pub enum Tx {
    Sqlite(SqliteTx),
    Postgres(Transaction<'static, Postgres>),
}

/// An SQLite transaction: a read snapshot, or one request's savepoint on the writer.
#[derive(Debug)]
pub enum SqliteTx {
    Read(Transaction<'static, Sqlite>),
    Write(WriteGuard),
}

impl Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match self {
            SqliteTx::Read(tx) => tx,
            SqliteTx::Write(guard) => &guard.state.conn,
        }
    }
}

impl DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            SqliteTx::Read(tx) => tx,
            SqliteTx::Write(guard) => &mut guard.state.conn,
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
    /// Requests whose savepoints were released into the open transaction, awaiting its commit.
    waiters: Vec<oneshot::Sender<Result<(), String>>>,
    closed: bool,
}

/// One request's hold on the writer, inside its savepoint.
pub struct WriteGuard {
    state: OwnedMutexGuard<WriterState>,
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
        }
    }
}

impl WriterState {
    /// Undoes what an abandoned request left behind.
    async fn tidy(&mut self) {
        if !self.abandoned {
            return;
        }
        self.abandoned = false;
        let undone = sqlx::query("ROLLBACK TO SAVEPOINT request; RELEASE SAVEPOINT request")
            .execute(&mut self.conn)
            .await;
        match undone {
            // SQLite may have rolled back the whole transaction itself (I/O error, full disk):
            // nothing of the batch is stored, so every waiting request fails.
            Err(e) => self.abort(&format!("write transaction lost: {e}")).await,
            Ok(_) if self.waiters.is_empty() => self.abort("nothing to commit").await,
            Ok(_) => {}
        }
    }

    async fn abort(&mut self, why: &str) {
        if self.open {
            let _ignored = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
        }
        self.open = false;
        for waiter in self.waiters.drain(..) {
            let _ignored = waiter.send(Err(why.to_owned()));
        }
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
                metrics::histogram!("countersign_sqlite_group_commit_size")
                    .record(self.waiters.len() as f64);
                for waiter in self.waiters.drain(..) {
                    let _ignored = waiter.send(Ok(()));
                }
            }
            Err(e) => self.abort(&format!("commit failed: {e}")).await,
        }
    }
}

impl SqliteWriter {
    fn new(conn: SqliteConnection) -> Self {
        SqliteWriter {
            state: Arc::new(Mutex::new(WriterState {
                conn,
                open: false,
                abandoned: false,
                waiters: Vec::new(),
                closed: false,
            })),
        }
    }

    async fn begin(&self) -> Result<WriteGuard, DbError> {
        let mut state = self.state.clone().lock_owned().await;
        if state.closed {
            return Err(DbError::Sqlx(sqlx::Error::PoolClosed));
        }
        state.tidy().await;
        let sql = if state.open {
            "SAVEPOINT request"
        } else {
            // IMMEDIATE: take the write lock now, waiting (busy_timeout) for another process
            // such as a command-line admin tool, rather than failing on a later upgrade.
            "BEGIN IMMEDIATE; SAVEPOINT request"
        };
        let begun = sqlx::query(sql).execute(&mut state.conn).await;
        if let Err(e) = begun {
            if !state.open {
                // A failed BEGIN may still have opened the transaction before SAVEPOINT failed.
                let _ignored = sqlx::query("ROLLBACK").execute(&mut state.conn).await;
            }
            return Err(e.into());
        }
        state.open = true;
        Ok(WriteGuard {
            state,
            finished: false,
        })
    }

    async fn close(&self) {
        let mut state = self.state.lock().await;
        state.flush().await;
        state.abort("the database was closed").await;
        state.closed = true;
    }
}

impl WriteGuard {
    /// Keeps this request's changes and returns once a commit including them is durable.
    async fn commit(mut self) -> Result<(), DbError> {
        sqlx::query("RELEASE SAVEPOINT request")
            .execute(&mut self.state.conn)
            .await?;
        let (done, outcome) = oneshot::channel();
        self.state.waiters.push(done);
        self.finished = true;
        let mutex = Arc::clone(OwnedMutexGuard::mutex(&self.state));
        drop(self);
        // The commit runs as its own task, queued behind the requests already waiting, so it
        // covers them too, and it happens even if this request's caller goes away.
        tokio::spawn(async move {
            mutex.lock().await.flush().await;
        });
        match outcome.await {
            Ok(Ok(())) => Ok(()),
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
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&writer).await?;
        let writer = SqliteWriter::new(writer.acquire().await?.detach());
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Db::Sqlite { writer, reader })
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
                Ok(Tx::Postgres(tx))
            }
        }
    }

    /// Begins a read-only transaction: a consistent snapshot that never blocks writers.
    pub async fn begin_read(&self) -> Result<Tx, DbError> {
        match self {
            Db::Sqlite { reader, .. } => Ok(Tx::Sqlite(SqliteTx::Read(reader.begin().await?))),
            Db::Postgres(pool) => Ok(Tx::Postgres(pool.begin().await?)),
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
            Db::Sqlite { writer, reader } => {
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
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }
}

/// Milliseconds since the Unix epoch, the storage form of every timestamp.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn ms_to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
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

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

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};

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
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

/// An open transaction on either backend.
#[derive(Debug)]
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
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
            Db::Sqlite { writer, .. } => Ok(Tx::Sqlite(writer.begin().await?)),
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
            Db::Sqlite { reader, .. } => Ok(Tx::Sqlite(reader.begin().await?)),
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
            Tx::Sqlite(tx) => tx.commit().await?,
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

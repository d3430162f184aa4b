//! Countersign Desk without a window: the local store, the device key in the OS keyring,
//! deciding, and the sync with the gate. The Tauri shell and the `countersign-desk` binary are
//! thin layers over [`Desk`].

mod client;
pub mod error;
mod items;
mod secrets;
mod store;
pub mod supervise;
mod sync;
pub mod types;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use countersign_api::{ClaimRequest, ClaimResponse, EnrollRequest, EnrollResponse};
use countersign_core::checkpoint::NoteVerifier;
use countersign_core::jws::{self, SigningKey};
use countersign_core::{Decision, DecisionKind, ServedItem, V1, new_id, sha256_hex};
use sqlx::{Row as _, SqlitePool};
use tokio::sync::{Mutex, Notify, OnceCell};
use uuid::Uuid;

pub use client::backoff;
pub use error::{DeskError, ErrorCode};
pub use secrets::use_os_keyring;
pub use supervise::types::*;
pub use types::*;

use client::GateClient;
use store::{parse_ts, to_i64, to_u64, ts};

/// How long after the start the background sync first reads every lease: long enough for the
/// window to open and show the queue without competing with it for the CPU and the database.
pub const FIRST_FULL_SYNC_AFTER: Duration = Duration::from_secs(5);

/// A decision is pushed once no other one followed it for this long...
pub const PUSH_QUIET: Duration = Duration::from_secs(1);
/// ...or this long after it at the latest, however fast the reviewer goes on.
pub const PUSH_WITHIN: Duration = Duration::from_secs(5);

/// Where desk state lives: `$COUNTERSIGN_DESK_DIR`, else the OS's app-data directory under
/// `countersign-desk`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("COUNTERSIGN_DESK_DIR") {
        return PathBuf::from(dir);
    }
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("countersign-desk")
}

/// Keeps the log file writer alive; drop it last to flush.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Sends this process's tracing to `<data_dir>/logs/desk.log` (rotated daily) and, at warnings
/// and above, to stderr. `RUST_LOG` overrides the level. Call once per process.
pub fn init_logging(data_dir: &Path) -> Result<LogGuard, DeskError> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, Layer as _, fmt};
    let dir = data_dir.join("logs");
    std::fs::create_dir_all(&dir)?;
    let appender = tracing_appender::rolling::daily(&dir, "desk.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("countersign_desk=info,countersign_desk_app=info,warn"));
    tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(filter),
        )
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(tracing_subscriber::filter::LevelFilter::ERROR),
        )
        .try_init()
        .map_err(|e| DeskError::invalid_input(format!("logging is already set up: {e}")))?;
    Ok(guard)
}

/// The desk of one enrolled account. Cheap to clone.
#[derive(Clone)]
pub struct Desk {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("account", &self.inner.account)
            .finish_non_exhaustive()
    }
}

struct Inner {
    account: Account,
    pool: SqlitePool,
    verifier: NoteVerifier,
    key: OnceCell<SigningKey>,
    client: OnceCell<GateClient>,
    /// One sync at a time; a second caller waits for the running one.
    sync_lock: Mutex<()>,
    /// Wakes the background sync after a decision is saved.
    wake: Notify,
}

fn accounts_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("accounts")
}

fn db_path(data_dir: &Path, account_id: &str) -> PathBuf {
    accounts_dir(data_dir).join(account_id).join(store::DB_FILE)
}

fn valid_account_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn read_account(pool: &SqlitePool) -> Result<(Account, String), DeskError> {
    let row = sqlx::query(
        "SELECT account_id, gate_url, user_name, role, authority_limit, device_id, key_id, log_origin, log_public_key, enrolled_at FROM enrollment",
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| DeskError::not_enrolled("this account's database holds no enrollment: enroll again"))?;
    let account = Account {
        account_id: row.try_get("account_id")?,
        gate_url: row.try_get("gate_url")?,
        user_name: row.try_get("user_name")?,
        role: row.try_get("role")?,
        authority_limit: row.try_get("authority_limit")?,
        device_id: row.try_get("device_id")?,
        key_id: row.try_get("key_id")?,
        log_origin: row.try_get("log_origin")?,
        enrolled_at: parse_ts(&row.try_get::<String, _>("enrolled_at")?)?,
    };
    Ok((account, row.try_get("log_public_key")?))
}

/// The gate URL as the account keeps it, or why it cannot be used. The enrollment code and then
/// the API credential travel with every request, so plain `http://` is only for a gate on this
/// machine (a demo or a test); anything else must be `https://`.
fn gate_url(url: &str) -> Result<String, DeskError> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| {
        DeskError::invalid_input(format!(
            "the gate URL is not a full address ({e}); give it as https://gate.example.bank"
        ))
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(DeskError::invalid_input(
            "the gate URL must not carry a user name or password; the desk gets its own credential at enrollment",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(DeskError::invalid_input(
            "the gate URL must not have a query (?…) or a fragment (#…)",
        ));
    }
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(trimmed.to_owned()),
        "http" if loopback => Ok(trimmed.to_owned()),
        "http" => Err(DeskError::invalid_input(format!(
            "the gate URL must start with https://: plain http:// would send your credential unencrypted, and is only accepted for a gate on this computer (localhost); try https://{}",
            trimmed.trim_start_matches("http://")
        ))),
        _ => Err(DeskError::invalid_input(
            "the gate URL must start with https:// (or http:// for a gate on this computer)",
        )),
    }
}

impl Desk {
    /// Enrolls this device with a gate using a one-time code: makes a device key, keeps it and
    /// the gate's API credential in the OS keyring, and creates the account's database.
    pub async fn enroll(
        data_dir: &Path,
        gate_url: &str,
        code: &str,
        device_name: &str,
    ) -> Result<Desk, DeskError> {
        let gate_url = self::gate_url(gate_url)?;
        if code.trim().is_empty() {
            return Err(DeskError::invalid_input(
                "give the one-time enrollment code your administrator handed you",
            ));
        }
        if let Some(existing) = Self::accounts(data_dir)
            .await?
            .into_iter()
            .find(|a| a.gate_url == gate_url)
        {
            return Err(DeskError::new(
                ErrorCode::AlreadyEnrolled,
                format!(
                    "this device is already enrolled with {gate_url} as {} (account {}); use that account",
                    existing.user_name, existing.account_id
                ),
            ));
        }
        let account_id = new_id().simple().to_string();
        let key = jws::generate_signing_key();
        // The key goes into the keyring before the code is spent, so a missing or locked keyring
        // costs nothing.
        secrets::store_signing_key(&account_id, &key).await?;
        let result =
            Self::finish_enroll(data_dir, &gate_url, code, device_name, &account_id, key).await;
        if result.is_err() {
            secrets::forget(&account_id).await;
            let _ = std::fs::remove_dir_all(accounts_dir(data_dir).join(&account_id));
        }
        result
    }

    async fn finish_enroll(
        data_dir: &Path,
        gate_url: &str,
        code: &str,
        device_name: &str,
        account_id: &str,
        key: SigningKey,
    ) -> Result<Desk, DeskError> {
        let public_jwk = jws::public_jwk(&key.verifying_key());
        let client = GateClient::new(gate_url, None)?;
        let enrolled: EnrollResponse = client
            .post(
                "/v1/enroll",
                &EnrollRequest {
                    code: code.trim().to_owned(),
                    public_key: public_jwk.clone(),
                    device_name: device_name.to_owned(),
                },
            )
            .await?;
        if enrolled.key_id != jws::key_id(&key.verifying_key()) {
            return Err(DeskError::refused(
                "key_mismatch",
                "the gate enrolled a different key than this device sent",
            ));
        }
        NoteVerifier::parse(&enrolled.log_public_key).map_err(|e| {
            DeskError::refused(
                "bad_log_key",
                &format!("the gate's log key is unusable: {e}"),
            )
        })?;
        secrets::store_token(account_id, &enrolled.token).await?;
        let path = db_path(data_dir, account_id);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let pool = store::open(&path, true).await?;
        let now = ts(Utc::now());
        sqlx::query("INSERT INTO enrollment (singleton, account_id, gate_url, user_id, user_name, role, authority_limit, device_id, key_id, public_jwk, log_origin, log_public_key, enrolled_at, last_used_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(account_id)
            .bind(gate_url)
            .bind(&enrolled.user_id)
            .bind(&enrolled.user_name)
            .bind(&enrolled.role)
            .bind(enrolled.authority_limit)
            .bind(&enrolled.device_id)
            .bind(&enrolled.key_id)
            .bind(public_jwk.to_string())
            .bind(&enrolled.log_origin)
            .bind(&enrolled.log_public_key)
            .bind(&now)
            .bind(&now)
            .execute(&pool)
            .await?;
        tracing::info!(
            account_id,
            gate_url,
            user = enrolled.user_name,
            device_id = enrolled.device_id,
            "enrolled"
        );
        let desk = Self::from_pool(pool).await?;
        let _ = desk.inner.key.set(key);
        let _ = desk
            .inner
            .client
            .set(GateClient::new(gate_url, Some(enrolled.token))?);
        // The first checkpoint is the one every later one must extend.
        if let Err(e) = desk.verify_latest_checkpoint().await {
            tracing::warn!(error = %e, "first checkpoint not verified at enrollment");
        }
        Ok(desk)
    }

    async fn from_pool(pool: SqlitePool) -> Result<Desk, DeskError> {
        let (account, log_key) = read_account(&pool).await?;
        let verifier = NoteVerifier::parse(&log_key)
            .map_err(|e| DeskError::storage(format!("stored log key: {e}")))?;
        Ok(Desk {
            inner: Arc::new(Inner {
                account,
                pool,
                verifier,
                key: OnceCell::new(),
                client: OnceCell::new(),
                sync_lock: Mutex::new(()),
                wake: Notify::new(),
            }),
        })
    }

    /// Opens an enrolled account; `None` opens the most recently used one.
    pub async fn open(data_dir: &Path, account_id: Option<&str>) -> Result<Desk, DeskError> {
        let account_id = match account_id {
            Some(id) => id.to_owned(),
            None => {
                let mut best: Option<(String, String)> = None;
                for (id, pool) in Self::account_pools(data_dir).await? {
                    let used: Option<String> =
                        sqlx::query_scalar("SELECT last_used_at FROM enrollment")
                            .fetch_optional(&pool)
                            .await?;
                    pool.close().await;
                    if let Some(used) = used
                        && best.as_ref().is_none_or(|(_, b)| used > *b)
                    {
                        best = Some((id, used));
                    }
                }
                best.map(|(id, _)| id).ok_or_else(|| {
                    DeskError::not_enrolled(
                        "no account is enrolled on this device: enroll with the gate URL and the one-time code from your administrator",
                    )
                })?
            }
        };
        if !valid_account_id(&account_id) || !db_path(data_dir, &account_id).exists() {
            return Err(DeskError::not_enrolled(format!(
                "no account {account_id} is enrolled on this device"
            )));
        }
        let pool = store::open(&db_path(data_dir, &account_id), false).await?;
        sqlx::query("UPDATE enrollment SET last_used_at = ?")
            .bind(ts(Utc::now()))
            .execute(&pool)
            .await?;
        Self::from_pool(pool).await
    }

    async fn account_pools(data_dir: &Path) -> Result<Vec<(String, SqlitePool)>, DeskError> {
        let dir = accounts_dir(data_dir);
        let mut pools = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(pools),
            Err(e) => return Err(e.into()),
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| valid_account_id(id) && db_path(data_dir, id).exists())
            .collect();
        ids.sort();
        for id in ids {
            let pool = store::open(&db_path(data_dir, &id), false).await?;
            pools.push((id, pool));
        }
        Ok(pools)
    }

    /// Every account enrolled on this device.
    pub async fn accounts(data_dir: &Path) -> Result<Vec<Account>, DeskError> {
        let mut accounts = Vec::new();
        for (_, pool) in Self::account_pools(data_dir).await? {
            if let Ok((account, _)) = read_account(&pool).await {
                accounts.push(account);
            }
            pool.close().await;
        }
        Ok(accounts)
    }

    pub fn account(&self) -> &Account {
        &self.inner.account
    }

    fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    async fn signing_key(&self) -> Result<&SigningKey, DeskError> {
        self.inner
            .key
            .get_or_try_init(|| secrets::load_signing_key(&self.inner.account.account_id))
            .await
    }

    async fn client(&self) -> Result<&GateClient, DeskError> {
        self.inner
            .client
            .get_or_try_init(|| async {
                let token = secrets::load_token(&self.inner.account.account_id).await?;
                GateClient::new(&self.inner.account.gate_url, Some(token))
            })
            .await
    }

    /// What the desk knows locally; never waits on the network.
    pub async fn status(&self) -> Result<DeskStatus, DeskError> {
        let now = Utc::now();
        let queue_count: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM items i WHERE {}",
            items::QUEUE_FILTER
        ))
        .bind(ts(now))
        .fetch_one(self.pool())
        .await?;
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
                .fetch_one(self.pool())
                .await?;
        let conflicts: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE state IN ('conflict', 'rejected', 'refused')",
        )
        .fetch_one(self.pool())
        .await?;
        let row = sqlx::query(
            "SELECT last_contact_at, last_contact_ok, last_sync_at, last_error, log_inconsistent FROM sync_state",
        )
        .fetch_one(self.pool())
        .await?;
        let last_contact: Option<String> = row.try_get("last_contact_at")?;
        let contact_ok: i64 = row.try_get("last_contact_ok")?;
        let online = match last_contact {
            Some(at) => contact_ok == 1 && now - parse_ts(&at)? < chrono::Duration::seconds(60),
            None => false,
        };
        let inconsistent: Option<String> = row.try_get("log_inconsistent")?;
        let last_error: Option<String> = row.try_get("last_error")?;
        let checkpoint = sqlx::query(
            "SELECT size, root_hex, verified_at FROM checkpoints ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?
        .map(|r| -> Result<CheckpointInfo, DeskError> {
            Ok(CheckpointInfo {
                size: to_u64(r.try_get("size")?),
                root_hex: r.try_get("root_hex")?,
                verified_at: parse_ts(&r.try_get::<String, _>("verified_at")?)?,
            })
        })
        .transpose()?;
        Ok(DeskStatus {
            account: self.inner.account.clone(),
            online,
            queue_count: to_u64(queue_count),
            pending_sync: to_u64(pending),
            conflicts: to_u64(conflicts),
            last_sync_at: row
                .try_get::<Option<String>, _>("last_sync_at")?
                .map(|t| parse_ts(&t))
                .transpose()?,
            last_error: inconsistent
                .map(|m| format!("log_inconsistent: {m}"))
                .or(last_error),
            checkpoint,
        })
    }

    /// Checks out up to `limit` items; `offline_hours` asks for a long lease to work offline.
    pub async fn claim(
        &self,
        limit: u32,
        offline_hours: Option<u32>,
    ) -> Result<ClaimReport, DeskError> {
        if limit == 0 {
            return Err(DeskError::invalid_input("claim at least one item"));
        }
        let client = self.client().await?;
        let response: Result<ClaimResponse, DeskError> = client
            .post(
                "/v1/claims",
                &ClaimRequest {
                    limit,
                    offline: offline_hours.is_some(),
                    offline_hours,
                    queue: countersign_api::Queue::Review,
                },
            )
            .await;
        self.record_contact(&response.as_ref().map(|_| ()).map_err(Clone::clone))
            .await?;
        let response = response?;
        let now = Utc::now();
        let mut entries = Vec::with_capacity(response.items.len());
        let mut tx = self.pool().begin().await?;
        for claimed in &response.items {
            let served_text = claimed.item.get();
            if sha256_hex(served_text.as_bytes()) != claimed.evidence_sha256 {
                return Err(DeskError::refused(
                    "evidence_mismatch",
                    "the gate served an item whose bytes do not match its evidence hash",
                ));
            }
            let served: ServedItem = serde_json::from_str(served_text).map_err(|e| {
                DeskError::refused(
                    "bad_item",
                    &format!("the gate served an unreadable item: {e}"),
                )
            })?;
            if served.item_id != claimed.lease.item_id
                || served.item_version != claimed.lease.item_version
            {
                return Err(DeskError::refused(
                    "lease_mismatch",
                    "the gate served a lease for another item",
                ));
            }
            let entry = items::queue_entry(&served, claimed);
            sqlx::query(
                "INSERT INTO items (item_id, item_version, lease_id, lease_epoch, lease_expires_at, offline, served, evidence_sha256, current_outcome, approvals_required, approvals_given, escalation_level, entry, due_at, received_at, lease_state, claimed_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?) \
                 ON CONFLICT (item_id, item_version) DO UPDATE SET lease_id = excluded.lease_id, lease_epoch = excluded.lease_epoch, lease_expires_at = excluded.lease_expires_at, offline = excluded.offline, served = excluded.served, evidence_sha256 = excluded.evidence_sha256, current_outcome = excluded.current_outcome, approvals_required = excluded.approvals_required, approvals_given = excluded.approvals_given, escalation_level = excluded.escalation_level, entry = excluded.entry, lease_state = 'active', claimed_at = excluded.claimed_at, purged_at = NULL",
            )
            .bind(served.item_id.to_string())
            .bind(i64::from(served.item_version))
            .bind(claimed.lease.lease_id.to_string())
            .bind(i64::from(claimed.lease.epoch))
            .bind(ts(claimed.lease.expires_at))
            .bind(i64::from(claimed.lease.offline))
            .bind(served_text)
            .bind(&claimed.evidence_sha256)
            .bind(claimed.current_outcome.as_ref().map(|v| v.to_string()))
            .bind(i64::from(claimed.approvals_required))
            .bind(i64::from(claimed.approvals_given))
            .bind(i64::from(claimed.escalation_level))
            .bind(serde_json::to_string(&entry).map_err(DeskError::storage)?)
            .bind(ts(served.due_at))
            .bind(ts(served.received_at))
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
            entries.push(entry);
        }
        tx.commit().await?;
        tracing::info!(
            claimed = entries.len(),
            offline = offline_hours.is_some(),
            "claimed"
        );
        Ok(ClaimReport {
            claimed: u32::try_from(entries.len()).unwrap_or(u32::MAX),
            offline: offline_hours.is_some(),
            items: entries,
        })
    }

    /// Undecided items whose lease still holds, by due time then age.
    pub async fn queue(&self) -> Result<Vec<QueueEntry>, DeskError> {
        self.queued(items::ENTRY_COLUMNS, items::entry_from_row)
            .await
    }

    /// The queue as the list shows it: the same items and order as [`Desk::queue`], each as a
    /// [`QueueRow`]. For 10 000 items this is about two thirds of the JSON and skips parsing each
    /// stored entry's ids and times, which made the `queue` command most of the window's start.
    pub async fn queue_rows(&self) -> Result<Vec<QueueRow>, DeskError> {
        self.queued(items::ROW_COLUMNS, items::queue_row_from_row)
            .await
    }

    /// `columns` of the queued items, in queue order, each converted as it arrives. Streaming
    /// rather than `fetch_all` keeps one SQLite row alive at a time: with 10 000 items, holding
    /// every row's copied values at once was 27 MB of the app's 61 MB heap peak (heaptrack).
    async fn queued<T>(
        &self,
        columns: &str,
        convert: fn(&sqlx::sqlite::SqliteRow) -> Result<T, DeskError>,
    ) -> Result<Vec<T>, DeskError> {
        use futures_util::TryStreamExt as _;
        let sql = format!(
            "SELECT {columns} FROM items i WHERE {} ORDER BY i.due_at, i.received_at",
            items::QUEUE_FILTER
        );
        let mut rows = sqlx::query(&sql).bind(ts(Utc::now())).fetch(self.pool());
        let mut converted = Vec::new();
        while let Some(row) = rows.try_next().await? {
            converted.push(convert(&row)?);
        }
        Ok(converted)
    }

    /// One item with its evidence exactly as served.
    pub async fn item(&self, item_id: Uuid) -> Result<ItemDetail, DeskError> {
        let row = sqlx::query(&format!(
            "SELECT {}, i.served, i.evidence_sha256, i.current_outcome, i.approvals_required, i.approvals_given FROM items i WHERE i.item_id = ? ORDER BY i.item_version DESC LIMIT 1",
            items::ENTRY_COLUMNS
        ))
        .bind(item_id.to_string())
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| DeskError::not_found(format!("item {item_id} is not on this device: claim it first")))?;
        let entry = items::entry_from_row(&row)?;
        let served: Option<String> = row.try_get("served")?;
        let served = served.ok_or_else(|| {
            DeskError::not_found(format!(
                "the evidence of item {item_id} was purged after the retention period; its signed decision and receipt are kept"
            ))
        })?;
        let item: ServedItem = serde_json::from_str(&served).map_err(DeskError::storage)?;
        let current_outcome = row
            .try_get::<Option<String>, _>("current_outcome")?
            .map(|t| serde_json::from_str::<serde_json::Value>(&t))
            .transpose()
            .map_err(DeskError::storage)?
            .and_then(|v| match v {
                serde_json::Value::Object(map) => Some(map),
                _ => None,
            });
        let decided = self.decision_for_lease(entry.lease_id).await?;
        Ok(ItemDetail {
            protected_attributions: items::protected_attributions(&item),
            evidence_sha256: row.try_get("evidence_sha256")?,
            approvals_required: u32::try_from(row.try_get::<i64, _>("approvals_required")?)
                .unwrap_or(1),
            approvals_given: u32::try_from(row.try_get::<i64, _>("approvals_given")?).unwrap_or(0),
            current_outcome,
            entry,
            item,
            decided,
        })
    }

    async fn decision_for_lease(
        &self,
        lease_id: Uuid,
    ) -> Result<Option<DecisionRecord>, DeskError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM outbox WHERE lease_id = ?",
            items::RECORD_COLUMNS
        ))
        .bind(lease_id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(items::record_from_row).transpose()
    }

    /// Validates, signs and saves a decision in the outbox with the next sequence number. It is
    /// saved once this returns `Ok`, and never edited afterwards.
    #[tracing::instrument(skip_all, fields(item_id = %request.item_id, kind = %request.kind))]
    pub async fn decide(&self, request: DecideRequest) -> Result<SavedDecision, DeskError> {
        let key = self.signing_key().await?;
        let row = sqlx::query(
            "SELECT item_version, lease_id, lease_epoch, lease_expires_at, lease_state, served, evidence_sha256, current_outcome FROM items WHERE item_id = ? ORDER BY item_version DESC LIMIT 1",
        )
        .bind(request.item_id.to_string())
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| {
            DeskError::not_found(format!(
                "item {} is not on this device: claim it first",
                request.item_id
            ))
        })?;
        let lease_id: String = row.try_get("lease_id")?;
        let lease_state: String = row.try_get("lease_state")?;
        let served: Option<String> = row.try_get("served")?;
        let served: ServedItem = serde_json::from_str(
            &served.ok_or_else(|| DeskError::not_found("the evidence of this item was purged"))?,
        )
        .map_err(DeskError::storage)?;
        if lease_state != "active" {
            return Err(DeskError::new(
                ErrorCode::LeaseLost,
                format!(
                    "this item is no longer yours to decide (the gate reports it {lease_state}); take the next item"
                ),
            ));
        }
        let expires = parse_ts(&row.try_get::<String, _>("lease_expires_at")?)?;
        let now = Utc::now();
        if expires <= now {
            return Err(DeskError::new(
                ErrorCode::LeaseLost,
                format!(
                    "your lease on this item ended at {}; claim it again to decide it",
                    ts(expires)
                ),
            ));
        }
        let current_outcome = row
            .try_get::<Option<String>, _>("current_outcome")?
            .map(|t| serde_json::from_str::<serde_json::Value>(&t))
            .transpose()
            .map_err(DeskError::storage)?;
        let corrections = items::validate(&served, current_outcome.as_ref(), &request)?;
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let taken: Option<i64> =
            sqlx::query_scalar("SELECT device_seq FROM outbox WHERE lease_id = ?")
                .bind(&lease_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(seq) = taken {
            return Err(DeskError::new(
                ErrorCode::AlreadyDecided,
                format!(
                    "this item was already decided on this device (decision {seq}); a mistake is fixed by a later decision, not by editing"
                ),
            ));
        }
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(device_seq) FROM outbox")
            .fetch_one(&mut *tx)
            .await?;
        let device_seq = to_u64(last.unwrap_or(0)) + 1;
        let decision = Decision {
            v: V1,
            decision_id: new_id(),
            item_id: served.item_id,
            item_version: served.item_version,
            lease_id: lease_id
                .parse()
                .map_err(|e| DeskError::storage(format!("stored lease id: {e}")))?,
            lease_epoch: u32::try_from(row.try_get::<i64, _>("lease_epoch")?).unwrap_or_default(),
            evidence_sha256: row.try_get("evidence_sha256")?,
            kind: request.kind,
            corrections,
            reason_codes: request.reason_codes.clone(),
            comment: request.comment.clone().filter(|c| !c.trim().is_empty()),
            key_id: self.inner.account.key_id.clone(),
            device_id: self.inner.account.device_id.clone(),
            device_seq,
            decided_at: now,
        };
        decision
            .check_shape()
            .map_err(|e| DeskError::invalid_decision(e.to_string()))?;
        let jws = jws::sign_decision(&decision, key)
            .map_err(|e| DeskError::invalid_decision(format!("cannot sign: {e}")))?;
        if jws.len() > jws::MAX_DECISION_JWS_BYTES {
            return Err(DeskError::invalid_decision(format!(
                "this decision is too long to send: signed it takes {} bytes and the gate takes at most {}; shorten the comment or the corrected values",
                jws.len(),
                jws::MAX_DECISION_JWS_BYTES
            )));
        }
        sqlx::query("INSERT INTO outbox (device_seq, decision_id, item_id, item_version, lease_id, subject, kind, decision, jws, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(to_i64(device_seq))
            .bind(decision.decision_id.to_string())
            .bind(decision.item_id.to_string())
            .bind(i64::from(decision.item_version))
            .bind(&lease_id)
            .bind(&served.subject)
            .bind(decision.kind.as_str())
            .bind(serde_json::to_string(&decision).map_err(DeskError::storage)?)
            .bind(&jws)
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(decision_id = %decision.decision_id, device_seq, "decision saved");
        self.inner.wake.notify_one();
        Ok(SavedDecision {
            decision_id: decision.decision_id,
            device_seq,
            item_id: decision.item_id,
            kind: decision.kind,
            saved_at: now,
        })
    }

    /// Signed decisions, newest first.
    pub async fn decisions(&self, limit: u32) -> Result<Vec<DecisionRecord>, DeskError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM outbox ORDER BY device_seq DESC LIMIT ?",
            items::RECORD_COLUMNS
        ))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(items::record_from_row).collect()
    }

    /// Decisions the gate kept without applying, rejected or refused, with its reason.
    pub async fn conflicts(&self) -> Result<Vec<DecisionRecord>, DeskError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM outbox WHERE state IN ('conflict', 'rejected', 'refused') ORDER BY device_seq DESC",
            items::RECORD_COLUMNS
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(items::record_from_row).collect()
    }

    /// Drops the evidence of items that are done with (decision acknowledged by the gate, or
    /// lease ended) for longer than `retention_days`. Signed decisions and receipts are kept.
    pub async fn purge(&self, retention_days: u32) -> Result<PurgeReport, DeskError> {
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(retention_days));
        let done = sqlx::query(
            "UPDATE items SET served = NULL, purged_at = ? \
             WHERE served IS NOT NULL \
               AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.lease_id = items.lease_id AND o.state = 'pending') \
               AND ( (EXISTS (SELECT 1 FROM outbox o WHERE o.lease_id = items.lease_id AND o.acked_at < ?)) \
                  OR (lease_state <> 'active' AND claimed_at < ?) )",
        )
        .bind(ts(Utc::now()))
        .bind(ts(cutoff))
        .bind(ts(cutoff))
        .execute(self.pool())
        .await?;
        tracing::info!(
            purged = done.rows_affected(),
            retention_days,
            "evidence purged"
        );
        Ok(PurgeReport {
            items_purged: done.rows_affected(),
        })
    }

    /// Syncs in the background: pushes decisions once the reviewer pauses ([`PUSH_QUIET`], at
    /// most [`PUSH_WITHIN`] after a decision), and runs a full sync (lease states and renewals
    /// too) every `every`, the first one [`FIRST_FULL_SYNC_AFTER`] after the start (or `every`,
    /// if sooner); backs off (1 s to 60 s, with jitter) while the gate cannot be reached. The
    /// first round only pushes, so decisions saved before a restart go out at once.
    pub fn auto_sync(
        &self,
        every: Duration,
        progress: Arc<dyn Fn(SyncProgress) + Send + Sync>,
        done: Arc<dyn Fn(Result<SyncReport, DeskError>) + Send + Sync>,
    ) -> tokio::task::JoinHandle<()> {
        let desk = self.clone();
        tokio::spawn(async move {
            let mut failures = 0u32;
            let mut next_full = tokio::time::Instant::now() + every.min(FIRST_FULL_SYNC_AFTER);
            loop {
                let full = tokio::time::Instant::now() >= next_full;
                let scope = if full {
                    sync::Scope::Full
                } else {
                    sync::Scope::Push
                };
                let result = desk.sync_scope(scope, &*progress).await;
                let transient = matches!(&result, Err(e) if e.is_transient());
                if full && !transient {
                    next_full = tokio::time::Instant::now() + every;
                }
                done(result);
                if transient {
                    let pause = backoff(failures, Duration::from_secs(1), Duration::from_secs(60));
                    failures = failures.saturating_add(1);
                    tokio::time::sleep(pause).await;
                } else {
                    failures = 0;
                    tokio::select! {
                        () = desk.inner.wake.notified() => desk.settle_decisions().await,
                        () = tokio::time::sleep_until(next_full) => {}
                    }
                }
            }
        })
    }

    /// Waits until the reviewer pauses ([`PUSH_QUIET`] without another decision), or
    /// [`PUSH_WITHIN`] at the latest, so a run of decisions goes out in few pushes: a push after
    /// every key press kept the gate and the desk busy just as the next item was painted.
    async fn settle_decisions(&self) {
        let latest = tokio::time::Instant::now() + PUSH_WITHIN;
        loop {
            tokio::select! {
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(PUSH_QUIET) => return,
                () = tokio::time::sleep_until(latest) => return,
            }
        }
    }

    /// Notes whether the gate answered, for `status().online`. Failures that never reached the
    /// network (keyring, local storage) say nothing about the gate.
    async fn record_contact(&self, result: &Result<(), DeskError>) -> Result<(), DeskError> {
        let reached = match result {
            Ok(()) => true,
            Err(e) => match e.code {
                ErrorCode::GateUnreachable => false,
                ErrorCode::GateRefused | ErrorCode::LogInconsistent => true,
                _ => return Ok(()),
            },
        };
        sqlx::query("UPDATE sync_state SET last_contact_at = ?, last_contact_ok = ?")
            .bind(ts(Utc::now()))
            .bind(i64::from(reached))
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// Kinds as the UI shows them.
pub fn kind_from_str(text: &str) -> Option<DecisionKind> {
    match text {
        "approve" => Some(DecisionKind::Approve),
        "correct" => Some(DecisionKind::Correct),
        "escalate" => Some(DecisionKind::Escalate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_url_is_https_or_loopback_http() {
        for (given, kept) in [
            ("https://gate.example.bank", "https://gate.example.bank"),
            (
                " https://gate.example.bank:8443/countersign/ ",
                "https://gate.example.bank:8443/countersign",
            ),
            ("http://127.0.0.1:7400", "http://127.0.0.1:7400"),
            ("http://localhost:7400/", "http://localhost:7400"),
            ("http://LOCALHOST:7400", "http://LOCALHOST:7400"),
            ("http://[::1]:7400", "http://[::1]:7400"),
            ("http://127.0.0.2:7400", "http://127.0.0.2:7400"),
        ] {
            assert_eq!(gate_url(given).as_deref(), Ok(kept), "{given}");
        }
        for (given, why) in [
            ("http://gate.example.bank", "https://gate.example.bank"),
            (
                "http://10.0.0.5:7400",
                "only accepted for a gate on this computer",
            ),
            ("http://localhost.example.bank", "only accepted"),
            ("http://127.0.0.1.example.bank", "only accepted"),
            ("ftp://gate.example.bank", "must start with https://"),
            ("gate.example.bank", "not a full address"),
            ("", "not a full address"),
            (
                "https://user:secret@gate.example.bank",
                "user name or password",
            ),
            ("https://gate.example.bank/?next=evil", "query"),
            ("https://gate.example.bank/#x", "fragment"),
        ] {
            let err = gate_url(given).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidInput, "{given}");
            assert!(err.message.contains(why), "{given}: {}", err.message);
        }
    }
}

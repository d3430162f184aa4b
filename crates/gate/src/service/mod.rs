//! What the gate does, independent of HTTP: the HTTP handlers and the command line only translate
//! requests into calls on [`Gate`] and results back.

mod audit;
mod decisions;
mod identity;
mod ingest;
mod oversight;
mod policy;
mod push_state;
mod qa;
mod queue;
mod releases;
pub mod supervision;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use countersign_core::checkpoint::NoteSigner;
use countersign_core::jws::VerifyingKey;
use countersign_policy::Policy;
use sha2::{Digest, Sha256};

pub use audit::BundleSummary;
pub use identity::{NewApiKey, NewUser, Principal, Role, User};
pub use supervision::supervision_loop;

use crate::db::{Db, DbError};
use crate::error::GateError;
use crate::log::AuditLog;
use crate::on_tx;

/// Limits and identity of a gate instance.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// Largest accepted output, in canonical JSON bytes.
    pub max_output_bytes: usize,
    /// Deepest accepted nesting inside an output.
    pub max_output_depth: usize,
    /// Most outputs in one ingest request.
    pub max_batch: usize,
    /// Most items one claim may take.
    pub max_claim: u32,
    /// Most decisions in one push.
    pub max_push: usize,
    /// How long an enrollment code stays valid.
    pub enrollment_ttl: Duration,
    /// How long a client may take to send a request's line and headers, and on a kept-alive
    /// connection to start its next request, before the connection is closed.
    pub request_head_timeout: Duration,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            max_output_bytes: 256 * 1024,
            max_output_depth: 32,
            max_batch: 1000,
            max_claim: 500,
            max_push: 1000,
            enrollment_ttl: Duration::from_secs(7 * 24 * 3600),
            request_head_timeout: Duration::from_secs(30),
        }
    }
}

/// Enrolled device keys kept in memory before the cache is emptied (a few MB at most).
const DEVICE_KEY_CACHE_LIMIT: usize = 50_000;

/// The gating service.
#[derive(Debug)]
pub struct Gate {
    pub db: Db,
    pub log: AuditLog,
    pub config: GateConfig,
    policy: RwLock<Option<Arc<Policy>>>,
    /// Key id → (device id, public key) of enrolled keys; see `load_keys`.
    device_keys: Mutex<HashMap<String, (String, VerifyingKey)>>,
    /// Tripped circuit breakers and the statistics task's wake-up.
    pub supervision: supervision::Supervision,
}

impl Gate {
    /// Opens the gate on a migrated database. The log origin is fixed at the first start and
    /// must not change afterwards: checkpoints of one log all carry the same origin.
    pub async fn open(
        db: Db,
        origin: &str,
        log_signer: NoteSigner,
        config: GateConfig,
    ) -> Result<Self, GateError> {
        let mut tx = db.begin_write().await?;
        let stored: Option<String> = on_tx!(&mut tx, conn => {
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'log_origin'")
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let vkey = log_signer.verifier().to_vkey();
        match stored {
            Some(existing) if existing != origin => {
                return Err(GateError::internal(format!(
                    "this database's log has origin `{existing}`, not `{origin}`"
                )));
            }
            Some(_) => {
                let stored_key: Option<String> = on_tx!(&mut tx, conn => {
                    sqlx::query_scalar("SELECT value FROM meta WHERE key = 'log_public_key'")
                        .fetch_optional(conn)
                        .await
                        .map_err(DbError::from)?
                });
                if stored_key.as_deref().is_some_and(|k| k != vkey) {
                    return Err(GateError::internal(
                        "the log key does not match the key this database's log was started with",
                    ));
                }
            }
            None => {
                on_tx!(&mut tx, conn => {
                    sqlx::query("INSERT INTO meta (key, value) VALUES ('log_origin', $1), ('log_public_key', $2)")
                        .bind(origin)
                        .bind(&vkey)
                        .execute(conn)
                        .await
                        .map_err(DbError::from)?;
                });
            }
        }
        tx.commit().await?;
        let gate = Gate {
            db,
            log: AuditLog::new(origin.to_owned(), log_signer),
            config,
            policy: RwLock::new(None),
            device_keys: Mutex::new(HashMap::new()),
            supervision: supervision::Supervision::default(),
        };
        gate.reload_policy().await?;
        gate.reload_tripped().await?;
        Ok(gate)
    }

    /// The active policy, if one was ever activated.
    pub fn active_policy(&self) -> Option<Arc<Policy>> {
        self.policy.read().ok().and_then(|p| p.clone())
    }

    fn set_policy(&self, policy: Option<Arc<Policy>>) {
        if let Ok(mut slot) = self.policy.write() {
            *slot = policy;
        }
    }

    pub fn log_public_key(&self) -> String {
        self.log.verifier().to_vkey()
    }
}

/// Lowercase hex SHA-256 of a secret, the only form in which the gate stores credentials.
pub(crate) fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A random URL-safe secret with a readable prefix naming what it is for.
pub(crate) fn new_secret(prefix: &str) -> Result<String, GateError> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| GateError::internal(format!("no OS randomness: {e}")))?;
    Ok(format!(
        "{prefix}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

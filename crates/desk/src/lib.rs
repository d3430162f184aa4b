//! Countersign Desk without a window: the local store, the device key in the OS keyring,
//! deciding, and the sync with the gate. The Tauri shell and the `countersign-desk` binary are
//! thin layers over [`Desk`].

pub mod error;
pub mod types;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{DeskError, ErrorCode};
pub use types::*;

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

/// Makes the OS keyring the store for device keys and credentials, once per process.
pub fn use_os_keyring() -> Result<(), DeskError> {
    Err(DeskError::new(
        ErrorCode::KeyringUnavailable,
        "the OS keyring connection is not built yet in this version of the desk",
    ))
}

/// The desk of one enrolled account. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Desk {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    account: Account,
}

fn not_built(what: &str) -> DeskError {
    DeskError::new(
        ErrorCode::Storage,
        format!("{what} is not built yet in this version of the desk"),
    )
}

impl Desk {
    pub async fn enroll(
        _data_dir: &Path,
        _gate_url: &str,
        _code: &str,
        _device_name: &str,
    ) -> Result<Desk, DeskError> {
        Err(not_built("enrollment"))
    }

    pub async fn open(_data_dir: &Path, _account_id: Option<&str>) -> Result<Desk, DeskError> {
        Err(DeskError::not_enrolled(
            "no account is enrolled on this device (the local store is not built yet)",
        ))
    }

    pub async fn accounts(_data_dir: &Path) -> Result<Vec<Account>, DeskError> {
        Err(not_built("listing accounts"))
    }

    pub fn account(&self) -> &Account {
        &self.inner.account
    }

    pub async fn status(&self) -> Result<DeskStatus, DeskError> {
        Err(not_built("status"))
    }

    pub async fn claim(
        &self,
        _limit: u32,
        _offline_hours: Option<u32>,
    ) -> Result<ClaimReport, DeskError> {
        Err(not_built("claiming"))
    }

    pub async fn queue(&self) -> Result<Vec<QueueEntry>, DeskError> {
        Err(not_built("the queue"))
    }

    pub async fn item(&self, _item_id: uuid::Uuid) -> Result<ItemDetail, DeskError> {
        Err(not_built("item details"))
    }

    pub async fn decide(&self, _request: DecideRequest) -> Result<SavedDecision, DeskError> {
        Err(not_built("deciding"))
    }

    pub async fn sync(
        &self,
        _progress: &(dyn Fn(SyncProgress) + Send + Sync),
    ) -> Result<SyncReport, DeskError> {
        Err(not_built("sync"))
    }

    pub fn auto_sync(
        &self,
        _every: std::time::Duration,
        _progress: Arc<dyn Fn(SyncProgress) + Send + Sync>,
        done: Arc<dyn Fn(Result<SyncReport, DeskError>) + Send + Sync>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { done(Err(not_built("background sync"))) })
    }

    pub async fn decisions(&self, _limit: u32) -> Result<Vec<DecisionRecord>, DeskError> {
        Err(not_built("the decision list"))
    }

    pub async fn conflicts(&self) -> Result<Vec<DecisionRecord>, DeskError> {
        Err(not_built("the conflict list"))
    }

    pub async fn purge(&self, _retention_days: u32) -> Result<PurgeReport, DeskError> {
        Err(not_built("retention"))
    }
}

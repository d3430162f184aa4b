//! Events the shell sends on its own, from the desk's background sync.

use countersign_desk::{DeskError, SyncProgress, SyncReport};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Event name: a [`SyncProgress`] of the background sync.
pub const SYNC_PROGRESS: &str = "sync-progress";
/// Event name: a [`SyncDone`] when a background sync finishes.
pub const SYNC_DONE: &str = "sync-done";

/// How a background sync ended: `{"Ok": SyncReport}` or `{"Err": {code, message}}`, the shape of
/// a serialized `Result`, so the UI reads it like a command's answer.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub enum SyncDone {
    Ok(SyncReport),
    Err(DeskError),
}

impl From<Result<SyncReport, DeskError>> for SyncDone {
    fn from(r: Result<SyncReport, DeskError>) -> Self {
        match r {
            Ok(report) => SyncDone::Ok(report),
            Err(e) => SyncDone::Err(e),
        }
    }
}

/// What the background sync reports to the window.
#[derive(Debug, Clone)]
pub enum AppEvent {
    Progress(SyncProgress),
    Done(SyncDone),
}

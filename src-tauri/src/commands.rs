//! The commands the window may call. Each one translates its arguments and delegates to the open
//! [`Desk`]; errors cross the IPC boundary as the desk's own `{code, message}`.
//!
//! Argument names are camelCase on the JavaScript side (Tauri's convention): `invoke('item',
//! { itemId })`, `invoke('decide', { request })`, `invoke('sync', { onProgress })`.

use countersign_desk::{
    Account, ClaimReport, DecideRequest, DecisionRecord, Desk, DeskError, DeskStatus, ErrorCode,
    ItemDetail, PurgeReport, QueueRow, SavedDecision, SyncProgress, SyncReport,
};
use tauri::State;
use tauri::ipc::Channel;
use uuid::Uuid;

use crate::DeskState;

type Res<T> = Result<T, DeskError>;

/// The largest batch one claim may ask for; a bigger number is a UI bug, not a wish.
const MAX_CLAIM: u32 = 10_000;

#[tauri::command]
pub async fn accounts(state: State<'_, DeskState>) -> Res<Vec<Account>> {
    Desk::accounts(state.data_dir()).await
}

/// Enrolls this device with a gate and makes the new account the open one.
#[tauri::command]
pub async fn enroll(
    state: State<'_, DeskState>,
    gate_url: String,
    code: String,
    device_name: Option<String>,
) -> Res<Account> {
    let device_name = match device_name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => default_device_name(),
    };
    let desk = Desk::enroll(state.data_dir(), gate_url.trim(), code.trim(), &device_name).await?;
    let account = desk.account().clone();
    tracing::info!(account = %account.account_id, gate = %account.gate_url, "enrolled");
    state.install(desk).await;
    Ok(account)
}

#[tauri::command]
pub async fn status(state: State<'_, DeskState>) -> Res<DeskStatus> {
    state.desk().await?.status().await
}

#[tauri::command]
pub async fn claim(
    state: State<'_, DeskState>,
    limit: u32,
    offline_hours: Option<u32>,
) -> Res<ClaimReport> {
    if limit == 0 || limit > MAX_CLAIM {
        return Err(DeskError::new(
            ErrorCode::InvalidInput,
            format!("a claim asks for 1 to {MAX_CLAIM} items, not {limit}"),
        ));
    }
    state.desk().await?.claim(limit, offline_hours).await
}

/// The queue list's rows; an item's lease, model and rule come with `item`.
#[tauri::command]
pub async fn queue(state: State<'_, DeskState>) -> Res<Vec<QueueRow>> {
    state.desk().await?.queue_rows().await
}

#[tauri::command]
pub async fn item(state: State<'_, DeskState>, item_id: Uuid) -> Res<ItemDetail> {
    state.desk().await?.item(item_id).await
}

#[tauri::command]
pub async fn decide(state: State<'_, DeskState>, request: DecideRequest) -> Res<SavedDecision> {
    state.desk().await?.decide(request).await
}

/// A sync started by the reviewer, with its progress streamed on `on_progress`.
#[tauri::command]
pub async fn sync(
    state: State<'_, DeskState>,
    on_progress: Channel<SyncProgress>,
) -> Res<SyncReport> {
    let desk = state.desk().await?;
    let report = move |p: SyncProgress| {
        // A closed window only loses progress, never the sync itself.
        if let Err(e) = on_progress.send(p) {
            tracing::debug!(error = %e, "sync progress not delivered");
        }
    };
    desk.sync(&report).await
}

#[tauri::command]
pub async fn decisions(state: State<'_, DeskState>, limit: u32) -> Res<Vec<DecisionRecord>> {
    state.desk().await?.decisions(limit).await
}

#[tauri::command]
pub async fn conflicts(state: State<'_, DeskState>) -> Res<Vec<DecisionRecord>> {
    state.desk().await?.conflicts().await
}

#[tauri::command]
pub async fn purge(state: State<'_, DeskState>, retention_days: u32) -> Res<PurgeReport> {
    state.desk().await?.purge(retention_days).await
}

/// Names the device for the gate's key list when the reviewer does not: the host name.
fn default_device_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|host| format!("Countersign Desk on {host}"))
        .unwrap_or_else(|| "Countersign Desk".to_owned())
}

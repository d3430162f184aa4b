//! The supervisor's commands: each one delegates to the open [`Desk`], which checks the role
//! before asking the gate (and the gate checks it again). The log integrity check is any desk's
//! right: it reads only the public log. Granted to the window by `capabilities/supervisor.json`.
//!
//! Arguments are camelCase on the JavaScript side: `invoke('supervision_trail', { itemId })`,
//! `invoke('log_check', { onProgress })`, `invoke('bundle_export', { dir, from, to })`.

use chrono::{DateTime, Utc};
use countersign_desk::{
    BreakerState, BundleExport, CorrectedFields, DecisionFilter, DecisionPage, DeskError,
    FlagRecord, IntegrityProgress, IntegrityReport, LeaseChange, LeaseFilter, ModelFilter,
    ModelsReport, OpenLease, OverrideReport, RereviewResult, ReviewerFilter, ReviewerReport,
    TrailView,
};
use tauri::State;
use tauri::ipc::Channel;
use uuid::Uuid;

use crate::DeskState;

type Res<T> = Result<T, DeskError>;

#[tauri::command]
pub async fn supervision_trail(state: State<'_, DeskState>, item_id: Uuid) -> Res<TrailView> {
    state.desk().await?.trail(item_id).await
}

#[tauri::command]
pub async fn supervision_decisions(
    state: State<'_, DeskState>,
    filter: DecisionFilter,
) -> Res<DecisionPage> {
    state.desk().await?.search_decisions(&filter).await
}

#[tauri::command]
pub async fn supervision_rereview(
    state: State<'_, DeskState>,
    decision_id: Uuid,
    reason: String,
) -> Res<RereviewResult> {
    state.desk().await?.rereview(decision_id, &reason).await
}

#[tauri::command]
pub async fn supervision_flag(
    state: State<'_, DeskState>,
    decision_id: Uuid,
    reason: String,
) -> Res<FlagRecord> {
    state
        .desk()
        .await?
        .flag_decision(decision_id, &reason)
        .await
}

#[tauri::command]
pub async fn supervision_reviewers(
    state: State<'_, DeskState>,
    filter: ReviewerFilter,
) -> Res<ReviewerReport> {
    state.desk().await?.reviewer_stats(&filter).await
}

#[tauri::command]
pub async fn supervision_models(state: State<'_, DeskState>) -> Res<ModelsReport> {
    state.desk().await?.model_statuses().await
}

#[tauri::command]
pub async fn supervision_override_rate(
    state: State<'_, DeskState>,
    filter: ModelFilter,
) -> Res<OverrideReport> {
    state.desk().await?.override_rates(&filter).await
}

#[tauri::command]
pub async fn supervision_corrected_fields(
    state: State<'_, DeskState>,
    filter: ModelFilter,
) -> Res<CorrectedFields> {
    state.desk().await?.corrected_fields(&filter).await
}

#[tauri::command]
pub async fn supervision_reset_breaker(
    state: State<'_, DeskState>,
    model: String,
    reason: String,
) -> Res<BreakerState> {
    state.desk().await?.reset_breaker(&model, &reason).await
}

#[tauri::command]
pub async fn supervision_leases(
    state: State<'_, DeskState>,
    filter: LeaseFilter,
) -> Res<Vec<OpenLease>> {
    state.desk().await?.open_leases(&filter).await
}

#[tauri::command]
pub async fn supervision_withdraw(
    state: State<'_, DeskState>,
    lease_id: Uuid,
    reason: String,
) -> Res<LeaseChange> {
    state.desk().await?.withdraw_lease(lease_id, &reason).await
}

#[tauri::command]
pub async fn supervision_reassign(
    state: State<'_, DeskState>,
    lease_id: Uuid,
    to_user: String,
) -> Res<LeaseChange> {
    state.desk().await?.reassign_lease(lease_id, &to_user).await
}

/// The log integrity check, with its progress streamed on `on_progress`.
#[tauri::command]
pub async fn log_check(
    state: State<'_, DeskState>,
    on_progress: Channel<IntegrityProgress>,
) -> Res<IntegrityReport> {
    let desk = state.desk().await?;
    let report = move |p: IntegrityProgress| {
        if let Err(e) = on_progress.send(p) {
            tracing::debug!(error = %e, "integrity progress not delivered");
        }
    };
    desk.check_log(&report).await
}

/// Writes the audit bundle of `[from, to)` into a new directory inside `dir` and verifies it
/// there. The window names the directory (typed, or chosen with `bundle_choose_dir`); the desk
/// only ever creates one new `countersign-bundle-…` directory in it.
#[tauri::command]
pub async fn bundle_export(
    state: State<'_, DeskState>,
    dir: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Res<BundleExport> {
    let dir = std::path::PathBuf::from(dir.trim());
    state.desk().await?.export_bundle(&dir, from, to).await
}

/// Asks for the directory to export a bundle into with the system's folder picker, shown by
/// the shell: the window holds no dialog permission of its own. `None` when cancelled.
#[tauri::command]
pub async fn bundle_choose_dir<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, DeskState>,
) -> Res<Option<String>> {
    use tauri::Manager as _;
    use tauri_plugin_dialog::DialogExt as _;
    // Only a supervisor may export, so only a supervisor is shown the picker.
    state.desk().await?.require_supervisor()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut picker = app.dialog().file().set_title("Folder for the audit bundle");
    if let Ok(downloads) = app.path().download_dir() {
        picker = picker.set_directory(downloads);
    }
    picker.pick_folder(move |picked| {
        let _ = tx.send(picked);
    });
    let picked = rx.await.ok().flatten();
    Ok(picked
        .and_then(|p| p.into_path().ok())
        .map(|p| p.display().to_string()))
}

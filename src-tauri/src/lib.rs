//! Countersign Desk's window: a thin Tauri shell over [`countersign_desk::Desk`]. Every command
//! only translates its arguments and delegates; all business rules live in the desk crate so the
//! app, the `countersign-desk` binary and the tests behave the same.

pub mod commands;
pub mod events;
pub mod logging;
pub mod supervise;
pub mod webview;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use countersign_desk::{Desk, DeskError, ErrorCode};
use tauri::{Emitter, Manager, Runtime};
use tokio::sync::RwLock;

pub use events::{SYNC_DONE, SYNC_PROGRESS, SyncDone};

/// How often the background sync runs when nothing is pending; `decide` wakes it sooner.
pub const AUTO_SYNC_EVERY: Duration = Duration::from_secs(30);

/// Sends the background sync's events to the window; type-erased so the commands need not be
/// generic over the Tauri runtime (the tests use the mock runtime).
pub type Emit = Arc<dyn Fn(events::AppEvent) + Send + Sync>;

/// What the shell holds: the open desk (none until an account is enrolled or opened) and its
/// background sync.
pub struct DeskState {
    data_dir: PathBuf,
    desk: Arc<RwLock<Option<Desk>>>,
    sync: SyncSlot,
}

/// The running background sync and where its events go; shared with the task that opens the
/// account at start.
#[derive(Clone, Default)]
struct SyncSlot {
    task: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// Set once the app exists; the state itself is managed before any window can call.
    emit: Arc<std::sync::OnceLock<Emit>>,
}

impl std::fmt::Debug for DeskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeskState")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl DeskState {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            desk: Arc::new(RwLock::new(None)),
            sync: SyncSlot::default(),
        }
    }

    /// Where the background sync's events go; only the first call counts.
    pub fn set_emitter(&self, emit: Emit) {
        let _ = self.sync.emit.set(emit);
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// The open desk, or `not_enrolled` so the UI shows the first-run screen.
    pub async fn desk(&self) -> Result<Desk, DeskError> {
        self.desk.read().await.clone().ok_or_else(|| {
            DeskError::new(
                ErrorCode::NotEnrolled,
                "no account is open on this device: enroll with the gate URL and the one-time code your administrator gave you",
            )
        })
    }

    /// Makes `desk` the open one and (re)starts its background sync. Must run inside the async
    /// runtime, since the sync is a spawned task.
    pub async fn install(&self, desk: Desk) {
        self.sync.start(&desk);
        *self.desk.write().await = Some(desk);
    }
}

impl SyncSlot {
    /// Starts `desk`'s background sync, stopping the previous account's.
    fn start(&self, desk: &Desk) {
        let progress_to = self.emit.clone();
        let done_to = self.emit.clone();
        let task = desk.auto_sync(
            AUTO_SYNC_EVERY,
            Arc::new(move |p| {
                if let Some(emit) = progress_to.get() {
                    emit(events::AppEvent::Progress(p));
                }
            }),
            Arc::new(move |r| {
                if let Some(emit) = done_to.get() {
                    emit(events::AppEvent::Done(SyncDone::from(r)));
                }
            }),
        );
        if let Ok(mut slot) = self.task.lock()
            && let Some(previous) = slot.replace(task)
        {
            previous.abort();
        }
    }
}

impl Drop for DeskState {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.sync.task.lock()
            && let Some(task) = slot.take()
        {
            task.abort();
        }
    }
}

/// An emitter that forwards the background sync's events to every window of `app`.
pub fn window_emitter<R: Runtime>(app: tauri::AppHandle<R>) -> Emit {
    Arc::new(move |event| {
        let sent = match event {
            events::AppEvent::Progress(p) => app.emit(SYNC_PROGRESS, p),
            events::AppEvent::Done(d) => app.emit(SYNC_DONE, d),
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not send a sync event to the window");
        }
    })
}

/// Opens the most recently used account of the state's data directory, if any, and starts its
/// background sync, in a task: the main thread, which serves the window its page, does not wait
/// on the database meanwhile. The account's slot is locked before this returns, so a command
/// arriving meanwhile waits for the account instead of answering `not_enrolled`. Not being
/// enrolled is the normal first run; any other failure is logged and the UI will surface it at
/// its first command.
pub fn open_last_account(state: &DeskState) -> tauri::async_runtime::JoinHandle<()> {
    let lock = state.desk.clone();
    let held = lock.clone().try_write_owned().ok();
    let data_dir = state.data_dir.clone();
    let sync = state.sync.clone();
    tauri::async_runtime::spawn(async move {
        let mut slot = match held {
            Some(slot) => slot,
            None => lock.write_owned().await,
        };
        match Desk::open(&data_dir, None).await {
            Ok(desk) => {
                tracing::info!(account = %desk.account().account_id, "opened account");
                sync.start(&desk);
                *slot = Some(desk);
            }
            Err(e) if e.code == ErrorCode::NotEnrolled => {
                tracing::info!("no account enrolled yet: showing first run");
            }
            Err(e) => tracing::error!(error = %e, "could not open the last account"),
        }
    })
}

/// Everything the app registers, on any runtime: the one list of commands and the state set up
/// for `data_dir`. `main` uses the real webview; the command tests use the mock runtime.
pub fn configure<R: Runtime>(builder: tauri::Builder<R>, data_dir: PathBuf) -> tauri::Builder<R> {
    builder
        .invoke_handler(tauri::generate_handler![
            commands::accounts,
            commands::enroll,
            commands::status,
            commands::claim,
            commands::queue,
            commands::item,
            commands::decide,
            commands::sync,
            commands::decisions,
            commands::conflicts,
            commands::purge,
            supervise::supervision_trail,
            supervise::supervision_decisions,
            supervise::supervision_rereview,
            supervise::supervision_flag,
            supervise::supervision_reviewers,
            supervise::supervision_models,
            supervise::supervision_override_rate,
            supervise::supervision_corrected_fields,
            supervise::supervision_reset_breaker,
            supervise::supervision_leases,
            supervise::supervision_withdraw,
            supervise::supervision_reassign,
            supervise::log_check,
            supervise::bundle_export,
            supervise::bundle_choose_dir,
        ])
        // The folder picker is opened by `bundle_choose_dir` from the shell; no capability grants
        // the window the plugin's own commands.
        .plugin(tauri_plugin_dialog::init())
        .manage(DeskState::new(data_dir))
        .setup(|app| {
            let state = app.state::<DeskState>();
            state.set_emitter(window_emitter(app.handle().clone()));
            open_last_account(&state);
            Ok(())
        })
}

/// The app's entry point.
pub fn run() {
    let data_dir = countersign_desk::default_data_dir();
    let _log_guard = logging::init(&data_dir);
    tracing::info!(data_dir = %data_dir.display(), version = env!("CARGO_PKG_VERSION"), "Countersign Desk starting");
    // Keys live only in the OS keyring; without it, enrolling and deciding fail with a clear
    // `keyring_unavailable` error, while reading the local queue still works.
    if let Err(e) = countersign_desk::use_os_keyring() {
        tracing::error!(error = %e, "OS keyring unavailable");
    }
    let result = configure(tauri::Builder::default(), data_dir).run(tauri::generate_context!());
    if let Err(e) = result {
        tracing::error!(error = %e, "the app failed");
        eprintln!("Countersign Desk: {e}");
        std::process::exit(1);
    }
}

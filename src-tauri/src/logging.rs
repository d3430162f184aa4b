//! Logs go to `<desk data dir>/logs/desk.log.<date>` (one file a day), next to the desk's own data,
//! so support finds them in the one directory the app owns. `RUST_LOG` overrides the level.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Starts logging; keep the guard alive for the life of the app so the last lines are flushed.
pub fn init(data_dir: &Path) -> Option<WorkerGuard> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,countersign_desk=info,countersign_desk_app=info"));
    let dir = data_dir.join("logs");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!(
            "Countersign Desk: cannot create the log directory {}: {e}; logging to stderr",
            dir.display()
        );
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
        return None;
    }
    let (writer, guard) =
        tracing_appender::non_blocking(tracing_appender::rolling::daily(&dir, "desk.log"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .try_init();
    Some(guard)
}

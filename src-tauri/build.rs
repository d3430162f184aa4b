//! Generates an `allow-<command>` permission for each of the app's commands, so the capability
//! file grants exactly these and nothing else reaches the Rust side.

/// Keep in step with `generate_handler!` in src/lib.rs (the command tests call every one).
const COMMANDS: &[&str] = &[
    "accounts",
    "enroll",
    "status",
    "claim",
    "queue",
    "item",
    "decide",
    "sync",
    "decisions",
    "conflicts",
    "purge",
    "supervision_trail",
    "supervision_decisions",
    "supervision_rereview",
    "supervision_flag",
    "supervision_reviewers",
    "supervision_models",
    "supervision_override_rate",
    "supervision_corrected_fields",
    "supervision_reset_breaker",
    "supervision_leases",
    "supervision_withdraw",
    "supervision_reassign",
    "log_check",
    "bundle_export",
    "bundle_choose_dir",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .unwrap_or_else(|e| panic!("tauri build step failed: {e:#}"));
}

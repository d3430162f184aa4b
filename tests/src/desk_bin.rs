//! The `countersign-desk` binary for tests outside its crate. `CARGO_BIN_EXE_*` exists only for
//! the crate that defines the binary, and a path guessed from this test's own location can be a
//! stale build; so the tests ask cargo to build it and take the path cargo reports, which
//! follows `CARGO_TARGET_DIR`, the profile and any target triple (under `make test` it asks for
//! the very build the run made, see below). `COUNTERSIGN_DESK_BIN` points at a prebuilt binary
//! instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const BIN_ENV: &str = "COUNTERSIGN_DESK_BIN";

/// Builds (if needed) and returns the path of `countersign-desk`, once per process.
pub fn desk_binary() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os(BIN_ENV) {
            return PathBuf::from(path);
        }
        build().unwrap_or_else(|e| panic!("building countersign-desk: {e}"))
    })
}

fn build() -> Result<PathBuf, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the e2e crate is not inside the workspace")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace);
    if std::env::var_os("COUNTERSIGN_TEST_SESSION").is_some() {
        // Under `make test` (scripts/run-tests.sh) this test runs inside `cargo test
        // --workspace --locked`, which has built the binary already: the same request finds
        // it fresh in a second, where `-p countersign-desk` would unify features differently
        // and compile the desk's dependencies again.
        command.args(["test", "--workspace", "--locked", "--no-run"]);
    } else {
        command.args([
            "build",
            "-p",
            "countersign-desk",
            "--bin",
            "countersign-desk",
        ]);
    }
    command.arg("--message-format=json-render-diagnostics");
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let started = std::time::Instant::now();
    let output = command
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let executable = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        // The binary's own unit-test executable has the same target name.
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"] == "countersign-desk"
                && m["profile"]["test"] == false
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or("cargo reported no countersign-desk executable")?;
    println!(
        "countersign-desk: {} (cargo took {:.1} s)",
        executable.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(executable)
}

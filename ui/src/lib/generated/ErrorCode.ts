// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
export type ErrorCode = "not_enrolled" | "already_enrolled" | "keyring_unavailable" | "keyring_locked" | "gate_unreachable" | "gate_refused" | "invalid_decision" | "not_found" | "already_decided" | "lease_lost" | "log_inconsistent" | "storage" | "invalid_input";

// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { DeskError } from "./DeskError";
import type { SyncReport } from "./SyncReport";

export type SyncDone = { "Ok": SyncReport } | { "Err": DeskError };

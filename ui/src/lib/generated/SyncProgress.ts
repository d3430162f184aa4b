// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { SyncPhase } from "./SyncPhase";

export type SyncProgress = { phase: SyncPhase, done: number, total: number, };

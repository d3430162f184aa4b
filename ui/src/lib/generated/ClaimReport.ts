// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { QueueEntry } from "./QueueEntry";

export type ClaimReport = { claimed: number, offline: boolean, items: Array<QueueEntry>, };

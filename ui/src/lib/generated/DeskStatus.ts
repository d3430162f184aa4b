// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { Account } from "./Account";
import type { CheckpointInfo } from "./CheckpointInfo";

export type DeskStatus = { account: Account, online: boolean, queue_count: number, pending_sync: number, conflicts: number, last_sync_at: string | null, last_error: string | null, checkpoint: CheckpointInfo | null, };

// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
export type SyncReport = { pushed: bigint, applied: bigint, conflicts: bigint, rejected: bigint, refused: bigint, pulled: bigint, withdrawn: bigint, superseded: bigint, renewed: bigint, checkpoint_size: bigint | null, };

// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
export type SyncReport = { pushed: number, applied: number, conflicts: number, rejected: number, refused: number, pulled: number, withdrawn: number, superseded: number, renewed: number, checkpoint_size: number | null, };

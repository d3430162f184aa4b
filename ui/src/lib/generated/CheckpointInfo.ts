// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
export type CheckpointInfo = { size: number, root_hex: string, verified_at: string, };

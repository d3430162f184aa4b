// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
export type FieldEdit = { field: string, from: unknown, to: unknown, };

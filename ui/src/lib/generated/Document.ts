// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
export type Document = { title: string, text: string, uri?: string | null, };

// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
export type FieldType = { "type": "choice", values: Array<string>, } | { "type": "integer", min?: number | null, max?: number | null, } | { "type": "number", min?: number | null, max?: number | null, } | { "type": "text", max_len?: number | null, };

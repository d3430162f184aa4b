// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { JsonValue } from "./serde_json/JsonValue";

export type CorrectionInput = { field: string, to: JsonValue, };

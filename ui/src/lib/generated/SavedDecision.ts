// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { DecisionKind } from "./DecisionKind";

export type SavedDecision = { decision_id: string, device_seq: number, item_id: string, kind: DecisionKind, saved_at: string, };

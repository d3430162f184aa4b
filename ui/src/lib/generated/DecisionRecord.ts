// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { DecisionKind } from "./DecisionKind";
import type { DecisionState } from "./DecisionState";
import type { FieldEdit } from "./FieldEdit";

export type DecisionRecord = { decision_id: string, device_seq: number, item_id: string, item_version: number, subject: string, kind: DecisionKind, corrections: Array<FieldEdit>, reason_codes: Array<string>, comment: string | null, decided_at: string, state: DecisionState, reason: string | null, leaf_index: number | null, };

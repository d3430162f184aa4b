// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { CorrectionInput } from "./CorrectionInput";
import type { DecisionKind } from "./DecisionKind";

export type DecideRequest = { item_id: string, kind: DecisionKind, corrections: Array<CorrectionInput>, reason_codes: Array<string>, comment: string | null, };

// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { DecisionRecord } from "./DecisionRecord";
import type { QueueEntry } from "./QueueEntry";
import type { ServedItem } from "./ServedItem";

export type ItemDetail = { entry: QueueEntry, item: ServedItem, evidence_sha256: string, current_outcome: Record<string, unknown> | null, approvals_required: number, approvals_given: number, protected_attributions: Array<string>, decided: DecisionRecord | null, };

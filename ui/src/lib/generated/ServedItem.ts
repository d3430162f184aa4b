// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { Evidence } from "./Evidence";
import type { FieldSpec } from "./FieldSpec";
import type { ModelRef } from "./ModelRef";
import type { ReasonCode } from "./ReasonCode";
import type { Routing } from "./Routing";
import type { JsonValue } from "./serde_json/JsonValue";

export type ServedItem = { v: number, item_id: string, item_version: number, output_id: string, source: string, subject: string, model: ModelRef, routing: Routing, received_at: string, due_at: string, input: { [key in string]?: JsonValue }, proposal?: { [key in string]?: JsonValue } | null, confidence?: number | null, score?: number | null, outcome_schema: Array<FieldSpec>, evidence: Evidence, protected_features: Array<string>, allowed_reasons: Array<ReasonCode>, };

// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { Lane } from "./Lane";

export type Routing = { policy_version: number, rule: string, lane: Lane, authority_required: number, approvals_required: number, sla_seconds: number, qa_sample_rate: number, };

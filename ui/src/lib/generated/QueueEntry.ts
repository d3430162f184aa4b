// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { Lane } from "./Lane";

export type QueueEntry = { item_id: string, item_version: number, lease_id: string, subject: string, model: string, lane: Lane, amount: number | null, proposal_summary: string | null, confidence: number | null, due_at: string, received_at: string, lease_expires_at: string, offline: boolean, rule: string, escalation_level: number, };

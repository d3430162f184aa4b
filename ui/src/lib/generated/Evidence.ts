// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { Attribution } from "./Attribution";
import type { Document } from "./Document";
import type { ReasonCode } from "./ReasonCode";

export type Evidence = { attributions: Array<Attribution>, reason_codes: Array<ReasonCode>, documents: Array<Document>, rationale?: string | null, };

// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { ErrorCode } from "./ErrorCode";

export type DeskError = { code: ErrorCode, message: string, };

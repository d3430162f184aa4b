// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
import type { FieldType } from "./FieldType";

export type FieldSpec = { name: string, label: string, } & FieldType;

// TEMPORARY hand-written stand-in for the ts-rs output of src-tauri (same path and name); overwritten when the generator runs.
export type Account = { account_id: string, gate_url: string, user_name: string, role: string, authority_limit: number, device_id: string, key_id: string, log_origin: string, enrolled_at: string, };

//! The one error type of the desk: a stable machine code for the UI and a sentence for people
//! that says what to do.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Stable, machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotEnrolled,
    AlreadyEnrolled,
    KeyringUnavailable,
    KeyringLocked,
    GateUnreachable,
    GateRefused,
    InvalidDecision,
    NotFound,
    AlreadyDecided,
    LeaseLost,
    LogInconsistent,
    Storage,
    InvalidInput,
    /// A supervisor's action asked for by an account that is not a supervisor or an admin.
    NotSupervisor,
    /// An exported audit bundle did not verify; nothing was kept.
    BundleUnverified,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotEnrolled => "not_enrolled",
            ErrorCode::AlreadyEnrolled => "already_enrolled",
            ErrorCode::KeyringUnavailable => "keyring_unavailable",
            ErrorCode::KeyringLocked => "keyring_locked",
            ErrorCode::GateUnreachable => "gate_unreachable",
            ErrorCode::GateRefused => "gate_refused",
            ErrorCode::InvalidDecision => "invalid_decision",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyDecided => "already_decided",
            ErrorCode::LeaseLost => "lease_lost",
            ErrorCode::LogInconsistent => "log_inconsistent",
            ErrorCode::Storage => "storage",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::NotSupervisor => "not_supervisor",
            ErrorCode::BundleUnverified => "bundle_unverified",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, as `{"code": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DeskError {
    pub code: ErrorCode,
    pub message: String,
}

impl DeskError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn storage(message: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::Storage,
            format!(
                "the desk's local database failed: {message}; check free disk space and the permissions of the data directory"
            ),
        )
    }

    pub fn invalid_decision(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidDecision, message)
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn unreachable(message: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::GateUnreachable,
            format!(
                "the gate cannot be reached ({message}); your decisions stay saved on this device and are sent at the next sync"
            ),
        )
    }

    /// The gate answered with its own `{code, message}`.
    pub fn refused(code: &str, message: &str) -> Self {
        Self::new(ErrorCode::GateRefused, format!("{code}: {message}"))
    }

    pub fn not_enrolled(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotEnrolled, message)
    }

    /// True for failures a later retry may cure (network, gate restarting).
    pub fn is_transient(&self) -> bool {
        self.code == ErrorCode::GateUnreachable
    }
}

impl From<sqlx::Error> for DeskError {
    fn from(err: sqlx::Error) -> Self {
        DeskError::storage(err)
    }
}

impl From<sqlx::migrate::MigrateError> for DeskError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        DeskError::storage(err)
    }
}

impl From<std::io::Error> for DeskError {
    fn from(err: std::io::Error) -> Self {
        DeskError::storage(err)
    }
}

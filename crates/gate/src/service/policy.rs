//! Activating and rolling back policies. A policy is activated as a whole and every change is an
//! audit event; an invalid policy is refused and the active one stays.

use std::sync::Arc;

use countersign_core::AuditEventKind;
use countersign_policy::Policy;
use serde::Serialize;
use serde_json::json;

use super::Gate;
use crate::db::{DbError, ms_to_time, now_ms};
use crate::error::GateError;
use crate::log::WriteTx;
use crate::on_tx;

/// One stored policy version.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyVersion {
    pub version: u32,
    pub name: String,
    pub sha256: String,
    pub activated_at: chrono::DateTime<chrono::Utc>,
    pub active: bool,
}

impl Gate {
    pub(super) async fn reload_policy(&self) -> Result<(), GateError> {
        let mut tx = self.db.begin_read().await?;
        let source: Option<String> = on_tx!(&mut tx, conn => {
            sqlx::query_scalar("SELECT source FROM policies WHERE active = 1")
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let policy = source
            .map(|text| {
                Policy::parse(&text)
                    .map(Arc::new)
                    .map_err(|e| GateError::internal(format!("stored active policy: {e}")))
            })
            .transpose()?;
        self.set_policy(policy);
        Ok(())
    }

    /// Validates and activates a policy document. Its version must be higher than every version
    /// activated before.
    pub async fn activate_policy(&self, text: &str, actor: &str) -> Result<u32, GateError> {
        let policy = Policy::parse(text)
            .map_err(|e| GateError::unprocessable("invalid_policy", e.to_string()))?;
        let version = policy.version();
        let mut wtx = WriteTx::begin(&self.db).await?;
        let highest: Option<i64> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_scalar("SELECT MAX(version) FROM policies")
                .fetch_one(conn)
                .await
                .map_err(DbError::from)?
        });
        if let Some(highest) = highest
            && i64::from(version) <= highest
        {
            return Err(GateError::conflict(
                "policy_version_not_newer",
                format!(
                    "policy version {version} is not newer than version {highest}; raise `version`"
                ),
            ));
        }
        wtx.append(
            &self.log,
            AuditEventKind::PolicyActivated,
            actor,
            None,
            json!({"version": version, "name": policy.name(), "sha256": policy.sha256()}),
        )
        .await?;
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("UPDATE policies SET active = 0 WHERE active = 1")
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
            sqlx::query("INSERT INTO policies (version, name, source, sha256, activated_at, active) VALUES ($1, $2, $3, $4, $5, 1)")
                .bind(i64::from(version))
                .bind(policy.name())
                .bind(text)
                .bind(policy.sha256())
                .bind(now_ms())
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
        });
        wtx.commit(&self.log).await?;
        self.set_policy(Some(Arc::new(policy)));
        Ok(version)
    }

    /// Re-activates the version that was active before the current one.
    pub async fn rollback_policy(&self, actor: &str) -> Result<u32, GateError> {
        let mut wtx = WriteTx::begin(&self.db).await?;
        let current: Option<i64> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_scalar("SELECT version FROM policies WHERE active = 1")
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let current = current
            .ok_or_else(|| GateError::conflict("no_active_policy", "no policy is active"))?;
        let previous: Option<(i64, String)> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_as("SELECT version, source FROM policies WHERE version < $1 ORDER BY version DESC LIMIT 1")
                .bind(current)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let (previous, source) = previous.ok_or_else(|| {
            GateError::conflict(
                "no_previous_policy",
                "there is no earlier policy version to roll back to",
            )
        })?;
        let policy = Policy::parse(&source)
            .map_err(|e| GateError::internal(format!("stored policy {previous}: {e}")))?;
        wtx.append(
            &self.log,
            AuditEventKind::PolicyRolledBack,
            actor,
            None,
            json!({"from_version": current, "to_version": previous}),
        )
        .await?;
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("UPDATE policies SET active = 0 WHERE version = $1")
                .bind(current)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
            sqlx::query("UPDATE policies SET active = 1, activated_at = $1 WHERE version = $2")
                .bind(now_ms())
                .bind(previous)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
        });
        wtx.commit(&self.log).await?;
        self.set_policy(Some(Arc::new(policy)));
        Ok(u32::try_from(previous).unwrap_or_default())
    }

    pub async fn list_policies(&self) -> Result<Vec<PolicyVersion>, GateError> {
        let mut tx = self.db.begin_read().await?;
        let rows: Vec<(i64, String, String, i64, i64)> = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT version, name, sha256, activated_at, active FROM policies ORDER BY version")
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        Ok(rows
            .into_iter()
            .map(
                |(version, name, sha256, activated_at, active)| PolicyVersion {
                    version: u32::try_from(version).unwrap_or_default(),
                    name,
                    sha256,
                    activated_at: ms_to_time(activated_at),
                    active: active == 1,
                },
            )
            .collect())
    }
}

//! The supervisor's side of the desk: decision trails checked here rather than taken from the
//! gate, the gate's statistics (decisions, reviewers, model versions), the actions a supervisor
//! takes (re-review, flag, breaker reset, withdraw and reassign), the log integrity check and the
//! audit bundle export. The gate enforces the role on every call; the desk refuses early so a
//! reviewer's desk does not even ask.

mod bundle;
mod integrity;
mod trail;
pub mod types;

use chrono::Utc;
use countersign_api::supervision::{
    InclusionBatchRequest, InclusionBatchResponse, ItemTrail, OpenLeasesResponse, ReasonRequest,
    ResetBreakerRequest,
};
use countersign_api::{LeaseState, ReassignRequest};
use countersign_core::checkpoint::{Checkpoint, verify_checkpoint};
use uuid::Uuid;

use crate::Desk;
use crate::client::GateClient;
use crate::error::{DeskError, ErrorCode};
use crate::store::{to_i64, ts};
use types::*;

/// Roles that may use the supervisor views.
pub const SUPERVISOR_ROLES: [&str; 2] = ["supervisor", "admin"];

/// Longest reason a supervisor may give; the gate has its own bound too.
const MAX_REASON: usize = 2000;

fn reason_text(reason: &str) -> Result<ReasonRequest, DeskError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(DeskError::invalid_input(
            "give a reason: it is logged with the action and shown to other supervisors",
        ));
    }
    if reason.len() > MAX_REASON {
        return Err(DeskError::invalid_input(format!(
            "a reason has at most {MAX_REASON} characters"
        )));
    }
    Ok(ReasonRequest {
        reason: reason.to_owned(),
    })
}

impl Desk {
    /// True when this account's role may use the supervisor views.
    pub fn is_supervisor(&self) -> bool {
        SUPERVISOR_ROLES.contains(&self.account().role.as_str())
    }

    /// `not_supervisor` unless this account's role may use the supervisor views; asks nothing
    /// of the gate.
    pub fn require_supervisor(&self) -> Result<(), DeskError> {
        if self.is_supervisor() {
            return Ok(());
        }
        Err(DeskError::new(
            ErrorCode::NotSupervisor,
            format!(
                "{} is a {} here: only supervisors and admins see decision trails and statistics",
                self.account().user_name,
                self.account().role
            ),
        ))
    }

    /// The gate client, for an account whose role supervises.
    async fn supervising(&self) -> Result<&GateClient, DeskError> {
        self.require_supervisor()?;
        self.client().await
    }

    /// An item's decision trail, every part of it verified on this desk.
    pub async fn trail(&self, item_id: Uuid) -> Result<TrailView, DeskError> {
        let client = self.supervising().await?;
        let trail: ItemTrail = client
            .get(&format!("/v1/supervision/items/{item_id}/trail"))
            .await?;
        self.verify_trail(&trail).await
    }

    /// Verifies a trail as the gate's JSON gives it (e.g. one saved earlier): the same checks
    /// as [`Desk::trail`], against this desk's pinned log key and its checkpoints.
    pub async fn verify_trail_json(&self, body: &str) -> Result<TrailView, DeskError> {
        let trail: ItemTrail = serde_json::from_str(body)
            .map_err(|e| DeskError::invalid_input(format!("not a decision trail: {e}")))?;
        self.verify_trail(&trail).await
    }

    async fn verify_trail(&self, trail: &ItemTrail) -> Result<TrailView, DeskError> {
        let client = self.supervising().await?;
        let note = &trail.checkpoint.checkpoint;
        let checkpoint: Result<Checkpoint, String> = verify_checkpoint(
            note,
            &self.inner.verifier,
            &self.inner.account.log_origin,
        )
        .map_err(|e| {
            format!("the checkpoint is not signed by the log key this desk enrolled with: {e}")
        });
        let consistency = match &checkpoint {
            Err(_) => Check::fail("no validly signed checkpoint to compare"),
            Ok(cp) => match self.accept_checkpoint(client, cp, note).await {
                Ok(()) => Check::pass(format!(
                    "extends every checkpoint this desk saw (now {} entries)",
                    cp.size
                )),
                Err(e) if e.code == ErrorCode::LogInconsistent => Check::fail(e.message),
                Err(e) => return Err(e),
            },
        };
        let mut key_indices: Vec<u64> = trail
            .decisions
            .iter()
            .map(|d| d.key.enrolled_at_index)
            .filter(|i| *i < trail.checkpoint.size)
            .collect();
        key_indices.sort_unstable();
        key_indices.dedup();
        let mut keys = Vec::new();
        for chunk in key_indices.chunks(integrity::PROOF_BATCH) {
            let proven: InclusionBatchResponse = client
                .post(
                    "/v1/log/proofs/inclusion",
                    &InclusionBatchRequest {
                        size: trail.checkpoint.size,
                        indices: chunk.to_vec(),
                    },
                )
                .await?;
            keys.extend(proven.entries);
        }
        let view = trail::check_trail(trail, checkpoint, consistency, &keys);
        self.remember_trail(trail, &view).await?;
        Ok(view)
    }

    /// Keeps the proven entries of a trail, so the log integrity check proves later that the
    /// gate still holds them byte for byte.
    async fn remember_trail(&self, trail: &ItemTrail, view: &TrailView) -> Result<(), DeskError> {
        let leaves = trail::proven_leaves(trail, view);
        if leaves.is_empty() {
            return Ok(());
        }
        let now = ts(Utc::now());
        let mut tx = self.pool().begin().await?;
        for (index, leaf, kind) in leaves {
            sqlx::query("INSERT OR IGNORE INTO trail_entries (log_index, leaf_hash_hex, kind, item_id, seen_at) VALUES (?, ?, ?, ?, ?)")
                .bind(to_i64(index))
                .bind(hex::encode(leaf))
                .bind(kind)
                .bind(trail.item.item_id.to_string())
                .bind(&now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Logged decisions, newest first, by the filters given.
    pub async fn search_decisions(
        &self,
        filter: &DecisionFilter,
    ) -> Result<DecisionPage, DeskError> {
        self.supervising()
            .await?
            .get_query("/v1/supervision/decisions", filter)
            .await
    }

    /// Has an applied decision re-reviewed blind by someone else (a new QA item).
    pub async fn rereview(
        &self,
        decision_id: Uuid,
        reason: &str,
    ) -> Result<RereviewResult, DeskError> {
        let body = reason_text(reason)?;
        self.supervising()
            .await?
            .post(
                &format!("/v1/supervision/decisions/{decision_id}/rereview"),
                &body,
            )
            .await
    }

    pub async fn flag_decision(
        &self,
        decision_id: Uuid,
        reason: &str,
    ) -> Result<FlagRecord, DeskError> {
        let body = reason_text(reason)?;
        self.supervising()
            .await?
            .post(
                &format!("/v1/supervision/decisions/{decision_id}/flag"),
                &body,
            )
            .await
    }

    pub async fn reviewer_stats(
        &self,
        filter: &ReviewerFilter,
    ) -> Result<ReviewerReport, DeskError> {
        self.supervising()
            .await?
            .get_query("/v1/supervision/reviewers", filter)
            .await
    }

    pub async fn model_statuses(&self) -> Result<ModelsReport, DeskError> {
        self.supervising()
            .await?
            .get("/v1/supervision/models")
            .await
    }

    pub async fn override_rates(&self, filter: &ModelFilter) -> Result<OverrideReport, DeskError> {
        self.supervising()
            .await?
            .get_query("/v1/supervision/models/override-rate", filter)
            .await
    }

    pub async fn corrected_fields(
        &self,
        filter: &ModelFilter,
    ) -> Result<CorrectedFields, DeskError> {
        let filter = ModelFilter {
            bucket: None,
            ..filter.clone()
        };
        self.supervising()
            .await?
            .get_query("/v1/supervision/models/corrected-fields", &filter)
            .await
    }

    /// Resets a model version's tripped circuit breaker.
    pub async fn reset_breaker(
        &self,
        model: &str,
        reason: &str,
    ) -> Result<BreakerState, DeskError> {
        let ReasonRequest { reason } = reason_text(reason)?;
        self.supervising()
            .await?
            .post(
                "/v1/supervision/models/reset",
                &ResetBreakerRequest {
                    model: model.trim().to_owned(),
                    reason,
                },
            )
            .await
    }

    pub async fn open_leases(&self, filter: &LeaseFilter) -> Result<Vec<OpenLease>, DeskError> {
        let leases: OpenLeasesResponse = self
            .supervising()
            .await?
            .get_query("/v1/supervision/leases", filter)
            .await?;
        Ok(leases.leases)
    }

    /// Takes a lease back from its reviewer; their desk learns it at its next sync, and a
    /// decision they made meanwhile is kept as a conflict.
    pub async fn withdraw_lease(
        &self,
        lease_id: Uuid,
        reason: &str,
    ) -> Result<LeaseChange, DeskError> {
        let ReasonRequest { reason } = reason_text(reason)?;
        let query = serde_urlencoded::to_string([("reason", reason)])
            .map_err(|e| DeskError::invalid_input(format!("reason: {e}")))?;
        let state: LeaseState = self
            .supervising()
            .await?
            .post(&format!("/v1/leases/{lease_id}/withdraw?{query}"), &())
            .await?;
        Ok(lease_change(&state))
    }

    /// Hands a leased item to another reviewer (by user name).
    pub async fn reassign_lease(
        &self,
        lease_id: Uuid,
        to_user: &str,
    ) -> Result<LeaseChange, DeskError> {
        let to_user = to_user.trim();
        if to_user.is_empty() {
            return Err(DeskError::invalid_input(
                "name the reviewer to hand the item to",
            ));
        }
        let state: LeaseState = self
            .supervising()
            .await?
            .post(
                &format!("/v1/leases/{lease_id}/reassign"),
                &ReassignRequest {
                    to_user: to_user.to_owned(),
                },
            )
            .await?;
        Ok(lease_change(&state))
    }
}

fn lease_change(state: &LeaseState) -> LeaseChange {
    LeaseChange {
        lease_id: state.lease.lease_id,
        item_id: state.lease.item_id,
        state: state.state.clone(),
    }
}

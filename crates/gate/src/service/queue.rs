//! Review queues and leases: a reviewer claims items they may decide, ordered by SLA then age;
//! leases expire, can be renewed and returned, and supervisors can withdraw or reassign them
//! (which bumps the lease epoch, so a decision on the old lease becomes a conflict).

use std::time::Duration;

use countersign_core::{AuditEventKind, Lease, new_id};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Gate;
use super::identity::{Principal, Role, User, user_by_name};
use crate::api::{ClaimRequest, ClaimedItem, LeaseState};
use crate::db::{DbError, Tx, ms_to_time, now_ms, push_in_list};
use crate::error::GateError;
use crate::log::WriteTx;
use crate::{on_tx, write_later};

/// A lease row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct LeaseRow {
    pub lease_id: String,
    pub item_id: String,
    pub item_version: i64,
    pub epoch: i64,
    pub user_id: String,
    pub device_id: String,
    pub leased_at: i64,
    pub expires_at: i64,
    pub offline: i64,
    pub state: String,
}

impl LeaseRow {
    pub fn to_lease(&self, reviewer: &str) -> Result<Lease, GateError> {
        Ok(Lease {
            lease_id: parse_uuid(&self.lease_id)?,
            item_id: parse_uuid(&self.item_id)?,
            item_version: u32::try_from(self.item_version).unwrap_or_default(),
            epoch: u32::try_from(self.epoch).unwrap_or_default(),
            reviewer: reviewer.to_owned(),
            device_id: self.device_id.clone(),
            leased_at: ms_to_time(self.leased_at),
            expires_at: ms_to_time(self.expires_at),
            offline: self.offline != 0,
        })
    }
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, GateError> {
    text.parse()
        .map_err(|_| GateError::internal(format!("stored id `{text}` is not a UUID")))
}

pub(crate) const LEASE_COLUMNS: &str = "lease_id, item_id, item_version, epoch, user_id, device_id, leased_at, expires_at, offline, state";

pub(crate) async fn lease_by_id(
    tx: &mut Tx,
    lease_id: &str,
) -> Result<Option<LeaseRow>, GateError> {
    let sql = format!("SELECT {LEASE_COLUMNS} FROM leases WHERE lease_id = $1");
    let row: Option<LeaseRow> = on_tx!(tx, conn => {
        sqlx::query_as(&sql)
            .bind(lease_id)
            .fetch_optional(conn)
            .await
            .map_err(DbError::from)?
    });
    Ok(row)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Gate {
    /// Checks out up to `limit` items the caller may decide.
    pub async fn claim(
        &self,
        principal: &Principal,
        request: &ClaimRequest,
    ) -> Result<Vec<ClaimedItem>, GateError> {
        let (device_id, user) = principal.device()?;
        if !user.role.decides() {
            return Err(GateError::forbidden(
                "role_cannot_decide",
                format!("a {} does not take items from the review queue", user.role),
            ));
        }
        if request.limit == 0 || request.limit > self.config.max_claim {
            return Err(GateError::bad_request(
                "invalid_limit",
                format!("claim between 1 and {} items", self.config.max_claim),
            ));
        }
        let policy = self.active_policy();
        let online = policy
            .as_ref()
            .map_or(Duration::from_secs(30 * 60), |p| p.default_lease());
        let max_offline = policy
            .as_ref()
            .map_or(Duration::from_secs(72 * 3600), |p| p.max_offline_lease());
        let lease_length = if request.offline {
            let asked = request
                .offline_hours
                .map_or(max_offline, |h| Duration::from_secs(u64::from(h) * 3600));
            asked.min(max_offline)
        } else {
            online
        };
        let now = now_ms();
        let expires_at = now.saturating_add(duration_ms(lease_length));
        let statuses = if user.role == Role::Senior {
            "('pending', 'escalated')"
        } else {
            "('pending')"
        };
        let mut wtx = WriteTx::begin(&self.db).await?;
        let lock = if wtx.tx.is_postgres() {
            " FOR UPDATE OF i SKIP LOCKED"
        } else {
            ""
        };
        // A QA item is never handed to someone it excludes (whoever made the decision it
        // re-reviews).
        let qa_exclusion = match request.queue {
            crate::api::Queue::Review => "",
            crate::api::Queue::Qa => {
                " AND NOT EXISTS (SELECT 1 FROM qa_exclusions x WHERE x.item_id = i.item_id AND x.user_id = $3)"
            }
        };
        let queue = request.queue.as_str();
        // Items the caller may decide: within authority, not leased (or lease lapsed), not
        // already decided by them on this version (four-eyes) and not escalated by them.
        // The served item and the approvals so far come with the candidates: one statement for
        // the whole claim instead of two more per item. Unleased items and lapsed leases are
        // read through an index each and merged here, so that items on live leases are never
        // walked past (PostgreSQL allows no FOR UPDATE on a UNION).
        let sqlite = !wtx.tx.is_postgres();
        let candidates_sql = |index: &str, leased: &str| {
            let indexed_by = if sqlite {
                format!(" INDEXED BY {index}")
            } else {
                String::new()
            };
            format!(
                "SELECT i.item_id, i.current_version, i.active_lease_id, i.escalation_level, i.approvals_required, i.outcome, \
                        v.served, v.served_sha256, ({APPROVALS_OF_I}) AS approvals_given, i.due_at, i.received_at \
                 FROM items i{indexed_by} JOIN item_versions v ON v.item_id = i.item_id AND v.version = i.current_version \
                 WHERE i.queue = '{queue}' AND i.status IN {statuses} AND {leased} \
                   AND i.authority_required <= $2 \
                   AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.item_id = i.item_id AND d.user_id = $3 AND d.outcome = 'applied' \
                                   AND ((d.kind IN ('approve', 'correct') AND d.item_version = i.current_version) OR d.kind = 'escalate')){qa_exclusion} \
                 ORDER BY i.due_at, i.received_at \
                 LIMIT $4{lock}"
            )
        };
        type Candidate = (
            String,
            i64,
            Option<String>,
            i64,
            i64,
            Option<String>,
            String,
            String,
            i64,
            i64,
            i64,
        );
        let mut candidates: Vec<Candidate> = Vec::new();
        for sql in [
            candidates_sql("items_unleased", "i.active_lease_id IS NULL"),
            candidates_sql(
                "items_lease_ends",
                "i.active_lease_id IS NOT NULL AND i.lease_expires_at < $1",
            ),
        ] {
            let rows: Vec<Candidate> = on_tx!(&mut wtx.tx, conn => {
                sqlx::query_as(&sql)
                    .bind(now)
                    .bind(user.authority_limit)
                    .bind(&user.user_id)
                    .bind(i64::from(request.limit))
                    .fetch_all(conn)
                    .await
                    .map_err(DbError::from)?
            });
            candidates.extend(rows);
        }
        candidates.sort_by_key(|c| (c.9, c.10));
        // On PostgreSQL the rows cut here stay locked until this claim commits: a concurrent
        // claim skips them for that moment and finds them free afterwards.
        candidates.truncate(usize::try_from(request.limit).unwrap_or(usize::MAX));
        let mut claimed = Vec::with_capacity(candidates.len());
        let mut new_leases = Vec::with_capacity(candidates.len());
        for (
            item_id,
            version,
            lapsed_lease,
            escalation_level,
            approvals_required,
            outcome,
            served,
            served_sha256,
            approvals_given,
            _,
            _,
        ) in candidates
        {
            let item_uuid = parse_uuid(&item_id)?;
            if let Some(old) = lapsed_lease {
                on_tx!(&mut wtx.tx, conn => {
                    sqlx::query("UPDATE leases SET state = 'expired' WHERE lease_id = $1 AND state = 'active'")
                        .bind(&old)
                        .execute(conn)
                        .await
                        .map_err(DbError::from)?;
                });
                wtx.append(
                    &self.log,
                    AuditEventKind::LeaseExpired,
                    "gate",
                    Some(item_uuid),
                    json!({"lease_id": old}),
                )
                .await?;
            }
            let lease = Lease {
                lease_id: new_id(),
                item_id: item_uuid,
                item_version: u32::try_from(version).unwrap_or_default(),
                epoch: 1,
                reviewer: user.name.clone(),
                device_id: device_id.to_owned(),
                leased_at: ms_to_time(now),
                expires_at: ms_to_time(expires_at),
                offline: request.offline,
            };
            wtx.append(
                &self.log,
                AuditEventKind::Leased,
                &user.name,
                Some(item_uuid),
                json!({
                    "lease_id": lease.lease_id,
                    "item_version": lease.item_version,
                    "epoch": lease.epoch,
                    "user_id": user.user_id,
                    "device_id": device_id,
                    "expires_at": lease.expires_at,
                    "offline": request.offline,
                }),
            )
            .await?;
            new_leases.push((lease.lease_id.to_string(), item_id, version));
            claimed.push(ClaimedItem {
                lease,
                item: serde_json::value::RawValue::from_string(served)
                    .map_err(|e| GateError::internal(format!("stored served item: {e}")))?,
                evidence_sha256: served_sha256,
                current_outcome: outcome
                    .map(|o| serde_json::from_str::<Value>(&o))
                    .transpose()
                    .map_err(|e| GateError::internal(format!("stored outcome: {e}")))?,
                approvals_required: u32::try_from(approvals_required).unwrap_or(1),
                approvals_given: u32::try_from(approvals_given).unwrap_or_default(),
                escalation_level: u32::try_from(escalation_level).unwrap_or_default(),
            });
        }
        let offline = i64::from(request.offline);
        for chunk in new_leases.chunks(200) {
            write_later!(&mut wtx, q => {
                q.push("INSERT INTO leases (lease_id, item_id, item_version, epoch, user_id, device_id, leased_at, expires_at, offline, state) ");
                q.push_values(chunk, |mut b, (lease_id, item_id, version)| {
                    b.push_bind(lease_id.clone()).push_bind(item_id.clone()).push_bind(*version)
                        .push_bind(1_i64).push_bind(user.user_id.clone()).push_bind(device_id.to_owned())
                        .push_bind(now).push_bind(expires_at).push_bind(offline)
                        .push_bind("active");
                });
            });
            write_later!(&mut wtx, q => {
                q.push("UPDATE items SET active_lease_id = CASE item_id");
                for (lease_id, item_id, _) in chunk {
                    q.push(" WHEN ").push_bind(item_id.clone()).push(" THEN ").push_bind(lease_id.clone());
                }
                q.push(" END, lease_expires_at = ").push_bind(expires_at).push(" WHERE item_id IN");
                push_in_list(q, chunk.iter().map(|(_, item_id, _)| item_id.clone()));
            });
        }
        wtx.commit(&self.log).await?;
        metrics::counter!("countersign_items_leased_total").increment(claimed.len() as u64);
        Ok(claimed)
    }

    /// Extends the caller's active, unexpired leases by the policy's online lease length.
    pub async fn renew_leases(
        &self,
        principal: &Principal,
        lease_ids: &[Uuid],
    ) -> Result<Vec<LeaseState>, GateError> {
        let (device_id, user) = principal.device()?;
        let online = self
            .active_policy()
            .map_or(Duration::from_secs(30 * 60), |p| p.default_lease());
        let now = now_ms();
        let expires_at = now.saturating_add(duration_ms(online));
        let mut wtx = WriteTx::begin(&self.db).await?;
        let mut states = Vec::with_capacity(lease_ids.len());
        for lease_id in lease_ids {
            let row = self.own_lease(&mut wtx.tx, device_id, lease_id).await?;
            if row.state == "active" && row.expires_at >= now && row.expires_at < expires_at {
                on_tx!(&mut wtx.tx, conn => {
                    sqlx::query("UPDATE leases SET expires_at = $1 WHERE lease_id = $2")
                        .bind(expires_at)
                        .bind(&row.lease_id)
                        .execute(&mut *conn)
                        .await
                        .map_err(DbError::from)?;
                    sqlx::query("UPDATE items SET lease_expires_at = $1 WHERE active_lease_id = $2")
                        .bind(expires_at)
                        .bind(&row.lease_id)
                        .execute(&mut *conn)
                        .await
                        .map_err(DbError::from)?;
                });
                wtx.append(
                    &self.log,
                    AuditEventKind::LeaseRenewed,
                    &user.name,
                    Some(parse_uuid(&row.item_id)?),
                    json!({"lease_id": row.lease_id, "expires_at": ms_to_time(expires_at)}),
                )
                .await?;
            }
            let row = self.own_lease(&mut wtx.tx, device_id, lease_id).await?;
            states.push(LeaseState {
                lease: row.to_lease(&user.name)?,
                state: row.state.clone(),
            });
        }
        wtx.commit(&self.log).await?;
        Ok(states)
    }

    /// Gives leased items back to the queue undecided.
    pub async fn return_leases(
        &self,
        principal: &Principal,
        lease_ids: &[Uuid],
    ) -> Result<(), GateError> {
        let (device_id, user) = principal.device()?;
        let mut wtx = WriteTx::begin(&self.db).await?;
        for lease_id in lease_ids {
            let row = self.own_lease(&mut wtx.tx, device_id, lease_id).await?;
            if row.state != "active" {
                continue;
            }
            self.end_lease(&mut wtx, &row, "returned", false).await?;
            wtx.append(
                &self.log,
                AuditEventKind::LeaseReturned,
                &user.name,
                Some(parse_uuid(&row.item_id)?),
                json!({"lease_id": row.lease_id}),
            )
            .await?;
        }
        wtx.commit(&self.log).await?;
        Ok(())
    }

    /// A supervisor takes an item back from a reviewer; the reviewer's desk learns it at its
    /// next sync, and a decision on the withdrawn lease is kept as a conflict.
    pub async fn withdraw_lease(
        &self,
        principal: &Principal,
        lease_id: Uuid,
        reason: &str,
    ) -> Result<LeaseState, GateError> {
        let supervisor = principal.supervisor()?;
        let mut wtx = WriteTx::begin(&self.db).await?;
        let row = self.active_lease(&mut wtx.tx, &lease_id).await?;
        self.end_lease(&mut wtx, &row, "withdrawn", true).await?;
        wtx.append(
            &self.log,
            AuditEventKind::Withdrawn,
            &supervisor.name,
            Some(parse_uuid(&row.item_id)?),
            json!({"lease_id": row.lease_id, "epoch": row.epoch + 1, "reason": reason}),
        )
        .await?;
        let row = lease_by_id(&mut wtx.tx, &row.lease_id)
            .await?
            .ok_or_else(|| GateError::internal("lease vanished"))?;
        let holder = super::identity::user_by_id(&mut wtx.tx, &row.user_id).await?;
        wtx.commit(&self.log).await?;
        Ok(LeaseState {
            lease: row.to_lease(holder.as_ref().map_or("", |u| u.name.as_str()))?,
            state: row.state,
        })
    }

    /// A supervisor hands a leased item to another reviewer: the old lease ends (epoch bumped)
    /// and a new lease goes to the other reviewer's most recently enrolled device.
    pub async fn reassign_lease(
        &self,
        principal: &Principal,
        lease_id: Uuid,
        to_user: &str,
    ) -> Result<LeaseState, GateError> {
        let supervisor = principal.supervisor()?;
        let mut wtx = WriteTx::begin(&self.db).await?;
        let row = self.active_lease(&mut wtx.tx, &lease_id).await?;
        let target: User = user_by_name(&mut wtx.tx, to_user)
            .await?
            .ok_or_else(|| GateError::not_found("unknown_user", format!("no user `{to_user}`")))?;
        if !target.role.decides() {
            return Err(GateError::unprocessable(
                "role_cannot_decide",
                format!("`{to_user}` is a {} and does not decide items", target.role),
            ));
        }
        if super::qa::excludes(&mut wtx.tx, &row.item_id, &target.user_id).await? {
            return Err(GateError::unprocessable(
                "qa_excluded",
                format!("`{to_user}` made the decision this QA item re-reviews"),
            ));
        }
        let device: Option<String> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_scalar("SELECT device_id FROM devices WHERE user_id = $1 ORDER BY created_at DESC LIMIT 1")
                .bind(&target.user_id)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let device = device.ok_or_else(|| {
            GateError::unprocessable("no_device", format!("`{to_user}` has no enrolled desk"))
        })?;
        self.end_lease(&mut wtx, &row, "reassigned", true).await?;
        let new_lease = new_id();
        let now = now_ms();
        let expires_at = row.expires_at.max(now);
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("INSERT INTO leases (lease_id, item_id, item_version, epoch, user_id, device_id, leased_at, expires_at, offline, state) VALUES ($1, $2, $3, 1, $4, $5, $6, $7, 0, 'active')")
                .bind(new_lease.to_string())
                .bind(&row.item_id)
                .bind(row.item_version)
                .bind(&target.user_id)
                .bind(&device)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
            sqlx::query("UPDATE items SET active_lease_id = $1, lease_expires_at = $2 WHERE item_id = $3")
                .bind(new_lease.to_string())
                .bind(expires_at)
                .bind(&row.item_id)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
        });
        wtx.append(
            &self.log,
            AuditEventKind::Reassigned,
            &supervisor.name,
            Some(parse_uuid(&row.item_id)?),
            json!({
                "from_lease_id": row.lease_id,
                "from_epoch": row.epoch + 1,
                "to_lease_id": new_lease,
                "to_user_id": target.user_id,
                "to_device_id": device,
            }),
        )
        .await?;
        let new_row = lease_by_id(&mut wtx.tx, &new_lease.to_string())
            .await?
            .ok_or_else(|| GateError::internal("new lease vanished"))?;
        wtx.commit(&self.log).await?;
        Ok(LeaseState {
            lease: new_row.to_lease(&target.name)?,
            state: new_row.state,
        })
    }

    /// The caller's leases that are active or ended since `since_ms` — what a desk needs to learn
    /// about withdrawals, reassignments and supersessions at its next sync.
    pub async fn device_leases(
        &self,
        principal: &Principal,
        include_ended: bool,
    ) -> Result<Vec<LeaseState>, GateError> {
        let (device_id, user) = principal.device()?;
        let mut tx = self.db.begin_read().await?;
        let filter = if include_ended {
            ""
        } else {
            " AND state = 'active'"
        };
        let sql = format!(
            "SELECT {LEASE_COLUMNS} FROM leases WHERE device_id = $1{filter} ORDER BY leased_at"
        );
        let rows: Vec<LeaseRow> = on_tx!(&mut tx, conn => {
            sqlx::query_as(&sql)
                .bind(device_id)
                .fetch_all(conn)
                .await
                .map_err(DbError::from)?
        });
        let now = now_ms();
        rows.into_iter()
            .map(|row| {
                let state = if row.state == "active" && row.expires_at < now {
                    "expired".to_owned()
                } else {
                    row.state.clone()
                };
                Ok(LeaseState {
                    lease: row.to_lease(&user.name)?,
                    state,
                })
            })
            .collect()
    }

    async fn own_lease(
        &self,
        tx: &mut Tx,
        device_id: &str,
        lease_id: &Uuid,
    ) -> Result<LeaseRow, GateError> {
        match lease_by_id(tx, &lease_id.to_string()).await? {
            Some(row) if row.device_id == device_id => Ok(row),
            _ => Err(GateError::not_found(
                "unknown_lease",
                format!("no lease {lease_id} held by this device"),
            )),
        }
    }

    async fn active_lease(&self, tx: &mut Tx, lease_id: &Uuid) -> Result<LeaseRow, GateError> {
        match lease_by_id(tx, &lease_id.to_string()).await? {
            Some(row) if row.state == "active" => Ok(row),
            Some(row) => Err(GateError::conflict(
                "lease_not_active",
                format!("lease {lease_id} is {}", row.state),
            )),
            None => Err(GateError::not_found(
                "unknown_lease",
                format!("no lease {lease_id}"),
            )),
        }
    }

    /// Ends a lease in `state`, optionally bumping its epoch, and frees the item.
    pub(crate) async fn end_lease(
        &self,
        wtx: &mut WriteTx,
        row: &LeaseRow,
        state: &'static str,
        bump_epoch: bool,
    ) -> Result<(), GateError> {
        let bump = i64::from(bump_epoch);
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("UPDATE leases SET state = $1, epoch = epoch + $2 WHERE lease_id = $3")
                .bind(state)
                .bind(bump)
                .bind(&row.lease_id)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
            // By primary key: the lease names its item, and active_lease_id has no index.
            sqlx::query("UPDATE items SET active_lease_id = NULL, lease_expires_at = NULL WHERE item_id = $1 AND active_lease_id = $2")
                .bind(&row.item_id)
                .bind(&row.lease_id)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
        });
        Ok(())
    }
}

/// Distinct reviewers whose approval or correction counts towards the current outcome of item
/// `i`: those since the latest correction or escalation on its current version (a correction
/// replaces the outcome others approved, and an escalation asks for a higher authority). The
/// same rule as `approvals_given` in decisions.rs, which counts the rows a push holds in memory.
const APPROVALS_OF_I: &str = "SELECT COUNT(DISTINCT a.user_id) FROM decisions a \
     WHERE a.item_id = i.item_id AND a.item_version = i.current_version AND a.outcome = 'applied' AND a.kind IN ('approve', 'correct') \
       AND a.log_index >= COALESCE((SELECT MAX(b.log_index) FROM decisions b \
                                    WHERE b.item_id = i.item_id AND b.item_version = i.current_version AND b.outcome = 'applied' AND b.kind IN ('correct', 'escalate')), 0)";

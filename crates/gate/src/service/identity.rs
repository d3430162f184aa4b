//! Users, devices and their keys, and the API credentials of desks, sources and consumers.

use std::fmt;
use std::str::FromStr;

use countersign_core::jws::{self, VerifyingKey};
use countersign_core::{AuditEventKind, new_id};
use serde_json::json;

use super::{Gate, new_secret, secret_hash};
use crate::api::{EnrollRequest, EnrollResponse};
use crate::db::{DbError, Tx, now_ms};
use crate::error::GateError;
use crate::log::WriteTx;
use crate::on_tx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Reviewer,
    Senior,
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Senior => "senior",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Whether users of this role take items from the queue and decide them.
    pub fn decides(self) -> bool {
        matches!(self, Role::Reviewer | Role::Senior)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = GateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reviewer" => Ok(Role::Reviewer),
            "senior" => Ok(Role::Senior),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            other => Err(GateError::bad_request(
                "invalid_role",
                format!("unknown role `{other}` (reviewer, senior, supervisor or admin)"),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub user_id: String,
    pub name: String,
    pub role: Role,
    pub authority_limit: f64,
}

/// Who is calling, as established from an API credential.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    Device { device_id: String, user: User },
    Source { name: String },
    Consumer { name: String },
}

impl Principal {
    pub fn device(&self) -> Result<(&str, &User), GateError> {
        match self {
            Principal::Device { device_id, user } => Ok((device_id, user)),
            _ => Err(GateError::forbidden(
                "wrong_credential",
                "this call needs a reviewer device's credential",
            )),
        }
    }

    pub fn source(&self) -> Result<&str, GateError> {
        match self {
            Principal::Source { name } => Ok(name),
            _ => Err(GateError::forbidden(
                "wrong_credential",
                "this call needs a source system's API key",
            )),
        }
    }

    pub fn consumer(&self) -> Result<&str, GateError> {
        match self {
            Principal::Consumer { name } => Ok(name),
            _ => Err(GateError::forbidden(
                "wrong_credential",
                "this call needs a downstream consumer's API key",
            )),
        }
    }

    /// A supervisor's (or admin's) device.
    pub fn supervisor(&self) -> Result<&User, GateError> {
        match self {
            Principal::Device { user, .. }
                if matches!(user.role, Role::Supervisor | Role::Admin) =>
            {
                Ok(user)
            }
            _ => Err(GateError::forbidden(
                "not_supervisor",
                "this call is for supervisors",
            )),
        }
    }
}

/// A user just created, with the one-time code their desk enrolls with.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user: User,
    pub enrollment_code: String,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub kind: &'static str,
    pub name: String,
    pub token: String,
}

const USER_NAME_MAX: usize = 64;

fn check_name(what: &str, name: &str) -> Result<(), GateError> {
    let ok = !name.is_empty()
        && name.len() <= USER_NAME_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(GateError::bad_request(
            "invalid_name",
            format!(
                "{what} name must be 1-{USER_NAME_MAX} characters of letters, digits, '.', '_', '-' or '@'"
            ),
        ))
    }
}

pub(crate) async fn user_by_id(tx: &mut Tx, user_id: &str) -> Result<Option<User>, GateError> {
    let row: Option<(String, String, String, f64)> = on_tx!(tx, conn => {
        sqlx::query_as("SELECT user_id, name, role, authority_limit FROM users WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(conn)
            .await
            .map_err(DbError::from)?
    });
    row.map(|(user_id, name, role, authority_limit)| {
        Ok(User {
            user_id,
            name,
            role: role.parse()?,
            authority_limit,
        })
    })
    .transpose()
}

pub(crate) async fn user_by_name(tx: &mut Tx, name: &str) -> Result<Option<User>, GateError> {
    let id: Option<String> = on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT user_id FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await
            .map_err(DbError::from)?
    });
    match id {
        Some(id) => user_by_id(tx, &id).await,
        None => Ok(None),
    }
}

impl Gate {
    /// Creates a user and returns a one-time enrollment code for their desk.
    pub async fn create_user(
        &self,
        name: &str,
        role: Role,
        authority_limit: f64,
        actor: &str,
    ) -> Result<NewUser, GateError> {
        check_name("user", name)?;
        if !authority_limit.is_finite() || authority_limit < 0.0 {
            return Err(GateError::bad_request(
                "invalid_authority",
                "the authority limit must be a non-negative number",
            ));
        }
        let mut wtx = WriteTx::begin(&self.db).await?;
        if user_by_name(&mut wtx.tx, name).await?.is_some() {
            return Err(GateError::conflict(
                "user_exists",
                format!("a user named `{name}` already exists"),
            ));
        }
        let user = User {
            user_id: new_id().to_string(),
            name: name.to_owned(),
            role,
            authority_limit,
        };
        let now = now_ms();
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("INSERT INTO users (user_id, name, role, authority_limit, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&user.user_id)
                .bind(&user.name)
                .bind(role.as_str())
                .bind(authority_limit)
                .bind(now)
                .execute(conn)
                .await
                .map_err(DbError::from)?;
        });
        let code = self.issue_enrollment_code(&mut wtx, &user.user_id).await?;
        wtx.append(
            &self.log,
            AuditEventKind::UserCreated,
            actor,
            None,
            json!({"user_id": user.user_id, "name": user.name, "role": role.as_str(), "authority_limit": authority_limit}),
        )
        .await?;
        wtx.commit(&self.log).await?;
        Ok(NewUser {
            user,
            enrollment_code: code,
        })
    }

    /// A fresh one-time enrollment code for an existing user (e.g. a new laptop).
    pub async fn new_enrollment_code(&self, user_name: &str) -> Result<String, GateError> {
        let mut wtx = WriteTx::begin(&self.db).await?;
        let user = user_by_name(&mut wtx.tx, user_name).await?.ok_or_else(|| {
            GateError::not_found("unknown_user", format!("no user `{user_name}`"))
        })?;
        let code = self.issue_enrollment_code(&mut wtx, &user.user_id).await?;
        wtx.commit(&self.log).await?;
        Ok(code)
    }

    async fn issue_enrollment_code(
        &self,
        wtx: &mut WriteTx,
        user_id: &str,
    ) -> Result<String, GateError> {
        let code = new_secret("cs_enroll")?;
        let ttl = i64::try_from(self.config.enrollment_ttl.as_millis()).unwrap_or(i64::MAX);
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("INSERT INTO enrollment_codes (code_sha256, user_id, expires_at) VALUES ($1, $2, $3)")
                .bind(secret_hash(&code))
                .bind(user_id)
                .bind(now_ms().saturating_add(ttl))
                .execute(conn)
                .await
                .map_err(DbError::from)?;
        });
        Ok(code)
    }

    /// Registers a desk: consumes the one-time code, records the device and its public key, and
    /// returns the device's API credential.
    pub async fn enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse, GateError> {
        let key_text = match &request.public_key {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let key = jws::parse_public_key(&key_text)
            .map_err(|e| GateError::bad_request("invalid_public_key", e.to_string()))?;
        let device_name = request.device_name.trim();
        if device_name.is_empty()
            || device_name.len() > 128
            || device_name.chars().any(char::is_control)
        {
            return Err(GateError::bad_request(
                "invalid_device_name",
                "the device name must be 1-128 printable characters",
            ));
        }
        let mut wtx = WriteTx::begin(&self.db).await?;
        let now = now_ms();
        let code_row: Option<(String, i64, Option<i64>)> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_as("SELECT user_id, expires_at, used_at FROM enrollment_codes WHERE code_sha256 = $1")
                .bind(secret_hash(request.code.trim()))
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        let user_id = match code_row {
            Some((user_id, expires_at, None)) if expires_at > now => user_id,
            Some((_, _, Some(_))) => {
                return Err(GateError::unauthorized(
                    "this enrollment code was already used",
                ));
            }
            Some(_) => return Err(GateError::unauthorized("this enrollment code has expired")),
            None => return Err(GateError::unauthorized("unknown enrollment code")),
        };
        let key_id = jws::key_id(&key);
        let key_exists: Option<String> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_scalar("SELECT key_id FROM device_keys WHERE key_id = $1")
                .bind(&key_id)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        if key_exists.is_some() {
            return Err(GateError::conflict(
                "key_exists",
                "this public key is already enrolled; every device needs its own key",
            ));
        }
        let user = user_by_id(&mut wtx.tx, &user_id)
            .await?
            .ok_or_else(|| GateError::internal("enrollment code names a missing user"))?;
        let device_id = new_id().to_string();
        let token = new_secret("cs_dev")?;
        let index = wtx
            .append(
                &self.log,
                AuditEventKind::KeyEnrolled,
                &user.name,
                None,
                json!({
                    "user_id": user.user_id,
                    "device_id": device_id,
                    "device_name": device_name,
                    "key_id": key_id,
                    "public_key": jws::public_jwk(&key),
                }),
            )
            .await?;
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("UPDATE enrollment_codes SET used_at = $1 WHERE code_sha256 = $2")
                .bind(now)
                .bind(secret_hash(request.code.trim()))
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
            sqlx::query("INSERT INTO devices (device_id, user_id, name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&device_id)
                .bind(&user.user_id)
                .bind(device_name)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
            sqlx::query("INSERT INTO device_keys (key_id, device_id, user_id, public_key, enrolled_at_index, status) VALUES ($1, $2, $3, $4, $5, 'active')")
                .bind(&key_id)
                .bind(&device_id)
                .bind(&user.user_id)
                .bind(key.to_bytes().to_vec())
                .bind(crate::log::to_i64(index))
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
            sqlx::query("INSERT INTO api_tokens (token_sha256, kind, principal, created_at) VALUES ($1, 'device', $2, $3)")
                .bind(secret_hash(&token))
                .bind(&device_id)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
        });
        wtx.commit(&self.log).await?;
        Ok(EnrollResponse {
            user_id: user.user_id,
            user_name: user.name,
            role: user.role.to_string(),
            authority_limit: user.authority_limit,
            device_id,
            key_id,
            token,
            log_origin: self.log.origin().to_owned(),
            log_public_key: self.log_public_key(),
        })
    }

    /// Creates an API key for a source system (`source`) or a downstream consumer (`consumer`).
    pub async fn create_api_key(
        &self,
        kind: &'static str,
        name: &str,
        actor: &str,
    ) -> Result<NewApiKey, GateError> {
        check_name(kind, name)?;
        let prefix = match kind {
            "source" => "cs_src",
            "consumer" => "cs_con",
            other => {
                return Err(GateError::bad_request(
                    "invalid_key_kind",
                    format!("unknown API key kind `{other}` (source or consumer)"),
                ));
            }
        };
        let token = new_secret(prefix)?;
        let mut wtx = WriteTx::begin(&self.db).await?;
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("INSERT INTO api_tokens (token_sha256, kind, principal, created_at) VALUES ($1, $2, $3, $4)")
                .bind(secret_hash(&token))
                .bind(kind)
                .bind(name)
                .bind(now_ms())
                .execute(conn)
                .await
                .map_err(DbError::from)?;
        });
        wtx.append(
            &self.log,
            AuditEventKind::ApiKeyCreated,
            actor,
            None,
            json!({"kind": kind, "name": name}),
        )
        .await?;
        wtx.commit(&self.log).await?;
        Ok(NewApiKey {
            kind,
            name: name.to_owned(),
            token,
        })
    }

    /// Establishes who holds a bearer token.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, GateError> {
        if token.is_empty() || token.len() > 256 {
            return Err(GateError::unauthorized(
                "missing or malformed API credential",
            ));
        }
        // One statement (its own snapshot) for the token, its device and the device's user: this
        // runs on every request.
        type Row = (
            String,
            String,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<f64>,
        );
        let mut tx = self.db.read_statement().await?;
        let row: Option<Row> = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "SELECT t.kind, t.principal, t.revoked_at, u.user_id, u.name, u.role, u.authority_limit \
                 FROM api_tokens t \
                 LEFT JOIN devices d ON t.kind = 'device' AND d.device_id = t.principal \
                 LEFT JOIN users u ON u.user_id = d.user_id \
                 WHERE t.token_sha256 = $1",
            )
            .bind(secret_hash(token))
            .fetch_optional(conn)
            .await
            .map_err(DbError::from)?
        });
        let Some((kind, principal, revoked_at, user_id, name, role, authority_limit)) = row else {
            return Err(GateError::unauthorized("unknown API credential"));
        };
        if revoked_at.is_some() {
            return Err(GateError::unauthorized("this API credential was revoked"));
        }
        match kind.as_str() {
            "source" => Ok(Principal::Source { name: principal }),
            "consumer" => Ok(Principal::Consumer { name: principal }),
            "device" => {
                let (Some(user_id), Some(name), Some(role), Some(authority_limit)) =
                    (user_id, name, role, authority_limit)
                else {
                    return Err(GateError::unauthorized("unknown device or user"));
                };
                Ok(Principal::Device {
                    device_id: principal,
                    user: User {
                        user_id,
                        name,
                        role: role.parse()?,
                        authority_limit,
                    },
                })
            }
            _ => Err(GateError::unauthorized("unknown credential kind")),
        }
    }

    /// Revokes a device key. The cut is the log position of the revocation: a decision the gate
    /// processes after it is refused, whatever time its signer claims.
    pub async fn revoke_key(
        &self,
        key_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<u64, GateError> {
        let mut wtx = WriteTx::begin(&self.db).await?;
        let status: Option<String> = on_tx!(&mut wtx.tx, conn => {
            sqlx::query_scalar("SELECT status FROM device_keys WHERE key_id = $1")
                .bind(key_id)
                .fetch_optional(conn)
                .await
                .map_err(DbError::from)?
        });
        match status.as_deref() {
            None => {
                return Err(GateError::not_found(
                    "unknown_key",
                    format!("no key `{key_id}`"),
                ));
            }
            Some("revoked") => {
                return Err(GateError::conflict(
                    "key_revoked",
                    "this key is already revoked",
                ));
            }
            Some(_) => {}
        }
        let index = wtx
            .append(
                &self.log,
                AuditEventKind::KeyRevoked,
                actor,
                None,
                json!({"key_id": key_id, "reason": reason}),
            )
            .await?;
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("UPDATE device_keys SET status = 'revoked', revoked_at_index = $1 WHERE key_id = $2")
                .bind(crate::log::to_i64(index))
                .bind(key_id)
                .execute(conn)
                .await
                .map_err(DbError::from)?;
        });
        wtx.commit(&self.log).await?;
        Ok(index)
    }

    /// Replaces a device's signing key. The request must be signed by the new key (proof of
    /// possession) and come with the device's credential; the old key stays valid for decisions
    /// it signed before, which may still be in the device's outbox.
    pub async fn rotate_key(
        &self,
        principal: &Principal,
        new_key: &VerifyingKey,
        proof_jws: &str,
    ) -> Result<String, GateError> {
        let (device_id, user) = principal.device()?;
        let new_kid = jws::key_id(new_key);
        let verified = jws::verify_compact(proof_jws, new_key, Some(&new_kid))
            .map_err(|e| GateError::unauthorized(format!("key rotation proof: {e}")))?;
        let expected = format!("countersign rotate-key {device_id} {new_kid}");
        if verified.payload != expected.as_bytes() {
            return Err(GateError::unauthorized(format!(
                "key rotation proof must sign exactly `{expected}`"
            )));
        }
        let mut wtx = WriteTx::begin(&self.db).await?;
        let index = wtx
            .append(
                &self.log,
                AuditEventKind::KeyRotated,
                &user.name,
                None,
                json!({"device_id": device_id, "key_id": new_kid, "public_key": jws::public_jwk(new_key)}),
            )
            .await?;
        on_tx!(&mut wtx.tx, conn => {
            sqlx::query("UPDATE device_keys SET status = 'rotated' WHERE device_id = $1 AND status = 'active'")
                .bind(device_id)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
            sqlx::query("INSERT INTO device_keys (key_id, device_id, user_id, public_key, enrolled_at_index, status) VALUES ($1, $2, $3, $4, $5, 'active')")
                .bind(&new_kid)
                .bind(device_id)
                .bind(&user.user_id)
                .bind(new_key.to_bytes().to_vec())
                .bind(crate::log::to_i64(index))
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
                        return GateError::conflict("key_exists", "this public key is already enrolled");
                    }
                    GateError::from(e)
                })?;
        });
        wtx.commit(&self.log).await?;
        Ok(new_kid)
    }
}

//! The HTTP API: handlers only authenticate, translate and delegate to [`Gate`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::api::supervision::{
    Agreement, BreakerConfig, BreakerState, BundleQuery, CheckpointQuery, CheckpointsResponse,
    CorrectedFieldsResponse, DecisionPage, DecisionQuery, DecisionSummary, FieldChanges,
    FlagRecord, InclusionBatchRequest, InclusionBatchResponse, ItemTrail, LeaseQuery,
    ModelFieldChanges, ModelStatus, ModelsResponse, OpenLease, OpenLeasesResponse, OverridePoint,
    OverrideQuery, OverrideRateResponse, OverrideSeries, ProofCheckpoint, ProvenEntry, QaOrigin,
    Queue, ReasonRequest, RereviewResponse, ResetBreakerRequest, ReviewerQuery, ReviewerStats,
    ReviewerStatsResponse, RubberStamp, SignerKey, StoredCheckpoint, TimeHistogram, TrailDecision,
    TrailItem, TrailLease, TrailRelease, TrailVersion,
};
use crate::api::{
    AckRequest, CheckpointResponse, ClaimRequest, ClaimResponse, EnrollRequest, EnrollResponse,
    EntriesResponse, EntryRecord, IngestResponse, LeaseIds, LeaseState, LeasesResponse,
    ProofResponse, PushRequest, PushResponse, ReassignRequest, ReleasesResponse, RotateKeyRequest,
    RotateKeyResponse, WhoAmI,
};
use crate::error::{ErrorBody, GateError};
use crate::service::{Gate, Principal};

/// Shared state of the HTTP server.
#[derive(Debug, Clone)]
pub struct AppState {
    pub gate: Arc<Gate>,
    pub metrics: Option<PrometheusHandle>,
}

/// The caller, authenticated from `Authorization: Bearer <token>`.
#[derive(Debug)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = GateError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, GateError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                GateError::unauthorized("send `Authorization: Bearer <API credential>`")
            })?;
        Ok(Caller(state.gate.authenticate(token.trim()).await?))
    }
}

/// JSON body extraction whose failures are `{code, message}` like every other error.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = GateError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, GateError> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        // Strict parsing first: duplicate keys, lone surrogates and hostile nesting are refused.
        let value = countersign_core::canonical::parse_strict(&bytes)
            .map_err(|e| GateError::bad_request("malformed_json", e.to_string()))?;
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|e| GateError::unprocessable("invalid_request", e.to_string()))
    }
}

/// A raw request body (what ingest parses itself) whose failures, such as a body over the
/// limit, are `{code, message}`.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawBody {
    type Rejection = GateError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, GateError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| GateError::new(e.status(), "invalid_body", e.body_text()))
    }
}

/// Query-string extraction whose failures are `{code, message}` like every other error; unknown
/// parameters are refused, so a misspelt filter is not silently ignored.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = GateError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, GateError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| QueryParams(value))
            .map_err(|e| GateError::bad_request("invalid_query", e.body_text()))
    }
}

/// A UUID path parameter whose failure is `{code, message}`.
#[derive(Debug)]
pub struct UuidPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for UuidPath {
    type Rejection = GateError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, GateError> {
        Path::<Uuid>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| UuidPath(id))
            .map_err(|e| GateError::bad_request("invalid_path", e.body_text()))
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Countersign gate",
        description = "Routes AI outputs by policy, holds what needs a human, takes signed decisions, releases outcomes and serves the audit log. Errors are JSON `{code, message}`.",
        license(name = "Apache-2.0")
    ),
    paths(
        ingest, enroll, whoami, rotate_key, claim, leases, renew, return_leases, withdraw, reassign, push,
        releases, ack, checkpoint, inclusion, consistency, entries, inclusion_batch, checkpoints,
        trail, search_decisions, rereview, flag, reviewers, models, override_rate,
        corrected_fields, reset_breaker, open_leases, bundle, healthz, readyz
    ),
    components(schemas(
        ErrorBody, IngestResponse, EnrollRequest, EnrollResponse, WhoAmI, RotateKeyRequest,
        RotateKeyResponse, ClaimRequest,
        ClaimResponse, LeaseIds, LeasesResponse, LeaseState, ReassignRequest, PushRequest,
        PushResponse, ReleasesResponse, AckRequest, CheckpointResponse, ProofResponse,
        EntriesResponse, EntryRecord, Queue, ProofCheckpoint, ProvenEntry, TrailItem, QaOrigin,
        TrailVersion, TrailLease, SignerKey, FlagRecord, TrailDecision, TrailRelease, ItemTrail,
        DecisionSummary, DecisionPage, TimeHistogram, Agreement, RubberStamp, ReviewerStats,
        ReviewerStatsResponse, OverridePoint, OverrideSeries, OverrideRateResponse, FieldChanges,
        ModelFieldChanges, CorrectedFieldsResponse, BreakerState, BreakerConfig, ModelStatus,
        ModelsResponse, ResetBreakerRequest, ReasonRequest, RereviewResponse, OpenLease,
        OpenLeasesResponse, InclusionBatchRequest, InclusionBatchResponse, StoredCheckpoint,
        CheckpointsResponse
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Builds the router with its limits: request bodies up to `body_limit` bytes and `timeout` per
/// request.
pub fn router(state: AppState, body_limit: usize, timeout: Duration) -> Router {
    Router::new()
        .route("/v1/outputs", post(ingest))
        .route("/v1/enroll", post(enroll))
        .route("/v1/me", get(whoami))
        .route("/v1/keys/rotate", post(rotate_key))
        .route("/v1/claims", post(claim))
        .route("/v1/leases", get(leases))
        .route("/v1/leases/renew", post(renew))
        .route("/v1/leases/return", post(return_leases))
        .route("/v1/leases/{lease_id}/withdraw", post(withdraw))
        .route("/v1/leases/{lease_id}/reassign", post(reassign))
        .route("/v1/decisions", post(push))
        .route("/v1/releases", get(releases))
        .route("/v1/releases/ack", post(ack))
        .route("/v1/log/checkpoint", get(checkpoint))
        .route("/v1/log/proof/inclusion", get(inclusion))
        .route("/v1/log/proof/consistency", get(consistency))
        .route("/v1/log/entries", get(entries))
        .route("/v1/log/proofs/inclusion", post(inclusion_batch))
        .route("/v1/log/checkpoints", get(checkpoints))
        .route("/v1/supervision/items/{item_id}/trail", get(trail))
        .route("/v1/supervision/decisions", get(search_decisions))
        .route(
            "/v1/supervision/decisions/{decision_id}/rereview",
            post(rereview),
        )
        .route("/v1/supervision/decisions/{decision_id}/flag", post(flag))
        .route("/v1/supervision/reviewers", get(reviewers))
        .route("/v1/supervision/models", get(models))
        .route("/v1/supervision/models/override-rate", get(override_rate))
        .route(
            "/v1/supervision/models/corrected-fields",
            get(corrected_fields),
        )
        .route("/v1/supervision/models/reset", post(reset_breaker))
        .route("/v1/supervision/leases", get(open_leases))
        .route("/v1/supervision/bundle", get(bundle))
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            GateError::internal("the gate hit an internal error").into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::map_response(json_error_body))
        .fallback(not_found)
        .with_state(state)
}

/// Every error leaves the gate as `{code, message}`. The extractors and handlers make theirs
/// so; this catches what axum and tower answer on their own (405 with its `Allow` header, 408
/// from the timeout) and any rejection an extractor leaves as text, keeping status, headers
/// and the text as the message.
async fn json_error_body(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Such bodies are a line of text; a longer one is not buffered, and the status's reason
    // stands in for it.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if text.is_empty() {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => {
                "this endpoint does not take that method; see `Allow`".to_owned()
            }
            StatusCode::REQUEST_TIMEOUT => "the request took too long and was abandoned".to_owned(),
            s => s.canonical_reason().unwrap_or("error").to_owned(),
        }
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    let json = Json(ErrorBody {
        code: code.to_owned(),
        message,
    })
    .into_response();
    let (json_parts, json_body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, json_body)
}

async fn not_found() -> GateError {
    GateError::not_found("not_found", "no such endpoint; see /openapi.json")
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Post one output or a batch (a JSON array); each is judged on its own.
#[utoipa::path(post, path = "/v1/outputs", tag = "sources", security(("bearer" = [])),
    request_body(content = Object, description = "An output or an array of outputs"),
    responses((status = 200, body = IngestResponse, description = "A result per output (a batch, or a single accepted or duplicate output)"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody, description = "A single output whose id was used for different content"), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody, description = "A single output that is invalid")))]
async fn ingest(
    State(state): State<AppState>,
    Caller(principal): Caller,
    RawBody(body): RawBody,
) -> Result<Response, GateError> {
    let source = principal.source()?;
    let results = state.gate.ingest(source, &body).await?;
    // One output posted on its own is answered with its own status; a batch always gets 200 with
    // a result per output.
    let single = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if single
        && let [only] = results.as_slice()
        && let (Some(error), Some(status)) = (&only.error, only.http_status)
    {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        return Ok((status, Json(error.clone())).into_response());
    }
    Ok(Json(IngestResponse { results }).into_response())
}

/// Enroll a desk with a one-time code and its public key.
#[utoipa::path(post, path = "/v1/enroll", tag = "desks", request_body = EnrollRequest,
    responses((status = 200, body = EnrollResponse), (status = 401, body = ErrorBody)))]
async fn enroll(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<EnrollRequest>,
) -> Result<Json<EnrollResponse>, GateError> {
    Ok(Json(state.gate.enroll(&request).await?))
}

/// Who the credential belongs to.
#[utoipa::path(get, path = "/v1/me", tag = "desks", security(("bearer" = [])),
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
async fn whoami(Caller(principal): Caller) -> Result<Json<WhoAmI>, GateError> {
    let (device_id, user) = principal.device()?;
    Ok(Json(WhoAmI {
        user_id: user.user_id.clone(),
        user_name: user.name.clone(),
        role: user.role.to_string(),
        authority_limit: user.authority_limit,
        device_id: device_id.to_owned(),
    }))
}

/// Replace the calling device's signing key (proof of possession required).
#[utoipa::path(post, path = "/v1/keys/rotate", tag = "desks", security(("bearer" = [])), request_body = RotateKeyRequest,
    responses((status = 200, body = RotateKeyResponse), (status = 401, body = ErrorBody)))]
async fn rotate_key(
    State(state): State<AppState>,
    Caller(principal): Caller,
    JsonBody(request): JsonBody<RotateKeyRequest>,
) -> Result<Json<RotateKeyResponse>, GateError> {
    let key_text = match &request.public_key {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let key = countersign_core::jws::parse_public_key(&key_text)
        .map_err(|e| GateError::bad_request("invalid_public_key", e.to_string()))?;
    let key_id = state
        .gate
        .rotate_key(&principal, &key, &request.proof)
        .await?;
    Ok(Json(RotateKeyResponse { key_id }))
}

/// Claim up to `limit` items to review, ordered by SLA then age; `queue: qa` claims QA items.
#[utoipa::path(post, path = "/v1/claims", tag = "desks", security(("bearer" = [])), request_body = ClaimRequest,
    responses((status = 200, body = ClaimResponse), (status = 403, body = ErrorBody)))]
async fn claim(
    State(state): State<AppState>,
    Caller(principal): Caller,
    JsonBody(request): JsonBody<ClaimRequest>,
) -> Result<Json<ClaimResponse>, GateError> {
    let items = state.gate.claim(&principal, &request).await?;
    Ok(Json(ClaimResponse { items }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LeasesQuery {
    /// Include leases that ended (withdrawn, reassigned, superseded, decided...).
    #[serde(default)]
    all: bool,
}

/// The caller's leases and their state as the gate sees it.
#[utoipa::path(get, path = "/v1/leases", tag = "desks", security(("bearer" = [])), params(LeasesQuery),
    responses((status = 200, body = LeasesResponse)))]
async fn leases(
    State(state): State<AppState>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<LeasesQuery>,
) -> Result<Json<LeasesResponse>, GateError> {
    let leases = state.gate.device_leases(&principal, query.all).await?;
    Ok(Json(LeasesResponse { leases }))
}

/// Renew the caller's active leases.
#[utoipa::path(post, path = "/v1/leases/renew", tag = "desks", security(("bearer" = [])), request_body = LeaseIds,
    responses((status = 200, body = LeasesResponse)))]
async fn renew(
    State(state): State<AppState>,
    Caller(principal): Caller,
    JsonBody(request): JsonBody<LeaseIds>,
) -> Result<Json<LeasesResponse>, GateError> {
    let leases = state
        .gate
        .renew_leases(&principal, &request.lease_ids)
        .await?;
    Ok(Json(LeasesResponse { leases }))
}

/// Give leased items back undecided.
#[utoipa::path(post, path = "/v1/leases/return", tag = "desks", security(("bearer" = [])), request_body = LeaseIds,
    responses((status = 204)))]
async fn return_leases(
    State(state): State<AppState>,
    Caller(principal): Caller,
    JsonBody(request): JsonBody<LeaseIds>,
) -> Result<StatusCode, GateError> {
    state
        .gate
        .return_leases(&principal, &request.lease_ids)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WithdrawQuery {
    #[serde(default)]
    reason: String,
}

/// Supervisor: withdraw a lease (bumps its epoch).
#[utoipa::path(post, path = "/v1/leases/{lease_id}/withdraw", tag = "supervisors", security(("bearer" = [])),
    params(("lease_id" = Uuid, Path), WithdrawQuery), responses((status = 200, body = LeaseState), (status = 403, body = ErrorBody)))]
async fn withdraw(
    State(state): State<AppState>,
    Caller(principal): Caller,
    UuidPath(lease_id): UuidPath,
    QueryParams(query): QueryParams<WithdrawQuery>,
) -> Result<Json<LeaseState>, GateError> {
    Ok(Json(
        state
            .gate
            .withdraw_lease(&principal, lease_id, &query.reason)
            .await?,
    ))
}

/// Supervisor: hand a leased item to another reviewer (bumps the old lease's epoch).
#[utoipa::path(post, path = "/v1/leases/{lease_id}/reassign", tag = "supervisors", security(("bearer" = [])),
    params(("lease_id" = Uuid, Path)), request_body = ReassignRequest, responses((status = 200, body = LeaseState)))]
async fn reassign(
    State(state): State<AppState>,
    Caller(principal): Caller,
    UuidPath(lease_id): UuidPath,
    JsonBody(request): JsonBody<ReassignRequest>,
) -> Result<Json<LeaseState>, GateError> {
    Ok(Json(
        state
            .gate
            .reassign_lease(&principal, lease_id, &request.to_user)
            .await?,
    ))
}

/// Push signed decisions in per-device sequence order; each gets an outcome and a receipt.
#[utoipa::path(post, path = "/v1/decisions", tag = "desks", security(("bearer" = [])), request_body = PushRequest,
    responses((status = 200, body = PushResponse), (status = 413, body = ErrorBody)))]
async fn push(
    State(state): State<AppState>,
    Caller(principal): Caller,
    JsonBody(request): JsonBody<PushRequest>,
) -> Result<Json<PushResponse>, GateError> {
    let results = state
        .gate
        .push_decisions(&principal, &request.decisions)
        .await?;
    Ok(Json(PushResponse { results }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReleasesQuery {
    /// Start after this release sequence number; defaults to the consumer's acknowledged cursor.
    after: Option<u64>,
    #[serde(default = "default_page")]
    limit: u32,
}

fn default_page() -> u32 {
    100
}

/// Consumer: pull releases after a cursor.
#[utoipa::path(get, path = "/v1/releases", tag = "consumers", security(("bearer" = [])), params(ReleasesQuery),
    responses((status = 200, body = ReleasesResponse)))]
async fn releases(
    State(state): State<AppState>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<ReleasesQuery>,
) -> Result<Json<ReleasesResponse>, GateError> {
    let consumer = principal.consumer()?;
    Ok(Json(
        state
            .gate
            .pull_releases(consumer, query.after, query.limit)
            .await?,
    ))
}

/// Consumer: acknowledge releases up to a cursor (moves the durable cursor).
#[utoipa::path(post, path = "/v1/releases/ack", tag = "consumers", security(("bearer" = [])), request_body = AckRequest,
    responses((status = 200, body = AckRequest)))]
async fn ack(
    State(state): State<AppState>,
    Caller(principal): Caller,
    JsonBody(request): JsonBody<AckRequest>,
) -> Result<Json<AckRequest>, GateError> {
    let consumer = principal.consumer()?;
    let cursor = state.gate.ack_releases(consumer, request.cursor).await?;
    Ok(Json(AckRequest { cursor }))
}

/// The latest signed checkpoint of the audit log.
#[utoipa::path(get, path = "/v1/log/checkpoint", tag = "log", responses((status = 200, body = CheckpointResponse)))]
async fn checkpoint(State(state): State<AppState>) -> Result<Json<CheckpointResponse>, GateError> {
    let signed = state.gate.log.checkpoint(&state.gate.db).await?;
    Ok(Json(CheckpointResponse {
        origin: signed.checkpoint.origin.clone(),
        size: signed.checkpoint.size,
        root: B64.encode(signed.checkpoint.root),
        checkpoint: signed.note,
        log_public_key: state.gate.log_public_key(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct InclusionQuery {
    index: u64,
    size: u64,
}

/// Inclusion proof of entry `index` in the tree of `size`.
#[utoipa::path(get, path = "/v1/log/proof/inclusion", tag = "log", params(InclusionQuery),
    responses((status = 200, body = ProofResponse), (status = 400, body = ErrorBody)))]
async fn inclusion(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<InclusionQuery>,
) -> Result<Json<ProofResponse>, GateError> {
    let mut tx = state.gate.db.begin_read().await?;
    check_size(&state, &mut tx, q.size).await?;
    let proof = state
        .gate
        .log
        .inclusion_proof(&mut tx, q.index, q.size)
        .await?;
    Ok(Json(ProofResponse {
        proof: proof.iter().map(|h| B64.encode(h)).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// Consistency proof between tree sizes `from` and `to`.
#[utoipa::path(get, path = "/v1/log/proof/consistency", tag = "log", params(ConsistencyQuery),
    responses((status = 200, body = ProofResponse), (status = 400, body = ErrorBody)))]
async fn consistency(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ConsistencyQuery>,
) -> Result<Json<ProofResponse>, GateError> {
    let mut tx = state.gate.db.begin_read().await?;
    check_size(&state, &mut tx, q.to).await?;
    let proof = state
        .gate
        .log
        .consistency_proof(&mut tx, q.from, q.to)
        .await?;
    Ok(Json(ProofResponse {
        proof: proof.iter().map(|h| B64.encode(h)).collect(),
    }))
}

async fn check_size(state: &AppState, tx: &mut crate::db::Tx, size: u64) -> Result<(), GateError> {
    let current = state.gate.log.size(tx).await?;
    if size > current {
        return Err(GateError::bad_request(
            "size_beyond_log",
            format!("the log has {current} entries"),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct EntriesQuery {
    start: u64,
    #[serde(default = "default_page")]
    limit: u32,
}

/// Log entries from `start`, as their canonical leaf bytes.
#[utoipa::path(get, path = "/v1/log/entries", tag = "log", params(EntriesQuery),
    responses((status = 200, body = EntriesResponse)))]
async fn entries(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<EntriesQuery>,
) -> Result<Json<EntriesResponse>, GateError> {
    let limit = u64::from(q.limit.clamp(1, 1000));
    let mut tx = state.gate.db.begin_read().await?;
    let rows = state
        .gate
        .log
        .entries(&mut tx, q.start, q.start.saturating_add(limit))
        .await?;
    let entries = rows
        .into_iter()
        .map(|(index, bytes)| {
            let text = String::from_utf8(bytes)
                .map_err(|_| GateError::internal("stored entry is not UTF-8"))?;
            Ok(EntryRecord {
                index,
                entry: serde_json::value::RawValue::from_string(text)
                    .map_err(|e| GateError::internal(format!("stored entry: {e}")))?,
            })
        })
        .collect::<Result<Vec<_>, GateError>>()?;
    Ok(Json(EntriesResponse { entries }))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200)))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the database answers and a policy is active.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200), (status = 503, body = ErrorBody)))]
async fn readyz(State(state): State<AppState>) -> Result<&'static str, GateError> {
    if !state.gate.db.ping().await {
        return Err(GateError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the database does not answer",
        ));
    }
    if state.gate.active_policy().is_none() {
        return Err(GateError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_active_policy",
            "no policy is active",
        ));
    }
    Ok("ready\n")
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            (headers, handle.render()).into_response()
        }
        None => GateError::not_found("metrics_disabled", "metrics are not enabled").into_response(),
    }
}

/// Inclusion proofs of up to 1000 entries against one tree size (a checkpoint the desk holds),
/// with each entry's bytes: what a desk needs to check every decision it holds in one call.
#[utoipa::path(post, path = "/v1/log/proofs/inclusion", tag = "log", request_body = InclusionBatchRequest,
    responses((status = 200, body = InclusionBatchResponse), (status = 400, body = ErrorBody)))]
async fn inclusion_batch(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<InclusionBatchRequest>,
) -> Result<Json<InclusionBatchResponse>, GateError> {
    Ok(Json(state.gate.inclusion_batch(&request).await?))
}

/// The signed checkpoints the gate stored, in increasing size (check each against the next
/// with `/v1/log/proof/consistency`).
#[utoipa::path(get, path = "/v1/log/checkpoints", tag = "log", params(CheckpointQuery),
    responses((status = 200, body = CheckpointsResponse), (status = 400, body = ErrorBody)))]
async fn checkpoints(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<CheckpointQuery>,
) -> Result<Json<CheckpointsResponse>, GateError> {
    Ok(Json(
        state
            .gate
            .stored_checkpoints(q.after.unwrap_or(0), q.limit.unwrap_or(1000))
            .await?,
    ))
}

/// Supervisor: everything about one item (outputs, routings, leases, signed decisions with
/// their keys, escalations, release, QA), every part tied to log entries proven against one
/// signed checkpoint.
#[utoipa::path(get, path = "/v1/supervision/items/{item_id}/trail", tag = "supervisors", security(("bearer" = [])),
    params(("item_id" = Uuid, Path)),
    responses((status = 200, body = ItemTrail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "`not_supervisor`"), (status = 404, body = ErrorBody, description = "`unknown_item`")))]
async fn trail(
    State(state): State<AppState>,
    Caller(principal): Caller,
    UuidPath(item_id): UuidPath,
) -> Result<Json<ItemTrail>, GateError> {
    Ok(Json(state.gate.item_trail(&principal, item_id).await?))
}

/// Supervisor: search logged decisions, newest first, with a cursor.
#[utoipa::path(get, path = "/v1/supervision/decisions", tag = "supervisors", security(("bearer" = [])),
    params(DecisionQuery),
    responses((status = 200, body = DecisionPage), (status = 400, body = ErrorBody, description = "`invalid_query`, `invalid_filter`, `invalid_time`, `invalid_range`, `invalid_cursor`, `invalid_limit`, `invalid_model`"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`unknown_user`")))]
async fn search_decisions(
    State(state): State<AppState>,
    Caller(principal): Caller,
    QueryParams(q): QueryParams<DecisionQuery>,
) -> Result<Json<DecisionPage>, GateError> {
    Ok(Json(state.gate.search_decisions(&principal, &q).await?))
}

/// Supervisor: have an applied decision re-reviewed blind by someone else (a new QA item; the
/// original deciders are excluded from it). Logged as `qa_queued`.
#[utoipa::path(post, path = "/v1/supervision/decisions/{decision_id}/rereview", tag = "supervisors", security(("bearer" = [])),
    params(("decision_id" = Uuid, Path)), request_body = ReasonRequest,
    responses((status = 200, body = RereviewResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`unknown_decision`"), (status = 409, body = ErrorBody, description = "`rereview_pending`, `no_active_policy`"), (status = 422, body = ErrorBody, description = "`decision_not_applied`, `invalid_reason`")))]
async fn rereview(
    State(state): State<AppState>,
    Caller(principal): Caller,
    UuidPath(decision_id): UuidPath,
    JsonBody(request): JsonBody<ReasonRequest>,
) -> Result<Json<RereviewResponse>, GateError> {
    Ok(Json(
        state
            .gate
            .rereview(&principal, decision_id, &request.reason)
            .await?,
    ))
}

/// Supervisor: flag a logged decision with a reason. Logged as `decision_flagged`.
#[utoipa::path(post, path = "/v1/supervision/decisions/{decision_id}/flag", tag = "supervisors", security(("bearer" = [])),
    params(("decision_id" = Uuid, Path)), request_body = ReasonRequest,
    responses((status = 200, body = FlagRecord), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`unknown_decision`"), (status = 422, body = ErrorBody, description = "`invalid_reason`")))]
async fn flag(
    State(state): State<AppState>,
    Caller(principal): Caller,
    UuidPath(decision_id): UuidPath,
    JsonBody(request): JsonBody<ReasonRequest>,
) -> Result<Json<FlagRecord>, GateError> {
    Ok(Json(
        state
            .gate
            .flag_decision(&principal, decision_id, &request.reason)
            .await?,
    ))
}

/// Supervisor: per reviewer over whole UTC days: volume, time on item, shares, agreement, SLA
/// breaches and rubber-stamp signals.
#[utoipa::path(get, path = "/v1/supervision/reviewers", tag = "supervisors", security(("bearer" = [])),
    params(ReviewerQuery),
    responses((status = 200, body = ReviewerStatsResponse), (status = 400, body = ErrorBody, description = "`invalid_query`, `invalid_time`, `invalid_range`, `invalid_threshold`"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`unknown_user`")))]
async fn reviewers(
    State(state): State<AppState>,
    Caller(principal): Caller,
    QueryParams(q): QueryParams<ReviewerQuery>,
) -> Result<Json<ReviewerStatsResponse>, GateError> {
    Ok(Json(state.gate.reviewer_stats(&principal, &q).await?))
}

/// Supervisor: every model version with its override rate over the circuit breaker's window
/// and its breaker.
#[utoipa::path(get, path = "/v1/supervision/models", tag = "supervisors", security(("bearer" = [])),
    responses((status = 200, body = ModelsResponse), (status = 403, body = ErrorBody)))]
async fn models(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Json<ModelsResponse>, GateError> {
    Ok(Json(state.gate.model_statuses(&principal).await?))
}

/// Supervisor: override rate per model version and hour, day or week, for a chart.
#[utoipa::path(get, path = "/v1/supervision/models/override-rate", tag = "supervisors", security(("bearer" = [])),
    params(OverrideQuery),
    responses((status = 200, body = OverrideRateResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn override_rate(
    State(state): State<AppState>,
    Caller(principal): Caller,
    QueryParams(q): QueryParams<OverrideQuery>,
) -> Result<Json<OverrideRateResponse>, GateError> {
    Ok(Json(state.gate.override_rates(&principal, &q).await?))
}

/// Supervisor: which outcome fields decisions changed most, per model version, over whole UTC
/// days (`bucket` does not apply).
#[utoipa::path(get, path = "/v1/supervision/models/corrected-fields", tag = "supervisors", security(("bearer" = [])),
    params(OverrideQuery),
    responses((status = 200, body = CorrectedFieldsResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn corrected_fields(
    State(state): State<AppState>,
    Caller(principal): Caller,
    QueryParams(q): QueryParams<OverrideQuery>,
) -> Result<Json<CorrectedFieldsResponse>, GateError> {
    Ok(Json(state.gate.corrected_fields(&principal, &q).await?))
}

/// Supervisor: reset a tripped circuit breaker; the model version is routed by the policy again.
/// Logged as `circuit_reset`.
#[utoipa::path(post, path = "/v1/supervision/models/reset", tag = "supervisors", security(("bearer" = [])),
    request_body = ResetBreakerRequest,
    responses((status = 200, body = BreakerState), (status = 400, body = ErrorBody, description = "`invalid_model`"), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "`breaker_not_tripped`"), (status = 422, body = ErrorBody, description = "`invalid_reason`")))]
async fn reset_breaker(
    State(state): State<AppState>,
    Caller(principal): Caller,
    JsonBody(request): JsonBody<ResetBreakerRequest>,
) -> Result<Json<BreakerState>, GateError> {
    Ok(Json(
        state
            .gate
            .reset_breaker(&principal, &request.model, &request.reason)
            .await?,
    ))
}

/// Supervisor: every active lease: who, on which desk, since when, until when, offline or not.
/// Withdraw or reassign one with `/v1/leases/{lease_id}/withdraw` and `/reassign`.
#[utoipa::path(get, path = "/v1/supervision/leases", tag = "supervisors", security(("bearer" = [])),
    params(LeaseQuery),
    responses((status = 200, body = OpenLeasesResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`unknown_user`")))]
async fn open_leases(
    State(state): State<AppState>,
    Caller(principal): Caller,
    QueryParams(q): QueryParams<LeaseQuery>,
) -> Result<Json<OpenLeasesResponse>, GateError> {
    Ok(Json(state.gate.open_leases(&principal, &q).await?))
}

/// Supervisor: an audit bundle for a date range, as a tar of `countersign-bundle/` (format in
/// docs/audit-bundle.md; check it with `countersign verify-bundle`).
#[utoipa::path(get, path = "/v1/supervision/bundle", tag = "supervisors", security(("bearer" = [])),
    params(BundleQuery),
    responses((status = 200, content_type = "application/x-tar", description = "The bundle's files under countersign-bundle/"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "`no_checkpoint`")))]
async fn bundle(
    State(state): State<AppState>,
    Caller(principal): Caller,
    QueryParams(q): QueryParams<BundleQuery>,
) -> Result<Response, GateError> {
    let file = state.gate.bundle_tar(&principal, &q.from, &q.to).await?;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-tar"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        header::HeaderValue::from_static("attachment; filename=\"countersign-bundle.tar\""),
    );
    Ok((headers, axum::body::Body::from_stream(stream)).into_response())
}

//! The credential broker's routes. Workloads (`/broker/…`) prove who they are with their
//! own bearer token (a Kubernetes service-account token, a GitHub Actions or other OIDC
//! token, a token the broker issued) or an mTLS client certificate; operators
//! (`/api/broker/…`) use API tokens. The issuer's discovery document, keys and the SVID
//! trust bundle are public.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_broker::Workload;
use keyward_model::lease::LeaseKind;
use keyward_policy::{Act, Resource, Situation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{authenticate, authorize_read, decide, peer};
use crate::broker::{self, Asked, Broker};
use crate::error::{self, ApiError};

fn broker(state: &AppState) -> Result<&Broker, ApiError> {
    state.broker.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "the credential broker is not configured (keyward.yaml `broker:`)",
        )
    })
}

/// The workload behind the request: its bearer proof, else its client certificate.
async fn workload(
    b: &Broker,
    headers: &HeaderMap,
    cert: Option<&crate::tls::PeerCertificate>,
) -> Result<Workload, ApiError> {
    let now = crate::now();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::bearer_token)
        .filter(|t| !t.is_empty());
    if let Some(token) = bearer {
        return b.prove(token, now).await;
    }
    if let Some(cert) = cert {
        return keyward_broker::verify::workload_from_certificate(&cert.0, now).map_err(|e| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!("the client certificate: {e}"),
            )
        });
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "a workload proves who it is: `Authorization: Bearer <its service-account or OIDC \
         token>`, or an mTLS client certificate",
    ))
}

/// A credential and its lease.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IssuedAnswer {
    /// The credential: `token` (JWT); `access_key_id`, `secret_access_key`,
    /// `session_token`, `expiration`, `assumed_role_arn` (AWS); `spiffe_id`, `cert_pem`,
    /// `key_pem` (without a CSR), `bundle_pem` (SVID); `data` (a dynamic secret). Shown
    /// once: it is never stored.
    #[schema(value_type = Object)]
    credential: Value,
    /// The lease (`lease_id`, `kind`, `state`, `parent`, `workload`, `target`, `identity`,
    /// `issued_at`, `expires_at`, …).
    #[schema(value_type = Object)]
    lease: Value,
}

fn answer(i: broker::Issued) -> (StatusCode, Json<IssuedAnswer>) {
    (
        StatusCode::CREATED,
        Json(IssuedAnswer {
            credential: i.credential,
            lease: broker::issue::lease_json(&i.lease),
        }),
    )
}

/// What a workload asks for.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueBody {
    /// A JWT's audience (`aud`).
    #[serde(default)]
    audience: Option<String>,
    /// The role AWS credentials are for.
    #[serde(default)]
    role_arn: Option<String>,
    /// An SVID's SPIFFE id (default: the workload's, `spiffe://<td>/ns/<ns>/sa/<sa>`).
    #[serde(default)]
    spiffe_id: Option<String>,
    /// An SVID's PKCS#10 request (PEM): the workload keeps its private key.
    #[serde(default)]
    csr: Option<String>,
    /// How long, within the configured maximum.
    #[serde(default)]
    ttl_seconds: Option<i64>,
}

async fn issue(
    state: AppState,
    headers: HeaderMap,
    cert: Option<axum::Extension<crate::tls::PeerCertificate>>,
    kind: LeaseKind,
    target: Option<String>,
    body: IssueBody,
) -> Result<(StatusCode, Json<IssuedAnswer>), ApiError> {
    let b = broker(&state)?;
    let w = workload(b, &headers, cert.as_ref().map(|c| &c.0)).await?;
    let asked = Asked {
        target: target.or(match kind {
            LeaseKind::Jwt => body.audience,
            LeaseKind::Aws => body.role_arn,
            LeaseKind::Svid => body.spiffe_id,
            LeaseKind::Secret => None,
        }),
        ttl_ms: body.ttl_seconds.map(|s| s.saturating_mul(1000)),
        csr: body.csr,
    };
    let issued = broker::issue(&state, b, w, kind, asked, peer(&headers), crate::now()).await?;
    Ok(answer(issued))
}

/// A JSON body, or the default for an empty one (422 for JSON of another shape).
fn json_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the JSON body does not have the expected shape: {e}"),
        )
    })
}

#[utoipa::path(
    post,
    path = "/broker/token",
    tag = "broker",
    summary = "A short-lived JWT from Keyward's OIDC issuer",
    description = "The workload proves who it is (`Authorization: Bearer` with its Kubernetes \
                   service-account token, GitHub Actions or other trusted OIDC token, or a token \
                   the broker issued; or an mTLS client certificate). The policies decide `issue` \
                   on `Credential::\"jwt:<audience>\"` with the TTL in the context; the lease is \
                   stored and audited (`broker.issue.jwt`) before the token is returned.",
    request_body = IssueBody,
    responses(
        (status = 201, description = "The token and its lease", body = IssuedAnswer),
        (status = 400, description = "No audience", body = error::ErrorBody),
        (status = 401, description = "No proof, or a proof that did not check out", body = error::ErrorBody),
        (status = 403, description = "Refused by policy (audited)", body = error::ErrorBody),
        (status = 404, description = "The broker is not configured", body = error::ErrorBody),
    )
)]
pub(crate) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    cert: Option<axum::Extension<crate::tls::PeerCertificate>>,
    body: Bytes,
) -> Result<(StatusCode, Json<IssuedAnswer>), ApiError> {
    let body: IssueBody = json_body(&body)?;
    issue(state, headers, cert, LeaseKind::Jwt, None, body).await
}

#[utoipa::path(
    post,
    path = "/broker/aws",
    tag = "broker",
    summary = "AWS credentials through STS on the workload's behalf",
    description = "STS `AssumeRole` of `role_arn` with the lease id as the session name (so \
                   CloudTrail's actions join the lease) and the workload's subject as its source \
                   identity; an AI agent's session gets the agent boundary as its session policy. \
                   Decided as `issue` on `Credential::\"aws:<role_arn>\"`.",
    request_body = IssueBody,
    responses(
        (status = 201, description = "The credentials and their lease", body = IssuedAnswer),
        (status = 400, description = "No role", body = error::ErrorBody),
        (status = 401, description = "No proof, or a proof that did not check out", body = error::ErrorBody),
        (status = 403, description = "Refused by policy (audited)", body = error::ErrorBody),
        (status = 502, description = "STS refused", body = error::ErrorBody),
    )
)]
pub(crate) async fn aws(
    State(state): State<AppState>,
    headers: HeaderMap,
    cert: Option<axum::Extension<crate::tls::PeerCertificate>>,
    body: Bytes,
) -> Result<(StatusCode, Json<IssuedAnswer>), ApiError> {
    let body: IssueBody = json_body(&body)?;
    issue(state, headers, cert, LeaseKind::Aws, None, body).await
}

#[utoipa::path(
    post,
    path = "/broker/svid",
    tag = "broker",
    summary = "An X.509 SVID from the broker's CA",
    description = "A certificate for `spiffe_id` (default the workload's own), 1 h by default; \
                   with `csr` the workload keeps its key. Decided as `issue` on \
                   `Credential::\"svid:<spiffe id>\"`.",
    request_body = IssueBody,
    responses(
        (status = 201, description = "The SVID and its lease", body = IssuedAnswer),
        (status = 400, description = "A SPIFFE id outside the trust domain, a bad CSR", body = error::ErrorBody),
        (status = 401, description = "No proof, or a proof that did not check out", body = error::ErrorBody),
        (status = 403, description = "Refused by policy (audited)", body = error::ErrorBody),
    )
)]
pub(crate) async fn svid(
    State(state): State<AppState>,
    headers: HeaderMap,
    cert: Option<axum::Extension<crate::tls::PeerCertificate>>,
    body: Bytes,
) -> Result<(StatusCode, Json<IssuedAnswer>), ApiError> {
    let body: IssueBody = json_body(&body)?;
    issue(state, headers, cert, LeaseKind::Svid, None, body).await
}

#[utoipa::path(
    post,
    path = "/broker/secrets/{name}",
    tag = "broker",
    summary = "A dynamic secret from OpenBao",
    description = "Reads the configured OpenBao path of `name` (e.g. `database/creds/app`): a \
                   secret of its own with a lease, revoked there when the Keyward lease is. \
                   Decided as `issue` on `Credential::\"secret:<name>\"`.",
    params(("name" = String, Path, description = "The secret's name in `broker.secrets`")),
    request_body = IssueBody,
    responses(
        (status = 201, description = "The secret and its lease", body = IssuedAnswer),
        (status = 401, description = "No proof, or a proof that did not check out", body = error::ErrorBody),
        (status = 403, description = "Refused by policy (audited)", body = error::ErrorBody),
        (status = 404, description = "No such secret configured", body = error::ErrorBody),
        (status = 502, description = "OpenBao refused", body = error::ErrorBody),
    )
)]
pub(crate) async fn secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    cert: Option<axum::Extension<crate::tls::PeerCertificate>>,
    body: Bytes,
) -> Result<(StatusCode, Json<IssuedAnswer>), ApiError> {
    let body: IssueBody = json_body(&body)?;
    issue(state, headers, cert, LeaseKind::Secret, Some(name), body).await
}

/// A renewal.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenewBody {
    /// How long from now, within the kind's maximum and the lease's maximum lifetime.
    #[serde(default)]
    ttl_seconds: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/broker/leases/{id}/renew",
    tag = "broker",
    summary = "Extend a lease the workload holds",
    description = "By its workload or with its own token: a JWT comes back with the new expiry; \
                   an OpenBao lease is renewed there. AWS sessions and SVIDs cannot be extended. \
                   Audited as `broker.renew`.",
    params(("id" = String, Path, description = "Lease id (`kwl-…`)")),
    request_body = RenewBody,
    responses(
        (status = 200, description = "The lease (and a new token for a JWT)", body = IssuedAnswer),
        (status = 401, description = "No proof, or a proof that did not check out", body = error::ErrorBody),
        (status = 403, description = "Another workload's lease", body = error::ErrorBody),
        (status = 404, description = "No such lease", body = error::ErrorBody),
        (status = 409, description = "Revoked, expired, at its maximum, or not renewable", body = error::ErrorBody),
    )
)]
pub(crate) async fn renew(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    cert: Option<axum::Extension<crate::tls::PeerCertificate>>,
    body: Bytes,
) -> Result<Json<IssuedAnswer>, ApiError> {
    let b = broker(&state)?;
    let body: RenewBody = json_body(&body)?;
    let w = workload(b, &headers, cert.as_ref().map(|c| &c.0)).await?;
    let ttl = body.ttl_seconds.map(|s| s.saturating_mul(1000));
    let i = broker::renew(&state, b, &w, &id, ttl, crate::now()).await?;
    Ok(Json(IssuedAnswer {
        credential: i.credential,
        lease: broker::issue::lease_json(&i.lease),
    }))
}

/// Why a lease is revoked.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeBody {
    #[serde(default)]
    reason: Option<String>,
}

/// The leases a revocation ended.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RevokedAnswer {
    /// The lease and every lease issued under it that was still in force, parents first.
    #[schema(value_type = Vec<Object>)]
    revoked: Vec<Value>,
}

fn revoked(list: &[keyward_model::lease::LeaseRecord]) -> Json<RevokedAnswer> {
    Json(RevokedAnswer {
        revoked: list.iter().map(broker::issue::lease_json).collect(),
    })
}

#[utoipa::path(
    post,
    path = "/broker/leases/{id}/revoke",
    tag = "broker",
    summary = "Give up a lease the workload holds (and what was issued under it)",
    params(("id" = String, Path, description = "Lease id (`kwl-…`)")),
    request_body = RevokeBody,
    responses(
        (status = 200, description = "The leases revoked", body = RevokedAnswer),
        (status = 401, description = "No proof, or a proof that did not check out", body = error::ErrorBody),
        (status = 403, description = "Another workload's lease", body = error::ErrorBody),
        (status = 404, description = "No such lease", body = error::ErrorBody),
    )
)]
pub(crate) async fn give_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    cert: Option<axum::Extension<crate::tls::PeerCertificate>>,
    body: Bytes,
) -> Result<Json<RevokedAnswer>, ApiError> {
    let b = broker(&state)?;
    let body: RevokeBody = json_body(&body)?;
    let w = workload(b, &headers, cert.as_ref().map(|c| &c.0)).await?;
    let l = broker::issue::stored_lease(&state, &id).await?;
    if l.workload != w.identity {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{} does not hold lease {id}", w.identity),
        ));
    }
    let by = format!("workload:{}", w.identity);
    let reason = body
        .reason
        .unwrap_or_else(|| "given up by its workload".into());
    let list = broker::revoke_tree(&state, b, &id, &by, &reason, crate::now()).await?;
    Ok(revoked(&list))
}

/// The issuer's OIDC discovery document (the fields Keyward sends).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DiscoveryDoc {
    /// `id_token` claims its tokens carry.
    claims_supported: Vec<String>,
    /// `["ES256"]`.
    id_token_signing_alg_values_supported: Vec<String>,
    /// The configured issuer URL (`…/broker`).
    issuer: String,
    /// `{issuer}/jwks`.
    jwks_uri: String,
    response_types_supported: Vec<String>,
    subject_types_supported: Vec<String>,
}

/// A JSON Web Key Set (RFC 7517).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JwksDoc {
    /// P-256 keys (`kty` EC, `crv`, `x`, `y`, `kid`, `alg` ES256, `use` sig).
    #[schema(value_type = Vec<Object>)]
    keys: Vec<Value>,
}

#[utoipa::path(
    get,
    path = "/broker/.well-known/openid-configuration",
    tag = "broker",
    summary = "The issuer's OIDC discovery document",
    responses(
        (status = 200, description = "Discovery", body = DiscoveryDoc),
        (status = 404, description = "The broker is not configured", body = error::ErrorBody),
    )
)]
pub(crate) async fn discovery(State(state): State<AppState>) -> Result<Response, ApiError> {
    let b = broker(&state)?;
    let doc = b
        .keyring
        .read()
        .map_err(|_| ApiError::internal("keyring"))?
        .discovery(&b.config.issuer);
    Ok(Json(doc).into_response())
}

#[utoipa::path(
    get,
    path = "/broker/jwks",
    tag = "broker",
    summary = "The issuer's signing keys (JWKS), retired keys included until their tokens expire",
    responses(
        (status = 200, description = "The keys", body = JwksDoc),
        (status = 404, description = "The broker is not configured", body = error::ErrorBody),
    )
)]
pub(crate) async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let b = broker(&state)?;
    let set = b
        .keyring
        .read()
        .map_err(|_| ApiError::internal("keyring"))?
        .jwks();
    Ok(Json(set).into_response())
}

#[utoipa::path(
    get,
    path = "/broker/bundle",
    tag = "broker",
    summary = "The SPIFFE trust bundle (the broker CA's certificate, PEM)",
    responses(
        (status = 200, description = "PEM", content_type = "application/x-pem-file", body = String),
        (status = 404, description = "The broker is not configured", body = error::ErrorBody),
    )
)]
pub(crate) async fn bundle(State(state): State<AppState>) -> Result<Response, ApiError> {
    let b = broker(&state)?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        b.ca.bundle_pem().to_owned(),
    )
        .into_response())
}

/// A page of leases.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct LeaseQuery {
    /// At most this many, newest first (default 100).
    limit: Option<usize>,
}

/// Leases.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LeasesAnswer {
    #[schema(value_type = Vec<Object>)]
    leases: Vec<Value>,
}

#[utoipa::path(
    get,
    path = "/api/broker/leases",
    tag = "broker",
    summary = "Leases the broker issued, newest first",
    description = "With the built-in policies, a bearer token with the **viewer** role.",
    params(LeaseQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Leases", body = LeasesAnswer),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "Refused by policy", body = error::ErrorBody),
    )
)]
pub(crate) async fn leases(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LeaseQuery>,
) -> Result<Json<LeasesAnswer>, ApiError> {
    authorize_read(&state, &headers, Act::View).await?;
    let limit = q.limit.unwrap_or(100).min(crate::api::MAX_PAGE);
    let list = state
        .engine
        .call(move |e| e.leases(None, limit))
        .await?
        .map_err(ApiError::internal)?;
    Ok(Json(LeasesAnswer {
        leases: list.iter().map(broker::issue::lease_json).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/broker/leases/{id}",
    tag = "broker",
    summary = "A lease and every lease issued under it",
    description = "With the built-in policies, a bearer token with the **viewer** role.",
    params(("id" = String, Path, description = "Lease id (`kwl-…`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The lease first, then its descendants", body = LeasesAnswer),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "Refused by policy", body = error::ErrorBody),
        (status = 404, description = "No such lease", body = error::ErrorBody),
    )
)]
pub(crate) async fn lease(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<LeasesAnswer>, ApiError> {
    authorize_read(&state, &headers, Act::View).await?;
    let tree = broker::issue::lease_tree(&state, &id).await?;
    Ok(Json(LeasesAnswer {
        leases: tree.iter().map(broker::issue::lease_json).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/broker/leases/{id}/revoke",
    tag = "broker",
    summary = "Revoke a lease and, in cascade, every lease issued under it",
    description = "Decided by the policies as `grant` with `revoke` in the context (ending \
                   access early): with the built-in policies, a bearer token with the \
                   **operator** role. Audited per lease (`broker.revoke`).",
    params(("id" = String, Path, description = "Lease id (`kwl-…`)")),
    request_body = RevokeBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The leases revoked", body = RevokedAnswer),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "Refused by policy", body = error::ErrorBody),
        (status = 404, description = "No such lease", body = error::ErrorBody),
    )
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<RevokedAnswer>, ApiError> {
    let caller = authenticate(&state, &headers).await?;
    let b = broker(&state)?;
    let body: RevokeBody = json_body(&body)?;
    let situation = Situation {
        revoke: true,
        ..Situation::default()
    };
    decide(
        &state,
        &caller,
        &headers,
        Act::Grant,
        Resource::Estate,
        situation,
    )
    .await?;
    let reason = body
        .reason
        .unwrap_or_else(|| "revoked by an operator".into());
    let list = broker::revoke_tree(&state, b, &id, &caller.actor(), &reason, crate::now()).await?;
    Ok(revoked(&list))
}

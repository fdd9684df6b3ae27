//! The privileged access path over HTTP: request, approve, deny; apply and revoke an
//! approved grant. Decided by the policies on the grantee and audited as `keyward access`
//! does (the operations are `crate::access`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use keyward_policy::Surface;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::access::{self as ops, AskBody};
use crate::auth::authenticate;
use crate::error::{self, ApiError, json_rejection};

/// A request (`id`, `grantee`, `entitlement`, `duration` in ms, `reason`, `requester`,
/// `requested_at`, `state`, and once decided `decided_by`, `decided_at`, `denial`, `grant`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RequestAnswer {
    #[schema(value_type = Object)]
    request: serde_json::Value,
}

/// An approved request and the planned grant it became.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApprovedAnswer {
    #[schema(value_type = Object)]
    grant: serde_json::Value,
    #[schema(value_type = Object)]
    request: serde_json::Value,
}

/// A grant after applying or revoking it; `error` when a platform call failed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GrantAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[schema(value_type = Object)]
    grant: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DenyBody {
    /// Why (kept with the request and in the audit log).
    reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmBody {
    /// The grant's id again: nothing runs without it.
    confirm: String,
}

fn value<T: Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

#[utoipa::path(
    post,
    path = "/api/access/requests",
    tag = "govern",
    summary = "Ask for time-bound access (the privileged path)",
    description = "Stores a pending request (`access.request`): nothing is applied until someone \
                   else approves it. Decided by the policies as `plan` on the grantee: with the \
                   built-in policies, a bearer token with the **operator** role (operator or admin).",
    request_body = AskBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "`request`: the stored request", body = RequestAnswer),
        (status = 400, description = "A bad grantee, entitlement, duration or an empty reason", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "Refused by policy (the message names the deciding policies)", body = error::ErrorBody),
        (status = 415, description = "`Content-Type` is not `application/json`", body = error::ErrorBody),
        (status = 422, description = "The JSON does not have the body's shape", body = error::ErrorBody),
    )
)]
pub(crate) async fn create_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<AskBody>, JsonRejection>,
) -> Result<(StatusCode, Json<RequestAnswer>), ApiError> {
    let caller = authenticate(&state, &headers).await?;
    let Json(body) = body.map_err(json_rejection)?;
    let r = ops::request(&state, &caller, &headers, Surface::Api, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(RequestAnswer {
            request: value(&r)?,
        }),
    ))
}

#[utoipa::path(
    post,
    path = "/api/access/requests/{id}/approve",
    tag = "govern",
    summary = "Approve someone else's request",
    description = "The request becomes a planned grant (`access.approve`, `access.grant`); apply \
                   it with `/api/access/grants/{id}/apply`. Decided by the policies as `approve` \
                   on the grantee with the requester in the context: with the built-in policies, a \
                   bearer token with the **admin** role, never the requester's.",
    params(("id" = String, Path, description = "Request id (`ar-…`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`request` and the planned `grant`", body = ApprovedAnswer),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "Refused by policy, or the caller made the request", body = error::ErrorBody),
        (status = 404, description = "No such request", body = error::ErrorBody),
        (status = 409, description = "The request was decided already", body = error::ErrorBody),
    )
)]
pub(crate) async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ApprovedAnswer>, ApiError> {
    let caller = authenticate(&state, &headers).await?;
    let (r, g) = ops::approve(&state, &caller, &headers, Surface::Api, id).await?;
    Ok(Json(ApprovedAnswer {
        grant: value(&g)?,
        request: value(&r)?,
    }))
}

#[utoipa::path(
    post,
    path = "/api/access/requests/{id}/deny",
    tag = "govern",
    summary = "Deny a request, saying why (or withdraw your own)",
    description = "`access.deny`. Denying someone else's request is decided by the policies as \
                   `approve` on the grantee (with the built-in policies, a bearer token with the \
                   **admin** role); withdrawing your own needs any token.",
    params(("id" = String, Path, description = "Request id (`ar-…`)")),
    request_body = DenyBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`request`, denied", body = RequestAnswer),
        (status = 400, description = "An empty reason", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "Refused by policy", body = error::ErrorBody),
        (status = 404, description = "No such request", body = error::ErrorBody),
        (status = 409, description = "The request was decided already", body = error::ErrorBody),
        (status = 415, description = "`Content-Type` is not `application/json`", body = error::ErrorBody),
        (status = 422, description = "The JSON does not have the body's shape", body = error::ErrorBody),
    )
)]
pub(crate) async fn deny(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<DenyBody>, JsonRejection>,
) -> Result<Json<RequestAnswer>, ApiError> {
    let caller = authenticate(&state, &headers).await?;
    let Json(body) = body.map_err(json_rejection)?;
    let r = ops::deny(&state, &caller, &headers, Surface::Api, id, body.reason).await?;
    Ok(Json(RequestAnswer {
        request: value(&r)?,
    }))
}

async fn confirmed(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: Result<Json<ConfirmBody>, JsonRejection>,
) -> Result<crate::Caller, ApiError> {
    let caller = authenticate(state, headers).await?;
    let Json(body) = body.map_err(json_rejection)?;
    if body.confirm != id {
        return Err(ApiError::bad_request(
            "`confirm` must repeat the grant's id: nothing was run",
        ));
    }
    Ok(caller)
}

#[utoipa::path(
    post,
    path = "/api/access/grants/{id}/apply",
    tag = "govern",
    summary = "Apply a planned grant through the platform connectors",
    description = "Attaches the policy, adds to the group or creates the binding, read back; the \
                   grant is active for its duration from now and revoked when it expires (`keyward \
                   serve --access-expire`, `keyward access expire`). Decided by the policies as \
                   `grant` on the grantee: with the built-in policies, a bearer token with the \
                   **admin** role. Break-glass grants are applied at the command line only.",
    params(("id" = String, Path, description = "Grant id (`ag-…`)")),
    request_body = ConfirmBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`grant` (active, or failed with `error`)", body = GrantAnswer),
        (status = 400, description = "`confirm` is not the grant id", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "Refused by policy", body = error::ErrorBody),
        (status = 404, description = "No such grant", body = error::ErrorBody),
        (status = 409, description = "Active or ended already, or a break-glass grant", body = error::ErrorBody),
    )
)]
pub(crate) async fn apply(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<ConfirmBody>, JsonRejection>,
) -> Result<Json<GrantAnswer>, ApiError> {
    let caller = confirmed(&state, &headers, &id, body).await?;
    let (g, error) = ops::apply(&state, &caller, &headers, Surface::Api, id).await?;
    Ok(Json(GrantAnswer {
        error,
        grant: value(&g)?,
    }))
}

#[utoipa::path(
    post,
    path = "/api/access/grants/{id}/revoke",
    tag = "govern",
    summary = "Revoke a grant before it expires",
    description = "Its plan is undone through the connectors and read back (`access.revoke`). \
                   Decided by the policies as `grant` with `revoke` in the context: with the \
                   built-in policies, a bearer token with the **operator** role (operator or admin).",
    params(("id" = String, Path, description = "Grant id (`ag-…`)")),
    request_body = ConfirmBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`grant` (revoked, or still in force with `error`)", body = GrantAnswer),
        (status = 400, description = "`confirm` is not the grant id", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "Refused by policy", body = error::ErrorBody),
        (status = 404, description = "No such grant", body = error::ErrorBody),
        (status = 409, description = "Ended already", body = error::ErrorBody),
    )
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<ConfirmBody>, JsonRejection>,
) -> Result<Json<GrantAnswer>, ApiError> {
    let caller = confirmed(&state, &headers, &id, body).await?;
    let (g, error) = ops::revoke(&state, &caller, &headers, Surface::Api, id).await?;
    Ok(Json(GrantAnswer {
        error,
        grant: value(&g)?,
    }))
}

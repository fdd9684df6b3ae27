//! Administration: API tokens and run-time configuration.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use keyward_store::AuditEntry;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{self, ApiError, json_rejection};
use crate::{AppState, Role, auth, authorize, now};

#[utoipa::path(
    get,
    path = "/api/tokens",
    tag = "admin",
    summary = "List API tokens",
    description = "Every token's id, role, name, creation and revocation time (never the token \
                   itself). Needs a bearer token with the **admin** role (admin only).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`items`: id, role, name, created_at, revoked_at", body = Value),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
    )
)]
pub(crate) async fn tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Role::Admin).await?;
    let rows = state
        .engine
        .call(|e| e.tokens())
        .await?
        .map_err(ApiError::internal)?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|t| {
            json!({"id": t.id, "role": t.role, "name": t.name,
                   "created_at": keyward_model::time::format(t.created_at),
                   "revoked_at": t.revoked_at.map(keyward_model::time::format)})
        })
        .collect();
    Ok(Json(json!({"items": items})))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenBody {
    /// `viewer`, `operator` or `admin`.
    role: String,
    /// What the token is for (1 to 200 characters).
    name: String,
}

#[utoipa::path(
    post,
    path = "/api/tokens",
    tag = "admin",
    summary = "Create an API token",
    description = "Creates a token; the answer holds it, once (only its hash is stored). \
                   Audited. Needs a bearer token with the **admin** role (admin only).",
    request_body = TokenBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created: `id`, `role`, `name` and `token` (shown only here)", body = Value),
        (status = 400, description = "Malformed JSON, an unknown role or a bad name", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = error::ErrorBody),
        (status = 415, description = "`Content-Type` is not `application/json`", body = error::ErrorBody),
        (status = 422, description = "The JSON does not have the body's shape (missing or unknown field)", body = error::ErrorBody),
    )
)]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<TokenBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = authorize(&state, &headers, Role::Admin).await?;
    let Json(body) = body.map_err(json_rejection)?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`role`: `{}` is not one of viewer, operator, admin",
            body.role
        ))
    })?;
    if body.name.trim().is_empty() || body.name.len() > 200 {
        return Err(ApiError::bad_request("`name`: 1 to 200 characters"));
    }
    let actor = caller.actor();
    let (token, row) = state
        .engine
        .call(move |e| auth::create(e, role, body.name.trim(), &actor, now()))
        .await?
        .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": row.id, "role": row.role, "name": row.name, "token": token})),
    ))
}

#[utoipa::path(
    get,
    path = "/api/config",
    tag = "admin",
    summary = "The effective configuration",
    description = "Body limit, staleness, TLS, whether the GitHub webhook has a secret (never the secret), detection: rules loaded and approved accounts (from the command line and set at run time). Needs a bearer token with the **admin** role (admin only).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The configuration", body = Value),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
    )
)]
pub(crate) async fn config(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Role::Admin).await?;
    let (detection, stored) = state
        .engine
        .call(|e| {
            let detection = e.detector().map(|d| {
                json!({
                    "rules": d.catalog().rules.len(),
                    "allowed_accounts": d.settings().allowed_accounts,
                })
            });
            (detection, e.stored_allowed_accounts())
        })
        .await?;
    let stored = stored.map_err(ApiError::internal)?;
    let c = &state.config;
    Ok(Json(json!({
        "body_limit": c.body_limit,
        "stale_after_days": c.stale_after_days,
        "tls": c.tls,
        "github_webhook": {"secret_configured": c.github_secret.is_some()},
        "detection": detection,
        "allowed_accounts": {"from_flags": c.allowed_accounts_flags, "set_at_run_time": stored},
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllowedAccountsBody {
    /// 12-digit AWS account ids whose principals may assume roles here without a finding.
    accounts: Vec<String>,
}

#[utoipa::path(
    put,
    path = "/api/config/allowed-accounts",
    tag = "admin",
    summary = "Set the approved foreign accounts",
    description = "Replaces the accounts approved at run time (those given with `--allow-account` stay). Stored, audited, and applied by detection from the next event on. Needs a bearer token with the **admin** role (admin only).",
    request_body(content = AllowedAccountsBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"allowed_accounts\": [...]}`: the accounts now approved, flags included", body = Value),
        (status = 400, description = "An account id that is not 12 digits", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
        (status = 413, description = "Body larger than the limit", body = error::ErrorBody),
        (status = 422, description = "A missing or unknown field", body = error::ErrorBody),
    )
)]
pub(crate) async fn set_allowed_accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<AllowedAccountsBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, Role::Admin).await?;
    let Json(body) = body.map_err(json_rejection)?;
    let mut accounts: Vec<String> = body.accounts.iter().map(|a| a.trim().to_owned()).collect();
    if let Some(bad) = accounts
        .iter()
        .find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::bad_request(format!(
            "`accounts`: `{bad}` is not a 12-digit AWS account id"
        )));
    }
    accounts.sort();
    accounts.dedup();
    let mut audit = AuditEntry {
        at: now(),
        actor: caller.actor(),
        action: "config.allowed-accounts".into(),
        target: None,
        detail: None,
        before: None,
        after: Some(json!(accounts).to_string()),
    };
    let flags = state.config.allowed_accounts_flags.clone();
    let now_allowed = state
        .engine
        .write(move |e| {
            audit.before = Some(json!(e.stored_allowed_accounts()?).to_string());
            e.set_allowed_accounts(&accounts, &flags, &audit)
        })
        .await?
        .map_err(ApiError::internal)?;
    Ok(Json(json!({"allowed_accounts": now_allowed})))
}

#[utoipa::path(
    post,
    path = "/api/tokens/{id}/revoke",
    tag = "admin",
    summary = "Revoke an API token",
    description = "The token stops working at once. Audited. Needs a bearer token with the **admin** role (admin only).",
    params(("id" = String, Path, description = "Token id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"revoked\": true}`", body = Value),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
        (status = 404, description = "No such active token", body = error::ErrorBody),
    )
)]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, Role::Admin).await?;
    let audit = AuditEntry {
        at: now(),
        actor: caller.actor(),
        action: "token.revoke".into(),
        target: Some(id.clone()),
        detail: None,
        before: Some("active".into()),
        after: Some("revoked".into()),
    };
    let done = state
        .engine
        .call(move |e| e.revoke_token(&id, &audit))
        .await?
        .map_err(ApiError::internal)?;
    if !done {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such active token"));
    }
    Ok(Json(json!({"revoked": true})))
}

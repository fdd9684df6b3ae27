//! Administration: API tokens and run-time configuration.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use keyward_policy::Act;
use keyward_store::AuditEntry;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::error::{self, ApiError, json_rejection};

use crate::{AppState, Role, auth, authorize, now};

/// `GET /api/tokens`: every token, never the token itself.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenList {
    items: Vec<TokenItem>,
}

/// One API token as listed (fields in the order sent: see `api::schema`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenItem {
    /// RFC 3339.
    created_at: String,
    id: String,
    name: String,
    /// RFC 3339; `null` while the token works.
    revoked_at: Option<String>,
    /// `viewer`, `operator` or `admin`.
    role: String,
}

#[utoipa::path(
    get,
    path = "/api/tokens",
    tag = "admin",
    summary = "List API tokens",
    description = "Every token's id, role, name, creation and revocation time (never the token \
                   itself). Needs a bearer token with the **admin** role (admin only).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`items`: id, role, name, created_at, revoked_at", body = TokenList),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
    )
)]
pub(crate) async fn tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<TokenList>, ApiError> {
    crate::auth::authorize_read(&state, &headers, Act::Manage).await?;
    let rows = state
        .engine
        .call(|e| e.tokens())
        .await?
        .map_err(ApiError::internal)?;
    let items = rows
        .into_iter()
        .map(|t| TokenItem {
            created_at: keyward_model::time::format(t.created_at),
            id: t.id,
            name: t.name,
            revoked_at: t.revoked_at.map(keyward_model::time::format),
            role: t.role,
        })
        .collect();
    Ok(Json(TokenList { items }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenBody {
    /// `viewer`, `operator` or `admin`.
    role: String,
    /// What the token is for (1 to 200 characters).
    name: String,
}

/// `POST /api/tokens`: the new token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    id: String,
    name: String,
    /// `viewer`, `operator` or `admin`.
    role: String,
    /// `kw_` and 64 hex digits; only its hash is stored.
    token: String,
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
        (status = 201, description = "Created: `id`, `role`, `name` and `token` (shown only here)", body = CreatedToken),
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
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let caller = authorize(&state, &headers, Act::Manage).await?;
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
        Json(CreatedToken {
            id: row.id,
            name: row.name,
            role: row.role,
            token,
        }),
    ))
}

/// `GET /api/config`: the effective configuration, never a secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConfigAnswer {
    allowed_accounts: AllowedAccountsConfig,
    /// The largest request body accepted (bytes, compressed size).
    body_limit: usize,
    /// `null` when detection is off.
    detection: Option<DetectionConfig>,
    github_webhook: GithubWebhookConfig,
    /// Days without use before an identity counts as stale.
    stale_after_days: i64,
    tls: bool,
}

/// Approved foreign accounts, by where they were given.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AllowedAccountsConfig {
    /// `--allow-account` on the command line.
    from_flags: Vec<String>,
    /// `PUT /api/config/allowed-accounts`.
    set_at_run_time: Vec<String>,
}

/// What detection runs with.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DetectionConfig {
    /// Every account detection approves now (flags and run time).
    allowed_accounts: BTreeSet<String>,
    /// Rules loaded.
    rules: usize,
}

/// The GitHub webhook's configuration.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GithubWebhookConfig {
    /// Whether deliveries can be verified (the secret itself is never shown).
    secret_configured: bool,
}

#[utoipa::path(
    get,
    path = "/api/config",
    tag = "admin",
    summary = "The effective configuration",
    description = "Body limit, staleness, TLS, whether the GitHub webhook has a secret (never the secret), detection: rules loaded and approved accounts (from the command line and set at run time). Needs a bearer token with the **admin** role (admin only).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The configuration", body = ConfigAnswer),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
    )
)]
pub(crate) async fn config(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ConfigAnswer>, ApiError> {
    crate::auth::authorize_read(&state, &headers, Act::Manage).await?;
    let (detection, stored) = state
        .engine
        .call(|e| {
            let detection = e.detector().map(|d| DetectionConfig {
                allowed_accounts: d.settings().allowed_accounts.clone(),
                rules: d.catalog().rules.len(),
            });
            (detection, e.stored_allowed_accounts())
        })
        .await?;
    let stored = stored.map_err(ApiError::internal)?;
    let c = &state.config;
    Ok(Json(ConfigAnswer {
        allowed_accounts: AllowedAccountsConfig {
            from_flags: c.allowed_accounts_flags.clone(),
            set_at_run_time: stored,
        },
        body_limit: c.body_limit,
        detection,
        github_webhook: GithubWebhookConfig {
            secret_configured: c.github_secret.is_some(),
        },
        stale_after_days: c.stale_after_days,
        tls: c.tls,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllowedAccountsBody {
    /// 12-digit AWS account ids whose principals may assume roles here without a finding.
    accounts: Vec<String>,
}

/// `PUT /api/config/allowed-accounts`: every account approved now, flags included.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AllowedAccounts {
    allowed_accounts: BTreeSet<String>,
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
        (status = 200, description = "`{\"allowed_accounts\": [...]}`: the accounts now approved, flags included", body = AllowedAccounts),
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
) -> Result<Json<AllowedAccounts>, ApiError> {
    let caller = authorize(&state, &headers, Act::Manage).await?;
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
    Ok(Json(AllowedAccounts {
        allowed_accounts: now_allowed,
    }))
}

/// `POST /api/tokens/{id}/revoke`: always `{"revoked": true}` (a token that was not active
/// gets 404).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Revoked {
    revoked: bool,
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
        (status = 200, description = "`{\"revoked\": true}`", body = Revoked),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
        (status = 404, description = "No such active token", body = error::ErrorBody),
    )
)]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    let caller = authorize(&state, &headers, Act::Manage).await?;
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
    Ok(Json(Revoked { revoked: true }))
}

//! The audit log: its entries, and the verification of its chain.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use keyward_policy::Act;
use keyward_store::audit::VerifyReport;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::MAX_PAGE;
use super::schema::{Sorted, VerifyReportSchema};
use crate::error::{self, ApiError};

use crate::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// Entries to return (default 100, at most 1,000).
    limit: Option<usize>,
}

/// `GET /api/audit`: entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditList {
    items: Vec<AuditItem>,
}

/// An audit entry and its place in the chain, as the API and `keyward audit export --format
/// jsonl` write it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditItem {
    /// e.g. `token.create`, `finding.status`, `ingest.api`.
    action: String,
    /// `token:<id>`, `cli:<os user>`, `github:hook-<id>`, `ui:<origin>`.
    actor: String,
    /// The state after the change, when there is one (text, often JSON).
    after: Option<String>,
    /// RFC 3339.
    at: String,
    /// The state before the change, when there is one (text, often JSON).
    before: Option<String>,
    detail: Option<String>,
    /// Written before the audit key existed: hash-chained, not keyed.
    legacy: bool,
    /// The entry's MAC (hex); for a legacy entry, its unkeyed hash.
    mac: String,
    seq: i64,
    target: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "admin",
    summary = "The audit log",
    description = "Every state change (tokens, finding statuses, configuration, ingest requests, \
                   webhook deliveries, dashboard sign-ins and failed sign-ins), newest first, each \
                   with its actor, its place in the keyed MAC chain (`seq`, `mac`) and the state \
                   before and after where there is one. Needs a bearer token with the **admin** role (admin only).",
    params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`items`: seq, at, actor, action, target, detail, before, after, mac, legacy", body = AuditList),
        (status = 400, description = "An unknown query parameter or value", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
    )
)]
pub(crate) async fn audit_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditList>, ApiError> {
    crate::auth::authorize_read(&state, &headers, Act::Manage).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let rows = state
        .engine
        .call(move |e| e.audit_log(limit))
        .await?
        .map_err(ApiError::internal)?;
    let items = rows.into_iter().map(audit_json).collect();
    Ok(Json(AuditList { items }))
}

/// An audit entry as the API and `keyward audit export --format jsonl` write it.
pub fn audit_json(r: keyward_store::AuditRecord) -> AuditItem {
    let a = r.entry;
    AuditItem {
        action: a.action,
        actor: a.actor,
        after: a.after,
        at: keyward_model::time::format(a.at),
        before: a.before,
        detail: a.detail,
        legacy: r.legacy,
        mac: r.mac,
        seq: r.seq,
        target: a.target,
    }
}

#[utoipa::path(
    get,
    path = "/api/audit/verify",
    tag = "admin",
    summary = "Verify the audit log",
    description = "Walks the whole audit chain, checking every entry's keyed MAC, its seq and its \
                   link to the entry before it, then (when the server runs with `--audit-anchor`) \
                   checks that the chain still reaches every checkpoint of the anchor file with the \
                   anchored MAC and that each checkpoint's signature is valid, so entries deleted \
                   from the tail are caught. The same report as `keyward audit verify`. Needs a \
                   bearer token with the **admin** role (admin only).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"ok\": bool, \"entries\": n, \"legacy_entries\": n, \"head\": \
         {\"seq\", \"mac\", \"at\"} | null, \"anchors\": n, \"broken\": {\"seq\", \"kind\", \"reason\"} | null}`; \
         200 also when broken (`ok: false`)", body = VerifyReportSchema),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
        (status = 500, description = "The audit key or the anchor file cannot be read", body = error::ErrorBody),
    )
)]
pub(crate) async fn audit_verify(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Sorted<VerifyReport>>, ApiError> {
    crate::auth::authorize_read(&state, &headers, Act::Manage).await?;
    let anchor = state.config.audit_anchor.clone();
    let report = state
        .engine
        .call(move |e| {
            let anchors = match &anchor {
                Some(path) if path.exists() => keyward_store::audit::read_checkpoints(path)?,
                _ => Vec::new(),
            };
            e.audit_verify(&anchors)
        })
        .await?
        .map_err(ApiError::internal)?;
    Ok(Json(Sorted(report)))
}

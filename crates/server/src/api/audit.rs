//! The audit log: its entries, and the verification of its chain.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::MAX_PAGE;
use crate::error::{self, ApiError};
use crate::{AppState, Role, authorize};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// Entries to return (default 100, at most 1,000).
    limit: Option<usize>,
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
        (status = 200, description = "`items`: seq, at, actor, action, target, detail, before, after, mac, legacy", body = Value),
        (status = 400, description = "An unknown query parameter or value", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
    )
)]
pub(crate) async fn audit_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Role::Admin).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let rows = state
        .engine
        .call(move |e| e.audit_log(limit))
        .await?
        .map_err(ApiError::internal)?;
    let items: Vec<Value> = rows.into_iter().map(audit_json).collect();
    Ok(Json(json!({"items": items})))
}

/// An audit entry as the API and `keyward audit export --format jsonl` write it.
pub fn audit_json(r: keyward_store::AuditRecord) -> Value {
    let a = r.entry;
    json!({"seq": r.seq, "at": keyward_model::time::format(a.at), "actor": a.actor,
           "action": a.action, "target": a.target, "detail": a.detail,
           "before": a.before, "after": a.after, "mac": r.mac, "legacy": r.legacy})
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
         200 also when broken (`ok: false`)", body = Value),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
        (status = 500, description = "The audit key or the anchor file cannot be read", body = error::ErrorBody),
    )
)]
pub(crate) async fn audit_verify(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Role::Admin).await?;
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
    Ok(Json(json!(report)))
}

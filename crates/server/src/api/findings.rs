//! Findings: the filtered queue, one finding with its history, and triage.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use keyward_detect::{Finding, Kind, Severity, Status};
use keyward_engine::{Engine, FindingQuery};
use keyward_policy::Act;
use keyward_store::AuditEntry;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schema::{FindingSchema, Sorted};
use super::{MAX_PAGE, parse_one, parse_opt};
use crate::error::{self, ApiError, json_rejection};

use crate::{AppState, authorize, now};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct FindingsQuery {
    /// Minimum severity: `info`, `low`, `medium`, `high` or `critical`.
    severity: Option<String>,
    /// Comma list of `open`, `acknowledged`, `false-positive`, `resolved`.
    status: Option<String>,
    /// `threat` or `posture`.
    kind: Option<String>,
    /// Canonical identity id.
    identity: Option<String>,
    /// RFC 3339 instant: findings last seen at or after it.
    since: Option<String>,
    /// Items to skip (default 0).
    offset: Option<usize>,
    /// Page size (default 100, at most 1,000).
    limit: Option<usize>,
}

/// `GET /api/findings`: a page of findings, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FindingList {
    #[schema(value_type = Vec<FindingSchema>)]
    items: Sorted<Vec<Finding>>,
    limit: usize,
    offset: usize,
    /// Findings matching the filters (all pages).
    total: usize,
}

#[utoipa::path(
    get,
    path = "/api/findings",
    tag = "findings",
    summary = "List findings",
    description = "Findings, newest first, filtered. Needs a bearer token with the **viewer** role (viewer, operator or admin).",
    params(FindingsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page: `total`, `offset`, `limit` and `items` (findings)", body = FindingList),
        (status = 400, description = "An unknown query parameter or value", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = error::ErrorBody),
    )
)]
pub(crate) async fn findings(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<FindingsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FindingList>, ApiError> {
    authorize(&state, &headers, Act::View).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let min_severity = parse_opt(q.severity.as_deref(), "severity", Severity::parse)?;
    let statuses = match q.status.as_deref() {
        None => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|x| parse_one(x, "status", Status::parse))
            .collect::<Result<_, _>>()?,
    };
    let kind = parse_opt(q.kind.as_deref(), "kind", Kind::parse)?;
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => Some(keyward_model::time::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!("`since`: `{s}` is not an RFC 3339 time"))
        })?),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let offset = q.offset.unwrap_or(0);
    let fq = FindingQuery {
        since,
        min_severity,
        identity: q.identity,
        kind,
        statuses,
    };
    let all = state
        .engine
        .call(move |e| e.findings(&fq))
        .await?
        .map_err(ApiError::internal)?;
    let total = all.len();
    let items = all.into_iter().skip(offset).take(limit).collect();
    Ok(Json(FindingList {
        items: Sorted(items),
        limit,
        offset,
        total,
    }))
}

/// `GET /api/findings/{id}`: the finding and its status changes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FindingAnswer {
    /// Oldest first.
    changes: Vec<StatusChange>,
    #[schema(value_type = FindingSchema)]
    finding: Sorted<Finding>,
}

/// A recorded change of a finding's status.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusChange {
    actor: String,
    /// RFC 3339.
    at: String,
    note: Option<String>,
    /// The status set.
    status: String,
}

#[utoipa::path(
    get,
    path = "/api/findings/{id}",
    tag = "findings",
    summary = "One finding",
    description = "One finding and its status changes. Needs a bearer token with the **viewer** role (viewer, operator or admin).",
    params(("id" = String, Path, description = "Finding id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`finding` and `changes` (at, actor, status, note)", body = FindingAnswer),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = error::ErrorBody),
        (status = 404, description = "No such finding", body = error::ErrorBody),
    )
)]
pub(crate) async fn finding(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<FindingAnswer>, ApiError> {
    authorize(&state, &headers, Act::View).await?;
    let (f, changes) = state
        .engine
        .call(move |e| -> Result<_, keyward_engine::EngineError> {
            Ok((e.finding(&id)?, e.finding_changes(&id)?))
        })
        .await?
        .map_err(ApiError::internal)?;
    let f = f.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such finding"))?;
    let changes = changes
        .into_iter()
        .map(|c| StatusChange {
            actor: c.actor,
            at: keyward_model::time::format(c.at),
            note: c.note,
            status: c.status,
        })
        .collect();
    Ok(Json(FindingAnswer {
        changes,
        finding: Sorted(f),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusBody {
    /// `open`, `acknowledged`, `false-positive`, `resolved` or `expected`.
    status: String,
    note: Option<String>,
}

/// `POST /api/findings/{id}/status`: the finding after the change.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Triaged {
    #[schema(value_type = FindingSchema)]
    finding: Sorted<Finding>,
}

#[utoipa::path(
    post,
    path = "/api/findings/{id}/status",
    tag = "findings",
    summary = "Set a finding's status",
    description = "Triage: `open`, `acknowledged`, `false-positive` (adapts the baseline) or \
                   `resolved`, with an optional note. Audited. Needs a bearer token with the **operator** role (operator or admin).",
    params(("id" = String, Path, description = "Finding id")),
    request_body = StatusBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`finding`: the finding after the change", body = Triaged),
        (status = 400, description = "Malformed JSON or an unknown status", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than operator", body = error::ErrorBody),
        (status = 404, description = "No such finding", body = error::ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = error::ErrorBody),
        (status = 415, description = "`Content-Type` is not `application/json`", body = error::ErrorBody),
        (status = 422, description = "The JSON does not have the body's shape (missing or unknown field)", body = error::ErrorBody),
    )
)]
pub(crate) async fn finding_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<StatusBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Triaged>, ApiError> {
    let caller = authorize(&state, &headers, Act::Triage).await?;
    let Json(body) = body.map_err(json_rejection)?;
    let status = Status::parse(&body.status).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`status`: `{}` is not one of open, acknowledged, false-positive, resolved, expected",
            body.status
        ))
    })?;
    check_note(body.note.as_deref())?;
    let actor = caller.actor();
    let f = state
        .engine
        .write(move |e| set_status_audited(e, &id, status, actor, body.note.as_deref()))
        .await?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such finding"))?;
    Ok(Json(Triaged { finding: Sorted(f) }))
}

/// A note is at most [`keyward_engine::MAX_NOTE_BYTES`].
fn check_note(note: Option<&str>) -> Result<(), ApiError> {
    if note.is_some_and(|n| n.len() > keyward_engine::MAX_NOTE_BYTES) {
        return Err(ApiError::bad_request(format!(
            "`note`: at most {} bytes",
            keyward_engine::MAX_NOTE_BYTES
        )));
    }
    Ok(())
}

/// Sets a finding's status (a false positive adapts the baseline) and audits it, for the
/// API and the dashboard alike; `None` when there is no such finding.
pub(crate) fn set_status_audited(
    e: &mut Engine,
    id: &str,
    status: Status,
    actor: String,
    note: Option<&str>,
) -> Result<Option<Finding>, keyward_engine::EngineError> {
    let Some(before) = e.finding(id)? else {
        return Ok(None);
    };
    let at = now();
    let f = e.set_finding_status(id, status, &actor, note, at)?;
    e.audit(&AuditEntry {
        at,
        actor,
        action: "finding.status".into(),
        target: Some(id.to_owned()),
        detail: note.map(str::to_owned),
        before: Some(before.status.as_str().to_owned()),
        after: Some(status.as_str().to_owned()),
    })?;
    Ok(Some(f))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExceptionBody {
    /// Keep it (applied from the next event on, audited); without it, it is only shown.
    #[serde(default)]
    save: bool,
    /// Why (kept with the exception).
    note: Option<String>,
}

/// An exception: who a rule is not about (fields AND, values OR).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExceptionView {
    accounts: Vec<String>,
    /// Globs over the principal a finding is about, or the acting session, key or user.
    identities: Vec<String>,
    name: String,
    namespaces: Vec<String>,
    /// CIDR networks of the caller's address.
    networks: Vec<String>,
    note: Option<String>,
    /// The rule's id.
    rule: String,
}

impl From<keyward_detect::exceptions::Exception> for ExceptionView {
    fn from(e: keyward_detect::exceptions::Exception) -> Self {
        ExceptionView {
            accounts: e.accounts,
            identities: e.identities,
            name: e.name,
            namespaces: e.namespaces,
            networks: e.networks,
            note: e.note,
            rule: e.rule.unwrap_or_default(),
        }
    }
}

/// `POST /api/findings/{id}/exception`: the narrowest exception, and whether it was kept.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExceptionAnswer {
    exception: ExceptionView,
    saved: bool,
}

#[utoipa::path(
    post,
    path = "/api/findings/{id}/exception",
    tag = "findings",
    summary = "The narrowest exception that would have kept a finding out",
    description = "The finding's rule, on the finding's identity: shown, and with `save: true` \
                   kept in the store and applied from the next event on (audited as \
                   `exception.add`). Needs a bearer token with the **operator** role (operator or admin).",
    params(("id" = String, Path, description = "Finding id")),
    request_body = ExceptionBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`exception`, and `saved`", body = ExceptionAnswer),
        (status = 400, description = "Malformed JSON, a note too long, or a finding about no identity", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than operator", body = error::ErrorBody),
        (status = 404, description = "No such finding", body = error::ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = error::ErrorBody),
        (status = 415, description = "`Content-Type` is not `application/json`", body = error::ErrorBody),
        (status = 422, description = "The JSON does not have the body's shape (missing or unknown field)", body = error::ErrorBody),
    )
)]
pub(crate) async fn finding_exception(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<ExceptionBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ExceptionAnswer>, ApiError> {
    let caller = authorize(&state, &headers, Act::Triage).await?;
    let Json(body) = body.map_err(json_rejection)?;
    check_note(body.note.as_deref())?;
    let actor = caller.actor();
    let save = body.save;
    let found = state
        .engine
        .write(move |e| propose_exception(e, &id, body.note, save.then_some(actor)))
        .await?
        .map_err(ApiError::internal)?;
    match found {
        Exception::NoFinding => Err(ApiError::new(StatusCode::NOT_FOUND, "no such finding")),
        Exception::NoIdentity => Err(ApiError::bad_request(
            "the finding is about no identity: no exception can name it",
        )),
        Exception::Proposed(e) => Ok(Json(ExceptionAnswer {
            exception: e.into(),
            saved: save,
        })),
    }
}

/// What [`propose_exception`] found.
enum Exception {
    NoFinding,
    NoIdentity,
    Proposed(keyward_detect::exceptions::Exception),
}

/// The narrowest exception for finding `id`, saved (and audited) when `save_as` names the
/// actor.
fn propose_exception(
    e: &mut Engine,
    id: &str,
    note: Option<String>,
    save_as: Option<String>,
) -> Result<Exception, keyward_engine::EngineError> {
    let Some(f) = e.finding(id)? else {
        return Ok(Exception::NoFinding);
    };
    let Some(mut x) = keyward_detect::exceptions::narrowest(&f) else {
        return Ok(Exception::NoIdentity);
    };
    if note.is_some() {
        x.note = note;
    }
    if let Some(actor) = save_as {
        let after = serde_json::to_string(&x).ok();
        e.add_exception(
            x.clone(),
            &AuditEntry {
                at: now(),
                actor,
                action: "exception.add".into(),
                target: x.rule.clone(),
                detail: Some(format!("{} (from {id})", x.name)),
                before: None,
                after,
            },
        )?;
    }
    Ok(Exception::Proposed(x))
}

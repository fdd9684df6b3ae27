//! The inventory: a filtered page of identities, and one identity in full.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use keyward_detect::Finding;
use keyward_engine::FindingQuery;
use keyward_graph::analysis::Candidate;
use keyward_model::{Event, Identity, IdentityKind, Lifecycle, LifecycleConfig, Platform};
use keyward_policy::Act;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schema::{CandidateSchema, EventSchema, FindingSchema, IdentitySchema, Sorted};
use super::{MAX_PAGE, parse_opt};
use crate::error::{self, ApiError};

use crate::{AppState, authorize, listing, now};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentityQuery {
    /// `aws`, `kubernetes`, `github` or `oidc`.
    platform: Option<String>,
    /// Identity kind, e.g. `iam_role`, `access_key`, `service_account`, `deploy_key`.
    kind: Option<String>,
    /// Lifecycle state: `active`, `stale`, `unknown`, `ephemeral` or `deleted`.
    state: Option<String>,
    /// Substring of the id or name.
    q: Option<String>,
    /// Owner (email, `@handle`) or team.
    owner: Option<String>,
    /// Only identities without a live owner.
    orphaned: Option<bool>,
    /// Items to skip (default 0).
    offset: Option<usize>,
    /// Page size (default 100, at most 1,000).
    limit: Option<usize>,
}

/// `GET /api/identities`: a page of the inventory.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IdentityList {
    items: Vec<IdentityItem>,
    limit: usize,
    offset: usize,
    /// Identities matching the filters (all pages).
    total: usize,
}

/// One identity of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IdentityItem {
    account: Option<String>,
    id: String,
    /// e.g. `iam_role`, `access_key`, `service_account`, `deploy_key`.
    kind: &'static str,
    /// RFC 3339.
    last_used: Option<String>,
    name: String,
    namespace: Option<String>,
    /// No live owner.
    orphaned: bool,
    /// The most likely human owner (email or `@handle`).
    owner: Option<String>,
    /// `aws`, `kubernetes`, `github` or `oidc`.
    platform: &'static str,
    /// `active`, `stale`, `unknown` (would be stale; nothing covers the window), `ephemeral`
    /// or `deleted`.
    state: &'static str,
    team: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/identities",
    tag = "inventory",
    summary = "List identities",
    description = "A page of the inventory, filtered. Needs a bearer token with the **viewer** role (viewer, operator or admin).",
    params(IdentityQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page: `total`, `offset`, `limit` and `items` (id, name, \
         platform, kind, state, account, namespace, last_used, owner, team, orphaned)", body = IdentityList),
        (status = 400, description = "An unknown query parameter or value", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = error::ErrorBody),
    )
)]
pub(crate) async fn identities(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<IdentityQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<IdentityList>, ApiError> {
    authorize(&state, &headers, Act::View).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let platform = parse_opt(q.platform.as_deref(), "platform", Platform::parse)?;
    let kind = parse_opt(q.kind.as_deref(), "kind", IdentityKind::parse)?;
    let lifecycle = parse_opt(q.state.as_deref(), "state", Lifecycle::parse)?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let offset = q.offset.unwrap_or(0);
    let stale = state.config.stale_after_days;
    let out = state
        .engine
        .call(move |e| {
            let filter = keyward_engine::Filter {
                platform,
                kind,
                state: lifecycle,
                ..Default::default()
            };
            let lc = LifecycleConfig {
                as_of: now(),
                stale_after_days: stale,
            };
            let rows = listing::search(e, &filter, lc, q.q.as_deref().unwrap_or_default());
            let owners = keyward_engine::OwnerFilter {
                owner: q.owner.clone(),
                orphaned: q.orphaned.unwrap_or(false),
            };
            let rows = e.owned(rows, &owners, false);
            let total = rows.len();
            let mut page: Vec<_> = rows.into_iter().skip(offset).take(limit).collect();
            e.fill_owners(&mut page);
            let items = page
                .iter()
                .map(|((i, s), o)| IdentityItem {
                    account: i.account.clone(),
                    id: i.id.clone(),
                    kind: i.kind.as_str(),
                    last_used: i.last_used.map(keyward_model::time::format),
                    name: i.name.clone(),
                    namespace: i.namespace.clone(),
                    orphaned: o.as_ref().is_some_and(|o| o.orphan.is_some()),
                    owner: o.as_ref().and_then(|o| o.ownership.owner.clone()),
                    platform: i.platform.as_str(),
                    state: s.as_str(),
                    team: o.as_ref().and_then(|o| o.ownership.team.clone()),
                })
                .collect();
            IdentityList {
                items,
                limit,
                offset,
                total,
            }
        })
        .await?;
    Ok(Json(out))
}

/// `GET /api/identities/{id}`: one identity in full.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IdentityAnswer {
    /// Every finding about it.
    #[schema(value_type = Vec<FindingSchema>)]
    findings: Sorted<Vec<Finding>>,
    #[schema(value_type = IdentitySchema)]
    identity: Sorted<Identity>,
    owner: Option<OwnerAnswer>,
    /// Its 50 most recent events, newest first.
    #[schema(value_type = Vec<EventSchema>)]
    recent_events: Sorted<Vec<Event<'static>>>,
    /// `active`, `stale`, `unknown` (would be stale; nothing covers the window), `ephemeral`
    /// or `deleted`.
    state: &'static str,
}

/// Who owns an identity, and the evidence.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OwnerAnswer {
    /// 0–1: the product of the evidence weights along the best chain.
    confidence: f64,
    /// Why it looks orphaned, when it does: `owner_departed`, `function_deleted`,
    /// `no_workload` or `unreferenced` (the CLI's and the dashboard's names).
    orphan: Option<String>,
    /// The most likely human owner (email or `@handle`).
    owner: Option<String>,
    /// People, best first.
    #[schema(value_type = Vec<CandidateSchema>)]
    people: Sorted<Vec<Candidate>>,
    team: Option<String>,
    /// Teams, best first.
    #[schema(value_type = Vec<CandidateSchema>)]
    teams: Sorted<Vec<Candidate>>,
}

#[utoipa::path(
    get,
    path = "/api/identities/{id}",
    tag = "inventory",
    summary = "One identity",
    description = "Facts, owner and its evidence, findings and the 50 most recent events of one \
                   identity. Needs a bearer token with the **viewer** role (viewer, operator or admin).",
    params(("id" = String, Path, description = "Canonical id, ARN or unique name; may contain `/`")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`identity`, `state`, `owner`, `findings`, `recent_events`", body = IdentityAnswer),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = error::ErrorBody),
        (status = 404, description = "No such identity", body = error::ErrorBody),
        (status = 409, description = "The name matches several identities (listed)", body = error::ErrorBody),
    )
)]
pub(crate) async fn identity(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<IdentityAnswer>, ApiError> {
    authorize(&state, &headers, Act::View).await?;
    let stale = state.config.stale_after_days;
    state
        .engine
        .call(move |e| -> Result<IdentityAnswer, ApiError> {
            let i = match e.resolve(&id) {
                keyward_engine::Resolve::Found(i) => i.clone(),
                keyward_engine::Resolve::NotFound => {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        format!("no identity `{id}`"),
                    ));
                }
                keyward_engine::Resolve::Ambiguous(v) => {
                    let ids: Vec<&str> = v.iter().map(|i| i.id.as_str()).collect();
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        format!("`{id}` names several identities: {}", ids.join(", ")),
                    ));
                }
            };
            let lc = LifecycleConfig {
                as_of: now(),
                stale_after_days: stale,
            };
            let owner = e.owner_infos(&[&i]).into_iter().next();
            let events = e.recent_events(&i.id, 50).map_err(ApiError::internal)?;
            let q = FindingQuery {
                identity: Some(i.id.clone()),
                ..FindingQuery::default()
            };
            let findings = e.findings(&q).map_err(ApiError::internal)?;
            let owner = owner.map(|o| OwnerAnswer {
                confidence: o.ownership.confidence,
                orphan: o.orphan.as_ref().map(|r| r.as_str().to_owned()),
                owner: o.ownership.owner,
                people: Sorted(o.ownership.people),
                team: o.ownership.team,
                teams: Sorted(o.ownership.teams),
            });
            Ok(IdentityAnswer {
                findings: Sorted(findings),
                state: e.lifecycles(lc).of(&i).as_str(),
                identity: Sorted(i),
                owner,
                recent_events: Sorted(events),
            })
        })
        .await?
        .map(Json)
}

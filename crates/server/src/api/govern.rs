//! Governance, read-only: time-bound access (grants, their requests and break-glass reviews)
//! and compliance scorecards. Granting, approving and revoking stay with `keyward access`
//! (they run through the platform connectors); these answer "who holds what until when" and
//! "where do we stand".

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use keyward_govern::compliance::{self, Framework};
use keyward_policy::Act;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{self, ApiError};

use crate::{AppState, authorize, now};

/// `GET /api/access`: every grant (`id`, `plan`, `grantee`, `entitlement`, `requester`,
/// `approver`, `reason`, `granted_at`, `expires_at`, `state`, `break_glass`, `last_error`),
/// request and break-glass review, as `keyward access list --format json` writes them.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccessAnswer {
    #[schema(value_type = Vec<Object>)]
    grants: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    requests: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    reviews: Vec<serde_json::Value>,
}

fn values<T: Serialize>(items: &[T]) -> Result<Vec<serde_json::Value>, ApiError> {
    items
        .iter()
        .map(|i| serde_json::to_value(i).map_err(ApiError::internal))
        .collect()
}

#[utoipa::path(
    get,
    path = "/api/access",
    tag = "govern",
    summary = "Time-bound access: grants, requests, break-glass reviews",
    description = "Every grant with its state and expiry, every request and every post-incident \
                   review. Needs a bearer token with the **viewer** role (any role).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`grants`, `requests`, `reviews`", body = AccessAnswer),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = error::ErrorBody),
    )
)]
pub(crate) async fn access(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<AccessAnswer>, ApiError> {
    authorize(&state, &headers, Act::View).await?;
    let (grants, requests, reviews) = state
        .engine
        .call(|e| -> Result<_, keyward_engine::EngineError> {
            Ok((
                e.access_grants()?,
                e.access_requests()?,
                e.access_reviews()?,
            ))
        })
        .await?
        .map_err(ApiError::internal)?;
    Ok(Json(AccessAnswer {
        grants: values(&grants)?,
        requests: values(&requests)?,
        reviews: values(&reviews)?,
    }))
}

/// `GET /api/compliance/{framework}`: the scorecard as `keyward compliance report --format
/// json` writes it (`framework`, `pass`, `warn`, `fail`, `controls[]` with `id`, `status`,
/// `why`, `identities`, `findings`, `evidence[]`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ComplianceAnswer {
    #[schema(value_type = Object)]
    report: serde_json::Value,
}

#[utoipa::path(
    get,
    path = "/api/compliance/{framework}",
    tag = "govern",
    summary = "A compliance scorecard judged now",
    description = "SOC 2, PCI DSS 4.0 or ISO 27001:2022 controls, each with its status, the \
                   identities and findings that decide it and evidence. Reading it records \
                   nothing (`keyward compliance report` records a run for the trend). Needs a \
                   bearer token with the **viewer** role (any role).",
    params(("framework" = String, Path, description = "`soc2`, `pci-dss-4` or `iso27001-2022`")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`report`", body = ComplianceAnswer),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = error::ErrorBody),
        (status = 404, description = "No such framework", body = error::ErrorBody),
    )
)]
pub(crate) async fn compliance(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(framework): Path<String>,
) -> Result<Json<ComplianceAnswer>, ApiError> {
    authorize(&state, &headers, Act::View).await?;
    let Some(framework) = Framework::parse(&framework) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no framework {framework:?}"),
        ));
    };
    let facts = state
        .engine
        .call(|e| e.compliance_facts(now()))
        .await?
        .map_err(ApiError::internal)?;
    let report = compliance::report(framework, &facts);
    Ok(Json(ComplianceAnswer {
        report: serde_json::to_value(&report).map_err(ApiError::internal)?,
    }))
}

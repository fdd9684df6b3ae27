//! Liveness, readiness and the Prometheus metrics.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_detect::Severity;
use keyward_policy::Act;

use crate::error::{self, ApiError};
use crate::metrics::SeverityLabel;

use crate::{AppState, authorize};

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    summary = "Liveness",
    description = "Answers `ok` while the process serves requests. No token needed.",
    responses((status = 200, description = "The server is up: `ok`", body = String, content_type = "text/plain"))
)]
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the engine answers and its store can be read.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    summary = "Readiness",
    description = "Answers `ready` when the engine answers and its store can be read. No token needed.",
    responses(
        (status = 200, description = "Ready: `ready`", body = String, content_type = "text/plain"),
        (status = 503, description = "The engine is not running or the store cannot be read", body = error::ErrorBody),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state
        .engine
        .call(|e| e.event_count())
        .await?
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok("ready\n")
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    summary = "Prometheus / OpenMetrics metrics",
    description = "Ingest counters per source, open findings per severity, ingest latency and \
                   requests per route and status, as OpenMetrics text. Needs a bearer token with the **viewer** role (viewer, operator or admin).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OpenMetrics text", body = String,
         content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = error::ErrorBody),
    )
)]
pub(crate) async fn metrics_text(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, Act::View).await?;
    let counts = state
        .engine
        .call(|e| e.open_finding_counts())
        .await?
        .map_err(ApiError::internal)?;
    for (s, n) in Severity::ALL.iter().zip(counts) {
        state
            .metrics
            .findings_open
            .get_or_create(&SeverityLabel {
                severity: s.as_str().to_owned(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response())
}

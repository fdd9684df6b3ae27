//! Live inputs: generic event POSTs and the Kubernetes API server's audit webhook.
//!
//! A body's envelope is checked (`keyward_normalize::envelope`), then the body goes through
//! `Engine::ingest_body`, the pipeline `keyward watch` uses and the reader files go
//! through: normalization, inventory, graph, store and detection in one store transaction.
//! The answer is sent after the commit, so a 2xx means the events are stored.

use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use keyward_engine::{Engine, EngineError, IngestOptions, IngestReport};
use keyward_normalize::envelope::Expect;
use keyward_normalize::{Format, Layout};
use keyward_policy::Act;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::metrics::SourceLabel;

use crate::{ApiError, AppState, authorize, now};

/// Rejections listed in an answer (all are kept as dead letters).
const MAX_LISTED: usize = 20;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngestQuery {
    /// `cloudtrail`, `k8s-audit` or `github-webhook` (default: detected from the first record).
    format: Option<String>,
    /// Kubernetes cluster name (default `default`).
    cluster: Option<String>,
}

/// `POST /api/ingest`: CloudTrail `{"Records":[…]}`, a JSON array, a Kubernetes
/// `EventList`, or JSON lines of one supported event format; gzip accepted.
#[utoipa::path(
    post,
    path = "/api/ingest",
    tag = "ingest",
    operation_id = "ingest",
    summary = "Post events",
    description = "Events go through the pipeline `keyward watch` runs (normalization, inventory, \
                   graph, store, detection) in one store transaction; a 2xx is sent after the \
                   commit. Posting the same events again stores nothing twice. Needs a bearer \
                   token with the **operator** role (operator or admin).",
    params(IngestQuery, ("Content-Encoding" = Option<String>, Header,
         description = "`gzip` (or `x-gzip`) for a compressed body; gzip is also recognised by its \
                        magic bytes. Anything but `identity` or gzip gets 415"),),
    request_body(
        description = "A CloudTrail S3 object (`{\"Records\":[…]}`), a JSON array of records, a \
                       Kubernetes `EventList`, or JSON lines (one CloudTrail record or Kubernetes \
                       audit event per line). Any of these may be gzip-compressed.",
        content(("application/json"), ("application/x-ndjson"), ("application/gzip"))
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored and checked: `received`, `accepted`, `rejected`, \
         `rejections` (the first 20, with line and reason; all are kept as dead letters) and the \
         `findings` the events opened or extended", body = IngestAnswer),
        (status = 400, description = "A bad query or body (`{\"error\"}`), or every record was \
         rejected (then the body is the report above, with `accepted: 0`)", body = IngestRefused),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = crate::error::ErrorBody),
        (status = 403, description = "The token's role is weaker than operator", body = crate::error::ErrorBody),
        (status = 408, description = "The body was not sent within the body-read deadline (60 s)", body = crate::error::ErrorBody),
        (status = 413, description = "The body is larger than the body limit, or a gzip body \
         expands past the decompressed-size limit (`--max-decompressed`, 64 MiB) or 200-fold", body = crate::error::ErrorBody),
        (status = 415, description = "A `Content-Encoding` other than gzip", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn generic(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<IngestQuery>, QueryRejection>,
    body: Body,
) -> Result<(StatusCode, Json<IngestAnswer>), ApiError> {
    let start = Instant::now();
    let caller = authorize(&state, &headers, Act::Ingest).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let format = match q.format.as_deref() {
        None => None,
        Some(f) => Some(
            Format::parse(f)
                .filter(|f| f.line_oriented())
                .ok_or_else(|| {
                    let known: Vec<&str> = Format::ALL
                        .iter()
                        .filter(|f| f.line_oriented())
                        .map(|f| f.as_str())
                        .collect();
                    ApiError::bad_request(format!(
                        "`format`: `{f}` is not an event format ({})",
                        known.join(", ")
                    ))
                })?,
        ),
    };
    let _permit = acquire(&state.ingest_permits).await?;
    let body = read_body(&state, &headers, body).await?;
    let (body, layout) = open_body(&state, headers, body, Expect::Records).await?;
    let label = format!("api:ingest:{}", caller.token_id);
    let origin = Origin {
        actor: caller.actor(),
        action: "ingest.api",
        target: None,
        detail: format.map(|f| format!("format {}", f.as_str())),
    };
    let opts = IngestOptions {
        format,
        cluster: q.cluster,
        ..IngestOptions::default()
    };
    let ingest = move |e: &mut Engine| e.ingest_body(&label, body, layout, &opts, now());
    run(&state, origin, ingest, start).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookQuery {
    /// The cluster this API server belongs to (default `default`).
    cluster: Option<String>,
}

/// `POST /api/webhooks/kubernetes-audit`: the audit webhook backend. The API server
/// (`--audit-webhook-config-file`) posts `audit.k8s.io/v1` `EventList`s, authenticating
/// with the kubeconfig's `user.token` as a bearer token (operator role).
#[utoipa::path(
    post,
    path = "/api/webhooks/kubernetes-audit",
    tag = "ingest",
    summary = "Kubernetes audit webhook backend",
    description = "The API server's audit webhook (`--audit-webhook-config-file`, the kubeconfig's \
                   `user.token` as the bearer token). Stored and checked like `/api/ingest`. \
                   Needs a bearer token with the **operator** role (operator or admin).",
    params(WebhookQuery, ("Content-Encoding" = Option<String>, Header,
         description = "`gzip` (or `x-gzip`) for a compressed body; gzip is also recognised by its \
                        magic bytes. Anything but `identity` or gzip gets 415"),),
    request_body(
        description = "An `audit.k8s.io/v1` `EventList`, optionally gzip-compressed.",
        content(("application/json"), ("application/gzip"))
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored and checked: `received`, `accepted`, `rejected`, \
         `rejections` (the first 20, with line and reason; all are kept as dead letters) and the \
         `findings` the events opened or extended", body = IngestAnswer),
        (status = 400, description = "Not an `EventList`, or every event was rejected (then the \
         body is the report above, with `accepted: 0`)", body = IngestRefused),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = crate::error::ErrorBody),
        (status = 403, description = "The token's role is weaker than operator", body = crate::error::ErrorBody),
        (status = 408, description = "The body was not sent within the body-read deadline (60 s)", body = crate::error::ErrorBody),
        (status = 413, description = "The body is larger than the body limit, or a gzip body \
         expands past the decompressed-size limit (`--max-decompressed`, 64 MiB) or 200-fold", body = crate::error::ErrorBody),
        (status = 415, description = "A `Content-Encoding` other than gzip", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn kubernetes_audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<WebhookQuery>, QueryRejection>,
    body: Body,
) -> Result<(StatusCode, Json<IngestAnswer>), ApiError> {
    let start = Instant::now();
    let caller = authorize(&state, &headers, Act::Ingest).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let _permit = acquire(&state.ingest_permits).await?;
    let body = read_body(&state, &headers, body).await?;
    let (body, layout) = open_body(&state, headers, body, Expect::EventList).await?;
    let label = format!("api:kubernetes-audit:{}", caller.token_id);
    let origin = Origin {
        actor: caller.actor(),
        action: "ingest.kubernetes-audit",
        target: Some(format!(
            "cluster {}",
            q.cluster.as_deref().unwrap_or("default")
        )),
        detail: None,
    };
    let opts = IngestOptions {
        format: Some(Format::K8sAudit),
        cluster: q.cluster,
        ..IngestOptions::default()
    };
    let ingest = move |e: &mut Engine| e.ingest_body(&label, body, layout, &opts, now());
    run(&state, origin, ingest, start).await
}

/// Who posted a request, for its audit entry (ids only, never a token or a secret).
pub(crate) struct Origin {
    pub actor: String,
    pub action: &'static str,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// What an ingest request stored and found (200), or why nothing was usable (400 with
/// `accepted: 0`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IngestAnswer {
    /// Records stored.
    accepted: u64,
    /// The findings the events opened or extended.
    findings: Vec<IngestedFinding>,
    /// Records in the body.
    received: u64,
    /// Records rejected (all kept as dead letters).
    rejected: u64,
    /// The first 20 rejections.
    rejections: Vec<Rejection>,
}

impl IngestAnswer {
    /// The answer to a request whose records `report` tells of.
    fn new(report: &keyward_engine::IngestReport) -> Self {
        let (received, accepted) = totals(report);
        let rejections = report
            .rejections
            .iter()
            .take(MAX_LISTED)
            .map(|(_, d)| Rejection {
                line: d.line,
                reason: d.reason.to_string(),
            })
            .collect();
        let findings = report
            .findings
            .iter()
            .map(|f| IngestedFinding {
                id: f.id.clone(),
                identity: f.identity.clone(),
                rule_id: f.rule_id.clone(),
                severity: f.severity,
            })
            .collect();
        IngestAnswer {
            accepted,
            findings,
            received,
            rejected: report.rejected,
            rejections,
        }
    }
}

/// A 400 from an ingest route: a bad query or body, or a body whose every record was
/// rejected (then the report, with `accepted: 0`).
#[derive(ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "a schema only: the handlers answer with one or the other"
)]
pub(crate) enum IngestRefused {
    Error(crate::ErrorBody),
    Report(IngestAnswer),
}

/// A rejected record: where it was in the body and why.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Rejection {
    /// The record's line in the body (as in a file of the same bytes).
    line: u64,
    reason: String,
}

/// A finding an ingest request opened or extended.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IngestedFinding {
    id: String,
    identity: Option<String>,
    rule_id: String,
    /// `info`, `low`, `medium`, `high` or `critical`.
    #[schema(value_type = String)]
    severity: keyward_detect::Severity,
}

/// Runs `ingest` on the engine and writes the request's audit entry (its counts in
/// `after`) once the events are committed.
pub(crate) async fn run<F>(
    state: &AppState,
    origin: Origin,
    ingest: F,
    start: Instant,
) -> Result<(StatusCode, Json<IngestAnswer>), ApiError>
where
    F: FnOnce(&mut Engine) -> Result<IngestReport, EngineError> + Send + 'static,
{
    let report = state
        .engine
        .write(move |e| {
            let report = ingest(e)?;
            let (received, accepted) = totals(&report);
            let counts = json!({"received": received, "accepted": accepted,
                                "rejected": report.rejected, "findings": report.findings.len()});
            e.audit(&keyward_store::AuditEntry {
                at: now(),
                actor: origin.actor,
                action: origin.action.to_owned(),
                target: origin.target,
                detail: origin.detail,
                before: None,
                after: Some(counts.to_string()),
            })?;
            Ok::<_, EngineError>(report)
        })
        .await?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    for (source, st) in &report.per_source {
        let l = SourceLabel {
            source: (*source).to_owned(),
        };
        state.metrics.received.get_or_create(&l).inc_by(st.records);
        state.metrics.accepted.get_or_create(&l).inc_by(st.accepted);
        state.metrics.rejected.get_or_create(&l).inc_by(st.rejected);
    }
    if report.per_source.is_empty() && report.rejected > 0 {
        let l = SourceLabel {
            source: "unknown".into(),
        };
        state
            .metrics
            .received
            .get_or_create(&l)
            .inc_by(report.rejected);
        state
            .metrics
            .rejected
            .get_or_create(&l)
            .inc_by(report.rejected);
    }
    state
        .metrics
        .ingest_seconds
        .observe(start.elapsed().as_secs_f64());
    crate::respond::after_ingest(state, &report.findings);
    let answer = IngestAnswer::new(&report);
    // Nothing usable: say so, though the rejected records are kept as dead letters.
    let status = if answer.accepted == 0 && answer.rejected > 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)))
}

/// Records received and accepted, over a report's sources; an input of no known format
/// has none, and its rejected records are what was received.
fn totals(report: &IngestReport) -> (u64, u64) {
    let received: u64 = report.per_source.values().map(|s| s.records).sum();
    let accepted: u64 = report.per_source.values().map(|s| s.accepted).sum();
    match report.per_source.is_empty() {
        true => (report.rejected, accepted),
        false => (received, accepted),
    }
}

/// Waits for one of `permits` (bodies read and decoded at once).
pub(crate) async fn acquire(
    permits: &std::sync::Arc<tokio::sync::Semaphore>,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    std::sync::Arc::clone(permits)
        .acquire_owned()
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping"))
}

/// Reads a request body of at most the body limit, within the body-read deadline. A
/// declared `Content-Length` over the limit is refused before anything is read.
pub(crate) async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt as _;
    let limit = state.config.body_limit;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut body = body;
        let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if out.len().saturating_add(data.len()) > limit {
                    return Err(too_large());
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(out))
    };
    tokio::time::timeout(state.config.ingest.body_read_timeout, read)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body was not sent within {} s",
                    state.config.ingest.body_read_timeout.as_secs()
                ),
            )
        })?
}

/// The body, decoded, and the layout its envelope holds its records in: off the async
/// threads (inflating and validating are CPU work; on a runtime thread they would stall
/// every other request, `/healthz` included). An envelope that cannot be read gets 400.
async fn open_body(
    state: &AppState,
    headers: HeaderMap,
    body: Bytes,
    expect: Expect,
) -> Result<(Vec<u8>, Layout), ApiError> {
    let config = std::sync::Arc::clone(&state.config);
    tokio::task::spawn_blocking(move || {
        let raw = decode(&headers, &body, &config)?;
        drop(body);
        let layout = keyward_normalize::envelope::open(&raw, expect)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((raw, layout))
    })
    .await
    .map_err(ApiError::internal)?
}

/// The body's bytes, decoded by `sources` within the configured limits: 415 for an
/// encoding other than gzip, 413 for a body that expands past its limit (a gzip bomb, caught
/// having cost at most the limit), 400 for a damaged one.
fn decode(headers: &HeaderMap, body: &Bytes, config: &crate::Config) -> Result<Vec<u8>, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let limits = keyward_sources::BodyLimits {
        max_decompressed: config.ingest.max_decompressed,
        max_ratio: config.ingest.max_ratio,
    };
    keyward_sources::request_body(encoding, body, limits).map_err(|e| {
        let status = match e {
            keyward_sources::BodyError::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            keyward_sources::BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            keyward_sources::BodyError::Damaged(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    })
}

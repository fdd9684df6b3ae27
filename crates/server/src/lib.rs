//! Keyward as a service: the authenticated HTTP API (`keyward serve`) and live inputs
//! (generic ingest, the Kubernetes audit webhook backend).
//!
//! The engine is single-writer: it lives on one thread of its own and requests hand it
//! closures ([`EngineHandle::call`]), so ingest through the server runs exactly the
//! pipeline the CLI runs and nothing needs the engine to be shared across threads.
//!
//! Invariants: every route that reads or changes state authenticates a bearer token and
//! checks its role before touching the engine; a 2xx on an ingest route means the events
//! were committed to the store and detection ran on them; every state change is audited.

pub mod auth;
pub mod dashboard;
pub mod github;
mod ingest;
mod listen;
mod listing;
pub mod metrics;
pub mod openapi;
pub mod tls;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use keyward_detect::{Kind, Severity, Status};
use keyward_engine::{Engine, FindingQuery};
use keyward_model::time::Millis;
use keyward_model::{IdentityKind, Lifecycle, LifecycleConfig, Platform};
use keyward_store::AuditEntry;
use serde::Deserialize;
use serde_json::{Value, json};

pub use auth::{Caller, Role};
pub use listen::{ConnLimits, serve};
use metrics::{Metrics, RouteLabel, SeverityLabel};

/// Largest request body accepted (compressed size): 32 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 32 << 20;

/// The largest form or JSON body of a route that is not an ingest route.
pub const SMALL_BODY_LIMIT: usize = 64 << 10;

/// A job for the engine thread.
type Job = Box<dyn FnOnce(&mut Engine) + Send>;

/// The engine, owned by its own thread.
#[derive(Clone)]
pub struct EngineHandle {
    tx: std::sync::mpsc::Sender<Job>,
}

impl EngineHandle {
    /// Starts the engine thread. `open` runs on it (the engine never leaves it).
    pub fn spawn<F>(open: F) -> Result<Self, String>
    where
        F: FnOnce() -> Result<Engine, String> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        std::thread::Builder::new()
            .name("keyward-engine".into())
            // The engine parses records nested up to `normalize::MAX_NESTING` deep.
            .stack_size(keyward_normalize::depth::STACK)
            .spawn(move || {
                let mut engine = match open() {
                    Ok(e) => {
                        let _ = ready_tx.send(Ok(()));
                        e
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    // Another process (`keyward ingest`, a second server) may have written
                    // since the last job: answer from what the store holds now.
                    if let Err(e) = engine.refresh() {
                        eprintln!("keyward: reloading from the store failed: {e}");
                    }
                    job(&mut engine);
                }
            })
            .map_err(|e| e.to_string())?;
        ready_rx
            .recv()
            .map_err(|_| "the engine thread stopped while opening".to_owned())??;
        Ok(EngineHandle { tx })
    }

    /// Runs `f`, which writes, on the engine thread holding the store's writer lock (other
    /// processes on the same data directory write one at a time), and waits for its answer.
    pub async fn write<R, F>(&self, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Engine) -> R + Send + 'static,
    {
        self.call(move |e| {
            let _writing = e.write_lock()?;
            Ok::<R, keyward_engine::EngineError>(f(e))
        })
        .await?
        .map_err(ApiError::internal)
    }

    /// Runs `f` on the engine thread and waits for its answer.
    pub async fn call<R, F>(&self, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Engine) -> R + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move |e: &mut Engine| {
                let _ = tx.send(f(e));
            }))
            .map_err(|_| ApiError::unavailable())?;
        rx.await.map_err(|_| ApiError::unavailable())
    }
}

/// Configuration of a running server.
#[derive(Debug, Clone)]
pub struct Config {
    pub body_limit: usize,
    /// Days without use before an identity counts as stale.
    pub stale_after_days: i64,
    /// The GitHub webhook's secret; without it GitHub deliveries are refused.
    pub github_secret: Option<github::WebhookSecret>,
    /// Served over TLS: session cookies are marked `Secure`.
    pub tls: bool,
    /// Approved foreign accounts given on the command line (`--allow-account`).
    pub allowed_accounts_flags: Vec<String>,
    /// Connection limits of the listener.
    pub conn: ConnLimits,
    /// Limits on what an ingest body may cost.
    pub ingest: IngestLimits,
    /// The anchor file checkpoints are appended to (`--audit-anchor`); `GET
    /// /api/audit/verify` checks the chain against it.
    pub audit_anchor: Option<std::path::PathBuf>,
}

/// What one ingest request may cost: decompressed size, expansion ratio, time to send the
/// body, and how many bodies are decoded at once (the engine takes them one at a time).
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    /// The largest decompressed body.
    pub max_decompressed: usize,
    /// The largest expansion of a gzip body (decompressed / compressed size).
    pub max_ratio: usize,
    /// How long a client has to send a whole body.
    pub body_read_timeout: std::time::Duration,
    /// Bodies read and decoded at once; the rest wait their turn.
    pub concurrent: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_decompressed: 64 << 20,
            max_ratio: keyward_sources::MAX_RATIO as usize,
            body_read_timeout: std::time::Duration::from_secs(60),
            concurrent: 2,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            body_limit: DEFAULT_BODY_LIMIT,
            stale_after_days: 30,
            github_secret: None,
            tls: false,
            allowed_accounts_flags: Vec::new(),
            conn: ConnLimits::default(),
            ingest: IngestLimits::default(),
            audit_anchor: None,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub engine: EngineHandle,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// Dashboard sign-in sessions.
    pub sessions: Arc<dashboard::Sessions>,
    /// Ingest bodies being read and decoded ([`IngestLimits::concurrent`]).
    pub ingest_permits: Arc<tokio::sync::Semaphore>,
    /// GitHub deliveries being read (unauthenticated until their signature is checked, so
    /// kept apart from the token holders' ingest).
    pub webhook_permits: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// A server's state: the engine and the configuration; metrics and sessions start empty.
    pub fn new(engine: EngineHandle, config: Config) -> Self {
        AppState {
            engine,
            metrics: Arc::default(),
            sessions: Arc::default(),
            ingest_permits: Arc::new(tokio::sync::Semaphore::new(config.ingest.concurrent.max(1))),
            webhook_permits: Arc::new(tokio::sync::Semaphore::new(config.ingest.concurrent.max(1))),
            config: Arc::new(config),
        }
    }
}

/// An error answer: a status and a message, as `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    fn unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "the engine is not running")
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = openapi::ErrorBody {
            error: self.message,
        };
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"keyward\""),
            );
        }
        r
    }
}

fn now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is case-insensitive
/// (RFC 9110, 11.1), and any run of spaces or tabs may follow it.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once([' ', '\t'])?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The caller behind the request's bearer token, if its role is at least `need`.
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    need: Role,
) -> Result<Caller, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing `Authorization: Bearer <token>` (create one with `keyward token create`)",
            )
        })?
        .to_owned();
    let caller = state
        .engine
        .call(move |e| auth::verify(e.store(), &token))
        .await?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown or revoked token"))?;
    if caller.role < need {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this needs the {} role; the token is {}",
                need.as_str(),
                caller.role.as_str()
            ),
        ));
    }
    Ok(caller)
}

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard::root))
        .route("/ui/", get(dashboard::overview))
        .route(
            "/ui/login",
            get(dashboard::login_form).post(dashboard::login),
        )
        .route("/ui/logout", post(dashboard::logout))
        .route("/ui/identities", get(dashboard::inventory))
        .route("/ui/identity", get(dashboard::identity))
        .route("/ui/findings", get(dashboard::findings))
        .route("/ui/findings/{id}/status", post(dashboard::set_status))
        .route("/ui/assets/app.css", get(dashboard::css))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        // No token: the OpenAPI document holds no state (see `openapi::openapi_json`).
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/metrics", get(metrics_text))
        .route("/api/identities", get(identities))
        .route("/api/identities/{*id}", get(identity))
        .route("/api/findings", get(findings))
        .route("/api/findings/{id}", get(finding))
        .route("/api/findings/{id}/status", post(finding_status))
        .route("/api/ingest", post(ingest::generic))
        .route(
            "/api/webhooks/kubernetes-audit",
            post(ingest::kubernetes_audit),
        )
        .route("/api/webhooks/github", post(github::webhook))
        .route("/api/tokens", get(tokens).post(create_token))
        .route("/api/tokens/{id}/revoke", post(revoke_token))
        .route("/api/audit", get(audit_log))
        .route("/api/audit/verify", get(audit_verify))
        .route("/api/config", get(config))
        .route("/api/config/allowed-accounts", put(set_allowed_accounts))
        .fallback(not_found)
        // Forms and JSON; ingest bodies are read by `ingest::read_body` with the body limit.
        .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    state
        .metrics
        .requests
        .get_or_create(&RouteLabel {
            route,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    summary = "Liveness",
    description = "Answers `ok` while the process serves requests. No token needed.",
    responses((status = 200, description = "The server is up: `ok`", body = String, content_type = "text/plain"))
)]
async fn healthz() -> &'static str {
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
        (status = 503, description = "The engine is not running or the store cannot be read", body = openapi::ErrorBody),
    )
)]
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state
        .engine
        .call(|e| e.store().event_count())
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
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = openapi::ErrorBody),
    )
)]
async fn metrics_text(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, Role::Viewer).await?;
    let counts = state
        .engine
        .call(|e| e.store().open_finding_counts())
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct IdentityQuery {
    /// `aws`, `kubernetes`, `github` or `oidc`.
    platform: Option<String>,
    /// Identity kind, e.g. `iam_role`, `access_key`, `service_account`, `deploy_key`.
    kind: Option<String>,
    /// Lifecycle state: `active`, `stale`, `ephemeral` or `deleted`.
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

const MAX_PAGE: usize = 1_000;

/// A query value parsed by `parse`; 400 naming `what` when it does not parse.
pub(crate) fn parse_one<T>(
    v: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, ApiError> {
    parse(v).ok_or_else(|| ApiError::bad_request(format!("unknown {what} `{v}`")))
}

pub(crate) fn parse_opt<T>(
    value: Option<&str>,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    value.map(|v| parse_one(v, what, parse)).transpose()
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
         platform, kind, state, account, namespace, last_used, owner, team, orphaned)", body = Value),
        (status = 400, description = "An unknown query parameter or value", body = openapi::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = openapi::ErrorBody),
    )
)]
async fn identities(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<IdentityQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Role::Viewer).await?;
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
            let rows = listing::by_owner(
                e,
                rows,
                q.owner.as_deref(),
                q.orphaned.unwrap_or(false),
                false,
            );
            let total = rows.len();
            let mut page: Vec<_> = rows.into_iter().skip(offset).take(limit).collect();
            listing::fill_owners(e, &mut page);
            let page: Vec<Value> = page
                .iter()
                .map(|((i, s), o)| {
                    json!({
                        "id": i.id, "name": i.name, "platform": i.platform.as_str(),
                        "kind": i.kind.as_str(), "state": s.as_str(),
                        "account": i.account, "namespace": i.namespace,
                        "last_used": i.last_used.map(keyward_model::time::format),
                        "owner": o.as_ref().and_then(|o| o.ownership.owner.clone()),
                        "team": o.as_ref().and_then(|o| o.ownership.team.clone()),
                        "orphaned": o.as_ref().is_some_and(|o| o.orphan.is_some()),
                    })
                })
                .collect();
            json!({"total": total, "offset": offset, "limit": limit, "items": page})
        })
        .await?;
    Ok(Json(out))
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
        (status = 200, description = "`identity`, `state`, `owner`, `findings`, `recent_events`", body = Value),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = openapi::ErrorBody),
        (status = 404, description = "No such identity", body = openapi::ErrorBody),
        (status = 409, description = "The name matches several identities (listed)", body = openapi::ErrorBody),
    )
)]
async fn identity(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Role::Viewer).await?;
    let stale = state.config.stale_after_days;
    state
        .engine
        .call(move |e| -> Result<Value, ApiError> {
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
            let events = e
                .store()
                .recent_events(&i.id, 50)
                .map_err(ApiError::internal)?;
            let q = FindingQuery {
                identity: Some(i.id.clone()),
                ..FindingQuery::default()
            };
            let findings = e.findings(&q).map_err(ApiError::internal)?;
            Ok(json!({
                "identity": i,
                "state": i.lifecycle(lc).as_str(),
                "owner": owner.as_ref().map(|o| json!({
                    "owner": o.ownership.owner, "team": o.ownership.team,
                    "confidence": o.ownership.confidence,
                    "people": o.ownership.people, "teams": o.ownership.teams,
                    "orphan": o.orphan.as_ref().map(|r| format!("{r:?}")),
                })),
                "findings": findings,
                "recent_events": events,
            }))
        })
        .await?
        .map(Json)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FindingsQuery {
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

#[utoipa::path(
    get,
    path = "/api/findings",
    tag = "findings",
    summary = "List findings",
    description = "Findings, newest first, filtered. Needs a bearer token with the **viewer** role (viewer, operator or admin).",
    params(FindingsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page: `total`, `offset`, `limit` and `items` (findings)", body = Value),
        (status = 400, description = "An unknown query parameter or value", body = openapi::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = openapi::ErrorBody),
    )
)]
async fn findings(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<FindingsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Role::Viewer).await?;
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
    let items: Vec<_> = all.into_iter().skip(offset).take(limit).collect();
    Ok(Json(
        json!({"total": total, "offset": offset, "limit": limit, "items": items}),
    ))
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
        (status = 200, description = "`finding` and `changes` (at, actor, status, note)", body = Value),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = openapi::ErrorBody),
        (status = 404, description = "No such finding", body = openapi::ErrorBody),
    )
)]
async fn finding(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Role::Viewer).await?;
    let (f, changes) = state
        .engine
        .call(move |e| -> Result<_, keyward_engine::EngineError> {
            Ok((e.finding(&id)?, e.finding_changes(&id)?))
        })
        .await?
        .map_err(ApiError::internal)?;
    let f = f.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such finding"))?;
    let changes: Vec<Value> = changes
        .into_iter()
        .map(|c| {
            json!({"at": keyward_model::time::format(c.at), "actor": c.actor,
                   "status": c.status, "note": c.note})
        })
        .collect();
    Ok(Json(json!({"finding": f, "changes": changes})))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    /// `open`, `acknowledged`, `false-positive` or `resolved`.
    status: String,
    note: Option<String>,
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
        (status = 200, description = "`finding`: the finding after the change", body = Value),
        (status = 400, description = "Malformed JSON or an unknown status", body = openapi::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than operator", body = openapi::ErrorBody),
        (status = 404, description = "No such finding", body = openapi::ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = openapi::ErrorBody),
        (status = 415, description = "`Content-Type` is not `application/json`", body = openapi::ErrorBody),
        (status = 422, description = "The JSON does not have the body's shape (missing or unknown field)", body = openapi::ErrorBody),
    )
)]
async fn finding_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<StatusBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, Role::Operator).await?;
    let Json(body) = body.map_err(json_rejection)?;
    let status = Status::parse(&body.status).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`status`: `{}` is not one of open, acknowledged, false-positive, resolved",
            body.status
        ))
    })?;
    if body
        .note
        .as_ref()
        .is_some_and(|n| n.len() > keyward_engine::MAX_NOTE_BYTES)
    {
        return Err(ApiError::bad_request(format!(
            "`note`: at most {} bytes",
            keyward_engine::MAX_NOTE_BYTES
        )));
    }
    let actor = caller.actor();
    let f = state
        .engine
        .write(move |e| set_status_audited(e, &id, status, actor, body.note.as_deref()))
        .await?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such finding"))?;
    Ok(Json(json!({"finding": f})))
}

/// Sets a finding's status (a false positive adapts the baseline) and audits it, for the
/// API and the dashboard alike; `None` when there is no such finding.
pub(crate) fn set_status_audited(
    e: &mut Engine,
    id: &str,
    status: Status,
    actor: String,
    note: Option<&str>,
) -> Result<Option<keyward_detect::Finding>, keyward_engine::EngineError> {
    let Some(before) = e.finding(id)? else {
        return Ok(None);
    };
    let at = now();
    let f = e.set_finding_status(id, status, &actor, note, at)?;
    e.store_mut().audit(&AuditEntry {
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
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = openapi::ErrorBody),
    )
)]
async fn tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Role::Admin).await?;
    let rows = state
        .engine
        .call(|e| e.store().tokens())
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
struct TokenBody {
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
        (status = 400, description = "Malformed JSON, an unknown role or a bad name", body = openapi::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = openapi::ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = openapi::ErrorBody),
        (status = 415, description = "`Content-Type` is not `application/json`", body = openapi::ErrorBody),
        (status = 422, description = "The JSON does not have the body's shape (missing or unknown field)", body = openapi::ErrorBody),
    )
)]
async fn create_token(
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
        .call(move |e| auth::create(e.store_mut(), role, body.name.trim(), &actor, now()))
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
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = openapi::ErrorBody),
    )
)]
async fn config(
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
struct AllowedAccountsBody {
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
        (status = 400, description = "An account id that is not 12 digits", body = openapi::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = openapi::ErrorBody),
        (status = 413, description = "Body larger than the limit", body = openapi::ErrorBody),
        (status = 422, description = "A missing or unknown field", body = openapi::ErrorBody),
    )
)]
async fn set_allowed_accounts(
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
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = openapi::ErrorBody),
        (status = 404, description = "No such active token", body = openapi::ErrorBody),
    )
)]
async fn revoke_token(
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
        .call(move |e| e.store_mut().revoke_token(&id, &audit))
        .await?
        .map_err(ApiError::internal)?;
    if !done {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such active token"));
    }
    Ok(Json(json!({"revoked": true})))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
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
        (status = 400, description = "An unknown query parameter or value", body = openapi::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = openapi::ErrorBody),
    )
)]
async fn audit_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Role::Admin).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let rows = state
        .engine
        .call(move |e| e.store().audit_log(limit))
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
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = openapi::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = openapi::ErrorBody),
        (status = 500, description = "The audit key or the anchor file cannot be read", body = openapi::ErrorBody),
    )
)]
async fn audit_verify(
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
            e.store().audit_verify(&anchors)
        })
        .await?
        .map_err(ApiError::internal)?;
    Ok(Json(json!(report)))
}

fn json_rejection(e: axum::extract::rejection::JsonRejection) -> ApiError {
    ApiError::new(e.status(), e.body_text())
}

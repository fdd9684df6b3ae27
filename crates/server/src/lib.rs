//! Keyward as a service: the authenticated HTTP API (`keyward serve`) and live inputs
//! (generic ingest, the Kubernetes audit webhook backend).
//!
//! The engine is single-writer: it lives on one thread of its own and requests hand it
//! closures ([`EngineHandle::call`]), so ingest through the server runs exactly the
//! pipeline the CLI runs and nothing needs the engine to be shared across threads.
//!
//! Invariants: every route that reads or changes state authenticates a bearer token and
//! asks the Cedar policies (`auth::decide`) before touching the engine; a 2xx on an ingest route means the events
//! were committed to the store and detection ran on them; every state change is audited.
//!
//! Layout: `state` (the engine handle, configuration, limits), `error` (the one error
//! answer), `auth` (tokens, roles, `authorize`), `api/` (one module per resource, the
//! ingest routes and the GitHub webhook), `dashboard` (server-rendered pages), `listen`
//! (the accept loop and its limits), `openapi`, `metrics`, `tls`; this file mounts the
//! routes.

mod access;
mod api;
pub mod auth;
pub mod broker;
pub mod dashboard;
mod error;
mod listen;
mod listing;
pub mod mcp;
pub mod metrics;
pub mod openapi;
mod respond;
mod state;
pub mod tls;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};

pub use api::audit::{AuditItem, audit_json};
pub use api::github;
pub use auth::{Caller, Role, authorize};
pub use error::{ApiError, ErrorBody};
pub use listen::{BACKLOG, ConnLimits, bind, serve};
use metrics::RouteLabel;
pub(crate) use state::now;
pub use state::{
    AppState, Config, DEFAULT_BODY_LIMIT, EngineHandle, IngestHook, IngestLimits, SMALL_BODY_LIMIT,
    SpawnError,
};

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
        .route("/ui/respond", get(dashboard::plans))
        .route("/ui/compliance", get(dashboard::compliance))
        .route("/ui/access", get(dashboard::access))
        .route("/ui/access/request", post(dashboard::access_request))
        .route(
            "/ui/access/requests/{id}/approve",
            post(dashboard::access_approve),
        )
        .route(
            "/ui/access/requests/{id}/deny",
            post(dashboard::access_deny),
        )
        .route(
            "/ui/access/grants/{id}/apply",
            post(dashboard::access_apply),
        )
        .route(
            "/ui/access/grants/{id}/revoke",
            post(dashboard::access_revoke),
        )
        .route("/ui/respond/plan", post(dashboard::create_plan))
        .route("/ui/respond/{id}", get(dashboard::plan))
        .route("/ui/respond/{id}/execute", post(dashboard::execute_plan))
        .route("/ui/respond/{id}/undo", post(dashboard::undo_plan))
        .route("/ui/assets/app.css", get(dashboard::css))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/healthz", get(api::health::healthz))
        .route("/readyz", get(api::health::readyz))
        // No token: the OpenAPI document holds no state (see `openapi::openapi_json`).
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/metrics", get(api::health::metrics_text))
        // MCP (JSON-RPC, not in the OpenAPI document): POST a request, GET and DELETE as
        // the transport defines them; every one authorized first.
        .route("/mcp", get(mcp::http).post(mcp::http).delete(mcp::http))
        .route(
            "/broker/.well-known/openid-configuration",
            get(api::broker::discovery),
        )
        .route("/broker/jwks", get(api::broker::jwks))
        .route("/broker/bundle", get(api::broker::bundle))
        .route("/broker/token", post(api::broker::token))
        .route("/broker/aws", post(api::broker::aws))
        .route("/broker/svid", post(api::broker::svid))
        .route("/broker/secrets/{name}", post(api::broker::secret))
        .route("/broker/leases/{id}/renew", post(api::broker::renew))
        .route("/broker/leases/{id}/revoke", post(api::broker::give_up))
        .route("/api/broker/leases", get(api::broker::leases))
        .route("/api/broker/leases/{id}", get(api::broker::lease))
        .route("/api/broker/leases/{id}/revoke", post(api::broker::revoke))
        .route("/api/identities", get(api::identities::identities))
        .route("/api/identities/{*id}", get(api::identities::identity))
        .route("/api/findings", get(api::findings::findings))
        .route("/api/findings/{id}", get(api::findings::finding))
        .route(
            "/api/findings/{id}/status",
            post(api::findings::finding_status),
        )
        .route(
            "/api/findings/{id}/exception",
            post(api::findings::finding_exception),
        )
        .route(
            "/api/respond/plans",
            get(api::respond::plans).post(api::respond::create_plan),
        )
        .route("/api/respond/plans/{id}", get(api::respond::plan))
        .route(
            "/api/respond/plans/{id}/evidence",
            get(api::respond::evidence),
        )
        .route(
            "/api/respond/plans/{id}/execute",
            post(api::respond::execute),
        )
        .route("/api/respond/plans/{id}/undo", post(api::respond::undo))
        .route("/api/access", get(api::govern::access))
        .route("/api/access/requests", post(api::access::create_request))
        .route(
            "/api/access/requests/{id}/approve",
            post(api::access::approve),
        )
        .route("/api/access/requests/{id}/deny", post(api::access::deny))
        .route("/api/access/grants/{id}/apply", post(api::access::apply))
        .route("/api/access/grants/{id}/revoke", post(api::access::revoke))
        .route("/api/compliance/{framework}", get(api::govern::compliance))
        .route("/api/ingest", post(api::ingest::generic))
        .route(
            "/api/webhooks/kubernetes-audit",
            post(api::ingest::kubernetes_audit),
        )
        .route("/api/webhooks/github", post(api::github::webhook))
        .route(
            "/api/tokens",
            get(api::admin::tokens).post(api::admin::create_token),
        )
        .route("/api/tokens/{id}/revoke", post(api::admin::revoke_token))
        .route("/api/audit", get(api::audit::audit_log))
        .route("/api/audit/verify", get(api::audit::audit_verify))
        .route("/api/config", get(api::admin::config))
        .route(
            "/api/config/allowed-accounts",
            put(api::admin::set_allowed_accounts),
        )
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

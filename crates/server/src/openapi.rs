//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers' `#[utoipa::path]`
//! annotations and served at `GET /api/openapi.json`.
//!
//! Only the JSON is served: no UI bundle is built in. Load the document in a viewer of your
//! own (Swagger UI, Scalar, Redoc, an IDE plugin) or feed it to a client generator.
//!
//! Invariant: every route in [`crate::router`] is listed in [`ApiDoc`]'s `paths`, and every
//! operation of a route that calls [`crate::authorize`] carries the `bearer` security
//! requirement (the server's integration tests check both against the real router).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The name of the bearer-token security scheme the operations refer to.
pub const BEARER: &str = "bearer";

/// The Keyward HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keyward API",
        version = env!("CARGO_PKG_VERSION"),
        description = "Keyward as a service: the identity inventory, findings and their triage, \
                       live event ingest (generic, Kubernetes audit webhook, GitHub webhook), API \
                       tokens and the audit log.\n\n\
                       Authentication: `Authorization: Bearer <token>` (tokens are `kw_` + 64 hex \
                       digits, created with `keyward token create` or `POST /api/tokens`). Each \
                       token is in a role; Cedar policies decide what it may do (the built-in ones: \
                       viewer < operator < admin, and each operation's description names the least \
                       role they need; `keyward policy` shows the set in force). A refusal is a 403 \
                       naming the deciding policies. Errors are `{\"error\": \"…\"}`."
    ),
    paths(
        crate::api::health::healthz,
        crate::api::health::readyz,
        crate::api::health::metrics_text,
        crate::api::identities::identities,
        crate::api::identities::identity,
        crate::api::findings::findings,
        crate::api::findings::finding,
        crate::api::findings::finding_status,
        crate::api::findings::finding_exception,
        crate::api::respond::create_plan,
        crate::api::respond::plans,
        crate::api::respond::plan,
        crate::api::respond::evidence,
        crate::api::respond::execute,
        crate::api::respond::undo,
        crate::api::govern::access,
        crate::api::access::create_request,
        crate::api::access::approve,
        crate::api::access::deny,
        crate::api::access::apply,
        crate::api::access::revoke,
        crate::api::govern::compliance,
        crate::api::ingest::generic,
        crate::api::ingest::kubernetes_audit,
        crate::api::github::webhook,
        crate::api::admin::tokens,
        crate::api::admin::create_token,
        crate::api::admin::revoke_token,
        crate::api::audit::audit_log,
        crate::api::audit::audit_verify,
        crate::api::admin::config,
        crate::api::admin::set_allowed_accounts,
        crate::api::broker::discovery,
        crate::api::broker::jwks,
        crate::api::broker::bundle,
        crate::api::broker::token,
        crate::api::broker::aws,
        crate::api::broker::svid,
        crate::api::broker::secret,
        crate::api::broker::renew,
        crate::api::broker::give_up,
        crate::api::broker::leases,
        crate::api::broker::lease,
        crate::api::broker::revoke,
        openapi_json,
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "health", description = "Liveness and readiness (no token)"),
        (name = "inventory", description = "Non-human identities"),
        (name = "findings", description = "Detection findings and their triage"),
        (name = "respond", description = "Containment plans: make (dry run), execute, undo, evidence"),
        (name = "govern", description = "Time-bound access (request, approve, deny, apply, revoke) and compliance scorecards"),
        (name = "ingest", description = "Live event inputs"),
        (name = "admin", description = "API tokens, the audit log and configuration"),
        (name = "broker", description = "The credential broker: workloads prove who they are with their own token or certificate and get short-lived credentials under leases; operators list and revoke leases"),
        (name = "meta", description = "Metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` HTTP security scheme the operations' `security` refers to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("kw_<64 hex digits>")
                    .description(Some(
                        "A Keyward API token: `Authorization: Bearer kw_…`. Its role (viewer, \
                         operator, admin) decides what it may do.",
                    ))
                    .build(),
            ),
        );
    }
}

/// An OpenAPI 3.1 document, in outline: what `GET /api/openapi.json` answers (see the
/// OpenAPI specification for the rest).
#[derive(ToSchema)]
#[expect(dead_code, reason = "a schema only: the answer is `ApiDoc` itself")]
struct OpenApiDocument {
    /// The OpenAPI version, `3.1.x`.
    openapi: String,
    info: OpenApiInfo,
    /// Operations by path.
    paths: BTreeMap<String, serde_json::Value>,
    /// Schemas and security schemes.
    components: Option<serde_json::Value>,
    tags: Option<Vec<serde_json::Value>>,
}

/// The API's title, version and description.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a schema only")]
struct OpenApiInfo {
    title: String,
    version: String,
    description: Option<String>,
}

/// The document as JSON text, built once.
fn document() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        // Serializing plain maps and strings cannot fail; an empty object is never served
        // in practice but keeps this free of panics.
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

/// `GET /api/openapi.json`: this document. It needs no token: it holds no state, only the
/// API's shape (which the source shows anyway), the same for every caller.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    summary = "The OpenAPI document",
    description = "This document (OpenAPI 3.1). No token needed: it holds no state. Load it in \
                   a viewer of your own; no UI is served.",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API", body = OpenApiDocument)
    )
)]
pub(crate) async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

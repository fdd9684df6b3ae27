//! Response plans: make one (operator), list and read them (viewer), read their evidence
//! (operator), execute and undo them (admin). Making a plan changes nothing on any
//! platform; executing needs the plan's id repeated in the body as confirmation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use keyward_engine::respond::PlanAsk;
use keyward_policy::Act;
use keyward_respond::plan::K8sStrategy;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{self, ApiError, json_rejection};

use crate::{AppState, authorize, now};

/// `POST /api/respond/plans`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanBody {
    /// A finding id (`kwf-…`) or an identity (canonical id, ARN, unique name).
    target: String,
    /// Also revoke what the identity created or changed from this instant (RFC 3339);
    /// defaults to the finding's first event when `target` is a finding.
    #[serde(default)]
    since: Option<String>,
    /// Globs of identities never to contain, beyond the built-in and stored ones.
    #[serde(default)]
    protect: Vec<String>,
    /// Contain a Kubernetes service account the blue-green way.
    #[serde(default)]
    blue_green: bool,
}

/// `POST /api/respond/plans/{id}/execute` and `…/undo`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunBody {
    /// The plan's id again: the confirmation.
    confirm: String,
}

/// A plan: `id`, `status`, `identity`, `workloads`, `notes`, and `steps[]` (`n`, `action`,
/// `target`, `why`, `precondition`, `command`, `undo`, `terraform`, `result`,
/// `undo_result`), as `keyward respond plan --format json` writes it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlanAnswer {
    /// Why the run stopped, when it did (a failed step, a missing connector).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[schema(value_type = Object)]
    plan: serde_json::Value,
}

/// `GET /api/respond/plans`: newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlanList {
    #[schema(value_type = Vec<Object>)]
    items: Vec<serde_json::Value>,
}

/// `GET /api/respond/plans/{id}/evidence`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EvidenceAnswer {
    /// The platform state before the first change, the identity's recent events and graph
    /// neighbourhood.
    #[schema(value_type = Object)]
    evidence: serde_json::Value,
    /// BLAKE3 of the stored document.
    hash: String,
    plan: String,
    /// RFC 3339.
    taken_at: String,
}

fn to_value(p: &keyward_respond::Plan) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(p).map_err(ApiError::internal)
}

#[utoipa::path(
    post,
    path = "/api/respond/plans",
    tag = "respond",
    summary = "Make a containment plan (a dry run)",
    description = "Builds the plan for a finding's identity or an identity — containment for its \
                   credential type, then blast-radius revocation of what it created since `since` — \
                   stores it (status `planned`) and audits it (`respond.plan`). Nothing touches a \
                   platform. Needs a bearer token with the **operator** role (operator or admin).",
    request_body = PlanBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "`plan`: the stored plan", body = PlanAnswer),
        (status = 400, description = "Malformed JSON, a bad `since`, a protected or unsupported identity", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than operator", body = error::ErrorBody),
        (status = 404, description = "No finding or identity matches `target`", body = error::ErrorBody),
        (status = 415, description = "`Content-Type` is not `application/json`", body = error::ErrorBody),
        (status = 422, description = "The JSON does not have the body's shape", body = error::ErrorBody),
    )
)]
pub(crate) async fn create_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<PlanBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<PlanAnswer>), ApiError> {
    let caller = authorize(&state, &headers, Act::Plan).await?;
    let Json(body) = body.map_err(json_rejection)?;
    let since = match body.since.as_deref() {
        Some(s) => Some(keyward_model::time::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!("`since`: `{s}` is not an RFC 3339 instant"))
        })?),
        None => None,
    };
    let actor = caller.actor();
    let plan = state
        .engine
        .write(move |e| {
            e.plan_response(&PlanAsk {
                everywhere: false,
                target: &body.target,
                since,
                now: now(),
                actor: &actor,
                protect: &body.protect,
                k8s: if body.blue_green {
                    K8sStrategy::BlueGreen
                } else {
                    K8sStrategy::Contain
                },
            })
        })
        .await?
        .map_err(|e| match e {
            keyward_engine::EngineError::Plan(p) => ApiError::bad_request(p.to_string()),
            keyward_engine::EngineError::Respond(m) if m.starts_with("no finding or identity") => {
                ApiError::new(StatusCode::NOT_FOUND, m)
            }
            keyward_engine::EngineError::Respond(m) => ApiError::bad_request(m),
            other => ApiError::internal(other),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(PlanAnswer {
            error: None,
            plan: to_value(&plan)?,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/api/respond/plans",
    tag = "respond",
    summary = "Response plans, newest first",
    description = "Needs a bearer token with the **viewer** role (any role).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`items`: plans", body = PlanList),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = error::ErrorBody),
    )
)]
pub(crate) async fn plans(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<PlanList>, ApiError> {
    authorize(&state, &headers, Act::View).await?;
    let plans = state
        .engine
        .call(|e| e.response_plans(super::MAX_PAGE))
        .await?
        .map_err(ApiError::internal)?;
    let items = plans.iter().map(to_value).collect::<Result<_, _>>()?;
    Ok(Json(PlanList { items }))
}

#[utoipa::path(
    get,
    path = "/api/respond/plans/{id}",
    tag = "respond",
    summary = "One plan, with each step's result",
    description = "Needs a bearer token with the **viewer** role (any role).",
    params(("id" = String, Path, description = "Plan id (`rp-…`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`plan`", body = PlanAnswer),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than viewer", body = error::ErrorBody),
        (status = 404, description = "No such plan", body = error::ErrorBody),
    )
)]
pub(crate) async fn plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PlanAnswer>, ApiError> {
    authorize(&state, &headers, Act::View).await?;
    let plan = state
        .engine
        .call(move |e| e.response_plan(&id))
        .await?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such plan"))?;
    Ok(Json(PlanAnswer {
        error: None,
        plan: to_value(&plan)?,
    }))
}

#[utoipa::path(
    get,
    path = "/api/respond/plans/{id}/evidence",
    tag = "respond",
    summary = "A plan's forensic evidence",
    description = "The platform state of the plan's targets read before the first change, and \
                   the identity's recent events and graph neighbourhood; written once, never \
                   changed. Needs a bearer token with the **operator** role (operator or admin).",
    params(("id" = String, Path, description = "Plan id (`rp-…`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`evidence`, its `hash` and `taken_at`", body = EvidenceAnswer),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than operator", body = error::ErrorBody),
        (status = 404, description = "No such plan, or it has not been executed", body = error::ErrorBody),
    )
)]
pub(crate) async fn evidence(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<EvidenceAnswer>, ApiError> {
    authorize(&state, &headers, Act::Plan).await?;
    let ev = state
        .engine
        .call(move |e| e.response_evidence(&id))
        .await?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no evidence for this plan"))?;
    Ok(Json(EvidenceAnswer {
        evidence: serde_json::from_str(&ev.doc).map_err(ApiError::internal)?,
        hash: ev.hash,
        plan: ev.plan_id,
        taken_at: keyward_model::time::format(ev.taken_at),
    }))
}

async fn run(
    state: AppState,
    headers: HeaderMap,
    id: String,
    body: Result<Json<RunBody>, axum::extract::rejection::JsonRejection>,
    undo: bool,
) -> Result<Json<PlanAnswer>, ApiError> {
    let caller = crate::auth::authenticate(&state, &headers).await?;
    let Json(body) = body.map_err(json_rejection)?;
    if body.confirm != id {
        return Err(ApiError::bad_request(
            "`confirm` must repeat the plan's id: nothing was run",
        ));
    }
    // Decided on the plan's identity, so a policy can scope execution (by account,
    // namespace, owning team, environment, risk).
    let on = crate::respond::plan_target(&state.engine, &id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such plan"))?;
    crate::auth::decide(&state, &caller, &headers, Act::Execute, on.0, on.1).await?;
    let ran = crate::respond::run(&state.engine, id, caller.actor(), undo)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such plan"))?;
    Ok(Json(PlanAnswer {
        error: ran.error,
        plan: to_value(&ran.plan)?,
    }))
}

#[utoipa::path(
    post,
    path = "/api/respond/plans/{id}/execute",
    tag = "respond",
    summary = "Execute a plan against the platforms",
    description = "Takes the forensic snapshot, then runs each step through the AWS or Kubernetes \
                   connector and reads its effect back; a failed step stops the plan (`error` \
                   says which; the steps before it stay in effect). Every step is audited with \
                   the plan id. Needs a bearer token with the **admin** role and `confirm` = the plan id.",
    params(("id" = String, Path, description = "Plan id (`rp-…`)")),
    request_body = RunBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`plan` with each step's result; `error` when a step failed", body = PlanAnswer),
        (status = 400, description = "`confirm` is not the plan id", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
        (status = 404, description = "No such plan", body = error::ErrorBody),
        (status = 409, description = "The plan's status does not allow it (already executed, undone)", body = error::ErrorBody),
    )
)]
pub(crate) async fn execute(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<RunBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<PlanAnswer>, ApiError> {
    run(state, headers, id, body, false).await
}

#[utoipa::path(
    post,
    path = "/api/respond/plans/{id}/undo",
    tag = "respond",
    summary = "Undo an executed plan",
    description = "Undoes each executed step, last first, from what it recorded (the bindings \
                   removed, the trust policy before); each undo is verified and audited. Needs a \
                   bearer token with the **admin** role and `confirm` = the plan id.",
    params(("id" = String, Path, description = "Plan id (`rp-…`)")),
    request_body = RunBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`plan` with each step's undo result; `error` when one failed", body = PlanAnswer),
        (status = 400, description = "`confirm` is not the plan id", body = error::ErrorBody),
        (status = 401, description = "No valid bearer token (`WWW-Authenticate: Bearer`)", body = error::ErrorBody),
        (status = 403, description = "The token's role is weaker than admin", body = error::ErrorBody),
        (status = 404, description = "No such plan", body = error::ErrorBody),
        (status = 409, description = "The plan's status does not allow it (never executed)", body = error::ErrorBody),
    )
)]
pub(crate) async fn undo(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<RunBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<PlanAnswer>, ApiError> {
    run(state, headers, id, body, true).await
}

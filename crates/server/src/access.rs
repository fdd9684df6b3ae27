//! Time-bound access from the server (the API and the dashboard's buttons): requests,
//! approvals, denials, and applying or revoking an approved grant through the connectors.
//! Each is decided by the policies on the grantee (approvals with the requester in the
//! context, so nobody approves their own) and audited like `keyward access`. Break-glass
//! grants stay with `keyward access grant --break-glass` (self-granted at a terminal, with
//! its alert and review).

use axum::http::{HeaderMap, StatusCode};
use keyward_engine::EngineError;
use keyward_engine::access::AccessAsk;
use keyward_govern::access::{
    self as model, AccessError, End, Entitlement, Grant, GrantState, Request,
};
use keyward_policy::{Act, Resource, Situation, Surface};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{Caller, decide};
use crate::{ApiError, AppState, now};

/// A request for access (`POST /api/access/requests`, the dashboard's form).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AskBody {
    /// Who receives it: an IAM user or role (ARN, `user/NAME`, `role/NAME`), a service
    /// account (`NAMESPACE/serviceaccount/NAME`), or a name the inventory knows.
    pub to: String,
    /// A managed IAM policy ARN attached to the user or role.
    #[serde(default)]
    pub policy: Option<String>,
    /// An IAM group the user is added to.
    #[serde(default)]
    pub group: Option<String>,
    /// A Kubernetes role bound to the service account (`NAME`, `role/NAME`, `clusterrole/NAME`).
    #[serde(default)]
    pub role: Option<String>,
    /// With `role`: a RoleBinding in this namespace (else a ClusterRoleBinding).
    #[serde(default)]
    pub namespace: Option<String>,
    /// How long once applied: `30m`, `2h`, `1d` (at most 7d).
    #[serde(rename = "for")]
    pub duration: String,
    pub reason: String,
}

/// What went wrong, as an answer: a missing request or grant is 404, self-approval 403, a
/// state that does not allow it 409, the rest 400.
pub(crate) fn error(e: EngineError) -> ApiError {
    match &e {
        EngineError::Access(a) => {
            let status = match a {
                AccessError::NoRequest(_) => StatusCode::NOT_FOUND,
                AccessError::SelfApproval { .. } | AccessError::SelfReview { .. } => {
                    StatusCode::FORBIDDEN
                }
                AccessError::Transition { .. } => StatusCode::CONFLICT,
                AccessError::BadDuration(_)
                | AccessError::TooLong { .. }
                | AccessError::TooShort(_)
                | AccessError::BadGrantee(_)
                | AccessError::BadRole(_)
                | AccessError::Mismatch { .. }
                | AccessError::NoReason
                | AccessError::NoEntitlement
                | AccessError::NoNotes => StatusCode::BAD_REQUEST,
            };
            ApiError::new(status, a.to_string())
        }
        _ => ApiError::internal(e),
    }
}

/// The policy's decision on `action` on grantee `id` (its facts from the inventory).
async fn allowed(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    action: Act,
    id: String,
    situation: Situation,
) -> Result<(), ApiError> {
    let (resource, situation) = state
        .engine
        .call(move |e| {
            let mut s = situation;
            let r = e.policy_resource(&id, &mut s)?;
            Ok::<(Resource, Situation), EngineError>((r, s))
        })
        .await?
        .map_err(ApiError::internal)?;
    decide(state, caller, headers, action, resource, situation).await?;
    Ok(())
}

fn on(surface: Surface) -> Situation {
    Situation {
        surface,
        ..Situation::default()
    }
}

/// Stores a request by `caller` (`plan` on the grantee: asking changes nothing).
pub(crate) async fn request(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    surface: Surface,
    body: AskBody,
) -> Result<Request, ApiError> {
    let duration =
        model::duration(&body.duration, model::Path::Standard).map_err(|e| error(e.into()))?;
    let entitlement = Entitlement::from_parts(
        body.policy.as_deref(),
        body.group.as_deref(),
        body.role.as_deref(),
        body.namespace.as_deref(),
    )
    .map_err(|e| error(e.into()))?;
    let to = body.to.clone();
    let grantee = state
        .engine
        .call(move |e| e.grantee(&to))
        .await?
        .map_err(error)?;
    let mut s = on(surface);
    s.duration = Some(duration);
    allowed(state, caller, headers, Act::Plan, grantee.id(), s).await?;
    let actor = caller.actor();
    state
        .engine
        .write(move |e| {
            let ask = AccessAsk {
                to: &body.to,
                entitlement,
                duration,
                reason: &body.reason,
            };
            e.request_access(&ask, &actor, now())
        })
        .await?
        .map_err(error)
}

/// Approves request `id` as `caller` (`approve` on the grantee, the requester in the
/// context): it becomes a planned grant.
pub(crate) async fn approve(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    surface: Surface,
    id: String,
) -> Result<(Request, Grant), ApiError> {
    let lookup = id.clone();
    let r = state
        .engine
        .call(move |e| e.pending_request(&lookup))
        .await?
        .map_err(error)?;
    r.may_approve(&caller.actor())
        .map_err(|e| error(e.into()))?;
    let mut s = on(surface);
    s.requester = Some(r.requester.clone());
    s.duration = Some(r.duration);
    allowed(state, caller, headers, Act::Approve, r.grantee.id(), s).await?;
    let actor = caller.actor();
    let (r, g, _) = state
        .engine
        .write(move |e| e.approve_request(&id, &actor, now()))
        .await?
        .map_err(error)?;
    Ok((r, g))
}

/// Denies request `id` (withdrawn, when `caller` made it; else an approval decision).
pub(crate) async fn deny(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    surface: Surface,
    id: String,
    reason: String,
) -> Result<Request, ApiError> {
    let lookup = id.clone();
    let r = state
        .engine
        .call(move |e| e.pending_request(&lookup))
        .await?
        .map_err(error)?;
    if r.requester != caller.actor() {
        let mut s = on(surface);
        s.requester = Some(r.requester.clone());
        allowed(state, caller, headers, Act::Approve, r.grantee.id(), s).await?;
    }
    let actor = caller.actor();
    state
        .engine
        .write(move |e| e.deny_request(&id, &actor, &reason, now()))
        .await?
        .map_err(error)
}

async fn stored(state: &AppState, id: String) -> Result<Grant, ApiError> {
    let missing = format!("no grant `{id}`");
    state
        .engine
        .call(move |e| e.access_grant(&id))
        .await?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, missing))
}

async fn plan_of(state: &AppState, g: &Grant) -> Result<keyward_respond::Plan, ApiError> {
    let (id, missing) = (
        g.plan.clone(),
        format!("grant {}: its plan is not stored", g.id),
    );
    state
        .engine
        .call(move |e| e.response_plan(&id))
        .await?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, missing))
}

/// Applies a planned (or failed) grant through the connectors (`grant` on the grantee);
/// it lasts its duration from now. The grant as it stands, and the error that stopped it.
pub(crate) async fn apply(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    surface: Surface,
    id: String,
) -> Result<(Grant, Option<String>), ApiError> {
    let g = stored(state, id).await?;
    if g.break_glass {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "a break-glass grant is applied by `keyward access grant --break-glass` (with its alert and review)",
        ));
    }
    match g.state {
        GrantState::Planned | GrantState::Failed => {}
        GrantState::Active | GrantState::Expired | GrantState::Revoked => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("grant {} is {}: nothing to apply", g.id, g.state.as_str()),
            ));
        }
    }
    let mut s = on(surface);
    s.duration = Some(g.duration);
    s.requester = Some(g.requester.clone());
    allowed(state, caller, headers, Act::Grant, g.grantee.id(), s).await?;
    let plan = plan_of(state, &g).await?;
    let ran = crate::respond::run_plan(&state.engine, plan, caller.actor(), false).await?;
    let failed = ran.error.clone();
    let actor = caller.actor();
    let g = state
        .engine
        .write(move |e| e.grant_applied(g, ran.error.map_or(Ok(()), Err), &actor, now()))
        .await?
        .map_err(error)?;
    Ok((g, failed))
}

/// Revokes a grant before it expires (`grant` with `revoke` in the context): its plan is
/// undone and read back.
pub(crate) async fn revoke(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    surface: Surface,
    id: String,
) -> Result<(Grant, Option<String>), ApiError> {
    let g = stored(state, id).await?;
    if g.state.ended() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("grant {} is {} already", g.id, g.state.as_str()),
        ));
    }
    let mut s = on(surface);
    s.revoke = true;
    allowed(state, caller, headers, Act::Grant, g.grantee.id(), s).await?;
    let plan = plan_of(state, &g).await?;
    let undone = match plan.status {
        keyward_respond::PlanStatus::Planned | keyward_respond::PlanStatus::Undone => Ok(()),
        keyward_respond::PlanStatus::Executing
        | keyward_respond::PlanStatus::Executed
        | keyward_respond::PlanStatus::Failed
        | keyward_respond::PlanStatus::UndoFailed => {
            let ran = crate::respond::run_plan(&state.engine, plan, caller.actor(), true).await?;
            ran.error.map_or(Ok(()), Err)
        }
    };
    let failed = undone.as_ref().err().cloned();
    let (actor, gid) = (caller.actor(), g.id.clone());
    let t = now();
    let g = state
        .engine
        .write(move |e| e.grant_ended(&gid, End::Revoked, t, undone, &actor, t))
        .await?
        .map_err(error)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "the grant is no longer stored"))?;
    Ok((g, failed))
}

//! The access page: who holds what until when (time-bound grants, break-glass ones marked),
//! the requests waiting for someone else's approval, and the post-incident reviews still
//! open; with the forms the policies let the caller use — ask for access, approve or deny
//! someone else's request, apply an approved grant, revoke one early (`crate::access`
//! decides and audits each; break-glass stays with `keyward access grant --break-glass`).

use keyward_govern::access::{GrantState, RequestState, ReviewState};

use super::*;

pub(super) struct GrantRow {
    id: String,
    grantee: String,
    entitlement: String,
    state: &'static str,
    class: &'static str,
    /// Planned or failed, not break-glass: it can be applied from here.
    applicable: bool,
    ended: bool,
    break_glass: bool,
    requester: String,
    approver: String,
    reason: String,
    expires: String,
    error: String,
}

pub(super) struct RequestRow {
    id: String,
    grantee: String,
    entitlement: String,
    requester: String,
    reason: String,
    at: String,
}

pub(super) struct ReviewRow {
    grant: String,
    grantee: String,
    opened_by: String,
    at: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "access.html")]
pub(super) struct AccessPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    as_of: String,
    active: usize,
    grants: Vec<GrantRow>,
    requests: Vec<RequestRow>,
    reviews: Vec<ReviewRow>,
    may_request: bool,
    may_approve: bool,
    may_apply: bool,
    may_revoke: bool,
    me: String,
}

fn at(ms: Millis) -> String {
    keyward_model::time::format(ms)
}

pub(crate) async fn access(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ui = match signed_in(&state, &headers).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    let data = state
        .engine
        .call(move |e| -> Result<AccessPage, PageError> {
            let mut grants = e.access_grants()?;
            // The live ones first, soonest to expire first; then the ended, newest first.
            grants.sort_by_key(|g| (g.state.ended(), g.expires_at));
            let active = grants
                .iter()
                .filter(|g| g.state == GrantState::Active)
                .count();
            let grants = grants
                .into_iter()
                .take(200)
                .map(|g| GrantRow {
                    id: g.id,
                    grantee: g.grantee.id(),
                    entitlement: g.entitlement.describe(),
                    state: g.state.as_str(),
                    class: match g.state {
                        GrantState::Active => "warn",
                        GrantState::Failed => "error",
                        GrantState::Planned | GrantState::Expired | GrantState::Revoked => "muted",
                    },
                    applicable: !g.break_glass
                        && matches!(g.state, GrantState::Planned | GrantState::Failed),
                    ended: g.state.ended(),
                    break_glass: g.break_glass,
                    requester: g.requester,
                    approver: g.approver.unwrap_or_default(),
                    reason: g.reason,
                    expires: at(g.expires_at),
                    error: g.last_error.unwrap_or_default(),
                })
                .collect();
            let requests = e
                .access_requests()?
                .into_iter()
                .filter(|r| r.state == RequestState::Pending)
                .map(|r| RequestRow {
                    id: r.id,
                    grantee: r.grantee.id(),
                    entitlement: r.entitlement.describe(),
                    requester: r.requester,
                    reason: r.reason,
                    at: at(r.requested_at),
                })
                .collect();
            let reviews = e
                .access_reviews()?
                .into_iter()
                .filter(|r| r.state == ReviewState::Open)
                .map(|r| ReviewRow {
                    grant: r.grant,
                    grantee: r.grantee,
                    opened_by: r.opened_by,
                    at: at(r.opened_at),
                    reason: r.reason,
                })
                .collect();
            Ok(AccessPage {
                nav_user: None,
                nav: "access",
                csrf: String::new(),
                as_of: at(now()),
                active,
                grants,
                requests,
                reviews,
                may_request: false,
                may_approve: false,
                may_apply: false,
                may_revoke: false,
                me: String::new(),
            })
        })
        .await;
    match data {
        Ok(Ok(mut page)) => {
            page.nav_user = Some(ui.caller.label());
            page.csrf = ui.csrf;
            page.may_request = ui.may.plan;
            page.may_approve = ui.may.approve;
            page.may_apply = ui.may.grant;
            page.may_revoke = ui.may.revoke;
            page.me = ui.caller.actor();
            render(&page)
        }
        Ok(Err(e)) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct RequestForm {
    csrf: String,
    to: String,
    /// `policy`, `group` or `role`.
    kind: String,
    value: String,
    #[serde(default)]
    namespace: String,
    #[serde(rename = "for")]
    duration: String,
    reason: String,
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: String,
}

/// Back to the access page once done; the error page when not.
fn done<T>(r: Result<T, crate::ApiError>) -> Response {
    match r {
        Ok(_) => secure(Redirect::to("/ui/access").into_response()),
        Err(e) => page_error(e.status, &e.message),
    }
}

fn given(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

pub(crate) async fn access_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<RequestForm>,
) -> Response {
    let ui = match signed_in_form(&state, &headers, &form.csrf).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    let value = given(&form.value);
    let pick = |k: &str| if form.kind == k { value.clone() } else { None };
    let body = crate::access::AskBody {
        to: form.to.trim().to_owned(),
        policy: pick("policy"),
        group: pick("group"),
        role: pick("role"),
        namespace: given(&form.namespace),
        duration: form.duration.trim().to_owned(),
        reason: form.reason.clone(),
    };
    done(crate::access::request(&state, &ui.caller, &headers, Surface::Dashboard, body).await)
}

pub(crate) async fn access_approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let ui = match signed_in_form(&state, &headers, &form.csrf).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    done(crate::access::approve(&state, &ui.caller, &headers, Surface::Dashboard, id).await)
}

pub(crate) async fn access_deny(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let ui = match signed_in_form(&state, &headers, &form.csrf).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    let surface = Surface::Dashboard;
    done(crate::access::deny(&state, &ui.caller, &headers, surface, id, form.reason).await)
}

async fn run_grant(
    state: AppState,
    headers: HeaderMap,
    id: String,
    form: CsrfForm,
    revoke: bool,
) -> Response {
    let ui = match signed_in_form(&state, &headers, &form.csrf).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    if form.confirm.trim() != id {
        return page_error(
            StatusCode::BAD_REQUEST,
            "Type the grant's id to confirm: nothing was run.",
        );
    }
    let surface = Surface::Dashboard;
    let ran = if revoke {
        crate::access::revoke(&state, &ui.caller, &headers, surface, id).await
    } else {
        crate::access::apply(&state, &ui.caller, &headers, surface, id).await
    };
    match ran {
        Ok((_, Some(e))) => page_error(StatusCode::BAD_GATEWAY, &e),
        other => done(other),
    }
}

pub(crate) async fn access_apply(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    run_grant(state, headers, id, form, false).await
}

pub(crate) async fn access_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    run_grant(state, headers, id, form, true).await
}

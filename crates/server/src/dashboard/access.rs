//! The access page: who holds what until when (time-bound grants, break-glass ones marked),
//! the requests waiting for someone else's approval, and the post-incident reviews still
//! open. Read-only: granting, approving and revoking are `keyward access`.

use keyward_govern::access::{GrantState, RequestState, ReviewState};

use super::*;

pub(super) struct GrantRow {
    id: String,
    grantee: String,
    entitlement: String,
    state: &'static str,
    class: &'static str,
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
            })
        })
        .await;
    match data {
        Ok(Ok(mut page)) => {
            page.nav_user = Some(ui.caller.label());
            page.csrf = ui.csrf;
            render(&page)
        }
        Ok(Err(e)) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => e.into_response(),
    }
}

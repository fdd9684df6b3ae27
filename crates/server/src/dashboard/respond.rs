//! Response plans on the dashboard: a "Plan containment" button on findings and identities
//! (operator), the plan page with its steps, commands and results, and execute / undo
//! (admin) behind a confirmation step: the plan's id typed again.

use super::*;
use keyward_engine::respond::PlanAsk;
use keyward_respond::plan::K8sStrategy;
use keyward_respond::{Plan, PlanStatus};

#[derive(Deserialize)]
pub(crate) struct PlanForm {
    csrf: String,
    /// A finding id or an identity id.
    target: String,
    #[serde(default)]
    blue_green: String,
}

#[derive(Deserialize)]
pub(crate) struct RunForm {
    csrf: String,
    /// The plan id typed again.
    #[serde(default)]
    confirm: String,
}

pub(super) struct StepView {
    n: usize,
    action: &'static str,
    target: String,
    why: String,
    precondition: String,
    command: Vec<String>,
    undo: Vec<String>,
    terraform: String,
    result: String,
    result_ok: bool,
    undo_result: String,
}

#[derive(Template)]
#[template(path = "plan.html")]
pub(super) struct PlanPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    id: String,
    status: &'static str,
    identity: String,
    identity_q: String,
    finding: String,
    since: String,
    created: String,
    created_by: String,
    workloads: Vec<String>,
    notes: Vec<String>,
    evidence: String,
    steps: Vec<StepView>,
    can_execute: bool,
    can_undo: bool,
    message: String,
}

#[derive(Template)]
#[template(path = "plans.html")]
pub(super) struct PlansPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    rows: Vec<(String, String, &'static str, String, usize)>,
}

fn result_text(r: &Option<keyward_respond::StepResult>) -> (String, bool) {
    match r {
        None => (String::new(), false),
        Some(r) => {
            let seen = r
                .verified
                .as_ref()
                .map(|v| format!(" — {}", v.observed))
                .unwrap_or_default();
            (
                format!(
                    "{} {}{seen}",
                    if r.ok { "ok:" } else { "FAILED:" },
                    r.message
                ),
                r.ok,
            )
        }
    }
}

fn plan_page(p: &Plan, ui: &Ui, message: String) -> PlanPage {
    let admin = ui.may.execute;
    PlanPage {
        nav_user: Some(ui.caller.label()),
        nav: "respond",
        csrf: ui.csrf.clone(),
        id: p.id.clone(),
        status: p.status.as_str(),
        identity_q: q(&p.identity),
        identity: p.identity.clone(),
        finding: p.finding.clone().unwrap_or_default(),
        since: p.since.map(keyward_model::time::format).unwrap_or_default(),
        created: keyward_model::time::format(p.created_at),
        created_by: p.created_by.clone(),
        workloads: p.workloads.clone(),
        notes: p.notes.clone(),
        evidence: p.evidence.clone().unwrap_or_default(),
        steps: p
            .steps
            .iter()
            .map(|s| {
                let (result, result_ok) = result_text(&s.result);
                StepView {
                    n: s.n,
                    action: s.action.name(),
                    target: s.target.clone(),
                    why: s.why.clone(),
                    precondition: s.precondition.clone(),
                    command: s.command.clone(),
                    undo: s.undo.clone(),
                    terraform: s.terraform.clone().unwrap_or_default(),
                    result,
                    result_ok,
                    undo_result: result_text(&s.undo_result).0,
                }
            })
            .collect(),
        can_execute: admin && matches!(p.status, PlanStatus::Planned | PlanStatus::Failed),
        can_undo: admin
            && matches!(
                p.status,
                PlanStatus::Executed | PlanStatus::Failed | PlanStatus::UndoFailed
            ),
        message,
    }
}

/// `GET /ui/respond`: the plans, newest first.
pub(crate) async fn plans(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ui = match signed_in(&state, &headers).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    match state.engine.call(|e| e.response_plans(PAGE * 4)).await {
        Ok(Ok(plans)) => render(&PlansPage {
            nav_user: Some(ui.caller.label()),
            nav: "respond",
            csrf: ui.csrf,
            rows: plans
                .iter()
                .map(|p| {
                    (
                        p.id.clone(),
                        keyward_model::time::format(p.created_at),
                        p.status.as_str(),
                        p.identity.clone(),
                        p.steps.len(),
                    )
                })
                .collect(),
        }),
        Ok(Err(e)) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => e.into_response(),
    }
}

/// `GET /ui/respond/{id}`: one plan.
pub(crate) async fn plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ui = match signed_in(&state, &headers).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    match state.engine.call(move |e| e.response_plan(&id)).await {
        Ok(Ok(Some(p))) => render(&plan_page(&p, &ui, String::new())),
        Ok(Ok(None)) => page_error(StatusCode::NOT_FOUND, "No such plan."),
        Ok(Err(e)) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => e.into_response(),
    }
}

/// `POST /ui/respond/plan`: make a plan (a dry run) and show it.
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<PlanForm>,
) -> Response {
    let ui = match signed_in_form(&state, &headers, &form.csrf).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    if let Err(r) = ui.allowed(&state, &headers, Act::Plan, None).await {
        return r;
    }
    let actor = ui.caller.actor();
    let made = state
        .engine
        .write(move |e| {
            e.plan_response(&PlanAsk {
                everywhere: false,
                target: &form.target,
                since: None,
                now: now(),
                actor: &actor,
                protect: &[],
                k8s: if form.blue_green.is_empty() {
                    K8sStrategy::Contain
                } else {
                    K8sStrategy::BlueGreen
                },
            })
        })
        .await;
    match made {
        // The plan's page, by its id: a Location header of our own making.
        Ok(Ok(p)) if p.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
            Redirect::to(&format!("/ui/respond/{}", p.id)).into_response()
        }
        Ok(Ok(_)) => page_error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected plan id"),
        Ok(Err(e)) => page_error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => e.into_response(),
    }
}

async fn run(
    state: AppState,
    headers: HeaderMap,
    id: String,
    form: RunForm,
    undo: bool,
) -> Response {
    let ui = match signed_in_form(&state, &headers, &form.csrf).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    if form.confirm.trim() != id {
        return page_error(
            StatusCode::BAD_REQUEST,
            "Type the plan's id to confirm: nothing was run.",
        );
    }
    let on = match crate::respond::plan_target(&state.engine, &id).await {
        Ok(Some(on)) => on,
        Ok(None) => return page_error(StatusCode::NOT_FOUND, "No such plan."),
        Err(e) => return e.into_response(),
    };
    if let Err(r) = ui.allowed(&state, &headers, Act::Execute, Some(on)).await {
        return r;
    }
    match crate::respond::run(&state.engine, id, ui.caller.actor(), undo).await {
        Ok(Some(ran)) => {
            let verb = if undo { "undo" } else { "execution" };
            let message = match ran.error {
                Some(e) => format!("The {verb} stopped: {e}"),
                None => format!(
                    "The {verb} finished: the plan is {}.",
                    ran.plan.status.as_str()
                ),
            };
            render(&plan_page(&ran.plan, &ui, message))
        }
        Ok(None) => page_error(StatusCode::NOT_FOUND, "No such plan."),
        Err(e) => page_error(e.status, &e.message),
    }
}

/// `POST /ui/respond/{id}/execute`.
pub(crate) async fn execute(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RunForm>,
) -> Response {
    run(state, headers, id, form, false).await
}

/// `POST /ui/respond/{id}/undo`.
pub(crate) async fn undo(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RunForm>,
) -> Response {
    run(state, headers, id, form, true).await
}

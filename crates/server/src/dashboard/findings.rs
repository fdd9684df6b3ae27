//! The findings queue and triage from it; a posture finding shows its remediation.

use super::*;
use keyward_detect::remediation::Remediation;

#[derive(Deserialize, Default, Clone)]
pub(crate) struct FindingsQuery {
    #[serde(default)]
    severity: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    done: String,
}

impl FindingsQuery {
    fn href(&self, offset: usize) -> String {
        page_href(
            "/ui/findings",
            &[
                ("severity", &self.severity),
                ("status", &self.status),
                ("kind", &self.kind),
                ("identity", &self.identity),
            ],
            offset,
        )
    }
}

pub(super) struct FindingView {
    id: String,
    severity: &'static str,
    kind: &'static str,
    status: &'static str,
    identity: String,
    identity_q: String,
    title: String,
    rule: String,
    summary: String,
    attack: Vec<(String, String)>,
    events: Vec<String>,
    count: u64,
    last_seen: String,
    /// Its remediation's steps (posture findings), and the Terraform change.
    fix: Vec<FixStep>,
    terraform: Option<String>,
}

/// One remediation step as the page shows it: the commands one per line, in a `<pre>`.
pub(super) struct FixStep {
    summary: String,
    after_days: Option<u32>,
    commands: String,
}

#[derive(Template)]
#[template(path = "findings.html")]
pub(super) struct FindingsPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    operator: bool,
    back: String,
    message: Option<String>,
    severities: Vec<(String, bool)>,
    statuses: Vec<(String, bool)>,
    kinds: Vec<(String, bool)>,
    identity: String,
    rows: Vec<FindingView>,
    total: usize,
    first: usize,
    last: usize,
    prev: Option<String>,
    next: Option<String>,
}

pub(super) fn finding_view(f: Finding) -> FindingView {
    let fix = Remediation::of(&f).unwrap_or_default();
    FindingView {
        fix: fix
            .steps
            .into_iter()
            .map(|s| FixStep {
                summary: s.summary,
                after_days: s.after_days,
                commands: s.commands.join("\n"),
            })
            .collect(),
        terraform: fix.terraform,
        severity: f.severity.as_str(),
        kind: f.kind.as_str(),
        status: f.status.as_str(),
        identity_q: f.identity.as_deref().map(q).unwrap_or_default(),
        identity: f.identity.unwrap_or_default(),
        title: f.title,
        rule: f.rule_id,
        summary: f.summary,
        attack: f
            .attack
            .into_iter()
            .map(|a| {
                let path = a.replace('.', "/");
                (a, path)
            })
            .collect(),
        count: f.count,
        events: f.events.into_iter().rev().take(3).collect(),
        last_seen: keyward_model::time::format(f.last_seen),
        id: f.id,
    }
}

/// Status choices of the queue's filter; the default is the work still to do.
pub(super) const STATUS_CHOICES: [&str; 7] = [
    "open,acknowledged",
    "open",
    "acknowledged",
    "expected",
    "false-positive",
    "resolved",
    "all",
];

pub(crate) async fn findings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(f): Query<FindingsQuery>,
) -> Response {
    let ui = match signed_in(&state, &headers).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    let status = if f.status.is_empty() {
        "open,acknowledged"
    } else {
        f.status.as_str()
    };
    let parsed = (|| {
        let statuses = if status == "all" {
            Vec::new()
        } else {
            status
                .split(',')
                .map(|x| crate::api::parse_one(x, "status", Status::parse))
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok::<_, crate::ApiError>((
            statuses,
            choice(&f.severity, "severity", Severity::parse)?,
            choice(&f.kind, "kind", Kind::parse)?,
        ))
    })();
    let (statuses, min_severity, kind) = match parsed {
        Ok(p) => p,
        Err(e) => return page_error(e.status, &e.message),
    };
    let fq = FindingQuery {
        since: None,
        min_severity,
        identity: (!f.identity.is_empty()).then(|| f.identity.clone()),
        kind,
        statuses,
    };
    let mut all = match state.engine.call(move |e| e.findings(&fq)).await {
        Ok(Ok(all)) => all,
        Ok(Err(e)) => return page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => return e.into_response(),
    };
    // The queue: worst first, then the most recent.
    all.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.id.cmp(&b.id))
    });
    let total = all.len();
    let rows: Vec<FindingView> = all
        .into_iter()
        .skip(f.offset)
        .take(PAGE)
        .map(finding_view)
        .collect();
    let shown = rows.len();
    let message = match f.done.as_str() {
        "" => None,
        d => Some(format!("Finding marked {d}.")),
    };
    let page = FindingsPage {
        nav_user: Some(ui.caller.label()),
        nav: "findings",
        operator: ui.may.triage,
        back: f.href(f.offset),
        csrf: ui.csrf,
        message,
        severities: options(Severity::ALL.iter().rev().map(|s| s.as_str()), &f.severity),
        statuses: options(STATUS_CHOICES, status),
        kinds: options(["threat", "posture"], &f.kind),
        identity: f.identity.clone(),
        rows,
        total,
        first: f.offset + 1,
        last: f.offset + shown,
        prev: (f.offset > 0).then(|| f.href(f.offset.saturating_sub(PAGE))),
        next: (f.offset + shown < total).then(|| f.href(f.offset + PAGE)),
    };
    render(&page)
}

#[derive(Deserialize)]
pub(crate) struct StatusForm {
    #[serde(default)]
    csrf: String,
    status: String,
    #[serde(default)]
    back: String,
}

pub(crate) async fn set_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> Response {
    let ui = match signed_in_form(&state, &headers, &form.csrf).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    if let Err(r) = ui.allowed(&state, &headers, Act::Triage, None).await {
        return r;
    }
    let Some(status) = Status::parse(&form.status) else {
        return page_error(StatusCode::BAD_REQUEST, "unknown status");
    };
    // Decided before anything changes: only back to our own queue (no open redirect), and
    // only a location that can be a header (no CR, LF or other control characters).
    let back = if form.back.starts_with("/ui/findings")
        && form.back.bytes().all(|b| b.is_ascii_graphic())
    {
        form.back
    } else {
        "/ui/findings?".to_owned()
    };
    let actor = ui.caller.actor();
    let target = id.clone();
    let done = state
        .engine
        .write(move |e| {
            crate::api::findings::set_status_audited(e, &id, status, actor, Some("dashboard"))
                .map(|f| f.is_some())
        })
        .await;
    match done {
        Ok(Ok(true)) => {
            let sep = if back.contains('?') { "&" } else { "?" };
            Redirect::to(&format!("{back}{sep}done={}#f-{target}", status.as_str())).into_response()
        }
        Ok(Ok(false)) => page_error(StatusCode::NOT_FOUND, "No such finding."),
        Ok(Err(e)) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => e.into_response(),
    }
}

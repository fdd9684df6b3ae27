//! The compliance page: one framework's scorecard judged now, and the trend of every
//! recorded report run (`keyward compliance report`, audited) as bars.

use keyward_govern::compliance::{self, Framework, Status};

use super::*;

pub(super) struct Row {
    id: &'static str,
    title: &'static str,
    status: &'static str,
    /// The stylesheet's class for it.
    class: &'static str,
    why: String,
    /// `(id, id as a query value)`, the first ten.
    identities: Vec<(String, String)>,
    more: usize,
}

pub(super) struct Point {
    at: String,
    pass: u64,
    warn: u64,
    fail: u64,
    max: u64,
}

#[derive(Template)]
#[template(path = "compliance.html")]
pub(super) struct CompliancePage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    framework: &'static str,
    title: &'static str,
    frameworks: Vec<(&'static str, bool)>,
    as_of: String,
    pass: usize,
    warn: usize,
    fail: usize,
    controls: Vec<Row>,
    trend: Vec<Point>,
}

#[derive(Deserialize)]
pub(crate) struct Ask {
    framework: Option<String>,
}

pub(crate) async fn compliance(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(ask): Query<Ask>,
) -> Response {
    let ui = match signed_in(&state, &headers).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    let framework = match ask.framework.as_deref() {
        None => Framework::Soc2,
        Some(f) => match Framework::parse(f) {
            Some(f) => f,
            None => return page_error(StatusCode::BAD_REQUEST, "unknown framework"),
        },
    };
    let data = state
        .engine
        .call(move |e| -> Result<CompliancePage, PageError> {
            let as_of = now();
            let report = compliance::report(framework, &e.compliance_facts(as_of)?);
            let points = e.compliance_trend(Some(framework.id()))?;
            let max = points
                .iter()
                .map(|p| p.pass + p.warn + p.fail)
                .max()
                .unwrap_or(1)
                .max(1);
            let trend = points
                .iter()
                .rev()
                .take(60)
                .rev()
                .map(|p| Point {
                    at: keyward_model::time::format(p.at),
                    pass: p.pass,
                    warn: p.warn,
                    fail: p.fail,
                    max,
                })
                .collect();
            Ok(CompliancePage {
                nav_user: None,
                nav: "compliance",
                csrf: String::new(),
                framework: framework.id(),
                title: framework.title(),
                frameworks: Framework::ALL
                    .iter()
                    .map(|f| (f.id(), *f == framework))
                    .collect(),
                as_of: keyward_model::time::format(as_of),
                pass: report.pass,
                warn: report.warn,
                fail: report.fail,
                controls: report
                    .controls
                    .into_iter()
                    .map(|c| Row {
                        id: c.id,
                        title: c.title,
                        status: c.status.as_str(),
                        class: match c.status {
                            Status::Pass => "ok",
                            Status::Warn => "warn",
                            Status::Fail => "error",
                        },
                        why: c.why,
                        more: c.identities.len().saturating_sub(10),
                        identities: c
                            .identities
                            .iter()
                            .take(10)
                            .map(|i| (i.clone(), q(i)))
                            .collect(),
                    })
                    .collect(),
                trend,
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

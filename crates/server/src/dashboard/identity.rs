//! One identity's page: facts, credentials, ownership chain, blast radius, findings and
//! recent events.

use super::*;

#[derive(Deserialize)]
pub(crate) struct IdentityQuery {
    id: String,
}

pub(super) struct OwnerView {
    owner: String,
    kind: &'static str,
    confidence: String,
    departed: bool,
    hops: Vec<String>,
}

pub(super) struct CredView {
    id: String,
    kind: String,
    status: String,
    age: String,
    last_used: String,
}

pub(super) struct FindingRow {
    severity: &'static str,
    status: &'static str,
    rule: String,
    summary: String,
    last_seen: String,
}

/// Events on an identity page, and the identities acting for it whose events are shown.
pub(super) const RECENT_EVENTS: usize = 50;
pub(super) const MAX_ACTING: usize = 20;

pub(super) struct EventRow {
    time: String,
    /// The acting identity when it is not the page's (a session of the role).
    by: String,
    action: String,
    target: String,
    from: String,
    error: String,
}

#[derive(Template)]
#[template(path = "identity.html")]
pub(super) struct IdentityPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    /// The caller may make a response plan (operator or admin).
    operator: bool,
    id: String,
    id_q: String,
    name: String,
    kind: &'static str,
    state: &'static str,
    facts: Vec<(&'static str, String)>,
    owners: Vec<OwnerView>,
    orphan: Option<String>,
    credentials: Vec<CredView>,
    graph: String,
    reach_identities: usize,
    reach_resources: usize,
    truncated: bool,
    findings: Vec<FindingRow>,
    events: Vec<EventRow>,
}

pub(crate) async fn identity(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(iq): Query<IdentityQuery>,
) -> Response {
    let ui = match signed_in(&state, &headers).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    let stale_days = state.config.stale_after_days;
    let data = state
        .engine
        .call(move |e| page(e, &iq.id, stale_days))
        .await;
    match data {
        Ok(Ok(Some(mut page))) => {
            page.nav_user = Some(ui.caller.label());
            page.csrf = ui.csrf;
            page.operator = ui.may.plan;
            render(&page)
        }
        Ok(Ok(None)) => page_error(StatusCode::NOT_FOUND, "No such identity."),
        Ok(Err(e)) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => e.into_response(),
    }
}

/// The page of the identity `id` names (without the session's parts); `None` when it names
/// no single identity.
fn page(e: &Engine, id: &str, stale_days: i64) -> Result<Option<IdentityPage>, PageError> {
    let i = match e.resolve(id) {
        keyward_engine::Resolve::Found(i) => i.clone(),
        _ => return Ok(None),
    };
    let as_of = now();
    let lc = LifecycleConfig {
        as_of,
        stale_after_days: stale_days,
    };
    let g = e.graph();
    let info = e.owner_info(&i, &e.coverage());
    let blast = g
        .find(&i.id)
        .map(|n| analysis::blast_radius(g, n, BlastOptions::default()));
    let graph = draw(&i, &info.ownership, blast.as_ref().map(|b| &b.root));
    Ok(Some(IdentityPage {
        nav_user: None,
        nav: "identities",
        csrf: String::new(),
        operator: false,
        id_q: q(&i.id),
        name: i.name.clone(),
        kind: i.kind.as_str(),
        state: e.lifecycles(lc).of(&i).as_str(),
        facts: facts(&i),
        owners: owner_views(&info.ownership),
        orphan: info.orphan.as_ref().map(|o| o.as_str().to_owned()),
        credentials: credential_views(&i, as_of),
        graph,
        reach_identities: blast.as_ref().map_or(0, |b| b.identities),
        reach_resources: blast.as_ref().map_or(0, |b| b.resources),
        truncated: blast.as_ref().is_some_and(|b| b.truncated),
        findings: finding_rows(e, &i)?,
        events: event_rows(e, &i)?,
        id: i.id,
    }))
}

/// Its owners, people then teams, each with the chain of evidence as text.
fn owner_views(ownership: &analysis::Ownership) -> Vec<OwnerView> {
    ownership
        .people
        .iter()
        .chain(&ownership.teams)
        .map(|c| OwnerView {
            owner: c.owner.clone(),
            kind: c.kind,
            confidence: format!("{:.2}", c.confidence),
            departed: c.departed,
            hops: c
                .chain
                .iter()
                .map(|h| {
                    let via = h
                        .source
                        .as_deref()
                        .map_or(String::new(), |s| format!(" ({s})"));
                    format!("{} {} {}{via}", h.edge.as_str(), h.node_kind, h.label)
                })
                .collect(),
        })
        .collect()
}

/// The facts table: what is known, in a fixed order, leaving out what is not.
fn facts(i: &Identity) -> Vec<(&'static str, String)> {
    let mut facts: Vec<(&'static str, String)> = vec![
        ("platform", i.platform.as_str().to_owned()),
        ("kind", i.kind.as_str().to_owned()),
    ];
    let mut opt = |k: &'static str, v: Option<&String>| {
        if let Some(v) = v {
            facts.push((k, v.clone()));
        }
    };
    opt("arn", i.arn.as_ref());
    opt("account", i.account.as_ref());
    opt("cluster", i.cluster.as_ref());
    opt("namespace", i.namespace.as_ref());
    opt("subject", i.subject.as_ref());
    opt("issuer", i.issuer.as_ref());
    opt("parent", i.parent.as_ref());
    let fmt = |t: Option<Millis>| t.map(keyward_model::time::format);
    opt("created", fmt(i.created).as_ref());
    opt("last used", fmt(i.last_used).as_ref());
    opt("first seen", fmt(i.first_seen).as_ref());
    opt("deleted", fmt(i.deleted).as_ref());
    facts.push(("events", i.event_count.to_string()));
    facts.push(("evidence", i.evidence.label().to_owned()));
    facts.push((
        "sources",
        i.sources.iter().cloned().collect::<Vec<_>>().join(", "),
    ));
    if !i.created_by.is_empty() {
        facts.push((
            "created by",
            i.created_by.iter().cloned().collect::<Vec<_>>().join(", "),
        ));
    }
    if !i.chain.is_empty() {
        facts.push(("session chain", i.chain.join(" → ")));
    }
    facts
}

fn credential_views(i: &Identity, as_of: Millis) -> Vec<CredView> {
    i.credentials
        .iter()
        .map(|c| CredView {
            id: c.id.clone(),
            kind: format!("{:?}", c.kind),
            status: format!("{:?}", c.status),
            age: c.created.map_or_else(
                || "unknown".into(),
                |t| format!("{} d", (as_of - t) / MS_PER_DAY),
            ),
            last_used: ago(c.last_used, as_of),
        })
        .collect()
}

fn finding_rows(e: &Engine, i: &Identity) -> Result<Vec<FindingRow>, PageError> {
    let fq = FindingQuery {
        identity: Some(i.id.clone()),
        ..FindingQuery::default()
    };
    Ok(e.findings(&fq)?
        .into_iter()
        .map(|f| FindingRow {
            severity: f.severity.as_str(),
            status: f.status.as_str(),
            rule: f.rule_id,
            summary: f.summary,
            last_seen: keyward_model::time::format(f.last_seen),
        })
        .collect())
}

/// Its own calls and those of what acts for it (a role's sessions, a user's keys), most
/// recently used first.
fn event_rows(e: &Engine, i: &Identity) -> Result<Vec<EventRow>, PageError> {
    let mut children: Vec<&Identity> = e
        .inventory()
        .iter()
        .filter(|x| x.parent.as_deref() == Some(i.id.as_str()))
        .collect();
    children.sort_by_key(|c| std::cmp::Reverse(c.last_used));
    let mut evs = Vec::new();
    for actor in std::iter::once(i.id.as_str())
        .chain(children.iter().take(MAX_ACTING).map(|c| c.id.as_str()))
    {
        evs.extend(e.recent_events(actor, RECENT_EVENTS)?);
    }
    evs.sort_by_key(|ev| std::cmp::Reverse(ev.time));
    evs.truncate(RECENT_EVENTS);
    Ok(evs
        .into_iter()
        .map(|ev| EventRow {
            time: keyward_model::time::format(ev.time),
            by: ev
                .actor
                .as_deref()
                .filter(|a| *a != i.id)
                .unwrap_or_default()
                .to_owned(),
            action: ev.action.into_owned(),
            target: ev.target.map(|c| c.into_owned()).unwrap_or_default(),
            from: ev.source_ip.map(|c| c.into_owned()).unwrap_or_default(),
            error: ev.error_code.map(|c| c.into_owned()).unwrap_or_default(),
        })
        .collect())
}

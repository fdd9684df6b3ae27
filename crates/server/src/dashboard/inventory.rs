//! The inventory page: filters, sorting and pages of identities.

use super::*;

#[derive(Deserialize, Default, Clone)]
pub(crate) struct InventoryQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    risk: String,
    #[serde(default)]
    orphaned: bool,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    offset: usize,
}

impl InventoryQuery {
    fn href(&self, sort: &str, offset: usize) -> String {
        let orphaned = if self.orphaned { "true" } else { "" };
        page_href(
            "/ui/identities",
            &[
                ("q", &self.q),
                ("platform", &self.platform),
                ("kind", &self.kind),
                ("state", &self.state),
                ("owner", &self.owner),
                ("risk", &self.risk),
                ("orphaned", orphaned),
                ("sort", sort),
            ],
            offset,
        )
    }
}

/// A page's URL: its path with the non-empty query values and, past the first page, the
/// offset.
pub(super) fn page_href(path: &str, pairs: &[(&str, &str)], offset: usize) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        s.append_pair(k, v);
    }
    if offset > 0 {
        s.append_pair("offset", &offset.to_string());
    }
    format!("{path}?{}", s.finish())
}

pub(super) struct Column {
    label: &'static str,
    href: String,
    mark: &'static str,
}

pub(super) struct Row {
    id: String,
    id_q: String,
    name: String,
    platform: &'static str,
    kind: &'static str,
    state: &'static str,
    owner: String,
    orphaned: bool,
    risk: &'static str,
    last_used: String,
}

#[derive(Template)]
#[template(path = "identities.html")]
pub(super) struct InventoryPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    f: InventoryQuery,
    platforms: Vec<(String, bool)>,
    kinds: Vec<(String, bool)>,
    states: Vec<(String, bool)>,
    risks: Vec<(String, bool)>,
    columns: Vec<Column>,
    rows: Vec<Row>,
    total: usize,
    first: usize,
    last: usize,
    prev: Option<String>,
    next: Option<String>,
}

/// A filter from a form's select: empty is "any".
pub(super) fn choice<T>(
    v: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, crate::ApiError> {
    crate::api::parse_opt((!v.is_empty()).then_some(v), what, parse)
}

pub(super) fn options(
    all: impl IntoIterator<Item = &'static str>,
    chosen: &str,
) -> Vec<(String, bool)> {
    all.into_iter()
        .map(|v| (v.to_owned(), v == chosen))
        .collect()
}

impl Row {
    fn new(
        i: &Identity,
        state: Lifecycle,
        owner: Option<&keyward_engine::OwnerInfo>,
        risk: Option<Severity>,
        as_of: Millis,
    ) -> Self {
        Row {
            id: i.id.clone(),
            id_q: q(&i.id),
            name: i.name.clone(),
            platform: i.platform.as_str(),
            kind: i.kind.as_str(),
            state: state.as_str(),
            owner: listing::owner_name(owner),
            orphaned: owner.is_some_and(|o| o.orphan.is_some()),
            risk: risk.map_or("", Severity::as_str),
            last_used: ago(i.last_used, as_of),
        }
    }
}

/// The worst open finding per identity (counted in the store).
pub(super) fn worst_open(
    e: &Engine,
) -> Result<HashMap<String, Severity>, keyward_engine::EngineError> {
    Ok(e.worst_open_by_identity()?
        .into_iter()
        .filter_map(|(id, sev)| Severity::ALL.get(usize::from(sev)).map(|s| (id, *s)))
        .collect())
}

/// The table's column headings, each a link sorting by it (again: the other way).
fn columns(f: &InventoryQuery) -> Vec<Column> {
    [
        ("Name", "name"),
        ("Platform", "platform"),
        ("Kind", "kind"),
        ("State", "state"),
        ("Owner", "owner"),
        ("Risk", "risk"),
        ("Last used", "last_used"),
    ]
    .into_iter()
    .map(|(label, key)| {
        let current = f.sort.trim_start_matches('-');
        let is = current == key || (current.is_empty() && key == "name");
        let desc = f.sort.starts_with('-');
        let next = if is && !desc {
            format!("-{key}")
        } else {
            key.to_owned()
        };
        Column {
            label,
            href: f.href(&next, 0),
            mark: match (is, desc) {
                (true, false) => " ▲",
                (true, true) => " ▼",
                _ => "",
            },
        }
    })
    .collect()
}

pub(crate) async fn inventory(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(f): Query<InventoryQuery>,
) -> Response {
    let ui = match signed_in(&state, &headers).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    let parsed = (|| {
        Ok::<_, crate::ApiError>((
            choice(&f.platform, "platform", Platform::parse)?,
            choice(&f.kind, "kind", IdentityKind::parse)?,
            choice(&f.state, "state", Lifecycle::parse)?,
            choice(&f.risk, "risk", Severity::parse)?,
        ))
    })();
    let (platform, kind, lifecycle, min_risk) = match parsed {
        Ok(p) => p,
        Err(e) => return page_error(e.status, &e.message),
    };
    let stale_days = state.config.stale_after_days;
    let fq = f.clone();
    let data = state
        .engine
        .call(move |e| -> Result<(Vec<Row>, usize), PageError> {
            let as_of = now();
            let lc = LifecycleConfig {
                as_of,
                stale_after_days: stale_days,
            };
            let filter = keyward_engine::Filter {
                platform,
                kind,
                state: lifecycle,
                ..Default::default()
            };
            let worst = worst_open(e)?;
            // Cheap filters first: owners are walked only for what is left.
            let rows: Vec<(&Identity, Lifecycle)> = listing::search(e, &filter, lc, &fq.q)
                .into_iter()
                .filter(|(i, _)| min_risk.is_none_or(|m| worst.get(&i.id).is_some_and(|s| *s >= m)))
                .collect();
            let (key, desc) = match fq.sort.strip_prefix('-') {
                Some(k) => (k, true),
                None => (fq.sort.as_str(), false),
            };
            let owners = keyward_engine::OwnerFilter {
                owner: (!fq.owner.is_empty()).then(|| fq.owner.clone()),
                orphaned: fq.orphaned,
            };
            let mut rows = e.owned(rows, &owners, key == "owner");
            let rank = |i: &Identity| worst.get(&i.id).copied();
            rows.sort_by(|((a, sa), oa), ((b, sb), ob)| {
                let o = match key {
                    "platform" => a.platform.as_str().cmp(b.platform.as_str()),
                    "kind" => a.kind.as_str().cmp(b.kind.as_str()),
                    "state" => sa.as_str().cmp(sb.as_str()),
                    "owner" => {
                        listing::owner_name(oa.as_ref()).cmp(&listing::owner_name(ob.as_ref()))
                    }
                    "risk" => rank(a).cmp(&rank(b)),
                    "last_used" => a.last_used.cmp(&b.last_used),
                    _ => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                };
                let o = o.then_with(|| a.id.cmp(&b.id));
                if desc { o.reverse() } else { o }
            });
            let total = rows.len();
            let mut page: Vec<_> = rows.into_iter().skip(fq.offset).take(PAGE).collect();
            e.fill_owners(&mut page);
            let page: Vec<Row> = page
                .into_iter()
                .map(|((i, s), o)| Row::new(i, s, o.as_ref(), worst.get(&i.id).copied(), as_of))
                .collect();
            Ok((page, total))
        })
        .await;
    let (rows, total) = match data {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => return e.into_response(),
    };
    let columns = columns(&f);
    let shown = rows.len();
    let page = InventoryPage {
        nav_user: Some(ui.caller.label()),
        nav: "identities",
        csrf: ui.csrf,
        platforms: options(Platform::ALL.iter().map(|p| p.as_str()), &f.platform),
        kinds: options(IdentityKind::ALL.iter().map(|k| k.as_str()), &f.kind),
        states: options(
            ["active", "stale", "unknown", "ephemeral", "deleted"],
            &f.state,
        ),
        risks: options(Severity::ALL.iter().rev().map(|s| s.as_str()), &f.risk),
        columns,
        rows,
        total,
        first: f.offset + 1,
        last: f.offset + shown,
        prev: (f.offset > 0).then(|| f.href(&f.sort, f.offset.saturating_sub(PAGE))),
        next: (f.offset + shown < total).then(|| f.href(&f.sort, f.offset + PAGE)),
        f,
    };
    render(&page)
}

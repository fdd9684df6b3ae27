//! The overview page: counts, shares, stale and unowned identities, old keys.

use super::*;

pub(super) struct Bar {
    key: String,
    label: String,
    count: usize,
    max: usize,
}

pub(super) fn bars(counts: BTreeMap<String, usize>) -> Vec<Bar> {
    let max = counts.values().copied().max().unwrap_or(0).max(1);
    let mut v: Vec<Bar> = counts
        .into_iter()
        .map(|(k, count)| Bar {
            label: k.replace('_', " "),
            key: k,
            count,
            max,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
    v
}

#[derive(Template)]
#[template(path = "overview.html")]
pub(super) struct OverviewPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    as_of: String,
    total: usize,
    stale: usize,
    stale_pct: String,
    orphaned: usize,
    orphaned_pct: String,
    unfederated: usize,
    unfederated_pct: String,
    keys_total: usize,
    keys_rotated: usize,
    rotation_pct: String,
    severities: Vec<Bar>,
    platforms: Vec<Bar>,
    kinds: Vec<Bar>,
}

pub(super) fn pct(n: usize, of: usize) -> String {
    if of == 0 {
        "–".into()
    } else {
        format!("{:.0} %", n as f64 * 100.0 / of as f64)
    }
}

/// Access keys older than this are due for rotation (the PCI limit).
pub(super) const ROTATION_DAYS: i64 = 90;

pub(crate) async fn overview(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ui = match signed_in(&state, &headers).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    let stale_days = state.config.stale_after_days;
    let data = state
        .engine
        .call(move |e| -> Result<OverviewPage, PageError> {
            let as_of = now();
            let lc = LifecycleConfig {
                as_of,
                stale_after_days: stale_days,
            };
            let rows = e.list(&keyward_engine::Filter::default(), lc);
            let live: Vec<&Identity> = rows
                .iter()
                .filter(|(_, s)| *s != Lifecycle::Deleted)
                .map(|(i, _)| *i)
                .collect();
            let owners = e.owner_infos(&live);
            let mut platforms = BTreeMap::new();
            let mut kinds = BTreeMap::new();
            let (mut stale, mut orphaned, mut unfederated, mut keys, mut rotated) = (0, 0, 0, 0, 0);
            for ((i, s), o) in rows
                .iter()
                .filter(|(_, s)| *s != Lifecycle::Deleted)
                .zip(&owners)
            {
                *platforms.entry(i.platform.as_str().to_owned()).or_insert(0) += 1;
                *kinds.entry(i.kind.as_str().to_owned()).or_insert(0) += 1;
                stale += usize::from(*s == Lifecycle::Stale);
                orphaned += usize::from(o.orphan.is_some());
                unfederated += usize::from(i.has_static_credentials() && !i.federated());
                for c in &i.credentials {
                    if c.kind == CredentialKind::AccessKey
                        && c.status == CredentialStatus::Active
                        && !c.id.starts_with("access_key_")
                    {
                        keys += 1;
                        rotated += usize::from(
                            c.created
                                .is_some_and(|t| as_of - t <= ROTATION_DAYS * MS_PER_DAY),
                        );
                    }
                }
            }
            let counts = e.open_finding_counts()?;
            let max = counts.iter().copied().max().unwrap_or(0).max(1) as usize;
            let severities = Severity::ALL
                .iter()
                .zip(counts)
                .rev()
                .map(|(s, n)| Bar {
                    key: s.as_str().to_owned(),
                    label: s.as_str().to_owned(),
                    count: n as usize,
                    max,
                })
                .collect();
            let total = live.len();
            Ok(OverviewPage {
                nav_user: None,
                nav: "overview",
                csrf: String::new(),
                as_of: keyward_model::time::format(as_of),
                total,
                stale,
                stale_pct: pct(stale, total),
                orphaned,
                orphaned_pct: pct(orphaned, total),
                unfederated,
                unfederated_pct: pct(unfederated, total),
                keys_total: keys,
                keys_rotated: rotated,
                rotation_pct: pct(rotated, keys),
                severities,
                platforms: bars(platforms),
                kinds: bars(kinds),
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

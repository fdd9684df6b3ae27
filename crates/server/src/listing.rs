//! Inventory listings shared by the API (`/api/identities`) and the dashboard's inventory:
//! search, the owner filters, and owners walked in the graph only where they are needed
//! (for every row when a filter or the sort asks, otherwise for the page alone).

use keyward_engine::{Engine, Filter, OwnerInfo};
use keyward_model::{Identity, Lifecycle, LifecycleConfig};

/// One listed identity, its state, and its owners once walked.
pub(crate) type Row<'e> = ((&'e Identity, Lifecycle), Option<OwnerInfo>);

/// Identities matching `filter` whose id or name contains `text` (any case; empty: all).
pub(crate) fn search<'e>(
    e: &'e Engine,
    filter: &Filter,
    lc: LifecycleConfig,
    text: &str,
) -> Vec<(&'e Identity, Lifecycle)> {
    let needle = text.trim().to_lowercase();
    e.list(filter, lc)
        .into_iter()
        .filter(|(i, _)| {
            needle.is_empty()
                || i.id.to_lowercase().contains(&needle)
                || i.name.to_lowercase().contains(&needle)
        })
        .collect()
}

/// The rows owned by `owner` (person or team) and, with `orphaned`, orphaned. Owners are
/// walked for every row only when one of those filters or `all_owners` (a sort by owner)
/// needs them; otherwise they stay `None` for [`fill_owners`] to walk on the page alone.
pub(crate) fn by_owner<'e>(
    e: &Engine,
    rows: Vec<(&'e Identity, Lifecycle)>,
    owner: Option<&str>,
    orphaned: bool,
    all_owners: bool,
) -> Vec<Row<'e>> {
    if !(all_owners || orphaned || owner.is_some()) {
        return rows.into_iter().map(|r| (r, None)).collect();
    }
    let listed: Vec<&Identity> = rows.iter().map(|(i, _)| *i).collect();
    rows.into_iter()
        .zip(e.owner_infos(&listed))
        .filter(|(_, o)| !orphaned || o.orphan.is_some())
        .filter(|(_, o)| {
            owner.is_none_or(|w| {
                o.ownership.owner.as_deref() == Some(w) || o.ownership.team.as_deref() == Some(w)
            })
        })
        .map(|(r, o)| (r, Some(o)))
        .collect()
}

/// Walks the owners [`by_owner`] left out (a page's).
pub(crate) fn fill_owners(e: &Engine, page: &mut [Row<'_>]) {
    let missing: Vec<&Identity> = page
        .iter()
        .filter(|(_, o)| o.is_none())
        .map(|((i, _), _)| *i)
        .collect();
    let mut found = e.owner_infos(&missing).into_iter();
    for (_, slot) in page.iter_mut().filter(|(_, o)| o.is_none()) {
        *slot = found.next();
    }
}

/// The owner shown for a row: the person, else the team.
pub(crate) fn owner_name(o: Option<&OwnerInfo>) -> String {
    o.and_then(|o| {
        o.ownership
            .owner
            .clone()
            .or_else(|| o.ownership.team.clone())
    })
    .unwrap_or_default()
}

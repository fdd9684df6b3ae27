//! Inventory listings shared by the API (`/api/identities`) and the dashboard's inventory:
//! search and how an owner is shown. The owner filters are the engine's
//! ([`Engine::owned`]), as the CLI's are.

use keyward_engine::{Engine, Filter, OwnerInfo};
use keyward_model::{Identity, Lifecycle, LifecycleConfig};

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

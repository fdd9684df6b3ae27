//! Questions about one identity answered from the store's query tables (`tables.rs`
//! keeps them), without loading the estate: [`Engine::open_about`] gives an engine that
//! holds that identity, the part of the graph the question walks (`walk.rs`), the span of
//! the log its staleness is judged by and the coverage its orphan checks read. The
//! engine's usual methods then answer as they would over the whole estate.
//!
//! When the tables cannot answer — they are not filled (a store of an older version, an
//! ingest under way), the identity is not named by its id or ARN (a name or a suffix needs
//! every row), or a walk reaches a bound — the estate is loaded as by [`Engine::open`].

mod owners;
mod walk;

use std::collections::BTreeSet;
use std::path::Path;

use keyward_graph::Inventory;
use keyward_graph::analysis::Coverage;
use keyward_model::{Identity, IdentityKind};
use keyward_store::Store;

use crate::lifecycle::LogSpans;
use crate::{Engine, EngineError, Topology};

/// What an engine opened about one identity must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `show`: the identity, its state, owners, orphan reason, findings and events.
    Show,
    /// `findings --identity`: its findings (a role's with its sessions').
    Findings,
    /// `graph chain`: its owners and what it is bound to.
    Chain,
    /// `graph blast-radius`: what it reaches in `depth` hops (with `since`, what it
    /// created since then).
    Blast { since: Option<i64>, depth: usize },
}

/// An inventory page: the rows `filter` lists, in listing order, after the first `offset`,
/// at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub filter: crate::Filter,
    pub offset: usize,
    pub limit: usize,
}

/// What a view answers from instead of the estate.
#[derive(Default)]
pub(crate) struct View {
    pub(crate) spans: LogSpans,
    lambda_accounts: BTreeSet<String>,
    workload_clusters: BTreeSet<String>,
    /// The logs and scopes whose span and coverage were read (found or not).
    read: BTreeSet<(&'static str, String)>,
    /// The inventory holds one page (`Engine::page` does not page it again).
    pub(crate) paged: bool,
}

impl View {
    pub(crate) fn coverage(&self) -> Coverage {
        Coverage {
            lambda_accounts: self.lambda_accounts.clone(),
            workload_clusters: self.workload_clusters.clone(),
        }
    }
}

/// The id prefix of a role's sessions: their findings are the role's
/// ([`keyward_model::ids::principal`]).
pub(crate) fn sessions_prefix(role: &str) -> Option<String> {
    let (account, name) = role.strip_prefix("arn:aws:iam::")?.split_once(":role/")?;
    Some(format!("arn:aws:sts::{account}:assumed-role/{name}"))
}

impl Engine {
    /// An engine that answers `need` about the identity `query` names (its id or ARN) from
    /// the store's query tables, or, when they cannot, one over the whole estate
    /// ([`Engine::open`]). Only that question may be asked of it: its inventory holds the
    /// one identity and its graph what the question walks. Taking its writer lock loads
    /// the estate.
    pub fn open_about(data_dir: &Path, query: &str, need: Need) -> Result<Self, EngineError> {
        let store = crate::open_store(data_dir)?;
        Self::about(store, query, need)
    }

    /// [`Engine::open_about`] on an opened store.
    pub fn about(store: Box<dyn Store>, query: &str, need: Need) -> Result<Self, EngineError> {
        if !store.query_tables_filled()? {
            return Self::with_store(store);
        }
        store.read_snapshot(true)?;
        let read = read(store.as_ref(), query, need);
        store.read_snapshot(false)?;
        match read? {
            Some((identity, graph, view)) => Ok(Engine {
                store,
                inventory: Inventory::new([identity]),
                topology: Topology::of_graph(graph),
                detector: None,
                detect_settings: keyward_detect::Settings::default(),
                tables: Default::default(),
                view: Some(view),
                forward: None,
            }),
            None => Self::with_store(store),
        }
    }

    /// An engine that lists one inventory page ([`Engine::page`]) from the store's query
    /// tables, or, when they cannot (unfilled, or a state filter: each row's state needs
    /// judging before it can be counted), one over the whole estate.
    pub fn open_page(data_dir: &Path, page: &Page) -> Result<Self, EngineError> {
        let store = crate::open_store(data_dir)?;
        Self::page_of(store, page)
    }

    /// [`Engine::open_page`] on an opened store.
    pub fn page_of(store: Box<dyn Store>, page: &Page) -> Result<Self, EngineError> {
        if page.filter.state.is_some() || !store.query_tables_filled()? {
            return Self::with_store(store);
        }
        store.read_snapshot(true)?;
        let read = read_page(store.as_ref(), page);
        store.read_snapshot(false)?;
        match read? {
            Some((identities, graph, view)) => Ok(Engine {
                store,
                inventory: Inventory::new(identities),
                topology: Topology::of_graph(graph),
                detector: None,
                detect_settings: keyward_detect::Settings::default(),
                tables: Default::default(),
                view: Some(view),
                forward: None,
            }),
            None => Self::with_store(store),
        }
    }

    /// Whether this engine holds one identity's view rather than the estate.
    pub fn is_view(&self) -> bool {
        self.view.is_some()
    }
}

/// The identity, the graph `need` walks and the view, or `None` when the tables cannot
/// answer.
fn read(
    store: &dyn Store,
    query: &str,
    need: Need,
) -> Result<Option<(Identity, keyward_graph::Graph, View)>, EngineError> {
    let identity = match store.identity(query)? {
        Some(i) => i,
        None => match keyward_model::ids::canonical_iam_arn(query) {
            Some(id) => match store.identity(&id)? {
                Some(i) => i,
                None => return Ok(None),
            },
            None => return Ok(None),
        },
    };
    let mut loader = walk::Loader::new(store);
    let root = identity.id.as_str();
    let walked = match need {
        Need::Findings => Ok(()),
        Need::Show => loader.root(root)?.and(loader.ownership(root)?),
        Need::Chain => loader
            .root(root)?
            .and(loader.ownership(root)?)
            .and(loader.blast(root, None, 4, 200)?),
        Need::Blast { since, depth } => {
            let max_nodes = keyward_graph::analysis::BlastOptions::default().max_nodes;
            // The root itself must be a node, as `graph blast-radius` asks.
            loader.blast(root, since, depth, max_nodes)?
        }
    };
    if walked.is_err() {
        return Ok(None);
    }
    let Ok(graph) = loader.graph()? else {
        return Ok(None);
    };
    let mut view = View::default();
    view.add(store, &identity)?;
    Ok(Some((identity, graph, view)))
}

impl View {
    /// The span of the log `i`'s state is judged by, and the coverage of its scope.
    fn add(&mut self, store: &dyn Store, i: &Identity) -> Result<(), EngineError> {
        // A page's rows share a few logs and scopes: each is read once.
        if let (kind, Some(scope)) = crate::lifecycle::log_of(i)
            && self.read.insert((kind.as_str(), scope.to_owned()))
            && let Some(span) = store.log_span(kind.as_str(), scope)?
        {
            self.spans
                .insert(kind, scope, (span.first_seen, span.last_seen));
        }
        if let Some(scope) = i.account.as_deref().or(i.cluster.as_deref())
            && self.read.insert(("", scope.to_owned()))
        {
            if store.covered("lambda", scope)? {
                self.lambda_accounts.insert(scope.to_owned());
            }
            if store.covered("workloads", scope)? {
                self.workload_clusters.insert(scope.to_owned());
            }
        }
        Ok(())
    }
}

/// The page's identities in listing order, the graph their owners walk and the view, or
/// `None` when the tables cannot answer.
fn read_page(
    store: &dyn Store,
    page: &Page,
) -> Result<Option<(Vec<Identity>, keyward_graph::Graph, View)>, EngineError> {
    let f = &page.filter;
    // Listing order: platform, kind (as the enums order them), then id.
    let mut platforms = keyward_model::Platform::ALL.to_vec();
    platforms.sort();
    let mut kinds = IdentityKind::ALL.to_vec();
    kinds.sort();
    let mut skip = page.offset;
    let mut rows: Vec<Identity> = Vec::new();
    'groups: for p in platforms
        .into_iter()
        .filter(|p| f.platform.is_none_or(|x| x == *p))
    {
        for k in kinds
            .iter()
            .copied()
            .filter(|k| f.kind.is_none_or(|x| x == *k))
        {
            if rows.len() >= page.limit {
                break 'groups;
            }
            let listing = keyward_store::Listing {
                platform: p.as_str(),
                kind: k.as_str(),
                scope: f.account.as_deref(),
                namespace: f.namespace.as_deref(),
            };
            if skip > 0 {
                let n = usize::try_from(store.listing_count(&listing)?).unwrap_or(usize::MAX);
                if n <= skip {
                    skip -= n;
                    continue;
                }
            }
            rows.extend(store.listing_page(&listing, skip, page.limit - rows.len())?);
            skip = 0;
        }
    }
    let mut loader = walk::Loader::new(store);
    let mut view = View {
        paged: true,
        ..View::default()
    };
    let ids: Vec<&str> = rows.iter().map(|i| i.id.as_str()).collect();
    if loader.owners(&ids)?.is_err() {
        return Ok(None);
    }
    for i in &rows {
        view.add(store, i)?;
    }
    let Ok(graph) = loader.graph()? else {
        return Ok(None);
    };
    Ok(Some((rows, graph, view)))
}

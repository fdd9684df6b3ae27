//! The part of the identity graph a question about one identity reads, loaded from the
//! query tables: the walks of `keyward_graph::analysis` are re-traced over rows read on
//! demand, to learn which nodes they expand, and every edge of those nodes that the walks
//! can look at is loaded. The analyses then run on a graph of just those rows, built in
//! the order the tables keep (nodes by rank, derived edges by origin and position, then
//! observed edges by kind and keys), so each expanded node's edges come in the same order,
//! and ties are broken the same way, as in the graph of the whole estate.
//!
//! A node's edges are read as a prefix of that order: the walks look at the first
//! [`MAX_EDGES_PER_NODE`] (ownership) or four times as many (blast radius), and an edge
//! loaded from its other end sorts after the prefix, so it never changes what they see.
//! Where a walk looks further (the identity's own edges, read whole by the orphan checks;
//! a person's team; a session's creator), a bound that is reached gives up
//! ([`GiveUp`]): the estate is loaded instead.
//!
//! Of a node with no more edges in a direction than the ownership search looks at, only
//! the kinds a reader looks at are read ([`Kept`]): the others are counted in an index,
//! and their other ends (a role's permissions: a resource node each) are never read. The
//! search then sees all of the node's edges of the kinds it follows, as over the estate.

use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};

use keyward_graph::analysis::{MAX_EDGES_PER_NODE, follows, orphan_looks_at, weight};
use keyward_graph::{Detail, EdgeKind, EdgeSpec, Graph, NodeKind, NodeSpec};
use keyward_model::ObservedEdge;
use keyward_store::{Direction, GraphEdgeRow, GraphNodeRow, Store};
use rustc_hash::{FxHashMap, FxHashSet};

use super::owners;
use crate::EngineError;

/// Edges read per node and direction: what the blast-radius walk looks at (the ownership
/// walk looks at a quarter of it).
pub(crate) const EDGES: usize = MAX_EDGES_PER_NODE * 4;
/// The identity's own edges are read whole up to this many per direction.
pub(crate) const ROOT_EDGES: usize = 20_000;
/// Nodes a view reads at most.
const MAX_NODES: usize = 100_000;

/// A bound was reached: the answer needs the estate.
#[derive(Debug)]
pub(crate) struct GiveUp;

/// One edge as a walk sees it from one end.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub(crate) kind: EdgeKind,
    pub(crate) other: String,
    pub(crate) source: Option<String>,
    pub(crate) last_seen: Option<i64>,
}

/// What a walk needs read before it goes on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Want {
    Node(String),
    /// The first `n` edges of a node in one direction (`true`: out).
    Links(String, bool, usize),
    /// What an ownership search looks at from a node it expands, in one direction: the
    /// first [`MAX_EDGES_PER_NODE`] edges, of which, when that is all of them, only those
    /// the search follows (`analysis::weight`).
    Walk(String, bool),
    /// What the checks of a listed identity (or of the node its owners are taken from)
    /// look at of its own edges in one direction: every one, up to [`ROOT_EDGES`], of
    /// which, when the node has no more than [`MAX_EDGES_PER_NODE`], only those
    /// [`Kept::Own`] keeps.
    Own(String, bool),
    /// A person's team: the first `member_of` of their edges out (what
    /// `analysis::ownership` takes), however far down their edges it is.
    Team(String),
}

/// Which of a node's edges in one direction were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kept {
    /// Every one.
    All,
    /// Those an ownership search follows from this end (`analysis::weight`).
    Walk,
    /// Those, and those `analysis::orphan_looks_at` (an inventory row's parent is taken
    /// by kinds the search follows: `Owns` and `HasCredential` in, `SessionOf` out).
    Own,
    /// The first `MemberOf` of each part (observed, derived): of a node's edges out, the
    /// first `MemberOf` in the order the graph iterates them is one of the two.
    Team,
}

impl Kept {
    fn keeps(self, kind: EdgeKind, out: bool) -> bool {
        let walked = weight(kind, !out, None).is_some();
        match self {
            Kept::All => true,
            Kept::Walk => walked,
            Kept::Own => walked || orphan_looks_at(kind, out),
            Kept::Team => kind == EdgeKind::MemberOf && out,
        }
    }
}

/// A node's edges in one direction, as read so far.
struct Adjacent {
    /// How many were asked for.
    asked: usize,
    /// Every edge there is, when fewer than asked were found.
    whole: bool,
    /// Which are here and in the graph: every edge read, or (the node has no more edges
    /// than a search looks at, so the rest change nothing it sees) only some kinds.
    kept: Kept,
    links: Vec<Link>,
}

pub(crate) struct Loader<'s> {
    store: &'s dyn Store,
    nodes: FxHashMap<String, Option<GraphNodeRow>>,
    derived: BTreeMap<(i64, i64), (GraphEdgeRow, Option<Detail>)>,
    observed: BTreeMap<(String, String, String), ObservedEdge>,
    adjacent: FxHashMap<(String, bool), Adjacent>,
    /// Persons' first `member_of` edges, read for that alone ([`Want::Team`]; kept apart
    /// from `adjacent`, which a wider read of the same edges replaces).
    teams: FxHashMap<String, Option<Link>>,
}

/// An ownership walk's queue entry: the best confidence first, then the older node (the
/// graph's `Best`).
pub(crate) struct Best(pub(crate) f64, pub(crate) i64, pub(crate) String);

impl PartialEq for Best {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Best {}

impl PartialOrd for Best {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Best {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

fn nz(t: i64) -> Option<i64> {
    (t != 0).then_some(t)
}

impl<'s> Loader<'s> {
    pub(crate) fn new(store: &'s dyn Store) -> Self {
        Loader {
            store,
            nodes: FxHashMap::default(),
            derived: BTreeMap::new(),
            observed: BTreeMap::new(),
            adjacent: FxHashMap::default(),
            teams: FxHashMap::default(),
        }
    }

    /// Reads the nodes of `keys` not read yet, in one query.
    fn fetch(&mut self, keys: &[&str]) -> Result<(), EngineError> {
        let mut missing: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| !self.nodes.contains_key(*k))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        for k in &missing {
            self.nodes.insert((*k).to_owned(), None);
        }
        for row in self.store.graph_nodes(&missing)? {
            self.nodes.insert(row.key.clone(), Some(row));
        }
        Ok(())
    }

    fn node(&mut self, key: &str) -> Result<Option<&GraphNodeRow>, EngineError> {
        self.fetch(&[key])?;
        Ok(self.nodes.get(key).and_then(Option::as_ref))
    }

    fn kind(&mut self, key: &str) -> Result<Option<NodeKind>, EngineError> {
        Ok(self.node(key)?.and_then(|n| NodeKind::from_code(&n.kind)))
    }

    /// `key`'s node if it was read (`Some(None)`: there is none).
    pub(crate) fn read_node(&self, key: &str) -> Option<Option<&GraphNodeRow>> {
        self.nodes.get(key).map(Option::as_ref)
    }

    /// The first `n` edges of `key` in direction `out` and whether that is all of them,
    /// if read.
    pub(crate) fn read_links(&self, key: &str, out: bool, n: usize) -> Option<(Vec<Link>, bool)> {
        let a = self.adjacent.get(&(key.to_owned(), out))?;
        if (a.asked < n && !a.whole) || a.kept != Kept::All {
            return None;
        }
        let whole = a.whole && a.links.len() <= n;
        Some((a.links.iter().take(n).cloned().collect(), whole))
    }

    /// The edges of `key` in direction `out` an ownership search expanding it looks at
    /// ([`Want::Walk`]), if read: at least those it follows.
    pub(crate) fn read_walk(&self, key: &str, out: bool) -> Option<Vec<Link>> {
        let a = self.adjacent.get(&(key.to_owned(), out))?;
        if a.asked < MAX_EDGES_PER_NODE && !a.whole {
            return None;
        }
        Some(a.links.iter().take(MAX_EDGES_PER_NODE).cloned().collect())
    }

    /// The edges of `key` in direction `out` the checks of a listed identity look at
    /// ([`Want::Own`]), and whether that is all of them, if read.
    pub(crate) fn read_own(&self, key: &str, out: bool) -> Option<(Vec<Link>, bool)> {
        let a = self.adjacent.get(&(key.to_owned(), out))?;
        if (a.asked < ROOT_EDGES && !a.whole) || a.kept == Kept::Walk {
            return None;
        }
        Some((a.links.clone(), a.whole))
    }

    /// `key`'s first `member_of` edge out if read (`Some(None)`: it has none): where it
    /// was read for that alone ([`Want::Team`]), or where all its edges were read as far
    /// as one, or all of them.
    pub(crate) fn read_team(&self, key: &str) -> Option<Option<Link>> {
        if let Some(t) = self.teams.get(key) {
            return Some(t.clone());
        }
        let a = self.adjacent.get(&(key.to_owned(), true))?;
        let first = a.links.iter().find(|l| l.kind == EdgeKind::MemberOf);
        match a.kept {
            Kept::All if first.is_some() || a.whole => Some(first.cloned()),
            Kept::All | Kept::Walk | Kept::Own | Kept::Team => None,
        }
    }

    /// The first `n` edges of `key` in direction `out` (observed ones first, each part
    /// newest first, as the graph iterates them), and whether that is all of them.
    fn links(
        &mut self,
        key: &str,
        out: bool,
        n: usize,
    ) -> Result<Result<(Vec<Link>, bool), GiveUp>, EngineError> {
        if self.read(&[key], out, n, Kept::All)?.is_err() {
            return Ok(Err(GiveUp));
        }
        Ok(self.read_links(key, out, n).ok_or(GiveUp))
    }

    /// Reads what walks want: the nodes, then each group of edges asked alike in one
    /// query per table.
    pub(crate) fn load(&mut self, wants: &[Want]) -> Result<Result<(), GiveUp>, EngineError> {
        let mut nodes = Vec::new();
        let mut links: BTreeMap<(bool, usize, Kept), Vec<&str>> = BTreeMap::new();
        for w in wants {
            let (key, at) = match w {
                Want::Node(k) => {
                    nodes.push(k.as_str());
                    continue;
                }
                Want::Links(k, out, n) => (k, (*out, *n, Kept::All)),
                Want::Walk(k, out) => (k, (*out, MAX_EDGES_PER_NODE, Kept::Walk)),
                Want::Own(k, out) => (k, (*out, ROOT_EDGES, Kept::Own)),
                Want::Team(k) => (k, (true, 1, Kept::Team)),
            };
            links.entry(at).or_default().push(key);
        }
        self.fetch(&nodes)?;
        for ((out, n, keep), keys) in links {
            if self.read(&keys, out, n, keep)?.is_err() {
                return Ok(Err(GiveUp));
            }
        }
        Ok(Ok(()))
    }

    /// Reads the first `n` edges in direction `out` of each of `keys` not read that far,
    /// and the nodes at their other ends; of a node with few edges, only those `keep`
    /// keeps.
    fn read(
        &mut self,
        keys: &[&str],
        out: bool,
        n: usize,
        keep: Kept,
    ) -> Result<Result<(), GiveUp>, EngineError> {
        let mut keys: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| match keep {
                Kept::All => self.read_links(k, out, n).is_none(),
                Kept::Walk => self.read_walk(k, out).is_none(),
                Kept::Own => self.read_own(k, out).is_none(),
                Kept::Team => self.read_team(k).is_none(),
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        if self.nodes.len() > MAX_NODES {
            return Ok(Err(GiveUp));
        }
        let dir = if out { Direction::Out } else { Direction::In };
        // A search that sees all of a node's edges (it has no more than the search looks
        // at) needs only those it follows from this end, and the checks only those they
        // look at: only those are read, the others counted in the indexes (up to one more
        // than a search looks at, so the count is exact). A role's permissions, and the
        // resource nodes at their other ends, are then never read.
        // Per node: how many edges it has, observed and derived (counted when filtered),
        // and those read.
        type Found = ((usize, usize), Vec<ObservedEdge>, Vec<GraphEdgeRow>);
        let mut found: FxHashMap<&str, Found> =
            keys.iter().map(|k| (*k, Default::default())).collect();
        let mut filtered: FxHashSet<&str> = FxHashSet::default();
        if keep == Kept::Team {
            filtered.extend(keys.iter().copied());
        } else if keep != Kept::All {
            let cap = MAX_EDGES_PER_NODE;
            for c in self.store.edge_counts(&keys, dir, cap + 1)? {
                let Some(k) = keys
                    .binary_search(&c.key.as_str())
                    .ok()
                    .and_then(|i| keys.get(i).copied())
                else {
                    continue;
                };
                if let Some(f) = found.get_mut(k) {
                    f.0 = (c.observed, c.derived);
                    if c.observed + c.derived <= cap && c.derived < n {
                        filtered.insert(k);
                    }
                }
            }
        }
        let kinds: Vec<&str> = EdgeKind::ALL
            .iter()
            .filter(|k| keep.keeps(**k, out))
            .map(|k| k.as_str())
            .collect();
        let (few, all): (Vec<&str>, Vec<&str>) = keys.iter().partition(|k| filtered.contains(*k));
        let mut derived = Vec::new();
        let mut observed = Vec::new();
        if !all.is_empty() {
            derived = self.store.graph_edges(&all, dir, None, n)?;
            observed = self.store.observed_edges_at(&all, dir, None, n)?;
        }
        if !few.is_empty() {
            derived.extend(self.store.graph_edges(&few, dir, Some(&kinds), n)?);
            observed.extend(self.store.observed_edges_at(&few, dir, Some(&kinds), n)?);
        }
        for e in derived {
            let at = if out { &e.src } else { &e.dst };
            if let Some(f) = found.get_mut(at.as_str()) {
                f.2.push(e);
            }
        }
        for e in observed {
            let at = if out { &e.from } else { &e.to };
            if let Some(f) = found.get_mut(at.as_str()) {
                f.1.push(e);
            }
        }
        let mut others: Vec<String> = Vec::new();
        let mut read = Vec::with_capacity(found.len());
        for (key, (count, observed, derived)) in found {
            let kept = if filtered.contains(key) {
                keep
            } else {
                Kept::All
            };
            // Each part stops at `n`: whole when neither reached it (a team's read is
            // never whole: its edges of other kinds are not counted).
            let (observed_count, derived_count) = match kept {
                Kept::All => (observed.len(), derived.len()),
                Kept::Walk | Kept::Own => count,
                Kept::Team => (n, n),
            };
            let whole = observed_count < n && derived_count < n;
            let follows = |kind: EdgeKind| kept.keeps(kind, out);
            let mut links = Vec::with_capacity(observed.len() + derived.len());
            for e in observed {
                let Some(kind) = EdgeKind::parse(&e.kind).filter(|k| follows(*k)) else {
                    continue;
                };
                links.push(Link {
                    kind,
                    other: if out { e.to.clone() } else { e.from.clone() },
                    source: None,
                    last_seen: nz(e.last_seen),
                });
                self.observed
                    .entry((e.kind.clone(), e.from.clone(), e.to.clone()))
                    .or_insert(e);
            }
            for mut e in derived {
                let Some(kind) = EdgeKind::parse(&e.kind).filter(|k| follows(*k)) else {
                    continue;
                };
                // The evidence is kept parsed only.
                let detail: Option<Detail> = match e.detail.take() {
                    Some(d) => Some(serde_json::from_str(&d).map_err(|x| {
                        keyward_store::StoreError::Corrupt(format!("edge detail: {x}"))
                    })?),
                    None => None,
                };
                links.push(Link {
                    kind,
                    other: if out { e.dst.clone() } else { e.src.clone() },
                    source: detail
                        .as_ref()
                        .map(|d| d.source.clone())
                        .filter(|s| !s.is_empty()),
                    last_seen: nz(e.at),
                });
                self.derived.entry((e.origin, e.pos)).or_insert((e, detail));
            }
            links.truncate(n);
            others.extend(links.iter().map(|l| l.other.clone()));
            if kept == Kept::Team {
                self.teams.insert(key.to_owned(), links.pop());
                continue;
            }
            read.push((
                (key.to_owned(), out),
                Adjacent {
                    asked: n,
                    whole,
                    kept,
                    links,
                },
            ));
        }
        self.adjacent.extend(read);
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        self.fetch(&others)?;
        Ok(Ok(()))
    }

    /// Reads the identity's own edges whole (the orphan checks and `graph chain`'s groups
    /// look at all of them).
    pub(crate) fn root(&mut self, key: &str) -> Result<Result<(), GiveUp>, EngineError> {
        for out in [true, false] {
            match self.links(key, out, ROOT_EDGES)? {
                Ok((_, true)) => {}
                Ok((_, false)) | Err(GiveUp) => return Ok(Err(GiveUp)),
            }
        }
        Ok(Ok(()))
    }

    /// Re-traces `analysis::ownership` from `root`, reading what it expands: the search,
    /// the people's teams, and the members of teams found.
    pub(crate) fn ownership(&mut self, root: &str) -> Result<Result<(), GiveUp>, EngineError> {
        owners::run(self, vec![owners::Walk::of(root)])
    }

    /// Re-traces `analysis::OwnershipCache::get` from each of `roots` (an inventory page's
    /// owners), all together (`owners.rs`).
    pub(crate) fn owners(&mut self, roots: &[&str]) -> Result<Result<(), GiveUp>, EngineError> {
        owners::run(
            self,
            roots.iter().map(|r| owners::Walk::listed(r)).collect(),
        )
    }

    /// Re-traces `analysis::blast_radius` from `root` (at most `max_nodes` reached,
    /// `max_depth` hops; with `since`, containment).
    pub(crate) fn blast(
        &mut self,
        root: &str,
        since: Option<i64>,
        max_depth: usize,
        max_nodes: usize,
    ) -> Result<Result<(), GiveUp>, EngineError> {
        if self.node(root)?.is_none() {
            return Ok(Err(GiveUp));
        }
        let mut seen: FxHashSet<String> = FxHashSet::from_iter([root.to_owned()]);
        let mut queue = VecDeque::from([(root.to_owned(), 0usize)]);
        while let Some((at, d)) = queue.pop_front() {
            if d >= max_depth {
                continue;
            }
            if at != root
                && matches!(
                    self.kind(&at)?,
                    Some(NodeKind::Resource | NodeKind::Person | NodeKind::Team)
                )
            {
                continue;
            }
            let mut next: Vec<(EdgeKind, String)> = Vec::new();
            let links = match self.links(&at, true, EDGES)? {
                Ok((links, _)) => links,
                Err(GiveUp) => return Ok(Err(GiveUp)),
            };
            for l in links
                .into_iter()
                .filter(|l| follows(l.kind, l.last_seen, since))
            {
                next.push((l.kind, l.other));
            }
            if since.is_some() {
                let sessions = match self.links(&at, false, EDGES)? {
                    Ok((links, _)) => links,
                    Err(GiveUp) => return Ok(Err(GiveUp)),
                };
                for s in sessions
                    .into_iter()
                    .filter(|l| l.kind == EdgeKind::SessionOf)
                {
                    let (made, whole) = match self.links(&s.other, false, EDGES)? {
                        Ok(x) => x,
                        Err(GiveUp) => return Ok(Err(GiveUp)),
                    };
                    let found = made.iter().any(|c| {
                        c.kind == EdgeKind::Created && follows(c.kind, c.last_seen, since)
                    });
                    if !found && !whole {
                        return Ok(Err(GiveUp));
                    }
                    if found {
                        next.push((EdgeKind::Created, s.other));
                    }
                }
            }
            next.sort();
            for (_, to) in next {
                if seen.contains(&to) {
                    continue;
                }
                if seen.len() >= max_nodes {
                    break;
                }
                seen.insert(to.clone());
                queue.push_back((to, d + 1));
            }
        }
        Ok(Ok(()))
    }

    /// The graph of everything read: nodes by rank, then derived edges by origin and
    /// position, then observed edges by kind and keys.
    pub(crate) fn graph(mut self) -> Result<Result<Graph, GiveUp>, EngineError> {
        let mut keys: Vec<String> = Vec::new();
        for (e, _) in self.derived.values() {
            keys.push(e.src.clone());
            keys.push(e.dst.clone());
        }
        for e in self.observed.values() {
            keys.push(e.from.clone());
            keys.push(e.to.clone());
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.fetch(&refs)?;
        let mut rows: Vec<&GraphNodeRow> = self.nodes.values().flatten().collect();
        rows.sort_by_key(|r| r.rank);
        let mut g = Graph::new();
        let mut specs: FxHashMap<&str, NodeSpec> = FxHashMap::default();
        for r in rows {
            let Some(kind) = NodeKind::from_code(&r.kind) else {
                return Ok(Err(GiveUp));
            };
            let spec = NodeSpec::new(r.key.as_str(), kind, r.label.as_str());
            // As an origin: its kind and label exactly as kept (`ensure` would not store a
            // label that repeats the key; an origin's own may).
            g.set_edges(&spec, Vec::new());
            let Some(id) = g.find(&r.key) else {
                return Ok(Err(GiveUp));
            };
            match &r.gone_because {
                Some(why) => g.set_gone_because(id, why),
                None => g.set_gone(id, r.gone),
            }
            specs.insert(r.key.as_str(), spec);
        }
        for (e, detail) in self.derived.values() {
            let (Some(from), Some(to), Some(kind)) = (
                specs.get(e.src.as_str()),
                specs.get(e.dst.as_str()),
                EdgeKind::parse(&e.kind),
            ) else {
                return Ok(Err(GiveUp));
            };
            let Some(origin) = g.find(&from.key) else {
                return Ok(Err(GiveUp));
            };
            g.add_edge(
                origin,
                EdgeSpec {
                    from: from.clone(),
                    kind,
                    to: to.clone(),
                    detail: detail.clone(),
                    at: nz(e.at),
                },
            );
        }
        for e in self.observed.values() {
            let (Some(from), Some(to)) = (specs.get(e.from.as_str()), specs.get(e.to.as_str()))
            else {
                return Ok(Err(GiveUp));
            };
            g.load_observed(e, from.kind, to.kind);
        }
        Ok(Ok(g))
    }
}

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

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use keyward_graph::analysis::{
    MAX_DEPTH, MAX_EDGES_PER_NODE, MAX_PEOPLE, MAX_TEAMS, MAX_VISITED, MIN_CONFIDENCE, follows,
    weight,
};
use keyward_graph::{Detail, EdgeKind, EdgeSpec, Graph, NodeKind, NodeSpec};
use keyward_model::{IdentityKind, ObservedEdge};
use keyward_store::{Direction, GraphEdgeRow, GraphNodeRow, Store};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::EngineError;

/// Edges read per node and direction: what the blast-radius walk looks at (the ownership
/// walk looks at a quarter of it).
const EDGES: usize = MAX_EDGES_PER_NODE * 4;
/// The identity's own edges are read whole up to this many per direction.
const ROOT_EDGES: usize = 20_000;
/// Nodes a view reads at most.
const MAX_NODES: usize = 100_000;

/// A bound was reached: the answer needs the estate.
#[derive(Debug)]
pub(crate) struct GiveUp;

/// One edge as a walk sees it from one end.
#[derive(Debug, Clone)]
struct Link {
    kind: EdgeKind,
    other: String,
    source: Option<String>,
    last_seen: Option<i64>,
}

/// A node's edges in one direction, as read so far.
struct Adjacent {
    /// How many were asked for.
    asked: usize,
    /// Every edge there is, when fewer than asked were found.
    whole: bool,
    links: Vec<Link>,
}

pub(crate) struct Loader<'s> {
    store: &'s dyn Store,
    nodes: FxHashMap<String, Option<GraphNodeRow>>,
    derived: BTreeMap<(i64, i64), (GraphEdgeRow, Option<Detail>)>,
    observed: BTreeMap<(String, String, String), ObservedEdge>,
    adjacent: FxHashMap<(String, bool), Adjacent>,
}

/// An ownership walk's queue entry: the best confidence first, then the older node (the
/// graph's `Best`).
struct Best(f64, i64, String);

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
        }
    }

    /// Reads the nodes of `keys` not read yet.
    fn fetch(&mut self, keys: &[&str]) -> Result<(), EngineError> {
        let missing: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| !self.nodes.contains_key(*k))
            .collect();
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

    fn rank(&mut self, key: &str) -> Result<Result<i64, GiveUp>, EngineError> {
        Ok(self.node(key)?.map(|n| n.rank).ok_or(GiveUp))
    }

    fn kind(&mut self, key: &str) -> Result<Option<NodeKind>, EngineError> {
        Ok(self.node(key)?.and_then(|n| NodeKind::from_code(&n.kind)))
    }

    /// The first `n` edges of `key` in direction `out` (observed ones first, each part
    /// newest first, as the graph iterates them), and whether that is all of them.
    fn links(
        &mut self,
        key: &str,
        out: bool,
        n: usize,
    ) -> Result<Result<(Vec<Link>, bool), GiveUp>, EngineError> {
        if let Some(a) = self.adjacent.get(&(key.to_owned(), out))
            && (a.asked >= n || a.whole)
        {
            let whole = a.whole && a.links.len() <= n;
            return Ok(Ok((a.links.iter().take(n).cloned().collect(), whole)));
        }
        if self.nodes.len() > MAX_NODES {
            return Ok(Err(GiveUp));
        }
        let dir = if out { Direction::Out } else { Direction::In };
        let observed = self.store.observed_edges_at(key, dir, n)?;
        let derived = self.store.graph_edges(key, dir, n)?;
        let whole = observed.len() < n && derived.len() < n;
        let mut links = Vec::with_capacity(observed.len() + derived.len());
        for e in observed {
            let Some(kind) = EdgeKind::parse(&e.kind) else {
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
        for e in derived {
            let Some(kind) = EdgeKind::parse(&e.kind) else {
                continue;
            };
            let detail: Option<Detail> = match &e.detail {
                Some(d) => Some(serde_json::from_str(d).map_err(|x| {
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
        let others: Vec<String> = links.iter().map(|l| l.other.clone()).collect();
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        self.fetch(&others)?;
        self.adjacent.insert(
            (key.to_owned(), out),
            Adjacent {
                asked: n,
                whole,
                links: links.clone(),
            },
        );
        Ok(Ok((links, whole)))
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
        let Ok(root_rank) = self.rank(root)? else {
            return Ok(Err(GiveUp));
        };
        let mut best: FxHashMap<String, (f64, usize)> = FxHashMap::default();
        let mut heap = BinaryHeap::new();
        let mut done: FxHashSet<String> = FxHashSet::default();
        let (mut people, mut teams) = (Vec::new(), Vec::new());
        heap.push(Best(1.0, root_rank, root.to_owned()));
        best.insert(root.to_owned(), (1.0, 0));
        while let Some(Best(conf, _, at)) = heap.pop() {
            if !done.insert(at.clone()) || done.len() > MAX_VISITED {
                continue;
            }
            let kind = self.kind(&at)?;
            if at != root && matches!(kind, Some(NodeKind::Person | NodeKind::Team)) {
                if kind == Some(NodeKind::Person) {
                    people.push(at);
                } else {
                    teams.push(at);
                }
                if people.len() >= MAX_PEOPLE && teams.len() >= MAX_TEAMS {
                    break;
                }
                continue;
            }
            let depth = best.get(&at).map_or(0, |b| b.1);
            if depth >= MAX_DEPTH {
                continue;
            }
            for out in [true, false] {
                let links = match self.links(&at, out, MAX_EDGES_PER_NODE)? {
                    Ok((links, _)) => links,
                    Err(GiveUp) => return Ok(Err(GiveUp)),
                };
                for l in links {
                    let Some(w) = weight(l.kind, !out, l.source.as_deref()) else {
                        continue;
                    };
                    let c = conf * w;
                    if c < MIN_CONFIDENCE || best.get(&l.other).is_some_and(|b| b.0 >= c) {
                        continue;
                    }
                    let Ok(rank) = self.rank(&l.other)? else {
                        return Ok(Err(GiveUp));
                    };
                    best.insert(l.other.clone(), (c, depth + 1));
                    heap.push(Best(c, rank, l.other));
                }
            }
        }
        // A person's team is the first `member_of` of all their edges out.
        for p in &people {
            match self.links(p, true, EDGES)? {
                Ok((links, whole)) => {
                    if !whole && !links.iter().any(|l| l.kind == EdgeKind::MemberOf) {
                        return Ok(Err(GiveUp));
                    }
                }
                Err(GiveUp) => return Ok(Err(GiveUp)),
            }
        }
        // A team and nobody by name: its members answer.
        for t in &teams {
            let label = self.node(t)?.map(|n| n.label.clone()).unwrap_or_default();
            let key = format!("team:{label}");
            if self.node(&key)?.is_some() && self.links(&key, false, MAX_EDGES_PER_NODE)?.is_err() {
                return Ok(Err(GiveUp));
            }
        }
        Ok(Ok(()))
    }

    /// Re-traces `analysis::OwnershipCache::get` from `root` (an inventory row's owners): a
    /// session or key nobody owns takes its parent's (the session's role, the key's
    /// holder), up to four hops, and the rest walk as `ownership` does.
    pub(crate) fn owners(&mut self, root: &str) -> Result<Result<(), GiveUp>, EngineError> {
        let mut at = root.to_owned();
        for depth in 0..=4 {
            if self.root(&at)?.is_err() {
                return Ok(Err(GiveUp));
            }
            let Ok((ins, _)) = self.links(&at, false, ROOT_EDGES)? else {
                return Ok(Err(GiveUp));
            };
            let owned = ins.iter().any(|l| l.kind == EdgeKind::Owns);
            // As `OwnershipCache` picks it: another node before itself, then by key.
            let pick = |links: Vec<Link>, kind: EdgeKind| {
                links
                    .into_iter()
                    .filter(|l| l.kind == kind)
                    .map(|l| l.other)
                    .min_by(|a, b| (*a == at, a).cmp(&(*b == at, b)))
            };
            let kind = self.kind(&at)?;
            let session = kind == Some(NodeKind::Identity(IdentityKind::StsSession));
            let key = matches!(
                kind,
                Some(NodeKind::Identity(
                    IdentityKind::TemporaryAccessKey | IdentityKind::AccessKey
                ))
            );
            let parent = if owned {
                None
            } else if session {
                let Ok((outs, _)) = self.links(&at, true, ROOT_EDGES)? else {
                    return Ok(Err(GiveUp));
                };
                pick(outs, EdgeKind::SessionOf)
            } else if key {
                pick(ins, EdgeKind::HasCredential)
            } else {
                None
            };
            match parent.filter(|_| depth < 4) {
                Some(p) => at = p,
                None => return self.ownership(&at),
            }
        }
        Ok(Ok(()))
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

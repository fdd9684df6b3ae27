//! The ownership walks of a view, re-traced over rows read a hop at a time for all of
//! them together: `analysis::ownership` (one identity's owners) and
//! `analysis::OwnershipCache` (an inventory page's, each row's session taking its role's
//! and each key its holder's). Every walk runs until it needs rows not read yet, and says
//! which; the loader then reads what all of them need in one query per table and
//! direction, and they go on. A best-first walk asks, besides the node it is at, for the
//! nodes waiting in its queue that it would expand (up to [`PREFETCH`]): it reaches most
//! of them, and reading them with the first saves a round trip per node. What is read
//! beyond what a walk expands only adds edges that sort after the prefixes the walks look
//! at (`walk.rs`), so the answers do not change.

use std::collections::BinaryHeap;

use keyward_graph::analysis::{
    MAX_DEPTH, MAX_EDGES_PER_NODE, MAX_PEOPLE, MAX_TEAMS, MAX_VISITED, MIN_CONFIDENCE, weight,
};
use keyward_graph::{EdgeKind, NodeKind};
use keyward_model::IdentityKind;
use rustc_hash::{FxHashMap, FxHashSet};

use super::walk::{Best, GiveUp, Link, Loader, Want};
use crate::EngineError;

/// Queued nodes a blocked best-first walk asks for besides the one it is at.
const PREFETCH: usize = 255;

/// Where one walk stands.
enum Stage {
    /// Following a session to its role or a key to its holder (`OwnershipCache`), from
    /// `at`, `hops` taken.
    Parents {
        at: String,
        hops: usize,
    },
    Search(Box<Search>),
    /// The people found: each one's team (the first `member_of` of their edges out).
    People(Vec<String>, Vec<String>),
    /// A team and nobody by name: its members.
    Members(Vec<String>),
    Done,
}

/// The best-first search of `analysis::ownership` from `root`.
struct Search {
    root: String,
    best: FxHashMap<String, (f64, usize)>,
    heap: BinaryHeap<Best>,
    done: FxHashSet<String>,
    people: Vec<String>,
    teams: Vec<String>,
}

/// One walk's progress.
enum Progress {
    /// It needs rows not read yet (pushed on the wants).
    Blocked,
    Done,
    GaveUp,
}

pub(crate) struct Walk {
    stage: Stage,
}

impl Walk {
    /// `OwnershipCache::get` of `root` (an inventory row).
    pub(crate) fn listed(root: &str) -> Self {
        Walk {
            stage: Stage::Parents {
                at: root.to_owned(),
                hops: 0,
            },
        }
    }

    /// `ownership` of `root`.
    pub(crate) fn of(root: &str) -> Self {
        Walk {
            stage: Stage::Search(Box::new(Search::new(root))),
        }
    }

    /// Goes as far as the rows read allow. `searched`: the nodes whose search some walk
    /// already made (their owners are walked once, as `OwnershipCache` does).
    fn step(
        &mut self,
        l: &Loader<'_>,
        searched: &mut FxHashSet<String>,
        wants: &mut Vec<Want>,
    ) -> Progress {
        loop {
            let next = match &mut self.stage {
                Stage::Parents { at, hops } => match parent(l, at, wants) {
                    Err(p) => return p,
                    Ok(Some(p)) if *hops < 4 => {
                        *at = p;
                        *hops += 1;
                        continue;
                    }
                    Ok(_) => {
                        if !searched.insert(at.clone()) {
                            return Progress::Done;
                        }
                        Stage::Search(Box::new(Search::new(at)))
                    }
                },
                Stage::Search(s) => {
                    searched.insert(s.root.clone());
                    match s.run(l, wants) {
                        Progress::Done => Stage::People(
                            std::mem::take(&mut s.people),
                            std::mem::take(&mut s.teams),
                        ),
                        p => return p,
                    }
                }
                Stage::People(people, teams) => match teams_of(l, people, teams, wants) {
                    Ok(keys) => Stage::Members(keys),
                    Err(p) => return p,
                },
                Stage::Members(keys) => match members(l, keys, wants) {
                    Progress::Done => Stage::Done,
                    p => return p,
                },
                Stage::Done => return Progress::Done,
            };
            self.stage = next;
        }
    }
}

/// Runs `walks` together, reading what they need a hop at a time for all of them.
pub(crate) fn run(
    l: &mut Loader<'_>,
    mut walks: Vec<Walk>,
) -> Result<Result<(), GiveUp>, EngineError> {
    let mut searched = FxHashSet::default();
    loop {
        let mut wants = Vec::new();
        let mut blocked = false;
        for w in &mut walks {
            match w.step(l, &mut searched, &mut wants) {
                Progress::Blocked => blocked = true,
                Progress::Done => {}
                Progress::GaveUp => return Ok(Err(GiveUp)),
            }
        }
        if !blocked {
            return Ok(Ok(()));
        }
        if l.load(&wants)?.is_err() {
            return Ok(Err(GiveUp));
        }
    }
}

/// Whether `key`'s node was read (`Err`: it is wanted), and its kind.
fn kind_of(l: &Loader<'_>, key: &str, wants: &mut Vec<Want>) -> Result<Option<NodeKind>, Progress> {
    match l.read_node(key) {
        Some(n) => Ok(n.and_then(|n| NodeKind::from_code(&n.kind))),
        None => {
            wants.push(Want::Node(key.to_owned()));
            Err(Progress::Blocked)
        }
    }
}

/// `key`'s first `n` edges in direction `out` if read, else wanted.
fn links_of(
    l: &Loader<'_>,
    key: &str,
    out: bool,
    n: usize,
    wants: &mut Vec<Want>,
) -> Option<(Vec<Link>, bool)> {
    let found = l.read_links(key, out, n);
    if found.is_none() {
        wants.push(Want::Links(key.to_owned(), out, n));
    }
    found
}

/// `key`'s own edges in direction `out` that the checks look at ([`Want::Own`]) if read,
/// else wanted.
fn own_of(
    l: &Loader<'_>,
    key: &str,
    out: bool,
    wants: &mut Vec<Want>,
) -> Option<(Vec<Link>, bool)> {
    let found = l.read_own(key, out);
    if found.is_none() {
        wants.push(Want::Own(key.to_owned(), out));
    }
    found
}

/// The node `OwnershipCache` takes `at`'s owners from (a session's role, a key's holder),
/// once `at`'s own edges are read whole (of the kinds the checks look at: `Want::Own`).
fn parent(l: &Loader<'_>, at: &str, wants: &mut Vec<Want>) -> Result<Option<String>, Progress> {
    let kind = kind_of(l, at, wants);
    let outs = own_of(l, at, true, wants);
    let ins = own_of(l, at, false, wants);
    let (kind, Some((outs, out_whole)), Some((ins, in_whole))) = (kind?, outs, ins) else {
        return Err(Progress::Blocked);
    };
    if !out_whole || !in_whole {
        return Err(Progress::GaveUp);
    }
    if ins.iter().any(|l| l.kind == EdgeKind::Owns) {
        return Ok(None);
    }
    // As `OwnershipCache` picks it: another node before itself, then by key.
    let pick = |links: Vec<Link>, kind: EdgeKind| {
        links
            .into_iter()
            .filter(|l| l.kind == kind)
            .map(|l| l.other)
            .min_by(|a, b| (a == at, a).cmp(&(b == at, b)))
    };
    Ok(match kind {
        Some(NodeKind::Identity(IdentityKind::StsSession)) => pick(outs, EdgeKind::SessionOf),
        Some(NodeKind::Identity(IdentityKind::TemporaryAccessKey | IdentityKind::AccessKey)) => {
            pick(ins, EdgeKind::HasCredential)
        }
        _ => None,
    })
}

impl Search {
    fn new(root: &str) -> Self {
        Search {
            root: root.to_owned(),
            best: FxHashMap::from_iter([(root.to_owned(), (1.0, 0))]),
            heap: BinaryHeap::new(),
            done: FxHashSet::default(),
            people: Vec::new(),
            teams: Vec::new(),
        }
    }

    /// Whether the search would expand `key` were it next: not yet, within the bounds,
    /// not a person or a team (unless the root).
    fn expands(&self, l: &Loader<'_>, key: &str) -> bool {
        if self.done.contains(key) || self.done.len() >= MAX_VISITED {
            return false;
        }
        if self.best.get(key).map_or(0, |b| b.1) >= MAX_DEPTH {
            return false;
        }
        let kind = l
            .read_node(key)
            .flatten()
            .and_then(|n| NodeKind::from_code(&n.kind));
        key == self.root || !matches!(kind, Some(NodeKind::Person | NodeKind::Team))
    }

    /// The search, from where it stopped, until it ends or needs a node's edges: those,
    /// and those of the best of the queue it would expand after.
    fn run(&mut self, l: &Loader<'_>, wants: &mut Vec<Want>) -> Progress {
        if self.heap.is_empty() && self.done.is_empty() {
            match l.read_node(&self.root) {
                None => {
                    wants.push(Want::Node(self.root.clone()));
                    return Progress::Blocked;
                }
                Some(None) => return Progress::GaveUp,
                Some(Some(n)) => self.heap.push(Best(1.0, n.rank, self.root.clone())),
            }
        }
        while let Some(Best(conf, _, at)) = self.heap.peek() {
            let (conf, at) = (*conf, at.clone());
            if self.expands(l, &at) {
                let outs = l.read_walk(&at, true);
                let ins = l.read_walk(&at, false);
                let (Some(outs), Some(ins)) = (outs, ins) else {
                    self.prefetch(l, &at, wants);
                    return Progress::Blocked;
                };
                self.heap.pop();
                self.done.insert(at.clone());
                let depth = self.best.get(&at).map_or(0, |b| b.1);
                for (links, out) in [(outs, true), (ins, false)] {
                    for link in links {
                        let Some(w) = weight(link.kind, !out, link.source.as_deref()) else {
                            continue;
                        };
                        let c = conf * w;
                        if c < MIN_CONFIDENCE
                            || self.best.get(&link.other).is_some_and(|b| b.0 >= c)
                        {
                            continue;
                        }
                        // Every end of an edge read was read with it.
                        let Some(Some(node)) = l.read_node(&link.other) else {
                            return Progress::GaveUp;
                        };
                        self.best.insert(link.other.clone(), (c, depth + 1));
                        self.heap.push(Best(c, node.rank, link.other));
                    }
                }
                continue;
            }
            self.heap.pop();
            if !self.done.insert(at.clone()) || self.done.len() > MAX_VISITED {
                continue;
            }
            let kind = l
                .read_node(&at)
                .flatten()
                .and_then(|n| NodeKind::from_code(&n.kind));
            if at != self.root {
                match kind {
                    Some(NodeKind::Person) => self.people.push(at),
                    Some(NodeKind::Team) => self.teams.push(at),
                    // Too deep: not expanded.
                    _ => continue,
                }
                if self.people.len() >= MAX_PEOPLE && self.teams.len() >= MAX_TEAMS {
                    return Progress::Done;
                }
            }
        }
        Progress::Done
    }

    /// Wants the edges of `at` and of the best queued nodes the search would expand.
    fn prefetch(&self, l: &Loader<'_>, at: &str, wants: &mut Vec<Want>) {
        let mut queued: Vec<&Best> = self.heap.iter().collect();
        queued.sort_unstable_by(|a, b| b.cmp(a));
        let mut asked = FxHashSet::default();
        let keys = std::iter::once(at).chain(queued.iter().map(|b| b.2.as_str()));
        for key in keys {
            if asked.len() > PREFETCH {
                break;
            }
            if !self.expands(l, key) || !asked.insert(key) {
                continue;
            }
            for out in [true, false] {
                if l.read_walk(key, out).is_none() {
                    wants.push(Want::Walk(key.to_owned(), out));
                }
            }
        }
    }
}

/// The people's teams: a person's is the first `member_of` of all their edges out, which
/// must be among those read. Returns the keys of the teams' member lists.
fn teams_of(
    l: &Loader<'_>,
    people: &[String],
    teams: &[String],
    wants: &mut Vec<Want>,
) -> Result<Vec<String>, Progress> {
    let mut blocked = false;
    for p in people {
        if l.read_team(p).is_none() {
            wants.push(Want::Team(p.clone()));
            blocked = true;
        }
    }
    let mut keys = Vec::new();
    for t in teams {
        match l.read_node(t) {
            Some(n) => keys.push(format!(
                "team:{}",
                n.map(|n| n.label.as_str()).unwrap_or_default()
            )),
            None => {
                wants.push(Want::Node(t.clone()));
                blocked = true;
            }
        }
    }
    if blocked {
        return Err(Progress::Blocked);
    }
    Ok(keys)
}

/// A team's members: the edges into its `team:` node, when it has one.
fn members(l: &Loader<'_>, keys: &[String], wants: &mut Vec<Want>) -> Progress {
    let mut blocked = false;
    for key in keys {
        match l.read_node(key) {
            None => {
                wants.push(Want::Node(key.clone()));
                blocked = true;
            }
            Some(None) => {}
            Some(Some(_)) => {
                if links_of(l, key, false, MAX_EDGES_PER_NODE, wants).is_none() {
                    blocked = true;
                }
            }
        }
    }
    if blocked {
        Progress::Blocked
    } else {
        Progress::Done
    }
}

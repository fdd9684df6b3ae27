//! Questions asked of the graph: who owns an identity (and how sure we are), what it can
//! reach (blast radius), what it created since a time (what containment must revoke), and
//! which roles trust accounts outside an allow-list.
//!
//! Every walk is bounded (depth, nodes, and edges scanned per node), so a hub — a role
//! with a hundred thousand sessions — costs the same as any other node.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};

use keyward_model::IdentityKind;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::graph::{Detail, EdgeKind, EdgeView, Graph, NodeId, NodeKind};

/// Edges looked at per node and direction during a walk.
pub const MAX_EDGES_PER_NODE: usize = 256;

/// One hop of an ownership chain, from the identity towards its owner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    /// The node reached by this hop.
    pub node: String,
    pub label: String,
    pub node_kind: &'static str,
    /// The edge followed, and whether it was followed against its direction.
    pub edge: EdgeKind,
    pub reversed: bool,
    /// What says so (tag, file:line, policy), when the edge records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
}

/// A candidate owner and the chain of evidence that leads to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub owner: String,
    pub kind: &'static str,
    pub confidence: f64,
    pub departed: bool,
    /// What says they left, when their own directory row does not (`not in people.csv`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub departed_because: Option<String>,
    /// The person's team, from the people directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub chain: Vec<Hop>,
}

/// Who owns an identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ownership {
    /// The most likely human owner (email or `@handle`).
    pub owner: Option<String>,
    pub team: Option<String>,
    /// 0–1: the product of the evidence weights along the best chain.
    pub confidence: f64,
    /// People, best first: primary, secondary, …
    pub people: Vec<Candidate>,
    /// Teams, best first.
    pub teams: Vec<Candidate>,
}

impl Ownership {
    pub fn primary(&self) -> Option<&Candidate> {
        self.people.first()
    }

    /// Every person found to own it has left (a team tag alone does not count).
    pub fn all_departed(&self) -> bool {
        !self.people.is_empty() && self.people.iter().all(|p| p.departed)
    }
}

/// How much one hop keeps of the confidence, by edge and direction (`None`: the walk does
/// not follow it).
pub fn weight(kind: EdgeKind, reversed: bool, source: Option<&str>) -> Option<f64> {
    Some(match (kind, reversed) {
        (EdgeKind::Owns, true) => match source {
            Some("self") => 0.95,
            Some(s) if s.starts_with("tag") || s.starts_with("label") => 0.95,
            Some(s) if s.starts_with("annotation") => 0.9,
            // CODEOWNERS: the owners of the file that defines it.
            _ => 0.85,
        },
        (EdgeKind::HasCredential, true) => 0.98,
        (EdgeKind::SessionOf, false) => 0.95,
        (EdgeKind::DefinedIn, false) => 0.95,
        (EdgeKind::RunsAs, true) => 0.9,
        (EdgeKind::Federates, true) => 0.85,
        // A federated subject is used for its role: the role's owner answers for it.
        (EdgeKind::Federates, false) => 0.7,
        (EdgeKind::Created, true) => 0.6,
        (EdgeKind::Assumed, true) => 0.5,
        (EdgeKind::SessionOf, true) => 0.5,
        _ => return None,
    })
}

#[derive(PartialEq)]
struct Best(f64, NodeId);

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

/// Hops an ownership walk goes at most.
pub const MAX_DEPTH: usize = 8;
/// Evidence weaker than this is not followed.
pub const MIN_CONFIDENCE: f64 = 0.1;
/// The walk stops once it has this many people and teams.
pub const MAX_PEOPLE: usize = 3;
pub const MAX_TEAMS: usize = 2;

/// Per node reached: the best confidence and the hop that reached it.
type Trail<'g> = FxHashMap<NodeId, (f64, Option<Step<'g>>)>;

/// How a node was reached: from where, by which edge, with what evidence. Strings are
/// borrowed from the graph; hops are only built for the chains reported.
#[derive(Debug, Clone, Copy)]
struct Step<'g> {
    prev: NodeId,
    edge: EdgeKind,
    reversed: bool,
    source: Option<&'g str>,
    last_seen: Option<i64>,
    /// Hops from the start.
    depth: u8,
}

/// A blast-radius node's parent, the edge from it, its detail and times.
type Parent = (NodeId, EdgeKind, Option<Detail>, Option<i64>, Option<i64>);
/// Nodes an ownership walk visits at most.
pub const MAX_VISITED: usize = 4096;

/// The owners of `id`: a best-first walk towards people and teams through ownership
/// evidence (owner tags and labels, the IaC file that defines it and that file's
/// CODEOWNERS, the workload that runs as it, the identity whose key or session it is, the
/// human who created it, the humans who assumed it), each hop weighted by how strong that
/// evidence is.
pub fn ownership(g: &Graph, id: NodeId) -> Ownership {
    walk(g, id, &mut Scratch::default(), true)
}

/// A walk's working sets, kept between walks so a listing does not allocate per identity.
#[derive(Default)]
struct Scratch<'g> {
    best: Trail<'g>,
    heap: BinaryHeap<Best>,
    done: FxHashSet<NodeId>,
    found: Vec<(NodeId, f64)>,
}

/// The ownership walk of [`ownership`], in `scratch`'s working sets; the chains of hops
/// are built only when `chains`.
fn walk<'g>(g: &'g Graph, id: NodeId, scratch: &mut Scratch<'g>, chains: bool) -> Ownership {
    search(g, id, scratch);
    let mut out = candidates(g, &scratch.found, &scratch.best, chains);
    // A team but nobody by name: the team's members (people directory) answer for it,
    // those still here first.
    if out.people.is_empty()
        && let Some(team) = out.teams.first()
        && let Some(tnode) = g.find(&format!("team:{}", team.owner))
    {
        out.people = team_members(g, tnode, team);
    }
    conclude(&mut out);
    out
}

/// The best-first search from `id`: fills `scratch.best` with how each node was best
/// reached and `scratch.found` with the people and teams met, best first, until enough
/// of each are found or the walk's bounds are reached.
fn search<'g>(g: &'g Graph, id: NodeId, scratch: &mut Scratch<'g>) {
    let Scratch {
        best,
        heap,
        done,
        found,
    } = scratch;
    best.clear();
    heap.clear();
    done.clear();
    found.clear();
    heap.push(Best(1.0, id));
    best.insert(id, (1.0, None));
    while let Some(Best(conf, at)) = heap.pop() {
        if !done.insert(at) || done.len() > MAX_VISITED {
            continue;
        }
        let kind = g.node(at).map(|n| n.kind);
        if at != id && matches!(kind, Some(NodeKind::Person | NodeKind::Team)) {
            found.push((at, conf));
            // Candidates come out best first: a few of each is all anyone reads.
            let people = found
                .iter()
                .filter(|(n, _)| g.node(*n).is_some_and(|x| x.kind == NodeKind::Person))
                .count();
            if people >= MAX_PEOPLE && found.len() - people >= MAX_TEAMS {
                break;
            }
            continue;
        }
        let at_depth = best
            .get(&at)
            .and_then(|(_, s)| s.as_ref())
            .map_or(0, |s| s.depth);
        if usize::from(at_depth) >= MAX_DEPTH {
            continue;
        }
        let mut step = |e: EdgeView<'g>, reversed: bool| {
            let source = e
                .detail
                .map(|d| d.source.as_str())
                .filter(|s| !s.is_empty());
            let Some(w) = weight(e.kind, reversed, source) else {
                return;
            };
            let next = if reversed { e.from } else { e.to };
            let c = conf * w;
            if c < MIN_CONFIDENCE || best.get(&next).is_some_and(|(b, _)| *b >= c) {
                return;
            }
            best.insert(
                next,
                (
                    c,
                    Some(Step {
                        prev: at,
                        edge: e.kind,
                        reversed,
                        source,
                        last_seen: e.last_seen,
                        depth: at_depth + 1,
                    }),
                ),
            );
            heap.push(Best(c, next));
        };
        for e in g.out_edges(at).take(MAX_EDGES_PER_NODE) {
            step(e, false);
        }
        for e in g.in_edges(at).take(MAX_EDGES_PER_NODE) {
            step(e, true);
        }
    }
}

/// The people and teams found, as candidates (with their chains when `chains`), each
/// list best first.
fn candidates(g: &Graph, found: &[(NodeId, f64)], best: &Trail<'_>, chains: bool) -> Ownership {
    let mut out = Ownership::default();
    for &(node, conf) in found {
        let Some(n) = g.node(node) else { continue };
        let team = (n.kind == NodeKind::Person)
            .then(|| {
                g.out_edges(node)
                    .find(|e| e.kind == EdgeKind::MemberOf)
                    .and_then(|e| g.node(e.to))
                    .map(|t| t.label.to_string())
            })
            .flatten();
        let c = Candidate {
            owner: n.label.to_string(),
            kind: n.kind.as_str(),
            confidence: (conf * 100.0).round() / 100.0,
            departed: n.gone,
            departed_because: g.gone_because(node).map(str::to_owned),
            team,
            chain: if chains {
                chain(g, best, node)
            } else {
                Vec::new()
            },
        };
        match n.kind {
            NodeKind::Person => out.people.push(c),
            _ => out.teams.push(c),
        }
    }
    out.people
        .sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    out.teams
        .sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    out
}

/// A team's members (people directory) as candidates for what the team owns, through the
/// team's chain; those still here first.
fn team_members(g: &Graph, tnode: NodeId, team: &Candidate) -> Vec<Candidate> {
    let mut members: Vec<Candidate> = g
        .in_edges(tnode)
        .take(MAX_EDGES_PER_NODE)
        .filter(|e| e.kind == EdgeKind::MemberOf)
        .filter_map(|e| {
            let p = g.node(e.from).filter(|p| p.kind == NodeKind::Person)?;
            let mut chain = team.chain.clone();
            chain.push(Hop {
                node: g.key(e.from).to_owned(),
                label: p.label.to_string(),
                node_kind: p.kind.as_str(),
                edge: EdgeKind::MemberOf,
                reversed: true,
                source: e.detail.map(|d| d.source.clone()).filter(|s| !s.is_empty()),
                last_seen: None,
            });
            Some(Candidate {
                owner: p.label.to_string(),
                kind: p.kind.as_str(),
                confidence: (team.confidence * 0.8 * 100.0).round() / 100.0,
                departed: p.gone,
                departed_because: g.gone_because(e.from).map(str::to_owned),
                team: Some(team.owner.clone()),
                chain,
            })
        })
        .collect();
    members.sort_by(|a, b| (a.departed, &a.owner).cmp(&(b.departed, &b.owner)));
    members
}

/// Picks the primary owner, team and confidence from the candidates.
fn conclude(out: &mut Ownership) {
    // The primary owner is the best person who has not left, else the best person.
    if let Some(pos) = out.people.iter().position(|p| !p.departed)
        && pos > 0
        && out.people.first().is_some_and(|first| {
            out.people
                .get(pos)
                .is_some_and(|p| p.confidence >= first.confidence * 0.5)
        })
    {
        let p = out.people.remove(pos);
        out.people.insert(0, p);
    }
    let person = out.people.first();
    let team = out.teams.first();
    out.owner = person.map(|p| p.owner.clone());
    out.team = match (person, team) {
        (_, Some(t)) if person.is_none_or(|p| t.confidence >= p.confidence || p.team.is_none()) => {
            Some(t.owner.clone())
        }
        (Some(p), _) => p.team.clone(),
        _ => None,
    };
    out.confidence = person
        .map(|p| p.confidence)
        .into_iter()
        .chain(team.map(|t| t.confidence))
        .fold(0.0, f64::max);
}

/// Ownership for many identities at once (inventory listings). Short-lived identities
/// nobody owns directly — STS sessions, temporary keys — take the ownership of what they
/// belong to (the session's role, the key's session or user), one hop further; each
/// parent is walked once. `ownership` on one identity (`graph chain`) walks in full, so it
/// can also name, with less confidence, the human who minted a session.
///
/// Listings only read owners, teams and confidences: [`OwnershipCache::without_chains`]
/// leaves the evidence chains out, which is most of the allocation.
#[derive(Default)]
pub struct OwnershipCache<'g> {
    done: FxHashMap<NodeId, Ownership>,
    scratch: Scratch<'g>,
    skip_chains: bool,
}

impl<'g> OwnershipCache<'g> {
    /// A cache whose results carry no chains (candidates' `chain` is empty).
    pub fn without_chains() -> Self {
        OwnershipCache {
            skip_chains: true,
            ..Default::default()
        }
    }

    pub fn get(&mut self, g: &'g Graph, id: NodeId) -> Ownership {
        if let Some(o) = self.done.get(&id) {
            return o.clone();
        }
        let o = self.compute(g, id, 0);
        self.done.insert(id, o.clone());
        o
    }

    fn compute(&mut self, g: &'g Graph, id: NodeId, depth: usize) -> Ownership {
        let kind = g.node(id).map(|n| n.kind);
        let owned = g.in_edges(id).any(|e| e.kind == EdgeKind::Owns);
        // Of several (a key listed by two snapshots), another node before itself, then
        // by key: the same parent whatever order the graph was built in.
        let first = |c: &(NodeId, EdgeKind, bool, Option<i64>)| (c.0 == id, g.key(c.0), c.3);
        let parent = match kind {
            Some(NodeKind::Identity(IdentityKind::StsSession)) if !owned => g
                .out_edges(id)
                .filter(|e| e.kind == EdgeKind::SessionOf)
                .map(|e| (e.to, e.kind, false, e.last_seen))
                .min_by(|a, b| first(a).cmp(&first(b))),
            Some(NodeKind::Identity(
                IdentityKind::TemporaryAccessKey | IdentityKind::AccessKey,
            )) if !owned => g
                .in_edges(id)
                .filter(|e| e.kind == EdgeKind::HasCredential)
                .map(|e| (e.from, e.kind, true, e.last_seen))
                .min_by(|a, b| first(a).cmp(&first(b))),
            _ => None,
        };
        let Some((p, edge, reversed, last_seen)) = parent.filter(|_| depth < 4) else {
            return walk(g, id, &mut self.scratch, !self.skip_chains);
        };
        let base = match self.done.get(&p) {
            Some(o) => o.clone(),
            None => {
                let o = self.compute(g, p, depth + 1);
                self.done.insert(p, o.clone());
                o
            }
        };
        let w = weight(edge, reversed, None).unwrap_or(1.0);
        let hop = (!self.skip_chains).then(|| {
            let n = g.node(p);
            Hop {
                node: g.key(p).to_owned(),
                label: n.map(|n| n.label.to_string()).unwrap_or_default(),
                node_kind: n.map_or("", |n| n.kind.as_str()),
                edge,
                reversed,
                source: None,
                last_seen,
            }
        });
        let scale = |c: &Candidate| {
            let mut c = c.clone();
            c.confidence = (c.confidence * w * 100.0).round() / 100.0;
            if let Some(h) = &hop {
                c.chain.insert(0, h.clone());
            }
            c
        };
        Ownership {
            owner: base.owner.clone(),
            team: base.team.clone(),
            confidence: (base.confidence * w * 100.0).round() / 100.0,
            people: base.people.iter().map(scale).collect(),
            teams: base.teams.iter().map(scale).collect(),
        }
    }
}

fn chain(g: &Graph, best: &Trail<'_>, mut at: NodeId) -> Vec<Hop> {
    let mut hops = Vec::new();
    while let Some((_, Some(step))) = best.get(&at) {
        let n = g.node(at);
        hops.push(Hop {
            node: g.key(at).to_owned(),
            label: n.map(|n| n.label.to_string()).unwrap_or_default(),
            node_kind: n.map_or("", |n| n.kind.as_str()),
            edge: step.edge,
            reversed: step.reversed,
            source: step.source.map(str::to_owned),
            last_seen: step.last_seen,
        });
        at = step.prev;
        if hops.len() > MAX_DEPTH {
            break;
        }
    }
    hops.reverse();
    hops
}

/// Why an identity looks orphaned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrphanReason {
    /// Every person found to own it has left (a team tag alone does not count).
    OwnerDeparted,
    /// A role for a Lambda function whose account's functions are known, none using it.
    FunctionDeleted,
    /// A service account no workload of its (snapshotted) cluster runs as.
    NoWorkload,
    /// No owner, no workload, no trust or use links: nothing references it.
    Unreferenced,
}

impl OrphanReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            OrphanReason::OwnerDeparted => "owner_departed",
            OrphanReason::FunctionDeleted => "function_deleted",
            OrphanReason::NoWorkload => "no_workload",
            OrphanReason::Unreferenced => "unreferenced",
        }
    }
}

/// What the orphan analysis needs to know about the estate as a whole.
#[derive(Debug, Default)]
pub struct Coverage {
    /// Accounts whose Lambda functions were listed (`lambda list-functions`).
    pub lambda_accounts: BTreeSet<String>,
    /// Clusters whose workloads were snapshotted.
    pub workload_clusters: BTreeSet<String>,
}

impl Coverage {
    pub fn of(g: &Graph) -> Coverage {
        let mut c = Coverage::default();
        for (_, key, n) in g.nodes() {
            if let Some(arn) = key.strip_prefix("lambda:") {
                if let Some(a) = arn.split(':').nth(4) {
                    c.lambda_accounts.insert(a.to_owned());
                }
            } else if let Some(rest) = key.strip_prefix("k8s-obj:")
                && n.kind == NodeKind::Workload
                && let Some(cluster) = rest.split('/').next()
            {
                c.workload_clusters.insert(cluster.to_owned());
            }
        }
        c
    }
}

/// Whether [`orphan_reason`] looks at an identity's own edges of `kind` out of it (`out`)
/// or into it. It reads them through this, so a reader of part of the graph (the
/// engine's views) that loads an identity's edges of these kinds whole, with those the
/// ownership walk follows, gets the answer it would over the whole graph.
pub fn orphan_looks_at(kind: EdgeKind, out: bool) -> bool {
    match kind {
        EdgeKind::DefinedIn => out,
        EdgeKind::BoundTo | EdgeKind::HasCredential => true,
        EdgeKind::RunsAs
        | EdgeKind::Federates
        | EdgeKind::Assumed
        | EdgeKind::SessionOf
        | EdgeKind::CanAssume => !out,
        EdgeKind::Owns
        | EdgeKind::Created
        | EdgeKind::MemberOf
        | EdgeKind::Can
        | EdgeKind::Used => false,
    }
}

/// Why identity `id` (of `kind`, in `account` or `cluster`) is an orphan, if it is one;
/// `acted`: an activity log showed it acting. Short-lived identities (sessions, temporary
/// keys) and AWS-managed ones are never orphans.
#[allow(clippy::too_many_arguments)]
pub fn orphan_reason(
    g: &Graph,
    id: NodeId,
    kind: IdentityKind,
    scope: Option<&str>,
    owners: &Ownership,
    coverage: &Coverage,
    acted: bool,
) -> Option<OrphanReason> {
    let key = g.key(id);
    // A deleted identity is gone, not orphaned.
    if g.node(id).is_some_and(|n| n.gone) {
        return None;
    }
    if !matches!(
        kind,
        IdentityKind::IamUser
            | IdentityKind::IamRole
            | IdentityKind::AccessKey
            | IdentityKind::ServiceAccount
    ) || key.contains(":role/AWSServiceRole")
        // Every namespace has one; it is never anyone's to own.
        || (kind == IdentityKind::ServiceAccount && key.ends_with(":default"))
        || key.contains(":role/aws-service-role/")
    {
        return None;
    }
    // Every person found to own it has left; a team tag alone does not answer for it.
    if owners.all_departed() {
        return Some(OrphanReason::OwnerDeparted);
    }
    // Its own edges, of the kinds `orphan_looks_at` names only.
    let ins = || g.in_edges(id).filter(|e| orphan_looks_at(e.kind, false));
    let outs = || g.out_edges(id).filter(|e| orphan_looks_at(e.kind, true));
    let has_in = |k: EdgeKind| ins().any(|e| e.kind == k);
    if kind == IdentityKind::IamRole
        && scope.is_some_and(|a| coverage.lambda_accounts.contains(a))
        && ins().any(|e| {
            e.kind == EdgeKind::CanAssume && g.key(e.from) == "aws-service:lambda.amazonaws.com"
        })
        && !ins().any(|e| e.kind == EdgeKind::RunsAs && g.key(e.from).starts_with("lambda:"))
    {
        return Some(OrphanReason::FunctionDeleted);
    }
    // No workload runs as it, unless it is used from outside the cluster by a person
    // still here (a CI system's token: seen acting, with a live owner).
    let used_by_owner = acted && owners.people.iter().any(|p| !p.departed);
    if kind == IdentityKind::ServiceAccount
        && scope.is_some_and(|c| coverage.workload_clusters.contains(c))
        && !has_in(EdgeKind::RunsAs)
        && !used_by_owner
    {
        return Some(OrphanReason::NoWorkload);
    }
    let referenced = owners.confidence > 0.0
        || ins().any(|e| {
            matches!(
                e.kind,
                EdgeKind::RunsAs
                    | EdgeKind::Federates
                    | EdgeKind::Assumed
                    | EdgeKind::SessionOf
                    | EdgeKind::HasCredential
                    | EdgeKind::BoundTo
            ) || (e.kind == EdgeKind::CanAssume
                && g.node(e.from)
                    .is_some_and(|n| !matches!(n.kind, NodeKind::Account)))
        })
        || outs().any(|e| {
            matches!(
                e.kind,
                EdgeKind::DefinedIn | EdgeKind::BoundTo | EdgeKind::HasCredential
            )
        });
    (!referenced).then_some(OrphanReason::Unreferenced)
}

/// One node of a blast-radius tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reach {
    pub node: String,
    pub label: String,
    pub node_kind: &'static str,
    /// The edge from the parent (none at the root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<EdgeKind>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Reach>,
}

/// Blast radius options.
#[derive(Debug, Clone, Copy)]
pub struct BlastOptions {
    /// Only what was actually created at or after this time (containment mode).
    pub since: Option<i64>,
    pub max_depth: usize,
    pub max_nodes: usize,
}

impl Default for BlastOptions {
    fn default() -> Self {
        BlastOptions {
            since: None,
            max_depth: 6,
            max_nodes: 5_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlastRadius {
    pub root: Reach,
    /// Identities and credentials reached (the root excluded).
    pub identities: usize,
    pub resources: usize,
    /// The walk stopped at `max_nodes`.
    pub truncated: bool,
}

fn followed(e: &EdgeView<'_>, since: Option<i64>) -> bool {
    follows(e.kind, e.last_seen, since)
}

/// Whether a blast-radius walk follows an edge of `kind` last seen at `last_seen` (with
/// `since`: containment).
pub fn follows(kind: EdgeKind, last_seen: Option<i64>, since: Option<i64>) -> bool {
    match since {
        None => matches!(
            kind,
            EdgeKind::CanAssume
                | EdgeKind::Federates
                | EdgeKind::HasCredential
                | EdgeKind::SessionOf
                | EdgeKind::BoundTo
                | EdgeKind::Can
                | EdgeKind::RunsAs
                | EdgeKind::Created
                // What an agent's session can act with: the keys its tool calls named.
                | EdgeKind::Used
        ),
        // Containment: what was made at or after `t` (a key it only used is its owner's
        // to rotate, not the attacker's to revoke).
        Some(t) => {
            matches!(kind, EdgeKind::Created | EdgeKind::HasCredential)
                && last_seen.is_some_and(|s| s >= t)
        }
    }
}

/// Everything `id` can reach: identities it can assume, become or holds credentials of,
/// and resources with the actions allowed — as a breadth-first tree (each node once, at
/// its shortest distance). With `since`, only the identities and credentials it (and what
/// it created) actually created at or after that time.
pub fn blast_radius(g: &Graph, id: NodeId, opts: BlastOptions) -> BlastRadius {
    // BFS recording each node's parent edge; then assemble the tree.
    let mut parent: FxHashMap<NodeId, Parent> = FxHashMap::default();
    let mut order = vec![id];
    let mut seen: FxHashSet<NodeId> = FxHashSet::from_iter([id]);
    let mut queue = VecDeque::from([(id, 0usize)]);
    let mut truncated = false;
    while let Some((at, d)) = queue.pop_front() {
        if d >= opts.max_depth {
            continue;
        }
        // Resources are leaves; so are people.
        if at != id
            && g.node(at).is_some_and(|n| {
                matches!(
                    n.kind,
                    NodeKind::Resource | NodeKind::Person | NodeKind::Team
                )
            })
        {
            continue;
        }
        let mut next: Vec<EdgeView<'_>> = g
            .out_edges(at)
            .take(MAX_EDGES_PER_NODE * 4)
            .filter(|e| followed(e, opts.since))
            .collect();
        if opts.since.is_some() {
            // A role's sessions made since `t` (by whoever assumed it).
            for s in g
                .in_edges(at)
                .take(MAX_EDGES_PER_NODE * 4)
                .filter(|e| e.kind == EdgeKind::SessionOf)
            {
                if let Some(c) = g
                    .in_edges(s.from)
                    .find(|c| c.kind == EdgeKind::Created && followed(c, opts.since))
                {
                    next.push(EdgeView {
                        from: at,
                        to: s.from,
                        kind: EdgeKind::Created,
                        ..c
                    });
                }
            }
        }
        // By kind, then by key: the same tree whatever order the graph was built in (a
        // store's row order, a view's).
        next.sort_by(|a, b| (a.kind, g.key(a.to)).cmp(&(b.kind, g.key(b.to))));
        for e in next {
            if seen.contains(&e.to) {
                continue;
            }
            if seen.len() >= opts.max_nodes {
                truncated = true;
                break;
            }
            seen.insert(e.to);
            parent.insert(
                e.to,
                (at, e.kind, e.detail.cloned(), e.first_seen, e.last_seen),
            );
            order.push(e.to);
            queue.push_back((e.to, d + 1));
        }
    }
    // Build children lists, then the tree bottom-up in reverse BFS order.
    let mut children: FxHashMap<NodeId, Vec<Reach>> = FxHashMap::default();
    let (mut identities, mut resources) = (0, 0);
    for &n in order.iter().skip(1).rev() {
        let Some((p, kind, detail, first, last)) = parent.get(&n) else {
            continue;
        };
        let node = g.node(n);
        match node.map(|x| x.kind) {
            Some(NodeKind::Identity(_) | NodeKind::Credential) => identities += 1,
            Some(NodeKind::Resource) => resources += 1,
            _ => {}
        }
        let mut kids = children.remove(&n).unwrap_or_default();
        kids.reverse();
        let r = Reach {
            node: g.key(n).to_owned(),
            label: node.map(|x| x.label.to_string()).unwrap_or_default(),
            node_kind: node.map_or("", |x| x.kind.as_str()),
            via: Some(*kind),
            actions: detail
                .as_ref()
                .map(|d| d.actions.clone())
                .unwrap_or_default(),
            conditions: detail
                .as_ref()
                .map(|d| d.conditions.clone())
                .unwrap_or_default(),
            first_seen: *first,
            last_seen: *last,
            children: kids,
        };
        children.entry(*p).or_default().push(r);
    }
    let node = g.node(id);
    let mut kids = children.remove(&id).unwrap_or_default();
    kids.reverse();
    BlastRadius {
        root: Reach {
            node: g.key(id).to_owned(),
            label: node.map(|x| x.label.to_string()).unwrap_or_default(),
            node_kind: node.map_or("", |x| x.kind.as_str()),
            via: None,
            actions: Vec::new(),
            conditions: Vec::new(),
            first_seen: None,
            last_seen: None,
            children: kids,
        },
        identities,
        resources,
        truncated,
    }
}

/// A role trusting a principal outside the allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignTrust {
    pub role: String,
    pub role_account: String,
    /// The trusted principal (`aws-account:<id>`, a principal ARN, `aws-account:*`).
    pub trusted: String,
    /// The trusted account (`*` for anyone).
    pub trusted_account: String,
    pub conditions: Vec<String>,
}

/// `can_assume` edges into roles from principals of accounts that are neither the role's
/// own nor on `allow` (and from anyone).
pub fn foreign_trusts(g: &Graph, allow: &[String]) -> Vec<ForeignTrust> {
    let mut out = Vec::new();
    for e in g.edges().filter(|e| e.kind == EdgeKind::CanAssume) {
        let role = g.key(e.to);
        let Some(role_account) = role.split(':').nth(4) else {
            continue;
        };
        let from = g.key(e.from);
        let trusted_account = match from.strip_prefix("aws-account:") {
            Some(a) => a,
            None if from.starts_with("arn:aws:iam::") => from.split(':').nth(4).unwrap_or(""),
            None => continue,
        };
        if trusted_account == role_account || allow.iter().any(|a| a == trusted_account) {
            continue;
        }
        out.push(ForeignTrust {
            role: role.to_owned(),
            role_account: role_account.to_owned(),
            trusted: from.to_owned(),
            trusted_account: trusted_account.to_owned(),
            conditions: e.detail.map(|d| d.conditions.clone()).unwrap_or_default(),
        });
    }
    out.sort_by(|a, b| (&a.role, &a.trusted).cmp(&(&b.role, &b.trusted)));
    out
}

//! The identity graph: identities, credentials, owners, workloads, resources and policies
//! as nodes; typed edges between them, each with its evidence.
//!
//! Edges come from two places, and the graph keeps them apart so it can update in place:
//! - **derived** edges are computed from one *origin* (an identity record, a snapshot
//!   object, an account's IAM snapshot). Re-deriving an origin replaces exactly the edges it
//!   produced before ([`Graph::set_edges`]); nothing else is touched.
//! - **observed** edges come from events (`assumed`, `created`, `session_of`); each new
//!   event adds to one edge's count, first/last seen and event ids ([`Graph::observe`]).
//!
//! Nodes are never removed (an identity deleted in the cloud stays a node with its
//! history); edges are. Lookup is by a string key: an identity's canonical id, or a prefixed
//! key for the other kinds (`person:…`, `team:…`, `tf:…`, `k8s:…`, `resource:…`).

use std::fmt;

use keyward_model::{IdentityKind, ObservedEdge};
use petgraph::Direction;
use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::Serialize;

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "kind")]
pub enum NodeKind {
    Identity(IdentityKind),
    /// A credential that is not an inventory identity of its own (a password, a
    /// credential-report key slot, a service-account token).
    Credential,
    Person,
    Team,
    /// A pod, deployment, Lambda function, EC2 instance profile…
    Workload,
    Repository,
    /// A Terraform file or resource address.
    Iac,
    /// An S3 bucket, secret, database, Kubernetes object, or a resource pattern.
    Resource,
    /// An IAM managed policy, an IAM group's or a Kubernetes Role's rules.
    Policy,
    Group,
    /// A Kubernetes RoleBinding / ClusterRoleBinding.
    Binding,
    Account,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Identity(k) => k.as_str(),
            NodeKind::Credential => "credential",
            NodeKind::Person => "person",
            NodeKind::Team => "team",
            NodeKind::Workload => "workload",
            NodeKind::Repository => "repository",
            NodeKind::Iac => "iac",
            NodeKind::Resource => "resource",
            NodeKind::Policy => "policy",
            NodeKind::Group => "group",
            NodeKind::Binding => "binding",
            NodeKind::Account => "account",
        }
    }

    /// The kind as a store keeps it: `identity:<kind>` for identities, else
    /// [`NodeKind::as_str`]; [`NodeKind::from_code`] reads it back.
    pub fn code(self) -> std::borrow::Cow<'static, str> {
        match self {
            NodeKind::Identity(k) => format!("identity:{}", k.as_str()).into(),
            other => other.as_str().into(),
        }
    }

    pub fn from_code(code: &str) -> Option<NodeKind> {
        if let Some(k) = code.strip_prefix("identity:") {
            return IdentityKind::parse(k).map(NodeKind::Identity);
        }
        Some(match code {
            "credential" => NodeKind::Credential,
            "person" => NodeKind::Person,
            "team" => NodeKind::Team,
            "workload" => NodeKind::Workload,
            "repository" => NodeKind::Repository,
            "iac" => NodeKind::Iac,
            "resource" => NodeKind::Resource,
            "policy" => NodeKind::Policy,
            "group" => NodeKind::Group,
            "binding" => NodeKind::Binding,
            "account" => NodeKind::Account,
            _ => return None,
        })
    }

    /// The coarse class (`identity` for every identity kind).
    pub fn class(self) -> &'static str {
        match self {
            NodeKind::Identity(_) => "identity",
            other => other.as_str(),
        }
    }
}

/// Edge types. `snake_case` names are the export contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Owner (person, team) → what it owns; a person → their own human identity.
    Owns,
    /// Identity or resource → the IaC file / repository that defines it.
    DefinedIn,
    /// Principal → role its trust policy lets it assume (detail: open conditions).
    CanAssume,
    /// Principal → role it was seen assuming.
    Assumed,
    /// Identity → identity or credential it was seen creating.
    Created,
    /// Identity → its credential (access key, password, token).
    HasCredential,
    /// User → group; person → team.
    MemberOf,
    /// Service account → binding; binding → role.
    BoundTo,
    /// Workload → the identity it runs as.
    RunsAs,
    /// OIDC subject / IRSA service account → the role it becomes.
    Federates,
    /// Identity or role → resource it may act on (detail: actions), or → identity it can
    /// take over (detail: escalation technique).
    Can,
    /// STS session → the role it is a session of.
    SessionOf,
    /// Identity → a credential it was seen using without having created it (an AI agent's
    /// session → the access key its tool call named).
    Used,
}

impl EdgeKind {
    pub const ALL: [EdgeKind; 13] = [
        EdgeKind::Owns,
        EdgeKind::DefinedIn,
        EdgeKind::CanAssume,
        EdgeKind::Assumed,
        EdgeKind::Created,
        EdgeKind::HasCredential,
        EdgeKind::MemberOf,
        EdgeKind::BoundTo,
        EdgeKind::RunsAs,
        EdgeKind::Federates,
        EdgeKind::Can,
        EdgeKind::SessionOf,
        EdgeKind::Used,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Owns => "owns",
            EdgeKind::DefinedIn => "defined_in",
            EdgeKind::CanAssume => "can_assume",
            EdgeKind::Assumed => "assumed",
            EdgeKind::Created => "created",
            EdgeKind::HasCredential => "has_credential",
            EdgeKind::MemberOf => "member_of",
            EdgeKind::BoundTo => "bound_to",
            EdgeKind::RunsAs => "runs_as",
            EdgeKind::Federates => "federates",
            EdgeKind::Can => "can",
            EdgeKind::SessionOf => "session_of",
            EdgeKind::Used => "used",
        }
    }

    pub fn parse(s: &str) -> Option<EdgeKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node: its kind and a short label for display (its key is [`Graph::key`]).
#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub label: Box<str>,
    /// A person who has left (people directory), or an identity / workload known deleted.
    pub gone: bool,
}

/// Where an edge's evidence comes from, beyond its counts. Kept out of line: most edges
/// have none beyond their origin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Detail {
    /// The snapshot file, IaC file, object or policy that says so.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Event ids, newest last (at most [`MAX_EVENT_IDS`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
    /// Allowed actions (for `can`), or the escalation technique.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// Condition keys that must hold and that Keyward could not decide.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
}

pub const MAX_EVENT_IDS: usize = 5;

/// Which origin produced a derived edge; observed edges have none.
const OBSERVED: u32 = u32::MAX;

/// An edge's stored weight. Times are epoch milliseconds, `0` when unknown.
#[derive(Debug, Clone, Copy)]
struct Weight {
    kind: EdgeKind,
    origin: u32,
    count: u32,
    first: i64,
    last: i64,
    /// Index into `details` + 1; `0` when the edge has no detail.
    detail: u32,
}

/// A derived edge to set (see [`Graph::set_edges`]): endpoints by key, created as needed.
#[derive(Debug, Clone)]
pub struct EdgeSpec {
    pub from: NodeSpec,
    pub kind: EdgeKind,
    pub to: NodeSpec,
    pub detail: Option<Detail>,
    /// When the fact behind the edge was true (a snapshot's time, a creation time).
    pub at: Option<i64>,
}

/// A node by key, with the kind and label to use if it does not exist yet.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub key: String,
    pub kind: NodeKind,
    pub label: String,
}

impl NodeSpec {
    pub fn new(key: impl Into<String>, kind: NodeKind, label: impl Into<String>) -> Self {
        NodeSpec {
            key: key.into(),
            kind,
            label: label.into(),
        }
    }
}

/// A read view of one edge.
#[derive(Debug, Clone, Copy)]
pub struct EdgeView<'g> {
    pub from: NodeId,
    pub to: NodeId,
    pub kind: EdgeKind,
    pub count: u32,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    /// The node this derived edge was derived from (its key: [`Graph::key`]); `None` for
    /// observed edges.
    pub origin: Option<NodeId>,
    pub detail: Option<&'g Detail>,
}

/// A node handle, valid for the graph's lifetime (nodes are never removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(NodeIndex<u32>);

impl NodeId {
    pub fn index(self) -> usize {
        self.0.index()
    }
}

type EdgeKey = (u32, EdgeKind, u32);

/// The edges already set in one [`Graph::set_edges`] call: a list for the usual handful,
/// a map for the rare origin with many.
enum Seen {
    Few(Vec<(EdgeKey, EdgeIndex<u32>)>),
    Many(FxHashMap<EdgeKey, EdgeIndex<u32>>),
}

impl Seen {
    fn new(n: usize) -> Self {
        if n <= 16 {
            Seen::Few(Vec::with_capacity(n))
        } else {
            Seen::Many(FxHashMap::default())
        }
    }

    fn get(&self, k: EdgeKey) -> Option<EdgeIndex<u32>> {
        match self {
            Seen::Few(v) => v.iter().find(|(x, _)| *x == k).map(|(_, e)| *e),
            Seen::Many(m) => m.get(&k).copied(),
        }
    }

    fn insert(&mut self, k: EdgeKey, e: EdgeIndex<u32>) {
        match self {
            Seen::Few(v) => v.push((k, e)),
            Seen::Many(m) => {
                m.insert(k, e);
            }
        }
    }
}

/// Edge details, stored once per distinct value: derived edges share them (millions of
/// `can` edges carry the same few action lists). Handles are slot + 1; `0` is "none".
/// Observed edges own theirs, since their event ids change in place.
#[derive(Default)]
struct Details {
    items: Vec<Detail>,
    refs: Vec<u32>,
    /// Slots of shared details, by the hash of their value.
    shared: HashTable<u32>,
    free: Vec<u32>,
}

fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
    FxBuildHasher.hash_one(v)
}

/// Appends a key to the arena; returns its offset / 8.
fn arena_push(arena: &mut Vec<u8>, node: u32, key: &str) -> u32 {
    let at = arena.len();
    arena.extend_from_slice(&node.to_le_bytes());
    arena.extend_from_slice(&(key.len() as u32).to_le_bytes());
    arena.extend_from_slice(key.as_bytes());
    arena.resize(arena.len().next_multiple_of(8), 0);
    (at / 8) as u32
}

/// The length word's top bit: the node is settled (see [`Graph::ensure`]).
const SETTLED: u32 = 1 << 31;

/// The (node index, key bytes) stored at offset / 8 `at`.
fn arena_entry(arena: &[u8], at: u32) -> Option<(u32, &[u8])> {
    let at = at as usize * 8;
    let head = arena.get(at..at + 8)?;
    let node = u32::from_le_bytes(head.get(..4)?.try_into().ok()?);
    let len = (u32::from_le_bytes(head.get(4..)?.try_into().ok()?) & !SETTLED) as usize;
    Some((node, arena.get(at + 8..at + 8 + len)?))
}

fn arena_settled(arena: &[u8], at: u32) -> bool {
    let at = at as usize * 8;
    arena
        .get(at + 4..at + 8)
        .and_then(|b| b.try_into().ok())
        .is_some_and(|b| u32::from_le_bytes(b) & SETTLED != 0)
}

fn arena_settle(arena: &mut [u8], at: u32) {
    let at = at as usize * 8;
    if let Some(b) = arena.get_mut(at + 7) {
        *b |= 0x80;
    }
}

/// Kinds a later, more precise sighting may replace.
fn is_vague(kind: NodeKind) -> bool {
    matches!(
        kind,
        NodeKind::Resource | NodeKind::Identity(IdentityKind::Unknown)
    )
}

/// 32 bits of a key's hash, kept in the index.
fn short_hash(key: &str) -> u32 {
    let h = hash_of(key);
    (h ^ (h >> 32)) as u32
}

/// The table's hash from a short hash: spread over all 64 bits, since the table takes its
/// probe tags from the top bits.
fn spread(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Details {
    fn get(&self, h: u32) -> Option<&Detail> {
        self.items.get((h as usize).checked_sub(1)?)
    }

    fn slot(&mut self, d: Detail) -> u32 {
        match self.free.pop() {
            Some(s) => {
                if let (Some(x), Some(r)) = (
                    self.items.get_mut(s as usize),
                    self.refs.get_mut(s as usize),
                ) {
                    *x = d;
                    *r = 1;
                }
                s
            }
            None => {
                self.items.push(d);
                self.refs.push(1);
                self.items.len() as u32 - 1
            }
        }
    }

    /// A shared handle to `d`.
    fn intern(&mut self, d: Option<Detail>) -> u32 {
        let Some(d) = d else { return 0 };
        let h = hash_of(&d);
        let items = &self.items;
        if let Some(&s) = self.shared.find(h, |&s| items.get(s as usize) == Some(&d)) {
            if let Some(r) = self.refs.get_mut(s as usize) {
                *r += 1;
            }
            return s + 1;
        }
        let s = self.slot(d);
        let items = &self.items;
        self.shared
            .insert_unique(h, s, |&x| items.get(x as usize).map_or(0, hash_of));
        s + 1
    }

    /// A handle owned by one edge.
    fn own(&mut self, d: Detail) -> u32 {
        self.slot(d) + 1
    }

    fn get_owned_mut(&mut self, h: u32) -> Option<&mut Detail> {
        self.items.get_mut((h as usize).checked_sub(1)?)
    }

    fn release(&mut self, h: u32) {
        let Some(s) = h.checked_sub(1) else { return };
        let Some(r) = self.refs.get_mut(s as usize) else {
            return;
        };
        *r = r.saturating_sub(1);
        if *r > 0 {
            return;
        }
        if let Some(d) = self.items.get(s as usize)
            && let Ok(e) = self.shared.find_entry(hash_of(d), |&x| x == s)
        {
            e.remove();
        }
        if let Some(x) = self.items.get_mut(s as usize) {
            *x = Detail::default();
        }
        self.free.push(s);
    }
}

#[derive(Default)]
pub struct Graph {
    g: StableDiGraph<Node, Weight, u32>,
    /// (short hash of the key, arena offset / 8): the table grows and probes without
    /// touching keys, and a hit costs one read of the arena. Why not an interner crate
    /// (`lasso`, `string-interner`): `docs/performance.md`, "our own key index".
    index: HashTable<(u32, u32)>,
    /// Node keys, each stored once: `[node index: u32][length: u32][bytes]`, 8-aligned.
    arena: Vec<u8>,
    /// Arena offset / 8 of each node's key, by node index.
    key_at: Vec<u32>,
    details: Details,
    /// Derived edges by origin node.
    by_origin: FxHashMap<u32, Vec<EdgeIndex<u32>>>,
    observed: FxHashMap<(u32, EdgeKind, u32), EdgeIndex<u32>>,
    /// Observed edges changed since [`Graph::take_observed`].
    dirty_observed: Vec<EdgeIndex<u32>>,
    /// People marked gone (departed), kept as nodes change.
    gone_people: usize,
    /// Why a node is gone, where something beyond its own record says so (an owner absent
    /// from the people directory: `not in people.csv`).
    gone_why: FxHashMap<u32, Box<str>>,
    /// What changed since [`Graph::take_changes`], once [`Graph::track_changes`] was called.
    changes: Option<Box<Changes>>,
}

/// Nodes and origins changed since the last [`Graph::take_changes`]: what a store keeping
/// the graph's nodes and derived edges must write again.
#[derive(Debug, Default)]
pub struct Changes {
    /// Nodes added, or whose kind, label or departure changed.
    pub nodes: Vec<NodeId>,
    /// Origins whose derived edges were set again.
    pub origins: Vec<NodeId>,
}

fn gone_person(n: &Node) -> bool {
    n.gone && n.kind == NodeKind::Person
}

/// Keeps a count of things with a property when one thing's property goes from `was` to
/// `now`.
pub(crate) fn recount(count: &mut usize, was: bool, now: bool) {
    *count = *count + usize::from(now) - usize::from(was);
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("nodes", &self.g.node_count())
            .field("edges", &self.g.edge_count())
            .finish()
    }
}

impl Graph {
    pub fn new() -> Self {
        Graph::default()
    }

    pub fn node_count(&self) -> usize {
        self.g.node_count()
    }

    pub fn edge_count(&self) -> usize {
        self.g.edge_count()
    }

    /// Reserves room for about `nodes` nodes and `edges` edges.
    pub fn reserve(&mut self, nodes: usize, edges: usize) {
        self.g.reserve_nodes(nodes);
        self.g.reserve_edges(edges);
        self.index.reserve(nodes, |&(h, _)| spread(h));
    }

    /// The node with this key: its index, arena offset, and whether it is settled.
    fn lookup_at(&self, key: &str, h: u32) -> Option<(NodeIndex<u32>, u32, bool)> {
        let arena = &self.arena;
        let &(_, at) = self.index.find(spread(h), |&(x, at)| {
            x == h && arena_entry(arena, at).is_some_and(|(_, k)| k == key.as_bytes())
        })?;
        let (i, _) = arena_entry(arena, at)?;
        Some((NodeIndex::new(i as usize), at, arena_settled(arena, at)))
    }

    fn lookup(&self, key: &str) -> Option<NodeIndex<u32>> {
        self.lookup_at(key, short_hash(key)).map(|(i, _, _)| i)
    }

    pub fn find(&self, key: &str) -> Option<NodeId> {
        self.lookup(key).map(NodeId)
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.g.node_weight(id.0)
    }

    /// The node's key (empty for an id of another graph).
    pub fn key(&self, id: NodeId) -> &str {
        self.key_at
            .get(id.index())
            .and_then(|&at| arena_entry(&self.arena, at))
            .and_then(|(_, k)| std::str::from_utf8(k).ok())
            .unwrap_or("")
    }

    /// Every node with its key.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &str, &Node)> {
        self.g.node_indices().filter_map(|i| {
            self.g
                .node_weight(i)
                .map(|n| (NodeId(i), self.key(NodeId(i)), n))
        })
    }

    /// The node with this key, created with `kind` and `label` if absent. An existing
    /// node's kind is refined when it was only known as a generic resource or an unknown
    /// identity.
    pub fn ensure(&mut self, spec: &NodeSpec) -> NodeId {
        let h = short_hash(&spec.key);
        if let Some((i, at, settled)) = self.lookup_at(&spec.key, h) {
            // A settled node (precise kind, a label) has nothing to refine: not read.
            if !settled && let Some(n) = self.g.node_weight_mut(i) {
                let mut changed = false;
                if is_vague(n.kind) && n.kind != spec.kind && spec.kind != NodeKind::Resource {
                    let was = gone_person(n);
                    n.kind = spec.kind;
                    recount(&mut self.gone_people, was, gone_person(n));
                    changed = true;
                }
                if n.label.is_empty() && !spec.label.is_empty() && spec.label != spec.key {
                    n.label = spec.label.as_str().into();
                    changed = true;
                }
                if !is_vague(n.kind) && !n.label.is_empty() {
                    arena_settle(&mut self.arena, at);
                }
                if changed {
                    self.changed_node(NodeId(i));
                }
            }
            return NodeId(i);
        }
        // A label that repeats the key is not stored twice.
        let label = if spec.label == spec.key {
            ""
        } else {
            spec.label.as_str()
        };
        let i = self.g.add_node(Node {
            kind: spec.kind,
            label: label.into(),
            gone: false,
        });
        let at = arena_push(&mut self.arena, i.index() as u32, &spec.key);
        if !is_vague(spec.kind) && !label.is_empty() {
            arena_settle(&mut self.arena, at);
        }
        if self.key_at.len() <= i.index() {
            self.key_at.resize(i.index() + 1, 0);
        }
        if let Some(k) = self.key_at.get_mut(i.index()) {
            *k = at;
        }
        self.index
            .insert_unique(spread(h), (h, at), |&(x, _)| spread(x));
        self.changed_node(NodeId(i));
        NodeId(i)
    }

    /// Starts recording what changes (see [`Graph::take_changes`]); off by default, so a
    /// graph built to answer queries pays nothing.
    pub fn track_changes(&mut self) {
        self.changes.get_or_insert_with(Box::default);
    }

    /// The nodes and origins changed since tracking started or since the last call, each
    /// once, in index order.
    pub fn take_changes(&mut self) -> Changes {
        let Some(c) = self.changes.as_mut() else {
            return Changes::default();
        };
        let mut c = std::mem::take(&mut **c);
        for list in [&mut c.nodes, &mut c.origins] {
            list.sort_unstable();
            list.dedup();
        }
        c
    }

    fn changed_node(&mut self, id: NodeId) {
        if let Some(c) = self.changes.as_mut() {
            c.nodes.push(id);
        }
    }

    fn changed_origin(&mut self, id: NodeId) {
        if let Some(c) = self.changes.as_mut() {
            c.nodes.push(id);
            c.origins.push(id);
        }
    }

    /// The edges derived from `origin`, in the order it gave them.
    pub fn origin_edges(&self, origin: NodeId) -> impl Iterator<Item = EdgeView<'_>> {
        let o = u32::try_from(origin.index()).unwrap_or(u32::MAX);
        self.by_origin
            .get(&o)
            .into_iter()
            .flatten()
            .filter_map(|&e| self.view(e))
    }

    /// Marks a node gone (departed person, deleted identity or workload) or back.
    pub fn set_gone(&mut self, id: NodeId, gone: bool) {
        if let Some(n) = self.g.node_weight_mut(id.0) {
            let was = gone_person(n);
            let changed = n.gone != gone;
            n.gone = gone;
            recount(&mut self.gone_people, was, gone_person(n));
            if changed {
                self.changed_node(id);
            }
        }
        if !self.gone_why.is_empty()
            && self
                .gone_why
                .remove(&id.0.index().try_into().unwrap_or(u32::MAX))
                .is_some()
        {
            self.changed_node(id);
        }
    }

    /// Marks a node gone for a reason its own record does not give (see
    /// [`Graph::gone_because`]).
    pub fn set_gone_because(&mut self, id: NodeId, why: &str) {
        if self.gone_because(id) != Some(why) {
            self.changed_node(id);
        }
        self.set_gone(id, true);
        if let Ok(i) = u32::try_from(id.0.index()) {
            self.gone_why.insert(i, why.into());
        }
    }

    /// Why a node is gone, when [`Graph::set_gone_because`] said.
    pub fn gone_because(&self, id: NodeId) -> Option<&str> {
        let i = u32::try_from(id.0.index()).ok()?;
        self.gone_why.get(&i).map(|w| &**w)
    }

    /// Whether any person is marked gone (departed): without one, nothing can have lost
    /// all of its owners.
    pub fn any_departed_person(&self) -> bool {
        self.gone_people > 0
    }

    /// Replaces every edge derived from `origin` with `edges`; the origin node takes the
    /// kind and label given. Edges that are unchanged
    /// keep their identity; the rest are removed or added. Returns (added, removed).
    pub fn set_edges(&mut self, origin: &NodeSpec, edges: Vec<EdgeSpec>) -> (usize, usize) {
        let on = self.ensure(origin).0;
        // What an origin says about itself wins over what others guessed.
        if let Some(n) = self.g.node_weight_mut(on) {
            let was = gone_person(n);
            let relabel = !origin.label.is_empty() && *n.label != *origin.label;
            let changed = n.kind != origin.kind || relabel;
            n.kind = origin.kind;
            recount(&mut self.gone_people, was, gone_person(n));
            if relabel {
                n.label = origin.label.as_str().into();
            }
            if changed {
                self.changed_node(NodeId(on));
            }
        }
        // Whether the origin's edges, their order, evidence or times changed: a store
        // keeping them rewrites the origin only then (an account re-derived unchanged
        // writes nothing).
        let mut changed = false;
        let o = on.index() as u32;
        let old = self.by_origin.remove(&o).unwrap_or_default();
        // Old edges by (from, kind, to), to keep the ones that are derived again.
        let mut keep: FxHashMap<(u32, EdgeKind, u32), EdgeIndex<u32>> = FxHashMap::default();
        for &e in &old {
            if let (Some((a, b)), Some(w)) = (self.g.edge_endpoints(e), self.g.edge_weight(e)) {
                keep.insert((a.index() as u32, w.kind, b.index() as u32), e);
            }
        }
        let mut now = Vec::with_capacity(edges.len());
        let mut fresh = Seen::new(edges.len());
        let mut added = 0;
        for spec in edges {
            let a = self.ensure(&spec.from).0;
            let b = self.ensure(&spec.to).0;
            let k = (a.index() as u32, spec.kind, b.index() as u32);
            let t = spec.at.unwrap_or(0);
            if let Some(e) = keep.remove(&k) {
                fresh.insert(k, e);
                let old_detail = self.g.edge_weight(e).map_or(0, |w| w.detail);
                let same = match (&spec.detail, old_detail) {
                    (None, 0) => true,
                    (Some(d), n) if n > 0 => self.details.get(n) == Some(d),
                    _ => false,
                };
                if !same {
                    changed = true;
                    self.details.release(old_detail);
                    let detail = self.details.intern(spec.detail);
                    if let Some(w) = self.g.edge_weight_mut(e) {
                        w.detail = detail;
                    }
                }
                // A derived edge states the origin's current facts: its time is replaced.
                if let Some(w) = self.g.edge_weight_mut(e) {
                    changed |= w.first != t || w.last != t;
                    w.first = t;
                    w.last = t;
                }
                now.push(e);
                continue;
            }
            if let Some(e) = fresh.get(k) {
                // The same edge twice from one origin: one edge, evidence combined.
                changed |= spec.detail.is_some();
                self.merge_detail(e, spec.detail);
                continue;
            }
            let detail = self.details.intern(spec.detail);
            let e = self.g.add_edge(
                a,
                b,
                Weight {
                    kind: spec.kind,
                    origin: o,
                    count: 1,
                    first: t,
                    last: t,
                    detail,
                },
            );
            fresh.insert(k, e);
            now.push(e);
            added += 1;
        }
        let removed = keep.len();
        if changed || added > 0 || removed > 0 || old != now {
            self.changed_origin(NodeId(on));
        }
        for (_, e) in keep {
            if let Some(w) = self.g.remove_edge(e) {
                self.details.release(w.detail);
            }
        }
        if !now.is_empty() {
            self.by_origin.insert(o, now);
        }
        (added, removed)
    }

    fn merge_detail(&mut self, e: EdgeIndex<u32>, add: Option<Detail>) {
        let Some(add) = add else { return };
        let cur = self.g.edge_weight(e).map_or(0, |w| w.detail);
        // Shared details are never changed in place: merge into a copy, intern that.
        let mut merged = self.details.get(cur).cloned().unwrap_or_default();
        {
            let d = &mut merged;
            for (to, from) in [
                (&mut d.actions, add.actions),
                (&mut d.conditions, add.conditions),
                (&mut d.event_ids, add.event_ids),
            ] {
                for x in from {
                    if !to.contains(&x) {
                        to.push(x);
                    }
                }
            }
            if d.source.is_empty() {
                d.source = add.source;
            }
        }
        self.details.release(cur);
        let h = self.details.intern(Some(merged));
        if let Some(w) = self.g.edge_weight_mut(e) {
            w.detail = h;
        }
    }

    /// Adds one derived edge to `origin`'s set without re-deriving the rest (bulk loads).
    pub fn add_edge(&mut self, origin: NodeId, spec: EdgeSpec) {
        self.changed_origin(origin);
        let a = self.ensure(&spec.from).0;
        let b = self.ensure(&spec.to).0;
        let t = spec.at.unwrap_or(0);
        let detail = self.details.intern(spec.detail);
        let e = self.g.add_edge(
            a,
            b,
            Weight {
                kind: spec.kind,
                origin: origin.0.index() as u32,
                count: 1,
                first: t,
                last: t,
                detail,
            },
        );
        self.by_origin
            .entry(origin.0.index() as u32)
            .or_default()
            .push(e);
    }

    /// Records one event that shows `from` —`kind`→ `to`. An event id already recorded on
    /// the edge is not counted again.
    pub fn observe(
        &mut self,
        kind: EdgeKind,
        from: &NodeSpec,
        to: &NodeSpec,
        at: i64,
        event_id: Option<&str>,
    ) {
        let a = self.ensure(from).0;
        let b = self.ensure(to).0;
        let k = (a.index() as u32, kind, b.index() as u32);
        let e = match self.observed.get(&k) {
            Some(&e) => e,
            None => {
                let detail = self.details.own(Detail::default());
                let e = self.g.add_edge(
                    a,
                    b,
                    Weight {
                        kind,
                        origin: OBSERVED,
                        count: 0,
                        first: 0,
                        last: 0,
                        detail,
                    },
                );
                self.observed.insert(k, e);
                e
            }
        };
        let Some(w) = self.g.edge_weight_mut(e) else {
            return;
        };
        if let (Some(id), Some(d)) = (event_id, self.details.get_owned_mut(w.detail)) {
            if d.event_ids.iter().any(|x| x == id) {
                return;
            }
            d.event_ids.push(id.to_owned());
            if d.event_ids.len() > MAX_EVENT_IDS {
                d.event_ids.remove(0);
            }
        }
        w.count = w.count.saturating_add(1);
        w.first = if w.first == 0 { at } else { w.first.min(at) };
        w.last = w.last.max(at);
        self.dirty_observed.push(e);
    }

    /// Restores an observed edge read back from the store.
    pub fn load_observed(&mut self, o: &ObservedEdge, from_kind: NodeKind, to_kind: NodeKind) {
        let Some(kind) = EdgeKind::parse(&o.kind) else {
            return;
        };
        let from = NodeSpec::new(o.from.as_str(), from_kind, "");
        let to = NodeSpec::new(o.to.as_str(), to_kind, "");
        let a = self.ensure(&from).0;
        let b = self.ensure(&to).0;
        let detail = self.details.own(Detail {
            event_ids: o.event_ids.clone(),
            ..Detail::default()
        });
        let e = self.g.add_edge(
            a,
            b,
            Weight {
                kind,
                origin: OBSERVED,
                count: o.count,
                first: o.first_seen,
                last: o.last_seen,
                detail,
            },
        );
        self.observed
            .insert((a.index() as u32, kind, b.index() as u32), e);
    }

    /// Observed edges changed since the last call, for the store to write.
    pub fn take_observed(&mut self) -> Vec<ObservedEdge> {
        let mut list = std::mem::take(&mut self.dirty_observed);
        list.sort_unstable();
        list.dedup();
        list.into_iter()
            .filter_map(|e| {
                let (a, b) = self.g.edge_endpoints(e)?;
                let w = self.g.edge_weight(e)?;
                let d = self.details.get(w.detail)?;
                Some(ObservedEdge {
                    kind: w.kind.as_str().to_owned(),
                    from: self.key(NodeId(a)).to_owned(),
                    to: self.key(NodeId(b)).to_owned(),
                    count: w.count,
                    first_seen: w.first,
                    last_seen: w.last,
                    event_ids: d.event_ids.clone(),
                })
            })
            .collect()
    }

    fn view(&self, e: EdgeIndex<u32>) -> Option<EdgeView<'_>> {
        let (a, b) = self.g.edge_endpoints(e)?;
        let w = self.g.edge_weight(e)?;
        let origin = (w.origin != OBSERVED).then(|| NodeId(NodeIndex::new(w.origin as usize)));
        let nz = |t: i64| (t != 0).then_some(t);
        Some(EdgeView {
            from: NodeId(a),
            to: NodeId(b),
            kind: w.kind,
            count: w.count,
            first_seen: nz(w.first),
            last_seen: nz(w.last),
            origin,
            detail: self.details.get(w.detail),
        })
    }

    /// Edges leaving `id`.
    pub fn out_edges(&self, id: NodeId) -> impl Iterator<Item = EdgeView<'_>> {
        self.g
            .edges_directed(id.0, Direction::Outgoing)
            .filter_map(|e| self.view(e.id()))
    }

    /// Edges entering `id`.
    pub fn in_edges(&self, id: NodeId) -> impl Iterator<Item = EdgeView<'_>> {
        self.g
            .edges_directed(id.0, Direction::Incoming)
            .filter_map(|e| self.view(e.id()))
    }

    /// Every edge.
    pub fn edges(&self) -> impl Iterator<Item = EdgeView<'_>> {
        self.g.edge_indices().filter_map(|e| self.view(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(key: &str) -> NodeSpec {
        NodeSpec::new(key, NodeKind::Identity(IdentityKind::IamRole), key)
    }

    #[test]
    fn departed_people_are_counted_as_nodes_change() {
        let mut g = Graph::new();
        // A gone identity is not a departed person.
        let role = g.ensure(&n("arn:aws:iam::1:role/r"));
        g.set_gone(role, true);
        assert!(!g.any_departed_person());
        // Known first only as an unknown identity, refined to a person while gone.
        let vague = NodeSpec::new("bob@x", NodeKind::Identity(IdentityKind::Unknown), "");
        let bob = g.ensure(&vague);
        g.set_gone(bob, true);
        assert!(!g.any_departed_person());
        g.ensure(&NodeSpec::new("bob@x", NodeKind::Person, "Bob"));
        assert!(g.any_departed_person());
        g.set_gone(bob, true);
        assert!(g.any_departed_person());
        g.set_gone(bob, false);
        assert!(!g.any_departed_person());
        // An origin that says what it is takes its kind, in both directions.
        g.set_gone(bob, true);
        g.set_edges(&vague, Vec::new());
        assert!(!g.any_departed_person());
        g.set_edges(&NodeSpec::new("bob@x", NodeKind::Person, "Bob"), Vec::new());
        assert!(g.any_departed_person());
    }

    fn e(a: &str, kind: EdgeKind, b: &str) -> EdgeSpec {
        EdgeSpec {
            from: n(a),
            kind,
            to: n(b),
            detail: None,
            at: None,
        }
    }

    fn edges(g: &Graph) -> Vec<(String, EdgeKind, String)> {
        let mut v: Vec<_> = g
            .edges()
            .map(|e| (g.key(e.from).to_owned(), e.kind, g.key(e.to).to_owned()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn set_edges_replaces_only_its_origin() {
        let mut g = Graph::new();
        g.set_edges(&n("o1"), vec![e("a", EdgeKind::Can, "b")]);
        g.set_edges(
            &n("o2"),
            vec![e("a", EdgeKind::Can, "b"), e("b", EdgeKind::Owns, "c")],
        );
        assert_eq!(edges(&g).len(), 3);
        // Re-deriving o2 with one edge fewer removes exactly that one.
        let (added, removed) = g.set_edges(&n("o2"), vec![e("a", EdgeKind::Can, "b")]);
        assert_eq!((added, removed), (0, 1));
        assert_eq!(
            edges(&g),
            vec![
                ("a".into(), EdgeKind::Can, "b".into()),
                ("a".into(), EdgeKind::Can, "b".into())
            ]
        );
        // Same set again: nothing changes.
        assert_eq!(
            g.set_edges(&n("o2"), vec![e("a", EdgeKind::Can, "b")]),
            (0, 0)
        );
        g.set_edges(&n("o1"), Vec::new());
        assert_eq!(edges(&g).len(), 1);
    }

    #[test]
    fn observations_count_once_per_event() {
        let mut g = Graph::new();
        g.observe(EdgeKind::Assumed, &n("u"), &n("r"), 10, Some("e1"));
        g.observe(EdgeKind::Assumed, &n("u"), &n("r"), 5, Some("e2"));
        g.observe(EdgeKind::Assumed, &n("u"), &n("r"), 7, Some("e1"));
        let o = g.take_observed();
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].count, o[0].first_seen, o[0].last_seen), (2, 5, 10));
        assert_eq!(o[0].event_ids, vec!["e1", "e2"]);
        assert!(g.take_observed().is_empty());
        // Restored into a new graph, it continues counting.
        let mut g2 = Graph::new();
        let role = NodeKind::Identity(IdentityKind::IamRole);
        g2.load_observed(&o[0], role, role);
        g2.observe(EdgeKind::Assumed, &n("u"), &n("r"), 20, Some("e3"));
        assert_eq!(g2.take_observed()[0].count, 3);
    }
}

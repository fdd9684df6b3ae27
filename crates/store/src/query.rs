//! The query tables: what `show`, `graph chain`, `graph blast-radius`, `findings
//! --identity` and an inventory page read instead of loading the estate. The engine keeps
//! them in step with its identity graph inside the batches it commits; this crate only
//! stores and reads rows (schema `011_query_tables.sql`, PostgreSQL's
//! `003_query_tables.sql`).

use keyward_model::ObservedEdge;
use keyward_model::time::Millis;

use crate::{FindingRow, Result};

/// A node of the identity graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNodeRow {
    pub key: String,
    /// The order the node first appeared in (assigned by the store; ignored on write).
    pub rank: i64,
    /// `identity:<kind>` or the node kind.
    pub kind: String,
    pub label: String,
    pub gone: bool,
    pub gone_because: Option<String>,
}

/// A derived edge, one of its origin's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphEdgeRow {
    /// The origin node's rank (assigned by the store; ignored on write).
    pub origin: i64,
    /// Its position among the origin's edges.
    pub pos: i64,
    pub src: String,
    pub kind: String,
    pub dst: String,
    /// When the fact held, 0 when unknown.
    pub at: Millis,
    /// The evidence as JSON.
    pub detail: Option<String>,
}

/// How many edges a node has in one direction (each counted up to a limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeCount {
    pub key: String,
    pub observed: usize,
    pub derived: usize,
}

/// Which edges of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Out,
    In,
}

/// How far an activity log reaches (`cloudtrail` per account, `k8s_audit` per cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpan {
    pub source: String,
    pub scope: String,
    pub first_seen: Millis,
    pub last_seen: Millis,
}

/// Which identities an inventory page lists: one platform and kind, in `scope` (their
/// account or their cluster) and `namespace` when given.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    pub platform: &'a str,
    pub kind: &'a str,
    pub scope: Option<&'a str>,
    pub namespace: Option<&'a str>,
}

/// Reads of the query tables.
pub trait QueryTables {
    /// Whether the tables hold the whole estate (a store written by an older version, or
    /// a write that was interrupted between its two commits, leaves them unfilled).
    fn query_tables_filled(&self) -> Result<bool>;
    /// Starts one read transaction for what follows, so a walk of many reads sees one
    /// commit (`false`: ends it).
    fn read_snapshot(&self, on: bool) -> Result<()>;
    fn graph_node(&self, key: &str) -> Result<Option<GraphNodeRow>>;
    /// The nodes of these keys that exist, in no particular order.
    fn graph_nodes(&self, keys: &[&str]) -> Result<Vec<GraphNodeRow>>;
    /// The derived edges of each node of `keys` (distinct), newest origin first (origin,
    /// then position, descending), at most `limit` per node, only those of `kinds` when
    /// given; one node's edges in a run, the nodes in no particular order. A walk asks
    /// for a hop's nodes at once.
    fn graph_edges(
        &self,
        keys: &[&str],
        dir: Direction,
        kinds: Option<&[&str]>,
        limit: usize,
    ) -> Result<Vec<GraphEdgeRow>>;
    /// The observed edges of each node of `keys` (distinct), ordered by kind then the
    /// other end's key, descending (bytewise), at most `limit` per node, only those of
    /// `kinds` when given; one node's edges in a run.
    fn observed_edges_at(
        &self,
        keys: &[&str],
        dir: Direction,
        kinds: Option<&[&str]>,
        limit: usize,
    ) -> Result<Vec<ObservedEdge>>;
    /// How many edges each node of `keys` (distinct) has in direction `dir`, observed and
    /// derived, each counted up to `limit`, from indexes alone (no edge is read): a walk
    /// that follows a few kinds reads only those when it sees all of a node's edges.
    fn edge_counts(&self, keys: &[&str], dir: Direction, limit: usize) -> Result<Vec<EdgeCount>>;
    fn log_span(&self, source: &str, scope: &str) -> Result<Option<LogSpan>>;
    fn covered(&self, what: &str, scope: &str) -> Result<bool>;
    /// Findings about `identity`, or about an identity whose id starts with `prefix`,
    /// newest first (as [`crate::Store::findings`] orders them).
    fn findings_about(&self, identity: &str, prefix: Option<&str>) -> Result<Vec<FindingRow>>;
    /// How many identities `listing` holds.
    fn listing_count(&self, listing: &Listing<'_>) -> Result<u64>;
    /// The identities of `listing` in id order (bytewise), after the first `offset`, at
    /// most `limit`.
    fn listing_page(
        &self,
        listing: &Listing<'_>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<keyward_model::Identity>>;
}

/// Writes of the query tables, inside a [`crate::Batch`].
pub trait QueryBatch {
    /// Inserts or updates a node (a new one takes the next rank).
    fn put_graph_node(&mut self, node: &GraphNodeRow) -> Result<()>;
    /// Replaces every edge derived from `origin` (a node already put) with `edges`, in
    /// their order (streamed: an account's snapshot can give millions).
    fn set_origin_edges(
        &mut self,
        origin: &str,
        edges: &mut dyn Iterator<Item = GraphEdgeRow>,
    ) -> Result<()>;
    fn put_log_span(&mut self, span: &LogSpan) -> Result<()>;
    fn put_coverage(&mut self, what: &str, scope: &str) -> Result<()>;
    /// Empties every query table and marks them unfilled (before a full rewrite).
    fn clear_query_tables(&mut self) -> Result<()>;
    /// Marks the tables filled or not (see [`QueryTables::query_tables_filled`]).
    fn set_query_tables_filled(&mut self, filled: bool) -> Result<()>;
}

/// The range of ids that start with `prefix`, as (inclusive low, exclusive high): the
/// prefix, and the prefix with its last byte raised (`None` when it has no end).
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

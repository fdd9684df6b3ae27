//! Keeping the store's query tables in step with the identity graph, so `show`, `graph
//! chain`, `graph blast-radius` and `findings --identity` answer from the store without
//! loading the estate (`view.rs` reads them).
//!
//! What is written is what the graph says changed ([`keyward_graph::Graph::take_changes`]):
//! the nodes added or changed, and, per origin re-derived, its edges (replacing exactly
//! that origin's rows); observed edges are the store's own table already. The log spans
//! (how far each activity log reaches) are widened by the identities written.
//!
//! The tables are *filled* (a marker row) only when they hold the whole estate:
//! - a store written by an older version, or whose tables were never filled, is filled
//!   whole by the first writer ([`Engine::write_lock`]), from the graph it just loaded;
//! - an ingest re-derives objects and accounts after its last commit (they are read back
//!   from what it committed), so its first batch clears the marker and a last small
//!   commit writes what that changed and sets it again; a crash in between leaves the
//!   tables unfilled, and readers load the estate until the next writer fills them;
//! - a cluster merge re-keys everything under one name: it clears the marker in its
//!   batch and fills the tables whole after.

use keyward_graph::{Graph, NodeId, NodeKind};
use keyward_model::{Identity, SourceKind};
use keyward_store::{Batch, GraphEdgeRow, GraphNodeRow, LogSpan, Store};

use crate::lifecycle::LogSpans;
use crate::{Engine, EngineError};

/// What an engine that writes knows of its store's query tables.
#[derive(Default)]
pub(crate) struct Tables {
    /// The tables hold the estate and this engine keeps them so: its graph tracks changes.
    pub(crate) kept: bool,
    /// The log spans of the whole inventory, as last written (kept only when `kept`).
    spans: LogSpans,
}

/// The log's name as the tables keep it.
fn source_name(kind: SourceKind) -> &'static str {
    kind.as_str()
}

fn node_row(g: &Graph, id: NodeId) -> Option<GraphNodeRow> {
    let n = g.node(id)?;
    Some(GraphNodeRow {
        key: g.key(id).to_owned(),
        rank: 0,
        kind: n.kind.code().into_owned(),
        label: n.label.to_string(),
        gone: n.gone,
        gone_because: g.gone_because(id).map(str::to_owned),
    })
}

/// The edges derived from `origin`, as rows. An edge's evidence is written as JSON; if
/// that fails (it cannot for these types) the edge keeps none.
fn edge_rows(g: &Graph, origin: NodeId) -> impl Iterator<Item = GraphEdgeRow> + '_ {
    g.origin_edges(origin).map(move |e| GraphEdgeRow {
        origin: 0,
        pos: 0,
        src: g.key(e.from).to_owned(),
        kind: e.kind.as_str().to_owned(),
        dst: g.key(e.to).to_owned(),
        at: e.first_seen.unwrap_or(0),
        detail: e
            .detail
            .filter(|d| **d != keyward_graph::Detail::default())
            .and_then(|d| sonic_rs::to_string(d).ok()),
    })
}

/// What a node says of the estate's coverage (see `keyward_graph::analysis::Coverage`).
fn coverage_of(key: &str, kind: NodeKind) -> Option<(&'static str, &str)> {
    if let Some(arn) = key.strip_prefix("lambda:") {
        return arn.split(':').nth(4).map(|a| ("lambda", a));
    }
    let rest = key.strip_prefix("k8s-obj:")?;
    if kind != NodeKind::Workload {
        return None;
    }
    rest.split('/').next().map(|c| ("workloads", c))
}

/// Writes `nodes` (in index order: a new node's rank follows the graph's order) and the
/// edges of `origins`.
fn write_graph(
    batch: &mut dyn Batch,
    g: &Graph,
    nodes: &[NodeId],
    origins: &[NodeId],
) -> Result<(), EngineError> {
    for &id in nodes {
        let Some(row) = node_row(g, id) else { continue };
        if let Some(n) = g.node(id)
            && let Some((what, scope)) = coverage_of(&row.key, n.kind)
        {
            batch.put_coverage(what, scope)?;
        }
        batch.put_graph_node(&row)?;
    }
    for &o in origins {
        batch.set_origin_edges(g.key(o), &mut edge_rows(g, o))?;
    }
    Ok(())
}

fn put_span(
    batch: &mut dyn Batch,
    spans: &LogSpans,
    kind: SourceKind,
    scope: &str,
) -> Result<(), EngineError> {
    if let Some((first, last)) = spans.span(kind, scope) {
        batch.put_log_span(&LogSpan {
            source: source_name(kind).to_owned(),
            scope: scope.to_owned(),
            first_seen: first,
            last_seen: last,
        })?;
    }
    Ok(())
}

impl Tables {
    /// Writes what changed in the graph, and the spans `identities` widen, into `batch`
    /// (nothing unless the tables are kept).
    pub(crate) fn write(
        &mut self,
        batch: &mut dyn Batch,
        graph: &mut Graph,
        identities: &[&Identity],
    ) -> Result<(), EngineError> {
        if !self.kept {
            return Ok(());
        }
        let changes = graph.take_changes();
        write_graph(batch, graph, &changes.nodes, &changes.origins)?;
        let mut moved = Vec::new();
        for i in identities {
            self.spans.add(i, |k, s| moved.push((k, s.to_owned())));
        }
        for (kind, scope) in moved {
            put_span(batch, &self.spans, kind, &scope)?;
        }
        Ok(())
    }

    /// Clears the filled marker in `batch`: what follows its commit is written later.
    pub(crate) fn begin_split(&self, batch: &mut dyn Batch) -> Result<(), EngineError> {
        if self.kept {
            batch.set_query_tables_filled(false)?;
        }
        Ok(())
    }
}

impl Engine {
    /// Fills the query tables whole when the store's are not (a store written by an older
    /// version, an interrupted write); then keeps them. Call with the writer lock held.
    pub(crate) fn keep_query_tables(&mut self) -> Result<(), EngineError> {
        if self.resume_query_tables()? {
            return Ok(());
        }
        self.fill_query_tables()
    }

    /// Keeps the store's query tables from now on when they are filled (and says whether
    /// they are); never writes. Called before anything changes the graph, so a write
    /// never leaves filled tables behind the estate.
    pub(crate) fn resume_query_tables(&mut self) -> Result<bool, EngineError> {
        if self.tables.kept {
            return Ok(true);
        }
        if !self.store.query_tables_filled()? {
            return Ok(false);
        }
        self.tables.kept = true;
        self.tables.spans = LogSpans::of(self.inventory.iter());
        self.topology.graph.track_changes();
        self.topology.graph.take_changes();
        Ok(true)
    }

    /// Runs a write that keeps the query tables in its batches (ingest of every kind):
    /// resumes keeping them first; if the write fails, what it took for them may not have
    /// been committed, so they are no longer kept (the next writer fills them again).
    pub(crate) fn keeping_tables<T>(
        &mut self,
        write: impl FnOnce(&mut Self) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        self.resume_query_tables()?;
        let out = write(self);
        if out.is_err() {
            self.tables.kept = false;
        }
        out
    }

    /// Rewrites the query tables from the inventory and graph in memory, in one batch.
    pub(crate) fn fill_query_tables(&mut self) -> Result<(), EngineError> {
        let g = &mut self.topology.graph;
        g.track_changes();
        g.take_changes();
        let spans = LogSpans::of(self.inventory.iter());
        fill(self.store.as_mut(), g, &spans)?;
        self.tables = Tables { kept: true, spans };
        Ok(())
    }
}

/// Empties the query tables and writes `g` and `spans` into them, marked filled, in one
/// batch.
fn fill(store: &mut dyn Store, g: &Graph, spans: &LogSpans) -> Result<(), EngineError> {
    let mut batch = store.begin()?;
    batch.clear_query_tables()?;
    let nodes: Vec<NodeId> = g.nodes().map(|(id, _, _)| id).collect();
    write_graph(&mut *batch, g, &nodes, &nodes)?;
    for (kind, scope, first, last) in spans.iter() {
        batch.put_log_span(&LogSpan {
            source: source_name(kind).to_owned(),
            scope: scope.to_owned(),
            first_seen: first,
            last_seen: last,
        })?;
    }
    batch.set_query_tables_filled(true)?;
    batch.commit()?;
    Ok(())
}

/// Writes an estate made elsewhere into `store`'s query tables (the query benchmark's
/// generated one, whose graph holds edges no stored object derives): `graph`'s nodes,
/// derived edges and observed edges, the log spans of `identities` (which the caller
/// stores). Never used on a store Keyward ingests into: the next writer would keep
/// what it derives, not this.
pub fn write_query_tables(
    store: &mut dyn Store,
    graph: &mut Graph,
    identities: &[Identity],
) -> Result<(), EngineError> {
    {
        let mut batch = store.begin()?;
        for e in graph.take_observed() {
            batch.put_observed_edge(&e)?;
        }
        batch.commit()?;
    }
    fill(store, graph, &LogSpans::of(identities.iter()))
}

impl Engine {
    /// After an ingest's last commit and the re-derivation that follows it: writes what
    /// that changed and marks the tables filled again.
    pub(crate) fn close_split(&mut self) -> Result<(), EngineError> {
        if !self.tables.kept {
            return Ok(());
        }
        let mut batch = self.store.begin()?;
        self.tables
            .write(&mut *batch, &mut self.topology.graph, &[])?;
        batch.set_query_tables_filled(true)?;
        batch.commit()?;
        Ok(())
    }
}

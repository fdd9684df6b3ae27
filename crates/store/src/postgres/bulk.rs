//! The PostgreSQL batch's fast path for many rows: identities, observed edges, graph nodes
//! and derived edges are held in the batch and written many per statement — new graph
//! nodes and derived edges by `COPY … FROM STDIN BINARY`, the rest by one `INSERT … SELECT
//! FROM unnest(…)` (or `UPDATE … FROM unnest(…)`) per chunk with the conflict handling of
//! the one-row statement they replace. A whole fill of the query tables at 1M identities
//! is about 11M rows; one statement (one round trip) per row took half an hour.
//!
//! What is held is written when a chunk is full, before a statement that could see or
//! undo it (a delete of the same table, clearing the query tables) and at commit, so the
//! batch's effect is the one-row statements' in the same order:
//! - an identity or observed edge put twice is written once, with its last value;
//! - a new node takes the next rank in the order nodes were first put (ranks stay
//!   gapless); a node put again keeps its rank and takes the last kind, label and state;
//! - an origin's edges replace what it had: its stored rows are deleted just before the
//!   first chunk of its new ones is copied, and edges still held from an earlier call
//!   for the same origin are dropped.

use keyward_model::{Identity, ObservedEdge};
use postgres::Transaction;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::query::{GraphEdgeRow, GraphNodeRow};
use crate::shared::append_identity_doc;
use crate::{Result, StoreError};

/// Rows held per table before they are written.
const CHUNK: usize = 10_000;

/// An identity's columns, its document already written.
struct IdentityRow {
    id: String,
    platform: &'static str,
    kind: &'static str,
    name: String,
    account: Option<String>,
    cluster: Option<String>,
    namespace: Option<String>,
    doc: String,
}

/// An origin whose edges are held.
struct Origin {
    key: String,
    /// Its stored edges are still to be deleted.
    replace: bool,
}

/// Rows held by a batch, not yet written.
#[derive(Default)]
pub(super) struct Held {
    identities: Vec<IdentityRow>,
    identity_at: FxHashMap<String, usize>,
    observed: Vec<ObservedEdge>,
    observed_at: FxHashMap<(String, String, String), usize>,
    nodes: Vec<GraphNodeRow>,
    node_at: FxHashMap<String, usize>,
    origins: Vec<Origin>,
    origin_at: FxHashMap<String, usize>,
    /// (origin index, position, edge).
    edges: Vec<(usize, i64, GraphEdgeRow)>,
    /// Hashes of the nodes put in this batch or found stored: an origin must be one.
    nodes_known: FxHashSet<u64>,
    doc: Vec<u8>,
}

fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(key)
}

/// Puts `row` at `key`'s place in `rows` if it is held, else at the end.
fn hold<K: std::hash::Hash + Eq, T>(
    rows: &mut Vec<T>,
    at: &mut FxHashMap<K, usize>,
    key: K,
    row: T,
) {
    match at.get(&key) {
        Some(&i) => {
            if let Some(slot) = rows.get_mut(i) {
                *slot = row;
            }
        }
        None => {
            at.insert(key, rows.len());
            rows.push(row);
        }
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Held {
    pub(super) fn put_identity(&mut self, tx: &mut Transaction<'_>, i: &Identity) -> Result<()> {
        self.doc.clear();
        append_identity_doc(i, &mut self.doc)?;
        let doc = String::from_utf8(std::mem::take(&mut self.doc))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let row = IdentityRow {
            id: i.id.clone(),
            platform: i.platform.as_str(),
            kind: i.kind.as_str(),
            name: i.name.clone(),
            account: i.account.clone(),
            cluster: i.cluster.clone(),
            namespace: i.namespace.clone(),
            doc,
        };
        hold(
            &mut self.identities,
            &mut self.identity_at,
            i.id.clone(),
            row,
        );
        if self.identities.len() >= CHUNK {
            self.write_identities(tx)?;
        }
        Ok(())
    }

    pub(super) fn put_observed_edge(
        &mut self,
        tx: &mut Transaction<'_>,
        e: &ObservedEdge,
    ) -> Result<()> {
        let key = (e.kind.clone(), e.from.clone(), e.to.clone());
        hold(&mut self.observed, &mut self.observed_at, key, e.clone());
        if self.observed.len() >= CHUNK {
            self.write_observed(tx)?;
        }
        Ok(())
    }

    pub(super) fn put_graph_node(
        &mut self,
        tx: &mut Transaction<'_>,
        n: &GraphNodeRow,
    ) -> Result<()> {
        self.nodes_known.insert(key_hash(&n.key));
        hold(&mut self.nodes, &mut self.node_at, n.key.clone(), n.clone());
        if self.nodes.len() >= CHUNK {
            self.write_nodes(tx)?;
        }
        Ok(())
    }

    /// The index of `key` among the held origins; `replace`: its edges are being set
    /// anew (those held from an earlier call are dropped, its stored ones deleted).
    fn origin(&mut self, key: &str, replace: bool) -> usize {
        if let Some(&i) = self.origin_at.get(key) {
            if replace {
                self.edges.retain(|e| e.0 != i);
                if let Some(o) = self.origins.get_mut(i) {
                    o.replace = true;
                }
            }
            return i;
        }
        self.origin_at.insert(key.to_owned(), self.origins.len());
        self.origins.push(Origin {
            key: key.to_owned(),
            replace,
        });
        self.origins.len() - 1
    }

    pub(super) fn set_origin_edges(
        &mut self,
        tx: &mut Transaction<'_>,
        origin: &str,
        edges: &mut dyn Iterator<Item = GraphEdgeRow>,
    ) -> Result<()> {
        // As the one-row statement did: an origin never put is refused at once.
        if !self.nodes_known.contains(&key_hash(origin)) {
            if tx
                .query_opt("SELECT 1 FROM graph_nodes WHERE key = $1", &[&origin])?
                .is_none()
            {
                return Err(StoreError::Corrupt(format!(
                    "edges of `{origin}`, a node never put"
                )));
            }
            self.nodes_known.insert(key_hash(origin));
        }
        let mut o = self.origin(origin, true);
        for (pos, e) in edges.enumerate() {
            self.edges.push((o, count(pos), e));
            if self.edges.len() >= CHUNK {
                self.write_edges(tx)?;
                o = self.origin(origin, false);
            }
        }
        Ok(())
    }

    /// Forgets the graph's held rows (the query tables are being emptied).
    pub(super) fn drop_graph(&mut self) {
        self.nodes.clear();
        self.node_at.clear();
        self.origins.clear();
        self.origin_at.clear();
        self.edges.clear();
        self.nodes_known.clear();
    }

    /// Writes everything held.
    pub(super) fn write(&mut self, tx: &mut Transaction<'_>) -> Result<()> {
        self.write_identities(tx)?;
        self.write_observed(tx)?;
        self.write_edges(tx)
    }

    pub(super) fn write_identities(&mut self, tx: &mut Transaction<'_>) -> Result<()> {
        if self.identities.is_empty() {
            return Ok(());
        }
        self.identity_at.clear();
        let rows = std::mem::take(&mut self.identities);
        // One array per column (`unnest` makes them rows again).
        let n = rows.len();
        let (mut id, mut platform, mut kind, mut name) = (
            Vec::with_capacity(n),
            Vec::<&str>::with_capacity(n),
            Vec::<&str>::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut account, mut cluster, mut namespace, mut doc) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for r in rows {
            id.push(r.id);
            platform.push(r.platform);
            kind.push(r.kind);
            name.push(r.name);
            account.push(r.account);
            cluster.push(r.cluster);
            namespace.push(r.namespace);
            doc.push(r.doc);
        }
        tx.execute(
            "INSERT INTO identities (id, platform, kind, name, account, cluster, namespace, doc)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::text[], $8::text[])
             ON CONFLICT (id) DO UPDATE SET platform = excluded.platform, kind = excluded.kind,
                name = excluded.name, account = excluded.account, cluster = excluded.cluster,
                namespace = excluded.namespace, doc = excluded.doc",
            &[
                &id, &platform, &kind, &name, &account, &cluster, &namespace, &doc,
            ],
        )?;
        Ok(())
    }

    pub(super) fn write_observed(&mut self, tx: &mut Transaction<'_>) -> Result<()> {
        if self.observed.is_empty() {
            return Ok(());
        }
        self.observed_at.clear();
        let rows = std::mem::take(&mut self.observed);
        let n = rows.len();
        let (mut kind, mut src, mut dst, mut ids) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut cnt, mut first, mut last) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for e in rows {
            ids.push(
                serde_json::to_string(&e.event_ids)
                    .map_err(|err| StoreError::Corrupt(err.to_string()))?,
            );
            cnt.push(i64::from(e.count));
            first.push(e.first_seen);
            last.push(e.last_seen);
            kind.push(e.kind);
            src.push(e.from);
            dst.push(e.to);
        }
        tx.execute(
            "INSERT INTO observed_edges (kind, src, dst, count, first_seen, last_seen, event_ids)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[],
                                  $6::int8[], $7::text[])
             ON CONFLICT (kind, src, dst) DO UPDATE SET count = excluded.count,
               first_seen = excluded.first_seen, last_seen = excluded.last_seen,
               event_ids = excluded.event_ids",
            &[&kind, &src, &dst, &cnt, &first, &last, &ids],
        )?;
        Ok(())
    }

    /// Writes the held nodes: the new ones copied with the next ranks in the order they
    /// were put, the stored ones updated.
    fn write_nodes(&mut self, tx: &mut Transaction<'_>) -> Result<()> {
        if self.nodes.is_empty() {
            return Ok(());
        }
        self.node_at.clear();
        let rows = std::mem::take(&mut self.nodes);
        let keys: Vec<&str> = rows.iter().map(|n| n.key.as_str()).collect();
        let stored: FxHashSet<String> = tx
            .query("SELECT key FROM graph_nodes WHERE key = ANY($1)", &[&keys])?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        let (old, new): (Vec<GraphNodeRow>, Vec<GraphNodeRow>) =
            rows.into_iter().partition(|n| stored.contains(&n.key));
        if !old.is_empty() {
            let key: Vec<&str> = old.iter().map(|n| n.key.as_str()).collect();
            let kind: Vec<&str> = old.iter().map(|n| n.kind.as_str()).collect();
            let label: Vec<&str> = old.iter().map(|n| n.label.as_str()).collect();
            let gone: Vec<i16> = old.iter().map(|n| i16::from(n.gone)).collect();
            let why: Vec<Option<&str>> = old.iter().map(|n| n.gone_because.as_deref()).collect();
            tx.execute(
                "UPDATE graph_nodes SET kind = u.kind, label = u.label, gone = u.gone,
                   gone_because = u.why
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::text[])
                   AS u (key, kind, label, gone, why)
                 WHERE graph_nodes.key = u.key",
                &[&key, &kind, &label, &gone, &why],
            )?;
        }
        if new.is_empty() {
            return Ok(());
        }
        let top: i64 = tx
            .query_one("SELECT COALESCE(MAX(rank), 0) FROM graph_nodes", &[])?
            .try_get(0)?;
        let sink = tx.copy_in(
            "COPY graph_nodes (key, rank, kind, label, gone, gone_because) FROM STDIN BINARY",
        )?;
        let mut w = BinaryCopyInWriter::new(
            sink,
            &[
                Type::TEXT,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::INT2,
                Type::TEXT,
            ],
        );
        for (i, n) in new.iter().enumerate() {
            let rank = top + 1 + count(i);
            w.write(&[
                &n.key,
                &rank,
                &n.kind,
                &n.label,
                &i16::from(n.gone),
                &n.gone_because,
            ])?;
        }
        w.finish()?;
        Ok(())
    }

    /// Writes the held edges (and first the nodes, whose ranks number their origins).
    fn write_edges(&mut self, tx: &mut Transaction<'_>) -> Result<()> {
        self.write_nodes(tx)?;
        if self.origins.is_empty() {
            return Ok(());
        }
        let origins = std::mem::take(&mut self.origins);
        self.origin_at.clear();
        let edges = std::mem::take(&mut self.edges);
        let keys: Vec<&str> = origins.iter().map(|o| o.key.as_str()).collect();
        let ranks: FxHashMap<String, i64> = tx
            .query(
                "SELECT key, rank FROM graph_nodes WHERE key = ANY($1)",
                &[&keys],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_>>()?;
        let mut rank_of = Vec::with_capacity(origins.len());
        let mut replaced = Vec::new();
        for o in &origins {
            let Some(&rank) = ranks.get(&o.key) else {
                return Err(StoreError::Corrupt(format!(
                    "edges of `{}`, a node never put",
                    o.key
                )));
            };
            rank_of.push(rank);
            if o.replace {
                replaced.push(rank);
            }
        }
        if !replaced.is_empty() {
            tx.execute(
                "DELETE FROM graph_edges WHERE origin = ANY($1)",
                &[&replaced],
            )?;
        }
        if edges.is_empty() {
            return Ok(());
        }
        let sink = tx.copy_in(
            "COPY graph_edges (origin, pos, src, kind, dst, at, detail) FROM STDIN BINARY",
        )?;
        let mut w = BinaryCopyInWriter::new(
            sink,
            &[
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::TEXT,
            ],
        );
        for (o, pos, e) in &edges {
            let Some(origin) = rank_of.get(*o) else {
                return Err(StoreError::Corrupt("a held edge without its origin".into()));
            };
            w.write(&[origin, pos, &e.src, &e.kind, &e.dst, &e.at, &e.detail])?;
        }
        w.finish()?;
        Ok(())
    }
}

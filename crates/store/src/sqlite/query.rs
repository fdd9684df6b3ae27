//! The query tables on SQLite: reads on the store's connection, writes in the batch.

use keyward_model::ObservedEdge;
use rusqlite::{OptionalExtension, params};

use super::{FINDING_COLUMNS, SqliteStore, batch::SqliteBatch, finding_row};
use crate::query::{
    Direction, EdgeCount, GraphEdgeRow, GraphNodeRow, Listing, LogSpan, QueryBatch, QueryTables,
    prefix_end,
};
use crate::shared::identity_from;
use crate::{FindingRow, Result, StoreError};

fn node_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GraphNodeRow> {
    Ok(GraphNodeRow {
        key: r.get(0)?,
        rank: r.get(1)?,
        kind: r.get(2)?,
        label: r.get(3)?,
        gone: r.get::<_, i64>(4)? != 0,
        gone_because: r.get(5)?,
    })
}

fn edge_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GraphEdgeRow> {
    Ok(GraphEdgeRow {
        origin: r.get(0)?,
        pos: r.get(1)?,
        src: r.get(2)?,
        kind: r.get(3)?,
        dst: r.get(4)?,
        at: r.get(5)?,
        detail: r.get(6)?,
    })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// The walks' reads run once per node, thousands of times a page: their `LIMIT` is written
// into the statement, never bound. SQLite plans a bound `LIMIT` by its value, so binding
// one expires the statement and every run prepares it again (40 % of an inventory page's
// time at 1M identities); a few limits are used, each statement cached once.

impl QueryTables for SqliteStore {
    fn query_tables_filled(&self) -> Result<bool> {
        Ok(self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM query_tables)", [], |r| {
                r.get(0)
            })?)
    }

    fn read_snapshot(&self, on: bool) -> Result<()> {
        let cache = if on {
            super::WALK_CACHE_KIB
        } else {
            super::CACHE_KIB
        };
        self.conn.pragma_update(None, "cache_size", cache)?;
        self.conn
            .execute_batch(if on { "BEGIN DEFERRED" } else { "COMMIT" })?;
        Ok(())
    }

    fn graph_node(&self, key: &str) -> Result<Option<GraphNodeRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT key, rank, kind, label, gone, gone_because FROM graph_nodes WHERE key = ?1",
        )?;
        Ok(st.query_row([key], node_row).optional()?)
    }

    fn graph_nodes(&self, keys: &[&str]) -> Result<Vec<GraphNodeRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT key, rank, kind, label, gone, gone_because FROM graph_nodes WHERE key = ?1",
        )?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(n) = st.query_row([k], node_row).optional()? {
                out.push(n);
            }
        }
        Ok(out)
    }

    fn graph_edges(
        &self,
        keys: &[&str],
        dir: Direction,
        kinds: Option<&[&str]>,
        n: usize,
    ) -> Result<Vec<GraphEdgeRow>> {
        let end = match dir {
            Direction::Out => "src",
            Direction::In => "dst",
        };
        // The kinds are checked in the (end, origin, pos, kind) index before a row is read
        // (a role's permissions are skipped there, not copied out of the table).
        let of_kinds = match kinds {
            None => String::new(),
            Some(kinds) => {
                let marks: Vec<String> = (0..kinds.len()).map(|i| format!("?{}", i + 2)).collect();
                format!(" AND kind IN ({})", marks.join(", "))
            }
        };
        let sql = format!(
            "SELECT origin, pos, src, kind, dst, at, detail FROM graph_edges
             WHERE {end} = ?1{of_kinds} ORDER BY origin DESC, pos DESC LIMIT {}",
            limit(n)
        );
        // In-process: one statement per node costs no round trip.
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut out = Vec::new();
        for key in keys {
            let params = std::iter::once(key).chain(kinds.unwrap_or_default());
            let rows = st.query_map(rusqlite::params_from_iter(params), edge_row)?;
            for r in rows {
                out.push(r?);
            }
        }
        Ok(out)
    }

    fn observed_edges_at(
        &self,
        keys: &[&str],
        dir: Direction,
        kinds: Option<&[&str]>,
        n: usize,
    ) -> Result<Vec<ObservedEdge>> {
        let (end, other) = match dir {
            Direction::Out => ("src", "dst"),
            Direction::In => ("dst", "src"),
        };
        let columns = "kind, src, dst, count, first_seen, last_seen, event_ids";
        let n = limit(n);
        let mut out = Vec::new();
        match kinds {
            None => {
                let all = format!(
                    "SELECT {columns} FROM observed_edges WHERE {end} = ?1
                     ORDER BY kind DESC, {other} DESC LIMIT {n}"
                );
                let mut st = self.conn.prepare_cached(&all)?;
                for key in keys {
                    for r in st.query_map([key], super::observed_row)? {
                        out.push(super::observed_edge(r)?);
                    }
                }
            }
            Some(kinds) => {
                // Kind by kind, descending: each a seek in the (end, kind, other) index.
                let mut kinds = kinds.to_vec();
                kinds.sort_unstable_by(|a, b| b.cmp(a));
                let one_kind = format!(
                    "SELECT {columns} FROM observed_edges WHERE {end} = ?1 AND kind = ?2
                     ORDER BY {other} DESC LIMIT {n}"
                );
                let mut st = self.conn.prepare_cached(&one_kind)?;
                let per_node = usize::try_from(n).unwrap_or(usize::MAX);
                for key in keys {
                    let start = out.len();
                    for kind in &kinds {
                        for r in st.query_map([key, kind], super::observed_row)? {
                            out.push(super::observed_edge(r)?);
                        }
                    }
                    out.truncate(start + per_node);
                }
            }
        }
        Ok(out)
    }

    fn edge_counts(&self, keys: &[&str], dir: Direction, n: usize) -> Result<Vec<EdgeCount>> {
        let end = match dir {
            Direction::Out => "src",
            Direction::In => "dst",
        };
        let n = limit(n);
        let sql = format!(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM observed_edges WHERE {end} = ?1 LIMIT {n})),
                    (SELECT count(*) FROM (SELECT 1 FROM graph_edges WHERE {end} = ?1 LIMIT {n}))"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let (observed, derived): (i64, i64) =
                st.query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))?;
            out.push(EdgeCount {
                key: (*key).to_owned(),
                observed: usize::try_from(observed).unwrap_or(0),
                derived: usize::try_from(derived).unwrap_or(0),
            });
        }
        Ok(out)
    }

    fn log_span(&self, source: &str, scope: &str) -> Result<Option<LogSpan>> {
        let mut st = self.conn.prepare_cached(
            "SELECT first_seen, last_seen FROM log_spans WHERE source = ?1 AND scope = ?2",
        )?;
        Ok(st
            .query_row([source, scope], |r| {
                Ok(LogSpan {
                    source: source.to_owned(),
                    scope: scope.to_owned(),
                    first_seen: r.get(0)?,
                    last_seen: r.get(1)?,
                })
            })
            .optional()?)
    }

    fn covered(&self, what: &str, scope: &str) -> Result<bool> {
        let mut st = self.conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM coverage WHERE what = ?1 AND scope = ?2)",
        )?;
        Ok(st.query_row([what, scope], |r| r.get(0))?)
    }

    fn findings_about(&self, identity: &str, prefix: Option<&str>) -> Result<Vec<FindingRow>> {
        let (low, high) = match prefix {
            Some(p) => (p.to_owned(), prefix_end(p).unwrap_or_else(|| p.to_owned())),
            // An empty range: only the identity's own.
            None => (String::new(), String::new()),
        };
        let sql = format!(
            "SELECT {FINDING_COLUMNS} FROM findings
             WHERE identity = ?1 OR (identity >= ?2 AND identity < ?3)
             ORDER BY last_seen DESC, id"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(params![identity, low, high], finding_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn listing_count(&self, l: &Listing<'_>) -> Result<u64> {
        self.listing_count_(l)
    }

    fn listing_page(
        &self,
        l: &Listing<'_>,
        offset: usize,
        n: usize,
    ) -> Result<Vec<keyward_model::Identity>> {
        self.listing_page_(l, offset, n)
    }
}

/// The `WHERE` of a listing and its parameters: only the filters given, so a listing of
/// one platform and kind is read from the `(platform, kind, id)` index alone.
fn listing_where<'a>(l: &'a Listing<'a>) -> (String, Vec<&'a str>) {
    let mut sql = String::from("platform = ?1 AND kind = ?2");
    let mut params = vec![l.platform, l.kind];
    if let Some(scope) = l.scope {
        params.push(scope);
        sql.push_str(&format!(
            " AND (account = ?{n} OR cluster = ?{n})",
            n = params.len()
        ));
    }
    if let Some(ns) = l.namespace {
        params.push(ns);
        sql.push_str(&format!(" AND namespace = ?{}", params.len()));
    }
    (sql, params)
}

impl SqliteStore {
    pub(super) fn listing_count_(&self, l: &Listing<'_>) -> Result<u64> {
        let (wh, params) = listing_where(l);
        let sql = format!("SELECT count(*) FROM identities WHERE {wh}");
        let n: i64 = self
            .conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(params), |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) fn listing_page_(
        &self,
        l: &Listing<'_>,
        offset: usize,
        n: usize,
    ) -> Result<Vec<keyward_model::Identity>> {
        let (wh, params) = listing_where(l);
        // The ids first (skipping `offset` in the index), then the page's documents.
        let sql = format!(
            "SELECT doc FROM identities WHERE id IN (
               SELECT id FROM identities WHERE {wh} ORDER BY id LIMIT {} OFFSET {})
             ORDER BY id",
            limit(n),
            limit(offset)
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let docs = st.query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(0)
        })?;
        docs.map(|d| identity_from(&d?)).collect()
    }
}

impl QueryBatch for SqliteBatch<'_> {
    fn put_graph_node(&mut self, n: &GraphNodeRow) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT INTO graph_nodes (key, rank, kind, label, gone, gone_because)
             VALUES (?1, (SELECT COALESCE(MAX(rank), 0) + 1 FROM graph_nodes), ?2, ?3, ?4, ?5)
             ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, label = excluded.label,
               gone = excluded.gone, gone_because = excluded.gone_because",
        )?;
        st.execute(params![
            n.key,
            n.kind,
            n.label,
            i64::from(n.gone),
            n.gone_because
        ])?;
        Ok(())
    }

    fn set_origin_edges(
        &mut self,
        origin: &str,
        edges: &mut dyn Iterator<Item = GraphEdgeRow>,
    ) -> Result<()> {
        let rank: Option<i64> = self
            .tx
            .prepare_cached("SELECT rank FROM graph_nodes WHERE key = ?1")?
            .query_row([origin], |r| r.get(0))
            .optional()?;
        let Some(rank) = rank else {
            return Err(StoreError::Corrupt(format!(
                "edges of `{origin}`, a node never put"
            )));
        };
        self.tx
            .prepare_cached("DELETE FROM graph_edges WHERE origin = ?1")?
            .execute([rank])?;
        let mut st = self.tx.prepare_cached(
            "INSERT INTO graph_edges (origin, pos, src, kind, dst, at, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (pos, e) in edges.enumerate() {
            st.execute(params![
                rank,
                limit(pos),
                e.src,
                e.kind,
                e.dst,
                e.at,
                e.detail
            ])?;
        }
        Ok(())
    }

    fn put_log_span(&mut self, s: &LogSpan) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT INTO log_spans (source, scope, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (source, scope) DO UPDATE SET first_seen = excluded.first_seen,
               last_seen = excluded.last_seen",
        )?;
        st.execute(params![s.source, s.scope, s.first_seen, s.last_seen])?;
        Ok(())
    }

    fn put_coverage(&mut self, what: &str, scope: &str) -> Result<()> {
        let mut st = self
            .tx
            .prepare_cached("INSERT OR IGNORE INTO coverage (what, scope) VALUES (?1, ?2)")?;
        st.execute([what, scope])?;
        Ok(())
    }

    fn clear_query_tables(&mut self) -> Result<()> {
        self.tx.execute_batch(
            "DELETE FROM query_tables; DELETE FROM graph_edges; DELETE FROM graph_nodes;
             DELETE FROM log_spans; DELETE FROM coverage;",
        )?;
        Ok(())
    }

    fn set_query_tables_filled(&mut self, filled: bool) -> Result<()> {
        self.tx.execute("DELETE FROM query_tables", [])?;
        if filled {
            self.tx
                .execute("INSERT INTO query_tables (filled) VALUES (1)", [])?;
        }
        Ok(())
    }
}

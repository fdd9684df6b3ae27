//! The query tables on PostgreSQL: reads on the store's connection (statements prepared
//! once), writes in the batch. Orders on keys are bytewise (`COLLATE "C"`), as SQLite's.

use keyward_model::ObservedEdge;
use postgres::types::ToSql;
use postgres::{Row, Statement};

use super::batch::PgBatch;
use super::{FINDING_COLUMNS, PgStore, finding_row};
use crate::query::{
    Direction, EdgeCount, GraphEdgeRow, GraphNodeRow, Listing, LogSpan, QueryBatch, QueryTables,
};
use crate::shared::identity_from;
use crate::{FindingRow, Result, StoreError};

fn node_row(r: &Row) -> Result<GraphNodeRow> {
    Ok(GraphNodeRow {
        key: r.try_get(0)?,
        rank: r.try_get(1)?,
        kind: r.try_get(2)?,
        label: r.try_get(3)?,
        gone: r.try_get::<_, i16>(4)? != 0,
        gone_because: r.try_get(5)?,
    })
}

fn edge_row(r: &Row) -> Result<GraphEdgeRow> {
    Ok(GraphEdgeRow {
        origin: r.try_get(0)?,
        pos: r.try_get(1)?,
        src: r.try_get(2)?,
        kind: r.try_get(3)?,
        dst: r.try_get(4)?,
        at: r.try_get(5)?,
        detail: r.try_get(6)?,
    })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `prefix` as a `LIKE` pattern matching what starts with it.
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl PgStore {
    /// A read statement, prepared once per connection.
    fn prepared_read(&self, sql: &'static str) -> Result<Statement> {
        let mut cache = self
            .statements
            .try_borrow_mut()
            .map_err(|_| StoreError::Corrupt("statement cache in use".into()))?;
        if let Some(st) = cache.get(sql) {
            return Ok(st.clone());
        }
        let st = self.db()?.prepare(sql)?;
        cache.insert(sql, st.clone());
        Ok(st)
    }

    fn read(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let st = self.prepared_read(sql)?;
        Ok(self.db()?.query(&st, params)?)
    }
}

/// A hop's derived edges (`graph_edges`): each key of `$1`'s first `$2` through the
/// `(end, origin, pos, kind)` index, newest origin first, with `also` added to the
/// per-key condition (`$3`: the kinds). A literal, so the statement is prepared once.
macro_rules! hop_edges {
    ($end:literal, $also:literal) => {
        concat!(
            "SELECT e.origin, e.pos, e.src, e.kind, e.dst, e.at, e.detail
             FROM unnest($1::text[]) WITH ORDINALITY AS k (key, i)
             CROSS JOIN LATERAL (
               SELECT origin, pos, src, kind, dst, at, detail FROM graph_edges
               WHERE ",
            $end,
            " = k.key",
            $also,
            "
               ORDER BY origin DESC, pos DESC LIMIT $2) e
             ORDER BY k.i, e.origin DESC, e.pos DESC"
        )
    };
}

impl QueryTables for PgStore {
    fn query_tables_filled(&self) -> Result<bool> {
        let rows = self.read("SELECT EXISTS (SELECT 1 FROM query_tables)", &[])?;
        Ok(rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(false))
    }

    fn read_snapshot(&self, on: bool) -> Result<()> {
        // No JIT compiling for a walk's statements: their row estimates (thousands of keys
        // a hop) pass its cost threshold, and compiling took longer (6–35 ms a statement)
        // than the few milliseconds they run.
        self.db()?.batch_execute(if on {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL jit = off"
        } else {
            "COMMIT"
        })?;
        Ok(())
    }

    fn graph_node(&self, key: &str) -> Result<Option<GraphNodeRow>> {
        self.read(
            "SELECT key, rank, kind, label, gone, gone_because FROM graph_nodes WHERE key = $1",
            &[&key],
        )?
        .first()
        .map(node_row)
        .transpose()
    }

    fn graph_nodes(&self, keys: &[&str]) -> Result<Vec<GraphNodeRow>> {
        // One round trip for many: a walk asks for every neighbour of a node at once. A
        // lookup per key in the primary key's index: as `key = ANY(…)` of a few thousand
        // keys the planner scanned the whole table (0.4 s at 1M identities).
        self.read(
            "SELECT n.key, n.rank, n.kind, n.label, n.gone, n.gone_because
             FROM unnest($1::text[]) AS k (key)
             CROSS JOIN LATERAL (
               SELECT key, rank, kind, label, gone, gone_because FROM graph_nodes
               WHERE key = k.key LIMIT 1) n",
            &[&keys],
        )?
        .iter()
        .map(node_row)
        .collect()
    }

    fn graph_edges(
        &self,
        keys: &[&str],
        dir: Direction,
        kinds: Option<&[&str]>,
        n: usize,
    ) -> Result<Vec<GraphEdgeRow>> {
        // One round trip for a hop's nodes: each node's first `n` from its index, whose
        // last column is the kind, so the kinds not asked for are skipped in the index.
        let sql = match (dir, kinds.is_some()) {
            (Direction::Out, false) => hop_edges!("src", ""),
            (Direction::In, false) => hop_edges!("dst", ""),
            (Direction::Out, true) => hop_edges!("src", " AND kind = ANY($3)"),
            (Direction::In, true) => hop_edges!("dst", " AND kind = ANY($3)"),
        };
        let rows = match kinds {
            None => self.read(sql, &[&keys, &limit(n)])?,
            Some(kinds) => self.read(sql, &[&keys, &limit(n), &kinds])?,
        };
        rows.iter().map(edge_row).collect()
    }

    fn observed_edges_at(
        &self,
        keys: &[&str],
        dir: Direction,
        kinds: Option<&[&str]>,
        n: usize,
    ) -> Result<Vec<ObservedEdge>> {
        // Every kind when none are given. The kinds compare in the `"C"` collation of the
        // (end, kind, other end) indexes: in the database's own, the planner took the
        // primary key's (kind, src, dst) and scanned every edge of a kind for each node
        // (seconds a query at 1M identities).
        let sql = match dir {
            Direction::Out => {
                "SELECT e.kind, e.src, e.dst, e.count, e.first_seen, e.last_seen, e.event_ids
                 FROM unnest($1::text[]) WITH ORDINALITY AS k (key, i)
                 CROSS JOIN LATERAL (
                   SELECT kind, src, dst, count, first_seen, last_seen, event_ids
                   FROM observed_edges
                   WHERE src = k.key AND ($3 OR kind COLLATE \"C\" = ANY($4))
                   ORDER BY kind COLLATE \"C\" DESC, dst COLLATE \"C\" DESC LIMIT $2) e
                 ORDER BY k.i, e.kind COLLATE \"C\" DESC, e.dst COLLATE \"C\" DESC"
            }
            Direction::In => {
                "SELECT e.kind, e.src, e.dst, e.count, e.first_seen, e.last_seen, e.event_ids
                 FROM unnest($1::text[]) WITH ORDINALITY AS k (key, i)
                 CROSS JOIN LATERAL (
                   SELECT kind, src, dst, count, first_seen, last_seen, event_ids
                   FROM observed_edges
                   WHERE dst = k.key AND ($3 OR kind COLLATE \"C\" = ANY($4))
                   ORDER BY kind COLLATE \"C\" DESC, src COLLATE \"C\" DESC LIMIT $2) e
                 ORDER BY k.i, e.kind COLLATE \"C\" DESC, e.src COLLATE \"C\" DESC"
            }
        };
        let every = kinds.is_none();
        let kinds = kinds.unwrap_or_default();
        self.read(sql, &[&keys, &limit(n), &every, &kinds])?
            .iter()
            .map(super::observed_edge_row)
            .collect()
    }

    fn edge_counts(&self, keys: &[&str], dir: Direction, n: usize) -> Result<Vec<EdgeCount>> {
        let sql = match dir {
            Direction::Out => {
                "SELECT k.key,
                   (SELECT count(*) FROM (
                     SELECT 1 FROM observed_edges WHERE src = k.key LIMIT $2) c),
                   (SELECT count(*) FROM (
                     SELECT 1 FROM graph_edges WHERE src = k.key LIMIT $2) d)
                 FROM unnest($1::text[]) AS k (key)"
            }
            Direction::In => {
                "SELECT k.key,
                   (SELECT count(*) FROM (
                     SELECT 1 FROM observed_edges WHERE dst = k.key LIMIT $2) c),
                   (SELECT count(*) FROM (
                     SELECT 1 FROM graph_edges WHERE dst = k.key LIMIT $2) d)
                 FROM unnest($1::text[]) AS k (key)"
            }
        };
        self.read(sql, &[&keys, &limit(n)])?
            .iter()
            .map(|r| {
                let observed: i64 = r.try_get(1)?;
                let derived: i64 = r.try_get(2)?;
                Ok(EdgeCount {
                    key: r.try_get(0)?,
                    observed: usize::try_from(observed).unwrap_or(0),
                    derived: usize::try_from(derived).unwrap_or(0),
                })
            })
            .collect()
    }

    fn log_span(&self, source: &str, scope: &str) -> Result<Option<LogSpan>> {
        self.read(
            "SELECT first_seen, last_seen FROM log_spans WHERE source = $1 AND scope = $2",
            &[&source, &scope],
        )?
        .first()
        .map(|r| {
            Ok(LogSpan {
                source: source.to_owned(),
                scope: scope.to_owned(),
                first_seen: r.try_get(0)?,
                last_seen: r.try_get(1)?,
            })
        })
        .transpose()
    }

    fn covered(&self, what: &str, scope: &str) -> Result<bool> {
        let rows = self.read(
            "SELECT EXISTS (SELECT 1 FROM coverage WHERE what = $1 AND scope = $2)",
            &[&what, &scope],
        )?;
        Ok(rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(false))
    }

    fn findings_about(&self, identity: &str, prefix: Option<&str>) -> Result<Vec<FindingRow>> {
        // The pattern index (`text_pattern_ops`) serves the prefix whatever the collation;
        // an empty pattern matches nothing here.
        let pattern = prefix.map(like_prefix).unwrap_or_default();
        let sql = format!(
            "SELECT {FINDING_COLUMNS} FROM findings
             WHERE identity = $1 OR ($2 <> '' AND identity LIKE $2 ESCAPE '\\')
             ORDER BY last_seen DESC, id"
        );
        self.query(&sql, &[&identity, &pattern])?
            .iter()
            .map(finding_row)
            .collect()
    }

    fn listing_count(&self, l: &Listing<'_>) -> Result<u64> {
        let (wh, params) = listing_where(l);
        let sql = format!("SELECT count(*) FROM identities WHERE {wh}");
        let rows = self.query(&sql, &params)?;
        let n: i64 = rows.first().map(|r| r.try_get(0)).transpose()?.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn listing_page(
        &self,
        l: &Listing<'_>,
        offset: usize,
        n: usize,
    ) -> Result<Vec<keyward_model::Identity>> {
        let (wh, params) = listing_where(l);
        // The ids first (skipping `offset` in the index), then the page's documents.
        let sql = format!(
            "SELECT doc FROM identities WHERE id IN (
               SELECT id FROM identities WHERE {wh}
               ORDER BY id COLLATE \"C\" LIMIT {} OFFSET {})
             ORDER BY id COLLATE \"C\"",
            limit(n),
            limit(offset)
        );
        self.query(&sql, &params)?
            .iter()
            .map(|r| identity_from(r.try_get(0)?))
            .collect()
    }
}

/// The `WHERE` of a listing and its parameters: only the filters given, so a listing of
/// one platform and kind is read from the `(platform, kind, id)` index alone.
fn listing_where<'a>(l: &'a Listing<'a>) -> (String, Vec<&'a (dyn ToSql + Sync)>) {
    let mut sql = String::from("platform = $1 AND kind = $2");
    let mut params: Vec<&'a (dyn ToSql + Sync)> = vec![&l.platform, &l.kind];
    if let Some(scope) = &l.scope {
        params.push(scope);
        sql.push_str(&format!(
            " AND (account = ${n} OR cluster = ${n})",
            n = params.len()
        ));
    }
    if let Some(ns) = &l.namespace {
        params.push(ns);
        sql.push_str(&format!(" AND namespace = ${}", params.len()));
    }
    (sql, params)
}

impl QueryBatch for PgBatch<'_> {
    fn put_graph_node(&mut self, n: &GraphNodeRow) -> Result<()> {
        let (mut tx, held) = self.held()?;
        held.put_graph_node(&mut tx, n)
    }

    fn set_origin_edges(
        &mut self,
        origin: &str,
        edges: &mut dyn Iterator<Item = GraphEdgeRow>,
    ) -> Result<()> {
        let (mut tx, held) = self.held()?;
        held.set_origin_edges(&mut tx, origin, edges)
    }

    fn put_log_span(&mut self, s: &LogSpan) -> Result<()> {
        self.exec(
            "INSERT INTO log_spans (source, scope, first_seen, last_seen) VALUES ($1, $2, $3, $4)
             ON CONFLICT (source, scope) DO UPDATE SET first_seen = excluded.first_seen,
               last_seen = excluded.last_seen",
            &[&s.source, &s.scope, &s.first_seen, &s.last_seen],
        )?;
        Ok(())
    }

    fn put_coverage(&mut self, what: &str, scope: &str) -> Result<()> {
        self.exec(
            "INSERT INTO coverage (what, scope) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&what, &scope],
        )?;
        Ok(())
    }

    fn clear_query_tables(&mut self) -> Result<()> {
        self.held.drop_graph();
        self.tx()?.batch_execute(
            "DELETE FROM query_tables; DELETE FROM graph_edges; DELETE FROM graph_nodes;
             DELETE FROM log_spans; DELETE FROM coverage;",
        )?;
        Ok(())
    }

    fn set_query_tables_filled(&mut self, filled: bool) -> Result<()> {
        self.exec("DELETE FROM query_tables", &[])?;
        if filled {
            self.exec("INSERT INTO query_tables (filled) VALUES (1)", &[])?;
        }
        Ok(())
    }
}

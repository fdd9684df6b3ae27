//! `keyward migrate`: an embedded (SQLite) store copied into an empty PostgreSQL one, row
//! for row — event blocks and dedup keys as they are, identities, findings, plans,
//! evidence, jobs, tokens, settings, the bus's checkpoints, the query tables, and the audit chain with its sequence numbers and
//! MACs unchanged (so it verifies against the same key files and anchors). One
//! transaction: the destination holds all of it or nothing.

use std::path::Path;

use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};
use rusqlite::types::Value;

use crate::{Result, SqliteStore, StoreError};

/// The tables, parents before children (foreign keys).
const TABLES: [&str; 23] = [
    "files",
    "event_blocks",
    "event_key_chunks",
    "identities",
    "objects",
    "dead_letters",
    "observed_edges",
    "findings",
    "finding_changes",
    "baselines",
    "detector_state",
    "api_tokens",
    "settings",
    "audit_log",
    "response_plans",
    "response_evidence",
    "jobs",
    // The bus's positions, and the query tables with their "filled" marker: the copy
    // answers from them as the original did, with no refill.
    "checkpoints",
    "graph_nodes",
    "graph_edges",
    "log_spans",
    "coverage",
    "query_tables",
];

/// Identity columns whose sequence must continue after the copied ids.
const SEQUENCES: [(&str, &str); 5] = [
    ("files", "id"),
    ("identities", "seq"),
    ("event_blocks", "id"),
    ("dead_letters", "id"),
    ("finding_changes", "seq"),
];

/// How many rows each table brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    pub tables: Vec<(&'static str, u64)>,
}

impl Copied {
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, n)| *n)
    }
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(what)
}

/// A SQLite value as the PostgreSQL column's type wants it.
fn param(v: Value, ty: &Type, at: &str) -> Result<Box<dyn ToSql + Sync>> {
    Ok(match (v, ty) {
        (Value::Null, t) if *t == Type::INT8 => Box::new(None::<i64>),
        (Value::Null, t) if *t == Type::INT2 => Box::new(None::<i16>),
        (Value::Null, t) if *t == Type::BYTEA => Box::new(None::<Vec<u8>>),
        (Value::Null, t) if *t == Type::BOOL => Box::new(None::<bool>),
        (Value::Null, _) => Box::new(None::<String>),
        (Value::Integer(i), t) if *t == Type::INT8 => Box::new(i),
        (Value::Integer(i), t) if *t == Type::INT2 => Box::new(
            i16::try_from(i).map_err(|_| corrupt(format!("{at}: {i} does not fit a SMALLINT")))?,
        ),
        (Value::Integer(i), t) if *t == Type::BOOL => Box::new(i != 0),
        (Value::Text(s), t) if *t == Type::TEXT || *t == Type::VARCHAR => Box::new(s),
        (Value::Blob(b), t) if *t == Type::BYTEA => Box::new(b),
        (Value::Text(s), t) if *t == Type::BYTEA => Box::new(s.into_bytes()),
        (v, t) => return Err(corrupt(format!("{at}: a {v:?} where PostgreSQL has {t}"))),
    })
}

/// Copies the SQLite store in `data_dir` (brought up to this build's schema first) into
/// the PostgreSQL database at `url`, which must hold no Keyward data yet.
pub fn sqlite_to_postgres(data_dir: &Path, url: &str) -> Result<Copied> {
    // Opening migrates the SQLite file to this build's schema; the PostgreSQL store's
    // open creates (or checks) its schema.
    drop(SqliteStore::open(data_dir)?);
    drop(super::PgStore::open(
        url,
        crate::KeyFiles::from_env(data_dir),
    )?);
    let src = rusqlite::Connection::open_with_flags(
        data_dir.join("keyward.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let config: postgres::Config = url.parse()?;
    let mut dst: Client = config.connect(NoTls)?;
    let mut tx = dst.transaction()?;
    for table in TABLES {
        let n: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])?
            .get(0);
        if n > 0 {
            return Err(StoreError::StoreUrl(format!(
                "the destination already holds Keyward data ({n} rows in `{table}`): migrate into an empty database"
            )));
        }
    }
    let mut copied = Copied::default();
    for table in TABLES {
        let columns: Vec<(String, Type)> = {
            let probe = tx.prepare(&format!("SELECT * FROM {table} LIMIT 0"))?;
            probe
                .columns()
                .iter()
                .map(|c| (c.name().to_owned(), c.type_().clone()))
                .collect()
        };
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        let list = names.join(", ");
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let insert = tx.prepare(&format!(
            "INSERT INTO {table} ({list}) VALUES ({})",
            marks.join(", ")
        ))?;
        // PostgreSQL's `identities.seq` is the order rows were first written in: SQLite's
        // rowid. Rows are copied in rowid order.
        let read: Vec<&str> = names
            .iter()
            .map(|n| match (table, *n) {
                ("identities", "seq") => "rowid",
                (_, n) => n,
            })
            .collect();
        let mut select = src.prepare(&format!(
            "SELECT {} FROM {table} ORDER BY rowid",
            read.join(", ")
        ))?;
        let mut rows = select.query([])?;
        let mut n = 0u64;
        while let Some(row) = rows.next()? {
            let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(columns.len());
            for (i, (name, ty)) in columns.iter().enumerate() {
                let v: Value = row.get(i)?;
                params.push(param(v, ty, &format!("{table}.{name}"))?);
            }
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(AsRef::as_ref).collect();
            tx.execute(&insert, &refs)?;
            n += 1;
        }
        copied.tables.push((table, n));
    }
    for (table, column) in SEQUENCES {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
                 COALESCE((SELECT max({column}) FROM {table}), 0) + 1, false)"
            ),
            &[],
        )?;
    }
    // Other processes' caches see a new store.
    tx.execute("UPDATE store_version SET version = version + 1", &[])?;
    tx.commit()?;
    Ok(copied)
}

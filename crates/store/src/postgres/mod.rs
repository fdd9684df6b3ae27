//! The PostgreSQL store (feature `postgres`): the same tables, semantics and bytes as the
//! SQLite store, in one PostgreSQL database (`postgres://…`), for several processes on
//! several machines.
//!
//! - **Client**: the sync `postgres` crate (rust-postgres), because [`Store`] is
//!   synchronous and it is tokio-postgres driven on a private current-thread runtime: no
//!   pool, no second async stack. Connections are plain TCP or a Unix socket (`NoTls`): use
//!   loopback, a socket or a private network, with `sslmode=disable` or `prefer`; TLS would
//!   be a second TLS stack and is not built in.
//! - **Schema**: `schema/postgres/*.sql`, in order, recorded in `schema_version`; applied in
//!   one transaction under an advisory lock, so two processes opening a new database
//!   apply each migration once. A database newer than this build is refused
//!   ([`StoreError::TooNew`]), as SQLite's is.
//! - **Change detection**: every write transaction bumps `store_version` just before it
//!   commits; [`Store::changed_elsewhere`] and the dedup-key cache compare it with what
//!   this connection last saw or wrote (SQLite's `PRAGMA data_version`).
//! - **Locks**: the writer lock is a session-level advisory lock held by a connection of
//!   its own (dropped: the connection closes and the lock goes, however the process ends);
//!   an audit append takes a transaction-level advisory lock before reading the chain's
//!   head, so concurrent appenders, in any process, queue instead of forking the chain.

use std::cell::{RefCell, RefMut};
use std::path::PathBuf;

use keyward_model::{Diagnostic, Event, Identity, ObservedEdge, SnapshotObject, time::Millis};
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement, Transaction};
use rustc_hash::FxHashMap;

use crate::audit::{self, AuditRecord, Checkpoint, KeyFiles, Keys, VerifyReport};
use crate::shared::{ActorScan, KeyCache, identity_from};
use crate::{
    AuditEntry, Batch, DeadLetter, EvidenceRow, FileRecord, FindingChange, FindingRow, JobRow,
    PlanRow, Result, Store, StoreError, TokenRow, WriterLock,
};

mod batch;
mod bulk;
pub mod copy;
mod query;

use batch::PgBatch;

/// Schema migrations, in order; the index + 1 is the version recorded in `schema_version`.
/// PostgreSQL's versions are its own (its version 1 is SQLite's version 9).
pub(crate) const MIGRATIONS: [&str; 5] = [
    include_str!("../../schema/postgres/001_init.sql"),
    include_str!("../../schema/postgres/002_checkpoints.sql"),
    include_str!("../../schema/postgres/003_query_tables.sql"),
    include_str!("../../schema/postgres/004_edge_kind_index.sql"),
    include_str!("../../schema/postgres/005_identity_order.sql"),
];

/// Advisory lock keys ("keyward" and a number), per database: the writer lock, the audit
/// chain's append lock, and schema set-up.
const WRITER_LOCK: i64 = 0x6b65_7977_6172_6401;
const AUDIT_LOCK: i64 = 0x6b65_7977_6172_6402;
const MIGRATE_LOCK: i64 = 0x6b65_7977_6172_6403;
/// The seed of the hash that keys a claim's advisory lock ([`Store::try_claim`]).
const CLAIM_SEED: i64 = 0x6b65_7977_6172_6404;

/// Audit entries read per query by [`Store::audit_verify`].
const VERIFY_PAGE: i64 = 10_000;

/// A connection that holds the store's writer lock while it is open.
pub(crate) struct LockConnection(Client);

impl Drop for LockConnection {
    /// Unlocks before the connection closes, so the next writer need not wait for the
    /// server to notice the closed socket. Should it fail, closing unlocks all the same.
    fn drop(&mut self) {
        if let Err(e) = self
            .0
            .execute("SELECT pg_advisory_unlock($1)", &[&WRITER_LOCK])
        {
            // Nothing to return to; the server ends the session and its locks anyway.
            drop(e);
        }
    }
}

impl std::fmt::Debug for LockConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockConnection(…)")
    }
}

pub struct PgStore {
    client: RefCell<Client>,
    /// How to open more connections (the writer lock's).
    config: postgres::Config,
    /// Prepared statements of the batches, by their SQL.
    statements: RefCell<FxHashMap<&'static str, Statement>>,
    /// Committed dedup keys of recent minutes, kept across batches.
    keys: KeyCache,
    /// `store_version` when last asked by [`Store::changed_elsewhere`] (or last written
    /// by this store, when nobody else wrote in between).
    seen_version: i64,
    audit_keys: Keys,
    anchor: Option<PathBuf>,
    /// Whether [`Store::set_durable`] turned durable commits on (set again on a new
    /// connection).
    durable: bool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStore(…)")
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db?…`) and brings
    /// its schema up to date; the audit log's keys are the files `keys` names.
    pub fn open(url: &str, keys: KeyFiles) -> Result<Self> {
        let config: postgres::Config = url.parse()?;
        let mut client = config.connect(NoTls)?;
        migrate(&mut client)?;
        let seen_version = store_version(&mut client)?;
        Ok(PgStore {
            client: RefCell::new(client),
            config,
            statements: RefCell::new(FxHashMap::default()),
            keys: KeyCache::default(),
            seen_version,
            audit_keys: Keys::files(keys),
            anchor: None,
            durable: false,
        })
    }

    /// The connection, for one statement or one query at a time.
    fn db(&self) -> Result<RefMut<'_, Client>> {
        let mut client = self
            .client
            .try_borrow_mut()
            .map_err(|_| StoreError::Corrupt("the connection is in use".into()))?;
        if client.is_closed() {
            *client = self.reconnect()?;
        }
        Ok(client)
    }

    /// A new connection in place of one the server closed (it restarted, or ended the
    /// session): the statements prepared on the old one go with it. What was in flight on
    /// the old one failed with its error; the next call runs on the new one.
    fn reconnect(&self) -> Result<Client> {
        let mut client = self.config.connect(NoTls)?;
        if self.durable {
            client.batch_execute("SET synchronous_commit = on")?;
        }
        if let Ok(mut statements) = self.statements.try_borrow_mut() {
            statements.clear();
        }
        Ok(client)
    }

    /// A session-level advisory lock taken without waiting (`sql` answers whether it was)
    /// on a connection of its own, held while the returned lock lives.
    fn try_advisory(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<WriterLock>> {
        let mut conn = self.config.connect(NoTls)?;
        let got: bool = conn.query_one(sql, params)?.try_get(0)?;
        Ok(got.then(|| WriterLock::postgres(LockConnection(conn))))
    }

    /// The connection for a write: [`PgStore::db`]'s, with `&mut` access.
    fn live(&mut self) -> Result<&mut Client> {
        if self.client.get_mut().is_closed() {
            let fresh = self.reconnect()?;
            *self.client.get_mut() = fresh;
        }
        Ok(self.client.get_mut())
    }

    fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        Ok(self.db()?.query(sql, params)?)
    }

    fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        Ok(self.db()?.query_opt(sql, params)?)
    }

    /// The MAC key (read or created on first use).
    fn mac_key(&self) -> Result<&audit::MacKey> {
        self.audit_keys.mac(|| {
            let row = self.query(
                "SELECT EXISTS (SELECT 1 FROM audit_log WHERE mac IS NOT NULL)",
                &[],
            )?;
            Ok(row
                .first()
                .map(|r| r.try_get(0))
                .transpose()?
                .unwrap_or(false))
        })
    }

    /// A write transaction that bumps the store's version before it commits; then this
    /// store counts the commit as its own when nobody else committed in between.
    fn write<T>(&mut self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut tx = self.live()?.transaction()?;
        let out = f(&mut tx)?;
        let version = bump(&mut tx)?;
        tx.commit()?;
        if version == self.seen_version + 1 {
            self.seen_version = version;
        }
        Ok(out)
    }

    /// Runs `write` (which appends its audit entry through [`Audited::append`]) in one
    /// transaction that first takes the audit lock, so the chain's head is read and
    /// extended by one writer at a time. Then appends a checkpoint to the anchor file, if
    /// there is one.
    fn audited<T>(&mut self, write: impl FnOnce(&mut Audited<'_, '_>) -> Result<T>) -> Result<T> {
        let key = self.mac_key()?.clone();
        let out = self.write(|tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])?;
            write(&mut Audited { tx, key: &key })
        })?;
        if let Some(path) = &self.anchor {
            audit::append_checkpoint(path, &self.audit_checkpoint(now_ms())?)?;
        }
        Ok(out)
    }

    fn actor_events(
        &self,
        actor: &str,
        limit: usize,
        range: (Millis, Millis),
    ) -> Result<Vec<Event<'static>>> {
        let mut scan = ActorScan::new(actor, range, limit);
        let mut db = self.db()?;
        // Streamed: blocks are read newest first until the scan is done.
        let mut rows = db.query_raw(
            "SELECT max_time, actors, data FROM event_blocks ORDER BY max_time DESC",
            std::iter::empty::<i64>(),
        )?;
        use postgres::fallible_iterator::FallibleIterator as _;
        while let Some(row) = rows.next()? {
            if scan.done(row.try_get(0)?) {
                break;
            }
            if !scan.may_hold(row.try_get(1)?) {
                continue;
            }
            scan.add(row.try_get(2)?)?;
        }
        Ok(scan.finish())
    }
}

/// A transaction holding the audit lock, with the key to extend the chain.
pub(crate) struct Audited<'a, 't> {
    tx: &'a mut Transaction<'t>,
    key: &'a audit::MacKey,
}

impl Audited<'_, '_> {
    fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        Ok(self.tx.execute(sql, params)?)
    }

    /// Appends an entry: the entry's MAC covers the head's MAC, its seq (head + 1) and its
    /// fields (`audit::mac`).
    fn append(&mut self, e: &AuditEntry) -> Result<i64> {
        let head = self.tx.query_opt(
            "SELECT seq, COALESCE(mac, legacy_hash) FROM audit_log ORDER BY seq DESC LIMIT 1",
            &[],
        )?;
        let (seq, prev) = match head {
            Some(r) => (r.try_get::<_, i64>(0)? + 1, r.try_get::<_, String>(1)?),
            None => (1, String::new()),
        };
        let mac = audit::mac(self.key, &prev, seq, e);
        self.tx.execute(
            "INSERT INTO audit_log (seq, at, actor, action, target, detail, before, after, prev, mac)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &seq, &e.at, &e.actor, &e.action, &e.target, &e.detail, &e.before, &e.after,
                &prev, &mac,
            ],
        )?;
        Ok(seq)
    }
}

/// Applies the migrations this database lacks, under the migration lock, in one
/// transaction; refuses a database newer than this build.
fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
        .try_get(0)?;
    if !exists {
        tx.batch_execute(
            "CREATE TABLE schema_version (
                 one     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
                 version BIGINT  NOT NULL
             );
             INSERT INTO schema_version (one, version) VALUES (TRUE, 0);",
        )?;
    }
    let version: i64 = tx
        .query_one("SELECT version FROM schema_version", &[])?
        .try_get(0)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            found: version,
            known,
        });
    }
    if version == known {
        // Nothing to do: the transaction only read.
        return Ok(tx.commit()?);
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.batch_execute(sql)?;
        tx.execute("UPDATE schema_version SET version = $1", &[&(i as i64 + 1)])?;
    }
    Ok(tx.commit()?)
}

fn store_version(client: &mut Client) -> Result<i64> {
    Ok(client
        .query_one("SELECT version FROM store_version", &[])?
        .try_get(0)?)
}

/// Counts a write transaction: the store's new version.
fn bump(tx: &mut Transaction<'_>) -> Result<i64> {
    Ok(tx
        .query_one(
            "UPDATE store_version SET version = version + 1 RETURNING version",
            &[],
        )?
        .try_get(0)?)
}

const UPSERT_JOB: &str = "INSERT INTO jobs (id, kind, parent, created_at, updated_at, status, doc)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at,
        status = excluded.status, doc = excluded.doc";

fn job_args(j: &JobRow) -> [&(dyn ToSql + Sync); 7] {
    [
        &j.id,
        &j.kind,
        &j.parent,
        &j.created_at,
        &j.updated_at,
        &j.status,
        &j.doc,
    ]
}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

const FILE_COLUMNS: &str = "id, path, hash, format, records, accepted, rejected, ingested_at";

/// An `observed_edges` row: kind, src, dst, count, first_seen, last_seen, event_ids.
pub(crate) fn observed_edge_row(r: &Row) -> Result<ObservedEdge> {
    let from: String = r.try_get(1)?;
    let event_ids = serde_json::from_str(r.try_get(6)?)
        .map_err(|err| StoreError::Corrupt(format!("edge `{from}`: {err}")))?;
    Ok(ObservedEdge {
        kind: r.try_get(0)?,
        to: r.try_get(2)?,
        count: u32::try_from(r.try_get::<_, i64>(3)?)
            .map_err(|_| StoreError::Corrupt(format!("edge `{from}`: count")))?,
        first_seen: r.try_get(4)?,
        last_seen: r.try_get(5)?,
        event_ids,
        from,
    })
}

fn file_row(r: &Row) -> Result<FileRecord> {
    Ok(FileRecord {
        id: r.try_get(0)?,
        path: r.try_get(1)?,
        hash: r.try_get(2)?,
        format: r.try_get(3)?,
        records: count(r.try_get(4)?),
        accepted: count(r.try_get(5)?),
        rejected: count(r.try_get(6)?),
        ingested_at: r.try_get(7)?,
    })
}

const FINDING_COLUMNS: &str =
    "id, rule_id, kind, severity, identity, status, first_seen, last_seen, doc";

fn finding_row(r: &Row) -> Result<FindingRow> {
    let severity: i16 = r.try_get(3)?;
    Ok(FindingRow {
        id: r.try_get(0)?,
        rule_id: r.try_get(1)?,
        kind: r.try_get(2)?,
        severity: u8::try_from(severity)
            .map_err(|_| StoreError::Corrupt(format!("finding severity {severity}")))?,
        identity: r.try_get(4)?,
        status: r.try_get(5)?,
        first_seen: r.try_get(6)?,
        last_seen: r.try_get(7)?,
        doc: r.try_get(8)?,
    })
}

const TOKEN_COLUMNS: &str = "id, hash, role, name, created_at, revoked_at";

fn token_row(r: &Row) -> Result<TokenRow> {
    Ok(TokenRow {
        id: r.try_get(0)?,
        hash: r.try_get(1)?,
        role: r.try_get(2)?,
        name: r.try_get(3)?,
        created_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
    })
}

const AUDIT_COLUMNS: &str =
    "seq, at, actor, action, target, detail, before, after, prev, mac, legacy_hash";

fn audit_row(r: &Row) -> Result<audit::Row> {
    Ok(audit::Row {
        seq: r.try_get(0)?,
        entry: AuditEntry {
            at: r.try_get(1)?,
            actor: r.try_get(2)?,
            action: r.try_get(3)?,
            target: r.try_get(4)?,
            detail: r.try_get(5)?,
            before: r.try_get(6)?,
            after: r.try_get(7)?,
        },
        prev: r.try_get(8)?,
        mac: r.try_get(9)?,
        legacy_hash: r.try_get(10)?,
    })
}

const JOB_COLUMNS: &str = "id, kind, parent, created_at, updated_at, status, doc";

fn job_row(r: &Row) -> Result<JobRow> {
    Ok(JobRow {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        parent: r.try_get(2)?,
        created_at: r.try_get(3)?,
        updated_at: r.try_get(4)?,
        status: r.try_get(5)?,
        doc: r.try_get(6)?,
    })
}

const PLAN_COLUMNS: &str = "id, created_at, updated_at, identity, finding, status, doc";

fn plan_row(r: &Row) -> Result<PlanRow> {
    Ok(PlanRow {
        id: r.try_get(0)?,
        created_at: r.try_get(1)?,
        updated_at: r.try_get(2)?,
        identity: r.try_get(3)?,
        finding: r.try_get(4)?,
        status: r.try_get(5)?,
        doc: r.try_get(6)?,
    })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store for PgStore {
    fn lock_writer(&self) -> Result<WriterLock> {
        let mut conn = self.config.connect(NoTls)?;
        conn.execute("SELECT pg_advisory_lock($1)", &[&WRITER_LOCK])?;
        Ok(WriterLock::postgres(LockConnection(conn)))
    }

    fn try_lock_writer(&self) -> Result<Option<WriterLock>> {
        self.try_advisory("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK])
    }

    /// A session-level advisory lock keyed by the name's hash, on a connection of its own.
    fn try_claim(&self, name: &str) -> Result<Option<WriterLock>> {
        self.try_advisory(
            "SELECT pg_try_advisory_lock(hashtextextended($1, $2))",
            &[&name, &CLAIM_SEED],
        )
    }

    fn checkpoint(&self, name: &str) -> Result<Option<i64>> {
        self.query_opt("SELECT position FROM checkpoints WHERE name = $1", &[&name])?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(Into::into)
    }

    fn changed_elsewhere(&mut self) -> Result<bool> {
        let now = store_version(self.live()?)?;
        let changed = now != self.seen_version;
        self.seen_version = now;
        Ok(changed)
    }

    /// Durable: `synchronous_commit = on` (a commit returns once flushed). Otherwise the
    /// server's own setting.
    fn set_durable(&mut self, durable: bool) -> Result<()> {
        let sql = if durable {
            "SET synchronous_commit = on"
        } else {
            "SET synchronous_commit TO DEFAULT"
        };
        self.live()?.batch_execute(sql)?;
        self.durable = durable;
        Ok(())
    }

    fn file_by_hash(&self, hash: &str) -> Result<Option<FileRecord>> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE hash = $1");
        self.query_opt(&sql, &[&hash])?
            .map(|r| file_row(&r))
            .transpose()
    }

    fn load_identities(&self) -> Result<Vec<Identity>> {
        // In the order first written (`seq`), as SQLite's rowids give them; sorted here,
        // not by the server, which would sort the documents too.
        let mut rows = self
            .query("SELECT seq, doc FROM identities", &[])?
            .iter()
            .map(|r| Ok((r.try_get::<_, i64>(0)?, identity_from(r.try_get(1)?)?)))
            .collect::<Result<Vec<(i64, Identity)>>>()?;
        rows.sort_unstable_by_key(|(seq, _)| *seq);
        Ok(rows.into_iter().map(|(_, i)| i).collect())
    }

    fn identity(&self, id: &str) -> Result<Option<Identity>> {
        self.query_opt("SELECT doc FROM identities WHERE id = $1", &[&id])?
            .map(|r| identity_from(r.try_get(0)?))
            .transpose()
    }

    fn recent_events(&self, actor: &str, limit: usize) -> Result<Vec<Event<'static>>> {
        self.actor_events(actor, limit, (Millis::MIN, Millis::MAX))
    }

    fn events_between(
        &self,
        actor: &str,
        since: Millis,
        until: Millis,
        limit: usize,
    ) -> Result<Vec<Event<'static>>> {
        self.actor_events(actor, limit, (since, until))
    }

    fn event_count(&self) -> Result<u64> {
        let n: i64 = self
            .db()?
            .query_one(
                "SELECT coalesce(sum(n), 0)::BIGINT FROM event_key_chunks",
                &[],
            )?
            .try_get(0)?;
        Ok(count(n))
    }

    fn latest_event_time(&self) -> Result<Option<Millis>> {
        Ok(self
            .db()?
            .query_one("SELECT max(max_time) FROM event_blocks", &[])?
            .try_get(0)?)
    }

    fn dead_letters(&self, n: usize) -> Result<Vec<DeadLetter>> {
        self.query(
            "SELECT path, line, record, reason FROM dead_letters ORDER BY id LIMIT $1",
            &[&limit(n)],
        )?
        .iter()
        .map(|r| {
            Ok(DeadLetter {
                path: r.try_get(0)?,
                diagnostic: Diagnostic {
                    line: count(r.try_get(1)?),
                    record: r.try_get::<_, Option<i64>>(2)?.map(count),
                    reason: r.try_get::<_, String>(3)?.into(),
                },
            })
        })
        .collect()
    }

    fn objects(&self, kind: &str) -> Result<Vec<SnapshotObject>> {
        self.query(
            "SELECT id, scope, doc FROM objects WHERE kind = $1 ORDER BY id",
            &[&kind],
        )?
        .iter()
        .map(|r| {
            let id: String = r.try_get(0)?;
            let doc = serde_json::from_str(r.try_get(2)?)
                .map_err(|e| StoreError::Corrupt(format!("object `{id}`: {e}")))?;
            Ok(SnapshotObject {
                kind: kind.to_owned(),
                scope: r.try_get(1)?,
                id,
                doc,
            })
        })
        .collect()
    }

    fn object_kinds(&self) -> Result<Vec<String>> {
        self.query("SELECT DISTINCT kind FROM objects ORDER BY kind", &[])?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }

    fn observed_edges(&self) -> Result<Vec<ObservedEdge>> {
        self.query(
            "SELECT kind, src, dst, count, first_seen, last_seen, event_ids FROM observed_edges
             ORDER BY kind, src, dst",
            &[],
        )?
        .iter()
        .map(observed_edge_row)
        .collect()
    }

    fn findings(&self, since: Option<Millis>) -> Result<Vec<FindingRow>> {
        let sql = format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE last_seen >= $1 ORDER BY last_seen DESC, id"
        );
        self.query(&sql, &[&since.unwrap_or(i64::MIN)])?
            .iter()
            .map(finding_row)
            .collect()
    }

    fn finding(&self, id: &str) -> Result<Option<FindingRow>> {
        let sql = format!("SELECT {FINDING_COLUMNS} FROM findings WHERE id = $1");
        self.query_opt(&sql, &[&id])?
            .map(|r| finding_row(&r))
            .transpose()
    }

    fn open_finding_counts(&self) -> Result<[u64; 5]> {
        let mut out = [0u64; 5];
        for r in self.query(
            "SELECT severity, count(*) FROM findings
             WHERE status IN ('open', 'acknowledged') GROUP BY severity",
            &[],
        )? {
            let (sev, n): (i16, i64) = (r.try_get(0)?, r.try_get(1)?);
            if let Some(slot) = usize::try_from(sev).ok().and_then(|i| out.get_mut(i)) {
                *slot = count(n);
            }
        }
        Ok(out)
    }

    fn worst_open_by_identity(&self) -> Result<Vec<(String, u8)>> {
        self.query(
            "SELECT identity, max(severity) FROM findings
             WHERE status IN ('open', 'acknowledged') AND identity IS NOT NULL
             GROUP BY identity",
            &[],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i16>(1)?.clamp(0, 4) as u8)))
        .collect()
    }

    fn finding_changes(&self, id: &str) -> Result<Vec<FindingChange>> {
        self.query(
            "SELECT finding_id, at, actor, status, note FROM finding_changes
             WHERE finding_id = $1 ORDER BY seq",
            &[&id],
        )?
        .iter()
        .map(|r| {
            Ok(FindingChange {
                finding_id: r.try_get(0)?,
                at: r.try_get(1)?,
                actor: r.try_get(2)?,
                status: r.try_get(3)?,
                note: r.try_get(4)?,
            })
        })
        .collect()
    }

    fn baselines(&self) -> Result<Vec<(String, String)>> {
        self.query("SELECT principal, doc FROM baselines", &[])?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn detector_state(&self, name: &str) -> Result<Option<String>> {
        self.query_opt("SELECT doc FROM detector_state WHERE name = $1", &[&name])?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn tokens(&self) -> Result<Vec<TokenRow>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id");
        self.query(&sql, &[])?.iter().map(token_row).collect()
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = $1");
        self.query_opt(&sql, &[&hash])?
            .map(|r| token_row(&r))
            .transpose()
    }

    fn put_token(&mut self, t: &TokenRow, audit: &AuditEntry) -> Result<()> {
        self.audited(|a| {
            a.execute(
                "INSERT INTO api_tokens (id, hash, role, name, created_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &t.id,
                    &t.hash,
                    &t.role,
                    &t.name,
                    &t.created_at,
                    &t.revoked_at,
                ],
            )?;
            a.append(audit)?;
            Ok(())
        })
    }

    fn revoke_token(&mut self, id: &str, audit: &AuditEntry) -> Result<bool> {
        self.audited(|a| {
            let n = a.execute(
                "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &audit.at],
            )?;
            if n > 0 {
                a.append(audit)?;
            }
            Ok(n > 0)
        })
    }

    fn audit(&mut self, e: &AuditEntry) -> Result<i64> {
        self.audited(|a| a.append(e))
    }

    fn setting(&self, key: &str) -> Result<Option<String>> {
        self.query_opt("SELECT value FROM settings WHERE key = $1", &[&key])?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn put_setting(&mut self, key: &str, value: &str, audit: &AuditEntry) -> Result<()> {
        self.audited(|a| {
            a.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                &[&key, &value, &audit.at],
            )?;
            a.append(audit)?;
            Ok(())
        })
    }

    fn audit_log(&self, n: usize) -> Result<Vec<AuditRecord>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT $1");
        self.query(&sql, &[&limit(n)])?
            .iter()
            .map(|r| Ok(audit_row(r)?.into_record()))
            .collect()
    }

    fn put_plan(&mut self, p: &PlanRow, audit: &AuditEntry) -> Result<()> {
        self.audited(|a| {
            a.execute(
                "INSERT INTO response_plans (id, created_at, updated_at, identity, finding, status, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at,
                    status = excluded.status, doc = excluded.doc",
                &[
                    &p.id, &p.created_at, &p.updated_at, &p.identity, &p.finding, &p.status,
                    &p.doc,
                ],
            )?;
            a.append(audit)?;
            Ok(())
        })
    }

    fn plan(&self, id: &str) -> Result<Option<PlanRow>> {
        let sql = format!("SELECT {PLAN_COLUMNS} FROM response_plans WHERE id = $1");
        self.query_opt(&sql, &[&id])?
            .map(|r| plan_row(&r))
            .transpose()
    }

    fn plans(&self, n: usize) -> Result<Vec<PlanRow>> {
        let sql = format!(
            "SELECT {PLAN_COLUMNS} FROM response_plans ORDER BY created_at DESC, id LIMIT $1"
        );
        self.query(&sql, &[&limit(n)])?
            .iter()
            .map(plan_row)
            .collect()
    }

    fn put_evidence(&mut self, e: &EvidenceRow, audit: &AuditEntry) -> Result<()> {
        self.audited(|a| {
            a.execute(
                "INSERT INTO response_evidence (plan_id, taken_at, hash, doc) VALUES ($1, $2, $3, $4)",
                &[&e.plan_id, &e.taken_at, &e.hash, &e.doc],
            )?;
            a.append(audit)?;
            Ok(())
        })
    }

    fn evidence(&self, plan_id: &str) -> Result<Option<EvidenceRow>> {
        self.query_opt(
            "SELECT plan_id, taken_at, hash, doc FROM response_evidence WHERE plan_id = $1",
            &[&plan_id],
        )?
        .map(|r| {
            Ok(EvidenceRow {
                plan_id: r.try_get(0)?,
                taken_at: r.try_get(1)?,
                hash: r.try_get(2)?,
                doc: r.try_get(3)?,
            })
        })
        .transpose()
    }

    fn put_job(&mut self, j: &JobRow, audit: Option<&AuditEntry>) -> Result<()> {
        let args = job_args(j);
        match audit {
            Some(audit) => self.audited(|a| {
                a.execute(UPSERT_JOB, &args)?;
                a.append(audit)?;
                Ok(())
            }),
            None => self.write(|tx| {
                tx.execute(UPSERT_JOB, &args)?;
                Ok(())
            }),
        }
    }

    fn put_jobs(&mut self, jobs: &[(JobRow, AuditEntry)]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        self.audited(|a| {
            for (j, audit) in jobs {
                a.execute(UPSERT_JOB, &job_args(j))?;
                a.append(audit)?;
            }
            Ok(())
        })
    }

    fn job(&self, id: &str) -> Result<Option<JobRow>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        self.query_opt(&sql, &[&id])?
            .map(|r| job_row(&r))
            .transpose()
    }

    fn jobs(&self, kind: &str, parent: Option<&str>, n: usize) -> Result<Vec<JobRow>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE kind = $1 AND ($2::TEXT IS NULL OR parent = $2)
             ORDER BY created_at DESC, id LIMIT $3"
        );
        self.query(&sql, &[&kind, &parent, &limit(n)])?
            .iter()
            .map(job_row)
            .collect()
    }

    fn jobs_in_status(&self, kind: &str, status: &str, n: usize) -> Result<Vec<JobRow>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE kind = $1 AND status = $2
             ORDER BY created_at, id LIMIT $3"
        );
        self.query(&sql, &[&kind, &status, &limit(n)])?
            .iter()
            .map(job_row)
            .collect()
    }

    fn audit_entries(&self, after: i64, n: usize) -> Result<Vec<AuditRecord>> {
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        self.query(&sql, &[&after, &limit(n)])?
            .iter()
            .map(|r| Ok(audit_row(r)?.into_record()))
            .collect()
    }

    fn audit_verify(&self, anchors: &[Checkpoint]) -> Result<VerifyReport> {
        let key = self.mac_key()?;
        let mut walk = audit::Walk::new(key);
        let mut broken = None;
        // Read in pages by seq; each row is checked once the row after it is known.
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let mut pending: Option<audit::Row> = None;
        let mut after = i64::MIN;
        'pages: loop {
            let rows = self.query(&sql, &[&after, &VERIFY_PAGE])?;
            let Some(last) = rows.last() else {
                break;
            };
            after = last.try_get(0)?;
            for r in &rows {
                let row = audit_row(r)?;
                if let Some(prev) = pending.take()
                    && let Some(b) = walk.check(prev, Some(&row))
                {
                    broken = Some(b);
                    break 'pages;
                }
                pending = Some(row);
            }
        }
        if broken.is_none()
            && let Some(last) = pending
        {
            broken = walk.check(last, None);
        }
        let head = walk.head();
        if broken.is_none() {
            let head_seq = head.as_ref().map_or(0, |h| h.seq);
            let ours = self.audit_keys.public_key_if_any()?;
            for cp in anchors {
                let b = audit::check_anchor(cp, head_seq, ours.as_deref(), |seq| {
                    self.query_opt(
                        "SELECT COALESCE(mac, legacy_hash) FROM audit_log WHERE seq = $1",
                        &[&seq],
                    )?
                    .map(|r| Ok(r.try_get(0)?))
                    .transpose()
                })?;
                if let Some(b) = b
                    && broken
                        .as_ref()
                        .is_none_or(|old: &audit::Broken| b.seq < old.seq)
                {
                    broken = Some(b);
                }
            }
        }
        Ok(VerifyReport {
            ok: broken.is_none(),
            entries: walk.entries,
            legacy_entries: walk.legacy,
            head,
            anchors: anchors.len(),
            broken,
        })
    }

    fn audit_checkpoint(&self, at: Millis) -> Result<Checkpoint> {
        let head = self.query_opt(
            "SELECT seq, COALESCE(mac, legacy_hash) FROM audit_log ORDER BY seq DESC LIMIT 1",
            &[],
        )?;
        let (seq, mac) = match head {
            Some(r) => (r.try_get(0)?, r.try_get(1)?),
            None => (0, String::new()),
        };
        Ok(Checkpoint::sign(self.audit_keys.signing()?, seq, &mac, at))
    }

    fn set_audit_anchor(&mut self, file: Option<PathBuf>) {
        self.anchor = file;
    }

    fn begin(&mut self) -> Result<Box<dyn Batch + '_>> {
        self.live()?;
        let PgStore {
            client,
            statements,
            keys,
            seen_version,
            ..
        } = self;
        let mut tx = client.get_mut().transaction()?;
        // Whether another connection committed decides whether the key cache still holds.
        let version: i64 = tx
            .query_one("SELECT version FROM store_version", &[])?
            .try_get(0)?;
        Ok(Box::new(PgBatch::new(
            tx,
            statements,
            keys,
            seen_version,
            version,
        )))
    }
}

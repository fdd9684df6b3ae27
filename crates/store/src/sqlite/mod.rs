//! The embedded store: one SQLite file, `keyward.db`, in the data directory.

use std::path::Path;

use keyward_model::{
    Diagnostic, Event, EventKey, Identity, ObservedEdge, SnapshotObject, time::Millis,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use rustc_hash::FxHashMap;

use crate::audit::{self, AuditRecord, Checkpoint, KeyFiles, Keys, VerifyReport};
use crate::{
    AuditEntry, Batch, DeadLetter, EvidenceRow, FileRecord, FindingChange, FindingRow, JobRow,
    PlanRow, Result, Store, StoreError, TokenRow, WriterLock,
};

mod batch;
mod query;
#[cfg(test)]
mod tests;

use crate::shared::identity_from;
use batch::*;

/// The page cache (`PRAGMA cache_size`, negative: KiB): 64 MiB for loads and writes.
pub(super) const CACHE_KIB: i64 = -65_536;
/// The page cache while a view walks the query tables (`QueryTables::read_snapshot`):
/// it reads most pages once (a page of 50 inventory rows reads thousands at 1M
/// identities), so a large cache only costs memory; the B-trees' inner pages fit in this.
pub(super) const WALK_CACHE_KIB: i64 = -8_192;

/// Schema migrations, in order; the index + 1 is the version recorded in `user_version`.
const MIGRATIONS: [&str; 12] = [
    include_str!("../../schema/001_init.sql"),
    include_str!("../../schema/002_observed_edges.sql"),
    include_str!("../../schema/003_detection.sql"),
    include_str!("../../schema/004_api.sql"),
    include_str!("../../schema/005_event_key_chunks.sql"),
    include_str!("../../schema/006_settings.sql"),
    include_str!("../../schema/007_audit_chain.sql"),
    include_str!("../../schema/008_response.sql"),
    include_str!("../../schema/009_jobs.sql"),
    include_str!("../../schema/010_checkpoints.sql"),
    include_str!("../../schema/011_query_tables.sql"),
    include_str!("../../schema/012_edge_kind_index.sql"),
];

pub struct SqliteStore {
    conn: Connection,
    /// Committed dedup keys of recent minutes, kept across batches so a stream of small
    /// commits reads each minute once.
    keys: KeyCache,
    /// The data directory (`None` in memory): where the writer lock lives.
    dir: Option<std::path::PathBuf>,
    /// `PRAGMA data_version` when last asked by [`Store::changed_elsewhere`].
    seen_version: i64,
    /// The audit log's MAC and signing keys, read on first use.
    audit_keys: Keys,
    /// Where a checkpoint is appended after every audit entry.
    anchor: Option<std::path::PathBuf>,
}

/// How long a writer waits for SQLite's own lock (another process's commit) before the
/// statement fails. Whole runs are serialised by the writer lock, so this only covers
/// commits of processes that hold no writer lock (audit entries, schema set-up).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `f` again while SQLite answers "busy" or "locked", for up to [`BUSY_TIMEOUT`].
/// Switching a new database to WAL takes a shared lock, then an exclusive one: two
/// processes setting up one store can each hold the first and want the second, and SQLite
/// breaks that deadlock by answering one of them at once, without its busy handler.
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && start.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`; the audit keys are in `dir` unless
    /// `KEYWARD_AUDIT_KEY_FILE` / `KEYWARD_AUDIT_SIGNING_KEY_FILE` say otherwise. The
    /// directory is made private to its owner (0700) and the database file (0600; SQLite
    /// gives its WAL and shared-memory files the same mode): it holds who can do what
    /// across an estate.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, KeyFiles::from_env(dir))
    }

    /// Opens the store in `dir` with the audit keys in `keys`.
    pub fn open_with(dir: &Path, keys: KeyFiles) -> Result<Self> {
        let data_dir = |source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        };
        private_dir(dir).map_err(data_dir)?;
        let db = dir.join("keyward.db");
        private_file(&db).map_err(data_dir)?;
        let conn = Connection::open(&db)?;
        let mut store = Self::init(conn, Keys::files(keys))?;
        store.dir = Some(dir.to_path_buf());
        Ok(store)
    }

    /// An in-memory store (tests); its audit keys live in memory only.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?, Keys::ephemeral())
    }

    fn init(mut conn: Connection, audit_keys: Keys) -> Result<Self> {
        // First: every statement below may meet another process setting up the same store.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Takes effect only when the file is created (before WAL is set up).
        retry_busy(|| conn.pragma_update(None, "page_size", 16_384))?;
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", CACHE_KIB)?;
        // The query tables' reads are cached once per limit they are asked with
        // (`query.rs`), besides the store's own.
        conn.set_prepared_statement_cache_capacity(64);
        // The version is read and the migrations applied inside one write transaction
        // (taken before reading), so two processes setting up one store cannot both apply
        // a migration: the second waits, then finds nothing left to do.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                found: version,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        tx.commit()?;
        let seen_version = conn.pragma_query_value(None, "data_version", |r| r.get(0))?;
        Ok(SqliteStore {
            conn,
            keys: KeyCache::default(),
            dir: None,
            seen_version,
            audit_keys,
            anchor: None,
        })
    }

    /// The MAC key (read or created on first use).
    fn mac_key(&self) -> Result<&audit::MacKey> {
        self.audit_keys.mac(|| {
            Ok(self.conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM audit_log WHERE mac IS NOT NULL)",
                [],
                |r| r.get(0),
            )?)
        })
    }

    /// Runs `write` (which appends its audit entry through the `append` it is given) in
    /// one `BEGIN IMMEDIATE` transaction: the write lock is taken before the chain's head
    /// is read, so a concurrent writer (another process) waits instead of forking the
    /// chain. Then appends a checkpoint to the anchor file, if there is one.
    fn audited<T>(
        &mut self,
        write: impl FnOnce(&Transaction<'_>, &dyn Fn(&AuditEntry) -> Result<i64>) -> Result<T>,
    ) -> Result<T> {
        let key = self.mac_key()?.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = write(&tx, &|e| append_audit(&tx, &key, e))?;
        tx.commit()?;
        if let Some(path) = &self.anchor {
            audit::append_checkpoint(path, &self.audit_checkpoint(now_ms())?)?;
        }
        Ok(out)
    }
}

const UPSERT_JOB: &str = "INSERT INTO jobs (id, kind, parent, created_at, updated_at, status, doc)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at,
        status = excluded.status, doc = excluded.doc";

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl SqliteStore {
    /// The data directory's `keyward.lock` (0600), opened, and its path; `None` in memory,
    /// where no other process can write.
    fn lock_file(&self) -> Result<Option<(std::fs::File, std::path::PathBuf)>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let path = dir.join("keyward.lock");
        Ok(Some((open_lock(&path)?, path)))
    }
}

/// A lock file (0600), created if absent, never truncated.
fn open_lock(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| data_dir_error(path, e))
}

/// Locks the opened lock file at `path` without waiting: `None` while another holds it.
fn try_lock(file: std::fs::File, path: &Path) -> Result<Option<WriterLock>> {
    match file.try_lock() {
        Ok(()) => Ok(Some(WriterLock::file(file))),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(data_dir_error(path, e)),
    }
}

/// An `observed_edges` row (kind, src, dst, count, first_seen, last_seen, event_ids), its
/// event ids still JSON (see [`observed_edge`]).
pub(crate) fn observed_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ObservedEdge, String)> {
    Ok((
        ObservedEdge {
            kind: r.get(0)?,
            from: r.get(1)?,
            to: r.get(2)?,
            count: r.get(3)?,
            first_seen: r.get(4)?,
            last_seen: r.get(5)?,
            event_ids: Vec::new(),
        },
        r.get(6)?,
    ))
}

/// The edge of an [`observed_row`], its event ids read.
pub(crate) fn observed_edge(row: rusqlite::Result<(ObservedEdge, String)>) -> Result<ObservedEdge> {
    let (mut e, ids) = row?;
    e.event_ids = serde_json::from_str(&ids)
        .map_err(|err| StoreError::Corrupt(format!("edge `{}`: {err}", e.from)))?;
    Ok(e)
}

fn data_dir_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::DataDir {
        path: path.display().to_string(),
        source,
    }
}

/// Creates `dir` (0700) or takes away what group and others could do with it.
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    restrict(dir, 0o700)
}

/// Creates `path` empty (0600) if it is not there, or takes away group and others' access.
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => restrict(path, 0o600),
        Err(e) => Err(e),
    }
}

/// Clears the group and other bits of `path`'s mode, if any are set.
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn file_row(r: &rusqlite::Row) -> rusqlite::Result<FileRecord> {
    Ok(FileRecord {
        id: r.get(0)?,
        path: r.get(1)?,
        hash: r.get(2)?,
        format: r.get(3)?,
        records: r.get::<_, i64>(4)? as u64,
        accepted: r.get::<_, i64>(5)? as u64,
        rejected: r.get::<_, i64>(6)? as u64,
        ingested_at: r.get(7)?,
    })
}

const FINDING_COLUMNS: &str =
    "id, rule_id, kind, severity, identity, status, first_seen, last_seen, doc";

fn finding_row(r: &rusqlite::Row) -> rusqlite::Result<FindingRow> {
    Ok(FindingRow {
        id: r.get(0)?,
        rule_id: r.get(1)?,
        kind: r.get(2)?,
        severity: r.get(3)?,
        identity: r.get(4)?,
        status: r.get(5)?,
        first_seen: r.get(6)?,
        last_seen: r.get(7)?,
        doc: r.get(8)?,
    })
}

const FILE_COLUMNS: &str = "id, path, hash, format, records, accepted, rejected, ingested_at";

impl SqliteStore {
    /// An actor's events at or after `since`, newest first, at most `limit`: blocks are
    /// read newest first and the scan stops at the first block older than `since`.
    fn actor_events(
        &self,
        actor: &str,
        limit: usize,
        range: (Millis, Millis),
    ) -> Result<Vec<Event<'static>>> {
        let mut st = self
            .conn
            .prepare("SELECT max_time, actors, data FROM event_blocks ORDER BY max_time DESC")?;
        let mut rows = st.query([])?;
        let mut scan = crate::shared::ActorScan::new(actor, range, limit);
        while let Some(row) = rows.next()? {
            if scan.done(row.get(0)?) {
                break;
            }
            let actors = row
                .get_ref(1)?
                .as_blob()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if !scan.may_hold(actors) {
                continue;
            }
            let data = row
                .get_ref(2)?
                .as_blob()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            scan.add(data)?;
        }
        Ok(scan.finish())
    }
}

impl Store for SqliteStore {
    fn lock_writer(&self) -> Result<WriterLock> {
        let Some((file, path)) = self.lock_file()? else {
            return Ok(WriterLock::nothing());
        };
        file.lock().map_err(|e| data_dir_error(&path, e))?;
        Ok(WriterLock::file(file))
    }

    fn try_lock_writer(&self) -> Result<Option<WriterLock>> {
        let Some((file, path)) = self.lock_file()? else {
            return Ok(Some(WriterLock::nothing()));
        };
        try_lock(file, &path)
    }

    /// A file lock in the data directory's `claims/` (always granted in memory: one
    /// process).
    fn try_claim(&self, name: &str) -> Result<Option<WriterLock>> {
        let Some(dir) = &self.dir else {
            return Ok(Some(WriterLock::nothing()));
        };
        let claims = dir.join("claims");
        private_dir(&claims).map_err(|e| data_dir_error(&claims, e))?;
        let file_name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = claims.join(format!("{file_name}.lock"));
        try_lock(open_lock(&path)?, &path)
    }

    fn checkpoint(&self, name: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT position FROM checkpoints WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn changed_elsewhere(&mut self) -> Result<bool> {
        let now: i64 = self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?;
        let changed = now != self.seen_version;
        self.seen_version = now;
        Ok(changed)
    }

    fn set_durable(&mut self, durable: bool) -> Result<()> {
        let mode = if durable { "FULL" } else { "NORMAL" };
        self.conn.pragma_update(None, "synchronous", mode)?;
        Ok(())
    }

    fn file_by_hash(&self, hash: &str) -> Result<Option<FileRecord>> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE hash = ?1");
        Ok(self.conn.query_row(&sql, [hash], file_row).optional()?)
    }

    fn load_identities(&self) -> Result<Vec<Identity>> {
        let mut st = self.conn.prepare("SELECT doc FROM identities")?;
        let docs = st.query_map([], |r| r.get::<_, String>(0))?;
        docs.map(|d| identity_from(&d?)).collect()
    }

    fn identity(&self, id: &str) -> Result<Option<Identity>> {
        let doc: Option<String> = self
            .conn
            .query_row("SELECT doc FROM identities WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        doc.map(|d| identity_from(&d)).transpose()
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
        let n: Option<i64> = self.conn.query_row(
            "SELECT (SELECT coalesce(sum(n), 0) FROM event_keys)
                      + (SELECT coalesce(sum(n), 0) FROM event_key_chunks)",
            [],
            |r| r.get(0),
        )?;
        Ok(n.unwrap_or(0) as u64)
    }

    fn latest_event_time(&self) -> Result<Option<Millis>> {
        Ok(self
            .conn
            .query_row("SELECT max(max_time) FROM event_blocks", [], |r| r.get(0))?)
    }

    fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        let mut st = self
            .conn
            .prepare("SELECT path, line, record, reason FROM dead_letters ORDER BY id LIMIT ?1")?;
        let rows = st.query_map([limit as i64], |r| {
            Ok(DeadLetter {
                path: r.get(0)?,
                diagnostic: Diagnostic {
                    line: r.get::<_, i64>(1)? as u64,
                    record: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                    reason: r.get::<_, String>(3)?.into(),
                },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn objects(&self, kind: &str) -> Result<Vec<SnapshotObject>> {
        let mut st = self
            .conn
            .prepare("SELECT id, scope, doc FROM objects WHERE kind = ?1 ORDER BY id")?;
        let rows = st.query_map([kind], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (id, scope, doc) = row?;
            let doc = serde_json::from_str(&doc)
                .map_err(|e| StoreError::Corrupt(format!("object `{id}`: {e}")))?;
            Ok(SnapshotObject {
                kind: kind.to_owned(),
                id,
                scope,
                doc,
            })
        })
        .collect()
    }

    fn object_kinds(&self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT kind FROM objects ORDER BY kind")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn findings(&self, since: Option<Millis>) -> Result<Vec<FindingRow>> {
        let sql = format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE last_seen >= ?1 ORDER BY last_seen DESC, id"
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map([since.unwrap_or(i64::MIN)], finding_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn open_finding_counts(&self) -> Result<[u64; 5]> {
        let mut st = self.conn.prepare_cached(
            "SELECT severity, count(*) FROM findings
             WHERE status IN ('open', 'acknowledged') GROUP BY severity",
        )?;
        let mut out = [0u64; 5];
        for row in st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
            let (sev, n) = row?;
            if let Some(slot) = usize::try_from(sev).ok().and_then(|i| out.get_mut(i)) {
                *slot = n.max(0) as u64;
            }
        }
        Ok(out)
    }

    fn worst_open_by_identity(&self) -> Result<Vec<(String, u8)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT identity, max(severity) FROM findings
             WHERE status IN ('open', 'acknowledged') AND identity IS NOT NULL
             GROUP BY identity",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?.clamp(0, 4) as u8,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn finding(&self, id: &str) -> Result<Option<FindingRow>> {
        // Cached: the API looks findings up one by one.
        let sql = format!("SELECT {FINDING_COLUMNS} FROM findings WHERE id = ?1");
        let mut st = self.conn.prepare_cached(&sql)?;
        Ok(st.query_row([id], finding_row).optional()?)
    }

    fn finding_changes(&self, id: &str) -> Result<Vec<FindingChange>> {
        let mut st = self.conn.prepare(
            "SELECT finding_id, at, actor, status, note FROM finding_changes
             WHERE finding_id = ?1 ORDER BY seq",
        )?;
        let rows = st.query_map([id], |r| {
            Ok(FindingChange {
                finding_id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                status: r.get(3)?,
                note: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn baselines(&self) -> Result<Vec<(String, String)>> {
        let mut st = self.conn.prepare("SELECT principal, doc FROM baselines")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn tokens(&self) -> Result<Vec<TokenRow>> {
        let mut st = self.conn.prepare(
            "SELECT id, hash, role, name, created_at, revoked_at FROM api_tokens
             ORDER BY created_at, id",
        )?;
        let rows = st.query_map([], token_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, hash, role, name, created_at, revoked_at FROM api_tokens
                 WHERE hash = ?1",
                [hash],
                token_row,
            )
            .optional()?)
    }

    fn put_token(&mut self, t: &TokenRow, audit: &AuditEntry) -> Result<()> {
        self.audited(|tx, append| {
            tx.execute(
                "INSERT INTO api_tokens (id, hash, role, name, created_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![t.id, t.hash, t.role, t.name, t.created_at, t.revoked_at],
            )?;
            append(audit)?;
            Ok(())
        })
    }

    fn revoke_token(&mut self, id: &str, audit: &AuditEntry) -> Result<bool> {
        self.audited(|tx, append| {
            let n = tx.execute(
                "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, audit.at],
            )?;
            if n > 0 {
                append(audit)?;
            }
            Ok(n > 0)
        })
    }

    fn audit(&mut self, e: &AuditEntry) -> Result<i64> {
        self.audited(|_, append| append(e))
    }

    fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn put_setting(&mut self, key: &str, value: &str, audit: &AuditEntry) -> Result<()> {
        self.audited(|tx, append| {
            tx.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![key, value, audit.at],
            )?;
            append(audit)?;
            Ok(())
        })
    }

    fn put_plan(&mut self, p: &PlanRow, audit: &AuditEntry) -> Result<()> {
        self.audited(|tx, append| {
            tx.execute(
                "INSERT INTO response_plans (id, created_at, updated_at, identity, finding, status, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at,
                    status = excluded.status, doc = excluded.doc",
                params![p.id, p.created_at, p.updated_at, p.identity, p.finding, p.status, p.doc],
            )?;
            append(audit)?;
            Ok(())
        })
    }

    fn plan(&self, id: &str) -> Result<Option<PlanRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {PLAN_COLUMNS} FROM response_plans WHERE id = ?1"),
                [id],
                plan_row,
            )
            .optional()?)
    }

    fn plans(&self, limit: usize) -> Result<Vec<PlanRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {PLAN_COLUMNS} FROM response_plans ORDER BY created_at DESC, id LIMIT ?1"
        ))?;
        let rows = st.query_map([limit as i64], plan_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn put_evidence(&mut self, e: &EvidenceRow, audit: &AuditEntry) -> Result<()> {
        self.audited(|tx, append| {
            tx.execute(
                "INSERT INTO response_evidence (plan_id, taken_at, hash, doc) VALUES (?1, ?2, ?3, ?4)",
                params![e.plan_id, e.taken_at, e.hash, e.doc],
            )?;
            append(audit)?;
            Ok(())
        })
    }

    fn evidence(&self, plan_id: &str) -> Result<Option<EvidenceRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT plan_id, taken_at, hash, doc FROM response_evidence WHERE plan_id = ?1",
                [plan_id],
                |r| {
                    Ok(EvidenceRow {
                        plan_id: r.get(0)?,
                        taken_at: r.get(1)?,
                        hash: r.get(2)?,
                        doc: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn put_job(&mut self, j: &JobRow, audit: Option<&AuditEntry>) -> Result<()> {
        let args = params![
            j.id,
            j.kind,
            j.parent,
            j.created_at,
            j.updated_at,
            j.status,
            j.doc
        ];
        match audit {
            Some(audit) => self.audited(|tx, append| {
                tx.execute(UPSERT_JOB, args)?;
                append(audit)?;
                Ok(())
            }),
            None => {
                retry_busy(|| self.conn.execute(UPSERT_JOB, args))?;
                Ok(())
            }
        }
    }

    fn put_jobs(&mut self, jobs: &[(JobRow, AuditEntry)]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        self.audited(|tx, append| {
            let mut st = tx.prepare_cached(UPSERT_JOB)?;
            for (j, audit) in jobs {
                st.execute(params![
                    j.id,
                    j.kind,
                    j.parent,
                    j.created_at,
                    j.updated_at,
                    j.status,
                    j.doc
                ])?;
                append(audit)?;
            }
            Ok(())
        })
    }

    fn job(&self, id: &str) -> Result<Option<JobRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_row,
            )
            .optional()?)
    }

    fn jobs(&self, kind: &str, parent: Option<&str>, limit: usize) -> Result<Vec<JobRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE kind = ?1 AND (?2 IS NULL OR parent = ?2)
             ORDER BY created_at DESC, id LIMIT ?3"
        ))?;
        let rows = st.query_map(params![kind, parent, limit as i64], job_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn jobs_in_status(&self, kind: &str, status: &str, limit: usize) -> Result<Vec<JobRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE kind = ?1 AND status = ?2
             ORDER BY created_at, id LIMIT ?3"
        ))?;
        let rows = st.query_map(params![kind, status, limit as i64], job_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn audit_log(&self, limit: usize) -> Result<Vec<AuditRecord>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT ?1"
        ))?;
        let rows = st.query_map([limit as i64], audit_row)?;
        Ok(rows
            .map(|r| r.map(audit::Row::into_record))
            .collect::<rusqlite::Result<_>>()?)
    }

    fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = st.query_map(params![after, limit as i64], audit_row)?;
        Ok(rows
            .map(|r| r.map(audit::Row::into_record))
            .collect::<rusqlite::Result<_>>()?)
    }

    fn audit_verify(&self, anchors: &[Checkpoint]) -> Result<VerifyReport> {
        let key = self.mac_key()?;
        let mut walk = audit::Walk::new(key);
        let mut broken = None;
        {
            let mut st = self.conn.prepare(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq"
            ))?;
            let mut rows = st.query_map([], audit_row)?.peekable();
            while let Some(row) = rows.next() {
                let row = row?;
                let next = match rows.peek() {
                    Some(Ok(n)) => Some(n),
                    _ => None,
                };
                if let Some(b) = walk.check(row, next) {
                    broken = Some(b);
                    break;
                }
            }
        }
        let head = walk.head();
        if broken.is_none() {
            let head_seq = head.as_ref().map_or(0, |h| h.seq);
            let ours = self.audit_keys.public_key_if_any()?;
            for cp in anchors {
                let b = audit::check_anchor(cp, head_seq, ours.as_deref(), |seq| {
                    Ok(self
                        .conn
                        .query_row(
                            "SELECT COALESCE(mac, legacy_hash) FROM audit_log WHERE seq = ?1",
                            [seq],
                            |r| r.get(0),
                        )
                        .optional()?)
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
        let head: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT seq, COALESCE(mac, legacy_hash) FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (seq, mac) = head.unwrap_or((0, String::new()));
        Ok(Checkpoint::sign(self.audit_keys.signing()?, seq, &mac, at))
    }

    fn set_audit_anchor(&mut self, file: Option<std::path::PathBuf>) {
        self.anchor = file;
    }

    fn detector_state(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT doc FROM detector_state WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn observed_edges(&self) -> Result<Vec<ObservedEdge>> {
        let mut st = self.conn.prepare(
            "SELECT kind, src, dst, count, first_seen, last_seen, event_ids FROM observed_edges
             ORDER BY kind, src, dst",
        )?;
        let rows = st.query_map([], observed_row)?;
        rows.map(observed_edge).collect()
    }

    fn begin(&mut self) -> Result<Box<dyn Batch + '_>> {
        // Whether another connection committed decides whether the key cache still holds.
        let version: i64 = self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?;
        let tx = self.conn.transaction()?;
        Ok(Box::new(SqliteBatch::new(tx, &mut self.keys, version)))
    }
}

/// A row of `SELECT id, hash, role, name, created_at, revoked_at FROM api_tokens`.
fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        hash: r.get(1)?,
        role: r.get(2)?,
        name: r.get(3)?,
        created_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

const AUDIT_COLUMNS: &str =
    "seq, at, actor, action, target, detail, before, after, prev, mac, legacy_hash";

/// A row of `SELECT {AUDIT_COLUMNS} FROM audit_log`.
fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<audit::Row> {
    Ok(audit::Row {
        seq: r.get(0)?,
        entry: AuditEntry {
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            detail: r.get(5)?,
            before: r.get(6)?,
            after: r.get(7)?,
        },
        prev: r.get(8)?,
        mac: r.get(9)?,
        legacy_hash: r.get(10)?,
    })
}

/// Appends to the audit log inside `tx`, which must hold the write lock (`BEGIN
/// IMMEDIATE`): the head is read and the entry written under it. The entry's MAC covers
/// the head's MAC, its seq (head + 1) and its fields (`audit::mac`).
fn append_audit(tx: &Connection, key: &audit::MacKey, e: &AuditEntry) -> Result<i64> {
    let head: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT seq, COALESCE(mac, legacy_hash) FROM audit_log ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = head.map_or((1, String::new()), |(s, m)| (s + 1, m));
    let mac = audit::mac(key, &prev, seq, e);
    tx.prepare_cached(
        "INSERT INTO audit_log (seq, at, actor, action, target, detail, before, after, prev, mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        seq, e.at, e.actor, e.action, e.target, e.detail, e.before, e.after, prev, mac
    ])?;
    Ok(seq)
}

const JOB_COLUMNS: &str = "id, kind, parent, created_at, updated_at, status, doc";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        parent: r.get(2)?,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
        status: r.get(5)?,
        doc: r.get(6)?,
    })
}

const PLAN_COLUMNS: &str = "id, created_at, updated_at, identity, finding, status, doc";

fn plan_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PlanRow> {
    Ok(PlanRow {
        id: r.get(0)?,
        created_at: r.get(1)?,
        updated_at: r.get(2)?,
        identity: r.get(3)?,
        finding: r.get(4)?,
        status: r.get(5)?,
        doc: r.get(6)?,
    })
}

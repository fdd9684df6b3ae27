//! The embedded store: one SQLite file, `keyward.db`, in the data directory.

use std::path::Path;

use keyward_model::{
    Diagnostic, Event, EventKey, Identity, ObservedEdge, SnapshotObject, time::Millis,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use rustc_hash::FxHashMap;

use crate::audit::{self, AuditRecord, Checkpoint, KeyFiles, Keys, VerifyReport};
use crate::{
    AuditEntry, Batch, DeadLetter, FileRecord, FindingChange, FindingRow, Result, Store,
    StoreError, TokenRow, WriterLock,
};

/// Schema migrations, in order; the index + 1 is the version recorded in `user_version`.
const MIGRATIONS: [&str; 7] = [
    include_str!("../schema/001_init.sql"),
    include_str!("../schema/002_observed_edges.sql"),
    include_str!("../schema/003_detection.sql"),
    include_str!("../schema/004_api.sql"),
    include_str!("../schema/005_event_key_chunks.sql"),
    include_str!("../schema/006_settings.sql"),
    include_str!("../schema/007_audit_chain.sql"),
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
        conn.pragma_update(None, "page_size", 16_384)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", -65_536)?;
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

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Creates `dir` (0700) or takes away what group and others could do with it.
fn private_dir(dir: &Path) -> std::io::Result<()> {
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

fn identity_from(doc: &str) -> Result<Identity> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("identity document: {e}")))
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

impl Store for SqliteStore {
    fn lock_writer(&self, wait: bool) -> Result<Option<WriterLock>> {
        let Some(dir) = &self.dir else {
            return Ok(Some(WriterLock { _file: None }));
        };
        let path = dir.join("keyward.lock");
        let err = |source| StoreError::DataDir {
            path: path.display().to_string(),
            source,
        };
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(err)?;
        if wait {
            file.lock().map_err(err)?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
            }
        }
        Ok(Some(WriterLock { _file: Some(file) }))
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
        let key = actor_key(actor).to_be_bytes();
        let mut st = self
            .conn
            .prepare("SELECT max_time, actors, data FROM event_blocks ORDER BY max_time DESC")?;
        let mut rows = st.query([])?;
        let mut found: Vec<Event<'static>> = Vec::new();
        while let Some(row) = rows.next()? {
            let max_time: i64 = row.get(0)?;
            if found.len() >= limit
                && found
                    .iter()
                    .map(|e| e.time)
                    .min()
                    .is_some_and(|t| max_time < t)
            {
                break;
            }
            let actors = row
                .get_ref(1)?
                .as_blob()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let hit = actors
                .chunks_exact(8)
                .collect::<Vec<_>>()
                .binary_search(&&key[..])
                .is_ok();
            if !hit {
                continue;
            }
            let data = row
                .get_ref(2)?
                .as_blob()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let block = crate::block::decode(data)
                .map_err(|e| StoreError::Corrupt(format!("event block: {e}")))?;
            found.extend(
                block
                    .into_iter()
                    .filter(|e| e.actor.as_deref() == Some(actor)),
            );
            // Keep the most complete stage of each request.
            found.sort_by(|a, b| {
                (a.source, &a.native_id, b.stage).cmp(&(b.source, &b.native_id, a.stage))
            });
            found.dedup_by(|b, a| a.source == b.source && a.native_id == b.native_id);
            found.sort_by(|a, b| {
                b.time
                    .cmp(&a.time)
                    .then_with(|| a.native_id.cmp(&b.native_id))
            });
            found.truncate(limit.max(1) * 4);
        }
        found.truncate(limit);
        Ok(found)
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
                    reason: r.get(3)?,
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
        let rows = st.query_map([], |r| {
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
                r.get::<_, String>(6)?,
            ))
        })?;
        rows.map(|row| {
            let (mut e, ids) = row?;
            e.event_ids = serde_json::from_str(&ids)
                .map_err(|err| StoreError::Corrupt(format!("edge `{}`: {err}", e.from)))?;
            Ok(e)
        })
        .collect()
    }

    fn begin(&mut self) -> Result<Box<dyn Batch + '_>> {
        // A batch dropped without committing left keys in the cache that the store does
        // not hold, and another process may have committed to the same file (its commits
        // change `data_version` for this connection): then start again from the store.
        let version: i64 = self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?;
        if self.keys.uncommitted || self.keys.data_version != Some(version) {
            self.keys = KeyCache::default();
            self.keys.data_version = Some(version);
        }
        self.keys.uncommitted = true;
        Ok(Box::new(SqliteBatch {
            tx: self.conn.transaction()?,
            cache: &mut self.keys,
            pending: FxHashMap::default(),
            block: crate::block::BlockBuilder::default(),
            block_file: 0,
            block_actors: rustc_hash::FxHashSet::default(),
            doc: Vec::new(),
        }))
    }
}

/// Events per stored block.
const BLOCK_EVENTS: usize = 32_768;
/// Dedup keys held in memory (about 40 bytes each) before pending chunks are written and
/// the cache dropped.
const MAX_CACHED_KEYS: usize = 2_000_000;
const KEY_LEN: usize = 17;

/// FNV-1a, 64 bits: a stable, cheap key for indexing events by actor (collisions only cost
/// a few extra rows read; readers compare the actor id itself).
fn actor_key(actor: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in actor.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// The dedup keys of recent minutes, with the stage rank stored for each: what is
/// committed, plus what the open batch added (dropped if the batch does not commit).
#[derive(Default)]
struct KeyCache {
    minutes: FxHashMap<i64, FxHashMap<[u8; 16], u8>>,
    keys: usize,
    /// A batch is open (or was dropped without committing).
    uncommitted: bool,
    /// `PRAGMA data_version` when the cache was last known to match the store.
    data_version: Option<i64>,
}

/// Keys a batch added to one minute (or whose stage it raised), not yet written.
#[derive(Default)]
struct Pending {
    new: u64,
    entries: Vec<u8>,
}

struct SqliteBatch<'c> {
    tx: Transaction<'c>,
    cache: &'c mut KeyCache,
    pending: FxHashMap<i64, Pending>,
    block: crate::block::BlockBuilder,
    block_file: i64,
    /// Hashes of the actors in the block being filled.
    block_actors: rustc_hash::FxHashSet<i64>,
    /// The identity document being written, kept across identities.
    doc: Vec<u8>,
}

/// Appends an identity's JSON document to `out`. Written with sonic-rs's serializer
/// (fewer instructions than serde_json's); the bytes are serde_json's, as the test
/// `identity_documents_are_serde_json_bytes` holds, and they are read back with
/// serde_json.
fn append_identity_doc(i: &Identity, out: &mut Vec<u8>) -> Result<()> {
    sonic_rs::to_writer(&mut *out, i).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl SqliteBatch<'_> {
    /// The keys of `minute`, read from the store on first use.
    fn minute(&mut self, minute: i64) -> Result<&mut FxHashMap<[u8; 16], u8>> {
        if !self.cache.minutes.contains_key(&minute) {
            if self.cache.keys > MAX_CACHED_KEYS {
                self.write_pending()?;
                self.cache.minutes.clear();
                self.cache.keys = 0;
            }
            let mut st = self.tx.prepare_cached(
                "SELECT keys FROM event_keys WHERE minute = ?1
                 UNION ALL SELECT keys FROM event_key_chunks WHERE minute = ?1",
            )?;
            let blobs = st.query_map([minute], |r| r.get::<_, Vec<u8>>(0))?;
            let mut keys: FxHashMap<[u8; 16], u8> = FxHashMap::default();
            for blob in blobs {
                for chunk in blob?.chunks_exact(KEY_LEN) {
                    let (k, stage) = chunk.split_at(16);
                    let mut key = [0u8; 16];
                    key.copy_from_slice(k);
                    let stage = stage.first().copied().unwrap_or(0);
                    let slot = keys.entry(key).or_insert(stage);
                    *slot = (*slot).max(stage);
                }
            }
            self.cache.keys += keys.len();
            self.cache.minutes.insert(minute, keys);
        }
        self.cache
            .minutes
            .get_mut(&minute)
            .ok_or_else(|| StoreError::Corrupt("minute cache".into()))
    }

    /// Appends what this batch added, one chunk per minute.
    fn write_pending(&mut self) -> Result<()> {
        let mut st = self
            .tx
            .prepare_cached("INSERT INTO event_key_chunks (minute, n, keys) VALUES (?1, ?2, ?3)")?;
        for (minute, p) in self.pending.drain() {
            st.execute(params![minute, p.new as i64, p.entries])?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let (min, max) = self.block.time_range();
        let count = self.block.len() as i64;
        let data = self.block.finish();
        let mut actors: Vec<[u8; 8]> = self.block_actors.drain().map(|a| a.to_be_bytes()).collect();
        actors.sort_unstable();
        let mut st = self.tx.prepare_cached(
            "INSERT INTO event_blocks (file_id, min_time, max_time, count, actors, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        st.execute(params![
            self.block_file,
            min,
            max,
            count,
            actors.concat(),
            data
        ])?;
        Ok(())
    }
}

impl Batch for SqliteBatch<'_> {
    fn file_by_hash(&self, hash: &str) -> Result<Option<FileRecord>> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE hash = ?1");
        Ok(self.tx.query_row(&sql, [hash], file_row).optional()?)
    }

    fn add_file(&mut self, path: &str, hash: &str, format: &str, at: Millis) -> Result<i64> {
        // A file with the same bytes may have been forced in again: replace its record.
        self.tx.execute(
            "INSERT INTO files (path, hash, format, records, accepted, rejected, ingested_at)
             VALUES (?1, ?2, ?3, 0, 0, 0, ?4)
             ON CONFLICT (hash) DO UPDATE SET path = excluded.path, ingested_at = excluded.ingested_at",
            params![path, hash, format, at],
        )?;
        Ok(self
            .tx
            .query_row("SELECT id FROM files WHERE hash = ?1", [hash], |r| r.get(0))?)
    }

    fn finish_file(
        &mut self,
        file_id: i64,
        records: u64,
        accepted: u64,
        rejected: u64,
    ) -> Result<()> {
        self.tx.execute(
            "UPDATE files SET records = ?2, accepted = ?3, rejected = ?4 WHERE id = ?1",
            params![file_id, records as i64, accepted as i64, rejected as i64],
        )?;
        Ok(())
    }

    fn put_event(&mut self, key: EventKey, e: &Event<'_>, file_id: i64) -> Result<bool> {
        let minute = e.time.div_euclid(60_000);
        let mk = self.minute(minute)?;
        let new = match mk.get_mut(&key.0) {
            None => {
                mk.insert(key.0, e.stage);
                true
            }
            // A more complete stage of a request already stored supersedes it.
            Some(stage) if e.stage > *stage => {
                *stage = e.stage;
                false
            }
            Some(_) => return Ok(false),
        };
        let p = self.pending.entry(minute).or_default();
        p.entries.extend_from_slice(&key.0);
        p.entries.push(e.stage);
        if new {
            p.new += 1;
            self.cache.keys += 1;
        }
        if self.block_file != file_id {
            self.flush_block()?;
            self.block_file = file_id;
        }
        if let Some(actor) = &e.actor {
            self.block_actors.insert(actor_key(actor));
        }
        self.block.push(e);
        if self.block.len() >= BLOCK_EVENTS {
            self.flush_block()?;
        }
        Ok(new)
    }

    fn put_identity(&mut self, i: &Identity) -> Result<()> {
        self.put_identities(&[i])
    }

    /// In chunks: the chunk's documents are written into one buffer, then its rows are
    /// inserted. Interleaved, the serializer's code and SQLite's evicted each other from
    /// the instruction cache at every identity (about 600 misses per identity).
    fn put_identities(&mut self, identities: &[&Identity]) -> Result<()> {
        const CHUNK: usize = 64;
        let mut ends = Vec::with_capacity(CHUNK);
        for chunk in identities.chunks(CHUNK) {
            self.doc.clear();
            ends.clear();
            for i in chunk {
                append_identity_doc(i, &mut self.doc)?;
                ends.push(self.doc.len());
            }
            let docs =
                std::str::from_utf8(&self.doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mut st = self.tx.prepare_cached(
                "INSERT INTO identities (id, platform, kind, name, account, cluster, namespace, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET platform = excluded.platform, kind = excluded.kind,
                    name = excluded.name, account = excluded.account, cluster = excluded.cluster,
                    namespace = excluded.namespace, doc = excluded.doc",
            )?;
            let mut start = 0;
            for (i, &end) in chunk.iter().zip(&ends) {
                // Documents end at ASCII bytes (`}`): every range is a `str`.
                let doc = docs
                    .get(start..end)
                    .ok_or_else(|| StoreError::Corrupt("identity document".into()))?;
                start = end;
                st.execute(params![
                    i.id,
                    i.platform.as_str(),
                    i.kind.as_str(),
                    i.name,
                    i.account,
                    i.cluster,
                    i.namespace,
                    doc
                ])?;
            }
        }
        Ok(())
    }

    fn put_object(&mut self, o: &SnapshotObject) -> Result<()> {
        let doc = serde_json::to_string(&o.doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut st = self.tx.prepare_cached(
            "INSERT INTO objects (kind, id, scope, doc) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (kind, id) DO UPDATE SET scope = excluded.scope, doc = excluded.doc",
        )?;
        st.execute(params![o.kind, o.id, o.scope, doc])?;
        Ok(())
    }

    fn put_observed_edge(&mut self, e: &ObservedEdge) -> Result<()> {
        let ids = serde_json::to_string(&e.event_ids)
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let mut st = self.tx.prepare_cached(
            "INSERT INTO observed_edges (kind, src, dst, count, first_seen, last_seen, event_ids)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (kind, src, dst) DO UPDATE SET count = excluded.count,
               first_seen = excluded.first_seen, last_seen = excluded.last_seen,
               event_ids = excluded.event_ids",
        )?;
        st.execute(params![
            e.kind,
            e.from,
            e.to,
            e.count,
            e.first_seen,
            e.last_seen,
            ids
        ])?;
        Ok(())
    }

    fn finding(&self, id: &str) -> Result<Option<FindingRow>> {
        // Cached: a batch looks up every finding it writes.
        let sql = format!("SELECT {FINDING_COLUMNS} FROM findings WHERE id = ?1");
        let mut st = self.tx.prepare_cached(&sql)?;
        Ok(st.query_row([id], finding_row).optional()?)
    }

    fn put_finding(&mut self, f: &FindingRow) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT INTO findings (id, rule_id, kind, severity, identity, status, first_seen,
                                   last_seen, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET rule_id = excluded.rule_id, kind = excluded.kind,
               severity = excluded.severity, identity = excluded.identity,
               status = excluded.status, first_seen = excluded.first_seen,
               last_seen = excluded.last_seen, doc = excluded.doc",
        )?;
        st.execute(params![
            f.id,
            f.rule_id,
            f.kind,
            f.severity,
            f.identity,
            f.status,
            f.first_seen,
            f.last_seen,
            f.doc
        ])?;
        Ok(())
    }

    fn add_finding_change(&mut self, c: &FindingChange) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT INTO finding_changes (finding_id, at, actor, status, note)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        st.execute(params![c.finding_id, c.at, c.actor, c.status, c.note])?;
        Ok(())
    }

    fn put_baseline(&mut self, principal: &str, doc: &str) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT INTO baselines (principal, doc) VALUES (?1, ?2)
             ON CONFLICT (principal) DO UPDATE SET doc = excluded.doc",
        )?;
        st.execute(params![principal, doc])?;
        Ok(())
    }

    fn put_detector_state(&mut self, name: &str, doc: &str) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT INTO detector_state (name, doc) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
        )?;
        st.execute(params![name, doc])?;
        Ok(())
    }

    fn put_dead_letter(&mut self, file_id: i64, path: &str, d: &Diagnostic) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT INTO dead_letters (file_id, path, line, record, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        st.execute(params![
            file_id,
            path,
            d.line as i64,
            d.record.map(|r| r as i64),
            d.reason
        ])?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.flush_block()?;
        self.write_pending()?;
        let SqliteBatch { tx, cache, .. } = *self;
        tx.commit()?;
        // What the batch added is now committed: the cache holds.
        cache.uncommitted = false;
        Ok(())
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
        .query_row(
            "SELECT seq, COALESCE(mac, legacy_hash) FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev) = head.map_or((1, String::new()), |(s, m)| (s + 1, m));
    let mac = audit::mac(key, &prev, seq, e);
    tx.execute(
        "INSERT INTO audit_log (seq, at, actor, action, target, detail, before, after, prev, mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            seq, e.at, e.actor, e.action, e.target, e.detail, e.before, e.after, prev, mac
        ],
    )?;
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_model::{IdentityKind, Platform, SourceKind};

    fn event(stage: u8) -> Event<'static> {
        Event {
            native_id: "a".into(),
            source: SourceKind::K8sAudit,
            time: 5,
            action: "get pods".into(),
            actor: Some("x".into()),
            source_ip: None,
            user_agent: None,
            region: None,
            account: None,
            error_code: None,
            target: None,
            credential: None,
            invoked_by: None,
            shared_id: None,
            stage,
        }
    }

    #[test]
    fn events_deduplicate_and_keep_latest_stage() {
        let mut s = SqliteStore::in_memory().unwrap();
        let mut b = s.begin().unwrap();
        let f = b.add_file("p", "h", "k8s-audit", 0).unwrap();
        assert!(b.put_event(EventKey([1; 16]), &event(0), f).unwrap());
        let mut done = event(2);
        done.error_code = Some("Forbidden".into());
        assert!(!b.put_event(EventKey([1; 16]), &done, f).unwrap());
        assert!(!b.put_event(EventKey([1; 16]), &event(1), f).unwrap());
        b.commit().unwrap();
        let evs = s.recent_events("x", 10).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(
            (evs[0].stage, evs[0].error_code.as_deref()),
            (2, Some("Forbidden"))
        );
        assert_eq!(s.event_count().unwrap(), 1);
        // Deduplication survives the batch: the keys were persisted.
        let mut b = s.begin().unwrap();
        assert!(!b.put_event(EventKey([1; 16]), &event(2), f).unwrap());
        let mut other = event(0);
        other.native_id = "b".into();
        other.time = 6;
        assert!(b.put_event(EventKey([3; 16]), &other, f).unwrap());
        b.commit().unwrap();
        assert_eq!(s.event_count().unwrap(), 2);
        let evs = s.recent_events("x", 10).unwrap();
        assert_eq!(
            evs.iter().map(|e| &*e.native_id).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(s.recent_events("x", 1).unwrap().len(), 1);
        assert!(s.recent_events("y", 10).unwrap().is_empty());
        assert_eq!(s.latest_event_time().unwrap(), Some(6));
    }

    /// Identity documents are the bytes serde_json writes, with every field set, strings
    /// that need escapes, and numbers of every kind in `details`.
    #[test]
    fn identity_documents_are_serde_json_bytes() {
        use keyward_model::{Credential, CredentialKind, CredentialStatus};
        let mut i = Identity::new(
            "aws:iam:role/é\"q\\\u{1}\u{7f}\n\t/😀".into(),
            Platform::Aws,
            IdentityKind::IamRole,
            "</script>\u{2028}".into(),
        );
        i.arn = Some("arn:aws:iam::1:role/r".into());
        i.created = Some(-5);
        i.last_used = Some(i64::MAX);
        i.event_count = u64::MAX;
        i.credentials.push(Credential {
            id: "AKIA".into(),
            kind: CredentialKind::AccessKey,
            status: CredentialStatus::Active,
            created: Some(1),
            last_used: None,
            last_used_region: Some("us-east-1".into()),
            last_used_service: None,
        });
        i.tags.insert("k\u{0}".into(), "v\u{1f}".into());
        i.sources.insert("cloudtrail".into());
        i.details.insert(
            "numbers".into(),
            serde_json::json!([
                0,
                -1,
                1.5,
                1e300,
                -2.5e-300,
                0.1,
                123456789.0,
                u64::MAX,
                i64::MIN,
                f64::MAX,
                5e-324
            ]),
        );
        i.details.insert(
            "nested".into(),
            serde_json::json!({"a": [null, true, {"b": "c\u{8}"}]}),
        );
        let mut out = b"before".to_vec();
        append_identity_doc(&i, &mut out).unwrap();
        let out = out.split_off(6);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&i).unwrap()
        );
    }

    /// Identities stored in chunks read back as they were, across chunk boundaries, and
    /// storing one again replaces it.
    #[test]
    fn identities_in_chunks_read_back() {
        let mut s = SqliteStore::in_memory().unwrap();
        let mut all: Vec<Identity> = (0..150)
            .map(|n| {
                let mut i = Identity::new(
                    format!("aws:iam:role/r{n:03}"),
                    Platform::Aws,
                    IdentityKind::IamRole,
                    format!("r{n}é"),
                );
                i.event_count = n;
                i
            })
            .collect();
        let mut b = s.begin().unwrap();
        b.put_identities(&all.iter().collect::<Vec<_>>()).unwrap();
        all[70].event_count = 7_000;
        b.put_identity(&all[70]).unwrap();
        b.commit().unwrap();
        let mut back = s.load_identities().unwrap();
        back.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(back, all);
    }

    #[test]
    fn uncommitted_batch_leaves_nothing() {
        let mut s = SqliteStore::in_memory().unwrap();
        {
            let mut b = s.begin().unwrap();
            let f = b.add_file("p", "h", "cloudtrail", 0).unwrap();
            b.put_event(EventKey([2; 16]), &event(0), f).unwrap();
            b.put_identity(&Identity::new(
                "i".into(),
                Platform::Aws,
                IdentityKind::IamRole,
                "i".into(),
            ))
            .unwrap();
        }
        assert_eq!(s.event_count().unwrap(), 0);
        assert!(s.load_identities().unwrap().is_empty());
        assert!(s.file_by_hash("h").unwrap().is_none());
    }

    /// A live stream commits many small batches into one minute: keys are appended per
    /// commit and cached across batches, and the cache never claims what the store lacks
    /// (a dropped batch, another process's commit, rows of the old one-row-per-minute form).
    #[test]
    fn small_commits_into_one_minute_stay_deduplicated() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(dir.path()).unwrap();
        let key = |i: u8| EventKey([i; 16]);
        let mut f = 0;
        for round in 0..5u8 {
            let mut b = s.begin().unwrap();
            f = b
                .add_file(&format!("p{round}"), &format!("h{round}"), "k8s-audit", 0)
                .unwrap();
            // Each round: two new keys, one seen last round (a re-delivery).
            assert!(b.put_event(key(2 * round + 10), &event(0), f).unwrap());
            assert!(b.put_event(key(2 * round + 11), &event(0), f).unwrap());
            if round > 0 {
                assert!(!b.put_event(key(2 * round + 9), &event(0), f).unwrap());
            }
            b.commit().unwrap();
        }
        assert_eq!(s.event_count().unwrap(), 10);
        let chunks: i64 = s
            .conn
            .query_row("SELECT count(*) FROM event_key_chunks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(chunks, 5, "one chunk per commit, not a rewrite");

        // A dropped batch: its key must not count as stored afterwards.
        {
            let mut b = s.begin().unwrap();
            assert!(b.put_event(key(99), &event(0), f).unwrap());
        }
        let mut b = s.begin().unwrap();
        assert!(
            b.put_event(key(99), &event(0), f).unwrap(),
            "not stored before"
        );
        b.commit().unwrap();

        // Another connection (another process) commits into the same minute.
        {
            let mut other = SqliteStore::open(dir.path()).unwrap();
            let mut b = other.begin().unwrap();
            assert!(!b.put_event(key(99), &event(0), f).unwrap());
            assert!(b.put_event(key(77), &event(0), f).unwrap());
            b.commit().unwrap();
        }
        let mut b = s.begin().unwrap();
        assert!(
            !b.put_event(key(77), &event(0), f).unwrap(),
            "sees the other commit"
        );
        // Rows of the old form are read too.
        b.commit().unwrap();
        s.conn
            .execute(
                "INSERT INTO event_keys (minute, n, keys) VALUES (1, 1, ?1)",
                [[[55u8; 16].as_slice(), &[0]].concat()],
            )
            .unwrap();
        let mut old = event(0);
        old.time = 60_000;
        let mut b = s.begin().unwrap();
        assert!(!b.put_event(key(55), &old, f).unwrap());
        b.commit().unwrap();
        assert_eq!(s.event_count().unwrap(), 13);
    }

    #[test]
    fn open_findings_are_counted_in_the_store() {
        let mut s = SqliteStore::in_memory().unwrap();
        let row = |id: &str, sev: u8, identity: Option<&str>, status: &str| FindingRow {
            id: id.into(),
            rule_id: "r".into(),
            kind: "threat".into(),
            severity: sev,
            identity: identity.map(str::to_owned),
            status: status.into(),
            first_seen: 1,
            last_seen: 2,
            doc: "{}".into(),
        };
        let mut b = s.begin().unwrap();
        for f in [
            row("a", 4, Some("x"), "open"),
            row("b", 2, Some("x"), "acknowledged"),
            row("c", 3, Some("y"), "resolved"),
            row("d", 1, Some("y"), "open"),
            row("e", 2, None, "open"),
            row("f", 4, Some("z"), "false-positive"),
        ] {
            b.put_finding(&f).unwrap();
        }
        b.commit().unwrap();
        assert_eq!(s.open_finding_counts().unwrap(), [0, 1, 2, 0, 1]);
        let mut worst = s.worst_open_by_identity().unwrap();
        worst.sort();
        assert_eq!(worst, [("x".to_owned(), 4), ("y".to_owned(), 1)]);
    }

    #[test]
    fn reopens_persisted_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = SqliteStore::open(dir.path()).unwrap();
            let mut b = s.begin().unwrap();
            b.put_identity(&Identity::new(
                "i".into(),
                Platform::Aws,
                IdentityKind::IamRole,
                "i".into(),
            ))
            .unwrap();
            b.commit().unwrap();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(
            s.identity("i").unwrap().unwrap().kind,
            IdentityKind::IamRole
        );
    }

    /// A store at schema version 6 with `n` audit entries written the version 4 way.
    fn version_6_with_legacy_entries(n: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for sql in MIGRATIONS.iter().take(6) {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        let mut prev = String::new();
        for i in 0..n {
            let e = AuditEntry {
                at: i as i64,
                actor: "cli".into(),
                action: "token.create".into(),
                target: Some(format!("t{i}")),
                detail: (i % 2 == 0).then(|| "role admin".to_owned()),
                ..AuditEntry::default()
            };
            let hash = audit::legacy_hash(&prev, &e);
            conn.execute(
                "INSERT INTO audit_log (at, actor, action, target, detail, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![e.at, e.actor, e.action, e.target, e.detail, hash],
            )
            .unwrap();
            prev = hash;
        }
        conn
    }

    #[test]
    fn legacy_entries_keep_verifying_and_the_keyed_chain_starts_after_them() {
        let mut s = SqliteStore::init(version_6_with_legacy_entries(3), Keys::ephemeral()).unwrap();
        let r = s.audit_verify(&[]).unwrap();
        assert!(r.ok, "{r:?}");
        assert_eq!((r.entries, r.legacy_entries), (3, 3));
        let legacy_head = s.audit_log(1).unwrap().remove(0);
        assert!(legacy_head.legacy);
        assert_eq!(
            s.audit(&AuditEntry {
                at: 9,
                actor: "cli".into(),
                action: "token.revoke".into(),
                ..AuditEntry::default()
            })
            .unwrap(),
            4
        );
        let r = s.audit_verify(&[]).unwrap();
        assert!(r.ok, "{r:?}");
        assert_eq!((r.entries, r.legacy_entries), (4, 3));
        let prev: String = s
            .conn
            .query_row("SELECT prev FROM audit_log WHERE seq = 4", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            prev, legacy_head.mac,
            "the keyed chain starts from the legacy head"
        );

        // Rewriting a legacy entry (its hash recomputed, as anyone could) now breaks the
        // first keyed entry, whose MAC covers the legacy head.
        s.conn
            .execute("UPDATE audit_log SET actor = 'x' WHERE seq <= 3", [])
            .unwrap();
        let mut prev = String::new();
        for seq in 1..=3 {
            let e = s.audit_entries(seq - 1, 1).unwrap().remove(0).entry;
            let h = audit::legacy_hash(&prev, &e);
            s.conn
                .execute(
                    "UPDATE audit_log SET legacy_hash = ?2 WHERE seq = ?1",
                    params![seq, h],
                )
                .unwrap();
            prev = h;
        }
        let r = s.audit_verify(&[]).unwrap();
        let b = r.broken.unwrap();
        assert_eq!((b.seq, b.why), (4, audit::Break::Unlinked));

        // A legacy entry edited without recomputing is a legacy hash mismatch.
        let s = SqliteStore::init(version_6_with_legacy_entries(3), Keys::ephemeral()).unwrap();
        s.conn
            .execute("UPDATE audit_log SET target = 'x' WHERE seq = 2", [])
            .unwrap();
        let b = s.audit_verify(&[]).unwrap().broken.unwrap();
        assert_eq!((b.seq, b.why), (2, audit::Break::LegacyHashMismatch));
    }
}

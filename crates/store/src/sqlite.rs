//! The embedded store: one SQLite file, `keyward.db`, in the data directory.

use std::path::Path;

use keyward_model::{
    Diagnostic, Event, EventKey, Identity, SnapshotObject, SourceKind, time::Millis,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::{Batch, DeadLetter, FileRecord, Result, Store, StoreError};

/// Schema migrations, in order; the index + 1 is the version recorded in `user_version`.
const MIGRATIONS: [&str; 1] = [include_str!("../schema/001_init.sql")];

pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let conn = Connection::open(dir.join("keyward.db"))?;
        Self::init(conn)
    }

    /// An in-memory store (tests).
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                found: version,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(SqliteStore { conn })
    }
}

fn source_from(s: &str) -> Option<SourceKind> {
    [
        SourceKind::Cloudtrail,
        SourceKind::K8sAudit,
        SourceKind::IamAuthorizationDetails,
        SourceKind::IamCredentialReport,
        SourceKind::K8sSnapshot,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
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

const FILE_COLUMNS: &str = "id, path, hash, format, records, accepted, rejected, ingested_at";

impl Store for SqliteStore {
    fn file_by_hash(&self, hash: &str) -> Result<Option<FileRecord>> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE hash = ?1");
        Ok(self.conn.query_row(&sql, [hash], file_row).optional()?)
    }

    fn files(&self) -> Result<Vec<FileRecord>> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files ORDER BY id");
        let mut st = self.conn.prepare(&sql)?;
        let rows = st
            .query_map([], file_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
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

    fn recent_events(&self, actor: &str, limit: usize) -> Result<Vec<Event>> {
        let mut st = self.conn.prepare(
            "SELECT native_id, source, time, action, actor, source_ip, user_agent, region, account,
                    error_code, target, credential, invoked_by, shared_id, stage
             FROM events WHERE actor = ?1 ORDER BY time DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![actor, limit as i64], |r| {
            let source: String = r.get(1)?;
            Ok((
                source,
                Event {
                    native_id: r.get(0)?,
                    source: SourceKind::Cloudtrail,
                    time: r.get(2)?,
                    action: r.get(3)?,
                    actor: r.get(4)?,
                    source_ip: r.get(5)?,
                    user_agent: r.get(6)?,
                    region: r.get(7)?,
                    account: r.get(8)?,
                    error_code: r.get(9)?,
                    target: r.get(10)?,
                    credential: r.get(11)?,
                    invoked_by: r.get(12)?,
                    shared_id: r.get(13)?,
                    stage: r.get::<_, i64>(14)? as u8,
                },
            ))
        })?;
        rows.map(|row| {
            let (source, mut ev) = row?;
            ev.source = source_from(&source)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown event source `{source}`")))?;
            Ok(ev)
        })
        .collect()
    }

    fn event_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn latest_event_time(&self) -> Result<Option<Millis>> {
        Ok(self
            .conn
            .query_row("SELECT max(time) FROM events", [], |r| r.get(0))?)
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

    fn begin(&mut self) -> Result<Box<dyn Batch + '_>> {
        Ok(Box::new(SqliteBatch {
            tx: self.conn.transaction()?,
        }))
    }
}

struct SqliteBatch<'c> {
    tx: Transaction<'c>,
}

impl Batch for SqliteBatch<'_> {
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

    fn put_event(&mut self, key: EventKey, e: &Event, file_id: i64) -> Result<bool> {
        let mut st = self.tx.prepare_cached(
            "INSERT OR IGNORE INTO events (key, native_id, source, time, action, actor, source_ip,
                user_agent, region, account, error_code, target, credential, invoked_by, shared_id,
                stage, file_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?;
        let inserted = st.execute(params![
            &key.0[..],
            e.native_id,
            e.source.as_str(),
            e.time,
            e.action,
            e.actor,
            e.source_ip,
            e.user_agent,
            e.region,
            e.account,
            e.error_code,
            e.target,
            e.credential,
            e.invoked_by,
            e.shared_id,
            e.stage,
            file_id
        ])? == 1;
        if !inserted && e.stage > 0 {
            let mut up = self.tx.prepare_cached(
                "UPDATE events SET time = ?2, action = ?3, actor = ?4, error_code = ?5, stage = ?6
                 WHERE key = ?1 AND stage < ?6",
            )?;
            up.execute(params![
                &key.0[..],
                e.time,
                e.action,
                e.actor,
                e.error_code,
                e.stage
            ])?;
        }
        Ok(inserted)
    }

    fn put_identity(&mut self, i: &Identity) -> Result<()> {
        let doc = serde_json::to_string(i).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut st = self.tx.prepare_cached(
            "INSERT INTO identities (id, platform, kind, name, account, cluster, namespace, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET platform = excluded.platform, kind = excluded.kind,
                name = excluded.name, account = excluded.account, cluster = excluded.cluster,
                namespace = excluded.namespace, doc = excluded.doc",
        )?;
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

    fn commit(self: Box<Self>) -> Result<()> {
        Ok(self.tx.commit()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_model::{IdentityKind, Platform};

    fn event(stage: u8) -> Event {
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
}

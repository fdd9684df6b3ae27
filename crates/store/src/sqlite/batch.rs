//! The write batch: events into dictionary-encoded blocks, dedup keys by minute, identities
//! in chunks, findings, baselines, objects and dead letters, committed together.

use super::*;

pub(super) use crate::shared::{BLOCK_EVENTS, KeyCache, Pending, actor_key, append_identity_doc};

pub(super) struct SqliteBatch<'c> {
    pub(super) tx: Transaction<'c>,
    cache: &'c mut KeyCache,
    pending: FxHashMap<i64, Pending>,
    block: crate::block::BlockBuilder,
    block_file: i64,
    /// Hashes of the actors in the block being filled.
    block_actors: rustc_hash::FxHashSet<i64>,
    /// The identity document being written, kept across identities.
    doc: Vec<u8>,
}

impl<'c> SqliteBatch<'c> {
    /// A batch in `tx`, the store at `version` (`PRAGMA data_version`): another
    /// process's commits change it, and then the key cache starts again from the store.
    pub(super) fn new(tx: Transaction<'c>, cache: &'c mut KeyCache, version: i64) -> Self {
        cache.begin(version);
        SqliteBatch {
            tx,
            cache,
            pending: FxHashMap::default(),
            block: crate::block::BlockBuilder::default(),
            block_file: 0,
            block_actors: rustc_hash::FxHashSet::default(),
            doc: Vec::new(),
        }
    }
}

impl SqliteBatch<'_> {
    /// Loads the keys of `minute` from the store on first use.
    fn minute(&mut self, minute: i64) -> Result<()> {
        if !self.cache.minutes.contains_key(&minute) {
            if self.cache.full() {
                self.write_pending()?;
                self.cache.clear();
            }
            let mut st = self.tx.prepare_cached(
                "SELECT keys FROM event_keys WHERE minute = ?1
                 UNION ALL SELECT keys FROM event_key_chunks WHERE minute = ?1",
            )?;
            let blobs = st
                .query_map([minute], |r| r.get::<_, Vec<u8>>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            self.cache.load(minute, blobs);
        }
        Ok(())
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
        self.minute(minute)?;
        let Some(new) = self.cache.note(&mut self.pending, minute, key, e.stage)? else {
            return Ok(false);
        };
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

    fn delete_identity(&mut self, id: &str) -> Result<()> {
        let mut st = self
            .tx
            .prepare_cached("DELETE FROM identities WHERE id = ?1")?;
        st.execute(params![id])?;
        Ok(())
    }

    fn delete_object(&mut self, kind: &str, id: &str) -> Result<()> {
        let mut st = self
            .tx
            .prepare_cached("DELETE FROM objects WHERE kind = ?1 AND id = ?2")?;
        st.execute(params![kind, id])?;
        Ok(())
    }

    fn delete_observed_edge(&mut self, kind: &str, from: &str, to: &str) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "DELETE FROM observed_edges WHERE kind = ?1 AND src = ?2 AND dst = ?3",
        )?;
        st.execute(params![kind, from, to])?;
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

    fn delete_baseline(&mut self, principal: &str) -> Result<()> {
        let mut st = self
            .tx
            .prepare_cached("DELETE FROM baselines WHERE principal = ?1")?;
        st.execute(params![principal])?;
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

    fn put_checkpoint(&mut self, name: &str, position: i64, at: Millis) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT INTO checkpoints (name, position, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET position = excluded.position,
             updated_at = excluded.updated_at",
        )?;
        st.execute(params![name, position, at])?;
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
            d.reason.to_string()
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

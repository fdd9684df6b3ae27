//! The PostgreSQL write batch: one transaction, committed whole or rolled back when
//! dropped. Events go into the same dictionary-encoded blocks and dedup-key chunks as
//! SQLite's (`crate::shared`), so both stores hold the same bytes. Identities, observed
//! edges and the query tables' rows are written many per statement (`bulk.rs`).

use std::cell::RefCell;

use keyward_model::{
    Diagnostic, Event, EventKey, Identity, ObservedEdge, SnapshotObject, time::Millis,
};
use postgres::types::ToSql;
use postgres::{Statement, Transaction};
use rustc_hash::{FxHashMap, FxHashSet};

use super::bulk::Held;
use super::{FILE_COLUMNS, FINDING_COLUMNS, bump, file_row, finding_row};
use crate::shared::{BLOCK_EVENTS, KeyCache, Pending, actor_key};
use crate::{Batch, FileRecord, FindingChange, FindingRow, Result, StoreError};

pub(super) struct PgBatch<'c> {
    tx: RefCell<Transaction<'c>>,
    statements: &'c RefCell<FxHashMap<&'static str, Statement>>,
    cache: &'c mut KeyCache,
    /// The store's `seen_version`, moved on when this commit is the only one since.
    seen: &'c mut i64,
    /// `store_version` when the batch began.
    version: i64,
    pending: FxHashMap<i64, Pending>,
    block: crate::block::BlockBuilder,
    block_file: i64,
    /// Hashes of the actors in the block being filled.
    block_actors: FxHashSet<i64>,
    /// Rows written many per statement, not yet written.
    pub(super) held: Held,
}

impl<'c> PgBatch<'c> {
    pub(super) fn new(
        tx: Transaction<'c>,
        statements: &'c RefCell<FxHashMap<&'static str, Statement>>,
        cache: &'c mut KeyCache,
        seen: &'c mut i64,
        version: i64,
    ) -> Self {
        cache.begin(version);
        PgBatch {
            tx: RefCell::new(tx),
            statements,
            cache,
            seen,
            version,
            pending: FxHashMap::default(),
            block: crate::block::BlockBuilder::default(),
            block_file: 0,
            block_actors: FxHashSet::default(),
            held: Held::default(),
        }
    }
}

impl<'c> PgBatch<'c> {
    /// The transaction and the rows held, to write some of them.
    pub(super) fn held(&mut self) -> Result<(std::cell::RefMut<'_, Transaction<'c>>, &mut Held)> {
        let tx = self
            .tx
            .try_borrow_mut()
            .map_err(|_| StoreError::Corrupt("the transaction is in use".into()))?;
        Ok((tx, &mut self.held))
    }

    /// The transaction, for one statement at a time.
    pub(super) fn tx(&self) -> Result<std::cell::RefMut<'_, Transaction<'c>>> {
        self.tx
            .try_borrow_mut()
            .map_err(|_| StoreError::Corrupt("the transaction is in use".into()))
    }

    /// Runs a statement, prepared once per connection.
    pub(super) fn exec(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let st = self.prepared(sql)?;
        Ok(self.tx()?.execute(&st, params)?)
    }

    pub(super) fn prepared(&self, sql: &'static str) -> Result<Statement> {
        let mut cache = self
            .statements
            .try_borrow_mut()
            .map_err(|_| StoreError::Corrupt("statement cache in use".into()))?;
        if let Some(st) = cache.get(sql) {
            return Ok(st.clone());
        }
        let st = self.tx()?.prepare(sql)?;
        cache.insert(sql, st.clone());
        Ok(st)
    }

    /// Loads the keys of `minute` from the store on first use.
    fn minute(&mut self, minute: i64) -> Result<()> {
        if !self.cache.minutes.contains_key(&minute) {
            if self.cache.full() {
                self.write_pending()?;
                self.cache.clear();
            }
            let st = self.prepared("SELECT keys FROM event_key_chunks WHERE minute = $1")?;
            let rows = self.tx()?.query(&st, &[&minute])?;
            let blobs = rows
                .iter()
                .map(|r| r.try_get::<_, Vec<u8>>(0))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            self.cache.load(minute, blobs);
        }
        Ok(())
    }

    /// Appends what this batch added, one chunk per minute.
    fn write_pending(&mut self) -> Result<()> {
        for (minute, p) in std::mem::take(&mut self.pending) {
            self.exec(
                "INSERT INTO event_key_chunks (minute, n, keys) VALUES ($1, $2, $3)",
                &[&minute, &(p.new as i64), &p.entries],
            )?;
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
        self.exec(
            "INSERT INTO event_blocks (file_id, min_time, max_time, count, actors, data)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &self.block_file,
                &min,
                &max,
                &count,
                &actors.concat(),
                &data,
            ],
        )?;
        Ok(())
    }
}

impl Batch for PgBatch<'_> {
    fn file_by_hash(&self, hash: &str) -> Result<Option<FileRecord>> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE hash = $1");
        self.tx()?
            .query_opt(&sql, &[&hash])?
            .map(|r| file_row(&r))
            .transpose()
    }

    fn add_file(&mut self, path: &str, hash: &str, format: &str, at: Millis) -> Result<i64> {
        // A file with the same bytes may have been forced in again: replace its record.
        let st = self.prepared(
            "INSERT INTO files (path, hash, format, records, accepted, rejected, ingested_at)
             VALUES ($1, $2, $3, 0, 0, 0, $4)
             ON CONFLICT (hash) DO UPDATE SET path = excluded.path, ingested_at = excluded.ingested_at
             RETURNING id",
        )?;
        Ok(self
            .tx()?
            .query_one(&st, &[&path, &hash, &format, &at])?
            .try_get(0)?)
    }

    fn finish_file(
        &mut self,
        file_id: i64,
        records: u64,
        accepted: u64,
        rejected: u64,
    ) -> Result<()> {
        self.exec(
            "UPDATE files SET records = $2, accepted = $3, rejected = $4 WHERE id = $1",
            &[
                &file_id,
                &(records as i64),
                &(accepted as i64),
                &(rejected as i64),
            ],
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
        let (mut tx, held) = self.held()?;
        held.put_identity(&mut tx, i)
    }

    fn put_object(&mut self, o: &SnapshotObject) -> Result<()> {
        let doc = serde_json::to_string(&o.doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.exec(
            "INSERT INTO objects (kind, id, scope, doc) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kind, id) DO UPDATE SET scope = excluded.scope, doc = excluded.doc",
            &[&o.kind, &o.id, &o.scope, &doc],
        )?;
        Ok(())
    }

    fn put_observed_edge(&mut self, e: &ObservedEdge) -> Result<()> {
        let (mut tx, held) = self.held()?;
        held.put_observed_edge(&mut tx, e)
    }

    fn put_dead_letter(&mut self, file_id: i64, path: &str, d: &Diagnostic) -> Result<()> {
        self.exec(
            "INSERT INTO dead_letters (file_id, path, line, record, reason)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &file_id,
                &path,
                &(d.line as i64),
                &d.record.map(|r| r as i64),
                &d.reason.to_string(),
            ],
        )?;
        Ok(())
    }

    fn delete_identity(&mut self, id: &str) -> Result<()> {
        let (mut tx, held) = self.held()?;
        held.write_identities(&mut tx)?;
        drop(tx);
        self.exec("DELETE FROM identities WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn delete_object(&mut self, kind: &str, id: &str) -> Result<()> {
        self.exec(
            "DELETE FROM objects WHERE kind = $1 AND id = $2",
            &[&kind, &id],
        )?;
        Ok(())
    }

    fn delete_observed_edge(&mut self, kind: &str, from: &str, to: &str) -> Result<()> {
        let (mut tx, held) = self.held()?;
        held.write_observed(&mut tx)?;
        drop(tx);
        self.exec(
            "DELETE FROM observed_edges WHERE kind = $1 AND src = $2 AND dst = $3",
            &[&kind, &from, &to],
        )?;
        Ok(())
    }

    fn finding(&self, id: &str) -> Result<Option<FindingRow>> {
        let sql = format!("SELECT {FINDING_COLUMNS} FROM findings WHERE id = $1");
        self.tx()?
            .query_opt(&sql, &[&id])?
            .map(|r| finding_row(&r))
            .transpose()
    }

    fn put_finding(&mut self, f: &FindingRow) -> Result<()> {
        self.exec(
            "INSERT INTO findings (id, rule_id, kind, severity, identity, status, first_seen,
                                   last_seen, doc)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET rule_id = excluded.rule_id, kind = excluded.kind,
               severity = excluded.severity, identity = excluded.identity,
               status = excluded.status, first_seen = excluded.first_seen,
               last_seen = excluded.last_seen, doc = excluded.doc",
            &[
                &f.id,
                &f.rule_id,
                &f.kind,
                &i16::from(f.severity),
                &f.identity,
                &f.status,
                &f.first_seen,
                &f.last_seen,
                &f.doc,
            ],
        )?;
        Ok(())
    }

    fn add_finding_change(&mut self, c: &FindingChange) -> Result<()> {
        self.exec(
            "INSERT INTO finding_changes (finding_id, at, actor, status, note)
             VALUES ($1, $2, $3, $4, $5)",
            &[&c.finding_id, &c.at, &c.actor, &c.status, &c.note],
        )?;
        Ok(())
    }

    fn put_baseline(&mut self, principal: &str, doc: &str) -> Result<()> {
        self.exec(
            "INSERT INTO baselines (principal, doc) VALUES ($1, $2)
             ON CONFLICT (principal) DO UPDATE SET doc = excluded.doc",
            &[&principal, &doc],
        )?;
        Ok(())
    }

    fn delete_baseline(&mut self, principal: &str) -> Result<()> {
        self.exec("DELETE FROM baselines WHERE principal = $1", &[&principal])?;
        Ok(())
    }

    fn put_detector_state(&mut self, name: &str, doc: &str) -> Result<()> {
        self.exec(
            "INSERT INTO detector_state (name, doc) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
            &[&name, &doc],
        )?;
        Ok(())
    }

    fn put_checkpoint(&mut self, name: &str, position: i64, at: Millis) -> Result<()> {
        self.exec(
            "INSERT INTO checkpoints (name, position, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET position = excluded.position,
             updated_at = excluded.updated_at",
            &[&name, &position, &at],
        )?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let (mut tx, held) = self.held()?;
        held.write(&mut tx)?;
        drop(tx);
        self.flush_block()?;
        self.write_pending()?;
        let PgBatch {
            tx,
            cache,
            seen,
            version,
            ..
        } = *self;
        let mut tx = tx.into_inner();
        let now = bump(&mut tx)?;
        tx.commit()?;
        // What the batch added is now committed: the cache holds, unless another process
        // committed while this batch was open (then it may lack that commit's keys).
        cache.uncommitted = false;
        cache.data_version = (now == version + 1).then_some(now);
        if now == *seen + 1 {
            *seen = now;
        }
        Ok(())
    }
}

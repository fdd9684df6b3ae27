//! What the SQLite and PostgreSQL stores share, so both store and read the same bytes and
//! deduplicate the same way: the actor key of event blocks, identity documents, the cache
//! of dedup keys by minute, and the scan that picks an actor's events out of blocks.

use keyward_model::{Event, EventKey, Identity, time::Millis};
use rustc_hash::FxHashMap;

use crate::{Result, StoreError};

/// Events per stored block.
pub(crate) const BLOCK_EVENTS: usize = 32_768;
/// Dedup keys held in memory (about 40 bytes each) before pending chunks are written and
/// the cache dropped.
pub(crate) const MAX_CACHED_KEYS: usize = 2_000_000;
/// A stored dedup entry: 16 key bytes and the stage rank.
pub(crate) const KEY_LEN: usize = 17;

/// FNV-1a, 64 bits, over the actor's UTF-8 bytes: a stable, cheap key for indexing events
/// by actor (collisions only cost a few extra rows read; readers compare the actor id
/// itself). The value is persisted, so it must never change: it is fed with
/// `Hasher::write` on the bytes alone, not `write_str` or `Hash::hash`, which add a
/// terminator byte.
pub(crate) fn actor_key(actor: &str) -> i64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(actor.as_bytes());
    h.finish() as i64
}

/// Appends an identity's JSON document to `out`. Written with sonic-rs's serializer
/// (fewer instructions than serde_json's); the bytes are serde_json's, as the test
/// `identity_documents_are_serde_json_bytes` holds, and they are read back with
/// serde_json.
pub(crate) fn append_identity_doc(i: &Identity, out: &mut Vec<u8>) -> Result<()> {
    sonic_rs::to_writer(&mut *out, i).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn identity_from(doc: &str) -> Result<Identity> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("identity document: {e}")))
}

/// The dedup keys of recent minutes, with the stage rank stored for each: what is
/// committed, plus what the open batch added (dropped if the batch does not commit).
#[derive(Default)]
pub(crate) struct KeyCache {
    pub(crate) minutes: FxHashMap<i64, FxHashMap<[u8; 16], u8>>,
    pub(crate) keys: usize,
    /// A batch is open (or was dropped without committing).
    pub(crate) uncommitted: bool,
    /// The store's change counter (SQLite: `PRAGMA data_version`; PostgreSQL:
    /// `store_version`) when the cache was last known to match the store.
    pub(crate) data_version: Option<i64>,
}

/// Keys a batch added to one minute (or whose stage it raised), not yet written.
#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) new: u64,
    pub(crate) entries: Vec<u8>,
}

impl KeyCache {
    /// A batch starts at store version `version`. A batch dropped without committing left
    /// keys in the cache that the store does not hold, and another process may have
    /// committed: then the cache starts again from the store.
    pub(crate) fn begin(&mut self, version: i64) {
        if self.uncommitted || self.data_version != Some(version) {
            *self = KeyCache::default();
            self.data_version = Some(version);
        }
        self.uncommitted = true;
    }

    /// Whether the cache is too big to take another minute (then the caller writes what
    /// is pending and calls [`KeyCache::clear`]).
    pub(crate) fn full(&self) -> bool {
        self.keys > MAX_CACHED_KEYS
    }

    pub(crate) fn clear(&mut self) {
        self.minutes.clear();
        self.keys = 0;
    }

    /// Caches `minute`'s keys from its stored blobs (each a run of [`KEY_LEN`] entries).
    pub(crate) fn load(&mut self, minute: i64, blobs: impl IntoIterator<Item = Vec<u8>>) {
        let mut keys: FxHashMap<[u8; 16], u8> = FxHashMap::default();
        for blob in blobs {
            for chunk in blob.chunks_exact(KEY_LEN) {
                let (k, stage) = chunk.split_at(16);
                let mut key = [0u8; 16];
                key.copy_from_slice(k);
                let stage = stage.first().copied().unwrap_or(0);
                let slot = keys.entry(key).or_insert(stage);
                *slot = (*slot).max(stage);
            }
        }
        self.keys += keys.len();
        self.minutes.insert(minute, keys);
    }

    /// Records an event's key in its (loaded) minute. `None`: stored already at this
    /// stage or a more complete one, nothing to write. `Some(new)`: store the event;
    /// `new` is false when it supersedes a less complete stage of the same request.
    pub(crate) fn note(
        &mut self,
        pending: &mut FxHashMap<i64, Pending>,
        minute: i64,
        key: EventKey,
        stage: u8,
    ) -> Result<Option<bool>> {
        let mk = self
            .minutes
            .get_mut(&minute)
            .ok_or_else(|| StoreError::Corrupt("minute cache".into()))?;
        let new = match mk.get_mut(&key.0) {
            None => {
                mk.insert(key.0, stage);
                true
            }
            // A more complete stage of a request already stored supersedes it.
            Some(old) if stage > *old => {
                *old = stage;
                false
            }
            Some(_) => return Ok(None),
        };
        let p = pending.entry(minute).or_default();
        p.entries.extend_from_slice(&key.0);
        p.entries.push(stage);
        if new {
            p.new += 1;
            self.keys += 1;
        }
        Ok(Some(new))
    }
}

/// An actor's events gathered from blocks read newest first (by their newest event):
/// [`ActorScan::done`] says when no older block can change the answer.
pub(crate) struct ActorScan<'a> {
    actor: &'a str,
    key: [u8; 8],
    since: Millis,
    until: Millis,
    limit: usize,
    found: Vec<Event<'static>>,
}

impl<'a> ActorScan<'a> {
    /// The actor's events in `[since, until]`, the newest `limit`.
    pub(crate) fn new(actor: &'a str, (since, until): (Millis, Millis), limit: usize) -> Self {
        ActorScan {
            actor,
            key: actor_key(actor).to_be_bytes(),
            since,
            until,
            limit,
            found: Vec::new(),
        }
    }

    /// Whether a block whose newest event is at `max_time` (and every older one) can be
    /// skipped.
    pub(crate) fn done(&self, max_time: Millis) -> bool {
        max_time < self.since
            || (self.found.len() >= self.limit
                && self
                    .found
                    .iter()
                    .map(|e| e.time)
                    .min()
                    .is_some_and(|t| max_time < t))
    }

    /// Whether a block's sorted actor keys include this actor's.
    pub(crate) fn may_hold(&self, actors: &[u8]) -> bool {
        actors
            .chunks_exact(8)
            .collect::<Vec<_>>()
            .binary_search(&&self.key[..])
            .is_ok()
    }

    /// Takes the actor's events from an encoded block.
    pub(crate) fn add(&mut self, data: &[u8]) -> Result<()> {
        let block = crate::block::decode(data)
            .map_err(|e| StoreError::Corrupt(format!("event block: {e}")))?;
        let (since, until, actor) = (self.since, self.until, self.actor);
        self.found.extend(
            block.into_iter().filter(|e| {
                e.time >= since && e.time <= until && e.actor.as_deref() == Some(actor)
            }),
        );
        // Keep the most complete stage of each request.
        self.found.sort_by(|a, b| {
            (a.source, &a.native_id, b.stage).cmp(&(b.source, &b.native_id, a.stage))
        });
        self.found
            .dedup_by(|b, a| a.source == b.source && a.native_id == b.native_id);
        self.found.sort_by(|a, b| {
            b.time
                .cmp(&a.time)
                .then_with(|| a.native_id.cmp(&b.native_id))
        });
        self.found.truncate(self.limit.max(1).saturating_mul(4));
        Ok(())
    }

    /// The newest `limit` events.
    pub(crate) fn finish(mut self) -> Vec<Event<'static>> {
        self.found.truncate(self.limit);
        self.found
    }
}

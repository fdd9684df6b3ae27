//! What the edges (the CLI, the server) read and write beside the pipeline: API tokens, the
//! audit log, events and dead letters to show, counts, the store's durability. The store
//! itself stays inside the engine; these are its only ways out.

use std::path::PathBuf;

use keyward_model::{Event, SnapshotObject, time::Millis};
use keyward_store::{AuditEntry, AuditRecord, Checkpoint, DeadLetter, TokenRow, VerifyReport};

use crate::{Engine, EngineError};

type Result<T> = std::result::Result<T, EngineError>;

impl Engine {
    /// Makes every later commit durable across power loss before it returns (`keyward
    /// serve`: a 2xx means stored).
    pub fn set_durable(&mut self, durable: bool) -> Result<()> {
        Ok(self.store.set_durable(durable)?)
    }

    /// After every audit entry from now on, append a signed checkpoint to this file.
    pub fn set_audit_anchor(&mut self, file: Option<PathBuf>) {
        self.store.set_audit_anchor(file);
    }

    /// API tokens, revoked ones included.
    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        Ok(self.store.tokens()?)
    }

    pub fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        Ok(self.store.token_by_hash(hash)?)
    }

    /// Stores a new token and its audit entry together.
    pub fn put_token(&mut self, token: &TokenRow, audit: &AuditEntry) -> Result<()> {
        Ok(self.store.put_token(token, audit)?)
    }

    /// Revokes a token (false: no such active token); audited when it did.
    pub fn revoke_token(&mut self, id: &str, audit: &AuditEntry) -> Result<bool> {
        Ok(self.store.revoke_token(id, audit)?)
    }

    /// Appends an entry to the audit log; returns its seq.
    pub fn audit(&mut self, entry: &AuditEntry) -> Result<i64> {
        Ok(self.store.audit(entry)?)
    }

    /// The newest audit entries first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditRecord>> {
        Ok(self.store.audit_log(limit)?)
    }

    /// Walks the whole audit chain and checks it against `anchors`.
    pub fn audit_verify(&self, anchors: &[Checkpoint]) -> Result<VerifyReport> {
        Ok(self.store.audit_verify(anchors)?)
    }

    pub fn event_count(&self) -> Result<u64> {
        Ok(self.store.event_count()?)
    }

    /// The time of the newest stored event: "now" for reports over ingested history.
    pub fn latest_event_time(&self) -> Result<Option<Millis>> {
        Ok(self.store.latest_event_time()?)
    }

    /// The most recent events by an identity, newest first.
    pub fn recent_events(&self, actor: &str, limit: usize) -> Result<Vec<Event<'static>>> {
        Ok(self.store.recent_events(actor, limit)?)
    }

    /// An identity's events at or after `since`, newest first, at most `limit`.
    pub fn events_since(
        &self,
        actor: &str,
        since: Millis,
        limit: usize,
    ) -> Result<Vec<Event<'static>>> {
        Ok(self.store.events_since(actor, since, limit)?)
    }

    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        Ok(self.store.dead_letters(limit)?)
    }

    /// Stored snapshot objects of one kind (`iam_authorization_details`, `k8s_object`, …).
    pub fn objects(&self, kind: &str) -> Result<Vec<SnapshotObject>> {
        Ok(self.store.objects(kind)?)
    }

    /// Open or acknowledged findings by severity (index 0 info … 4 critical).
    pub fn open_finding_counts(&self) -> Result<[u64; 5]> {
        Ok(self.store.open_finding_counts()?)
    }

    /// The worst severity (0 … 4) of each identity's open or acknowledged findings.
    pub fn worst_open_by_identity(&self) -> Result<Vec<(String, u8)>> {
        Ok(self.store.worst_open_by_identity()?)
    }
}

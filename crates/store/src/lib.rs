//! Persistence behind the [`Store`] trait: the embedded SQLite store (default) and, with
//! the `postgres` feature, a PostgreSQL one with the same semantics; [`open`] picks one by
//! URL.
//!
//! The trait speaks in model types only; callers never see SQL. Writes happen in a
//! [`Batch`] (one per input file), which commits atomically: a file is either fully
//! ingested and recorded, or not at all, so a crash or a fatal error leaves nothing half-done
//! and the next run ingests the file again.
//!
//! Architecture invariant: no business logic here — merging, deduplication policy and
//! lifecycle live in `graph` and `engine`; this crate stores and retrieves.

pub mod audit;
pub mod block;
#[cfg(feature = "postgres")]
mod postgres;
pub mod query;
mod shared;
mod sqlite;

use keyward_model::{
    Diagnostic, Event, EventKey, Identity, ObservedEdge, SnapshotObject, time::Millis,
};

pub use audit::{AuditRecord, Checkpoint, KeyFiles, VerifyReport};
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(feature = "postgres")]
pub use postgres::copy::{Copied, sqlite_to_postgres};
pub use query::{
    Direction, EdgeCount, GraphEdgeRow, GraphNodeRow, Listing, LogSpan, QueryBatch, QueryTables,
};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// From PostgreSQL or the connection to it. Its messages are the server's and the
    /// client's; neither repeats the connection URL or its password.
    /// Its message includes its causes (the server's message); not a `source`, so a
    /// chain printer does not repeat them.
    #[cfg(feature = "postgres")]
    #[error("postgresql: {}", postgres_message(.0))]
    Postgres(::postgres::Error),
    /// A store URL that cannot be used (never repeated whole: it may hold a password).
    #[error("the store URL {0}")]
    StoreUrl(String),
    #[error("corrupt record in the store: {0}")]
    Corrupt(String),
    #[error("the data directory `{path}` cannot be used: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("the store has schema version {found}; this build knows up to {known}")]
    TooNew { found: i64, known: i64 },
    #[error("the audit key `{path}` {reason}")]
    AuditKey { path: String, reason: String },
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    #[error("the audit anchor file `{path}`{}: {reason}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    AnchorFile {
        path: String,
        line: Option<usize>,
        reason: String,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A PostgreSQL error and its causes, `: `-separated (the error alone says only "db error").
#[cfg(feature = "postgres")]
fn postgres_message(e: &::postgres::Error) -> String {
    use std::error::Error as _;
    let mut message = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    message
}

#[cfg(feature = "postgres")]
impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        StoreError::Postgres(e)
    }
}

/// An ingested input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub id: i64,
    pub path: String,
    pub hash: String,
    pub format: String,
    pub records: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub ingested_at: Millis,
}

/// A rejected record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub path: String,
    pub diagnostic: Diagnostic,
}

/// A finding as stored: the columns listings filter on, and the whole finding as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRow {
    pub id: String,
    pub rule_id: String,
    /// `threat` or `posture`.
    pub kind: String,
    /// 0 (info) … 4 (critical).
    pub severity: u8,
    pub identity: Option<String>,
    pub status: String,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub doc: String,
}

/// A recorded change of a finding's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingChange {
    pub finding_id: String,
    pub at: Millis,
    pub actor: String,
    pub status: String,
    pub note: Option<String>,
}

/// An API token as stored: its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub hash: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    pub name: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// One state-changing action, who took it and on what. Never holds a secret (a token, a
/// webhook secret): only ids and counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: Millis,
    /// `token:<id>` for the API, `cli:<os user>` for local commands, `github:hook-<id>` for
    /// GitHub deliveries, `ui:<origin>` for a failed dashboard sign-in.
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    /// The state before the change, when there is one (text, often JSON).
    pub before: Option<String>,
    /// The state after the change, when there is one (text, often JSON).
    pub after: Option<String>,
}

/// A response plan as stored: the plan's JSON (`keyward_respond::Plan`) and the columns
/// listings filter on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    pub id: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub identity: String,
    pub finding: Option<String>,
    pub status: String,
    pub doc: String,
}

/// A long-running orchestration job or one of its items (a breach rotation campaign and
/// each identity it rotates, a playbook run and its steps): its owner's JSON and the columns
/// resumption and listings filter on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: String,
    /// What owns it (`rotation_campaign`, `rotation_item`, `playbook_run`, …).
    pub kind: String,
    /// The job this one is an item of.
    pub parent: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub status: String,
    pub doc: String,
}

/// A plan's forensic snapshot: written once, never changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRow {
    pub plan_id: String,
    pub taken_at: Millis,
    /// BLAKE3 of `doc`, hex.
    pub hash: String,
    pub doc: String,
}

/// The exclusive right to write to a store (see [`Store::lock_writer`]); released when
/// dropped, or when the process ends however it ends.
#[derive(Debug)]
pub struct WriterLock {
    _hold: Hold,
}

/// What keeps a writer lock held.
#[derive(Debug)]
#[allow(dead_code, reason = "held until dropped, never read")]
enum Hold {
    /// A store only this process can open (in memory).
    Nothing,
    /// The locked `keyward.lock` of a data directory.
    File(std::fs::File),
    /// A connection holding the store's session-level advisory lock.
    #[cfg(feature = "postgres")]
    Postgres(Box<postgres::LockConnection>),
}

impl WriterLock {
    fn nothing() -> Self {
        WriterLock {
            _hold: Hold::Nothing,
        }
    }

    fn file(file: std::fs::File) -> Self {
        WriterLock {
            _hold: Hold::File(file),
        }
    }

    #[cfg(feature = "postgres")]
    fn postgres(conn: postgres::LockConnection) -> Self {
        WriterLock {
            _hold: Hold::Postgres(Box::new(conn)),
        }
    }
}

/// Opens the store `location` names: `postgres://…` (or `postgresql://…`) a PostgreSQL
/// database (with the `postgres` feature), `sqlite:PATH` the SQLite store in the data
/// directory `PATH`, anything else a data directory. The audit log's keys are files
/// there; a PostgreSQL store keeps them in `data_dir` (or where `KEYWARD_AUDIT_KEY_FILE`
/// / `KEYWARD_AUDIT_SIGNING_KEY_FILE` say).
pub fn open(location: &str, data_dir: &std::path::Path) -> Result<Box<dyn Store>> {
    #[cfg(not(feature = "postgres"))]
    let _ = data_dir;
    match Location::parse(location)? {
        Location::Sqlite(dir) => Ok(Box::new(SqliteStore::open(&dir)?)),
        #[cfg(feature = "postgres")]
        Location::Postgres(url) => {
            // The audit keys' directory, private as a SQLite store's.
            sqlite::private_dir(data_dir).map_err(|source| StoreError::DataDir {
                path: data_dir.display().to_string(),
                source,
            })?;
            Ok(Box::new(PgStore::open(&url, KeyFiles::from_env(data_dir))?))
        }
    }
}

/// Where a store lives, as [`open`] reads a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The SQLite store in this data directory.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL connection URL.
    #[cfg(feature = "postgres")]
    Postgres(String),
}

impl Location {
    pub fn parse(location: &str) -> Result<Self> {
        if let Some(path) = location.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::StoreUrl("`sqlite:` names no directory".into()));
            }
            return Ok(Location::Sqlite(path.into()));
        }
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return Ok(Location::Postgres(location.to_owned()));
            #[cfg(not(feature = "postgres"))]
            return Err(StoreError::StoreUrl(
                "is a PostgreSQL one, and this build has no PostgreSQL support (feature `postgres`)"
                    .into(),
            ));
        }
        if let Some((scheme, _)) = location.split_once("://") {
            return Err(StoreError::StoreUrl(format!(
                "has the scheme `{scheme}`: use `postgres://…`, `sqlite:DIR` or a directory"
            )));
        }
        Ok(Location::Sqlite(location.into()))
    }
}

/// Read access and batched writes.
pub trait Store: QueryTables {
    /// The file previously ingested with these exact bytes, if any.
    fn file_by_hash(&self, hash: &str) -> Result<Option<FileRecord>>;
    fn load_identities(&self) -> Result<Vec<Identity>>;
    fn identity(&self, id: &str) -> Result<Option<Identity>>;
    /// The most recent events by an identity, newest first.
    fn recent_events(&self, actor: &str, limit: usize) -> Result<Vec<Event<'static>>>;
    /// An identity's events at or after `since`, newest first, at most `limit`.
    fn events_since(
        &self,
        actor: &str,
        since: Millis,
        limit: usize,
    ) -> Result<Vec<Event<'static>>> {
        self.events_between(actor, since, Millis::MAX, limit)
    }
    /// An identity's events in `[since, until]`, newest first, at most `limit`.
    fn events_between(
        &self,
        actor: &str,
        since: Millis,
        until: Millis,
        limit: usize,
    ) -> Result<Vec<Event<'static>>>;
    fn event_count(&self) -> Result<u64>;
    /// Makes every later commit durable across power loss before it returns (SQLite:
    /// `synchronous=FULL`; the default, `NORMAL` in WAL mode, survives a crash of the
    /// process but may lose the last commits on power loss). `keyward serve` turns it on,
    /// so a 2xx means stored.
    fn set_durable(&mut self, durable: bool) -> Result<()>;
    /// The exclusive right to write, across processes: one writer at a time per store, so
    /// concurrent runs give what serial runs give. Blocks until it is free; released when
    /// dropped.
    fn lock_writer(&self) -> Result<WriterLock>;
    /// [`Store::lock_writer`] without waiting: `None` while another writer holds it.
    fn try_lock_writer(&self) -> Result<Option<WriterLock>>;
    /// The exclusive right to the work `name` names (a partition of the message bus), across
    /// processes and machines: `None` while another holds it. Released when dropped, or when
    /// the process ends however it ends (a PostgreSQL session-level advisory lock on a
    /// connection of its own; a file lock beside a SQLite store).
    fn try_claim(&self, name: &str) -> Result<Option<WriterLock>>;
    /// Where the consumer `name` (a bus partition) stopped: the position of the last record
    /// committed with [`Batch::put_checkpoint`], `None` before the first.
    fn checkpoint(&self, name: &str) -> Result<Option<i64>>;
    /// Whether another connection (another process) committed since the store was opened
    /// or this was last asked: then what was loaded from it is out of date.
    fn changed_elsewhere(&mut self) -> Result<bool>;
    /// The time of the newest stored event.
    fn latest_event_time(&self) -> Result<Option<Millis>>;
    fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>>;
    fn objects(&self, kind: &str) -> Result<Vec<SnapshotObject>>;
    /// The kinds of stored objects.
    fn object_kinds(&self) -> Result<Vec<String>>;
    /// Edges observed in activity (graph evidence).
    fn observed_edges(&self) -> Result<Vec<ObservedEdge>>;
    /// Starts an atomic batch of writes.
    /// Findings last seen at or after `since` (all with `None`), newest first.
    fn findings(&self, since: Option<Millis>) -> Result<Vec<FindingRow>>;
    fn finding(&self, id: &str) -> Result<Option<FindingRow>>;
    /// Open or acknowledged findings by severity (index 0 info … 4 critical), counted in
    /// the store (metrics, overview) without loading them.
    fn open_finding_counts(&self) -> Result<[u64; 5]>;
    /// The worst severity (0 … 4) of each identity's open or acknowledged findings.
    fn worst_open_by_identity(&self) -> Result<Vec<(String, u8)>>;
    fn finding_changes(&self, id: &str) -> Result<Vec<FindingChange>>;
    /// Every stored baseline as (principal, JSON).
    fn baselines(&self) -> Result<Vec<(String, String)>>;
    fn detector_state(&self, name: &str) -> Result<Option<String>>;
    /// API tokens, revoked ones included.
    fn tokens(&self) -> Result<Vec<TokenRow>>;
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>>;
    /// Stores a new token and its audit entry together.
    fn put_token(&mut self, token: &TokenRow, audit: &AuditEntry) -> Result<()>;
    /// Revokes a token (false: no such active token); audited when it did.
    fn revoke_token(&mut self, id: &str, audit: &AuditEntry) -> Result<bool>;
    /// Appends an entry to the audit log (one serialised writer across processes); returns
    /// its seq.
    fn audit(&mut self, entry: &AuditEntry) -> Result<i64>;
    /// A run-time setting (JSON), if one was ever set.
    fn setting(&self, key: &str) -> Result<Option<String>>;
    /// Sets a run-time setting and writes its audit entry, in one transaction.
    fn put_setting(&mut self, key: &str, value: &str, audit: &AuditEntry) -> Result<()>;
    /// The newest audit entries first.
    fn audit_log(&self, limit: usize) -> Result<Vec<AuditRecord>>;
    /// Inserts or replaces a response plan, with its audit entry, in one transaction.
    fn put_plan(&mut self, plan: &PlanRow, audit: &AuditEntry) -> Result<()>;
    fn plan(&self, id: &str) -> Result<Option<PlanRow>>;
    /// Plans, newest first.
    fn plans(&self, limit: usize) -> Result<Vec<PlanRow>>;
    /// Stores a plan's evidence with its audit entry; a second write for one plan fails.
    fn put_evidence(&mut self, evidence: &EvidenceRow, audit: &AuditEntry) -> Result<()>;
    fn evidence(&self, plan_id: &str) -> Result<Option<EvidenceRow>>;
    /// Inserts or updates a job (its kind, parent and creation time are kept from the first
    /// write). With an audit entry, both are written in one transaction; progress updates
    /// without one are still committed before this returns.
    fn put_job(&mut self, job: &JobRow, audit: Option<&AuditEntry>) -> Result<()>;
    /// Inserts or updates many jobs, each with its audit entry, in one transaction (the
    /// broker's leases: one commit for a batch of issuances).
    fn put_jobs(&mut self, jobs: &[(JobRow, AuditEntry)]) -> Result<()>;
    fn job(&self, id: &str) -> Result<Option<JobRow>>;
    /// Jobs of a kind in one status, oldest first, at most `limit` (the broker's active
    /// leases, for the expiry sweep).
    fn jobs_in_status(&self, kind: &str, status: &str, limit: usize) -> Result<Vec<JobRow>>;
    /// Jobs of a kind (only the items of `parent`, when given), newest first.
    fn jobs(&self, kind: &str, parent: Option<&str>, limit: usize) -> Result<Vec<JobRow>>;
    /// Audit entries with a seq above `after`, oldest first, at most `limit`.
    fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>>;
    /// Walks the whole audit chain and checks it against `anchors`: the first broken
    /// entry, if any.
    fn audit_verify(&self, anchors: &[Checkpoint]) -> Result<VerifyReport>;
    /// A checkpoint of the chain's head, signed with the store's signing key.
    fn audit_checkpoint(&self, at: Millis) -> Result<Checkpoint>;
    /// After every audit entry from now on, append a checkpoint to this anchor file. The
    /// entry is committed first: a checkpoint that cannot be written is an error returned
    /// after the commit.
    fn set_audit_anchor(&mut self, file: Option<std::path::PathBuf>);
    fn begin(&mut self) -> Result<Box<dyn Batch + '_>>;
}

/// Writes that become visible together on [`Batch::commit`]; dropped uncommitted, they
/// vanish.
pub trait Batch: QueryBatch {
    /// [`Store::file_by_hash`] inside the batch (sees files added earlier in it).
    fn file_by_hash(&self, hash: &str) -> Result<Option<FileRecord>>;
    /// Registers the input file; its id tags the events and dead letters that follow.
    fn add_file(&mut self, path: &str, hash: &str, format: &str, at: Millis) -> Result<i64>;
    /// Sets the final counts of a file added in this batch.
    fn finish_file(
        &mut self,
        file_id: i64,
        records: u64,
        accepted: u64,
        rejected: u64,
    ) -> Result<()>;
    /// Stores an event; returns `true` when it was not stored before. An event already
    /// stored is superseded only by a more complete stage of the same request.
    fn put_event(&mut self, key: EventKey, event: &Event<'_>, file_id: i64) -> Result<bool>;
    fn put_identity(&mut self, identity: &Identity) -> Result<()>;
    /// Stores many identities; a store may stage the work (all documents of a chunk
    /// written, then all rows) to keep each part's code in the instruction cache.
    fn put_identities(&mut self, identities: &[&Identity]) -> Result<()> {
        identities.iter().try_for_each(|i| self.put_identity(i))
    }
    fn put_object(&mut self, object: &SnapshotObject) -> Result<()>;
    /// Stores an observed edge, replacing the stored one with the same (kind, from, to):
    /// the graph keeps the merged counts.
    fn put_observed_edge(&mut self, edge: &ObservedEdge) -> Result<()>;
    fn put_dead_letter(&mut self, file_id: i64, path: &str, diag: &Diagnostic) -> Result<()>;
    /// Removes an identity's row (its record now lives under another id: clusters merged).
    fn delete_identity(&mut self, id: &str) -> Result<()>;
    /// Removes a snapshot object (re-keyed under another id: clusters merged).
    fn delete_object(&mut self, kind: &str, id: &str) -> Result<()>;
    /// Removes an observed edge (re-keyed between other ids: clusters merged).
    fn delete_observed_edge(&mut self, kind: &str, from: &str, to: &str) -> Result<()>;
    /// A finding as committed or written earlier in this batch.
    fn finding(&self, id: &str) -> Result<Option<FindingRow>>;
    /// Inserts or replaces a finding (the caller merges).
    fn put_finding(&mut self, finding: &FindingRow) -> Result<()>;
    fn add_finding_change(&mut self, change: &FindingChange) -> Result<()>;
    fn put_baseline(&mut self, principal: &str, doc: &str) -> Result<()>;
    /// Removes a principal's baseline (re-keyed under another id: clusters merged).
    fn delete_baseline(&mut self, principal: &str) -> Result<()>;
    fn put_detector_state(&mut self, name: &str, doc: &str) -> Result<()>;
    /// Records that the consumer `name` committed everything up to `position` (see
    /// [`Store::checkpoint`]), in this batch's transaction.
    fn put_checkpoint(&mut self, name: &str, position: i64, at: Millis) -> Result<()>;
    fn commit(self: Box<Self>) -> Result<()>;
}

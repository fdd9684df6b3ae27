//! The running pipeline: files → sources → normalize → inventory + store, in atomic store
//! batches of whole files, and the queries over what it holds. This is what the CLI and the
//! server call; the store stays inside (`records.rs` is what the edges may read and write
//! beside the pipeline).
//!
//! Records stream through: JSON-lines inputs are read line by line; documents (a CloudTrail
//! S3 object, an IAM snapshot) are read whole, one file at a time. Memory is bounded by the
//! inventory plus the largest single document.

pub mod access;
pub mod agents;
pub mod authz;
pub mod broker;
mod clusters;
pub mod compliance;
mod detection;
pub mod drift;
pub mod drift_iac;
mod ingest;
mod intent;
pub mod jobs;
mod lifecycle;
pub mod playbook;
mod posture;
mod query;
mod records;
pub mod respond;
pub mod retire;
mod retirement;
pub mod rightsize;
mod tables;
mod topology;
mod view;

pub use clusters::{
    ClusterJoin, ClusterOrigin, GUESSED_CLUSTER, MIN_SHARED_NODES, MergeCounts, SharedEvidence,
};
pub use detection::{FindingQuery, MAX_NOTE_BYTES};
pub use ingest::{
    BusInput, DEFAULT_BATCH_RECORDS, DetectionStats, FileReport, FileStatus, Forward,
    ForwardOrigin, IngestOptions, IngestReport, Progress, SourceStats,
};
pub use keyward_detect::posture::RISK_RULE;
pub use lifecycle::Lifecycles;
pub use posture::Posture;
pub use query::{Escalation, Filter, Owned, OwnerFilter, OwnerInfo, Resolve};
pub(crate) use query::{iam_snapshots, k8s_objects};
pub use tables::write_query_tables;
pub use topology::Topology;
pub use view::{Need, Page};

use std::path::Path;

use keyward_graph::Inventory;
use keyward_store::{SqliteStore, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The rule catalog does not compile.
    #[error("detection: {0}")]
    Detect(#[from] keyward_detect::detector::DetectorError),
    /// Detection state could not be written as JSON.
    #[error("detection: {0}")]
    Encode(#[from] sonic_rs::Error),
    /// A finding's note is longer than [`MAX_NOTE_BYTES`].
    #[error("detection: a note holds at most {MAX_NOTE_BYTES} bytes")]
    NoteTooLong,
    #[error("detection: no finding `{0}`")]
    NoFinding(String),
    /// An exception that cannot be used (no such rule, nothing to match, a bad glob).
    #[error("detection: {0}")]
    Exception(#[from] keyward_detect::rules::RuleError),
    /// Time-bound access refused (a cap, a state, who may approve).
    #[error("access: {0}")]
    Access(#[from] keyward_govern::access::AccessError),
    /// No rightsizing: the logs cannot tell what the identity used.
    #[error(transparent)]
    Rightsize(#[from] keyward_govern::rightsize::Refusal),
    /// A rightsizing that may not be applied.
    #[error(transparent)]
    RightsizePlan(#[from] keyward_govern::rightsize::plan::PlanError),
    /// A response plan could not be made.
    #[error("respond: {0}")]
    Plan(#[from] keyward_respond::plan::PlanError),
    #[error("respond: {0}")]
    Respond(String),
    /// Terraform could not be read as baselines.
    #[error("terraform: {0}")]
    Terraform(#[from] drift_iac::TerraformError),
    /// The message bus refused or did not acknowledge records (nothing after them was
    /// committed; the input is read again).
    #[error("bus: {0}")]
    Forward(String),
    /// A broker lease that could not be written or read as JSON.
    #[error("broker: {0}")]
    Lease(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The store [`Engine::open`] opens in this process, when one was selected.
static SELECTED_STORE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Selects the store every later [`Engine::open`] of this process opens (`sqlite:PATH`,
/// `postgres://…`, or a data directory), checked here so a bad URL fails before any
/// command runs. Process-wide because the CLI's `--store` is a global option that every
/// command's `Engine::open(data_dir)` obeys. Once per process: a second call is refused.
pub fn select_store(location: &str) -> Result<(), EngineError> {
    keyward_store::Location::parse(location)?;
    SELECTED_STORE
        .set(location.to_owned())
        .map_err(|_| EngineError::Store(StoreError::StoreUrl("was already selected".into())))
}

/// The store selected with [`select_store`], if one was.
pub fn selected_store() -> Option<&'static str> {
    SELECTED_STORE.get().map(String::as_str)
}

/// The store, and the inventory and identity graph loaded from it.
pub struct Engine {
    store: Box<dyn Store>,
    inventory: Inventory,
    topology: Topology,
    /// Present once [`Engine::enable_detection`] was called.
    detector: Option<keyward_detect::Detector>,
    /// The settings detection was enabled with (before the stored ones join them), for a
    /// reload.
    detect_settings: keyward_detect::Settings,
    /// A gateway's publisher ([`Engine::set_forward`]).
    forward: Option<Box<dyn Forward>>,
    /// The store's query tables, as this engine keeps them.
    tables: tables::Tables,
    /// Set when this engine holds one identity's view ([`Engine::open_about`]).
    view: Option<view::View>,
}

/// The store selected for this process, else the embedded one in `data_dir`.
fn open_store(data_dir: &Path) -> Result<Box<dyn Store>, EngineError> {
    Ok(match SELECTED_STORE.get() {
        Some(location) => keyward_store::open(location, data_dir)?,
        None => Box::new(SqliteStore::open(data_dir)?),
    })
}

/// The right to write to the engine's store, held by one engine of one process at a time
/// ([`Engine::write_lock`]); released when dropped.
pub struct WriteLock {
    _lock: keyward_store::WriterLock,
}

impl Engine {
    /// Opens the store selected for this process ([`select_store`]: the CLI's `--store`),
    /// else the embedded store in `data_dir`, and loads the inventory. The audit log's
    /// key files are in `data_dir` whichever the store.
    pub fn open(data_dir: &Path) -> Result<Self, EngineError> {
        Self::with_store(open_store(data_dir)?)
    }

    /// Opens the embedded SQLite store in `data_dir`, whatever store was selected (a
    /// temporary store: the demo).
    pub fn open_sqlite(data_dir: &Path) -> Result<Self, EngineError> {
        Self::with_store(Box::new(SqliteStore::open(data_dir)?))
    }

    /// Opens the store `location` names (`sqlite:PATH`, `postgres://…`, or a data
    /// directory: [`keyward_store::open`]); the audit log's key files are in `data_dir`.
    pub fn open_url(location: &str, data_dir: &Path) -> Result<Self, EngineError> {
        Self::with_store(keyward_store::open(location, data_dir)?)
    }

    pub fn with_store(store: Box<dyn Store>) -> Result<Self, EngineError> {
        let (inventory, topology) = load(store.as_ref())?;
        Ok(Engine {
            store,
            inventory,
            topology,
            detector: None,
            detect_settings: keyward_detect::Settings::default(),
            forward: None,
            tables: tables::Tables::default(),
            view: None,
        })
    }

    /// Waits for the right to write (other processes on the same data directory write one
    /// at a time), then brings what this engine holds in memory up to date with what they
    /// committed, so a run after theirs gives what a serial run gives. Hold it across
    /// every write of one operation.
    pub fn write_lock(&mut self) -> Result<WriteLock, EngineError> {
        let lock = self.store.lock_writer()?;
        self.refresh()?;
        self.keep_query_tables()?;
        Ok(WriteLock { _lock: lock })
    }

    /// [`Engine::write_lock`] without waiting: `None` while another process writes.
    pub fn try_write_lock(&mut self) -> Result<Option<WriteLock>, EngineError> {
        let Some(lock) = self.store.try_lock_writer()? else {
            return Ok(None);
        };
        self.refresh()?;
        self.keep_query_tables()?;
        Ok(Some(WriteLock { _lock: lock }))
    }

    /// Reloads the inventory, the graph and detection's state when another process
    /// committed to the store since they were loaded (a long-running server or `watch`
    /// after a `keyward ingest`). Cheap when nothing changed.
    pub fn refresh(&mut self) -> Result<bool, EngineError> {
        // A view holds one identity: the estate is loaded before anything else.
        if !self.store.changed_elsewhere()? && self.view.is_none() {
            return Ok(false);
        }
        let (inventory, topology) = load(self.store.as_ref())?;
        self.inventory = inventory;
        self.topology = topology;
        self.view = None;
        // The graph is new: the tables are kept again only if they are filled.
        let kept = self.tables.kept;
        self.tables = tables::Tables::default();
        if kept {
            self.resume_query_tables()?;
        }
        if let Some(det) = self.detector.take() {
            let settings = self.detect_settings.clone();
            self.enable_detection(det.into_catalog(), settings)?;
        }
        Ok(true)
    }

    /// Makes this engine a gateway: every ingest ([`Engine::ingest`], bodies, webhook
    /// deliveries) reads its input, keeps its file row and dead letters, and hands the
    /// accepted records to `forward` (the message bus) instead of taking them in; a
    /// `keyward worker` takes them in. `None`: back to taking them in.
    pub fn set_forward(&mut self, forward: Option<Box<dyn Forward>>) {
        self.forward = forward;
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The identity graph, current with everything ingested.
    pub fn graph(&self) -> &keyward_graph::Graph {
        &self.topology.graph
    }
}

/// The inventory and the identity graph, as the store holds them.
fn load(store: &dyn Store) -> Result<(Inventory, Topology), EngineError> {
    let inventory = Inventory::new(store.load_identities()?);
    let all: Vec<_> = inventory.iter().collect();
    let topology = Topology::build(store, &all)?;
    Ok((inventory, topology))
}

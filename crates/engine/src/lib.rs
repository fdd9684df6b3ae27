//! The running pipeline: files → sources → normalize → inventory + store, in atomic store
//! batches of whole files. This is what the CLI (and later the server) calls.
//!
//! Records stream through: JSON-lines inputs are read line by line; documents (a CloudTrail
//! S3 object, an IAM snapshot) are read whole, one file at a time. Memory is bounded by the
//! inventory plus the largest single document.

mod detection;
mod ingest;
mod posture;
mod query;
mod topology;

pub use detection::FindingQuery;
pub use ingest::{
    DEFAULT_BATCH_RECORDS, DetectionStats, FileReport, FileStatus, IngestOptions, IngestReport,
    Progress, SourceStats,
};
pub use posture::{Posture, RISK_RULE};
pub use query::{Filter, OwnerInfo, Resolve, iam_snapshots, k8s_objects};
pub use topology::Topology;

use std::path::Path;

use keyward_graph::Inventory;
use keyward_store::{SqliteStore, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("detection: {0}")]
    Detect(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The store, and the inventory and identity graph loaded from it.
pub struct Engine {
    store: Box<dyn Store>,
    inventory: Inventory,
    topology: Topology,
    /// Present once [`Engine::enable_detection`] was called.
    detector: Option<keyward_detect::Detector>,
}

impl Engine {
    /// Opens the embedded store in `data_dir` and loads the inventory.
    pub fn open(data_dir: &Path) -> Result<Self, EngineError> {
        Self::with_store(Box::new(SqliteStore::open(data_dir)?))
    }

    pub fn with_store(store: Box<dyn Store>) -> Result<Self, EngineError> {
        let inventory = Inventory::new(store.load_identities()?);
        let all: Vec<_> = inventory.iter().collect();
        let topology = Topology::build(store.as_ref(), &all)?;
        Ok(Engine {
            store,
            inventory,
            topology,
            detector: None,
        })
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The identity graph, current with everything ingested.
    pub fn graph(&self) -> &keyward_graph::Graph {
        &self.topology.graph
    }

    /// Writes outside the ingest pipeline: API tokens, the audit log.
    pub fn store_mut(&mut self) -> &mut dyn Store {
        self.store.as_mut()
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }
}

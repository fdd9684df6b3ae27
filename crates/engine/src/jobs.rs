//! Long-running orchestration jobs in the store (schema 9): a breach rotation campaign and
//! the identities it rotates, a playbook run and its steps. Each owner keeps its own typed
//! document; this module only stores, reads and lists them, so that a process killed at
//! any moment resumes from the last state written.

use keyward_model::time::Millis;
use keyward_store::{AuditEntry, JobRow};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Engine, EngineError};

/// A job as its owner sees it: the stored columns and its typed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Job<T> {
    pub id: String,
    pub kind: String,
    pub parent: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub status: String,
    pub doc: T,
}

fn parse<T: DeserializeOwned>(r: JobRow) -> Result<Job<T>, EngineError> {
    let doc = serde_json::from_str(&r.doc)
        .map_err(|e| EngineError::Respond(format!("stored job {} ({}): {e}", r.id, r.kind)))?;
    Ok(Job {
        id: r.id,
        kind: r.kind,
        parent: r.parent,
        created_at: r.created_at,
        updated_at: r.updated_at,
        status: r.status,
        doc,
    })
}

impl Engine {
    /// Writes a job's state (created on its first write); with `audit`, in the same
    /// transaction as the audit entry. Committed when this returns.
    pub fn put_job<T: Serialize>(
        &mut self,
        job: &Job<T>,
        audit: Option<AuditEntry>,
    ) -> Result<(), EngineError> {
        let doc = serde_json::to_string(&job.doc)
            .map_err(|e| EngineError::Respond(format!("job {}: {e}", job.id)))?;
        let row = JobRow {
            id: job.id.clone(),
            kind: job.kind.clone(),
            parent: job.parent.clone(),
            created_at: job.created_at,
            updated_at: job.updated_at,
            status: job.status.clone(),
            doc,
        };
        self.store.put_job(&row, audit.as_ref())?;
        Ok(())
    }

    pub fn job<T: DeserializeOwned>(&self, id: &str) -> Result<Option<Job<T>>, EngineError> {
        self.store.job(id)?.map(parse).transpose()
    }

    /// Jobs of a kind (the items of `parent` only, when given), newest first.
    pub fn jobs<T: DeserializeOwned>(
        &self,
        kind: &str,
        parent: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Job<T>>, EngineError> {
        self.store
            .jobs(kind, parent, limit)?
            .into_iter()
            .map(parse)
            .collect()
    }
}

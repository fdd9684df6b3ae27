//! The credential broker's leases in the store: each lease a job row (kind
//! [`LEASE_JOB`], its parent lease as the job's parent) written with its audit entry, many
//! in one transaction ([`Engine::record_leases`]); then, in larger groups, taken into the
//! inventory and graph as the `broker-leases` format, through the same pipeline as any
//! input (`keyward_normalize::broker`, [`Engine::project_leases`]).

use keyward_model::lease::{LeaseRecord, LeaseState};
use keyward_model::time::Millis;
use keyward_store::{AuditEntry, JobRow};

use crate::{Engine, EngineError, IngestOptions, IngestReport};

/// The jobs' kind of a lease.
pub const LEASE_JOB: &str = "broker_lease";

/// A lease as issued, renewed or revoked, and the audit entry that says who did it.
#[derive(Debug, Clone)]
pub struct LeaseWrite {
    pub lease: LeaseRecord,
    pub audit: AuditEntry,
}

impl Engine {
    /// Commits leases with their audit entries in one transaction. Nothing is returned to a
    /// workload before this.
    pub fn record_leases(&mut self, writes: &[LeaseWrite], now: Millis) -> Result<(), EngineError> {
        let mut rows = Vec::with_capacity(writes.len());
        for w in writes {
            let doc =
                serde_json::to_string(&w.lease).map_err(|e| EngineError::Lease(e.to_string()))?;
            rows.push((
                JobRow {
                    id: w.lease.lease_id.clone(),
                    kind: LEASE_JOB.to_owned(),
                    parent: w.lease.parent.clone(),
                    created_at: w.lease.issued_at,
                    updated_at: now,
                    status: w.lease.state.as_str().to_owned(),
                    doc,
                },
                w.audit.clone(),
            ));
        }
        Ok(self.store.put_jobs(&rows)?)
    }

    /// Takes committed leases into the inventory and the graph: one input of the
    /// `broker-leases` format for all of them, read from the records themselves (the
    /// input's hash is over each lease's id and what a renewal or revocation changes).
    pub fn project_leases(
        &mut self,
        leases: &[LeaseRecord],
        now: Millis,
    ) -> Result<IngestReport, EngineError> {
        let mut h = blake3::Hasher::new();
        for l in leases {
            h.update(l.lease_id.as_bytes());
            h.update(l.state.as_str().as_bytes());
            h.update(&l.expires_at.to_le_bytes());
            h.update(&l.renewals.to_le_bytes());
        }
        let hash = h.finalize().to_hex().to_string();
        let format = Some(keyward_normalize::Format::BrokerLeases);
        let opts = IngestOptions::default();
        self.ingest_hashed(("broker", &hash), format, &opts, now, |_, sink| {
            keyward_normalize::broker::normalize_leases(leases, sink);
        })
    }

    /// One lease.
    pub fn lease(&self, id: &str) -> Result<Option<LeaseRecord>, EngineError> {
        match self.store.job(id)? {
            Some(row) if row.kind == LEASE_JOB => parse(&row).map(Some),
            Some(_) | None => Ok(None),
        }
    }

    /// Leases, newest first (the leases issued under `parent` only, when given).
    pub fn leases(
        &self,
        parent: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LeaseRecord>, EngineError> {
        self.store
            .jobs(LEASE_JOB, parent, limit)?
            .iter()
            .map(parse)
            .collect()
    }

    /// Leases recorded as active (some may be past their expiry), oldest first.
    pub fn active_leases(&self, limit: usize) -> Result<Vec<LeaseRecord>, EngineError> {
        self.store
            .jobs_in_status(LEASE_JOB, LeaseState::Active.as_str(), limit)?
            .iter()
            .map(parse)
            .collect()
    }

    /// A lease and every lease issued under it, at any depth, parents first.
    pub fn lease_tree(&self, id: &str) -> Result<Vec<LeaseRecord>, EngineError> {
        let Some(root) = self.lease(id)? else {
            return Ok(Vec::new());
        };
        let mut out = vec![root];
        let mut i = 0;
        while let Some(l) = out.get(i) {
            let children = self.leases(Some(&l.lease_id.clone()), usize::MAX)?;
            out.extend(children);
            i += 1;
        }
        Ok(out)
    }
}

fn parse(row: &JobRow) -> Result<LeaseRecord, EngineError> {
    serde_json::from_str(&row.doc).map_err(|e| EngineError::Lease(format!("lease {}: {e}", row.id)))
}

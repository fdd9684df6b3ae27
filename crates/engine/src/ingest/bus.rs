//! The pipeline split in two across the message bus (`keyward-bus`, NATS JetStream).
//!
//! The **gateway** half (`keyward serve --bus`, `keyward ingest --bus`: an engine given a
//! [`Forward`] with [`Engine::set_forward`]) reads inputs as [`Engine::ingest`] does — file
//! rows, unchanged files skipped, dead letters with file and line — and hands each
//! accepted record to the publisher instead of taking it in; the input's file row and dead letters are committed only once the publisher has
//! flushed, so a committed file row means its records are on the bus.
//!
//! The **worker** half (`keyward worker`) takes what a partition delivered back in with
//! [`Engine::ingest_bus`]: the same sink as every other input (events deduplicated by their
//! key, so a record delivered twice is stored and detected once), and the partition's
//! checkpoint in the same store transaction.

use keyward_model::time::Millis;
use keyward_normalize::wire::Origin;
use keyward_normalize::{Format, Output, Sink};

use super::sink::{EngineSink, Parts};
use super::{IngestReport, Run, write_changes};
use crate::{ClusterOrigin, Engine, EngineError};

/// Where a gateway's accepted records go instead of into the pipeline.
pub trait Forward {
    /// Takes one accepted record of the input `origin` names.
    fn send(&mut self, origin: &Origin<'_>, out: Output<'_>) -> Result<(), String>;
    /// Returns once everything sent is durably accepted (published and acknowledged).
    fn flush(&mut self) -> Result<(), String>;
}

/// A run of records of one input, as a worker took them from the bus.
#[derive(Debug)]
pub struct BusInput {
    /// Names the file row the records are stored under (the partition and the positions).
    pub label: String,
    pub format: Format,
    /// The cluster the gateway filed a Kubernetes input under.
    pub cluster: Option<String>,
    pub outputs: Vec<Output<'static>>,
}

/// Flushes `forward`, if there is one.
pub(super) fn flush(forward: Option<&mut (dyn Forward + 'static)>) -> Result<(), EngineError> {
    match forward {
        Some(f) => f.flush().map_err(EngineError::Forward),
        None => Ok(()),
    }
}

impl Engine {
    /// Takes in records a worker took from the bus, in one store batch that also records
    /// each partition's new position (`checkpoints`: name and position), so a replacement
    /// worker resumes exactly after what is committed. Events already stored (a record
    /// delivered again) are neither stored nor detected twice. `idle`: the partitions are
    /// drained, so the hours that ended before the newest event are scored, as at the end
    /// of a `keyward ingest`.
    pub fn ingest_bus(
        &mut self,
        inputs: Vec<BusInput>,
        checkpoints: &[(String, i64)],
        idle: bool,
        now: Millis,
    ) -> Result<IngestReport, EngineError> {
        self.keeping_tables(|e| {
            let report = e.ingest_taken(inputs, checkpoints, idle, now)?;
            // Retirement is judged again when hours close: once the stream is taken in.
            if idle { e.rejudged(report) } else { Ok(report) }
        })
    }

    fn ingest_taken(
        &mut self,
        inputs: Vec<BusInput>,
        checkpoints: &[(String, i64)],
        idle: bool,
        now: Millis,
    ) -> Result<IngestReport, EngineError> {
        let mut run = Run::judging(self.store.as_ref())?;
        let mut batch = self.store.begin()?;
        self.tables.begin_split(&mut *batch)?;
        let mut progress = ();
        for input in inputs {
            let format = input.format;
            if let Some(cluster) = input.cluster.as_deref().filter(|c| !c.is_empty())
                && matches!(format, Format::K8sAudit | Format::K8sSnapshot)
            {
                super::note_cluster(&mut run.state.report, cluster, ClusterOrigin::Path);
            }
            let hash = blake3::hash(input.label.as_bytes()).to_hex().to_string();
            let file_id = batch.add_file(&input.label, &hash, format.as_str(), now)?;
            let parts = Parts {
                batch: &mut *batch,
                inventory: &mut self.inventory,
                topology: &mut self.topology,
                detector: self.detector.as_mut(),
                forward: None,
            };
            let shown = (file_id, input.label.as_str(), format.as_str());
            let mut sink = EngineSink::new(parts, &mut run.state, shown, &mut progress);
            for out in input.outputs {
                sink.accept(out);
            }
            if let Some(e) = sink.error.take() {
                return Err(e);
            }
            let (records, accepted, events_new) = (sink.records, sink.accepted, sink.events_new);
            drop(sink);
            batch.finish_file(file_id, records, accepted, 0)?;
            let st = run
                .state
                .report
                .per_source
                .entry(format.as_str())
                .or_default();
            st.records += records;
            st.accepted += accepted;
            st.events_new += events_new;
        }
        self.inventory.link();
        write_changes(
            &mut *batch,
            &mut self.inventory,
            &mut self.topology,
            &mut self.tables,
        )?;
        if let Some(det) = self.detector.as_mut() {
            if idle {
                det.close_hours();
            }
            let f = crate::detection::write(&mut *batch, det, &self.topology.graph)?;
            run.state.report.findings.extend(f);
        }
        for (name, position) in checkpoints {
            batch.put_checkpoint(name, *position, now)?;
        }
        batch.commit()?;
        let pending = std::mem::take(&mut run.state.pending);
        self.topology.apply(self.store.as_ref(), pending)?;
        self.close_split()?;
        let mut report = run.state.report;
        self.join_after(&super::IngestOptions::default(), &mut report)?;
        Ok(report)
    }

    /// Where the bus consumer `name` stopped ([`keyward_store::Store::checkpoint`]).
    pub fn checkpoint(&self, name: &str) -> Result<Option<i64>, EngineError> {
        Ok(self.store.checkpoint(name)?)
    }

    /// The exclusive right to `name` (a bus partition, the playbook runs), across processes
    /// and machines sharing the store (`None` while another holds it); released when
    /// dropped.
    pub fn try_claim(&self, name: &str) -> Result<Option<crate::WriteLock>, EngineError> {
        Ok(self
            .store
            .try_claim(name)?
            .map(|lock| crate::WriteLock { _lock: lock }))
    }
}

//! Ingestion: inputs in, one store batch per run of inputs.
//!
//! Every input — a file, an HTTP body, a batch of lines from `keyward watch`, a webhook
//! delivery — reaches the store through one [`sink::EngineSink`]; files and in-memory
//! inputs are read by one reader ([`read_records`]): documents go to
//! [`keyward_normalize::normalize_document`], JSON lines to
//! [`keyward_normalize::normalize_line`].

mod bus;
mod file;
mod sink;

pub use bus::{BusInput, Forward};
pub use keyward_normalize::wire::Origin as ForwardOrigin;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyward_model::{Diagnostic, time::Millis};
use keyward_normalize::{Context, Format, Layout, Sink};
use keyward_sources::Input;
use keyward_store::Batch;
use rustc_hash::FxHashMap;

use crate::{Engine, EngineError};
use sink::{EngineSink, Parts};

#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Force a format instead of detecting it.
    pub format: Option<Format>,
    /// Kubernetes cluster name; otherwise taken from the path layout, else `default`.
    pub cluster: Option<String>,
    /// Re-read files whose exact bytes were ingested before.
    pub force: bool,
    /// People-directory statuses mapped beyond (or instead of) the default vocabulary
    /// ([`keyward_normalize::people::DEFAULT_STATUSES`]).
    pub person_statuses: BTreeMap<String, keyward_normalize::people::PersonStatus>,
    /// Commit after this many records (default [`DEFAULT_BATCH_RECORDS`]); a crash loses
    /// at most the uncommitted batch, whose files the next run reads again.
    pub batch_records: Option<u64>,
    /// The paths were found by walking a tree (a poller's new files), not named by a
    /// person: a file in no format Keyward reads is skipped, as in a directory.
    pub walked: bool,
}

pub const DEFAULT_BATCH_RECORDS: u64 = 500_000;

/// Progress callbacks (the CLI draws a bar; tests and the server ignore them).
pub trait Progress {
    fn file_started(&mut self, _path: &Path) {}
    fn records(&mut self, _n: u64) {}
    fn file_finished(&mut self) {}
}

impl Progress for () {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Ingested,
    /// The same bytes were ingested before.
    Unchanged,
    /// Not a format Keyward reads; only an error when the file was named explicitly.
    Unrecognized,
    /// Could not be read at all (a dead letter says why); the other files were ingested.
    Unreadable,
    /// Damaged part-way (a truncated or corrupt gzip, a read error): the records before the
    /// damage were ingested, and a dead letter says where it stopped.
    Damaged,
}

#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: String,
    pub format: Option<Format>,
    pub status: FileStatus,
    pub records: u64,
    pub accepted: u64,
    pub rejected: u64,
}

#[derive(Debug, Clone, Default)]
pub struct SourceStats {
    pub files: u64,
    pub records: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub events_new: u64,
    pub identities_new: u64,
    pub identities_updated: u64,
}

#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    pub files: Vec<FileReport>,
    pub per_source: BTreeMap<&'static str, SourceStats>,
    /// Rejections by source and reason class ([`keyward_model::Reason::class`]).
    pub reasons: BTreeMap<String, u64>,
    /// The first rejected records, `path:line` and why.
    pub rejections: Vec<(String, Diagnostic)>,
    pub rejected: u64,
    /// Records accepted with something odd about them (a people directory's unknown
    /// status): not rejections, and not counted among them.
    pub warned: u64,
    /// The first of those, `path:line` and what.
    pub warnings: Vec<(String, Diagnostic)>,
    pub identities_new: u64,
    pub identities_updated: u64,
    /// Explicitly named inputs that could not be read as any format.
    pub unrecognized_explicit: u64,
    /// With detection enabled: what it ran on.
    pub detection: Option<DetectionStats>,
    /// Findings opened or extended by this ingest.
    pub findings: Vec<keyward_detect::Finding>,
    /// The clusters Kubernetes inputs were filed under, and how each was named (a name
    /// guessed for one input and read for another counts as guessed).
    pub clusters: BTreeMap<String, crate::ClusterOrigin>,
    /// Clusters found to be one by the evidence they share, and merged.
    pub clusters_merged: Vec<crate::ClusterJoin>,
    /// Clusters that share evidence but both have deliberate names: not merged
    /// (`keyward clusters merge`).
    pub clusters_shared: Vec<crate::ClusterJoin>,
}

#[derive(Debug, Clone, Default)]
pub struct DetectionStats {
    /// Events the rules ran on (new to the store).
    pub events: u64,
    /// Of those, how many a rule needed the raw record parsed for.
    pub parsed: u64,
    /// Identities with a behavioural baseline.
    pub baselines: usize,
}

const MAX_LISTED_REJECTIONS: usize = 50;

/// Stores a dead letter and counts it in the report under `class` (and among the first
/// rejections listed).
fn dead_letter(
    batch: &mut dyn Batch,
    report: &mut IngestReport,
    file_id: i64,
    path: &str,
    class: String,
    diag: Diagnostic,
) -> Result<(), EngineError> {
    batch.put_dead_letter(file_id, path, &diag)?;
    *report.reasons.entry(class).or_default() += 1;
    if report.rejections.len() < MAX_LISTED_REJECTIONS {
        report.rejections.push((path.to_owned(), diag));
    }
    Ok(())
}

impl Engine {
    /// Ingests files and directories. `now` stamps the file records. With a bus
    /// ([`Engine::set_forward`]), accepted records are published instead (see
    /// `ingest/bus.rs`).
    pub fn ingest(
        &mut self,
        paths: &[PathBuf],
        opts: &IngestOptions,
        progress: &mut dyn Progress,
        now: Millis,
    ) -> Result<IngestReport, EngineError> {
        self.keeping_tables(|e| {
            let report = e.ingest_files(paths, opts, progress, now)?;
            e.rejudged(report)
        })
    }

    fn ingest_files(
        &mut self,
        paths: &[PathBuf],
        opts: &IngestOptions,
        progress: &mut dyn Progress,
        now: Millis,
    ) -> Result<IngestReport, EngineError> {
        let mut run = Run {
            aliases: crate::clusters::aliases(self.store.as_ref())?,
            ..Run::judging(self.store.as_ref())?
        };
        run.ctx.person_statuses.clone_from(&opts.person_statuses);
        let limit = opts.batch_records.unwrap_or(DEFAULT_BATCH_RECORDS).max(1);
        let inventory = &mut self.inventory;
        let topology = &mut self.topology;
        let tables = &mut self.tables;
        let mut detector = self.detector.as_mut();
        let mut forward = self.forward.as_deref_mut();
        let mut batch = self.store.begin()?;
        tables.begin_split(&mut *batch)?;
        let mut pending = 0u64;
        for given in paths {
            let explicit = !given.is_dir() && !opts.walked;
            let files =
                keyward_sources::discover(std::slice::from_ref(given)).map_err(|source| {
                    EngineError::Io {
                        path: given.display().to_string(),
                        source,
                    }
                })?;
            for path in files {
                progress.file_started(&path);
                let parts = Parts {
                    batch: &mut *batch,
                    inventory,
                    topology,
                    detector: detector.as_deref_mut(),
                    forward: forward.as_deref_mut(),
                };
                let file = file::File {
                    path: &path,
                    explicit,
                };
                let fr = file::ingest(parts, file, opts, progress, now, &mut run)?;
                pending += fr.records;
                progress.file_finished();
                run.state.report.files.push(fr);
                if pending >= limit {
                    bus::flush(forward.as_deref_mut())?;
                    write_changes(&mut *batch, inventory, topology, tables)?;
                    if let Some(det) = detector.as_deref_mut() {
                        let f = crate::detection::write(&mut *batch, det, &topology.graph)?;
                        run.state.report.findings.extend(f);
                    }
                    batch.commit()?;
                    batch = self.store.begin()?;
                    pending = 0;
                }
            }
        }
        // Cross-source links, then everything not yet written.
        inventory.link();
        write_changes(&mut *batch, inventory, topology, tables)?;
        if let Some(det) = detector {
            // Hours that ended before the latest event are scored now.
            det.close_hours();
            let f = crate::detection::write(&mut *batch, det, &topology.graph)?;
            run.state.report.findings.extend(f);
            run.state.report.detection = Some(DetectionStats {
                events: det.events,
                parsed: det.parsed,
                baselines: det.baseline_count(),
            });
        }
        let forwarded = forward.is_some();
        bus::flush(forward)?;
        batch.commit()?;
        // Objects and accounts re-derive their graph edges from what is now committed.
        let pending = std::mem::take(&mut run.state.pending);
        self.topology.apply(self.store.as_ref(), pending)?;
        self.close_split()?;
        let mut report = run.state.report;
        if !forwarded {
            self.join_after(opts, &mut report)?;
        }
        // Identities re-keyed by a join count once, under their new id (twins: new only
        // when both were).
        for j in &report.clusters_merged {
            let (from, into) = (format!("k8s:{}/", j.from), format!("k8s:{}/", j.into));
            let moved: Vec<String> = run
                .state
                .touched
                .keys()
                .filter(|k| k.starts_with(&from))
                .cloned()
                .collect();
            for old in moved {
                let (Some(entry), Some(rest)) =
                    (run.state.touched.remove(&old), old.strip_prefix(&from))
                else {
                    continue;
                };
                let slot = run.state.touched.entry([into.as_str(), rest].concat());
                slot.and_modify(|e| e.0 &= entry.0).or_insert(entry);
            }
        }
        for (new, source) in run.state.touched.values() {
            let st = report.per_source.entry(source).or_default();
            if *new {
                st.identities_new += 1;
                report.identities_new += 1;
            } else {
                st.identities_updated += 1;
                report.identities_updated += 1;
            }
        }
        Ok(report)
    }

    /// Ingests events handed over in memory — an HTTP body, a batch of lines from
    /// `keyward watch` — as one input named `label`, in one store batch. `layout` is what
    /// [`keyward_normalize::envelope::open`] found. Only event formats (CloudTrail,
    /// Kubernetes audit, GitHub deliveries) are read: the format is `opts.format`, else the
    /// document's, else that of the first line that tells (one unrecognised line, a
    /// shipper's banner, must not discard the good lines after it; it is rejected alone).
    pub fn ingest_body(
        &mut self,
        label: &str,
        body: Vec<u8>,
        layout: Layout,
        opts: &IngestOptions,
        now: Millis,
    ) -> Result<IngestReport, EngineError> {
        self.body(label, body, layout, opts, now)
    }

    fn body(
        &mut self,
        label: &str,
        body: Vec<u8>,
        layout: Layout,
        opts: &IngestOptions,
        now: Millis,
    ) -> Result<IngestReport, EngineError> {
        let format = opts
            .format
            .or_else(|| match layout {
                Layout::Document => keyward_normalize::sniff::format_of_document(&body, label),
                Layout::Lines => body
                    .split(|&b| b == b'\n')
                    .map(<[u8]>::trim_ascii)
                    .filter(|l| !l.is_empty())
                    .find_map(keyward_normalize::sniff::format_of_object),
            })
            .filter(|f| f.line_oriented());
        let hash = blake3::hash(&body).to_hex().to_string();
        let mut input = Input::Memory(body);
        let read = |format, ctx: &mut Context, sink: &mut EngineSink| {
            read_records(format, layout, &mut input, ctx, sink);
        };
        self.ingest_memory((label, &hash), format, opts, now, read)
    }

    /// Ingests what `read` gives the sink, as one input named `label` of `format` (`None`:
    /// not an event format; one dead letter says so), in one store batch. `bytes` are the
    /// input's, for its content hash: a webhook delivery built from a request.
    pub fn ingest_records(
        &mut self,
        label: &str,
        bytes: &[u8],
        format: Option<Format>,
        opts: &IngestOptions,
        now: Millis,
        read: impl FnOnce(&mut Context, &mut dyn Sink),
    ) -> Result<IngestReport, EngineError> {
        let hash = blake3::hash(bytes).to_hex().to_string();
        self.ingest_hashed((label, &hash), format, opts, now, read)
    }

    /// [`Engine::ingest_records`] with the input's content hash made by the caller (records
    /// built in memory, never bytes).
    pub(crate) fn ingest_hashed(
        &mut self,
        (label, hash): (&str, &str),
        format: Option<Format>,
        opts: &IngestOptions,
        now: Millis,
        read: impl FnOnce(&mut Context, &mut dyn Sink),
    ) -> Result<IngestReport, EngineError> {
        let read = |_, ctx: &mut Context, sink: &mut EngineSink| read(ctx, sink);
        self.ingest_memory((label, hash), format, opts, now, read)
    }

    /// The entry of every input held in memory: one input, one store batch.
    fn ingest_memory(
        &mut self,
        (label, hash): (&str, &str),
        format: Option<Format>,
        opts: &IngestOptions,
        now: Millis,
        read: impl FnOnce(Format, &mut Context, &mut EngineSink),
    ) -> Result<IngestReport, EngineError> {
        self.keeping_tables(|e| {
            let report = e.ingest_one(label, hash, format, opts, now, read)?;
            e.rejudged(report)
        })
    }

    fn ingest_one(
        &mut self,
        label: &str,
        hash: &str,
        format: Option<Format>,
        opts: &IngestOptions,
        now: Millis,
        read: impl FnOnce(Format, &mut Context, &mut EngineSink),
    ) -> Result<IngestReport, EngineError> {
        let mut forward = self.forward.as_deref_mut();
        let mut run = Run::judging(self.store.as_ref())?;
        let aliases = crate::clusters::aliases(self.store.as_ref())?;
        let mut batch = self.store.begin()?;
        let Some(format) = format else {
            let file_id = batch.add_file(label, hash, "unknown", now)?;
            let diag = Diagnostic {
                line: 1,
                record: None,
                reason: "not CloudTrail or Kubernetes audit JSON lines".into(),
            };
            batch.put_dead_letter(file_id, label, &diag)?;
            batch.finish_file(file_id, 1, 0, 1)?;
            batch.commit()?;
            run.state.report.rejected = 1;
            run.state.report.rejections.push((label.to_owned(), diag));
            return Ok(run.state.report);
        };
        let (cluster, origin) = crate::clusters::name_for(None, opts.cluster.as_deref(), &aliases);
        if matches!(format, Format::K8sAudit | Format::K8sSnapshot) {
            note_cluster(&mut run.state.report, &cluster, origin);
        }
        run.ctx.cluster = cluster;
        self.tables.begin_split(&mut *batch)?;
        let file_id = batch.add_file(label, hash, format.as_str(), now)?;
        let mut progress = ();
        let parts = Parts {
            batch: &mut *batch,
            inventory: &mut self.inventory,
            topology: &mut self.topology,
            detector: self.detector.as_mut(),
            forward: forward.as_deref_mut(),
        };
        let input = (file_id, label, format.as_str());
        let mut sink = EngineSink::new(parts, &mut run.state, input, &mut progress);
        sink.cluster.clone_from(&run.ctx.cluster);
        read(format, &mut run.ctx, &mut sink);
        if let Some(e) = sink.error.take() {
            return Err(e);
        }
        let (records, accepted, rejected) = (sink.records, sink.accepted, sink.rejected);
        batch.finish_file(file_id, records, accepted, rejected)?;
        self.inventory.link();
        write_changes(
            &mut *batch,
            &mut self.inventory,
            &mut self.topology,
            &mut self.tables,
        )?;
        if let Some(det) = self.detector.as_mut() {
            let f = crate::detection::write(&mut *batch, det, &self.topology.graph)?;
            run.state.report.findings.extend(f);
        }
        let forwarded = forward.is_some();
        bus::flush(forward)?;
        batch.commit()?;
        let pending = std::mem::take(&mut run.state.pending);
        self.topology.apply(self.store.as_ref(), pending)?;
        self.close_split()?;
        let report = &mut run.state.report;
        let st = report.per_source.entry(format.as_str()).or_default();
        st.records += records;
        st.accepted += accepted;
        st.rejected += rejected;
        report.rejected += rejected;
        let mut report = run.state.report;
        if !forwarded {
            self.join_after(opts, &mut report)?;
        }
        Ok(report)
    }

    /// After an ingest that filed Kubernetes inputs: clusters joined on the evidence they
    /// share (see `clusters.rs`), into the report.
    fn join_after(
        &mut self,
        opts: &IngestOptions,
        report: &mut IngestReport,
    ) -> Result<(), EngineError> {
        if report.clusters.is_empty() {
            return Ok(());
        }
        let given = opts.cluster.iter().cloned().collect();
        let (merged, shared) = self.join_clusters(&given)?;
        report.clusters_merged = merged;
        report.clusters_shared = shared;
        Ok(())
    }
}

/// Records the cluster a Kubernetes input was filed under; a guess anywhere is reported.
fn note_cluster(report: &mut IngestReport, cluster: &str, origin: crate::ClusterOrigin) {
    let o = report.clusters.entry(cluster.to_owned()).or_insert(origin);
    *o = (*o).min(origin);
}

/// Reads one input's records into the sink: a document whole, through its format's
/// reader; JSON lines one at a time, from memory or streamed (a line longer than
/// [`keyward_sources::MAX_LINE`] is one rejected record). Stops at the first store error.
/// Returns the lines read whole for JSON lines (`None` for a document), and the read error
/// that cut a stream short, if one did.
fn read_records(
    format: Format,
    layout: Layout,
    input: &mut Input,
    ctx: &mut Context,
    sink: &mut EngineSink,
) -> (Option<u64>, Option<std::io::Error>) {
    if layout == Layout::Document {
        if let Input::Memory(doc) = input {
            keyward_normalize::normalize_document(format, doc, ctx, sink);
        }
        return (None, None);
    }
    let mut line_no = 0u64;
    // `whole`: false for a line cut at `MAX_LINE` (one rejected record).
    let mut each = |line: &[u8], whole: bool, sink: &mut EngineSink| {
        line_no += 1;
        let trimmed = line.trim_ascii();
        if !whole {
            sink.reject(Diagnostic {
                line: line_no,
                record: None,
                reason: format!("a line longer than {} MiB", keyward_sources::MAX_LINE >> 20)
                    .into(),
            });
        } else if !trimmed.is_empty() {
            keyward_normalize::normalize_line(format, trimmed, line_no, ctx, sink);
        }
        sink.error.is_none()
    };
    let mut damage = None;
    match input {
        Input::Memory(m) => {
            for line in m.split(|&b| b == b'\n') {
                if !each(line, true, sink) {
                    break;
                }
            }
        }
        Input::Stream(reader) => {
            let mut line = Vec::with_capacity(4096);
            loop {
                line.clear();
                let read = keyward_sources::read_line_bounded(
                    &mut **reader,
                    &mut line,
                    keyward_sources::MAX_LINE,
                );
                match read {
                    Ok(keyward_sources::Line::End) => break,
                    Ok(l) => {
                        if !each(&line, l == keyward_sources::Line::Read, sink) {
                            break;
                        }
                    }
                    // What was read of a line the damage cut is not a record.
                    Err(e) => {
                        damage = Some(e);
                        break;
                    }
                }
            }
        }
        Input::Raw(_) => {}
    }
    (Some(line_no), damage)
}

/// Writes identities changed since the last call, re-deriving their graph edges, and the
/// observed edges that changed.
fn write_changes(
    batch: &mut dyn Batch,
    inventory: &mut keyward_graph::Inventory,
    topology: &mut crate::Topology,
    tables: &mut crate::tables::Tables,
) -> Result<(), EngineError> {
    let mut dirty = inventory.take_dirty();
    // In key order: each b-tree page of the identities table is visited once per batch
    // instead of at random (a fifth fewer page splits and cache misses on a fresh store).
    dirty.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    // Stores first, then the graph: each part's code runs over all of them in a row.
    batch.put_identities(&dirty)?;
    for i in &dirty {
        topology.identity(i);
    }
    for e in topology.graph.take_observed() {
        batch.put_observed_edge(&e)?;
    }
    // The query tables: the nodes and origins those changed, the log spans they widen.
    tables.write(batch, &mut topology.graph, &dirty)?;
    Ok(())
}

/// What one `ingest` call accumulates across inputs.
#[derive(Default)]
struct Run {
    /// A decompression buffer kept from file to file (see `decompress_into`).
    spare: Vec<u8>,
    ctx: Context,
    state: RunState,
    /// Cluster names `keyward clusters merge` made aliases of others.
    aliases: BTreeMap<String, String>,
}

/// The part of a [`Run`] its inputs' sinks write to.
#[derive(Default)]
pub(crate) struct RunState {
    pending: crate::topology::Pending,
    report: IngestReport,
    touched: FxHashMap<String, (bool, &'static str)>,
    resolved: FxHashMap<usize, Resolved>,
    /// The retired identities this run's events are judged against (`retirement.rs`).
    retired: BTreeMap<String, String>,
    /// Retirement by what is known this moment, for the checks that grade by it.
    retired_now: std::cell::RefCell<FxHashMap<String, Option<String>>>,
}

impl Run {
    /// A run judging its events by the retirement the store holds.
    fn judging(store: &dyn keyward_store::Store) -> Result<Run, EngineError> {
        let mut run = Run::default();
        run.state.retired = crate::retirement::Retired::load(store)?;
        Ok(run)
    }
}

/// A shared [`keyward_normalize::ActiveIdentities`] resolved to inventory slots, keyed by the address
/// of its `Arc` (held here, so the address is not reused while cached).
struct Resolved {
    _active: Arc<keyward_normalize::ActiveIdentities>,
    ids: Vec<keyward_graph::Slot>,
    /// Owner slot and index into the record's `credentials`.
    credentials: Vec<(keyward_graph::Slot, usize)>,
}

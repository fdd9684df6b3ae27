//! Ingestion: one input at a time, one store batch per input.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyward_graph::Applied;
use keyward_model::{Diagnostic, SourceKind, time::Millis};
use keyward_normalize::{Context, Format, Layout, Output, Sink};
use keyward_sources::Input;
use keyward_store::Batch;
use rustc_hash::FxHashMap;

use crate::{Engine, EngineError};

#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Force a format instead of detecting it.
    pub format: Option<Format>,
    /// Kubernetes cluster name; otherwise taken from the path layout, else `default`.
    pub cluster: Option<String>,
    /// Re-read files whose exact bytes were ingested before.
    pub force: bool,
    /// Commit after this many records (default [`DEFAULT_BATCH_RECORDS`]); a crash loses
    /// at most the uncommitted batch, whose files the next run reads again.
    pub batch_records: Option<u64>,
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
    /// Rejections by reason class (values in backticks replaced by `…`).
    pub reasons: BTreeMap<String, u64>,
    /// The first rejected records, `path:line` and why.
    pub rejections: Vec<(String, Diagnostic)>,
    pub rejected: u64,
    pub identities_new: u64,
    pub identities_updated: u64,
    /// Explicitly named inputs that could not be read as any format.
    pub unrecognized_explicit: u64,
    /// With detection enabled: what it ran on.
    pub detection: Option<DetectionStats>,
    /// Findings opened or extended by this ingest.
    pub findings: Vec<keyward_detect::Finding>,
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

/// Groups reasons: the field name in the first backticks stays, values are elided.
pub fn reason_class(reason: &str) -> String {
    let head = reason.split(": ").next().unwrap_or(reason);
    let mut out = String::with_capacity(head.len());
    for (i, part) in head.split('`').enumerate() {
        if i % 2 == 1 && i > 1 {
            out.push_str("`…`");
        } else if i % 2 == 1 {
            out.push('`');
            out.push_str(part);
            out.push('`');
        } else {
            out.push_str(part);
        }
    }
    out
}

/// The sink that joins normalizer output to the store batch and the inventory.
struct EngineSink<'a, 'b> {
    batch: &'a mut (dyn Batch + 'b),
    inventory: &'a mut keyward_graph::Inventory,
    topology: &'a mut crate::Topology,
    pending: &'a mut crate::topology::Pending,
    file_id: i64,
    path: &'a str,
    source: &'static str,
    records: u64,
    accepted: u64,
    rejected: u64,
    events_new: u64,
    /// Identities new or changed in this run, with whether they were new, and which source
    /// first touched them.
    touched: &'a mut FxHashMap<String, (bool, &'static str)>,
    resolved: &'a mut FxHashMap<usize, Resolved>,
    report: &'a mut IngestReport,
    error: Option<EngineError>,
    progress: &'a mut dyn Progress,
    detector: Option<&'a mut keyward_detect::Detector>,
    retired: &'a std::cell::RefCell<FxHashMap<String, Option<String>>>,
}

impl Sink for EngineSink<'_, '_> {
    fn accept(&mut self, out: Output) {
        self.accept_prepared(out, None);
    }

    /// With detection on, records are taken in stages, each over a run of them, so that
    /// each stage's code stays in cache: rule matches (a function of each record alone),
    /// then the store, then the inventory, then the stateful checks, in record order
    /// within each stage. That is what `accept` one by one does for records that bring no
    /// identity facts or objects (the checks read the inventory's tags and the graph,
    /// which only those change; the store and the inventory read nothing of detection);
    /// a record that does, or a rejection, ends the run and is taken on its own.
    fn accept_ahead(&mut self, ahead: &mut Vec<keyward_normalize::Ahead<'_>>) {
        let Some(det) = self.detector.as_deref() else {
            // Nothing to stage: one by one, as the default does.
            for a in ahead.drain(..) {
                a.hand_to(self);
            }
            return;
        };
        if self.error.is_some() {
            ahead.clear();
            return;
        }
        let prepared: Vec<Option<keyward_detect::detector::Prepared>> = ahead
            .iter()
            .map(|a| match &a.result {
                Ok(Some(out)) => out
                    .event
                    .as_ref()
                    .map(|ev| det.prepare(ev, out.raw.as_deref().unwrap_or_default(), &out.known)),
                _ => None,
            })
            .collect();
        let mut run = Vec::with_capacity(ahead.len());
        for (a, p) in ahead.drain(..).zip(prepared) {
            match a.result {
                Ok(Some(out)) if out.observations.is_empty() && out.objects.is_empty() => {
                    run.push((out, p));
                }
                Ok(Some(out)) => {
                    self.staged(std::mem::take(&mut run));
                    self.accept_prepared(out, p);
                }
                Ok(None) => {}
                Err(reason) => {
                    self.staged(std::mem::take(&mut run));
                    self.reject_one(Diagnostic {
                        line: a.line,
                        record: a.record,
                        reason,
                    });
                }
            }
        }
        self.staged(run);
    }

    fn reject(&mut self, diag: Diagnostic) {
        self.reject_one(diag);
    }
}

impl EngineSink<'_, '_> {
    /// A run of records that bring no identity facts or objects, with their rule matches
    /// when computed ahead, in stages (see [`Sink::accept_ahead`]).
    fn staged(&mut self, run: Vec<(Output, Option<keyward_detect::detector::Prepared>)>) {
        if run.is_empty() {
            return;
        }
        // Whether each record's event is new to the store; a store error ends the run there.
        let mut new = Vec::with_capacity(run.len());
        for (out, _) in &run {
            match self.store_event(out.event.as_ref()) {
                Some(n) => new.push(n),
                None => break,
            }
        }
        for ((out, _), &count) in run.iter().zip(&new) {
            if let Some(t) = &out.touch {
                self.touch(t, out.event.as_ref(), count);
            }
        }
        for ((out, p), &count) in run.into_iter().zip(&new) {
            // Only events new to the store are detected on: a re-read adds nothing.
            if count {
                self.detect(&out, p);
            }
        }
    }

    /// Counts an accepted record and stores its event. Whether the event is new to the
    /// store (`true` without one); `None` once the store failed.
    fn store_event(&mut self, event: Option<&keyward_model::Event>) -> Option<bool> {
        if self.error.is_some() {
            return None;
        }
        self.records += 1;
        self.accepted += 1;
        if self.records.is_multiple_of(4096) {
            self.progress.records(4096);
        }
        let Some(ev) = event else {
            return Some(true);
        };
        let key = keyward_normalize::event_key(ev.source, &ev.native_id);
        match self.batch.put_event(key, ev, self.file_id) {
            Ok(new) => {
                self.events_new += u64::from(new);
                Some(new)
            }
            Err(e) => {
                self.error = Some(e.into());
                None
            }
        }
    }

    /// A record whose caller was applied in full earlier in this run: only times move.
    fn touch(
        &mut self,
        t: &Arc<keyward_normalize::Touch>,
        event: Option<&keyward_model::Event>,
        count: bool,
    ) {
        let time = event.map_or(0, |e| e.time);
        let key = Arc::as_ptr(t) as usize;
        if !self.resolved.contains_key(&key) {
            if self.resolved.len() >= keyward_normalize::Memo::CAPACITY {
                self.resolved.clear();
            }
            let ids = t
                .ids
                .iter()
                .filter_map(|id| self.inventory.slot(id))
                .collect();
            let credentials = t
                .credentials
                .iter()
                .enumerate()
                .filter_map(|(n, (owner, _, _))| self.inventory.slot(owner).map(|s| (s, n)))
                .collect();
            self.resolved.insert(
                key,
                Resolved {
                    _touch: Arc::clone(t),
                    ids,
                    credentials,
                },
            );
        }
        if let Some(r) = self.resolved.get(&key) {
            for &slot in &r.ids {
                self.inventory.touch_slot(slot, time, count);
            }
            for &(slot, n) in &r.credentials {
                if let Some((_, cred, place)) = t.credentials.get(n) {
                    // Where an access key was used: only computed for the events that need it.
                    let (rg, sv) = match (event, *place) {
                        (Some(e), true) => (
                            e.region.as_deref(),
                            e.action
                                .split_once(':')
                                .map(|(s, _)| keyward_model::ids::service_name(s)),
                        ),
                        _ => (None, None),
                    };
                    self.inventory.touch_credential(slot, cred, time, rg, sv);
                }
            }
        }
    }

    /// Runs detection on a record's event, new to the store.
    fn detect(&mut self, out: &Output, prepared: Option<keyward_detect::detector::Prepared>) {
        if let Some(ev) = &out.event
            && let Some(det) = self.detector.as_deref_mut()
        {
            let lookup = crate::detection::EngineLookup {
                inventory: self.inventory,
                graph: &self.topology.graph,
                cache: self.retired,
            };
            det.on_event_prepared(
                ev,
                out.raw.as_deref().unwrap_or_default(),
                &out.known,
                &lookup,
                prepared,
            );
        }
    }

    /// Accepts one record; `prepared`: its rule matches, when computed ahead.
    fn accept_prepared(
        &mut self,
        out: Output,
        prepared: Option<keyward_detect::detector::Prepared>,
    ) {
        let Some(count) = self.store_event(out.event.as_ref()) else {
            return;
        };
        // Only events new to the store are detected on: a re-read adds nothing.
        if count {
            self.detect(&out, prepared);
        }
        if let Some(t) = &out.touch {
            self.touch(t, out.event.as_ref(), count);
        }
        let event = out.event;
        for obs in out.observations {
            // Only events new to the store add evidence: a re-read event must not count twice
            // (the edge keeps only its latest event ids, so it could not tell).
            if count && (obs.facts.assumed_by.is_some() || obs.facts.created_by.is_some()) {
                self.topology
                    .observe(&obs, event.as_ref().map(|e| e.native_id.as_ref()));
            }
            let probe = (!self.touched.contains_key(obs.id.as_str())).then(|| obs.id.clone());
            let applied = self.inventory.apply(obs, count);
            if let Some(id) = probe
                && applied != Applied::Unchanged
            {
                self.touched
                    .insert(id, (applied == Applied::New, self.source));
            }
        }
        for obj in &out.objects {
            if let Err(e) = self.batch.put_object(obj) {
                self.error = Some(e.into());
                return;
            }
            self.pending.object(obj);
        }
    }

    fn reject_one(&mut self, diag: Diagnostic) {
        if self.error.is_some() {
            return;
        }
        self.records += 1;
        self.rejected += 1;
        if let Err(e) = self.batch.put_dead_letter(self.file_id, self.path, &diag) {
            self.error = Some(e.into());
            return;
        }
        *self
            .report
            .reasons
            .entry(format!("{}: {}", self.source, reason_class(&diag.reason)))
            .or_default() += 1;
        if self.report.rejections.len() < MAX_LISTED_REJECTIONS {
            self.report.rejections.push((self.path.to_owned(), diag));
        }
    }
}

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

/// A file that could not be read: one dead letter with the reason, under a file row of its
/// own (its bytes are unknown, so the row's hash is of its path and the time: a later run
/// tries it again).
fn unreadable(
    batch: &mut dyn Batch,
    report: &mut IngestReport,
    shown: &str,
    e: &std::io::Error,
    now: Millis,
) -> Result<FileReport, EngineError> {
    let mut h = blake3::Hasher::new();
    h.update(b"unreadable\0");
    h.update(shown.as_bytes());
    h.update(&now.to_le_bytes());
    let file_id = batch.add_file(shown, h.finalize().to_hex().as_str(), "unknown", now)?;
    let diag = Diagnostic {
        line: 1,
        record: None,
        reason: format!("the file cannot be read: {e}"),
    };
    let class = "unknown: the file cannot be read".to_owned();
    dead_letter(batch, report, file_id, shown, class, diag)?;
    batch.finish_file(file_id, 1, 0, 1)?;
    report.rejected += 1;
    Ok(FileReport {
        path: shown.to_owned(),
        format: None,
        status: FileStatus::Unreadable,
        records: 1,
        accepted: 0,
        rejected: 1,
    })
}

impl Engine {
    /// Ingests files and directories. `now` stamps the file records.
    pub fn ingest(
        &mut self,
        paths: &[PathBuf],
        opts: &IngestOptions,
        progress: &mut dyn Progress,
        now: Millis,
    ) -> Result<IngestReport, EngineError> {
        let mut run = Run::default();
        let limit = opts.batch_records.unwrap_or(DEFAULT_BATCH_RECORDS).max(1);
        let inventory = &mut self.inventory;
        let topology = &mut self.topology;
        let mut detector = self.detector.as_mut();
        let mut batch = self.store.begin()?;
        let mut pending = 0u64;
        for given in paths {
            let explicit = !given.is_dir();
            let files =
                keyward_sources::discover(std::slice::from_ref(given)).map_err(|source| {
                    EngineError::Io {
                        path: given.display().to_string(),
                        source,
                    }
                })?;
            for path in files {
                progress.file_started(&path);
                let fr = ingest_file(
                    &mut *batch,
                    inventory,
                    topology,
                    &path,
                    explicit,
                    opts,
                    progress,
                    now,
                    &mut run,
                    detector.as_deref_mut(),
                )?;
                pending += fr.records;
                progress.file_finished();
                run.report.files.push(fr);
                if pending >= limit {
                    write_changes(&mut *batch, inventory, topology)?;
                    if let Some(det) = detector.as_deref_mut() {
                        let f = crate::detection::write(&mut *batch, det, &topology.graph)?;
                        run.report.findings.extend(f);
                    }
                    batch.commit()?;
                    batch = self.store.begin()?;
                    pending = 0;
                }
            }
        }
        // Cross-source links, then everything not yet written.
        inventory.link();
        write_changes(&mut *batch, inventory, topology)?;
        if let Some(det) = detector {
            // Hours that ended before the latest event are scored now.
            det.close_hours();
            let f = crate::detection::write(&mut *batch, det, &topology.graph)?;
            run.report.findings.extend(f);
            run.report.detection = Some(DetectionStats {
                events: det.events,
                parsed: det.parsed,
                baselines: det.baseline_count(),
            });
        }
        batch.commit()?;
        // Objects and accounts re-derive their graph edges from what is now committed.
        let pending = std::mem::take(&mut run.pending);
        self.topology.apply(self.store.as_ref(), pending)?;
        let mut report = run.report;
        for (new, source) in run.touched.values() {
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
}

impl Engine {
    /// Ingests JSON lines handed over in memory (`keyward watch`): one store batch, as one
    /// input named `label`. Lines must all be of one line-oriented format (CloudTrail
    /// records, Kubernetes audit events), detected from the first line unless forced.
    pub fn ingest_lines(
        &mut self,
        label: &str,
        lines: &[u8],
        opts: &IngestOptions,
        now: Millis,
    ) -> Result<IngestReport, EngineError> {
        let mut run = Run::default();
        // The first line that tells the format decides it: one unrecognised line (a
        // shipper's banner, a damaged record) must not discard the good lines after it;
        // it is rejected on its own below.
        let format = opts
            .format
            .or_else(|| {
                lines
                    .split(|&b| b == b'\n')
                    .map(<[u8]>::trim_ascii)
                    .filter(|l| !l.is_empty())
                    .find_map(keyward_normalize::sniff::format_of_object)
            })
            .filter(|f| f.line_oriented());
        let hash = blake3::hash(lines).to_hex().to_string();
        let mut batch = self.store.begin()?;
        let Some(format) = format else {
            let file_id = batch.add_file(label, &hash, "unknown", now)?;
            let diag = Diagnostic {
                line: 1,
                record: None,
                reason: "not CloudTrail or Kubernetes audit JSON lines".into(),
            };
            batch.put_dead_letter(file_id, label, &diag)?;
            batch.finish_file(file_id, 1, 0, 1)?;
            batch.commit()?;
            run.report.rejected = 1;
            run.report.rejections.push((label.to_owned(), diag));
            return Ok(run.report);
        };
        run.ctx.cluster = opts.cluster.clone().unwrap_or_else(|| "default".into());
        let source = format;
        let file_id = batch.add_file(label, &hash, format.as_str(), now)?;
        let mut progress = ();
        let mut sink = EngineSink {
            batch: &mut *batch,
            inventory: &mut self.inventory,
            topology: &mut self.topology,
            pending: &mut run.pending,
            file_id,
            path: label,
            source: source.as_str(),
            records: 0,
            accepted: 0,
            rejected: 0,
            events_new: 0,
            touched: &mut run.touched,
            resolved: &mut run.resolved,
            report: &mut run.report,
            error: None,
            progress: &mut progress,
            detector: self.detector.as_mut(),
            retired: &run.retired,
        };
        for (n, line) in lines.split(|&b| b == b'\n').enumerate() {
            let line = line.trim_ascii();
            if !line.is_empty() {
                keyward_normalize::normalize_line(
                    format,
                    line,
                    n as u64 + 1,
                    &mut run.ctx,
                    &mut sink,
                );
            }
        }
        if let Some(e) = sink.error.take() {
            return Err(e);
        }
        let (records, accepted, rejected) = (sink.records, sink.accepted, sink.rejected);
        batch.finish_file(file_id, records, accepted, rejected)?;
        self.inventory.link();
        write_changes(&mut *batch, &mut self.inventory, &mut self.topology)?;
        if let Some(det) = self.detector.as_mut() {
            let f = crate::detection::write(&mut *batch, det, &self.topology.graph)?;
            run.report.findings.extend(f);
        }
        batch.commit()?;
        let pending = std::mem::take(&mut run.pending);
        self.topology.apply(self.store.as_ref(), pending)?;
        let st = run.report.per_source.entry(source.as_str()).or_default();
        st.records += records;
        st.accepted += accepted;
        st.rejected += rejected;
        run.report.rejected += rejected;
        Ok(run.report)
    }
}

/// Writes identities changed since the last call, re-deriving their graph edges, and the
/// observed edges that changed.
fn write_changes(
    batch: &mut dyn Batch,
    inventory: &mut keyward_graph::Inventory,
    topology: &mut crate::Topology,
) -> Result<(), EngineError> {
    let mut dirty = inventory.take_dirty();
    // In key order: each b-tree page of the identities table is visited once per batch
    // instead of at random (a fifth fewer page splits and cache misses on a fresh store).
    dirty.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    // Stores first, then the graph: each part's code runs over all of them in a row.
    batch.put_identities(&dirty)?;
    for i in dirty {
        topology.identity(i);
    }
    for e in topology.graph.take_observed() {
        batch.put_observed_edge(&e)?;
    }
    Ok(())
}

/// The largest decompression buffer kept from one file to the next.
const SPARE_MAX: usize = 256 * 1024 * 1024;

/// What one `ingest` call accumulates across files.
#[derive(Default)]
struct Run {
    /// A decompression buffer kept from file to file (see `decompress_into`).
    spare: Vec<u8>,
    pending: crate::topology::Pending,
    report: IngestReport,
    touched: FxHashMap<String, (bool, &'static str)>,
    resolved: FxHashMap<usize, Resolved>,
    ctx: Context,
    /// Retirement answers for the detector's lookups in this run.
    retired: std::cell::RefCell<FxHashMap<String, Option<String>>>,
}

/// A shared [`keyward_normalize::Touch`] resolved to inventory slots, keyed by the address
/// of its `Arc` (held here, so the address is not reused while cached).
struct Resolved {
    _touch: Arc<keyward_normalize::Touch>,
    ids: Vec<keyward_graph::Slot>,
    /// Owner slot and index into the touch's `credentials`.
    credentials: Vec<(keyward_graph::Slot, usize)>,
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pipeline's parts travel together"
)]
fn ingest_file(
    batch: &mut dyn Batch,
    inventory: &mut keyward_graph::Inventory,
    topology: &mut crate::Topology,
    path: &Path,
    explicit: bool,
    opts: &IngestOptions,
    progress: &mut dyn Progress,
    now: Millis,
    run: &mut Run,
    detector: Option<&mut keyward_detect::Detector>,
) -> Result<FileReport, EngineError> {
    let shown = path.display().to_string();
    let io = |source| EngineError::Io {
        path: shown.clone(),
        source,
    };
    // A file that cannot be read is one dead letter; the run goes on with the others.
    let (hash, mut input) = match keyward_sources::read_file(path) {
        Ok(o) => o,
        Err(e) => return unreadable(batch, &mut run.report, &shown, &e, now),
    };
    let mut fr = FileReport {
        path: shown.clone(),
        format: None,
        status: FileStatus::Ingested,
        records: 0,
        accepted: 0,
        rejected: 0,
    };
    if !opts.force
        && let Some(prev) = batch.file_by_hash(&hash)?
    {
        fr.format = Format::parse(&prev.format);
        fr.status = FileStatus::Unchanged;
        return Ok(fr);
    }
    // Where the bytes stopped making sense, if they did: what came before is ingested.
    let mut damage = input.decompress(std::mem::take(&mut run.spare));
    let layout = match opts.format {
        // A forced format that is not line-oriented is read as a document.
        Some(f) if !f.line_oriented() => Layout::Document,
        _ => keyward_normalize::sniff::layout(input.head().map_err(io)?, &shown),
    };
    let mut doc = Vec::new();
    if layout == Layout::Document {
        doc = match input {
            Input::Memory(ref mut m) => std::mem::take(m),
            Input::Stream(ref mut r) => {
                let mut d = Vec::new();
                if let Err(e) = r.read_to_end(&mut d) {
                    damage = Some(e);
                }
                d
            }
            Input::Raw(_) => Vec::new(),
        };
    }
    let format = match (opts.format, layout) {
        (Some(f), _) => Some(f),
        (None, Layout::Lines) => {
            let h = keyward_normalize::sniff::trim_start(input.head().map_err(io)?);
            let nl = h.iter().position(|&b| b == b'\n').unwrap_or(h.len());
            keyward_normalize::sniff::format_of_object(h.get(..nl).unwrap_or_default())
        }
        (None, Layout::Document) => keyward_normalize::sniff::format_of_document(&doc, &shown),
    };
    fr.format = format;
    let report = &mut run.report;
    let Some(format) = format else {
        fr.status = FileStatus::Unrecognized;
        if explicit {
            let file_id = batch.add_file(&shown, &hash, "unknown", now)?;
            // Nested too deep to be sniffed: that is why, not the format.
            let reason = match keyward_normalize::depth::too_deep_at(&doc) {
                Some(_) => keyward_normalize::TOO_DEEP.into(),
                None => "not a recognised input format (use `--format` to force one)".into(),
            };
            let diag = Diagnostic {
                line: 1,
                record: None,
                reason,
            };
            let class = match diag.reason.as_str() {
                keyward_normalize::TOO_DEEP => keyward_normalize::TOO_DEEP,
                _ => "not a recognised input format",
            };
            dead_letter(
                batch,
                report,
                file_id,
                &shown,
                format!("unknown: {class}"),
                diag,
            )?;
            batch.finish_file(file_id, 1, 0, 1)?;
            report.unrecognized_explicit += 1;
            report.rejected += 1;
            fr.records = 1;
            fr.rejected = 1;
        }
        return Ok(fr);
    };
    let cluster = opts
        .cluster
        .clone()
        .or_else(|| keyward_sources::cluster_from_path(path))
        .unwrap_or_else(|| "default".to_owned());
    run.ctx.cluster = cluster;
    run.ctx.path = Some(shown.clone());
    let source: SourceKind = format;
    let file_id = batch.add_file(&shown, &hash, format.as_str(), now)?;
    let mut sink = EngineSink {
        batch: &mut *batch,
        inventory,
        topology,
        pending: &mut run.pending,
        file_id,
        path: &shown,
        source: source.as_str(),
        records: 0,
        accepted: 0,
        rejected: 0,
        events_new: 0,
        touched: &mut run.touched,
        resolved: &mut run.resolved,
        report,
        error: None,
        progress,
        detector,
        retired: &run.retired,
    };
    // Lines read whole, where a damage is reported (a document's are counted only then).
    let lines_seen = match layout {
        Layout::Document => {
            keyward_normalize::normalize_document(format, &doc, &mut run.ctx, &mut sink);
            None
        }
        Layout::Lines => {
            let mut line_no = 0u64;
            // `whole`: false for a line cut at `MAX_LINE` (one rejected record).
            let mut each = |line: &[u8], whole: bool, sink: &mut EngineSink| {
                line_no += 1;
                let trimmed = line.trim_ascii();
                if !whole {
                    sink.reject(Diagnostic {
                        line: line_no,
                        record: None,
                        reason: format!(
                            "a line longer than {} MiB",
                            keyward_sources::MAX_LINE >> 20
                        ),
                    });
                } else if !trimmed.is_empty() {
                    keyward_normalize::normalize_line(format, trimmed, line_no, &mut run.ctx, sink);
                }
                sink.error.is_none()
            };
            match &mut input {
                Input::Memory(m) => {
                    for line in m.split(|&b| b == b'\n') {
                        if !each(line, true, &mut sink) {
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
                                if !each(&line, l == keyward_sources::Line::Read, &mut sink) {
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
            Some(line_no)
        }
    };
    if let Some(e) = sink.error.take() {
        return Err(e);
    }
    let (mut records, accepted, mut rejected, events_new) =
        (sink.records, sink.accepted, sink.rejected, sink.events_new);
    progress.records(records % 4096);
    if let Some(e) = damage {
        // One dead letter for the damage, on the line after the last one read.
        let diag = Diagnostic {
            line: lines_seen.unwrap_or_else(|| doc.iter().filter(|&&b| b == b'\n').count() as u64)
                + 1,
            record: None,
            reason: format!(
                "the file is damaged here ({e}); the records before the damage were kept"
            ),
        };
        let class = format!("{}: the file is damaged", source.as_str());
        dead_letter(batch, &mut run.report, file_id, &shown, class, diag)?;
        records += 1;
        rejected += 1;
        fr.status = FileStatus::Damaged;
    }
    batch.finish_file(file_id, records, accepted, rejected)?;
    // The decompressed bytes' buffer serves the next file.
    let buffer = match input {
        Input::Memory(m) if m.capacity() > doc.capacity() => m,
        _ => doc,
    };
    if buffer.capacity() <= SPARE_MAX {
        run.spare = buffer;
    }
    let report = &mut run.report;
    let st = report.per_source.entry(source.as_str()).or_default();
    st.files += 1;
    st.records += records;
    st.accepted += accepted;
    st.rejected += rejected;
    st.events_new += events_new;
    report.rejected += rejected;
    fr.records = records;
    fr.accepted = accepted;
    fr.rejected = rejected;
    Ok(fr)
}

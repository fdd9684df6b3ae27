//! The sink every input's records go through: normalizer output joined to the store
//! batch, the inventory, the graph and detection.

use std::sync::Arc;

use keyward_graph::Applied;
use keyward_model::Diagnostic;
use keyward_normalize::{Output, Sink};
use keyward_store::Batch;

use super::{IngestReport, MAX_LISTED_REJECTIONS, Progress, Resolved, RunState};
use crate::EngineError;

/// The pipeline's parts an input's records change.
pub(super) struct Parts<'a, 'b> {
    pub batch: &'a mut (dyn Batch + 'b),
    pub inventory: &'a mut keyward_graph::Inventory,
    pub topology: &'a mut crate::Topology,
    pub detector: Option<&'a mut keyward_detect::Detector>,
    /// A gateway's publisher: accepted records go to it instead of into the pipeline.
    pub forward: Option<&'a mut (dyn super::bus::Forward + 'static)>,
}

/// The sink that joins normalizer output to the store batch and the inventory, for one
/// input (`file_id`, shown as `path`).
pub(super) struct EngineSink<'a, 'b> {
    batch: &'a mut (dyn Batch + 'b),
    inventory: &'a mut keyward_graph::Inventory,
    topology: &'a mut crate::Topology,
    pending: &'a mut crate::topology::Pending,
    file_id: i64,
    path: &'a str,
    source: &'static str,
    pub records: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub events_new: u64,
    /// Identities new or changed in this run, with whether they were new, and which source
    /// first touched them.
    touched: &'a mut rustc_hash::FxHashMap<String, (bool, &'static str)>,
    resolved: &'a mut rustc_hash::FxHashMap<usize, Resolved>,
    report: &'a mut IngestReport,
    /// The first store error; records after it are dropped and the input fails.
    pub error: Option<EngineError>,
    progress: &'a mut dyn Progress,
    detector: Option<&'a mut keyward_detect::Detector>,
    retired: &'a std::collections::BTreeMap<String, String>,
    retired_now: &'a std::cell::RefCell<rustc_hash::FxHashMap<String, Option<String>>>,
    forward: Option<&'a mut (dyn super::bus::Forward + 'static)>,
    /// The Kubernetes cluster the input was filed under (sent with forwarded records).
    pub cluster: String,
}

impl<'a, 'b> EngineSink<'a, 'b> {
    pub fn new(
        parts: Parts<'a, 'b>,
        run: &'a mut RunState,
        input: (i64, &'a str, &'static str),
        progress: &'a mut dyn Progress,
    ) -> Self {
        let (file_id, path, source) = input;
        EngineSink {
            batch: parts.batch,
            inventory: parts.inventory,
            topology: parts.topology,
            pending: &mut run.pending,
            file_id,
            path,
            source,
            records: 0,
            accepted: 0,
            rejected: 0,
            events_new: 0,
            touched: &mut run.touched,
            resolved: &mut run.resolved,
            report: &mut run.report,
            error: None,
            progress,
            detector: parts.detector,
            retired: &run.retired,
            retired_now: &run.retired_now,
            forward: parts.forward,
            cluster: String::new(),
        }
    }
}

impl Sink for EngineSink<'_, '_> {
    fn accept(&mut self, out: Output) {
        if self.forward.is_some() {
            self.forward_one(out);
        } else {
            self.accept_prepared(out, None);
        }
    }

    /// With detection on, records are taken in stages, each over a run of them, so that
    /// each stage's code stays in cache: rule matches (a function of each record alone),
    /// then the store, then the inventory, then the stateful checks, in record order
    /// within each stage. That is what `accept` one by one does for records that bring no
    /// identity facts or objects (the checks read the inventory's tags and the graph,
    /// which only those change; the store and the inventory read nothing of detection);
    /// a record that does, or a rejection, ends the run and is taken on its own.
    fn accept_parsed(&mut self, parsed: &mut Vec<keyward_normalize::ParsedRecord<'_>>) {
        let det = self.detector.as_deref().filter(|_| self.forward.is_none());
        let Some(det) = det else {
            // Nothing to stage: one by one, as the default does.
            for a in parsed.drain(..) {
                a.hand_to(self);
            }
            return;
        };
        if self.error.is_some() {
            parsed.clear();
            return;
        }
        let prepared: Vec<Option<keyward_detect::detector::Prepared>> = parsed
            .iter()
            .map(|a| match &a.result {
                Ok(Some(out)) => out.event.as_ref().map(|ev| {
                    det.prepare(ev, out.raw.as_deref().unwrap_or_default(), &out.read_fields)
                }),
                _ => None,
            })
            .collect();
        let mut run = Vec::with_capacity(parsed.len());
        for (a, p) in parsed.drain(..).zip(prepared) {
            match a.result {
                Ok(Some(out))
                    if out.observations.is_empty()
                        && out.objects.is_empty()
                        && out.warnings.is_empty() =>
                {
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
    /// when computed ahead, in stages (see [`Sink::accept_parsed`]).
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
            if let Some(t) = &out.active {
                self.mark_active(t, out.event.as_ref(), count);
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
    fn mark_active(
        &mut self,
        t: &Arc<keyward_normalize::ActiveIdentities>,
        event: Option<&keyward_model::Event>,
        count: bool,
    ) {
        let time = event.map_or(0, |e| e.time);
        let key = Arc::as_ptr(t) as usize;
        if !self.resolved.contains_key(&key) {
            if self.resolved.len() >= keyward_normalize::CallerMemo::CAPACITY {
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
                    _active: Arc::clone(t),
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
            let lookup = crate::retirement::JudgedLookup {
                retired: self.retired,
                inventory: self.inventory,
                graph: &self.topology.graph,
                cache: self.retired_now,
            };
            det.on_event_prepared(
                ev,
                out.raw.as_deref().unwrap_or_default(),
                &out.read_fields,
                &lookup,
                prepared,
            );
        }
    }

    /// Counts an accepted record and hands it to the gateway's publisher (its warnings
    /// are reported here; the worker that takes it in stores it).
    fn forward_one(&mut self, mut out: Output) {
        if self.error.is_some() {
            return;
        }
        self.records += 1;
        self.accepted += 1;
        if self.records.is_multiple_of(4096) {
            self.progress.records(4096);
        }
        for w in std::mem::take(&mut out.warnings) {
            self.report.warned += 1;
            if self.report.warnings.len() < MAX_LISTED_REJECTIONS {
                self.report.warnings.push((self.path.to_owned(), w));
            }
        }
        let origin = keyward_normalize::wire::Origin {
            label: self.path,
            format: self.source,
            cluster: &self.cluster,
        };
        if let Some(f) = self.forward.as_deref_mut()
            && let Err(e) = f.send(&origin, out)
        {
            self.error = Some(EngineError::Forward(e));
        }
    }

    /// Accepts one record; `prepared`: its rule matches, when computed ahead.
    fn accept_prepared(
        &mut self,
        mut out: Output,
        prepared: Option<keyward_detect::detector::Prepared>,
    ) {
        let Some(count) = self.store_event(out.event.as_ref()) else {
            return;
        };
        for w in std::mem::take(&mut out.warnings) {
            self.report.warned += 1;
            if self.report.warnings.len() < MAX_LISTED_REJECTIONS {
                self.report.warnings.push((self.path.to_owned(), w));
            }
        }
        // Only events new to the store are detected on: a re-read adds nothing.
        if count {
            self.detect(&out, prepared);
        }
        if let Some(t) = &out.active {
            self.mark_active(t, out.event.as_ref(), count);
        }
        let event = out.event;
        for obs in out.observations {
            // Only events new to the store add evidence: a re-read event must not count twice
            // (the edge keeps only its latest event ids, so it could not tell).
            if count
                && (obs.facts.assumed_by.is_some()
                    || obs.facts.created_by.is_some()
                    || obs.facts.used_by.is_some())
            {
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
            .entry(format!("{}: {}", self.source, diag.reason.class()))
            .or_default() += 1;
        if self.report.rejections.len() < MAX_LISTED_REJECTIONS {
            self.report.rejections.push((self.path.to_owned(), diag));
        }
    }
}

//! The detector: every rule, check and baseline over a stream of events, producing findings.

use keyward_model::time::Millis;
use keyward_model::{Event, ReadFields, SourceKind};
use rsigma_eval::compiler::eval_condition;
use rsigma_eval::result::{DetectionBody, RuleHeader};
use rsigma_eval::{
    CorrelationConfig, CorrelationEngine, EvaluationResult, ResultBody, TimestampFallback,
};
use rsigma_parser::LogSource;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};
use serde_json::{Value, json};

use crate::baseline::{Activity, Baseline, Fingerprints};
use crate::checks::{self, Lookup, Settings, State};
use crate::eval::{RuleEval, Selected};
use crate::finding::{Finding, Kind, Status, finding_id};
use crate::prefilter::Prefilter;
use crate::rules::{Catalog, RuleInfo};
use crate::view::View;

mod anomaly;
mod open;

use open::{Key, OpenFinding, mark_expected, merge_key, union_lists};

/// The rule id of behavioural-baseline findings.
pub const ANOMALY_RULE: &str = "kw-baseline-anomaly";
/// Anomalous hours of one identity no further apart than this are one episode: one
/// behavioural finding.
const EPISODE_GAP: Millis = 24 * 3_600_000;
/// The rule index behavioural findings are kept under in the map of open findings (no
/// catalog rule has it).
const ANOMALY_IDX: usize = usize::MAX;
/// Windows (hours) kept on a behavioural finding, the newest: what a false-positive
/// verdict teaches the baseline.
const MAX_WINDOWS: usize = 48;
/// Set in a finding's details when a person reopened it while it was expected: it is not
/// made expected again.
pub const OVERRIDDEN: &str = "expected_overridden";
/// One entry of [`Detector`]'s baseline map: a principal's behavioural [`Baseline`], the
/// principal's id, and whether it is listed as changed (`Detector::dirty`).
///
/// The map is keyed by the principal's keyed hash ([`crate::keyed_hash`]), so finding the
/// entry reads no string; the principal is kept here only for writing the baseline out.
/// The dirty flag sits beside the baseline, which an event reads anyway.
struct BaselineEntry {
    principal: String,
    baseline: Baseline,
    dirty: bool,
}

impl BaselineEntry {
    fn new(principal: &str, baseline: Baseline) -> Self {
        BaselineEntry {
            principal: principal.to_owned(),
            baseline,
            dirty: false,
        }
    }

    fn mark(&mut self, key: u64, dirty: &mut Vec<u64>) {
        if !self.dirty {
            self.dirty = true;
            dirty.push(key);
        }
    }
}

/// Entries kept per correlation group window (events for `event_count`, values for
/// `value_count`). Correlations can only under-count past it: a group would need more
/// than this many matching events inside one timespan, with the distinct values it needs
/// spread beyond the newest ones.
pub const MAX_GROUP_ENTRIES: usize = 1_000;
/// At most this many baselines are held; principals first seen beyond it get none (their
/// events are still checked by rules).
pub const MAX_BASELINES: usize = 1_000_000;

/// Why a [`Detector`] cannot be made from a catalog.
#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    /// The correlation engine rejected the catalog's Sigma rules.
    #[error(transparent)]
    Compile(rsigma_eval::EvalError),
}

pub struct Detector {
    catalog: Catalog,
    by_id: FxHashMap<String, usize>,
    engine: CorrelationEngine,
    /// Which of the engine's rules an event can match, by its action.
    prefilter: Prefilter,
    /// Per rule of the engine (its order): the catalog index, and whether a correlation
    /// counts its matches (only those go through the correlation engine).
    compiled: Vec<Compiled>,
    /// Per rule of the engine (its order): its conditions prepared for evaluation.
    evals: Vec<RuleEval>,
    /// Rules with a check and no detection, per source.
    check_only: Vec<(SourceKind, usize)>,
    pub state: State,
    /// By the principal's keyed hash (see [`BaselineEntry`]).
    baselines: hashbrown::HashMap<u64, BaselineEntry, FxBuildHasher>,
    fingerprints: Fingerprints,
    /// The endpoint (`service:action`) being learned, a buffer kept across events.
    endpoint: String,
    /// Principals whose baseline changed since the last [`Detector::take_dirty`] (each
    /// once: its [`BaselineEntry::dirty`] says whether it is listed).
    dirty: Vec<u64>,
    settings: Settings,
    /// Open findings by (rule index, principal) ([`merge_key`]): later matches extend
    /// them; behavioural findings under [`ANOMALY_IDX`].
    active: hashbrown::HashMap<Key, OpenFinding, FxBuildHasher>,
    /// Keys of active findings changed since the last `take_findings`, once each.
    out: Vec<Key>,
    /// Changed findings that left `active` (a later match opened a new one) before being
    /// taken.
    done: Vec<Finding>,
    /// The finding the current event opened or extended first: another rule matching the
    /// same event is folded into it (one event, one alert).
    this_event: Option<Key>,
    /// Rules folded into another rule's finding, by merge key: their later matches extend
    /// that finding while it is active.
    aliases: hashbrown::HashMap<Key, Key, FxBuildHasher>,
    /// Catalog rules matched by the current event's principal, recorded in its baseline
    /// once it has learned the event (pattern of life, see [`Baseline::note_rule`]).
    matched: Vec<usize>,
    latest: Millis,
    /// Per catalog rule, its id's fingerprint: how baselines remember it (pattern of life).
    rule_fps: Vec<u32>,
    /// Per catalog rule, its exceptions ready to match.
    exceptions: Vec<Vec<crate::exceptions::Compiled>>,
    /// Matches an exception kept from being reported.
    pub excepted: u64,
    /// Events seen, and how many needed their raw record parsed.
    pub events: u64,
    pub parsed: u64,
}

/// One rule of the correlation engine, as the detector dispatches its matches.
struct Compiled {
    catalog: Option<usize>,
    feeds_correlation: bool,
}

/// One rule's match on one event: the engine's rule index and the selections that held.
type Match = (usize, Selected);

/// The rule matches of one event, computed ahead of [`Detector::on_event_prepared`] by
/// [`Detector::prepare`].
pub struct Prepared {
    matches: Vec<Match>,
    /// Whether matching needed the raw record parsed.
    parsed: bool,
}

/// Whether the engine's rule `id` (its title when it has none) is a catalog rule of
/// `source`.
fn of_source(
    by_id: &FxHashMap<String, usize>,
    catalog: &Catalog,
    id: &str,
    source: SourceKind,
) -> bool {
    by_id
        .get(id)
        .and_then(|&i| catalog.rules.get(i))
        .is_some_and(|r| r.logsource.source == Some(source))
}

fn logsource(source: SourceKind) -> LogSource {
    let (p, s) = match source {
        SourceKind::K8sAudit => ("kubernetes", "audit"),
        SourceKind::GithubWebhook => ("github", "webhook"),
        _ => ("aws", "cloudtrail"),
    };
    LogSource {
        product: Some(p.into()),
        service: Some(s.into()),
        ..LogSource::default()
    }
}

impl Detector {
    /// The settings checks run with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Changes the settings for later events (an admin changed the configuration).
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
    }

    /// The catalog the detector was made from (to make it again over reloaded state).
    pub fn into_catalog(self) -> Catalog {
        self.catalog
    }

    pub fn new(catalog: Catalog, settings: Settings) -> Result<Self, DetectorError> {
        let config = CorrelationConfig {
            timestamp_fallback: TimestampFallback::Skip,
            correlation_event_mode: rsigma_eval::CorrelationEventMode::Refs,
            max_correlation_events: crate::finding::MAX_EVIDENCE,
            // rsigma recounts a group's window on every event: unbounded, a burst of one
            // identity's calls makes that quadratic. The newest entries are kept.
            max_group_entries: Some(MAX_GROUP_ENTRIES),
            ..CorrelationConfig::default()
        };
        let mut engine = CorrelationEngine::new(config);
        engine
            .add_collection(&catalog.sigma)
            .map_err(DetectorError::Compile)?;
        let by_id: FxHashMap<String, usize> = catalog
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        let sources = [
            SourceKind::Cloudtrail,
            SourceKind::K8sAudit,
            SourceKind::GithubWebhook,
        ]
        .map(|s| (s, logsource(s)));
        let prefilter = Prefilter::new(engine.engine().rules(), &sources, |rule, source| {
            of_source(
                &by_id,
                &catalog,
                rule.id.as_deref().unwrap_or(&rule.title),
                source,
            )
        });
        // As rsigma's correlation engine resolves a match to the rules it feeds: by the
        // rule's id, and the name of the first rule with that id (no id: it feeds none).
        let refs: FxHashSet<&str> = catalog
            .sigma
            .correlations
            .iter()
            .flat_map(|c| c.rules.iter().map(String::as_str))
            .collect();
        let compiled = engine
            .engine()
            .rules()
            .iter()
            .map(|r| {
                let feeds_correlation = r.id.as_deref().is_some_and(|id| {
                    let name = catalog
                        .sigma
                        .rules
                        .iter()
                        .find(|s| s.id.as_deref() == Some(id))
                        .and_then(|s| s.name.as_deref());
                    refs.contains(id) || name.is_some_and(|n| refs.contains(n))
                });
                Compiled {
                    catalog: by_id.get(r.id.as_deref().unwrap_or(&r.title)).copied(),
                    feeds_correlation,
                }
            })
            .collect();
        let evals = engine.engine().rules().iter().map(RuleEval::new).collect();
        let rule_fps = catalog
            .rules
            .iter()
            .map(|r| crate::baseline::fingerprint(&r.id))
            .collect();
        // Checked when the catalog took them: one that does not compile is skipped.
        let exceptions = catalog
            .rules
            .iter()
            .map(|r| {
                r.exceptions
                    .iter()
                    .filter_map(|e| crate::exceptions::Compiled::new(e).ok())
                    .collect()
            })
            .collect();
        let check_only = catalog
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.check.is_some()
                    && catalog
                        .files
                        .get(&r.id)
                        .is_none_or(|f| f.detection.is_none())
            })
            .filter_map(|(i, r)| r.logsource.source.map(|s| (s, i)))
            .collect();
        Ok(Detector {
            catalog,
            by_id,
            engine,
            prefilter,
            compiled,
            evals,
            check_only,
            state: State::default(),
            baselines: hashbrown::HashMap::default(),
            fingerprints: Fingerprints::default(),
            endpoint: String::new(),
            dirty: Vec::new(),
            settings,
            active: hashbrown::HashMap::default(),
            out: Vec::new(),
            done: Vec::new(),
            matched: Vec::new(),
            this_event: None,
            aliases: hashbrown::HashMap::default(),
            rule_fps,
            exceptions,
            excepted: 0,
            latest: 0,
            events: 0,
            parsed: 0,
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Findings already stored and still active, so later matches extend them.
    pub fn seed(&mut self, findings: impl IntoIterator<Item = Finding>) {
        for f in findings {
            if f.kind == Kind::Threat && f.status.is_active() {
                let Some(key) = self.key_of(&f) else {
                    continue;
                };
                for rule in f.rules().skip(1) {
                    if let Some(&idx) = self.by_id.get(rule) {
                        let alias = merge_key(idx, f.identity.as_deref().unwrap_or_default());
                        self.aliases.insert(alias, key);
                    }
                }
                self.active.insert(key, OpenFinding::new(f, false));
            }
        }
    }

    /// The merge key of a threat finding's rule and identity, when the rule is known.
    fn key_of(&self, f: &Finding) -> Option<Key> {
        let idx = if f.rule_id == ANOMALY_RULE {
            ANOMALY_IDX
        } else {
            *self.by_id.get(&f.rule_id)?
        };
        Some(merge_key(idx, f.identity.as_deref().unwrap_or_default()))
    }

    /// A verdict recorded on a finding the detector holds open, so that later matches
    /// keep it. A person reopening an expected finding overrides the pattern of life for
    /// it: it is not made expected again.
    pub fn set_status(&mut self, f: &Finding) {
        let Some(key) = self.key_of(f) else {
            return;
        };
        if let Some(a) = self.active.get_mut(&key)
            && a.finding.id == f.id
        {
            a.finding.status = f.status;
            a.finding.details.clone_from(&f.details);
        }
    }

    /// Adds an exception to the rule it names, for later events.
    pub fn add_exception(
        &mut self,
        e: crate::exceptions::Exception,
    ) -> Result<(), crate::rules::RuleError> {
        let compiled = crate::exceptions::Compiled::new(&e)?;
        let rule = e.rule.clone().unwrap_or_default();
        self.catalog.add_exception(e)?;
        if let Some(list) = self
            .by_id
            .get(&rule)
            .and_then(|&idx| self.exceptions.get_mut(idx))
        {
            list.push(compiled);
        }
        Ok(())
    }

    /// A baseline loaded from the store.
    pub fn load_baseline(&mut self, principal: String, b: Baseline) {
        self.baselines
            .entry(crate::keyed_hash(principal.as_str()))
            .or_insert_with(|| BaselineEntry::new(&principal, b));
    }

    pub fn baseline(&self, principal: &str) -> Option<&Baseline> {
        self.baselines
            .get(&crate::keyed_hash(principal))
            .map(|h| &h.baseline)
    }

    /// Bytes held by all baselines (inline, heap and map entry), see [`Baseline::bytes`].
    pub fn baseline_bytes(&self) -> usize {
        self.baselines
            .iter()
            .map(|(_, h)| {
                h.principal.capacity()
                    + h.baseline.bytes()
                    + std::mem::size_of::<u64>()
                    + (std::mem::size_of::<BaselineEntry>() - std::mem::size_of::<Baseline>())
            })
            .sum()
    }

    pub fn baseline_count(&self) -> usize {
        self.baselines.len()
    }

    /// Baselines changed since the last call.
    pub fn take_dirty(&mut self) -> Vec<(&str, &Baseline)> {
        let dirty = std::mem::take(&mut self.dirty);
        for k in &dirty {
            if let Some(h) = self.baselines.get_mut(k) {
                h.dirty = false;
            }
        }
        dirty
            .into_iter()
            .filter_map(|k| {
                self.baselines
                    .get(&k)
                    .map(|h| (h.principal.as_str(), &h.baseline))
            })
            .collect()
    }

    /// Findings produced or extended since the last call.
    pub fn take_findings(&mut self) -> Vec<Finding> {
        let mut v = std::mem::take(&mut self.done);
        for k in self.out.drain(..) {
            if let Some(a) = self.active.get_mut(&k) {
                a.changed = false;
                v.push(a.finding.clone());
            }
        }
        v.sort_by(|a, b| a.first_seen.cmp(&b.first_seen).then(a.id.cmp(&b.id)));
        v
    }

    /// Rule ids matching one event, through the action index and through rsigma's own
    /// candidate index (the differential test's oracle).
    #[doc(hidden)]
    pub fn matches_both_ways(
        &self,
        event: &Event,
        raw: &[u8],
        known: &ReadFields,
    ) -> (Vec<String>, Vec<String>) {
        let view = View::new(event, raw, known);
        let rules = self.engine.engine().rules();
        let indexed = self
            .matching(&view)
            .into_iter()
            .filter_map(|(i, _)| rules.get(i))
            .map(|r| r.id.clone().unwrap_or(r.title.clone()))
            .collect();
        let mut all = self
            .engine
            .engine()
            .evaluate_pruned(&view, &logsource(event.source));
        all.retain(|d| {
            let id = d.header.rule_id.as_deref().unwrap_or(&d.header.rule_title);
            of_source(&self.by_id, &self.catalog, id, event.source)
        });
        let all = all
            .into_iter()
            .map(|d| d.header.rule_id.unwrap_or(d.header.rule_title))
            .collect();
        (indexed, all)
    }

    /// The rules the event matches, in rule order: the action index's candidates, each
    /// evaluated once ([`RuleEval`]; the selections that held are kept).
    fn matching(&self, view: &View) -> Vec<Match> {
        let rules = self.engine.engine().rules();
        let mut out = Vec::new();
        for i in self.prefilter.candidates(view) {
            let i = i as usize;
            let (Some(rule), Some(eval)) = (rules.get(i), self.evals.get(i)) else {
                continue;
            };
            if let Some(selected) = eval.eval(rule, view) {
                out.push((i, selected));
            }
        }
        out
    }

    /// For every rule of the event's source: the selections this module's evaluator and
    /// rsigma's find to hold (`None`: the rule does not match), and whether the rule was
    /// evaluated by this module. The differential test's oracle.
    #[doc(hidden)]
    #[expect(clippy::type_complexity, reason = "a test oracle's plain tuple")]
    pub fn evaluates_both_ways(
        &self,
        event: &Event,
        raw: &[u8],
        known: &ReadFields,
    ) -> Vec<(String, bool, Option<Vec<String>>, Option<Vec<String>>)> {
        let view = View::new(event, raw, known);
        let rules = self.engine.engine().rules();
        rules
            .iter()
            .zip(&self.evals)
            .filter(|(r, _)| {
                let id = r.id.as_deref().unwrap_or(&r.title);
                of_source(&self.by_id, &self.catalog, id, event.source)
            })
            .map(|(rule, eval)| {
                let fast = eval.eval(rule, &view).map(|m| eval.names(m));
                let mut names = Vec::new();
                let theirs = rule.conditions.iter().find_map(|c| {
                    names.clear();
                    eval_condition(c, &rule.detections, &view, &mut names).then(|| {
                        let mut n = std::mem::take(&mut names);
                        n.sort_unstable();
                        n.dedup();
                        n
                    })
                });
                let id = rule.id.clone().unwrap_or(rule.title.clone());
                (id, eval.is_planned(), fast, theirs)
            })
            .collect()
    }

    /// The result rsigma's own evaluation would give for a match (the correlation engine
    /// takes these).
    fn result(&self, eval: Option<&RuleEval>, (i, selected): Match) -> Option<EvaluationResult> {
        let rule = self.engine.engine().rules().get(i)?;
        let selections = eval.map(|e| e.names(selected)).unwrap_or_default();
        Some(EvaluationResult {
            header: RuleHeader {
                rule_title: rule.title.clone(),
                rule_id: rule.id.clone(),
                level: rule.level,
                tags: rule.tags.clone(),
                custom_attributes: rule.custom_attributes.clone(),
                enrichments: None,
            },
            body: ResultBody::Detection(DetectionBody {
                matched_selections: selections,
                matched_fields: Vec::new(),
                event: None,
            }),
        })
    }

    /// How many rules of a source the action index narrows, and how many run on every event.
    pub fn prefilter_coverage(&self, source: SourceKind) -> crate::prefilter::Coverage {
        self.prefilter.coverage(source)
    }

    /// Ids of the rules of a source that the action index cannot narrow.
    pub fn unindexed_rules(&self, source: SourceKind) -> Vec<String> {
        let rules = self.engine.engine().rules();
        self.prefilter
            .always(source)
            .iter()
            .filter_map(|&i| rules.get(i as usize))
            .map(|r| r.id.clone().unwrap_or(r.title.clone()))
            .collect()
    }

    /// Runs everything on one event. `raw` is its platform record (may be empty), `known`
    /// the fields of it the normalizer already read.
    pub fn on_event(&mut self, event: &Event, raw: &[u8], known: &ReadFields, lookup: &dyn Lookup) {
        self.on_event_prepared(event, raw, known, lookup, None);
    }

    /// Which rules an event's record matches: a function of the event alone, so that a
    /// caller holding several events can match them all first (the rule evaluator's code
    /// then stays in cache) and run [`Detector::on_event_prepared`] on each after.
    pub fn prepare(&self, event: &Event, raw: &[u8], known: &ReadFields) -> Prepared {
        let view = View::new(event, raw, known);
        let matches = self.matching(&view);
        Prepared {
            matches,
            parsed: view.was_parsed(),
        }
    }

    /// Judges a stored event again by the rules that are a check alone and whose check
    /// `which` picks, with `lookup` as it answers now: for a check that reads context
    /// (retirement, an owner's departure) that arrived after the event was first judged.
    /// The caller says which events were not counted yet; nothing is learned (the event's
    /// baseline, state and regions were learned when it was first taken in), and a hit opens
    /// or extends its finding as a live event's does.
    pub fn rejudge(
        &mut self,
        which: impl Fn(&checks::Check) -> bool,
        event: &Event,
        lookup: &dyn Lookup,
    ) {
        let known = ReadFields::default();
        let view = View::new(event, &[], &known);
        let principal = view.principal();
        let picked: Vec<usize> = self
            .check_only
            .iter()
            .filter(|(src, idx)| {
                *src == event.source
                    && self
                        .catalog
                        .rules
                        .get(*idx)
                        .and_then(|r| r.check.as_ref())
                        .is_some_and(&which)
            })
            .map(|(_, idx)| *idx)
            .collect();
        self.this_event = None;
        for idx in picked {
            let Some(check) = self.catalog.rules.get(idx).and_then(|r| r.check.clone()) else {
                continue;
            };
            if let Some(hit) = check.run(&view, &mut self.state, None, &self.settings, lookup) {
                self.emit_hit(idx, &view, principal, hit);
            }
        }
        self.matched.clear();
    }

    /// [`Detector::on_event`], with the event's rule matches when [`Detector::prepare`]
    /// computed them (for this same event).
    pub fn on_event_prepared(
        &mut self,
        event: &Event,
        raw: &[u8],
        known: &ReadFields,
        lookup: &dyn Lookup,
        prepared: Option<Prepared>,
    ) {
        let view = View::new(event, raw, known);
        self.events += 1;
        self.this_event = None;
        self.latest = self.latest.max(event.time);
        self.state.learn(&view);
        let principal = view.principal();
        // The principal's baseline key, hashed once for the checks and for learning.
        let key = principal.map(crate::keyed_hash);
        let (matches, parsed_ahead) = match prepared {
            Some(p) => (p.matches, p.parsed),
            None => (self.matching(&view), false),
        };
        // Sigma rules (Keyward detections included). Matches that feed no correlation are
        // reported here; the others go through the correlation engine, which reports those
        // it does not keep to itself (`generate: false`) and the correlations that fire.
        let mut feeding = Vec::new();
        // Held aside while matches are reported, which needs the detector mutably.
        let evals = std::mem::take(&mut self.evals);
        for (i, selected) in matches {
            let Some(c) = self.compiled.get(i) else {
                continue;
            };
            if c.feeds_correlation {
                feeding.extend(self.result(evals.get(i), (i, selected)));
            } else if let Some(idx) = c.catalog {
                let eval = evals.get(i);
                let selections = || eval.map(|e| e.names(selected)).unwrap_or_default();
                self.detected(idx, &view, selections, principal, lookup);
            }
        }
        self.evals = evals;
        let results = if feeding.is_empty() {
            Vec::new()
        } else {
            self.engine.process_with_detections(
                &crate::view::RefView(&view),
                feeding,
                event.time.div_euclid(1000),
            )
        };
        for r in results {
            let id = r.header.rule_id.as_deref().unwrap_or(&r.header.rule_title);
            let Some(&idx) = self.by_id.get(id) else {
                continue;
            };
            match &r.body {
                ResultBody::Detection(d) => {
                    let selections = || d.matched_selections.clone();
                    self.detected(idx, &view, selections, principal, lookup);
                }
                ResultBody::Correlation(_)
                    if self.catalog.rules.get(idx).is_none_or(|r| r.internal) => {}
                ResultBody::Correlation(c) => {
                    let events: Vec<String> = c
                        .event_refs
                        .iter()
                        .flatten()
                        .filter_map(|e| e.id.clone())
                        .collect();
                    let group: Vec<String> = c
                        .group_key
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    let key = events.first().cloned().unwrap_or_default();
                    let subject = group.join(",");
                    let keyed = Some((key.as_str(), events.as_slice()));
                    self.emit(idx, &view, principal, &subject, keyed, None, |rule, _| {
                        let summary = format!(
                            "{}: {} within {} s ({})",
                            rule.title,
                            c.aggregated_value,
                            c.timespan_secs,
                            group.join(", ")
                        );
                        let details = json!({"correlation": format!("{:?}", c.correlation_type),
                                             "group": group, "value": c.aggregated_value,
                                             "timespan_seconds": c.timespan_secs});
                        (summary, details)
                    });
                }
            }
        }
        // Checks that need no detection: the principal's baseline is looked up once for
        // all of them, and what they find is reported after.
        let mut hits = Vec::new();
        let b = key.and_then(|k| self.baselines.get(&k).map(|h| &h.baseline));
        for &(src, idx) in &self.check_only {
            if src != event.source {
                continue;
            }
            let Some(check) = self.catalog.rules.get(idx).and_then(|r| r.check.as_ref()) else {
                continue;
            };
            if let Some(hit) = check.run(&view, &mut self.state, b, &self.settings, lookup) {
                hits.push((idx, hit));
            }
        }
        for (idx, hit) in hits {
            self.emit_hit(idx, &view, principal, hit);
        }
        self.state.learn_region(&view);
        // The baseline learns last, so checks judge against what was known before.
        if let (Some(p), Some(k)) = (principal, key) {
            self.learn(p, k, &view);
            self.note_matched(k, event.time);
        }
        self.matched.clear();
        if parsed_ahead || view.was_parsed() {
            self.parsed += 1;
        }
    }

    /// A detection rule (catalog index `idx`) matched: its check decides, or it reports.
    fn detected(
        &mut self,
        idx: usize,
        view: &View,
        selections: impl FnOnce() -> Vec<String>,
        principal: Option<&str>,
        lookup: &dyn Lookup,
    ) {
        let Some(rule) = self.catalog.rules.get(idx) else {
            return;
        };
        if rule.internal {
            return;
        }
        if let Some(check) = rule.check.clone() {
            let b = principal.and_then(|p| {
                self.baselines
                    .get(&crate::keyed_hash(p))
                    .map(|h| &h.baseline)
            });
            if let Some(hit) = check.run(view, &mut self.state, b, &self.settings, lookup) {
                self.emit_hit(idx, view, principal, hit);
            }
            return;
        }
        let event = view.event;
        let subject = event.target.as_deref().unwrap_or_default();
        // The subjects (targets) its matches touched are listed as they come.
        let facts = (!subject.is_empty()).then(|| json!({"subjects": [subject]}));
        self.emit(idx, view, principal, subject, None, facts, |rule, facts| {
            let summary = match (&event.actor, &event.target) {
                (Some(a), Some(t)) => format!("{}: {a} on {t}", rule.title),
                (Some(a), None) => format!("{}: {a}", rule.title),
                _ => rule.title.clone(),
            };
            let matched: Vec<Value> = selections().into_iter().map(Value::String).collect();
            let mut details = json!({"matched": matched});
            if let (Value::Object(m), Some(Value::Object(f))) = (&mut details, facts) {
                m.extend(f);
            }
            (summary, details)
        });
    }

    /// Records the rules the event's principal matched in its baseline (its pattern of
    /// life while it trains).
    fn note_matched(&mut self, key: u64, at: Millis) {
        if self.matched.is_empty() {
            return;
        }
        let Some(h) = self.baselines.get_mut(&key) else {
            return;
        };
        for &idx in &self.matched {
            if let Some(&fp) = self.rule_fps.get(idx) {
                h.baseline.note_rule(fp, at);
            }
        }
        h.mark(key, &mut self.dirty);
    }

    /// Whether a match of `rule` by `principal` at `at` repeats the principal's pattern of
    /// life: its baseline is trained and saw the rule match in every week of its training
    /// window. Rules marked `always` are never routine.
    fn routine(&self, idx: usize, rule: &RuleInfo, principal: &str, at: Millis) -> bool {
        !rule.always
            && !principal.is_empty()
            && self.rule_fps.get(idx).is_some_and(|&fp| {
                self.baselines
                    .get(&crate::keyed_hash(principal))
                    .is_some_and(|h| h.baseline.routine(fp, at))
            })
    }

    fn learn(&mut self, principal: &str, key: u64, v: &View) {
        let e = v.event;
        // Failed calls are attempts, not the identity's pattern of life.
        if e.error_code.is_some() {
            return;
        }
        let endpoint_parts = match e.source {
            SourceKind::Cloudtrail => e
                .action
                .split_once(':')
                .map(|(s, n)| (keyward_model::ids::service_name(s), n)),
            _ => e.action.split_once(' '),
        };
        // Built in a buffer kept across events.
        let mut endpoint = std::mem::take(&mut self.endpoint);
        endpoint.clear();
        match endpoint_parts {
            Some((s, n)) => {
                endpoint.push_str(s);
                endpoint.push(':');
                endpoint.push_str(n);
            }
            None => endpoint.push_str(&e.action),
        }
        self.observe(principal, key, v, &endpoint);
        self.endpoint = endpoint;
    }

    fn observe(&mut self, principal: &str, key: u64, v: &View, endpoint: &str) {
        let e = v.event;
        let activity = Activity {
            time: e.time,
            endpoint,
            resource: e.target.as_deref(),
            network: v.network(),
            agent: e.user_agent.as_deref(),
            event_id: &e.native_id,
        };
        if self.baselines.len() >= MAX_BASELINES && !self.baselines.contains_key(&key) {
            return;
        }
        // One lookup; the principal is copied only when it is new to the map.
        let h = self
            .baselines
            .entry(key)
            .or_insert_with(|| BaselineEntry::new(principal, Baseline::default()));
        let score = h
            .baseline
            .observe(&activity, checks::regional(v), &mut self.fingerprints);
        h.mark(key, &mut self.dirty);
        if let Some(s) = score {
            self.anomaly(principal, s);
        }
    }

    /// Closes every baseline hour that ended before the latest event seen.
    pub fn close_hours(&mut self) {
        let now_hour = self.latest.div_euclid(3_600_000);
        let mut scores = Vec::new();
        for (&k, h) in &mut self.baselines {
            if h.baseline
                .window
                .as_ref()
                .is_some_and(|w| w.hour < now_hour)
            {
                h.mark(k, &mut self.dirty);
                if let Some(s) = h.baseline.close() {
                    scores.push((h.principal.clone(), s));
                }
            }
        }
        for (p, s) in scores {
            self.anomaly(&p, s);
        }
    }

    fn emit_hit(&mut self, idx: usize, v: &View, principal: Option<&str>, hit: checks::Hit) {
        let checks::Hit {
            subject,
            summary,
            details,
            severity,
        } = hit;
        let keyed = Some((subject.as_str(), &[][..]));
        let mut details = details;
        if let Value::Object(m) = &mut details {
            m.insert("subject".into(), Value::String(subject.clone()));
        }
        self.emit(idx, v, principal, &subject, keyed, Some(details), |_, d| {
            (summary, d.unwrap_or(Value::Null))
        });
        // A hit more severe than its rule raises the finding it opened or extended.
        if let Some(severity) = severity
            && let Some(a) = self
                .active
                .get_mut(&merge_key(idx, principal.unwrap_or_default()))
        {
            a.finding.severity = a.finding.severity.max(severity);
        }
    }

    /// Opens or extends the finding of rule `idx` for the event's principal (a role for all
    /// of its sessions): a match extends the principal's active finding for the same rule,
    /// however long ago it last matched. A match that repeats the principal's pattern of
    /// life ([`Detector::routine`]) is recorded as [`Status::Expected`], and turns the open
    /// finding it extends expected unless a person reopened it. A check's `facts` open the
    /// finding's details, and their lists (networks, subjects) are added to the details of
    /// the finding a repeat extends. `make` (summary, details) runs only when a finding is
    /// opened.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        idx: usize,
        v: &View,
        principal: Option<&str>,
        subject: &str,
        keyed: Option<(&str, &[String])>,
        facts: Option<Value>,
        make: impl FnOnce(&RuleInfo, Option<Value>) -> (String, Value),
    ) {
        let e = v.event;
        let owner = principal.unwrap_or_default();
        if self
            .exceptions
            .get(idx)
            .is_some_and(|ex| ex.iter().any(|x| x.matches(v, owner)))
        {
            self.excepted += 1;
            return;
        }
        let Some(routine) = self
            .catalog
            .rules
            .get(idx)
            .map(|rule| self.routine(idx, rule, owner, e.time))
        else {
            return;
        };
        if !owner.is_empty() && !self.matched.contains(&idx) {
            self.matched.push(idx);
        }
        let own = merge_key(idx, owner);
        let merge = self.resolve(own);
        if merge == own && self.fold(merge, idx, routine, e.time) {
            return;
        }
        // Another rule of this event already counted it (a folded rule's later match).
        let counted = self.this_event == Some(merge);
        if self.this_event.is_none() {
            self.this_event = Some(merge);
        }
        let Some(rule) = self.catalog.rules.get(idx) else {
            return;
        };
        // The acting session or key, when the finding is about its principal.
        let also = e.actor.as_deref().filter(|a| *a != owner);
        if let Some(a) = self.active.get_mut(&merge)
            && a.finding.status.is_active()
        {
            let f = &mut a.finding;
            f.first_seen = f.first_seen.min(e.time);
            f.last_seen = f.last_seen.max(e.time);
            if !counted {
                f.count += 1;
            }
            if routine && f.status == Status::Open && f.details.get(OVERRIDDEN).is_none() {
                f.status = Status::Expected;
                mark_expected(&mut f.details);
            }
            for id in keyed.iter().flat_map(|(_, ev)| ev.iter()) {
                a.add_evidence(id);
            }
            a.add_evidence(&e.native_id);
            if let Some(actor) = also {
                a.add_actor(actor);
            }
            if let Some(facts) = &facts {
                union_lists(&mut a.finding.details, facts);
            }
            if !a.changed {
                a.changed = true;
                self.out.push(merge);
            }
            return;
        }
        let (summary, mut details) = make(rule, facts);
        if let Value::Object(m) = &mut details {
            m.entry("subject")
                .or_insert_with(|| Value::String(subject.to_owned()));
            if let Some(a) = also {
                m.insert("actors".into(), json!([a]));
            }
        }
        if routine {
            mark_expected(&mut details);
        }
        let identity = (!owner.is_empty()).then(|| owner.to_owned());
        let (key, mut events) = match keyed {
            Some((key, events)) => (key, events.to_vec()),
            None => (e.native_id.as_ref(), Vec::new()),
        };
        if !events.iter().any(|x| x == e.native_id.as_ref()) {
            events.push(e.native_id.to_string());
        }
        let fresh = Finding {
            id: finding_id(&rule.id, identity.as_deref(), key),
            rule_id: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity,
            kind: rule.kind,
            identity,
            attack: rule.attack.clone(),
            events,
            path: Vec::new(),
            first_seen: e.time,
            last_seen: e.time,
            count: 1,
            status: if routine {
                Status::Expected
            } else {
                Status::Open
            },
            summary,
            details,
        };
        self.open(merge, fresh);
    }

    /// The key a match of `own` extends: the finding its rule was folded into, while that
    /// is active.
    fn resolve(&mut self, own: Key) -> Key {
        let Some(&target) = self.aliases.get(&own) else {
            return own;
        };
        if self
            .active
            .get(&target)
            .is_some_and(|a| a.finding.status.is_active())
        {
            target
        } else {
            self.aliases.remove(&own);
            own
        }
    }

    /// One event, one alert: a match of rule `idx` with no active finding of its own, on
    /// an event that already opened or extended an alert of the same principal, is folded
    /// into that finding (its rule listed in `details.also`, its severity and techniques
    /// added) and later matches of the rule extend it. A match that is not routine is
    /// never folded into an expected finding, nor a correlation's. Returns whether it was
    /// folded.
    fn fold(&mut self, own: Key, idx: usize, routine: bool, at: Millis) -> bool {
        let Some(target) = self.this_event.filter(|t| *t != own) else {
            return false;
        };
        if self
            .active
            .get(&own)
            .is_some_and(|a| a.finding.status.is_active())
        {
            return false;
        }
        let Some(rule) = self.catalog.rules.get(idx) else {
            return false;
        };
        // A correlation's alert is the count, never folded into one of its matches'.
        let counts = rule.form == crate::rules::Form::SigmaCorrelation
            || self
                .catalog
                .files
                .get(&rule.id)
                .is_some_and(|f| f.correlation.is_some());
        if counts {
            return false;
        }
        let Some(a) = self.active.get_mut(&target) else {
            return false;
        };
        if !(a.finding.status.is_alert() || routine && a.finding.status.is_active()) {
            return false;
        }
        let f = &mut a.finding;
        f.severity = f.severity.max(rule.severity);
        for t in &rule.attack {
            if !f.attack.contains(t) {
                f.attack.push(t.clone());
            }
        }
        f.last_seen = f.last_seen.max(at);
        if let Value::Object(m) = &mut f.details {
            let list = m.entry("also").or_insert_with(|| json!([]));
            if let Value::Array(list) = list
                && !list.iter().any(|r| r.as_str() == Some(rule.id.as_str()))
            {
                list.push(Value::String(rule.id.clone()));
            }
        }
        if !a.changed {
            a.changed = true;
            self.out.push(target);
        }
        self.aliases.insert(own, target);
        true
    }

    /// Makes `fresh` the active finding under `merge`; the one it replaces is reported
    /// first if it changed since the last take.
    fn open(&mut self, merge: Key, fresh: Finding) {
        match self.active.insert(merge, OpenFinding::new(fresh, true)) {
            // Its key is listed already: the successor is taken in its place.
            Some(old) if old.changed => self.done.push(old.finding),
            _ => self.out.push(merge),
        }
    }
}

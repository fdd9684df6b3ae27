//! Rules as data: Keyward's own rule files and unmodified Sigma rules, loaded into one
//! catalog that compiles to a single Sigma engine.
//!
//! A Keyward rule file is YAML:
//!
//! ```yaml
//! id: kw-aws-cloudtrail-tampering
//! title: CloudTrail logging stopped, deleted or narrowed
//! description: …
//! severity: high                      # info | low | medium | high | critical
//! attack: [T1562.008]
//! references: [https://…]
//! source: aws/cloudtrail              # or kubernetes/audit
//! detection:                          # optional: a Sigma detection block
//!   selection: {eventSource: cloudtrail.amazonaws.com, eventName: [StopLogging, DeleteTrail]}
//!   condition: selection
//! correlation:                        # optional: count the detection's matches
//!   type: value_count                 # event_count | value_count
//!   field: requestParameters.secretId # value_count only
//!   group-by: [userIdentity.arn]
//!   timespan: 10m
//!   gte: 5
//! check: {type: new-region}           # optional: a stateful check (see `checks`)
//! always: true                        # optional: alert even when the identity did this
//!                                     # throughout its training window (pattern of life)
//! examples: [ … real events … ]        # each must fire the rule
//! negative_examples: [ … ]            # none may fire it
//! ```
//!
//! An example is one raw event, or `{events: [...], context: {...}}`: a sequence whose last
//! event must fire the rule (negative: none may), with optional check context
//! (`allowed_accounts`, `retired`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keyward_model::SourceKind;
use rsigma_parser::SigmaCollection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::checks::Check;
use crate::exceptions::{self, Exception};
use crate::finding::{Kind, Severity, attack_from_tags};

/// The rules compiled into the binary.
pub const BUILTIN: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// Where a rule's events come from, as Sigma names it and as Keyward reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logsource {
    /// `product/service` (or `product/category`), as the rule says.
    pub label: String,
    /// The input Keyward normalizes for it; `None` while Keyward has no reader for it, and
    /// the rule is loaded but dormant.
    pub source: Option<SourceKind>,
}

impl Logsource {
    pub fn of(product: Option<&str>, service: Option<&str>, category: Option<&str>) -> Self {
        let p = product.unwrap_or("").to_ascii_lowercase();
        let s = service.or(category).unwrap_or("").to_ascii_lowercase();
        let source = match (p.as_str(), s.as_str()) {
            ("aws", "cloudtrail") => Some(SourceKind::Cloudtrail),
            ("kubernetes", "audit") => Some(SourceKind::K8sAudit),
            ("github", "webhook") => Some(SourceKind::GithubWebhook),
            _ => None,
        };
        let label = if s.is_empty() { p } else { format!("{p}/{s}") };
        Logsource { label, source }
    }

    /// A Keyward rule's `source:` (`aws/cloudtrail`, `kubernetes/audit`).
    fn parse(s: &str) -> Result<Self, RuleError> {
        let (p, sv) = s
            .split_once('/')
            .ok_or_else(|| RuleError::SourceNotProductService(s.to_owned()))?;
        let ls = Logsource::of(Some(p), Some(sv), None);
        if ls.source.is_none() {
            return Err(RuleError::UnreadSource(s.to_owned()));
        }
        Ok(ls)
    }

    /// Sigma's logsource keys for it.
    fn sigma(&self) -> Value {
        let (p, s) = self.label.split_once('/').unwrap_or((&self.label, ""));
        json!({"product": p, "service": s})
    }
}

/// How a catalog rule is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// A Keyward rule file.
    Keyward,
    /// A Sigma detection rule.
    Sigma,
    /// A Sigma correlation rule.
    SigmaCorrelation,
    /// Judged in code after every ingest, across sources (an AI agent's actions against its
    /// declared purpose): listed, excepted and mapped to controls like any rule, never run on
    /// one event.
    Analytic,
}

/// One rule as `keyward rules list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub kind: Kind,
    pub attack: Vec<String>,
    pub references: Vec<String>,
    pub logsource: Logsource,
    pub form: Form,
    /// `builtin` or the file it was read from.
    pub origin: String,
    /// What was changed to load it (legacy Sigma aggregation rewritten as a correlation).
    pub note: Option<String>,
    #[serde(skip)]
    pub check: Option<Check>,
    /// Sigma detections that only feed a correlation and never report on their own.
    #[serde(skip)]
    pub internal: bool,
    /// Alerts even when it repeats the identity's pattern of life (a Keyward rule's
    /// `always: true`).
    pub always: bool,
    /// Its exceptions: the rule file's, then those of exception files and the store.
    pub exceptions: Vec<Exception>,
}

/// Why a rule file cannot be loaded; its text becomes the [`Problem`]'s reason.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("not a valid Keyward rule: {0}")]
    Yaml(#[source] serde_saphyr::Error),
    #[error("duplicate rule id `{0}`")]
    DuplicateId(String),
    #[error("a rule needs `detection`, `check` or both")]
    NothingToRun,
    #[error("`correlation` needs `detection` and cannot have `check`")]
    CorrelationShape,
    #[error("`source: {0}` must be product/service")]
    SourceNotProductService(String),
    #[error("`source: {0}`: Keyward reads aws/cloudtrail, kubernetes/audit and github/webhook")]
    UnreadSource(String),
    #[error("detection: {0}")]
    DetectionSyntax(#[source] rsigma_parser::SigmaParserError),
    /// The first of the problems the Sigma parser collected.
    #[error("detection: {0}")]
    DetectionInvalid(String),
    #[error("detection: {0}")]
    DetectionCompile(#[source] rsigma_eval::EvalError),
    #[error(transparent)]
    Exception(#[from] exceptions::ExceptionError),
    #[error("an exception in a rule file cannot name another rule (`{0}`)")]
    ExceptionOfOtherRule(String),
    #[error("exception `{0}` needs `rule:`, the id of the rule it belongs to")]
    ExceptionWithoutRule(String),
    #[error(
        "exception `{name}`: no rule `{rule}` is loaded (exceptions name rules loaded before them)"
    )]
    ExceptionOfUnknownRule { name: String, rule: String },
    #[error("not a valid exceptions file: {0}")]
    ExceptionsYaml(#[source] serde_saphyr::Error),
    #[error("correlation: give exactly one of `gte`, `gt`")]
    CorrelationThreshold,
    /// A Sigma v1 aggregation (`| count() by x > 5`) without the `timeframe` it needs.
    #[error("aggregation `{0}` without `timeframe`")]
    AggregationWithoutTimeframe(String),
    /// A Sigma v1 aggregation this loader cannot rewrite as a correlation.
    #[error("unsupported aggregation `{0}`")]
    UnsupportedAggregation(String),
}

/// A rule file that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

/// A Keyward rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub severity: Severity,
    #[serde(default)]
    pub kind: Kind,
    #[serde(default)]
    pub attack: Vec<String>,
    #[serde(default)]
    pub references: Vec<String>,
    pub source: String,
    #[serde(default)]
    pub detection: Option<Value>,
    #[serde(default)]
    pub correlation: Option<Correlation>,
    #[serde(default)]
    pub check: Option<Check>,
    /// Never the identity's pattern of life: a match alerts even when the identity did the
    /// same throughout its training window (tampering, backdoors, self-escalation).
    #[serde(default)]
    pub always: bool,
    /// Who the rule is not about (see [`crate::exceptions`]).
    #[serde(default)]
    pub exceptions: Vec<Exception>,
    #[serde(default)]
    pub examples: Vec<Example>,
    #[serde(default)]
    pub negative_examples: Vec<Example>,
}

/// A Keyward rule's `correlation:` block: Sigma correlation semantics over the rule's own
/// detection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correlation {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default, rename = "group-by")]
    pub group_by: Vec<String>,
    pub timespan: String,
    #[serde(default)]
    pub gte: Option<u64>,
    #[serde(default)]
    pub gt: Option<u64>,
}

/// An example: one raw event, or a sequence with check context.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Example {
    Sequence {
        events: Vec<Value>,
        #[serde(default)]
        context: ExampleContext,
    },
    Event(Value),
}

impl Example {
    pub fn events(&self) -> &[Value] {
        match self {
            Example::Sequence { events, .. } => events,
            Example::Event(v) => std::slice::from_ref(v),
        }
    }

    pub fn context(&self) -> ExampleContext {
        match self {
            Example::Sequence { context, .. } => context.clone(),
            Example::Event(_) => ExampleContext::default(),
        }
    }
}

/// What the outside world would tell the checks about an example.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleContext {
    #[serde(default)]
    pub allowed_accounts: Vec<String>,
    /// Identities (canonical ids) retired or whose owner departed, with the reason.
    #[serde(default)]
    pub retired: BTreeMap<String, String>,
}

/// Every rule Keyward knows, ready to compile.
#[derive(Default, Clone)]
pub struct Catalog {
    pub rules: Vec<RuleInfo>,
    pub problems: Vec<Problem>,
    /// Keyward rule files, by id, for `rules test`.
    pub files: BTreeMap<String, RuleFile>,
    pub(crate) sigma: SigmaCollection,
}

impl Catalog {
    /// The built-in rules only.
    pub fn builtin() -> Self {
        let mut c = Catalog::default();
        for (name, text) in BUILTIN {
            c.add_text(&format!("builtin:{name}"), text);
        }
        c.rules.push(crate::intent::rule_info());
        c
    }

    /// Adds a rule file or every `.yml`/`.yaml` under a directory (Keyward or Sigma rules,
    /// told apart by content).
    pub fn add_path(&mut self, path: &Path) {
        let mut files = Vec::new();
        collect(path, &mut files, &mut self.problems);
        files.sort();
        for f in files {
            let shown = f.display().to_string();
            match std::fs::read_to_string(&f) {
                Ok(text) => self.add_text(&shown, &text),
                Err(e) => self.problems.push(Problem {
                    path: shown,
                    reason: format!("cannot read: {e}"),
                }),
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&RuleInfo> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Adds one file's text: Keyward rules, Sigma rules, or exceptions.
    pub fn add_text(&mut self, origin: &str, text: &str) {
        if is_exceptions_file(text) {
            let opts = serde_saphyr::options! { strict_booleans: true };
            let file: Result<exceptions::File, _> = serde_saphyr::from_str_with_options(text, opts);
            match file {
                Ok(file) => {
                    for e in file.exceptions {
                        if let Err(err) = self.add_exception(e) {
                            self.problem(origin, &err.to_string());
                        }
                    }
                }
                Err(e) => self.problem(origin, &RuleError::ExceptionsYaml(e).to_string()),
            }
        } else if is_keyward_rule(text) {
            if let Err(e) = self.add_keyward(origin, text) {
                self.problem(origin, &e.to_string());
            }
        } else {
            self.add_sigma(origin, text);
        }
    }

    /// Adds an exception to the rule it names.
    pub fn add_exception(&mut self, e: Exception) -> Result<(), RuleError> {
        let Some(rule_id) = e.rule.clone() else {
            return Err(RuleError::ExceptionWithoutRule(e.name));
        };
        exceptions::Compiled::new(&e)?;
        let Some(rule) = self.rules.iter_mut().find(|r| r.id == rule_id) else {
            return Err(RuleError::ExceptionOfUnknownRule {
                name: e.name,
                rule: rule_id,
            });
        };
        rule.exceptions.push(e);
        Ok(())
    }

    fn add_keyward(&mut self, origin: &str, text: &str) -> Result<(), RuleError> {
        let opts = serde_saphyr::options! { strict_booleans: true };
        let file: RuleFile =
            serde_saphyr::from_str_with_options(text, opts).map_err(RuleError::Yaml)?;
        if self.rules.iter().any(|r| r.id == file.id) {
            return Err(RuleError::DuplicateId(file.id));
        }
        if file.detection.is_none() && file.check.is_none() {
            return Err(RuleError::NothingToRun);
        }
        if file.correlation.is_some() && (file.detection.is_none() || file.check.is_some()) {
            return Err(RuleError::CorrelationShape);
        }
        let logsource = Logsource::parse(&file.source)?;
        for e in &file.exceptions {
            if let Some(other) = e.rule.as_ref().filter(|r| **r != file.id) {
                return Err(RuleError::ExceptionOfOtherRule(other.clone()));
            }
            exceptions::Compiled::new(e)?;
        }
        if let Some(detection) = &file.detection {
            let docs = sigma_docs(&file, &logsource, detection)?;
            let collection =
                rsigma_parser::parse_sigma_yaml(&docs).map_err(RuleError::DetectionSyntax)?;
            if let Some(e) = collection.errors.first() {
                return Err(RuleError::DetectionInvalid(e.clone()));
            }
            // Compile now, so a bad modifier is reported against this file.
            let mut probe = rsigma_eval::CorrelationEngine::new(Default::default());
            probe
                .add_collection(&collection)
                .map_err(RuleError::DetectionCompile)?;
            self.sigma.rules.extend(collection.rules);
            self.sigma.correlations.extend(collection.correlations);
        }
        if file.correlation.is_some() {
            self.rules.push(RuleInfo {
                id: base_id(&file.id),
                title: file.title.clone(),
                description: String::new(),
                severity: file.severity,
                kind: file.kind,
                attack: Vec::new(),
                references: Vec::new(),
                logsource: logsource.clone(),
                form: Form::Sigma,
                origin: origin.to_owned(),
                note: None,
                check: None,
                internal: true,
                always: file.always,
                exceptions: Vec::new(),
            });
        }
        self.rules.push(RuleInfo {
            id: file.id.clone(),
            title: file.title.clone(),
            description: file.description.trim().to_owned(),
            severity: file.severity,
            kind: file.kind,
            attack: file.attack.clone(),
            references: file.references.clone(),
            logsource,
            form: Form::Keyward,
            origin: origin.to_owned(),
            note: None,
            check: file.check.clone(),
            internal: false,
            always: file.always,
            exceptions: file.exceptions.clone(),
        });
        self.files.insert(file.id.clone(), file);
        Ok(())
    }

    fn add_sigma(&mut self, origin: &str, text: &str) {
        let (collection, note) = match rsigma_parser::parse_sigma_yaml(text) {
            Ok(c) if c.errors.is_empty() => (c, None),
            first => match legacy_aggregation(text) {
                Some(Ok((docs, note))) => match rsigma_parser::parse_sigma_yaml(&docs) {
                    Ok(c) if c.errors.is_empty() => (c, Some(note)),
                    Ok(c) => return self.problem(origin, &c.errors.join("; ")),
                    Err(e) => return self.problem(origin, &e.to_string()),
                },
                Some(Err(e)) => return self.problem(origin, &e.to_string()),
                None => {
                    let reason = match first {
                        Ok(c) => c.errors.join("; "),
                        Err(e) => e.to_string(),
                    };
                    return self.problem(origin, &reason);
                }
            },
        };
        let mut probe = rsigma_eval::CorrelationEngine::new(Default::default());
        if let Err(e) = probe.add_collection(&collection) {
            return self.problem(origin, &e.to_string());
        }
        for r in &collection.rules {
            let id = r.id.clone().unwrap_or_else(|| r.title.clone());
            if self.rules.iter().any(|x| x.id == id) {
                return self.problem(origin, &format!("duplicate rule id `{id}`"));
            }
            self.rules.push(RuleInfo {
                id,
                title: r.title.clone(),
                description: r.description.clone().unwrap_or_default().trim().to_owned(),
                severity: level(r.level.as_ref()),
                kind: Kind::Threat,
                attack: attack_from_tags(&r.tags),
                references: r.references.clone(),
                logsource: Logsource::of(
                    r.logsource.product.as_deref(),
                    r.logsource.service.as_deref(),
                    r.logsource.category.as_deref(),
                ),
                form: Form::Sigma,
                origin: origin.to_owned(),
                note: note.clone(),
                check: None,
                // Set below for the rules a correlation keeps to itself (a rewritten
                // legacy aggregation's bases among them).
                internal: false,
                always: false,
                exceptions: Vec::new(),
            });
        }
        for c in &collection.correlations {
            let id = c.id.clone().unwrap_or_else(|| c.title.clone());
            // A correlation reads the logsource of the rules it counts.
            let logsource = self
                .rules
                .iter()
                .rev()
                .find(|r| c.rules.contains(&r.id))
                .map(|r| r.logsource.clone())
                .unwrap_or(Logsource {
                    label: String::new(),
                    source: None,
                });
            self.rules.push(RuleInfo {
                id,
                title: c.title.clone(),
                description: c.description.clone().unwrap_or_default().trim().to_owned(),
                severity: level(c.level.as_ref()),
                kind: Kind::Threat,
                attack: attack_from_tags(&c.tags),
                references: c.references.clone(),
                logsource,
                form: Form::SigmaCorrelation,
                origin: origin.to_owned(),
                note: note.clone(),
                check: None,
                internal: false,
                always: false,
                exceptions: Vec::new(),
            });
        }
        // Sigma's `generate: false` (the default): the rules a correlation counts, by id or
        // name, report only through it (rsigma itself silences only those named by id).
        let quiet: Vec<String> = collection
            .correlations
            .iter()
            .filter(|c| !c.generate)
            .flat_map(|c| c.rules.iter().cloned())
            .collect();
        self.sigma.rules.extend(collection.rules);
        self.sigma.correlations.extend(collection.correlations);
        self.sigma.filters.extend(collection.filters);
        if !quiet.is_empty() {
            let silenced: Vec<String> = self
                .sigma
                .rules
                .iter()
                .filter(|r| {
                    [r.id.as_ref(), r.name.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|x| quiet.contains(x))
                })
                .map(|r| r.id.clone().unwrap_or_else(|| r.title.clone()))
                .collect();
            for r in &mut self.rules {
                if r.form == Form::Sigma && silenced.contains(&r.id) {
                    r.internal = true;
                }
            }
        }
    }

    fn problem(&mut self, path: &str, reason: &str) {
        self.problems.push(Problem {
            path: path.to_owned(),
            reason: reason.to_owned(),
        });
    }
}

fn collect(path: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    if path.is_dir() {
        match std::fs::read_dir(path) {
            Ok(rd) => {
                for e in rd.flatten() {
                    collect(&e.path(), out, problems);
                }
            }
            Err(e) => problems.push(Problem {
                path: path.display().to_string(),
                reason: format!("cannot read directory: {e}"),
            }),
        }
    } else if matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    ) {
        out.push(path.to_owned());
    }
}

/// Keyward rules say `severity:` and `source:`; Sigma rules say `level:` and `logsource:`.
/// A file of exceptions: a top-level `exceptions:` and no rule.
fn is_exceptions_file(text: &str) -> bool {
    let top = |key: &str| text.lines().any(|l| l.starts_with(key));
    top("exceptions:") && !top("id:") && !top("title:") && !top("detection:")
}

fn is_keyward_rule(text: &str) -> bool {
    let top = |key: &str| text.lines().any(|l| l.starts_with(key));
    top("severity:") && top("source:") && !top("logsource:")
}

fn level(l: Option<&rsigma_parser::Level>) -> Severity {
    use rsigma_parser::Level;
    match l {
        Some(Level::Informational) | None => Severity::Info,
        Some(Level::Low) => Severity::Low,
        Some(Level::Medium) => Severity::Medium,
        Some(Level::High) => Severity::High,
        Some(Level::Critical) => Severity::Critical,
    }
}

/// The id of the detection a Keyward correlation counts.
pub(crate) fn base_id(id: &str) -> String {
    format!("{id}.base")
}

/// A Keyward rule's detection (and correlation) as Sigma documents (JSON is YAML).
fn sigma_docs(file: &RuleFile, ls: &Logsource, detection: &Value) -> Result<String, RuleError> {
    let tags: Vec<String> = file
        .attack
        .iter()
        .map(|t| format!("attack.{}", t.to_ascii_lowercase()))
        .collect();
    let level = match file.severity {
        Severity::Info => "informational",
        s => s.as_str(),
    };
    let Some(c) = &file.correlation else {
        let doc = json!({
            "title": file.title, "id": file.id, "logsource": ls.sigma(),
            "detection": detection, "level": level, "tags": tags,
        });
        return Ok(doc.to_string());
    };
    let base = json!({
        "title": file.title, "id": base_id(&file.id), "name": base_id(&file.id),
        "logsource": ls.sigma(), "detection": detection, "level": level,
    });
    let condition = match (c.gte, c.gt) {
        (Some(n), None) => json!({"gte": n}),
        (None, Some(n)) => json!({"gt": n}),
        _ => return Err(RuleError::CorrelationThreshold),
    };
    let mut condition = condition;
    if let Some(f) = &c.field
        && let Value::Object(m) = &mut condition
    {
        m.insert("field".into(), Value::String(f.clone()));
    }
    let corr = json!({
        "title": file.title, "id": file.id, "level": level, "tags": tags,
        "correlation": {
            "type": c.ty, "rules": [base_id(&file.id)], "group-by": c.group_by,
            "timespan": c.timespan, "condition": condition,
        },
    });
    Ok(format!("{base}\n---\n{corr}"))
}

/// Sigma v1's aggregation conditions (`selection | count() by X > 5`, `a | near b`) with a
/// `timeframe`, which Sigma 2 expresses as correlation rules: rewritten to a base rule plus
/// a correlation. `None` when the text has no such condition.
fn legacy_aggregation(text: &str) -> Option<Result<(String, String), RuleError>> {
    let opts = serde_saphyr::options! { strict_booleans: true };
    let mut doc: Value = serde_saphyr::from_str_with_options(text, opts).ok()?;
    let det = doc.get_mut("detection")?.as_object_mut()?;
    let condition = det.get("condition")?.as_str()?.to_owned();
    let timeframe = det
        .get("timeframe")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (search, agg) = condition.split_once('|')?;
    let Some(timeframe) = timeframe else {
        return Some(Err(RuleError::AggregationWithoutTimeframe(
            condition.trim().to_owned(),
        )));
    };
    det.remove("timeframe");
    let agg = agg.trim();
    let search = search.trim().to_owned();
    let id = doc
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("legacy")
        .to_owned();
    let title = doc
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let level = doc.get("level").cloned().unwrap_or(Value::Null);
    let tags = doc.get("tags").cloned().unwrap_or(json!([]));
    let base_of = |doc: &Value, cond: &str, suffix: &str| {
        let mut b = doc.clone();
        if let Some(d) = b.get_mut("detection").and_then(Value::as_object_mut) {
            d.insert("condition".into(), Value::String(cond.to_owned()));
        }
        if let Value::Object(m) = &mut b {
            let bid = format!("{id}.{suffix}");
            m.insert("id".into(), Value::String(bid.clone()));
            m.insert("name".into(), Value::String(bid));
        }
        b
    };
    if let Some(other) = agg.strip_prefix("near ") {
        let a = base_of(&doc, &search, "a");
        let b = base_of(&doc, other.trim(), "b");
        let corr = json!({
            "title": title, "id": id, "level": level, "tags": tags,
            "correlation": {"type": "temporal", "rules": [format!("{id}.a"), format!("{id}.b")],
                            "timespan": timeframe},
        });
        let note = format!(
            "Sigma v1 `{}` rewritten as a temporal correlation",
            condition.trim()
        );
        return Some(Ok((format!("{a}\n---\n{b}\n---\n{corr}"), note)));
    }
    let Some(rest) = agg.strip_prefix("count(") else {
        return Some(Err(RuleError::UnsupportedAggregation(agg.to_owned())));
    };
    let Some((field, rest)) = rest.split_once(')') else {
        return Some(Err(RuleError::UnsupportedAggregation(agg.to_owned())));
    };
    let rest = rest.trim();
    let (group, rest) = match rest.strip_prefix("by ") {
        Some(r) => {
            let mut it = r.trim().splitn(2, ' ');
            let g = it.next().unwrap_or_default().to_owned();
            (vec![g], it.next().unwrap_or_default().trim().to_owned())
        }
        None => (Vec::new(), rest.to_owned()),
    };
    let (op, n) = rest.split_once(' ').unwrap_or(("", ""));
    let op = match op {
        ">" => "gt",
        ">=" => "gte",
        "<" => "lt",
        "<=" => "lte",
        "=" | "==" => "eq",
        _ => return Some(Err(RuleError::UnsupportedAggregation(agg.to_owned()))),
    };
    let Ok(n) = n.trim().parse::<u64>() else {
        return Some(Err(RuleError::UnsupportedAggregation(agg.to_owned())));
    };
    let field = field.trim();
    let mut cond = Value::Object(serde_json::Map::from_iter([(op.to_owned(), json!(n))]));
    let ty = if field.is_empty() {
        "event_count"
    } else {
        if let Value::Object(m) = &mut cond {
            m.insert("field".into(), Value::String(field.to_owned()));
        }
        "value_count"
    };
    let base = base_of(&doc, &search, "base");
    let corr = json!({
        "title": title, "id": id, "level": level, "tags": tags,
        "correlation": {"type": ty, "rules": [format!("{id}.base")], "group-by": group,
                        "timespan": timeframe, "condition": cond},
    });
    let note = format!(
        "Sigma v1 `{}` rewritten as a {ty} correlation",
        condition.trim()
    );
    Some(Ok((format!("{base}\n---\n{corr}"), note)))
}

//! `keyward rules test`: runs every rule's examples (real events) and negative examples.

use keyward_model::{Event, ReadFields, SourceKind};
use keyward_normalize::{Context, cloudtrail, k8s_audit};
use serde::Serialize;

use crate::checks::{Lookup, Settings};
use crate::detector::Detector;
use crate::rules::{Catalog, Example};

/// One example's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub rule: String,
    /// `example 2`, `negative_example 1`.
    pub example: String,
    pub passed: bool,
    pub message: String,
}

struct ContextLookup(std::collections::BTreeMap<String, String>);

impl Lookup for ContextLookup {
    fn retired(&self, identity: &str) -> Option<String> {
        self.0.get(identity).cloned()
    }
}

/// Why an example cannot be run as an event.
#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    /// The normalizer rejected the record (its message, as it gave it).
    #[error("{0}")]
    Normalize(String),
    #[error("the record is not an event")]
    NotAnEvent,
}

/// A raw event normalized as ingest would, with its raw bytes and the fields of them the
/// normalizer read.
pub fn normalize(
    source: SourceKind,
    raw: &[u8],
) -> Result<(Event<'static>, Vec<u8>, ReadFields<'static>), ExampleError> {
    fn rejected(e: impl std::fmt::Display) -> ExampleError {
        ExampleError::Normalize(e.to_string())
    }
    let out = match source {
        SourceKind::K8sAudit => k8s_audit::normalize_event(raw, &Context::default())
            .map_err(rejected)?
            .map(keyward_normalize::Output::into_owned),
        SourceKind::GithubWebhook => {
            keyward_normalize::github::normalize_delivery(raw, &Context::default())
                .map_err(rejected)?
        }
        _ => cloudtrail::normalize_record(raw)
            .map_err(rejected)?
            .map(keyward_normalize::Output::into_owned),
    };
    let out = out.ok_or(ExampleError::NotAnEvent)?;
    let bytes = out.raw.map_or_else(|| raw.to_vec(), |r| r.into_owned());
    let event = out.event.ok_or(ExampleError::NotAnEvent)?;
    Ok((event, bytes, out.read_fields))
}

/// Runs the examples of every Keyward rule in `catalog` (or only `only`).
pub fn run(catalog: &Catalog, only: Option<&str>) -> Vec<Outcome> {
    let mut out = Vec::new();
    for (id, file) in &catalog.files {
        if only.is_some_and(|o| o != id) {
            continue;
        }
        let Some(source) = catalog.get(id).and_then(|r| r.logsource.source) else {
            continue;
        };
        for (n, ex) in file.examples.iter().enumerate() {
            out.push(run_one(catalog, id, source, ex, true, n + 1));
        }
        for (n, ex) in file.negative_examples.iter().enumerate() {
            out.push(run_one(catalog, id, source, ex, false, n + 1));
        }
    }
    out
}

fn run_one(
    catalog: &Catalog,
    id: &str,
    source: SourceKind,
    ex: &Example,
    positive: bool,
    n: usize,
) -> Outcome {
    let label = if positive {
        "example"
    } else {
        "negative_example"
    };
    let outcome = |passed: bool, message: String| Outcome {
        rule: id.to_owned(),
        example: format!("{label} {n}"),
        passed,
        message,
    };
    let ctx = ex.context();
    let settings = Settings {
        allowed_accounts: ctx.allowed_accounts.iter().cloned().collect(),
    };
    let mut det = match Detector::new(catalog.clone(), settings) {
        Ok(d) => d,
        Err(e) => return outcome(false, format!("rules do not compile: {e}")),
    };
    let lookup = ContextLookup(ctx.retired.clone());
    let events = ex.events();
    let last = events.len().saturating_sub(1);
    for (i, raw) in events.iter().enumerate() {
        let bytes = raw.to_string();
        let (event, raw, known) = match normalize(source, bytes.as_bytes()) {
            Ok(x) => x,
            Err(e) => return outcome(false, format!("event {}: not a valid event: {e}", i + 1)),
        };
        det.on_event(&event, &raw, &known, &lookup);
        if i == last {
            det.close_hours();
        }
        // A rule folded into another's finding on the same event fired too.
        let fired = det
            .take_findings()
            .into_iter()
            .find(|f| f.rules().any(|r| r == id));
        match (fired, positive, i == last) {
            (Some(f), true, true) => return outcome(true, f.summary),
            (Some(f), true, false) => {
                return outcome(
                    false,
                    format!("fired early, on event {}: {}", i + 1, f.summary),
                );
            }
            (Some(f), false, _) => {
                return outcome(false, format!("fired on event {}: {}", i + 1, f.summary));
            }
            _ => {}
        }
    }
    if positive {
        outcome(false, "did not fire".into())
    } else {
        outcome(true, "did not fire".into())
    }
}

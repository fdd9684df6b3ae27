//! The JSON form of a check [`Report`] (a documented contract: `docs/check.md`), and reading
//! a baseline back from a previous JSON or SARIF output.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::{Report, sarif};

/// Version of the JSON document; bumped when a field changes meaning or goes.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
pub struct Document<'r> {
    pub version: u32,
    pub tool: &'static str,
    pub tool_version: &'r str,
    pub summary: Summary,
    pub problems: Vec<JsonProblem<'r>>,
    pub errors: Vec<JsonError<'r>>,
    pub skipped: Vec<Skipped<'r>>,
}

#[derive(Serialize)]
pub struct Summary {
    pub files: usize,
    pub problems: usize,
    /// Problems not in the baseline (all of them without one): what fails the check.
    pub failing: usize,
    pub errors: usize,
}

#[derive(Serialize)]
pub struct JsonProblem<'r> {
    pub rule: &'static str,
    pub title: &'static str,
    pub severity: &'static str,
    pub message: &'r str,
    pub file: &'r str,
    pub line: u64,
    pub column: Option<u64>,
    pub key: &'r str,
    pub fingerprint: String,
    pub baselined: bool,
}

#[derive(Serialize)]
pub struct JsonError<'r> {
    pub file: &'r str,
    pub line: u64,
    pub message: &'r str,
}

#[derive(Serialize)]
pub struct Skipped<'r> {
    pub file: &'r str,
    pub why: &'r str,
}

pub fn document<'r>(report: &'r Report, tool_version: &'r str) -> Document<'r> {
    Document {
        version: VERSION,
        tool: "keyward",
        tool_version,
        summary: Summary {
            files: report.files,
            problems: report.problems.len(),
            failing: report.failing().count(),
            errors: report.errors.len(),
        },
        problems: report
            .problems
            .iter()
            .map(|p| JsonProblem {
                rule: p.rule.id(),
                title: p.rule.title(),
                severity: p.severity.as_str(),
                message: &p.message,
                file: &p.file,
                line: p.line,
                column: p.column,
                key: &p.key,
                fingerprint: p.fingerprint(),
                baselined: p.baselined,
            })
            .collect(),
        errors: report
            .errors
            .iter()
            .map(|e| JsonError {
                file: &e.file,
                line: e.line,
                message: &e.reason,
            })
            .collect(),
        skipped: report
            .skipped
            .iter()
            .map(|(file, why)| Skipped { file, why })
            .collect(),
    }
}

/// Why a baseline cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("not JSON (line {line}): {message}")]
    Json { line: usize, message: String },
    #[error("neither a `keyward check` JSON report (`problems`) nor SARIF (`runs`)")]
    Shape,
}

/// The fingerprints of a previous output: `problems[].fingerprint` of the JSON form, or
/// `runs[].results[].partialFingerprints["keyward/v1"]` of SARIF.
pub fn baseline(bytes: &[u8]) -> Result<BTreeSet<String>, BaselineError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| BaselineError::Json {
        line: e.line(),
        message: e.to_string(),
    })?;
    let strings = |items: Option<&Value>, pointer: &str| -> BTreeSet<String> {
        items
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.pointer(pointer).and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    };
    if let Some(runs) = doc.get("runs").and_then(Value::as_array) {
        let pointer = format!(
            "/partialFingerprints/{}",
            sarif::FINGERPRINT.replace('/', "~1")
        );
        return Ok(runs
            .iter()
            .flat_map(|run| strings(run.get("results"), &pointer))
            .collect());
    }
    if doc.get("problems").is_some() {
        return Ok(strings(doc.get("problems"), "/fingerprint"));
    }
    Err(BaselineError::Shape)
}

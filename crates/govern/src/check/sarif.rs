//! A check [`Report`] as SARIF 2.1.0, in the shape GitHub code scanning accepts: every rule
//! in `tool.driver.rules` (so a rule id always resolves), results located by a repository-
//! relative `uri` under `%SRCROOT%` with `startLine` ≥ 1, and the problem's fingerprint in
//! `partialFingerprints["keyward/v1"]` (what `--baseline` and GitHub's deduplication match).
//! Input errors are `toolExecutionNotifications` of the run's invocation.

use serde::Serialize;

use super::{Report, Rule, Severity};

/// The key of a result's fingerprint in `partialFingerprints`.
pub const FINGERPRINT: &str = "keyward/v1";

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const INFORMATION_URI: &str = "https://github.com/keyward/keyward/blob/main/docs/check.md";

#[derive(Serialize)]
pub struct Log {
    #[serde(rename = "$schema")]
    pub schema: &'static str,
    pub version: &'static str,
    pub runs: Vec<Run>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub tool: Tool,
    pub results: Vec<SarifResult>,
    pub invocations: Vec<Invocation>,
    pub column_kind: &'static str,
}

#[derive(Serialize)]
pub struct Tool {
    pub driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Driver {
    pub name: &'static str,
    pub version: String,
    pub information_uri: &'static str,
    pub rules: Vec<RuleDescriptor>,
}

#[derive(Serialize)]
pub struct Text {
    pub text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleDescriptor {
    pub id: &'static str,
    pub name: String,
    pub short_description: Text,
    pub full_description: Text,
    pub help: Text,
    pub default_configuration: Configuration,
    pub properties: RuleProperties,
}

#[derive(Serialize)]
pub struct Configuration {
    pub level: &'static str,
}

#[derive(Serialize)]
pub struct RuleProperties {
    pub tags: Vec<&'static str>,
    /// GitHub's 0–10 scale.
    #[serde(rename = "security-severity")]
    pub security_severity: &'static str,
    pub precision: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SarifResult {
    pub rule_id: &'static str,
    pub rule_index: usize,
    pub level: &'static str,
    pub message: Text,
    pub locations: Vec<Location>,
    pub partial_fingerprints: std::collections::BTreeMap<&'static str, String>,
    /// Present when a baseline was given: `new` or `unchanged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_state: Option<&'static str>,
    pub properties: ResultProperties,
}

#[derive(Serialize)]
pub struct ResultProperties {
    pub severity: &'static str,
    pub key: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub physical_location: PhysicalLocation,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalLocation {
    pub artifact_location: ArtifactLocation,
    pub region: Region,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactLocation {
    pub uri: String,
    pub uri_base_id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    pub start_line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_column: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invocation {
    pub execution_successful: bool,
    pub tool_execution_notifications: Vec<Notification>,
}

#[derive(Serialize)]
pub struct Notification {
    pub level: &'static str,
    pub message: Text,
    pub locations: Vec<Location>,
}

pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

/// A title as SARIF's `name` wants it: `IamPolicyAllowsWildcardActions`.
fn pascal(title: &str) -> String {
    title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            let first = cs.next().map(|c| c.to_ascii_uppercase());
            first
                .into_iter()
                .chain(cs.map(|c| c.to_ascii_lowercase()))
                .collect::<String>()
        })
        .collect()
}

/// A `uri` relative to `%SRCROOT%`: `/`-separated, percent-encoded where a URI needs it.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.trim_start_matches("./").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn location(file: &str, line: u64, column: Option<u64>) -> Location {
    Location {
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation {
                uri: uri(file),
                uri_base_id: "%SRCROOT%",
            },
            region: Region {
                start_line: line.max(1),
                start_column: column.filter(|c| *c >= 1),
            },
        },
    }
}

/// The report as one SARIF log; `baseline` says whether a baseline was applied (then each
/// result has its `baselineState`).
pub fn log(report: &Report, version: &str, baseline: bool) -> Log {
    let rules = Rule::ALL
        .iter()
        .map(|r| RuleDescriptor {
            id: r.id(),
            name: pascal(r.title()),
            short_description: Text {
                text: r.title().to_owned(),
            },
            full_description: Text {
                text: r.help().to_owned(),
            },
            help: Text {
                text: r.help().to_owned(),
            },
            default_configuration: Configuration {
                level: level(r.severity()),
            },
            properties: RuleProperties {
                tags: vec!["security", "iac"],
                security_severity: security_severity(r.severity()),
                precision: "high",
            },
        })
        .collect();
    let results = report
        .problems
        .iter()
        .map(|p| SarifResult {
            rule_id: p.rule.id(),
            rule_index: Rule::ALL
                .iter()
                .position(|r| *r == p.rule)
                .unwrap_or_default(),
            level: level(p.severity),
            message: Text {
                text: p.message.clone(),
            },
            locations: vec![location(&p.file, p.line, p.column)],
            partial_fingerprints: [(FINGERPRINT, p.fingerprint())].into(),
            baseline_state: baseline.then_some(if p.baselined { "unchanged" } else { "new" }),
            properties: ResultProperties {
                severity: p.severity.as_str(),
                key: p.key.clone(),
            },
        })
        .collect();
    let notifications = report
        .errors
        .iter()
        .map(|e| Notification {
            level: "error",
            message: Text {
                text: e.reason.clone(),
            },
            locations: vec![location(&e.file, e.line, None)],
        })
        .collect();
    Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: "keyward",
                    version: version.to_owned(),
                    information_uri: INFORMATION_URI,
                    rules,
                },
            },
            results,
            invocations: vec![Invocation {
                execution_successful: report.errors.is_empty(),
                tool_execution_notifications: notifications,
            }],
            column_kind: "unicodeCodePoints",
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_relative_and_encoded() {
        assert_eq!(uri("./infra/iam.tf"), "infra/iam.tf");
        assert_eq!(uri("k8s/my app.yaml"), "k8s/my%20app.yaml");
        assert_eq!(
            pascal("IAM policy allows iam:PassRole"),
            "IamPolicyAllowsIamPassrole"
        );
    }
}

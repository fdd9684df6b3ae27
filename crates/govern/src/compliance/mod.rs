//! Compliance scorecards: each control of SOC 2, PCI DSS 4.0 and ISO/IEC 27001:2022 that
//! machine identities bear on, mapped to what Keyward checks ([`frameworks`]), judged from
//! the estate's [`Facts`], with the identities and findings that decide it and evidence a
//! reviewer can follow (a finding id, an audit entry, a baseline approval).
//!
//! A control is `fail` when a finding its mapping names as failing is open or a requirement
//! does not hold (the audit chain verifies, baselines were reviewed recently, events
//! arrive), `warn` when only a warning finding is open (PCI's day-75 rotation warning), and
//! `pass` otherwise. Pure: the engine gathers the facts.

mod frameworks;
mod render;

use serde::Serialize;

pub use frameworks::{CONTROLS, ControlDef, Requirement};
pub use render::{csv, html, table};

/// A framework Keyward scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Framework {
    #[serde(rename = "soc2")]
    Soc2,
    #[serde(rename = "pci-dss-4")]
    PciDss4,
    #[serde(rename = "iso27001-2022")]
    Iso27001,
}

impl Framework {
    pub const ALL: [Framework; 3] = [Framework::Soc2, Framework::PciDss4, Framework::Iso27001];

    /// As `--framework` takes it.
    pub fn id(self) -> &'static str {
        match self {
            Framework::Soc2 => "soc2",
            Framework::PciDss4 => "pci-dss-4",
            Framework::Iso27001 => "iso27001-2022",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Framework::Soc2 => "SOC 2 (2017 Trust Services Criteria, revised 2022)",
            Framework::PciDss4 => "PCI DSS v4.0.1",
            Framework::Iso27001 => "ISO/IEC 27001:2022 Annex A",
        }
    }

    pub fn parse(s: &str) -> Option<Framework> {
        Framework::ALL.into_iter().find(|f| f.id() == s)
    }
}

/// One open finding, as a control sees it.
#[derive(Debug, Clone, Serialize)]
pub struct OpenFinding {
    pub id: String,
    pub rule_id: String,
    pub severity: String,
    pub identity: Option<String>,
    pub summary: String,
}

/// What the controls are judged from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    pub now: i64,
    /// Identities in the inventory.
    pub identities: usize,
    /// Events stored, and the newest one's time.
    pub events: u64,
    pub latest_event: Option<i64>,
    pub findings: Vec<OpenFinding>,
    /// The audit chain verified end to end; its length and head.
    pub audit_intact: bool,
    pub audit_entries: u64,
    pub audit_head: Option<(i64, String)>,
    /// Approved baselines, and the newest approval.
    pub baselines: usize,
    pub latest_baseline: Option<(i64, String)>,
}

/// A control's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// Something a reviewer can open: `kind` is `finding`, `audit`, `baseline`, `events` or
/// `inventory`; `reference` its id; `command` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub kind: &'static str,
    pub reference: String,
    pub detail: String,
    pub command: String,
}

/// One control judged.
#[derive(Debug, Clone, Serialize)]
pub struct ControlResult {
    pub id: &'static str,
    pub title: &'static str,
    pub status: Status,
    /// Why, in one sentence.
    pub why: String,
    /// What Keyward checks for it.
    pub checks: Vec<&'static str>,
    pub identities: Vec<String>,
    pub findings: Vec<String>,
    pub evidence: Vec<Evidence>,
}

/// A framework's scorecard.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub framework: Framework,
    pub title: &'static str,
    pub generated_at: i64,
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub controls: Vec<ControlResult>,
}

/// At most this many findings are listed as evidence per control (all are counted).
const EVIDENCE_PER_CONTROL: usize = 50;

/// Scores `framework` on `facts`.
pub fn report(framework: Framework, facts: &Facts) -> Report {
    let controls: Vec<ControlResult> = CONTROLS
        .iter()
        .filter(|c| c.framework == framework)
        .map(|c| judge(c, facts))
        .collect();
    let count = |s: Status| controls.iter().filter(|c| c.status == s).count();
    Report {
        framework,
        title: framework.title(),
        generated_at: facts.now,
        pass: count(Status::Pass),
        warn: count(Status::Warn),
        fail: count(Status::Fail),
        controls,
    }
}

fn finding_evidence(f: &OpenFinding) -> Evidence {
    Evidence {
        kind: "finding",
        reference: f.id.clone(),
        detail: format!("{} ({}): {}", f.rule_id, f.severity, f.summary),
        command: format!("keyward findings show {}", f.id),
    }
}

fn judge(c: &ControlDef, facts: &Facts) -> ControlResult {
    let failing: Vec<&OpenFinding> = facts
        .findings
        .iter()
        .filter(|f| c.fail_on.contains(&f.rule_id.as_str()))
        .collect();
    let warning: Vec<&OpenFinding> = facts
        .findings
        .iter()
        .filter(|f| c.warn_on.contains(&f.rule_id.as_str()))
        .collect();
    let mut status = Status::Pass;
    let mut why = Vec::new();
    let mut evidence = Vec::new();
    if !failing.is_empty() {
        status = Status::Fail;
        why.push(format!("{} open finding(s) fail it", failing.len()));
    }
    if !warning.is_empty() {
        status = status.max(Status::Warn);
        why.push(format!("{} open finding(s) warn", warning.len()));
    }
    for r in c.requires {
        let (held, said, ev) = requirement(*r, facts);
        if let Some(e) = ev {
            evidence.push(e);
        }
        if !held {
            status = Status::Fail;
            why.push(said);
        }
    }
    if status == Status::Pass {
        why.push(if c.fail_on.is_empty() && c.warn_on.is_empty() {
            "every requirement holds".to_owned()
        } else {
            format!(
                "no open finding of {} across {} identities",
                c.fail_on
                    .iter()
                    .chain(c.warn_on)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                facts.identities
            )
        });
    }
    let deciding: Vec<&OpenFinding> = failing.iter().chain(&warning).copied().collect();
    let mut identities: Vec<String> = deciding.iter().filter_map(|f| f.identity.clone()).collect();
    identities.sort();
    identities.dedup();
    evidence.extend(
        deciding
            .iter()
            .take(EVIDENCE_PER_CONTROL)
            .map(|f| finding_evidence(f)),
    );
    ControlResult {
        id: c.id,
        title: c.title,
        status,
        why: why.join("; "),
        checks: c.fail_on.iter().chain(c.warn_on).copied().collect(),
        identities,
        findings: deciding.iter().map(|f| f.id.clone()).collect(),
        evidence,
    }
}

/// Whether a requirement holds, what to say when it does not, and its evidence.
fn requirement(r: Requirement, facts: &Facts) -> (bool, String, Option<Evidence>) {
    match r {
        Requirement::AuditIntact => {
            let ev = facts.audit_head.as_ref().map(|(seq, mac)| Evidence {
                kind: "audit",
                reference: format!("audit:{seq}"),
                detail: format!(
                    "{} entries, keyed MAC chain {}; head {seq} {mac}",
                    facts.audit_entries,
                    if facts.audit_intact {
                        "intact"
                    } else {
                        "BROKEN"
                    }
                ),
                command: "keyward audit verify".into(),
            });
            (
                facts.audit_intact,
                "the audit log's chain does not verify (`keyward audit verify`)".into(),
                ev,
            )
        }
        Requirement::BaselinesWithinDays(days) => {
            let recent = facts
                .latest_baseline
                .as_ref()
                .is_some_and(|(at, _)| facts.now - at <= i64::from(days) * 86_400_000);
            let ev = facts.latest_baseline.as_ref().map(|(at, by)| Evidence {
                kind: "baseline",
                reference: format!("baselines:{}", facts.baselines),
                detail: format!(
                    "{} approved baselines, the newest approved {} by {by}",
                    facts.baselines,
                    iso(*at)
                ),
                command: "keyward baseline list".into(),
            });
            (
                recent,
                format!(
                    "no access review: no baseline approved in the last {days} days (`keyward baseline approve`)"
                ),
                ev,
            )
        }
        Requirement::EventsWithinDays(days) => {
            let recent = facts
                .latest_event
                .is_some_and(|at| facts.now - at <= i64::from(days) * 86_400_000);
            let ev = facts.latest_event.map(|at| Evidence {
                kind: "events",
                reference: format!("events:{}", facts.events),
                detail: format!("{} events stored, the newest at {}", facts.events, iso(at)),
                command: "keyward watch --help  # or: keyward ingest".into(),
            });
            (
                recent,
                format!("no activity log read in the last {days} days: monitoring is not shown"),
                ev,
            )
        }
        Requirement::Inventory => (
            facts.identities > 0,
            "no identity inventoried: nothing to judge (`keyward ingest`)".into(),
            Some(Evidence {
                kind: "inventory",
                reference: format!("identities:{}", facts.identities),
                detail: format!("{} identities inventoried", facts.identities),
                command: "keyward inventory".into(),
            }),
        ),
    }
}

fn iso(ms: i64) -> String {
    keyward_model::time::format(ms)
}

#[cfg(test)]
mod tests;

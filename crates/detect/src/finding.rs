//! Findings: what a rule, a check, a baseline or a posture control concluded about an
//! identity, with the evidence.

use std::fmt;

use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};

/// How bad a finding is. Ordered: `Info < Low < … < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[serde(alias = "informational")]
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "info" | "informational" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A threat is activity (an event or a sequence of them); posture is a standing condition
/// read from snapshots and the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Threat,
    Posture,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Threat => "threat",
            Kind::Posture => "posture",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "threat" => Some(Kind::Threat),
            "posture" => Some(Kind::Posture),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    #[default]
    Open,
    Acknowledged,
    FalsePositive,
    Resolved,
    /// Recorded, not alerted: the identity's pattern of life. The rule matched behaviour
    /// it showed in every week of its training window (see `Detector`), and the rule is
    /// not marked `always`.
    Expected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::FalsePositive => "false-positive",
            Status::Resolved => "resolved",
            Status::Expected => "expected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Status::Open,
            "acknowledged" => Status::Acknowledged,
            "false-positive" => Status::FalsePositive,
            "resolved" => Status::Resolved,
            "expected" => Status::Expected,
            _ => return None,
        })
    }

    /// Open, acknowledged and expected findings are still current: later matches extend
    /// them rather than open new ones.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Open | Status::Acknowledged | Status::Expected)
    }

    /// Open and acknowledged findings are alerts a person works on (expected ones are
    /// recorded, not alerted).
    pub fn is_alert(self) -> bool {
        matches!(self, Status::Open | Status::Acknowledged)
    }
}

/// At most this many evidence event ids are kept on one finding (the first and the latest).
pub const MAX_EVIDENCE: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Derived from content (see [`finding_id`]): the same input yields the same id.
    pub id: String,
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub kind: Kind,
    /// Canonical id of the identity the finding is about, when there is one.
    pub identity: Option<String>,
    /// MITRE ATT&CK technique ids (`T1098.001`).
    pub attack: Vec<String>,
    /// Native ids of the events that are the evidence (at most [`MAX_EVIDENCE`]).
    pub events: Vec<String>,
    /// The graph path that explains the finding (identity → … → resource), when one applies.
    pub path: Vec<String>,
    pub first_seen: Millis,
    pub last_seen: Millis,
    /// How many times the condition was seen (events, or posture evaluations).
    pub count: u64,
    pub status: Status,
    /// One line a human reads first.
    pub summary: String,
    /// Rule-specific facts: the signals that fired, the risk factors, the matched fields.
    /// Written with its keys sorted, however it was built.
    #[serde(serialize_with = "keyward_model::json::serialize_sorted")]
    pub details: serde_json::Value,
}

/// A finding id: `kwf-` and 20 hex digits of BLAKE3 over the rule, the identity and the
/// rule's discriminating key (the first evidence event, or the posture subject).
pub fn finding_id(rule_id: &str, identity: Option<&str>, key: &str) -> String {
    let mut h = blake3::Hasher::new();
    for part in [rule_id, identity.unwrap_or(""), key] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let hex = h.finalize().to_hex();
    format!("kwf-{}", hex.get(..20).unwrap_or_default())
}

impl Finding {
    /// An open low-severity threat finding with nothing in it, for tests.
    #[cfg(test)]
    pub(crate) fn blank() -> Finding {
        Finding {
            id: String::new(),
            rule_id: String::new(),
            title: String::new(),
            severity: Severity::Low,
            kind: Kind::Threat,
            identity: None,
            attack: Vec::new(),
            events: Vec::new(),
            path: Vec::new(),
            first_seen: 0,
            last_seen: 0,
            count: 0,
            status: Status::Open,
            summary: String::new(),
            details: serde_json::Value::Null,
        }
    }

    /// The rule that opened the finding and the rules folded into it (matches of other
    /// rules on the same events, listed in `details.also`).
    pub fn rules(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.rule_id.as_str()).chain(
            self.details
                .get("also")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_str),
        )
    }

    /// Folds a later sighting of the same finding into this one.
    /// Adds an evidence event id (once), keeping the first and the latest
    /// [`MAX_EVIDENCE`] − 1.
    pub fn add_evidence(&mut self, id: &str) {
        // The newest is the likeliest repeat.
        if self.events.iter().rev().any(|e| e == id) {
            return;
        }
        self.push_evidence(id);
    }

    /// [`Finding::add_evidence`] for an id known not to be listed.
    pub(crate) fn push_evidence(&mut self, id: &str) {
        if self.events.len() >= MAX_EVIDENCE {
            // The dropped id's buffer takes the new one.
            let mut reuse = self.events.remove(1.min(self.events.len() - 1));
            reuse.clear();
            reuse.push_str(id);
            self.events.push(reuse);
        } else {
            self.events.push(id.to_owned());
        }
    }

    pub fn merge(&mut self, later: &Finding) {
        self.first_seen = self.first_seen.min(later.first_seen);
        self.last_seen = self.last_seen.max(later.last_seen);
        self.count += later.count;
        for e in &later.events {
            self.add_evidence(e);
        }
        if later.severity > self.severity {
            self.severity = later.severity;
        }
        if !later.path.is_empty() {
            self.path.clone_from(&later.path);
        }
        if !later.details.is_null() {
            self.details.clone_from(&later.details);
        }
        self.summary.clone_from(&later.summary);
    }
}

/// ATT&CK technique ids from Sigma tags (`attack.t1098.001` → `T1098.001`).
pub fn attack_from_tags(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter_map(|t| t.strip_prefix("attack.t"))
        .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        .map(|t| format!("T{}", t.to_ascii_uppercase()))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn ids_depend_on_every_part() {
        let a = finding_id("r", Some("i"), "k");
        assert_eq!(a, finding_id("r", Some("i"), "k"));
        assert_ne!(a, finding_id("r", Some("ik"), ""));
        assert_ne!(a, finding_id("r", None, "k"));
        assert!(a.starts_with("kwf-") && a.len() == 24);
    }

    /// Evidence keeps the first event and the newest ones, each once.
    #[test]
    fn evidence_keeps_the_first_and_the_newest() {
        let mut f = Finding::blank();
        for n in 0..50 {
            f.add_evidence(&format!("e{n}"));
            f.add_evidence(&format!("e{n}"));
            f.add_evidence("e0");
        }
        let want: Vec<String> = std::iter::once(0)
            .chain(50 - MAX_EVIDENCE as i32 + 1..50)
            .map(|n| format!("e{n}"))
            .collect();
        assert_eq!(f.events, want);
    }

    #[test]
    fn attack_tags() {
        let tags = ["attack.persistence".into(), "attack.t1098.001".into()];
        assert_eq!(attack_from_tags(&tags), ["T1098.001"]);
    }
}

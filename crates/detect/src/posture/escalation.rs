//! `kw-posture-escalation`: an identity that can make itself admin-equivalent, and the
//! groups every member of which can.
//!
//! For an AWS user or role the escalation analysis of its account's IAM snapshot at the
//! evaluation's time decides ([`IamFacts::escalation`]: the shortest path to admin, a
//! lateral move to a principal that is not admin is not one). Identities without a
//! snapshot are judged from their permission scope in the graph.

use keyward_graph::iam::escalation::{Path, Step};
use keyward_model::ids;
use keyward_model::time::Millis;
use serde_json::json;

use super::{Control, Facts, Hit};
use crate::finding::finding_id;
use crate::{Finding, Kind, Severity, Status};

pub(super) const CONTROL: Control = Control {
    id: "kw-posture-escalation",
    title: "Can escalate its privileges",
    description: "Has a path to admin-equivalent power by techniques of the pathfinding.cloud \
                  catalogue and Keyward's own (joining a group, setting an old policy \
                  version as default, writing the policies of a role it can assume or of \
                  its group), with its group policies counted and time conditions decided; \
                  a group is reported when every member can.",
};

/// The graph node of what a step acts on: a policy's node, or a group's canonical id.
pub(super) fn via_node(via: &str) -> String {
    if via.contains(":policy/") {
        format!("iam-policy:{via}")
    } else {
        ids::canonical_iam_arn(via).unwrap_or_else(|| via.to_owned())
    }
}

/// `from`'s path as the graph nodes it goes through (the group joined or the policy
/// written where a step stays on the same principal).
fn nodes(from: &str, path: &Path) -> Vec<String> {
    let mut out = vec![from.to_owned()];
    for s in &path.steps {
        let next = s.via.as_deref().map_or_else(|| s.to.clone(), via_node);
        if out.last() != Some(&next) {
            out.push(next);
        }
    }
    out
}

fn describe(s: &Step) -> String {
    let mut d = match &s.via {
        Some(via) => format!("{} on {via}", s.technique),
        None if s.to == s.from => s.technique.to_owned(),
        None => format!("{} → {}", s.technique, s.to),
    };
    if !s.conditional.is_empty() {
        let keys: Vec<&str> = s.conditional.iter().map(String::as_str).collect();
        d.push_str(&format!(" (if {})", keys.join(", ")));
    }
    d
}

fn summary(who: &str, path: &Path) -> String {
    let steps: Vec<String> = path.steps.iter().map(describe).collect();
    format!("{who} can escalate to admin: {}", steps.join(", then "))
}

fn evidence(path: &Path) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = path
        .steps
        .iter()
        .map(|s| {
            json!({"technique": s.technique, "from": s.from, "to": s.to, "via": s.via,
                   "conditional": s.conditional,
                   "existing_workload": s.via_existing_workload})
        })
        .collect();
    json!({ "steps": steps })
}

pub(super) fn check(f: &Facts) -> Option<Hit> {
    let i = f.identity;
    let Some(iam) = &f.iam else {
        let path = std::iter::once(i.id.clone())
            .chain(f.p.target.clone())
            .collect();
        let summary = format!("{}: {}", i.id, f.p.why);
        return (f.p.p >= 8.0 && f.p.p < 10.0).then(|| {
            Hit::of(&CONTROL, Severity::High, summary)
                .attack(&["T1098"])
                .path(path)
        });
    };
    let path = iam.escalation.filter(|p| !p.steps.is_empty())?;
    Some(
        Hit::of(&CONTROL, Severity::High, summary(&i.id, path))
            .attack(&["T1098"])
            .path(nodes(&i.id, path))
            .evidence(evidence(path)),
    )
}

/// The finding for IAM group `group` (canonical id) when every member can escalate by
/// `path` through the group's policies alone.
pub fn group_finding(group: &str, path: &Path, now: Millis) -> Option<Finding> {
    if path.steps.is_empty() {
        return None;
    }
    let name = group.rsplit('/').next().unwrap_or(group);
    Some(Finding {
        id: finding_id(CONTROL.id, None, group),
        rule_id: CONTROL.id.into(),
        title: CONTROL.title.into(),
        severity: Severity::High,
        kind: Kind::Posture,
        identity: None,
        attack: vec!["T1098".into()],
        events: Vec::new(),
        path: nodes(group, path),
        first_seen: now,
        last_seen: now,
        count: 1,
        status: Status::Open,
        summary: summary(&format!("every member of group {name}"), path),
        details: json!({"group": group, "evidence": evidence(path)}),
    })
}

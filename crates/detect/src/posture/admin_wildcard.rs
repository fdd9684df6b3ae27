//! `kw-posture-admin-wildcard`: allowed every action on every resource, with the policies
//! that grant it.
//!
//! For an AWS user or role its account's IAM snapshot decides ([`IamFacts::admin`]: an
//! `Allow` of `*` on `*` in an inline, managed or group policy, capped by the boundary,
//! not undone by a `Deny` that certainly applies). Other identities (Kubernetes subjects)
//! are judged from their permission scope in the graph.

use keyward_model::ids;
use serde_json::json;

use super::escalation::via_node;
use super::{Control, Facts, Hit};
use crate::Severity;

pub(super) const CONTROL: Control = Control {
    id: "kw-posture-admin-wildcard",
    title: "Administrator wildcard permissions",
    description: "Allowed every action on every resource: an `Allow` of `*` on `*` in an \
                  inline, managed or group policy (named in the finding), not capped by a \
                  permissions boundary nor undone by a `Deny` that certainly applies; \
                  service-linked roles are left out.",
};

pub(super) fn check(f: &Facts) -> Option<Hit> {
    let i = f.identity;
    let Some(iam) = &f.iam else {
        let summary = format!("{}: {}", i.id, f.p.why);
        let path = std::iter::once(i.id.clone())
            .chain(f.p.target.clone())
            .collect();
        return (f.p.p >= 10.0).then(|| {
            Hit::of(&CONTROL, Severity::High, summary)
                .attack(&["T1078.004"])
                .path(path)
        });
    };
    let grant = iam.admin?;
    let mut summary = format!(
        "{}: allowed `*` on `*` by {}",
        i.id,
        grant.granted_by.join(", ")
    );
    if !grant.conditional.is_empty() {
        let keys: Vec<&str> = grant.conditional.iter().map(String::as_str).collect();
        summary.push_str(&format!(" (conditions on {})", keys.join(", ")));
    }
    let path = grant
        .granted_by
        .first()
        .map_or_else(|| vec![i.id.clone()], |by| path(f, by));
    Some(
        Hit::of(&CONTROL, Severity::High, summary)
            .attack(&["T1078.004"])
            .path(path)
            .evidence(json!({
                "granted_by": grant.granted_by,
                "conditional": grant.conditional,
            })),
    )
}

/// The graph nodes from the identity to what grants it: its group (for a group's policy),
/// then the managed policy (an inline policy has no node of its own).
fn path(f: &Facts, source: &str) -> Vec<String> {
    let i = f.identity;
    let mut out = vec![i.id.clone()];
    let rest = match source
        .strip_prefix("group:")
        .and_then(|r| r.split_once('/'))
    {
        Some((group, rest)) => {
            let account = i.account.as_deref().unwrap_or_default();
            out.push(ids::iam(account, "group", group));
            rest
        }
        None => source,
    };
    if let Some(arn) = rest.strip_prefix("managed:") {
        out.push(via_node(arn));
    }
    out
}

//! `kw-posture-escalation`: an identity that can make itself admin-equivalent, and the
//! groups every member of which can.
//!
//! For an AWS user or role the escalation analysis of its account's IAM snapshot at the
//! evaluation's time decides ([`IamFacts::escalation`]: the shortest path to admin, a
//! lateral move to a principal that is not admin is not one). Identities without a
//! snapshot are judged from their permission scope in the graph.

use keyward_graph::iam::escalation::{Path, Step, Target, technique};
use keyward_model::ids;
use keyward_model::time::Millis;
use serde_json::json;

use super::{Control, Facts, Hit, fix};
use crate::finding::finding_id;
use crate::remediation::{self, Remediation};
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
                .remediation(without_snapshot(f))
        });
    };
    let path = iam.escalation.filter(|p| !p.steps.is_empty())?;
    let mut r = fix::principal(i)
        .map(|p| deny_first_step(p, path))
        .unwrap_or_default();
    r.terraform = fix::terraform(
        &f.defined_in,
        "remove the permission from the policy resource that grants it",
    );
    Some(
        Hit::of(&CONTROL, Severity::High, summary(&i.id, path))
            .attack(&["T1098"])
            .path(nodes(&i.id, path))
            .evidence(evidence(path))
            .remediation(r),
    )
}

/// The inline policy that breaks an escalation path.
const DENY_POLICY: &str = "KeywardDenyEscalation";

/// What the deny of a step names: the actions the step needs, on what they act. Only
/// `iam:PassRole` of a role passed to a new workload (the service's own actions are
/// everyday work); actions on an existing workload, which the snapshot does not name,
/// everywhere.
fn deny_of(s: &Step) -> Option<(Vec<&'static str>, Vec<String>, bool)> {
    let t = technique(s.technique)?;
    let on = |id: &str| fix::any_path(id);
    Some(match t.target {
        Target::SelfPolicy => {
            let at = match &s.via {
                Some(via) => vec![via.clone()],
                None => on(&s.from),
            };
            (t.actions.to_vec(), at, false)
        }
        Target::User | Target::Role => (t.actions.to_vec(), on(&s.to), false),
        Target::PassRole(_) => (vec!["iam:PassRole"], on(&s.to), false),
        Target::ExistingWorkload(_) => (t.actions.to_vec(), vec!["*".into()], true),
    })
}

/// An explicit deny of the path's first step on the principal (a user, role or group):
/// a deny wins over every allow, and deleting the inline policy undoes it.
fn deny_first_step(p: fix::Principal<'_>, path: &Path) -> Remediation {
    let Some(first) = path.steps.first() else {
        return Remediation::default();
    };
    let Some((actions, resources, everywhere)) = deny_of(first) else {
        return Remediation::new(vec![remediation::Step::now(
            format!(
                "Remove the permission {} `{}` uses for {} ({}) from its policies",
                p.noun,
                p.name,
                first.technique,
                describe(first)
            ),
            Vec::new(),
        )]);
    };
    let doc = fix::policy(json!({
        "Sid": "KeywardDenyEscalation",
        "Effect": "Deny",
        "Action": actions,
        "Resource": resources,
    }));
    let mut summary = format!(
        "Break the path at its first step ({}): deny {} `{}` {} on {}. An explicit deny wins over every allow, and `{}` undoes it",
        describe(first),
        p.noun,
        p.name,
        actions.join(", "),
        resources.join(", "),
        p.delete_policy(DENY_POLICY)
    );
    if everywhere {
        summary.push_str(
            "; the snapshot does not name the workloads it would act on, so this denies the actions everywhere: narrow `Resource` to them if it needs the actions elsewhere",
        );
    }
    Remediation::new(vec![
        remediation::Step::now(summary, vec![p.put_policy(DENY_POLICY, &doc)]),
        remediation::Step::now(
            format!(
                "Then remove the allow from the policy that grants it (its policies: `aws iam list-{n}-policies` and `aws iam list-attached-{n}-policies`); another path may remain, which the next `keyward ingest` of the snapshot shows",
                n = p.noun
            ),
            Vec::new(),
        ),
    ])
}

/// Without the account's IAM snapshot the path is not known: what to ingest.
fn without_snapshot(f: &Facts) -> Remediation {
    Remediation::new(vec![remediation::Step::now(
        format!(
            "No IAM snapshot of account `{}` shows how `{}` escalates: ingest one for the exact commands",
            f.identity.account.as_deref().unwrap_or("?"),
            f.identity.id
        ),
        vec![
            "aws iam get-account-authorization-details --output json > iam-authorization-details.json".into(),
            "keyward ingest iam-authorization-details.json".into(),
        ],
    )])
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
        details: json!({
            "group": group,
            "evidence": evidence(path),
            "remediation": deny_first_step(fix::Principal { noun: "group", name }, path),
        }),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::posture::IamFacts;
    use crate::posture::testing::{commands, facts, user};
    use std::collections::BTreeSet;

    fn step(technique: &'static str, from: &str, to: &str, via: Option<&str>) -> Step {
        Step {
            technique,
            from: from.into(),
            to: to.into(),
            reaches_admin: true,
            conditional: BTreeSet::new(),
            via_existing_workload: false,
            via: via.map(str::to_owned),
        }
    }

    #[test]
    fn denies_the_first_step_on_the_policy_it_acts_on() {
        let i = user("x'; rm -rf /");
        let path = Path {
            steps: vec![step(
                "iam-001",
                "arn:aws:iam::1:user/x'; rm -rf /",
                "arn:aws:iam::1:user/x'; rm -rf /",
                Some("arn:aws:iam::1:policy/ops"),
            )],
        };
        let mut f = facts(&i);
        f.iam = Some(IamFacts {
            admin: None,
            escalation: Some(&path),
        });
        let h = check(&f).unwrap();
        assert_eq!(
            commands(&h),
            [
                r#"aws iam put-user-policy --user-name 'x'\''; rm -rf /' --policy-name KeywardDenyEscalation --policy-document '{"Statement":[{"Action":["iam:CreatePolicyVersion"],"Effect":"Deny","Resource":["arn:aws:iam::1:policy/ops"],"Sid":"KeywardDenyEscalation"}],"Version":"2012-10-17"}'"#
            ]
        );
    }

    #[test]
    fn a_passed_role_is_denied_to_pass_whatever_its_path() {
        let path = Path {
            steps: vec![step(
                "lambda-001",
                "arn:aws:iam::1:group/automation",
                "arn:aws:iam::1:role/admin",
                None,
            )],
        };
        let f = group_finding("arn:aws:iam::1:group/automation", &path, 0).unwrap();
        let r = crate::remediation::Remediation::of(&f).unwrap();
        assert_eq!(
            r.steps[0].commands,
            [
                r#"aws iam put-group-policy --group-name automation --policy-name KeywardDenyEscalation --policy-document '{"Statement":[{"Action":["iam:PassRole"],"Effect":"Deny","Resource":["arn:aws:iam::1:role/admin","arn:aws:iam::1:role/*/admin"],"Sid":"KeywardDenyEscalation"}],"Version":"2012-10-17"}'"#
            ]
        );
    }
}

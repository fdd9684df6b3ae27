//! `kw-posture-admin-wildcard`: allowed every action on every resource, with the policies
//! that grant it.
//!
//! For an AWS user or role its account's IAM snapshot decides ([`IamFacts::admin`]: an
//! `Allow` of `*` on `*` in an inline, managed or group policy, capped by the boundary,
//! not undone by a `Deny` that certainly applies). Other identities (Kubernetes subjects)
//! are judged from their permission scope in the graph.

use keyward_graph::iam::admin::AdminGrant;
use keyward_model::ids;
use serde_json::json;

use super::escalation::via_node;
use super::{Control, Facts, Hit, fix};
use crate::Severity;
use crate::remediation::{Remediation, Step, shell_quote as q};

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
                .remediation(without_snapshot(f))
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
            }))
            .remediation(scoped(f, grant)),
    )
}

/// The inline policy of what the identity was seen doing.
const OBSERVED_POLICY: &str = "KeywardObservedUse";

/// A policy of observed use, then the grants of `*` removed.
fn scoped(f: &Facts, grant: &AdminGrant) -> Remediation {
    let i = f.identity;
    let Some(p) = fix::principal(i) else {
        return Remediation::default();
    };
    let mut steps = Vec::new();
    let doc = f
        .observed
        .as_ref()
        .filter(|o| !o.actions.is_empty())
        .map(|o| {
            let doc = fix::policy(json!({"Effect": "Allow", "Action": o.actions, "Resource": "*"}));
            let summary = format!(
                "Give {} `{}` an inline policy of what it was seen doing: {} action(s) in the {} most recent stored event(s) of it{}. CloudTrail names most calls as IAM names their actions, not all (`s3:ListObjects` is allowed by `s3:ListBucket`): review the list, and narrow `Resource` where you can",
                p.noun,
                p.name,
                o.actions.len(),
                o.events,
                if o.actors > 1 {
                    format!(" and its {} most recent session(s)", o.actors - 1)
                } else {
                    String::new()
                }
            );
            steps.push(Step::now(summary, vec![p.put_policy(OBSERVED_POLICY, &doc)]));
            doc
        });
    if doc.is_none() {
        steps.push(Step::now(
            format!(
                "No stored activity of `{}`: Keyward cannot suggest a policy of observed use; ingest its CloudTrail first, or write the policy its work needs",
                i.id
            ),
            Vec::new(),
        ));
    }
    let mut remove = Vec::new();
    let mut via_group = Vec::new();
    for source in &grant.granted_by {
        match source
            .split_once('/')
            .filter(|_| source.starts_with("group:"))
        {
            Some((group, _)) => {
                let group = group.trim_start_matches("group:");
                if !via_group.iter().any(|g| g == group) {
                    via_group.push(group.to_owned());
                    remove.push(format!(
                        "aws iam remove-user-from-group --group-name {} --user-name {}",
                        q(group),
                        q(p.name)
                    ));
                }
            }
            None => remove.extend(ungrant(p, source)),
        }
    }
    let mut summary = format!(
        "Then take away `*` on `*` ({}): attaching a managed policy again, or putting back the \
         inline policy shown first, undoes it",
        grant.granted_by.join(", ")
    );
    if !via_group.is_empty() {
        summary.push_str(&format!(
            "; a group grants it ({}), and taking `{}` out of the group takes away everything else the group gives as well",
            via_group.join(", "),
            p.name
        ));
    }
    steps.push(Step::now(summary, remove));
    let mut r = Remediation::new(steps);
    r.terraform = fix::terraform(
        &f.defined_in,
        &match doc {
            Some(doc) => format!(
                "add the policy of observed use as an `aws_iam_{}_policy` with `policy = jsonencode({doc})`, and remove the attachment of `*` on `*`",
                p.noun
            ),
            None => "remove the attachment of `*` on `*`".into(),
        },
    );
    r
}

/// The commands that remove one of the principal's own grants (`inline:<name>`,
/// `managed:<arn>`): an inline policy is shown first, to keep a copy.
fn ungrant(p: fix::Principal<'_>, source: &str) -> Vec<String> {
    if let Some(name) = source.strip_prefix("inline:") {
        return vec![
            format!(
                "aws iam get-{}-policy {} --policy-name {}",
                p.noun,
                p.arg(),
                q(name)
            ),
            p.delete_policy(name),
        ];
    }
    if let Some(arn) = source.strip_prefix("managed:") {
        return vec![format!(
            "aws iam detach-{}-policy {} --policy-arn {}",
            p.noun,
            p.arg(),
            q(arn)
        )];
    }
    Vec::new()
}

/// Without the account's IAM snapshot the granting policy is unknown: what to ingest, or
/// for a Kubernetes subject, the bindings that may grant it.
fn without_snapshot(f: &Facts) -> Remediation {
    let i = f.identity;
    if fix::principal(i).is_some() {
        return Remediation::new(vec![Step::now(
            format!(
                "No IAM snapshot of account `{}` names the policy that grants `*`: ingest one for the exact commands",
                i.account.as_deref().unwrap_or("?")
            ),
            vec![
                "aws iam get-account-authorization-details --output json > iam-authorization-details.json".into(),
                "keyward ingest iam-authorization-details.json".into(),
            ],
        )]);
    }
    let cluster = i.cluster.as_deref().unwrap_or_default();
    let ns = i.namespace.as_deref().unwrap_or("default");
    let bindings = fix::bindings_of(i);
    let admin: Vec<&(String, String)> = bindings
        .iter()
        .filter(|(_, role)| role == "ClusterRole cluster-admin")
        .collect();
    let mut commands = Vec::new();
    for (b, _) in &admin {
        commands.extend(fix::unbind(
            cluster,
            b,
            &fix::Subject::service_account(&i.name, ns),
            false,
        ));
    }
    let summary = if admin.is_empty() {
        format!(
            "Which binding of `{}` grants `*` is shown by `keyward graph rbac`: take it out of that binding, and bind a Role of what it needs",
            i.id
        )
    } else {
        format!(
            "Take `{ns}/{}` out of the cluster-admin binding(s), then bind a Role of what it needs (Keyward does not yet write one from its audit log)",
            i.name
        )
    };
    Remediation::new(vec![Step::now(summary, commands)])
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::posture::testing::{commands, facts, role, user};
    use crate::posture::{IamFacts, Observed};

    #[test]
    fn a_policy_of_observed_use_replaces_the_managed_grant() {
        let i = role("okta-admin");
        let grant = AdminGrant {
            granted_by: vec!["managed:arn:aws:iam::aws:policy/AdministratorAccess".into()],
            ..AdminGrant::default()
        };
        let mut f = facts(&i);
        f.iam = Some(IamFacts {
            admin: Some(&grant),
            escalation: None,
        });
        f.observed = Some(Observed {
            actions: vec!["s3:GetObject".into(), "sts:GetCallerIdentity".into()],
            events: 12,
            actors: 3,
        });
        let h = check(&f).unwrap();
        assert_eq!(
            commands(&h),
            [
                r#"aws iam put-role-policy --role-name okta-admin --policy-name KeywardObservedUse --policy-document '{"Statement":[{"Action":["s3:GetObject","sts:GetCallerIdentity"],"Effect":"Allow","Resource":"*"}],"Version":"2012-10-17"}'"#,
                "aws iam detach-role-policy --role-name okta-admin --policy-arn arn:aws:iam::aws:policy/AdministratorAccess",
            ]
        );
        let r = h.remediation.unwrap();
        assert!(
            r.steps[0]
                .summary
                .contains("2 action(s) in the 12 most recent"),
            "{}",
            r.steps[0].summary
        );
    }

    #[test]
    fn a_group_grant_takes_the_user_out_of_the_group() {
        let i = user("x'; rm -rf /");
        let grant = AdminGrant {
            granted_by: vec![
                "group:admins/managed:arn:aws:iam::aws:policy/AdministratorAccess".into(),
                "inline:everything".into(),
            ],
            ..AdminGrant::default()
        };
        let mut f = facts(&i);
        f.iam = Some(IamFacts {
            admin: Some(&grant),
            escalation: None,
        });
        let h = check(&f).unwrap();
        assert_eq!(
            commands(&h),
            [
                r"aws iam remove-user-from-group --group-name admins --user-name 'x'\''; rm -rf /'",
                r"aws iam get-user-policy --user-name 'x'\''; rm -rf /' --policy-name everything",
                r"aws iam delete-user-policy --user-name 'x'\''; rm -rf /' --policy-name everything",
            ]
        );
        let r = h.remediation.unwrap();
        assert!(r.steps[0].commands.is_empty(), "no activity, no policy");
    }
}

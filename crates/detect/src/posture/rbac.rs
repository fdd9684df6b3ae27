//! `kw-posture-k8s-rbac`: risky Kubernetes RBAC, one finding per subject — the
//! kubescape-named checks of `keyward graph rbac`, with the binding and role that grant
//! each risky capability.

use keyward_model::time::Millis;
use serde_json::{Value, json};

use super::Control;
use super::fix::{self, Subject};
use crate::finding::finding_id;
use crate::remediation::{Remediation, Step};
use crate::{Finding, Kind, Severity, Status};

pub(super) const CONTROL: Control = Control {
    id: RBAC_RULE,
    title: "Risky Kubernetes RBAC",
    description: "A subject a binding grants a risky capability (read secrets, create pods, \
                  exec, impersonate, bind or escalate, approve certificates, …); anonymous \
                  or unauthenticated subjects are critical. The cluster's own `system:` \
                  bootstrap bindings are left out.",
};

fn is_anonymous(subject: &str) -> bool {
    matches!(subject, "system:anonymous" | "system:unauthenticated")
}

/// Risky Kubernetes RBAC, one finding per subject: the rule id of the control.
pub const RBAC_RULE: &str = "kw-posture-k8s-rbac";

/// What a risky-access check is worth and which ATT&CK technique it enables.
fn rbac_weight(check: &str, cluster_wide: bool) -> (Severity, &'static str) {
    match check {
        "rule-list-all-cluster-admins-v1"
        | "rule-can-bind-escalate"
        | "rule-can-impersonate-users-groups-v1"
        | "rule-can-modify-admission-webhooks"
        | "rule-can-approve-cert-signing-request" => (Severity::High, "T1098"),
        "rule-can-create-service-account-token" => (Severity::High, "T1528"),
        "rule-can-list-get-secrets-v1" if cluster_wide => (Severity::High, "T1552.007"),
        "rule-can-list-get-secrets-v1" => (Severity::Medium, "T1552.007"),
        "exec-into-container-v1" => (Severity::Medium, "T1609"),
        "rule-can-create-pod" | "rule-can-create-pv" if cluster_wide => (Severity::High, "T1610"),
        "rule-can-create-pod" | "rule-can-create-pv" => (Severity::Medium, "T1610"),
        "rule-can-delete-k8s-events-v1" => (Severity::Medium, "T1070"),
        _ => (Severity::Low, "T1078.004"),
    }
}

/// Risky RBAC grants (the kubescape-named checks of `graph rbac`) as posture findings, one
/// per subject, listing every risky capability with the binding and role that grant it.
/// Grants through the cluster's own bootstrap bindings (`system:` names) are not reported,
/// except to anonymous or unauthenticated subjects, which always are (critical).
pub fn findings(cluster: &str, objects: &[serde_json::Value], now: Millis, out: &mut Vec<Finding>) {
    use keyward_graph::k8s::{Rbac, risky_access};
    use std::collections::BTreeMap;
    type Key = (String, String, Option<String>);
    let mut by_subject: BTreeMap<Key, Vec<keyward_graph::k8s::Finding>> = BTreeMap::new();
    for f in risky_access(&Rbac::new(objects)) {
        let s = &f.grant.subject;
        let anonymous = is_anonymous(&s.name);
        let binding_name = f
            .grant
            .binding
            .rsplit([' ', '/'])
            .next()
            .unwrap_or_default();
        if !anonymous && binding_name.starts_with("system:") {
            continue;
        }
        by_subject
            .entry((s.kind.clone(), s.name.clone(), s.namespace.clone()))
            .or_default()
            .push(f);
    }
    for ((kind, name, ns), grants) in by_subject {
        let anonymous = is_anonymous(&name);
        let (identity, shown) = match (kind.as_str(), &ns) {
            ("ServiceAccount", Some(ns)) => (
                Some(keyward_model::ids::k8s_service_account(cluster, ns, &name)),
                format!("service account {ns}/{name}"),
            ),
            ("User", _) => (
                Some(keyward_model::ids::k8s_user(cluster, &name)),
                format!("user {name}"),
            ),
            _ => (None, format!("{} {name}", kind.to_lowercase())),
        };
        let mut severity = Severity::Info;
        let mut attack: Vec<String> = Vec::new();
        let mut worst: Option<&keyward_graph::k8s::Finding> = None;
        let mut what: Vec<String> = Vec::new();
        let mut details = Vec::new();
        for g in &grants {
            let (sev, technique) = rbac_weight(g.check, g.grant.namespace.is_none());
            let sev = if anonymous { Severity::Critical } else { sev };
            if worst.is_none() || sev > severity {
                severity = sev;
                worst = Some(g);
            }
            if !attack.iter().any(|a| a == technique) {
                attack.push(technique.to_owned());
            }
            if !what.iter().any(|w| w == g.title) {
                what.push(g.title.to_owned());
            }
            details.push(json!({
                "check": g.check,
                "title": g.title,
                "binding": g.grant.binding,
                "role": g.grant.role,
                "namespace": g.grant.namespace,
            }));
        }
        let Some(worst) = worst else { continue };
        let scope = match &worst.grant.namespace {
            Some(n) => format!("in namespace {n}"),
            None => "cluster-wide".to_owned(),
        };
        let subject = identity
            .clone()
            .unwrap_or_else(|| format!("k8s:{cluster}/{}", shown.replace(' ', ":")));
        out.push(Finding {
            id: finding_id(RBAC_RULE, identity.as_deref(), &subject),
            rule_id: RBAC_RULE.into(),
            title: if anonymous {
                "Anonymous Kubernetes access granted".into()
            } else {
                "Risky Kubernetes RBAC".into()
            },
            severity,
            kind: Kind::Posture,
            identity,
            attack,
            events: Vec::new(),
            path: vec![
                subject,
                worst.grant.binding.clone(),
                worst.grant.role.clone(),
            ],
            first_seen: now,
            last_seen: now,
            count: 1,
            status: Status::Open,
            summary: format!(
                "{shown} in cluster {cluster} {} ({scope} via {} → {})",
                what.join(", "),
                worst.grant.binding,
                worst.grant.role
            ),
            details: json!({
                "cluster": cluster,
                "grants": details,
                "remediation": remediation(cluster, objects, &kind, &name, ns.as_deref(), &grants),
            }),
        });
    }
}

/// How many subjects the binding `binding` (as Keyward names it) has in the objects.
fn subjects_of(objects: &[Value], binding: &str) -> Option<usize> {
    let (resource, ns, name) = fix::parse_binding(binding)?;
    let kind = if resource == "rolebinding" {
        "RoleBinding"
    } else {
        "ClusterRoleBinding"
    };
    let is_it = |o: &Value| {
        let meta = o.get("metadata");
        let ns_of = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .or((kind == "RoleBinding").then_some("default"));
        o.get("kind").and_then(Value::as_str) == Some(kind)
            && meta.and_then(|m| m.get("name")).and_then(Value::as_str) == Some(name)
            && (ns.is_none() || ns_of == ns)
    };
    let mut stack: Vec<&Value> = objects.iter().collect();
    while let Some(o) = stack.pop() {
        if is_it(o) {
            return Some(
                o.get("subjects")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len),
            );
        }
        if let Some(items) = o.get("items").and_then(Value::as_array) {
            stack.extend(items);
        }
    }
    None
}

/// The subject taken out of every binding that grants it a risky capability: the binding
/// deleted where it is the only subject, rewritten without it otherwise.
fn remediation(
    cluster: &str,
    objects: &[Value],
    kind: &str,
    name: &str,
    ns: Option<&str>,
    grants: &[keyward_graph::k8s::Finding],
) -> Remediation {
    if kind == "Group" && name == "system:masters" {
        return Remediation::new(vec![Step::now(
            "Members of `system:masters` bypass RBAC altogether (the API server lets them do anything without asking it): removing a binding changes nothing. Stop issuing credentials in that group (client certificates, EKS access entries or the `aws-auth` ConfigMap) and bind the people who need admin to `cluster-admin` by name",
            Vec::new(),
        )]);
    }
    let subject = Subject {
        kind,
        name,
        namespace: ns,
    };
    let mut bindings: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for g in grants {
        match bindings.iter_mut().find(|b| b.0 == g.grant.binding) {
            Some(b) => {
                if !b.2.contains(&g.title) {
                    b.2.push(g.title);
                }
            }
            None => bindings.push((&g.grant.binding, &g.grant.role, vec![g.title])),
        }
    }
    let shown = match ns {
        Some(ns) => format!("{kind} `{ns}/{name}`"),
        None => format!("{kind} `{name}`"),
    };
    let steps = bindings
        .into_iter()
        .map(|(binding, role, what)| {
            let sole = subjects_of(objects, binding) == Some(1);
            let how = if sole {
                "delete the binding, whose only subject it is"
            } else {
                "rewrite the binding without it; its other subjects keep their access"
            };
            Step::now(
                format!(
                    "Take {shown} out of {binding} ({role}: {}): {how}. If it needs some of that, bind it to a narrower role instead, or edit {role} if every subject of it should lose the capability",
                    what.join(", ")
                ),
                fix::unbind(cluster, binding, &subject, sole),
            )
        })
        .collect();
    Remediation::new(steps)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::remediation::Remediation;

    fn rbac(subjects: Value) -> Vec<Value> {
        vec![
            json!({"kind": "ClusterRole", "metadata": {"name": "secret-reader"},
                   "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "x'; rm -rf /", "namespace": "payments"},
                   "roleRef": {"kind": "ClusterRole", "name": "secret-reader"}, "subjects": subjects}),
        ]
    }

    fn commands(objects: &[Value]) -> Vec<String> {
        let mut out = Vec::new();
        findings("prod-eks", objects, 0, &mut out);
        let f = out
            .iter()
            .find(|f| f.summary.contains("service account"))
            .unwrap();
        Remediation::of(f)
            .unwrap()
            .steps
            .into_iter()
            .flat_map(|s| s.commands)
            .collect()
    }

    #[test]
    fn the_only_subject_deletes_the_binding() {
        let objects =
            rbac(json!([{"kind": "ServiceAccount", "name": "api", "namespace": "payments"}]));
        assert_eq!(
            commands(&objects),
            [r"kubectl --context prod-eks -n payments delete rolebinding 'x'\''; rm -rf /'"]
        );
    }

    #[test]
    fn a_shared_binding_is_rewritten_without_the_subject() {
        let objects = rbac(json!([
            {"kind": "ServiceAccount", "name": "api"},
            {"kind": "User", "name": "jane@example.com"}]));
        assert_eq!(
            commands(&objects),
            [
                r#"kubectl --context prod-eks -n payments get rolebinding 'x'\''; rm -rf /' -o json | jq --arg kind ServiceAccount --arg name api --arg ns payments --arg bns payments 'del(.subjects[]? | select(.kind == $kind and .name == $name and (.namespace // $bns) == $ns))' | kubectl --context prod-eks replace -f -"#
            ]
        );
    }
}

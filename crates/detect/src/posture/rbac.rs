//! `kw-posture-k8s-rbac`: risky Kubernetes RBAC, one finding per subject — the
//! kubescape-named checks of `keyward graph rbac`, with the binding and role that grant
//! each risky capability.

use keyward_model::time::Millis;
use serde_json::json;

use super::Control;
use crate::finding::finding_id;
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
            details: json!({"cluster": cluster, "grants": details}),
        });
    }
}

//! Kubernetes workload and service-account posture: which workloads mount a service-account
//! token, and what the identity behind that token may do — joined from workloads, service
//! accounts and RBAC bindings. Named after the kubescape controls they correspond to and
//! checked case by case against kubescape's fixtures (`docs/k8s-rbac-coverage.md`).

use serde_json::Value;

use crate::k8s::{Grant, Rbac, Rule, Subject, can, is_cluster_admin, name_ns};

/// An object a posture check flags.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Flagged {
    pub check: &'static str,
    /// `Pod`, `Deployment`, `ServiceAccount`, `ClusterRoleBinding`, a subject kind…
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// The posture checks and what each means.
pub const POSTURE: &[(&str, &str)] = &[
    (
        "automount-service-account",
        "workload mounts a service-account token",
    ),
    (
        "automount-default-service-account",
        "a namespace's default service account mounts its token by default",
    ),
    (
        "serviceaccount-token-mount",
        "workload mounts the token of a service account that has role bindings",
    ),
    (
        "workload-with-administrative-roles",
        "workload runs with a token that has cluster-admin-like rules",
    ),
    (
        "workload-with-cluster-takeover-roles",
        "workload runs with a token that can read secrets or create pods cluster-wide",
    ),
    (
        "access-container-service-account-v1",
        "service account with RBAC permissions",
    ),
    (
        "cluster-admin-role",
        "subject bound cluster-wide to the cluster-admin ClusterRole",
    ),
    (
        "anonymous-access-enabled",
        "binding grants to system:anonymous or system:unauthenticated",
    ),
];

fn flatten(o: &Value, out: &mut Vec<Value>) {
    let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
    if kind == "List" || kind.ends_with("List") {
        for item in o
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            flatten(item, out);
        }
    } else {
        out.push(o.clone());
    }
}

/// The pod spec of a workload object, wherever its kind keeps it.
pub fn pod_spec(o: &Value) -> Option<&Value> {
    match o.get("kind").and_then(Value::as_str)? {
        "Pod" => o.get("spec"),
        "Deployment"
        | "ReplicaSet"
        | "DaemonSet"
        | "StatefulSet"
        | "Job"
        | "ReplicationController" => o.pointer("/spec/template/spec"),
        "CronJob" => o.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

struct Workload<'v> {
    kind: String,
    name: String,
    namespace: String,
    service_account: String,
    spec: &'v Value,
}

/// Runs every posture check over a cluster's objects (any mix, `List`s included).
pub fn posture(objects: &[Value]) -> Vec<Flagged> {
    let mut all = Vec::new();
    for o in objects {
        flatten(o, &mut all);
    }
    let rbac = Rbac::new(&all);
    let grants = rbac.grants();
    let mut out = Vec::new();
    workload_flags(&all, &grants, &mut out);
    default_service_account_flags(&all, &mut out);
    grant_flags(&grants, &mut out);
    anonymous_binding_flags(&all, &mut out);
    out.sort();
    out.dedup();
    out
}

fn kind_of(o: &Value) -> String {
    o.get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn is_binding(o: &Value) -> bool {
    matches!(kind_of(o).as_str(), "RoleBinding" | "ClusterRoleBinding")
}

fn flag(check: &'static str, kind: &str, ns: Option<&str>, name: &str, out: &mut Vec<Flagged>) {
    out.push(Flagged {
        check,
        kind: kind.to_owned(),
        namespace: ns.map(str::to_owned),
        name: name.to_owned(),
    });
}

/// Every object with a pod spec, with the service account it runs as.
fn workloads(all: &[Value]) -> Vec<Workload<'_>> {
    all.iter()
        .filter_map(|o| {
            let spec = pod_spec(o)?;
            let (name, ns) = name_ns(o);
            Some(Workload {
                kind: kind_of(o),
                name,
                namespace: ns.unwrap_or_else(|| "default".into()),
                service_account: spec
                    .get("serviceAccountName")
                    .or_else(|| spec.get("serviceAccount"))
                    .and_then(Value::as_str)
                    .unwrap_or("default")
                    .to_owned(),
                spec,
            })
        })
        .collect()
}

/// A service account's own automount setting, by (namespace, name).
pub fn sa_automount(all: &[Value], ns: &str, name: &str) -> Option<bool> {
    all.iter()
        .filter(|o| kind_of(o) == "ServiceAccount")
        .find(|o| {
            let (n, s) = name_ns(o);
            n == name && s.as_deref().unwrap_or("default") == ns
        })
        .and_then(|o| o.get("automountServiceAccountToken"))
        .and_then(Value::as_bool)
}

/// Whether the workload's pods mount the token: the pod's setting wins; unset, the
/// service account's; unset too, the token mounts.
fn mounts_token(all: &[Value], w: &Workload<'_>) -> bool {
    match w
        .spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
    {
        Some(m) => m,
        None => sa_automount(all, &w.namespace, &w.service_account) != Some(false),
    }
}

fn is_sa(s: &Subject, ns: &str, name: &str) -> bool {
    s.kind == "ServiceAccount" && s.name == name && s.namespace.as_deref() == Some(ns)
}

/// Whether any binding names the service account, whether or not its role exists.
pub fn bound(all: &[Value], ns: &str, name: &str) -> bool {
    all.iter().filter(|o| is_binding(o)).any(|b| {
        let (_, bns) = name_ns(b);
        b.get("subjects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|s| {
                s.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                    && s.get("name").and_then(Value::as_str) == Some(name)
                    && s.get("namespace")
                        .and_then(Value::as_str)
                        .or(bns.as_deref())
                        .unwrap_or("default")
                        == ns
            })
    })
}

/// Rules that take the cluster over: reading secrets or creating pods.
fn takeover(rules: &[Rule]) -> bool {
    ["get", "list", "watch"]
        .iter()
        .any(|v| can(rules, v, "", "secrets"))
        || can(rules, "create", "", "pods")
}

/// Workloads that mount a token, and what the token may do.
fn workload_flags(all: &[Value], grants: &[Grant], out: &mut Vec<Flagged>) {
    for w in &workloads(all) {
        if !mounts_token(all, w) {
            continue;
        }
        let ns = Some(w.namespace.as_str());
        flag("automount-service-account", &w.kind, ns, &w.name, out);
        if bound(all, &w.namespace, &w.service_account) {
            flag("serviceaccount-token-mount", &w.kind, ns, &w.name, out);
        }
        let mine = grants
            .iter()
            .filter(|g| is_sa(&g.subject, &w.namespace, &w.service_account));
        let (mut admin, mut take) = (false, false);
        for g in mine {
            admin |= is_cluster_admin(&g.rules);
            take |= g.namespace.is_none() && takeover(&g.rules);
        }
        if admin {
            flag(
                "workload-with-administrative-roles",
                &w.kind,
                ns,
                &w.name,
                out,
            );
        }
        if take {
            flag(
                "workload-with-cluster-takeover-roles",
                &w.kind,
                ns,
                &w.name,
                out,
            );
        }
    }
}

/// Namespaces' default service accounts that do not turn automounting off.
fn default_service_account_flags(all: &[Value], out: &mut Vec<Flagged>) {
    for sa in all.iter().filter(|o| kind_of(o) == "ServiceAccount") {
        let (name, ns) = name_ns(sa);
        if name == "default"
            && sa
                .get("automountServiceAccountToken")
                .and_then(Value::as_bool)
                != Some(false)
        {
            flag(
                "automount-default-service-account",
                "ServiceAccount",
                Some(ns.as_deref().unwrap_or("default")),
                &name,
                out,
            );
        }
    }
}

/// Service accounts with any RBAC permission, and cluster-wide cluster-admin subjects.
fn grant_flags(grants: &[Grant], out: &mut Vec<Flagged>) {
    for g in grants {
        if g.subject.kind == "ServiceAccount" && !g.rules.is_empty() {
            flag(
                "access-container-service-account-v1",
                "ServiceAccount",
                g.subject.namespace.as_deref(),
                &g.subject.name,
                out,
            );
        }
        if g.namespace.is_none() && g.role == "ClusterRole cluster-admin" {
            flag(
                "cluster-admin-role",
                &g.subject.kind,
                g.subject.namespace.as_deref(),
                &g.subject.name,
                out,
            );
        }
    }
}

/// Bindings that grant to `system:anonymous` or `system:unauthenticated`.
fn anonymous_binding_flags(all: &[Value], out: &mut Vec<Flagged>) {
    for b in all.iter().filter(|o| is_binding(o)) {
        let anonymous = b
            .get("subjects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|s| {
                matches!(
                    s.get("name").and_then(Value::as_str),
                    Some("system:anonymous" | "system:unauthenticated")
                )
            });
        if anonymous {
            let (name, ns) = name_ns(b);
            flag(
                "anonymous-access-enabled",
                &kind_of(b),
                ns.as_deref(),
                &name,
                out,
            );
        }
    }
}

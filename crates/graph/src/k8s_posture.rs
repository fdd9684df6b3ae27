//! Kubernetes workload and service-account posture: which workloads mount a service-account
//! token, and what the identity behind that token may do — joined from workloads, service
//! accounts and RBAC bindings. Named after the kubescape controls they correspond to and
//! checked case by case against kubescape's fixtures (`docs/k8s-rbac-coverage.md`).

use serde_json::Value;

use crate::k8s::{Rbac, can, is_cluster_admin, name_ns};

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
    let kind_of = |o: &Value| {
        o.get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    // Service accounts' own automount setting, by (namespace, name).
    let sa_automount = |ns: &str, name: &str| -> Option<bool> {
        all.iter()
            .filter(|o| kind_of(o) == "ServiceAccount")
            .find(|o| {
                let (n, s) = name_ns(o);
                n == name && s.as_deref().unwrap_or("default") == ns
            })
            .and_then(|o| o.get("automountServiceAccountToken"))
            .and_then(Value::as_bool)
    };
    let workloads: Vec<Workload<'_>> = all
        .iter()
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
        .collect();
    // The pod's setting wins; unset, the service account's; unset too, the token mounts.
    let mounts = |w: &Workload<'_>| match w
        .spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
    {
        Some(m) => m,
        None => sa_automount(&w.namespace, &w.service_account) != Some(false),
    };
    let is_sa = |s: &crate::k8s::Subject, ns: &str, name: &str| {
        s.kind == "ServiceAccount" && s.name == name && s.namespace.as_deref() == Some(ns)
    };
    // Subjects named by any binding, whether or not its role exists.
    let bound = |ns: &str, name: &str| {
        all.iter()
            .filter(|o| matches!(kind_of(o).as_str(), "RoleBinding" | "ClusterRoleBinding"))
            .any(|b| {
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
    };
    let takeover = |rules: &[crate::k8s::Rule]| {
        ["get", "list", "watch"]
            .iter()
            .any(|v| can(rules, v, "", "secrets"))
            || can(rules, "create", "", "pods")
    };
    let mut out = Vec::new();
    let flag = |check, kind: &str, ns: Option<&str>, name: &str, out: &mut Vec<Flagged>| {
        out.push(Flagged {
            check,
            kind: kind.to_owned(),
            namespace: ns.map(str::to_owned),
            name: name.to_owned(),
        });
    };
    for w in &workloads {
        if !mounts(w) {
            continue;
        }
        let ns = Some(w.namespace.as_str());
        flag("automount-service-account", &w.kind, ns, &w.name, &mut out);
        if bound(&w.namespace, &w.service_account) {
            flag("serviceaccount-token-mount", &w.kind, ns, &w.name, &mut out);
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
                &mut out,
            );
        }
        if take {
            flag(
                "workload-with-cluster-takeover-roles",
                &w.kind,
                ns,
                &w.name,
                &mut out,
            );
        }
    }
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
                &mut out,
            );
        }
    }
    for g in &grants {
        if g.subject.kind == "ServiceAccount" && !g.rules.is_empty() {
            flag(
                "access-container-service-account-v1",
                "ServiceAccount",
                g.subject.namespace.as_deref(),
                &g.subject.name,
                &mut out,
            );
        }
        if g.namespace.is_none() && g.role == "ClusterRole cluster-admin" {
            flag(
                "cluster-admin-role",
                &g.subject.kind,
                g.subject.namespace.as_deref(),
                &g.subject.name,
                &mut out,
            );
        }
    }
    for b in all
        .iter()
        .filter(|o| matches!(kind_of(o).as_str(), "RoleBinding" | "ClusterRoleBinding"))
    {
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
                &mut out,
            );
        }
    }
    out.sort();
    out.dedup();
    out
}

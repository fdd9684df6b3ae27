//! Kubernetes RBAC: who can do what, from Roles, ClusterRoles and their bindings, and the
//! risky-access checks (secrets, exec, pod creation, bind/escalate, impersonation, token
//! requests, proxying, webhooks, certificate approval, cluster-admin-like rules, …).
//!
//! Matching follows the API server's RBAC authorizer: `*` in verbs, API groups or resources
//! matches everything (a `*` resource includes subresources); `pods/*` matches every
//! subresource of pods. Resource names narrow a rule but never widen it, so a rule limited
//! to names still counts as the permission (on those objects).

use std::collections::BTreeMap;

use serde_json::Value;

/// One RBAC policy rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    pub resource_names: Vec<String>,
}

/// A subject of a binding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    pub name: String,
    /// Service accounts only.
    pub namespace: Option<String>,
}

/// Rules granted to a subject by one binding, in a namespace (`None`: cluster-wide).
#[derive(Debug, Clone)]
pub struct Grant {
    pub subject: Subject,
    pub namespace: Option<String>,
    /// `RoleBinding ns/name` or `ClusterRoleBinding name`.
    pub binding: String,
    /// `Role ns/name` or `ClusterRole name`.
    pub role: String,
    pub rules: Vec<Rule>,
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// The rules of a Role or ClusterRole object.
pub fn rules_of(role: &Value) -> Vec<Rule> {
    role.get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| Rule {
            api_groups: strs(r.get("apiGroups")),
            resources: strs(r.get("resources")),
            verbs: strs(r.get("verbs")),
            resource_names: strs(r.get("resourceNames")),
        })
        .collect()
}

pub fn name_ns(v: &Value) -> (String, Option<String>) {
    let m = v.get("metadata");
    (
        m.and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        m.and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    )
}

/// The RBAC objects of one cluster.
#[derive(Debug, Default)]
pub struct Rbac {
    roles: BTreeMap<(String, String), Vec<Rule>>,
    cluster_roles: BTreeMap<String, Vec<Rule>>,
    bindings: Vec<Value>,
}

impl Rbac {
    /// Collects Roles, ClusterRoles and bindings from any mix of objects (and `List`s).
    pub fn new<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Rbac {
        let mut rbac = Rbac::default();
        for o in objects {
            rbac.add(o);
        }
        rbac
    }

    fn add(&mut self, o: &Value) {
        let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
        let (name, ns) = name_ns(o);
        match kind {
            "Role" => {
                self.roles
                    .insert((ns.unwrap_or_else(|| "default".into()), name), rules_of(o));
            }
            "ClusterRole" => {
                self.cluster_roles.insert(name, rules_of(o));
            }
            "RoleBinding" | "ClusterRoleBinding" => self.bindings.push(o.clone()),
            k if k == "List" || k.ends_with("List") => {
                for item in o
                    .get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    self.add(item);
                }
            }
            _ => {}
        }
    }

    /// Every (subject, rules) grant. A binding to a role that does not exist grants nothing.
    pub fn grants(&self) -> Vec<Grant> {
        let mut out = Vec::new();
        for b in &self.bindings {
            let kind = b.get("kind").and_then(Value::as_str).unwrap_or_default();
            let (name, ns) = name_ns(b);
            let ns = if kind == "RoleBinding" {
                Some(ns.unwrap_or_else(|| "default".into()))
            } else {
                None
            };
            let role_kind = b
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let role_name = b
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (rules, role) = match (role_kind, &ns) {
                ("Role", Some(n)) => (
                    self.roles.get(&(n.clone(), role_name.to_owned())),
                    format!("Role {n}/{role_name}"),
                ),
                ("ClusterRole", _) => (
                    self.cluster_roles.get(role_name),
                    format!("ClusterRole {role_name}"),
                ),
                _ => (None, format!("{role_kind} {role_name}")),
            };
            let Some(rules) = rules else { continue };
            let binding = match &ns {
                Some(n) => format!("{kind} {n}/{name}"),
                None => format!("{kind} {name}"),
            };
            for s in b
                .get("subjects")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let skind = s
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let subject = Subject {
                    namespace: (skind == "ServiceAccount").then(|| {
                        s.get("namespace")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .or_else(|| ns.clone())
                            .unwrap_or_else(|| "default".into())
                    }),
                    kind: skind,
                    name: s
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                };
                out.push(Grant {
                    subject,
                    namespace: ns.clone(),
                    binding: binding.clone(),
                    role: role.clone(),
                    rules: rules.clone(),
                });
            }
        }
        out
    }
}

fn matches(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

fn resource_matches(list: &[String], want: &str) -> bool {
    list.iter().any(|r| {
        r == "*" || r == want || {
            // `pods/*` covers every subresource of pods; `*/scale` a subresource of all.
            match (r.split_once('/'), want.split_once('/')) {
                (Some((rr, "*")), Some((wr, _))) => rr == wr,
                (Some(("*", rs)), Some((_, ws))) => rs == ws,
                _ => false,
            }
        }
    })
}

/// Whether `rules` allow `verb` on `resource` (with optional `/subresource`) in `group`.
pub fn can(rules: &[Rule], verb: &str, group: &str, resource: &str) -> bool {
    rules.iter().any(|r| {
        matches(&r.verbs, verb)
            && matches(&r.api_groups, group)
            && resource_matches(&r.resources, resource)
    })
}

/// A risky-access check: any of `verbs` on any of `resources` in any of `groups`.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    pub verbs: &'static [&'static str],
    pub groups: &'static [&'static str],
    pub resources: &'static [&'static str],
}

const CORE: &[&str] = &[""];

/// The RBAC checks Keyward runs, named like the kubescape controls they correspond to.
pub const CHECKS: &[Check] = &[
    Check {
        id: "rule-can-list-get-secrets-v1",
        title: "can read secrets",
        verbs: &["get", "list", "watch"],
        groups: CORE,
        resources: &["secrets"],
    },
    Check {
        id: "exec-into-container-v1",
        title: "can exec into containers",
        verbs: &["create"],
        groups: CORE,
        resources: &["pods/exec"],
    },
    Check {
        id: "rule-can-portforward-v1",
        title: "can port-forward to pods",
        verbs: &["create"],
        groups: CORE,
        resources: &["pods/portforward"],
    },
    Check {
        id: "rule-can-create-pod",
        title: "can create pods",
        verbs: &["create"],
        groups: CORE,
        resources: &["pods"],
    },
    Check {
        id: "rule-can-bind-escalate",
        title: "can bind or escalate roles",
        verbs: &["bind", "escalate"],
        groups: &["rbac.authorization.k8s.io"],
        resources: &["roles", "clusterroles"],
    },
    Check {
        id: "rule-can-impersonate-users-groups-v1",
        title: "can impersonate users, groups or service accounts",
        verbs: &["impersonate"],
        groups: CORE,
        resources: &["users", "groups", "serviceaccounts"],
    },
    Check {
        id: "rule-can-create-service-account-token",
        title: "can mint service-account tokens",
        verbs: &["create"],
        groups: CORE,
        resources: &["serviceaccounts/token"],
    },
    Check {
        id: "rule-can-access-proxy-subresource",
        title: "can proxy to nodes, services or pods",
        verbs: &["get", "create", "update", "patch", "delete"],
        groups: CORE,
        resources: &["nodes/proxy", "services/proxy", "pods/proxy"],
    },
    Check {
        id: "rule-can-delete-k8s-events-v1",
        title: "can delete events (cover tracks)",
        verbs: &["delete", "deletecollection"],
        groups: &["", "events.k8s.io"],
        resources: &["events"],
    },
    Check {
        id: "rule-can-modify-admission-webhooks",
        title: "can modify admission webhooks",
        verbs: &["create", "update", "patch", "delete"],
        groups: &["admissionregistration.k8s.io"],
        resources: &[
            "mutatingwebhookconfigurations",
            "validatingwebhookconfigurations",
        ],
    },
    Check {
        id: "rule-can-approve-cert-signing-request",
        title: "can approve certificate signing requests",
        verbs: &["update", "patch"],
        groups: &["certificates.k8s.io"],
        resources: &["certificatesigningrequests/approval"],
    },
    Check {
        id: "rule-can-create-pv",
        title: "can create persistent volumes (host paths)",
        verbs: &["create"],
        groups: CORE,
        resources: &["persistentvolumes"],
    },
    Check {
        id: "rule-can-update-configmap-v1",
        title: "can modify configmaps",
        verbs: &["update", "patch"],
        groups: CORE,
        resources: &["configmaps"],
    },
    Check {
        id: "rule-excessive-delete-rights-v1",
        title: "can delete workloads and their data",
        verbs: &["delete", "deletecollection"],
        groups: CORE,
        resources: &[
            "pods",
            "services",
            "secrets",
            "configmaps",
            "persistentvolumeclaims",
        ],
    },
];

impl Check {
    pub fn applies(&self, rules: &[Rule]) -> bool {
        self.verbs.iter().any(|v| {
            self.groups
                .iter()
                .any(|g| self.resources.iter().any(|r| can(rules, v, g, r)))
        })
    }
}

/// Cluster-admin-like rules: every verb on every resource of every API group, or of the
/// core group alone (secrets, pods and service accounts are enough to take a cluster over).
pub fn is_cluster_admin(rules: &[Rule]) -> bool {
    rules.iter().any(|r| {
        r.verbs.iter().any(|v| v == "*")
            && r.resources.iter().any(|x| x == "*")
            && r.api_groups.iter().any(|g| g == "*" || g.is_empty())
    })
}

/// One risky grant found.
#[derive(Debug, Clone)]
pub struct Finding {
    pub check: &'static str,
    pub title: &'static str,
    pub grant: Grant,
}

/// Every risky-access check over every grant.
pub fn risky_access(rbac: &Rbac) -> Vec<Finding> {
    let mut out = Vec::new();
    for g in rbac.grants() {
        for c in CHECKS {
            if c.applies(&g.rules) {
                out.push(Finding {
                    check: c.id,
                    title: c.title,
                    grant: g.clone(),
                });
            }
        }
        if is_cluster_admin(&g.rules) {
            out.push(Finding {
                check: "rule-list-all-cluster-admins-v1",
                title: "has cluster-admin-like power",
                grant: g.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Rule {
        let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect();
        Rule {
            api_groups: v(groups),
            resources: v(resources),
            verbs: v(verbs),
            resource_names: Vec::new(),
        }
    }

    #[test]
    fn rbac_matching() {
        let r = [rule(&[""], &["pods/*"], &["create"])];
        assert!(can(&r, "create", "", "pods/exec"));
        assert!(!can(&r, "create", "", "pods"));
        let star = [rule(&["*"], &["*"], &["get"])];
        assert!(can(&star, "get", "", "secrets") && can(&star, "get", "apps", "deployments/scale"));
        assert!(!can(&star, "delete", "", "secrets"));
        let scale = [rule(&["apps"], &["*/scale"], &["update"])];
        assert!(
            can(&scale, "update", "apps", "deployments/scale")
                && !can(&scale, "update", "apps", "deployments")
        );
    }
}

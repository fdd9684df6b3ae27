//! Who receives access ([`Grantee`]) and what they receive ([`Entitlement`]), and the one
//! platform change ([`Action`]) that grants it.

use keyward_respond::Action;
use keyward_respond::IamPrincipal;
use keyward_respond::action::{BindingKind, RoleKind};
use serde::{Deserialize, Serialize};

use super::AccessError;

/// The identity a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Grantee {
    IamUser {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        name: String,
    },
    IamRole {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        name: String,
    },
    ServiceAccount {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        namespace: String,
        name: String,
    },
}

impl Grantee {
    /// An IAM user or role ARN (paths ignored), `user/NAME`, `role/NAME`; a Kubernetes
    /// service account as Keyward's canonical id (`k8s:CLUSTER/system:serviceaccount:NS:NAME`),
    /// its user name (`system:serviceaccount:NS:NAME`) or `NS/serviceaccount/NAME`.
    pub fn parse(text: &str) -> Result<Grantee, AccessError> {
        let bad = || AccessError::BadGrantee(text.to_owned());
        let s = text.trim();
        if let Some(rest) = s.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [_partition, service, _region, account, resource] = parts.as_slice() else {
                return Err(bad());
            };
            if *service != "iam" || account.is_empty() {
                return Err(bad());
            }
            return iam(Some((*account).to_owned()), resource).ok_or_else(bad);
        }
        if let Some(rest) = s.strip_prefix("k8s:") {
            let (cluster, user) = rest.split_once('/').ok_or_else(bad)?;
            let (namespace, name) = service_account_user(user).ok_or_else(bad)?;
            return Ok(Grantee::ServiceAccount {
                cluster: (!cluster.is_empty()).then(|| cluster.to_owned()),
                namespace,
                name,
            });
        }
        if let Some((namespace, name)) = service_account_user(s) {
            return Ok(Grantee::ServiceAccount {
                cluster: None,
                namespace,
                name,
            });
        }
        if let [ns, "serviceaccount", name] = s.split('/').collect::<Vec<_>>().as_slice() {
            if ns.is_empty() || name.is_empty() {
                return Err(bad());
            }
            return Ok(Grantee::ServiceAccount {
                cluster: None,
                namespace: (*ns).to_owned(),
                name: (*name).to_owned(),
            });
        }
        iam(None, s).ok_or_else(bad)
    }

    /// Keyward's canonical id for it (an ARN when the account is known).
    pub fn id(&self) -> String {
        match self {
            Grantee::IamUser {
                account: Some(a),
                name,
            } => format!("arn:aws:iam::{a}:user/{name}"),
            Grantee::IamUser {
                account: None,
                name,
            } => format!("user/{name}"),
            Grantee::IamRole {
                account: Some(a),
                name,
            } => format!("arn:aws:iam::{a}:role/{name}"),
            Grantee::IamRole {
                account: None,
                name,
            } => format!("role/{name}"),
            Grantee::ServiceAccount {
                cluster: Some(c),
                namespace,
                name,
            } => format!("k8s:{c}/system:serviceaccount:{namespace}:{name}"),
            Grantee::ServiceAccount {
                cluster: None,
                namespace,
                name,
            } => format!("system:serviceaccount:{namespace}:{name}"),
        }
    }

    /// The inventory's kind (`iam_user`, `iam_role`, `service_account`).
    pub fn kind(&self) -> &'static str {
        match self {
            Grantee::IamUser { .. } => "iam_user",
            Grantee::IamRole { .. } => "iam_role",
            Grantee::ServiceAccount { .. } => "service_account",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Grantee::IamUser { name, .. }
            | Grantee::IamRole { name, .. }
            | Grantee::ServiceAccount { name, .. } => name,
        }
    }
}

/// `user/NAME` or `role/NAME` (the last path segment is the name).
fn iam(account: Option<String>, resource: &str) -> Option<Grantee> {
    let (kind, rest) = resource.split_once('/')?;
    let name = rest
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())?
        .to_owned();
    match kind {
        "user" => Some(Grantee::IamUser { account, name }),
        "role" => Some(Grantee::IamRole { account, name }),
        _ => None,
    }
}

/// `system:serviceaccount:NS:NAME` as `(NS, NAME)`.
fn service_account_user(s: &str) -> Option<(String, String)> {
    let rest = s.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':'))
        .then(|| (ns.to_owned(), name.to_owned()))
}

/// What a grant gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entitlement {
    /// A managed IAM policy attached to the user or role.
    ManagedPolicy { arn: String },
    /// Membership of an IAM group (users only).
    Group { name: String },
    /// A Kubernetes Role or ClusterRole bound to the service account: by a RoleBinding in
    /// `namespace`, or by a ClusterRoleBinding when there is none.
    KubeRole {
        role_kind: RoleKind,
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
}

impl Entitlement {
    /// Exactly one of a managed policy ARN, an IAM group, a Kubernetes role (with its
    /// namespace for a RoleBinding), as `--policy`/`--group`/`--role` or an API body give them.
    pub fn from_parts(
        policy: Option<&str>,
        group: Option<&str>,
        role: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<Entitlement, AccessError> {
        match (policy, group, role) {
            (Some(arn), None, None) => Ok(Entitlement::ManagedPolicy {
                arn: arn.to_owned(),
            }),
            (None, Some(name), None) => Ok(Entitlement::Group {
                name: name.to_owned(),
            }),
            (None, None, Some(role)) => Entitlement::kube_role(role, namespace),
            _ => Err(AccessError::NoEntitlement),
        }
    }

    /// `--role` as given (`NAME`, `role/NAME`, `clusterrole/NAME`) with `--namespace`: a bare
    /// name is a Role with a namespace and a ClusterRole without.
    pub fn kube_role(role: &str, namespace: Option<&str>) -> Result<Entitlement, AccessError> {
        let (role_kind, name) = match role.split_once('/') {
            Some((k, n)) if k.eq_ignore_ascii_case("role") => (RoleKind::Role, n),
            Some((k, n)) if k.eq_ignore_ascii_case("clusterrole") => (RoleKind::ClusterRole, n),
            Some(_) => return Err(AccessError::BadRole(role.to_owned())),
            None if namespace.is_some() => (RoleKind::Role, role),
            None => (RoleKind::ClusterRole, role),
        };
        if name.is_empty() || name.contains('/') {
            return Err(AccessError::BadRole(role.to_owned()));
        }
        Ok(Entitlement::KubeRole {
            role_kind,
            role: name.to_owned(),
            namespace: namespace.map(str::to_owned),
        })
    }

    /// In words: `managed policy ARN`, `group NAME`, `Role NAME in NS`.
    pub fn describe(&self) -> String {
        match self {
            Entitlement::ManagedPolicy { arn } => format!("managed policy {arn}"),
            Entitlement::Group { name } => format!("group {name}"),
            Entitlement::KubeRole {
                role_kind,
                role,
                namespace: Some(ns),
            } => format!("{} {role} in {ns}", role_kind.as_str()),
            Entitlement::KubeRole {
                role_kind,
                role,
                namespace: None,
            } => format!("{} {role} cluster-wide", role_kind.as_str()),
        }
    }

    /// The platform change that grants it to `to` for the grant `grant` (a binding is named
    /// after it). Refuses what the platform cannot hold: a group for a role, a policy for a
    /// service account, a Role without its namespace.
    pub fn action(&self, to: &Grantee, grant: &str) -> Result<Action, AccessError> {
        let mismatch = |why| AccessError::Mismatch {
            what: self.describe(),
            grantee: to.id(),
            why,
        };
        match (self, to) {
            (Entitlement::ManagedPolicy { arn }, Grantee::IamUser { account, name }) => {
                Ok(Action::AttachPolicy {
                    account: account.clone(),
                    principal: IamPrincipal::User(name.clone()),
                    policy_arn: arn.clone(),
                })
            }
            (Entitlement::ManagedPolicy { arn }, Grantee::IamRole { account, name }) => {
                Ok(Action::AttachPolicy {
                    account: account.clone(),
                    principal: IamPrincipal::Role(name.clone()),
                    policy_arn: arn.clone(),
                })
            }
            (Entitlement::Group { name: group }, Grantee::IamUser { account, name }) => {
                Ok(Action::AddToGroup {
                    account: account.clone(),
                    user: name.clone(),
                    group: group.clone(),
                })
            }
            (Entitlement::Group { .. }, Grantee::IamRole { .. }) => {
                Err(mismatch("IAM groups hold users only"))
            }
            (
                Entitlement::ManagedPolicy { .. } | Entitlement::Group { .. },
                Grantee::ServiceAccount { .. },
            ) => Err(mismatch(
                "it is an IAM entitlement and this is a service account",
            )),
            (Entitlement::KubeRole { .. }, Grantee::IamUser { .. } | Grantee::IamRole { .. }) => {
                Err(mismatch(
                    "a Kubernetes role is granted to a service account",
                ))
            }
            (
                Entitlement::KubeRole {
                    role_kind,
                    role,
                    namespace,
                },
                Grantee::ServiceAccount {
                    cluster,
                    namespace: sa_namespace,
                    name,
                },
            ) => {
                if *role_kind == RoleKind::Role && namespace.is_none() {
                    return Err(mismatch(
                        "a Role is bound in its own namespace: give --namespace",
                    ));
                }
                Ok(Action::CreateBinding {
                    cluster: cluster.clone(),
                    kind: if namespace.is_some() {
                        BindingKind::RoleBinding
                    } else {
                        BindingKind::ClusterRoleBinding
                    },
                    namespace: namespace.clone(),
                    name: format!("keyward-{grant}"),
                    role_kind: *role_kind,
                    role: role.clone(),
                    sa_namespace: sa_namespace.clone(),
                    service_account: name.clone(),
                    grant: grant.to_owned(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grantees_parse_from_every_form() {
        let user = Grantee::IamUser {
            account: Some("123456789012".into()),
            name: "deploy".into(),
        };
        assert_eq!(
            Grantee::parse("arn:aws:iam::123456789012:user/ci/deploy"),
            Ok(user.clone())
        );
        assert_eq!(user.id(), "arn:aws:iam::123456789012:user/deploy");
        assert_eq!(
            Grantee::parse("role/ops"),
            Ok(Grantee::IamRole {
                account: None,
                name: "ops".into()
            })
        );
        let sa = Grantee::ServiceAccount {
            cluster: None,
            namespace: "shop".into(),
            name: "api".into(),
        };
        assert_eq!(Grantee::parse("shop/serviceaccount/api"), Ok(sa.clone()));
        assert_eq!(Grantee::parse("system:serviceaccount:shop:api"), Ok(sa));
        assert_eq!(
            Grantee::parse("k8s:prod/system:serviceaccount:shop:api").map(|g| g.id()),
            Ok("k8s:prod/system:serviceaccount:shop:api".to_owned())
        );
        for bad in ["alice", "arn:aws:s3:::bucket", "group/admins", "ns/pod/x"] {
            assert!(Grantee::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_entitlement_fits_its_platform() {
        let role = Grantee::parse("role/ops").unwrap();
        let sa = Grantee::parse("shop/serviceaccount/api").unwrap();
        let group = Entitlement::Group {
            name: "admins".into(),
        };
        assert!(matches!(
            group.action(&role, "ag-1"),
            Err(AccessError::Mismatch { .. })
        ));
        let bound = Entitlement::kube_role("edit", Some("shop"))
            .unwrap()
            .action(&sa, "ag-1")
            .unwrap();
        assert!(matches!(
            bound,
            Action::CreateBinding {
                kind: BindingKind::RoleBinding,
                role_kind: RoleKind::Role,
                ..
            }
        ));
        assert_eq!(bound.target(), "RoleBinding/shop/keyward-ag-1");
        let cluster = Entitlement::kube_role("view", None).unwrap();
        assert!(matches!(
            cluster.action(&sa, "ag-1"),
            Ok(Action::CreateBinding {
                kind: BindingKind::ClusterRoleBinding,
                role_kind: RoleKind::ClusterRole,
                ..
            })
        ));
        assert!(
            Entitlement::kube_role("role/edit", None)
                .unwrap()
                .action(&sa, "ag-1")
                .is_err()
        );
        assert!(Entitlement::kube_role("pod/x", None).is_err());
    }
}

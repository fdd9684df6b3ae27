//! Deletion after the grace period (garbage collection's last step). A rotation leaves the
//! old key `Inactive`; a retirement leaves the identity disabled. Both plans carry a grace
//! period in days, counted from when the plan ran. Once it has passed and the plan still
//! stands (executed, not undone), [`plan`] makes the deletion plan: the old key, or the
//! retired user, role or service account and everything attached to it.
//!
//! A deletion cannot be undone, so each step re-checks live that nothing changed since the
//! grace period began: the key is still `Inactive` and no use was recorded after it was
//! deactivated; the user or role still carries Keyward's deny-all policy (someone who
//! re-enabled it by hand keeps it); the service account is still unbound. The forensic
//! snapshot taken before the first deletion holds the whole configuration.

use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};

use crate::action::{Action, DENY_ALL_POLICY, IamPrincipal, shell_quote as q};
use crate::plan::{Plan, PlanStatus, Step};

/// What a deletion removes for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Deletion {
    /// An access key `Inactive` since `inactive_since` (a rotation's old key, a retired key).
    AccessKey {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        user: String,
        key_id: String,
        inactive_since: Millis,
    },
    /// A retired IAM user with its keys, password, certificates, SSH keys, MFA devices,
    /// policies and group memberships.
    IamUser {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        user: String,
    },
    /// A retired IAM role with its policies and instance-profile memberships.
    IamRole {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        role: String,
    },
    /// A retired Kubernetes service account (its bindings were removed at retirement).
    ServiceAccount {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        namespace: String,
        service_account: String,
    },
}

fn iam(account: &Option<String>, noun: &str, name: &str) -> String {
    match account {
        Some(a) => format!("arn:aws:iam::{a}:{noun}/{name}"),
        None => format!("{noun}/{name}"),
    }
}

impl Deletion {
    pub fn platform(&self) -> &'static str {
        match self {
            Deletion::AccessKey { .. } | Deletion::IamUser { .. } | Deletion::IamRole { .. } => {
                "aws"
            }
            Deletion::ServiceAccount { .. } => "kubernetes",
        }
    }

    pub fn target(&self) -> String {
        match self {
            Deletion::AccessKey { key_id, .. } => key_id.clone(),
            Deletion::IamUser { account, user } => iam(account, "user", user),
            Deletion::IamRole { account, role } => iam(account, "role", role),
            Deletion::ServiceAccount {
                namespace,
                service_account,
                ..
            } => format!("{namespace}/serviceaccount/{service_account}"),
        }
    }

    pub fn precondition(&self) -> String {
        match self {
            Deletion::AccessKey { inactive_since, .. } => format!(
                "the key is Inactive and no use of it was recorded after {} (active again or used since: refused)",
                keyward_model::time::format(*inactive_since)
            ),
            Deletion::IamUser { .. } | Deletion::IamRole { .. } => format!(
                "it still carries the inline policy {DENY_ALL_POLICY} (re-enabled since: refused) and has no Active access key"
            ),
            Deletion::ServiceAccount { .. } => {
                "no RoleBinding or ClusterRoleBinding names it and no pod runs as it".into()
            }
        }
    }

    /// The same deletion by hand, in order.
    pub fn commands(&self) -> Vec<String> {
        match self {
            Deletion::AccessKey {
                user,
                key_id,
                inactive_since,
                ..
            } => vec![
                format!(
                    "aws iam list-access-keys --user-name {}  # {} is Inactive",
                    q(user),
                    q(key_id)
                ),
                format!(
                    "aws iam get-access-key-last-used --access-key-id {}  # no use after {}",
                    q(key_id),
                    keyward_model::time::format(*inactive_since)
                ),
                format!(
                    "aws iam delete-access-key --user-name {} --access-key-id {}",
                    q(user),
                    q(key_id)
                ),
            ],
            Deletion::IamUser { user, .. } => {
                let u = q(user);
                let each = |list: &str, query: &str, delete: &str| {
                    format!(
                        "for x in $(aws iam {list} --user-name {u} --query '{query}' --output text); do aws iam {delete}; done"
                    )
                };
                vec![
                    format!("aws iam delete-login-profile --user-name {u}"),
                    each(
                        "list-access-keys",
                        "AccessKeyMetadata[].AccessKeyId",
                        &format!("delete-access-key --user-name {u} --access-key-id \"$x\""),
                    ),
                    each(
                        "list-signing-certificates",
                        "Certificates[].CertificateId",
                        &format!(
                            "delete-signing-certificate --user-name {u} --certificate-id \"$x\""
                        ),
                    ),
                    each(
                        "list-ssh-public-keys",
                        "SSHPublicKeys[].SSHPublicKeyId",
                        &format!(
                            "delete-ssh-public-key --user-name {u} --ssh-public-key-id \"$x\""
                        ),
                    ),
                    each(
                        "list-service-specific-credentials",
                        "ServiceSpecificCredentials[].ServiceSpecificCredentialId",
                        &format!(
                            "delete-service-specific-credential --user-name {u} --service-specific-credential-id \"$x\""
                        ),
                    ),
                    each(
                        "list-mfa-devices",
                        "MFADevices[].SerialNumber",
                        &format!(
                            "deactivate-mfa-device --user-name {u} --serial-number \"$x\"; aws iam delete-virtual-mfa-device --serial-number \"$x\""
                        ),
                    ),
                    each(
                        "list-user-policies",
                        "PolicyNames[]",
                        &format!("delete-user-policy --user-name {u} --policy-name \"$x\""),
                    ),
                    each(
                        "list-attached-user-policies",
                        "AttachedPolicies[].PolicyArn",
                        &format!("detach-user-policy --user-name {u} --policy-arn \"$x\""),
                    ),
                    each(
                        "list-groups-for-user",
                        "Groups[].GroupName",
                        &format!("remove-user-from-group --user-name {u} --group-name \"$x\""),
                    ),
                    format!("aws iam delete-user --user-name {u}"),
                ]
            }
            Deletion::IamRole { role, .. } => {
                let r = q(role);
                let each = |list: &str, query: &str, delete: &str| {
                    format!(
                        "for x in $(aws iam {list} --role-name {r} --query '{query}' --output text); do aws iam {delete}; done"
                    )
                };
                vec![
                    each(
                        "list-instance-profiles-for-role",
                        "InstanceProfiles[].InstanceProfileName",
                        &format!(
                            "remove-role-from-instance-profile --role-name {r} --instance-profile-name \"$x\""
                        ),
                    ),
                    each(
                        "list-role-policies",
                        "PolicyNames[]",
                        &format!("delete-role-policy --role-name {r} --policy-name \"$x\""),
                    ),
                    each(
                        "list-attached-role-policies",
                        "AttachedPolicies[].PolicyArn",
                        &format!("detach-role-policy --role-name {r} --policy-arn \"$x\""),
                    ),
                    format!("aws iam delete-role --role-name {r}"),
                ]
            }
            Deletion::ServiceAccount {
                namespace,
                service_account,
                ..
            } => vec![
                format!(
                    "kubectl get rolebindings,clusterrolebindings -A -o json | jq '.items[] | select(.subjects[]? | .kind == \"ServiceAccount\" and .namespace == \"{namespace}\" and .name == \"{service_account}\") | .metadata.name'  # none"
                ),
                format!(
                    "kubectl -n {} delete serviceaccount {}",
                    q(namespace),
                    q(service_account)
                ),
            ],
        }
    }
}

/// When `source`'s grace period ends: `grace_days` after its last step ran (`None`: the
/// plan has no grace period, or never ran).
pub fn grace_end(source: &Plan) -> Option<Millis> {
    let days = source.grace_days?;
    let ran = source
        .steps
        .iter()
        .filter_map(|s| s.result.as_ref().map(|r| r.at))
        .max()?;
    Some(ran + days.max(0) * 86_400_000)
}

/// What deleting after `source`'s grace period removes: a rotation's old key (from its
/// verified deactivation step), or the identity a retirement disabled.
pub fn deletions_of(source: &Plan) -> Vec<Deletion> {
    let rotation = source
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::CreateAccessKey { .. }));
    let deactivated = || {
        source
            .steps
            .iter()
            .filter_map(|s| match (&s.action, &s.result) {
                (
                    Action::DeactivateAccessKey {
                        account,
                        user,
                        key_id,
                    },
                    Some(r),
                ) if r.ok => Some(Deletion::AccessKey {
                    account: account.clone(),
                    user: user.clone(),
                    key_id: key_id.clone(),
                    inactive_since: r.at,
                }),
                _ => None,
            })
    };
    if rotation || source.identity_kind == "access_key" {
        return deactivated().collect();
    }
    let denied = source.steps.iter().find_map(|s| match &s.action {
        Action::DenyAll { account, principal } if s.result.as_ref().is_some_and(|r| r.ok) => {
            Some((account.clone(), principal.clone()))
        }
        _ => None,
    });
    match source.identity_kind.as_str() {
        "iam_user" | "iam_role" => match denied {
            Some((account, IamPrincipal::User(user))) => vec![Deletion::IamUser { account, user }],
            Some((account, IamPrincipal::Role(role))) => vec![Deletion::IamRole { account, role }],
            None => Vec::new(),
        },
        "service_account" => source
            .steps
            .iter()
            .find_map(|s| match &s.action {
                Action::RemoveBindings {
                    cluster,
                    namespace,
                    service_account,
                    ..
                } if s.result.as_ref().is_some_and(|r| r.ok) => Some(Deletion::ServiceAccount {
                    cluster: cluster.clone(),
                    namespace: namespace.clone(),
                    service_account: service_account.clone(),
                }),
                _ => None,
            })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// Why a plan's deletion is not due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotDue {
    /// The plan has no grace period (containment, a restore…).
    NoGrace,
    /// It did not run to the end, or was undone (the identity is back in use).
    Status(PlanStatus),
    /// The grace period ends then.
    Waiting(Millis),
    /// Nothing it disabled can be deleted (no verified step).
    Nothing,
}

/// The deletion plan for `source` once its grace period ended, with a stable id derived
/// from the source's (so it is made once).
pub fn plan(source: &Plan, now: Millis, actor: &str) -> Result<Plan, NotDue> {
    if source.grace_days.is_none() {
        return Err(NotDue::NoGrace);
    }
    if source.status != PlanStatus::Executed {
        return Err(NotDue::Status(source.status));
    }
    let Some(after) = grace_end(source) else {
        return Err(NotDue::Nothing);
    };
    if now < after {
        return Err(NotDue::Waiting(after));
    }
    let deletions = deletions_of(source);
    if deletions.is_empty() {
        return Err(NotDue::Nothing);
    }
    let why = format!(
        "delete: the grace period of plan {} ended {}",
        source.id,
        keyward_model::time::format(after)
    );
    let steps = deletions
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let mut s = Step::new(Action::Delete { what: d }, &why);
            s.n = i + 1;
            s
        })
        .collect();
    Ok(Plan {
        id: id_for(&source.id),
        created_at: now,
        created_by: actor.to_owned(),
        identity: source.identity.clone(),
        identity_kind: source.identity_kind.clone(),
        identity_name: source.identity_name.clone(),
        finding: None,
        since: None,
        status: PlanStatus::Planned,
        workloads: source.workloads.clone(),
        notes: vec![
            format!(
                "deletes what plan {} disabled; its grace period ended {}",
                source.id,
                keyward_model::time::format(after)
            ),
            "a deletion cannot be undone: the forensic snapshot taken before it holds the whole configuration".into(),
        ],
        steps,
        evidence: None,
        grace_days: None,
    })
}

/// The deletion plan's id for a source plan.
pub fn id_for(source: &str) -> String {
    let seed = format!("delete-after-grace\n{source}");
    format!("rp-{}", &blake3::hash(seed.as_bytes()).to_hex()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::StepResult;

    fn ok(at: Millis) -> Option<StepResult> {
        Some(StepResult {
            at,
            ok: true,
            message: String::new(),
            verified: None,
            state: serde_json::Value::Null,
        })
    }

    fn rotation(status: PlanStatus) -> Plan {
        let req = crate::rotate::Request {
            account: Some("123456789012"),
            user: "ci",
            old_key_id: "AKIAOLD0000000000001",
            locations: &[],
            grace_days: 7,
            now: 1_000,
            actor: "cli:test",
        };
        let mut p = crate::rotate::plan(&req);
        for s in &mut p.steps {
            s.result = ok(5_000);
        }
        p.status = status;
        p
    }

    #[test]
    fn a_rotation_deletes_its_old_key_after_the_grace_period_only() {
        let p = rotation(PlanStatus::Executed);
        let after = grace_end(&p).expect("a rotation has a grace period");
        assert_eq!(after, 5_000 + 7 * 86_400_000, "counted from when it ran");
        assert_eq!(plan(&p, after - 1, "t"), Err(NotDue::Waiting(after)));
        let d = plan(&p, after, "t").expect("due");
        assert_eq!(d.id, id_for(&p.id));
        assert_eq!(
            d.steps[0].action,
            Action::Delete {
                what: Deletion::AccessKey {
                    account: Some("123456789012".into()),
                    user: "ci".into(),
                    key_id: "AKIAOLD0000000000001".into(),
                    inactive_since: 5_000,
                }
            }
        );
        assert!(d.steps[0].undo.is_empty(), "a deletion has no undo");
        assert!(
            d.steps[0].command[2].contains("delete-access-key --user-name ci"),
            "{:?}",
            d.steps[0].command
        );
    }

    #[test]
    fn an_undone_or_failed_plan_deletes_nothing() {
        for s in [PlanStatus::Undone, PlanStatus::Failed, PlanStatus::Planned] {
            let p = rotation(s);
            assert_eq!(plan(&p, i64::MAX, "t"), Err(NotDue::Status(s)));
        }
    }

    #[test]
    fn a_deactivation_that_did_not_verify_is_not_deleted() {
        let mut p = rotation(PlanStatus::Executed);
        for s in &mut p.steps {
            if let Some(r) = &mut s.result {
                r.ok = matches!(s.action, Action::CreateAccessKey { .. });
            }
        }
        assert_eq!(plan(&p, i64::MAX, "t"), Err(NotDue::Nothing));
    }
}

//! The platform changes a plan can make. Each [`Action`] knows its target, its exact
//! equivalent command and the command that undoes it, so a plan can be shown (and run by
//! hand) before anything is executed. The connectors ([`crate::aws`], [`crate::kube`])
//! carry the same actions out through the APIs.

use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};

use crate::rotate::SecretLocation;

/// The inline policy that denies a contained principal everything.
pub const DENY_ALL_POLICY: &str = "KeywardContainDenyAll";
/// The inline policy that denies a role's sessions issued before containment.
pub const REVOKE_SESSIONS_POLICY: &str = "KeywardRevokeOlderSessions";
/// The `Sid` of the deny statement added to a role's trust policy for one web-identity subject.
pub const DENY_SUBJECT_SID: &str = "KeywardDenySubject";
/// The label put on objects Keyward creates (blue-green service accounts).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// An IAM principal named as the API names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IamPrincipal {
    Role(String),
    User(String),
}

impl IamPrincipal {
    pub fn name(&self) -> &str {
        match self {
            IamPrincipal::Role(n) | IamPrincipal::User(n) => n,
        }
    }

    /// `role` or `user`, as in `aws iam put-role-policy`.
    pub fn noun(&self) -> &'static str {
        match self {
            IamPrincipal::Role(_) => "role",
            IamPrincipal::User(_) => "user",
        }
    }
}

/// The kind of role a Kubernetes binding grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoleKind {
    Role,
    ClusterRole,
}

impl RoleKind {
    /// The `kubectl create rolebinding` flag (`--role`, `--clusterrole`).
    pub fn flag(self) -> &'static str {
        match self {
            RoleKind::Role => "--role",
            RoleKind::ClusterRole => "--clusterrole",
        }
    }

    /// The `roleRef.kind` the API expects.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleKind::Role => "Role",
            RoleKind::ClusterRole => "ClusterRole",
        }
    }
}

/// The annotation naming the access grant a binding was created for.
pub const GRANT_ANNOTATION: &str = "keyward.dev/access-grant";

/// A Kubernetes binding's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BindingKind {
    RoleBinding,
    ClusterRoleBinding,
}

impl BindingKind {
    /// The `kubectl` resource name.
    pub fn resource(self) -> &'static str {
        match self {
            BindingKind::RoleBinding => "rolebinding",
            BindingKind::ClusterRoleBinding => "clusterrolebinding",
        }
    }
}

/// One platform change (or, for [`Action::Review`] and [`Action::ListMfaDevices`], one
/// read a person must act on). Serialized with its name under `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// An inline explicit deny of every action on every resource ([`DENY_ALL_POLICY`]).
    DenyAll {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        principal: IamPrincipal,
    },
    /// An inline deny for the role's sessions issued before `issued_before`
    /// (`aws:TokenIssueTime`): how STS sessions already handed out are revoked.
    RevokeSessions {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        role: String,
        issued_before: Millis,
    },
    /// The access key set `Inactive` (deleted only by a later, separate step).
    DeactivateAccessKey {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        user: String,
        key_id: String,
    },
    /// The user's console password removed.
    DeleteLoginProfile {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        user: String,
    },
    /// The user's MFA devices listed into the evidence (a person decides about them).
    ListMfaDevices {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        user: String,
    },
    /// A deny statement ([`DENY_SUBJECT_SID`]) added to the role's trust policy for one
    /// web-identity subject: `provider` is the issuer's host (the condition key's prefix,
    /// `token.actions.githubusercontent.com`), `subject` the `sub` claim.
    DenyWebIdentitySubject {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        role: String,
        provider: String,
        subject: String,
    },
    /// Every RoleBinding and ClusterRoleBinding that names the service account loses it as a
    /// subject (a binding whose only subject it is, is deleted); all kept in the snapshot.
    RemoveBindings {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        namespace: String,
        service_account: String,
        /// The bindings known when the plan was made (`Kind/namespace/name`); the connector
        /// finds the live ones itself.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        known: Vec<String>,
    },
    /// The service account's token secrets deleted (kept in the snapshot).
    DeleteTokenSecrets {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        namespace: String,
        service_account: String,
    },
    /// The pods running as the service account restarted (their controllers make new ones,
    /// which get no old token).
    RestartPods {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        namespace: String,
        service_account: String,
    },
    /// The blue-green path: a new service account with the old one's bindings, the
    /// deployments patched to it and their rollout verified, then the old one deleted.
    BlueGreen {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        namespace: String,
        service_account: String,
        replacement: String,
    },
    /// One binding deleted (blast radius: created by the compromised identity).
    DeleteBinding {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        kind: BindingKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        name: String,
    },
    /// A new access key for the user, replacing `replaces` (rotation, [`crate::rotate`]).
    /// Its secret is held in memory only, never in the step's result.
    CreateAccessKey {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        user: String,
        replaces: String,
    },
    /// The new key (replacing `replaces`) written where the old one lives, the rest of the
    /// value kept (rotation).
    UpdateSecretValue {
        user: String,
        replaces: String,
        location: SecretLocation,
    },
    /// Secrets Manager's `finishSecret`: the version a rotation wrote as `AWSPENDING` is
    /// tested (its key, read back from the secret, answers `sts:GetCallerIdentity` as the
    /// user) and then promoted to `AWSCURRENT`; the old version keeps `AWSPREVIOUS`.
    PromoteSecretVersion {
        user: String,
        replaces: String,
        secret_id: String,
    },
    /// `sts:GetCallerIdentity` signed with the new key answers the user's ARN (rotation).
    VerifyAccessKey {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        user: String,
        replaces: String,
    },
    /// One change back to an approved baseline (self-healing, [`crate::restore`]).
    RestoreBaseline {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        principal: IamPrincipal,
        change: crate::restore::Change,
    },
    /// A Vault/OpenBao identity entity set `disabled` (`identity/entity/id/ID`): every token
    /// of the entity stops working; enabling it again (undo) makes them work again.
    DisableVaultEntity { id: String, name: String },
    /// A Vault/OpenBao token revoked by its accessor (with its child tokens and leases):
    /// cannot be undone. `display` is its display name (what it was found by).
    RevokeVaultToken { accessor: String, display: String },
    /// Every lease under a prefix revoked (`sys/leases/revoke-prefix`), e.g. the dynamic
    /// secrets issued under one role: cannot be undone.
    RevokeVaultLeases { prefix: String },
    /// A token created through a token role (`auth/token/create/ROLE`) for the destination
    /// `into` (its entry `key`): the token is held in this process's memory only
    /// ([`crate::rotate::handoff`]); the step's result holds its accessor. Undo revokes it.
    IssueVaultToken {
        role: String,
        ttl_secs: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        policies: Vec<String>,
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        meta: std::collections::BTreeMap<String, String>,
        into: SecretLocation,
        key: String,
    },
    /// The token issued for `into` written into its entry `key` (a Kubernetes Secret's data
    /// or a KV v2 secret's field), the other entries kept.
    WriteVaultToken { into: SecretLocation, key: String },
    /// The token issued for `into` answers `auth/token/lookup-self` (it works) with the
    /// accessor the issue step recorded.
    VerifyVaultToken { into: SecretLocation, key: String },
    /// A rotation's old key or a retired identity deleted after its grace period
    /// ([`crate::purge`]): cannot be undone; the snapshot holds what was deleted.
    Delete { what: crate::purge::Deletion },
    /// A managed policy attached to an IAM user or role (a time-bound access grant; its undo
    /// detaches it, unless it was attached before the grant).
    AttachPolicy {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        principal: IamPrincipal,
        policy_arn: String,
    },
    /// An IAM user added to a group (a time-bound access grant; its undo removes it, unless
    /// it was a member before the grant).
    AddToGroup {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        user: String,
        group: String,
    },
    /// A binding of `role` to one service account created, labelled [`MANAGED_BY_LABEL`]
    /// `keyward` and annotated [`GRANT_ANNOTATION`] with the grant's id (a time-bound access
    /// grant; its undo deletes it). A RoleBinding lives in `namespace`.
    CreateBinding {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        kind: BindingKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        name: String,
        role_kind: RoleKind,
        role: String,
        sa_namespace: String,
        service_account: String,
        grant: String,
    },
    /// Something a person must look at: no API change is made.
    /// `inspect` is the command that shows what to look at (a step's own `command` field
    /// holds the list of commands, so the action's may not share its name).
    Review { what: String, inspect: String },
}

impl Action {
    /// `aws`, `kubernetes`, `vault`, or `manual`.
    pub fn platform(&self) -> &'static str {
        match self {
            Action::DenyAll { .. }
            | Action::RevokeSessions { .. }
            | Action::DeactivateAccessKey { .. }
            | Action::DeleteLoginProfile { .. }
            | Action::ListMfaDevices { .. }
            | Action::DenyWebIdentitySubject { .. }
            | Action::CreateAccessKey { .. }
            | Action::PromoteSecretVersion { .. }
            | Action::RestoreBaseline { .. }
            | Action::VerifyAccessKey { .. }
            | Action::AttachPolicy { .. }
            | Action::AddToGroup { .. } => "aws",
            Action::UpdateSecretValue { location, .. } => location.platform(),
            Action::Delete { what } => what.platform(),
            Action::WriteVaultToken { into, .. } => into.platform(),
            Action::DisableVaultEntity { .. }
            | Action::RevokeVaultToken { .. }
            | Action::RevokeVaultLeases { .. }
            | Action::IssueVaultToken { .. }
            | Action::VerifyVaultToken { .. } => "vault",
            Action::RemoveBindings { .. }
            | Action::DeleteTokenSecrets { .. }
            | Action::RestartPods { .. }
            | Action::BlueGreen { .. }
            | Action::DeleteBinding { .. }
            | Action::CreateBinding { .. } => "kubernetes",
            Action::Review { .. } => "manual",
        }
    }

    /// The action's name as serialized (`deny_all`, `remove_bindings`…).
    pub fn name(&self) -> &'static str {
        match self {
            Action::DenyAll { .. } => "deny_all",
            Action::RevokeSessions { .. } => "revoke_sessions",
            Action::DeactivateAccessKey { .. } => "deactivate_access_key",
            Action::DeleteLoginProfile { .. } => "delete_login_profile",
            Action::ListMfaDevices { .. } => "list_mfa_devices",
            Action::DenyWebIdentitySubject { .. } => "deny_web_identity_subject",
            Action::RemoveBindings { .. } => "remove_bindings",
            Action::DeleteTokenSecrets { .. } => "delete_token_secrets",
            Action::RestartPods { .. } => "restart_pods",
            Action::BlueGreen { .. } => "blue_green",
            Action::DeleteBinding { .. } => "delete_binding",
            Action::CreateAccessKey { .. } => "create_access_key",
            Action::UpdateSecretValue { .. } => "update_secret_value",
            Action::PromoteSecretVersion { .. } => "promote_secret_version",
            Action::RestoreBaseline { .. } => "restore_baseline",
            Action::VerifyAccessKey { .. } => "verify_access_key",
            Action::DisableVaultEntity { .. } => "disable_vault_entity",
            Action::RevokeVaultToken { .. } => "revoke_vault_token",
            Action::RevokeVaultLeases { .. } => "revoke_vault_leases",
            Action::IssueVaultToken { .. } => "issue_vault_token",
            Action::WriteVaultToken { .. } => "write_vault_token",
            Action::VerifyVaultToken { .. } => "verify_vault_token",
            Action::Delete { .. } => "delete",
            Action::AttachPolicy { .. } => "attach_policy",
            Action::AddToGroup { .. } => "add_to_group",
            Action::CreateBinding { .. } => "create_binding",
            Action::Review { .. } => "review",
        }
    }

    /// Whether it is a time-bound access grant's step: such a plan runs only through
    /// `keyward access` (apply, revoke, expire), which keeps the grant's state and expiry;
    /// executed or undone as a bare plan, the access would never expire.
    pub fn grants_access(&self) -> bool {
        matches!(
            self,
            Action::AttachPolicy { .. } | Action::AddToGroup { .. } | Action::CreateBinding { .. }
        )
    }

    /// Whether executing it changes the platform (a listing or a review does not).
    pub fn changes_platform(&self) -> bool {
        !matches!(
            self,
            Action::ListMfaDevices { .. }
                | Action::VerifyAccessKey { .. }
                | Action::VerifyVaultToken { .. }
                | Action::Review { .. }
        )
    }

    /// Whether [`crate::execute`] can undo it. Restarting pods and removing a console
    /// password cannot be taken back (a person sets a new password), nor can a revoked Vault
    /// token or lease.
    pub fn reversible(&self) -> bool {
        !matches!(
            self,
            Action::RestartPods { .. }
                | Action::DeleteLoginProfile { .. }
                | Action::RevokeVaultToken { .. }
                | Action::RevokeVaultLeases { .. }
                | Action::Delete { .. }
        )
    }

    /// The object acted on: an ARN when the account is known, else `role/NAME`;
    /// `namespace/serviceaccount/NAME` or `Kind/namespace/name` on Kubernetes.
    pub fn target(&self) -> String {
        fn iam(account: &Option<String>, noun: &str, name: &str) -> String {
            match account {
                Some(a) => format!("arn:aws:iam::{a}:{noun}/{name}"),
                None => format!("{noun}/{name}"),
            }
        }
        match self {
            Action::DenyAll { account, principal }
            | Action::RestoreBaseline {
                account, principal, ..
            }
            | Action::AttachPolicy {
                account, principal, ..
            } => iam(account, principal.noun(), principal.name()),
            Action::RevokeSessions { account, role, .. }
            | Action::DenyWebIdentitySubject { account, role, .. } => iam(account, "role", role),
            Action::DeactivateAccessKey { key_id, .. } => key_id.clone(),
            Action::DeleteLoginProfile { account, user }
            | Action::ListMfaDevices { account, user }
            | Action::AddToGroup { account, user, .. }
            | Action::CreateAccessKey { account, user, .. }
            | Action::VerifyAccessKey { account, user, .. } => iam(account, "user", user),
            Action::UpdateSecretValue { location, .. } => location.to_string(),
            Action::PromoteSecretVersion { secret_id, .. } => format!("secretsmanager:{secret_id}"),
            Action::RemoveBindings {
                namespace,
                service_account,
                ..
            }
            | Action::DeleteTokenSecrets {
                namespace,
                service_account,
                ..
            }
            | Action::RestartPods {
                namespace,
                service_account,
                ..
            }
            | Action::BlueGreen {
                namespace,
                service_account,
                ..
            } => {
                format!("{namespace}/serviceaccount/{service_account}")
            }
            Action::DeleteBinding {
                kind,
                namespace,
                name,
                ..
            }
            | Action::CreateBinding {
                kind,
                namespace,
                name,
                ..
            } => match namespace {
                Some(ns) => format!("{kind:?}/{ns}/{name}"),
                None => format!("{kind:?}/{name}"),
            },
            Action::DisableVaultEntity { id, .. } => format!("vault:entity/{id}"),
            Action::RevokeVaultToken { accessor, .. } => format!("vault:accessor/{accessor}"),
            Action::RevokeVaultLeases { prefix } => format!("vault:leases/{prefix}"),
            Action::IssueVaultToken { role, .. } => format!("vault:role/{role}"),
            Action::WriteVaultToken { into, key } | Action::VerifyVaultToken { into, key } => {
                format!("{into}#{key}")
            }
            Action::Delete { what } => what.target(),
            Action::Review { what, .. } => what.clone(),
        }
    }

    /// What must hold before the step runs, in words.
    pub fn precondition(&self) -> String {
        match self {
            Action::DenyAll { principal, .. } => format!(
                "the {} exists and has no inline policy {DENY_ALL_POLICY}",
                principal.noun()
            ),
            Action::RevokeSessions { .. } => {
                format!("the role exists and has no inline policy {REVOKE_SESSIONS_POLICY}")
            }
            Action::DeactivateAccessKey { .. } => "the key exists and is Active".into(),
            Action::DeleteLoginProfile { .. } => {
                "the user has a login profile (none: nothing to do)".into()
            }
            Action::ListMfaDevices { .. } => "the user exists".into(),
            Action::DenyWebIdentitySubject { .. } => {
                "the role exists and its trust policy allows the subject's provider".into()
            }
            Action::RemoveBindings { .. }
            | Action::DeleteTokenSecrets { .. }
            | Action::RestartPods { .. } => "the service account exists".into(),
            Action::BlueGreen { replacement, .. } => {
                format!("the service account exists and no service account {replacement} does")
            }
            Action::DeleteBinding { .. } => {
                "the binding exists (gone already, as when the plan removed it from the identity: nothing to do)".into()
            }
            Action::CreateAccessKey { replaces, .. } => format!(
                "{replaces} is the user's only access key and is Active (IAM allows two)"
            ),
            Action::UpdateSecretValue { replaces, .. } => format!(
                "the value holds {replaces} and its secret; the new key is in this process's memory"
            ),
            Action::VerifyAccessKey { .. } => {
                "the new key is in this process's memory".into()
            }
            Action::PromoteSecretVersion { .. } => {
                "the secret's AWSPENDING version holds a key of the user that authenticates".into()
            }
            Action::RestoreBaseline {
                principal, change, ..
            } => change.precondition(principal),
            Action::DisableVaultEntity { .. } => "the entity exists".into(),
            Action::RevokeVaultToken { .. } => {
                "the accessor names a token (gone already: nothing to do)".into()
            }
            Action::RevokeVaultLeases { .. } => "none (no lease under the prefix: nothing to do)".into(),
            Action::IssueVaultToken { role, .. } => format!("the token role {role} exists"),
            Action::WriteVaultToken { into, .. } => format!(
                "{into} exists; the token issued for it is in this process's memory"
            ),
            Action::VerifyVaultToken { .. } => {
                "the token issued for the destination is in this process's memory".into()
            }
            Action::Delete { what } => what.precondition(),
            Action::AttachPolicy { principal, .. } => format!(
                "the {} and the managed policy exist (attached already: left so, and left at revocation)",
                principal.noun()
            ),
            Action::AddToGroup { .. } => {
                "the user and the group exist (a member already: left so, and left at revocation)".into()
            }
            Action::CreateBinding { role_kind, .. } => format!(
                "the service account's namespace exists and no binding of that name does; the {} exists",
                role_kind.as_str()
            ),
            Action::Review { .. } => "none".into(),
        }
    }

    /// The exact commands that do the same by hand.
    pub fn commands(&self) -> Vec<String> {
        match self {
            Action::Review { inspect, .. } => vec![inspect.clone()],
            Action::Delete { what } => what.commands(),
            Action::UpdateSecretValue { location, .. } => crate::rotate::commands(self, location),
            Action::RestoreBaseline {
                principal, change, ..
            } => change.commands(principal),
            Action::DisableVaultEntity { .. }
            | Action::RevokeVaultToken { .. }
            | Action::RevokeVaultLeases { .. }
            | Action::IssueVaultToken { .. }
            | Action::WriteVaultToken { .. }
            | Action::VerifyVaultToken { .. } => crate::vault::commands(self),
            _ if self.platform() == "aws" => crate::aws::commands(self),
            _ => crate::kube::commands(self),
        }
    }

    /// The exact commands that undo it by hand (empty when it cannot be undone).
    pub fn undo_commands(&self) -> Vec<String> {
        match self {
            Action::Review { .. } | Action::Delete { .. } => Vec::new(),
            Action::RestoreBaseline {
                principal, change, ..
            } => change.undo_commands(principal),
            Action::UpdateSecretValue { location, .. } => {
                crate::rotate::undo_commands(self, location)
            }
            Action::DisableVaultEntity { .. }
            | Action::RevokeVaultToken { .. }
            | Action::RevokeVaultLeases { .. }
            | Action::IssueVaultToken { .. }
            | Action::WriteVaultToken { .. }
            | Action::VerifyVaultToken { .. } => crate::vault::undo_commands(self),
            _ if self.platform() == "aws" => crate::aws::undo_commands(self),
            _ => crate::kube::undo_commands(self),
        }
    }
}

/// A POSIX shell single-quoted word: safe to paste whatever the name holds.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'.' | b'/' | b':' | b'@' | b'=' | b',' | b'+'
                )
        })
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

//! The inventory record of one identity, its credentials, and its lifecycle state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::time::{MS_PER_DAY, Millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Aws,
    Kubernetes,
    Github,
    Oidc,
    /// AI agents and their sessions, seen in their own telemetry (OpenTelemetry GenAI and
    /// MCP spans).
    Ai,
    /// Credentials Keyward's own broker issued (tokens, SVIDs, dynamic secrets).
    Keyward,
}

impl Platform {
    pub const ALL: [Platform; 6] = [
        Platform::Aws,
        Platform::Kubernetes,
        Platform::Github,
        Platform::Oidc,
        Platform::Ai,
        Platform::Keyward,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Aws => "aws",
            Platform::Kubernetes => "kubernetes",
            Platform::Github => "github",
            Platform::Oidc => "oidc",
            Platform::Ai => "ai",
            Platform::Keyward => "keyward",
        }
    }
}

/// What kind of identity an inventory entry is. `snake_case` names are the JSON contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    IamUser,
    IamRole,
    AccountRoot,
    /// An STS assumed-role session.
    StsSession,
    /// An STS `GetFederationToken` session.
    FederatedUser,
    AccessKey,
    TemporaryAccessKey,
    /// A web-identity (OIDC) subject that assumes roles: GitHub Actions, EKS IRSA, others.
    OidcSubject,
    SamlSubject,
    IdentityCenterUser,
    AwsService,
    /// A principal of another account seen only as an account (`AWSAccount` in CloudTrail).
    ExternalAccount,
    ServiceAccount,
    KubernetesUser,
    KubernetesNode,
    KubernetesSystem,
    /// A GitHub account seen acting (a person or a machine user).
    GithubUser,
    /// A GitHub App installation on an organization or user account.
    GithubApp,
    /// A repository deploy key (SSH).
    DeployKey,
    /// A fine-grained personal access token granted to an organization.
    PersonalAccessToken,
    /// A GitHub Actions workflow of a repository (the workload behind its `GITHUB_TOKEN`
    /// and OIDC tokens).
    GithubWorkflow,
    /// An AI agent (`gen_ai.agent.id`): the non-human actor behind tool calls.
    AiAgent,
    /// One conversation or MCP session of an agent (`gen_ai.conversation.id`,
    /// `mcp.session.id`): where a person's prompt turns into the agent's tool calls.
    AgentSession,
    /// A credential Keyward's broker issued under a lease (a JWT, an SVID, a dynamic
    /// secret; its AWS sessions are `StsSession`s).
    BrokerCredential,
    Unknown,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::IamUser => "iam_user",
            IdentityKind::IamRole => "iam_role",
            IdentityKind::AccountRoot => "account_root",
            IdentityKind::StsSession => "sts_session",
            IdentityKind::FederatedUser => "federated_user",
            IdentityKind::AccessKey => "access_key",
            IdentityKind::TemporaryAccessKey => "temporary_access_key",
            IdentityKind::OidcSubject => "oidc_subject",
            IdentityKind::SamlSubject => "saml_subject",
            IdentityKind::IdentityCenterUser => "identity_center_user",
            IdentityKind::AwsService => "aws_service",
            IdentityKind::ExternalAccount => "external_account",
            IdentityKind::ServiceAccount => "service_account",
            IdentityKind::KubernetesUser => "kubernetes_user",
            IdentityKind::KubernetesNode => "kubernetes_node",
            IdentityKind::KubernetesSystem => "kubernetes_system",
            IdentityKind::GithubUser => "github_user",
            IdentityKind::GithubApp => "github_app",
            IdentityKind::DeployKey => "deploy_key",
            IdentityKind::PersonalAccessToken => "personal_access_token",
            IdentityKind::GithubWorkflow => "github_workflow",
            IdentityKind::AiAgent => "ai_agent",
            IdentityKind::AgentSession => "agent_session",
            IdentityKind::BrokerCredential => "broker_credential",
            IdentityKind::Unknown => "unknown",
        }
    }

    pub const ALL: [IdentityKind; 25] = [
        IdentityKind::IamUser,
        IdentityKind::IamRole,
        IdentityKind::AccountRoot,
        IdentityKind::StsSession,
        IdentityKind::FederatedUser,
        IdentityKind::AccessKey,
        IdentityKind::TemporaryAccessKey,
        IdentityKind::OidcSubject,
        IdentityKind::SamlSubject,
        IdentityKind::IdentityCenterUser,
        IdentityKind::AwsService,
        IdentityKind::ExternalAccount,
        IdentityKind::ServiceAccount,
        IdentityKind::KubernetesUser,
        IdentityKind::KubernetesNode,
        IdentityKind::KubernetesSystem,
        IdentityKind::GithubUser,
        IdentityKind::GithubApp,
        IdentityKind::DeployKey,
        IdentityKind::PersonalAccessToken,
        IdentityKind::GithubWorkflow,
        IdentityKind::AiAgent,
        IdentityKind::AgentSession,
        IdentityKind::BrokerCredential,
        IdentityKind::Unknown,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Identities that exist for minutes or hours by design.
    pub fn is_ephemeral(self) -> bool {
        match self {
            IdentityKind::StsSession
            | IdentityKind::FederatedUser
            | IdentityKind::TemporaryAccessKey
            | IdentityKind::AgentSession
            | IdentityKind::BrokerCredential => true,
            IdentityKind::IamUser
            | IdentityKind::IamRole
            | IdentityKind::AccountRoot
            | IdentityKind::AccessKey
            | IdentityKind::OidcSubject
            | IdentityKind::SamlSubject
            | IdentityKind::IdentityCenterUser
            | IdentityKind::AwsService
            | IdentityKind::ExternalAccount
            | IdentityKind::ServiceAccount
            | IdentityKind::KubernetesUser
            | IdentityKind::KubernetesNode
            | IdentityKind::KubernetesSystem
            | IdentityKind::GithubUser
            | IdentityKind::GithubApp
            | IdentityKind::DeployKey
            | IdentityKind::PersonalAccessToken
            | IdentityKind::GithubWorkflow
            | IdentityKind::AiAgent
            | IdentityKind::Unknown => false,
        }
    }

    /// Identities that authenticate through a federation (no long-term secret of their own).
    pub fn is_federated(self) -> bool {
        matches!(
            self,
            IdentityKind::OidcSubject
                | IdentityKind::SamlSubject
                | IdentityKind::IdentityCenterUser
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    AccessKey,
    TemporaryAccessKey,
    Password,
    SigningCertificate,
    ServiceAccountToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    Active,
    Inactive,
    Deleted,
    Unknown,
}

/// One credential of an identity. `id` is the key id when known, otherwise the credential
/// report slot (`access_key_1`, `password`, `cert_2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub id: String,
    pub kind: CredentialKind,
    pub status: CredentialStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_service: Option<String>,
}

/// Which kinds of evidence have seen an identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Seen in configuration: IAM snapshot, credential report, RBAC dump.
    #[serde(rename = "static")]
    pub static_config: bool,
    /// Seen in activity logs: CloudTrail, Kubernetes audit.
    #[serde(rename = "dynamic")]
    pub dynamic_log: bool,
}

impl Evidence {
    pub fn label(self) -> &'static str {
        match (self.static_config, self.dynamic_log) {
            (true, true) => "both",
            (true, false) => "static",
            (false, true) => "dynamic",
            (false, false) => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    Active,
    Stale,
    Ephemeral,
    Deleted,
    /// Not seen used within the stale window, but nothing could have seen it: no activity
    /// log of its platform spans the window and the platform keeps no last-use record of
    /// it. Only the engine, which knows how far the logs reach, says so.
    Unknown,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Active => "active",
            Lifecycle::Stale => "stale",
            Lifecycle::Ephemeral => "ephemeral",
            Lifecycle::Deleted => "deleted",
            Lifecycle::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Lifecycle::Active,
            Lifecycle::Stale,
            Lifecycle::Ephemeral,
            Lifecycle::Deleted,
            Lifecycle::Unknown,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LifecycleConfig {
    /// The instant the state is computed for (normally now).
    pub as_of: Millis,
    /// Unused for more than this many days means stale.
    pub stale_after_days: i64,
}

/// Everything the inventory knows about one identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub id: String,
    pub platform: Platform,
    pub kind: IdentityKind,
    pub name: String,
    pub arn: Option<String>,
    /// The platform's own opaque id: IAM `RoleId`/`UserId`, Kubernetes `uid`.
    pub native_id: Option<String>,
    pub account: Option<String>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    /// Federated subject (`sub` claim, SAML subject).
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub created: Option<Millis>,
    pub last_used: Option<Millis>,
    pub first_seen: Option<Millis>,
    pub last_seen: Option<Millis>,
    pub event_count: u64,
    pub deleted: Option<Millis>,
    pub credentials: Vec<Credential>,
    pub tags: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub evidence: Evidence,
    /// Source formats that mentioned it (`cloudtrail`, `iam-authorization-details`, …).
    pub sources: BTreeSet<String>,
    /// The identity this one belongs to: role of a session, user of a key.
    pub parent: Option<String>,
    /// Identities that assumed this one (callers of `AssumeRole*`, federation subjects).
    pub assumed_by: BTreeSet<String>,
    /// Identities that created this one (`CreateUser`, `CreateAccessKey`, `create
    /// serviceaccounts/token`).
    pub created_by: BTreeSet<String>,
    /// For sessions: the chain of identities from the original principal to this session.
    pub chain: Vec<String>,
    pub source_identity: Option<String>,
    /// Other identities this one maps to (IRSA subject ↔ service account, EKS user ↔ IAM
    /// session, OIDC subject → roles it assumed).
    pub links: BTreeSet<String>,
    /// Platform-specific facts kept as structured JSON (trust policy, attached policies,
    /// groups, instance profiles, bindings, workloads, federation claims).
    pub details: BTreeMap<String, serde_json::Value>,
}

impl Identity {
    pub fn new(id: String, platform: Platform, kind: IdentityKind, name: String) -> Self {
        Identity {
            id,
            platform,
            kind,
            name,
            arn: None,
            native_id: None,
            account: None,
            cluster: None,
            namespace: None,
            subject: None,
            issuer: None,
            created: None,
            last_used: None,
            first_seen: None,
            last_seen: None,
            event_count: 0,
            deleted: None,
            credentials: Vec::new(),
            tags: BTreeMap::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            evidence: Evidence::default(),
            sources: BTreeSet::new(),
            parent: None,
            assumed_by: BTreeSet::new(),
            created_by: BTreeSet::new(),
            chain: Vec::new(),
            source_identity: None,
            links: BTreeSet::new(),
            details: BTreeMap::new(),
        }
    }

    /// Long-term access keys currently active. When a credential report supplied slots,
    /// those are authoritative (they cover keys never seen in logs).
    pub fn active_key_count(&self) -> usize {
        let active = |c: &&Credential| {
            c.kind == CredentialKind::AccessKey && c.status == CredentialStatus::Active
        };
        let slots = self
            .credentials
            .iter()
            .filter(|c| c.id.starts_with("access_key_"))
            .filter(active)
            .count();
        let has_slots = self
            .credentials
            .iter()
            .any(|c| c.id.starts_with("access_key_"));
        if has_slots {
            slots
        } else {
            self.credentials.iter().filter(active).count()
        }
    }

    /// Whether it authenticates with a long-term secret of its own.
    pub fn has_static_credentials(&self) -> bool {
        self.kind == IdentityKind::AccessKey
            || self.credentials.iter().any(|c| {
                matches!(
                    c.kind,
                    CredentialKind::AccessKey | CredentialKind::SigningCertificate
                ) && c.status == CredentialStatus::Active
            })
    }

    pub fn federated(&self) -> bool {
        self.kind.is_federated() || self.details.contains_key("federation")
    }

    /// The most recent sign of life: use, or creation when never used.
    pub fn last_activity(&self) -> Option<Millis> {
        self.last_used.or(self.created)
    }

    pub fn lifecycle(&self, cfg: LifecycleConfig) -> Lifecycle {
        if let Some(deleted) = self.deleted
            && self.last_activity().is_none_or(|t| t <= deleted)
        {
            return Lifecycle::Deleted;
        }
        if self.kind.is_ephemeral() {
            return Lifecycle::Ephemeral;
        }
        match self.last_activity() {
            Some(t) if cfg.as_of - t <= cfg.stale_after_days * MS_PER_DAY => Lifecycle::Active,
            _ => Lifecycle::Stale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> Identity {
        Identity::new("r".into(), Platform::Aws, IdentityKind::IamRole, "r".into())
    }

    #[test]
    fn lifecycle_states() {
        let cfg = LifecycleConfig {
            as_of: 100 * MS_PER_DAY,
            stale_after_days: 30,
        };
        let mut r = role();
        assert_eq!(r.lifecycle(cfg), Lifecycle::Stale, "no sign of life at all");
        r.created = Some(90 * MS_PER_DAY);
        assert_eq!(
            r.lifecycle(cfg),
            Lifecycle::Active,
            "created recently, never used"
        );
        r.last_used = Some(60 * MS_PER_DAY);
        assert_eq!(
            r.lifecycle(cfg),
            Lifecycle::Stale,
            "last use wins over creation"
        );
        r.last_used = Some(70 * MS_PER_DAY);
        assert_eq!(
            r.lifecycle(cfg),
            Lifecycle::Active,
            "exactly 30 days is still active"
        );
        r.deleted = Some(80 * MS_PER_DAY);
        assert_eq!(r.lifecycle(cfg), Lifecycle::Deleted);
        r.last_used = Some(85 * MS_PER_DAY);
        assert_eq!(
            r.lifecycle(cfg),
            Lifecycle::Active,
            "used after deletion: recreated"
        );
        let s = Identity::new(
            "s".into(),
            Platform::Aws,
            IdentityKind::StsSession,
            "s".into(),
        );
        assert_eq!(s.lifecycle(cfg), Lifecycle::Ephemeral);
    }

    #[test]
    fn key_count_prefers_report_slots() {
        let mut u = role();
        let key = |id: &str, status| Credential {
            id: id.into(),
            kind: CredentialKind::AccessKey,
            status,
            created: None,
            last_used: None,
            last_used_region: None,
            last_used_service: None,
        };
        u.credentials
            .push(key("AKIAEXAMPLE", CredentialStatus::Active));
        assert_eq!(u.active_key_count(), 1);
        u.credentials
            .push(key("access_key_1", CredentialStatus::Active));
        u.credentials
            .push(key("access_key_2", CredentialStatus::Active));
        assert_eq!(u.active_key_count(), 2);
    }
}

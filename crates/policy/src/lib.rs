//! Who may do what: every decision about a person, an API token or Keyward's scheduler
//! acting on the estate goes through Cedar (`cedar-policy`) with Keyward's schema
//! ([`SCHEMA`]) and a policy set — the built-in roles ([`DEFAULT_POLICIES`]) or a directory
//! of `.cedar` files with an optional `entities.json`.
//!
//! - [`load`]: policy files → a validated [`Policies`] (errors carry file and line).
//! - [`entities`]: the request's principal, resource and context as Cedar values.
//! - [`cases`]: `keyward policy test` — expected decisions checked against a policy set.
//!
//! Pure: no I/O beyond reading the policy directory; callers audit each [`Decision`].

pub mod cases;
pub mod entities;
pub mod load;

use std::collections::HashMap;
use std::net::IpAddr;

use cedar_policy::{Authorizer, Entities, PolicySet, Schema};
use keyward_model::time::Millis;

pub use load::{Origin, PolicyError};

/// Keyward's Cedar schema (entities, actions, the request context), in Cedar syntax.
pub const SCHEMA: &str = include_str!("keyward.cedarschema");
/// The built-in policies: the viewer, operator and admin roles, and no self-approval.
pub const DEFAULT_POLICIES: &str = include_str!("default.cedar");

/// What is being done (the schema's actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    View,
    Triage,
    Ingest,
    Plan,
    Execute,
    Approve,
    Grant,
    Rotate,
    Retire,
    Manage,
    /// The credential broker mints a credential for a workload.
    Issue,
}

impl Act {
    pub const ALL: [Act; 11] = [
        Act::View,
        Act::Triage,
        Act::Ingest,
        Act::Plan,
        Act::Execute,
        Act::Approve,
        Act::Grant,
        Act::Rotate,
        Act::Retire,
        Act::Manage,
        Act::Issue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Act::View => "view",
            Act::Triage => "triage",
            Act::Ingest => "ingest",
            Act::Plan => "plan",
            Act::Execute => "execute",
            Act::Approve => "approve",
            Act::Grant => "grant",
            Act::Rotate => "rotate",
            Act::Retire => "retire",
            Act::Manage => "manage",
            Act::Issue => "issue",
        }
    }

    pub fn parse(s: &str) -> Option<Act> {
        Act::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// Someone at the command line (`$USER`), or named in the entities file.
    Person { name: String },
    /// An API token, in its role.
    Token {
        id: String,
        role: String,
        name: String,
    },
    /// Keyward itself, on a timer (`keyward serve`).
    Service { name: String },
    /// A workload that proved who it is to the credential broker.
    Workload(Box<Workload>),
}

/// A workload as a policy sees it (the broker's verified proof).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Workload {
    /// Its key in the inventory (a service account's, an OIDC subject's, a SPIFFE id).
    pub identity: String,
    /// `kubernetes`, `github_actions`, `oidc`, `keyward` or `mtls`.
    pub proof: String,
    pub issuer: String,
    pub subject: String,
    /// The cluster and namespace of a Kubernetes workload: it is in that namespace.
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    /// The proof's claims a policy may test (the schema's optional `Workload` attributes:
    /// `service_account`, `repository`, `ref`, `environment`, `workflow`, `trust_domain`,
    /// `audience`, `agent`); others are ignored.
    pub attrs: std::collections::BTreeMap<String, String>,
}

impl Principal {
    /// The name the audit log uses for it (`cli:alice`, `token:ab12…`, `keyward:scheduler`).
    pub fn actor(&self) -> String {
        match self {
            Principal::Person { name } => format!("cli:{name}"),
            Principal::Token { id, .. } => format!("token:{id}"),
            Principal::Service { name } => format!("keyward:{name}"),
            Principal::Workload(w) => format!("workload:{}", w.identity),
        }
    }

    /// The person behind a command-line actor (`cli:alice` → alice; a bare `cli` → cli).
    pub fn from_cli_actor(actor: &str) -> Principal {
        Principal::Person {
            name: actor.strip_prefix("cli:").unwrap_or(actor).to_owned(),
        }
    }
}

/// What is acted on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Resource {
    /// Everything (lists, searches, tokens, the audit log).
    #[default]
    Estate,
    Account(String),
    Cluster(String),
    Namespace {
        cluster: String,
        name: String,
    },
    Identity(Target),
    /// What the broker issues: `kind` (`jwt`, `aws`, `svid`, `secret`) for `target` (an
    /// audience, a role ARN, a SPIFFE id, a secret's name).
    Credential {
        kind: String,
        target: String,
    },
}

/// A machine identity as a policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Target {
    /// Keyward's identity key (an ARN, `k8s:CLUSTER:sa:NS:NAME`, …).
    pub id: String,
    /// `iam_user`, `iam_role`, `k8s_service_account`, …
    pub kind: String,
    /// `aws`, `kubernetes`, `github`, …
    pub platform: String,
    pub name: String,
    pub account: Option<String>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    /// Its owning team, when the ownership graph knows it.
    pub team: Option<String>,
}

impl Target {
    /// An inventory identity, with its owning team when known.
    pub fn of(i: &keyward_model::Identity, team: Option<String>) -> Target {
        Target {
            id: i.id.clone(),
            kind: i.kind.as_str().to_owned(),
            platform: i.platform.as_str().to_owned(),
            name: i.name.clone(),
            account: i.account.clone(),
            cluster: i.cluster.clone(),
            namespace: i.namespace.clone(),
            team,
        }
    }

    /// A target known only by its id.
    pub fn named(id: &str) -> Target {
        Target {
            id: id.to_owned(),
            name: id.to_owned(),
            ..Target::default()
        }
    }
}

/// An identity's environment: its `environment` or `env` tag or label.
pub fn environment(i: &keyward_model::Identity) -> Option<String> {
    ["environment", "env", "Environment", "Env"]
        .iter()
        .find_map(|k| i.tags.get(*k).or_else(|| i.labels.get(*k)))
        .cloned()
}

impl Resource {
    /// How the audit log names it.
    pub fn label(&self) -> String {
        match self {
            Resource::Estate => "estate".into(),
            Resource::Account(a) => format!("account:{a}"),
            Resource::Cluster(c) => format!("cluster:{c}"),
            Resource::Namespace { cluster, name } => format!("namespace:{cluster}/{name}"),
            Resource::Identity(t) => t.id.clone(),
            Resource::Credential { kind, target } => format!("credential:{kind}:{target}"),
        }
    }
}

/// Where the request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    #[default]
    Cli,
    Api,
    Dashboard,
    Scheduler,
    /// The credential broker (`/broker/…`).
    Broker,
    /// An MCP client's tool call (`keyward mcp`, `/mcp`).
    Mcp,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Cli => "cli",
            Surface::Api => "api",
            Surface::Dashboard => "dashboard",
            Surface::Scheduler => "scheduler",
            Surface::Broker => "broker",
            Surface::Mcp => "mcp",
        }
    }
}

/// The request's circumstances (the schema's `Situation`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Situation {
    pub now: Millis,
    /// The caller's address; the command line is 127.0.0.1.
    pub source_ip: Option<IpAddr>,
    pub surface: Surface,
    /// `none`, `low`, `medium`, `high`, `critical` (the target's worst open finding).
    pub risk_tier: Option<String>,
    /// The target's `environment`/`env` tag.
    pub environment: Option<String>,
    pub break_glass: bool,
    pub revoke: bool,
    /// Who made the request being approved.
    pub requester: Option<String>,
    /// A grant's length.
    pub duration: Option<Millis>,
}

/// One authorisation question.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub principal: &'a Principal,
    pub action: Act,
    pub resource: &'a Resource,
    pub situation: &'a Situation,
}

/// Cedar's answer, with the policies that decided it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// The ids of the policies that decided: the permits that allowed it, or the forbids
    /// that denied it (none when nothing permitted it: Cedar denies by default).
    pub policies: Vec<String>,
    /// Policies that could not be evaluated for this request (they are skipped).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl Decision {
    /// `allow` or `deny`.
    pub fn word(&self) -> &'static str {
        if self.allowed { "allow" } else { "deny" }
    }

    /// Why it was denied, for an error message.
    pub fn denial(&self, ask: &Ask<'_>) -> String {
        let by = if self.policies.is_empty() {
            "no policy permits it".to_owned()
        } else {
            format!("forbidden by {}", self.policies.join(", "))
        };
        format!(
            "{} may not {} {} ({by})",
            ask.principal.actor(),
            ask.action.as_str(),
            ask.resource.label()
        )
    }

    /// The audit entry's detail: the question and the answer.
    pub fn audit_detail(&self, ask: &Ask<'_>) -> String {
        keyward_model::json::sorted(&serde_json::json!({
            "action": ask.action.as_str(),
            "decision": self.word(),
            "policies": self.policies,
            "errors": self.errors,
            "surface": ask.situation.surface.as_str(),
            "break_glass": ask.situation.break_glass,
        }))
    }
}

/// A validated policy set and the entities it knows (people, teams, roles).
#[derive(Debug, Clone)]
pub struct Policies {
    set: PolicySet,
    schema: Schema,
    /// Entities from `entities.json` (normalised), and the built-in roles.
    known: Entities,
    /// Whether an entities file was given: without one, a person at the command line is an
    /// admin (they hold the data directory).
    has_entities_file: bool,
    /// Where each policy id was written.
    origins: HashMap<String, Origin>,
    /// Requests built for questions asked before (`entities::Cache`): shared by clones,
    /// which hold the same schema and known entities.
    cache: std::sync::Arc<entities::Cache>,
}

impl Policies {
    /// Where a policy id was written.
    pub fn origin(&self, id: &str) -> Option<&Origin> {
        self.origins.get(id)
    }

    /// The policy ids, sorted.
    pub fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.origins.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// Cedar's decision on `ask`. A request the schema rejects (it cannot happen with
    /// Keyward's own values) is denied, with the reason in `errors`.
    pub fn decide(&self, ask: &Ask<'_>) -> Decision {
        let request = match entities::request(self, ask) {
            Ok(r) => r,
            Err(e) => {
                return Decision {
                    allowed: false,
                    policies: Vec::new(),
                    errors: vec![e.to_string()],
                };
            }
        };
        request
            .decision
            .get_or_init(|| {
                let response =
                    Authorizer::new().is_authorized(&request.request, &self.set, &request.entities);
                let mut policies: Vec<String> = response
                    .diagnostics()
                    .reason()
                    .map(ToString::to_string)
                    .collect();
                policies.sort_unstable();
                Decision {
                    allowed: response.decision() == cedar_policy::Decision::Allow,
                    policies,
                    errors: response
                        .diagnostics()
                        .errors()
                        .map(ToString::to_string)
                        .collect(),
                }
            })
            .clone()
    }
}

#[cfg(test)]
mod tests;

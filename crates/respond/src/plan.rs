//! Plans: what to change, in order, on which identity, and how to take it back.
//!
//! [`build`] turns what the inventory and the graph know about a compromised identity into
//! an ordered list of [`Step`]s: containment for its credential type, then blast-radius
//! revocation of what it created since `since`. It is pure: the platforms are read only
//! when the plan is executed ([`crate::execute`]).

use std::collections::BTreeSet;

use keyward_graph::{EdgeKind, Graph, Inventory, NodeKind};
use keyward_model::time::Millis;
use keyward_model::{CredentialKind, CredentialStatus, Event, Identity, IdentityKind};
use serde::{Deserialize, Serialize};

use crate::Verified;
use crate::action::{Action, BindingKind, IamPrincipal};

/// A plan's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// Made and shown; nothing ran (dry run).
    Planned,
    /// Running now (or a run died midway: see the steps' results).
    Executing,
    /// Every step ran and its effect was verified.
    Executed,
    /// A step failed; the steps before it ran (see their results).
    Failed,
    /// Every executed step was undone.
    Undone,
    /// An undo failed midway.
    UndoFailed,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Planned => "planned",
            PlanStatus::Executing => "executing",
            PlanStatus::Executed => "executed",
            PlanStatus::Failed => "failed",
            PlanStatus::Undone => "undone",
            PlanStatus::UndoFailed => "undo_failed",
        }
    }
}

/// What running (or undoing) one step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub at: Millis,
    pub ok: bool,
    /// What happened, in words (an error names the call, never a credential).
    pub message: String,
    /// The effect as read back from the platform after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
    /// What the undo needs (the objects removed, the trust policy before), never a secret.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub state: serde_json::Value,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// 1-based position.
    pub n: usize,
    #[serde(flatten)]
    pub action: Action,
    pub target: String,
    /// Why it is in the plan: `contain`, or what the compromised identity did.
    pub why: String,
    pub precondition: String,
    /// The exact equivalent commands.
    pub command: Vec<String>,
    /// The exact commands that undo it (empty: it cannot be undone).
    pub undo: Vec<String>,
    /// The change to make in Terraform when the identity is defined there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<StepResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_result: Option<StepResult>,
}

impl Step {
    /// A step not yet numbered or run: its target, precondition and commands from the
    /// action.
    pub fn new(action: Action, why: &str) -> Step {
        Step {
            n: 0,
            target: action.target(),
            why: why.to_owned(),
            precondition: action.precondition(),
            command: action.commands(),
            undo: action.undo_commands(),
            terraform: None,
            action,
            result: None,
            undo_result: None,
        }
    }
}

/// An ordered, stored, audited list of steps for one identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// `rp-` and 16 hex digits.
    pub id: String,
    pub created_at: Millis,
    /// Who asked for it (`cli:alice`, `token:…`, `auto:<policy>`).
    pub created_by: String,
    /// The compromised identity's canonical id, kind and name.
    pub identity: String,
    pub identity_kind: String,
    pub identity_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    /// Blast-radius revocation covers what it created or changed after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Millis>,
    pub status: PlanStatus,
    /// Workloads that use the identity: what containment will stop.
    pub workloads: Vec<String>,
    /// Things the operator should know (protected identities skipped, what the plan could
    /// not cover).
    pub notes: Vec<String>,
    pub steps: Vec<Step>,
    /// The forensic snapshot's content hash, once taken (before the first change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// What the plan disabled may be deleted this many days after the plan ran (a
    /// rotation's old key, a retired identity: [`crate::purge`]); none for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_days: Option<i64>,
}

/// How to contain a Kubernetes service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum K8sStrategy {
    /// Remove its bindings, delete its token secrets, restart its pods.
    #[default]
    Contain,
    /// New service account, deployments moved to it, old one deleted.
    BlueGreen,
}

/// Identities no plan may touch: Keyward's own credentials, break-glass identities.
/// Patterns are globs over canonical ids and names (`*break-glass*`).
#[derive(Debug, Clone)]
pub struct Protected {
    patterns: Vec<String>,
    set: globset::GlobSet,
}

/// The protected patterns every plan honours, whatever is configured.
pub const DEFAULT_PROTECTED: [&str; 3] = ["*break-glass*", "*breakglass*", "*keyward*"];

impl Protected {
    /// The defaults plus `extra`; a bad glob is an error naming it.
    pub fn new(extra: &[String]) -> Result<Self, PlanError> {
        let mut b = globset::GlobSetBuilder::new();
        let mut patterns = Vec::new();
        for p in DEFAULT_PROTECTED
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().cloned())
        {
            let glob = globset::GlobBuilder::new(&p)
                .case_insensitive(true)
                .literal_separator(false)
                .build()
                .map_err(|e| PlanError::BadPattern(p.clone(), e.to_string()))?;
            b.add(glob);
            patterns.push(p);
        }
        let set = b
            .build()
            .map_err(|e| PlanError::BadPattern(String::new(), e.to_string()))?;
        Ok(Protected { patterns, set })
    }

    /// The pattern that protects this identity, if any.
    pub fn matches(&self, i: &Identity) -> Option<&str> {
        let hit = |s: &str| self.set.matches(s).first().copied();
        let n = hit(&i.id)
            .or_else(|| hit(&i.name))
            .or_else(|| i.arn.as_deref().and_then(hit))?;
        self.patterns.get(n).map(String::as_str)
    }
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no identity {0} in the inventory")]
    UnknownIdentity(String),
    #[error("{id} is protected (matches {pattern}): Keyward will not contain it")]
    Protected { id: String, pattern: String },
    #[error("no containment for a {kind} ({id}): {hint}")]
    Unsupported {
        id: String,
        kind: &'static str,
        hint: &'static str,
    },
    #[error("bad protected pattern {0:?}: {1}")]
    BadPattern(String, String),
}

/// What [`build`] is asked for.
pub struct Request<'a> {
    /// The compromised identity's canonical id.
    pub identity: &'a str,
    pub finding: Option<&'a str>,
    /// Revoke what it created or changed after this instant.
    pub since: Option<Millis>,
    pub now: Millis,
    pub actor: &'a str,
    pub protected: &'a Protected,
    pub k8s: K8sStrategy,
    /// The identity's own events (and its sessions' and keys'), any order: the source of
    /// blast-radius changes the inventory does not hold as identities (bindings, policies).
    pub events: &'a [Event<'static>],
}

/// The plan for one compromised identity.
pub fn build(inv: &Inventory, g: &Graph, req: &Request<'_>) -> Result<Plan, PlanError> {
    let (mut b, me) = Builder::start(inv, g, req, false)?;
    b.contain(me, "contain")?;
    match req.since {
        Some(since) => b.blast_radius(me, since),
        None => b.notes.push(
            "no --since: what the identity created or changed is not revoked (pass --since TIME)"
                .into(),
        ),
    }
    let seed = format!("{}\n{}\n{}\n{:?}", me.id, req.now, req.actor, req.finding);
    Ok(b.finish(me, &seed, req.finding, req.since))
}

/// A retirement plan: the identity disabled in ways `undo` reverses (deny-all policies,
/// keys `Inactive`, bindings removed), `why` naming the reason, and its deletion
/// `grace_days` after it ran ([`crate::purge`]; the commands are in a note).
pub fn retire(
    inv: &Inventory,
    g: &Graph,
    req: &Request<'_>,
    why: &str,
    grace_days: i64,
) -> Result<Plan, PlanError> {
    let (mut b, me) = Builder::start(inv, g, req, true)?;
    b.contain(me, why)?;
    b.notes.push(format!(
        "retire: deleted {grace_days} days after this plan runs, if it still stands (`keyward lifecycle run --execute`; by hand: {}); re-enable before then with `keyward respond undo PLAN`",
        deletion_commands(me).join("; ")
    ));
    let seed = format!("retire\n{}\n{}\n{}", me.id, req.now, req.actor);
    let mut plan = b.finish(me, &seed, None, None);
    plan.grace_days = Some(grace_days.max(0));
    Ok(plan)
}

/// The commands that delete a retired identity for good.
fn deletion_commands(i: &Identity) -> Vec<String> {
    use crate::action::shell_quote as q;
    let name = iam_name(&i.id).unwrap_or(&i.name);
    match i.kind {
        IdentityKind::IamUser => vec![
            format!(
                "aws iam list-access-keys --user-name {} (delete each: aws iam delete-access-key)",
                q(name)
            ),
            format!(
                "aws iam delete-user-policy --user-name {} --policy-name {}",
                q(name),
                crate::action::DENY_ALL_POLICY
            ),
            format!("aws iam delete-user --user-name {}", q(name)),
        ],
        IdentityKind::IamRole => vec![
            format!(
                "aws iam list-attached-role-policies --role-name {} (detach each)",
                q(name)
            ),
            format!(
                "aws iam delete-role-policy --role-name {} --policy-name {}",
                q(name),
                crate::action::DENY_ALL_POLICY
            ),
            format!("aws iam delete-role --role-name {}", q(name)),
        ],
        IdentityKind::AccessKey => match i.parent.as_deref().and_then(iam_name) {
            Some(u) => vec![format!(
                "aws iam delete-access-key --user-name {} --access-key-id {}",
                q(u),
                q(&i.id)
            )],
            None => Vec::new(),
        },
        IdentityKind::ServiceAccount => vec![format!(
            "kubectl -n {} delete serviceaccount {}",
            q(i.namespace.as_deref().unwrap_or("default")),
            q(i.name.rsplit(':').next().unwrap_or(&i.name))
        )],
        _ => Vec::new(),
    }
}

struct Builder<'a> {
    inv: &'a Inventory,
    g: &'a Graph,
    req: &'a Request<'a>,
    steps: Vec<Step>,
    notes: Vec<String>,
    /// Actions already planned (the same key twice is one step).
    seen: BTreeSet<String>,
    /// Retiring, not containing: only reversible steps that disable (no password removal,
    /// no session revocation, no pod restarts), so re-enabling is `undo`.
    retire: bool,
}

/// The name after `role/` or `user/` in an IAM ARN (paths dropped).
pub(crate) fn iam_name(arn: &str) -> Option<&str> {
    let (_, rest) = arn
        .split_once(":role/")
        .or_else(|| arn.split_once(":user/"))?;
    rest.rsplit('/').next()
}

impl<'a> Builder<'a> {
    /// The identity asked for (refused when protected) and an empty builder.
    fn start(
        inv: &'a Inventory,
        g: &'a Graph,
        req: &'a Request<'a>,
        retire: bool,
    ) -> Result<(Self, &'a Identity), PlanError> {
        let me = inv
            .get(req.identity)
            .ok_or_else(|| PlanError::UnknownIdentity(req.identity.to_owned()))?;
        if let Some(p) = req.protected.matches(me) {
            return Err(PlanError::Protected {
                id: me.id.clone(),
                pattern: p.to_owned(),
            });
        }
        let b = Builder {
            inv,
            g,
            req,
            steps: Vec::new(),
            notes: Vec::new(),
            seen: BTreeSet::new(),
            retire,
        };
        Ok((b, me))
    }

    /// The plan: steps numbered, its id from `seed`.
    fn finish(
        self,
        me: &Identity,
        seed: &str,
        finding: Option<&str>,
        since: Option<Millis>,
    ) -> Plan {
        let mut steps = self.steps;
        for (i, s) in steps.iter_mut().enumerate() {
            s.n = i + 1;
        }
        Plan {
            id: format!("rp-{}", &blake3::hash(seed.as_bytes()).to_hex()[..16]),
            created_at: self.req.now,
            created_by: self.req.actor.to_owned(),
            identity: me.id.clone(),
            identity_kind: me.kind.as_str().to_owned(),
            identity_name: me.name.clone(),
            finding: finding.map(str::to_owned),
            since,
            status: PlanStatus::Planned,
            workloads: workloads(self.g, me),
            notes: self.notes,
            steps,
            evidence: None,
            grace_days: None,
        }
    }

    fn push(&mut self, action: Action, why: &str, terraform: Option<String>) {
        let key = serde_json::to_string(&action).unwrap_or_default();
        if !self.seen.insert(key) {
            return;
        }
        let mut step = Step::new(action, why);
        step.terraform = terraform;
        self.steps.push(step);
    }

    /// The Terraform address that defines the identity, if the graph knows one.
    fn terraform_address(&self, i: &Identity) -> Option<String> {
        let node = self.g.find(&i.id)?;
        self.g
            .out_edges(node)
            .filter(|e| e.kind == EdgeKind::DefinedIn)
            .find_map(|e| {
                let n = self.g.node(e.to)?;
                (n.kind == NodeKind::Iac && n.label.contains('.')).then(|| n.label.to_string())
            })
    }

    fn contain(&mut self, i: &Identity, why: &str) -> Result<(), PlanError> {
        let account = i.account.clone();
        let tf = self.terraform_address(i);
        let unsupported = |hint| PlanError::Unsupported {
            id: i.id.clone(),
            kind: i.kind.as_str(),
            hint,
        };
        match i.kind {
            IdentityKind::IamRole => {
                let role = iam_name(&i.id).unwrap_or(&i.name).to_owned();
                self.contain_role(account, role, why, tf);
            }
            IdentityKind::IamUser => {
                let user = iam_name(&i.id).unwrap_or(&i.name).to_owned();
                self.push(
                    Action::DenyAll {
                        account: account.clone(),
                        principal: IamPrincipal::User(user.clone()),
                    },
                    why,
                    tf.as_ref().map(|a| terraform_deny_all(a, "user")),
                );
                self.deactivate_keys(i, &user, why);
                if self.retire {
                    return Ok(());
                }
                self.push(
                    Action::DeleteLoginProfile {
                        account: account.clone(),
                        user: user.clone(),
                    },
                    why,
                    None,
                );
                self.push(Action::ListMfaDevices { account, user }, why, None);
            }
            IdentityKind::AccessKey => {
                let user = i
                    .parent
                    .as_deref()
                    .and_then(iam_name)
                    .ok_or_else(|| {
                        unsupported("the key's user is not known; contain the user instead")
                    })?
                    .to_owned();
                self.push(
                    Action::DeactivateAccessKey {
                        account,
                        user,
                        key_id: i.id.clone(),
                    },
                    why,
                    tf.as_ref()
                        .map(|a| format!("# {a}: set status = \"Inactive\"")),
                );
            }
            IdentityKind::StsSession | IdentityKind::TemporaryAccessKey => {
                let role = self
                    .session_role(i)
                    .ok_or_else(|| unsupported("no role is known for this session"))?;
                let role_tf = self.inv.get(&role).and_then(|r| self.terraform_address(r));
                let name = iam_name(&role).unwrap_or(&role).to_owned();
                self.push(
                    Action::RevokeSessions {
                        account,
                        role: name,
                        issued_before: ceil_second(self.req.now),
                    },
                    why,
                    role_tf.as_ref().map(|a| terraform_revoke(a, self.req.now)),
                );
            }
            IdentityKind::OidcSubject => {
                let (Some(issuer), Some(subject)) = (i.issuer.as_deref(), i.subject.as_deref())
                else {
                    return Err(unsupported(
                        "the subject's issuer or sub claim is not known",
                    ));
                };
                let provider = issuer
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .to_owned();
                let roles = self.federated_roles(i);
                if roles.is_empty() {
                    return Err(unsupported("no role is known to trust this subject"));
                }
                if !self.retire {
                    let subject = subject.to_owned();
                    self.deploy_keys_of_subject(&subject, why);
                }
                for role in roles {
                    let r = self.inv.get(&role);
                    let name = iam_name(&role).unwrap_or(&role).to_owned();
                    let acct = r.and_then(|r| r.account.clone()).or(account.clone());
                    self.push(
                        Action::DenyWebIdentitySubject {
                            account: acct.clone(),
                            role: name.clone(),
                            provider: provider.clone(),
                            subject: subject.to_owned(),
                        },
                        why,
                        None,
                    );
                    let tf = r.and_then(|r| self.terraform_address(r));
                    self.push(
                        Action::RevokeSessions {
                            account: acct,
                            role: name,
                            issued_before: ceil_second(self.req.now),
                        },
                        why,
                        tf.as_ref().map(|a| terraform_revoke(a, self.req.now)),
                    );
                }
            }
            IdentityKind::ServiceAccount => {
                let Some(ns) = i.namespace.clone() else {
                    return Err(unsupported("the service account's namespace is not known"));
                };
                let cluster = i.cluster.clone().filter(|c| c != "default");
                let sa = i.name.rsplit(':').next().unwrap_or(&i.name).to_owned();
                match self.req.k8s {
                    K8sStrategy::Contain => {
                        let known = self.bindings_of(i);
                        self.push(
                            Action::RemoveBindings {
                                cluster: cluster.clone(),
                                namespace: ns.clone(),
                                service_account: sa.clone(),
                                known,
                            },
                            why,
                            None,
                        );
                        if self.retire {
                            return Ok(());
                        }
                        self.push(
                            Action::DeleteTokenSecrets {
                                cluster: cluster.clone(),
                                namespace: ns.clone(),
                                service_account: sa.clone(),
                            },
                            why,
                            None,
                        );
                        self.push(
                            Action::RestartPods {
                                cluster,
                                namespace: ns,
                                service_account: sa,
                            },
                            why,
                            None,
                        );
                    }
                    K8sStrategy::BlueGreen => {
                        let replacement = format!("{sa}-{}", short_date(self.req.now));
                        self.push(
                            Action::BlueGreen {
                                cluster,
                                namespace: ns,
                                service_account: sa,
                                replacement,
                            },
                            why,
                            None,
                        );
                    }
                }
            }
            IdentityKind::DeployKey => {
                if !self.deploy_key(i, why) {
                    return Err(unsupported(
                        "the deploy key's repository or id is not known",
                    ));
                }
            }
            _ => {
                return Err(unsupported(
                    "Keyward has no connector for it yet; revoke it on its platform",
                ));
            }
        }
        Ok(())
    }

    /// A GitHub deploy key as a step to run by hand (Keyward has no GitHub connector): the
    /// exact `gh api` call that deletes it. False when its repository or id is unknown.
    fn deploy_key(&mut self, k: &Identity, why: &str) -> bool {
        let repo = k
            .details
            .get("deploy_key")
            .and_then(|d| d.get("repository"))
            .and_then(serde_json::Value::as_str);
        let (Some(repo), Some(id)) = (repo, k.native_id.as_deref()) else {
            return false;
        };
        self.push(
            Action::Review {
                what: format!("GitHub deploy key {} of {repo}", k.name),
                inspect: format!(
                    "gh api -X DELETE repos/{}/keys/{}  # Keyward has no GitHub connector: run it by hand; adding the public key again undoes it",
                    crate::action::shell_quote(repo),
                    crate::action::shell_quote(id)
                ),
            },
            why,
            None,
        );
        true
    }

    /// The deploy keys of the repository a GitHub Actions subject (`repo:OWNER/REPO:…`)
    /// runs in: one switch reaches them too, as commands to run.
    fn deploy_keys_of_subject(&mut self, subject: &str, why: &str) {
        let Some(repo) = subject
            .strip_prefix("repo:")
            .and_then(|r| r.split(':').next())
        else {
            return;
        };
        let keys: Vec<Identity> = self
            .inv
            .iter()
            .filter(|k| k.kind == IdentityKind::DeployKey && k.deleted.is_none())
            .filter(|k| {
                k.details
                    .get("deploy_key")
                    .and_then(|d| d.get("repository"))
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|r| r.eq_ignore_ascii_case(repo))
            })
            .cloned()
            .collect();
        for k in &keys {
            self.deploy_key(k, why);
        }
    }

    fn contain_role(
        &mut self,
        account: Option<String>,
        role: String,
        why: &str,
        tf: Option<String>,
    ) {
        self.push(
            Action::DenyAll {
                account: account.clone(),
                principal: IamPrincipal::Role(role.clone()),
            },
            why,
            tf.as_ref().map(|a| terraform_deny_all(a, "role")),
        );
        if self.retire {
            return;
        }
        self.push(
            Action::RevokeSessions {
                account,
                role,
                issued_before: ceil_second(self.req.now),
            },
            why,
            tf.as_ref().map(|a| terraform_revoke(a, self.req.now)),
        );
    }

    /// Every access key of a user that may be active: credentials with a key id, and key
    /// identities whose parent is the user.
    fn deactivate_keys(&mut self, user: &Identity, name: &str, why: &str) {
        let mut keys: BTreeSet<String> = user
            .credentials
            .iter()
            .filter(|c| c.kind == CredentialKind::AccessKey)
            .filter(|c| {
                matches!(
                    c.status,
                    CredentialStatus::Active | CredentialStatus::Unknown
                )
            })
            .filter(|c| c.id.starts_with("AKIA"))
            .map(|c| c.id.clone())
            .collect();
        keys.extend(
            self.inv
                .iter()
                .filter(|k| {
                    k.kind == IdentityKind::AccessKey && k.parent.as_deref() == Some(&user.id)
                })
                .filter(|k| k.deleted.is_none())
                .map(|k| k.id.clone()),
        );
        let unnamed = user.credentials.iter().any(|c| {
            c.kind == CredentialKind::AccessKey
                && c.status == CredentialStatus::Active
                && !c.id.starts_with("AKIA")
        });
        if unnamed && keys.is_empty() {
            self.notes.push(format!(
                "{name} has an active access key whose id Keyward has not seen: the deny-all policy stops it; list it with `aws iam list-access-keys --user-name {name}`"
            ));
        }
        for key_id in keys {
            self.push(
                Action::DeactivateAccessKey {
                    account: user.account.clone(),
                    user: name.to_owned(),
                    key_id,
                },
                why,
                None,
            );
        }
    }

    /// The role a session (or its temporary key) is a session of.
    fn session_role(&self, i: &Identity) -> Option<String> {
        let mut cur = i;
        for _ in 0..4 {
            let parent = self.inv.get(cur.parent.as_deref()?);
            match parent {
                Some(p) if p.kind == IdentityKind::IamRole => return Some(p.id.clone()),
                Some(p) => cur = p,
                None => {
                    let id = cur.parent.clone()?;
                    return id.contains(":role/").then_some(id);
                }
            }
        }
        None
    }

    /// Roles a web-identity subject becomes (graph `federates`/`assumed` edges, links).
    fn federated_roles(&self, i: &Identity) -> Vec<String> {
        let mut out: BTreeSet<String> = i
            .links
            .iter()
            .filter(|l| l.contains(":role/"))
            .cloned()
            .collect();
        if let Some(node) = self.g.find(&i.id) {
            for e in self.g.out_edges(node) {
                if matches!(
                    e.kind,
                    EdgeKind::Federates | EdgeKind::Assumed | EdgeKind::CanAssume
                ) {
                    let key = self.g.key(e.to);
                    if key.contains(":role/") {
                        out.insert(key.to_owned());
                    }
                }
            }
        }
        out.into_iter().collect()
    }

    /// The bindings that name a service account (`Kind/namespace/name`).
    fn bindings_of(&self, i: &Identity) -> Vec<String> {
        let Some(node) = self.g.find(&i.id) else {
            return Vec::new();
        };
        let mut out: Vec<String> = self
            .g
            .out_edges(node)
            .filter(|e| e.kind == EdgeKind::BoundTo)
            .filter_map(|e| binding_ref(self.g.key(e.to)).map(|(k, ns, n)| binding_text(k, ns, n)))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The ids the compromised identity acted as: itself, its sessions, its keys.
    fn acting_ids(&self, me: &Identity) -> BTreeSet<String> {
        let mut ids = BTreeSet::from([me.id.clone()]);
        for i in self.inv.iter() {
            let under = i.parent.as_deref() == Some(&me.id)
                || i.chain.iter().any(|c| c == &me.id)
                || i.parent.as_deref().is_some_and(|p| ids.contains(p));
            if under {
                ids.insert(i.id.clone());
            }
        }
        ids
    }

    fn blast_radius(&mut self, me: &Identity, since: Millis) {
        let acting = self.acting_ids(me);
        let mut created: Vec<&Identity> = self
            .inv
            .iter()
            .filter(|i| !acting.contains(&i.id))
            .filter(|i| i.created_by.iter().any(|c| acting.contains(c)))
            .filter(|i| i.created.or(i.first_seen).is_some_and(|t| t >= since))
            .collect();
        created.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        for i in created {
            let at = i
                .created
                .map(keyward_model::time::format)
                .unwrap_or_default();
            let why = format!("blast radius: created by {} at {at}", me.name);
            if let Some(p) = self.req.protected.matches(i) {
                self.notes
                    .push(format!("{} is protected ({p}): not revoked", i.id));
                continue;
            }
            // A key the compromised user made for itself is already deactivated by
            // containment; one made on another user is revoked here.
            if let Err(e) = self.contain(i, &why) {
                self.notes.push(format!("not revoked: {e}"));
            }
        }
        let mut events: Vec<&Event<'static>> = self
            .req
            .events
            .iter()
            .filter(|e| e.time >= since && e.error_code.is_none())
            .filter(|e| e.actor.as_deref().is_some_and(|a| acting.contains(a)))
            .collect();
        events.sort_by_key(|e| e.time);
        for e in events {
            self.event_change(me, e);
        }
    }

    /// Blast radius from one event: a binding created, a policy changed.
    fn event_change(&mut self, me: &Identity, e: &Event<'static>) {
        let at = keyward_model::time::format(e.time);
        let why = format!("blast radius: {} by {} at {at}", e.action, me.name);
        let target = e.target.as_deref().unwrap_or_default();
        match e.action.as_ref() {
            "create rolebindings" | "create clusterrolebindings" => {
                let cluster = me.cluster.clone().filter(|c| c != "default");
                let (kind, namespace, name) = match target.split_once('/') {
                    Some((ns, name)) if e.action.as_ref() == "create rolebindings" => (
                        BindingKind::RoleBinding,
                        Some(ns.to_owned()),
                        name.to_owned(),
                    ),
                    _ if e.action.as_ref() == "create clusterrolebindings" => (
                        BindingKind::ClusterRoleBinding,
                        None,
                        target.rsplit('/').next().unwrap_or(target).to_owned(),
                    ),
                    _ => return,
                };
                if !name.is_empty() {
                    self.push(
                        Action::DeleteBinding {
                            cluster,
                            kind,
                            namespace,
                            name,
                        },
                        &why,
                        None,
                    );
                }
            }
            a => {
                let Some(call) = a.strip_prefix("iam.amazonaws.com:") else {
                    return;
                };
                let (noun, list) = match call {
                    "PutRolePolicy" | "AttachRolePolicy" | "UpdateAssumeRolePolicy" => (
                        "role",
                        "aws iam list-role-policies --role-name {} && aws iam list-attached-role-policies --role-name {} && aws iam get-role --role-name {}",
                    ),
                    "PutUserPolicy" | "AttachUserPolicy" | "AddUserToGroup" => (
                        "user",
                        "aws iam list-user-policies --user-name {} && aws iam list-attached-user-policies --user-name {} && aws iam list-groups-for-user --user-name {}",
                    ),
                    "CreatePolicyVersion" | "SetDefaultPolicyVersion" => {
                        ("policy", "aws iam list-policy-versions --policy-arn {}")
                    }
                    _ => return,
                };
                let name = match noun {
                    "policy" => target.to_owned(),
                    _ => iam_name(target).unwrap_or(target).to_owned(),
                };
                if name.is_empty() {
                    return;
                }
                let command = list.replace("{}", &crate::action::shell_quote(&name));
                self.push(
                    Action::Review {
                        what: format!("{call} on {noun} {name} (event {})", e.native_id),
                        inspect: command,
                    },
                    &why,
                    None,
                );
            }
        }
    }
}

/// A binding node key (`k8s-obj:<cluster>/<Kind>/<ns>/<name>`) as its parts.
fn binding_ref(key: &str) -> Option<(&str, &str, &str)> {
    let rest = key.strip_prefix("k8s-obj:")?;
    let mut parts = rest.splitn(4, '/');
    let (_cluster, kind, ns, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    matches!(kind, "RoleBinding" | "ClusterRoleBinding").then_some((kind, ns, name))
}

fn binding_text(kind: &str, ns: &str, name: &str) -> String {
    if ns.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}/{ns}/{name}")
    }
}

/// Workloads that run as the identity, directly or through a service account federated to
/// it (IRSA), as labels.
fn workloads(g: &Graph, me: &Identity) -> Vec<String> {
    let Some(node) = g.find(&me.id) else {
        return Vec::new();
    };
    let mut out = BTreeSet::new();
    let mut via = vec![node];
    for e in g.in_edges(node) {
        if e.kind == EdgeKind::Federates {
            via.push(e.from);
        }
    }
    for n in via {
        for e in g.in_edges(n) {
            if e.kind == EdgeKind::RunsAs
                && let Some(w) = g.node(e.from)
            {
                out.insert(w.label.to_string());
            }
        }
    }
    out.into_iter().collect()
}

/// The next whole second at or after `ms` (IAM date conditions have second precision; a
/// session issued in the second containment starts is denied too).
fn ceil_second(ms: Millis) -> Millis {
    ms.div_euclid(1000) * 1000 + if ms.rem_euclid(1000) == 0 { 0 } else { 1000 }
}

/// `YYYYMMDD-HHMM` for names.
fn short_date(ms: Millis) -> String {
    let t = keyward_model::time::format(ms.div_euclid(60_000) * 60_000);
    t.get(..16)
        .unwrap_or(&t)
        .replace(['-', ':'], "")
        .replace('T', "-")
        .to_lowercase()
}

fn terraform_deny_all(address: &str, noun: &str) -> String {
    let res = address.split('.').take(2).collect::<Vec<_>>().join(".");
    format!(
        "resource \"aws_iam_{noun}_policy\" \"keyward_contain\" {{\n  {noun} = {res}.name\n  name = \"{}\"\n  policy = jsonencode({{ Version = \"2012-10-17\", Statement = [{{ Effect = \"Deny\", Action = \"*\", Resource = \"*\" }}] }})\n}}",
        crate::action::DENY_ALL_POLICY
    )
}

fn terraform_revoke(address: &str, now: Millis) -> String {
    let res = address.split('.').take(2).collect::<Vec<_>>().join(".");
    format!(
        "resource \"aws_iam_role_policy\" \"keyward_revoke_sessions\" {{\n  role = {res}.name\n  name = \"{}\"\n  policy = jsonencode({{ Version = \"2012-10-17\", Statement = [{{ Effect = \"Deny\", Action = \"*\", Resource = \"*\", Condition = {{ DateLessThan = {{ \"aws:TokenIssueTime\" = \"{}\" }} }} }}] }})\n}}",
        crate::action::REVOKE_SESSIONS_POLICY,
        crate::aws::rfc3339(ceil_second(now))
    )
}

//! AWS Organizations guardrails: service control policies (SCPs) and resource control
//! policies (RCPs), resolved per account from the organization's policies, their targets
//! and the OU hierarchy, and evaluated as AWS does.
//!
//! Each level from the root through the OUs to the account is an allow-list: an action is
//! possible only if, at every level, some attached policy allows it and no attached policy
//! denies it. SCPs constrain the principals of an account, RCPs the resources of an
//! account; neither applies to the management account, nor to service-linked roles.
//!
//! What the snapshot does not say is never read as a denial: a level with no known policy
//! of a kind attached is not judged (AWS requires one; it was not exported), and a level
//! with an attached policy whose content is unknown only judges explicit denies.
//! `p-FullAWSAccess` and `p-RCPFullAWSAccess` are AWS-managed and allow everything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::policy::{Context, Decision, Policy, Request, evaluate};

/// Which kind of organization policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Service control policy: caps what the account's principals may do.
    Scp,
    /// Resource control policy: caps what may be done to the account's resources.
    Rcp,
}

impl Kind {
    /// `SERVICE_CONTROL_POLICY` / `RESOURCE_CONTROL_POLICY`, as the API spells them.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "SERVICE_CONTROL_POLICY" => Some(Kind::Scp),
            "RESOURCE_CONTROL_POLICY" => Some(Kind::Rcp),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Scp => "SCP",
            Kind::Rcp => "RCP",
        }
    }
}

/// One organization policy; `policy` is `None` when its content is unknown.
#[derive(Debug, Clone)]
pub struct OrgPolicy {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    pub policy: Option<Policy>,
}

/// The organization as far as the snapshot shows it.
#[derive(Debug, Default, Clone)]
pub struct Organization {
    policies: BTreeMap<String, Arc<OrgPolicy>>,
    /// Target (root, OU or account id) → ids of the policies attached to it.
    attached: BTreeMap<String, BTreeSet<String>>,
    /// Child (account or OU id) → parent id.
    parents: BTreeMap<String, String>,
    /// Roots seen as targets or parents.
    roots: BTreeSet<String>,
    /// The management account (the account in every `arn:aws:organizations` ARN).
    pub management: Option<String>,
}

/// The deepest OU nesting AWS allows is five; a longer chain is a cycle or bad data.
const MAX_DEPTH: usize = 16;

fn s<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The account of an `arn:aws:organizations::<account>:…` ARN: the management account.
fn management_of(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.nth(2) == Some("organizations"))
        .then(|| parts.nth(1))
        .flatten()
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
}

/// AWS-managed policies that allow everything, by id.
fn aws_full_access(id: &str) -> Option<(Kind, &'static str)> {
    match id {
        "p-FullAWSAccess" => Some((Kind::Scp, "FullAWSAccess")),
        "p-RCPFullAWSAccess" => Some((Kind::Rcp, "RCPFullAWSAccess")),
        _ => None,
    }
}

impl Organization {
    /// Builds the organization from stored objects: `org_policy` (a `describe-policy`
    /// `Policy`, or a `list-policies` entry), `org_target` (`{PolicyId, TargetId, Type}`)
    /// and `org_parent` (`{ChildId, Id, Type}`). Returns what could not be read, too.
    pub fn new<'v>(
        policies: impl IntoIterator<Item = &'v Value>,
        targets: impl IntoIterator<Item = &'v Value>,
        parents: impl IntoIterator<Item = &'v Value>,
    ) -> (Organization, Vec<String>) {
        let mut org = Organization::default();
        let mut errors = Vec::new();
        let mut arns = Vec::new();
        for p in policies {
            let summary = p.get("PolicySummary").unwrap_or(p);
            let (Some(id), Some(kind)) = (s(summary, "Id"), s(summary, "Type")) else {
                errors.push("organization policy without `Id` or `Type`".to_owned());
                continue;
            };
            // Tag and backup policies do not limit permissions.
            let Some(kind) = Kind::parse(kind) else {
                continue;
            };
            arns.extend(s(summary, "Arn").map(str::to_owned));
            let policy = match p.get("Content") {
                Some(content) => {
                    let doc = match content {
                        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
                        other => other.clone(),
                    };
                    match Policy::parse(&doc) {
                        Ok(policy) => Some(policy),
                        Err(e) => {
                            errors.push(format!("organization policy `{id}`: {e}"));
                            None
                        }
                    }
                }
                None => aws_full_access(id).map(|_| Policy::allow_all()),
            };
            let name = s(summary, "Name").unwrap_or(id).to_owned();
            // A described policy wins over a listed one of the same id.
            let known = org.policies.get(id).is_some_and(|p| p.policy.is_some());
            if !known || policy.is_some() {
                org.policies.insert(
                    id.to_owned(),
                    Arc::new(OrgPolicy {
                        id: id.to_owned(),
                        name,
                        kind,
                        policy,
                    }),
                );
            }
        }
        for t in targets {
            let (Some(policy), Some(target)) = (s(t, "PolicyId"), s(t, "TargetId")) else {
                errors.push("policy target without `PolicyId` or `TargetId`".to_owned());
                continue;
            };
            arns.extend(s(t, "Arn").map(str::to_owned));
            if s(t, "Type") == Some("ROOT") || target.starts_with("r-") {
                org.roots.insert(target.to_owned());
            }
            org.attached
                .entry(target.to_owned())
                .or_default()
                .insert(policy.to_owned());
            if !org.policies.contains_key(policy)
                && let Some((kind, name)) = aws_full_access(policy)
            {
                org.policies.insert(
                    policy.to_owned(),
                    Arc::new(OrgPolicy {
                        id: policy.to_owned(),
                        name: name.to_owned(),
                        kind,
                        policy: Some(Policy::allow_all()),
                    }),
                );
            }
        }
        for p in parents {
            let (Some(child), Some(parent)) = (s(p, "ChildId"), s(p, "Id")) else {
                errors.push("parent without `ChildId` or `Id`".to_owned());
                continue;
            };
            if s(p, "Type") == Some("ROOT") || parent.starts_with("r-") {
                org.roots.insert(parent.to_owned());
            }
            org.parents.insert(child.to_owned(), parent.to_owned());
        }
        org.management = arns
            .iter()
            .find_map(|a| management_of(a))
            .map(str::to_owned);
        (org, errors)
    }

    /// Whether anything is known that could constrain an account.
    pub fn is_empty(&self) -> bool {
        self.attached.is_empty()
    }

    /// The guardrails over `account`, resolved once (`None`: the management account, an
    /// account the snapshot does not place in the organization, or nothing attached).
    pub fn guardrails(&self, account: &str) -> Option<Guardrails> {
        if self.management.as_deref() == Some(account) {
            return None;
        }
        // The account, then its parents up to the root.
        let mut chain = vec![account.to_owned()];
        while let Some(parent) = chain.last().and_then(|c| self.parents.get(c)) {
            if chain.len() > MAX_DEPTH || chain.contains(parent) {
                break;
            }
            chain.push(parent.clone());
        }
        let placed = chain.len() > 1 || self.attached.contains_key(account);
        if !placed {
            return None;
        }
        // Every account of the organization is under its root, known or not.
        if chain.last().is_none_or(|c| !self.roots.contains(c)) {
            chain.extend(self.roots.iter().cloned());
        }
        chain.reverse();
        let level = |kind: Kind, target: &String| -> Option<Level> {
            let attached: Vec<Arc<OrgPolicy>> = self
                .attached
                .get(target)?
                .iter()
                .filter_map(|id| self.policies.get(id))
                .filter(|p| p.kind == kind)
                .cloned()
                .collect();
            // A target with no policy of this kind known: not judged (see the module).
            (!attached.is_empty()).then(|| Level {
                target: target.clone(),
                policies: attached,
            })
        };
        let g = Guardrails {
            account: account.to_owned(),
            scp: chain.iter().filter_map(|t| level(Kind::Scp, t)).collect(),
            rcp: chain.iter().filter_map(|t| level(Kind::Rcp, t)).collect(),
        };
        (!g.scp.is_empty() || !g.rcp.is_empty()).then_some(g)
    }
}

/// The policies of one kind attached at one level (root, OU or account).
#[derive(Debug, Clone)]
pub struct Level {
    pub target: String,
    pub policies: Vec<Arc<OrgPolicy>>,
}

/// The SCP and RCP levels over one member account, root first.
#[derive(Debug, Clone)]
pub struct Guardrails {
    pub account: String,
    pub scp: Vec<Level>,
    pub rcp: Vec<Level>,
}

/// Which guardrail stops a request, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub kind: Kind,
    /// The root, OU or account the policy is attached to.
    pub level: String,
    /// The denying policy (id, name); `None` when no policy at the level allows it.
    pub denied_by: Option<(String, String)>,
}

impl std::fmt::Display for Removal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.denied_by {
            Some((id, name)) => write!(
                f,
                "{} `{name}` ({id}) attached to {} denies it",
                self.kind.label(),
                self.level
            ),
            None => write!(
                f,
                "no {} attached to {} allows it",
                self.kind.label(),
                self.level
            ),
        }
    }
}

/// One level's verdict: the condition keys an allow depends on, or why it stops.
fn judge(kind: Kind, level: &Level, req: &Request) -> Result<BTreeSet<String>, Removal> {
    let removal = |denied_by| Removal {
        kind,
        level: level.target.clone(),
        denied_by,
    };
    let known: Vec<&Policy> = level
        .policies
        .iter()
        .filter_map(|p| p.policy.as_ref())
        .collect();
    let out = evaluate(&known, None, req);
    match out.decision {
        Decision::ExplicitDeny => {
            let by = out
                .denied_by
                .first()
                .and_then(|&(i, _)| level.policies.iter().filter(|p| p.policy.is_some()).nth(i))
                .map(|p| (p.id.clone(), p.name.clone()));
            Err(removal(by))
        }
        Decision::ImplicitDeny if known.len() == level.policies.len() => Err(removal(None)),
        // Some attached policy's content is unknown: it may be the one that allows.
        Decision::ImplicitDeny | Decision::Allow => Ok(BTreeSet::new()),
        Decision::ConditionalAllow(keys) => Ok(keys),
    }
}

impl Guardrails {
    /// Whether the request passes every SCP level (for the principal) and every RCP
    /// level (for the resource, in this account): the condition keys left open, or the
    /// first guardrail that stops it.
    pub fn check(
        &self,
        action: &str,
        resource: &str,
        ctx: &Context,
    ) -> Result<BTreeSet<String>, Removal> {
        let req = Request {
            action,
            resource,
            principal: None,
            context: ctx,
        };
        let mut keys = BTreeSet::new();
        let levels = self.scp.iter().map(|l| (Kind::Scp, l));
        for (kind, level) in levels.chain(self.rcp.iter().map(|l| (Kind::Rcp, l))) {
            keys.extend(judge(kind, level, &req)?);
        }
        Ok(keys)
    }

    /// Whether `action` could pass at all (on some resource, under some conditions): a
    /// cheap necessary condition, like [`Policy::may_allow`].
    pub fn may_allow(&self, action: &str) -> bool {
        self.scp.iter().chain(&self.rcp).all(|l| {
            l.policies
                .iter()
                .any(|p| p.policy.as_ref().is_none_or(|p| p.may_allow(action)))
        })
    }

    /// Whether every action on every resource passes: the condition keys left open, or
    /// `None` when some level denies something everywhere or does not allow everything.
    pub fn grants_everything(&self, ctx: &Context) -> Option<BTreeSet<String>> {
        let mut keys = BTreeSet::new();
        for l in self.scp.iter().chain(&self.rcp) {
            let known = l.policies.iter().filter_map(|p| p.policy.as_ref());
            if known.clone().any(|p| p.denies_everywhere(ctx)) {
                return None;
            }
            if known.clone().count() < l.policies.len() {
                continue;
            }
            let grants: Vec<BTreeSet<String>> =
                known.filter_map(|p| p.grants_everything(ctx)).collect();
            if grants.is_empty() {
                return None;
            }
            // One unconditional grant settles the level.
            if !grants.iter().any(BTreeSet::is_empty) {
                keys.extend(grants.into_iter().flatten());
            }
        }
        Some(keys)
    }
}

#[cfg(test)]
mod tests;

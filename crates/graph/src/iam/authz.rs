//! The policies that apply to each IAM principal, resolved from
//! `get-account-authorization-details`: inline policies, attached managed policies (their
//! default version), policies inherited from groups, the permissions boundary, and for roles
//! the trust policy. A policy that is referenced but absent from the snapshot is listed as
//! unresolved, never assumed empty.

use std::collections::BTreeMap;

use keyward_model::ids;
use serde_json::Value;

use std::sync::Arc;

use super::org::Guardrails;
use super::policy::Policy;

/// One account's snapshot, indexed.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Managed policy ARN → default-version document.
    policies: BTreeMap<String, Value>,
    /// Managed policy ARN → its other versions (id, document), which
    /// `iam:SetDefaultPolicyVersion` can make the default.
    versions: BTreeMap<String, Vec<(String, Value)>>,
    /// Group name → group detail.
    groups: BTreeMap<String, Value>,
    pub users: Vec<Value>,
    pub roles: Vec<Value>,
    /// The account's Organizations guardrails (SCPs, RCPs), resolved once for every
    /// principal but service-linked roles.
    pub org: Option<Arc<Guardrails>>,
    /// Whether permissions boundaries and guardrails apply (off only to learn what they
    /// removed).
    unbounded: bool,
}

/// A policy with where it came from (`inline:<name>`, `managed:<arn>`, `group:<g>/…`).
#[derive(Debug, Clone)]
pub struct Sourced {
    pub source: String,
    pub policy: Policy,
}

/// Everything that decides what one principal may do.
#[derive(Debug, Clone, Default)]
pub struct PrincipalPolicies {
    pub arn: String,
    pub identity: Vec<Sourced>,
    pub boundary: Option<Sourced>,
    /// The SCP and RCP levels over the principal's account (none for service-linked roles
    /// and the management account).
    pub org: Option<Arc<Guardrails>>,
    pub trust: Option<Policy>,
    /// Groups the user is a member of (names).
    pub groups: Vec<String>,
    /// Managed policies referenced but not in the snapshot.
    pub unresolved: Vec<String>,
    /// Policies that could not be parsed, with why.
    pub errors: Vec<String>,
}

impl PrincipalPolicies {
    pub fn identity_policies(&self) -> Vec<&Policy> {
        self.identity.iter().map(|s| &s.policy).collect()
    }

    /// A service-linked role (path `/aws-service-role/`): AWS alone assumes it and edits
    /// its policies, so nobody starts from it or takes it over.
    pub fn is_service_linked(&self) -> bool {
        self.arn.contains(":role/aws-service-role/")
    }
}

fn s<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn list<'v>(v: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// A document as the API or the CLI gives it: an object, or URL-encoded JSON text.
fn document(v: &Value) -> Value {
    match v {
        Value::String(text) => {
            let decoded = percent_decode(text);
            serde_json::from_str(&decoded).unwrap_or(Value::Null)
        }
        other => other.clone(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|h| (*h as char).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Snapshot {
    /// Indexes a `get-account-authorization-details` document.
    pub fn new(doc: &Value) -> Snapshot {
        let mut snap = Snapshot::default();
        for p in list(doc, "Policies") {
            let Some(arn) = s(p, "Arn") else { continue };
            let default = s(p, "DefaultVersionId");
            let version = list(p, "PolicyVersionList").find(|v| {
                v.get("IsDefaultVersion").and_then(Value::as_bool) == Some(true)
                    || default.is_some_and(|d| s(v, "VersionId") == Some(d))
            });
            if let Some(d) = version.and_then(|v| v.get("Document")) {
                snap.policies.insert(arn.to_owned(), document(d));
            }
            let default_id = version.and_then(|v| s(v, "VersionId"));
            let others: Vec<(String, Value)> = list(p, "PolicyVersionList")
                .filter(|v| s(v, "VersionId") != default_id)
                .filter_map(|v| Some((s(v, "VersionId")?.to_owned(), document(v.get("Document")?))))
                .collect();
            if !others.is_empty() {
                snap.versions.insert(arn.to_owned(), others);
            }
        }
        for g in list(doc, "GroupDetailList") {
            if let Some(name) = s(g, "GroupName") {
                snap.groups.insert(name.to_owned(), g.clone());
            }
        }
        snap.users = list(doc, "UserDetailList").cloned().collect();
        snap.roles = list(doc, "RoleDetailList").cloned().collect();
        snap
    }

    fn managed(&self, arn: &str, source: &str, out: &mut PrincipalPolicies) {
        match self.policies.get(arn) {
            Some(doc) => match Policy::parse(doc) {
                Ok(policy) => out.identity.push(Sourced {
                    source: format!("{source}managed:{arn}"),
                    policy,
                }),
                Err(e) => out.errors.push(format!("{arn}: {e}")),
            },
            None => out.unresolved.push(arn.to_owned()),
        }
    }

    fn inline(v: &Value, list_key: &str, source: &str, out: &mut PrincipalPolicies) {
        for p in list(v, list_key) {
            let name = s(p, "PolicyName").unwrap_or("?");
            match p
                .get("PolicyDocument")
                .map(document)
                .map(|d| Policy::parse(&d))
            {
                Some(Ok(policy)) => out.identity.push(Sourced {
                    source: format!("{source}inline:{name}"),
                    policy,
                }),
                Some(Err(e)) => out.errors.push(format!("inline `{name}`: {e}")),
                None => out.errors.push(format!("inline `{name}`: no document")),
            }
        }
    }

    /// The same snapshot with neither permissions boundaries nor guardrails: what the
    /// identity policies alone allow, to learn which paths the boundaries remove.
    pub fn unbounded(&self) -> Snapshot {
        Snapshot {
            policies: self.policies.clone(),
            versions: self.versions.clone(),
            groups: self.groups.clone(),
            users: self.users.clone(),
            roles: self.roles.clone(),
            org: None,
            unbounded: true,
        }
    }

    /// The versions of managed policy `arn` other than its default, parsed (a version
    /// that cannot be parsed is left out: it cannot be made the default either).
    pub fn other_versions(&self, arn: &str) -> Vec<(&str, Policy)> {
        self.versions
            .get(arn)
            .into_iter()
            .flatten()
            .filter_map(|(id, doc)| Some((id.as_str(), Policy::parse(doc).ok()?)))
            .collect()
    }

    /// The policies of a user or role entry of this snapshot.
    pub fn principal(&self, entry: &Value) -> PrincipalPolicies {
        let mut out = PrincipalPolicies {
            arn: s(entry, "Arn").unwrap_or_default().to_owned(),
            ..Default::default()
        };
        let is_role = entry.get("RoleName").is_some();
        Self::inline(
            entry,
            if is_role {
                "RolePolicyList"
            } else {
                "UserPolicyList"
            },
            "",
            &mut out,
        );
        for a in list(entry, "AttachedManagedPolicies") {
            if let Some(arn) = s(a, "PolicyArn") {
                self.managed(arn, "", &mut out);
            }
        }
        for g in list(entry, "GroupList").filter_map(Value::as_str) {
            out.groups.push(g.to_owned());
            let Some(group) = self.groups.get(g) else {
                out.unresolved.push(format!("group {g}"));
                continue;
            };
            let prefix = format!("group:{g}/");
            Self::inline(group, "GroupPolicyList", &prefix, &mut out);
            for a in list(group, "AttachedManagedPolicies") {
                if let Some(arn) = s(a, "PolicyArn") {
                    self.managed(arn, &prefix, &mut out);
                }
            }
        }
        if let Some(b) = entry
            .get("PermissionsBoundary")
            .filter(|_| !self.unbounded)
            .and_then(|b| s(b, "PermissionsBoundaryArn"))
        {
            let mut tmp = PrincipalPolicies::default();
            self.managed(b, "boundary:", &mut tmp);
            out.boundary = tmp.identity.pop();
            out.unresolved.extend(tmp.unresolved);
            out.errors.extend(tmp.errors);
        }
        if !out.is_service_linked() && !self.unbounded {
            out.org = self.org.clone();
        }
        if let Some(t) = entry.get("AssumeRolePolicyDocument") {
            match Policy::parse(&document(t)) {
                Ok(p) => out.trust = Some(p),
                Err(e) => out.errors.push(format!("trust policy: {e}")),
            }
        }
        out
    }

    /// The account's groups with their resolved policies (`arn` is the group's ARN).
    pub fn groups(&self) -> Vec<PrincipalPolicies> {
        self.groups
            .values()
            .map(|g| {
                let mut out = PrincipalPolicies {
                    arn: s(g, "Arn").unwrap_or_default().to_owned(),
                    // Every member is a user of the account, under its guardrails.
                    org: self.org.clone().filter(|_| !self.unbounded),
                    ..Default::default()
                };
                Self::inline(g, "GroupPolicyList", "", &mut out);
                for a in list(g, "AttachedManagedPolicies") {
                    if let Some(arn) = s(a, "PolicyArn") {
                        self.managed(arn, "", &mut out);
                    }
                }
                out
            })
            .collect()
    }

    /// Every user and role, by canonical id.
    pub fn principals(&self) -> BTreeMap<String, PrincipalPolicies> {
        self.users
            .iter()
            .chain(&self.roles)
            .filter_map(|e| {
                let p = self.principal(e);
                ids::canonical_iam_arn(&p.arn).map(|id| (id, p))
            })
            .collect()
    }
}

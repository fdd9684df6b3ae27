//! Drift: an approved baseline of each identity's governed configuration (trust policy,
//! attached and inline policy names, permissions boundary, groups, active keys, Kubernetes
//! bindings), and what differs from it now, with the commands that put it back.
//!
//! Baselines are approved by a person (`keyward baseline approve`) and kept in the store
//! (setting `drift.baselines`, one audited write per approval), taken from the inventory's
//! last snapshot or from Terraform ([`crate::drift_iac`]); a fact the source cannot tell is
//! kept out of the baseline as *ungoverned* and never compared nor reverted. Drift is found three ways:
//! the inventory compared after every ingest of a snapshot ([`Engine::drift`]); the live
//! state read through the AWS connector (`keyward drift --live`, [`Engine::revert_plan`]);
//! and, through the built-in `self-heal-drift` playbook, the CloudTrail calls that change a
//! governed fact (`PutRolePolicy`, `AttachRolePolicy`, `UpdateAssumeRolePolicy`, …), whose
//! target is read live and reverted at once. A revert is a reversible response plan
//! (`keyward_respond::restore`).

use std::collections::BTreeMap;

use keyward_graph::EdgeKind;
use keyward_model::time::Millis;
use keyward_model::{CredentialKind, CredentialStatus, Identity, IdentityKind};
use keyward_respond::restore::{self, items};
use keyward_respond::{IamPrincipal, Plan};
use keyward_store::AuditEntry;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Engine, EngineError};

/// The setting holding every approved baseline.
pub const BASELINES: &str = "drift.baselines";

/// The configuration facts a baseline governs.
const GOVERNED: [&str; 5] = [
    "trust_policy",
    "attached_policies",
    "inline_policies",
    "permissions_boundary",
    "groups",
];

/// Where a baseline approved from the inventory came from.
pub const SNAPSHOT: &str = "snapshot";

fn snapshot_source() -> String {
    SNAPSHOT.to_owned()
}

/// One identity's approved configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub approved_at: Millis,
    pub approved_by: String,
    pub facts: BTreeMap<String, Value>,
    /// Where the facts came from: `snapshot` (the inventory), or `terraform:PATH`.
    /// Baselines stored before sources were recorded came from snapshots.
    #[serde(default = "snapshot_source")]
    pub source: String,
    /// Facts the source could not tell, with why: neither compared nor reverted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ungoverned: BTreeMap<String, String>,
}

/// One difference from the approved baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    pub identity: String,
    /// The baseline's source (`snapshot`, `terraform:PATH`).
    pub source: String,
    pub field: String,
    pub approved: Value,
    pub current: Value,
    /// What is there now and was not approved (policy ARNs or names, groups, key ids…).
    pub added: Vec<String>,
    /// What was approved and is gone.
    pub removed: Vec<String>,
    /// The commands that put the approved state back.
    pub revert: Vec<String>,
}

/// The identities a baseline can govern.
fn governable(i: &Identity) -> bool {
    matches!(
        i.kind,
        IdentityKind::IamUser | IdentityKind::IamRole | IdentityKind::ServiceAccount
    ) && i.deleted.is_none()
}

/// The API's name of an IAM user or role.
pub fn principal_of(i: &Identity) -> Option<IamPrincipal> {
    let name = i.id.rsplit('/').next().unwrap_or(&i.name).to_owned();
    match i.kind {
        IdentityKind::IamRole => Some(IamPrincipal::Role(name)),
        IdentityKind::IamUser => Some(IamPrincipal::User(name)),
        _ => None,
    }
}

/// Whether two values of a governed fact are the same: lists as sets (an API lists
/// policies in no promised order), a policy document whether held as text or object.
fn same(field: &str, a: &Value, b: &Value) -> bool {
    if field == "trust_policy" {
        return document(a) == document(b);
    }
    a == b || items(a) == items(b)
}

/// A policy document as a value, whether stored as JSON text or an object.
fn document(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    }
}

impl Engine {
    /// The governed facts of an identity as the inventory and graph hold them now.
    pub(crate) fn governed(&self, i: &Identity) -> BTreeMap<String, Value> {
        let mut f: BTreeMap<String, Value> = GOVERNED
            .iter()
            .filter_map(|k| i.details.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        let keys: Vec<String> = i
            .credentials
            .iter()
            .filter(|c| c.kind == CredentialKind::AccessKey && c.status == CredentialStatus::Active)
            .map(|c| c.id.clone())
            .chain(
                self.inventory
                    .iter()
                    .filter(|k| {
                        k.kind == IdentityKind::AccessKey && k.parent.as_deref() == Some(&i.id)
                    })
                    .filter(|k| k.deleted.is_none())
                    .map(|k| k.id.clone()),
            )
            .filter(|k| k.starts_with("AKIA"))
            .collect();
        if i.kind == IdentityKind::IamUser {
            f.insert("active_keys".into(), Value::from(items(&Value::from(keys))));
        }
        if i.kind == IdentityKind::ServiceAccount {
            let g = self.graph();
            let bindings: Vec<String> = g
                .find(&i.id)
                .map(|n| {
                    g.out_edges(n)
                        .filter(|e| e.kind == EdgeKind::BoundTo)
                        .map(|e| g.key(e.to).to_owned())
                        .collect()
                })
                .unwrap_or_default();
            f.insert(
                "bindings".into(),
                Value::from(items(&Value::from(bindings))),
            );
        }
        f
    }

    /// The approved baselines, by identity.
    pub fn baselines_approved(&self) -> Result<BTreeMap<String, Baseline>, EngineError> {
        match self.store.setting(BASELINES)? {
            None => Ok(BTreeMap::new()),
            Some(doc) => serde_json::from_str(&doc).map_err(|e| {
                EngineError::Store(keyward_store::StoreError::Corrupt(format!(
                    "setting `{BASELINES}`: {e}"
                )))
            }),
        }
    }

    /// Approves the current configuration of `identity` (or of every IAM user, role and
    /// service account) as its baseline; one audited write. Returns how many were approved.
    pub fn approve_baselines(
        &mut self,
        identity: Option<&str>,
        actor: &str,
        now: Millis,
    ) -> Result<usize, EngineError> {
        let chosen: Vec<Identity> = match identity {
            Some(q) => match self.resolve(q) {
                crate::Resolve::Found(i) if governable(i) => vec![i.clone()],
                crate::Resolve::Found(i) => {
                    return Err(EngineError::Respond(format!(
                        "{} is a {}: baselines govern IAM users, roles and service accounts",
                        i.id,
                        i.kind.as_str()
                    )));
                }
                _ => {
                    return Err(EngineError::Respond(format!(
                        "no single identity matches {q:?}"
                    )));
                }
            },
            None => self
                .inventory
                .iter()
                .filter(|i| governable(i))
                .cloned()
                .collect(),
        };
        let mut all = self.baselines_approved()?;
        for i in &chosen {
            all.insert(
                i.id.clone(),
                Baseline {
                    approved_at: now,
                    approved_by: actor.to_owned(),
                    facts: self.governed(i),
                    source: SNAPSHOT.to_owned(),
                    ungoverned: BTreeMap::new(),
                },
            );
        }
        let doc = serde_json::to_string(&all)
            .map_err(|e| EngineError::Respond(format!("baselines: {e}")))?;
        let audit = AuditEntry {
            at: now,
            actor: actor.to_owned(),
            action: "baseline.approve".into(),
            target: identity.map(str::to_owned),
            detail: Some(format!("{} identities approved", chosen.len())),
            before: None,
            after: None,
        };
        self.store.put_setting(BASELINES, &doc, &audit)?;
        Ok(chosen.len())
    }

    /// What differs from the approved baselines now, with revert commands.
    pub fn drift(&self) -> Result<Vec<Drift>, EngineError> {
        let mut out = Vec::new();
        for (id, b) in self.baselines_approved()? {
            let Some(i) = self.inventory.get(&id) else {
                continue;
            };
            if i.deleted.is_some() {
                out.push(Drift {
                    identity: id.clone(),
                    source: b.source.clone(),
                    field: "deleted".into(),
                    approved: Value::Bool(false),
                    current: Value::Bool(true),
                    added: Vec::new(),
                    removed: Vec::new(),
                    revert: vec!["# deleted since it was approved: re-create it from IaC, or approve its removal".into()],
                });
                continue;
            }
            let now = self.governed(i);
            let fields: std::collections::BTreeSet<&String> = b
                .facts
                .keys()
                .chain(now.keys())
                .filter(|f| !b.ungoverned.contains_key(*f))
                .collect();
            for field in fields {
                let approved = b.facts.get(field).cloned().unwrap_or(Value::Null);
                let current = now.get(field).cloned().unwrap_or(Value::Null);
                if same(field, &approved, &current) {
                    continue;
                }
                let (a, c) = (items(&approved), items(&current));
                let added: Vec<String> = c.iter().filter(|x| !a.contains(x)).cloned().collect();
                let removed: Vec<String> = a.iter().filter(|x| !c.contains(x)).cloned().collect();
                let revert = revert(i, field, &approved, &current, &added);
                out.push(Drift {
                    identity: id.clone(),
                    source: b.source.clone(),
                    field: field.clone(),
                    approved,
                    current,
                    added,
                    removed,
                    revert,
                });
            }
        }
        Ok(out)
    }
}

impl Engine {
    /// The baselined IAM users and roles (only `identity`, when given — resolved like
    /// `keyward show`), with their API names and approved facts.
    pub fn baselined_principals(
        &self,
        identity: Option<&str>,
    ) -> Result<Vec<(Identity, IamPrincipal, Baseline)>, EngineError> {
        let only = match identity {
            Some(q) => match self.resolve(q) {
                crate::Resolve::Found(i) => Some(i.id.clone()),
                _ => {
                    return Err(EngineError::Respond(format!(
                        "no single identity matches {q:?}"
                    )));
                }
            },
            None => None,
        };
        let mut out = Vec::new();
        for (id, b) in self.baselines_approved()? {
            if only.as_ref().is_some_and(|o| *o != id) {
                continue;
            }
            let Some(i) = self.inventory.get(&id) else {
                continue;
            };
            if let Some(p) = principal_of(i) {
                out.push((i.clone(), p, b));
            }
        }
        if let (Some(q), true) = (identity, out.is_empty()) {
            return Err(EngineError::Respond(format!(
                "{q} has no approved baseline as an IAM user or role: `keyward baseline approve {q}` first"
            )));
        }
        Ok(out)
    }

    /// The revert plan of a baselined identity given its live governed facts (`None`: no
    /// drift). Not stored: [`Engine::save_plan`] does that.
    pub fn revert_plan(
        &self,
        identity: &Identity,
        baseline: &Baseline,
        live: &BTreeMap<String, Value>,
        why: &str,
        actor: &str,
        now: Millis,
    ) -> Option<Plan> {
        let principal = principal_of(identity)?;
        // Only the facts the baseline governs are compared (an approval from a snapshot
        // that lacked one does not revert it); a boundary is absent when there was none,
        // unless the source could not tell it (ungoverned).
        let live: BTreeMap<String, Value> = live
            .iter()
            .filter(|(k, _)| baseline.facts.contains_key(*k) || *k == "permissions_boundary")
            .filter(|(k, _)| !baseline.ungoverned.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        restore::plan(&restore::Request {
            account: identity.account.as_deref(),
            identity: &identity.id,
            principal,
            approved: &baseline.facts,
            live: &live,
            why,
            now,
            actor,
        })
    }
}

/// The commands that put `field` back to what was approved: those of the revert plan's
/// steps (`keyward_respond::restore`), or what a person must do.
fn revert(
    i: &Identity,
    field: &str,
    approved: &Value,
    current: &Value,
    added: &[String],
) -> Vec<String> {
    let Some(p) = principal_of(i) else {
        return added
            .iter()
            .map(|b| format!("# binding {b} was added: remove the subject ({})", i.id))
            .collect();
    };
    let one = |v: &Value| BTreeMap::from([(field.to_owned(), v.clone())]);
    let (actions, review) = restore::changes(&p, &one(approved), &one(current));
    actions
        .iter()
        .flat_map(|a| a.commands())
        .chain(
            review
                .into_iter()
                .map(|(what, why)| format!("# {what}: {why}")),
        )
        .collect()
}

//! Drift: an approved baseline of each identity's governed configuration (trust policy,
//! attached and inline policy names, permissions boundary, groups, active keys, Kubernetes
//! bindings), and what differs from it now, with the commands that put it back.
//!
//! Baselines are approved by a person (`keyward baseline approve`) and kept in the store
//! (setting `drift.baselines`, one audited write per approval). The inventory is compared
//! after every ingest of a snapshot; a change seen only in events waits for the next
//! snapshot.

use std::collections::BTreeMap;

use keyward_graph::EdgeKind;
use keyward_model::time::Millis;
use keyward_model::{CredentialKind, CredentialStatus, Identity, IdentityKind};
use keyward_respond::action::shell_quote as q;
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

/// One identity's approved configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub approved_at: Millis,
    pub approved_by: String,
    pub facts: BTreeMap<String, Value>,
}

/// One difference from the approved baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    pub identity: String,
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

/// A fact as a sorted list of strings, when it is a list (or one value).
fn items(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::Null => Vec::new(),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                Value::Object(o) => o
                    .get("GroupName")
                    .or_else(|| o.get("PolicyArn"))
                    .and_then(Value::as_str)
                    .map_or_else(|| x.to_string(), str::to_owned),
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    };
    out.sort();
    out.dedup();
    out
}

impl Engine {
    /// The governed facts of an identity as the inventory and graph hold them now.
    fn governed(&self, i: &Identity) -> BTreeMap<String, Value> {
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
            let fields: std::collections::BTreeSet<&String> =
                b.facts.keys().chain(now.keys()).collect();
            for field in fields {
                let approved = b.facts.get(field).cloned().unwrap_or(Value::Null);
                let current = now.get(field).cloned().unwrap_or(Value::Null);
                if approved == current {
                    continue;
                }
                let (a, c) = (items(&approved), items(&current));
                let added: Vec<String> = c.iter().filter(|x| !a.contains(x)).cloned().collect();
                let removed: Vec<String> = a.iter().filter(|x| !c.contains(x)).cloned().collect();
                let revert = revert(i, field, &approved, &added, &removed);
                out.push(Drift {
                    identity: id.clone(),
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

/// The commands that put `field` back to what was approved.
fn revert(
    i: &Identity,
    field: &str,
    approved: &Value,
    added: &[String],
    removed: &[String],
) -> Vec<String> {
    let name = i.id.rsplit('/').next().unwrap_or(&i.name);
    let noun = if i.kind == IdentityKind::IamUser {
        "user"
    } else {
        "role"
    };
    let n = q(name);
    let mut out = Vec::new();
    match field {
        "attached_policies" => {
            for p in added {
                out.push(format!("aws iam detach-{noun}-policy --{noun}-name {n} --policy-arn {}", q(p)));
            }
            for p in removed {
                out.push(format!("aws iam attach-{noun}-policy --{noun}-name {n} --policy-arn {}", q(p)));
            }
        }
        "inline_policies" => {
            for p in added {
                out.push(format!("aws iam get-{noun}-policy --{noun}-name {n} --policy-name {}  # keep a copy", q(p)));
                out.push(format!("aws iam delete-{noun}-policy --{noun}-name {n} --policy-name {}", q(p)));
            }
            for p in removed {
                out.push(format!("# inline policy {p} was removed: put it back from IaC (its document is in the approved snapshot)"));
            }
        }
        "trust_policy" => out.push(format!(
            "aws iam update-assume-role-policy --role-name {n} --policy-document {}",
            q(&approved.to_string())
        )),
        "permissions_boundary" => match approved.as_str() {
            Some(b) => out.push(format!("aws iam put-{noun}-permissions-boundary --{noun}-name {n} --permissions-boundary {}", q(b))),
            None => out.push(format!("aws iam delete-{noun}-permissions-boundary --{noun}-name {n}")),
        },
        "groups" => {
            for g in added {
                out.push(format!("aws iam remove-user-from-group --group-name {} --user-name {n}", q(g)));
            }
            for g in removed {
                out.push(format!("aws iam add-user-to-group --group-name {} --user-name {n}", q(g)));
            }
        }
        "active_keys" => {
            for k in added {
                out.push(format!("aws iam update-access-key --user-name {n} --access-key-id {} --status Inactive", q(k)));
            }
        }
        "bindings" => {
            for b in added {
                out.push(format!("# binding {b} was added: remove the subject ({})", i.id));
            }
        }
        _ => {}
    }
    out
}

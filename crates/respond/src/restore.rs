//! Self-healing: what puts an IAM principal back to its approved baseline. A baseline is a
//! set of governed facts (trust policy, attached and inline policy names, permissions
//! boundary, groups, active keys — the form `keyward baseline approve` stores); [`changes`]
//! compares it with the same facts read live from the platform and lists the
//! [`Change`]s that revert the difference, each one a reversible [`Action::RestoreBaseline`]
//! step (the key deactivation reuses [`Action::DeactivateAccessKey`]). [`plan`] makes the
//! stored, audited plan the executor runs. Pure: the live facts come from the connector
//! (`AwsConnector::governed_facts`).
//!
//! What cannot be restored from a baseline is said, not guessed: an inline policy that was
//! removed (the baseline keeps its name, not its document) and a key that was deleted become
//! review steps.

use std::collections::BTreeMap;

use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action::{Action, IamPrincipal, shell_quote as q};
use crate::plan::{Plan, PlanStatus, Step};

/// One change back towards the baseline.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A managed policy attached since the approval is detached.
    DetachPolicy { arn: String },
    /// An approved managed policy that was detached is attached again.
    AttachPolicy { arn: String },
    /// An inline policy added since the approval is deleted (its document is kept in the
    /// step's result, so undo puts it back).
    DeleteInlinePolicy { name: String },
    /// The trust policy is set back to the approved document (the one replaced is kept in
    /// the step's result).
    SetTrustPolicy { document: String },
    /// The approved permissions boundary is put back (or the one added is removed: `None`).
    SetBoundary { arn: Option<String> },
    /// The user is taken out of a group it joined since the approval.
    RemoveFromGroup { group: String },
    /// The user is put back into an approved group it left.
    AddToGroup { group: String },
    /// An inline policy is written (`keyward rightsize`'s proposal); the document it
    /// replaces, or none, is kept in the step's result, so undo puts it back exactly.
    PutInlinePolicy { name: String, document: String },
}

impl Change {
    pub fn name(&self) -> &'static str {
        match self {
            Change::DetachPolicy { .. } => "detach_policy",
            Change::AttachPolicy { .. } => "attach_policy",
            Change::DeleteInlinePolicy { .. } => "delete_inline_policy",
            Change::SetTrustPolicy { .. } => "set_trust_policy",
            Change::SetBoundary { .. } => "set_boundary",
            Change::RemoveFromGroup { .. } => "remove_from_group",
            Change::AddToGroup { .. } => "add_to_group",
            Change::PutInlinePolicy { .. } => "put_inline_policy",
        }
    }

    /// The baseline fact it restores.
    pub fn field(&self) -> &'static str {
        match self {
            Change::DetachPolicy { .. } | Change::AttachPolicy { .. } => "attached_policies",
            Change::DeleteInlinePolicy { .. } | Change::PutInlinePolicy { .. } => "inline_policies",
            Change::SetTrustPolicy { .. } => "trust_policy",
            Change::SetBoundary { .. } => "permissions_boundary",
            Change::RemoveFromGroup { .. } | Change::AddToGroup { .. } => "groups",
        }
    }

    /// What must hold before it runs.
    pub fn precondition(&self, p: &IamPrincipal) -> String {
        let who = format!("the {} {}", p.noun(), p.name());
        match self {
            Change::DetachPolicy { arn } => format!("{who} has {arn} attached"),
            Change::AttachPolicy { arn } => format!("{who} exists and {arn} exists"),
            Change::DeleteInlinePolicy { name } => format!("{who} has inline policy {name}"),
            Change::SetTrustPolicy { .. } => format!("{who} exists"),
            Change::SetBoundary { .. } => format!("{who} exists"),
            Change::RemoveFromGroup { group } => format!("{who} is in group {group}"),
            Change::AddToGroup { group } => format!("{who} exists and group {group} exists"),
            Change::PutInlinePolicy { .. } => format!("{who} exists"),
        }
    }

    /// The exact commands that do it by hand.
    pub fn commands(&self, p: &IamPrincipal) -> Vec<String> {
        let (noun, n) = (p.noun(), q(p.name()));
        match self {
            Change::DetachPolicy { arn } => vec![format!(
                "aws iam detach-{noun}-policy --{noun}-name {n} --policy-arn {}",
                q(arn)
            )],
            Change::AttachPolicy { arn } => vec![format!(
                "aws iam attach-{noun}-policy --{noun}-name {n} --policy-arn {}",
                q(arn)
            )],
            Change::DeleteInlinePolicy { name } => vec![
                format!(
                    "aws iam get-{noun}-policy --{noun}-name {n} --policy-name {} > inline-policy.json  # kept for undo",
                    q(name)
                ),
                format!(
                    "aws iam delete-{noun}-policy --{noun}-name {n} --policy-name {}",
                    q(name)
                ),
            ],
            Change::SetTrustPolicy { document } => vec![format!(
                "aws iam update-assume-role-policy --role-name {n} --policy-document {}",
                q(document)
            )],
            Change::SetBoundary { arn: Some(arn) } => vec![format!(
                "aws iam put-{noun}-permissions-boundary --{noun}-name {n} --permissions-boundary {}",
                q(arn)
            )],
            Change::SetBoundary { arn: None } => vec![format!(
                "aws iam delete-{noun}-permissions-boundary --{noun}-name {n}"
            )],
            Change::RemoveFromGroup { group } => vec![format!(
                "aws iam remove-user-from-group --group-name {} --user-name {n}",
                q(group)
            )],
            Change::AddToGroup { group } => vec![format!(
                "aws iam add-user-to-group --group-name {} --user-name {n}",
                q(group)
            )],
            Change::PutInlinePolicy { name, document } => vec![
                format!(
                    "aws iam get-{noun}-policy --{noun}-name {n} --policy-name {} > inline-policy-before.json  # kept for undo, if any",
                    q(name)
                ),
                format!(
                    "aws iam put-{noun}-policy --{noun}-name {n} --policy-name {} --policy-document {}",
                    q(name),
                    q(document)
                ),
            ],
        }
    }

    /// The exact commands that undo it by hand.
    pub fn undo_commands(&self, p: &IamPrincipal) -> Vec<String> {
        let (noun, n) = (p.noun(), q(p.name()));
        match self {
            Change::DetachPolicy { arn } => Change::AttachPolicy { arn: arn.clone() }.commands(p),
            Change::AttachPolicy { arn } => Change::DetachPolicy { arn: arn.clone() }.commands(p),
            Change::DeleteInlinePolicy { name } => vec![format!(
                "aws iam put-{noun}-policy --{noun}-name {n} --policy-name {} --policy-document file://inline-policy.json  # the document is in the step's result",
                q(name)
            )],
            Change::SetTrustPolicy { .. } => vec![format!(
                "aws iam update-assume-role-policy --role-name {n} --policy-document file://trust-before.json  # the document replaced is in the step's result"
            )],
            Change::SetBoundary { .. } => vec![format!(
                "aws iam put-{noun}-permissions-boundary --{noun}-name {n} --permissions-boundary BOUNDARY_BEFORE  # in the step's result (none: aws iam delete-{noun}-permissions-boundary --{noun}-name {n})"
            )],
            Change::RemoveFromGroup { group } => Change::AddToGroup {
                group: group.clone(),
            }
            .commands(p),
            Change::AddToGroup { group } => Change::RemoveFromGroup {
                group: group.clone(),
            }
            .commands(p),
            Change::PutInlinePolicy { name, .. } => vec![format!(
                "aws iam put-{noun}-policy --{noun}-name {n} --policy-name {} --policy-document file://inline-policy-before.json  # the document replaced is in the step's result (none: aws iam delete-{noun}-policy --{noun}-name {n} --policy-name {})",
                q(name),
                q(name)
            )],
        }
    }
}

/// A fact as a sorted list of strings (policy ARNs or names, groups, key ids): lists of
/// strings, or of objects named by `GroupName`, `PolicyArn`, `PolicyName` or `name`.
pub fn items(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::Null => Vec::new(),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                Value::Object(o) => ["GroupName", "PolicyArn", "PolicyName", "name"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(Value::as_str))
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

/// A policy document as a value, whether stored as a JSON string or an object.
fn document(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    }
}

/// The actions that bring `live` back to `approved` (keys added since the approval are
/// deactivated), and what a person must review (`(what, why)`).
pub fn changes(
    p: &IamPrincipal,
    approved: &BTreeMap<String, Value>,
    live: &BTreeMap<String, Value>,
) -> (Vec<Action>, Vec<(String, String)>) {
    let null = Value::Null;
    let get = |m: &BTreeMap<String, Value>, k: &str| m.get(k).cloned().unwrap_or(Value::Null);
    let diff = |field: &str| {
        let (a, c) = (items(&get(approved, field)), items(&get(live, field)));
        let added: Vec<String> = c.iter().filter(|x| !a.contains(x)).cloned().collect();
        let removed: Vec<String> = a.iter().filter(|x| !c.contains(x)).cloned().collect();
        (added, removed)
    };
    let mut out: Vec<Change> = Vec::new();
    let mut review = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    if approved.contains_key("attached_policies") {
        let (added, removed) = diff("attached_policies");
        out.extend(added.into_iter().map(|arn| Change::DetachPolicy { arn }));
        out.extend(removed.into_iter().map(|arn| Change::AttachPolicy { arn }));
    }
    if approved.contains_key("inline_policies") {
        let (added, removed) = diff("inline_policies");
        out.extend(
            added
                .into_iter()
                .map(|name| Change::DeleteInlinePolicy { name }),
        );
        for name in removed {
            review.push((
                format!("inline policy {name} of {} {}", p.noun(), p.name()),
                "removed since the approval: the baseline keeps its name, not its document — put it back from IaC".to_owned(),
            ));
        }
    }
    if let IamPrincipal::Role(_) = p
        && let Some(a) = approved.get("trust_policy")
        && document(a) != document(live.get("trust_policy").unwrap_or(&null))
    {
        out.push(Change::SetTrustPolicy {
            document: document(a).to_string(),
        });
    }
    if approved.contains_key("permissions_boundary") || live.contains_key("permissions_boundary") {
        let a = approved.get("permissions_boundary").and_then(Value::as_str);
        let c = live.get("permissions_boundary").and_then(Value::as_str);
        if a != c {
            out.push(Change::SetBoundary {
                arn: a.map(str::to_owned),
            });
        }
    }
    if let IamPrincipal::User(_) = p {
        if approved.contains_key("groups") {
            let (added, removed) = diff("groups");
            out.extend(
                added
                    .into_iter()
                    .map(|group| Change::RemoveFromGroup { group }),
            );
            out.extend(
                removed
                    .into_iter()
                    .map(|group| Change::AddToGroup { group }),
            );
        }
        if approved.contains_key("active_keys") {
            let (added, removed) = diff("active_keys");
            keys = added;
            for k in removed {
                review.push((
                    format!("access key {k} of user {}", p.name()),
                    "approved but no longer active: a deleted key cannot be restored; re-activate it if it still exists".to_owned(),
                ));
            }
        }
    }
    let mut actions: Vec<Action> = out
        .into_iter()
        .map(|change| Action::RestoreBaseline {
            account: None,
            principal: p.clone(),
            change,
        })
        .collect();
    actions.extend(keys.into_iter().map(|key_id| Action::DeactivateAccessKey {
        account: None,
        user: p.name().to_owned(),
        key_id,
    }));
    (actions, review)
}

/// What a revert plan is made from.
pub struct Request<'a> {
    pub account: Option<&'a str>,
    /// The identity's canonical id.
    pub identity: &'a str,
    pub principal: IamPrincipal,
    pub approved: &'a BTreeMap<String, Value>,
    pub live: &'a BTreeMap<String, Value>,
    /// Why (a drift, an event id).
    pub why: &'a str,
    pub now: Millis,
    pub actor: &'a str,
}

/// The revert plan, or `None` when the live state matches the baseline.
pub fn plan(req: &Request<'_>) -> Option<Plan> {
    let (mut actions, review) = changes(&req.principal, req.approved, req.live);
    let account = req.account.map(str::to_owned);
    for a in &mut actions {
        if let Action::RestoreBaseline { account: acc, .. }
        | Action::DeactivateAccessKey { account: acc, .. } = a
        {
            acc.clone_from(&account);
        }
    }
    let noun = req.principal.noun();
    for (what, why) in review {
        actions.push(Action::Review {
            what,
            inspect: format!(
                "aws iam list-{noun}-policies --{noun}-name {}  # {why}",
                q(req.principal.name())
            ),
        });
    }
    if actions.is_empty() {
        return None;
    }
    let steps = actions
        .into_iter()
        .enumerate()
        .map(|(i, action)| Step {
            n: i + 1,
            target: action.target(),
            why: match &action {
                Action::RestoreBaseline { change, .. } => {
                    format!(
                        "drift: {} differs from the approved baseline",
                        change.field()
                    )
                }
                Action::DeactivateAccessKey { .. } => {
                    "drift: an access key not in the approved baseline".into()
                }
                other => format!("drift: {}", other.name()),
            },
            precondition: action.precondition(),
            command: action.commands(),
            undo: action.undo_commands(),
            terraform: None,
            action,
            result: None,
            undo_result: None,
        })
        .collect();
    let seed = format!("revert\n{}\n{}\n{}", req.identity, req.now, req.actor);
    let kind = match req.principal {
        IamPrincipal::Role(_) => "iam_role",
        IamPrincipal::User(_) => "iam_user",
    };
    Some(Plan {
        id: format!("rp-{}", &blake3::hash(seed.as_bytes()).to_hex()[..16]),
        created_at: req.now,
        created_by: req.actor.to_owned(),
        identity: req.identity.to_owned(),
        identity_kind: kind.into(),
        identity_name: req.principal.name().to_owned(),
        finding: None,
        since: None,
        status: PlanStatus::Planned,
        workloads: Vec::new(),
        notes: vec![
            format!("revert to the approved baseline: {}", req.why),
            "every step is reversible: `keyward respond undo PLAN` puts the drifted state back"
                .into(),
        ],
        steps,
        evidence: None,
        grace_days: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn a_role_whose_controls_were_loosened_is_put_back() {
        let p = IamPrincipal::Role("app".into());
        let approved = facts(json!({
            "attached_policies": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            "inline_policies": ["keep"],
            "permissions_boundary": "arn:aws:iam::1:policy/boundary",
            "trust_policy": {"Version": "2012-10-17", "Statement": []},
        }));
        let live = facts(json!({
            "attached_policies": ["arn:aws:iam::aws:policy/AdministratorAccess"],
            "inline_policies": ["keep", "backdoor"],
            "trust_policy": "{\"Statement\": [], \"Version\": \"2012-10-17\"}",
        }));
        let (actions, review) = changes(&p, &approved, &live);
        let got: Vec<Change> = actions
            .into_iter()
            .map(|a| match a {
                Action::RestoreBaseline { change, .. } => change,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                Change::DetachPolicy {
                    arn: "arn:aws:iam::aws:policy/AdministratorAccess".into()
                },
                Change::AttachPolicy {
                    arn: "arn:aws:iam::aws:policy/ReadOnlyAccess".into()
                },
                Change::DeleteInlinePolicy {
                    name: "backdoor".into()
                },
                // The trust policy only changed its form (a string): no step.
                Change::SetBoundary {
                    arn: Some("arn:aws:iam::1:policy/boundary".into())
                },
            ]
        );
        assert!(review.is_empty());
    }

    #[test]
    fn a_user_gets_its_groups_back_and_new_keys_deactivated() {
        let p = IamPrincipal::User("ci".into());
        let approved = facts(
            json!({"groups": ["deployers"], "active_keys": ["AKIAOLD"], "inline_policies": ["gone"]}),
        );
        let live = facts(
            json!({"groups": ["admins"], "active_keys": ["AKIAOLD", "AKIANEW"], "inline_policies": []}),
        );
        let plan = plan(&Request {
            account: Some("111122223333"),
            identity: "arn:aws:iam::111122223333:user/ci",
            principal: p,
            approved: &approved,
            live: &live,
            why: "test",
            now: 0,
            actor: "cli:test",
        })
        .unwrap();
        let names: Vec<&str> = plan.steps.iter().map(|s| s.action.name()).collect();
        assert_eq!(
            names,
            [
                "restore_baseline",
                "restore_baseline",
                "deactivate_access_key",
                "review"
            ]
        );
        assert_eq!(
            plan.steps[0].command,
            ["aws iam remove-user-from-group --group-name admins --user-name ci"]
        );
        assert!(plan.steps[3].command[0].contains("list-user-policies --user-name ci"));
        let doc = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&doc).unwrap(), plan);
        // Nothing drifted: no plan.
        assert!(
            super::plan(&Request {
                account: None,
                identity: "x",
                principal: IamPrincipal::User("ci".into()),
                approved: &approved,
                live: &approved,
                why: "",
                now: 0,
                actor: "",
            })
            .is_none()
        );
    }
}

//! The AWS side of self-healing ([`crate::restore`]): an IAM principal's governed facts read
//! live, in the form baselines are approved in, and each [`Change`] applied, verified and
//! undone. What `apply` returns (the step's `state`): `{"previous": …}` for the trust policy
//! (the document replaced) and the permissions boundary (the ARN replaced, or null),
//! `{"document": …}` for a deleted inline policy; `{}` otherwise.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::client::{AwsConnector, api, missing, precondition};
use crate::action::IamPrincipal;
use crate::restore::{Change, items};
use crate::{ConnectorError, Verified};

fn names(v: Option<&Value>, key: &str) -> Value {
    let list: Vec<Value> = v
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.get(key).cloned())
                .filter(|x| !x.is_null())
                .collect()
        })
        .unwrap_or_default();
    Value::Array(list)
}

impl AwsConnector {
    /// The principal's governed facts now: `attached_policies` (ARNs), `inline_policies`
    /// (names), `permissions_boundary` (an ARN, absent when none), `trust_policy` (roles),
    /// `groups` and `active_keys` (users).
    pub async fn governed_facts(
        &self,
        p: &IamPrincipal,
    ) -> Result<BTreeMap<String, Value>, ConnectorError> {
        let target = format!("{}/{}", p.noun(), p.name());
        let state = match p {
            IamPrincipal::Role(n) => self.role_state(n, &target).await?,
            IamPrincipal::User(n) => self.user_state(n, &target).await?,
        };
        let mut f = BTreeMap::new();
        f.insert(
            "attached_policies".into(),
            names(state.get("attached_policies"), "arn"),
        );
        f.insert(
            "inline_policies".into(),
            names(state.get("inline_policies"), "name"),
        );
        if let Some(b) = state.get("permissions_boundary").filter(|b| !b.is_null()) {
            f.insert("permissions_boundary".into(), b.clone());
        }
        match p {
            IamPrincipal::Role(_) => {
                f.insert(
                    "trust_policy".into(),
                    state.get("trust_policy").cloned().unwrap_or(Value::Null),
                );
            }
            IamPrincipal::User(_) => {
                f.insert("groups".into(), names(state.get("groups"), "name"));
                let active: Vec<Value> = state
                    .get("access_keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter(|k| k.get("status").and_then(Value::as_str) == Some("Active"))
                            .filter_map(|k| k.get("id").cloned())
                            .collect()
                    })
                    .unwrap_or_default();
                f.insert("active_keys".into(), Value::Array(active));
            }
        }
        Ok(f)
    }

    async fn boundary(&self, p: &IamPrincipal) -> Result<Value, ConnectorError> {
        Ok(self
            .governed_facts(p)
            .await?
            .remove("permissions_boundary")
            .unwrap_or(Value::Null))
    }

    async fn set_boundary(
        &self,
        p: &IamPrincipal,
        arn: Option<&str>,
        target: &str,
    ) -> Result<(), ConnectorError> {
        let call = |c: &str| format!("{c}{}PermissionsBoundary", noun_cap(p));
        match (p, arn) {
            (IamPrincipal::Role(n), Some(a)) => self
                .iam
                .put_role_permissions_boundary()
                .role_name(n)
                .permissions_boundary(a)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api(&call("Put"), target, e)),
            (IamPrincipal::User(n), Some(a)) => self
                .iam
                .put_user_permissions_boundary()
                .user_name(n)
                .permissions_boundary(a)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api(&call("Put"), target, e)),
            (IamPrincipal::Role(n), None) => {
                match self
                    .iam
                    .delete_role_permissions_boundary()
                    .role_name(n)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if missing!(e) => Ok(()),
                    Err(e) => Err(api(&call("Delete"), target, e)),
                }
            }
            (IamPrincipal::User(n), None) => {
                match self
                    .iam
                    .delete_user_permissions_boundary()
                    .user_name(n)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if missing!(e) => Ok(()),
                    Err(e) => Err(api(&call("Delete"), target, e)),
                }
            }
        }
    }

    /// Attaches (or, with `attach` false, detaches: one gone already is fine) a managed
    /// policy; also what access grants use.
    pub(super) async fn attach(
        &self,
        p: &IamPrincipal,
        arn: &str,
        attach: bool,
        target: &str,
    ) -> Result<(), ConnectorError> {
        let call = format!(
            "{}{}Policy",
            if attach { "Attach" } else { "Detach" },
            noun_cap(p)
        );
        match (p, attach) {
            (IamPrincipal::Role(n), true) => self
                .iam
                .attach_role_policy()
                .role_name(n)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api(&call, target, e)),
            (IamPrincipal::User(n), true) => self
                .iam
                .attach_user_policy()
                .user_name(n)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api(&call, target, e)),
            (IamPrincipal::Role(n), false) => {
                match self
                    .iam
                    .detach_role_policy()
                    .role_name(n)
                    .policy_arn(arn)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if missing!(e) => Ok(()),
                    Err(e) => Err(api(&call, target, e)),
                }
            }
            (IamPrincipal::User(n), false) => {
                match self
                    .iam
                    .detach_user_policy()
                    .user_name(n)
                    .policy_arn(arn)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if missing!(e) => Ok(()),
                    Err(e) => Err(api(&call, target, e)),
                }
            }
        }
    }

    async fn group(
        &self,
        user: &str,
        group: &str,
        add: bool,
        target: &str,
    ) -> Result<(), ConnectorError> {
        if add {
            self.iam
                .add_user_to_group()
                .user_name(user)
                .group_name(group)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api("AddUserToGroup", target, e))
        } else {
            match self
                .iam
                .remove_user_from_group()
                .user_name(user)
                .group_name(group)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if missing!(e) => Ok(()),
                Err(e) => Err(api("RemoveUserFromGroup", target, e)),
            }
        }
    }

    async fn set_trust(&self, role: &str, doc: &str, target: &str) -> Result<(), ConnectorError> {
        self.iam
            .update_assume_role_policy()
            .role_name(role)
            .policy_document(doc)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| api("UpdateAssumeRolePolicy", target, e))
    }

    pub(super) async fn restore_apply(
        &self,
        p: &IamPrincipal,
        change: &Change,
        target: &str,
    ) -> Result<Value, ConnectorError> {
        match change {
            Change::DetachPolicy { arn } => self.attach(p, arn, false, target).await?,
            Change::AttachPolicy { arn } => self.attach(p, arn, true, target).await?,
            Change::DeleteInlinePolicy { name } => {
                let doc = self.get_inline(p, name, target).await?;
                self.delete_inline(p, name, target).await?;
                return Ok(json!({ "document": doc }));
            }
            Change::SetTrustPolicy { document } => {
                let IamPrincipal::Role(role) = p else {
                    return Err(precondition(target, "only a role has a trust policy"));
                };
                let previous = self
                    .governed_facts(p)
                    .await?
                    .remove("trust_policy")
                    .unwrap_or(Value::Null);
                self.set_trust(role, document, target).await?;
                return Ok(json!({ "previous": previous }));
            }
            Change::SetBoundary { arn } => {
                let previous = self.boundary(p).await?;
                self.set_boundary(p, arn.as_deref(), target).await?;
                return Ok(json!({ "previous": previous }));
            }
            Change::RemoveFromGroup { group } | Change::AddToGroup { group } => {
                let IamPrincipal::User(user) = p else {
                    return Err(precondition(target, "only a user is in groups"));
                };
                let add = matches!(change, Change::AddToGroup { .. });
                self.group(user, group, add, target).await?;
            }
            Change::PutInlinePolicy { name, document } => {
                let previous = self.get_inline(p, name, target).await?;
                self.put_inline(p, name, document, target).await?;
                return Ok(json!({ "previous": previous }));
            }
        }
        Ok(json!({}))
    }

    /// Whether the change holds (`undone`: whether its reverse does).
    pub(super) async fn restore_verify(
        &self,
        p: &IamPrincipal,
        change: &Change,
        undone: bool,
        target: &str,
    ) -> Result<Verified, ConnectorError> {
        let facts = self.governed_facts(p).await?;
        let list = |k: &str| items(facts.get(k).unwrap_or(&Value::Null));
        let (ok, observed) = match change {
            Change::DetachPolicy { arn } | Change::AttachPolicy { arn } => {
                let attached = list("attached_policies").contains(arn);
                let want = matches!(change, Change::AttachPolicy { .. }) != undone;
                (
                    attached == want,
                    format!(
                        "{arn} {} to {target}",
                        if attached { "attached" } else { "not attached" }
                    ),
                )
            }
            Change::DeleteInlinePolicy { name } => {
                let present = list("inline_policies").contains(name);
                (
                    present == undone,
                    format!(
                        "inline policy {name} {}",
                        if present { "present" } else { "absent" }
                    ),
                )
            }
            Change::SetTrustPolicy { document } => {
                let now = facts.get("trust_policy").cloned().unwrap_or(Value::Null);
                let approved: Value =
                    serde_json::from_str(document).unwrap_or(Value::String(document.clone()));
                let same = now == approved;
                (
                    same != undone,
                    format!(
                        "the trust policy {} the approved document",
                        if same { "is" } else { "is not" }
                    ),
                )
            }
            Change::SetBoundary { arn } => {
                let now = facts
                    .get("permissions_boundary")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let same = &now == arn;
                (
                    same != undone,
                    format!("permissions boundary: {}", now.as_deref().unwrap_or("none")),
                )
            }
            Change::PutInlinePolicy { name, document } => {
                let now = self.get_inline(p, name, target).await?;
                let same = now.as_deref().map(as_json) == Some(as_json(document));
                (
                    same != undone,
                    format!(
                        "inline policy {name} {}",
                        if same {
                            "is the document put"
                        } else {
                            "differs from the document put"
                        }
                    ),
                )
            }
            Change::RemoveFromGroup { group } | Change::AddToGroup { group } => {
                let member = list("groups").contains(group);
                let want = matches!(change, Change::AddToGroup { .. }) != undone;
                (
                    member == want,
                    format!(
                        "{target} {} group {group}",
                        if member { "in" } else { "not in" }
                    ),
                )
            }
        };
        Ok(Verified { ok, observed })
    }

    pub(super) async fn restore_undo(
        &self,
        p: &IamPrincipal,
        change: &Change,
        state: &Value,
        target: &str,
    ) -> Result<Verified, ConnectorError> {
        match change {
            Change::DetachPolicy { arn } => self.attach(p, arn, true, target).await?,
            Change::AttachPolicy { arn } => self.attach(p, arn, false, target).await?,
            Change::DeleteInlinePolicy { name } => {
                let Some(doc) = state.get("document").and_then(Value::as_str) else {
                    return Err(precondition(
                        target,
                        format!("the step's result holds no document of inline policy {name}"),
                    ));
                };
                self.put_inline(p, name, doc, target).await?;
            }
            Change::SetTrustPolicy { .. } => {
                let IamPrincipal::Role(role) = p else {
                    return Err(precondition(target, "only a role has a trust policy"));
                };
                let previous = match state.get("previous") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v @ Value::Object(_)) => v.to_string(),
                    _ => {
                        return Err(precondition(
                            target,
                            "the step's result holds no previous trust policy",
                        ));
                    }
                };
                self.set_trust(role, &previous, target).await?;
                let now = self
                    .governed_facts(p)
                    .await?
                    .remove("trust_policy")
                    .unwrap_or(Value::Null);
                let was: Value =
                    serde_json::from_str(&previous).unwrap_or(Value::String(previous.clone()));
                let back = now == was;
                return Ok(Verified {
                    ok: back,
                    observed: format!(
                        "the trust policy {} the one the revert replaced",
                        if back { "is back to" } else { "differs from" }
                    ),
                });
            }
            Change::SetBoundary { .. } => {
                let previous = state.get("previous").and_then(Value::as_str);
                self.set_boundary(p, previous, target).await?;
                let now = self.boundary(p).await?;
                return Ok(Verified {
                    ok: now.as_str() == previous,
                    observed: format!("permissions boundary: {}", now.as_str().unwrap_or("none")),
                });
            }
            Change::RemoveFromGroup { group } | Change::AddToGroup { group } => {
                let IamPrincipal::User(user) = p else {
                    return Err(precondition(target, "only a user is in groups"));
                };
                let add = matches!(change, Change::RemoveFromGroup { .. });
                self.group(user, group, add, target).await?;
            }
            Change::PutInlinePolicy { name, .. } => {
                let previous = match state.get("previous") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Null) => None,
                    _ => {
                        return Err(precondition(
                            target,
                            format!(
                                "the step's result does not say what inline policy {name} was before"
                            ),
                        ));
                    }
                };
                match &previous {
                    Some(doc) => self.put_inline(p, name, doc, target).await?,
                    None => self.delete_inline(p, name, target).await?,
                }
                let now = self.get_inline(p, name, target).await?;
                let back = now.as_deref().map(as_json) == previous.as_deref().map(as_json);
                return Ok(Verified {
                    ok: back,
                    observed: format!(
                        "inline policy {name} {}",
                        match (back, &now) {
                            (true, Some(_)) => "is back to the document it replaced",
                            (true, None) => "is gone, as before",
                            (false, _) => "differs from what it was before",
                        }
                    ),
                });
            }
        }
        self.restore_verify(p, change, true, target).await
    }
}

/// A policy document as JSON for comparison (text that is not JSON compares as text).
fn as_json(doc: &str) -> Value {
    serde_json::from_str(doc).unwrap_or_else(|_| Value::String(doc.to_owned()))
}

fn noun_cap(p: &IamPrincipal) -> &'static str {
    match p {
        IamPrincipal::Role(_) => "Role",
        IamPrincipal::User(_) => "User",
    }
}

//! The forensic snapshot of an IAM principal, taken before a plan changes anything: what
//! the role or user was, what it could do (every policy with its document) and which
//! credentials it had. Identifiers, dates and statuses only: never a secret, a password or
//! a certificate body.
//!
//! A role: `{kind, arn, name, id, path, created, description, max_session_duration,
//! permissions_boundary, last_used, tags, trust_policy, inline_policies: [{name,
//! document}], attached_policies: [{name, arn, default_version, document}],
//! instance_profiles: [{name, arn, id}]}`.
//! A user: `{kind, arn, name, id, path, created, password_last_used, permissions_boundary,
//! tags, inline_policies, attached_policies, groups: [{name, arn}], access_keys: [{id,
//! status, created, last_used: {date, service, region}}], login_profile: {exists,
//! created, password_reset_required}, mfa_devices: [{serial, enabled}],
//! signing_certificates: [{id, status, uploaded}]}`.
//! A document IAM returns that is not JSON is kept as its decoded text.

use aws_sdk_iam::types::{AttachedPolicy, Tag};
use serde_json::{Map, Value, json};

use super::client::{AwsConnector, api, missing, precondition, when};
use super::document;
use crate::ConnectorError;

/// A policy document as JSON, or as its (decoded) text when it is not JSON.
fn doc_value(raw: &str) -> Value {
    match document::parse(raw) {
        Ok(v) => v,
        Err(_) => Value::String(document::decode(raw).unwrap_or_else(|_| raw.to_owned())),
    }
}

fn tags(tags: &[Tag]) -> Value {
    Value::Object(
        tags.iter()
            .map(|t| (t.key().to_owned(), Value::String(t.value().to_owned())))
            .collect::<Map<_, _>>(),
    )
}

impl AwsConnector {
    pub(super) async fn role_state(
        &self,
        name: &str,
        target: &str,
    ) -> Result<Value, ConnectorError> {
        let out = match self.iam.get_role().role_name(name).send().await {
            Ok(out) => out,
            Err(e) if missing!(e) => return Err(precondition(target, "the role does not exist")),
            Err(e) => return Err(api("GetRole", target, e)),
        };
        let Some(role) = out.role() else {
            return Err(precondition(target, "GetRole returned no role"));
        };
        let names = self
            .iam
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListRolePolicies", target, e))?;
        let mut inline = Vec::new();
        for policy in names {
            let out = self
                .iam
                .get_role_policy()
                .role_name(name)
                .policy_name(&policy)
                .send()
                .await
                .map_err(|e| api("GetRolePolicy", target, e))?;
            inline.push(json!({"name": policy, "document": doc_value(out.policy_document())}));
        }
        let attached = self
            .iam
            .list_attached_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListAttachedRolePolicies", target, e))?;
        let attached = self.managed_policies(&attached, target).await?;
        let profiles = self
            .iam
            .list_instance_profiles_for_role()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListInstanceProfilesForRole", target, e))?;
        let profiles: Vec<Value> = profiles
            .iter()
            .map(|p| {
                json!({"name": p.instance_profile_name(), "arn": p.arn(), "id": p.instance_profile_id()})
            })
            .collect();
        let last_used = role
            .role_last_used()
            .map(|u| json!({"date": when(u.last_used_date()), "region": u.region()}));
        Ok(json!({
            "kind": "role",
            "arn": role.arn(),
            "name": role.role_name(),
            "id": role.role_id(),
            "path": role.path(),
            "created": when(Some(role.create_date())),
            "description": role.description(),
            "max_session_duration": role.max_session_duration(),
            "permissions_boundary": role.permissions_boundary().and_then(|b| b.permissions_boundary_arn()),
            "last_used": last_used,
            "tags": tags(role.tags()),
            "trust_policy": role.assume_role_policy_document().map(doc_value),
            "inline_policies": inline,
            "attached_policies": attached,
            "instance_profiles": profiles,
        }))
    }

    pub(super) async fn user_state(
        &self,
        name: &str,
        target: &str,
    ) -> Result<Value, ConnectorError> {
        let out = match self.iam.get_user().user_name(name).send().await {
            Ok(out) => out,
            Err(e) if missing!(e) => return Err(precondition(target, "the user does not exist")),
            Err(e) => return Err(api("GetUser", target, e)),
        };
        let Some(user) = out.user() else {
            return Err(precondition(target, "GetUser returned no user"));
        };
        let names = self
            .iam
            .list_user_policies()
            .user_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListUserPolicies", target, e))?;
        let mut inline = Vec::new();
        for policy in names {
            let out = self
                .iam
                .get_user_policy()
                .user_name(name)
                .policy_name(&policy)
                .send()
                .await
                .map_err(|e| api("GetUserPolicy", target, e))?;
            inline.push(json!({"name": policy, "document": doc_value(out.policy_document())}));
        }
        let attached = self
            .iam
            .list_attached_user_policies()
            .user_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListAttachedUserPolicies", target, e))?;
        let attached = self.managed_policies(&attached, target).await?;
        let groups = self
            .iam
            .list_groups_for_user()
            .user_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListGroupsForUser", target, e))?;
        let groups: Vec<Value> = groups
            .iter()
            .map(|g| json!({"name": g.group_name(), "arn": g.arn()}))
            .collect();
        let keys = self
            .iam
            .list_access_keys()
            .user_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListAccessKeys", target, e))?;
        let mut access_keys = Vec::new();
        for k in &keys {
            let id = k.access_key_id().unwrap_or_default();
            let used = self
                .iam
                .get_access_key_last_used()
                .access_key_id(id)
                .send()
                .await
                .map_err(|e| api("GetAccessKeyLastUsed", target, e))?;
            let last_used = used.access_key_last_used().map(|u| {
                json!({"date": when(u.last_used_date()), "service": u.service_name(), "region": u.region()})
            });
            access_keys.push(json!({
                "id": id,
                "status": k.status().map(|s| s.as_str()),
                "created": when(k.create_date()),
                "last_used": last_used,
            }));
        }
        let login_profile = match self.login_profile(name, target).await? {
            Some((created, reset)) => {
                json!({"exists": true, "created": created, "password_reset_required": reset})
            }
            None => json!({"exists": false}),
        };
        let mfa_devices = self.mfa_devices(name, target).await?;
        let certificates = self
            .iam
            .list_signing_certificates()
            .user_name(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListSigningCertificates", target, e))?;
        let certificates: Vec<Value> = certificates
            .iter()
            .map(|c| {
                json!({"id": c.certificate_id(), "status": c.status().as_str(), "uploaded": when(c.upload_date())})
            })
            .collect();
        Ok(json!({
            "kind": "user",
            "arn": user.arn(),
            "name": user.user_name(),
            "id": user.user_id(),
            "path": user.path(),
            "created": when(Some(user.create_date())),
            "password_last_used": when(user.password_last_used()),
            "permissions_boundary": user.permissions_boundary().and_then(|b| b.permissions_boundary_arn()),
            "tags": tags(user.tags()),
            "inline_policies": inline,
            "attached_policies": attached,
            "groups": groups,
            "access_keys": access_keys,
            "login_profile": login_profile,
            "mfa_devices": mfa_devices,
            "signing_certificates": certificates,
        }))
    }

    /// Attached managed policies with their default version's document.
    async fn managed_policies(
        &self,
        attached: &[AttachedPolicy],
        target: &str,
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut out = Vec::new();
        for a in attached {
            let arn = a.policy_arn().unwrap_or_default();
            let policy = self
                .iam
                .get_policy()
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| api("GetPolicy", target, e))?;
            let version = policy
                .policy()
                .and_then(|p| p.default_version_id())
                .unwrap_or_default()
                .to_owned();
            let document = if version.is_empty() {
                Value::Null
            } else {
                let v = self
                    .iam
                    .get_policy_version()
                    .policy_arn(arn)
                    .version_id(&version)
                    .send()
                    .await
                    .map_err(|e| api("GetPolicyVersion", target, e))?;
                v.policy_version()
                    .and_then(|v| v.document())
                    .map_or(Value::Null, doc_value)
            };
            out.push(json!({
                "name": a.policy_name(),
                "arn": arn,
                "default_version": version,
                "document": document,
            }));
        }
        Ok(out)
    }
}

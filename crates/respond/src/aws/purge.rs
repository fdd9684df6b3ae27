//! The AWS side of deletion after the grace period ([`crate::purge`]). Each apply re-reads
//! the live state first and refuses when the identity is in use again: an old key active or
//! used since it was deactivated, a user or role without Keyward's deny-all policy (someone
//! re-enabled it), a user with an active key. A user or role is emptied the way IAM requires
//! before `DeleteUser`/`DeleteRole`, driven by the same read the forensic snapshot makes.
//! What `apply` returns: `{"existed": false}` when it was gone already, else what was
//! removed (names and ids, never a secret).

use aws_sdk_iam::types::StatusType;
use serde_json::{Value, json};

use super::client::{AwsConnector, api, missing, precondition};
use crate::action::{DENY_ALL_POLICY, IamPrincipal};
use crate::purge::Deletion;
use crate::{ConnectorError, Verified};

/// The values of `key` in the objects of the array `v[field]`.
fn each<'a>(v: &'a Value, field: &str, key: &str) -> Vec<&'a str> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.get(key)?.as_str()).collect())
        .unwrap_or_default()
}

fn refused(target: &str, why: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Refused(format!("{target}: {why}; not deleted"))
}

impl AwsConnector {
    pub(super) async fn purge_snapshot(&self, d: &Deletion) -> Result<Value, ConnectorError> {
        let target = d.target();
        match d {
            Deletion::AccessKey { user, key_id, .. } => {
                let mut state = self.user_state(user, &target).await?;
                if let Some(o) = state.as_object_mut() {
                    o.insert("key".into(), Value::String(key_id.clone()));
                }
                Ok(state)
            }
            Deletion::IamUser { user, .. } => {
                let mut state = self.user_state(user, &target).await?;
                let ssh = self.ssh_keys(user, &target).await?;
                if let Some(o) = state.as_object_mut() {
                    o.insert("ssh_public_keys".into(), json!(ssh));
                }
                Ok(state)
            }
            Deletion::IamRole { role, .. } => self.role_state(role, &target).await,
            Deletion::ServiceAccount { .. } => Err(precondition(
                &target,
                "a service account is deleted through the Kubernetes connector",
            )),
        }
    }

    pub(super) async fn purge_apply(&self, d: &Deletion) -> Result<Value, ConnectorError> {
        let target = d.target();
        match d {
            Deletion::AccessKey {
                user,
                key_id,
                inactive_since,
                ..
            } => {
                if self.own_key_id().await.as_deref() == Some(key_id.as_str()) {
                    return Err(refused(&target, "Keyward itself signs with this key"));
                }
                let status = match self.key_status(user, key_id, &target).await {
                    Ok(s) => s,
                    Err(ConnectorError::Precondition { .. }) => {
                        return Ok(json!({"existed": false}));
                    }
                    Err(e) => return Err(e),
                };
                if status != StatusType::Inactive {
                    return Err(refused(&target, "the key is Active again"));
                }
                if let Some(used) = self.key_last_used(key_id, &target).await?
                    && used > *inactive_since
                {
                    return Err(refused(
                        &target,
                        format!(
                            "the key was used at {} after it was deactivated",
                            keyward_model::time::format(used)
                        ),
                    ));
                }
                self.delete_key(user, key_id, &target).await?;
                Ok(json!({"existed": true, "key": key_id}))
            }
            Deletion::IamUser { user, .. } => self.delete_user(user, &target).await,
            Deletion::IamRole { role, .. } => self.delete_role(role, &target).await,
            Deletion::ServiceAccount { .. } => Err(precondition(
                &target,
                "a service account is deleted through the Kubernetes connector",
            )),
        }
    }

    pub(super) async fn purge_verify(&self, d: &Deletion) -> Result<Verified, ConnectorError> {
        let target = d.target();
        let (gone, what) = match d {
            Deletion::AccessKey { user, key_id, .. } => {
                let gone = match self.key_status(user, key_id, &target).await {
                    Ok(_) => false,
                    Err(ConnectorError::Precondition { .. }) => true,
                    Err(e) => return Err(e),
                };
                (gone, format!("access key {key_id} of {user}"))
            }
            Deletion::IamUser { user, .. } => (
                !self
                    .principal_exists(&IamPrincipal::User(user.clone()), &target)
                    .await?,
                format!("user {user}"),
            ),
            Deletion::IamRole { role, .. } => (
                !self
                    .principal_exists(&IamPrincipal::Role(role.clone()), &target)
                    .await?,
                format!("role {role}"),
            ),
            Deletion::ServiceAccount { .. } => {
                return Err(precondition(
                    &target,
                    "a service account is deleted through the Kubernetes connector",
                ));
            }
        };
        Ok(Verified {
            ok: gone,
            observed: format!(
                "{what} {}",
                if gone {
                    "does not exist"
                } else {
                    "still exists"
                }
            ),
        })
    }

    /// When the key was last used (ms), if ever.
    async fn key_last_used(
        &self,
        key_id: &str,
        target: &str,
    ) -> Result<Option<i64>, ConnectorError> {
        let out = self
            .iam
            .get_access_key_last_used()
            .access_key_id(key_id)
            .send()
            .await
            .map_err(|e| api("GetAccessKeyLastUsed", target, e))?;
        Ok(out
            .access_key_last_used()
            .and_then(|u| u.last_used_date())
            .and_then(|d| d.to_millis().ok()))
    }

    /// Deletes the access key; one that is gone already is fine.
    pub(super) async fn delete_key(
        &self,
        user: &str,
        key_id: &str,
        target: &str,
    ) -> Result<(), ConnectorError> {
        match self
            .iam
            .delete_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if missing!(e) => Ok(()),
            Err(e) => Err(api("DeleteAccessKey", target, e)),
        }
    }

    async fn ssh_keys(&self, user: &str, target: &str) -> Result<Vec<String>, ConnectorError> {
        let out = self
            .iam
            .list_ssh_public_keys()
            .user_name(user)
            .send()
            .await
            .map_err(|e| api("ListSSHPublicKeys", target, e))?;
        Ok(out
            .ssh_public_keys()
            .iter()
            .map(|k| k.ssh_public_key_id().to_owned())
            .collect())
    }

    /// Refuses unless the principal still carries the deny-all policy retirement put on it.
    async fn still_retired(&self, p: &IamPrincipal, target: &str) -> Result<(), ConnectorError> {
        if self.get_inline(p, DENY_ALL_POLICY, target).await?.is_none() {
            return Err(refused(
                target,
                format!("it no longer carries {DENY_ALL_POLICY} (re-enabled since it was retired)"),
            ));
        }
        Ok(())
    }

    async fn delete_user(&self, user: &str, target: &str) -> Result<Value, ConnectorError> {
        let p = IamPrincipal::User(user.to_owned());
        if !self.principal_exists(&p, target).await? {
            return Ok(json!({"existed": false}));
        }
        self.still_retired(&p, target).await?;
        let state = self.user_state(user, target).await?;
        let active: Vec<&str> = state
            .get("access_keys")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|k| k.get("status").and_then(Value::as_str) == Some("Active"))
                    .filter_map(|k| k.get("id")?.as_str())
                    .collect()
            })
            .unwrap_or_default();
        if !active.is_empty() {
            return Err(refused(
                target,
                format!("it has an Active access key ({})", active.join(", ")),
            ));
        }
        let iam = &self.iam;
        if state.pointer("/login_profile/exists") == Some(&Value::Bool(true)) {
            match iam.delete_login_profile().user_name(user).send().await {
                Ok(_) => {}
                Err(e) if missing!(e) => {}
                Err(e) => return Err(api("DeleteLoginProfile", target, e)),
            }
        }
        let keys = each(&state, "access_keys", "id");
        for k in &keys {
            self.delete_key(user, k, target).await?;
        }
        let certificates = each(&state, "signing_certificates", "id");
        for c in &certificates {
            iam.delete_signing_certificate()
                .user_name(user)
                .certificate_id(*c)
                .send()
                .await
                .map_err(|e| api("DeleteSigningCertificate", target, e))?;
        }
        let ssh = self.ssh_keys(user, target).await?;
        for k in &ssh {
            iam.delete_ssh_public_key()
                .user_name(user)
                .ssh_public_key_id(k)
                .send()
                .await
                .map_err(|e| api("DeleteSSHPublicKey", target, e))?;
        }
        let mfa = each(&state, "mfa_devices", "serial");
        for serial in &mfa {
            iam.deactivate_mfa_device()
                .user_name(user)
                .serial_number(*serial)
                .send()
                .await
                .map_err(|e| api("DeactivateMFADevice", target, e))?;
            // A virtual device is an IAM object of its own; a hardware one is not.
            if serial.contains(":mfa/") {
                match iam
                    .delete_virtual_mfa_device()
                    .serial_number(*serial)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e) if missing!(e) => {}
                    Err(e) => return Err(api("DeleteVirtualMFADevice", target, e)),
                }
            }
        }
        let inline = each(&state, "inline_policies", "name");
        for name in &inline {
            self.delete_inline(&p, name, target).await?;
        }
        let attached = each(&state, "attached_policies", "arn");
        for arn in &attached {
            iam.detach_user_policy()
                .user_name(user)
                .policy_arn(*arn)
                .send()
                .await
                .map_err(|e| api("DetachUserPolicy", target, e))?;
        }
        let groups = each(&state, "groups", "name");
        for g in &groups {
            iam.remove_user_from_group()
                .user_name(user)
                .group_name(*g)
                .send()
                .await
                .map_err(|e| api("RemoveUserFromGroup", target, e))?;
        }
        match iam.delete_user().user_name(user).send().await {
            Ok(_) => {}
            Err(e) if missing!(e) => {}
            Err(e) => return Err(api("DeleteUser", target, e)),
        }
        Ok(json!({
            "existed": true,
            "access_keys": keys,
            "signing_certificates": certificates,
            "ssh_public_keys": ssh,
            "mfa_devices": mfa,
            "inline_policies": inline,
            "attached_policies": attached,
            "groups": groups,
        }))
    }

    async fn delete_role(&self, role: &str, target: &str) -> Result<Value, ConnectorError> {
        let p = IamPrincipal::Role(role.to_owned());
        if !self.principal_exists(&p, target).await? {
            return Ok(json!({"existed": false}));
        }
        self.still_retired(&p, target).await?;
        let state = self.role_state(role, target).await?;
        let iam = &self.iam;
        let profiles = each(&state, "instance_profiles", "name");
        for name in &profiles {
            iam.remove_role_from_instance_profile()
                .role_name(role)
                .instance_profile_name(*name)
                .send()
                .await
                .map_err(|e| api("RemoveRoleFromInstanceProfile", target, e))?;
        }
        let inline = each(&state, "inline_policies", "name");
        for name in &inline {
            self.delete_inline(&p, name, target).await?;
        }
        let attached = each(&state, "attached_policies", "arn");
        for arn in &attached {
            iam.detach_role_policy()
                .role_name(role)
                .policy_arn(*arn)
                .send()
                .await
                .map_err(|e| api("DetachRolePolicy", target, e))?;
        }
        match iam.delete_role().role_name(role).send().await {
            Ok(_) => {}
            Err(e) if missing!(e) => {}
            Err(e) => return Err(api("DeleteRole", target, e)),
        }
        Ok(json!({
            "existed": true,
            "instance_profiles": profiles,
            "inline_policies": inline,
            "attached_policies": attached,
        }))
    }
}

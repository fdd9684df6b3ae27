//! The AWS side of a key rotation ([`crate::rotate`]): the user's keys, the Secrets Manager
//! secrets that hold a key id, and the rotation actions' snapshot/apply/verify/undo.
//!
//! Secret values are read into memory to search and rewrite them, never logged, returned or
//! put in an error. What `apply` returns (the step's `state`):
//! - `create_access_key`: `{"new_key_id": ID}` (undo deletes it);
//! - `update_secret_value` (Secrets Manager): `{"version_id": WRITTEN, "stage":
//!   "AWSPENDING"}`: the new value is staged, not current (undo takes the stage off);
//! - `verify_access_key`: `{"new_key_id": ID}`;
//! - `promote_secret_version`: `{"version_id": PROMOTED, "previous_version_id": ID,
//!   "tested_key_id": ID}`: undo moves `AWSCURRENT` back to the previous version.

use aws_sdk_iam::types::StatusType;
use aws_sdk_sts as sts;
use serde_json::{Value, json};

use super::client::{AwsConnector, api, precondition};
use crate::action::Action;
use crate::rotate::{self, SecretLocation, handoff};
use crate::{ConnectorError, Verified};

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";

/// One of a user's access keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub active: bool,
}

fn verified(ok: bool, observed: String) -> Verified {
    Verified { ok, observed }
}

impl AwsConnector {
    /// The user's access keys (ids and whether each is Active).
    pub async fn access_keys(&self, user: &str) -> Result<Vec<AccessKey>, ConnectorError> {
        let target = format!("user/{user}");
        let keys = self
            .iam
            .list_access_keys()
            .user_name(user)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListAccessKeys", &target, e))?;
        Ok(keys
            .iter()
            .filter_map(|k| {
                Some(AccessKey {
                    id: k.access_key_id()?.to_owned(),
                    active: k.status() == Some(&StatusType::Active),
                })
            })
            .collect())
    }

    /// The user an access key belongs to (`iam:GetAccessKeyLastUsed`).
    pub async fn key_user(&self, key_id: &str) -> Result<String, ConnectorError> {
        let out = self
            .iam
            .get_access_key_last_used()
            .access_key_id(key_id)
            .send()
            .await
            .map_err(|e| api("GetAccessKeyLastUsed", key_id, e))?;
        out.user_name()
            .map(str::to_owned)
            .ok_or_else(|| precondition(key_id, "no user owns this key"))
    }

    /// The Secrets Manager secrets whose current value contains `key_id` (names, sorted).
    /// Values are searched in memory and dropped; a secret that cannot be read is skipped.
    pub async fn secrets_containing(&self, key_id: &str) -> Result<Vec<String>, ConnectorError> {
        let pages = self
            .sm
            .list_secrets()
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListSecrets", "Secrets Manager", e))?;
        let mut out = Vec::new();
        for e in pages.iter().flat_map(|p| p.secret_list()) {
            let Some(name) = e.name() else { continue };
            if let Ok((value, _)) = self.current_value(name).await
                && value.contains(key_id)
            {
                out.push(name.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    /// The secret's `AWSCURRENT` string and version id (the stage is named: see moto's limits).
    async fn current_value(&self, secret: &str) -> Result<(String, String), ConnectorError> {
        self.value_at(secret, CURRENT).await
    }

    /// The string and version id staged `stage` (which must exist).
    async fn value_at(
        &self,
        secret: &str,
        stage: &str,
    ) -> Result<(String, String), ConnectorError> {
        let out = self
            .sm
            .get_secret_value()
            .secret_id(secret)
            .version_stage(stage)
            .send()
            .await
            .map_err(|e| api("GetSecretValue", secret, e))?;
        let value = out
            .secret_string()
            .ok_or_else(|| precondition(secret, "the secret has no string value"))?;
        Ok((
            value.to_owned(),
            out.version_id().unwrap_or_default().to_owned(),
        ))
    }

    /// The value and version id staged `stage`, if a version holds it.
    async fn staged_value(
        &self,
        secret: &str,
        stage: &str,
    ) -> Result<Option<(String, String)>, ConnectorError> {
        if self.version_with(secret, stage).await?.is_none() {
            return Ok(None);
        }
        self.value_at(secret, stage).await.map(Some)
    }

    /// testSecret + finishSecret: the key in the `AWSPENDING` version — read from the
    /// secret itself, so this also works in a process that did not create it — must
    /// answer `sts:GetCallerIdentity` as `user`; then `AWSCURRENT` moves to that version
    /// and `AWSPENDING` is taken off it. A re-run after the move finds it done.
    async fn promote(
        &self,
        user: &str,
        old: &str,
        secret_id: &str,
        target: &str,
    ) -> Result<Value, ConnectorError> {
        let Some((pending, version)) = self.staged_value(secret_id, PENDING).await? else {
            let (value, current) = self.current_value(secret_id).await?;
            if !value.contains(old)
                && let Some(id) = rotate::key_ids_in(&value).into_iter().find(|k| k != old)
            {
                let previous = self.version_with(secret_id, "AWSPREVIOUS").await?;
                return Ok(
                    json!({"version_id": current, "previous_version_id": previous, "tested_key_id": id}),
                );
            }
            return Err(precondition(
                target,
                "the secret has no AWSPENDING version to promote",
            ));
        };
        let Some(new_id) = rotate::key_ids_in(&pending).into_iter().find(|k| k != old) else {
            return Err(precondition(
                target,
                "the AWSPENDING version holds no new access key",
            ));
        };
        let Some(secret) = rotate::old_secret_in(&pending, &new_id) else {
            return Err(precondition(
                target,
                format!(
                    "the AWSPENDING version holds {new_id} but no secret access key next to it"
                ),
            ));
        };
        let key = handoff::NewKey {
            id: new_id.clone(),
            secret: handoff::Secret::new(secret),
        };
        let arn = self.caller_with(&key).await?;
        if arn.rsplit('/').next() != Some(user) || !arn.contains(":user/") {
            return Err(precondition(
                target,
                format!("the AWSPENDING key {new_id} answers {arn}, not user {user}: not promoted"),
            ));
        }
        let current = self.version_with(secret_id, CURRENT).await?;
        let mut stage = self
            .sm
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(CURRENT)
            .move_to_version_id(&version);
        if let Some(c) = &current {
            stage = stage.remove_from_version_id(c);
        }
        stage
            .send()
            .await
            .map_err(|e| api("UpdateSecretVersionStage", target, e))?;
        self.sm
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(PENDING)
            .remove_from_version_id(&version)
            .send()
            .await
            .map_err(|e| api("UpdateSecretVersionStage", target, e))?;
        Ok(json!({"version_id": version, "previous_version_id": current, "tested_key_id": new_id}))
    }

    /// The version that holds `stage`, per `DescribeSecret`.
    async fn version_with(
        &self,
        secret: &str,
        stage: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let out = self
            .sm
            .describe_secret()
            .secret_id(secret)
            .send()
            .await
            .map_err(|e| api("DescribeSecret", secret, e))?;
        Ok(out.version_ids_to_stages().and_then(|m| {
            m.iter()
                .find(|(_, stages)| stages.iter().any(|s| s == stage))
                .map(|(v, _)| v.clone())
        }))
    }

    pub(super) async fn rotation_snapshot(&self, action: &Action) -> Result<Value, ConnectorError> {
        let target = action.target();
        match action {
            Action::CreateAccessKey { user, .. } | Action::VerifyAccessKey { user, .. } => {
                self.user_state(user, &target).await
            }
            Action::UpdateSecretValue {
                location: SecretLocation::Secretsmanager { secret_id },
                ..
            }
            | Action::PromoteSecretVersion { secret_id, .. } => {
                // Metadata only: versions and stages, never a value.
                let out = self
                    .sm
                    .describe_secret()
                    .secret_id(secret_id)
                    .send()
                    .await
                    .map_err(|e| api("DescribeSecret", &target, e))?;
                Ok(json!({
                    "secret": out.arn().or(out.name()),
                    "versions": out.version_ids_to_stages(),
                }))
            }
            Action::UpdateSecretValue {
                location: SecretLocation::Kubernetes { .. } | SecretLocation::Vault { .. },
                ..
            }
            | Action::DenyAll { .. }
            | Action::RevokeSessions { .. }
            | Action::DeactivateAccessKey { .. }
            | Action::DeleteLoginProfile { .. }
            | Action::ListMfaDevices { .. }
            | Action::DenyWebIdentitySubject { .. }
            | Action::RemoveBindings { .. }
            | Action::DeleteTokenSecrets { .. }
            | Action::RestartPods { .. }
            | Action::BlueGreen { .. }
            | Action::DeleteBinding { .. }
            | Action::RestoreBaseline { .. }
            | Action::DisableVaultEntity { .. }
            | Action::RevokeVaultToken { .. }
            | Action::RevokeVaultLeases { .. }
            | Action::IssueVaultToken { .. }
            | Action::WriteVaultToken { .. }
            | Action::VerifyVaultToken { .. }
            | Action::Delete { .. }
            | Action::AttachPolicy { .. }
            | Action::AddToGroup { .. }
            | Action::CreateBinding { .. }
            | Action::Review { .. } => Err(not_rotation(action)),
        }
    }

    pub(super) async fn rotation_apply(&self, action: &Action) -> Result<Value, ConnectorError> {
        let target = action.target();
        match action {
            Action::CreateAccessKey { user, replaces, .. } => {
                self.create_key(user, replaces, &target).await
            }
            Action::UpdateSecretValue {
                user,
                replaces,
                location: SecretLocation::Secretsmanager { secret_id },
            } => {
                let new = handoff::get(user, replaces)
                    .ok_or_else(|| precondition(&target, rotate::lost_secret(user, replaces)))?;
                if let Some((pending, version)) = self.staged_value(secret_id, PENDING).await?
                    && pending.contains(&new.id)
                {
                    // Written by an earlier run of this step.
                    return Ok(json!({"version_id": version, "stage": PENDING}));
                }
                let (value, current) = self.current_value(secret_id).await?;
                if value.contains(&new.id) {
                    // Written and promoted by an earlier run of this rotation (a process
                    // killed before it deactivated the old key): nothing left to stage.
                    return Ok(json!({"version_id": current, "stage": CURRENT}));
                }
                let rewritten = rotate::rewrite(
                    &[(String::new(), value)],
                    replaces,
                    &new.id,
                    new.secret.expose(),
                )
                .map_err(|e| precondition(&target, e.to_string()))?;
                let Some((_, text)) = rewritten.into_iter().next() else {
                    return Err(precondition(&target, "nothing to write"));
                };
                let out = self
                    .sm
                    .put_secret_value()
                    .secret_id(secret_id)
                    .secret_string(text)
                    .version_stages(PENDING)
                    .send()
                    .await
                    .map_err(|e| api("PutSecretValue", &target, e))?;
                Ok(json!({"version_id": out.version_id(), "stage": PENDING}))
            }
            Action::PromoteSecretVersion {
                user,
                replaces,
                secret_id,
            } => self.promote(user, replaces, secret_id, &target).await,
            Action::VerifyAccessKey { user, replaces, .. } => {
                let new = handoff::get(user, replaces)
                    .ok_or_else(|| precondition(&target, rotate::lost_secret(user, replaces)))?;
                Ok(json!({"new_key_id": new.id}))
            }
            Action::UpdateSecretValue {
                location: SecretLocation::Kubernetes { .. } | SecretLocation::Vault { .. },
                ..
            }
            | Action::DenyAll { .. }
            | Action::RevokeSessions { .. }
            | Action::DeactivateAccessKey { .. }
            | Action::DeleteLoginProfile { .. }
            | Action::ListMfaDevices { .. }
            | Action::DenyWebIdentitySubject { .. }
            | Action::RemoveBindings { .. }
            | Action::DeleteTokenSecrets { .. }
            | Action::RestartPods { .. }
            | Action::BlueGreen { .. }
            | Action::DeleteBinding { .. }
            | Action::RestoreBaseline { .. }
            | Action::DisableVaultEntity { .. }
            | Action::RevokeVaultToken { .. }
            | Action::RevokeVaultLeases { .. }
            | Action::IssueVaultToken { .. }
            | Action::WriteVaultToken { .. }
            | Action::VerifyVaultToken { .. }
            | Action::Delete { .. }
            | Action::AttachPolicy { .. }
            | Action::AddToGroup { .. }
            | Action::CreateBinding { .. }
            | Action::Review { .. } => Err(not_rotation(action)),
        }
    }

    /// Creates the new key and hands its secret to [`handoff`]. A re-run in the same process
    /// finds the key it made; a user holding two keys is refused (see [`crate::rotate`]).
    async fn create_key(
        &self,
        user: &str,
        old: &str,
        target: &str,
    ) -> Result<Value, ConnectorError> {
        let keys = self.access_keys(user).await?;
        if let Some(held) = handoff::get(user, old)
            && keys.iter().any(|k| k.id == held.id)
        {
            return Ok(json!({"new_key_id": held.id}));
        }
        match keys.iter().find(|k| k.id == old) {
            None => {
                return Err(precondition(
                    target,
                    format!("{user} has no access key {old}"),
                ));
            }
            Some(k) if !k.active => {
                return Err(precondition(
                    target,
                    format!("access key {old} is not Active"),
                ));
            }
            Some(_) => {}
        }
        if keys.len() >= 2 {
            let list: Vec<String> = keys
                .iter()
                .map(|k| format!("{} {}", k.id, if k.active { "Active" } else { "Inactive" }))
                .collect();
            return Err(precondition(
                target,
                format!(
                    "{user} already has two access keys ({}), the most IAM allows: delete the one not in use (`aws iam delete-access-key --user-name {user} --access-key-id ID`) and rotate again",
                    list.join(", ")
                ),
            ));
        }
        let out = self
            .iam
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .map_err(|e| api("CreateAccessKey", target, e))?;
        let key = out
            .access_key()
            .ok_or_else(|| precondition(target, "CreateAccessKey returned no key"))?;
        let id = key.access_key_id().to_owned();
        handoff::put(
            user,
            old,
            handoff::NewKey {
                id: id.clone(),
                secret: handoff::Secret::new(key.secret_access_key().to_owned()),
            },
        );
        Ok(json!({"new_key_id": id}))
    }

    pub(super) async fn rotation_verify(
        &self,
        action: &Action,
    ) -> Result<Verified, ConnectorError> {
        let target = action.target();
        match action {
            Action::CreateAccessKey { user, replaces, .. } => {
                let Some(new) = handoff::get(user, replaces) else {
                    return Ok(verified(false, rotate::lost_secret(user, replaces)));
                };
                let status = self.key_status(user, &new.id, &target).await?;
                Ok(verified(
                    status == StatusType::Active,
                    format!("access key {} of {user} is {}", new.id, status.as_str()),
                ))
            }
            Action::UpdateSecretValue {
                user,
                replaces,
                location: SecretLocation::Secretsmanager { secret_id },
            } => {
                let Some(new) = handoff::get(user, replaces) else {
                    return Ok(verified(false, rotate::lost_secret(user, replaces)));
                };
                let staged = match self.staged_value(secret_id, PENDING).await? {
                    Some((value, version)) if value.contains(&new.id) => Some((value, version)),
                    _ => None,
                };
                let Some((value, version)) = staged else {
                    // Promoted already by an earlier run: AWSCURRENT holds the new key.
                    let (value, version) = self.current_value(secret_id).await?;
                    let ok = value.contains(&new.id) && !value.contains(replaces.as_str());
                    return Ok(verified(
                        ok,
                        format!(
                            "AWSCURRENT of {secret_id} (version {version}) {} key {} (no AWSPENDING version holds it)",
                            if ok { "holds" } else { "does not hold" },
                            new.id
                        ),
                    ));
                };
                let ok = value.contains(&new.id) && !value.contains(replaces.as_str());
                Ok(verified(
                    ok,
                    format!(
                        "AWSPENDING of {secret_id} (version {version}) {} key {}",
                        if ok { "holds" } else { "does not hold" },
                        new.id
                    ),
                ))
            }
            Action::PromoteSecretVersion {
                replaces,
                secret_id,
                ..
            } => {
                let (value, version) = self.current_value(secret_id).await?;
                let ok = !value.contains(replaces.as_str())
                    && rotate::key_ids_in(&value).iter().any(|k| k != replaces);
                Ok(verified(
                    ok,
                    format!(
                        "AWSCURRENT of {secret_id} (version {version}) {} the new key",
                        if ok { "holds" } else { "does not hold" },
                    ),
                ))
            }
            Action::VerifyAccessKey { user, replaces, .. } => {
                let Some(new) = handoff::get(user, replaces) else {
                    return Ok(verified(false, rotate::lost_secret(user, replaces)));
                };
                let arn = self.caller_with(&new).await?;
                let ok = arn.rsplit('/').next() == Some(user.as_str()) && arn.contains(":user/");
                Ok(verified(
                    ok,
                    format!("GetCallerIdentity with key {} answers {arn}", new.id),
                ))
            }
            Action::UpdateSecretValue {
                location: SecretLocation::Kubernetes { .. } | SecretLocation::Vault { .. },
                ..
            }
            | Action::DenyAll { .. }
            | Action::RevokeSessions { .. }
            | Action::DeactivateAccessKey { .. }
            | Action::DeleteLoginProfile { .. }
            | Action::ListMfaDevices { .. }
            | Action::DenyWebIdentitySubject { .. }
            | Action::RemoveBindings { .. }
            | Action::DeleteTokenSecrets { .. }
            | Action::RestartPods { .. }
            | Action::BlueGreen { .. }
            | Action::DeleteBinding { .. }
            | Action::RestoreBaseline { .. }
            | Action::DisableVaultEntity { .. }
            | Action::RevokeVaultToken { .. }
            | Action::RevokeVaultLeases { .. }
            | Action::IssueVaultToken { .. }
            | Action::WriteVaultToken { .. }
            | Action::VerifyVaultToken { .. }
            | Action::Delete { .. }
            | Action::AttachPolicy { .. }
            | Action::AddToGroup { .. }
            | Action::CreateBinding { .. }
            | Action::Review { .. } => Err(not_rotation(action)),
        }
    }

    /// `sts:GetCallerIdentity` signed with the new key (same endpoint and region).
    async fn caller_with(&self, key: &handoff::NewKey) -> Result<String, ConnectorError> {
        let credentials = sts::config::Credentials::new(
            key.id.clone(),
            key.secret.expose().to_owned(),
            None,
            None,
            "keyward-rotation",
        );
        let config = self
            .sts
            .config()
            .to_builder()
            .credentials_provider(sts::config::SharedCredentialsProvider::new(credentials))
            .build();
        let out = sts::Client::from_conf(config)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| api("GetCallerIdentity", &key.id, e))?;
        Ok(out.arn().unwrap_or_default().to_owned())
    }

    pub(super) async fn rotation_undo(
        &self,
        action: &Action,
        state: &Value,
    ) -> Result<Verified, ConnectorError> {
        let target = action.target();
        match action {
            Action::CreateAccessKey { user, replaces, .. } => {
                let Some(id) = state.get("new_key_id").and_then(Value::as_str) else {
                    return Err(precondition(&target, "the step's result names no new key"));
                };
                self.delete_key(user, id, &target).await?;
                handoff::forget(user, replaces);
                let gone = !self.access_keys(user).await?.iter().any(|k| k.id == id);
                Ok(verified(
                    gone,
                    format!(
                        "access key {id} of {user} {}",
                        if gone { "deleted" } else { "still listed" }
                    ),
                ))
            }
            Action::UpdateSecretValue {
                replaces,
                location: SecretLocation::Secretsmanager { secret_id },
                ..
            } => {
                let Some(written) = state.get("version_id").and_then(Value::as_str) else {
                    return Err(precondition(&target, "the step's result names no version"));
                };
                if state.get("stage").and_then(Value::as_str) == Some(CURRENT) {
                    return Ok(verified(
                        true,
                        format!(
                            "version {written} of {secret_id} was promoted by an earlier run: the promote step's undo moves AWSCURRENT back"
                        ),
                    ));
                }
                if self.version_with(secret_id, PENDING).await?.as_deref() == Some(written) {
                    self.sm
                        .update_secret_version_stage()
                        .secret_id(secret_id)
                        .version_stage(PENDING)
                        .remove_from_version_id(written)
                        .send()
                        .await
                        .map_err(|e| api("UpdateSecretVersionStage", &target, e))?;
                }
                let (value, now) = self.current_value(secret_id).await?;
                let staged = self.version_with(secret_id, PENDING).await?;
                let ok = now != written
                    && staged.as_deref() != Some(written)
                    && value.contains(replaces.as_str());
                Ok(verified(
                    ok,
                    format!(
                        "AWSCURRENT of {secret_id} is version {now}, holding the old key; version {written} is {}",
                        if staged.as_deref() == Some(written) {
                            "still AWSPENDING"
                        } else {
                            "unstaged"
                        }
                    ),
                ))
            }
            Action::PromoteSecretVersion {
                replaces,
                secret_id,
                ..
            } => {
                let version = |k: &str| state.get(k).and_then(Value::as_str).map(str::to_owned);
                let (Some(promoted), Some(previous)) =
                    (version("version_id"), version("previous_version_id"))
                else {
                    return Err(precondition(&target, "the step's result names no versions"));
                };
                self.sm
                    .update_secret_version_stage()
                    .secret_id(secret_id)
                    .version_stage(CURRENT)
                    .move_to_version_id(&previous)
                    .remove_from_version_id(&promoted)
                    .send()
                    .await
                    .map_err(|e| api("UpdateSecretVersionStage", &target, e))?;
                let (value, now) = self.current_value(secret_id).await?;
                let ok = now == previous && value.contains(replaces.as_str());
                Ok(verified(
                    ok,
                    format!(
                        "AWSCURRENT of {secret_id} is version {now} (before the rotation: {previous})"
                    ),
                ))
            }
            Action::VerifyAccessKey { .. } => Ok(verified(
                true,
                "nothing to undo: the key was only used".into(),
            )),
            Action::UpdateSecretValue {
                location: SecretLocation::Kubernetes { .. } | SecretLocation::Vault { .. },
                ..
            }
            | Action::DenyAll { .. }
            | Action::RevokeSessions { .. }
            | Action::DeactivateAccessKey { .. }
            | Action::DeleteLoginProfile { .. }
            | Action::ListMfaDevices { .. }
            | Action::DenyWebIdentitySubject { .. }
            | Action::RemoveBindings { .. }
            | Action::DeleteTokenSecrets { .. }
            | Action::RestartPods { .. }
            | Action::BlueGreen { .. }
            | Action::DeleteBinding { .. }
            | Action::RestoreBaseline { .. }
            | Action::DisableVaultEntity { .. }
            | Action::RevokeVaultToken { .. }
            | Action::RevokeVaultLeases { .. }
            | Action::IssueVaultToken { .. }
            | Action::WriteVaultToken { .. }
            | Action::VerifyVaultToken { .. }
            | Action::Delete { .. }
            | Action::AttachPolicy { .. }
            | Action::AddToGroup { .. }
            | Action::CreateBinding { .. }
            | Action::Review { .. } => Err(not_rotation(action)),
        }
    }
}

fn not_rotation(action: &Action) -> ConnectorError {
    precondition(
        &action.target(),
        format!("`{}` is not an AWS rotation action", action.name()),
    )
}

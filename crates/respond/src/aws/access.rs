//! Time-bound access grants on IAM: a managed policy attached to a user or role, a user added
//! to a group. Each apply says whether the grant was in effect already (`{"already": true}`):
//! then undo leaves it, since the access did not come from the grant.

use serde_json::{Value, json};

use super::client::{AwsConnector, api, missing, precondition};
use crate::action::{Action, IamPrincipal};
use crate::{ConnectorError, Verified};

/// An access action, parsed once.
enum Access<'a> {
    Policy(&'a IamPrincipal, &'a str),
    Group(&'a str, &'a str),
}

fn parse(action: &Action) -> Result<Access<'_>, ConnectorError> {
    match action {
        Action::AttachPolicy {
            principal,
            policy_arn,
            ..
        } => Ok(Access::Policy(principal, policy_arn)),
        Action::AddToGroup { user, group, .. } => Ok(Access::Group(user, group)),
        Action::DenyAll { .. }
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
        | Action::CreateAccessKey { .. }
        | Action::UpdateSecretValue { .. }
        | Action::PromoteSecretVersion { .. }
        | Action::VerifyAccessKey { .. }
        | Action::RestoreBaseline { .. }
        | Action::DisableVaultEntity { .. }
        | Action::RevokeVaultToken { .. }
        | Action::RevokeVaultLeases { .. }
        | Action::IssueVaultToken { .. }
        | Action::WriteVaultToken { .. }
        | Action::VerifyVaultToken { .. }
        | Action::Delete { .. }
        | Action::CreateBinding { .. }
        | Action::Review { .. } => Err(precondition(
            &action.target(),
            format!("`{}` is not an IAM access grant", action.name()),
        )),
    }
}

fn verified(ok: bool, observed: String) -> Verified {
    Verified { ok, observed }
}

impl AwsConnector {
    /// The principal's state before the grant (its policies, groups, keys: `forensics.rs`).
    pub(super) async fn access_snapshot(&self, action: &Action) -> Result<Value, ConnectorError> {
        let target = action.target();
        match parse(action)? {
            Access::Policy(IamPrincipal::Role(role), _) => self.role_state(role, &target).await,
            Access::Policy(IamPrincipal::User(user), _) => self.user_state(user, &target).await,
            Access::Group(user, _) => self.user_state(user, &target).await,
        }
    }

    /// Attaches the policy or adds the user to the group, after checking both ends exist.
    pub(super) async fn access_apply(&self, action: &Action) -> Result<Value, ConnectorError> {
        let target = action.target();
        match parse(action)? {
            Access::Policy(p, arn) => {
                if !self.principal_exists(p, &target).await? {
                    return Err(precondition(
                        &target,
                        format!("the {} does not exist", p.noun()),
                    ));
                }
                match self.iam.get_policy().policy_arn(arn).send().await {
                    Ok(_) => {}
                    Err(e) if missing!(e) => {
                        return Err(precondition(&target, format!("no managed policy `{arn}`")));
                    }
                    Err(e) => return Err(api("GetPolicy", &target, e)),
                }
                let already = self.attached(p, arn, &target).await?;
                if !already {
                    self.attach(p, arn, true, &target).await?;
                }
                Ok(json!({ "already": already }))
            }
            Access::Group(user, group) => {
                if !self
                    .principal_exists(&IamPrincipal::User(user.to_owned()), &target)
                    .await?
                {
                    return Err(precondition(&target, "the user does not exist"));
                }
                match self.iam.get_group().group_name(group).send().await {
                    Ok(_) => {}
                    Err(e) if missing!(e) => {
                        return Err(precondition(&target, format!("no group `{group}`")));
                    }
                    Err(e) => return Err(api("GetGroup", &target, e)),
                }
                let already = self.member(user, group, &target).await?;
                if !already {
                    self.iam
                        .add_user_to_group()
                        .user_name(user)
                        .group_name(group)
                        .send()
                        .await
                        .map_err(|e| api("AddUserToGroup", &target, e))?;
                }
                Ok(json!({ "already": already }))
            }
        }
    }

    /// Reads the grant back: the policy among the principal's attached ones, the group among
    /// the user's.
    pub(super) async fn access_verify(&self, action: &Action) -> Result<Verified, ConnectorError> {
        let target = action.target();
        Ok(match parse(action)? {
            Access::Policy(p, arn) => {
                let on = self.attached(p, arn, &target).await?;
                verified(
                    on,
                    format!(
                        "{arn} {} attached to {target}",
                        if on { "is" } else { "is not" }
                    ),
                )
            }
            Access::Group(user, group) => {
                let on = self.member(user, group, &target).await?;
                verified(
                    on,
                    format!(
                        "{user} {} in group {group}",
                        if on { "is" } else { "is not" }
                    ),
                )
            }
        })
    }

    /// Revokes the grant (detach, remove from the group) and reads it back; what was in
    /// effect before the grant is left.
    pub(super) async fn access_undo(
        &self,
        action: &Action,
        state: &Value,
    ) -> Result<Verified, ConnectorError> {
        let target = action.target();
        let already = state
            .get("already")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match parse(action)? {
            Access::Policy(p, arn) => {
                if already {
                    return Ok(verified(
                        true,
                        format!("{arn} was attached to {target} before the grant: left so"),
                    ));
                }
                self.attach(p, arn, false, &target).await?;
                let on = self.attached(p, arn, &target).await?;
                Ok(verified(
                    !on,
                    format!(
                        "{arn} {} attached to {target}",
                        if on { "is still" } else { "is no longer" }
                    ),
                ))
            }
            Access::Group(user, group) => {
                if already {
                    return Ok(verified(
                        true,
                        format!("{user} was in group {group} before the grant: left so"),
                    ));
                }
                match self
                    .iam
                    .remove_user_from_group()
                    .user_name(user)
                    .group_name(group)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e) if missing!(e) => {}
                    Err(e) => return Err(api("RemoveUserFromGroup", &target, e)),
                }
                let on = self.member(user, group, &target).await?;
                Ok(verified(
                    !on,
                    format!(
                        "{user} {} in group {group}",
                        if on { "is still" } else { "is no longer" }
                    ),
                ))
            }
        }
    }

    /// Whether the managed policy is attached to the principal.
    async fn attached(
        &self,
        p: &IamPrincipal,
        arn: &str,
        target: &str,
    ) -> Result<bool, ConnectorError> {
        let arns: Vec<String> = match p {
            IamPrincipal::User(name) => self
                .iam
                .list_attached_user_policies()
                .user_name(name)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| api("ListAttachedUserPolicies", target, e))?
                .iter()
                .filter_map(|a| a.policy_arn().map(str::to_owned))
                .collect(),
            IamPrincipal::Role(name) => self
                .iam
                .list_attached_role_policies()
                .role_name(name)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| api("ListAttachedRolePolicies", target, e))?
                .iter()
                .filter_map(|a| a.policy_arn().map(str::to_owned))
                .collect(),
        };
        Ok(arns.iter().any(|a| a == arn))
    }

    /// Whether the user is in the group.
    async fn member(&self, user: &str, group: &str, target: &str) -> Result<bool, ConnectorError> {
        let groups = self
            .iam
            .list_groups_for_user()
            .user_name(user)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListGroupsForUser", target, e))?;
        Ok(groups.iter().any(|g| g.group_name() == group))
    }
}

//! AWS: the policy documents Keyward writes, the equivalent `aws` commands, and (with the
//! `aws` feature) the connector in `client.rs` that carries them out through the SDK;
//! `boundary.rs` is the session policy that caps an AI agent's minted credentials, and
//! `mint.rs` (feature `aws`) mints them through STS, and `revoked.rs` is the deny that ends
//! one of those sessions before its expiry.

use keyward_model::time::Millis;
use serde_json::json;

use crate::action::{
    Action, DENY_ALL_POLICY, DENY_SUBJECT_SID, REVOKE_SESSIONS_POLICY, shell_quote as q,
};

#[cfg(feature = "aws")]
mod access;
mod boundary;
#[cfg(feature = "aws")]
mod campaign;
#[cfg(feature = "aws")]
mod client;
#[cfg(feature = "aws")]
mod document;
#[cfg(feature = "aws")]
mod forensics;
#[cfg(feature = "aws")]
mod mint;
#[cfg(feature = "aws")]
mod purge;
#[cfg(feature = "aws")]
mod restore;
#[cfg(feature = "aws")]
mod revoked;
#[cfg(feature = "aws")]
mod rotate;
#[cfg(feature = "aws")]
mod s3;
pub use boundary::{SESSION_POLICY_MAX_CHARS, agent_boundary_policy};
#[cfg(feature = "aws")]
pub use campaign::{SecretIndex, UserKeys};
#[cfg(feature = "aws")]
pub use client::{AwsConnector, env_config, http_client, sdk, static_config};
#[cfg(feature = "aws")]
pub use mint::{AssumeFor, RevokedSession, TemporaryCredentials};
#[cfg(feature = "aws")]
pub use revoked::{REVOKED_SESSIONS_POLICY, ROLE_INLINE_MAX_CHARS, revoked_sessions_document};
#[cfg(feature = "aws")]
pub use s3::{S3Object, S3Tree, parse_url as parse_s3_url};

/// The deny-all inline policy.
pub fn deny_all_document() -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "KeywardContainment", "Effect": "Deny", "Action": "*", "Resource": "*"}]
    })
}

/// The inline policy denying sessions issued before `before` (RFC 3339, UTC).
pub fn revoke_sessions_document(before: Millis) -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "KeywardRevokeOlderSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": rfc3339(before)}}
        }]
    })
}

/// The trust-policy statement that denies one web-identity subject.
pub fn deny_subject_statement(
    account: Option<&str>,
    provider: &str,
    subject: &str,
) -> serde_json::Value {
    let federated = match account {
        Some(a) => format!("arn:aws:iam::{a}:oidc-provider/{provider}"),
        None => format!("arn:aws:iam::ACCOUNT:oidc-provider/{provider}"),
    };
    json!({
        "Sid": DENY_SUBJECT_SID,
        "Effect": "Deny",
        "Principal": {"Federated": federated},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringLike": {format!("{provider}:sub"): subject}}
    })
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(ms: Millis) -> String {
    keyward_model::time::format(ms.div_euclid(1000) * 1000)
}

fn compact(v: &serde_json::Value) -> String {
    keyward_model::json::sorted(v)
}

pub(crate) fn commands(action: &Action) -> Vec<String> {
    match action {
        Action::DenyAll { principal, .. } => vec![format!(
            "aws iam put-{noun}-policy --{noun}-name {name} --policy-name {DENY_ALL_POLICY} --policy-document {doc}",
            noun = principal.noun(),
            name = q(principal.name()),
            doc = q(&compact(&deny_all_document())),
        )],
        Action::RevokeSessions {
            role,
            issued_before,
            ..
        } => vec![format!(
            "aws iam put-role-policy --role-name {} --policy-name {REVOKE_SESSIONS_POLICY} --policy-document {}",
            q(role),
            q(&compact(&revoke_sessions_document(*issued_before))),
        )],
        Action::DeactivateAccessKey { user, key_id, .. } => vec![format!(
            "aws iam update-access-key --user-name {} --access-key-id {} --status Inactive",
            q(user),
            q(key_id)
        )],
        Action::CreateAccessKey { user, .. } => vec![format!(
            "aws iam create-access-key --user-name {}  # its secret goes only where the old key lives",
            q(user)
        )],
        Action::PromoteSecretVersion { secret_id, .. } => vec![
            format!(
                "aws secretsmanager describe-secret --secret-id {} --query VersionIdsToStages  # PENDING: the version staged AWSPENDING, CURRENT: AWSCURRENT",
                q(secret_id)
            ),
            format!(
                "aws secretsmanager get-secret-value --secret-id {} --version-stage AWSPENDING  # test: its key answers aws sts get-caller-identity as the user",
                q(secret_id)
            ),
            format!(
                "aws secretsmanager update-secret-version-stage --secret-id {} --version-stage AWSCURRENT --move-to-version-id PENDING --remove-from-version-id CURRENT",
                q(secret_id)
            ),
            format!(
                "aws secretsmanager update-secret-version-stage --secret-id {} --version-stage AWSPENDING --remove-from-version-id PENDING",
                q(secret_id)
            ),
        ],
        Action::VerifyAccessKey { .. } => vec![
            "AWS_ACCESS_KEY_ID=NEW_KEY_ID AWS_SECRET_ACCESS_KEY=… aws sts get-caller-identity  # answers the user's ARN".into(),
        ],
        Action::DeleteLoginProfile { user, .. } => vec![
            format!("aws iam get-login-profile --user-name {}", q(user)),
            format!("aws iam delete-login-profile --user-name {}", q(user)),
        ],
        Action::ListMfaDevices { user, .. } => {
            vec![format!("aws iam list-mfa-devices --user-name {}", q(user))]
        }
        Action::DenyWebIdentitySubject {
            account,
            role,
            provider,
            subject,
        } => vec![
            format!(
                "aws iam get-role --role-name {} --query Role.AssumeRolePolicyDocument --output json > trust.json",
                q(role)
            ),
            format!(
                "# add to trust.json's Statement: {}",
                compact(&deny_subject_statement(
                    account.as_deref(),
                    provider,
                    subject
                ))
            ),
            format!(
                "aws iam update-assume-role-policy --role-name {} --policy-document file://trust.json",
                q(role)
            ),
        ],
        Action::AttachPolicy {
            principal,
            policy_arn,
            ..
        } => vec![format!(
            "aws iam attach-{noun}-policy --{noun}-name {name} --policy-arn {arn}",
            noun = principal.noun(),
            name = q(principal.name()),
            arn = q(policy_arn),
        )],
        Action::AddToGroup { user, group, .. } => vec![format!(
            "aws iam add-user-to-group --user-name {} --group-name {}",
            q(user),
            q(group)
        )],
        _ => Vec::new(),
    }
}

pub(crate) fn undo_commands(action: &Action) -> Vec<String> {
    match action {
        Action::DenyAll { principal, .. } => vec![format!(
            "aws iam delete-{noun}-policy --{noun}-name {name} --policy-name {DENY_ALL_POLICY}",
            noun = principal.noun(),
            name = q(principal.name()),
        )],
        Action::RevokeSessions { role, .. } => vec![format!(
            "aws iam delete-role-policy --role-name {} --policy-name {REVOKE_SESSIONS_POLICY}",
            q(role)
        )],
        Action::DeactivateAccessKey { user, key_id, .. } => vec![format!(
            "aws iam update-access-key --user-name {} --access-key-id {} --status Active",
            q(user),
            q(key_id)
        )],
        Action::CreateAccessKey { user, .. } => vec![format!(
            "aws iam delete-access-key --user-name {} --access-key-id NEW_KEY_ID  # the step's result names it",
            q(user)
        )],
        Action::PromoteSecretVersion { secret_id, .. } => vec![format!(
            "aws secretsmanager update-secret-version-stage --secret-id {} --version-stage AWSCURRENT --move-to-version-id PREVIOUS --remove-from-version-id PROMOTED  # both version ids are in the step's result",
            q(secret_id)
        )],
        Action::DeleteLoginProfile { user, .. } => vec![format!(
            "# a removed password cannot be restored: aws iam create-login-profile --user-name {} --password-reset-required --password …",
            q(user)
        )],
        Action::DenyWebIdentitySubject { role, .. } => vec![format!(
            "aws iam update-assume-role-policy --role-name {} --policy-document file://trust-before.json  # from the plan's evidence",
            q(role)
        )],
        Action::AttachPolicy {
            principal,
            policy_arn,
            ..
        } => vec![format!(
            "aws iam detach-{noun}-policy --{noun}-name {name} --policy-arn {arn}  # unless it was attached before the grant",
            noun = principal.noun(),
            name = q(principal.name()),
            arn = q(policy_arn),
        )],
        Action::AddToGroup { user, group, .. } => vec![format!(
            "aws iam remove-user-from-group --user-name {} --group-name {}  # unless it was a member before the grant",
            q(user),
            q(group)
        )],
        _ => Vec::new(),
    }
}

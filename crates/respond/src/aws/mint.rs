//! Short-lived AWS credentials minted on a workload's behalf: STS `AssumeRole` as the
//! connector's principal, with the workload's session name, source identity and session
//! tags (what CloudTrail shows for every call it makes), and optionally a session policy
//! that caps the session below the role (`super::agent_boundary_policy` for AI agents).
//!
//! The secret access key and session token are returned to the caller and nowhere else:
//! never logged, never in an error; [`TemporaryCredentials`]'s `Debug` hides them.
//! [`AwsConnector::revoke_session`] ends one such session before its expiry.

use aws_sdk_sts as sts;
use keyward_model::time::Millis;

use super::boundary::SESSION_POLICY_MAX_CHARS;
use super::client::{AwsConnector, api, precondition};
use crate::ConnectorError;
use crate::action::IamPrincipal;

/// STS's bounds on a session's duration, in seconds (the role's maximum may be lower).
const MIN_DURATION_SECS: u32 = 900;
const MAX_DURATION_SECS: u32 = 43_200;
/// STS's limit on session tags per call.
const MAX_SESSION_TAGS: usize = 50;

/// An `AssumeRole` on a workload's behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeFor {
    pub role_arn: String,
    /// 2–64 characters of letters, digits and `+=,.@_-` (CloudTrail shows it).
    pub session_name: String,
    /// 900 to 43,200 seconds, within the role's maximum session duration.
    pub duration_secs: u32,
    /// Kept by STS across role chaining and shown in CloudTrail (`sts:SourceIdentity`).
    pub source_identity: Option<String>,
    /// Session tags (`aws:PrincipalTag/KEY` in policies).
    pub session_tags: Vec<(String, String)>,
    /// A session policy (JSON): the session can do only what both it and the role allow.
    pub session_policy: Option<String>,
}

/// Credentials STS issued. `Debug` hides the secret access key and the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryCredentials {
    /// `ASIA…`.
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: Millis,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub assumed_role_arn: String,
    /// `ROLEID:SESSION`.
    pub assumed_role_id: String,
}

impl std::fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"‹redacted›")
            .field("session_token", &"‹redacted›")
            .field("expiration", &self.expiration)
            .field("assumed_role_arn", &self.assumed_role_arn)
            .field("assumed_role_id", &self.assumed_role_id)
            .finish()
    }
}

/// What STS would refuse, said before the call and in our words.
fn check(req: &AssumeFor) -> Result<(), ConnectorError> {
    let target = &req.role_arn;
    let name_ok = (2..=64).contains(&req.session_name.len())
        && req
            .session_name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+=,.@_-".contains(&c));
    if !name_ok {
        return Err(precondition(
            target,
            format!(
                "session name `{}` must be 2 to 64 letters, digits or `+=,.@_-`",
                req.session_name
            ),
        ));
    }
    if !(MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&req.duration_secs) {
        return Err(precondition(
            target,
            format!(
                "duration {} s is outside STS's {MIN_DURATION_SECS}..={MAX_DURATION_SECS} s",
                req.duration_secs
            ),
        ));
    }
    if req.session_tags.len() > MAX_SESSION_TAGS {
        return Err(precondition(
            target,
            format!(
                "{} session tags (STS takes at most {MAX_SESSION_TAGS})",
                req.session_tags.len()
            ),
        ));
    }
    if let Some(p) = &req.session_policy {
        let chars = p.chars().count();
        if chars > SESSION_POLICY_MAX_CHARS {
            return Err(precondition(
                target,
                format!(
                    "the session policy has {chars} characters (STS takes at most {SESSION_POLICY_MAX_CHARS})"
                ),
            ));
        }
    }
    Ok(())
}

fn missing(what: &str, target: &str) -> ConnectorError {
    ConnectorError::Api {
        call: "AssumeRole".into(),
        target: target.to_owned(),
        message: format!("the answer has no {what}"),
    }
}

impl AwsConnector {
    /// `sts:AssumeRole` of `req.role_arn` for a workload, as the connector's principal
    /// (whom the role's trust policy must allow, with `sts:TagSession` and
    /// `sts:SetSourceIdentity` when tags or a source identity are given).
    pub async fn assume_role_for(
        &self,
        req: &AssumeFor,
    ) -> Result<TemporaryCredentials, ConnectorError> {
        check(req)?;
        let target = req.role_arn.as_str();
        let mut call = self
            .sts
            .assume_role()
            .role_arn(&req.role_arn)
            .role_session_name(&req.session_name)
            .duration_seconds(i32::try_from(req.duration_secs).unwrap_or(i32::MAX))
            .set_source_identity(req.source_identity.clone())
            .set_policy(req.session_policy.clone());
        for (key, value) in &req.session_tags {
            let tag = sts::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| precondition(target, format!("session tag `{key}`: {e}")))?;
            call = call.tags(tag);
        }
        let out = call
            .send()
            .await
            .map_err(|e| api("AssumeRole", target, e))?;
        let c = out
            .credentials()
            .ok_or_else(|| missing("credentials", target))?;
        let user = out
            .assumed_role_user()
            .ok_or_else(|| missing("assumed-role user", target))?;
        let expiration = c
            .expiration()
            .to_millis()
            .map_err(|_| missing("usable expiration", target))?;
        Ok(TemporaryCredentials {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: c.secret_access_key().to_owned(),
            session_token: c.session_token().to_owned(),
            expiration,
            assumed_role_arn: user.arn().to_owned(),
            assumed_role_id: user.assumed_role_id().to_owned(),
        })
    }
}

/// A session ended before its expiry ([`AwsConnector::revoke_session`]): the session and
/// the role's [`super::REVOKED_SESSIONS_POLICY`] as it was (`None`: there was none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSession {
    /// `<role id>:<session name>`, as IAM's `aws:userid` names the session.
    pub user_id: String,
    pub before: Option<String>,
}

impl AwsConnector {
    /// Ends the session `session_name` of `role_arn` now, before its expiry `expires_at`:
    /// the role's inline policy [`super::REVOKED_SESSIONS_POLICY`] gains a deny of
    /// everything for that session alone until then ([`super::revoked_sessions_document`]),
    /// and drops the denies of sessions already expired. The role's other sessions keep
    /// working.
    pub async fn revoke_session(
        &self,
        role_arn: &str,
        session_name: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<RevokedSession, ConnectorError> {
        let name = crate::plan::iam_name(role_arn)
            .filter(|n| role_arn.contains(":role/") && !n.is_empty())
            .ok_or_else(|| precondition(role_arn, "not a role ARN"))?;
        let role = self
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(|e| api("GetRole", role_arn, e))?;
        let role_id = role.role().map(|r| r.role_id()).unwrap_or_default();
        if role_id.is_empty() {
            return Err(precondition(role_arn, "GetRole's answer has no role id"));
        }
        let user_id = format!("{role_id}:{session_name}");
        let principal = IamPrincipal::Role(name.to_owned());
        let policy = super::REVOKED_SESSIONS_POLICY;
        let before = self.get_inline(&principal, policy, role_arn).await?;
        let after = super::revoked_sessions_document(before.as_deref(), &user_id, expires_at, now)
            .map_err(|m| precondition(role_arn, m))?;
        self.put_inline(&principal, policy, &after, role_arn)
            .await?;
        Ok(RevokedSession { user_id, before })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> AssumeFor {
        AssumeFor {
            role_arn: "arn:aws:iam::123456789012:role/app".into(),
            session_name: "ci-deploy@main".into(),
            duration_secs: 900,
            source_identity: None,
            session_tags: vec![],
            session_policy: None,
        }
    }

    #[test]
    fn what_sts_would_refuse_is_refused_first() {
        assert!(check(&req()).is_ok());
        for bad in [
            AssumeFor {
                session_name: "a".into(),
                ..req()
            },
            AssumeFor {
                session_name: "has space".into(),
                ..req()
            },
            AssumeFor {
                duration_secs: 899,
                ..req()
            },
            AssumeFor {
                duration_secs: 43_201,
                ..req()
            },
            AssumeFor {
                session_policy: Some("x".repeat(2049)),
                ..req()
            },
            AssumeFor {
                session_tags: (0..51).map(|i| (format!("k{i}"), "v".into())).collect(),
                ..req()
            },
        ] {
            assert!(
                matches!(check(&bad), Err(ConnectorError::Precondition { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_hides_the_secret_and_the_token() {
        let c = TemporaryCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "s3cr3t-value".into(),
            session_token: "t0ken-value".into(),
            expiration: 0,
            assumed_role_arn: "arn".into(),
            assumed_role_id: "id".into(),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("ASIAEXAMPLE"));
        assert!(!shown.contains("s3cr3t") && !shown.contains("t0ken"));
    }
}

//! The AWS connector (feature `aws`): Keyward's containment actions carried out through IAM
//! and STS. Each action is applied, read back from the platform ([`AwsConnector::verify`]),
//! and undone from the state its [`AwsConnector::apply`] returned; the forensic snapshot of
//! a target is in `forensics.rs`.
//!
//! The HTTP stack is chosen here rather than by the SDK's default features: hyper 1 and
//! rustls 0.23 on *ring* ([`http_client`]), the TLS crypto the workspace already builds. The
//! SDK's defaults would add aws-lc-sys (a long C build) and a legacy hyper 0.14 + rustls
//! 0.21 stack; Cargo.toml says what was measured.
//!
//! What `apply` returns (the step's `state`, never a secret):
//! - `deny_all`, `revoke_sessions`: `{"policy": NAME, "previous": TEXT | null}`: the inline
//!   policy's document before (null: there was none, so undo deletes it).
//! - `deactivate_access_key`: `{"previous_status": "Active" | "Inactive"}`.
//! - `delete_login_profile`: `{"existed": bool, "created": TIME, "password_reset_required": bool}`.
//! - `list_mfa_devices`: `{"mfa_devices": [{"serial": …, "enabled": TIME}]}`.
//! - `deny_web_identity_subject`: `{"previous_document": TEXT, "applied_document": DOC | null}`
//!   (null: the statement was there already, so undo leaves it).
//! - `attach_policy`, `add_to_group` (`access.rs`): `{"already": bool}` — attached (a
//!   member) before the step, so undo leaves it.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_iam as iam;
use aws_sdk_sts as sts;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use iam::config::{ProvideCredentials, Region, SharedCredentialsProvider, SharedHttpClient};
use iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use iam::primitives::{DateTime, DateTimeFormat};
use iam::types::StatusType;
use serde_json::{Value, json};

use super::document;
use crate::action::{Action, DENY_ALL_POLICY, IamPrincipal, REVOKE_SESSIONS_POLICY};
use crate::{ConnectorError, Verified};

/// The SDK crates this connector is built on, for callers that build an [`SdkConfig`]
/// themselves (same versions, no extra dependency).
pub mod sdk {
    pub use aws_config;
    pub use aws_sdk_iam;
    pub use aws_sdk_s3;
    pub use aws_sdk_secretsmanager;
    pub use aws_sdk_sts;
}

/// IAM and STS clients sharing one configuration (credentials, region, endpoint).
#[derive(Debug, Clone)]
pub struct AwsConnector {
    pub(super) iam: iam::Client,
    pub(super) sts: sts::Client,
    pub(super) sm: aws_sdk_secretsmanager::Client,
    /// The credentials the clients sign with (to refuse deactivating its own key).
    credentials: Option<SharedCredentialsProvider>,
}

/// The HTTPS client every connector uses: hyper 1 + rustls 0.23 with ring; trust roots are
/// the platform's, loaded when the client is first used.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The standard credential chain (environment, profile, web identity, container,
/// instance metadata), the region from the environment or profile (`us-east-1`, where IAM
/// lives, when none is set), `AWS_ENDPOINT_URL` honoured. Fails when no credentials can be
/// found, so a missing connector is reported before it is needed.
pub async fn env_config() -> Result<SdkConfig, ConnectorError> {
    // The loader's own region chain, not `RegionProviderChain::default_provider()`: that
    // one is built without the loader's HTTP client and, with no default client compiled
    // in, panics when it reaches instance metadata.
    let mut config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await;
    if config.region().is_none() {
        config = config
            .to_builder()
            .region(Region::from_static("us-east-1"))
            .build();
    }
    let provider = config.credentials_provider().ok_or_else(|| {
        ConnectorError::Unavailable("aws", "no credential provider configured".into())
    })?;
    provider.provide_credentials().await.map_err(|e| {
        ConnectorError::Unavailable(
            "aws",
            format!("no AWS credentials found: {}", DisplayErrorContext(&e)),
        )
    })?;
    Ok(config)
}

/// A configuration with fixed credentials and an explicit endpoint and region: nothing is
/// read from the environment or the profile files (tests, and callers that hold the keys).
pub fn static_config(
    endpoint: &str,
    region: &str,
    key_id: &str,
    secret: &str,
    session_token: Option<&str>,
) -> SdkConfig {
    let credentials = iam::config::Credentials::new(
        key_id,
        secret,
        session_token.map(str::to_owned),
        None,
        "keyward-static",
    );
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(http_client())
        .build()
}

/// The failure of one SDK call, as the service told it: `Code: message`, or the whole error
/// chain when the call never got an answer (connection, timeout).
pub(super) fn api<E, R>(call: &str, target: &str, e: SdkError<E, R>) -> ConnectorError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = match (e.code(), e.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => code.to_owned(),
        (None, _) => DisplayErrorContext(&e).to_string(),
    };
    ConnectorError::Api {
        call: call.to_owned(),
        target: target.to_owned(),
        message,
    }
}

/// Whether an SDK error is the operation's `NoSuchEntity` (typed per operation).
macro_rules! missing {
    ($e:expr) => {
        $e.as_service_error()
            .is_some_and(|s| s.is_no_such_entity_exception())
    };
}
pub(super) use missing;

pub(super) fn precondition(target: &str, message: impl Into<String>) -> ConnectorError {
    ConnectorError::Precondition {
        target: target.to_owned(),
        message: message.into(),
    }
}

/// A step that is not the AWS connector's (Kubernetes, review) was handed to it.
fn not_aws(action: &Action) -> ConnectorError {
    precondition(
        &action.target(),
        format!(
            "`{}` is a {} action, not an AWS one",
            action.name(),
            action.platform()
        ),
    )
}

/// A time as RFC 3339 (`2026-01-02T03:04:05Z`), or null.
pub(super) fn when(t: Option<&DateTime>) -> Value {
    t.and_then(|t| t.fmt(DateTimeFormat::DateTime).ok())
        .map_or(Value::Null, Value::String)
}

fn compact(v: &Value) -> String {
    keyward_model::json::sorted(v)
}

fn verified(ok: bool, observed: String) -> Verified {
    Verified { ok, observed }
}

/// A document's text parsed, or an error naming the call that returned it.
fn parsed(text: &str, call: &str, target: &str) -> Result<Value, ConnectorError> {
    document::parse(text).map_err(|message| ConnectorError::Api {
        call: call.to_owned(),
        target: target.to_owned(),
        message,
    })
}

impl AwsConnector {
    /// Clients over one SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        AwsConnector {
            iam: iam::Client::new(config),
            sts: sts::Client::new(config),
            sm: aws_sdk_secretsmanager::Client::new(config),
            credentials: config.credentials_provider(),
        }
    }

    /// On [`env_config`]: fails when no credentials can be found, so a missing connector
    /// is reported before a plan runs.
    pub async fn from_env() -> Result<Self, ConnectorError> {
        Ok(Self::new(&env_config().await?))
    }

    /// A connector with fixed credentials against `endpoint` (see [`static_config`]).
    pub async fn with_static_credentials(
        endpoint: &str,
        region: &str,
        key_id: &str,
        secret: &str,
    ) -> Self {
        Self::new(&static_config(endpoint, region, key_id, secret, None))
    }

    /// The caller's ARN (`sts:GetCallerIdentity`).
    pub async fn caller(&self) -> Result<String, ConnectorError> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| api("GetCallerIdentity", "the caller", e))?;
        out.arn()
            .map(str::to_owned)
            .ok_or_else(|| ConnectorError::Api {
                call: "GetCallerIdentity".into(),
                target: "the caller".into(),
                message: "the answer has no ARN".into(),
            })
    }

    /// The forensic state of the action's target principal, as JSON (see `forensics.rs`):
    /// a role's or a user's definition, policies with their documents, keys, login
    /// profile, MFA devices. Never a secret.
    pub async fn snapshot(&self, action: &Action) -> Result<Value, ConnectorError> {
        let target = action.target();
        match action {
            Action::DenyAll {
                principal: IamPrincipal::Role(role),
                ..
            }
            | Action::RevokeSessions { role, .. }
            | Action::DenyWebIdentitySubject { role, .. } => self.role_state(role, &target).await,
            Action::DenyAll {
                principal: IamPrincipal::User(user),
                ..
            }
            | Action::DeleteLoginProfile { user, .. }
            | Action::ListMfaDevices { user, .. } => self.user_state(user, &target).await,
            Action::DeactivateAccessKey { user, key_id, .. } => {
                let mut state = self.user_state(user, &target).await?;
                if let Some(o) = state.as_object_mut() {
                    o.insert("key".into(), Value::String(key_id.clone()));
                }
                Ok(state)
            }
            Action::CreateAccessKey { .. }
            | Action::UpdateSecretValue { .. }
            | Action::PromoteSecretVersion { .. }
            | Action::VerifyAccessKey { .. } => self.rotation_snapshot(action).await,
            Action::RestoreBaseline { principal, .. } => match principal {
                IamPrincipal::Role(role) => self.role_state(role, &target).await,
                IamPrincipal::User(user) => self.user_state(user, &target).await,
            },
            Action::AttachPolicy { .. } | Action::AddToGroup { .. } => {
                self.access_snapshot(action).await
            }
            Action::Delete { what } => self.purge_snapshot(what).await,
            Action::RemoveBindings { .. }
            | Action::DeleteTokenSecrets { .. }
            | Action::RestartPods { .. }
            | Action::BlueGreen { .. }
            | Action::DeleteBinding { .. }
            | Action::DisableVaultEntity { .. }
            | Action::RevokeVaultToken { .. }
            | Action::RevokeVaultLeases { .. }
            | Action::IssueVaultToken { .. }
            | Action::WriteVaultToken { .. }
            | Action::VerifyVaultToken { .. }
            | Action::CreateBinding { .. }
            | Action::Review { .. } => Err(not_aws(action)),
        }
    }

    /// Performs the action and returns what [`AwsConnector::undo`] needs (module docs).
    /// Already in effect with Keyward's exact document or status: nothing is changed.
    pub async fn apply(&self, action: &Action) -> Result<Value, ConnectorError> {
        let target = action.target();
        match action {
            Action::DenyAll { .. } | Action::RevokeSessions { .. } => {
                let (principal, policy, doc) = inline_policy(action)?;
                self.apply_inline(&principal, policy, &doc, &target).await
            }
            Action::DeactivateAccessKey { user, key_id, .. } => {
                if self.own_key_id().await.as_deref() == Some(key_id.as_str()) {
                    return Err(ConnectorError::Refused(format!(
                        "access key {key_id} is the one Keyward itself signs with"
                    )));
                }
                let status = self.key_status(user, key_id, &target).await?;
                if status == StatusType::Active {
                    self.set_key_status(user, key_id, StatusType::Inactive, &target)
                        .await?;
                }
                Ok(json!({"previous_status": status.as_str()}))
            }
            Action::DeleteLoginProfile { user, .. } => {
                let Some((created, reset)) = self.login_profile(user, &target).await? else {
                    return Ok(json!({"existed": false}));
                };
                match self.iam.delete_login_profile().user_name(user).send().await {
                    Ok(_) => {}
                    Err(e) if missing!(e) => {}
                    Err(e) => return Err(api("DeleteLoginProfile", &target, e)),
                }
                Ok(json!({"existed": true, "created": created, "password_reset_required": reset}))
            }
            Action::ListMfaDevices { user, .. } => {
                let devices = self.mfa_devices(user, &target).await?;
                Ok(json!({ "mfa_devices": devices }))
            }
            Action::DenyWebIdentitySubject {
                role,
                provider,
                subject,
                ..
            } => self.deny_subject(role, provider, subject, &target).await,
            Action::CreateAccessKey { .. }
            | Action::UpdateSecretValue { .. }
            | Action::PromoteSecretVersion { .. }
            | Action::VerifyAccessKey { .. } => self.rotation_apply(action).await,
            Action::RestoreBaseline {
                principal, change, ..
            } => self.restore_apply(principal, change, &target).await,
            Action::AttachPolicy { .. } | Action::AddToGroup { .. } => {
                self.access_apply(action).await
            }
            Action::Delete { what } => self.purge_apply(what).await,
            Action::RemoveBindings { .. }
            | Action::DeleteTokenSecrets { .. }
            | Action::RestartPods { .. }
            | Action::BlueGreen { .. }
            | Action::DeleteBinding { .. }
            | Action::DisableVaultEntity { .. }
            | Action::RevokeVaultToken { .. }
            | Action::RevokeVaultLeases { .. }
            | Action::IssueVaultToken { .. }
            | Action::WriteVaultToken { .. }
            | Action::VerifyVaultToken { .. }
            | Action::CreateBinding { .. }
            | Action::Review { .. } => Err(not_aws(action)),
        }
    }

    /// Reads the action's effect back from IAM: the inline policy with Keyward's document,
    /// the key `Inactive` per `ListAccessKeys` (an inactive key is refused by AWS; checking
    /// its status is the reliable read), no login profile, the deny statement in the trust
    /// policy.
    pub async fn verify(&self, action: &Action) -> Result<Verified, ConnectorError> {
        let target = action.target();
        match action {
            Action::DenyAll { .. } | Action::RevokeSessions { .. } => {
                let (principal, policy, doc) = inline_policy(action)?;
                let now = self.get_inline(&principal, policy, &target).await?;
                Ok(match now {
                    Some(text) if parsed(&text, get_call(&principal), &target)? == doc => verified(
                        true,
                        format!("inline policy {policy} on {target} has Keyward's document"),
                    ),
                    Some(_) => verified(
                        false,
                        format!("inline policy {policy} on {target} has another document"),
                    ),
                    None => verified(false, format!("no inline policy {policy} on {target}")),
                })
            }
            Action::DeactivateAccessKey { user, key_id, .. } => {
                let status = self.key_status(user, key_id, &target).await?;
                Ok(verified(
                    status == StatusType::Inactive,
                    format!("access key {key_id} of {user} is {}", status.as_str()),
                ))
            }
            Action::DeleteLoginProfile { user, .. } => {
                Ok(match self.login_profile(user, &target).await? {
                    None => verified(true, format!("{user} has no login profile")),
                    Some(_) => verified(false, format!("{user} still has a login profile")),
                })
            }
            Action::ListMfaDevices { user, .. } => {
                let devices = self.mfa_devices(user, &target).await?;
                let serials: Vec<&str> = devices
                    .iter()
                    .filter_map(|d| d.get("serial").and_then(Value::as_str))
                    .collect();
                Ok(verified(
                    true,
                    format!(
                        "{user} has {} MFA device(s){}{}",
                        serials.len(),
                        if serials.is_empty() { "" } else { ": " },
                        serials.join(", ")
                    ),
                ))
            }
            Action::DenyWebIdentitySubject {
                role,
                provider,
                subject,
                ..
            } => {
                let (_, doc, stmt) = self.trust(role, provider, subject, &target).await?;
                let present = document::statements(&doc).contains(&&stmt);
                Ok(verified(
                    present,
                    format!(
                        "trust policy of {target} {} {subject} from {provider}",
                        if present { "denies" } else { "does not deny" }
                    ),
                ))
            }
            Action::CreateAccessKey { .. }
            | Action::UpdateSecretValue { .. }
            | Action::PromoteSecretVersion { .. }
            | Action::VerifyAccessKey { .. } => self.rotation_verify(action).await,
            Action::RestoreBaseline {
                principal, change, ..
            } => self.restore_verify(principal, change, false, &target).await,
            Action::AttachPolicy { .. } | Action::AddToGroup { .. } => {
                self.access_verify(action).await
            }
            Action::Delete { what } => self.purge_verify(what).await,
            Action::RemoveBindings { .. }
            | Action::DeleteTokenSecrets { .. }
            | Action::RestartPods { .. }
            | Action::BlueGreen { .. }
            | Action::DeleteBinding { .. }
            | Action::DisableVaultEntity { .. }
            | Action::RevokeVaultToken { .. }
            | Action::RevokeVaultLeases { .. }
            | Action::IssueVaultToken { .. }
            | Action::WriteVaultToken { .. }
            | Action::VerifyVaultToken { .. }
            | Action::CreateBinding { .. }
            | Action::Review { .. } => Err(not_aws(action)),
        }
    }

    /// Reverses [`AwsConnector::apply`] with the state it returned, then reads the reversal
    /// back. What was already in effect before the step is left as it was.
    pub async fn undo(&self, action: &Action, state: &Value) -> Result<Verified, ConnectorError> {
        let target = action.target();
        match action {
            Action::DenyAll { .. } | Action::RevokeSessions { .. } => {
                let (principal, policy, _) = inline_policy(action)?;
                let previous = state.get("previous").and_then(Value::as_str);
                self.undo_inline(&principal, policy, previous, &target)
                    .await
            }
            Action::DeactivateAccessKey { user, key_id, .. } => {
                if state.get("previous_status").and_then(Value::as_str)
                    == Some(StatusType::Inactive.as_str())
                {
                    return Ok(verified(
                        true,
                        format!("access key {key_id} was Inactive before the plan: left so"),
                    ));
                }
                self.set_key_status(user, key_id, StatusType::Active, &target)
                    .await?;
                let status = self.key_status(user, key_id, &target).await?;
                Ok(verified(
                    status == StatusType::Active,
                    format!("access key {key_id} of {user} is {}", status.as_str()),
                ))
            }
            Action::DeleteLoginProfile { .. } => Err(precondition(
                &target,
                "a removed console password cannot be restored: a person sets a new one",
            )),
            Action::ListMfaDevices { .. } => Ok(verified(
                true,
                "nothing to undo: the devices were only listed".into(),
            )),
            Action::DenyWebIdentitySubject {
                role,
                provider,
                subject,
                ..
            } => {
                self.undo_deny_subject(role, provider, subject, state, &target)
                    .await
            }
            Action::CreateAccessKey { .. }
            | Action::UpdateSecretValue { .. }
            | Action::PromoteSecretVersion { .. }
            | Action::VerifyAccessKey { .. } => self.rotation_undo(action, state).await,
            Action::RestoreBaseline {
                principal, change, ..
            } => self.restore_undo(principal, change, state, &target).await,
            Action::AttachPolicy { .. } | Action::AddToGroup { .. } => {
                self.access_undo(action, state).await
            }
            Action::Delete { .. } => Err(precondition(
                &target,
                "a deletion cannot be undone: the plan's evidence holds what was deleted",
            )),
            Action::RemoveBindings { .. }
            | Action::DeleteTokenSecrets { .. }
            | Action::RestartPods { .. }
            | Action::BlueGreen { .. }
            | Action::DeleteBinding { .. }
            | Action::DisableVaultEntity { .. }
            | Action::RevokeVaultToken { .. }
            | Action::RevokeVaultLeases { .. }
            | Action::IssueVaultToken { .. }
            | Action::WriteVaultToken { .. }
            | Action::VerifyVaultToken { .. }
            | Action::CreateBinding { .. }
            | Action::Review { .. } => Err(not_aws(action)),
        }
    }

    /// The access key id this connector signs with, when its credentials resolve.
    pub(super) async fn own_key_id(&self) -> Option<String> {
        let credentials = self
            .credentials
            .as_ref()?
            .provide_credentials()
            .await
            .ok()?;
        Some(credentials.access_key_id().to_owned())
    }

    // --- inline policies (deny-all, revoke sessions) ---

    pub(super) async fn principal_exists(
        &self,
        p: &IamPrincipal,
        target: &str,
    ) -> Result<bool, ConnectorError> {
        match p {
            IamPrincipal::Role(name) => match self.iam.get_role().role_name(name).send().await {
                Ok(_) => Ok(true),
                Err(e) if missing!(e) => Ok(false),
                Err(e) => Err(api("GetRole", target, e)),
            },
            IamPrincipal::User(name) => match self.iam.get_user().user_name(name).send().await {
                Ok(_) => Ok(true),
                Err(e) if missing!(e) => Ok(false),
                Err(e) => Err(api("GetUser", target, e)),
            },
        }
    }

    /// The inline policy's document (decoded text), or `None` when there is none.
    pub(super) async fn get_inline(
        &self,
        p: &IamPrincipal,
        policy: &str,
        target: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let raw = match p {
            IamPrincipal::Role(name) => {
                let sent = self
                    .iam
                    .get_role_policy()
                    .role_name(name)
                    .policy_name(policy)
                    .send()
                    .await;
                match sent {
                    Ok(out) => out.policy_document().to_owned(),
                    Err(e) if missing!(e) => return Ok(None),
                    Err(e) => return Err(api("GetRolePolicy", target, e)),
                }
            }
            IamPrincipal::User(name) => {
                let sent = self
                    .iam
                    .get_user_policy()
                    .user_name(name)
                    .policy_name(policy)
                    .send()
                    .await;
                match sent {
                    Ok(out) => out.policy_document().to_owned(),
                    Err(e) if missing!(e) => return Ok(None),
                    Err(e) => return Err(api("GetUserPolicy", target, e)),
                }
            }
        };
        document::decode(&raw)
            .map(Some)
            .map_err(|message| ConnectorError::Api {
                call: get_call(p).to_owned(),
                target: target.to_owned(),
                message,
            })
    }

    pub(super) async fn put_inline(
        &self,
        p: &IamPrincipal,
        policy: &str,
        doc: &str,
        target: &str,
    ) -> Result<(), ConnectorError> {
        match p {
            IamPrincipal::Role(name) => self
                .iam
                .put_role_policy()
                .role_name(name)
                .policy_name(policy)
                .policy_document(doc)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api("PutRolePolicy", target, e)),
            IamPrincipal::User(name) => self
                .iam
                .put_user_policy()
                .user_name(name)
                .policy_name(policy)
                .policy_document(doc)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api("PutUserPolicy", target, e)),
        }
    }

    /// Deletes the inline policy; one that is gone already is fine.
    pub(super) async fn delete_inline(
        &self,
        p: &IamPrincipal,
        policy: &str,
        target: &str,
    ) -> Result<(), ConnectorError> {
        match p {
            IamPrincipal::Role(name) => {
                let sent = self
                    .iam
                    .delete_role_policy()
                    .role_name(name)
                    .policy_name(policy)
                    .send()
                    .await;
                match sent {
                    Ok(_) => Ok(()),
                    Err(e) if missing!(e) => Ok(()),
                    Err(e) => Err(api("DeleteRolePolicy", target, e)),
                }
            }
            IamPrincipal::User(name) => {
                let sent = self
                    .iam
                    .delete_user_policy()
                    .user_name(name)
                    .policy_name(policy)
                    .send()
                    .await;
                match sent {
                    Ok(_) => Ok(()),
                    Err(e) if missing!(e) => Ok(()),
                    Err(e) => Err(api("DeleteUserPolicy", target, e)),
                }
            }
        }
    }

    /// Puts Keyward's inline policy. The principal must exist; a policy of that name that
    /// Keyward did not write (no Keyward `Sid`) is a precondition failure, one with the same
    /// document is left as it is.
    async fn apply_inline(
        &self,
        p: &IamPrincipal,
        policy: &str,
        doc: &Value,
        target: &str,
    ) -> Result<Value, ConnectorError> {
        if !self.principal_exists(p, target).await? {
            return Err(precondition(
                target,
                format!("the {} does not exist", p.noun()),
            ));
        }
        let before = self.get_inline(p, policy, target).await?;
        if let Some(text) = &before {
            let current = parsed(text, get_call(p), target)?;
            if &current == doc {
                return Ok(json!({"policy": policy, "previous": text}));
            }
            let sid = doc
                .pointer("/Statement/0/Sid")
                .and_then(Value::as_str)
                .unwrap_or(policy);
            if !document::has_sid(&current, sid) {
                return Err(precondition(
                    target,
                    format!(
                        "an inline policy {policy} exists that Keyward did not write (no statement {sid}); rename or remove it first"
                    ),
                ));
            }
        }
        self.put_inline(p, policy, &compact(doc), target).await?;
        Ok(json!({"policy": policy, "previous": before}))
    }

    /// Deletes Keyward's inline policy, or puts back the document it replaced.
    async fn undo_inline(
        &self,
        p: &IamPrincipal,
        policy: &str,
        previous: Option<&str>,
        target: &str,
    ) -> Result<Verified, ConnectorError> {
        let Some(previous) = previous else {
            self.delete_inline(p, policy, target).await?;
            return Ok(match self.get_inline(p, policy, target).await? {
                None => verified(true, format!("inline policy {policy} gone from {target}")),
                Some(_) => verified(false, format!("inline policy {policy} still on {target}")),
            });
        };
        let want = parsed(previous, get_call(p), target)?;
        let now = self.get_inline(p, policy, target).await?;
        let same = match &now {
            Some(text) => parsed(text, get_call(p), target)? == want,
            None => false,
        };
        if !same {
            self.put_inline(p, policy, previous, target).await?;
        }
        let back = match self.get_inline(p, policy, target).await? {
            Some(text) => parsed(&text, get_call(p), target)? == want,
            None => false,
        };
        Ok(verified(
            back,
            format!(
                "inline policy {policy} on {target} {} the document it had before the plan",
                if back { "has" } else { "does not have" }
            ),
        ))
    }

    // --- access keys, login profile, MFA ---

    /// The key's status per `ListAccessKeys`; a key or user that is not there is a
    /// precondition failure.
    pub(super) async fn key_status(
        &self,
        user: &str,
        key_id: &str,
        target: &str,
    ) -> Result<StatusType, ConnectorError> {
        let keys = self
            .iam
            .list_access_keys()
            .user_name(user)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await;
        let keys = match keys {
            Ok(keys) => keys,
            Err(e) if missing!(e) => {
                return Err(precondition(target, format!("no user {user}")));
            }
            Err(e) => return Err(api("ListAccessKeys", target, e)),
        };
        keys.iter()
            .find(|k| k.access_key_id() == Some(key_id))
            .and_then(|k| k.status().cloned())
            .ok_or_else(|| precondition(target, format!("{user} has no access key {key_id}")))
    }

    pub(super) async fn set_key_status(
        &self,
        user: &str,
        key_id: &str,
        status: StatusType,
        target: &str,
    ) -> Result<(), ConnectorError> {
        self.iam
            .update_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .status(status)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| api("UpdateAccessKey", target, e))
    }

    /// The login profile's creation time and reset flag, or `None` when the user has none.
    pub(super) async fn login_profile(
        &self,
        user: &str,
        target: &str,
    ) -> Result<Option<(Value, bool)>, ConnectorError> {
        match self.iam.get_login_profile().user_name(user).send().await {
            Ok(out) => Ok(out
                .login_profile()
                .map(|p| (when(Some(p.create_date())), p.password_reset_required()))),
            Err(e) if missing!(e) => Ok(None),
            Err(e) => Err(api("GetLoginProfile", target, e)),
        }
    }

    pub(super) async fn mfa_devices(
        &self,
        user: &str,
        target: &str,
    ) -> Result<Vec<Value>, ConnectorError> {
        let devices = self
            .iam
            .list_mfa_devices()
            .user_name(user)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListMFADevices", target, e))?;
        Ok(devices
            .iter()
            .map(|d| json!({"serial": d.serial_number(), "enabled": when(Some(d.enable_date()))}))
            .collect())
    }

    // --- trust policy (web-identity subject) ---

    /// The role's trust policy (text and parsed) and Keyward's deny statement for the
    /// subject, with the account taken from the role's ARN.
    async fn trust(
        &self,
        role: &str,
        provider: &str,
        subject: &str,
        target: &str,
    ) -> Result<(String, Value, Value), ConnectorError> {
        let out = match self.iam.get_role().role_name(role).send().await {
            Ok(out) => out,
            Err(e) if missing!(e) => {
                return Err(precondition(target, "the role does not exist"));
            }
            Err(e) => return Err(api("GetRole", target, e)),
        };
        let r = out.role().ok_or_else(|| ConnectorError::Api {
            call: "GetRole".into(),
            target: target.to_owned(),
            message: "the answer has no role".into(),
        })?;
        let raw = r.assume_role_policy_document().unwrap_or_default();
        let text = document::decode(raw).map_err(|message| ConnectorError::Api {
            call: "GetRole".into(),
            target: target.to_owned(),
            message,
        })?;
        let doc = parsed(&text, "GetRole", target)?;
        let account = document::arn_account(r.arn())
            .ok_or_else(|| precondition(target, format!("no account in {}", r.arn())))?;
        let stmt = super::deny_subject_statement(Some(account), provider, subject);
        Ok((text, doc, stmt))
    }

    async fn update_trust(
        &self,
        role: &str,
        doc: &str,
        target: &str,
    ) -> Result<(), ConnectorError> {
        self.iam
            .update_assume_role_policy()
            .role_name(role)
            .policy_document(doc)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| api("UpdateAssumeRolePolicy", target, e))
    }

    /// Adds the deny statement to the trust policy, everything else kept.
    async fn deny_subject(
        &self,
        role: &str,
        provider: &str,
        subject: &str,
        target: &str,
    ) -> Result<Value, ConnectorError> {
        let (text, doc, stmt) = self.trust(role, provider, subject, target).await?;
        if document::statements(&doc).contains(&&stmt) {
            return Ok(json!({"previous_document": text, "applied_document": null}));
        }
        if !document::trusts_provider(&doc, provider) {
            return Err(precondition(
                target,
                format!("the trust policy does not allow the provider {provider}"),
            ));
        }
        let applied = document::with_statement(&doc, stmt)
            .map_err(|message| precondition(target, message))?;
        self.update_trust(role, &compact(&applied), target).await?;
        Ok(json!({"previous_document": text, "applied_document": applied}))
    }

    /// Puts the trust policy from before back, exactly as it was, when nobody changed it
    /// since; otherwise removes only Keyward's deny statement.
    async fn undo_deny_subject(
        &self,
        role: &str,
        provider: &str,
        subject: &str,
        state: &Value,
        target: &str,
    ) -> Result<Verified, ConnectorError> {
        let applied = state.get("applied_document").filter(|v| !v.is_null());
        let Some(applied) = applied else {
            return Ok(verified(
                true,
                format!(
                    "the deny statement for {subject} was in the trust policy of {target} before the plan: left there"
                ),
            ));
        };
        let (_, current, stmt) = self.trust(role, provider, subject, target).await?;
        let previous = state.get("previous_document").and_then(Value::as_str);
        let (restore, how) = match previous {
            Some(text) if &current == applied => (text.to_owned(), "its document before the plan"),
            _ => (
                compact(&document::without_statement(&current, &stmt)),
                "its current document without Keyward's deny statement (it changed since the plan ran)",
            ),
        };
        let want = parsed(&restore, "UpdateAssumeRolePolicy", target)?;
        self.update_trust(role, &restore, target).await?;
        let (_, after, _) = self.trust(role, provider, subject, target).await?;
        let ok = after == want;
        Ok(verified(
            ok,
            format!(
                "trust policy of {target} {} {how}",
                if ok { "is back to" } else { "is not back to" }
            ),
        ))
    }
}

/// The call that reads the principal's inline policy (for error messages).
fn get_call(p: &IamPrincipal) -> &'static str {
    match p {
        IamPrincipal::Role(_) => "GetRolePolicy",
        IamPrincipal::User(_) => "GetUserPolicy",
    }
}

/// The principal, policy name and document of an inline-policy action.
fn inline_policy(action: &Action) -> Result<(IamPrincipal, &'static str, Value), ConnectorError> {
    match action {
        Action::DenyAll { principal, .. } => Ok((
            principal.clone(),
            DENY_ALL_POLICY,
            super::deny_all_document(),
        )),
        Action::RevokeSessions {
            role,
            issued_before,
            ..
        } => Ok((
            IamPrincipal::Role(role.clone()),
            REVOKE_SESSIONS_POLICY,
            super::revoke_sessions_document(*issued_before),
        )),
        Action::DeactivateAccessKey { .. }
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
        | Action::RestoreBaseline { .. }
        | Action::VerifyAccessKey { .. }
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
        | Action::Review { .. } => Err(precondition(
            &action.target(),
            format!("`{}` does not write an inline policy", action.name()),
        )),
    }
}

//! The Kubernetes connector (feature `kubernetes`): each Kubernetes [`Action`] snapshotted,
//! applied, read back and undone through the API server with the `kube` crate.
//!
//! One connector talks to one cluster, the one its kubeconfig context (or its
//! [`kube::Client`]) points at. An action's `cluster` field is informational: it is what the
//! inventory called the cluster, shown in the snapshot and in the `kubectl --context` of the
//! equivalent commands; the connector does not switch clusters on it.
//!
//! TLS is kube's rustls with the `ring` provider: the workspace already builds ring and
//! rustls 0.23 with it (server, store), so no second crypto library (aws-lc-sys, a long C
//! build) is compiled. rustls picks its provider from its crate features only when exactly
//! one is on; a binary that also links the AWS SDK (aws-lc-rs) has two, and building a client
//! would panic. So every constructor that builds a client installs ring as the process's
//! provider first, unless one is installed already.
//!
//! No secret's data is ever read: token secrets are listed metadata-only, and pods and
//! workloads are snapshotted as summaries (a pod spec may hold secret values).
//!
//! Layout: `bindings.rs` (remove_bindings, delete_binding), `tokens.rs`
//! (delete_token_secrets), `pods.rs` (restart_pods and the workloads of a snapshot),
//! `bluegreen.rs`, `purge.rs` (a retired account deleted), `access.rs` (a time-bound
//! grant's binding), `common.rs` (references, errors,
//! waiting).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::action::Action;
use crate::purge::Deletion;
use crate::{ConnectorError, Verified};

mod access;
mod bindings;
mod bluegreen;
mod common;
mod pods;
mod purge;
mod rotate;
mod tokens;
mod vault_token;

use common::{BindingRef, Sa, api, precondition, to_json};

/// How a blue-green decides a Deployment has rolled out to the replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RolloutCheck {
    /// As `kubectl rollout status` waits for: the controller has seen the new template,
    /// its new ReplicaSet runs as the replacement, every replica is updated and available
    /// and no old one is left.
    #[default]
    Available,
    /// Only that the controller has seen the new template (`observedGeneration` ≥
    /// `generation`) and made the new ReplicaSet, running as the replacement; its pods need
    /// not run yet (a control plane without kubelets, as in tests).
    NewReplicaSet,
}

/// How the connector waits for controllers.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// The longest a step waits for a controller: terminating pods to go, a rollout to
    /// finish (default 120 s).
    pub wait: Duration,
    pub rollout: RolloutCheck,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            wait: Duration::from_secs(120),
            rollout: RolloutCheck::default(),
        }
    }
}

/// What an apply removed that a controller re-creates under new uids, so that verify can tell
/// the old objects from the new.
#[derive(Debug, Clone)]
enum Mark {
    Tokens(tokens::Before),
    Pods(std::sync::Arc<pods::RestartState>),
}

/// The Kubernetes connector: one cluster, through its API server. The `cluster` of the
/// actions it is given is not checked against it (see the module doc): build one per cluster.
pub struct KubeConnector {
    client: Client,
    options: KubeOptions,
    /// By action (as JSON): what its last apply in this process removed.
    marks: Mutex<HashMap<String, Mark>>,
}

/// A Kubernetes action, parsed once.
enum Kube<'a> {
    RemoveBindings(Sa<'a>),
    DeleteTokenSecrets(Sa<'a>),
    RestartPods(Sa<'a>),
    BlueGreen(Sa<'a>, &'a str),
    DeleteBinding(BindingRef),
    /// A retired account deleted after its grace period (`purge.rs`).
    DeleteAccount(Sa<'a>),
    /// A time-bound access grant's binding (`access.rs`).
    Grant(access::GrantBinding<'a>),
}

fn parse(action: &Action) -> Result<Kube<'_>, ConnectorError> {
    fn sa<'a>(ns: &'a str, name: &'a str) -> Sa<'a> {
        Sa { ns, name }
    }
    Ok(match action {
        Action::RemoveBindings {
            namespace,
            service_account,
            ..
        } => Kube::RemoveBindings(sa(namespace, service_account)),
        Action::DeleteTokenSecrets {
            namespace,
            service_account,
            ..
        } => Kube::DeleteTokenSecrets(sa(namespace, service_account)),
        Action::RestartPods {
            namespace,
            service_account,
            ..
        } => Kube::RestartPods(sa(namespace, service_account)),
        Action::BlueGreen {
            namespace,
            service_account,
            replacement,
            ..
        } => Kube::BlueGreen(sa(namespace, service_account), replacement),
        Action::DeleteBinding {
            kind,
            namespace,
            name,
            ..
        } => Kube::DeleteBinding(BindingRef {
            kind: *kind,
            namespace: namespace.clone(),
            name: name.clone(),
        }),
        Action::Delete {
            what:
                Deletion::ServiceAccount {
                    namespace,
                    service_account,
                    ..
                },
        } => Kube::DeleteAccount(sa(namespace, service_account)),
        Action::CreateBinding {
            kind,
            namespace,
            name,
            role_kind,
            role,
            sa_namespace,
            service_account,
            grant,
            ..
        } => Kube::Grant(access::GrantBinding {
            kind: *kind,
            namespace: namespace.as_deref(),
            name,
            role_kind: *role_kind,
            role,
            sa_namespace,
            service_account,
            grant,
        }),
        Action::DenyAll { .. }
        | Action::RevokeSessions { .. }
        | Action::DeactivateAccessKey { .. }
        | Action::DeleteLoginProfile { .. }
        | Action::ListMfaDevices { .. }
        | Action::DenyWebIdentitySubject { .. }
        | Action::CreateAccessKey { .. }
        | Action::PromoteSecretVersion { .. }
        | Action::RestoreBaseline { .. }
        | Action::UpdateSecretValue { .. }
        | Action::VerifyAccessKey { .. }
        | Action::DisableVaultEntity { .. }
        | Action::RevokeVaultToken { .. }
        | Action::RevokeVaultLeases { .. }
        | Action::IssueVaultToken { .. }
        | Action::WriteVaultToken { .. }
        | Action::VerifyVaultToken { .. }
        | Action::Delete {
            what: Deletion::AccessKey { .. } | Deletion::IamUser { .. } | Deletion::IamRole { .. },
        }
        | Action::AttachPolicy { .. }
        | Action::AddToGroup { .. }
        | Action::Review { .. } => {
            return Err(precondition(
                action.target(),
                format!("`{}` is not a Kubernetes action", action.name()),
            ));
        }
    })
}

/// Installs ring as the process's rustls provider unless one is installed (see the module
/// doc). Losing a race to another installer is fine: whichever won is a full provider.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn unavailable(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Unavailable("kubernetes", e.to_string())
}

impl KubeConnector {
    /// From the kubeconfig (`KUBECONFIG`, else `~/.kube/config`) and its `context` (else its
    /// current context). Without a context and without a kubeconfig, the in-cluster
    /// configuration (the pod's service account) is used.
    pub async fn from_kubeconfig(context: Option<&str>) -> Result<Self, ConnectorError> {
        let config = match context {
            Some(ctx) => Config::from_kubeconfig(&KubeConfigOptions {
                context: Some(ctx.to_owned()),
                ..KubeConfigOptions::default()
            })
            .await
            .map_err(unavailable)?,
            None => Config::infer().await.map_err(unavailable)?,
        };
        Self::from_config(config)
    }

    /// From a kubeconfig file and its `context` (else its current context).
    pub async fn from_kubeconfig_file(
        path: &Path,
        context: Option<&str>,
    ) -> Result<Self, ConnectorError> {
        let kubeconfig = Kubeconfig::read_from(path).map_err(unavailable)?;
        let options = KubeConfigOptions {
            context: context.map(str::to_owned),
            ..KubeConfigOptions::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(unavailable)?;
        Self::from_config(config)
    }

    /// From a client configuration (cluster URL, CA, credentials).
    pub fn from_config(config: Config) -> Result<Self, ConnectorError> {
        ensure_crypto_provider();
        Ok(Self::from_client(
            Client::try_from(config).map_err(unavailable)?,
        ))
    }

    /// From a client built by the caller. Building a `kube::Client` needs a rustls provider
    /// the process can find: [`KubeConnector::from_config`] installs one first.
    pub fn from_client(client: Client) -> Self {
        KubeConnector {
            client,
            options: KubeOptions::default(),
            marks: Mutex::new(HashMap::new()),
        }
    }

    /// The client it talks through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// With other waiting limits (tests without kubelets use [`RolloutCheck::NewReplicaSet`]).
    pub fn with_options(mut self, options: KubeOptions) -> Self {
        self.options = options;
        self
    }

    fn mark(&self, action: &Action, mark: Mark) {
        let key = serde_json::to_string(action).unwrap_or_default();
        self.marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, mark);
    }

    fn marked(&self, action: &Action) -> Option<Mark> {
        let key = serde_json::to_string(action).unwrap_or_default();
        self.marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned()
    }

    /// The forensic state of the action's target, as JSON. For a service account: the
    /// account, every binding naming it (whole), the Roles and ClusterRoles they grant, the
    /// bindings granting to its service-account groups, its token secrets' metadata (never
    /// their data), the pods running as it and their owners (ReplicaSet → Deployment), and
    /// the Deployments whose template runs as it. For a binding: the binding and its role.
    /// What does not exist is `null` or empty (a failed precondition is the step's to report).
    pub async fn snapshot(&self, action: &Action) -> Result<Value, ConnectorError> {
        let c = &self.client;
        if let Some(d) = token_dest(action) {
            return vault_token::snapshot(c, d).await;
        }
        if is_rotation(action) {
            return rotate::snapshot(c, action).await;
        }
        let cluster = cluster_of(action);
        match parse(action)? {
            Kube::RemoveBindings(sa)
            | Kube::DeleteTokenSecrets(sa)
            | Kube::RestartPods(sa)
            | Kube::BlueGreen(sa, _)
            | Kube::DeleteAccount(sa) => {
                let mut doc = account_snapshot(c, sa).await?;
                if let Some(m) = doc.as_object_mut() {
                    m.insert("cluster".into(), json!(cluster));
                }
                Ok(doc)
            }
            Kube::DeleteBinding(r) => {
                let mut doc = bindings::snapshot_one(c, &r).await?;
                if let Some(m) = doc.as_object_mut() {
                    m.insert("cluster".into(), json!(cluster));
                    m.insert("target".into(), json!(r.to_string()));
                }
                Ok(doc)
            }
            Kube::Grant(g) => {
                let mut doc = access::snapshot(c, g).await?;
                if let Some(m) = doc.as_object_mut() {
                    m.insert("cluster".into(), json!(cluster));
                }
                Ok(doc)
            }
        }
    }

    /// Performs the action; returns what undo needs (the bindings removed as they were, the
    /// old service account…), never secret data.
    pub async fn apply(&self, action: &Action) -> Result<Value, ConnectorError> {
        let c = &self.client;
        if let Some(d) = token_dest(action) {
            return vault_token::apply(c, d).await;
        }
        if is_rotation(action) {
            return rotate::apply(c, action).await;
        }
        match parse(action)? {
            Kube::RemoveBindings(sa) => {
                account(c, sa).await?;
                Ok(to_json(&bindings::remove(c, sa).await?))
            }
            Kube::DeleteTokenSecrets(sa) => {
                account(c, sa).await?;
                let (state, before) = tokens::delete(c, sa).await?;
                self.mark(action, Mark::Tokens(before));
                Ok(to_json(&state))
            }
            Kube::RestartPods(sa) => {
                account(c, sa).await?;
                let state = std::sync::Arc::new(pods::restart(c, sa).await?);
                self.mark(action, Mark::Pods(state.clone()));
                Ok(to_json(&*state))
            }
            Kube::BlueGreen(sa, replacement) => Ok(to_json(
                &bluegreen::apply(c, sa, replacement, &self.options).await?,
            )),
            Kube::DeleteBinding(r) => Ok(to_json(&bindings::delete_one(c, &r).await?)),
            Kube::DeleteAccount(sa) => purge::apply(c, sa).await,
            Kube::Grant(g) => access::apply(c, g).await,
        }
    }

    /// Reads the action's effect back from the cluster: no binding names the account; none
    /// of its token secrets from before the apply is left (by uid: the token controller of
    /// clusters up to 1.23 makes a new one at once); the restarted pods' uids are gone; the
    /// blue-green rollout done and the old account gone; the binding gone.
    pub async fn verify(&self, action: &Action) -> Result<Verified, ConnectorError> {
        let c = &self.client;
        if let Some(d) = token_dest(action) {
            return vault_token::verify(c, d).await;
        }
        if is_rotation(action) {
            return rotate::verify(c, action).await;
        }
        match parse(action)? {
            Kube::RemoveBindings(sa) => bindings::verify_removed(c, sa).await,
            Kube::DeleteTokenSecrets(sa) => {
                let before = match self.marked(action) {
                    Some(Mark::Tokens(b)) => Some(b),
                    Some(Mark::Pods(_)) | None => None,
                };
                tokens::verify(c, sa, before.as_ref(), self.options.wait).await
            }
            Kube::RestartPods(sa) => {
                let done = match self.marked(action) {
                    Some(Mark::Pods(p)) => Some(p),
                    Some(Mark::Tokens(_)) | None => None,
                };
                pods::verify(c, sa, done.as_deref(), self.options.wait).await
            }
            Kube::BlueGreen(sa, replacement) => {
                bluegreen::verify(c, sa, replacement, self.options.rollout).await
            }
            Kube::DeleteBinding(r) => bindings::verify_deleted(c, &r).await,
            Kube::DeleteAccount(sa) => purge::verify(c, sa).await,
            Kube::Grant(g) => access::verify(c, g).await,
        }
    }

    /// Reverses an apply from its state, then verifies: bindings re-created as they were (or
    /// the subject put back where only it was removed), token secrets re-created empty (new
    /// tokens), the blue-green taken back. Restarted pods cannot be brought back.
    pub async fn undo(&self, action: &Action, state: &Value) -> Result<Verified, ConnectorError> {
        let c = &self.client;
        if let Some(d) = token_dest(action) {
            return vault_token::undo(c, d, state).await;
        }
        if is_rotation(action) {
            return rotate::undo(c, action, state).await;
        }
        let target = action.target();
        match parse(action)? {
            Kube::RemoveBindings(_) => {
                let s: bindings::RemoveState = state_of(state, &target)?;
                bindings::restore(c, &s).await?;
                bindings::verify_restored(c, &s).await
            }
            Kube::DeleteTokenSecrets(sa) => {
                let s: tokens::TokensState = state_of(state, &target)?;
                tokens::recreate(c, sa, &s, self.options.wait).await
            }
            Kube::RestartPods(_) => Err(precondition(
                target,
                "restarted pods cannot be brought back (their controllers made new ones)",
            )),
            Kube::BlueGreen(sa, _) => {
                let s: bluegreen::BlueGreenState = state_of(state, &target)?;
                bluegreen::reverse(c, sa, &s, &self.options).await?;
                bluegreen::verify_reversed(c, sa, &s, self.options.rollout).await
            }
            Kube::DeleteBinding(r) => {
                let s: bindings::DeletedBinding = state_of(state, &target)?;
                bindings::recreate(c, &r, &s).await
            }
            Kube::DeleteAccount(_) => Err(precondition(
                target,
                "a deleted service account cannot be brought back: the plan's evidence holds it",
            )),
            Kube::Grant(g) => access::undo(c, g).await,
        }
    }
}

/// A Vault token's write into a Kubernetes Secret (see `vault_token.rs`).
fn token_dest(action: &Action) -> Option<vault_token::Dest<'_>> {
    let Action::WriteVaultToken {
        into: crate::rotate::SecretLocation::Kubernetes { namespace, name },
        key,
    } = action
    else {
        return None;
    };
    Some(vault_token::Dest {
        ns: namespace,
        name,
        key,
    })
}

/// A rotation's write to a Kubernetes Secret (see `rotate.rs`).
fn is_rotation(action: &Action) -> bool {
    matches!(
        action,
        Action::UpdateSecretValue {
            location: crate::rotate::SecretLocation::Kubernetes { .. },
            ..
        }
    )
}

impl KubeConnector {
    /// The Secrets (`(namespace, name)`) in `namespaces` (every namespace when empty) whose
    /// data holds `key_id`; data is searched in memory only.
    pub async fn secrets_containing(
        &self,
        key_id: &str,
        namespaces: &[String],
    ) -> Result<Vec<(String, String)>, ConnectorError> {
        rotate::containing(&self.client, key_id, namespaces).await
    }
}

fn state_of<T: DeserializeOwned>(state: &Value, target: &str) -> Result<T, ConnectorError> {
    serde_json::from_value(state.clone()).map_err(|e| {
        precondition(
            target,
            format!("the step's recorded state is not what its undo needs: {e}"),
        )
    })
}

fn cluster_of(action: &Action) -> Option<&str> {
    match action {
        Action::RemoveBindings { cluster, .. }
        | Action::DeleteTokenSecrets { cluster, .. }
        | Action::RestartPods { cluster, .. }
        | Action::BlueGreen { cluster, .. }
        | Action::DeleteBinding { cluster, .. }
        | Action::CreateBinding { cluster, .. } => cluster.as_deref(),
        Action::DenyAll { .. }
        | Action::RevokeSessions { .. }
        | Action::DeactivateAccessKey { .. }
        | Action::DeleteLoginProfile { .. }
        | Action::ListMfaDevices { .. }
        | Action::DenyWebIdentitySubject { .. }
        | Action::CreateAccessKey { .. }
        | Action::PromoteSecretVersion { .. }
        | Action::RestoreBaseline { .. }
        | Action::UpdateSecretValue { .. }
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
        | Action::Review { .. } => None,
    }
}

/// The service account, which the step's precondition needs.
async fn account(c: &Client, sa: Sa<'_>) -> Result<ServiceAccount, ConnectorError> {
    Api::<ServiceAccount>::namespaced(c.clone(), sa.ns)
        .get_opt(sa.name)
        .await
        .map_err(|e| api("get serviceaccount", sa, e))?
        .ok_or_else(|| precondition(sa, "the service account does not exist"))
}

/// The forensic state of a service account (see [`KubeConnector::snapshot`]).
async fn account_snapshot(c: &Client, sa: Sa<'_>) -> Result<Value, ConnectorError> {
    let account = Api::<ServiceAccount>::namespaced(c.clone(), sa.ns)
        .get_opt(sa.name)
        .await
        .map_err(|e| api("get serviceaccount", sa, e))?;
    let all = bindings::list_all(c).await?;
    let naming: Vec<bindings::Binding> = all.iter().filter(|b| b.names(sa)).cloned().collect();
    let roles = bindings::granted_roles(c, &naming).await?;
    let secrets: Vec<Value> = tokens::list(c, sa)
        .await?
        .iter()
        .map(tokens::summary)
        .collect();
    let pods = pods::running_as(c, sa).await?;
    let owners = pods::owners(c, sa.ns, &pods).await?;
    let deployments: Vec<Value> = Api::<Deployment>::namespaced(c.clone(), sa.ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| api("list deployments", sa, e))?
        .items
        .iter()
        .filter(|d| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .map(pods::template_sa_of)
                .as_deref()
                == Some(sa.name)
        })
        .map(pods::deployment_summary)
        .collect();
    Ok(json!({
        "target": sa.to_string(),
        "service_account": account.as_ref().map(to_json),
        "bindings": naming.iter().map(bindings::Binding::to_json).collect::<Vec<_>>(),
        "roles": roles,
        "group_bindings": bindings::via_groups(&all, sa),
        "token_secrets": secrets,
        "pods": pods.iter().map(pods::pod_summary).collect::<Vec<_>>(),
        "owners": owners,
        "deployments": deployments,
    }))
}

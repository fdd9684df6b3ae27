//! The Vault/OpenBao connector (feature `vault`): each Vault [`Action`] snapshotted, applied,
//! read back and undone through the HTTP API (`http.rs`), one server and one token.
//!
//! Layout: `identity.rs` (entities, token accessors and leases: `keyward disable`),
//! `kv.rs` (KV v2: where a rotated key lives, and a token's KV destination), `campaign.rs`
//! (a breach campaign's KV index and resume reads), `tokens.rs` (issue, verify, revoke, look
//! up), `leases.rs` (dynamic secrets for the broker, their leases renewed, looked up and
//! revoked). A token or a secret value is read into memory to be
//! written or compared, never logged or put in an error, and returned only by
//! `dynamic_secret` (to the broker, which hands it to the workload); results hold accessors
//! and version numbers.

use std::path::PathBuf;

use serde_json::Value;

use super::http::{Http, HttpError, connector};
use super::{AccessorInfo, Found, identity, kv, tokens};
use crate::action::Action;
use crate::rotate::SecretLocation;
use crate::rotate::handoff::{self, Secret};
use crate::{ConnectorError, Verified};

/// Where the connector talks to and as whom. `Debug` shows the token as `‹redacted›`.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// `https://vault.example:8200`.
    pub addr: String,
    pub token: Secret,
    /// Vault Enterprise / OpenBao namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    /// A PEM bundle of the CAs to trust instead of the platform's.
    pub ca_cert: Option<PathBuf>,
}

fn unavailable(why: impl Into<String>) -> ConnectorError {
    ConnectorError::Unavailable("vault", why.into())
}

impl VaultConfig {
    /// From the environment as the `vault` and `bao` CLIs read it: `VAULT_ADDR` or
    /// `BAO_ADDR`; `VAULT_TOKEN` or `BAO_TOKEN`, else `~/.vault-token`; `VAULT_NAMESPACE`
    /// (or `BAO_NAMESPACE`); `VAULT_CACERT` (or `BAO_CACERT`).
    pub fn from_env() -> Result<Self, ConnectorError> {
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
        };
        let addr = var(&["VAULT_ADDR", "BAO_ADDR"])
            .ok_or_else(|| unavailable("neither VAULT_ADDR nor BAO_ADDR is set"))?;
        let token = match var(&["VAULT_TOKEN", "BAO_TOKEN"]) {
            Some(t) => t,
            None => {
                let home = std::env::var_os("HOME").map(PathBuf::from);
                let file = home.map(|h| h.join(".vault-token"));
                match file.as_ref().map(std::fs::read_to_string) {
                    Some(Ok(t)) if !t.trim().is_empty() => t,
                    _ => {
                        return Err(unavailable(
                            "no token: set VAULT_TOKEN (or BAO_TOKEN) or log in (`vault login` writes ~/.vault-token)",
                        ));
                    }
                }
            }
        };
        Ok(VaultConfig {
            addr: addr.trim().to_owned(),
            token: Secret::new(token.trim().to_owned()),
            namespace: var(&["VAULT_NAMESPACE", "BAO_NAMESPACE"]),
            ca_cert: var(&["VAULT_CACERT", "BAO_CACERT"]).map(PathBuf::from),
        })
    }
}

/// The Vault/OpenBao connector: one server, one token.
#[derive(Clone)]
pub struct VaultConnector {
    pub(super) http: Http,
}

impl std::fmt::Debug for VaultConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultConnector")
            .field("addr", &self.http.addr())
            .finish_non_exhaustive()
    }
}

/// A Vault error as the connector's: the call, the target, Vault's message.
pub(super) fn api(call: &str, target: &str, e: HttpError) -> ConnectorError {
    ConnectorError::Api {
        call: call.to_owned(),
        target: target.to_owned(),
        message: e.to_string(),
    }
}

pub(super) fn precondition(target: &str, message: impl Into<String>) -> ConnectorError {
    ConnectorError::Precondition {
        target: target.to_owned(),
        message: message.into(),
    }
}

pub(super) fn verified(ok: bool, observed: String) -> Verified {
    Verified { ok, observed }
}

impl VaultConnector {
    /// From the environment ([`VaultConfig::from_env`]).
    pub fn from_env() -> Result<Self, ConnectorError> {
        Self::from_config(VaultConfig::from_env()?)
    }

    pub fn from_config(c: VaultConfig) -> Result<Self, ConnectorError> {
        if !(c.addr.starts_with("http://") || c.addr.starts_with("https://")) {
            return Err(unavailable(format!(
                "the address `{}` is not an http:// or https:// URL",
                c.addr
            )));
        }
        let conn = connector(c.ca_cert.as_deref()).map_err(unavailable)?;
        Ok(VaultConnector {
            http: Http::new(conn, &c.addr, c.token, c.namespace),
        })
    }

    /// The server's address.
    pub fn addr(&self) -> &str {
        self.http.addr()
    }

    /// The connector's own token: `vault:accessor/ACC` and, when it has one,
    /// `vault:entity/ID` (never to be revoked or disabled by a plan).
    pub async fn own_principals(&self) -> Result<Vec<String>, ConnectorError> {
        let doc = self
            .http
            .get("auth/token/lookup-self")
            .await
            .map_err(|e| api("auth/token/lookup-self", self.addr(), e))?
            .unwrap_or_default();
        let s = |p: &str| {
            doc.pointer(p)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let mut out = Vec::new();
        if let Some(a) = s("/data/accessor") {
            out.push(format!("vault:accessor/{a}"));
        }
        if let Some(e) = s("/data/entity_id") {
            out.push(format!("vault:entity/{e}"));
        }
        Ok(out)
    }

    /// Who an accessor is, whether its token is valid, when it expires (monitoring).
    pub async fn lookup_accessor(&self, accessor: &str) -> Result<AccessorInfo, ConnectorError> {
        tokens::lookup_accessor(&self.http, accessor).await
    }

    /// The KV v2 secrets whose current data holds `key_id`: under `mounts` (every KV v2
    /// mount `sys/mounts` lists when empty), walked with LIST (bounded). Values are searched
    /// in memory and dropped. The second value says what could not be searched.
    pub async fn secrets_containing(
        &self,
        key_id: &str,
        mounts: &[String],
    ) -> Result<(Vec<SecretLocation>, Vec<String>), ConnectorError> {
        kv::containing(&self.http, key_id, mounts).await
    }

    /// What stands for an identity in Vault, given the names it may go by
    /// ([`super::candidates`]): entities by alias or name, tokens by entity, display name or
    /// metadata, lease prefixes by role name.
    pub async fn find(&self, candidates: &[String]) -> Result<Found, ConnectorError> {
        identity::find(&self.http, candidates).await
    }

    /// The forensic state of the action's target (metadata, never a value or a token).
    pub async fn snapshot(&self, action: &Action) -> Result<Value, ConnectorError> {
        let h = &self.http;
        match parse(action)? {
            V::Entity(id) => identity::entity_snapshot(h, id).await,
            V::Token(accessor) => Ok(serde_json::to_value(
                tokens::lookup_accessor(h, accessor).await?,
            )
            .unwrap_or_default()),
            V::Leases(prefix) => identity::leases_snapshot(h, prefix).await,
            V::Issue { role, .. } => tokens::role_snapshot(h, role).await,
            V::Kv { mount, path } | V::Write { mount, path, .. } => {
                kv::snapshot(h, mount, path).await
            }
            V::Verify { dest } => Ok(serde_json::json!({"destination": dest})),
        }
    }

    /// Performs the action; returns what undo needs (never a token or a value).
    pub async fn apply(&self, action: &Action) -> Result<Value, ConnectorError> {
        let h = &self.http;
        match parse(action)? {
            V::Entity(id) => identity::set_disabled(h, id, true).await,
            V::Token(accessor) => tokens::revoke(h, accessor).await,
            V::Leases(prefix) => identity::revoke_leases(h, prefix).await,
            V::Issue { .. } => tokens::issue(h, action).await,
            V::Verify { dest } => tokens::verify_new(h, &dest).await.map(|(state, _)| state),
            V::Write {
                mount,
                path,
                dest,
                key,
            } => kv::write_token(h, mount, path, &dest, key).await,
            V::Kv { mount, path } => kv::rotate_write(h, action, mount, path).await,
        }
    }

    /// Reads the action's effect back from Vault.
    pub async fn verify(&self, action: &Action) -> Result<Verified, ConnectorError> {
        let h = &self.http;
        match parse(action)? {
            V::Entity(id) => identity::verify_disabled(h, id, true).await,
            V::Token(accessor) => tokens::verify_revoked(h, accessor).await,
            V::Leases(prefix) => identity::verify_leases_gone(h, prefix).await,
            V::Issue { dest, .. } => tokens::verify_issued(h, &dest).await,
            V::Verify { dest } => {
                let (_, v) = tokens::verify_new(h, &dest).await?;
                // Written and working: the token leaves this process's memory (a later
                // issue for the same destination makes a new one).
                if v.ok {
                    handoff::forget_token(&dest);
                }
                Ok(v)
            }
            V::Write {
                mount,
                path,
                dest,
                key,
            } => kv::verify_token(h, mount, path, &dest, key).await,
            V::Kv { mount, path } => kv::rotate_verify(h, action, mount, path).await,
        }
    }

    /// Reverses an apply from its recorded state, then verifies.
    pub async fn undo(&self, action: &Action, state: &Value) -> Result<Verified, ConnectorError> {
        let h = &self.http;
        match parse(action)? {
            V::Entity(id) => {
                let was = state
                    .get("was_disabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                identity::set_disabled(h, id, was).await?;
                identity::verify_disabled(h, id, was).await
            }
            V::Issue { dest, .. } => tokens::undo_issue(h, state, &dest).await,
            V::Verify { .. } => Ok(verified(
                true,
                "nothing to undo: the token was only used".into(),
            )),
            V::Write { mount, path, .. } | V::Kv { mount, path } => {
                kv::undo_write(h, action, mount, path, state).await
            }
            V::Token(_) | V::Leases(_) => Err(precondition(
                &action.target(),
                "a revoked token or lease cannot be brought back",
            )),
        }
    }
}

/// A Vault action, parsed once.
enum V<'a> {
    Entity(&'a str),
    Token(&'a str),
    Leases(&'a str),
    Issue {
        role: &'a str,
        dest: String,
    },
    /// A token written into a KV v2 secret's field.
    Write {
        mount: &'a str,
        path: &'a str,
        dest: String,
        key: &'a str,
    },
    Verify {
        dest: String,
    },
    /// A rotated access key written into a KV v2 secret.
    Kv {
        mount: &'a str,
        path: &'a str,
    },
}

fn parse(action: &Action) -> Result<V<'_>, ConnectorError> {
    Ok(match action {
        Action::DisableVaultEntity { id, .. } => V::Entity(id),
        Action::RevokeVaultToken { accessor, .. } => V::Token(accessor),
        Action::RevokeVaultLeases { prefix } => V::Leases(prefix),
        Action::IssueVaultToken {
            role, into, key, ..
        } => V::Issue {
            role,
            dest: super::dest_key(into, key),
        },
        Action::VerifyVaultToken { into, key } => V::Verify {
            dest: super::dest_key(into, key),
        },
        Action::WriteVaultToken {
            into: into @ SecretLocation::Vault { mount, path },
            key,
        } => V::Write {
            mount,
            path,
            dest: super::dest_key(into, key),
            key,
        },
        Action::UpdateSecretValue {
            location: SecretLocation::Vault { mount, path },
            ..
        } => V::Kv { mount, path },
        Action::WriteVaultToken {
            into: SecretLocation::Kubernetes { .. } | SecretLocation::Secretsmanager { .. },
            ..
        }
        | Action::UpdateSecretValue {
            location: SecretLocation::Kubernetes { .. } | SecretLocation::Secretsmanager { .. },
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
        | Action::CreateAccessKey { .. }
        | Action::PromoteSecretVersion { .. }
        | Action::RestoreBaseline { .. }
        | Action::VerifyAccessKey { .. }
        | Action::Delete { .. }
        | Action::AttachPolicy { .. }
        | Action::AddToGroup { .. }
        | Action::CreateBinding { .. }
        | Action::Review { .. } => return Err(not_vault(action)),
    })
}

fn not_vault(action: &Action) -> ConnectorError {
    precondition(
        &action.target(),
        format!("`{}` is not a Vault action", action.name()),
    )
}

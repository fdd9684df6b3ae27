//! `keyward.yaml`'s `broker:` section: the credential broker of `keyward serve`, and the
//! platforms it mints on (the AWS and OpenBao connectors, when built in).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keyward_broker::lease::Ttl;
use keyward_broker::verify::TrustedIssuer;
use keyward_model::lease::LeaseKind;
use keyward_model::time::Millis;
use keyward_respond::playbook::parse_duration;
use keyward_server::broker::{
    AssumeRequest, AwsCredentials, BrokerConfig, PlatformFuture, Platforms, SecretLease,
};
use serde::Deserialize;

/// The section as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    /// The issuer's URL as workloads and verifiers reach it, ending in `/broker`
    /// (`https://keyward.example/broker`).
    pub issuer: String,
    /// The SPIFFE trust domain of SVIDs (default `keyward.local`).
    pub trust_domain: Option<String>,
    /// Whose tokens prove a workload: Kubernetes clusters, GitHub Actions, other OIDC issuers.
    #[serde(default)]
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// TTLs per credential kind (`jwt`, `aws`, `svid`, `secret`): `{default: 15m, max: 1h}`.
    #[serde(default)]
    pub ttl: BTreeMap<String, TtlSection>,
    /// Dynamic secrets by name: the OpenBao path that mints one (`database/creds/app`).
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// How often the signing key is replaced (default 24h).
    pub rotate_keys_every: Option<String>,
    /// Workloads that are AI agents (inventory key or subject; `*` ends a prefix): their AWS
    /// credentials get the agent boundary, and every credential at most `agent_max_ttl`.
    #[serde(default)]
    pub agents: Vec<String>,
    /// Default 15m.
    pub agent_max_ttl: Option<String>,
    /// Where the keyring and CA files are (default: the data directory).
    pub keys_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtlSection {
    pub default: Option<String>,
    pub max: Option<String>,
}

/// The defaults: JWTs 15 min (1 h at most), AWS 15 min (1 h), SVIDs 1 h (24 h), secrets
/// 15 min (1 h).
fn default_ttl(kind: LeaseKind) -> Ttl {
    let (d, m) = match kind {
        LeaseKind::Jwt | LeaseKind::Aws | LeaseKind::Secret => (15, 60),
        LeaseKind::Svid => (60, 24 * 60),
    };
    Ttl {
        default_ms: d * 60_000,
        max_ms: m * 60_000,
    }
}

fn duration(what: &str, s: Option<&str>, default: Millis) -> Result<Millis, String> {
    match s {
        None => Ok(default),
        Some(s) => parse_duration(s).map_err(|e| format!("{what}: {e}")),
    }
}

impl BrokerSection {
    pub fn check(&self) -> Result<(), String> {
        if !self.issuer.ends_with("/broker") {
            return Err(format!(
                "issuer `{}` must end in `/broker` (where `keyward serve` serves it)",
                self.issuer
            ));
        }
        for k in self.ttl.keys() {
            if LeaseKind::parse(k).is_none() {
                return Err(format!(
                    "ttl.{k}: not a credential kind (jwt, aws, svid, secret)"
                ));
            }
        }
        self.ttls()?;
        duration("rotate_keys_every", self.rotate_keys_every.as_deref(), 0)?;
        duration("agent_max_ttl", self.agent_max_ttl.as_deref(), 0)?;
        Ok(())
    }

    fn ttls(&self) -> Result<BTreeMap<&'static str, Ttl>, String> {
        LeaseKind::ALL
            .iter()
            .map(|k| {
                let d = default_ttl(*k);
                let t = match self.ttl.get(k.as_str()) {
                    None => d,
                    Some(t) => Ttl {
                        default_ms: duration(
                            &format!("ttl.{}.default", k.as_str()),
                            t.default.as_deref(),
                            d.default_ms,
                        )?,
                        max_ms: duration(
                            &format!("ttl.{}.max", k.as_str()),
                            t.max.as_deref(),
                            d.max_ms,
                        )?,
                    },
                };
                if t.default_ms > t.max_ms {
                    return Err(format!(
                        "ttl.{}: the default is longer than the maximum",
                        k.as_str()
                    ));
                }
                Ok((k.as_str(), t))
            })
            .collect()
    }

    /// The broker's configuration; relative paths are relative to the configuration file.
    pub fn resolve(
        &self,
        config_file: Option<&Path>,
        data_dir: &Path,
    ) -> Result<BrokerConfig, String> {
        let base = config_file.and_then(Path::parent).unwrap_or(Path::new("."));
        let rel = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let keys = self
            .keys_dir
            .as_deref()
            .map_or_else(|| data_dir.to_owned(), rel);
        let trusted = self
            .trusted_issuers
            .iter()
            .cloned()
            .map(|mut t| {
                t.ca_file = t.ca_file.as_deref().map(rel);
                t.bearer_token_file = t.bearer_token_file.as_deref().map(rel);
                t
            })
            .collect();
        Ok(BrokerConfig {
            issuer: self.issuer.clone(),
            trust_domain: self
                .trust_domain
                .clone()
                .unwrap_or_else(|| "keyward.local".into()),
            trusted,
            keys_file: keys.join("broker-keys.json"),
            ca_cert: keys.join("broker-ca.pem"),
            ca_key: keys.join("broker-ca.key"),
            ttl: self.ttls()?,
            secrets: self.secrets.clone(),
            rotate_every_ms: duration(
                "rotate_keys_every",
                self.rotate_keys_every.as_deref(),
                24 * 3_600_000,
            )?,
            agents: self.agents.clone(),
            agent_ttl_ms: duration("agent_max_ttl", self.agent_max_ttl.as_deref(), 15 * 60_000)?,
        })
    }
}

/// The AWS and OpenBao connectors, from the environment (`AWS_*`, `VAULT_ADDR`/`BAO_ADDR`
/// and their tokens), made on first use.
#[derive(Default)]
pub struct Connectors {
    #[cfg(feature = "aws")]
    aws: tokio::sync::OnceCell<keyward_respond::aws::AwsConnector>,
    #[cfg(feature = "vault")]
    vault: std::sync::OnceLock<keyward_respond::vault::VaultConnector>,
}

impl Connectors {
    #[cfg(feature = "aws")]
    async fn aws(&self) -> Result<&keyward_respond::aws::AwsConnector, String> {
        self.aws
            .get_or_try_init(|| async {
                keyward_respond::aws::AwsConnector::from_env()
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
    }

    #[cfg(feature = "vault")]
    fn vault(&self) -> Result<&keyward_respond::vault::VaultConnector, String> {
        if let Some(v) = self.vault.get() {
            return Ok(v);
        }
        let v = keyward_respond::vault::VaultConnector::from_env().map_err(|e| e.to_string())?;
        Ok(self.vault.get_or_init(|| v))
    }
}

#[cfg(not(feature = "aws"))]
const NO_AWS: &str = "the AWS connector is not built in (feature `aws`)";
#[cfg(not(feature = "vault"))]
const NO_VAULT: &str = "the OpenBao connector is not built in (feature `vault`)";

impl Platforms for Connectors {
    fn assume_role(&self, req: AssumeRequest) -> PlatformFuture<'_, AwsCredentials> {
        Box::pin(async move {
            #[cfg(feature = "aws")]
            {
                let c = self
                    .aws()
                    .await?
                    .assume_role_for(&keyward_respond::aws::AssumeFor {
                        role_arn: req.role_arn,
                        session_name: req.session_name,
                        duration_secs: req.duration_secs,
                        source_identity: req.source_identity,
                        session_tags: req.tags,
                        session_policy: req.session_policy,
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(AwsCredentials {
                    access_key_id: c.access_key_id,
                    secret_access_key: c.secret_access_key,
                    session_token: c.session_token,
                    expiration: c.expiration,
                    assumed_role_arn: c.assumed_role_arn,
                })
            }
            #[cfg(not(feature = "aws"))]
            {
                let _ = req;
                Err(NO_AWS.to_owned())
            }
        })
    }

    fn agent_boundary(&self) -> String {
        keyward_respond::aws::agent_boundary_policy()
    }

    fn dynamic_secret<'a>(&'a self, path: &'a str) -> PlatformFuture<'a, SecretLease> {
        Box::pin(async move {
            #[cfg(feature = "vault")]
            {
                let s = self
                    .vault()?
                    .dynamic_secret(path)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(SecretLease {
                    lease_id: s.lease_id,
                    lease_duration_secs: s.lease_duration_secs,
                    renewable: s.renewable,
                    data: s.data,
                })
            }
            #[cfg(not(feature = "vault"))]
            {
                let _ = path;
                Err(NO_VAULT.to_owned())
            }
        })
    }

    fn renew_secret<'a>(&'a self, lease_id: &'a str, secs: u64) -> PlatformFuture<'a, u64> {
        Box::pin(async move {
            #[cfg(feature = "vault")]
            {
                let l = self
                    .vault()?
                    .renew_lease(lease_id, secs)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(l.lease_duration_secs)
            }
            #[cfg(not(feature = "vault"))]
            {
                let _ = (lease_id, secs);
                Err(NO_VAULT.to_owned())
            }
        })
    }

    fn revoke_secret<'a>(&'a self, lease_id: &'a str) -> PlatformFuture<'a, ()> {
        Box::pin(async move {
            #[cfg(feature = "vault")]
            {
                self.vault()?
                    .revoke_lease(lease_id)
                    .await
                    .map_err(|e| e.to_string())
            }
            #[cfg(not(feature = "vault"))]
            {
                let _ = lease_id;
                Err(NO_VAULT.to_owned())
            }
        })
    }

    fn revoke_session<'a>(
        &'a self,
        role_arn: &'a str,
        session_name: &'a str,
        expires_at: Millis,
        now: Millis,
    ) -> PlatformFuture<'a, String> {
        Box::pin(async move {
            #[cfg(feature = "aws")]
            {
                let r = self
                    .aws()
                    .await?
                    .revoke_session(role_arn, session_name, expires_at, now)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "AWS session {} denied until its expiry by {role_arn}'s inline policy {} ({} before)",
                    r.user_id,
                    keyward_respond::aws::REVOKED_SESSIONS_POLICY,
                    match r.before {
                        Some(doc) => format!("it read {doc}"),
                        None => "there was none".to_owned(),
                    }
                ))
            }
            #[cfg(not(feature = "aws"))]
            {
                let _ = (role_arn, session_name, expires_at, now);
                Err(NO_AWS.to_owned())
            }
        })
    }
}

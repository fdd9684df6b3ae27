//! The credential broker inside `keyward serve`: a workload's proof checked
//! (`keyward_broker::verify`), Cedar asked (`issue` on a `Credential`), the credential
//! minted, and its lease committed with its audit entry before anything is returned.
//!
//! - [`Broker`]: the issuer's keys, the verifier, the SVID CA, TTLs, the platforms.
//! - The ledger ([`Ledger`]): issuances wait for one commit shared by everything issued
//!   meanwhile (group commit on the engine thread), so thousands per second cost a few
//!   transactions, and none is returned before it is stored.
//! - [`Platforms`]: AWS STS and OpenBao, supplied by the binary with its connectors.
//!
//! Routes: `crate::api::broker`.

mod ledger;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

use keyward_broker::Workload;
use keyward_broker::keys::Keyring;
use keyward_broker::lease::Ttl;
use keyward_broker::svid::Ca;
use keyward_broker::verify::{TrustedIssuer, Verifier};
use keyward_model::lease::LeaseKind;
use keyward_model::time::Millis;

pub(crate) mod issue;
pub(crate) use issue::{Asked, Issued, issue, renew, revoke_tree};
pub(crate) use ledger::Ledger;

use crate::error::ApiError;

/// A boxed future of a platform call.
pub type PlatformFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// AWS credentials a workload asked for.
#[derive(Debug, Clone)]
pub struct AssumeRequest {
    pub role_arn: String,
    /// The lease id: CloudTrail names the session by it.
    pub session_name: String,
    pub duration_secs: u32,
    /// The workload's subject (`sts:SourceIdentity`, kept through role chaining).
    pub source_identity: Option<String>,
    pub tags: Vec<(String, String)>,
    /// The agent boundary, when it applies.
    pub session_policy: Option<String>,
}

/// STS's answer. `Debug` never shows the secret or the session token.
#[derive(Clone, serde::Serialize)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: Millis,
    pub assumed_role_arn: String,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("assumed_role_arn", &self.assumed_role_arn)
            .finish_non_exhaustive()
    }
}

/// OpenBao's answer for a dynamic secret. `Debug` shows the data's keys only.
#[derive(Clone)]
pub struct SecretLease {
    pub lease_id: String,
    pub lease_duration_secs: u64,
    pub renewable: bool,
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for SecretLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretLease")
            .field("lease_id", &self.lease_id)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The platforms the broker mints on; the binary supplies them with its connectors.
pub trait Platforms: Send + Sync {
    fn assume_role(&self, req: AssumeRequest) -> PlatformFuture<'_, AwsCredentials>;
    /// The agent boundary: the session policy AI agents' AWS credentials get.
    fn agent_boundary(&self) -> String;
    fn dynamic_secret<'a>(&'a self, path: &'a str) -> PlatformFuture<'a, SecretLease>;
    fn renew_secret<'a>(&'a self, lease_id: &'a str, secs: u64) -> PlatformFuture<'a, u64>;
    fn revoke_secret<'a>(&'a self, lease_id: &'a str) -> PlatformFuture<'a, ()>;
    /// Ends the AWS session `session_name` (a lease id) of `role_arn` before its expiry
    /// `expires_at`; says how, for the audit entry.
    fn revoke_session<'a>(
        &'a self,
        role_arn: &'a str,
        session_name: &'a str,
        expires_at: Millis,
        now: Millis,
    ) -> PlatformFuture<'a, String>;
}

/// How the broker is set up (`keyward.yaml`'s `broker:`).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The issuer's URL as workloads and verifiers reach it (`https://keyward.example/broker`):
    /// tokens' `iss`, and where the discovery document and keys are served.
    pub issuer: String,
    /// The SPIFFE trust domain of the SVIDs.
    pub trust_domain: String,
    pub trusted: Vec<TrustedIssuer>,
    /// The keyring file and the CA's certificate and key files.
    pub keys_file: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub ttl: BTreeMap<&'static str, Ttl>,
    /// Dynamic secrets by name: the OpenBao path that mints one (`database/creds/app`).
    pub secrets: BTreeMap<String, String>,
    /// Signing keys are replaced this often; a retired key stays published for the
    /// longest token TTL after.
    pub rotate_every_ms: Millis,
    /// Workloads that are AI agents (their inventory key or subject; `*` ends a prefix):
    /// their credentials get the agent boundary and at most `agent_ttl_ms`.
    pub agents: Vec<String>,
    pub agent_ttl_ms: Millis,
}

impl BrokerConfig {
    /// The TTLs of one kind of credential.
    pub fn ttl(&self, kind: LeaseKind) -> Ttl {
        self.ttl.get(kind.as_str()).copied().unwrap_or(Ttl {
            default_ms: 15 * 60_000,
            max_ms: 60 * 60_000,
        })
    }

    /// Whether a workload is one of the configured AI agents.
    pub fn is_agent(&self, w: &Workload) -> bool {
        self.agents.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => w.identity.starts_with(prefix) || w.subject.starts_with(prefix),
            None => w.identity == *p || w.subject == *p,
        })
    }
}

/// Proofs already verified, by the BLAKE3 of the token, until they expire: a workload
/// presents the same token for its lifetime.
#[derive(Default)]
struct ProofCache {
    map: std::collections::HashMap<[u8; 32], Workload>,
}

const PROOF_CACHE_MAX: usize = 16_384;

/// The broker's state in the server.
pub struct Broker {
    pub config: BrokerConfig,
    pub(crate) keyring: RwLock<Keyring>,
    pub(crate) verifier: Verifier,
    pub(crate) ca: Ca,
    pub(crate) platforms: Option<Arc<dyn Platforms>>,
    pub(crate) ledger: Ledger,
    proofs: Mutex<ProofCache>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

/// Why the broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("the broker's signing keys: {0}")]
    Keys(#[from] keyward_broker::keys::KeyError),
    #[error("the broker's trusted issuers: {0}")]
    Verifier(#[from] keyward_broker::verify::VerifyError),
    #[error("the broker's SVID CA: {0}")]
    Ca(#[from] keyward_broker::svid::SvidError),
    #[error("the broker's issuer `{0}` must be an absolute http(s) URL without a trailing slash")]
    Issuer(String),
    /// A thread panicked holding the keyring.
    #[error("the broker's keyring is unusable: a thread panicked holding it")]
    Poisoned,
}

impl Broker {
    /// Opens the keyring and the CA (each created on first use) and the verifier. Must be
    /// called inside the server's runtime (the ledger's task starts here).
    pub fn open(
        config: BrokerConfig,
        platforms: Option<Arc<dyn Platforms>>,
        engine: crate::EngineHandle,
        now: Millis,
    ) -> Result<Broker, BrokerError> {
        let ok_scheme =
            config.issuer.starts_with("https://") || config.issuer.starts_with("http://");
        if !ok_scheme || config.issuer.ends_with('/') {
            return Err(BrokerError::Issuer(config.issuer.clone()));
        }
        let keyring = Keyring::open(&config.keys_file, now)?;
        let ca = Ca::open(&config.ca_cert, &config.ca_key, &config.trust_domain, now)?;
        let verifier = Verifier::new(config.trusted.clone())?;
        Ok(Broker {
            keyring: RwLock::new(keyring),
            verifier,
            ca,
            platforms,
            ledger: Ledger::start(engine),
            proofs: Mutex::default(),
            config,
        })
    }

    /// The workload a bearer proof names: a token Keyward issued (checked against its own
    /// keys), else a trusted issuer's token; verified proofs are remembered until they
    /// expire.
    pub(crate) async fn prove(&self, token: &str, now: Millis) -> Result<Workload, ApiError> {
        let key = *blake3::hash(token.as_bytes()).as_bytes();
        if let Some(w) = self
            .proofs
            .lock()
            .ok()
            .and_then(|c| c.map.get(&key).cloned())
            && w.expires_at > now
        {
            return Ok(w);
        }
        let own = keyward_broker::jose::peek(token)
            .ok()
            .is_some_and(|p| p.issuer() == Some(self.config.issuer.as_str()));
        let w = if own {
            let claims = {
                let ring = self
                    .keyring
                    .read()
                    .map_err(|_| ApiError::internal("keyring"))?;
                keyward_broker::verify::verify_own(token, &ring, &self.config.issuer, now)
            }
            .map_err(unauthorized)?;
            issue::workload_of_own(&claims)?
        } else {
            self.verifier
                .verify(token, now)
                .await
                .map_err(unauthorized)?
        };
        if let Ok(mut c) = self.proofs.lock() {
            if c.map.len() >= PROOF_CACHE_MAX {
                c.map.retain(|_, w| w.expires_at > now);
                if c.map.len() >= PROOF_CACHE_MAX {
                    c.map.clear();
                }
            }
            c.map.insert(key, w.clone());
        }
        Ok(w)
    }

    /// Forgets every remembered proof (a lease was revoked: its tokens prove nothing now).
    pub(crate) fn forget_proofs(&self) {
        if let Ok(mut c) = self.proofs.lock() {
            c.map.clear();
        }
    }

    /// Rotates the signing key when it is due and drops retired keys past their overlap.
    pub fn maintain_keys(&self, now: Millis) -> Result<bool, BrokerError> {
        let overlap = LeaseKind::ALL
            .iter()
            .map(|k| self.config.ttl(*k).max_ms)
            .max()
            .unwrap_or(3_600_000)
            .saturating_add(60_000);
        let mut ring = self.keyring.write().map_err(|_| BrokerError::Poisoned)?;
        let rotated = ring.rotate_if_due(now, self.config.rotate_every_ms, overlap)?;
        ring.prune(now)?;
        Ok(rotated)
    }
}

/// A proof that did not check out: 401, with why (never the token).
fn unauthorized(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        format!("the workload's proof was refused: {e}"),
    )
}

/// How often the broker's upkeep runs: key rotation when due, and leases past their
/// expiry recorded as expired (their identities gone from the inventory).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Starts the broker's upkeep on the current runtime.
pub fn spawn_upkeep(broker: Arc<Broker>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        loop {
            tick.tick().await;
            let now = crate::now();
            if let Err(e) = broker.maintain_keys(now) {
                eprintln!("keyward: broker key rotation: {e}");
            }
            if let Err(e) = broker.ledger.expire_due(now).await {
                eprintln!("keyward: broker lease expiry: {}", e.message);
            }
        }
    });
}

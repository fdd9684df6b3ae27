//! The credential broker: a workload proves who it is with what it already holds (a
//! Kubernetes service-account token, a GitHub Actions or other OIDC token, an mTLS client
//! certificate, or a token Keyward issued it), Cedar decides, and the broker mints a
//! short-lived credential under a lease.
//!
//! - [`jose`]: JWS compact tokens on ring (ES256 signed; RS256, ES256, ES384 and EdDSA
//!   verified) and JSON Web Keys.
//! - [`keys`]: Keyward's own OIDC issuer: its signing keys (rotated with overlap), the
//!   discovery document and the JWKS.
//! - [`verify`]: workload proofs checked against their issuers' discovery and JWKS.
//! - [`svid`]: X.509 SVIDs (`spiffe://<trust-domain>/…`) from the broker's CA.
//! - [`lease`]: what was issued, to whom, under which parent, until when.
//!
//! Pure where it can be: no store and no engine here; `keyward serve` keeps the leases
//! and audits every issuance.

pub mod jose;
pub mod keys;
pub mod lease;
pub mod svid;
pub mod verify;

use std::collections::BTreeMap;

use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};

/// Writes `bytes` to a temporary file beside `path` with `mode`, synced, then renames it
/// over `path` and syncs the directory: a reader never sees half a file, and a crash keeps
/// either the old file or the new one (the keyring, the CA, an SVID's key).
pub fn write_atomically(path: &std::path::Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// How a workload proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofKind {
    /// A Kubernetes service-account token (projected or legacy), checked against the
    /// cluster's OIDC discovery and JWKS.
    Kubernetes,
    /// A GitHub Actions OIDC token.
    GithubActions,
    /// Any other OIDC issuer's token.
    Oidc,
    /// A token Keyward's own issuer signed (a lease's token): what it gets is issued under
    /// that lease.
    Keyward,
    /// An mTLS client certificate (a SPIFFE id in its URI SAN, else its subject).
    Mtls,
}

impl ProofKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProofKind::Kubernetes => "kubernetes",
            ProofKind::GithubActions => "github_actions",
            ProofKind::Oidc => "oidc",
            ProofKind::Keyward => "keyward",
            ProofKind::Mtls => "mtls",
        }
    }
}

/// A workload whose proof checked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    pub proof: ProofKind,
    /// The proof's issuer: the token's `iss`, or the client certificate's issuer.
    pub issuer: String,
    /// The token's `sub`, or the certificate's SPIFFE id (else its subject).
    pub subject: String,
    /// Its key in Keyward's inventory (`keyward_model::ids`): a service account's
    /// `ids::k8s_service_account`, an OIDC subject's `ids::oidc`, a lease's identity.
    pub identity: String,
    /// What policies may test (`namespace`, `service_account`, `repository`, `ref`,
    /// `environment`, `workflow`, `trust_domain`, `audience`, …).
    pub attrs: BTreeMap<String, String>,
    /// When the proof stops being valid.
    pub expires_at: Millis,
    /// A Keyward-issued proof: the lease it came from (the parent of what it gets now).
    pub lease: Option<String>,
}

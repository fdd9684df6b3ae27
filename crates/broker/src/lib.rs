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

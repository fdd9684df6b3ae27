//! A lease of the credential broker as it is stored and read back (the `broker-leases`
//! format): what was issued, to which workload, under which parent lease, until when.
//! Never a secret: a token's `jti`, an access key id, a certificate serial or OpenBao's
//! lease id identify what was issued.

use serde::{Deserialize, Serialize};

use crate::identity::{IdentityKind, Platform};
use crate::time::Millis;

/// What a lease stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseKind {
    /// A JWT from Keyward's own OIDC issuer.
    Jwt,
    /// AWS credentials from STS `AssumeRole`.
    Aws,
    /// An X.509 SVID from the broker's CA.
    Svid,
    /// A dynamic secret from OpenBao.
    Secret,
}

impl LeaseKind {
    pub const ALL: [LeaseKind; 4] = [
        LeaseKind::Jwt,
        LeaseKind::Aws,
        LeaseKind::Svid,
        LeaseKind::Secret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LeaseKind::Jwt => "jwt",
            LeaseKind::Aws => "aws",
            LeaseKind::Svid => "svid",
            LeaseKind::Secret => "secret",
        }
    }

    pub fn parse(s: &str) -> Option<LeaseKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a lease stands. An active lease past its expiry is expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    Active,
    Revoked,
    Expired,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Active => "active",
            LeaseState::Revoked => "revoked",
            LeaseState::Expired => "expired",
        }
    }
}

/// One lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub lease_id: String,
    pub kind: LeaseKind,
    pub state: LeaseState,
    /// The lease whose token proved the workload when this one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Who it was issued to: the workload's inventory key, kind, platform and name.
    pub workload: String,
    pub workload_kind: IdentityKind,
    pub workload_platform: Platform,
    pub workload_name: String,
    /// How the workload proved itself (`kubernetes`, `github_actions`, `oidc`, `keyward`,
    /// `mtls`), and the proof's issuer and subject.
    pub proof: String,
    pub issuer: String,
    pub subject: String,
    /// The inventory key of what created it: the workload, or the parent lease's identity.
    pub created_by: String,
    /// What was asked for: an audience, a role ARN, a SPIFFE id, a secret's name.
    pub target: String,
    /// The credential's own inventory key: the assumed-role session ARN of AWS credentials
    /// (as CloudTrail names it), else `keyward:lease/<lease_id>`.
    pub identity: String,
    /// How the platform knows it: a JWT's `jti`, an access key id, a certificate serial, an
    /// OpenBao lease id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The AWS account of AWS credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// A boundary the credential was issued under (`agent`: no IAM, deletion or
    /// security-policy changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<String>,
    /// The Cedar policies that permitted it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    pub issued_at: Millis,
    pub expires_at: Millis,
    /// Renewals never take it past this.
    pub max_expires_at: Millis,
    #[serde(default)]
    pub renewals: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LeaseRecord {
    /// Its state at `now`: an active lease past its expiry is expired.
    pub fn state_at(&self, now: Millis) -> LeaseState {
        match self.state {
            LeaseState::Active if now >= self.expires_at => LeaseState::Expired,
            s @ (LeaseState::Active | LeaseState::Revoked | LeaseState::Expired) => s,
        }
    }

    /// The inventory key of a lease that is not an AWS session.
    pub fn lease_identity(lease_id: &str) -> String {
        format!("keyward:lease/{lease_id}")
    }
}

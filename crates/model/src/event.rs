//! A normalized activity record: who did what, when, from where.

use serde::{Deserialize, Serialize};

use crate::time::Millis;

/// Which log format an event or observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    Cloudtrail,
    K8sAudit,
    IamAuthorizationDetails,
    IamCredentialReport,
    K8sSnapshot,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Cloudtrail => "cloudtrail",
            SourceKind::K8sAudit => "k8s-audit",
            SourceKind::IamAuthorizationDetails => "iam-authorization-details",
            SourceKind::IamCredentialReport => "iam-credential-report",
            SourceKind::K8sSnapshot => "k8s-snapshot",
        }
    }

    pub fn is_log(self) -> bool {
        matches!(self, SourceKind::Cloudtrail | SourceKind::K8sAudit)
    }
}

/// Store key of an event: 16 bytes of BLAKE3 over the source and its native id, so the same
/// event read from an S3 file and from a `lookup-events` export deduplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey(pub [u8; 16]);

/// A normalized event. Strings that are absent in the source stay `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The platform's own id (CloudTrail `eventID`, Kubernetes `auditID`).
    pub native_id: String,
    pub source: SourceKind,
    pub time: Millis,
    /// `eventSource:eventName` for CloudTrail (`iam.amazonaws.com:CreateAccessKey`),
    /// `verb resource[/subresource]` for Kubernetes (`create pods/exec`).
    pub action: String,
    /// Canonical id of the acting identity.
    pub actor: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub region: Option<String>,
    pub account: Option<String>,
    pub error_code: Option<String>,
    /// The object acted on when the record names one (role ARN, `namespace/name`).
    pub target: Option<String>,
    /// The credential used: access key id, service-account token credential id.
    pub credential: Option<String>,
    /// The AWS service that made the call on the actor's behalf (`invokedBy`).
    pub invoked_by: Option<String>,
    /// CloudTrail `sharedEventID`: the same call recorded in several accounts.
    pub shared_id: Option<String>,
    /// For Kubernetes audit, the rank of the stage (RequestReceived 0 … Panic 3); the most
    /// complete stage of one request is kept.
    pub stage: u8,
}

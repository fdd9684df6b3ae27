//! What normalizers say about identities: partial facts that the inventory merges.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::SourceKind;
use crate::identity::{Credential, IdentityKind, Platform};
use crate::time::Millis;

/// A statement "identity `id` exists / was active", with whatever facts the record gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub id: String,
    pub platform: Platform,
    pub kind: IdentityKind,
    pub name: String,
    pub source: SourceKind,
    /// The identity acted at this time (it is the actor, or its session/key is).
    pub used_at: Option<Millis>,
    /// The identity was mentioned (created, assumed, bound) at this time without acting.
    pub seen_at: Option<Millis>,
    pub facts: Facts,
}

impl Observation {
    pub fn new(
        id: String,
        platform: Platform,
        kind: IdentityKind,
        name: impl Into<String>,
        source: SourceKind,
    ) -> Self {
        Observation {
            id,
            platform,
            kind,
            name: name.into(),
            source,
            used_at: None,
            seen_at: None,
            facts: Facts::default(),
        }
    }
}

/// Optional facts; `None` / empty means "this record does not say".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub arn: Option<String>,
    pub native_id: Option<String>,
    pub account: Option<String>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub created: Option<Millis>,
    /// Last use reported by a snapshot (credential report, `RoleLastUsed`).
    pub last_used: Option<Millis>,
    pub deleted: Option<Millis>,
    pub parent: Option<String>,
    pub assumed_by: Option<String>,
    pub created_by: Option<String>,
    pub chain: Option<Vec<String>>,
    pub source_identity: Option<String>,
    pub links: Vec<String>,
    pub credentials: Vec<Credential>,
    /// Credential ids whose status changed (`DeleteAccessKey`, `UpdateAccessKey`).
    pub credential_status: Vec<(String, crate::identity::CredentialStatus)>,
    pub tags: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Snapshot facts replace the same key; log facts (`federation`) merge.
    pub details: BTreeMap<String, serde_json::Value>,
}

/// A configuration object kept for later analysis (policies, RBAC roles and bindings,
/// groups, workloads), keyed by `kind` and a canonical id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotObject {
    pub kind: String,
    pub id: String,
    pub scope: Option<String>,
    pub doc: serde_json::Value,
}

/// An edge between two graph nodes seen in activity (an identity assumed a role, created
/// an identity or credential), with its evidence. `kind` is the graph's edge name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedEdge {
    pub kind: String,
    pub from: String,
    pub to: String,
    pub count: u32,
    pub first_seen: Millis,
    pub last_seen: Millis,
    /// The most recent event ids, oldest first.
    pub event_ids: Vec<String>,
}

/// Why a record was rejected, and where. `line` is 1-based; `record` is the index of the
/// record within a document that holds several on one line (S3 CloudTrail files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub line: u64,
    pub record: Option<u64>,
    pub reason: String,
}

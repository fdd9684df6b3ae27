//! What the answers share: [`Sorted`], the wrapper that keeps other crates' types in the key
//! order the API has always sent, and the OpenAPI schemas of those types.
//!
//! Answers carry the engine's own types where one exists (a finding is
//! `keyward_detect::Finding`, as `keyward findings show` prints it; the audit check is
//! `keyward_store::audit::VerifyReport`, as `keyward audit verify --json` prints it). Those
//! crates do not depend on utoipa, so their schemas are written here (`…Schema`, documentation
//! only, never serialized); the tests below hold each one to the keys its type really sends.
//!
//! Key order: the answers used to be built with `json!`, whose maps sort their keys, so every
//! object went out with its keys in alphabetical order. The answer structs declare their
//! fields in that order, and other crates' types go through [`Sorted`].

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use utoipa::ToSchema;

/// `T` serialized with its object keys sorted at every level (it goes through
/// `serde_json::Value`), as the API has always sent it.
#[derive(Debug)]
pub(crate) struct Sorted<T>(pub T);

impl<T: Serialize> Serialize for Sorted<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?;
        // Sorted whatever the map type: cedar-policy turns on serde_json's `preserve_order`.
        v.sort_all_objects();
        v.serialize(s)
    }
}

/// A finding (`keyward_detect::Finding`): the same JSON as `keyward findings show`, keys
/// sorted. Times are milliseconds since the Unix epoch.
#[derive(ToSchema)]
#[schema(as = Finding)]
#[expect(
    dead_code,
    reason = "a schema only: the answer sends the finding itself"
)]
pub(crate) struct FindingSchema {
    /// MITRE ATT&CK technique ids (`T1098.001`).
    attack: Vec<String>,
    /// How many times the condition was seen (events, or posture evaluations).
    count: u64,
    /// Rule-specific facts: the signals that fired, the risk factors, the matched fields.
    /// A posture finding's `remediation`: `steps` (each `summary`, `commands` — shell
    /// commands, names quoted — and `after_days` when it waits for a grace period) and
    /// `terraform` when Terraform defines the identity.
    details: serde_json::Value,
    /// Native ids of the events that are the evidence (at most 20).
    events: Vec<String>,
    first_seen: i64,
    /// `kwf-` and 20 hex digits, derived from content.
    id: String,
    /// Canonical id of the identity the finding is about, when there is one.
    identity: Option<String>,
    /// `threat` or `posture`.
    kind: String,
    last_seen: i64,
    /// The graph path that explains the finding (identity → … → resource).
    path: Vec<String>,
    rule_id: String,
    /// `info`, `low`, `medium`, `high` or `critical`.
    severity: String,
    /// `open`, `acknowledged`, `false-positive` or `resolved`.
    status: String,
    /// One line a human reads first.
    summary: String,
    title: String,
}

/// An identity as the inventory holds it (`keyward_model::Identity`), keys sorted. Times are
/// milliseconds since the Unix epoch.
#[derive(ToSchema)]
#[schema(as = Identity)]
#[expect(dead_code, reason = "a schema only")]
pub(crate) struct IdentitySchema {
    account: Option<String>,
    annotations: BTreeMap<String, String>,
    arn: Option<String>,
    /// Identities that assumed this one.
    assumed_by: Vec<String>,
    /// For sessions: the identities from the original principal to this session.
    chain: Vec<String>,
    cluster: Option<String>,
    created: Option<i64>,
    /// Identities that created this one.
    created_by: Vec<String>,
    credentials: Vec<CredentialSchema>,
    deleted: Option<i64>,
    /// Platform-specific facts (trust policy, attached policies, bindings, …).
    details: BTreeMap<String, serde_json::Value>,
    event_count: u64,
    evidence: EvidenceSchema,
    first_seen: Option<i64>,
    /// Canonical id.
    id: String,
    issuer: Option<String>,
    /// e.g. `iam_role`, `access_key`, `service_account`, `deploy_key`.
    kind: String,
    labels: BTreeMap<String, String>,
    last_seen: Option<i64>,
    last_used: Option<i64>,
    /// Other identities this one maps to.
    links: Vec<String>,
    name: String,
    namespace: Option<String>,
    /// The platform's own opaque id.
    native_id: Option<String>,
    /// The identity this one belongs to: role of a session, user of a key.
    parent: Option<String>,
    /// `aws`, `kubernetes`, `github` or `oidc`.
    platform: String,
    source_identity: Option<String>,
    /// Source formats that mentioned it.
    sources: Vec<String>,
    subject: Option<String>,
    tags: BTreeMap<String, String>,
}

/// One credential of an identity; absent fields are unknown.
#[derive(ToSchema)]
#[schema(as = Credential)]
#[expect(dead_code, reason = "a schema only")]
pub(crate) struct CredentialSchema {
    created: Option<i64>,
    /// The key id when known, otherwise the credential report slot (`access_key_1`).
    id: String,
    /// e.g. `access_key`, `password`, `signing_certificate`.
    kind: String,
    last_used: Option<i64>,
    last_used_region: Option<String>,
    last_used_service: Option<String>,
    /// `active`, `inactive`, `deleted` or `unknown`.
    status: String,
}

/// Which kinds of evidence have seen an identity.
#[derive(ToSchema)]
#[schema(as = Evidence)]
#[expect(dead_code, reason = "a schema only")]
pub(crate) struct EvidenceSchema {
    /// Seen in activity logs.
    dynamic: bool,
    /// Seen in configuration.
    #[serde(rename = "static")]
    static_config: bool,
}

/// One stored event (`keyward_model::Event`), keys sorted; `time` in milliseconds since the
/// Unix epoch.
#[derive(ToSchema)]
#[schema(as = Event)]
#[expect(dead_code, reason = "a schema only")]
pub(crate) struct EventSchema {
    account: Option<String>,
    /// `eventSource:eventName` for CloudTrail, `verb resource` for Kubernetes.
    action: String,
    /// Canonical id of the acting identity.
    actor: Option<String>,
    credential: Option<String>,
    error_code: Option<String>,
    invoked_by: Option<String>,
    /// The platform's own id (CloudTrail `eventID`, Kubernetes `auditID`).
    native_id: String,
    region: Option<String>,
    shared_id: Option<String>,
    /// The input format, e.g. `cloudtrail`, `k8s-audit`, `github-webhook`.
    source: String,
    source_ip: Option<String>,
    /// Kubernetes audit stage rank (0 … 3).
    stage: u8,
    target: Option<String>,
    time: i64,
    user_agent: Option<String>,
}

/// A candidate owner (`keyward_graph::analysis::Candidate`) and its chain of evidence.
#[derive(ToSchema)]
#[schema(as = OwnerCandidate)]
#[expect(dead_code, reason = "a schema only")]
pub(crate) struct CandidateSchema {
    chain: Vec<HopSchema>,
    /// 0–1.
    confidence: f64,
    departed: bool,
    /// What says they left when their own directory row does not, e.g. `not in
    /// people.csv` (absent otherwise).
    departed_because: Option<String>,
    kind: String,
    owner: String,
    /// The person's team, from the people directory (absent when unknown).
    team: Option<String>,
}

/// One hop of an ownership chain.
#[derive(ToSchema)]
#[schema(as = OwnershipHop)]
#[expect(dead_code, reason = "a schema only")]
pub(crate) struct HopSchema {
    /// The edge followed, e.g. `owns`, `session_of`.
    edge: String,
    label: String,
    /// Absent when the edge does not record it.
    last_seen: Option<i64>,
    /// The node reached by this hop.
    node: String,
    node_kind: String,
    /// Whether the edge was followed against its direction.
    reversed: bool,
    /// What says so (tag, file:line, policy); absent when unrecorded.
    source: Option<String>,
}

/// The audit chain check (`keyward_store::audit::VerifyReport`): the same JSON as `keyward
/// audit verify --json`, keys sorted.
#[derive(ToSchema)]
#[schema(as = AuditVerifyReport)]
#[expect(dead_code, reason = "a schema only")]
pub(crate) struct VerifyReportSchema {
    /// Anchored checkpoints checked.
    anchors: u64,
    /// The first broken entry and why, when the chain is broken.
    broken: Option<BrokenSchema>,
    /// Entries that verified (all of them when `ok`).
    entries: u64,
    /// The last entry that verified.
    head: Option<HeadSchema>,
    /// How many of them are legacy (unkeyed) entries.
    legacy_entries: u64,
    /// The chain is intact, and reaches every anchor with its MAC.
    ok: bool,
}

/// The first broken audit entry.
#[derive(ToSchema)]
#[schema(as = AuditBreak)]
#[expect(dead_code, reason = "a schema only")]
pub(crate) struct BrokenSchema {
    kind: String,
    reason: String,
    seq: i64,
}

/// The newest audit entry that verified.
#[derive(ToSchema)]
#[schema(as = AuditHead)]
#[expect(dead_code, reason = "a schema only")]
pub(crate) struct HeadSchema {
    /// RFC 3339.
    at: String,
    mac: String,
    seq: i64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::Value;
    use utoipa::PartialSchema;

    /// The property names of a derived schema.
    fn properties<T: PartialSchema>() -> Vec<String> {
        let v = serde_json::to_value(T::schema()).unwrap();
        v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    fn keys(v: &Value) -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    /// Each schema names exactly the keys its type sends (every optional field set).
    #[test]
    fn schemas_name_the_keys_the_types_send() {
        let mut f = keyward_detect::Finding {
            id: "kwf-1".into(),
            rule_id: "r".into(),
            title: "t".into(),
            severity: keyward_detect::Severity::High,
            kind: keyward_detect::Kind::Threat,
            identity: Some("i".into()),
            attack: vec![],
            events: vec![],
            path: vec![],
            first_seen: 1,
            last_seen: 2,
            count: 1,
            status: keyward_detect::Status::Open,
            summary: "s".into(),
            details: Value::Null,
        };
        f.details = serde_json::json!({});
        let f = serde_json::to_value(Sorted(&f)).unwrap();
        assert_eq!(keys(&f), properties::<FindingSchema>());

        let mut i = keyward_model::Identity::new(
            "i".into(),
            keyward_model::Platform::Aws,
            keyward_model::IdentityKind::IamUser,
            "n".into(),
        );
        i.credentials.push(keyward_model::Credential {
            id: "AKIA".into(),
            kind: keyward_model::CredentialKind::AccessKey,
            status: keyward_model::CredentialStatus::Active,
            created: Some(1),
            last_used: Some(2),
            last_used_region: Some("r".into()),
            last_used_service: Some("s".into()),
        });
        let v = serde_json::to_value(Sorted(&i)).unwrap();
        assert_eq!(keys(&v), properties::<IdentitySchema>());
        assert_eq!(keys(&v["credentials"][0]), properties::<CredentialSchema>());
        assert_eq!(keys(&v["evidence"]), properties::<EvidenceSchema>());

        let e = keyward_model::Event {
            native_id: "e".into(),
            source: keyward_model::SourceKind::Cloudtrail,
            time: 1,
            action: "a".into(),
            actor: None,
            source_ip: None,
            user_agent: None,
            region: None,
            account: None,
            error_code: None,
            target: None,
            credential: None,
            invoked_by: None,
            shared_id: None,
            stage: 0,
        };
        let v = serde_json::to_value(Sorted(&e)).unwrap();
        assert_eq!(keys(&v), properties::<EventSchema>());

        let hop = keyward_graph::analysis::Hop {
            node: "n".into(),
            label: "l".into(),
            node_kind: "person",
            edge: keyward_graph::EdgeKind::Owns,
            reversed: true,
            source: Some("tag".into()),
            last_seen: Some(1),
        };
        let c = keyward_graph::analysis::Candidate {
            owner: "o".into(),
            kind: "person",
            confidence: 0.5,
            departed: true,
            departed_because: Some("not in people.csv".into()),
            team: Some("t".into()),
            chain: vec![hop],
        };
        let v = serde_json::to_value(Sorted(&c)).unwrap();
        assert_eq!(keys(&v), properties::<CandidateSchema>());
        assert_eq!(keys(&v["chain"][0]), properties::<HopSchema>());

        let r = keyward_store::audit::VerifyReport {
            ok: false,
            entries: 1,
            legacy_entries: 0,
            head: Some(keyward_store::audit::Head {
                seq: 1,
                mac: "m".into(),
                at: "t".into(),
            }),
            anchors: 0,
            broken: Some(keyward_store::audit::Broken {
                seq: 2,
                why: keyward_store::audit::Break::Unlinked,
            }),
        };
        let v = serde_json::to_value(Sorted(&r)).unwrap();
        assert_eq!(keys(&v), properties::<VerifyReportSchema>());
        assert_eq!(keys(&v["head"]), properties::<HeadSchema>());
        assert_eq!(keys(&v["broken"]), properties::<BrokenSchema>());
    }
}

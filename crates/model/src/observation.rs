//! What normalizers say about identities: partial facts that the inventory merges.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::SourceKind;
use crate::identity::{Credential, IdentityKind, Platform};
use crate::time::Millis;

/// A statement "identity `id` exists / was active", with whatever facts the record gave.
/// Serialized as it travels the message bus (`keyward-bus`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub id: String,
    pub platform: Platform,
    pub kind: IdentityKind,
    pub name: String,
    pub source: SourceKind,
    /// The identity acted at this time (it is the actor, or its session/key is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<Millis>,
    /// The identity was mentioned (created, assumed, bound) at this time without acting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// Optional facts; `None` / empty means "this record does not say" (and is left out when
/// serialized).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Millis>,
    /// Last use reported by a snapshot (credential report, `RoleLastUsed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assumed_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// For a credential: the identity seen using it without having created it (an AI
    /// agent's session whose tool call named the access key). A graph edge only; not kept
    /// on the identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<Credential>,
    /// Credential ids whose status changed (`DeleteAccessKey`, `UpdateAccessKey`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub credential_status: Vec<(String, crate::identity::CredentialStatus)>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Snapshot facts replace the same key; log facts (`federation`) merge.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
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
    pub reason: Reason,
}

/// Why a record (or a whole input) was rejected. `Display` is the reason shown and kept
/// with the dead letter (never a value from the record: records carry secrets);
/// [`Reason::class`] is what reports count rejections by. Serialized as its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// Not JSON, or JSON of the wrong shape: the parser's message, values elided.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A required field is absent.
    #[error("missing `{0}`")]
    Missing(Cow<'static, str>),
    /// A field holds something it must not (`expected`: "a timestamp", "an ARN").
    #[error("`{field}` is not {expected}")]
    Invalid {
        field: &'static str,
        expected: &'static str,
    },
    /// A reason within one part of an input: an event type, a list of a snapshot.
    #[error("{within}: {reason}")]
    Within {
        within: Cow<'static, str>,
        reason: Box<Reason>,
    },
    /// Anything else, said in full (its class is the text before the first `: `).
    #[error("{0}")]
    Other(Cow<'static, str>),
}

impl Reason {
    /// The reason without what varies from record to record: rejections of one class are
    /// one line of an ingest report.
    pub fn class(&self) -> String {
        match self {
            Reason::InvalidJson(_) => "invalid JSON".to_owned(),
            Reason::Missing(_) => self.to_string(),
            Reason::Invalid { .. } => self.to_string(),
            Reason::Within { within, reason } => format!("{within}: {}", reason.class()),
            Reason::Other(text) => text.split(": ").next().unwrap_or(text).to_owned(),
        }
    }

    /// `within`: `self`, as the reason within that part of an input.
    pub fn within(self, within: impl Into<Cow<'static, str>>) -> Reason {
        Reason::Within {
            within: within.into(),
            reason: Box::new(self),
        }
    }
}

impl From<&'static str> for Reason {
    fn from(text: &'static str) -> Self {
        Reason::Other(Cow::Borrowed(text))
    }
}

impl From<String> for Reason {
    fn from(text: String) -> Self {
        Reason::Other(Cow::Owned(text))
    }
}

/// Whether a reason reads `text` (compared as it is written out, without building it).
impl PartialEq<str> for Reason {
    fn eq(&self, text: &str) -> bool {
        struct Rest<'a>(Option<&'a str>);
        impl std::fmt::Write for Rest<'_> {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                self.0 = self.0.and_then(|r| r.strip_prefix(s));
                Ok(())
            }
        }
        let mut rest = Rest(Some(text));
        std::fmt::write(&mut rest, format_args!("{self}")).is_ok() && rest.0 == Some("")
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, text: &&str) -> bool {
        *self == **text
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reason {
    /// A reason read back (a stored dead letter) is its text.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Reason::from)
    }
}

#[cfg(test)]
mod reason_tests {
    use super::Reason;

    #[test]
    fn reasons_read_as_before_and_group_by_class() {
        let missing = Reason::Missing("eventTime".into());
        assert_eq!(missing, "missing `eventTime`");
        assert_ne!(missing, "missing `eventTime` ");
        assert_ne!(missing, "missing");
        assert_eq!(missing.class(), "missing `eventTime`");
        let invalid = Reason::Invalid {
            field: "eventTime",
            expected: "a timestamp",
        };
        assert_eq!(invalid.to_string(), "`eventTime` is not a timestamp");
        let json = Reason::InvalidJson("expected `,` at line 1 column 9".into());
        assert_eq!(
            json.to_string(),
            "invalid JSON: expected `,` at line 1 column 9"
        );
        assert_eq!(json.class(), "invalid JSON");
        let within = Reason::from("missing `Arn`").within("`RoleDetailList` entry");
        assert_eq!(within, "`RoleDetailList` entry: missing `Arn`");
        assert_eq!(within.class(), "`RoleDetailList` entry: missing `Arn`");
        let other = Reason::from(String::from("column `x` is not a timestamp: 12"));
        assert_eq!(other.class(), "column `x` is not a timestamp");
        // Stored and read back as its text.
        let back: Reason =
            serde_json::from_str(&serde_json::to_string(&within).unwrap_or_default())
                .unwrap_or_else(|_| Reason::from(""));
        assert_eq!(back, within.to_string().as_str());
    }
}

//! What a run is about (its subject: an identity of the inventory, or an identity a
//! Terraform resource defines), and the facts of the event or finding that started it.

use std::collections::BTreeMap;

use keyward_model::Identity;
use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};

use super::{glob_match, severity_rank};

/// A run's subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The canonical id (`arn:aws:iam::…:role/NAME`), or `role/NAME` for a Terraform role
    /// whose account is not known.
    pub id: String,
    pub name: String,
    /// `iam_role`, `iam_user`, `service_account`…
    pub kind: String,
    /// `aws`, `kubernetes`…
    pub platform: String,
    /// Where it was seen: `terraform`, or the inventory's sources joined (`cloudtrail,iam-authorization-details`).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The Terraform resource (`aws_iam_role.payments_api` in `file:line`), when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform: Option<String>,
    /// The Terraform resource type (`aws_iam_role`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// The Terraform resource that defines it (`FILE#ADDRESS`): what keys its triggers, so
    /// that the inventory learning its canonical id later starts nothing again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// When its credentials (access keys) were created: for `credential_older_than`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credential_created: Vec<Millis>,
}

impl Subject {
    /// The subject an inventory identity is.
    pub fn from_identity(i: &Identity) -> Subject {
        let mut tags = i.tags.clone();
        for (k, v) in &i.labels {
            tags.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Subject {
            id: i.id.clone(),
            name: i.name.clone(),
            kind: i.kind.as_str().to_owned(),
            platform: i.platform.as_str().to_owned(),
            source: i.sources.iter().cloned().collect::<Vec<_>>().join(","),
            account: i.account.clone(),
            tags,
            terraform: None,
            resource_type: None,
            origin: None,
            credential_created: i.credentials.iter().filter_map(|c| c.created).collect(),
        }
    }

    /// The identity a Terraform resource (a `tf_resource` object's document) defines, for
    /// the identity-bearing types; `None` for others or a name that is not a literal.
    pub fn from_terraform(doc: &serde_json::Value) -> Option<Subject> {
        let ty = doc.get("type")?.as_str()?;
        let values = doc.get("values")?;
        let (kind, platform, name, ns) = match ty {
            "aws_iam_role" => ("iam_role", "aws", values.get("name")?.as_str()?, None),
            "aws_iam_user" => ("iam_user", "aws", values.get("name")?.as_str()?, None),
            "kubernetes_service_account" | "kubernetes_service_account_v1" => {
                let meta = values.get("metadata")?;
                let meta = meta.as_array().and_then(|a| a.first()).unwrap_or(meta);
                (
                    "service_account",
                    "kubernetes",
                    meta.get("name")?.as_str()?,
                    Some(
                        meta.get("namespace")
                            .and_then(|n| n.as_str())
                            .unwrap_or("default"),
                    ),
                )
            }
            _ => return None,
        };
        // A reference (`var.name`, `local.x`), not a literal name.
        let reference = ["${", "var.", "local.", "module.", "data."];
        if reference.iter().any(|r| name.contains(r)) {
            return None;
        }
        let mut tags = BTreeMap::new();
        let tag_src = values
            .get("tags")
            .or_else(|| values.get("metadata").and_then(|m| m.get("labels")));
        if let Some(serde_json::Value::Object(t)) = tag_src {
            for (k, v) in t {
                if let Some(v) = v.as_str() {
                    tags.insert(k.clone(), v.to_owned());
                }
            }
        }
        let arn = values
            .get("arn")
            .and_then(|a| a.as_str())
            .and_then(keyward_model::ids::canonical_iam_arn);
        let account = arn
            .as_deref()
            .and_then(|a| a.split(':').nth(4))
            .map(str::to_owned);
        let id = match (kind, arn, ns) {
            (_, Some(arn), _) => arn,
            ("service_account", _, Some(ns)) => format!("system:serviceaccount:{ns}:{name}"),
            ("iam_role", _, _) => format!("role/{name}"),
            _ => format!("user/{name}"),
        };
        let address = doc.get("address").and_then(|a| a.as_str()).unwrap_or(ty);
        let place = match (doc.get("file").and_then(|f| f.as_str()), doc.get("line")) {
            (Some(f), Some(l)) => format!(" in {f}:{l}"),
            (Some(f), None) => format!(" in {f}"),
            _ => String::new(),
        };
        Some(Subject {
            id,
            name: name.to_owned(),
            kind: kind.to_owned(),
            platform: platform.to_owned(),
            source: "terraform".into(),
            account,
            tags,
            terraform: Some(format!("{address}{place}")),
            resource_type: Some(ty.to_owned()),
            origin: Some(format!(
                "{}#{address}",
                doc.get("file").and_then(|f| f.as_str()).unwrap_or_default()
            )),
            credential_created: Vec::new(),
        })
    }

    /// A field by name, as conditions and `${identity.…}` read it.
    pub fn field(&self, f: &str) -> Option<String> {
        match f {
            "id" => Some(self.id.clone()),
            "name" => Some(self.name.clone()),
            "kind" => Some(self.kind.clone()),
            "platform" => Some(self.platform.clone()),
            "source" => Some(self.source.clone()),
            "account" => self.account.clone(),
            _ => f
                .strip_prefix("tags.")
                .and_then(|t| self.tags.get(t).cloned()),
        }
    }

    /// The tags of `required` absent or empty, comma-separated; `None` when all are there.
    pub fn missing_tags(&self, required: &[String]) -> Option<String> {
        let missing: Vec<&str> = required
            .iter()
            .filter(|t| self.tags.get(*t).is_none_or(|v| v.trim().is_empty()))
            .map(String::as_str)
            .collect();
        (!missing.is_empty()).then(|| missing.join(", "))
    }

    /// What identifies it to triggers and schedules: the Terraform resource, else the id.
    pub fn key(&self) -> &str {
        self.origin.as_deref().unwrap_or(&self.id)
    }

    /// What changes in it start an inventory trigger again: kind, name, tags.
    pub fn fingerprint(&self) -> String {
        let doc = serde_json::json!([self.key(), self.kind, self.name, self.tags]);
        blake3::hash(doc.to_string().as_bytes()).to_hex()[..16].to_owned()
    }
}

/// Which subjects an inventory trigger or a schedule's `for_each` selects; every field
/// given must match (globs, case-insensitive).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectMatch {
    /// `terraform` (identities Terraform defines), or an inventory source (`cloudtrail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The Terraform resource type (`aws_iam_role`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// A glob over the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A glob over the canonical id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Tag globs (`service: payments`, `data_class: "*"` for present).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl SubjectMatch {
    pub fn is_empty(&self) -> bool {
        self == &SubjectMatch::default()
    }

    pub(super) fn check(&self) -> Result<(), String> {
        for g in [
            &self.name,
            &self.id,
            &self.kind,
            &self.platform,
            &self.r#type,
            &self.source,
        ]
        .into_iter()
        .flatten()
        .chain(self.tags.values())
        {
            super::check_glob(g)?;
        }
        Ok(())
    }

    /// Whether the subject is selected.
    pub fn matches(&self, s: &Subject) -> bool {
        let m = |g: &Option<String>, v: &str| g.as_deref().is_none_or(|g| glob_match(g, v));
        let source_ok = self
            .source
            .as_deref()
            .is_none_or(|g| s.source.split(',').any(|src| glob_match(g, src)));
        source_ok
            && m(&self.r#type, s.resource_type.as_deref().unwrap_or_default())
            && m(&self.kind, &s.kind)
            && m(&self.platform, &s.platform)
            && m(&self.name, &s.name)
            && m(&self.id, &s.id)
            && self
                .tags
                .iter()
                .all(|(k, g)| s.tags.get(k).is_some_and(|v| glob_match(g, v)))
            // `type` is a Terraform notion: an inventory identity has none.
            && (self.r#type.is_none() || s.resource_type.is_some())
    }
}

/// The facts of one event an event trigger reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFacts {
    pub id: String,
    pub time: Millis,
    pub action: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The identity it is attributed to.
    pub identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl super::EventMatch {
    pub fn matches(&self, e: &EventFacts) -> bool {
        let m = |g: &Option<String>, v: Option<&str>| {
            g.as_deref()
                .is_none_or(|g| v.is_some_and(|v| glob_match(g, v)))
        };
        // `CreateAccessKey` matches CloudTrail's `iam.amazonaws.com:CreateAccessKey` too.
        let short = e.action.rsplit(':').next().unwrap_or(&e.action);
        let action_ok = self
            .action
            .as_deref()
            .is_none_or(|g| glob_match(g, &e.action) || glob_match(g, short));
        action_ok
            && m(&self.source, Some(&e.source))
            && m(&self.actor, e.actor.as_deref())
            && m(&self.identity, Some(&e.identity))
            && m(&self.target, e.target.as_deref())
    }
}

/// The facts of one finding a finding trigger reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingFacts {
    pub id: String,
    /// The rule and the rules folded into it.
    pub rules: Vec<String>,
    pub severity: String,
    /// Its identity, and that identity's principal (a session's role) when different.
    pub identities: Vec<String>,
    pub first_seen: Millis,
}

impl super::FindingMatch {
    pub fn matches(&self, f: &FindingFacts) -> bool {
        let rule_ok = self.rules.is_empty()
            || self
                .rules
                .iter()
                .any(|g| f.rules.iter().any(|r| glob_match(g, r)));
        let sev_ok = match (
            self.severity.as_deref().and_then(severity_rank),
            severity_rank(&f.severity),
        ) {
            (Some(min), Some(have)) => have >= min,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let id_ok = self.identity.as_deref().is_none_or(|g| {
            f.identities.iter().any(|i| {
                glob_match(g, i) || glob_match(g, i.rsplit(['/', ':']).next().unwrap_or(i))
            })
        });
        rule_ok && sev_ok && id_ok
    }
}

//! A missed incident turned into a rule: `keyward rules draft` writes a Keyward rule file
//! whose detection selects the incident's event by its action (and any other fields asked
//! for), with the event itself as the rule's first example, so `rules test` proves the new
//! rule fires on what was missed.

use keyward_model::SourceKind;
use serde_json::Value;

use crate::finding::Severity;

/// What to draft.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Rule id; derived from the action when empty.
    pub id: String,
    /// Title; derived from the action when empty.
    pub title: String,
    pub severity: Severity,
    /// ATT&CK technique ids.
    pub attack: Vec<String>,
    /// Extra fields (dotted paths into the record) the selection must also match.
    pub fields: Vec<String>,
    /// Where the event came from, for the rule's provenance comment.
    pub origin: String,
}

/// Why an event cannot be drafted into a rule.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("the event is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("the event is not a JSON object")]
    NotAnObject,
    #[error("rules are drafted from events, not {0:?}")]
    NotAnEventSource(SourceKind),
    #[error("the event has no field `{0}`")]
    NoField(String),
    #[error("`{0}` is not a single value (string, number, boolean)")]
    NotAScalar(String),
    /// Writing a string back out as JSON failed (it cannot, for a `String`).
    #[error(transparent)]
    Encode(serde_json::Error),
}

/// The fields that always select the event: its action.
fn action_fields(source: SourceKind, record: &Value) -> Vec<&'static str> {
    match source {
        SourceKind::K8sAudit => {
            let mut f = vec!["verb", "objectRef.resource"];
            if lookup(record, "objectRef.subresource").is_some() {
                f.push("objectRef.subresource");
            }
            f
        }
        _ => vec!["eventSource", "eventName"],
    }
}

fn lookup<'v>(record: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(record, |v, k| v.get(k))
}

/// A YAML scalar for a JSON scalar (JSON strings are valid YAML double-quoted scalars).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => serde_json::to_string(v).ok(),
        _ => None,
    }
}

fn kebab(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('-') {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Writes the rule file's text for `record` (one raw CloudTrail record or Kubernetes audit
/// event). Errors name the field that cannot be matched.
pub fn draft(source: SourceKind, record: &[u8], d: &Draft) -> Result<String, DraftError> {
    let v: Value = serde_json::from_slice(record).map_err(DraftError::NotJson)?;
    if !v.is_object() {
        return Err(DraftError::NotAnObject);
    }
    let (source_name, id_field) = match source {
        SourceKind::K8sAudit => ("kubernetes/audit", "auditID"),
        SourceKind::Cloudtrail => ("aws/cloudtrail", "eventID"),
        other => return Err(DraftError::NotAnEventSource(other)),
    };
    let mut selection = Vec::new();
    let mut seen = Vec::new();
    for f in action_fields(source, &v)
        .into_iter()
        .map(str::to_owned)
        .chain(d.fields.iter().cloned())
    {
        if seen.contains(&f) {
            continue;
        }
        let value = lookup(&v, &f).ok_or_else(|| DraftError::NoField(f.clone()))?;
        let value = scalar(value).ok_or_else(|| DraftError::NotAScalar(f.clone()))?;
        selection.push(format!("    {f}: {value}"));
        seen.push(f);
    }
    let action = match source {
        SourceKind::K8sAudit => [
            lookup(&v, "verb"),
            lookup(&v, "objectRef.resource"),
            lookup(&v, "objectRef.subresource"),
        ]
        .iter()
        .flatten()
        .filter_map(|x| x.as_str())
        .collect::<Vec<_>>()
        .join(" "),
        _ => lookup(&v, "eventName")
            .and_then(Value::as_str)
            .unwrap_or("event")
            .to_owned(),
    };
    let id = if d.id.is_empty() {
        format!("kw-local-{}", kebab(&action))
    } else {
        d.id.clone()
    };
    let title = if d.title.is_empty() {
        format!("{action} (drafted from a missed incident)")
    } else {
        d.title.clone()
    };
    let event_id = lookup(&v, id_field).and_then(Value::as_str).unwrap_or("?");
    let compact = serde_json::to_string(&v).map_err(DraftError::Encode)?;
    let mut out = String::new();
    out.push_str(&format!(
        "id: {}\n",
        serde_json::to_string(&id).map_err(DraftError::Encode)?
    ));
    out.push_str(&format!(
        "title: {}\n",
        serde_json::to_string(&title).map_err(DraftError::Encode)?
    ));
    out.push_str("description: |\n");
    out.push_str(&format!(
        "  Drafted by `keyward rules draft` from event {event_id} of {}.\n",
        d.origin
    ));
    out.push_str("  Say why this is malicious, and narrow the selection until the negative\n");
    out.push_str("  examples below (real events that must not fire) pass.\n");
    out.push_str(&format!("severity: {}\n", d.severity));
    out.push_str(&format!("attack: [{}]\n", d.attack.join(", ")));
    out.push_str("references: []\n");
    out.push_str(&format!("source: {source_name}\n"));
    out.push_str("detection:\n  selection:\n");
    for line in &selection {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("  condition: selection\n");
    out.push_str("examples:\n");
    out.push_str(&format!("  # {event_id}, from {}\n", d.origin));
    out.push_str(&format!("  - {compact}\n"));
    out.push_str("negative_examples: []\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::rules::Catalog;

    fn opts(fields: &[&str]) -> Draft {
        Draft {
            id: String::new(),
            title: String::new(),
            severity: Severity::High,
            attack: vec!["T1098".into()],
            fields: fields.iter().map(|s| (*s).to_owned()).collect(),
            origin: "incident.json".into(),
        }
    }

    const CT: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDA","arn":"arn:aws:iam::111122223333:user/ci","accountId":"111122223333","accessKeyId":"AKIAEXAMPLE","userName":"ci"},"eventTime":"2026-11-10T08:15:02Z","eventSource":"iam.amazonaws.com","eventName":"UpdateAssumeRolePolicy","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2","requestParameters":{"roleName":"deploy","policyDocument":"{\"Statement\":[]}"},"responseElements":null,"eventID":"0e5c8a1e-0000-4000-8000-000000000001","eventType":"AwsApiCall","recipientAccountId":"111122223333"}"#;

    #[test]
    fn drafted_rule_loads_and_fires_on_its_incident() {
        let text = draft(
            SourceKind::Cloudtrail,
            CT.as_bytes(),
            &opts(&["userIdentity.arn"]),
        )
        .unwrap();
        assert!(text.contains("id: \"kw-local-update-assume-role-policy\""));
        assert!(text.contains("userIdentity.arn: \"arn:aws:iam::111122223333:user/ci\""));
        let mut c = Catalog::default();
        c.add_text("draft.yml", &text);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let out = crate::testing::run(&c, None);
        assert_eq!(out.len(), 1);
        assert!(out[0].passed, "{}", out[0].message);
    }

    #[test]
    fn kubernetes_event_and_bad_fields() {
        let k = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/p/pods/x/exec","verb":"create","user":{"username":"system:serviceaccount:ci:runner"},"sourceIPs":["10.0.0.1"],"objectRef":{"resource":"pods","namespace":"p","name":"x","subresource":"exec","apiVersion":"v1"},"responseStatus":{"code":101},"requestReceivedTimestamp":"2026-11-10T08:15:02.000000Z","stageTimestamp":"2026-11-10T08:15:02.100000Z"}"#;
        let text = draft(SourceKind::K8sAudit, k.as_bytes(), &opts(&[])).unwrap();
        assert!(text.contains("objectRef.subresource: \"exec\""), "{text}");
        assert!(text.contains("id: \"kw-local-create-pods-exec\""), "{text}");
        let mut c = Catalog::default();
        c.add_text("draft.yml", &text);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert!(crate::testing::run(&c, None).iter().all(|o| o.passed));

        let e = draft(SourceKind::Cloudtrail, CT.as_bytes(), &opts(&["nope.x"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`nope.x`"), "{e}");
        let e = draft(
            SourceKind::Cloudtrail,
            CT.as_bytes(),
            &opts(&["userIdentity"]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("single value"), "{e}");
        assert!(draft(SourceKind::Cloudtrail, b"[1]", &opts(&[])).is_err());
    }
}

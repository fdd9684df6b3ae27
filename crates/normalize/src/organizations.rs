//! AWS Organizations, as the AWS CLI prints it (JSON): the policies that cap permissions
//! (service and resource control policies), where they are attached, and the OU
//! hierarchy. Kept as snapshot objects for the graph's guardrail evaluation
//! (`keyward_graph::iam::org`).
//!
//! | command | top-level key | object kind, id |
//! |---|---|---|
//! | `list-policies --filter SERVICE_CONTROL_POLICY` (or `RESOURCE_CONTROL_POLICY`) | `Policies` | `org_policy_summary`, policy id |
//! | `describe-policy --policy-id p-…` | `Policy` | `org_policy`, policy id |
//! | `list-targets-for-policy --policy-id p-…` | `Targets` | `org_target`, `<policy>/<target>` |
//! | `list-parents --child-id <account or ou-…>` | `Parents` | `org_parent`, child id |
//!
//! `list-targets-for-policy` and `list-parents` do not repeat the id they were asked
//! about: it is read from the file's path (`targets-p-abc12345.json`,
//! `parents/222222222222.json`), and a file whose path names none is rejected whole.

use keyward_model::{Diagnostic, Reason, SnapshotObject};
use serde_json::{Value, json};

use crate::{Context, Output, Sink};

const LISTS: [&str; 3] = ["Policies", "Targets", "Parents"];

pub fn normalize(doc: &[u8], ctx: &Context, sink: &mut dyn Sink) {
    let path = ctx.path.as_deref().unwrap_or_default();
    if crate::sniff::first_key(doc) == Some("Policy") {
        return describe_policy(doc, sink);
    }
    let policy = policy_id_in(path);
    let child = child_id_in(path);
    crate::each_list_element(
        doc,
        &LISTS,
        "`Policies`, `Policy`, `Targets` or `Parents`",
        sink,
        |list, v| match list {
            "Targets" => target(policy, v),
            "Parents" => parent(child, v),
            _ => summary(v),
        },
    );
}

fn s<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The management account: the account of an `arn:aws:organizations::…` ARN.
fn scope(v: &Value) -> Option<String> {
    let arn = s(v, "Arn")?;
    let account = arn.split(':').nth(4)?;
    (!account.is_empty()).then(|| account.to_owned())
}

fn object(kind: &str, id: String, scope: Option<String>, doc: Value) -> Output<'static> {
    let mut out = Output::default();
    out.objects.push(SnapshotObject {
        kind: kind.to_owned(),
        id,
        scope,
        doc,
    });
    out
}

/// A `list-policies` entry: the policy's name and type, without its content.
fn summary(v: Value) -> Result<Output<'static>, Reason> {
    let id = s(&v, "Id").ok_or(Reason::Missing("Id".into()))?.to_owned();
    s(&v, "Type").ok_or(Reason::Missing("Type".into()))?;
    Ok(object("org_policy_summary", id, scope(&v), v))
}

/// `describe-policy`: the summary and the policy document (a JSON string).
fn describe_policy(doc: &[u8], sink: &mut dyn Sink) {
    let reject = |sink: &mut dyn Sink, reason: Reason| {
        sink.reject(Diagnostic {
            line: 1,
            record: None,
            reason,
        })
    };
    let v: Value = match serde_json::from_slice(doc) {
        Ok(v) => v,
        Err(e) => return reject(sink, Reason::InvalidJson(e.to_string())),
    };
    match described(&v) {
        Ok(out) => sink.accept(out),
        Err(reason) => reject(sink, reason),
    }
}

fn described(v: &Value) -> Result<Output<'static>, Reason> {
    let policy = v.get("Policy").ok_or(Reason::Missing("Policy".into()))?;
    let summary = policy
        .get("PolicySummary")
        .ok_or(Reason::Missing("Policy.PolicySummary".into()))?;
    let id = s(summary, "Id")
        .ok_or(Reason::Missing("Policy.PolicySummary.Id".into()))?
        .to_owned();
    s(summary, "Type").ok_or(Reason::Missing("Policy.PolicySummary.Type".into()))?;
    let content = s(policy, "Content").ok_or(Reason::Missing("Policy.Content".into()))?;
    let parsed: Value = serde_json::from_str(content).map_err(|_| Reason::Invalid {
        field: "Policy.Content",
        expected: "a policy document (JSON text)",
    })?;
    if !parsed.is_object() {
        return Err(Reason::Invalid {
            field: "Policy.Content",
            expected: "a policy document (JSON text)",
        });
    }
    if parsed.get("Statement").is_none() {
        return Err(Reason::Missing("Policy.Content.Statement".into()));
    }
    let doc = json!({"PolicySummary": summary, "Content": parsed});
    Ok(object("org_policy", id, scope(summary), doc))
}

/// A `list-targets-for-policy` entry, for the policy the path names.
fn target(policy: Option<&str>, v: Value) -> Result<Output<'static>, Reason> {
    let policy = policy.ok_or(Reason::Other(
        "list-targets-for-policy: the file's path names no policy id (`p-…`)".into(),
    ))?;
    let target = s(&v, "TargetId").ok_or(Reason::Missing("TargetId".into()))?;
    let doc = json!({
        "PolicyId": policy,
        "TargetId": target,
        "Type": s(&v, "Type"),
        "Name": s(&v, "Name"),
        "Arn": s(&v, "Arn"),
    });
    Ok(object(
        "org_target",
        format!("{policy}/{target}"),
        scope(&v),
        doc,
    ))
}

/// A `list-parents` entry, for the child (account or OU) the path names.
fn parent(child: Option<&str>, v: Value) -> Result<Output<'static>, Reason> {
    let child = child.ok_or(Reason::Other(
        "list-parents: the file's path names no account or OU id".into(),
    ))?;
    let parent = s(&v, "Id").ok_or(Reason::Missing("Id".into()))?;
    let doc = json!({"ChildId": child, "Id": parent, "Type": s(&v, "Type")});
    Ok(object("org_parent", child.to_owned(), None, doc))
}

/// Tokens of a path: runs of ASCII letters, digits, `-` and `_`, last first.
fn tokens(path: &str) -> impl Iterator<Item = &str> {
    path.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

/// The last policy id (`p-` and at least eight letters, digits or `_`) in a path.
fn policy_id_in(path: &str) -> Option<&str> {
    tokens(path).find_map(|t| {
        // `targets-p-abc12345`: the id may follow other words joined by `-`.
        let at = t.match_indices("p-").map(|(i, _)| i).find(|&i| {
            i == 0
                || t.as_bytes()
                    .get(i - 1)
                    .is_some_and(|&b| b == b'-' || b == b'_')
        })?;
        let id = t.get(at..)?;
        let rest = id.get(2..)?;
        (rest.len() >= 8 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .then_some(id)
    })
}

/// The last account id (12 digits) or OU id (`ou-…-…`) in a path.
fn child_id_in(path: &str) -> Option<&str> {
    tokens(path).find_map(|t| {
        if let Some(at) = t.find("ou-") {
            return t.get(at..).filter(|ou| ou.matches('-').count() == 2);
        }
        t.split(['-', '_'])
            .rev()
            .find(|w| w.len() == 12 && w.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::sniff::{Format, Layout, sniff};

    const ORG: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../cli/tests/organizations/org"
    );

    /// Every output of `doc` read under `path`: objects and rejections.
    fn read(doc: &[u8], path: &str) -> (Vec<SnapshotObject>, Vec<Diagnostic>) {
        #[derive(Default)]
        struct Keep(Vec<SnapshotObject>, Vec<Diagnostic>);
        impl Sink for Keep {
            fn accept(&mut self, out: Output<'_>) {
                self.0.extend(out.objects.iter().cloned());
            }
            fn reject(&mut self, d: Diagnostic) {
                self.1.push(d);
            }
        }
        let mut sink = Keep::default();
        let ctx = Context::default().with_path(path);
        normalize(doc, &ctx, &mut sink);
        (sink.0, sink.1)
    }

    #[test]
    fn every_fixture_is_sniffed_and_read() {
        let mut kinds = Vec::new();
        for f in std::fs::read_dir(ORG).unwrap() {
            let path = f.unwrap().path();
            let doc = std::fs::read(&path).unwrap();
            let name = path.to_str().unwrap();
            assert_eq!(
                sniff(&doc, name),
                Some((Layout::Document, Format::AwsOrganizations)),
                "{name}"
            );
            let (objects, rejected) = read(&doc, name);
            assert!(rejected.is_empty(), "{name}: {rejected:?}");
            kinds.extend(objects.into_iter().map(|o| (o.kind, o.id)));
        }
        kinds.sort();
        assert!(kinds.contains(&("org_policy".into(), "p-denyiam0001".into())));
        assert!(kinds.contains(&(
            "org_target".into(),
            "p-denyiam0001/ou-ex12-workload1".into()
        )));
        assert!(kinds.contains(&("org_parent".into(), "111122223333".into())));
        assert!(kinds.contains(&("org_policy_summary".into(), "p-FullAWSAccess".into())));
    }

    #[test]
    fn iam_policies_are_not_organization_policies() {
        let iam = br#"{"Policies": [{"PolicyName": "p", "Arn": "arn:aws:iam::1:policy/p"}]}"#;
        assert_eq!(
            sniff(iam, "authz.json").map(|(_, f)| f),
            Some(Format::IamAuthorizationDetails)
        );
    }

    #[test]
    fn targets_without_a_policy_id_in_the_path_are_dead_letters() {
        let doc = br#"{"Targets": [{"TargetId": "r-ex12", "Type": "ROOT"}]}"#;
        let (objects, rejected) = read(doc, "org/targets.json");
        assert!(objects.is_empty());
        assert_eq!(rejected.len(), 1);
        assert!(
            rejected[0]
                .reason
                .to_string()
                .contains("names no policy id")
        );
    }

    #[test]
    fn policy_content_that_is_not_a_policy_is_a_dead_letter() {
        let doc = br#"{"Policy": {"PolicySummary": {"Id": "p-x1234567",
            "Type": "SERVICE_CONTROL_POLICY"}, "Content": "not json"}}"#;
        let (objects, rejected) = read(doc, "describe.json");
        assert!(objects.is_empty());
        assert_eq!(rejected[0].line, 1);
        assert!(rejected[0].reason.to_string().contains("Policy.Content"));
    }

    #[test]
    fn ids_from_paths() {
        assert_eq!(
            policy_id_in("org/targets-p-abc12345.json"),
            Some("p-abc12345")
        );
        assert_eq!(
            policy_id_in("org/p-FullAWSAccess/targets.json"),
            Some("p-FullAWSAccess")
        );
        assert_eq!(policy_id_in("org/targets.json"), None);
        assert_eq!(policy_id_in("org/top-level.json"), None);
        assert_eq!(
            child_id_in("org/parents/222222222222.json"),
            Some("222222222222")
        );
        assert_eq!(
            child_id_in("org/parents-ou-ab12-cdef5678.json"),
            Some("ou-ab12-cdef5678")
        );
        assert_eq!(child_id_in("org/parents.json"), None);
    }
}

//! `aws iam get-account-authorization-details` → IAM users and roles (static evidence),
//! plus users, roles, groups and managed policies (all versions) kept as snapshot objects
//! for permission analysis.
//!
//! Each array entry is one record: a broken entry is rejected on its own line and the rest
//! of the snapshot still counts. Several files (one per account) can be read in any order.

use keyward_model::Reason;
use std::collections::BTreeMap;

use keyward_model::{IdentityKind, Observation, Platform, SnapshotObject, SourceKind, ids, time};
use serde_json::{Value, json};

use crate::cloudtrail::policy_json;
use crate::{Output, Sink};

const LISTS: [&str; 4] = [
    "UserDetailList",
    "GroupDetailList",
    "RoleDetailList",
    "Policies",
];

pub fn normalize(doc: &[u8], sink: &mut dyn Sink) {
    crate::each_list_element(
        doc,
        &LISTS,
        "`UserDetailList`, `RoleDetailList`, …",
        sink,
        entry_output,
    );
}

fn s<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn tags(v: &Value) -> BTreeMap<String, String> {
    v.get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                s(t, "Key")?.to_owned(),
                s(t, "Value").unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

fn names(v: &Value, list: &str, field: &str) -> Value {
    Value::Array(
        v.get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get(field).cloned())
            .collect(),
    )
}

fn created(v: &Value) -> Result<Option<i64>, Reason> {
    match s(v, "CreateDate") {
        None => Ok(None),
        Some(t) => time::parse(t).map(Some).ok_or(Reason::Invalid {
            field: "CreateDate",
            expected: "a timestamp",
        }),
    }
}

/// Principals a trust policy allows, grouped by type (`Service`, `AWS`, `Federated`).
pub fn trusted_principals(policy: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let statements = match policy.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    for st in statements {
        if st.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        match st.get("Principal") {
            Some(Value::String(star)) => out.entry("AWS".into()).or_default().push(star.clone()),
            Some(Value::Object(map)) => {
                for (ty, v) in map {
                    let list = out.entry(ty.clone()).or_default();
                    match v {
                        Value::String(p) => list.push(p.clone()),
                        Value::Array(ps) => {
                            list.extend(ps.iter().filter_map(|p| p.as_str().map(str::to_owned)))
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    for list in out.values_mut() {
        list.sort();
        list.dedup();
    }
    out
}

fn principal(
    v: &Value,
    kind: IdentityKind,
    name_key: &str,
    id_key: &str,
) -> Result<Observation, Reason> {
    let arn = s(v, "Arn").ok_or(Reason::Missing("Arn".into()))?;
    let name = s(v, name_key).ok_or_else(|| Reason::Missing(name_key.to_owned().into()))?;
    let id = ids::canonical_iam_arn(arn).ok_or(Reason::Invalid {
        field: "Arn",
        expected: "an ARN",
    })?;
    let mut o = Observation::new(
        id,
        Platform::Aws,
        kind,
        name,
        SourceKind::IamAuthorizationDetails,
    );
    o.facts.arn = Some(arn.to_owned());
    o.facts.account = ids::Arn::parse(arn).map(|a| a.account.to_owned());
    o.facts.native_id = s(v, id_key).map(str::to_owned);
    o.facts.created = created(v)?;
    o.facts.tags = tags(v);
    let d = &mut o.facts.details;
    d.insert("path".into(), json!(s(v, "Path").unwrap_or("/")));
    d.insert(
        "attached_policies".into(),
        names(v, "AttachedManagedPolicies", "PolicyArn"),
    );
    let inline = if kind == IdentityKind::IamUser {
        "UserPolicyList"
    } else {
        "RolePolicyList"
    };
    d.insert("inline_policies".into(), names(v, inline, "PolicyName"));
    if let Some(b) = v
        .get("PermissionsBoundary")
        .and_then(|b| b.get("PermissionsBoundaryArn"))
    {
        d.insert("permissions_boundary".into(), b.clone());
    }
    Ok(o)
}

fn entry_output(list: &str, v: Value) -> Result<Output<'static>, Reason> {
    let mut out = Output::default();
    match list {
        "UserDetailList" => {
            let mut o = principal(&v, IdentityKind::IamUser, "UserName", "UserId")?;
            if let Some(groups) = v.get("GroupList") {
                o.facts.details.insert("groups".into(), groups.clone());
            }
            out.objects
                .push(object("iam_user", &o.id, o.facts.account.clone(), v));
            out.observations.push(o);
        }
        "RoleDetailList" => {
            let mut o = principal(&v, IdentityKind::IamRole, "RoleName", "RoleId")?;
            let trust = match v.get("AssumeRolePolicyDocument") {
                Some(Value::String(text)) => policy_json(text),
                Some(doc) => doc.clone(),
                None => Value::Null,
            };
            let trusted = trusted_principals(&trust);
            if let Some(fed) = trusted.get("Federated") {
                o.facts
                    .details
                    .insert("federation".into(), json!({"providers": fed}));
            }
            o.facts
                .details
                .insert("trusted_principals".into(), json!(trusted));
            o.facts.details.insert("trust_policy".into(), trust);
            o.facts.details.insert(
                "instance_profiles".into(),
                names(&v, "InstanceProfileList", "InstanceProfileName"),
            );
            if let Some(last) = v.get("RoleLastUsed") {
                if let Some(t) = s(last, "LastUsedDate") {
                    let t = time::parse(t).ok_or_else(|| {
                        "`RoleLastUsed.LastUsedDate` is not a timestamp".to_owned()
                    })?;
                    o.facts.last_used = Some(t);
                    // Kept apart from `last_used`, which observed events move.
                    o.facts
                        .details
                        .insert("reported_last_used".into(), json!(time::format(t)));
                }
                if let Some(r) = s(last, "Region") {
                    o.facts.details.insert("last_used_region".into(), json!(r));
                }
            }
            out.objects
                .push(object("iam_role", &o.id, o.facts.account.clone(), v));
            out.observations.push(o);
        }
        "GroupDetailList" => {
            let arn = s(&v, "Arn").ok_or(Reason::Missing("Arn".into()))?;
            let id = ids::canonical_iam_arn(arn).ok_or(Reason::Invalid {
                field: "Arn",
                expected: "an ARN",
            })?;
            let account = ids::Arn::parse(arn).map(|a| a.account.to_owned());
            out.objects.push(object("iam_group", &id, account, v));
        }
        _ => {
            let arn = s(&v, "Arn")
                .ok_or(Reason::Missing("Arn".into()))?
                .to_owned();
            let account = ids::Arn::parse(&arn).map(|a| a.account.to_owned());
            out.objects.push(object("iam_policy", &arn, account, v));
        }
    }
    Ok(out)
}

fn object(kind: &str, id: &str, scope: Option<String>, doc: Value) -> SnapshotObject {
    SnapshotObject {
        kind: kind.to_owned(),
        id: id.to_owned(),
        scope,
        doc,
    }
}

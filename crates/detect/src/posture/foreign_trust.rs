//! `kw-posture-foreign-trust`: a role that principals of an account outside the estate and
//! the allow-list may assume.

use keyward_graph::analysis::ForeignTrust;
use keyward_model::ids;
use serde_json::{Value, json};

use super::{Control, Facts, Hit, fix};
use crate::Severity;
use crate::remediation::{Remediation, Step, shell_quote as q};

pub(super) const CONTROL: Control = Control {
    id: "kw-posture-foreign-trust",
    title: "Trusted by an unknown account",
    description: "Its trust policy lets a principal of an account that is neither in the \
                  estate nor approved (`--allow-account`) assume it.",
};

pub(super) fn check(f: &Facts) -> Option<Hit> {
    let first = f.foreign.first()?;
    let i = f.identity;
    let trusted: Vec<String> = f
        .foreign
        .iter()
        .map(|t| format!("{} ({})", t.trusted, t.trusted_account))
        .collect();
    let summary = format!("{} trusts {}", i.id, trusted.join(", "));
    Some(
        Hit::of(&CONTROL, Severity::High, summary)
            .attack(&["T1199"])
            .path(vec![first.trusted.clone(), i.id.clone()])
            .remediation(remediation(f)),
    )
}

/// Whether a trust policy's principal value names the foreign principal `trusted` (a
/// graph key: `aws-account:<id>`, `aws-account:*`, or a principal's canonical ARN).
fn names(value: &str, trusted: &str) -> bool {
    match trusted.strip_prefix("aws-account:") {
        Some("*") => value == "*",
        Some(account) => {
            value == account
                || (value.starts_with("arn:")
                    && value.split(':').nth(4) == Some(account)
                    && ids::canonical_iam_arn(value).is_none_or(|c| c.ends_with(":root")))
        }
        None => ids::canonical_iam_arn(value).as_deref() == Some(trusted),
    }
}

/// The trust policy without the foreign principals: `Allow` statements lose them (and go
/// when nobody is left in them); `Deny` statements stay as they are. A policy left with no
/// statement denies everyone.
fn narrow(trust: &Value, foreign: &[ForeignTrust]) -> Option<Value> {
    let mut doc = trust.as_object()?.clone();
    let statements = match doc.get("Statement")? {
        Value::Array(a) => a.clone(),
        one => vec![one.clone()],
    };
    let foreign_value = |v: &Value| {
        v.as_str()
            .is_some_and(|s| foreign.iter().any(|t| names(s, &t.trusted)))
    };
    let mut kept = Vec::new();
    for mut st in statements {
        if st.get("Effect").and_then(Value::as_str) != Some("Allow") {
            kept.push(st);
            continue;
        }
        let keep = match st.get_mut("Principal") {
            Some(p @ Value::String(_)) => !foreign_value(p),
            Some(Value::Object(p)) => {
                if let Some(aws) = p.get_mut("AWS") {
                    if let Value::Array(list) = aws {
                        list.retain(|v| !foreign_value(v));
                    } else if foreign_value(aws) {
                        *aws = Value::Array(Vec::new());
                    }
                    if aws.as_array().is_some_and(Vec::is_empty) {
                        p.remove("AWS");
                    }
                }
                !p.is_empty()
            }
            _ => true,
        };
        if keep {
            kept.push(st);
        }
    }
    if kept.is_empty() {
        kept.push(json!({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}));
    }
    doc.insert("Statement".into(), Value::Array(kept));
    Some(Value::Object(doc))
}

/// Whether a narrowed trust policy lets nobody assume the role (only `Deny` is left).
fn trusts_nobody(doc: &Value) -> bool {
    doc.get("Statement")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .all(|st| st.get("Effect").and_then(Value::as_str) == Some("Deny"))
        })
}

/// Keep a copy of the trust policy, then replace it with one that leaves the foreign
/// principals out.
fn remediation(f: &Facts) -> Remediation {
    let i = f.identity;
    let role = i.name.as_str();
    let accounts: Vec<&str> = f
        .foreign
        .iter()
        .map(|t| t.trusted_account.as_str())
        .collect();
    let backup: String = role
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c))
        .collect();
    let save = Step::now(
        format!(
            "Keep a copy of the trust policy of role `{role}`: restoring it undoes the next step"
        ),
        vec![format!(
            "aws iam get-role --role-name {} --query Role.AssumeRolePolicyDocument --output json > {}",
            q(role),
            q(&format!("{backup}-trust-policy.json"))
        )],
    );
    let trusted: Vec<&str> = f.foreign.iter().map(|t| t.trusted.as_str()).collect();
    let approve = format!(
        "; if the account is a partner you approve, say so instead (`keyward ingest \
         --allow-account {}`)",
        accounts.join(" --allow-account ")
    );
    let narrowed = i
        .details
        .get("trust_policy")
        .and_then(|t| narrow(t, f.foreign));
    let change = match &narrowed {
        Some(doc) => Step::now(
            format!(
                "Take {} out of the trust policy of `{role}`{}{approve}",
                trusted.join(", "),
                if trusts_nobody(doc) {
                    " (it trusted nobody else: the new policy lets nobody assume it; delete the \
                     role if nothing needs it)"
                } else {
                    ""
                }
            ),
            vec![format!(
                "aws iam update-assume-role-policy --role-name {} --policy-document {}",
                q(role),
                q(&keyward_model::json::sorted(doc))
            )],
        ),
        None => Step::now(
            format!(
                "Keyward has no copy of the trust policy of `{role}`: remove the statements \
                 naming {} from the saved copy and load it with `aws iam \
                 update-assume-role-policy`{approve}",
                trusted.join(", ")
            ),
            Vec::new(),
        ),
    };
    let mut r = Remediation::new(vec![save, change]);
    r.terraform = fix::terraform(
        &f.defined_in,
        &format!(
            "take {} out of its `assume_role_policy`",
            trusted.join(", ")
        ),
    );
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::posture::testing::{commands, facts, role};

    fn foreign(trusted: &str, account: &str) -> ForeignTrust {
        ForeignTrust {
            role: "arn:aws:iam::111122223333:role/vendor-audit".into(),
            role_account: "111122223333".into(),
            trusted: trusted.into(),
            trusted_account: account.into(),
            conditions: Vec::new(),
        }
    }

    #[test]
    fn the_foreign_account_leaves_the_trust_policy_and_the_rest_stays() {
        let mut i = role("vendor-audit");
        i.details.insert(
            "trust_policy".into(),
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": [
                    "arn:aws:iam::999988887777:root", "arn:aws:iam::111122223333:role/ci"]}},
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "999988887777"}},
            ]}),
        );
        let trusts = [foreign("aws-account:999988887777", "999988887777")];
        let mut f = facts(&i);
        f.foreign = &trusts;
        let h = check(&f).unwrap();
        assert_eq!(
            commands(&h),
            [
                "aws iam get-role --role-name vendor-audit --query Role.AssumeRolePolicyDocument --output json > vendor-audit-trust-policy.json",
                r#"aws iam update-assume-role-policy --role-name vendor-audit --policy-document '{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/ci"]}}],"Version":"2012-10-17"}'"#,
            ]
        );
    }

    #[test]
    fn a_role_trusting_only_strangers_is_left_trusting_nobody() {
        let mut i = role("x'; rm -rf /");
        i.details.insert(
            "trust_policy".into(),
            json!({"Version": "2012-10-17", "Statement":
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": "*"}}),
        );
        let trusts = [foreign("aws-account:*", "*")];
        let mut f = facts(&i);
        f.foreign = &trusts;
        let h = check(&f).unwrap();
        let c = commands(&h);
        assert!(c[0].ends_with("> xrm-rf-trust-policy.json"), "{}", c[0]);
        assert_eq!(
            c[1],
            r#"aws iam update-assume-role-policy --role-name 'x'\''; rm -rf /' --policy-document '{"Statement":[{"Action":"sts:AssumeRole","Effect":"Deny","Principal":{"AWS":"*"}}],"Version":"2012-10-17"}'"#
        );
    }
}

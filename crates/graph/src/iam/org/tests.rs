//! SCP / RCP evaluation: allow-lists at each level, explicit denies, the management
//! account, unknown content, and the intersection with permissions boundaries.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::iam::authz::{PrincipalPolicies, Sourced};
use crate::iam::escalation::decide;

const MGMT: &str = "111111111111";
const DEV: &str = "222222222222";

fn policy(id: &str, name: &str, kind: &str, content: Value) -> Value {
    json!({
        "PolicySummary": {
            "Id": id, "Name": name, "Type": kind, "AwsManaged": false,
            "Arn": format!("arn:aws:organizations::{MGMT}:policy/o-abcdefghij/{}/{id}",
                kind.to_ascii_lowercase()),
        },
        "Content": content.to_string(),
    })
}

fn allow(actions: &[&str]) -> Value {
    json!({"Version": "2012-10-17",
           "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]})
}

fn deny(actions: &[&str]) -> Value {
    json!({"Version": "2012-10-17",
           "Statement": [{"Effect": "Deny", "Action": actions, "Resource": "*"}]})
}

fn target(policy: &str, target: &str) -> Value {
    json!({"PolicyId": policy, "TargetId": target, "Type": "ACCOUNT"})
}

/// Root `r-root` ⊃ OU `ou-root-dev` ⊃ account DEV; FullAWSAccess on all three, as AWS
/// attaches it.
fn org(policies: Vec<Value>, targets: Vec<Value>) -> Organization {
    let mut targets = targets;
    targets.push(target("p-FullAWSAccess", DEV));
    org_without_full_access_on_account(policies, targets)
}

/// The same, with FullAWSAccess detached from the account.
fn org_without_full_access_on_account(
    policies: Vec<Value>,
    mut targets: Vec<Value>,
) -> Organization {
    targets.push(target("p-FullAWSAccess", "r-root"));
    targets.push(target("p-FullAWSAccess", "ou-root-dev"));
    let parents = [
        json!({"ChildId": DEV, "Id": "ou-root-dev", "Type": "ORGANIZATIONAL_UNIT"}),
        json!({"ChildId": "ou-root-dev", "Id": "r-root", "Type": "ROOT"}),
    ];
    let (org, errors) = Organization::new(&policies, &targets, &parents);
    assert!(errors.is_empty(), "{errors:?}");
    org
}

fn check(org: &Organization, account: &str, action: &str) -> Result<(), String> {
    match org.guardrails(account) {
        None => Ok(()),
        Some(g) => g
            .check(action, "*", &Context::default())
            .map(|_| ())
            .map_err(|r| r.to_string()),
    }
}

#[test]
fn every_level_must_allow() {
    // The account's own SCP allows only S3: the OU's FullAWSAccess does not widen it.
    let o = org_without_full_access_on_account(
        vec![policy(
            "p-s3only01",
            "S3Only",
            "SERVICE_CONTROL_POLICY",
            allow(&["s3:*"]),
        )],
        vec![target("p-s3only01", DEV)],
    );
    assert_eq!(check(&o, DEV, "s3:GetObject"), Ok(()));
    assert_eq!(
        check(&o, DEV, "iam:PassRole"),
        Err(format!("no SCP attached to {DEV} allows it"))
    );
}

#[test]
fn explicit_deny_anywhere_wins() {
    let o = org(
        vec![policy(
            "p-denyiam1",
            "DenyIAM",
            "SERVICE_CONTROL_POLICY",
            deny(&["iam:*"]),
        )],
        vec![target("p-denyiam1", "ou-root-dev")],
    );
    assert_eq!(
        check(&o, DEV, "iam:PassRole"),
        Err("SCP `DenyIAM` (p-denyiam1) attached to ou-root-dev denies it".to_owned())
    );
    assert_eq!(check(&o, DEV, "ec2:RunInstances"), Ok(()));
}

#[test]
fn management_account_is_exempt() {
    let o = org(
        vec![policy(
            "p-denyiam1",
            "DenyIAM",
            "SERVICE_CONTROL_POLICY",
            deny(&["iam:*"]),
        )],
        vec![target("p-denyiam1", "r-root")],
    );
    assert_eq!(o.management.as_deref(), Some(MGMT));
    assert!(o.guardrails(MGMT).is_none());
    assert!(check(&o, DEV, "iam:PassRole").is_err());
    // An account the snapshot does not place in the organization is not judged.
    assert!(o.guardrails("333333333333").is_none());
}

#[test]
fn rcp_caps_the_resources_of_the_account() {
    let o = org(
        vec![policy(
            "p-rcpsts01",
            "NoAssumeFromOutside",
            "RESOURCE_CONTROL_POLICY",
            deny(&["sts:AssumeRole"]),
        )],
        vec![target("p-rcpsts01", DEV)],
    );
    assert_eq!(
        check(&o, DEV, "sts:AssumeRole"),
        Err(format!(
            "RCP `NoAssumeFromOutside` (p-rcpsts01) attached to {DEV} denies it"
        ))
    );
}

#[test]
fn unknown_content_judges_only_denies() {
    // Attached but never described: it may be the one that allows.
    let listed = json!({"Id": "p-unknown1", "Name": "Mystery",
                        "Type": "SERVICE_CONTROL_POLICY", "AwsManaged": false});
    let o = org(vec![listed], vec![target("p-unknown1", DEV)]);
    assert_eq!(check(&o, DEV, "iam:PassRole"), Ok(()));
}

#[test]
fn tag_policies_are_ignored() {
    let o = org(
        vec![policy("p-tags0001", "Tags", "TAG_POLICY", json!({}))],
        vec![target("p-tags0001", DEV)],
    );
    assert_eq!(check(&o, DEV, "iam:PassRole"), Ok(()));
}

fn principal(
    identity: Value,
    boundary: Option<Value>,
    org: Option<Guardrails>,
) -> PrincipalPolicies {
    let sourced = |source: &str, doc: &Value| Sourced {
        source: source.to_owned(),
        policy: Policy::parse(doc).unwrap_or_default(),
    };
    PrincipalPolicies {
        arn: format!("arn:aws:iam::{DEV}:role/app"),
        identity: vec![sourced("inline:app", &identity)],
        boundary: boundary.map(|b| sourced("boundary:managed:arn:aws:iam::1:policy/b", &b)),
        org: org.map(Arc::new),
        ..PrincipalPolicies::default()
    }
}

#[test]
fn allowed_only_where_identity_boundary_and_scps_all_allow() {
    let ctx = Context::default();
    let o = org(
        vec![policy(
            "p-denyec21",
            "DenyEC2",
            "SERVICE_CONTROL_POLICY",
            deny(&["ec2:*"]),
        )],
        vec![target("p-denyec21", DEV)],
    );
    let p = principal(
        allow(&["iam:*", "s3:*", "ec2:*"]),
        Some(allow(&["s3:*", "ec2:*"])),
        o.guardrails(DEV),
    );
    let d = |a: &str| decide(&p, a, "*", &ctx);
    assert_eq!(d("s3:GetObject"), Decision::Allow);
    // The boundary does not allow IAM; the SCP denies EC2.
    assert_eq!(d("iam:PassRole"), Decision::ImplicitDeny);
    assert_eq!(d("ec2:RunInstances"), Decision::ImplicitDeny);
    // Guardrails never grant: what no identity policy allows stays denied.
    assert_eq!(d("kms:Decrypt"), Decision::ImplicitDeny);
}

#[test]
fn admin_wildcard_is_capped_by_scps() {
    let ctx = Context::default();
    let o = org(
        vec![policy(
            "p-denyiam1",
            "DenyIAM",
            "SERVICE_CONTROL_POLICY",
            deny(&["iam:*"]),
        )],
        vec![target("p-denyiam1", DEV)],
    );
    let admin = allow(&["*"]);
    let free = principal(admin.clone(), None, None);
    assert!(crate::iam::admin::admin_wildcard(&free, &ctx).is_some());
    let capped = principal(admin, None, o.guardrails(DEV));
    assert!(crate::iam::admin::admin_wildcard(&capped, &ctx).is_none());
}

//! IAM policy evaluation against the Cloudsplaining authorization-details fixture
//! (`../shared/corpora`) and the example estate. The pathfinding catalogue is exercised by
//! `escalation.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use keyward_graph::iam::authz::Snapshot;
use keyward_graph::iam::{Context, Decision, Policy, Request, evaluate};
use serde_json::Value;

use keyward_testkit::corpora;

fn decide(
    policies: &[&Policy],
    boundary: Option<&Policy>,
    action: &str,
    resource: &str,
) -> Decision {
    let ctx = Context::default();
    evaluate(
        policies,
        boundary,
        &Request {
            action,
            resource,
            principal: None,
            context: &ctx,
        },
    )
    .decision
}

#[test]
fn cloudsplaining_fixture_principals() {
    let Some(c) = corpora() else { return };
    let doc: Value = serde_json::from_slice(
        &std::fs::read(c.join("aws-iam-authz-small/small-authz-details.json")).unwrap(),
    )
    .unwrap();
    let snap = Snapshot::new(&doc);
    let all = snap.principals();
    assert_eq!(all.len(), 6, "3 users and 3 roles");
    for (id, p) in &all {
        assert!(p.errors.is_empty(), "{id}: {:?}", p.errors);
    }
    // obama: AdministratorAccess attached and through the `admin` group.
    let obama = &all["arn:aws:iam::012345678901:user/obama"];
    assert!(
        obama
            .identity
            .iter()
            .any(|s| s.source.starts_with("group:admin/"))
    );
    assert_eq!(
        decide(&obama.identity_policies(), None, "iam:CreateUser", "*"),
        Decision::Allow
    );
    // MyRole: an inline policy with iam:PassRole and instance-profile actions, and a trust
    // policy for SSM.
    let role = &all["arn:aws:iam::012345678901:role/MyRole"];
    assert_eq!(
        decide(
            &role.identity_policies(),
            None,
            "iam:PassRole",
            "arn:aws:iam::012345678901:role/Other"
        ),
        Decision::Allow
    );
    assert_eq!(
        decide(
            &role.identity_policies(),
            None,
            "s3:GetObject",
            "arn:aws:s3:::b/k"
        ),
        Decision::ImplicitDeny
    );
    let trust = role.trust.as_ref().unwrap();
    let ssm = keyward_graph::iam::PrincipalRef::Service("ssm.amazonaws.com".into());
    let ec2 = keyward_graph::iam::PrincipalRef::Service("ec2.amazonaws.com".into());
    let ctx = Context::default();
    assert!(
        keyward_graph::iam::evaluate_trust(trust, &role.arn, &ssm, "sts:AssumeRole", &ctx)
            .decision
            .allowed()
    );
    assert!(
        !keyward_graph::iam::evaluate_trust(trust, &role.arn, &ec2, "sts:AssumeRole", &ctx)
            .decision
            .allowed()
    );
    // Every managed policy a principal references is in the snapshot or reported.
    let referenced: usize = all
        .values()
        .map(|p| p.identity.len() + p.unresolved.len())
        .sum();
    assert!(referenced > 6);
}

#[test]
fn example_estate_boundary_and_federation() {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples/estate/aws/111122223333/iam-authorization-details.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let all = Snapshot::new(&doc).principals();
    for (id, p) in &all {
        assert!(
            p.errors.is_empty() && p.unresolved.is_empty(),
            "{id}: {:?} {:?}",
            p.errors,
            p.unresolved
        );
    }
    let with_boundary: Vec<&String> = all
        .iter()
        .filter(|(_, p)| p.boundary.is_some())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(with_boundary.len(), 1, "{with_boundary:?}");
    let gh = &all["arn:aws:iam::111122223333:role/github-actions-deploy"];
    let fed =
        keyward_graph::iam::PrincipalRef::Federated("token.actions.githubusercontent.com".into());
    let mut ctx = Context::default();
    ctx.set(
        "token.actions.githubusercontent.com:sub",
        ["repo:acme/payments-api:ref:refs/heads/main"],
    )
    .set(
        "token.actions.githubusercontent.com:aud",
        ["sts.amazonaws.com"],
    );
    let trust = gh.trust.as_ref().unwrap();
    assert!(
        keyward_graph::iam::evaluate_trust(
            trust,
            &gh.arn,
            &fed,
            "sts:AssumeRoleWithWebIdentity",
            &ctx
        )
        .decision
        .allowed()
    );
    ctx.set(
        "token.actions.githubusercontent.com:sub",
        ["repo:acme/other:ref:refs/heads/main"],
    );
    assert!(
        !keyward_graph::iam::evaluate_trust(
            trust,
            &gh.arn,
            &fed,
            "sts:AssumeRoleWithWebIdentity",
            &ctx
        )
        .decision
        .allowed()
    );
}

mod admin {
    use super::*;
    use keyward_graph::iam::admin::admin_wildcard;
    use keyward_testkit::iam::{arn, doc};
    use serde_json::json;

    const NOW: i64 = 1_794_700_800_000;

    fn star() -> Value {
        doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]))
    }

    /// One user `u` with `inline` policies, managed `attached` and membership in `admins`
    /// (AdministratorAccess) when `in_admins`; plus an optional boundary.
    fn user(inline: &[(&str, Value)], attached: &[(&str, Value)], in_admins: bool) -> Value {
        let policies: Vec<Value> = attached
            .iter()
            .map(|(n, d)| json!({"PolicyName": n, "Arn": arn("policy", n), "DefaultVersionId": "v1",
                "PolicyVersionList": [{"Document": d, "VersionId": "v1", "IsDefaultVersion": true}]}))
            .chain([json!({"PolicyName": "AdministratorAccess", "Arn": "arn:aws:iam::aws:policy/AdministratorAccess",
                "DefaultVersionId": "v1", "PolicyVersionList": [{"Document": star(), "VersionId": "v1", "IsDefaultVersion": true}]})])
            .collect();
        json!({
            "UserDetailList": [{"UserName": "u", "Arn": arn("user", "u"),
                "GroupList": if in_admins { json!(["admins"]) } else { json!([]) },
                "UserPolicyList": inline.iter().map(|(n, d)| json!({"PolicyName": n, "PolicyDocument": d})).collect::<Vec<_>>(),
                "AttachedManagedPolicies": attached.iter().map(|(n, _)| json!({"PolicyName": n, "PolicyArn": arn("policy", n)})).collect::<Vec<_>>()}],
            "GroupDetailList": [{"GroupName": "admins", "Arn": arn("group", "admins"), "GroupPolicyList": [],
                "AttachedManagedPolicies": [{"PolicyName": "AdministratorAccess", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}]}],
            "RoleDetailList": [],
            "Policies": policies,
        })
    }

    fn granted(doc: &Value) -> Option<Vec<String>> {
        let all = Snapshot::new(doc).principals();
        let mut ctx = Context::default();
        ctx.at(NOW);
        admin_wildcard(&all[&arn("user", "u")], &ctx).map(|g| g.granted_by)
    }

    #[test]
    fn admin_wildcard_names_the_granting_policy() {
        assert_eq!(
            granted(&user(&[("everything", star())], &[], false)),
            Some(vec!["inline:everything".to_owned()])
        );
        assert_eq!(
            granted(&user(&[], &[("all", star())], false)),
            Some(vec![format!("managed:{}", arn("policy", "all"))])
        );
        assert_eq!(
            granted(&user(&[], &[], true)),
            Some(vec![
                "group:admins/managed:arn:aws:iam::aws:policy/AdministratorAccess".to_owned()
            ])
        );
        let star_colon =
            doc(json!([{"Effect": "Allow", "Action": ["s3:*", "*:*"], "Resource": ["*"]}]));
        assert!(granted(&user(&[("p", star_colon)], &[], false)).is_some());
    }

    #[test]
    fn admin_wildcard_near_misses() {
        let no = |inline: Vec<(&str, Value)>, in_admins: bool| {
            assert_eq!(granted(&user(&inline, &[], in_admins)), None, "{inline:?}");
        };
        // PowerUserAccess: NotAction leaves IAM out.
        no(
            vec![(
                "power",
                doc(
                    json!([{"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}]),
                ),
            )],
            false,
        );
        // Everything but one bucket.
        no(
            vec![(
                "nr",
                doc(json!([{"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::b"}])),
            )],
            false,
        );
        // Every service's actions, not every resource.
        no(
            vec![(
                "scoped",
                doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*"}])),
            )],
            false,
        );
        // iam-vulnerable's fp1 / fp2 / fp3: a deny of everything or of IAM, in the same
        // policy or another one.
        let deny_all = json!({"Effect": "Deny", "Action": "*", "Resource": "*"});
        no(
            vec![(
                "both",
                doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}, deny_all])),
            )],
            false,
        );
        no(vec![("deny", doc(json!([deny_all])))], true);
        no(
            vec![(
                "deny-iam",
                doc(json!([{"Effect": "Deny", "Action": "iam:*", "Resource": "*"}])),
            )],
            true,
        );
        // A grant that expired before the analysis time.
        no(
            vec![(
                "expired",
                doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}])),
            )],
            false,
        );
    }

    #[test]
    fn admin_wildcard_respects_only_denies_that_certainly_apply() {
        // A deny on one bucket's objects does not apply everywhere: the `*` on `*` grant
        // stands, as an auditor counts it.
        let bucket =
            doc(json!([{"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::audit/*"}]));
        assert!(granted(&user(&[("bucket", bucket)], &[], true)).is_some());
        // A deny without MFA: with MFA, everything is allowed.
        let mfa = doc(
            json!([{"Effect": "Deny", "NotAction": "iam:ChangePassword", "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}]),
        );
        assert!(granted(&user(&[("mfa", mfa)], &[], true)).is_some());
        // A permissions boundary that does not allow everything caps it.
        let mut d = user(
            &[],
            &[(
                "bound",
                doc(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])),
            )],
            true,
        );
        d["UserDetailList"][0]["AttachedManagedPolicies"] = json!([]);
        d["UserDetailList"][0]["PermissionsBoundary"] = json!({"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn("policy", "bound")});
        assert_eq!(granted(&d), None);
    }

    #[test]
    fn cloudsplaining_fixture_admins() {
        let Some(c) = corpora() else { return };
        let doc: Value = serde_json::from_slice(
            &std::fs::read(c.join("aws-iam-authz-small/small-authz-details.json")).unwrap(),
        )
        .unwrap();
        let ctx = Context::default();
        let admins: Vec<(String, Vec<String>)> = Snapshot::new(&doc)
            .principals()
            .into_iter()
            .filter_map(|(id, p)| Some((id, admin_wildcard(&p, &ctx)?.granted_by)))
            .collect();
        let want = [
            (
                "arn:aws:iam::012345678901:user/obama",
                vec![
                    "managed:arn:aws:iam::aws:policy/AdministratorAccess",
                    "group:admin/managed:arn:aws:iam::aws:policy/AdministratorAccess",
                ],
            ),
            (
                "arn:aws:iam::012345678901:user/userwithlotsofpermissions",
                vec!["group:admin/managed:arn:aws:iam::aws:policy/AdministratorAccess"],
            ),
        ];
        let want: Vec<(String, Vec<String>)> = want
            .into_iter()
            .map(|(id, by)| (id.to_owned(), by.into_iter().map(str::to_owned).collect()))
            .collect();
        assert_eq!(admins, want);
    }
}

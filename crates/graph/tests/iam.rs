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

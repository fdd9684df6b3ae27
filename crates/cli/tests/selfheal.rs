//! Self-healing through the CLI on moto (`KEYWARD_TEST_AWS_ENDPOINT`, with the `AWS_*`
//! variables of `moto-up`'s env file; skipped without them): a role's snapshot (as `aws iam
//! get-account-authorization-details` writes it) is ingested and approved as its baseline;
//! an admin then attaches a policy and opens its trust; `keyward drift --live` finds it
//! (exit 1), `drift --revert --execute --yes` puts the approved state back through the AWS
//! API, and a second live check is clean.

#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{keyward, text};
use keyward_respond::aws::sdk::aws_sdk_iam as iam;
use keyward_respond::aws::static_config;
use serde_json::{Value, json};

fn trust(principal: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]})
}

#[test]
fn drift_live_finds_a_loosened_role_and_revert_execute_heals_it() {
    let Ok(endpoint) = std::env::var("KEYWARD_TEST_AWS_ENDPOINT") else {
        eprintln!("skipped: KEYWARD_TEST_AWS_ENDPOINT is not set (../shared/tools/aws/moto-up)");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = iam::Client::new(&static_config(
        &endpoint,
        "us-east-1",
        "testing",
        "testing",
        None,
    ));
    let tag = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let role = format!("payments-{tag}");
    let approved_trust = trust("arn:aws:iam::123456789012:user/deployer");
    let (role_arn, role_id, policy_arn) = rt.block_on(async {
        let r = client
            .create_role()
            .role_name(&role)
            .assume_role_policy_document(approved_trust.to_string())
            .send()
            .await
            .unwrap();
        let r = r.role().unwrap();
        let p = client
            .create_policy()
            .policy_name(format!("everything-{tag}"))
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        (
            r.arn().to_owned(),
            r.role_id().to_owned(),
            p.policy().unwrap().arn().unwrap().to_owned(),
        )
    });

    // The approved snapshot, in the shape the AWS CLI writes it.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let snapshot = dir.path().join("iam.json");
    let doc = json!({
        "UserDetailList": [],
        "GroupDetailList": [],
        "Policies": [],
        "RoleDetailList": [{
            "Path": "/",
            "RoleName": role,
            "RoleId": role_id,
            "Arn": role_arn,
            "CreateDate": "2026-12-01T00:00:00Z",
            "AssumeRolePolicyDocument": approved_trust,
            "InstanceProfileList": [],
            "RolePolicyList": [],
            "AttachedManagedPolicies": [],
            "Tags": []
        }]
    });
    std::fs::write(&snapshot, doc.to_string()).unwrap();
    let d = data.as_path();
    let out = keyward(d, &["ingest", snapshot.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = keyward(d, &["baseline", "approve", &role_arn]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = keyward(d, &["drift", "--live", "--identity", &role_arn]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // An admin turns the controls off.
    rt.block_on(async {
        client
            .attach_role_policy()
            .role_name(&role)
            .policy_arn(&policy_arn)
            .send()
            .await
            .unwrap();
        client
            .update_assume_role_policy()
            .role_name(&role)
            .policy_document(trust("*").to_string())
            .send()
            .await
            .unwrap();
    });
    let out = keyward(d, &["drift", "--live", "--identity", &role_arn]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("aws iam detach-role-policy"), "{shown}");
    assert!(
        shown.contains("aws iam update-assume-role-policy"),
        "{shown}"
    );

    let out = keyward(
        d,
        &[
            "drift",
            "--revert",
            "--execute",
            "--yes",
            "--identity",
            &role_arn,
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let attached = rt.block_on(async {
        client
            .list_attached_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap()
            .attached_policies()
            .len()
    });
    assert_eq!(attached, 0);
    let out = keyward(d, &["drift", "--live", "--identity", &role_arn]);
    assert!(out.status.success(), "{}", text(&out.stdout));

    // The revert is a stored, executed, audited plan.
    let out = keyward(d, &["respond", "list", "--format", "json"]);
    let plans: Value = serde_json::from_slice(&out.stdout).unwrap();
    let plan = plans
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["identity"].as_str() == Some(role_arn.as_str()))
        .expect("the revert plan is listed");
    assert_eq!(plan["status"], "executed");
}

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

/// A role on moto, snapshotted and ingested, its configuration approved as its baseline;
/// and a managed policy an admin may attach to it.
struct World {
    rt: tokio::runtime::Runtime,
    client: iam::Client,
    dir: tempfile::TempDir,
    role: String,
    role_arn: String,
    policy_arn: String,
}

impl World {
    fn new() -> Option<World> {
        let Ok(endpoint) = std::env::var("KEYWARD_TEST_AWS_ENDPOINT") else {
            eprintln!(
                "skipped: KEYWARD_TEST_AWS_ENDPOINT is not set (../shared/tools/aws/moto-up)"
            );
            return None;
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
        let tag = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            .to_string();
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
        let w = World {
            rt,
            client,
            dir,
            role,
            role_arn,
            policy_arn,
        };
        w.ok(&["ingest", snapshot.to_str().unwrap()]);
        w.ok(&["baseline", "approve", &w.role_arn]);
        w.ok(&["drift", "--live", "--identity", &w.role_arn]);
        Some(w)
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        keyward(&self.data(), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// An admin attaches the policy (and opens the trust, with `open_trust`).
    fn loosen(&self, open_trust: bool) {
        self.rt.block_on(async {
            self.client
                .attach_role_policy()
                .role_name(&self.role)
                .policy_arn(&self.policy_arn)
                .send()
                .await
                .unwrap();
            if open_trust {
                self.client
                    .update_assume_role_policy()
                    .role_name(&self.role)
                    .policy_document(trust("*").to_string())
                    .send()
                    .await
                    .unwrap();
            }
        });
    }

    fn attached(&self) -> usize {
        self.rt.block_on(async {
            self.client
                .list_attached_role_policies()
                .role_name(&self.role)
                .send()
                .await
                .unwrap()
                .attached_policies()
                .len()
        })
    }

    /// The stored plan for the role, as `respond list --format json` shows it.
    fn plan(&self) -> Value {
        let plans: Value =
            serde_json::from_str(&self.ok(&["respond", "list", "--format", "json"])).unwrap();
        plans
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["identity"].as_str() == Some(self.role_arn.as_str()))
            .cloned()
            .expect("the revert plan is listed")
    }
}

#[test]
fn drift_live_finds_a_loosened_role_and_revert_execute_heals_it() {
    let Some(w) = World::new() else { return };
    w.loosen(true);
    let out = w.run(&["drift", "--live", "--identity", &w.role_arn]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("aws iam detach-role-policy"), "{shown}");
    assert!(
        shown.contains("aws iam update-assume-role-policy"),
        "{shown}"
    );

    w.ok(&[
        "drift",
        "--revert",
        "--execute",
        "--yes",
        "--identity",
        &w.role_arn,
    ]);
    assert_eq!(w.attached(), 0);
    w.ok(&["drift", "--live", "--identity", &w.role_arn]);
    // The revert is a stored, executed, audited plan.
    assert_eq!(w.plan()["status"], "executed");
}

/// The built-in `self-heal-drift` playbook: the CloudTrail record of the admin's call is
/// ingested, and the next tick reverts the role at once — no snapshot waited for.
#[test]
fn the_self_heal_playbook_reverts_a_role_when_its_cloudtrail_event_arrives() {
    let Some(w) = World::new() else { return };
    w.loosen(false);
    let now = keyward_model::time::format(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            .try_into()
            .unwrap(),
    );
    let trail = json!({"Records": [{
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAMALLORY000000001",
            "arn": "arn:aws:iam::123456789012:user/mallory",
            "accountId": "123456789012",
            "accessKeyId": "AKIAMALLORY000000001",
            "userName": "mallory"
        },
        "eventTime": now,
        "eventSource": "iam.amazonaws.com",
        "eventName": "AttachRolePolicy",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"roleName": w.role, "policyArn": w.policy_arn},
        "responseElements": null,
        "requestID": "6e1f4b8a-0000-4000-8000-000000000001",
        "eventID": "6e1f4b8a-0000-4000-8000-000000000002",
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management"
    }]});
    let file = w.dir.path().join("trail.json");
    std::fs::write(&file, trail.to_string()).unwrap();
    w.ok(&["ingest", file.to_str().unwrap()]);
    let shown = w.ok(&["playbook", "list"]);
    assert!(shown.contains("self-heal-drift"), "{shown}");
    // A dry tick changes nothing.
    w.ok(&["playbook", "tick"]);
    assert_eq!(w.attached(), 1);
    w.ok(&["playbook", "tick", "--execute"]);
    assert_eq!(w.attached(), 0, "the role is back to its baseline");
    assert_eq!(w.plan()["status"], "executed");
    let status = w.ok(&["playbook", "status", "--format", "json"]);
    assert!(status.contains("self-heal-drift"), "{status}");
}

/// A baseline approved from Terraform heals the same way: the role as a `.tf` declares it
/// (its trust, no attached policy) replaces the snapshot's baseline; a policy attached in
/// the console is drift from Terraform's intent, and `--revert --execute` detaches it.
#[test]
fn a_terraform_baseline_reverts_a_policy_terraform_does_not_declare() {
    let Some(w) = World::new() else { return };
    let tf = w.dir.path().join("role.tf");
    std::fs::write(
        &tf,
        format!(
            r#"resource "aws_iam_role" "payments" {{
  name = "{}"
  assume_role_policy = jsonencode({{
    Version   = "2012-10-17"
    Statement = [{{ Effect = "Allow", Principal = {{ AWS = "arn:aws:iam::123456789012:user/deployer" }}, Action = "sts:AssumeRole" }}]
  }})
}}
"#,
            w.role
        ),
    )
    .unwrap();
    let shown = w.ok(&[
        "baseline",
        "approve",
        "--from-terraform",
        tf.to_str().unwrap(),
        &w.role,
    ]);
    assert!(shown.contains("approved 1 of 1"), "{shown}");
    w.ok(&["drift", "--live", "--identity", &w.role_arn]);
    w.loosen(false);
    let out = w.run(&["drift", "--live", "--identity", &w.role_arn]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("aws iam detach-role-policy"), "{shown}");
    assert!(!shown.contains("update-assume-role-policy"), "{shown}");
    w.ok(&[
        "drift",
        "--revert",
        "--execute",
        "--yes",
        "--identity",
        &w.role_arn,
    ]);
    assert_eq!(w.attached(), 0);
    w.ok(&["drift", "--live", "--identity", &w.role_arn]);
}

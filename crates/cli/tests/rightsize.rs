//! `keyward rightsize`: on the bundled example estate, a role granted more than it used
//! gets a smaller proposal (table, JSON, Terraform) and a window the logs do not cover is
//! refused; on moto (`KEYWARD_TEST_AWS_ENDPOINT`, skipped without it), `--execute --yes`
//! replaces a broad policy with the narrow one and `respond undo` restores it exactly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{estate, keyward, text};
use serde_json::Value;

const PIPELINE: &str = "arn:aws:iam::111122223333:role/data-pipeline";

#[test]
fn a_role_granted_more_than_it_used_gets_a_smaller_proposal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = keyward(&data, &["ingest", estate().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The estate's CloudTrail spans six days: 90 are refused, never "nothing was used".
    let out = keyward(&data, &["rightsize", PIPELINE]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("covers 6 of the 90 days"), "{err}");

    let out = keyward(
        &data,
        &["rightsize", PIPELINE, "--days", "6", "--format", "json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let used: Vec<&str> = r["used"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|v| v.as_array().unwrap())
        .map(|u| u["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        used,
        ["glue:GetJob", "glue:StartJobRun", "s3:ListAllMyBuckets"],
        "{r}"
    );
    let unused: Vec<&str> = r["unused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["action"].as_str().unwrap())
        .collect();
    assert_eq!(unused, ["glue:GetJobRun"], "{r}");
    // Object reads and writes are data events the estate's trail does not log: kept.
    assert_eq!(r["kept"].as_array().unwrap().len(), 2, "{r}");
    assert!(
        r["proposed_actions"].as_u64() < r["granted_patterns"].as_u64(),
        "{r}"
    );
    let proposal = r["proposal"].to_string();
    assert!(proposal.contains("\"glue:GetJob\""), "{proposal}");
    assert!(!proposal.contains("GetJobRun"), "{proposal}");
    assert!(
        proposal.contains("arn:aws:glue:us-east-1:111122223333:job/orders-etl"),
        "{proposal}"
    );
    assert_eq!(
        r["replaces"],
        serde_json::json!(["managed:arn:aws:iam::111122223333:policy/data-pipeline-access"])
    );

    let out = keyward(&data, &["rightsize", PIPELINE, "--days", "6"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("granted but unused:"), "{table}");
    assert!(table.contains("glue:GetJobRun"), "{table}");

    let out = keyward(
        &data,
        &[
            "rightsize",
            PIPELINE,
            "--days",
            "6",
            "--format",
            "terraform",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tf = text(&out.stdout);
    assert!(
        tf.contains("resource \"aws_iam_role_policy\" \"data_pipeline_rightsized\""),
        "{tf}"
    );
    assert!(
        tf.contains("aws_iam_role_policy_attachment of arn:aws:iam::111122223333:policy/data-pipeline-access"),
        "{tf}"
    );
}

#[cfg(feature = "aws")]
mod moto {
    use super::common::moto::{ACCT, DAY, Moto};
    use super::common::{keyward, text};
    use serde_json::{Value, json};

    fn session_call(role: &str, source: &str, name: &str, at: i64, id: &str) -> Value {
        json!({
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole", "principalId": format!("AROA{id}:s"),
                "arn": format!("arn:aws:sts::{ACCT}:assumed-role/{role}/s"), "accountId": ACCT,
                "accessKeyId": format!("ASIA{id:0>16}"),
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": format!("AROA{id}"),
                    "arn": format!("arn:aws:iam::{ACCT}:role/{role}"), "accountId": ACCT,
                    "userName": role}}},
            "eventTime": keyward_model::time::format(at), "eventSource": source,
            "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.7",
            "userAgent": "aws-cli/2.15.0", "requestParameters": null, "responseElements": null,
            "eventID": format!("00000000-0000-4000-8000-{id:0>12}"), "readOnly": true,
            "eventType": "AwsApiCall", "managementEvent": true,
            "recipientAccountId": ACCT, "eventCategory": "Management"
        })
    }

    /// A document as IAM returns it (URL-encoded, or plain from moto), as JSON.
    fn doc(raw: &str) -> Value {
        if let Ok(v) = serde_json::from_str(raw) {
            return v;
        }
        let mut out = Vec::new();
        let mut rest = raw.as_bytes().iter();
        while let Some(&c) = rest.next() {
            if c == b'%' {
                let hex: String = rest.by_ref().take(2).map(|&h| h as char).collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap());
            } else {
                out.push(c);
            }
        }
        serde_json::from_slice(&out).unwrap()
    }

    impl Moto {
        fn role_state(&self, role: &str) -> (Vec<String>, Vec<String>) {
            self.rt.block_on(async {
                let inline = self
                    .iam
                    .list_role_policies()
                    .role_name(role)
                    .send()
                    .await
                    .unwrap()
                    .policy_names()
                    .to_vec();
                let attached = self
                    .iam
                    .list_attached_role_policies()
                    .role_name(role)
                    .send()
                    .await
                    .unwrap()
                    .attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_owned))
                    .collect();
                (inline, attached)
            })
        }

        fn role_policy(&self, role: &str, name: &str) -> Value {
            self.rt.block_on(async {
                let out = self
                    .iam
                    .get_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .send()
                    .await
                    .unwrap();
                doc(out.policy_document())
            })
        }
    }

    #[test]
    fn execute_replaces_a_broad_policy_and_undo_restores_it_exactly() {
        let Some(m) = Moto::from_env() else { return };
        let role = format!("app-rs-{}", m.now);
        let broad = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:*", "ec2:*", "iam:*"], "Resource": "*"}]});
        let extra = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Queues", "Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]});
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        let policy_arn = m.rt.block_on(async {
            m.iam
                .create_role()
                .role_name(&role)
                .assume_role_policy_document(trust.to_string())
                .send()
                .await
                .unwrap();
            let p = m
                .iam
                .create_policy()
                .policy_name(format!("broad-{role}"))
                .policy_document(broad.to_string())
                .send()
                .await
                .unwrap();
            let arn = p.policy().unwrap().arn().unwrap().to_owned();
            m.iam
                .attach_role_policy()
                .role_name(&role)
                .policy_arn(&arn)
                .send()
                .await
                .unwrap();
            m.iam
                .put_role_policy()
                .role_name(&role)
                .policy_name("extra")
                .policy_document(extra.to_string())
                .send()
                .await
                .unwrap();
            arn
        });
        let role_arn = format!("arn:aws:iam::{ACCT}:role/{role}");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let snapshot = dir.path().join("iam.json");
        std::fs::write(
            &snapshot,
            json!({
                "UserDetailList": [], "GroupDetailList": [],
                "Policies": [{"PolicyName": format!("broad-{role}"), "Arn": policy_arn,
                    "DefaultVersionId": "v1", "PolicyVersionList": [
                        {"Document": broad, "VersionId": "v1", "IsDefaultVersion": true}]}],
                "RoleDetailList": [{"Path": "/", "RoleName": role, "RoleId": "AROA1",
                    "Arn": role_arn, "CreateDate": "2026-01-01T00:00:00Z",
                    "AssumeRolePolicyDocument": trust, "InstanceProfileList": [],
                    "RolePolicyList": [{"PolicyName": "extra", "PolicyDocument": extra}],
                    "AttachedManagedPolicies": [{"PolicyName": format!("broad-{role}"),
                        "PolicyArn": policy_arn}], "Tags": []}]
            })
            .to_string(),
        )
        .unwrap();
        let trail = dir.path().join("trail.json");
        let now = m.now;
        std::fs::write(
            &trail,
            json!({"Records": [
                session_call(&role, "s3.amazonaws.com", "ListBuckets", now - 9 * DAY, "1"),
                session_call(&role, "ec2.amazonaws.com", "DescribeInstances", now - DAY, "2"),
                session_call(&role, "s3.amazonaws.com", "ListBuckets", now - DAY / 24, "3"),
            ]})
            .to_string(),
        )
        .unwrap();
        for f in [&snapshot, &trail] {
            let out = keyward(&data, &["ingest", f.to_str().unwrap()]);
            assert!(out.status.success(), "{}", text(&out.stderr));
        }

        let out = keyward(
            &data,
            &["rightsize", &role_arn, "--days", "7", "--execute", "--yes"],
        );
        let err = text(&out.stderr);
        assert!(out.status.success(), "{}{err}", text(&out.stdout));
        let plan = err
            .split_whitespace()
            .find(|w| w.starts_with("rp-"))
            .unwrap()
            .to_owned();

        assert_eq!(
            m.role_state(&role),
            (vec!["KeywardRightsized".to_owned()], vec![])
        );
        let narrow = m.role_policy(&role, "KeywardRightsized");
        let actions: Vec<&str> = narrow["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["Action"].as_array().unwrap())
            .map(|a| a.as_str().unwrap())
            .collect();
        // S3 object access is a data event this trail does not log: kept.
        assert!(actions.contains(&"s3:ListAllMyBuckets"), "{narrow}");
        assert!(actions.contains(&"ec2:DescribeInstances"), "{narrow}");
        assert!(
            !actions
                .iter()
                .any(|a| a.starts_with("iam:") || a.starts_with("sqs:")),
            "{narrow}"
        );

        let out = keyward(&data, &["respond", "undo", &plan, "--yes"]);
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert_eq!(
            m.role_state(&role),
            (vec!["extra".to_owned()], vec![policy_arn.clone()])
        );
        assert_eq!(m.role_policy(&role, "extra"), extra);
    }
}

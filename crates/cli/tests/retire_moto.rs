//! Retirement and re-enabling within the grace period, through the binary on moto
//! (`KEYWARD_TEST_AWS_ENDPOINT` with the `AWS_*` variables of `moto-up`'s env file; skipped
//! without them): a user whose key CloudTrail last saw 100 days ago is retired — a deny-all
//! policy and its key `Inactive`, read back from IAM — while a busy user is left alone; then
//! `keyward enable` within the grace period gives it back exactly what it had.

#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{keyward, text};
use keyward_respond::aws::sdk::aws_sdk_iam as iam;
use keyward_respond::aws::static_config;
use serde_json::{Value, json};

const ACCT: &str = "123456789012";
const DAY: i64 = 86_400_000;

fn call(user: &str, key: &str, at: i64, id: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": format!("AIDA{id}"),
            "arn": format!("arn:aws:iam::{ACCT}:user/{user}"), "accountId": ACCT,
            "accessKeyId": key, "userName": user},
        "eventTime": keyward_model::time::format(at), "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0", "requestParameters": null, "responseElements": null,
        "eventID": format!("00000000-0000-4000-8000-{id:0>12}"), "readOnly": true,
        "eventType": "AwsApiCall", "managementEvent": true,
        "recipientAccountId": ACCT, "eventCategory": "Management"
    })
}

#[test]
fn an_unused_user_is_retired_and_re_enabled_within_the_grace_period() {
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
    let now: i64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .try_into()
        .unwrap();
    let tag = now.to_string();
    let (idle, busy) = (format!("old-batch-{tag}"), format!("busy-{tag}"));
    let keys: Vec<String> = rt.block_on(async {
        let mut keys = Vec::new();
        for u in [&idle, &busy] {
            client.create_user().user_name(u).send().await.unwrap();
            let k = client
                .create_access_key()
                .user_name(u)
                .send()
                .await
                .unwrap();
            keys.push(k.access_key().unwrap().access_key_id().to_owned());
        }
        keys
    });
    let statuses = |user: &str| {
        rt.block_on(async {
            let out = client
                .list_access_keys()
                .user_name(user)
                .send()
                .await
                .unwrap();
            out.access_key_metadata()
                .iter()
                .map(|k| k.status().unwrap().as_str().to_owned())
                .collect::<Vec<_>>()
        })
    };
    let inline = |user: &str| {
        rt.block_on(async {
            client
                .list_user_policies()
                .user_name(user)
                .send()
                .await
                .unwrap()
                .policy_names()
                .to_vec()
        })
    };

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let trail = dir.path().join("trail.json");
    let doc = json!({"Records": [
        call(&idle, &keys[0], now - 100 * DAY, "1"),
        call(&busy, &keys[1], now - DAY / 24, "2"),
    ]});
    std::fs::write(&trail, doc.to_string()).unwrap();
    let ok = |args: &[&str]| {
        let out = keyward(&data, args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    ok(&["ingest", trail.to_str().unwrap()]);
    let planned: Value =
        serde_json::from_str(&ok(&["lifecycle", "plan", "--format", "json"])).unwrap();
    let shown = planned.to_string();
    assert!(shown.contains(&idle), "{shown}");
    assert!(
        !shown.contains(&busy),
        "a busy user is not retired: {shown}"
    );

    ok(&["lifecycle", "run", "--execute", "--yes"]);
    assert_eq!(statuses(&idle), ["Inactive"]);
    assert_eq!(inline(&idle), ["KeywardContainDenyAll"]);
    assert_eq!(statuses(&busy), ["Active"], "the busy user is untouched");

    // Within the grace period: enable gives it back.
    ok(&["enable", &idle, "--yes"]);
    assert_eq!(statuses(&idle), ["Active"]);
    assert!(inline(&idle).is_empty());
}

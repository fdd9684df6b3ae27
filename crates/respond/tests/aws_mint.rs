//! Credentials minted for a workload through STS, against a moto server
//! (`KEYWARD_TEST_AWS_ENDPOINT`; without it the test prints that it was skipped): a role
//! created with IAM, assumed with a session name, tags, a source identity and the agent
//! boundary as session policy; the credentials come back and authenticate as that session.

#![cfg(feature = "aws")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod moto;

use keyward_respond::aws::{
    AssumeFor, AwsConnector, agent_boundary_policy, sdk::aws_sdk_sts as sts, static_config,
};
use moto::{ACCOUNT, Moto, REGION, now, trust_for, unique};

#[tokio::test]
async fn a_workload_gets_a_bounded_session_of_the_role() {
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (_, _, keyward) = moto.admin().await;
    let keyward_arn = keyward.caller().await.unwrap();
    let role = unique("agent-role");
    let role_arn = moto.role(&role, &trust_for(&keyward_arn)).await;
    let session = unique("agent");
    let req = AssumeFor {
        role_arn: role_arn.clone(),
        session_name: session.clone(),
        duration_secs: 1800,
        source_identity: Some("spiffe-prod-agent".into()),
        session_tags: vec![
            ("keyward-lease".into(), "lease-1".into()),
            ("workload".into(), "ns/agents/sa/cost-bot".into()),
        ],
        session_policy: Some(agent_boundary_policy()),
    };
    let before = now();
    let creds = keyward.assume_role_for(&req).await.unwrap();
    assert!(
        creds.access_key_id.starts_with("ASIA"),
        "{}",
        creds.access_key_id
    );
    assert!(!creds.secret_access_key.is_empty() && !creds.session_token.is_empty());
    let expected = before + 1_800_000;
    assert!(
        (creds.expiration - expected).abs() < 120_000,
        "expiration {} not about now + 30 min ({expected})",
        creds.expiration
    );
    assert_eq!(
        creds.assumed_role_arn,
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}")
    );
    assert!(creds.assumed_role_id.ends_with(&format!(":{session}")));
    let shown = format!("{creds:?}");
    assert!(!shown.contains(&creds.secret_access_key) && !shown.contains(&creds.session_token));

    // The workload's view: the credentials authenticate as the assumed-role session.
    let as_workload = sts::Client::new(&static_config(
        &moto.endpoint,
        REGION,
        &creds.access_key_id,
        &creds.secret_access_key,
        Some(&creds.session_token),
    ));
    let who = as_workload.get_caller_identity().send().await.unwrap();
    assert_eq!(who.arn(), Some(creds.assumed_role_arn.as_str()));
    assert_eq!(who.account(), Some(ACCOUNT));
    let through_connector = AwsConnector::new(&static_config(
        &moto.endpoint,
        REGION,
        &creds.access_key_id,
        &creds.secret_access_key,
        Some(&creds.session_token),
    ));
    assert_eq!(
        through_connector.caller().await.unwrap(),
        creds.assumed_role_arn
    );
}

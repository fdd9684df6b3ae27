#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Response plans through the real router: made by an operator from a finding (a dry run,
//! stored and listed), executed only by an admin who repeats the plan id, and made by
//! automatic response when a policy matches a finding as it fires.

use std::sync::Arc;

use axum::http::StatusCode;
use keyward_server::Config;
use serde_json::{Value, json};

mod common;
use common::*;

async fn backdoor_finding(f: &Fixture) -> String {
    let record = example("kw-aws-backdoor-access-key");
    let (s, v) = ingest(
        f,
        serde_json::to_vec(&json!({"Records": [record]})).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule_id"] == "kw-aws-backdoor-access-key")
        .expect("the rule's own example fires it")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn post(f: &Fixture, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    call(
        &f.app,
        "POST",
        path,
        Some(token),
        Some(serde_json::to_vec(&body).unwrap()),
        &[("content-type", "application/json")],
    )
    .await
}

#[tokio::test]
async fn operators_plan_admins_execute_with_the_plan_id_repeated() {
    let f = fixture(1 << 20).await;
    let finding = backdoor_finding(&f).await;
    let body = json!({"target": finding});
    let (s, _) = post(&f, "/api/respond/plans", &f.viewer, body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = post(&f, "/api/respond/plans", &f.operator, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let plan = &v["plan"];
    let id = plan["id"].as_str().unwrap().to_owned();
    assert_eq!(plan["status"], "planned");
    assert_eq!(plan["finding"], finding.as_str());
    assert_eq!(plan["steps"][0]["action"], "deny_all");
    assert!(
        plan["steps"][0]["command"][0]
            .as_str()
            .unwrap()
            .starts_with("aws iam put-user-policy")
    );

    let (s, v) = call(
        &f.app,
        "GET",
        "/api/respond/plans",
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (s, v) = call(
        &f.app,
        "GET",
        &format!("/api/respond/plans/{id}"),
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(
        (s, v["plan"]["id"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );
    let (s, _) = call(
        &f.app,
        "GET",
        "/api/respond/plans/rp-nope",
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // No evidence before execution.
    let (s, _) = call(
        &f.app,
        "GET",
        &format!("/api/respond/plans/{id}/evidence"),
        Some(&f.operator),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let exec = format!("/api/respond/plans/{id}/execute");
    let (s, _) = post(&f, &exec, &f.operator, json!({"confirm": id})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = post(&f, &exec, &f.admin, json!({"confirm": "rp-other"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = post(&f, &exec, &f.admin, json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // The plan's user exists on no platform this test reaches (no connector, or an AWS
    // endpoint without it): the run stops before any change and says why.
    let (s, v) = post(&f, &exec, &f.admin, json!({"confirm": id})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["error"].is_string(), "{v}");
    assert!(
        v["plan"]["steps"][0]["result"].is_null() || v["plan"]["status"] == "failed",
        "{v}"
    );

    // Undo of a plan never executed is refused.
    let (s, _) = post(
        &f,
        &format!("/api/respond/plans/{id}/undo"),
        &f.admin,
        json!({"confirm": id}),
    )
    .await;
    assert!(s == StatusCode::CONFLICT || s == StatusCode::OK, "{s}");

    let (s, v) = call(
        &f.app,
        "GET",
        "/api/audit?limit=50",
        Some(&f.admin),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "respond.plan" && a["target"] == id.as_str()),
        "{v}"
    );
}

#[tokio::test]
async fn a_policy_makes_a_plan_as_the_finding_fires() {
    let policy = keyward_respond::policy::PolicyFile::parse(
        "policy.yml",
        "policies:\n  - name: backdoor-keys\n    when: {rules: [kw-aws-backdoor-access-key]}\n    execute: approve\n",
    )
    .unwrap();
    let f = fixture_with(Config {
        body_limit: 1 << 20,
        response_policy: Some(Arc::new(policy)),
        ..Config::default()
    })
    .await;
    let finding = backdoor_finding(&f).await;
    let mut found = None;
    for _ in 0..200 {
        let (_, v) = call(
            &f.app,
            "GET",
            "/api/respond/plans",
            Some(&f.viewer),
            None,
            &[],
        )
        .await;
        if let Some(p) = v["items"].as_array().unwrap().first() {
            found = Some(p.clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let p = found.expect("automatic response made a plan");
    assert_eq!(p["finding"], finding.as_str());
    assert_eq!(p["created_by"], "auto:backdoor-keys");
    // `approve`: made, not executed.
    assert_eq!(p["status"], "planned");
}

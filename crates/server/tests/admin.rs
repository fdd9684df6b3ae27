#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Administration through the real router: API tokens, the approved accounts set at run
//! time, and the audit log with its chain check against the anchor file.

use axum::http::StatusCode;
use keyward_server::Config;
use keyward_server::github::WebhookSecret;
use keyward_store::Store as _;
use serde_json::{Value, json};

mod common;
use common::*;

#[tokio::test]
async fn admins_manage_tokens_and_revoked_tokens_stop_working() {
    let f = fixture(1 << 20).await;
    let ct = [("content-type", "application/json")];
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/tokens",
        Some(&f.admin),
        Some(br#"{"role":"viewer","name":"grafana"}"#.to_vec()),
        &ct,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let id = v["id"].as_str().unwrap().to_owned();
    let (s, _) = call(&f.app, "GET", "/api/findings", Some(&token), None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(&f.app, "GET", "/api/tokens", Some(&f.admin), None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let listed = serde_json::to_string(&v).unwrap();
    assert!(
        listed.contains("grafana") && !listed.contains(&token),
        "tokens are never listed"
    );
    let (s, _) = call(
        &f.app,
        "POST",
        &format!("/api/tokens/{id}/revoke"),
        Some(&f.admin),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&f.app, "GET", "/api/findings", Some(&token), None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(
        &f.app,
        "POST",
        &format!("/api/tokens/{id}/revoke"),
        Some(&f.admin),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Admins read the effective configuration and change the approved accounts at run time:
/// stored, audited, applied to detection at once, and kept across a restart.
#[tokio::test]
async fn admins_manage_the_approved_accounts() {
    let f = fixture_with(Config {
        allowed_accounts_flags: vec!["999999999999".into()],
        ..Config::default()
    })
    .await;
    let (s, v) = call(&f.app, "GET", "/api/config", Some(&f.admin), None, &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["github_webhook"]["secret_configured"], false);
    assert_eq!(v["allowed_accounts"]["from_flags"][0], "999999999999");
    assert!(v["detection"]["rules"].as_u64().unwrap() > 30, "{v}");
    let s = call(&f.app, "GET", "/api/config", Some(&f.operator), None, &[])
        .await
        .0;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The rule's example: a role assumed from an account nobody approved.
    let ex = example("kw-aws-untrusted-account-assume");
    let foreign = ex["userIdentity"]["accountId"].as_str().unwrap().to_owned();
    let post = |event_id: &str| {
        let mut e = ex.clone();
        e["eventID"] = json!(event_id);
        serde_json::to_vec(&json!({"Records": [e]})).unwrap()
    };
    let (s, v) = ingest(&f, post("e-1")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(reports(&v, "kw-aws-untrusted-account-assume"), "{v}");

    let put = |accounts: Value| serde_json::to_vec(&json!({"accounts": accounts})).unwrap();
    let uri = "/api/config/allowed-accounts";
    let (s, v) = call(
        &f.app,
        "PUT",
        uri,
        Some(&f.admin),
        Some(put(json!(["12345"]))),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("12-digit"), "{v}");
    let (s, _) = call(
        &f.app,
        "PUT",
        uri,
        Some(&f.operator),
        Some(put(json!([foreign]))),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &f.app,
        "PUT",
        uri,
        Some(&f.admin),
        Some(put(json!([foreign, foreign]))),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut want = vec![foreign.clone(), "999999999999".to_owned()];
    want.sort();
    assert_eq!(v["allowed_accounts"], json!(want));

    // Applied at once: the same call again (a new event) is no longer reported.
    let (s, v) = ingest(&f, post("e-2")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!reports(&v, "kw-aws-untrusted-account-assume"), "{v}");
    let (_, v) = call(&f.app, "GET", "/api/audit", Some(&f.admin), None, &[]).await;
    // Newest first: the ingest just posted, then the change with its before and after.
    assert_eq!(v["items"][0]["action"], "ingest.api");
    assert_eq!(v["items"][1]["action"], "config.allowed-accounts");
    assert_eq!(v["items"][1]["before"], "[]");
    assert_eq!(v["items"][1]["after"], json!([foreign]).to_string());

    // Kept in the store: an engine opened on it later (the CLI, a restart) uses it.
    let Fixture { app, dir, .. } = f;
    drop(app);
    let mut e = keyward_engine::Engine::open(dir.path()).unwrap();
    assert_eq!(e.stored_allowed_accounts().unwrap(), vec![foreign.clone()]);
    e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
        .unwrap();
    assert!(
        e.detector()
            .unwrap()
            .settings()
            .allowed_accounts
            .contains(&foreign)
    );
}

/// Every ingest request and webhook delivery is one audit entry (ids and counts, never a
/// token), `GET /api/audit` shows each entry's place in the chain, and `GET
/// /api/audit/verify` catches entries deleted from the tail against the anchor file.
#[tokio::test]
async fn ingest_is_audited_and_truncation_is_caught_against_the_anchor() {
    let anchors = tempfile::tempdir().unwrap();
    let anchor = anchors.path().join("audit-anchor.jsonl");
    let f = fixture_with(Config {
        github_secret: Some(WebhookSecret::new(GITHUB_SECRET)),
        audit_anchor: Some(anchor.clone()),
        ..Config::default()
    })
    .await;
    let body =
        serde_json::to_vec(&json!({"Records": [example("kw-aws-cloudtrail-tampering")]})).unwrap();
    let (s, v) = ingest(&f, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let list = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                      "items": [example("kw-k8s-exec-attach")]});
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/webhooks/kubernetes-audit?cluster=prod",
        Some(&f.operator),
        Some(serde_json::to_vec(&list).unwrap()),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let (s, v) = call(&f.app, "GET", "/api/audit", Some(&f.admin), None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let items = v["items"].as_array().unwrap();
    // Three token creations (the fixture), then the two requests, newest first.
    assert_eq!(items.len(), 5, "{v}");
    let (k8s, api) = (&items[0], &items[1]);
    assert_eq!(k8s["action"], "ingest.kubernetes-audit");
    assert_eq!(k8s["target"], "cluster prod");
    assert_eq!(api["action"], "ingest.api");
    assert!(api["actor"].as_str().unwrap().starts_with("token:"));
    let counts: Value = serde_json::from_str(api["after"].as_str().unwrap()).unwrap();
    assert_eq!(
        (counts["accepted"].as_u64(), counts["rejected"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        (k8s["seq"].as_i64(), api["seq"].as_i64()),
        (Some(5), Some(4))
    );
    assert_eq!(k8s["mac"].as_str().unwrap().len(), 64);
    for t in [&f.viewer, &f.operator, &f.admin] {
        assert!(
            !v.to_string().contains(&t[3..]),
            "no token in the audit log"
        );
    }

    let verify = || async {
        let (s, v) = call(
            &f.app,
            "GET",
            "/api/audit/verify",
            Some(&f.admin),
            None,
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    };
    let v = verify().await;
    assert_eq!(
        (v["ok"].as_bool(), v["entries"].as_u64()),
        (Some(true), Some(5)),
        "{v}"
    );
    assert_eq!(v["head"]["seq"], 5);
    assert_eq!(v["broken"], Value::Null);

    // A checkpoint of the head, kept outside the data directory (what `keyward audit
    // anchor` and `serve --audit-anchor` write).
    let store = keyward_store::SqliteStore::open(f.dir.path()).unwrap();
    keyward_store::audit::append_checkpoint(&anchor, &store.audit_checkpoint(1).unwrap()).unwrap();
    let v = verify().await;
    assert_eq!(
        (v["ok"].as_bool(), v["anchors"].as_u64()),
        (Some(true), Some(1)),
        "{v}"
    );

    // The last entry deleted: the chain alone is intact up to seq 4, the anchor says not.
    rusqlite::Connection::open(f.dir.path().join("keyward.db"))
        .unwrap()
        .execute("DELETE FROM audit_log WHERE seq = 5", [])
        .unwrap();
    let v = verify().await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["entries"], 4);
    assert_eq!(v["broken"]["seq"], 5);
    assert_eq!(v["broken"]["kind"], "truncated");
}

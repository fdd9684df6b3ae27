#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The GitHub webhook through the real router: signatures checked before anything is
//! read, identity events ingested like `/api/ingest`, other events acknowledged.

use axum::Router;
use axum::http::StatusCode;
use keyward_server::Config;
use keyward_server::github::WebhookSecret;
use serde_json::{Value, json};

mod common;
use common::*;

/// A GitHub delivery of `event` with `payload`, signed with `secret`.
async fn github(
    app: &Router,
    event: &str,
    guid: &str,
    body: &[u8],
    signature: Option<String>,
    content_type: &str,
) -> (StatusCode, Value) {
    let mut h = vec![
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", guid),
        ("X-GitHub-Hook-ID", "4242"),
        ("Content-Type", content_type),
        ("User-Agent", "GitHub-Hookshot/abc1234"),
    ];
    let sig = signature.unwrap_or_default();
    if !sig.is_empty() {
        h.push(("X-Hub-Signature-256", &sig));
    }
    call(
        app,
        "POST",
        "/api/webhooks/github",
        None,
        Some(body.to_vec()),
        &h,
    )
    .await
}

#[tokio::test]
async fn github_webhook_verifies_signatures_and_ingests_identity_events() {
    let f = fixture(1 << 20).await;
    let secret = WebhookSecret::new(GITHUB_SECRET);
    // The payload GitHub would post: the built-in rule's example delivery's body.
    let delivery = example("kw-github-deploy-key-write");
    let body = serde_json::to_vec(&delivery["request"]["payload"]).unwrap();
    let guid = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let json = "application/json";

    // Unsigned, wrongly signed, signed with another secret: 401, nothing stored.
    let (s, v) = github(&f.app, "deploy_key", guid, &body, None, json).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("X-Hub-Signature-256"));
    let (s, _) = github(
        &f.app,
        "deploy_key",
        guid,
        &body,
        Some("sha256=00ff".into()),
        json,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let other = WebhookSecret::new(b"another secret").sign(&body);
    let (s, _) = github(&f.app, "deploy_key", guid, &body, Some(other), json).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let (s, _) = github(
        &f.app,
        "deploy_key",
        guid,
        &tampered,
        Some(secret.sign(&body)),
        json,
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the signature covers the exact body"
    );
    let uri = "/api/identities/github:deploy-key/acme/infra/90210";
    let (s, _) = call(&f.app, "GET", uri, Some(&f.viewer), None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Signed: stored, the identity exists, and the rule fired in the same pipeline.
    let (s, v) = github(
        &f.app,
        "deploy_key",
        guid,
        &body,
        Some(secret.sign(&body)),
        json,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["findings"][0]["rule_id"], "kw-github-deploy-key-write");
    let (s, v) = call(&f.app, "GET", uri, Some(&f.viewer), None, &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["identity"]["kind"], "deploy_key");
    assert_eq!(v["identity"]["created_by"][0], "github:user/octocat");
    assert_eq!(v["identity"]["details"]["deploy_key"]["read_only"], false);
    // Its creator's GitHub account is `@octocat`'s own: the key traces to that person.
    assert_eq!(v["owner"]["owner"], "@octocat", "{v}");
    let (_, v) = call(
        &f.app,
        "GET",
        "/api/identities/github:user/octocat",
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(v["recent_events"][0]["native_id"], guid, "{v}");
    assert_eq!(v["recent_events"][0]["action"], "deploy_key.created", "{v}");

    // A redelivery (same X-GitHub-Delivery) is the same event: no second finding.
    let (s, v) = github(
        &f.app,
        "deploy_key",
        guid,
        &body,
        Some(secret.sign(&body)),
        json,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = call(
        &f.app,
        "GET",
        "/api/findings?kind=threat",
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(v["total"], 1, "{v}");

    // Form-encoded deliveries (`payload=`) are read too.
    let pat = example("kw-github-pat-org-admin");
    let text = serde_json::to_string(&pat["request"]["payload"]).unwrap();
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &text)
        .finish();
    let (s, v) = github(
        &f.app,
        "personal_access_token_request",
        "8f7e6d5c-0000-11f0-8000-000000000001",
        form.as_bytes(),
        Some(secret.sign(form.as_bytes())),
        "application/x-www-form-urlencoded",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["findings"][0]["rule_id"], "kw-github-pat-org-admin");
    let (_, v) = call(
        &f.app,
        "GET",
        "/api/identities?platform=github&kind=personal_access_token",
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(v["items"][0]["id"], "github:pat/acme/771", "{v}");

    // ping answers; event types without identities are acknowledged and skipped.
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":4242}"#;
    let (s, v) = github(&f.app, "ping", "p-1", ping, Some(secret.sign(ping)), json).await;
    assert_eq!((s, v["pong"].clone()), (StatusCode::OK, json!(true)));
    let push = br#"{"ref":"refs/heads/main","repository":{"full_name":"acme/infra"}}"#;
    let (s, v) = github(&f.app, "push", "p-2", push, Some(secret.sign(push)), json).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(v["ignored"], "push");

    // Signed but malformed: 400 with the reason.
    let (s, v) = github(
        &f.app,
        "deploy_key",
        "p-3",
        b"{",
        Some(secret.sign(b"{")),
        json,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("not JSON"), "{v}");
    let (s, v) = github(&f.app, "", "p-4", &body, Some(secret.sign(&body)), json).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "missing X-GitHub-Event");
    let no_key = br#"{"action":"created","repository":{"full_name":"acme/infra"}}"#;
    let (s, v) = github(
        &f.app,
        "deploy_key",
        "p-5",
        no_key,
        Some(secret.sign(no_key)),
        json,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("key.id"),
        "{v}"
    );
}

#[tokio::test]
async fn github_webhook_is_refused_without_a_secret() {
    let f = fixture_with(Config::default()).await;
    let body = br#"{"zen":"x"}"#;
    let sig = WebhookSecret::new(b"").sign(body);
    let (s, v) = github(&f.app, "ping", "g", body, Some(sig), "application/json").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        v["error"].as_str().unwrap().contains("not configured"),
        "{v}"
    );
}

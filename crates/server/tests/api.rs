#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every route through the real router (`Router` + `oneshot`), the real engine and an
//! on-disk store: success, unauthenticated (401), wrong role (403), bad body or query
//! (400), oversized body (413). Events posted come from the built-in rules' own examples,
//! so a 200 is checked against the findings the pipeline must have produced.

use std::io::Write as _;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use keyward_server::github::WebhookSecret;
use keyward_server::{Config, Role};
use keyward_store::Store as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

mod common;
use common::*;

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let f = fixture(1 << 20).await;
    let (s, v) = call(&f.app, "GET", "/healthz", None, None, &[]).await;
    assert_eq!((s, v), (StatusCode::OK, Value::String("ok\n".into())));
    let (s, _) = call(&f.app, "GET", "/readyz", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(&f.app, "GET", "/nope", Some(&f.viewer), None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "no such route");
}

#[tokio::test]
async fn every_state_route_needs_a_valid_token_and_the_right_role() {
    let f = fixture(1 << 20).await;
    let routes: [(&str, &str, Role); 13] = [
        ("GET", "/metrics", Role::Viewer),
        ("GET", "/api/identities", Role::Viewer),
        ("GET", "/api/identities/x", Role::Viewer),
        ("GET", "/api/findings", Role::Viewer),
        ("GET", "/api/findings/x", Role::Viewer),
        ("POST", "/api/findings/x/status", Role::Operator),
        ("POST", "/api/ingest", Role::Operator),
        ("POST", "/api/webhooks/kubernetes-audit", Role::Operator),
        ("POST", "/api/tokens", Role::Admin),
        ("GET", "/api/audit", Role::Admin),
        ("GET", "/api/audit/verify", Role::Admin),
        ("GET", "/api/config", Role::Admin),
        ("PUT", "/api/config/allowed-accounts", Role::Admin),
    ];
    for (method, uri, need) in routes {
        let (s, v) = call(&f.app, method, uri, None, None, &[]).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert!(v["error"].as_str().unwrap().contains("Bearer"), "{v}");
        let (s, v) = call(&f.app, method, uri, Some("kw_forged"), None, &[]).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(v["error"], "unknown or revoked token");
        let weaker = match need {
            Role::Viewer => None,
            Role::Operator => Some(&f.viewer),
            Role::Admin => Some(&f.operator),
        };
        if let Some(t) = weaker {
            let (s, v) = call(&f.app, method, uri, Some(t), None, &[]).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{method} {uri}");
            assert!(v["error"].as_str().unwrap().contains(need.as_str()), "{v}");
        }
    }
    // Tokens listing and revoking are admin-only too.
    let (s, _) = call(&f.app, "GET", "/api/tokens", Some(&f.operator), None, &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &f.app,
        "POST",
        "/api/tokens/x/revoke",
        Some(&f.operator),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn posted_cloudtrail_is_stored_detected_and_triaged() {
    let f = fixture(1 << 20).await;
    let record = example("kw-aws-cloudtrail-tampering");
    let body = serde_json::to_vec(&json!({"Records": [record]})).unwrap();
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/ingest",
        Some(&f.operator),
        Some(body.clone()),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["received"].as_u64(), v["accepted"].as_u64()),
        (Some(1), Some(1))
    );
    let fired: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert!(fired.contains(&"kw-aws-cloudtrail-tampering"), "{v}");
    let finding_id = v["findings"][0]["id"].as_str().unwrap().to_owned();

    // The same events gzipped: stored once (event ids), accepted again without error.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/ingest",
        Some(&f.operator),
        Some(gz.finish().unwrap()),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Viewers see the identity and the finding.
    let (s, v) = call(
        &f.app,
        "GET",
        "/api/identities?limit=5",
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["total"].as_u64().unwrap() >= 1, "{v}");
    let id = v["items"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = call(
        &f.app,
        "GET",
        &format!("/api/identities/{id}"),
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["identity"]["id"], id.as_str());
    let (s, v) = call(
        &f.app,
        "GET",
        "/api/findings?severity=high",
        Some(&f.viewer),
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
            .any(|f| f["id"] == finding_id.as_str()),
        "{v}"
    );

    // An operator acknowledges it; the change and the audit entry are recorded.
    let path = format!("/api/findings/{finding_id}/status");
    let (s, v) = call(
        &f.app,
        "POST",
        &path,
        Some(&f.operator),
        Some(br#"{"status":"acknowledged","note":"looking"}"#.to_vec()),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["finding"]["status"], "acknowledged");
    let (s, v) = call(
        &f.app,
        "GET",
        &format!("/api/findings/{finding_id}"),
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["changes"][0]["status"], "acknowledged");
    assert!(
        v["changes"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("token:")
    );
    let (s, v) = call(&f.app, "GET", "/api/audit", Some(&f.admin), None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"][0]["action"], "finding.status");

    // Metrics count what was posted.
    let (s, v) = call(&f.app, "GET", "/metrics", Some(&f.viewer), None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.as_str().unwrap();
    assert!(
        text.contains("keyward_records_accepted_total{source=\"cloudtrail\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("keyward_findings_open{severity=\"high\"}"),
        "{text}"
    );
    assert!(
        text.contains("keyward_ingest_duration_seconds_count 2"),
        "{text}"
    );
}

#[tokio::test]
async fn bad_bodies_and_queries_get_400_with_a_reason() {
    let f = fixture(1 << 20).await;
    let op = Some(f.operator.as_str());
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/ingest",
        op,
        Some(b"not json".to_vec()),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("not JSON"), "{v}");
    let (s, v) = call(&f.app, "POST", "/api/ingest", op, Some(Vec::new()), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "the body is empty");
    // JSON lines that are no supported event: rejected with the line, kept as dead letters.
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/ingest",
        op,
        Some(b"{\"a\":1}\n{\"b\":2}\n".to_vec()),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["accepted"], 0);
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/ingest?format=terraform",
        op,
        Some(b"{}".to_vec()),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"].as_str().unwrap().contains("not an event format"),
        "{v}"
    );
    let (s, _) = call(
        &f.app,
        "POST",
        "/api/ingest",
        op,
        Some(b"x".to_vec()),
        &[("content-encoding", "br")],
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/webhooks/kubernetes-audit",
        op,
        Some(br#"{"kind":"Event"}"#.to_vec()),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("EventList"), "{v}");
    let (s, v) = call(
        &f.app,
        "GET",
        "/api/identities?platform=mars",
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "unknown platform `mars`");
    let (s, _) = call(
        &f.app,
        "GET",
        "/api/identities?bogus=1",
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = call(
        &f.app,
        "GET",
        "/api/findings?since=yesterday",
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("RFC 3339"), "{v}");
    let ct = [("content-type", "application/json")];
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/findings/x/status",
        op,
        Some(br#"{"status":"gone"}"#.to_vec()),
        &ct,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("`gone`"), "{v}");
    let (s, _) = call(
        &f.app,
        "POST",
        "/api/findings/x/status",
        op,
        Some(b"{".to_vec()),
        &ct,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(
        &f.app,
        "POST",
        "/api/findings/x/status",
        op,
        Some(br#"{"status":"resolved"}"#.to_vec()),
        &ct,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/tokens",
        Some(&f.admin),
        Some(br#"{"role":"root","name":"x"}"#.to_vec()),
        &ct,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("`root`"), "{v}");
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let f = fixture(4096).await;
    let big = vec![b' '; 8192];
    let (s, _) = call(
        &f.app,
        "POST",
        "/api/ingest",
        Some(&f.operator),
        Some(big.clone()),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = call(
        &f.app,
        "POST",
        "/api/webhooks/kubernetes-audit",
        Some(&f.operator),
        Some(big),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // A small gzip that expands past 200-fold and past 1 MiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b'\n'; 2 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 4096);
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/ingest",
        Some(&f.operator),
        Some(bomb),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
}

#[tokio::test]
async fn kubernetes_audit_webhook_ingests_an_event_list() {
    let f = fixture(1 << 20).await;
    let event = example("kw-k8s-exec-attach");
    let list = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                      "metadata": {}, "items": [event]});
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
    assert_eq!(v["accepted"], 1);
    assert!(reports(&v, "kw-k8s-exec-attach"), "{v}");
}

/// A body nested 12,000 or 1,000,000 deep used to overflow the stack and abort the whole
/// server: now a document is refused with the reason, a deep JSON line is rejected like
/// any bad record, and the server answers afterwards.
#[tokio::test]
async fn deep_bodies_get_400_and_the_server_still_answers() {
    let f = fixture(8 << 20).await;
    let op = Some(f.operator.as_str());
    let record = serde_json::to_string(&example("kw-aws-cloudtrail-tampering")).unwrap();
    for depth in [12_000, 1_000_000] {
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for (uri, body) in [
            (
                "/api/ingest",
                format!(r#"{{"Records":[{record},{{"a":{deep}}}]}}"#),
            ),
            ("/api/ingest", deep.clone()),
            (
                "/api/webhooks/kubernetes-audit",
                format!(
                    r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{deep}]}}"#
                ),
            ),
        ] {
            let (s, v) = call(&f.app, "POST", uri, op, Some(body.into_bytes()), &[]).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{uri} {depth}: {v}");
            assert_eq!(v["error"], keyward_normalize::TOO_DEEP, "{uri} {depth}");
        }
        // JSON lines: the deep line is one rejected record, the other is stored.
        let lines = format!("{record}\n{{\"eventVersion\":\"1.08\",\"x\":{deep}}}\n");
        let (s, v) = call(
            &f.app,
            "POST",
            "/api/ingest",
            op,
            Some(lines.into_bytes()),
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{depth}: {v}");
        assert_eq!(
            (v["accepted"].as_u64(), v["rejected"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(
            v["rejections"][0],
            json!({"line": 2, "reason": keyward_normalize::TOO_DEEP})
        );
    }
    let (s, _) = call(&f.app, "GET", "/healthz", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/ingest",
        op,
        Some(record.into_bytes()),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

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

/// The `(METHOD, path, handler)` of every `.route(…)` in `router`'s source: the real route
/// list (axum cannot list a router's routes at run time).
fn router_routes() -> Vec<(String, String, String)> {
    let src = include_str!("../src/lib.rs");
    let start = src
        .find("pub fn router(")
        .expect("lib.rs has `pub fn router(`");
    let body = &src[start..];
    let body = &body[..body.find("\n}\n").expect("router's closing brace")];
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's arguments, up to its closing parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find_map(|(i, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(i)
            })
            .expect("a closed .route(…) call");
        let args = &rest[..end];
        let q1 = args.find('"').expect("a path literal");
        let q2 = q1 + 1 + args[q1 + 1..].find('"').unwrap();
        let path = &args[q1 + 1..q2];
        let handlers = &args[q2 + 1..];
        let mut methods = 0;
        for m in ["get", "post", "put", "patch", "delete"] {
            let mut h = handlers;
            while let Some(i) = h.find(&format!("{m}(")) {
                let before = handlers.len() - h.len() + i;
                let prev = handlers[..before].chars().next_back().unwrap_or(' ');
                if !(prev.is_alphanumeric() || prev == '_' || prev == ':') {
                    out.push((
                        m.to_uppercase(),
                        path.to_owned(),
                        handlers.trim().to_owned(),
                    ));
                    methods += 1;
                }
                h = &h[i + m.len() + 1..];
            }
        }
        assert!(methods > 0, "no method router in .route({args})");
        rest = &rest[end..];
    }
    out
}

/// Routes for browsers, not part of the JSON API: the dashboard's pages and assets (HTML,
/// cookie sessions) and the favicon.
fn is_browser_route(path: &str, handler: &str) -> bool {
    handler.contains("dashboard::") || path == "/favicon.ico"
}

#[tokio::test]
async fn openapi_document_covers_every_api_route_with_its_security() {
    // Every API route, with the role its handler's `authorize` asks for (None: no token).
    let expected: [(&str, &str, Option<Role>); 19] = [
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/api/openapi.json", None),
        ("GET", "/metrics", Some(Role::Viewer)),
        ("GET", "/api/identities", Some(Role::Viewer)),
        ("GET", "/api/identities/{*id}", Some(Role::Viewer)),
        ("GET", "/api/findings", Some(Role::Viewer)),
        ("GET", "/api/findings/{id}", Some(Role::Viewer)),
        ("POST", "/api/findings/{id}/status", Some(Role::Operator)),
        ("POST", "/api/ingest", Some(Role::Operator)),
        (
            "POST",
            "/api/webhooks/kubernetes-audit",
            Some(Role::Operator),
        ),
        ("POST", "/api/webhooks/github", None),
        ("GET", "/api/tokens", Some(Role::Admin)),
        ("POST", "/api/tokens", Some(Role::Admin)),
        ("POST", "/api/tokens/{id}/revoke", Some(Role::Admin)),
        ("GET", "/api/audit", Some(Role::Admin)),
        ("GET", "/api/audit/verify", Some(Role::Admin)),
        ("GET", "/api/config", Some(Role::Admin)),
        ("PUT", "/api/config/allowed-accounts", Some(Role::Admin)),
    ];
    let mut in_router: Vec<(String, String)> = router_routes()
        .into_iter()
        .filter(|(_, p, h)| !is_browser_route(p, h))
        .map(|(m, p, _)| (m, p))
        .collect();
    in_router.sort();
    let mut listed: Vec<(String, String)> = expected
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    listed.sort();
    assert_eq!(
        in_router, listed,
        "the routes in `router` and this test's list differ: a new API route needs \
         #[utoipa::path] and a line in openapi::ApiDoc's paths and here"
    );

    let f = fixture(1 << 20).await;
    // Served without a token, as JSON.
    let resp = f
        .app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/api/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let doc: Value = serde_json::from_slice(&bytes).expect("the document is JSON");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Keyward API");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    assert_eq!(
        doc["components"]["schemas"]["ErrorBody"]["required"],
        json!(["error"])
    );

    // The document's operations are exactly the router's API routes.
    let paths = doc["paths"].as_object().expect("`paths`");
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(move |m| (m.to_uppercase(), p.clone()))
        })
        .collect();
    documented.sort();
    let mut openapi_paths: Vec<(String, String)> = listed
        .iter()
        .map(|(m, p)| (m.clone(), p.replace("{*", "{")))
        .collect();
    openapi_paths.sort();
    assert_eq!(documented, openapi_paths);

    for (method, path, role) in expected {
        let doc_path = path.replace("{*", "{");
        let op = &doc["paths"][&doc_path][method.to_lowercase()];
        let what = format!("{method} {path}");
        let security = op.get("security");
        let description = op["description"].as_str().unwrap_or_default();
        match role {
            Some(role) => {
                assert_eq!(security, Some(&json!([{"bearer": []}])), "{what}: {op}");
                assert!(
                    description.contains(&format!("**{}** role", role.as_str())),
                    "{what}: the description names the role: {description}"
                );
                for status in ["401", "403"] {
                    assert!(op["responses"].get(status).is_some(), "{what}: {status}");
                }
            }
            None => assert!(security.is_none(), "{what} needs no bearer token: {op}"),
        }
        assert!(
            op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .any(|s| s.starts_with('2')),
            "{what}"
        );
        if doc_path.contains("{id}") {
            let params = op["parameters"].as_array().expect("parameters");
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == "id" && p["in"] == "path" && p["required"] == true),
                "{what}: the path parameter is documented"
            );
        }

        // The real router agrees: the route exists with this method, and it asks for a
        // bearer token exactly when the document says so.
        let uri = path.replace("{*id}", "some/id").replace("{id}", "x");
        let (s, v) = call(&f.app, method, &uri, None, None, &[]).await;
        assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{what}");
        assert_ne!(v["error"], "no such route", "{what}");
        let bearer_401 = s == StatusCode::UNAUTHORIZED
            && v["error"].as_str().unwrap_or_default().contains("Bearer");
        assert_eq!(bearer_401, role.is_some(), "{what}: {s} {v}");
    }

    let github = &doc["paths"]["/api/webhooks/github"]["post"];
    for h in ["X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery"] {
        assert!(
            github["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == h && p["in"] == "header"),
            "{h}"
        );
    }
}

/// The same files posted to the server and ingested as the CLI does (`Engine::ingest`)
/// give the same inventory and the same threat findings.
#[tokio::test]
async fn server_and_cli_ingest_agree() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate");
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    let trails = root.join("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/11");
    let mut trail_files: Vec<_> = std::fs::read_dir(&trails)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    trail_files.sort();
    files.extend(trail_files);
    files.push(root.join("k8s/prod-eks/audit.jsonl"));

    let f = fixture(32 << 20).await;
    for p in &files {
        let body = std::fs::read(p).unwrap();
        let uri = if p.ends_with("audit.jsonl") {
            "/api/ingest?cluster=prod-eks"
        } else {
            "/api/ingest"
        };
        let (s, v) = call(&f.app, "POST", uri, Some(&f.operator), Some(body), &[]).await;
        assert_eq!(s, StatusCode::OK, "{}: {v}", p.display());
        assert_eq!(v["rejected"], 0, "{}: {v}", p.display());
    }

    let cli_dir = tempfile::tempdir().unwrap();
    let mut cli = keyward_engine::Engine::open(cli_dir.path()).unwrap();
    cli.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
        .unwrap();
    struct Quiet;
    impl keyward_engine::Progress for Quiet {}
    cli.ingest(&files, &Default::default(), &mut Quiet, 1)
        .unwrap();

    // The server's store, reopened (the directory outlives the server).
    let Fixture { app, dir, .. } = f;
    drop(app);
    let served = keyward_engine::Engine::open(dir.path()).unwrap();
    let inventory = |e: &keyward_engine::Engine| -> Vec<Value> {
        let mut v: Vec<Value> = e
            .inventory()
            .iter()
            .map(|i| serde_json::to_value(i).unwrap())
            .collect();
        v.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        v
    };
    let (a, b) = (inventory(&served), inventory(&cli));
    assert!(a.len() > 100, "{} identities", a.len());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    let threats = |e: &keyward_engine::Engine| -> Vec<(String, String, Vec<String>)> {
        let q = keyward_engine::FindingQuery {
            kind: Some(keyward_detect::Kind::Threat),
            ..Default::default()
        };
        let mut v: Vec<_> = e
            .findings(&q)
            .unwrap()
            .into_iter()
            .map(|f| (f.id, f.rule_id, f.events))
            .collect();
        v.sort();
        v
    };
    let (a, b) = (threats(&served), threats(&cli));
    assert!(!a.is_empty());
    assert_eq!(a, b);
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
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/ingest",
        Some(&f.operator),
        Some(post("e-1")),
        &[],
    )
    .await;
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
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/ingest",
        Some(&f.operator),
        Some(post("e-2")),
        &[],
    )
    .await;
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
    let (s, v) = call(
        &f.app,
        "POST",
        "/api/ingest",
        Some(&f.operator),
        Some(body),
        &[],
    )
    .await;
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

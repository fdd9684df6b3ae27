#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The inventory, findings and ingest routes through the real router (`Router` +
//! `oneshot`), the real engine and an on-disk store: success, unauthenticated (401), wrong
//! role (403), bad body or query (400), oversized body (413). Events posted come from the
//! built-in rules' own examples, so a 200 is checked against the findings the pipeline must
//! have produced. Administration is in `admin.rs`, the GitHub webhook in `github.rs`, the
//! OpenAPI document in `openapi.rs`.

use std::io::Write as _;

use axum::http::StatusCode;
use keyward_server::Role;
use serde_json::{Value, json};

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
    let routes: [(&str, &str, Role); 14] = [
        ("GET", "/metrics", Role::Viewer),
        ("GET", "/api/identities", Role::Viewer),
        ("GET", "/api/identities/x", Role::Viewer),
        ("GET", "/api/findings", Role::Viewer),
        ("GET", "/api/findings/x", Role::Viewer),
        ("POST", "/api/findings/x/status", Role::Operator),
        ("POST", "/api/findings/x/exception", Role::Operator),
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
            let e = v["error"].as_str().unwrap();
            // The built-in policies' refusal names the role that would do.
            assert!(e.starts_with("refused by policy: "), "{v}");
            assert!(
                e.contains(&format!("a token with the {} role", need.as_str())),
                "{v}"
            );
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
    let (s, v) = ingest(&f, body.clone()).await;
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

    // The narrowest exception for it: shown, then kept (audited).
    let path = format!("/api/findings/{finding_id}/exception");
    let (s, v) = call(
        &f.app,
        "POST",
        &path,
        Some(&f.operator),
        Some(b"{}".to_vec()),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["saved"], false);
    assert_eq!(v["exception"]["identities"][0], id.as_str());
    let (s, v) = call(
        &f.app,
        "POST",
        &path,
        Some(&f.operator),
        Some(br#"{"save":true,"note":"approved"}"#.to_vec()),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["saved"], true);
    assert_eq!(v["exception"]["note"], "approved");
    let (_, v) = call(&f.app, "GET", "/api/audit", Some(&f.admin), None, &[]).await;
    assert_eq!(v["items"][0]["action"], "exception.add");

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
    let (s, _) = ingest(&f, big.clone()).await;
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
    let (s, v) = ingest(&f, bomb).await;
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

/// An identity's orphan reason reads the same in the API as in the CLI and the dashboard
/// (`owner_departed`, not the Rust name `OwnerDeparted`).
#[tokio::test]
async fn orphan_reasons_are_named_as_everywhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let estate = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate");
    let mut expected = std::collections::BTreeMap::new();
    {
        let mut e = keyward_engine::Engine::open(dir.path()).unwrap();
        e.ingest(&[estate], &Default::default(), &mut (), 1)
            .unwrap();
        let coverage = e.coverage();
        for i in e.inventory().iter() {
            if let Some(r) = e.owner_info(i, &coverage).orphan {
                expected.insert(i.id.clone(), r.as_str());
            }
        }
    }
    assert!(expected.len() >= 3, "{expected:?}");
    let f = fixture_in(dir, keyward_server::Config::default()).await;
    for (id, reason) in expected.iter().take(10) {
        let uri = format!(
            "/api/identities/{}",
            form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        let (s, v) = call(&f.app, "GET", &uri, Some(&f.viewer), None, &[]).await;
        assert_eq!(s, StatusCode::OK, "{id}: {v}");
        assert_eq!(v["owner"]["orphan"], *reason, "{id}");
    }
}

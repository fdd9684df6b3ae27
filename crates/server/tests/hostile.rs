#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Regression tests for what a hostile or careless client did to the API: each is named
//! after what broke. The process-level probes (connections, memory under bombs) run
//! against a real `keyward serve` in `tests/hostile/run.sh`.

mod common;

use std::io::Write as _;

use axum::http::StatusCode;
use serde_json::json;

use common::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn lowercase_bearer_scheme_is_accepted() {
    let f = fixture(1 << 20).await;
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let value = format!("{scheme} {}", f.viewer);
        let r = call(
            &f.app,
            "GET",
            "/api/findings",
            None,
            None,
            &[("authorization", &value)],
        )
        .await;
        assert_eq!(r.0, StatusCode::OK, "{scheme}: {}", r.1);
    }
    // Another scheme, or no token, is still refused.
    for value in ["Basic abc", "Bearer", "Bearer    ", "Bearerx abc"] {
        let r = call(
            &f.app,
            "GET",
            "/api/findings",
            None,
            None,
            &[("authorization", value)],
        )
        .await;
        assert_eq!(r.0, StatusCode::UNAUTHORIZED, "{value}");
    }
}

#[tokio::test]
async fn gzip_bomb_gets_413_without_inflating_it() {
    let f = fixture(1 << 20).await;
    // 64 MiB of zeros: about 64 KiB of gzip, a thousand-fold expansion.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 1 << 20);
    for uri in ["/api/ingest", "/api/webhooks/kubernetes-audit"] {
        let r = call(
            &f.app,
            "POST",
            uri,
            Some(&f.operator),
            Some(bomb.clone()),
            &[("content-encoding", "gzip")],
        )
        .await;
        assert_eq!(r.0, StatusCode::PAYLOAD_TOO_LARGE, "{uri}: {}", r.1);
        assert!(
            r.1["error"].as_str().unwrap().contains("expands past"),
            "{}",
            r.1
        );
    }
    // An honest gzip body still goes through.
    let body = serde_json::to_vec(&json!({"Records": [example("kw-aws-login-profile")]})).unwrap();
    let r = call(
        &f.app,
        "POST",
        "/api/ingest",
        Some(&f.operator),
        Some(gzip(&body)),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
}

#[tokio::test]
async fn unauthenticated_bodies_are_not_read() {
    let f = fixture(1 << 20).await;
    // Larger than the body limit: without a token the answer is 401, not 413 — the body
    // is never read for a caller who is not known.
    let big = vec![b'x'; 4 << 20];
    let r = call(&f.app, "POST", "/api/ingest", None, Some(big.clone()), &[]).await;
    assert_eq!(r.0, StatusCode::UNAUTHORIZED);
    let r = ingest(&f, big).await;
    assert_eq!(r.0, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.1);
    // Forms and JSON of other routes are small.
    let r = set_status(
        &f,
        "/api/findings/x/status",
        json!({"status": "resolved", "note": "x".repeat(200_000)}),
    )
    .await;
    assert_eq!(r.0, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.1);
}

#[tokio::test]
async fn a_note_over_the_limit_is_refused() {
    let f = fixture(1 << 20).await;
    let body = serde_json::to_vec(&json!({"Records": [example("kw-aws-login-profile")]})).unwrap();
    let r = ingest(&f, body).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    let id = r.1["findings"][0]["id"].as_str().unwrap().to_owned();
    let uri = format!("/api/findings/{id}/status");
    let r = set_status(
        &f,
        &uri,
        json!({"status": "resolved", "note": "n".repeat(4097)}),
    )
    .await;
    assert_eq!(r.0, StatusCode::BAD_REQUEST, "{}", r.1);
    let r = call(
        &f.app,
        "GET",
        &format!("/api/findings/{id}"),
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(r.1["finding"]["status"], "open", "nothing changed");
    let r = set_status(
        &f,
        &uri,
        json!({"status": "resolved", "note": "n".repeat(4096)}),
    )
    .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
}

#[tokio::test]
async fn a_bad_first_line_does_not_discard_the_good_lines() {
    let f = fixture(1 << 20).await;
    let record = example("kw-aws-login-profile");
    let mut body = b"# shipped by fluent-bit\n".to_vec();
    for n in 0..100 {
        let mut r = record.clone();
        r["eventID"] = json!(format!("hostile-{n}"));
        body.extend(serde_json::to_vec(&r).unwrap());
        body.push(b'\n');
    }
    let r = ingest(&f, body).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    assert_eq!(r.1["accepted"], 100, "{}", r.1);
    assert_eq!(r.1["rejected"], 1, "{}", r.1);
    assert_eq!(r.1["rejections"][0]["line"], 1, "{}", r.1);
}

/// Posts a status change (JSON) as the operator.
async fn set_status(
    f: &Fixture,
    uri: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let body = serde_json::to_vec(&body).unwrap();
    let ct = [("content-type", "application/json")];
    call(&f.app, "POST", uri, Some(&f.operator), Some(body), &ct).await
}

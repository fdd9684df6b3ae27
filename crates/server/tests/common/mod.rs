#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]
//! The server under test: the real router, engine and an on-disk store, with a token of
//! each role; requests go through `Router` + `oneshot`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use keyward_detect::Catalog;
use keyward_engine::Engine;
use keyward_server::github::WebhookSecret;
use keyward_server::{AppState, Config, EngineHandle, Role, auth};
use serde_json::Value;
use tower::ServiceExt as _;

pub struct Fixture {
    pub app: Router,
    pub viewer: String,
    pub operator: String,
    pub admin: String,
    pub dir: tempfile::TempDir,
}

pub const GITHUB_SECRET: &[u8] = b"It's a Secret to Everybody";

pub async fn fixture(body_limit: usize) -> Fixture {
    fixture_with(Config {
        body_limit,
        github_secret: Some(WebhookSecret::new(GITHUB_SECRET)),
        ..Config::default()
    })
    .await
}

pub async fn fixture_with(config: Config) -> Fixture {
    fixture_in(tempfile::tempdir().unwrap(), config).await
}

/// A server on a data directory that may already hold a store.
pub async fn fixture_in(dir: tempfile::TempDir, config: Config) -> Fixture {
    let data = dir.path().to_path_buf();
    let engine = EngineHandle::spawn(move || {
        let mut e = Engine::open(&data)?;
        e.enable_detection(Catalog::builtin(), Default::default())?;
        Ok::<_, keyward_engine::EngineError>(e)
    })
    .unwrap();
    let mut tokens = Vec::new();
    for role in [Role::Viewer, Role::Operator, Role::Admin] {
        let t = engine
            .call(move |e| auth::create(e, role, "test", "test", 1).unwrap().0)
            .await
            .unwrap();
        tokens.push(t);
    }
    let state = AppState::new(engine, config).unwrap();
    let admin = tokens.pop().unwrap();
    let operator = tokens.pop().unwrap();
    let viewer = tokens.pop().unwrap();
    Fixture {
        app: keyward_server::router(state),
        viewer,
        operator,
        admin,
        dir,
    }
}

/// Sends a request through the router: its status and body bytes.
pub async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::body::Bytes) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

/// [`send`], the answer read as JSON (a string when it is not JSON).
pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let (status, bytes) = send(app, method, uri, token, body, headers).await;
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

/// Posts `body` to `/api/ingest` as the fixture's operator.
pub async fn ingest(f: &Fixture, body: Vec<u8>) -> (StatusCode, Value) {
    call(
        &f.app,
        "POST",
        "/api/ingest",
        Some(&f.operator),
        Some(body),
        &[],
    )
    .await
}

/// The first example event of a built-in rule.
pub fn example(rule: &str) -> Value {
    let c = Catalog::builtin();
    c.files[rule].examples[0].events()[0].clone()
}

/// Whether an ingest answer lists a finding of `rule`.
pub fn reports(answer: &Value, rule: &str) -> bool {
    answer["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule_id"] == rule)
}

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The OpenAPI document against the router and against itself: it lists every API route
//! with its security; every response names a real schema and every `$ref` resolves; the
//! answers the real router sends fit the schemas their operations document, in the key
//! order the API has always used.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use keyward_server::Role;
use keyward_server::github::WebhookSecret;
use serde_json::{Value, json};
use tower::ServiceExt as _;

mod common;
use common::*;

async fn document(app: &Router) -> Value {
    let (s, doc) = call(app, "GET", "/api/openapi.json", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    doc
}

/// What a local `$ref` (`#/…`) points at.
fn resolve<'d>(doc: &'d Value, r: &str) -> Option<&'d Value> {
    doc.pointer(r.strip_prefix('#')?)
}

/// Every `$ref` anywhere in `v`, with where it was found.
fn refs<'v>(v: &'v Value, at: &str, out: &mut Vec<(String, &'v str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref"
                    && let Some(r) = x.as_str()
                {
                    out.push((at.to_owned(), r));
                }
                refs(x, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                refs(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Why `schema` says nothing about a response's shape, if it does not: empty, an object
/// with no properties (and no typed values), or a composition or array of such.
fn vague(doc: &Value, schema: &Value, depth: usize) -> Option<String> {
    if depth > 32 {
        return Some("references loop".into());
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return match resolve(doc, r) {
            Some(s) => vague(doc, s, depth + 1).map(|why| format!("{r}: {why}")),
            None => Some(format!("{r} does not resolve")),
        };
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            return branches
                .iter()
                .filter(|b| b.get("type") != Some(&json!("null")))
                .find_map(|b| vague(doc, b, depth + 1))
                .map(|why| format!("{key}: {why}"));
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Some(format!("no type: {schema}")),
    };
    if types.contains(&"object") {
        let has_props = schema
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
        let typed_values = schema
            .get("additionalProperties")
            .is_some_and(|a| a.is_object() && vague(doc, a, depth + 1).is_none());
        if !has_props && !typed_values {
            return Some(format!("an object with no properties: {schema}"));
        }
    }
    if types.contains(&"array") {
        let items = schema.get("items").unwrap_or(&Value::Null);
        if let Some(why) = vague(doc, items, depth + 1) {
            return Some(format!("items: {why}"));
        }
    }
    None
}

/// Every `(operation, status, content type, schema)` of the document's responses; a
/// content entry without a schema comes with `Value::Null`.
fn responses(doc: &Value) -> Vec<(String, String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(rs) = op.get("responses").and_then(Value::as_object) else {
                continue;
            };
            for (status, r) in rs {
                let r = match r.get("$ref").and_then(Value::as_str) {
                    Some(to) => resolve(doc, to).expect("a response $ref resolves"),
                    None => r,
                };
                for (ct, media) in r
                    .get("content")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    out.push((
                        format!("{} {path}", method.to_uppercase()),
                        status.clone(),
                        ct.clone(),
                        media.get("schema").cloned().unwrap_or(Value::Null),
                    ));
                }
            }
        }
    }
    out
}

/// A regression test for `body = Value` answers: every response of the document names a
/// schema that says what its JSON holds, and every `$ref` in the document resolves.
#[tokio::test]
async fn every_response_names_a_real_schema_and_every_ref_resolves() {
    let f = fixture(1 << 20).await;
    let doc = document(&f.app).await;

    let mut found = Vec::new();
    refs(&doc, "", &mut found);
    assert!(!found.is_empty());
    for (at, r) in &found {
        assert!(
            r.starts_with("#/components/"),
            "{at}: `{r}` is not a local reference"
        );
        assert!(resolve(&doc, r).is_some(), "{at}: `{r}` does not resolve");
    }

    let all = responses(&doc);
    assert!(all.len() > 50, "{}", all.len());
    let mut problems = Vec::new();
    for (op, status, ct, schema) in &all {
        if schema.is_null() {
            problems.push(format!("{op} {status} {ct}: no schema"));
        } else if let Some(why) = vague(&doc, schema, 0) {
            problems.push(format!("{op} {status} {ct}: {why}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The checks catch what they are for.
    assert!(vague(&doc, &json!({}), 0).is_some());
    assert!(vague(&doc, &json!({"type": "object"}), 0).is_some());
    assert!(vague(&doc, &json!({"type": "array", "items": {}}), 0).is_some());
    assert!(vague(&doc, &json!({"$ref": "#/components/schemas/Nope"}), 0).is_some());
    assert!(vague(&doc, &json!({"$ref": "#/components/schemas/ErrorBody"}), 0).is_none());
}

/// Why `v` does not fit `schema`, if it does not. Objects with `properties` may hold no
/// other key; required keys must be there; `oneOf`/`anyOf` need one fitting branch.
fn misfit(doc: &Value, schema: &Value, v: &Value, at: &str) -> Option<String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return misfit(doc, resolve(doc, r)?, v, at);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            return (!branches.iter().any(|b| misfit(doc, b, v, at).is_none()))
                .then(|| format!("{at}: fits no branch of {key}: {v}"));
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        return all.iter().find_map(|b| misfit(doc, b, v, at));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return None, // Any JSON (a rule's free-form `details`).
    };
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !(types.contains(&kind) || (kind == "integer" && types.contains(&"number"))) {
        return Some(format!("{at}: {kind} where the schema says {types:?}: {v}"));
    }
    match v {
        Value::Array(items) => {
            let s = schema.get("items")?;
            items
                .iter()
                .enumerate()
                .find_map(|(i, x)| misfit(doc, s, x, &format!("{at}/{i}")))
        }
        Value::Object(m) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                if let Some(k) = m.keys().find(|k| !props.contains_key(*k)) {
                    return Some(format!("{at}: `{k}` is not in the schema"));
                }
                for req in schema["required"].as_array().into_iter().flatten() {
                    let req = req.as_str().unwrap_or_default();
                    if !m.contains_key(req) {
                        return Some(format!("{at}: required `{req}` is missing"));
                    }
                }
                m.iter()
                    .find_map(|(k, x)| misfit(doc, &props[k], x, &format!("{at}/{k}")))
            } else if let Some(values) = schema.get("additionalProperties") {
                m.iter()
                    .find_map(|(k, x)| misfit(doc, values, x, &format!("{at}/{k}")))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Sends a request and checks the answer against the document: its status is documented,
/// its body fits that status's schema, and its bytes are compact JSON with every object's
/// keys sorted (the order `json!` gave the answers before they were typed). Returns it.
async fn checked(
    app: &Router,
    doc: &Value,
    method: &str,
    (uri, documented): (&str, &str),
    token: Option<&str>,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let (status, bytes) = common::send(app, method, uri, token, body, headers).await;
    let what = format!("{method} {uri} ({status})");
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        serde_json::to_string(&v).unwrap(),
        "{what}: not compact JSON with sorted keys"
    );
    let op = &doc["paths"][documented][method.to_lowercase()];
    let response = &op["responses"][status.as_str()];
    assert!(response.is_object(), "{what}: status not documented");
    let schema = &response["content"]["application/json"]["schema"];
    if let Some(why) = misfit(doc, schema, &v, "") {
        panic!("{what}: {why}");
    }
    (status, v)
}

/// Every JSON answer of the API, success and error, fits the schema its operation
/// documents for its status.
#[tokio::test]
async fn answers_fit_their_documented_schemas() {
    let f = fixture(1 << 20).await;
    let doc = document(&f.app).await;
    let (app, doc) = (&f.app, &doc);

    let record = example("kw-aws-cloudtrail-tampering");
    let body = serde_json::to_vec(&json!({"Records": [record, {"bad": 1}]})).unwrap();
    let route = ("/api/ingest", "/api/ingest");
    let (s, v) = checked(app, doc, "POST", route, Some(&f.operator), Some(body), &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v["findings"].as_array().unwrap().is_empty(), "{v}");
    assert!(!v["rejections"].as_array().unwrap().is_empty(), "{v}");
    let finding = v["findings"][0]["id"].as_str().unwrap().to_owned();
    let identity = v["findings"][0]["identity"].as_str().unwrap().to_owned();
    let all_bad = b"{\"bad\":1}\n{\"bad\":2}\n".to_vec();
    let (s, _) = checked(
        app,
        doc,
        "POST",
        route,
        Some(&f.operator),
        Some(all_bad),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = checked(app, doc, "POST", route, Some(&f.viewer), None, &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Governance, read-only: a scorecard and the (empty) access records.
    let c = ("/api/compliance/soc2", "/api/compliance/{framework}");
    let (s, v) = checked(app, doc, "GET", c, Some(&f.viewer), None, &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["report"]["framework"], "soc2", "{v}");
    assert!(
        v["report"]["controls"].as_array().unwrap().len() >= 5,
        "{v}"
    );
    let c = ("/api/compliance/nist", "/api/compliance/{framework}");
    let (s, _) = checked(app, doc, "GET", c, Some(&f.viewer), None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let a = ("/api/access", "/api/access");
    let (s, v) = checked(app, doc, "GET", a, Some(&f.viewer), None, &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["grants"], json!([]), "{v}");
    let (s, _) = checked(app, doc, "GET", a, None, None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let k8s = example("kw-k8s-exec-attach");
    let list = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [k8s]});
    let hook = "/api/webhooks/kubernetes-audit";
    let (s, _) = checked(
        app,
        doc,
        "POST",
        (&format!("{hook}?cluster=prod"), hook),
        Some(&f.operator),
        Some(serde_json::to_vec(&list).unwrap()),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let bad = json!({"kind": "EventList", "items": [{"bad": 1}]});
    let bad = Some(serde_json::to_vec(&bad).unwrap());
    let (s, v) = checked(app, doc, "POST", (hook, hook), Some(&f.operator), bad, &[]).await;
    assert_eq!(
        (s, &v["accepted"]),
        (StatusCode::BAD_REQUEST, &json!(0)),
        "{v}"
    );

    let secret = WebhookSecret::new(GITHUB_SECRET);
    let gh = "/api/webhooks/github";
    let payload = example("kw-github-deploy-key-write")["request"]["payload"].clone();
    for (event, payload, want) in [
        ("ping", json!({"zen": "z", "hook_id": 42}), StatusCode::OK),
        ("star", json!({"action": "created"}), StatusCode::ACCEPTED),
        ("deploy_key", payload, StatusCode::OK),
    ] {
        let body = serde_json::to_vec(&payload).unwrap();
        let sig = secret.sign(&body);
        let h = [
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", "d-1"),
            ("Content-Type", "application/json"),
            ("X-Hub-Signature-256", sig.as_str()),
        ];
        let (s, v) = checked(app, doc, "POST", (gh, gh), None, Some(body), &h).await;
        assert_eq!(s, want, "{event}: {v}");
    }

    let id_path = "/api/identities/{id}";
    let finding_path = "/api/findings/{id}";
    let status_path = "/api/findings/{id}/status";
    let triage = serde_json::to_vec(&json!({"status": "acknowledged", "note": "n"})).unwrap();
    let (s, v) = checked(
        app,
        doc,
        "POST",
        (&format!("/api/findings/{finding}/status"), status_path),
        Some(&f.operator),
        Some(triage),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The narrowest exception for it, shown: the answer fits its schema.
    let except_path = "/api/findings/{id}/exception";
    let (s, v) = checked(
        app,
        doc,
        "POST",
        (&format!("/api/findings/{finding}/exception"), except_path),
        Some(&f.operator),
        Some(b"{}".to_vec()),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let reads = [
        ("/api/identities?limit=5".to_owned(), "/api/identities"),
        (format!("/api/identities/{identity}"), id_path),
        ("/api/identities/nobody".to_owned(), id_path),
        ("/api/findings".to_owned(), "/api/findings"),
        ("/api/findings?severity=bogus".to_owned(), "/api/findings"),
        (format!("/api/findings/{finding}"), finding_path),
        ("/api/findings/kwf-none".to_owned(), finding_path),
        ("/api/tokens".to_owned(), "/api/tokens"),
        ("/api/audit?limit=50".to_owned(), "/api/audit"),
        ("/api/audit/verify".to_owned(), "/api/audit/verify"),
        ("/api/config".to_owned(), "/api/config"),
    ];
    for (uri, documented) in &reads {
        let (s, v) = checked(
            app,
            doc,
            "GET",
            (uri, documented),
            Some(&f.admin),
            None,
            &[],
        )
        .await;
        assert!(s.is_success() || s.is_client_error(), "{uri}: {s} {v}");
    }
    let (_, v) = checked(
        app,
        doc,
        "GET",
        ("/api/identities/x", id_path),
        None,
        None,
        &[],
    )
    .await;
    assert!(v["error"].is_string());

    let json_ct = [("content-type", "application/json")];
    let new = serde_json::to_vec(&json!({"role": "viewer", "name": "n"})).unwrap();
    let tokens = ("/api/tokens", "/api/tokens");
    let (s, v) = checked(
        app,
        doc,
        "POST",
        tokens,
        Some(&f.admin),
        Some(new),
        &json_ct,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let revoke = format!("/api/tokens/{}/revoke", v["id"].as_str().unwrap());
    let revoke = (revoke.as_str(), "/api/tokens/{id}/revoke");
    let (s, _) = checked(app, doc, "POST", revoke, Some(&f.admin), None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = checked(app, doc, "POST", revoke, Some(&f.admin), None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let accounts = serde_json::to_vec(&json!({"accounts": ["123456789012"]})).unwrap();
    let put = (
        "/api/config/allowed-accounts",
        "/api/config/allowed-accounts",
    );
    let (s, v) = checked(
        app,
        doc,
        "PUT",
        put,
        Some(&f.admin),
        Some(accounts),
        &json_ct,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
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

/// MCP's streamable HTTP transport (JSON-RPC, described by the MCP specification, not by
/// OpenAPI); its authorization is tested in `crates/cli/tests/mcp.rs`.
fn is_mcp_route(path: &str) -> bool {
    path == "/mcp"
}

#[tokio::test]
async fn openapi_document_covers_every_api_route_with_its_security() {
    // Every API route, with the role its handler's `authorize` asks for (None: no token).
    let expected: [(&str, &str, Option<Role>); 45] = [
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/api/openapi.json", None),
        ("GET", "/metrics", Some(Role::Viewer)),
        ("GET", "/api/identities", Some(Role::Viewer)),
        ("GET", "/api/identities/{*id}", Some(Role::Viewer)),
        ("GET", "/api/findings", Some(Role::Viewer)),
        ("GET", "/api/findings/{id}", Some(Role::Viewer)),
        ("POST", "/api/findings/{id}/status", Some(Role::Operator)),
        ("POST", "/api/findings/{id}/exception", Some(Role::Operator)),
        ("POST", "/api/ingest", Some(Role::Operator)),
        ("GET", "/api/respond/plans", Some(Role::Viewer)),
        ("POST", "/api/respond/plans", Some(Role::Operator)),
        ("GET", "/api/respond/plans/{id}", Some(Role::Viewer)),
        (
            "GET",
            "/api/respond/plans/{id}/evidence",
            Some(Role::Operator),
        ),
        ("POST", "/api/respond/plans/{id}/execute", Some(Role::Admin)),
        ("POST", "/api/respond/plans/{id}/undo", Some(Role::Admin)),
        ("GET", "/api/access", Some(Role::Viewer)),
        ("POST", "/api/access/requests", Some(Role::Operator)),
        (
            "POST",
            "/api/access/requests/{id}/approve",
            Some(Role::Admin),
        ),
        ("POST", "/api/access/requests/{id}/deny", Some(Role::Admin)),
        ("POST", "/api/access/grants/{id}/apply", Some(Role::Admin)),
        (
            "POST",
            "/api/access/grants/{id}/revoke",
            Some(Role::Operator),
        ),
        ("GET", "/api/compliance/{framework}", Some(Role::Viewer)),
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
        // The broker: workloads prove who they are with their own token, not an API token.
        ("GET", "/broker/.well-known/openid-configuration", None),
        ("GET", "/broker/jwks", None),
        ("GET", "/broker/bundle", None),
        ("POST", "/broker/token", None),
        ("POST", "/broker/aws", None),
        ("POST", "/broker/svid", None),
        ("POST", "/broker/secrets/{name}", None),
        ("POST", "/broker/leases/{id}/renew", None),
        ("POST", "/broker/leases/{id}/revoke", None),
        ("GET", "/api/broker/leases", Some(Role::Viewer)),
        ("GET", "/api/broker/leases/{id}", Some(Role::Viewer)),
        (
            "POST",
            "/api/broker/leases/{id}/revoke",
            Some(Role::Operator),
        ),
    ];
    let mut in_router: Vec<(String, String)> = router_routes()
        .into_iter()
        .filter(|(_, p, h)| !is_browser_route(p, h) && !is_mcp_route(p))
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

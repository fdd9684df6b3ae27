#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The dashboard through the real router: sign-in and its cookie, every page signed in and
//! not, bad queries, the CSRF and origin checks, roles, and revocation ending a session.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use keyward_server::Config;
use keyward_store::Store as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use common::*;

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn req(
    f: &Fixture,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&str>,
    extra: &[(&str, &str)],
) -> Page {
    let mut r = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "keyward.test");
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, format!("kw_session={c}"));
    }
    if form.is_some() {
        r = r.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    let r = r
        .body(form.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    let resp = f.app.clone().oneshot(r).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Signs in; returns the session id and the whole Set-Cookie header.
async fn sign_in(f: &Fixture, token: &str) -> (String, String) {
    let p = req(
        f,
        "POST",
        "/ui/login",
        None,
        Some(&form(&[("token", token)])),
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.headers[header::LOCATION], "/ui/");
    let set = p.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    let id = set
        .strip_prefix("kw_session=")
        .and_then(|s| s.split(';').next())
        .unwrap()
        .to_owned();
    (id, set)
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + 64].to_owned()
}

const PAGES: [&str; 7] = [
    "/ui/",
    "/ui/identities",
    "/ui/identity?id=arn:aws:iam::070411556318:user/christophe",
    "/ui/findings",
    "/ui/compliance",
    "/ui/compliance?framework=pci-dss-4",
    "/ui/access",
];

#[tokio::test]
async fn pages_need_a_session_and_sign_in_sets_a_strict_cookie() {
    let f = fixture(1 << 16).await;
    for uri in PAGES {
        let p = req(&f, "GET", uri, None, None, &[]).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(p.headers[header::LOCATION], "/ui/login", "{uri}");
        let p = req(&f, "GET", uri, Some("forged"), None, &[]).await;
        assert_eq!(p.headers[header::LOCATION], "/ui/login", "{uri}");
    }
    let p = req(&f, "GET", "/", None, None, &[]).await;
    assert_eq!(p.headers[header::LOCATION], "/ui/");
    let p = req(&f, "GET", "/ui/login", None, None, &[]).await;
    assert_eq!(p.status, StatusCode::OK);
    let csp = p.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(p.headers[header::X_FRAME_OPTIONS], "DENY");
    let css = req(&f, "GET", "/ui/assets/app.css", None, None, &[]).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );

    // A wrong token: 401 and the form again, no cookie.
    let p = req(&f, "POST", "/ui/login", None, Some("token=kw_wrong"), &[]).await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(p.body.contains("Unknown or revoked token"));
    assert!(!p.headers.contains_key(header::SET_COOKIE));
    // The failed sign-in is audited, without the token's text.
    let store = keyward_store::SqliteStore::open(f.dir.path()).unwrap();
    let last = store.audit_log(1).unwrap().remove(0).entry;
    assert_eq!(last.action, "ui.sign-in.failed");
    assert!(
        last.detail
            .as_deref()
            .unwrap()
            .starts_with("failed sign-in from")
    );
    assert!(!format!("{last:?}").contains("kw_wrong"), "{last:?}");
    // A sign-in form posted from another site is refused.
    let body = form(&[("token", &f.viewer)]);
    let p = req(
        &f,
        "POST",
        "/ui/login",
        None,
        Some(&body),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // A body that is not the form: 4xx, not a session.
    let p = req(&f, "POST", "/ui/login", None, Some("nothing=here"), &[]).await;
    assert!(p.status.is_client_error(), "{}", p.status);
    // Oversized: 413.
    let big = format!("token={}", "a".repeat(1 << 17));
    let p = req(&f, "POST", "/ui/login", None, Some(&big), &[]).await;
    assert_eq!(p.status, StatusCode::PAYLOAD_TOO_LARGE);

    let (id, set) = sign_in(&f, &f.viewer).await;
    assert_eq!(id.len(), 64);
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP: no Secure flag ({set})"
    );

    // Under TLS the cookie is Secure.
    let t = fixture_with(Config {
        tls: true,
        ..Config::default()
    })
    .await;
    let (_, set) = sign_in(&t, &t.viewer).await;
    assert!(set.ends_with("; Secure"), "{set}");
}

#[tokio::test]
async fn every_page_renders_and_operators_triage_with_csrf() {
    let f = fixture(1 << 20).await;
    // Data: a rule's example posted through the API (a finding on christophe).
    let body = serde_json::to_vec(&json!({"Records": [example("kw-aws-login-profile")]})).unwrap();
    let r = ingest(&f, body).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    let finding = r.1["findings"][0]["id"].as_str().unwrap().to_owned();

    let (viewer, _) = sign_in(&f, &f.viewer).await;
    for uri in PAGES {
        let p = req(&f, "GET", uri, Some(&viewer), None, &[]).await;
        assert_eq!(p.status, StatusCode::OK, "{uri}: {}", p.body);
        assert!(p.headers.contains_key(header::CONTENT_SECURITY_POLICY));
        assert_eq!(p.headers[header::CACHE_CONTROL], "no-store");
    }
    let p = req(&f, "GET", PAGES[2], Some(&viewer), None, &[]).await;
    assert!(p.body.contains("<svg"), "the identity page draws its graph");
    assert!(
        p.body.contains("CreateLoginProfile"),
        "recent activity lists the event"
    );
    let p = req(&f, "GET", "/ui/compliance", Some(&viewer), None, &[]).await;
    assert!(
        p.body.contains("CC6.1") && p.body.contains("Trend"),
        "{}",
        p.body
    );
    let p = req(
        &f,
        "GET",
        "/ui/compliance?framework=pci-dss-4",
        Some(&viewer),
        None,
        &[],
    )
    .await;
    assert!(p.body.contains("8.3.9"), "{}", p.body);
    let p = req(
        &f,
        "GET",
        "/ui/compliance?framework=nist",
        Some(&viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    let p = req(&f, "GET", "/ui/findings", Some(&viewer), None, &[]).await;
    assert!(p.body.contains(&finding));
    assert!(p.body.contains("T1098.001"), "ATT&CK ids shown");
    assert!(
        !p.body.contains("Acknowledge"),
        "viewers get no triage buttons"
    );
    let p = req(
        &f,
        "GET",
        "/ui/identity?id=nobody",
        Some(&viewer),
        None,
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    for bad in [
        "/ui/identities?kind=nope",
        "/ui/identities?risk=dire",
        "/ui/findings?status=nope",
        "/ui/findings?severity=dire",
    ] {
        let p = req(&f, "GET", bad, Some(&viewer), None, &[]).await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(p.body.contains("unknown"), "{bad}: {}", p.body);
    }
    // Escaping: a search term is shown as text, never as markup.
    let p = req(
        &f,
        "GET",
        "/ui/identities?q=%3Cscript%3E",
        Some(&viewer),
        None,
        &[],
    )
    .await;
    assert!(
        p.body.contains("&#60;script&#62;") || p.body.contains("&lt;script&gt;"),
        "escaped"
    );
    assert!(!p.body.contains("<script>"));

    // A viewer cannot triage, even with its CSRF token.
    let csrf = csrf_of(&p.body);
    let uri = format!("/ui/findings/{finding}/status");
    let body = form(&[("csrf", &csrf), ("status", "acknowledged")]);
    let p = req(&f, "POST", &uri, Some(&viewer), Some(&body), &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);

    let (op, _) = sign_in(&f, &f.operator).await;
    let page = req(&f, "GET", "/ui/findings", Some(&op), None, &[]).await;
    assert!(page.body.contains("Acknowledge"));
    let csrf = csrf_of(&page.body);
    // No CSRF token, another session's token, another origin: refused, nothing changes.
    for (body, origin) in [
        (form(&[("status", "acknowledged")]), None),
        (
            form(&[("csrf", &"0".repeat(64)), ("status", "acknowledged")]),
            None,
        ),
        (
            form(&[("csrf", &csrf), ("status", "acknowledged")]),
            Some("https://evil.example"),
        ),
    ] {
        let extra: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        let p = req(&f, "POST", &uri, Some(&op), Some(&body), &extra).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{body} {origin:?}");
    }
    assert_eq!(finding_status(&f, &finding).await, "open");
    let body = form(&[("csrf", &csrf), ("status", "nope")]);
    let p = req(&f, "POST", &uri, Some(&op), Some(&body), &[]).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);

    // Same origin, the session's token: done, audited, back to the queue.
    let body = form(&[
        ("csrf", &csrf),
        ("status", "acknowledged"),
        ("back", "/ui/findings?severity=high"),
    ]);
    let p = req(
        &f,
        "POST",
        &uri,
        Some(&op),
        Some(&body),
        &[("origin", "http://keyward.test")],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let to = p.headers[header::LOCATION].to_str().unwrap();
    assert!(
        to.starts_with("/ui/findings?severity=high&done=acknowledged"),
        "{to}"
    );
    assert_eq!(finding_status(&f, &finding).await, "acknowledged");
    let r = call(&f.app, "GET", "/api/audit", Some(&f.admin), None, &[]).await;
    let actions: Vec<&str> = r.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"finding.status") && actions.contains(&"ui.sign-in"),
        "{actions:?}"
    );
    // `back` never leaves the queue (no open redirect).
    let body = form(&[
        ("csrf", &csrf),
        ("status", "open"),
        ("back", "https://evil.example/"),
    ]);
    let p = req(&f, "POST", &uri, Some(&op), Some(&body), &[]).await;
    assert!(
        p.headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/ui/findings?")
    );
    // Regression: a `back` holding CR/LF answered 500 after the change was saved. It is
    // now replaced by the queue before anything changes.
    let body = form(&[
        ("csrf", &csrf),
        ("status", "acknowledged"),
        ("back", "/ui/findings?x=1\r\nSet-Cookie: kw_session=evil"),
    ]);
    let p = req(&f, "POST", &uri, Some(&op), Some(&body), &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let to = p.headers[header::LOCATION].to_str().unwrap();
    assert!(
        to.starts_with("/ui/findings?") && to.contains("done=acknowledged"),
        "{to}"
    );
    assert!(!to.contains(['\r', '\n']) && !to.contains("x=1"), "{to}");
    assert!(!p.headers.contains_key(header::SET_COOKIE));
    // Regression: `Origin: null` (a sandboxed frame, a file) was accepted. Our pages send
    // `Referrer-Policy: same-origin`, so our own forms carry the real origin.
    let body = form(&[("csrf", &csrf), ("status", "open")]);
    let p = req(
        &f,
        "POST",
        &uri,
        Some(&op),
        Some(&body),
        &[("origin", "null")],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(finding_status(&f, &finding).await, "acknowledged");
    let login = form(&[("token", &f.operator)]);
    let p = req(
        &f,
        "POST",
        "/ui/login",
        None,
        Some(&login),
        &[("origin", "null")],
    )
    .await;
    assert_eq!(
        p.status,
        StatusCode::FORBIDDEN,
        "no sign-in from Origin: null"
    );
    assert!(!p.headers.contains_key(header::SET_COOKIE));
    let p = req(&f, "GET", "/ui/findings", Some(&op), None, &[]).await;
    assert_eq!(p.headers[header::REFERRER_POLICY], "same-origin");

    // Sign-out ends the session; revoking a token ends its sessions.
    let body = form(&[("csrf", &csrf)]);
    let p = req(&f, "POST", "/ui/logout", Some(&op), Some(&body), &[]).await;
    assert_eq!(p.headers[header::LOCATION], "/ui/login");
    let store = keyward_store::SqliteStore::open(f.dir.path()).unwrap();
    let actions: Vec<String> = store
        .audit_log(1_000)
        .unwrap()
        .into_iter()
        .map(|r| r.entry.action)
        .collect();
    assert_eq!(actions.first().map(String::as_str), Some("ui.sign-out"));
    assert!(actions.iter().any(|a| a == "ui.sign-in"), "{actions:?}");
    assert!(store.audit_verify(&[]).unwrap().ok);
    let p = req(&f, "GET", "/ui/", Some(&op), None, &[]).await;
    assert_eq!(p.headers[header::LOCATION], "/ui/login");
    let r = call(&f.app, "GET", "/api/tokens", Some(&f.admin), None, &[]).await;
    let viewer_id = r.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "viewer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(
        &f.app,
        "POST",
        &format!("/api/tokens/{viewer_id}/revoke"),
        Some(&f.admin),
        None,
        &[],
    )
    .await;
    assert_eq!(r.0, StatusCode::OK);
    let p = req(&f, "GET", "/ui/", Some(&viewer), None, &[]).await;
    assert_eq!(
        p.headers[header::LOCATION],
        "/ui/login",
        "revoked token, session over"
    );
}

/// A finding's status, as the API shows it.
async fn finding_status(f: &Fixture, id: &str) -> Value {
    let uri = format!("/api/findings/{id}");
    let r = call(&f.app, "GET", &uri, Some(&f.viewer), None, &[]).await;
    r.1["finding"]["status"].clone()
}

#[tokio::test]
async fn operators_plan_containment_and_only_admins_get_execute_behind_a_confirmation() {
    let f = fixture(1 << 20).await;
    let body = serde_json::to_vec(&json!({"Records": [example("kw-aws-login-profile")]})).unwrap();
    let r = ingest(&f, body).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    let finding = r.1["findings"][0]["id"].as_str().unwrap().to_owned();

    // Viewers see no plan button and cannot post one.
    let (viewer, _) = sign_in(&f, &f.viewer).await;
    let p = req(&f, "GET", "/ui/findings", Some(&viewer), None, &[]).await;
    assert!(!p.body.contains("Plan containment"));
    let csrf = csrf_of(&p.body);
    let p = req(
        &f,
        "POST",
        "/ui/respond/plan",
        Some(&viewer),
        Some(&form(&[("csrf", &csrf), ("target", &finding)])),
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);

    // An operator makes a plan from the finding (CSRF checked) and lands on its page.
    let (operator, _) = sign_in(&f, &f.operator).await;
    let p = req(&f, "GET", "/ui/findings", Some(&operator), None, &[]).await;
    assert!(p.body.contains("Plan containment"));
    let csrf = csrf_of(&p.body);
    let bad = req(
        &f,
        "POST",
        "/ui/respond/plan",
        Some(&operator),
        Some(&form(&[("csrf", &"0".repeat(64)), ("target", &finding)])),
        &[],
    )
    .await;
    assert_eq!(
        bad.status,
        StatusCode::FORBIDDEN,
        "a wrong CSRF token is refused"
    );
    let p = req(
        &f,
        "POST",
        "/ui/respond/plan",
        Some(&operator),
        Some(&form(&[("csrf", &csrf), ("target", &finding)])),
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let at = p.headers[header::LOCATION].to_str().unwrap().to_owned();
    assert!(at.starts_with("/ui/respond/rp-"), "{at}");
    let id = at.trim_start_matches("/ui/respond/").to_owned();
    let page = req(&f, "GET", &at, Some(&operator), None, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("deny_all") && page.body.contains("aws iam put-user-policy"));
    assert!(
        !page.body.contains("Execute plan"),
        "operators cannot execute"
    );
    let p = req(
        &f,
        "POST",
        &format!("{at}/execute"),
        Some(&operator),
        Some(&form(&[("csrf", &csrf), ("confirm", &id)])),
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);

    // An admin sees Execute, and a confirmation that is not the plan's id runs nothing.
    let (admin, _) = sign_in(&f, &f.admin).await;
    let page = req(&f, "GET", &at, Some(&admin), None, &[]).await;
    assert!(page.body.contains("Execute plan"));
    let csrf = csrf_of(&page.body);
    let p = req(
        &f,
        "POST",
        &format!("{at}/execute"),
        Some(&admin),
        Some(&form(&[("csrf", &csrf), ("confirm", "yes")])),
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.body.contains("nothing was run"));
    let list = req(&f, "GET", "/ui/respond", Some(&admin), None, &[]).await;
    assert!(list.body.contains(&id) && list.body.contains("planned"));
}

/// A posture finding's remediation reaches the page and the API: each step's commands in
/// a `<pre>`, a hostile name escaped by the template and still one shell word.
#[tokio::test]
async fn a_posture_finding_shows_its_remediation_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let name = "<b>x</b>'; rm -rf /";
    {
        let input = tempfile::tempdir().unwrap();
        let acct = "111122223333";
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{acct}:root")}, "Action": "sts:AssumeRole"}]});
        let doc = json!({"UserDetailList": [], "GroupDetailList": [], "Policies": [],
            "RoleDetailList": [{"Path": "/", "RoleName": name,
                "Arn": format!("arn:aws:iam::{acct}:role/{name}"),
                "CreateDate": "2022-11-30T17:55:40+00:00", "AssumeRolePolicyDocument": trust,
                "RoleLastUsed": {"LastUsedDate": "2026-04-30T03:12:48+00:00", "Region": "us-east-1"},
                "RolePolicyList": [], "AttachedManagedPolicies": [], "InstanceProfileList": []}]});
        let p = input
            .path()
            .join(format!("aws/{acct}/iam-authorization-details.json"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, serde_json::to_vec(&doc).unwrap()).unwrap();
        let mut e = keyward_engine::Engine::open(dir.path()).unwrap();
        let r = e
            .ingest(&[p], &keyward_engine::IngestOptions::default(), &mut (), 0)
            .unwrap();
        assert_eq!(r.rejected, 0, "{:?}", r.rejections);
        // 2026-11-15T00:00:00Z: unused for more than 30 days.
        e.evaluate_posture(1_794_700_800_000, &[]).unwrap();
    }
    let f = fixture_in(dir, Config::default()).await;
    let r = call(
        &f.app,
        "GET",
        "/api/findings?kind=posture",
        Some(&f.viewer),
        None,
        &[],
    )
    .await;
    let stale = r.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "kw-posture-stale")
        .unwrap_or_else(|| panic!("{}", r.1))
        .clone();
    let steps = &stale["details"]["remediation"]["steps"];
    let quoted = r"'<b>x</b>'\''; rm -rf /'";
    assert_eq!(
        steps[0]["commands"][0],
        format!(
            "aws iam put-role-policy --role-name {quoted} --policy-name KeywardDenyAll \
             --policy-document '{{\"Statement\":[{{\"Action\":\"*\",\"Effect\":\"Deny\",\"Resource\":\"*\"}}],\"Version\":\"2012-10-17\"}}'"
        )
    );
    assert_eq!(steps[1]["after_days"], 30);

    let (viewer, _) = sign_in(&f, &f.viewer).await;
    let p = req(&f, "GET", "/ui/findings", Some(&viewer), None, &[]).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("<details class=\"fix\">"), "{}", p.body);
    assert!(p.body.contains("<b>After 30 days:</b>"));
    assert!(
        p.body
            .contains("<pre>aws iam put-role-policy --role-name &#39;&#60;b&#62;x&#60;/b&#62;&#39;\\&#39;&#39;; rm -rf /&#39;"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("<b>x</b>"), "the name is escaped");
}

/// The access page's forms: an operator asks, sees only a withdraw button on their own
/// request; an admin approves it into a planned grant; a viewer is offered nothing and is
/// refused by the policies when posting anyway. Each decision is audited from `dashboard`.
#[tokio::test]
async fn access_is_requested_and_approved_from_the_access_page() {
    let f = fixture(1 << 20).await;
    let (viewer, _) = sign_in(&f, &f.viewer).await;
    let p = req(&f, "GET", "/ui/access", Some(&viewer), None, &[]).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(!p.body.contains("Ask for access"));
    let viewer_csrf = csrf_of(&p.body);

    let (operator, _) = sign_in(&f, &f.operator).await;
    let p = req(&f, "GET", "/ui/access", Some(&operator), None, &[]).await;
    assert!(p.body.contains("Ask for access"), "{}", p.body);
    let csrf = csrf_of(&p.body);
    let ask = form(&[
        ("csrf", &csrf),
        ("to", "user/deploy"),
        ("kind", "group"),
        ("value", "release-managers"),
        ("namespace", ""),
        ("for", "2h"),
        ("reason", "release 4.2"),
    ]);
    let p = req(
        &f,
        "POST",
        "/ui/access/request",
        Some(&operator),
        Some(&ask),
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.headers[header::LOCATION], "/ui/access");
    let (_, v) = call(&f.app, "GET", "/api/access", Some(&f.viewer), None, &[]).await;
    let r = &v["requests"][0];
    assert_eq!(r["state"], "pending", "{v}");
    let id = r["id"].as_str().unwrap().to_owned();
    let p = req(&f, "GET", "/ui/access", Some(&operator), None, &[]).await;
    assert!(p.body.contains("Withdraw") && !p.body.contains(">Approve<"));

    // A viewer posting the approval anyway is refused by the policies.
    let approve = format!("/ui/access/requests/{id}/approve");
    let p = req(
        &f,
        "POST",
        &approve,
        Some(&viewer),
        Some(&form(&[("csrf", &viewer_csrf)])),
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.body.contains("refused by policy"), "{}", p.body);

    let (admin, _) = sign_in(&f, &f.admin).await;
    let p = req(&f, "GET", "/ui/access", Some(&admin), None, &[]).await;
    assert!(p.body.contains(">Approve<"), "{}", p.body);
    let csrf = csrf_of(&p.body);
    let p = req(
        &f,
        "POST",
        &approve,
        Some(&admin),
        Some(&form(&[("csrf", &csrf)])),
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let (_, v) = call(&f.app, "GET", "/api/access", Some(&f.viewer), None, &[]).await;
    assert_eq!(v["requests"][0]["state"], "approved", "{v}");
    let g = &v["grants"][0];
    assert_eq!(g["state"], "planned");
    assert!(g["approver"].as_str().unwrap().starts_with("token:"));
    assert_ne!(g["approver"], g["requester"]);

    let (_, v) = call(&f.app, "GET", "/api/audit", Some(&f.admin), None, &[]).await;
    let decided: Vec<(String, String, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "policy.decide")
        .map(|e| {
            let d: Value = serde_json::from_str(e["detail"].as_str().unwrap()).unwrap();
            (
                d["action"].as_str().unwrap().to_owned(),
                d["decision"].as_str().unwrap().to_owned(),
                d["surface"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let d = |a: &str, b: &str| (a.to_owned(), b.to_owned(), "dashboard".to_owned());
    // Newest first: the admin's approval, the viewer's refusal, the operator's request.
    assert_eq!(
        decided,
        vec![
            d("approve", "allow"),
            d("approve", "deny"),
            d("plan", "allow")
        ]
    );
}

/// Two servers on one store (a restart, or instances behind a balancer): a session signed
/// in on one is honoured by the other, signing out on either ends it on both, and the store
/// holds neither the session id nor the token.
#[tokio::test]
async fn a_session_from_one_server_is_honoured_by_another_on_the_same_store() {
    let f = fixture(1 << 20).await;
    let path = f.dir.path().to_path_buf();
    let engine =
        keyward_server::EngineHandle::spawn(move || keyward_engine::Engine::open(&path)).unwrap();
    let state = keyward_server::AppState::new(engine, Config::default()).unwrap();
    let b = Fixture {
        app: keyward_server::router(state),
        viewer: f.viewer.clone(),
        operator: f.operator.clone(),
        admin: f.admin.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let (session, _) = sign_in(&f, &f.operator).await;
    let p = req(&b, "GET", "/ui/findings", Some(&session), None, &[]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let csrf = csrf_of(&p.body);

    let db = rusqlite::Connection::open(f.dir.path().join("keyward.db")).unwrap();
    let docs: Vec<(String, String)> = db
        .prepare("SELECT id, doc FROM jobs WHERE kind = 'ui_session'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(docs.len(), 1);
    for secret in [&session, &f.operator] {
        assert!(!docs[0].0.contains(secret.as_str()) && !docs[0].1.contains(secret.as_str()));
    }

    let p = req(
        &b,
        "POST",
        "/ui/logout",
        Some(&session),
        Some(&form(&[("csrf", &csrf)])),
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = req(&f, "GET", "/ui/findings", Some(&session), None, &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.headers[header::LOCATION], "/ui/login");
}

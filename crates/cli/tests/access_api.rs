//! The privileged access path over the HTTP API, end to end: a real `keyward serve`
//! (inheriting moto's `AWS_*` variables, `../shared/tools/aws/moto-up`) takes a request from
//! an operator token, refuses its self-approval and an operator's attempt to apply, takes an
//! admin's approval, attaches the managed policy in moto when an admin applies it, and
//! detaches it when the operator revokes it early. Every step, allowed or refused, is in
//! the audit log with the policies that decided. Skipped without `KEYWARD_TEST_AWS_ENDPOINT`.

#![cfg(feature = "aws")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::moto::Moto;
use common::{http, http_json, keyward, text};
use serde_json::{Value, json};

fn token(data: &std::path::Path, role: &str) -> String {
    let o = keyward(data, &["token", "create", "--role", role, "--name", role]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout).trim().to_owned()
}

fn post(port: u16, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let (s, b) = http_json(port, "POST", path, token, body.to_string().as_bytes());
    (s, serde_json::from_str(&b).unwrap_or(Value::Null))
}

#[test]
fn an_operator_asks_an_admin_approves_and_applies_and_the_grant_is_revoked_in_moto() {
    let Some(m) = Moto::from_env() else { return };
    let data = tempfile::tempdir().unwrap();
    let (viewer, operator, admin) = (
        token(data.path(), "viewer"),
        token(data.path(), "operator"),
        token(data.path(), "admin"),
    );
    let user = format!("api-oncall-{}", m.now % 1_000_000_000);
    m.user_with_key(&user);
    let arn = m.policy(&format!("api-read-logs-{}", m.now % 1_000_000_000));
    let server = common::serve(data.path());
    let port = server.port;

    let ask = json!({"to": format!("user/{user}"), "policy": arn, "for": "1h", "reason": "INC-7"});
    let (s, v) = post(port, "/api/access/requests", &viewer, &ask);
    assert_eq!(s, 403, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("a token with the operator role"),
        "{v}"
    );
    let (s, v) = post(port, "/api/access/requests", &operator, &ask);
    assert_eq!(s, 201, "{v}");
    let id = v["request"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["request"]["state"], "pending");

    // Nobody approves their own request; an admin does.
    let approve = format!("/api/access/requests/{id}/approve");
    let (s, v) = post(port, &approve, &operator, &json!({}));
    assert_eq!(s, 403, "{v}");
    let (s, v) = post(port, &approve, &admin, &json!({}));
    assert_eq!(s, 200, "{v}");
    let grant = v["grant"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["grant"]["state"], "planned");
    assert!(m.attached(&user).is_empty(), "approval changes nothing yet");
    let (s, _) = post(port, &approve, &admin, &json!({}));
    assert_eq!(s, 409, "decided already");

    // Applying: admins only, with the grant id repeated; then the policy is attached.
    let apply = format!("/api/access/grants/{grant}/apply");
    let (s, v) = post(port, &apply, &operator, &json!({"confirm": grant}));
    assert_eq!(s, 403, "{v}");
    let (s, v) = post(port, &apply, &admin, &json!({"confirm": "nope"}));
    assert_eq!(s, 400, "{v}");
    let (s, v) = post(port, &apply, &admin, &json!({"confirm": grant}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["grant"]["state"], "active", "{v}");
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(m.attached(&user), vec![arn.clone()]);

    // Revoked early by the operator: detached, read back.
    let revoke = format!("/api/access/grants/{grant}/revoke");
    let (s, v) = post(port, &revoke, &operator, &json!({"confirm": grant}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["grant"]["state"], "revoked", "{v}");
    assert!(m.attached(&user).is_empty());

    // The audit log: every access step, and each decision with its deciding policies.
    let (s, body) = http(port, "GET", "/api/audit?limit=100", &admin, b"");
    assert_eq!(s, 200, "{body}");
    let log: Value = serde_json::from_str(&body).unwrap();
    let mut steps = Vec::new();
    for e in log["items"].as_array().unwrap().iter().rev() {
        let action = e["action"].as_str().unwrap();
        if action == "policy.decide" {
            let d: Value = serde_json::from_str(e["detail"].as_str().unwrap()).unwrap();
            steps.push(format!(
                "{} {} {}",
                d["action"].as_str().unwrap(),
                d["decision"].as_str().unwrap(),
                d["policies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        } else if action.starts_with("access.") {
            steps.push(action.to_owned());
        }
    }
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    assert_eq!(
        steps,
        [
            // The three tokens, made at the command line.
            "manage allow admin-acts",
            "manage allow admin-acts",
            "manage allow admin-acts",
            "plan deny ",
            "plan allow operator-triages-and-plans",
            "access.request",
            "approve allow admin-acts",
            "access.approve",
            "access.grant",
            "grant deny ",
            "grant allow admin-acts",
            "access.grant",
            "grant allow operator-breaks-glass",
            "access.revoke",
        ],
        "{log}"
    );
}

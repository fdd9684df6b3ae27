//! `keyward disable` and `keyward enable` reaching a real OpenBao
//! (`KEYWARD_TEST_VAULT_ADDR`, `KEYWARD_TEST_VAULT_TOKEN`: `../shared/tools/openbao/bao-up`):
//! an identity Keyward knows only from Vault (a userpass alias) is disabled and enabled again.
//! Without the variables the test says it was skipped. OpenBao is set up through its HTTP API
//! (`common/bao.rs`).

#![cfg(feature = "vault")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::{Output, Stdio};

use common::bao::Bao;
use serde_json::{Value, json};

fn keyward(bao: &Bao, data: &std::path::Path, args: &[&str]) -> Output {
    common::command(data)
        .args(args)
        .env_remove("KEYWARD_DATA_DIR")
        .env_remove("BAO_ADDR")
        .env_remove("BAO_TOKEN")
        .env("VAULT_ADDR", &bao.addr)
        .env("VAULT_TOKEN", &bao.root)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn disable_and_enable_reach_a_vault_entity_by_its_alias() {
    let Some(bao) = Bao::from_env() else { return };
    let tag = format!(
        "{}-{}",
        std::process::id(),
        std::time::UNIX_EPOCH.elapsed().unwrap().as_millis() % 100_000_000
    );
    let mount = format!("up-{tag}");
    let name = format!("orders-api-{tag}");
    let (s, d) = bao.call(
        &bao.root,
        "POST",
        &format!("sys/auth/{mount}"),
        &json!({"type": "userpass"}),
    );
    assert!(s < 300, "{s} {d}");
    let (s, d) = bao.call(
        &bao.root,
        "POST",
        &format!("auth/{mount}/users/{name}"),
        &json!({"password": "pw-for-test", "token_policies": "default"}),
    );
    assert!(s < 300, "{s} {d}");
    let (s, login) = bao.call(
        "",
        "POST",
        &format!("auth/{mount}/login/{name}"),
        &json!({"password": "pw-for-test"}),
    );
    assert_eq!(s, 200, "{login}");
    let token = login["auth"]["client_token"].as_str().unwrap().to_owned();
    let entity = login["auth"]["entity_id"].as_str().unwrap().to_owned();
    assert!(bao.works(&token));

    let dir = tempfile::tempdir().unwrap();
    let o = keyward(&bao, dir.path(), &["disable", &name, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains(&format!(
            "vault write identity/entity/id/{entity} disabled=true"
        )),
        "{out}"
    );
    assert!(bao.works(&token), "a dry run changed something");

    let o = keyward(&bao, dir.path(), &["disable", &name, "--yes"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        !bao.works(&token),
        "the disabled entity's token still works"
    );
    assert!(!text(&o.stdout).contains(&token) && !text(&o.stderr).contains(&token));

    let o = keyward(&bao, dir.path(), &["enable", &name, "--yes"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(bao.works(&token), "the token does not work after enable");
}

#[test]
fn a_known_identity_s_plan_gains_the_vault_entity_its_oidc_subject_is_an_alias_of() {
    let Some(bao) = Bao::from_env() else { return };
    let tag = format!(
        "{}-{}",
        std::process::id(),
        std::time::UNIX_EPOCH.elapsed().unwrap().as_millis() % 100_000_000
    );
    let sub = "repo:acme/payments-api:ref:refs/heads/main";
    let mount = format!("jwt-{tag}");
    let (s, d) = bao.call(
        &bao.root,
        "POST",
        &format!("sys/auth/{mount}"),
        &json!({"type": "jwt"}),
    );
    assert!(s < 300, "{s} {d}");
    let (_, auths) = bao.call(&bao.root, "GET", "sys/auth", &Value::Null);
    let accessor = auths["data"][format!("{mount}/")]["accessor"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, e) = bao.call(
        &bao.root,
        "POST",
        "identity/entity",
        &json!({"name": format!("payments-{tag}")}),
    );
    let entity = e["data"]["id"].as_str().unwrap().to_owned();
    let (s, d) = bao.call(
        &bao.root,
        "POST",
        "identity/entity-alias",
        &json!({"name": sub, "canonical_id": entity, "mount_accessor": accessor}),
    );
    assert!(s < 300, "{s} {d}");

    let dir = tempfile::tempdir().unwrap();
    let estate = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate");
    let o = keyward(&bao, dir.path(), &["ingest", estate.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = keyward(&bao, dir.path(), &["disable", sub, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    // The AWS side (the subject denied in the roles' trust) and the Vault side, one plan.
    assert!(out.contains("KeywardDenySubject"), "{out}");
    assert!(
        out.contains(&format!(
            "vault write identity/entity/id/{entity} disabled=true"
        )),
        "{out}"
    );
}

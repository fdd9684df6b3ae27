//! The Vault/OpenBao connector against a real OpenBao (`KEYWARD_TEST_VAULT_ADDR`,
//! `KEYWARD_TEST_VAULT_TOKEN`: `../shared/tools/openbao/bao-up`), with moto for the IAM key a
//! KV secret holds and a real API server for the Kubernetes Secret a token goes into; without
//! them each test says it was skipped. OpenBao is set up through its HTTP API: a userpass
//! mount for an entity and its alias, token roles, KV v2 paths, each named uniquely (the dev
//! server keeps its state between tests).

#![cfg(all(feature = "vault", feature = "aws", feature = "kubernetes"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod kube_env;
mod moto;

use std::collections::BTreeMap;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use keyward_respond::PlanStatus;
use keyward_respond::execute::{Connectors, execute, undo};
use keyward_respond::rotate::handoff;
use keyward_respond::rotate::{self, SecretLocation};
use keyward_respond::vault::{self, TokenRequest, VaultConfig, VaultConnector};
use kube::api::{Api, DeleteParams, PostParams};
use kube_env::kube_connector;
use moto::{ACCOUNT, Mem, Moto, clock, now, recorded, unique};
use serde_json::{Value, json};

/// Raw calls to OpenBao as some token (setting it up, and trying a token as a workload would).
struct Bao {
    addr: String,
    root: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Bao {
    fn from_env() -> Option<Bao> {
        let (Ok(addr), Ok(root)) = (
            std::env::var("KEYWARD_TEST_VAULT_ADDR"),
            std::env::var("KEYWARD_TEST_VAULT_TOKEN"),
        ) else {
            println!("skipped: KEYWARD_TEST_VAULT_ADDR / KEYWARD_TEST_VAULT_TOKEN not set");
            return None;
        };
        Some(Bao {
            addr: addr.trim_end_matches('/').to_owned(),
            root,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    fn connector(&self) -> VaultConnector {
        VaultConnector::from_config(VaultConfig {
            addr: self.addr.clone(),
            token: handoff::Secret::new(self.root.clone()),
            namespace: None,
            ca_cert: None,
        })
        .unwrap()
    }

    /// `(status, body)` of one call as `token`.
    async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", token)
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .unwrap();
        let resp = self.client.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn root(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, doc) = self.call_as(&self.root, method, path, Some(body)).await;
        assert!(status < 300, "{method} {path}: {status} {doc}");
        doc
    }

    /// Whether a token authenticates (`lookup-self` answers 200).
    async fn works(&self, token: &str) -> bool {
        self.call_as(token, "GET", "auth/token/lookup-self", None)
            .await
            .0
            == 200
    }

    async fn kv_put(&self, mount: &str, path: &str, data: Value) -> u64 {
        let doc = self
            .root(
                "POST",
                &format!("{mount}/data/{path}"),
                json!({"data": data}),
            )
            .await;
        doc["data"]["version"].as_u64().unwrap()
    }

    async fn kv_get(&self, mount: &str, path: &str) -> (Value, u64) {
        let (_, doc) = self
            .call_as(&self.root, "GET", &format!("{mount}/data/{path}"), None)
            .await;
        (
            doc["data"]["data"].clone(),
            doc["data"]["metadata"]["version"].as_u64().unwrap_or(0),
        )
    }

    /// A token role issuing orphan tokens with the default policy.
    async fn token_role(&self, name: &str) {
        self.root(
            "POST",
            &format!("auth/token/roles/{name}"),
            json!({"allowed_policies": ["default"], "orphan": true, "token_explicit_max_ttl": 0}),
        )
        .await;
    }
}

fn vault_only(v: VaultConnector) -> Connectors {
    Connectors {
        vault: Some(v),
        ..Connectors::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_in_kv_is_found_rewritten_as_a_new_version_and_undone_from_the_previous_one() {
    let Some(bao) = Bao::from_env() else { return };
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (_, _, aws) = moto.admin().await;
    let user = unique("kv");
    moto.user(&user).await;
    let old = moto.key(&user).await;
    let path = format!("{}/creds", unique("app"));
    let original = json!({
        "aws_access_key_id": old.id,
        "aws_secret_access_key": old.secret,
        "region": "eu-west-1",
        "port": "5432",
    });
    let v1 = bao.kv_put("secret", &path, original.clone()).await;
    // A secret that does not hold the key stays out of it.
    bao.kv_put("secret", &format!("{path}-other"), json!({"k": "v"}))
        .await;

    let v = bao.connector();
    let (found, notes) = v.secrets_containing(&old.id, &[]).await.unwrap();
    let here = SecretLocation::Vault {
        mount: "secret".into(),
        path: path.clone(),
    };
    assert_eq!(found, std::slice::from_ref(&here), "{notes:?}");

    let mut plan = rotate::plan(&rotate::Request {
        account: Some(ACCOUNT),
        user: &user,
        old_key_id: &old.id,
        locations: std::slice::from_ref(&here),
        grace_days: 7,
        now: now(),
        actor: "test",
    });
    assert!(
        plan.steps[1]
            .command
            .iter()
            .any(|c| c.contains("vault kv put -mount=secret -cas=VERSION"))
    );
    let connectors = Connectors {
        aws: Some(aws),
        vault: Some(v),
        ..Connectors::default()
    };
    let mut mem = Mem::default();
    execute(&mut plan, &connectors, &mut mem, &clock)
        .await
        .unwrap();
    assert_eq!(plan.status, PlanStatus::Executed);
    let new_id = plan.steps[0].result.as_ref().unwrap().state["new_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let write = plan.steps[1].result.as_ref().unwrap();
    assert_eq!(
        write.state,
        json!({"version": v1 + 1, "previous_version": v1})
    );

    let (data, version) = bao.kv_get("secret", &path).await;
    assert_eq!(version, v1 + 1);
    assert_eq!(data["aws_access_key_id"], new_id.as_str());
    assert_eq!(data["region"], "eu-west-1");
    assert_eq!(data["port"], "5432");
    let new_secret = data["aws_secret_access_key"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old.secret);
    let all = recorded(&mem, &plan);
    assert!(
        !all.contains(&new_secret) && !all.contains(&old.secret),
        "a secret was recorded"
    );

    // Undo writes version 1's data back as a new version (Vault kept it, Keyward did not).
    undo(&mut plan, &connectors, &mut mem, &clock)
        .await
        .unwrap();
    assert_eq!(plan.status, PlanStatus::Undone);
    let (data, version) = bao.kv_get("secret", &path).await;
    assert_eq!((data, version), (original, v1 + 2));
}

/// A key id of AWS's shape, unique to the test (20 upper-case letters and digits).
fn fake_key_id(n: u64) -> String {
    format!("AKIA{:016}", (now() as u64 % 10_000_000_000) * 100 + n)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_index_maps_each_key_id_in_kv_to_its_secrets_and_reads_one_back() {
    let Some(bao) = Bao::from_env() else { return };
    let mount = unique("idx");
    bao.root(
        "POST",
        &format!("sys/mounts/{mount}"),
        json!({"type": "kv", "options": {"version": "2"}}),
    )
    .await;
    let (a, b) = (fake_key_id(1), fake_key_id(2));
    let secret_a = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    bao.kv_put(
        &mount,
        "app/one",
        json!({"aws_access_key_id": a, "aws_secret_access_key": secret_a}),
    )
    .await;
    // Two keys in one INI field, deeper down; and a secret holding none.
    bao.kv_put(
        &mount,
        "x/y/z/two",
        json!({"credentials": format!("[a]\naws_access_key_id = {a}\n[b]\naws_access_key_id = {b}\n")}),
    )
    .await;
    bao.kv_put(&mount, "app/none", json!({"k": "v"})).await;
    let loc = |path: &str| SecretLocation::Vault {
        mount: mount.clone(),
        path: path.to_owned(),
    };

    let v = bao.connector();
    let (index, notes) = v.secret_index(std::slice::from_ref(&mount)).await.unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let expected: vault::VaultSecretIndex = [
        (a.clone(), vec![loc("app/one"), loc("x/y/z/two")]),
        (b.clone(), vec![loc("x/y/z/two")]),
    ]
    .into_iter()
    .collect();
    assert_eq!(index, expected);
    // The single rotation's search walks the same way.
    let (found, _) = v
        .secrets_containing(&b, std::slice::from_ref(&mount))
        .await
        .unwrap();
    assert_eq!(found, vec![loc("x/y/z/two")]);

    let mut ids = vec![a.clone(), b.clone()];
    ids.sort();
    assert_eq!(
        v.secret_key_ids(&mount, "x/y/z/two").await.unwrap(),
        Some(ids)
    );
    assert_eq!(v.secret_key_ids(&mount, "app/gone").await.unwrap(), None);
    let got = v.secret_for_key(&mount, "app/one", &a).await.unwrap();
    assert_eq!(got.as_ref().map(|s| s.expose()), Some(secret_a));
    assert!(
        v.secret_for_key(&mount, "app/one", &b)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_is_refused_when_the_secret_moved_since_it_was_read() {
    let Some(bao) = Bao::from_env() else { return };
    let path = format!("{}/token", unique("cas"));
    let into = SecretLocation::Vault {
        mount: "secret".into(),
        path: path.clone(),
    };
    let role = unique("role");
    bao.token_role(&role).await;
    let meta = BTreeMap::new();
    let req = TokenRequest {
        identity: "svc",
        role: &role,
        ttl_secs: 600,
        policies: &[],
        meta: &meta,
        into: &into,
        key: "VAULT_TOKEN",
        now: now(),
        actor: "test",
    };
    let mut plan = vault::plan_issue(&req);
    let connectors = vault_only(bao.connector());
    let mut mem = Mem::default();
    execute(&mut plan, &connectors, &mut mem, &clock)
        .await
        .unwrap();
    let (data, version) = bao.kv_get("secret", &path).await;
    assert_eq!(version, 1);
    let token = data["VAULT_TOKEN"].as_str().unwrap().to_owned();
    assert!(bao.works(&token).await);
    assert!(
        !recorded(&mem, &plan).contains(&token),
        "the token was recorded"
    );
    // Someone writes in between: the undo refuses rather than overwrite.
    bao.kv_put("secret", &path, json!({"VAULT_TOKEN": "changed"}))
        .await;
    let err = undo(&mut plan, &connectors, &mut mem, &clock)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not the version 1 the step wrote"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_entity_refuses_its_tokens_until_it_is_enabled_again() {
    let Some(bao) = Bao::from_env() else { return };
    let mount = unique("up");
    bao.root(
        "POST",
        &format!("sys/auth/{mount}"),
        json!({"type": "userpass"}),
    )
    .await;
    let name = unique("payments-api");
    bao.root(
        "POST",
        &format!("auth/{mount}/users/{name}"),
        json!({"password": "pw-for-test", "token_policies": "default"}),
    )
    .await;
    let (_, login) = bao
        .call_as(
            "",
            "POST",
            &format!("auth/{mount}/login/{name}"),
            Some(json!({"password": "pw-for-test"})),
        )
        .await;
    let token = login["auth"]["client_token"].as_str().unwrap().to_owned();
    let entity = login["auth"]["entity_id"].as_str().unwrap().to_owned();
    assert!(bao.works(&token).await);

    let v = bao.connector();
    let found = v.find(std::slice::from_ref(&name)).await.unwrap();
    assert_eq!(found.entities.len(), 1, "{found:?}");
    assert_eq!(found.entities[0].id, entity);
    assert!(
        found.entities[0]
            .matched_by
            .starts_with(&format!("alias {name}"))
    );
    assert!(found.tokens.iter().any(|t| t.entity_id == entity));

    let mut plan = vault::plan_disable(&name, &found, now(), "test");
    // The entity's own token is left to the entity (reversible), not revoked.
    let names: Vec<&str> = plan.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(names, ["disable_vault_entity"]);
    assert_eq!(
        plan.steps[0].command,
        [format!(
            "vault write identity/entity/id/{entity} disabled=true"
        )]
    );
    let connectors = vault_only(v);
    let mut mem = Mem::default();
    execute(&mut plan, &connectors, &mut mem, &clock)
        .await
        .unwrap();
    assert_eq!(plan.status, PlanStatus::Executed);
    assert!(
        !bao.works(&token).await,
        "a disabled entity's token still works"
    );

    undo(&mut plan, &connectors, &mut mem, &clock)
        .await
        .unwrap();
    assert_eq!(plan.status, PlanStatus::Undone);
    assert!(
        bao.works(&token).await,
        "the token does not work after enable"
    );
    assert!(
        !recorded(&mem, &plan).contains(&token),
        "the token was recorded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_named_for_the_identity_is_revoked_by_its_accessor() {
    let Some(bao) = Bao::from_env() else { return };
    let role = unique("role");
    bao.token_role(&role).await;
    let service = unique("billing");
    let doc = bao
        .root(
            "POST",
            &format!("auth/token/create/{role}"),
            json!({"ttl": "10m", "meta": {"service": service}}),
        )
        .await;
    let token = doc["auth"]["client_token"].as_str().unwrap().to_owned();
    let accessor = doc["auth"]["accessor"].as_str().unwrap().to_owned();
    let v = bao.connector();
    let info = v.lookup_accessor(&accessor).await.unwrap();
    assert!(
        info.valid && info.ttl_secs > 0 && info.expire_time.is_some(),
        "{info:?}"
    );
    assert_eq!(info.meta["service"], service);

    let found = v.find(std::slice::from_ref(&service)).await.unwrap();
    assert_eq!(found.tokens.len(), 1, "{found:?}");
    assert_eq!(
        found.tokens[0].matched_by,
        format!("metadata service={service}")
    );
    let mut plan = vault::plan_disable(&service, &found, now(), "test");
    assert_eq!(
        plan.steps[0].command,
        [format!("vault token revoke -accessor {accessor}")]
    );
    assert!(!plan.steps[0].action.reversible());
    let connectors = vault_only(v);
    let mut mem = Mem::default();
    execute(&mut plan, &connectors, &mut mem, &clock)
        .await
        .unwrap();
    assert!(!bao.works(&token).await);
    assert!(
        !connectors
            .vault
            .as_ref()
            .unwrap()
            .lookup_accessor(&accessor)
            .await
            .unwrap()
            .valid
    );
    // Undo cannot bring it back, and says so.
    undo(&mut plan, &connectors, &mut mem, &clock)
        .await
        .unwrap();
    let note = &plan.steps[0].undo_result.as_ref().unwrap().message;
    assert!(note.starts_with("cannot be undone automatically"), "{note}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_issued_into_a_kubernetes_secret_is_rotated_without_downtime_and_revoked() {
    let Some(bao) = Bao::from_env() else { return };
    let Some(k) = kube_connector().await else {
        return;
    };
    let kube = k.client().clone();
    let ns = unique("vt");
    Api::<Namespace>::all(kube.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value::<Namespace>(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let secret_of = |kube: kube::Client, ns: String| async move {
        let s = Api::<Secret>::namespaced(kube, &ns)
            .get("payments-vault")
            .await
            .unwrap();
        let d = s.data.unwrap_or_default();
        (
            String::from_utf8(d["VAULT_TOKEN"].0.clone()).unwrap(),
            d.get("OTHER")
                .map(|v| String::from_utf8(v.0.clone()).unwrap()),
        )
    };
    let role = unique("payments");
    bao.token_role(&role).await;
    let into = SecretLocation::Kubernetes {
        namespace: ns.clone(),
        name: "payments-vault".into(),
    };
    let meta = BTreeMap::from([("service".to_owned(), "payments-api".to_owned())]);
    let req = TokenRequest {
        identity: "payments-api",
        role: &role,
        ttl_secs: 3600,
        policies: &["default".to_owned()],
        meta: &meta,
        into: &into,
        key: "VAULT_TOKEN",
        now: now(),
        actor: "test",
    };
    let connectors = Connectors {
        kube: Some(k),
        vault: Some(bao.connector()),
        ..Connectors::default()
    };
    let mut mem = Mem::default();

    // Issue: the Secret is created with the token; the result holds the accessor only.
    let mut issue = vault::plan_issue(&req);
    execute(&mut issue, &connectors, &mut mem, &clock)
        .await
        .unwrap();
    assert_eq!(issue.status, PlanStatus::Executed);
    let first = issue.steps[0].result.as_ref().unwrap().state["accessor"]
        .as_str()
        .unwrap()
        .to_owned();
    let (t1, _) = secret_of(kube.clone(), ns.clone()).await;
    assert!(bao.works(&t1).await);
    assert!(
        !recorded(&mem, &issue).contains(&t1),
        "the token was recorded"
    );
    // Another entry appears beside it (a workload's own): rotation keeps it.
    let api = Api::<Secret>::namespaced(kube.clone(), &ns);
    let mut s = api.get("payments-vault").await.unwrap();
    s.data
        .as_mut()
        .unwrap()
        .insert("OTHER".into(), k8s_openapi::ByteString(b"kept".to_vec()));
    api.replace("payments-vault", &PostParams::default(), &s)
        .await
        .unwrap();

    // Rotate: the old token works until the new one is written and verified, then stops.
    let mut rot = vault::plan_rotate(
        &TokenRequest {
            now: now() + 1,
            ..req.clone()
        },
        &first,
    );
    execute(&mut rot, &connectors, &mut mem, &clock)
        .await
        .unwrap();
    assert_eq!(rot.status, PlanStatus::Executed, "{:?}", rot.steps);
    let second = rot.steps[0].result.as_ref().unwrap().state["accessor"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);
    let (t2, other) = secret_of(kube.clone(), ns.clone()).await;
    assert_ne!(t1, t2);
    assert_eq!(other.as_deref(), Some("kept"));
    assert!(bao.works(&t2).await, "the Secret's token does not work");
    assert!(!bao.works(&t1).await, "the old token still works");
    let v = connectors.vault.as_ref().unwrap();
    assert!(!v.lookup_accessor(&first).await.unwrap().valid);
    let info = v.lookup_accessor(&second).await.unwrap();
    assert!(
        info.valid && info.meta["service"] == "payments-api",
        "{info:?}"
    );
    let all = recorded(&mem, &rot);
    assert!(
        !all.contains(&t1) && !all.contains(&t2),
        "a token was recorded"
    );

    // Revoke at once (a finding flags the service compromised).
    let mut rev = vault::plan_revoke(
        "payments-api",
        &[(second.clone(), "payments".into())],
        &[],
        now(),
        "test",
    );
    execute(&mut rev, &connectors, &mut mem, &clock)
        .await
        .unwrap();
    assert!(!bao.works(&t2).await);
    let _ = Api::<Namespace>::all(kube)
        .delete(&ns, &DeleteParams::default())
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_issued_under_a_role_named_for_the_identity_are_revoked_by_prefix() {
    let Some(bao) = Bao::from_env() else { return };
    // PKI with `generate_lease`: leased credentials without an external database.
    let mount = unique("pki");
    bao.root(
        "POST",
        &format!("sys/mounts/{mount}"),
        json!({"type": "pki"}),
    )
    .await;
    bao.root(
        "POST",
        &format!("{mount}/root/generate/internal"),
        json!({"common_name": "test-ca", "ttl": "24h"}),
    )
    .await;
    let role = unique("ledger");
    bao.root(
        "POST",
        &format!("{mount}/roles/{role}"),
        json!({"allow_any_name": true, "generate_lease": true, "ttl": "1h"}),
    )
    .await;
    for _ in 0..2 {
        bao.root(
            "POST",
            &format!("{mount}/issue/{role}"),
            json!({"common_name": "ledger.example"}),
        )
        .await;
    }
    let v = bao.connector();
    let found = v.find(std::slice::from_ref(&role)).await.unwrap();
    let prefix = format!("{mount}/issue/{role}");
    assert_eq!(
        found.lease_prefixes,
        std::slice::from_ref(&prefix),
        "{found:?}"
    );
    let mut plan = vault::plan_disable(&role, &found, now(), "test");
    assert_eq!(
        plan.steps[0].command,
        [format!("vault lease revoke -prefix {prefix}")]
    );
    let connectors = vault_only(v);
    let mut mem = Mem::default();
    execute(&mut plan, &connectors, &mut mem, &clock)
        .await
        .unwrap();
    let step = &plan.steps[0];
    assert_eq!(step.result.as_ref().unwrap().state, json!({"revoked": 2}));
    assert_eq!(
        step.result
            .as_ref()
            .unwrap()
            .verified
            .as_ref()
            .unwrap()
            .observed,
        format!("0 leases left under {prefix}")
    );
    let evidence = &mem.evidence[0]["targets"][format!("vault:vault:leases/{prefix}")];
    assert_eq!(
        evidence["leases"].as_array().unwrap().len(),
        2,
        "{evidence}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connector_never_revokes_its_own_token() {
    let Some(bao) = Bao::from_env() else { return };
    let v = bao.connector();
    let own = v.own_principals().await.unwrap();
    let accessor = own[0].strip_prefix("vault:accessor/").unwrap().to_owned();
    let mut plan = vault::plan_revoke("self", &[(accessor, "root".into())], &[], now(), "test");
    let connectors = vault_only(v);
    let mut mem = Mem::default();
    let err = execute(&mut plan, &connectors, &mut mem, &clock)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the principal Keyward itself runs as"),
        "{err}"
    );
    assert!(bao.works(&bao.root).await);
}

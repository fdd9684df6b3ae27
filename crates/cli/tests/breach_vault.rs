//! Breach rotation campaigns reaching access keys kept in Vault/OpenBao KV v2: the real
//! `keyward` binary on moto (`KEYWARD_TEST_AWS_ENDPOINT`) and OpenBao
//! (`KEYWARD_TEST_VAULT_ADDR`, `KEYWARD_TEST_VAULT_TOKEN`); without them each test says it was
//! skipped. No Kubernetes: the campaign notes it did not search there and goes on. Every
//! invariant is read back from the platforms.
//!
//! Each test makes its users under an IAM path of its own and its KV secrets under a KV v2
//! mount of its own, since both servers keep their state between runs.

#![cfg(all(feature = "aws", feature = "kubernetes", feature = "vault"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bao::Bao;
use common::text;
use keyward_respond::aws::sdk::{aws_sdk_iam as iam, aws_sdk_secretsmanager as sm};
use keyward_respond::aws::static_config;
use serde_json::{Value, json};

const REGION: &str = "us-east-1";

/// The servers, or `None` (the test is skipped, saying so).
struct Env {
    endpoint: String,
    bao: Bao,
    dir: tempfile::TempDir,
}

fn env() -> Option<Env> {
    let Ok(endpoint) = std::env::var("KEYWARD_TEST_AWS_ENDPOINT") else {
        println!("skipped: KEYWARD_TEST_AWS_ENDPOINT not set");
        return None;
    };
    let bao = Bao::from_env()?;
    Some(Env {
        endpoint,
        bao,
        dir: tempfile::tempdir().unwrap(),
    })
}

impl Env {
    fn keyward(&self, data: &Path, args: &[&str]) -> Command {
        let mut c = common::command(data);
        c.args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env_remove("AWS_ENDPOINT_URL_STS")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("VAULT_ADDR", &self.bao.addr)
            .env("VAULT_TOKEN", &self.bao.root)
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN")
            // No cluster here: the campaign says Kubernetes was not searched.
            .env("KUBECONFIG", self.dir.path().join("no-kubeconfig"))
            .env_remove("KEYWARD_DATA_DIR")
            .stdin(Stdio::null());
        c
    }

    fn clients(&self) -> (iam::Client, sm::Client) {
        let config = static_config(&self.endpoint, REGION, "testing", "testing", None);
        (iam::Client::new(&config), sm::Client::new(&config))
    }

    fn root(&self, method: &str, path: &str, body: &Value) -> Value {
        let (status, doc) = self.bao.call(&self.bao.root, method, path, body);
        assert!(status < 300, "{method} {path}: {status} {doc}");
        doc
    }

    /// A fresh KV v2 mount.
    fn kv_mount(&self, mount: &str) {
        self.root(
            "POST",
            &format!("sys/mounts/{mount}"),
            &json!({"type": "kv", "options": {"version": "2"}}),
        );
    }

    fn kv_put(&self, mount: &str, path: &str, data: &Value) {
        self.root(
            "POST",
            &format!("{mount}/data/{path}"),
            &json!({ "data": data }),
        );
    }

    /// A secret's current data.
    fn kv_get(&self, mount: &str, path: &str) -> Value {
        self.root("GET", &format!("{mount}/data/{path}"), &Value::Null)["data"]["data"].clone()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn unique(tag: &str) -> String {
    let t = std::time::UNIX_EPOCH.elapsed().unwrap().as_millis();
    format!("kw{tag}{}x{}", std::process::id(), t % 100_000_000)
}

/// How a KV secret holds a key: `fields` names the id's and the secret's fields (one field:
/// an INI credentials file in it).
#[derive(Debug, Clone, Copy)]
enum Shape {
    Lower,
    Upper,
    Ini,
}

/// One user, its original key and where it lives.
struct User {
    name: String,
    old: String,
    old_secret: String,
    vault: Vec<(String, Shape)>,
    sm: Option<String>,
}

fn data(shape: Shape, id: &str, secret: &str) -> Value {
    match shape {
        Shape::Lower => {
            json!({"aws_access_key_id": id, "aws_secret_access_key": secret, "region": REGION})
        }
        Shape::Upper => {
            json!({"AWS_ACCESS_KEY_ID": id, "AWS_SECRET_ACCESS_KEY": secret, "port": "5432"})
        }
        Shape::Ini => json!({
            "credentials": format!("[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
            "region": REGION,
        }),
    }
}

/// The key id and secret a secret's data holds.
fn held(shape: Shape, d: &Value) -> (String, String) {
    match shape {
        Shape::Lower => (
            d["aws_access_key_id"].as_str().unwrap().to_owned(),
            d["aws_secret_access_key"].as_str().unwrap().to_owned(),
        ),
        Shape::Upper => (
            d["AWS_ACCESS_KEY_ID"].as_str().unwrap().to_owned(),
            d["AWS_SECRET_ACCESS_KEY"].as_str().unwrap().to_owned(),
        ),
        Shape::Ini => {
            let ini = d["credentials"].as_str().unwrap();
            let field = |name: &str| {
                ini.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap()
                    .trim_start_matches([' ', '='])
                    .to_owned()
            };
            (field("aws_access_key_id"), field("aws_secret_access_key"))
        }
    }
}

/// Users under `prefix`, each `(vault paths and shapes, whether also in Secrets Manager)`,
/// their keys written where they live.
fn users(e: &Env, prefix: &str, mount: &str, spec: &[(&[(&str, Shape)], bool)]) -> Vec<User> {
    let (iam, sm) = e.clients();
    let tag = prefix.trim_matches('/');
    let rt = rt();
    let mut out = Vec::new();
    for (i, (vault, in_sm)) in spec.iter().enumerate() {
        let name = format!("{tag}-u{i}");
        let (old, old_secret) = rt.block_on(async {
            iam.create_user()
                .user_name(&name)
                .path(prefix)
                .send()
                .await
                .unwrap();
            let k = iam
                .create_access_key()
                .user_name(&name)
                .send()
                .await
                .unwrap()
                .access_key
                .unwrap();
            (k.access_key_id, k.secret_access_key)
        });
        let vault: Vec<(String, Shape)> = vault
            .iter()
            .map(|(p, s)| (format!("{p}/u{i}"), *s))
            .collect();
        for (path, shape) in &vault {
            e.kv_put(mount, path, &data(*shape, &old, &old_secret));
        }
        let sm_name = in_sm.then(|| format!("{tag}/u{i}"));
        if let Some(s) = &sm_name {
            rt.block_on(async {
                sm.create_secret()
                    .name(s)
                    .secret_string(data(Shape::Lower, &old, &old_secret).to_string())
                    .send()
                    .await
                    .unwrap();
            });
        }
        out.push(User {
            name,
            old,
            old_secret,
            vault,
            sm: sm_name,
        });
    }
    out
}

/// `(id, active)` of a user's keys.
fn keys(rt: &tokio::runtime::Runtime, iam: &iam::Client, user: &str) -> Vec<(String, bool)> {
    rt.block_on(async {
        let out = iam.list_access_keys().user_name(user).send().await.unwrap();
        let mut v: Vec<(String, bool)> = out
            .access_key_metadata
            .iter()
            .map(|k| {
                (
                    k.access_key_id.clone().unwrap(),
                    k.status == Some(iam::types::StatusType::Active),
                )
            })
            .collect();
        v.sort();
        v
    })
}

/// Read from the platforms: each user's original key Inactive and one new key Active; every
/// Vault secret holds the new key and one new secret (the same in each of the user's
/// locations, Secrets Manager's included), the other fields kept; and the new key, taken
/// from Vault, answers `sts get-caller-identity` as the user. (moto does not check
/// signatures unless its authorization is on, which would disturb the other tests on the
/// server: that the secret is the key's own is checked by the campaign's verify step,
/// whose recorded result `verified_per_user` reads.)
fn check_rotated(e: &Env, mount: &str, users: &[User]) {
    let (iam, sm) = e.clients();
    let rt = rt();
    for u in users {
        let ks = keys(&rt, &iam, &u.name);
        assert_eq!(
            ks.len(),
            2,
            "{}: {ks:?} (the original and one new key)",
            u.name
        );
        assert!(ks.contains(&(u.old.clone(), false)), "{}: {ks:?}", u.name);
        let new = ks.iter().find(|k| k.1).unwrap().0.clone();
        let mut secrets = BTreeSet::new();
        for (path, shape) in &u.vault {
            let d = e.kv_get(mount, path);
            let (id, secret) = held(*shape, &d);
            assert_eq!(id, new, "vault:{mount}/{path}");
            assert!(
                secret.len() >= 40 && secret != u.old_secret,
                "vault:{mount}/{path}: its secret was not replaced"
            );
            let kept = match shape {
                Shape::Lower | Shape::Ini => d["region"] == REGION,
                Shape::Upper => d["port"] == "5432",
            };
            assert!(kept, "vault:{mount}/{path}: other fields kept");
            secrets.insert(secret);
        }
        if let Some(name) = &u.sm {
            let v = rt.block_on(async {
                sm.get_secret_value()
                    .secret_id(name)
                    .version_stage("AWSCURRENT")
                    .send()
                    .await
                    .unwrap()
                    .secret_string
                    .unwrap()
            });
            let (id, secret) = held(Shape::Lower, &serde_json::from_str(&v).unwrap());
            assert_eq!(id, new, "{name}");
            secrets.insert(secret);
        }
        assert_eq!(secrets.len(), 1, "{}: one new secret everywhere", u.name);
        let secret = secrets.pop_first().unwrap();
        let arn = rt.block_on(async {
            let config = static_config(&e.endpoint, REGION, &new, &secret, None);
            keyward_respond::aws::sdk::aws_sdk_sts::Client::new(&config)
                .get_caller_identity()
                .send()
                .await
                .unwrap()
                .arn
                .unwrap()
        });
        assert!(
            arn.contains(":user/") && arn.ends_with(&format!("/{}", u.name)),
            "{arn}"
        );
    }
}

/// Per user, from the stored plans not undone: the new keys created, and whether a verify
/// step (`sts get-caller-identity` signed with the new key) succeeded.
fn plans_per_user(data: &Path) -> BTreeMap<String, (BTreeSet<String>, bool)> {
    let docs = common::rows(
        data,
        "SELECT doc FROM response_plans WHERE status != 'undone'",
    )
    .unwrap();
    let mut out: BTreeMap<String, (BTreeSet<String>, bool)> = BTreeMap::new();
    for doc in docs {
        let p: Value = serde_json::from_str(&doc[0]).unwrap();
        let entry = out
            .entry(p["identity_name"].as_str().unwrap().to_owned())
            .or_default();
        for s in p["steps"].as_array().unwrap() {
            if s["action"] == "create_access_key"
                && let Some(id) = s["result"]["state"]["new_key_id"].as_str()
            {
                entry.0.insert(id.to_owned());
            }
            if s["action"] == "verify_access_key" && s["result"]["ok"] == true {
                entry.1 = true;
            }
        }
    }
    out
}

/// Nothing printed holds an original or a new secret access key.
fn no_secret_printed(e: &Env, mount: &str, users: &[User], printed: &str) {
    for u in users {
        assert!(
            !printed.contains(&u.old_secret),
            "{}: old secret printed",
            u.name
        );
        for (path, shape) in &u.vault {
            let (_, secret) = held(*shape, &e.kv_get(mount, path));
            assert!(!printed.contains(&secret), "{}: new secret printed", u.name);
        }
    }
}

#[test]
fn a_breach_campaign_rewrites_the_keys_kept_in_vault_kv_and_deactivates_the_old_ones() {
    let Some(e) = env() else { return };
    let tag = unique("v");
    let prefix = format!("/{tag}/");
    let mount = format!("kv-{tag}");
    e.kv_mount(&mount);
    let users = users(
        &e,
        &prefix,
        &mount,
        &[
            (&[("app", Shape::Lower)], false),
            (&[("app", Shape::Upper)], true),
            (&[("app", Shape::Lower), ("deep/a/b/c", Shape::Ini)], false),
            (&[], true),
        ],
    );
    // A secret holding no key stays out of it.
    e.kv_put(&mount, "app/other", &json!({"k": "v"}));
    let args = |extra: &[&'static str]| {
        let mut v = vec![
            "rotate".to_owned(),
            "--all".into(),
            "--breach".into(),
            "--path-prefix".into(),
            prefix.clone(),
            "--vault-mount".into(),
            mount.clone(),
            "--concurrency".into(),
            "2".into(),
        ];
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        e.keyward(data_dir(&e), &a).output().unwrap()
    };
    // Dry run: every Vault secret found, nothing changed.
    let out = run(args(&["--format", "json"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let items: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Kubernetes Secrets not searched"),
        "{stderr}"
    );
    for u in &users {
        let item = items.iter().find(|i| i["user"] == u.name.as_str()).unwrap();
        let mut expected: Vec<Value> = u
            .vault
            .iter()
            .map(|(p, _)| json!({"store": "vault", "mount": mount, "path": p}))
            .collect();
        if let Some(s) = &u.sm {
            expected.insert(0, json!({"store": "secretsmanager", "secret_id": s}));
        }
        assert_eq!(item["locations"], Value::Array(expected), "{}", u.name);
    }
    // The campaign.
    let out = run(args(&["--execute", "--yes"]));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("4 done, 0 failed, 0 skipped of 4"),
        "{stderr}"
    );
    check_rotated(&e, &mount, &users);
    no_secret_printed(&e, &mount, &users, &format!("{stdout}{stderr}"));
    let plans = plans_per_user(data_dir(&e));
    for u in &users {
        let (created, verified) = &plans[&u.name];
        assert_eq!(created.len(), 1, "{}: {created:?}", u.name);
        assert!(verified, "{}: the new key's verify step", u.name);
    }
    assert_eq!(e.kv_get(&mount, "app/other"), json!({"k": "v"}));
}

/// The test's data directory (one per environment: each test makes its own `Env`).
fn data_dir(e: &Env) -> &Path {
    e.dir.path()
}

/// A proxy to moto's STS on a port of its own (its address returned) that passes on the
/// calls signed with the test credentials (`testing`: the connector's own identity) and holds
/// every other call (the campaign's verify, signed with a new key) unanswered, forever.
fn stalling_sts(moto: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let moto = moto
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let (Ok(mut client), moto) = (conn, moto.clone()) else {
                continue;
            };
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = [0u8; 8192];
                let head_end = loop {
                    let Ok(n) = client.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    req.extend_from_slice(&buf[..n]);
                    if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&req[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                while req.len() < head_end + length {
                    let Ok(n) = client.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    req.extend_from_slice(&buf[..n]);
                }
                if !head.contains("credential=testing/") {
                    // Held: the caller waits until it is killed.
                    std::thread::sleep(Duration::from_secs(3600));
                    return;
                }
                // One call per connection, so that a held call never shares one.
                let mut forwarded = b"Connection: close\r\n".to_vec();
                let first_line = req.iter().position(|b| *b == b'\n').unwrap() + 1;
                forwarded.splice(0..0, req[..first_line].iter().copied());
                forwarded.extend_from_slice(&req[first_line..]);
                let mut up = TcpStream::connect(&moto).unwrap();
                up.write_all(&forwarded).unwrap();
                let mut answer = Vec::new();
                up.read_to_end(&mut answer).unwrap();
                let _ = client.write_all(&answer);
            });
        }
    });
    addr
}

#[test]
fn a_campaign_killed_after_its_vault_writes_resumes_with_the_new_key_read_back_from_vault() {
    let Some(e) = env() else { return };
    let tag = unique("r");
    let prefix = format!("/{tag}/");
    let mount = format!("kv-{tag}");
    e.kv_mount(&mount);
    let users = users(
        &e,
        &prefix,
        &mount,
        &[(&[("app", Shape::Lower), ("deep/a/b", Shape::Ini)], false)],
    );
    // STS that never answers a call signed with the new key: the campaign writes the new key
    // into both Vault secrets, then hangs verifying it, and is killed there (its new key's
    // secret lives only in Vault now).
    let sts = stalling_sts(&e.endpoint);
    let data = data_dir(&e);
    // Every KV v2 mount searched (no --vault-mount): `sys/mounts` lists this test's.
    let mut child = e
        .keyward(
            data,
            &[
                "rotate",
                "--all",
                "--breach",
                "--execute",
                "--yes",
                "--path-prefix",
                &prefix,
            ],
        )
        .env("AWS_ENDPOINT_URL_STS", format!("http://{sts}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while common::steps_done(data, "update_secret_value") < 2 {
        assert!(child.try_wait().unwrap().is_none(), "the campaign ended");
        assert!(Instant::now() < deadline, "the campaign made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the campaign got past its verify step"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let u = &users[0];
    let (iam, _) = e.clients();
    let ks = keys(&rt(), &iam, &u.name);
    assert!(
        ks.len() == 2 && ks.iter().all(|k| k.1),
        "killed with both keys Active: {ks:?}"
    );
    // Resumed: the new key read back from Vault, the rotation finished without a third key.
    let out = e.keyward(data, &["rotate", "--resume"]).output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("1 done, 0 failed, 0 skipped of 1"),
        "{stderr}"
    );
    let resumed: Vec<String> = common::rows(
        data,
        "SELECT detail FROM audit_log WHERE action = 'respond.resume'",
    )
    .unwrap()
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    assert!(
        resumed
            .iter()
            .any(|d| d.contains(&format!("recovered from vault:{mount}/"))),
        "{resumed:?}"
    );
    check_rotated(&e, &mount, &users);
    no_secret_printed(&e, &mount, &users, &format!("{stdout}{stderr}"));
    let plans = plans_per_user(data);
    let (created, verified) = &plans[&u.name];
    assert_eq!(created.len(), 1, "one new key: {created:?}");
    assert!(verified, "the resumed plan verified the new key");
}

//! Time-bound access end to end (issue 27): the real `keyward` binary granting a managed
//! policy, a group and a Kubernetes RoleBinding, and a later, separate `keyward` process
//! revoking them at expiry — every effect read back from moto (`KEYWARD_TEST_AWS_ENDPOINT`)
//! or a real API server (`KEYWARD_TEST_KUBE_URL`, `_TOKEN`, `_CA`). Without them a test says
//! it was skipped. Each test makes its own uniquely named users, groups and namespaces
//! (moto and the API server keep their state between runs).

#![cfg(all(feature = "aws", feature = "kubernetes"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use keyward_respond::aws::sdk::aws_sdk_iam as iam;
use keyward_respond::aws::static_config;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .try_into()
        .unwrap()
}

/// A name no earlier run used.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000_000
    )
}

/// The data directory, and the servers the commands talk to (only the ones given).
struct Env {
    aws: Option<String>,
    kubeconfig: Option<PathBuf>,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = std::env::var("KEYWARD_TEST_KUBE_URL").ok().map(|url| {
            let token = std::env::var("KEYWARD_TEST_KUBE_TOKEN").expect("KEYWARD_TEST_KUBE_TOKEN");
            let ca = std::env::var("KEYWARD_TEST_KUBE_CA").expect("KEYWARD_TEST_KUBE_CA");
            let path = dir.path().join("kubeconfig");
            let doc = json!({
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": url, "certificate-authority": ca}}],
                "users": [{"name": "admin", "user": {"token": token}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
                "current-context": "test",
            });
            std::fs::write(&path, doc.to_string()).unwrap();
            path
        });
        Env {
            aws: std::env::var("KEYWARD_TEST_AWS_ENDPOINT").ok(),
            kubeconfig,
            data: dir.path().join("data"),
            _dir: dir,
        }
    }

    /// `keyward --data-dir DATA ARGS…` as the OS user `user`, to its end.
    fn run(&self, user: &str, args: &[&str]) -> Output {
        let mut c = common::command(&self.data);
        c.args(args)
            .env("USER", user)
            .env_remove("KEYWARD_DATA_DIR")
            .env_remove("KEYWARD_CONFIG")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .stdin(Stdio::null());
        match &self.aws {
            Some(e) => c.env("AWS_ENDPOINT_URL", e),
            // Nowhere: no call may reach a real account.
            None => c.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        };
        match &self.kubeconfig {
            Some(k) => c.env("KUBECONFIG", k),
            None => c.env("KUBECONFIG", "/nonexistent"),
        };
        c.output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, user: &str, args: &[&str]) -> String {
        let out = self.run(user, args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn listing(&self) -> Value {
        serde_json::from_str(&self.ok("alice", &["access", "list", "--format", "json"])).unwrap()
    }

    /// The only grant stored.
    fn grant(&self) -> Value {
        let l = self.listing();
        let grants = l["grants"].as_array().unwrap();
        assert_eq!(grants.len(), 1, "{l}");
        grants[0].clone()
    }

    fn audit_actions(&self) -> Vec<String> {
        self.ok("alice", &["audit", "export"])
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["action"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn at(ms: i64) -> String {
    keyward_model::time::format(ms)
}

struct Moto {
    iam: iam::Client,
    rt: tokio::runtime::Runtime,
}

impl Moto {
    fn new(endpoint: &str) -> Moto {
        Moto {
            iam: iam::Client::new(&static_config(
                endpoint,
                "us-east-1",
                "testing",
                "testing",
                None,
            )),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    fn user(&self, name: &str) {
        self.rt
            .block_on(self.iam.create_user().user_name(name).send())
            .unwrap();
    }

    fn policy(&self, name: &str) -> String {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#;
        let out = self
            .rt
            .block_on(
                self.iam
                    .create_policy()
                    .policy_name(name)
                    .policy_document(doc)
                    .send(),
            )
            .unwrap();
        out.policy().unwrap().arn().unwrap().to_owned()
    }

    fn attached(&self, user: &str) -> Vec<String> {
        let out = self
            .rt
            .block_on(
                self.iam
                    .list_attached_user_policies()
                    .user_name(user)
                    .send(),
            )
            .unwrap();
        out.attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_owned))
            .collect()
    }

    fn groups(&self, user: &str) -> Vec<String> {
        let out = self
            .rt
            .block_on(self.iam.list_groups_for_user().user_name(user).send())
            .unwrap();
        out.groups()
            .iter()
            .map(|g| g.group_name().to_owned())
            .collect()
    }
}

fn moto(env: &Env) -> Option<Moto> {
    match &env.aws {
        Some(e) => Some(Moto::new(e)),
        None => {
            println!("skipped: KEYWARD_TEST_AWS_ENDPOINT not set (../shared/tools/aws/moto-up)");
            None
        }
    }
}

#[test]
fn a_managed_policy_is_attached_for_an_hour_and_detached_by_a_later_process() {
    let env = Env::new();
    let Some(m) = moto(&env) else { return };
    let user = unique("oncall");
    m.user(&user);
    let arn = m.policy(&unique("read-logs"));
    let to = format!("user/{user}");

    // A dry run changes nothing and stays planned.
    env.ok(
        "alice",
        &[
            "access", "grant", "--to", &to, "--policy", &arn, "--for", "1h", "--reason", "INC-1",
        ],
    );
    assert!(m.attached(&user).is_empty());
    assert_eq!(env.grant()["state"], "planned");
    let planned = env.grant()["id"].as_str().unwrap().to_owned();
    env.ok("alice", &["access", "revoke", &planned, "--execute"]);
    assert_eq!(env.grant()["state"], "revoked");

    let granted = env.ok(
        "alice",
        &[
            "access",
            "grant",
            "--to",
            &to,
            "--policy",
            &arn,
            "--for",
            "1h",
            "--reason",
            "INC-1",
            "--execute",
            "--yes",
        ],
    );
    assert!(granted.contains("active until"), "{granted}");
    assert_eq!(m.attached(&user), vec![arn.clone()]);
    let l = env.listing();
    let g = l["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["state"] == "active")
        .unwrap()
        .clone();
    let id = g["id"].as_str().unwrap().to_owned();
    let expires = g["expires_at"].as_i64().unwrap();
    // The grant's plan does not run bare: undone outside `keyward access`, the grant would
    // stay active in the store; executed outside it, it would never expire.
    let plan = g["plan"].as_str().unwrap();
    let bare = env.run("alice", &["respond", "undo", plan, "--yes"]);
    assert!(!bare.status.success());
    assert!(
        text(&bare.stderr).contains("keyward access"),
        "{}",
        text(&bare.stderr)
    );
    assert_eq!(m.attached(&user), vec![arn.clone()]);
    assert!((expires - now() - HOUR).abs() < 5 * 60_000, "{g}");

    // Not yet due: nothing is revoked.
    let early = env.ok(
        "alice",
        &[
            "access",
            "expire",
            "--now",
            &at(now() + HOUR / 2),
            "--execute",
        ],
    );
    assert!(early.contains("no grant is past its expiry"), "{early}");
    assert_eq!(m.attached(&user), vec![arn.clone()]);
    // Due, as a dry run: listed, still attached.
    let dry = env.ok(
        "alice",
        &["access", "expire", "--now", &at(now() + 2 * HOUR)],
    );
    assert!(
        dry.contains(&id) && dry.contains("would be revoked"),
        "{dry}"
    );
    assert_eq!(m.attached(&user), vec![arn.clone()]);
    // Another process, as another user, finds it in the store and revokes it.
    let done = env.ok(
        "scheduler",
        &[
            "access",
            "expire",
            "--now",
            &at(now() + 2 * HOUR),
            "--execute",
        ],
    );
    assert!(done.contains("expired: revoked"), "{done}");
    assert!(m.attached(&user).is_empty(), "still attached after expiry");
    let l = env.listing();
    let g = l["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id)
        .unwrap();
    assert_eq!(g["state"], "expired");
    assert_eq!(g["ended_by"], "cli:scheduler");
    // Nothing left to expire.
    let again = env.ok(
        "alice",
        &[
            "access",
            "expire",
            "--now",
            &at(now() + 3 * HOUR),
            "--execute",
        ],
    );
    assert!(again.contains("no grant is past its expiry"), "{again}");
    let actions = env.audit_actions();
    for a in [
        "access.grant",
        "access.revoke",
        "access.expire",
        "respond.undo_step",
    ] {
        assert!(actions.iter().any(|x| x == a), "no {a} in {actions:?}");
    }
}

#[test]
fn a_group_membership_is_revoked_early_and_a_membership_from_before_is_kept() {
    let env = Env::new();
    let Some(m) = moto(&env) else { return };
    let user = unique("deployer");
    let group = unique("release-managers");
    m.user(&user);
    m.rt.block_on(m.iam.create_group().group_name(&group).send())
        .unwrap();
    let to = format!("user/{user}");
    env.ok(
        "alice",
        &[
            "access",
            "grant",
            "--to",
            &to,
            "--group",
            &group,
            "--for",
            "30m",
            "--reason",
            "release 4.2",
            "--execute",
            "--yes",
        ],
    );
    assert_eq!(m.groups(&user), vec![group.clone()]);
    let id = env.grant()["id"].as_str().unwrap().to_owned();
    env.ok("bob", &["access", "revoke", &id, "--execute"]);
    assert!(m.groups(&user).is_empty());
    assert_eq!(env.grant()["state"], "revoked");
    let out = env.run("bob", &["access", "revoke", &id, "--execute"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("revoked already"),
        "{}",
        text(&out.stderr)
    );

    // A member before the grant stays a member after it.
    let env = Env::new();
    m.rt.block_on(
        m.iam
            .add_user_to_group()
            .group_name(&group)
            .user_name(&user)
            .send(),
    )
    .unwrap();
    env.ok(
        "alice",
        &[
            "access",
            "grant",
            "--to",
            &to,
            "--group",
            &group,
            "--for",
            "30m",
            "--reason",
            "again",
            "--execute",
            "--yes",
        ],
    );
    env.ok(
        "alice",
        &["access", "expire", "--now", &at(now() + HOUR), "--execute"],
    );
    assert_eq!(env.grant()["state"], "expired");
    assert_eq!(m.groups(&user), vec![group]);
}

#[test]
fn break_glass_is_capped_at_four_hours() {
    let env = Env::new();
    let out = env.run(
        "alice",
        &[
            "access",
            "grant",
            "--to",
            "role/oncall",
            "--policy",
            "arn:aws:iam::aws:policy/AdministratorAccess",
            "--for",
            "5h",
            "--reason",
            "prod down",
            "--break-glass",
            "--execute",
            "--yes",
        ],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("`--for 5h` is longer than break-glass access may last (4h at most)"),
        "{err}"
    );
    assert!(env.listing()["grants"].as_array().unwrap().is_empty());
}

#[test]
fn break_glass_alerts_and_its_review_stays_open_until_someone_else_closes_it() {
    let env = Env::new();
    let Some(m) = moto(&env) else { return };
    let user = unique("responder");
    m.user(&user);
    let arn = m.policy(&unique("admin-ish"));
    let (hook, alert) = webhook();
    let out = env.run(
        "alice",
        &[
            "access",
            "grant",
            "--to",
            &format!("user/{user}"),
            "--policy",
            &arn,
            "--for",
            "4h",
            "--reason",
            "prod down",
            "--break-glass",
            "--notify",
            &hook,
            "--execute",
            "--yes",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("BREAK-GLASS"),
        "{}",
        text(&out.stderr)
    );
    let alert: Value = serde_json::from_str(
        &alert
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(alert["event"], "access.break_glass");
    assert_eq!(alert["actor"], "cli:alice");
    assert_eq!(m.attached(&user), vec![arn]);
    let g = env.grant();
    let id = g["id"].as_str().unwrap().to_owned();
    assert_eq!(g["break_glass"], true);
    let listed = env.ok("alice", &["access", "list"]);
    assert!(listed.contains("open post-incident reviews"), "{listed}");
    let own = env.run("alice", &["access", "review", &id, "--notes", "all fine"]);
    assert!(!own.status.success());
    assert!(
        text(&own.stderr).contains("closed by someone else"),
        "{}",
        text(&own.stderr)
    );
    env.ok(
        "bob",
        &[
            "access",
            "review",
            &id,
            "--notes",
            "rolled back the bad deploy",
        ],
    );
    let l = env.listing();
    assert_eq!(l["reviews"][0]["state"], "closed");
    assert_eq!(l["reviews"][0]["closed_by"], "cli:bob");
    assert!(
        !env.ok("alice", &["access", "list"])
            .contains("open post-incident reviews")
    );
    assert!(
        env.audit_actions()
            .iter()
            .any(|a| a == "access.break_glass")
    );
}

#[test]
fn a_request_is_approved_by_someone_else_and_becomes_a_grant() {
    let env = Env::new();
    let Some(m) = moto(&env) else { return };
    let user = unique("batch");
    m.user(&user);
    let arn = m.policy(&unique("write-reports"));
    env.ok(
        "alice",
        &[
            "access",
            "request",
            "--to",
            &format!("user/{user}"),
            "--policy",
            &arn,
            "--for",
            "2h",
            "--reason",
            "quarterly export",
        ],
    );
    let l = env.listing();
    let rid = l["requests"][0]["id"].as_str().unwrap().to_owned();
    assert!(m.attached(&user).is_empty());
    let own = env.run("alice", &["access", "approve", &rid, "--execute", "--yes"]);
    assert!(!own.status.success());
    assert!(
        text(&own.stderr).contains("approved by someone else"),
        "{}",
        text(&own.stderr)
    );
    assert!(m.attached(&user).is_empty());
    env.ok("bob", &["access", "approve", &rid, "--execute", "--yes"]);
    assert_eq!(m.attached(&user), vec![arn]);
    let g = env.grant();
    assert_eq!(g["approver"], "cli:bob");
    assert_eq!(g["requester"], "cli:alice");
    assert_eq!(g["request"], rid.as_str());
    assert_eq!(env.listing()["requests"][0]["state"], "approved");

    let denied = env.run(
        "alice",
        &[
            "access",
            "request",
            "--to",
            &format!("user/{user}"),
            "--group",
            "admins",
            "--for",
            "1h",
            "--reason",
            "curious",
        ],
    );
    assert!(denied.status.success());
    let l = env.listing();
    let pending = l["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["state"] == "pending")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.ok(
        "bob",
        &[
            "access",
            "deny",
            &pending,
            "--reason",
            "not during the freeze",
        ],
    );
    let after = env.run("carol", &["access", "approve", &pending]);
    assert!(!after.status.success());
    let actions = env.audit_actions();
    for a in [
        "access.request",
        "access.approve",
        "access.deny",
        "access.grant",
    ] {
        assert!(actions.iter().any(|x| x == a), "no {a} in {actions:?}");
    }
}

/// A one-shot webhook on loopback: its URL, and the body it receives.
fn webhook() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = conn.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= len || n == 0 {
                    conn.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                        .unwrap();
                    tx.send(body.to_owned()).unwrap();
                    return;
                }
            }
        }
    });
    (url, rx)
}

#[test]
fn keyward_serve_expires_grants_on_its_own() {
    let env = Env::new();
    let Some(m) = moto(&env) else { return };
    let user = unique("nightly");
    m.user(&user);
    let arn = m.policy(&unique("read-metrics"));
    env.ok(
        "alice",
        &[
            "access",
            "grant",
            "--to",
            &format!("user/{user}"),
            "--policy",
            &arn,
            "--for",
            "1m",
            "--reason",
            "short job",
            "--execute",
            "--yes",
        ],
    );
    assert_eq!(m.attached(&user), vec![arn]);
    let mut serve = common::command(&env.data)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--access-expire",
            "--access-interval",
            "1",
        ])
        .env("AWS_ENDPOINT_URL", env.aws.as_deref().unwrap())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("KUBECONFIG", "/nonexistent")
        .env_remove("KEYWARD_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let state = loop {
        let state = env.grant()["state"].as_str().unwrap().to_owned();
        if state != "active" || std::time::Instant::now() > deadline {
            break state;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    };
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert_eq!(state, "expired");
    assert_eq!(env.grant()["ended_by"], "serve:access-expiry");
    assert!(
        m.attached(&user).is_empty(),
        "still attached after serve expired it"
    );
}

/// `kubectl` against the test cluster.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_role_binding_is_created_for_the_grant_and_deleted_at_expiry() {
    let env = Env::new();
    let Some(kc) = env.kubeconfig.clone() else {
        println!("skipped: KEYWARD_TEST_KUBE_URL not set (../shared/tools/k8s/kube-up)");
        return;
    };
    let ns = unique("payments");
    let setup = [
        vec!["create", "namespace", ns.as_str()],
        vec!["-n", ns.as_str(), "create", "serviceaccount", "ledger"],
        vec![
            "-n",
            ns.as_str(),
            "create",
            "role",
            "debugger",
            "--verb=get,list",
            "--resource=pods",
        ],
    ];
    for args in &setup {
        let out = kubectl(&kc, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    let to = format!("{ns}/serviceaccount/ledger");
    env.ok(
        "alice",
        &[
            "access",
            "grant",
            "--to",
            &to,
            "--role",
            "debugger",
            "--namespace",
            &ns,
            "--for",
            "1h",
            "--reason",
            "INC-9",
            "--execute",
            "--yes",
        ],
    );
    let id = env.grant()["id"].as_str().unwrap().to_owned();
    let name = format!("keyward-{id}");
    let out = kubectl(&kc, &["-n", &ns, "get", "rolebinding", &name, "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let b: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        b["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "keyward"
    );
    assert_eq!(
        b["metadata"]["annotations"]["keyward.dev/access-grant"],
        id.as_str()
    );
    assert_eq!(b["roleRef"]["kind"], "Role");
    assert_eq!(b["subjects"][0]["name"], "ledger");
    let can = kubectl(
        &kc,
        &[
            "auth",
            "can-i",
            "list",
            "pods",
            "-n",
            &ns,
            "--as",
            &format!("system:serviceaccount:{ns}:ledger"),
        ],
    );
    assert_eq!(text(&can.stdout).trim(), "yes");

    env.ok(
        "scheduler",
        &[
            "access",
            "expire",
            "--now",
            &at(now() + 2 * HOUR),
            "--execute",
        ],
    );
    let out = kubectl(&kc, &["-n", &ns, "get", "rolebinding", &name]);
    assert!(!out.status.success(), "the binding is still there");
    assert_eq!(env.grant()["state"], "expired");
    let can = kubectl(
        &kc,
        &[
            "auth",
            "can-i",
            "list",
            "pods",
            "-n",
            &ns,
            "--as",
            &format!("system:serviceaccount:{ns}:ledger"),
        ],
    );
    assert_eq!(text(&can.stdout).trim(), "no");

    // A ClusterRole, cluster-wide, revoked early.
    env.ok(
        "alice",
        &[
            "access",
            "grant",
            "--to",
            &to,
            "--role",
            "clusterrole/view",
            "--for",
            "30m",
            "--reason",
            "INC-10",
            "--execute",
            "--yes",
        ],
    );
    let l = env.listing();
    let id = l["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["state"] == "active")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = format!("keyward-{id}");
    let out = kubectl(&kc, &["get", "clusterrolebinding", &name, "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let b: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["roleRef"]["kind"], "ClusterRole");
    assert_eq!(b["subjects"][0]["namespace"], ns.as_str());
    env.ok("bob", &["access", "revoke", &id, "--execute"]);
    assert!(
        !kubectl(&kc, &["get", "clusterrolebinding", &name])
            .status
            .success()
    );
}

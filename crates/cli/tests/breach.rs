//! Breach rotation campaigns end to end (issue 26): the real `keyward` binary rotating every
//! key of ~30 IAM users on moto (`KEYWARD_TEST_AWS_ENDPOINT`), their keys living in Secrets
//! Manager secrets and Kubernetes Secrets on a real API server (`KEYWARD_TEST_KUBE_URL`,
//! `_TOKEN`, `_CA`); without them each test says it was skipped. No mocks: every invariant
//! is read back from the platforms.
//!
//! Each test makes its users under an IAM path of its own and its Secrets in a namespace of
//! its own (`--path-prefix`, `--namespace`), since moto keeps its state between runs.

#![cfg(all(feature = "aws", feature = "kubernetes"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use keyward_respond::aws::sdk::{aws_sdk_iam as iam, aws_sdk_secretsmanager as sm};
use keyward_respond::aws::static_config;
use serde_json::{Value, json};

const REGION: &str = "us-east-1";

/// The servers, or `None` (the test is skipped, saying so).
struct Env {
    endpoint: String,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

fn env() -> Option<Env> {
    let Ok(endpoint) = std::env::var("KEYWARD_TEST_AWS_ENDPOINT") else {
        println!("skipped: KEYWARD_TEST_AWS_ENDPOINT not set");
        return None;
    };
    let Ok(url) = std::env::var("KEYWARD_TEST_KUBE_URL") else {
        println!("skipped: KEYWARD_TEST_KUBE_URL not set");
        return None;
    };
    let token = std::env::var("KEYWARD_TEST_KUBE_TOKEN").expect("KEYWARD_TEST_KUBE_TOKEN");
    let ca = std::env::var("KEYWARD_TEST_KUBE_CA").expect("KEYWARD_TEST_KUBE_CA");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": url, "certificate-authority": ca}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
        "current-context": "test",
    });
    std::fs::write(&kubeconfig, serde_json::to_string(&doc).unwrap()).unwrap();
    Some(Env {
        endpoint,
        kubeconfig,
        _dir: dir,
    })
}

impl Env {
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        self.environment(&mut c);
        c
    }

    /// The AWS endpoint (moto) and the cluster (the kubeconfig) for `c`.
    fn environment<'c>(&self, c: &'c mut Command) -> &'c mut Command {
        c.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KEYWARD_DATA_DIR")
            .stdin(Stdio::null())
    }

    fn keyward(&self, data: &Path, args: &[&str]) -> Command {
        let mut c = common::command(data);
        self.environment(&mut c).args(args);
        c
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        let out = self
            .command(Path::new("kubectl"))
            .args(args)
            .output()
            .expect("kubectl");
        assert!(out.status.success(), "kubectl {args:?}: {out:?}");
        out
    }

    fn clients(&self) -> (iam::Client, sm::Client) {
        let config = static_config(&self.endpoint, REGION, "testing", "testing", None);
        (iam::Client::new(&config), sm::Client::new(&config))
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn unique(tag: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("kw{tag}{}x{}n{n}", std::process::id(), t % 100_000_000)
}

/// Where one user's key lives.
#[derive(Debug, Clone)]
enum Loc {
    Secret(String),
    Kube(String),
    Nowhere,
    /// A secret holding the key id but no secret access key: its rotation fails.
    Broken(String),
}

/// The estate: users, their original keys and where they live.
struct Estate {
    prefix: String,
    namespace: String,
    users: Vec<(String, String, Loc)>,
    /// The user with two keys (skipped) and its keys.
    two_keys: (String, Vec<String>),
}

/// `n` users under a fresh path: most with a JSON Secrets Manager secret, three with a
/// Kubernetes Secret, one with its key nowhere, one with two keys.
fn estate(e: &Env, n: usize) -> Estate {
    let tag = unique("b");
    let prefix = format!("/{tag}/");
    let namespace = tag.clone();
    e.kubectl(&["create", "namespace", &namespace]);
    let (iam, sm) = e.clients();
    let rt = rt();
    let mut users = Vec::new();
    let mut kube = Vec::new();
    rt.block_on(async {
        for i in 0..n {
            let user = format!("{tag}-u{i:03}");
            iam.create_user()
                .user_name(&user)
                .path(&prefix)
                .send()
                .await
                .unwrap();
            let key = iam
                .create_access_key()
                .user_name(&user)
                .send()
                .await
                .unwrap()
                .access_key
                .unwrap();
            let (id, secret) = (key.access_key_id, key.secret_access_key);
            let loc = match i % 10 {
                3 if i < 30 => Loc::Kube(format!("creds-{i}")),
                7 if i == 7 => Loc::Nowhere,
                7 if i == 17 => Loc::Broken(format!("{tag}/broken-{i}")),
                _ => Loc::Secret(format!("{tag}/app-{i}")),
            };
            match &loc {
                Loc::Secret(name) => {
                    sm.create_secret()
                        .name(name)
                        .secret_string(
                            json!({"aws_access_key_id": id, "aws_secret_access_key": secret, "region": REGION})
                                .to_string(),
                        )
                        .send()
                        .await
                        .unwrap();
                }
                Loc::Broken(name) => {
                    sm.create_secret()
                        .name(name)
                        .secret_string(json!({"key": id}).to_string())
                        .send()
                        .await
                        .unwrap();
                }
                Loc::Kube(name) => kube.push((name.clone(), id.clone(), secret.clone())),
                Loc::Nowhere => {}
            }
            users.push((user, id, loc));
        }
    });
    for (name, id, secret) in kube {
        e.kubectl(&[
            "-n",
            &namespace,
            "create",
            "secret",
            "generic",
            &name,
            &format!("--from-literal=AWS_ACCESS_KEY_ID={id}"),
            &format!("--from-literal=AWS_SECRET_ACCESS_KEY={secret}"),
        ]);
    }
    let two = format!("{tag}-two");
    let two_keys = rt.block_on(async {
        iam.create_user()
            .user_name(&two)
            .path(&prefix)
            .send()
            .await
            .unwrap();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let k = iam
                .create_access_key()
                .user_name(&two)
                .send()
                .await
                .unwrap();
            ids.push(k.access_key.unwrap().access_key_id);
        }
        ids.sort();
        ids
    });
    Estate {
        prefix,
        namespace,
        users,
        two_keys: (two, two_keys),
    }
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

/// Every invariant, read from the platforms: each rotated user has exactly one Active key,
/// not its original, and its original Inactive (nothing else); each location holds the new
/// key and not the old one; the two-key user is untouched.
fn check_invariants(e: &Env, estate: &Estate) {
    let (iam, sm) = e.clients();
    let rt = rt();
    for (user, old, loc) in &estate.users {
        let ks = keys(&rt, &iam, user);
        if let Loc::Broken(_) = loc {
            // Failed at its write: the old key still Active (nothing broke), the unused new
            // key left for `keyward respond undo`, as the failure says.
            assert!(ks.contains(&(old.clone(), true)), "{user}: {ks:?}");
            continue;
        }
        assert_eq!(ks.len(), 2, "{user}: {ks:?} (the original and one new key)");
        let active: Vec<&String> = ks.iter().filter(|k| k.1).map(|k| &k.0).collect();
        assert_eq!(active.len(), 1, "{user}: {ks:?}");
        let new = active[0];
        assert_ne!(new, old, "{user}");
        assert!(ks.iter().any(|k| &k.0 == old && !k.1), "{user}: {ks:?}");
        match loc {
            Loc::Secret(name) => {
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
                assert!(
                    v.contains(new.as_str()) && !v.contains(old.as_str()),
                    "{name} holds {new}"
                );
                let doc: Value = serde_json::from_str(&v).unwrap();
                assert_eq!(doc["region"], REGION, "{name}: other fields kept");
            }
            Loc::Kube(name) => {
                let out = e.kubectl(&[
                    "-n",
                    &estate.namespace,
                    "get",
                    "secret",
                    name,
                    "-o",
                    "jsonpath={.data.AWS_ACCESS_KEY_ID}",
                ]);
                let held = decode_b64(&String::from_utf8_lossy(&out.stdout));
                assert_eq!(&held, new, "{name}");
            }
            Loc::Nowhere | Loc::Broken(_) => {}
        }
    }
    let (two, ids) = &estate.two_keys;
    let ks = keys(&rt, &iam, two);
    assert_eq!(
        ks,
        ids.iter().map(|i| (i.clone(), true)).collect::<Vec<_>>(),
        "{two} untouched"
    );
}

fn decode_b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.trim().bytes().filter(|c| *c != b'=') {
        let v = A.iter().position(|a| *a == c).unwrap() as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Items of the campaign by status.
fn item_counts(data: &Path) -> BTreeMap<String, usize> {
    common::rows(
        data,
        "SELECT status, count(*) FROM jobs WHERE kind = 'rotation_campaign_item' GROUP BY status",
    )
    .unwrap_or_default()
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect()
}

/// Per user: the distinct new keys the stored plans' create steps recorded, in plans not
/// undone (a deleted orphan's plan is undone).
fn created_per_user(data: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let docs = common::rows(
        data,
        "SELECT doc FROM response_plans WHERE status != 'undone'",
    )
    .unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for doc in docs {
        let p: Value = serde_json::from_str(&doc[0]).unwrap();
        for s in p["steps"].as_array().unwrap() {
            if s["action"] == "create_access_key"
                && let Some(id) = s["result"]["state"]["new_key_id"].as_str()
            {
                out.entry(p["identity_name"].as_str().unwrap().to_owned())
                    .or_default()
                    .insert(id.to_owned());
            }
        }
    }
    out
}

fn campaign_args<'a>(estate: &'a Estate, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "rotate",
        "--path-prefix",
        &estate.prefix,
        "--namespace",
        &estate.namespace,
        "--concurrency",
        "4",
    ];
    v.extend_from_slice(extra);
    v
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_breach_campaign_rotates_every_key_and_one_failure_or_skip_stops_no_other() {
    let Some(e) = env() else { return };
    let estate = estate(&e, 30);
    let data = tempfile::tempdir().unwrap();
    // Dry run: the order and the plan count, nothing stored or changed.
    let out = e
        .keyward(data.path(), &campaign_args(&estate, &["--all", "--breach"]))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("dry run: 30 rotation plans would be made (1 users skipped)"),
        "{stdout}"
    );
    assert!(item_counts(data.path()).is_empty());
    // The campaign.
    let out = e
        .keyward(
            data.path(),
            &campaign_args(&estate, &["--all", "--breach", "--execute", "--yes"]),
        )
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    // Not every key rotated (the two-key user is skipped): exit 1, said in the summary.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{stderr}",
        text(&out.stdout)
    );
    assert!(
        stderr.contains("29 done, 1 failed, 1 skipped of 31"),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("two access keys"), "{stdout}");
    // One user's failure stops no other, and says how to finish by hand.
    assert!(
        stdout.contains("holds key") && stdout.contains("keyward respond undo rp-"),
        "{stdout}"
    );
    check_invariants(&e, &estate);
    let created = created_per_user(data.path());
    assert_eq!(created.len(), 30);
    assert!(created.values().all(|k| k.len() == 1), "{created:?}");
    // Status, and a second run finds nothing unfinished to continue.
    let out = e
        .keyward(data.path(), &["rotate", "--status", "--format", "json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "finished");
    assert_eq!(
        doc["counts"],
        json!({"done": 29, "failed": 1, "skipped": 1})
    );
    let out = e
        .keyward(data.path(), &["rotate", "--resume"])
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("no unfinished rotation campaign"));
}

/// Waits until at least `n` steps of `action` are recorded (or the child ended), then
/// `extra_ms` more, then SIGKILLs it: the other workers are wherever they are.
fn kill_after(data: &Path, child: &mut Child, action: &str, n: usize, extra_ms: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if common::steps_done(data, action) >= n {
            std::thread::sleep(Duration::from_millis(extra_ms));
            // SIGKILL: no destructor, no flush, no chance to record anything.
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the campaign made no progress");
}

fn pseudo_random(bound: u64) -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish() % bound
}

#[test]
fn a_campaign_killed_twice_resumes_without_rotating_anything_twice() {
    let Some(e) = env() else { return };
    let estate = estate(&e, 30);
    let data = tempfile::tempdir().unwrap();
    let args = campaign_args(&estate, &["--all", "--breach", "--execute", "--yes"]);
    let mut child = e
        .keyward(data.path(), &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // First kill: just after a key was created (and recorded), wherever the others are.
    let first = 3 + pseudo_random(6) as usize;
    let jitter = pseudo_random(30);
    let killed = kill_after(data.path(), &mut child, "create_access_key", first, jitter);
    assert!(killed, "the campaign ended before it could be killed");
    println!(
        "killed after {first} keys created (+{jitter} ms): {:?}",
        item_counts(data.path())
    );
    // The second run offers and continues the unfinished campaign (not a second one); killed
    // just after a secret was written.
    let mut child = e
        .keyward(data.path(), &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let second =
        common::steps_done(data.path(), "update_secret_value") + 4 + pseudo_random(6) as usize;
    let jitter = pseudo_random(30);
    if kill_after(
        data.path(),
        &mut child,
        "update_secret_value",
        second,
        jitter,
    ) {
        println!(
            "killed again after {second} writes (+{jitter} ms): {:?}",
            item_counts(data.path())
        );
    }
    let out = e
        .keyward(
            data.path(),
            &campaign_args(&estate, &["--resume", "--format", "json"]),
        )
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    println!("{stderr}");
    assert!(
        stderr.contains("29 done, 1 failed, 1 skipped of 31"),
        "{stderr}\n{}",
        text(&out.stdout)
    );
    let campaigns = common::rows(
        data.path(),
        "SELECT count(*) FROM jobs WHERE kind = 'rotation_campaign'",
    )
    .unwrap();
    assert_eq!(campaigns[0][0], "1", "one campaign, continued");
    // What the resumes found (where the kills landed differs from run to run).
    let resumed = common::rows(
        data.path(),
        "SELECT detail FROM audit_log WHERE action = 'respond.resume'",
    )
    .unwrap();
    for d in resumed {
        println!("resume: {}", d[0]);
    }
    check_invariants(&e, &estate);
    // No user got more than one new key: the platform shows the original and one other (in
    // check_invariants), and the plans recorded one new key per user.
    let created = created_per_user(data.path());
    assert_eq!(created.len(), 30, "{created:?}");
    assert!(created.values().all(|k| k.len() == 1), "{created:?}");
}

#[test]
fn due_keys_become_stored_dry_run_plans_with_their_live_key_id_and_locations() {
    let Some(e) = env() else { return };
    let tag = unique("d");
    let user = format!("{tag}-due");
    let secret = format!("{tag}/due");
    let (iam, sm) = e.clients();
    let rt = rt();
    let (key, report) = rt.block_on(async {
        iam.create_user().user_name(&user).send().await.unwrap();
        let k = iam
            .create_access_key()
            .user_name(&user)
            .send()
            .await
            .unwrap()
            .access_key
            .unwrap();
        sm.create_secret()
            .name(&secret)
            .secret_string(
                json!({"aws_access_key_id": k.access_key_id, "aws_secret_access_key": k.secret_access_key})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        iam.generate_credential_report().send().await.unwrap();
        let report = iam.get_credential_report().send().await.unwrap();
        let csv = String::from_utf8(report.content.unwrap().into_inner()).unwrap();
        (k.access_key_id, csv)
    });
    // The credential report, cut to its header and this test's user (moto holds every
    // other test's users too).
    let mut lines = report.lines();
    let mut csv = format!("{}\n", lines.next().unwrap());
    for l in lines.filter(|l| l.starts_with(&format!("{user},"))) {
        csv.push_str(l);
        csv.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credential-report.csv");
    std::fs::write(&file, csv).unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = e
        .keyward(data.path(), &["ingest", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A hundred days on, the standard 90-day schedule is past.
    let later = keyward_model::time::format(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            + 100 * 86_400_000,
    );
    let out = e
        .keyward(
            data.path(),
            &[
                "rotate",
                "--due",
                "--plan",
                "--as-of",
                &later,
                "--namespace",
                &tag,
                "--format",
                "json",
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows.iter().find(|r| r["user"] == user.as_str()).unwrap();
    assert_eq!(row["status"], "overdue");
    assert_eq!(row["schedule_days"], 90);
    let plan_id = row["plan"].as_str().unwrap().to_owned();
    // Stored, planned, visible in `respond list`; it names the live key and its secret.
    let out = e
        .keyward(
            data.path(),
            &["respond", "show", &plan_id, "--format", "json"],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["status"], "planned");
    assert_eq!(plan["steps"][0]["replaces"], key.as_str());
    assert_eq!(plan["steps"][1]["location"]["secret_id"], secret.as_str());
    let out = e
        .keyward(data.path(), &["respond", "list"])
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains(&plan_id));
    // Asked again: the existing plan, not a second one.
    let out = e
        .keyward(
            data.path(),
            &[
                "rotate", "--due", "--plan", "--as-of", &later, "--format", "json",
            ],
        )
        .output()
        .unwrap();
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let again = rows.iter().find(|r| r["user"] == user.as_str()).unwrap();
    assert_eq!(again["plan"], plan_id.as_str());
}

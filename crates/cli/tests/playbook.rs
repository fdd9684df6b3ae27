//! Playbooks through the real `keyward` binary. The seed workflow end to end against a real
//! OpenBao (`KEYWARD_TEST_VAULT_ADDR`/`KEYWARD_TEST_VAULT_TOKEN`: `../shared/tools/openbao/bao-up`)
//! and a real Kubernetes API server (`KUBECONFIG`: `../shared/tools/k8s/kube-up`; read with
//! `kubectl`); without them that test says it was skipped. The clock is driven with
//! `--now`: three days are three `tick`s, not 72 hours.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn ok(o: &Output) -> String {
    let out = common::text(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {out}\nstderr: {}",
        common::text(&o.stderr)
    );
    out
}

/// `keyward --data-dir DATA ARGS…` with extra environment.
fn keyward_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    common::command(data)
        .args(args)
        .env_remove("KEYWARD_DATA_DIR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// OpenBao over plain HTTP (dev mode listens on loopback): `(status, body)`.
struct Bao {
    host: String,
    root: String,
}

impl Bao {
    fn from_env() -> Option<Bao> {
        let (Ok(addr), Ok(root)) = (
            std::env::var("KEYWARD_TEST_VAULT_ADDR"),
            std::env::var("KEYWARD_TEST_VAULT_TOKEN"),
        ) else {
            return None;
        };
        let host = addr
            .strip_prefix("http://")
            .expect("a dev-mode OpenBao on http://")
            .trim_end_matches('/')
            .to_owned();
        Some(Bao { host, root })
    }

    fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = std::net::TcpStream::connect(&self.host).unwrap();
        write!(
            s,
            "{method} /v1/{path} HTTP/1.1\r\nHost: {}\r\nX-Vault-Token: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.host,
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let doc = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .and_then(|b| {
                // Chunked or not: the JSON object is between the first `{` and the last `}`.
                let (i, j) = (b.find('{')?, b.rfind('}')?);
                serde_json::from_str(b.get(i..=j)?).ok()
            })
            .unwrap_or(Value::Null);
        (status, doc)
    }

    fn root(&self, method: &str, path: &str, body: Value) {
        let (status, doc) = self.call(&self.root, method, path, Some(body));
        assert!(status < 300, "{method} {path}: {status} {doc}");
    }

    /// The accessor of a token that authenticates, `None` when it does not.
    fn accessor(&self, token: &str) -> Option<String> {
        let (status, doc) = self.call(token, "GET", "auth/token/lookup-self", None);
        (status == 200).then(|| doc["data"]["accessor"].as_str().unwrap().to_owned())
    }
}

fn kubectl(args: &[&str]) -> Output {
    Command::new("kubectl").args(args).output().unwrap()
}

/// The token in the Secret's `VAULT_TOKEN` entry, `None` when there is no such Secret.
fn secret_token(ns: &str, name: &str) -> Option<String> {
    let o = kubectl(&[
        "-n",
        ns,
        "get",
        "secret",
        name,
        "-o",
        "jsonpath={.data.VAULT_TOKEN}",
    ]);
    if !o.status.success() {
        return None;
    }
    let b64 = common::text(&o.stdout);
    let mut d = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    d.stdin
        .take()
        .unwrap()
        .write_all(b64.trim().as_bytes())
        .unwrap();
    Some(common::text(&d.wait_with_output().unwrap().stdout))
}

fn runs(data: &Path) -> Vec<Value> {
    let out = ok(&common::keyward(
        data,
        &["playbook", "status", "--format", "json"],
    ));
    serde_json::from_str(&out).unwrap()
}

fn run_of<'a>(runs: &'a [Value], playbook: &str, name: &str) -> Vec<&'a Value> {
    runs.iter()
        .filter(|r| r["playbook"] == playbook && r["subject"]["name"] == name)
        .collect()
}

const DAY0: &str = "2026-12-06T00:00:00Z";

/// The seed workflow: a new payment service appears in Terraform → its tags are validated
/// (a service missing one is stopped, saying which) → a short-lived OpenBao token from a
/// token role is written into a Kubernetes Secret → rotated every 24 hours (three days,
/// three rotations: after each the Secret's token works and the previous one is revoked) →
/// revoked at once when a finding flags the service compromised (its events go through
/// detection: a `StopLogging` by its role's session) → no longer rotated.
#[test]
fn the_seed_workflow_runs_end_to_end() {
    let Some(bao) = Bao::from_env() else {
        println!("skipped: KEYWARD_TEST_VAULT_ADDR / KEYWARD_TEST_VAULT_TOKEN not set (bao-up)");
        return;
    };
    let Ok(kubeconfig) = std::env::var("KUBECONFIG") else {
        println!("skipped: KUBECONFIG not set (kube-up)");
        return;
    };
    if std::env::var("KEYWARD_TEST_KUBE_URL").is_err() {
        println!("skipped: KEYWARD_TEST_KUBE_URL not set (kube-up)");
        return;
    }
    let unique = format!("pb{}", std::process::id());
    let ns = format!("payments-{unique}");
    let role = format!("payments-{unique}");
    bao.root(
        "POST",
        &format!("auth/token/roles/{role}"),
        json!({"allowed_policies": ["default"], "orphan": true}),
    );
    let made = kubectl(&["create", "namespace", &ns]);
    assert!(made.status.success(), "{}", common::text(&made.stderr));

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tf = dir.path().join("payments.tf");
    std::fs::write(
        &tf,
        format!(
            r#"
resource "aws_iam_role" "payments_api" {{
  name = "payments-api"
  tags = {{
    owner         = "payments-oncall@acme.example"
    team          = "payments"
    data_class    = "pci"
    vault_role    = "{role}"
    k8s_namespace = "{ns}"
  }}
}}

resource "aws_iam_role" "payments_ledger" {{
  name = "payments-ledger"
  tags = {{
    owner         = "payments-oncall@acme.example"
    team          = "payments"
    vault_role    = "{role}"
    k8s_namespace = "{ns}"
  }}
}}
"#
        ),
    )
    .unwrap();
    // The connectors from the environment, as a deployment sets them.
    let addr = format!("http://{}", bao.host);
    let env = [
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_TOKEN", bao.root.as_str()),
        ("BAO_ADDR", addr.as_str()),
        ("BAO_TOKEN", bao.root.as_str()),
        ("KUBECONFIG", kubeconfig.as_str()),
        ("USER", "scheduler"),
    ];
    let tick = |now: &str, execute: bool| {
        let mut args = vec!["playbook", "tick", "--now", now];
        if execute {
            args.push("--execute");
        }
        ok(&keyward_env(&data, &args, &env))
    };

    ok(&common::keyward(&data, &["ingest", tf.to_str().unwrap()]));
    // A dry tick: the onboarding plan is stored, nothing is issued or written.
    let out = tick(DAY0, false);
    assert!(out.contains("dry run: plan"), "{out}");
    assert_eq!(secret_token(&ns, "payments-api-vault"), None);

    // The real tick: tags checked, token issued into the Secret.
    let out = tick(DAY0, true);
    let all = runs(&data);
    let ledger = run_of(&all, "seed-service-onboard", "payments-ledger");
    let stopped = ledger.iter().find(|r| r["execute"] == true).unwrap();
    assert_eq!(stopped["status"], "stopped", "{out}");
    let reason = stopped["reason"].as_str().unwrap();
    assert!(
        reason.contains("missing required tags: data_class")
            && reason.contains("aws_iam_role.payments_ledger"),
        "{reason}"
    );
    assert_eq!(secret_token(&ns, "payments-ledger-vault"), None);
    let mut token = secret_token(&ns, "payments-api-vault").expect("the onboarded Secret");
    let mut accessor = bao.accessor(&token).expect("the issued token works");

    // Three days, three rotations without downtime.
    for day in 1..=3 {
        let now = format!("2026-12-{:02}T00:30:00Z", 6 + day);
        let out = tick(&now, true);
        let next = secret_token(&ns, "payments-api-vault").unwrap();
        assert_ne!(next, token, "day {day}: {out}");
        let next_accessor = bao.accessor(&next).expect("the rotated token works");
        assert_ne!(next_accessor, accessor);
        assert_eq!(
            bao.accessor(&token),
            None,
            "day {day}: the old token is revoked"
        );
        token = next;
        accessor = next_accessor;
        // The same day again: nothing more.
        let again = tick(&format!("2026-12-{:02}T06:00:00Z", 6 + day), true);
        assert!(again.contains("tick: 0 run(s) started"), "{again}");
        assert_eq!(secret_token(&ns, "payments-api-vault").unwrap(), token);
    }
    let all = runs(&data);
    let rotations = run_of(&all, "seed-service-rotate", "payments-api");
    assert_eq!(rotations.len(), 3);
    assert!(rotations.iter().all(|r| r["status"] == "done"));
    // The ledger service was never onboarded: never rotated either.
    assert!(run_of(&all, "seed-service-rotate", "payments-ledger").is_empty());

    // Compromise: the service's role stops CloudTrail; detection flags it; the token goes.
    let events = dir.path().join("cloudtrail.json");
    std::fs::write(
        &events,
        json!({"Records": [{
            "eventVersion": "1.10", "eventTime": "2026-12-09T03:00:00Z",
            "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
            "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.66", "userAgent": "aws-cli/2.15",
            "requestParameters": {"name": "main"}, "responseElements": null,
            "eventID": "6f1d2f63-0d0b-4a52-9d0e-1b1f00c0ffee", "eventType": "AwsApiCall",
            "recipientAccountId": "111122223333",
            "userIdentity": {
                "type": "AssumedRole", "principalId": "AROAPAYMENTSAPI:task-1",
                "arn": "arn:aws:sts::111122223333:assumed-role/payments-api/task-1",
                "accountId": "111122223333", "accessKeyId": "ASIAPAYMENTS0000001",
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAPAYMENTSAPI",
                    "arn": "arn:aws:iam::111122223333:role/payments-api", "accountId": "111122223333",
                    "userName": "payments-api"}}
            }
        }]})
        .to_string(),
    )
    .unwrap();
    ok(&common::keyward(
        &data,
        &["ingest", events.to_str().unwrap()],
    ));
    let out = tick("2026-12-09T03:05:00Z", true);
    assert!(out.contains("seed-service-revoke"), "{out}");
    assert_eq!(
        bao.accessor(&token),
        None,
        "the Secret's token no longer works"
    );
    let all = runs(&data);
    let revoked = run_of(&all, "seed-service-revoke", "payments-api");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["status"], "done");
    assert_eq!(revoked[0]["trigger"]["rule"], "kw-aws-cloudtrail-tampering");

    // The next day's rotation sees the revocation: nothing is issued again.
    let out = tick("2026-12-10T00:30:00Z", true);
    assert!(out.contains("was revoked"), "{out}");
    assert_eq!(secret_token(&ns, "payments-api-vault").unwrap(), token);
    assert_eq!(bao.accessor(&token), None);

    // Audited, the chain intact, and no token anywhere in the store.
    ok(&common::keyward(&data, &["audit", "verify"]));
    let audit = ok(&common::keyward(&data, &["audit", "export"]));
    assert!(audit.contains("playbook.step"), "{audit}");
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(token.trim()),
                "a token in {}",
                path.display()
            );
        }
    }
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"]);
}

/// An approval step: the run pauses; its starter cannot approve it; someone else can, and
/// the run goes on. No servers: its only other step is a wait.
#[test]
fn an_approval_pauses_until_someone_else_approves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let books = dir.path().join("books");
    std::fs::create_dir_all(&books).unwrap();
    std::fs::write(
        books.join("gate.yaml"),
        "name: gate\nsteps:\n  - approval: { reason: \"go?\" }\n  - wait: 1h\n",
    )
    .unwrap();
    let pb = books.to_str().unwrap();
    let alice = [("USER", "alice")];
    let out = ok(&keyward_env(
        &data,
        &["playbook", "run", "gate", "--playbooks", pb, "--now", DAY0],
        &alice,
    ));
    assert!(out.contains("awaiting_approval"), "{out}");
    let id = runs(&data)[0]["id"].as_str().unwrap().to_owned();
    let own = keyward_env(&data, &["playbook", "approve", &id, "--now", DAY0], &alice);
    assert_eq!(own.status.code(), Some(1));
    // Refused by the policies (`no-self-approval`) before the run's own rule is asked.
    let err = common::text(&own.stderr);
    assert!(err.contains("forbidden by no-self-approval"), "{err}");
    let out = ok(&keyward_env(
        &data,
        &["playbook", "approve", &id, "--now", DAY0],
        &[("USER", "bob")],
    ));
    assert!(
        out.contains("waiting") && out.contains("approved by cli:bob"),
        "{out}"
    );
    // The wait's wake-up time is persisted: a tick before it changes nothing, after it ends the run.
    let out = ok(&keyward_env(
        &data,
        &[
            "playbook",
            "tick",
            "--playbooks",
            pb,
            "--now",
            "2026-12-06T00:59:00Z",
        ],
        &alice,
    ));
    assert!(out.contains("0 advanced"), "{out}");
    ok(&keyward_env(
        &data,
        &[
            "playbook",
            "tick",
            "--playbooks",
            pb,
            "--now",
            "2026-12-06T01:00:00Z",
        ],
        &alice,
    ));
    assert_eq!(runs(&data)[0]["status"], "done");
}

#[test]
fn validate_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(
        &f,
        "name: bad\nsteps:\n  - wait: 1h\n  - rotate: { user: x }\n",
    )
    .unwrap();
    let o = common::keyward(
        &dir.path().join("data"),
        &["playbook", "validate", f.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = common::text(&o.stderr);
    assert!(err.contains("bad.yaml") && err.contains("line 4"), "{err}");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/playbooks");
    let mut args = vec!["playbook".to_owned(), "validate".to_owned()];
    for e in std::fs::read_dir(examples).unwrap() {
        args.push(e.unwrap().path().display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&common::keyward(&dir.path().join("data"), &args));
}

/// `keyward serve --playbooks`: the scheduler sees a Terraform service another process
/// ingested, starts the run and POSTs its notification (a JSON summary, no secret).
#[test]
fn serve_runs_the_scheduler_and_notifies() {
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hook.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let books = dir.path().join("books");
    std::fs::create_dir_all(&books).unwrap();
    std::fs::write(
        books.join("tell.yaml"),
        format!(
            "name: tell\ntrigger:\n  inventory: {{ source: terraform, name: \"payments-*\" }}\nsteps:\n  - validate_tags: [team]\n  - notify: {{ url: \"http://127.0.0.1:{port}/hook\", message: \"new service ${{identity.name}}\" }}\n"
        ),
    )
    .unwrap();
    let mut serve = common::spawn(
        &data,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--playbooks",
            books.to_str().unwrap(),
            "--playbooks-execute",
            "--playbook-interval",
            "1",
        ],
    );
    let tf = dir.path().join("svc.tf");
    std::fs::write(
        &tf,
        "resource \"aws_iam_role\" \"p\" {\n  name = \"payments-api\"\n  tags = { team = \"payments\" }\n}\n",
    )
    .unwrap();
    ok(&common::keyward(&data, &["ingest", tf.to_str().unwrap()]));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = hook.accept().unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        // Read until the JSON body is complete (it ends the request).
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req);
            if let Some((_, body)) = text.split_once("\r\n\r\n")
                && serde_json::from_str::<Value>(body).is_ok()
            {
                break;
            }
        }
        conn.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        tx.send(String::from_utf8_lossy(&req).into_owned()).unwrap();
    });
    let got = rx.recv_timeout(std::time::Duration::from_secs(60));
    let _ = serve.kill();
    let out = serve.wait_with_output().unwrap();
    let req = got
        .unwrap_or_else(|_| panic!("no notification; serve said: {}", common::text(&out.stderr)));
    assert!(req.starts_with("POST /hook HTTP/1.1"), "{req}");
    let body: Value = serde_json::from_str(req.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["playbook"], "tell");
    assert_eq!(body["message"], "new service payments-api");
    assert_eq!(body["identity"]["tags"]["team"], "payments");
    assert_eq!(body["steps"][0]["status"], "done");
}

/// moto's IAM query API (moto checks no signature): the response's XML.
fn moto_iam(endpoint: &str, params: &str) -> String {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let body = format!("{params}&Version=2010-05-08");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

fn xml_values<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(open.as_str())
        .skip(1)
        .filter_map(|p| p.split(close.as_str()).next())
        .collect()
}

/// A `rotate` step: the IAM user's access key rotated through the AWS connector (moto) as a
/// playbook run started by hand — the same plan `keyward rotate` makes, recorded in the run.
#[test]
fn a_rotate_step_rotates_the_key_on_moto() {
    let Ok(endpoint) = std::env::var("KEYWARD_TEST_AWS_ENDPOINT") else {
        println!("skipped: KEYWARD_TEST_AWS_ENDPOINT not set (moto-up)");
        return;
    };
    let user = format!("pb-rotate-{}", std::process::id());
    moto_iam(&endpoint, &format!("Action=CreateUser&UserName={user}"));
    let made = moto_iam(
        &endpoint,
        &format!("Action=CreateAccessKey&UserName={user}"),
    );
    let old = xml_values(&made, "AccessKeyId")[0].to_owned();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let books = dir.path().join("books");
    std::fs::create_dir_all(&books).unwrap();
    std::fs::write(
        books.join("rot.yaml"),
        "name: rot\nconditions: { require_tags: [team] }\nsteps:\n  - validate_tags: [team]\n  - rotate: {}\n",
    )
    .unwrap();
    let tf = dir.path().join("users.tf");
    std::fs::write(
        &tf,
        format!("resource \"aws_iam_user\" \"u\" {{\n  name = \"{user}\"\n  tags = {{ team = \"ci\" }}\n}}\n"),
    )
    .unwrap();
    ok(&common::keyward(&data, &["ingest", tf.to_str().unwrap()]));
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("KUBECONFIG", "/nonexistent"),
        ("VAULT_ADDR", ""),
        ("BAO_ADDR", ""),
    ];
    let pb = books.to_str().unwrap();
    let out = ok(&keyward_env(
        &data,
        &[
            "playbook",
            "run",
            "rot",
            "--identity",
            &user,
            "--playbooks",
            pb,
            "--execute",
            "--yes",
        ],
        &env,
    ));
    assert!(out.contains("rot (manual): done"), "{out}");
    let keys = moto_iam(&endpoint, &format!("Action=ListAccessKeys&UserName={user}"));
    let ids = xml_values(&keys, "AccessKeyId");
    let statuses = xml_values(&keys, "Status");
    assert_eq!(ids.len(), 2, "{keys}");
    for (id, status) in ids.iter().zip(&statuses) {
        let want = if *id == old { "Inactive" } else { "Active" };
        assert_eq!(*status, want, "{id}: {keys}");
    }
    let run = &runs(&data)[0];
    let plan = run["steps"][1]["plan"].as_str().unwrap();
    let shown = ok(&common::keyward(&data, &["respond", "show", plan]));
    assert!(shown.contains("executed"), "{shown}");
}

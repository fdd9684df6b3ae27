//! What the moto tests share: the server from `KEYWARD_TEST_AWS_ENDPOINT` with the
//! authorization lock held, identities made on it with moto's root credentials, an in-memory
//! recorder, and plans built or written by hand.
//!
//! Moto keeps its state between runs, so every name is unique (process id and time). Its
//! authorization switch is global to the server: a test that turns it on holds an exclusive
//! lock on a file named after the endpoint, every other test the same file's shared lock, so
//! none of them runs while authorization is on, across threads and test processes alike.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};

use keyward_graph::{Graph, Inventory};
use keyward_model::time::Millis;
use keyward_model::{
    Credential, CredentialKind, CredentialStatus, Identity, IdentityKind, Platform,
};
pub use keyward_respond::aws::sdk::aws_sdk_iam as iam;
use keyward_respond::aws::{AwsConnector, static_config};
use keyward_respond::execute::{Connectors, Phase, Recorder};
use keyward_respond::plan::{self, K8sStrategy, Protected, Request};
use keyward_respond::{Action, IamPrincipal, Plan, PlanStatus, Step};
use serde_json::{Value, json};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

pub fn now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// A name no other test or earlier run against the same server has used (IAM names: ≤ 64
/// characters; none contains `keyward`, which plans protect).
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "kw-{tag}-{}-{}-{}",
        std::process::id(),
        now() % 100_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The test's server, with the authorization lock held (shared, or exclusive for the one
/// test that turns authorization on). Authorization is off when a test starts.
pub struct Moto {
    pub endpoint: String,
    /// Moto's own root credentials (`testing`), valid while authorization is off.
    pub root: iam::Client,
    _lock: File,
}

impl Moto {
    pub async fn start(exclusive: bool) -> Option<Moto> {
        let Some(endpoint) = std::env::var("KEYWARD_TEST_AWS_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
        else {
            println!("skipped: KEYWARD_TEST_AWS_ENDPOINT not set");
            return None;
        };
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let safe: String = endpoint
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = std::env::temp_dir().join(format!("keyward-moto-auth-{safe}.lock"));
        let lock = tokio::task::spawn_blocking(move || {
            let f = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .unwrap();
            if exclusive { f.lock() } else { f.lock_shared() }.unwrap();
            f
        })
        .await
        .unwrap();
        // Nobody holds the exclusive side now: authorization left on by a killed run is
        // turned off.
        set_auth(&endpoint, false);
        let root = iam::Client::new(&static_config(
            &endpoint, REGION, "testing", "testing", None,
        ));
        Some(Moto {
            endpoint,
            root,
            _lock: lock,
        })
    }

    pub fn iam_as(&self, key: &Key) -> iam::Client {
        iam::Client::new(&static_config(
            &self.endpoint,
            REGION,
            &key.id,
            &key.secret,
            key.token.as_deref(),
        ))
    }

    /// A user with an inline `Allow *` policy and its own key: the principal Keyward acts as.
    pub async fn admin(&self) -> (String, Key, AwsConnector) {
        let name = unique("admin");
        self.user(&name).await;
        self.root
            .put_user_policy()
            .user_name(&name)
            .policy_name("admin")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        let key = self.key(&name).await;
        let conn =
            AwsConnector::with_static_credentials(&self.endpoint, REGION, &key.id, &key.secret)
                .await;
        (name, key, conn)
    }

    pub async fn user(&self, name: &str) -> String {
        let out = self
            .root
            .create_user()
            .user_name(name)
            .send()
            .await
            .unwrap();
        out.user().unwrap().arn().to_owned()
    }

    pub async fn key(&self, user: &str) -> Key {
        let out = self
            .root
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .unwrap();
        let k = out.access_key().unwrap();
        Key {
            id: k.access_key_id().to_owned(),
            secret: k.secret_access_key().to_owned(),
            token: None,
        }
    }

    pub async fn role(&self, name: &str, trust: &str) -> String {
        let out = self
            .root
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust)
            .send()
            .await
            .unwrap();
        out.role().unwrap().arn().to_owned()
    }

    pub async fn inline(&self, p: &IamPrincipal, policy: &str) -> Option<String> {
        let out = match p {
            IamPrincipal::Role(r) => self
                .root
                .get_role_policy()
                .role_name(r)
                .policy_name(policy)
                .send()
                .await
                .map(|o| o.policy_document().to_owned())
                .map_err(|e| e.into_service_error().is_no_such_entity_exception()),
            IamPrincipal::User(u) => self
                .root
                .get_user_policy()
                .user_name(u)
                .policy_name(policy)
                .send()
                .await
                .map(|o| o.policy_document().to_owned())
                .map_err(|e| e.into_service_error().is_no_such_entity_exception()),
        };
        match out {
            Ok(doc) => Some(doc),
            Err(true) => None,
            Err(false) => panic!("reading {policy} failed"),
        }
    }

    /// `key id → status` per `ListAccessKeys`.
    pub async fn key_statuses(&self, user: &str) -> Vec<(String, String)> {
        let out = self
            .root
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .unwrap();
        out.access_key_metadata()
            .iter()
            .map(|k| {
                (
                    k.access_key_id().unwrap().to_owned(),
                    k.status().unwrap().as_str().to_owned(),
                )
            })
            .collect()
    }

    pub async fn status_of(&self, user: &str, key: &Key) -> String {
        self.key_statuses(user)
            .await
            .into_iter()
            .find(|(id, _)| *id == key.id)
            .map(|(_, s)| s)
            .unwrap()
    }
}

/// Turns moto's authorization on (`0`: from the next request) or off (`inf`).
pub fn set_auth(endpoint: &str, on: bool) {
    let host = endpoint
        .strip_prefix("http://")
        .expect("the test endpoint is plain http");
    let body = if on { "0" } else { "inf" };
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "POST /moto-api/reset-auth HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "reset-auth: {answer}");
}

/// Authorization on while it lives; off again when dropped, also when the test panics.
pub struct AuthOn<'a>(&'a str);

impl<'a> AuthOn<'a> {
    pub fn new(endpoint: &'a str) -> Self {
        set_auth(endpoint, true);
        AuthOn(endpoint)
    }
}

impl Drop for AuthOn<'_> {
    fn drop(&mut self) {
        set_auth(self.0, false);
    }
}

pub struct Key {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

/// Everything `execute` and `undo` record, in order.
#[derive(Default)]
pub struct Mem {
    pub evidence: Vec<Value>,
    pub records: Vec<(usize, Phase, Plan)>,
}

impl Recorder for Mem {
    fn evidence(&mut self, _plan: &Plan, doc: &Value) -> Result<String, String> {
        self.evidence.push(doc.clone());
        Ok(format!("ev-{}", self.evidence.len()))
    }

    fn step(&mut self, plan: &Plan, n: usize, phase: Phase) -> Result<(), String> {
        self.records.push((n, phase, plan.clone()));
        Ok(())
    }
}

pub fn connectors(conn: AwsConnector) -> Connectors {
    Connectors {
        aws: Some(conn),
        ..Connectors::default()
    }
}

pub fn clock() -> Millis {
    now()
}

pub fn identity(kind: IdentityKind, id: &str, name: &str) -> Identity {
    let mut i = Identity::new(id.to_owned(), Platform::Aws, kind, name.to_owned());
    i.account = Some(ACCOUNT.to_owned());
    if id.starts_with("arn:") {
        i.arn = Some(id.to_owned());
    }
    i
}

pub fn access_key(id: &str) -> Credential {
    Credential {
        id: id.to_owned(),
        kind: CredentialKind::AccessKey,
        status: CredentialStatus::Active,
        created: None,
        last_used: None,
        last_used_region: None,
        last_used_service: None,
    }
}

pub fn build(inv: &Inventory, id: &str, since: Option<Millis>) -> Plan {
    let protected = Protected::new(&[]).unwrap();
    plan::build(
        inv,
        &Graph::new(),
        &Request {
            identity: id,
            finding: None,
            since,
            now: now(),
            actor: "test",
            protected: &protected,
            k8s: K8sStrategy::Contain,
            events: &[],
        },
    )
    .unwrap()
}

/// A plan of these actions, in order, as an operator could have edited it.
pub fn plan_of(identity: &str, actions: Vec<Action>) -> Plan {
    Plan {
        id: format!("rp-{}", unique("plan")),
        created_at: now(),
        created_by: "test".into(),
        identity: identity.to_owned(),
        identity_kind: "iam_user".into(),
        identity_name: identity.to_owned(),
        finding: None,
        since: None,
        status: PlanStatus::Planned,
        workloads: Vec::new(),
        notes: Vec::new(),
        steps: actions
            .into_iter()
            .enumerate()
            .map(|(i, a)| Step {
                n: i + 1,
                target: a.target(),
                why: "contain".into(),
                precondition: a.precondition(),
                command: a.commands(),
                undo: a.undo_commands(),
                terraform: None,
                action: a,
                result: None,
                undo_result: None,
            })
            .collect(),
        evidence: None,
        grace_days: None,
    }
}

pub fn action_names(plan: &Plan) -> Vec<(&'static str, String)> {
    plan.steps
        .iter()
        .map(|s| (s.action.name(), s.target.clone()))
        .collect()
}

pub fn assert_all_ok(plan: &Plan) {
    for s in &plan.steps {
        let r = s.result.as_ref().expect("every step ran");
        assert!(r.ok, "step {} ({}): {}", s.n, s.action.name(), r.message);
        assert!(r.verified.as_ref().is_some_and(|v| v.ok), "step {}", s.n);
    }
}

pub fn trust_for(principal: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]}).to_string()
}

/// An inline policy read back as the admin (authorization may be on), parsed.
pub async fn moto_doc(keyward: &AwsConnector, p: &IamPrincipal, policy: &str) -> Value {
    let snap = keyward
        .snapshot(&Action::DenyAll {
            account: None,
            principal: p.clone(),
        })
        .await
        .unwrap();
    snap["inline_policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == policy)
        .map(|i| i["document"].clone())
        .unwrap_or_else(|| panic!("no inline policy {policy}: {snap}"))
}

pub async fn raw_trust(moto: &Moto, role: &str) -> String {
    let out = moto.root.get_role().role_name(role).send().await.unwrap();
    out.role()
        .unwrap()
        .assume_role_policy_document()
        .unwrap()
        .to_owned()
}

/// IAM's URL-encoded documents, decoded (test-side, independent of the connector's decoder).
pub fn decode_pct(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Every byte a store or an audit log would get: the plan, each recorded plan and the
/// evidence (a test searches it for secrets).
pub fn recorded(mem: &Mem, plan: &Plan) -> String {
    let mut all = serde_json::to_string(plan).unwrap();
    for (_, _, p) in &mem.records {
        all.push_str(&serde_json::to_string(p).unwrap());
    }
    for e in &mem.evidence {
        all.push_str(&e.to_string());
    }
    all
}

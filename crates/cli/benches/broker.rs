//! The credential broker's issuance rate, side by side with OpenBao's identity-token
//! endpoint, in one run on one machine: `POST /broker/token` on the real `keyward serve`
//! (a workload's Kubernetes service-account token verified, Cedar asked, an ES256 JWT
//! signed, the lease and its audit entry committed durably before the answer) against
//! `GET /v1/identity/oidc/token/:role` on OpenBao (an entity's token signed).
//!
//! ```text
//! source kube/env; source bao/env            # ../shared/tools/k8s/kube-up, openbao/bao-up
//! cargo bench -p keyward --bench broker
//! KEYWARD_BENCH_SECONDS=20 KEYWARD_BENCH_CONCURRENCY=64 cargo bench -p keyward --bench broker
//! ```
//!
//! Each side gets the same load: `KEYWARD_BENCH_CONCURRENCY` (default 32) clients, each
//! on its own keep-alive connection, sending requests back to back for
//! `KEYWARD_BENCH_SECONDS` (default 10) after a 2 s warm-up; tokens/s and latency
//! percentiles are printed for both. Needs `KEYWARD_TEST_KUBE_*` (the workload's proof);
//! OpenBao's side needs `KEYWARD_TEST_VAULT_ADDR` and `KEYWARD_TEST_VAULT_TOKEN`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Child, Command, Stdio};

#[path = "../tests/common/kube.rs"]
mod kube;
use kube::kubectl;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn num(name: &str, default: u64) -> u64 {
    env(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build_http()
}

/// One request: the status and body.
async fn send(
    c: &Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Bytes) {
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let resp = c.request(req).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

async fn json_call(
    c: &Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Value {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (s, b) = send(c, method, url, headers, &text).await;
    assert!(
        (200..300).contains(&s),
        "{method} {url}: {s} {}",
        String::from_utf8_lossy(&b)
    );
    serde_json::from_slice(&b).unwrap_or(Value::Null)
}

/// What a side did: requests answered 2xx per second and their latencies.
struct Outcome {
    ok: u64,
    failed: u64,
    secs: f64,
    micros: Vec<u32>,
}

impl Outcome {
    fn pct(&self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return 0.0;
        }
        let i = ((self.micros.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.micros[i]) / 1000.0
    }

    fn line(&self, name: &str) -> String {
        format!(
            "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            self.ok as f64 / self.secs,
            self.pct(0.5),
            self.pct(0.99),
            self.pct(0.999),
            self.pct(1.0),
            self.failed
        )
    }
}

/// `concurrency` clients sending `request` back to back: a warm-up, then `secs` measured.
async fn load(
    concurrency: u64,
    secs: u64,
    method: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
) -> Outcome {
    let warm = Instant::now() + Duration::from_secs(2);
    let end = warm + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (url, headers, body) = (url.clone(), headers.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            // One connection per client.
            let c = client();
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let (mut ok, mut failed, mut micros) = (0u64, 0u64, Vec::with_capacity(1 << 16));
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let (s, _) = send(&c, method, &url, &h, &body).await;
                if t < warm {
                    continue;
                }
                if (200..300).contains(&s) {
                    ok += 1;
                    micros.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                } else {
                    failed += 1;
                }
            }
            (ok, failed, micros)
        }));
    }
    let mut out = Outcome {
        ok: 0,
        failed: 0,
        secs: secs as f64,
        micros: Vec::new(),
    };
    for t in tasks {
        let (ok, failed, micros) = t.await.unwrap();
        out.ok += ok;
        out.failed += failed;
        out.micros.extend(micros);
    }
    out.micros.sort_unstable();
    out
}

/// A process's CPU time so far (user + system), in seconds, from `/proc`; 0 elsewhere.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's `(name)`: state is field 3, utime 14 and stime 15 (clock ticks).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// `keyward serve` with the broker, trusting the test cluster; the workload's proof.
fn keyward(dir: &std::path::Path) -> (Killed, String, String) {
    let sa = format!("kwbench{}", std::process::id());
    kubectl(&["create", "serviceaccount", &sa, "-n", "default"]);
    let proof = kubectl(&[
        "create",
        "token",
        &sa,
        "-n",
        "default",
        "--audience",
        "keyward",
        "--duration",
        "1h",
    ]);
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}/broker");
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(
        dir.join("policies/bench.cedar"),
        format!(
            "@id(\"bench\")\npermit (principal, action == Keyward::Action::\"issue\", resource)\n\
             when {{ principal.proof == \"kubernetes\" && principal has service_account &&\n\
             principal.service_account == \"{sa}\" && resource.kind == \"jwt\" && \
             resource.target == \"bench\" && context.duration_secs <= 3600 }};\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("kube-token"),
        env("KEYWARD_TEST_KUBE_TOKEN").unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("keyward.yaml"),
        format!(
            "policy:\n  dir: policies\nbroker:\n  issuer: {issuer}\n  trusted_issuers:\n    - name: kube\n      \
             kind: kubernetes\n      issuer: {}\n      audiences: [keyward]\n      ca_file: {}\n      \
             bearer_token_file: kube-token\n",
            env("KEYWARD_TEST_KUBE_URL").unwrap(),
            env("KEYWARD_TEST_KUBE_CA").unwrap()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--config")
        .arg(dir.join("keyward.yaml"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("KEYWARD_STORE")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let child = Killed(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, format!("http://127.0.0.1:{port}"), proof)
}

/// OpenBao's identity tokens: a key, a role, and a userpass login whose token has an
/// entity (OpenBao signs tokens for entities only). Returns the role's URL and the token.
async fn openbao(c: &Client) -> Option<(String, String)> {
    let addr = env("KEYWARD_TEST_VAULT_ADDR")?;
    let root = env("KEYWARD_TEST_VAULT_TOKEN")?;
    let h = [("X-Vault-Token", root.as_str())];
    let n = std::process::id();
    let (auth, key, role) = (
        format!("kwup{n}"),
        format!("kwkey{n}"),
        format!("kwrole{n}"),
    );
    json_call(
        c,
        "POST",
        &format!("{addr}/v1/sys/auth/{auth}"),
        &h,
        json!({"type": "userpass"}),
    )
    .await;
    json_call(
        c,
        "POST",
        &format!("{addr}/v1/auth/{auth}/users/bench"),
        &h,
        json!({"password": "bench-password", "token_ttl": "1h"}),
    )
    .await;
    json_call(
        c,
        "POST",
        &format!("{addr}/v1/identity/oidc/key/{key}"),
        &h,
        json!({"allowed_client_ids": "*", "algorithm": "ES256"}),
    )
    .await;
    json_call(
        c,
        "POST",
        &format!("{addr}/v1/identity/oidc/role/{role}"),
        &h,
        json!({"key": key, "ttl": "15m"}),
    )
    .await;
    let login = json_call(
        c,
        "POST",
        &format!("{addr}/v1/auth/{auth}/login/bench"),
        &[],
        json!({"password": "bench-password"}),
    )
    .await;
    let token = login["auth"]["client_token"].as_str()?.to_owned();
    // The entity's token may read its own identity token.
    json_call(c, "POST", &format!("{addr}/v1/sys/policies/acl/{role}"), &h,
        json!({"policy": format!("path \"identity/oidc/token/{role}\" {{ capabilities = [\"read\"] }}")})).await;
    json_call(
        c,
        "POST",
        &format!("{addr}/v1/auth/{auth}/users/bench"),
        &h,
        json!({"password": "bench-password", "token_policies": [role.clone()], "token_ttl": "1h"}),
    )
    .await;
    let login = json_call(
        c,
        "POST",
        &format!("{addr}/v1/auth/{auth}/login/bench"),
        &[],
        json!({"password": "bench-password"}),
    )
    .await;
    let token = login["auth"]["client_token"]
        .as_str()
        .map_or(token, str::to_owned);
    Some((format!("{addr}/v1/identity/oidc/token/{role}"), token))
}

fn main() {
    if env("KEYWARD_TEST_KUBE_URL").is_none() {
        eprintln!(
            "skipped: KEYWARD_TEST_KUBE_URL unset (the workload's proof comes from ../shared/tools/k8s/kube-up)"
        );
        return;
    }
    let concurrency = num("KEYWARD_BENCH_CONCURRENCY", 32);
    let secs = num("KEYWARD_BENCH_SECONDS", 10);
    let dir = tempfile::tempdir().unwrap();
    let (serve, base, proof) = keyward(dir.path());
    let pid = serve.0.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let c = client();
        // One issuance first: the proof is verified against the cluster's keys once.
        let bearer = format!("Bearer {proof}");
        let first = json_call(
            &c,
            "POST",
            &format!("{base}/broker/token"),
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
            ],
            json!({"audience": "bench"}),
        )
        .await;
        assert!(first["credential"]["token"].is_string(), "{first}");
        println!(
            "{concurrency} clients, {secs} s each side (after 2 s warm-up), on this machine:\n"
        );
        println!("| endpoint | tokens/s | p50 ms | p99 ms | p99.9 ms | max ms | failed |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let cpu_before = cpu_secs(pid);
        let k = load(
            concurrency,
            secs,
            "POST",
            format!("{base}/broker/token"),
            vec![
                ("Authorization".into(), bearer.clone()),
                ("Content-Type".into(), "application/json".into()),
            ],
            json!({"audience": "bench"}).to_string(),
        )
        .await;
        let cpu = cpu_secs(pid) - cpu_before;
        println!(
            "{}",
            k.line("Keyward `POST /broker/token` (proof, Cedar, ES256, lease + audit committed)")
        );
        match openbao(&c).await {
            Some((url, token)) => {
                let o = load(
                    concurrency,
                    secs,
                    "GET",
                    url,
                    vec![("X-Vault-Token".into(), token)],
                    String::new(),
                )
                .await;
                println!(
                    "{}",
                    o.line("OpenBao `GET /v1/identity/oidc/token/:role` (ES256)")
                );
            }
            None => println!("| OpenBao | skipped: KEYWARD_TEST_VAULT_ADDR unset | | | | | |"),
        }
        // What was issued is all there: one lease per token.
        let db = rusqlite::Connection::open(dir.path().join("data/keyward.db")).unwrap();
        let stored: i64 = db
            .query_row(
                "SELECT count(*) FROM jobs WHERE kind = 'broker_lease'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        // The leases are in the inventory too, within a second.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let projected: i64 = db
            .query_row(
                "SELECT count(*) FROM identities WHERE kind = 'broker_credential'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(-1);
        println!(
            "\nleases stored: {stored} (the warm-up's issuances included; {} counted); \
             in the inventory 2 s later: {projected}",
            k.ok + 1
        );
        // The CPU was measured over the whole load, warm-up included: so are the leases
        // (all but the first issuance, made before).
        let issued = (stored - 1).max(1) as f64;
        println!(
            "keyward serve: {cpu:.1} CPU s over the {} s of load (warm-up included): \
             {:.0} µs a token",
            secs + 2,
            cpu * 1e6 / issued
        );
    });
}

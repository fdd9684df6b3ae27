//! The OODA loop, end to end on loopback: a CloudTrail event posted to a real `keyward
//! serve` listener → the finding (`kw-aws-backdoor-access-key`) → automatic response makes
//! the plan → the plan executed against moto's AWS API (deny-all on the user, its key
//! `Inactive`, the backdoor key it made on another user `Inactive`, each read back) → the
//! plan's status `executed`, seen by polling the API. p50/p99 over the runs.
//!
//! ```sh
//! ../shared/tools/aws/moto-up /tmp/moto 15055 && . /tmp/moto/env
//! cargo bench -p keyward-server --bench ooda            # 100 runs
//! ```
//! Without `KEYWARD_TEST_AWS_ENDPOINT` it says it was skipped. `cargo test --bench ooda`
//! runs 3.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward_detect::Catalog;
use keyward_engine::Engine;
use keyward_respond::aws::sdk::aws_sdk_iam as iam;
use keyward_respond::aws::static_config;
use keyward_server::{AppState, Config, EngineHandle, Role, auth};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const POLICY: &str = "policies:\n  - name: ooda\n    when: {rules: [kw-aws-backdoor-access-key]}\n    execute: auto\n";

/// One HTTP/1.1 exchange over a fresh loopback connection: status and JSON body.
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    let status: u16 = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Answers are sent with a length or chunked; a chunked one is one chunk here.
    let json_text = match body.find('{') {
        Some(i) => &body[i..body.rfind('}').map_or(body.len(), |j| j + 1)],
        None => "null",
    };
    (
        status,
        serde_json::from_str(json_text).unwrap_or(Value::Null),
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn record(
    i: usize,
    tag: &str,
    attacker: &str,
    attacker_key: &str,
    victim: &str,
    victim_key: &str,
) -> Value {
    let at = keyward_model::time::format(now_ms() / 1000 * 1000);
    json!({"Records": [{
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": format!("AIDAOODA{tag}{i:04}"),
            "arn": format!("arn:aws:iam::123456789012:user/{attacker}"), "accountId": "123456789012",
            "accessKeyId": attacker_key, "userName": attacker},
        "eventTime": at, "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
        "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"userName": victim},
        "responseElements": {"accessKey": {"accessKeyId": victim_key, "status": "Active",
            "userName": victim, "createDate": at}},
        "requestID": format!("req-{tag}-{i}"), "eventID": format!("ooda-{tag}-{i}"),
        "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true,
        "recipientAccountId": "123456789012", "eventCategory": "Management"
    }]})
}

async fn user_with_key(c: &iam::Client, name: &str) -> String {
    c.create_user().user_name(name).send().await.unwrap();
    let k = c.create_access_key().user_name(name).send().await.unwrap();
    k.access_key().unwrap().access_key_id().to_owned()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let Ok(endpoint) = std::env::var("KEYWARD_TEST_AWS_ENDPOINT") else {
        println!(
            "ooda: skipped: KEYWARD_TEST_AWS_ENDPOINT not set (start ../shared/tools/aws/moto-up and source its env)"
        );
        return;
    };
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        println!(
            "ooda: skipped: the server's connector reads AWS_ENDPOINT_URL (source moto's env file)"
        );
        return;
    }
    let smoke = !std::env::args().any(|a| a == "--bench");
    let runs: usize = std::env::var("KEYWARD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 3 } else { 100 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(keyward_normalize::depth::STACK)
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let engine = EngineHandle::spawn(move || {
            let mut e = Engine::open(&data)?;
            e.enable_detection(Catalog::builtin(), Default::default())?;
            Ok::<_, keyward_engine::EngineError>(e)
        })
        .unwrap();
        let token = engine
            .call(|e| auth::create(e, Role::Admin, "ooda", "bench", now_ms()).unwrap().0)
            .await
            .unwrap();
        let policy = keyward_respond::policy::PolicyFile::parse("ooda.yml", POLICY).unwrap();
        let state = AppState::new(
            engine,
            Config {
                response_policy: Some(Arc::new(policy)),
                ..Config::default()
            },
        ).unwrap();
        let listener = keyward_server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(keyward_server::serve(listener, state));

        let c = iam::Client::new(&static_config(&endpoint, "us-east-1", "testing", "testing", None));
        let tag = format!("{}{}", std::process::id(), now_ms() % 1_000_000);
        let mut times = Vec::with_capacity(runs);
        let mut steps = 0;
        for i in 0..runs {
            // Set-up (not timed): the attacker with its key, the victim with the backdoor key.
            let attacker = format!("ooda-a-{tag}-{i}");
            let victim = format!("ooda-v-{tag}-{i}");
            let ak = user_with_key(&c, &attacker).await;
            let vk = user_with_key(&c, &victim).await;
            let body = serde_json::to_vec(&record(i, &tag, &attacker, &ak, &victim, &vk)).unwrap();

            let t0 = Instant::now();
            let (s, v) = http(addr, "POST", "/api/ingest", &token, &body).await;
            assert_eq!(s, 200, "{v}");
            let plan = loop {
                let (_, v) = http(addr, "GET", "/api/respond/plans", &token, b"").await;
                let found = v["items"].as_array().and_then(|items| {
                    items
                        .iter()
                        .find(|p| p["identity"].as_str().is_some_and(|id| id.ends_with(&format!("user/{attacker}"))))
                        .cloned()
                });
                match found {
                    Some(p) if p["status"] == "executed" => break p,
                    Some(p) if p["status"] == "failed" => panic!("plan failed: {p:#}"),
                    _ => {}
                }
                assert!(t0.elapsed() < Duration::from_secs(30), "no executed plan after 30 s");
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            times.push(ms);
            steps = plan["steps"].as_array().map_or(0, Vec::len);
            // The effect, read back from the platform by the bench itself.
            let keys = c.list_access_keys().user_name(&victim).send().await.unwrap();
            let status = keys.access_key_metadata()[0].status().unwrap().as_str().to_owned();
            assert_eq!(status, "Inactive", "the backdoor key");
            let keys = c.list_access_keys().user_name(&attacker).send().await.unwrap();
            assert_eq!(keys.access_key_metadata()[0].status().unwrap().as_str(), "Inactive");
            c.get_user_policy().user_name(&attacker).policy_name("KeywardContainDenyAll").send().await.unwrap();
        }
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "ooda: {runs} runs, {steps} steps each (event posted → finding → plan → executed and verified on moto): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            pct(&sorted, 0.50),
            pct(&sorted, 0.99),
            sorted[sorted.len() - 1]
        );
    });
}

//! Keyward's MCP server with a real MCP client: the Python `mcp` SDK (`tests/mcp/client.py`)
//! lists the tools and asks the three AI-agent questions of the example estate, over stdio
//! (`keyward mcp`) and over streamable HTTP (`keyward serve`'s `/mcp`, where a request
//! without a bearer token gets 401). Skipped, saying so, where the SDK is not installed
//! (`.ci/run` installs it: `python3 -m pip install 'mcp>=2,<3'`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn sdk_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn client() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py")
}

/// A store holding the example estate, ingested with the example configuration.
fn estate() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let ingest = common::command(data.path())
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args([
            "--config",
            "examples/keyward.yaml",
            "ingest",
            "examples/estate",
        ])
        .output()
        .unwrap();
    assert!(
        ingest.status.success() || ingest.status.code() == Some(2),
        "ingest: {}",
        String::from_utf8_lossy(&ingest.stderr)
    );
    data
}

fn passed(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok: every check held"),
        "the MCP client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_python_mcp_client_asks_the_agent_questions_over_stdio() {
    if !sdk_installed() {
        eprintln!("skipped: the Python MCP SDK is not installed (pip install 'mcp>=2,<3')");
        return;
    }
    let data = estate();
    // The same binary and store arguments the suite uses (`--data-dir`, `--store`).
    let keyward = common::command(data.path());
    let out = Command::new("python3")
        .arg(client())
        .arg("stdio")
        .arg(keyward.get_program())
        .args(keyward.get_args())
        .env_remove("KEYWARD_DATA_DIR")
        .env_remove("KEYWARD_STORE")
        .output()
        .unwrap();
    passed(&out);
}

#[test]
fn a_python_mcp_client_asks_the_agent_questions_over_http_with_a_viewer_token() {
    if !sdk_installed() {
        eprintln!("skipped: the Python MCP SDK is not installed (pip install 'mcp>=2,<3')");
        return;
    }
    let data = estate();
    let created = common::command(data.path())
        .args(["token", "create", "--role", "viewer", "--name", "mcp-test"])
        .output()
        .unwrap();
    assert!(created.status.success(), "token create");
    let printed = String::from_utf8_lossy(&created.stdout).into_owned()
        + &String::from_utf8_lossy(&created.stderr);
    let token = printed
        .split_whitespace()
        .find(|w| w.starts_with("kw_"))
        .expect("a printed token")
        .to_owned();
    let mut serve = common::command(data.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("keyward serving on ") {
            break format!("{}/mcp", rest.split_whitespace().next().unwrap());
        }
    };
    // Keep reading its notes so serve never blocks on a full pipe.
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    let out = Command::new("python3")
        .arg(client())
        .args(["http", &url])
        .env("KEYWARD_MCP_TOKEN", &token)
        .output()
        .unwrap();
    serve.kill().unwrap();
    serve.wait().unwrap();
    drain.join().unwrap();
    passed(&out);
}

#[test]
fn mcp_over_http_asks_the_policies_a_token_refused_view_gets_403() {
    // A policy set where only the `auditor` role reads: a viewer's token is known (not
    // 401) but refused (403), before any MCP message is read.
    let data = tempfile::tempdir().unwrap();
    let conf = data.path().join("conf");
    std::fs::create_dir_all(conf.join("policies")).unwrap();
    std::fs::write(
        conf.join("policies/auditors.cedar"),
        "@id(\"auditors-read\")\npermit (principal in Keyward::Role::\"auditor\", \
         action == Keyward::Action::\"view\", resource);\n",
    )
    .unwrap();
    std::fs::write(
        conf.join("keyward.yaml"),
        "policy:\n  dir: policies\n  builtin: false\n",
    )
    .unwrap();
    let token = common::keyward(
        data.path(),
        &["token", "create", "--role", "viewer", "--name", "mcp"],
    );
    let token = common::text(&token.stdout).trim().to_owned();
    let served = common::serve_with(
        data.path(),
        &["--config", conf.join("keyward.yaml").to_str().unwrap()],
        &[],
    );
    let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let (status, body) = common::http_json(served.port, "POST", "/mcp", &token, init);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("may not view"), "{body}");
    let (status, _) = common::http_json(served.port, "POST", "/mcp", "kw_unknown", init);
    assert_eq!(status, 401);
}

/// One JSON-RPC request to `/mcp` (stateless, answered with JSON): the HTTP status and the
/// answer. HTTP/1.0, so the body is never chunked.
fn mcp_post(
    port: u16,
    token: &str,
    method: &str,
    params: serde_json::Value,
) -> (u16, serde_json::Value) {
    use std::io::{Read as _, Write as _};
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
        .to_string();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /mcp HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: 2025-06-18\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// The tools `/mcp` lists to `token`.
fn tool_names(port: u16, token: &str) -> Vec<String> {
    let (_, listed) = mcp_post(port, token, "tools/list", serde_json::json!({}));
    listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| Some(t["name"].as_str()?.to_owned()))
        .collect()
}

/// A tool call's text answer, and whether it was an error.
fn tool(port: u16, token: &str, name: &str, args: serde_json::Value) -> (bool, String) {
    let (status, answer) = mcp_post(
        port,
        token,
        "tools/call",
        serde_json::json!({"name": name, "arguments": args}),
    );
    assert_eq!(status, 200, "{answer}");
    let result = &answer["result"];
    assert!(result.is_object(), "{name}: {answer}");
    let text = result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (result["isError"].as_bool().unwrap_or(false), text)
}

fn token(data: &Path, role: &str) -> String {
    let out = common::keyward(data, &["token", "create", "--role", role, "--name", role]);
    assert!(out.status.success(), "token create");
    common::text(&out.stdout).trim().to_owned()
}

/// The triage and plan tools: absent unless `serve --mcp-write-tools`; then a viewer's call
/// is refused by the policies (and the refusal audited), an operator's triages a finding
/// and stores a dry-run plan, each audited with the token as actor.
#[test]
fn the_triage_and_plan_tools_need_the_flag_and_an_operator_token() {
    let data = estate();
    let (viewer, operator) = (token(data.path(), "viewer"), token(data.path(), "operator"));
    let (status, found) = common::http_json(
        common::serve(data.path()).port,
        "GET",
        "/api/findings?kind=threat",
        &viewer,
        b"",
    );
    assert_eq!(status, 200, "{found}");
    let found: serde_json::Value = serde_json::from_str(&found).unwrap();
    // A finding about an IAM identity: a plan can contain it.
    let about_iam = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["identity"]
                .as_str()
                .is_some_and(|i| i.starts_with("arn:aws:iam::"))
        })
        .expect("a threat finding about an IAM identity");
    let finding = about_iam["id"].as_str().unwrap().to_owned();
    let identity = about_iam["identity"].as_str().unwrap().to_owned();

    // Without the flag the tools do not exist, whatever the token.
    let served = common::serve(data.path());
    let names = tool_names(served.port, &operator);
    assert!(
        names.iter().any(|n| n == "findings") && !names.iter().any(|n| n == "triage_finding"),
        "{names:?}"
    );
    let (_, answer) = mcp_post(
        served.port,
        &operator,
        "tools/call",
        serde_json::json!({"name": "triage_finding", "arguments": {"id": finding, "status": "acknowledged"}}),
    );
    assert!(answer["error"].is_object(), "{answer}");
    drop(served);

    let served = common::serve_with(data.path(), &[], &["--mcp-write-tools"]);
    let names = tool_names(served.port, &viewer);
    assert!(
        ["triage_finding", "plan_containment"]
            .iter()
            .all(|t| names.iter().any(|n| n == t)),
        "{names:?}"
    );
    // A viewer: refused by the policies, nothing changed.
    let args = serde_json::json!({"id": finding, "status": "acknowledged", "note": "looked at it"});
    let (error, text) = tool(served.port, &viewer, "triage_finding", args.clone());
    assert!(error && text.contains("refused by policy"), "{text}");
    let (error, text) = tool(
        served.port,
        &viewer,
        "plan_containment",
        serde_json::json!({"target": finding}),
    );
    assert!(error && text.contains("refused by policy"), "{text}");
    // An operator: the finding is acknowledged, a plan stored as planned.
    let (error, text) = tool(served.port, &operator, "triage_finding", args);
    assert!(!error, "{text}");
    let triaged: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(triaged["finding"]["status"], "acknowledged", "{text}");
    let (error, text) = tool(
        served.port,
        &operator,
        "triage_finding",
        serde_json::json!({"id": finding, "status": "maybe"}),
    );
    assert!(error && text.contains("not one of"), "{text}");
    let (error, text) = tool(
        served.port,
        &operator,
        "plan_containment",
        serde_json::json!({"target": finding}),
    );
    assert!(!error, "{text}");
    let plan: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(plan["plan"]["status"], "planned", "{text}");
    assert_eq!(plan["plan"]["identity"], identity.as_str(), "{text}");
    drop(served);

    let audit = common::keyward(data.path(), &["audit", "export"]);
    let entries: Vec<serde_json::Value> = common::text(&audit.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let of = |action: &str| -> Vec<&serde_json::Value> {
        entries.iter().filter(|e| e["action"] == action).collect()
    };
    let triage = of("finding.status");
    assert_eq!(triage.len(), 1, "{entries:#?}");
    assert_eq!(triage[0]["target"], finding.as_str());
    assert!(triage[0]["actor"].as_str().unwrap().starts_with("token:"));
    assert_eq!(of("respond.plan").len(), 1, "{entries:#?}");
    // Every decision on surface `mcp`: the viewer's two refusals, the operator's two allows.
    let decided: Vec<(String, String)> = of("policy.decide")
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e["detail"].as_str()?).ok())
        .filter(|d| d["surface"] == "mcp")
        .map(|d| {
            (
                d["action"].as_str().unwrap().to_owned(),
                d["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("triage", "deny"),
        ("plan", "deny"),
        ("triage", "allow"),
        ("plan", "allow"),
    ] {
        assert!(
            decided
                .iter()
                .any(|(a, d)| (a.as_str(), d.as_str()) == expected),
            "{expected:?} not among {decided:?}"
        );
    }
}

/// Over stdio the write tools need `--write-tools` with a known token's file (an unknown
/// token stops `keyward mcp` before it serves, without printing it), and act as that
/// token, as the policies decide.
#[test]
fn over_stdio_the_write_tools_act_as_the_token_in_the_file() {
    use std::io::Write as _;
    let data = estate();
    let found = common::keyward(
        data.path(),
        &["findings", "--kind", "threat", "--format", "json"],
    );
    let found: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    let finding = found
        .as_array()
        .and_then(|a| a.first())
        .and_then(|f| f["id"].as_str())
        .expect("a threat finding")
        .to_owned();

    let bad = data.path().join("bad.token");
    std::fs::write(
        &bad,
        "kw_0000000000000000000000000000000000000000000000000000000000000000\n",
    )
    .unwrap();
    let out = common::keyward(
        data.path(),
        &[
            "mcp",
            "--write-tools",
            "--token-file",
            bad.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = common::text(&out.stderr);
    assert!(
        err.contains("not a known, unrevoked Keyward token") && !err.contains("kw_0000"),
        "{err}"
    );

    for (role, allowed) in [("viewer", false), ("operator", true)] {
        let file = data.path().join(format!("{role}.token"));
        std::fs::write(&file, token(data.path(), role) + "\n").unwrap();
        let mut child = common::command(data.path())
            .args([
                "mcp",
                "--write-tools",
                "--token-file",
                file.to_str().unwrap(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut ask = |msg: serde_json::Value| -> serde_json::Value {
            writeln!(stdin, "{msg}").unwrap();
            if msg.get("id").is_none() {
                return serde_json::Value::Null;
            }
            let line = lines.next().expect("an answer").unwrap();
            serde_json::from_str(&line).unwrap()
        };
        ask(
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        );
        ask(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        let answer = ask(
            serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "triage_finding", "arguments": {"id": finding, "status": "acknowledged"}}}),
        );
        let result = &answer["result"];
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        assert_eq!(
            result["isError"].as_bool().unwrap_or(false),
            !allowed,
            "{role}: {answer}"
        );
        if allowed {
            assert!(text.contains("\"acknowledged\""), "{text}");
        } else {
            assert!(text.contains("refused by policy"), "{text}");
        }
        drop(stdin);
        assert!(child.wait().unwrap().success(), "{role}");
    }
}

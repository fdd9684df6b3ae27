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

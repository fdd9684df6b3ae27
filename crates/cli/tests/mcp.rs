//! `keyward mcp` with a real MCP client: the Python `mcp` SDK's stdio client
//! (`tests/mcp/client.py`) lists the tools and asks the three AI-agent questions of the
//! example estate. Skipped, saying so, where the SDK is not installed (`.ci/run` installs
//! it: `python3 -m pip install 'mcp>=2,<3'`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::process::Command;

fn sdk_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_python_mcp_client_asks_the_agent_questions_over_stdio() {
    if !sdk_installed() {
        eprintln!("skipped: the Python MCP SDK is not installed (pip install 'mcp>=2,<3')");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = tempfile::tempdir().unwrap();
    let ingest = common::command(data.path())
        .current_dir(&root)
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
    // The same binary and store arguments the suite uses (`--data-dir`, `--store`).
    let keyward = common::command(data.path());
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py"))
        .arg(keyward.get_program())
        .args(keyward.get_args())
        .env_remove("KEYWARD_DATA_DIR")
        .env_remove("KEYWARD_STORE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok: every check held"),
        "the MCP client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

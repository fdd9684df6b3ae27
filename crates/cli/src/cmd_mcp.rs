//! `keyward mcp`: the MCP server over stdio (JSON-RPC on stdin and stdout, notes on
//! stderr), for an LLM client to ask about the estate with read-only tools. The tools are
//! in `keyward_server::mcp`; this opens the store and runs them until the client hangs up.
//! With `--write-tools`, the triage and plan tools too, each call decided by the policies in
//! force for the token `--token-file` holds (checked here before anything is served).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_server::EngineHandle;
use keyward_server::mcp::Writes;

use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// Also offer the triage and plan tools (set a finding's status; store a dry-run
    /// containment plan), decided per call by the policies for the token of --token-file
    /// (an operator's by default) and audited. Without it, every tool reads.
    #[arg(long, requires = "token_file")]
    pub write_tools: bool,
    /// A file holding a Keyward API token (`keyward token create --role operator`): who
    /// the triage and plan tools act as.
    #[arg(long, value_name = "FILE", env = "KEYWARD_MCP_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

pub fn run(dir: &Path, args: Args) -> anyhow::Result<Outcome> {
    let data = dir.to_path_buf();
    let engine = EngineHandle::spawn(move || {
        Engine::open(&data).with_context(|| format!("opening the store in `{}`", data.display()))
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let writes = match (&args.token_file, args.write_tools) {
        (Some(file), true) => Some(writes(dir, file, &engine, &rt)?),
        _ => None,
    };
    rt.block_on(keyward_server::mcp::serve_stdio(engine, writes))
        .context("serving MCP over stdio")?;
    Ok(Outcome::Clean)
}

/// The write tools' authority: the policies in force and the caller of the token in `file`
/// (known and unrevoked; the token itself is never shown).
fn writes(
    dir: &Path,
    file: &Path,
    engine: &EngineHandle,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Writes> {
    let token = std::fs::read_to_string(file)
        .with_context(|| format!("reading the token file `{}`", file.display()))?
        .trim()
        .to_owned();
    let caller = rt
        .block_on(engine.call(move |e| keyward_server::auth::verify(e, &token)))
        .map_err(|e| anyhow::anyhow!("{}", e.message))??
        .with_context(|| {
            format!(
                "the token in `{}` is not a known, unrevoked Keyward token (`keyward token create --role operator`)",
                file.display()
            )
        })?;
    let policies = crate::policy::load_from(&crate::policy::source(dir)?)?.policies;
    eprintln!(
        "keyward mcp: triage and plan tools on, as token {} ({}, role {}), as the policies decide",
        caller.token_id,
        caller.name,
        caller.role.as_str()
    );
    Ok(Writes::as_caller(Arc::new(policies), caller))
}

//! `keyward mcp`: the MCP server over stdio (JSON-RPC on stdin and stdout, notes on
//! stderr), for an LLM client to ask about the estate with read-only tools. The tools are
//! in `keyward_server::mcp`; this opens the store and runs them until the client hangs up.

use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_server::EngineHandle;

use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(dir: &Path, _args: Args) -> anyhow::Result<Outcome> {
    let data = dir.to_path_buf();
    let engine = EngineHandle::spawn(move || {
        Engine::open(&data).with_context(|| format!("opening the store in `{}`", data.display()))
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(keyward_server::mcp::serve_stdio(engine))
        .context("serving MCP over stdio")?;
    Ok(Outcome::Clean)
}

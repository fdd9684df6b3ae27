//! `keyward baseline approve [IDENTITY | --all]` and `keyward drift`: the approved
//! configuration of IAM users, roles and service accounts, and what differs from it now
//! with the commands that put it back. `drift` exits 1 when anything drifted.

use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;

use crate::Outcome;
use crate::output::{cli_actor, now_ms, table};

#[derive(clap::Subcommand)]
pub enum Baseline {
    /// Approve the current configuration (from the last snapshots) as the baseline.
    Approve {
        /// Canonical id, ARN or unique name; omit with `--all`.
        identity: Option<String>,
        /// Every IAM user, role and service account.
        #[arg(long, conflicts_with = "identity")]
        all: bool,
    },
    /// The approved baselines.
    List,
}

#[derive(clap::Args)]
pub struct DriftArgs {
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

fn open(dir: &Path) -> anyhow::Result<Engine> {
    Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))
}

pub fn baseline(dir: &Path, cmd: Baseline) -> anyhow::Result<Outcome> {
    let mut engine = open(dir)?;
    match cmd {
        Baseline::Approve { identity, all } => {
            if identity.is_none() && !all {
                anyhow::bail!("name an identity, or pass --all");
            }
            let _writing = crate::output::write_lock(&mut engine, dir)?;
            let n = engine.approve_baselines(identity.as_deref(), &cli_actor(), now_ms())?;
            println!("approved the current configuration of {n} identities as their baseline");
        }
        Baseline::List => {
            let mut t = table();
            t.set_header(["identity", "approved", "by", "facts"]);
            for (id, b) in engine.baselines_approved()? {
                let facts: Vec<&str> = b.facts.keys().map(String::as_str).collect();
                t.add_row([
                    id,
                    keyward_model::time::format(b.approved_at),
                    b.approved_by,
                    facts.join(", "),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(Outcome::Clean)
}

pub fn drift(dir: &Path, a: DriftArgs) -> anyhow::Result<Outcome> {
    let engine = open(dir)?;
    let drifts = engine.drift()?;
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&drifts)?);
    } else if drifts.is_empty() {
        println!("no drift from the approved baselines");
    } else {
        for d in &drifts {
            println!("{}  {}", d.identity, d.field);
            if !d.added.is_empty() {
                println!("  added:   {}", d.added.join(", "));
            }
            if !d.removed.is_empty() {
                println!("  removed: {}", d.removed.join(", "));
            }
            if d.added.is_empty() && d.removed.is_empty() {
                println!("  approved: {}\n  now:      {}", d.approved, d.current);
            }
            for c in &d.revert {
                println!("  $ {c}");
            }
        }
        println!("{} drifts", drifts.len());
    }
    Ok(if drifts.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Broken
    })
}

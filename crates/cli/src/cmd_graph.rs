//! `keyward graph …`: questions answered from the identity graph. So far: `paths`, the
//! privilege-escalation paths to admin-equivalent power in each AWS account.

use std::path::Path;

use anyhow::{Context as _, bail};
use keyward_engine::Engine;
use keyward_graph::iam::escalation::{Analysis, Path as EscalationPath};
use serde_json::json;

use crate::Outcome;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Privilege-escalation paths to admin-equivalent power (AWS IAM).
    Paths(PathsArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(clap::Args)]
pub struct PathsArgs {
    /// Only paths from this principal (canonical id, ARN or unique name).
    #[arg(long)]
    pub from: Option<String>,
    /// The goal; `admin` (admin-equivalent power) is the one supported.
    #[arg(long, default_value = "admin")]
    pub to: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

pub fn run(dir: &Path, cmd: Command) -> anyhow::Result<Outcome> {
    let engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    match cmd {
        Command::Paths(a) => paths(&engine, &a),
    }
}

/// A principal's shortest escalation path to admin.
pub struct Found {
    pub account: String,
    pub from: String,
    pub path: EscalationPath,
}

/// Escalation paths to admin from every principal (or one), per account, and the
/// admin-equivalent principals.
pub fn escalation_paths(
    engine: &Engine,
    from: Option<&str>,
) -> anyhow::Result<(Vec<String>, Vec<Found>)> {
    let mut found = Vec::new();
    let mut admins = Vec::new();
    for (account, snap) in &keyward_engine::iam_snapshots(engine.store())? {
        let analysis = Analysis::run(snap);
        admins.extend(analysis.admins.iter().cloned());
        for id in snap
            .principals()
            .into_keys()
            .filter(|id| from.is_none_or(|f| f == id))
        {
            if analysis.admins.contains(&id) {
                continue;
            }
            if let Some(path) = analysis.path_to_admin(&id) {
                found.push(Found {
                    account: account.clone(),
                    from: id,
                    path,
                });
            }
        }
    }
    Ok((admins, found))
}

fn paths(engine: &Engine, args: &PathsArgs) -> anyhow::Result<Outcome> {
    if args.to != "admin" {
        bail!("`--to {}`: only `--to admin` is supported", args.to);
    }
    let from = match &args.from {
        None => None,
        Some(q) => match engine.resolve(q) {
            keyward_engine::Resolve::Found(i) => Some(i.id.clone()),
            keyward_engine::Resolve::NotFound => bail!("no identity matches `{q}`"),
            keyward_engine::Resolve::Ambiguous(many) => {
                bail!("`{q}` matches {} identities; use the id", many.len())
            }
        },
    };
    if keyward_engine::iam_snapshots(engine.store())?.is_empty() {
        println!(
            "no IAM authorization details ingested (aws iam get-account-authorization-details)"
        );
        return Ok(Outcome::Clean);
    }
    let (admins, found) = escalation_paths(engine, from.as_deref())?;
    match args.format {
        OutputFormat::Json => {
            let out: Vec<_> = found
                .iter()
                .map(|f| {
                    json!({
                        "account": f.account,
                        "from": f.from,
                        "steps": f.path.steps.iter().map(|s| json!({
                            "technique": s.technique,
                            "from": s.from,
                            "to": s.to,
                            "reaches_admin": s.reaches_admin,
                            "conditional_on": s.conditional,
                            "via_existing_workload": s.via_existing_workload,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"admin_equivalent": admins, "paths": out}))?
            );
        }
        OutputFormat::Table => {
            println!("admin-equivalent principals: {}", admins.len());
            for a in &admins {
                println!("  {a}");
            }
            println!("\nescalation paths to admin: {}", found.len());
            for f in &found {
                println!("\n{}", f.from);
                for s in &f.path.steps {
                    let target = match (s.reaches_admin, s.to == s.from) {
                        (true, true) => "admin (grants itself)".to_owned(),
                        (true, false) => format!("{} ⇒ admin", s.to),
                        (false, _) => s.to.clone(),
                    };
                    let mut notes = Vec::new();
                    if !s.conditional.is_empty() {
                        notes.push(format!(
                            "if {}",
                            s.conditional.iter().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    if s.via_existing_workload {
                        notes.push("if a workload already runs as it".to_owned());
                    }
                    let notes = if notes.is_empty() {
                        String::new()
                    } else {
                        format!("  [{}]", notes.join("; "))
                    };
                    println!("  └─ {:<20} → {target}{notes}", s.technique);
                }
            }
            println!(
                "\ntechnique ids follow the pathfinding.cloud catalogue (https://pathfinding.cloud)"
            );
        }
    }
    Ok(Outcome::Clean)
}

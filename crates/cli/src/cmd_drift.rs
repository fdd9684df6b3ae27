//! `keyward baseline approve [IDENTITY | --all]` and `keyward drift`: the approved
//! configuration of IAM users, roles and service accounts, and what differs from it now
//! with the commands that put it back. `drift` exits 1 when anything drifted.
//! `drift --live` reads the IAM users and roles from AWS instead of the last snapshot and
//! makes a revert plan for each that drifted; `--revert` stores the plans (dry run) and
//! `--revert --execute` runs them — self-healing by hand, or from a playbook.

use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;

use keyward_respond::execute::Connectors;
use keyward_store::AuditEntry;

use crate::Outcome;
use crate::cmd_respond::{confirm_and_run, print_plan};
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
    /// Read the baselined IAM users and roles live through AWS (not the last snapshot) and
    /// show the revert plan of each that drifted.
    #[arg(long)]
    pub live: bool,
    /// Only this identity (canonical id, ARN or unique name).
    #[arg(long, value_name = "IDENTITY")]
    pub identity: Option<String>,
    /// Store the revert plans (implies --live): a dry run unless --execute.
    #[arg(long)]
    pub revert: bool,
    /// Run the revert plans now (after confirmation, unless --yes).
    #[arg(long, requires = "revert")]
    pub execute: bool,
    /// Do it without asking.
    #[arg(long)]
    pub yes: bool,
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
    if a.live || a.revert || a.identity.is_some() {
        return live(dir, &a);
    }
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

/// The live check: one revert plan per drifted identity.
fn live(dir: &Path, a: &DriftArgs) -> anyhow::Result<Outcome> {
    let mut engine = open(dir)?;
    let targets = engine.baselined_principals(a.identity.as_deref())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let connectors = rt.block_on(Connectors::from_env(None));
    let actor = cli_actor();
    let now = now_ms();
    let mut plans = Vec::new();
    for (i, p, b) in &targets {
        let facts = rt.block_on(live_facts(&connectors, p))?;
        let why = format!(
            "the live state of {} differs from the baseline approved {} by {}",
            i.id,
            keyward_model::time::format(b.approved_at),
            b.approved_by
        );
        plans.extend(engine.revert_plan(i, b, &facts, &why, &actor, now));
    }
    drop(rt);
    if a.revert {
        let _writing = crate::output::write_lock(&mut engine, dir)?;
        for plan in &plans {
            engine.save_plan(
                plan,
                AuditEntry {
                    at: now,
                    actor: actor.clone(),
                    action: "respond.plan".into(),
                    target: Some(plan.id.clone()),
                    detail: Some(format!(
                        "revert {} to its approved baseline ({} steps)",
                        plan.identity,
                        plan.steps.len()
                    )),
                    before: None,
                    after: None,
                },
            )?;
        }
    }
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&plans)?);
    } else if plans.is_empty() {
        println!(
            "no drift: {} baselined identities match their approved baseline live",
            targets.len()
        );
    } else if !a.execute {
        for plan in &plans {
            print_plan(plan);
            println!();
        }
        println!(
            "{} of {} baselined identities drifted{}",
            plans.len(),
            targets.len(),
            if a.revert {
                ": the revert plans are stored (dry run). Run them with `keyward drift --revert --execute` or `keyward respond execute PLAN`"
            } else {
                ": store the revert plans with --revert"
            }
        );
    }
    if a.execute {
        let mut worst = Outcome::Clean;
        for plan in plans {
            if !matches!(
                confirm_and_run(&mut engine, plan, false, a.yes, None)?,
                Outcome::Clean
            ) {
                worst = Outcome::Broken;
            }
        }
        return Ok(worst);
    }
    Ok(if plans.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Broken
    })
}

/// An IAM principal's governed facts read live through the AWS connector of the
/// environment (the playbooks' `revert_drift` step).
pub(crate) async fn live_facts_from_env(
    p: &keyward_respond::IamPrincipal,
) -> anyhow::Result<std::collections::BTreeMap<String, serde_json::Value>> {
    let connectors = Connectors::from_env(None).await;
    live_facts(&connectors, p).await
}

#[cfg(feature = "aws")]
async fn live_facts(
    c: &Connectors,
    p: &keyward_respond::IamPrincipal,
) -> anyhow::Result<std::collections::BTreeMap<String, serde_json::Value>> {
    let Some(aws) = &c.aws else {
        let why = c.why_missing("aws");
        anyhow::bail!("reading the live state needs the AWS connector: {why}");
    };
    Ok(aws.governed_facts(p).await?)
}

#[cfg(not(feature = "aws"))]
async fn live_facts(
    _: &Connectors,
    _: &keyward_respond::IamPrincipal,
) -> anyhow::Result<std::collections::BTreeMap<String, serde_json::Value>> {
    anyhow::bail!("this keyward was built without the `aws` feature: it cannot read the live state")
}

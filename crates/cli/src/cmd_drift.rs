//! `keyward baseline approve [IDENTITY | --all]` and `keyward drift`: the approved
//! configuration of IAM users, roles and service accounts, and what differs from it now
//! with the commands that put it back. `drift` exits 1 when anything drifted.
//! `baseline approve --from-terraform PATH [IDENTITY]` approves what Terraform declares
//! instead of what the last snapshot shows (`keyward_engine::drift_iac`); it exits 1 when
//! an identity Terraform defines could not be approved.
//! `drift --live` reads the IAM users and roles from AWS instead of the last snapshot and
//! makes a revert plan for each that drifted; `--revert` stores the plans (dry run) and
//! `--revert --execute` runs them — self-healing by hand, or from a playbook.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_engine::drift_iac::{TerraformApproval, TerraformInput, TerraformReport};

use keyward_respond::execute::Connectors;
use keyward_store::AuditEntry;

use crate::Outcome;
use crate::cmd_respond::{confirm_and_run, print_plan};
use crate::output::{cli_actor, now_ms, table};

#[derive(clap::Subcommand)]
pub enum Baseline {
    /// Approve the current configuration (from the last snapshots) as the baseline, or
    /// what Terraform declares (`--from-terraform`).
    Approve {
        /// Canonical id, ARN or unique name; omit with `--all`. With `--from-terraform`,
        /// also a Terraform address or name; omitted, every identity Terraform defines.
        identity: Option<String>,
        /// Every IAM user, role and service account.
        #[arg(long, conflicts_with_all = ["identity", "from_terraform"])]
        all: bool,
        /// Approve what Terraform declares: a `.tf` or `.tf.json` file, a directory of them
        /// (one module: subdirectories are not read), or `terraform show -json` of a plan
        /// or state.
        #[arg(long, value_name = "PATH")]
        from_terraform: Option<PathBuf>,
        /// The AWS account the Terraform applies to, when it does not say (a `.tf` never
        /// does): keys identities the inventory lacks, settles names in several accounts.
        #[arg(long, value_name = "ID", requires = "from_terraform")]
        account: Option<String>,
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
        Baseline::Approve {
            identity,
            from_terraform: Some(path),
            account,
            all: _,
        } => {
            let input = read_terraform(&path)?;
            let _writing = crate::output::write_lock(&mut engine, dir)?;
            let opts = TerraformApproval {
                identity: identity.as_deref(),
                account: account.as_deref(),
            };
            let report = engine.approve_terraform(&input, opts, &cli_actor(), now_ms())?;
            print_terraform(&report);
            if report.approved() < report.identities.len() {
                return Ok(Outcome::Broken);
            }
        }
        Baseline::Approve {
            identity,
            all,
            from_terraform: None,
            account: _,
        } => {
            if identity.is_none() && !all {
                anyhow::bail!("name an identity, or pass --all");
            }
            let _writing = crate::output::write_lock(&mut engine, dir)?;
            let n = engine.approve_baselines(identity.as_deref(), &cli_actor(), now_ms())?;
            println!("approved the current configuration of {n} identities as their baseline");
        }
        Baseline::List => {
            let mut t = table();
            t.set_header([
                "identity",
                "approved",
                "by",
                "source",
                "facts",
                "not governed",
            ]);
            for (id, b) in engine.baselines_approved()? {
                let facts: Vec<&str> = b.facts.keys().map(String::as_str).collect();
                let ungoverned: Vec<&str> = b.ungoverned.keys().map(String::as_str).collect();
                t.add_row([
                    id,
                    keyward_model::time::format(b.approved_at),
                    b.approved_by,
                    b.source,
                    facts.join(", "),
                    ungoverned.join(", "),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(Outcome::Clean)
}

/// The Terraform at `path`: the file itself, or a directory's `.tf` and `.tf.json` files
/// (not its subdirectories: each is another module).
fn read_terraform(path: &Path) -> anyhow::Result<TerraformInput> {
    let read = |p: &Path| {
        std::fs::read(p)
            .with_context(|| format!("reading `{}`", p.display()))
            .map(|bytes| (p.display().to_string(), bytes))
    };
    let files = if path.is_dir() {
        let mut names: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading `{}`", path.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                (n.ends_with(".tf") || n.ends_with(".tf.json")) && p.is_file()
            })
            .collect();
        names.sort();
        if names.is_empty() {
            anyhow::bail!("`{}` holds no `.tf` or `.tf.json` file", path.display());
        }
        names
            .iter()
            .map(|p| read(p))
            .collect::<anyhow::Result<_>>()?
    } else {
        vec![read(path)?]
    };
    Ok(TerraformInput {
        label: path.display().to_string(),
        files,
    })
}

fn print_terraform(r: &TerraformReport) {
    for i in &r.identities {
        let who = i.identity.as_deref().unwrap_or(&i.address);
        match &i.not_approved {
            Some(why) => println!(
                "not approved  {who}  ({} {})
  {why}",
                i.address, i.defined_at
            ),
            None => {
                let seen = if i.in_inventory {
                    ""
                } else {
                    ", not in the inventory yet"
                };
                println!("approved  {who}  ({} {}{seen})", i.address, i.defined_at);
                if i.governed.is_empty() {
                    println!("  governs: nothing (it is known to be defined in Terraform)");
                } else {
                    println!("  governs: {}", i.governed.join(", "));
                }
                for (fact, why) in &i.ungoverned {
                    println!("  not governed: {fact}: {why}");
                }
            }
        }
    }
    println!(
        "approved {} of {} identities defined in {} as their baseline",
        r.approved(),
        r.identities.len(),
        r.source
    );
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
            println!("{}  {}  (baseline: {})", d.identity, d.field, d.source);
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
                confirm_and_run(
                    &mut engine,
                    plan,
                    keyward_policy::Act::Execute,
                    false,
                    a.yes,
                    None
                )?,
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

//! `keyward disable <identity>` and `keyward enable <identity>`: one switch, every
//! platform. `disable` contains the identity and every identity linked to it (its IRSA
//! subject, its EKS user, the roles its OIDC subject becomes) in one plan and executes it;
//! `enable` undoes the identity's last executed plan.

use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_engine::respond::PlanAsk;
use keyward_respond::PlanStatus;
use keyward_respond::plan::K8sStrategy;

use crate::Outcome;
use crate::output::{cli_actor, now_ms};

#[derive(clap::Args)]
pub struct Args {
    /// Canonical id, ARN or unique name.
    pub identity: String,
    /// Do it without asking (without it: the plan is shown and you type its id).
    #[arg(long)]
    pub yes: bool,
    /// Only show the plan (stored as planned); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The kubeconfig context to act through.
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
}

pub fn disable(dir: &Path, a: Args) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    let plan = {
        let _writing = crate::output::write_lock(&mut engine, dir)?;
        engine.plan_response(&PlanAsk {
            everywhere: true,
            target: &a.identity,
            since: None,
            now: now_ms(),
            actor: &cli_actor(),
            protect: &[],
            k8s: K8sStrategy::Contain,
        })?
    };
    if a.dry_run {
        crate::cmd_respond::print_plan(&plan);
        println!(
            "\ndry run: nothing has changed (`keyward respond execute {}`)",
            plan.id
        );
        return Ok(Outcome::Clean);
    }
    crate::cmd_respond::confirm_and_run(&mut engine, plan, false, a.yes, a.kube_context.as_deref())
}

pub fn enable(dir: &Path, a: Args) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    let id = match engine.resolve(&a.identity) {
        keyward_engine::Resolve::Found(i) => i.id.clone(),
        _ => anyhow::bail!("no single identity matches `{}`", a.identity),
    };
    let plan = engine
        .latest_plan_for(&id, PlanStatus::Executed)?
        .or(engine.latest_plan_for(&id, PlanStatus::Failed)?)
        .ok_or_else(|| anyhow::anyhow!("{id} has no executed plan to undo"))?;
    if a.dry_run {
        crate::cmd_respond::print_plan(&plan);
        println!("\ndry run: `keyward enable` would undo plan {}", plan.id);
        return Ok(Outcome::Clean);
    }
    crate::cmd_respond::confirm_and_run(&mut engine, plan, true, a.yes, a.kube_context.as_deref())
}

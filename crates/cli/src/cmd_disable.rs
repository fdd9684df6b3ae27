//! `keyward disable <identity>` and `keyward enable <identity>`: one switch, every
//! platform. `disable` contains the identity and every identity linked to it (its IRSA
//! subject, its EKS user, the roles its OIDC subject becomes) in one plan and executes it;
//! with Vault/OpenBao configured, the same plan disables the Vault entities that stand for
//! it (by alias: an OIDC `sub`, `namespace/serviceaccount`, an IAM ARN; or by name) and
//! revokes its other tokens and leases (`keyward_respond::vault`). An identity Keyward knows
//! only through Vault (an alias name given as is) gets a Vault-only plan.
//! `enable` undoes the identity's last executed plan.

use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_engine::respond::PlanAsk;
use keyward_respond::PlanStatus;
use keyward_respond::plan::K8sStrategy;
use keyward_respond::vault::Found;
use keyward_store::AuditEntry;

use crate::Outcome;
use crate::output::{cli_actor, now_ms};

#[derive(clap::Args)]
pub struct Args {
    /// Canonical id, ARN or unique name; or a name Keyward knows only from Vault/OpenBao
    /// (an entity alias such as an OIDC `sub`, or an entity's name).
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
    let (vault, vault_note) = vault_found(&engine, &a.identity)?;
    let now = now_ms();
    let actor = cli_actor();
    let plan = {
        let _writing = crate::output::write_lock(&mut engine, dir)?;
        let planned = engine.plan_response(&PlanAsk {
            everywhere: true,
            target: &a.identity,
            since: None,
            now,
            actor: &actor,
            protect: &[],
            k8s: K8sStrategy::Contain,
        });
        let (mut plan, detail) = match planned {
            Ok(mut plan) => {
                keyward_respond::vault::extend_plan(&mut plan, &vault);
                (plan, "with its Vault steps")
            }
            Err(e) if !vault.is_empty() => {
                let mut plan =
                    keyward_respond::vault::plan_disable(&a.identity, &vault, now, &actor);
                plan.notes
                    .push(format!("no plan for the other platforms: {e}"));
                (plan, "Vault only")
            }
            Err(e) => {
                if let Some(n) = &vault_note {
                    eprintln!("note: {n}");
                }
                return Err(e.into());
            }
        };
        plan.notes.extend(vault_note);
        engine.save_plan(
            &plan,
            AuditEntry {
                at: now,
                actor: actor.clone(),
                action: "respond.plan".into(),
                target: Some(plan.id.clone()),
                detail: Some(format!(
                    "disable {}: {} steps ({detail})",
                    plan.identity,
                    plan.steps.len()
                )),
                before: None,
                after: None,
            },
        )?;
        plan
    };
    if a.dry_run {
        crate::cmd_respond::print_plan(&plan);
        println!(
            "\ndry run: nothing has changed (`keyward respond execute {}`)",
            plan.id
        );
        return Ok(Outcome::Clean);
    }
    crate::cmd_respond::confirm_and_run(
        &mut engine,
        plan,
        keyward_policy::Act::Execute,
        false,
        a.yes,
        a.kube_context.as_deref(),
    )
}

pub fn enable(dir: &Path, a: Args) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    let id = match engine.resolve(&a.identity) {
        keyward_engine::Resolve::Found(i) => i.id.clone(),
        // A Vault-only plan is stored under the name it was disabled by.
        _ if engine
            .latest_plan_for(&a.identity, PlanStatus::Executed)?
            .or(engine.latest_plan_for(&a.identity, PlanStatus::Failed)?)
            .is_some() =>
        {
            a.identity.clone()
        }
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
    crate::cmd_respond::confirm_and_run(
        &mut engine,
        plan,
        keyward_policy::Act::Execute,
        true,
        a.yes,
        a.kube_context.as_deref(),
    )
}

/// What stands for the identity in Vault/OpenBao (empty without a Vault connector), and a
/// note when Vault was not searched. The identity's names, and its linked identities', are
/// the candidates; one Keyward does not know is looked for as given (an alias name).
fn vault_found(engine: &Engine, target: &str) -> anyhow::Result<(Found, Option<String>)> {
    let mut candidates = match engine.resolve(target) {
        keyward_engine::Resolve::Found(i) => {
            let mut c = keyward_respond::vault::candidates(i);
            for link in &i.links {
                if let Some(l) = engine.inventory().get(link) {
                    c.extend(keyward_respond::vault::candidates(l));
                }
            }
            c
        }
        keyward_engine::Resolve::NotFound | keyward_engine::Resolve::Ambiguous(_) => {
            vec![target.to_owned()]
        }
    };
    candidates.sort();
    candidates.dedup();
    search_vault(&candidates)
}

#[cfg(feature = "vault")]
fn search_vault(candidates: &[String]) -> anyhow::Result<(Found, Option<String>)> {
    let v = match keyward_respond::vault::VaultConnector::from_env() {
        Ok(v) => v,
        Err(e) => {
            return Ok((
                Found::default(),
                Some(format!("Vault/OpenBao not searched: {e}")),
            ));
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Vault being down must not stop the other platforms' containment: the plan says so.
    Ok(match rt.block_on(v.find(candidates)) {
        Ok(found) => (found, None),
        Err(e) => (
            Found::default(),
            Some(format!("Vault/OpenBao not searched: {e}")),
        ),
    })
}

#[cfg(not(feature = "vault"))]
fn search_vault(_: &[String]) -> anyhow::Result<(Found, Option<String>)> {
    Ok((
        Found::default(),
        Some(
            "Vault/OpenBao not searched: this keyward was built without the `vault` feature".into(),
        ),
    ))
}

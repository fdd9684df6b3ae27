//! `keyward lifecycle plan|run`: retirement. Identities unused for N days (where a log or
//! last-use record covers the window) or whose workload is known gone are disabled in ways
//! `keyward respond undo` reverses; once the grace period after a retirement (or a
//! rotation) has passed and it still stands, what it disabled is deleted. Defaults come from
//! `keyward.yaml` ([`crate::config`]); flags win.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_engine::retire::{Deletions, DueDeletion, RetireAsk, Retirement, Skipped};
use keyward_respond::Plan;

use keyward_policy::Act;

use crate::Outcome;
use crate::output::{cli_actor, now_ms, table};

#[derive(clap::Subcommand)]
pub enum Command {
    /// What would be retired and why, and what is due for deletion (grace period over),
    /// with each plan's steps. Stores and changes nothing.
    Plan(Args),
    /// Store the retirement and deletion plans (audited); with `--execute`, run them through
    /// the AWS and Kubernetes APIs.
    Run {
        #[command(flatten)]
        args: Args,
        /// Disable the identities now (each plan: snapshot, steps verified, undo-able) and
        /// delete what is past its grace period (snapshot first; re-checked live, refused
        /// when in use again; cannot be undone).
        #[arg(long)]
        execute: bool,
        /// With `--execute`: do not ask.
        #[arg(long)]
        yes: bool,
        /// The kubeconfig context to act through.
        #[arg(long, value_name = "CONTEXT")]
        kube_context: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct Args {
    /// Unused for at least this many days [config lifecycle.unused_days; default 30].
    #[arg(long)]
    pub unused_days: Option<i64>,
    /// Days between disabling and deleting [config lifecycle.grace_days; default 30].
    #[arg(long)]
    pub grace_days: Option<i64>,
    /// Judge as of this instant (RFC 3339; default now).
    #[arg(long, value_parser = crate::output::parse_instant)]
    pub as_of: Option<i64>,
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

pub fn run(dir: &Path, config: &crate::config::Config, cmd: Command) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    let (args, store, execute, yes, kube_context) = match cmd {
        Command::Plan(a) => (a, false, false, false, None),
        Command::Run {
            args,
            execute,
            yes,
            kube_context,
        } => (args, true, execute, yes, kube_context),
    };
    let actor = cli_actor();
    let policy = &config.lifecycle;
    let ask = RetireAsk {
        unused_days: args.unused_days.or(policy.unused_days).unwrap_or(30).max(1),
        grace_days: args.grace_days.or(policy.grace_days).unwrap_or(30).max(0),
        workload_gone: policy.workload_gone.unwrap_or(true),
        exempt: &policy.exempt,
        now: args.as_of.unwrap_or_else(now_ms),
        actor: &actor,
        store,
    };
    let (
        (due, skipped),
        Deletions {
            due: deletions,
            waiting,
        },
    ) = if store {
        let _writing = crate::output::write_lock(&mut engine, dir)?;
        (
            engine.retirements(&ask)?,
            engine.deletions_due(ask.now, &actor, true)?,
        )
    } else {
        (
            engine.retirements(&ask)?,
            engine.deletions_due(ask.now, &actor, false)?,
        )
    };
    show(&due, &skipped, &deletions, &waiting, &args.format)?;
    if args.format != "json" {
        println!(
            "(unused ≥ {} days, grace {} days: {})",
            ask.unused_days,
            ask.grace_days,
            config.source()
        );
    }
    let count = due.len() + deletions.len();
    if !execute {
        if store && count > 0 {
            println!(
                "\n{count} plans stored (planned): run them with `keyward lifecycle run --execute` or one by one with `keyward respond execute PLAN`"
            );
        }
        return Ok(Outcome::Clean);
    }
    if count == 0 {
        return Ok(Outcome::Clean);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "refusing to disable {} identities and delete {} without --yes (stdin is not a terminal)",
                due.len(),
                deletions.len()
            );
        }
        print!(
            "\nType `retire {}` to disable {} and delete {} on the live platforms: ",
            count,
            due.len(),
            deletions.len()
        );
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if line.trim() != format!("retire {count}") {
            println!("not confirmed: nothing changed (the plans stay stored as planned)");
            return Ok(Outcome::Clean);
        }
    }
    let mut failed = 0;
    let plans = due
        .into_iter()
        .map(|r| (r.plan, "disabled"))
        .chain(deletions.into_iter().map(|d| (d.plan, "deleted")));
    for (mut plan, done) in plans {
        // Each identity is decided on its own: a policy may keep some out of reach.
        if let Err(e) = crate::policy::require_on(&mut engine, Act::Retire, &plan.identity, |_| {})
        {
            failed += 1;
            eprintln!("plan {}: {e:#}", plan.id);
            continue;
        }
        let result = crate::cmd_respond::run_through_connectors(
            &mut engine,
            &mut plan,
            false,
            kube_context.as_deref(),
        )?;
        crate::cmd_respond::print_results(&plan, false);
        match result {
            Ok(()) => println!("plan {} executed: {} {done}", plan.id, plan.identity),
            Err(e) => {
                failed += 1;
                eprintln!("plan {}: {e}", plan.id);
            }
        }
    }
    Ok(if failed > 0 {
        Outcome::Broken
    } else {
        Outcome::Clean
    })
}

fn show(
    due: &[Retirement],
    skipped: &[Skipped],
    deletions: &[DueDeletion],
    waiting: &[(String, i64)],
    format: &str,
) -> anyhow::Result<()> {
    if format == "json" {
        let items: Vec<serde_json::Value> = due
            .iter()
            .map(|r| serde_json::json!({"reason": r.reason, "plan": r.plan}))
            .collect();
        let skipped: Vec<serde_json::Value> = skipped
            .iter()
            .map(|s| serde_json::json!({"identity": s.identity, "why": s.why}))
            .collect();
        let delete: Vec<serde_json::Value> = deletions
            .iter()
            .map(|d| serde_json::json!({"after": d.after, "plan": d.plan}))
            .collect();
        let waiting: Vec<serde_json::Value> = waiting
            .iter()
            .map(|(plan, at)| {
                serde_json::json!({"plan": plan, "grace_ends": keyward_model::time::format(*at)})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "retire": items,
                "skipped": skipped,
                "delete": delete,
                "grace_running": waiting,
            }))?
        );
        return Ok(());
    }
    let mut t = table();
    t.set_header(["identity", "kind", "why", "steps", "plan"]);
    for r in due {
        let steps: Vec<&str> = r.plan.steps.iter().map(|s| s.action.name()).collect();
        t.add_row([
            r.plan.identity.clone(),
            r.plan.identity_kind.clone(),
            r.reason.clone(),
            steps.join(", "),
            r.plan.id.clone(),
        ]);
    }
    println!("{t}");
    println!("{} to retire", due.len());
    for s in skipped {
        println!("  not planned: {}: {}", s.identity, s.why);
    }
    if !deletions.is_empty() {
        let mut t = table();
        t.set_header(["identity", "deletes", "after plan", "plan"]);
        for d in deletions {
            t.add_row([
                d.plan.identity.clone(),
                targets(&d.plan),
                d.after.clone(),
                d.plan.id.clone(),
            ]);
        }
        println!("\n{t}");
    }
    println!(
        "{} to delete (grace period over); {} grace periods running",
        deletions.len(),
        waiting.len()
    );
    Ok(())
}

fn targets(p: &Plan) -> String {
    let t: Vec<String> = p.steps.iter().map(|s| s.target.clone()).collect();
    t.join(", ")
}

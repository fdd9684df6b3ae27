//! `keyward lifecycle plan|run`: retirement. Identities unused for N days (where a log or
//! last-use record covers the window) or whose workload is known gone are disabled in ways
//! `keyward respond undo` reverses; deletion is proposed for after a grace period.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_engine::retire::{RetireAsk, Retirement, Skipped};

use crate::Outcome;
use crate::output::{cli_actor, now_ms, table};

#[derive(clap::Subcommand)]
pub enum Command {
    /// What would be retired and why, with each plan's steps. Stores and changes nothing.
    Plan(Args),
    /// Store the retirement plans (audited); with `--execute`, run them through the AWS and
    /// Kubernetes APIs.
    Run {
        #[command(flatten)]
        args: Args,
        /// Disable the identities now (each plan: snapshot, steps verified, undo-able).
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
    /// Unused for at least this many days.
    #[arg(long, default_value_t = 30)]
    pub unused_days: i64,
    /// Days between disabling and the deletion each plan proposes.
    #[arg(long, default_value_t = 30)]
    pub grace_days: i64,
    /// Judge as of this instant (RFC 3339; default now).
    #[arg(long, value_parser = crate::output::parse_instant)]
    pub as_of: Option<i64>,
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

pub fn run(dir: &Path, cmd: Command) -> anyhow::Result<Outcome> {
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
    let ask = RetireAsk {
        unused_days: args.unused_days.max(1),
        grace_days: args.grace_days.max(0),
        now: args.as_of.unwrap_or_else(now_ms),
        actor: &actor,
        store,
    };
    let (due, skipped) = if store {
        let _writing = crate::output::write_lock(&mut engine, dir)?;
        engine.retirements(&ask)?
    } else {
        engine.retirements(&ask)?
    };
    show(&due, &skipped, &args.format)?;
    if !execute {
        if store && !due.is_empty() {
            println!(
                "\n{} plans stored (planned): run them with `keyward lifecycle run --execute` or one by one with `keyward respond execute PLAN`",
                due.len()
            );
        }
        return Ok(Outcome::Clean);
    }
    if due.is_empty() {
        return Ok(Outcome::Clean);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "refusing to disable {} identities without --yes (stdin is not a terminal)",
                due.len()
            );
        }
        print!(
            "\nType `retire {}` to disable them on the live platforms: ",
            due.len()
        );
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if line.trim() != format!("retire {}", due.len()) {
            println!("not confirmed: nothing changed (the plans stay stored as planned)");
            return Ok(Outcome::Clean);
        }
    }
    let mut failed = 0;
    for r in due {
        let mut plan = r.plan;
        let result = crate::cmd_respond::run_through_connectors(
            &mut engine,
            &mut plan,
            false,
            kube_context.as_deref(),
        )?;
        crate::cmd_respond::print_results(&plan, false);
        match result {
            Ok(()) => println!("plan {} executed: {} disabled", plan.id, plan.identity),
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

fn show(due: &[Retirement], skipped: &[Skipped], format: &str) -> anyhow::Result<()> {
    if format == "json" {
        let items: Vec<serde_json::Value> = due
            .iter()
            .map(|r| serde_json::json!({"reason": r.reason, "plan": r.plan}))
            .collect();
        let skipped: Vec<serde_json::Value> = skipped
            .iter()
            .map(|s| serde_json::json!({"identity": s.identity, "why": s.why}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"retire": items, "skipped": skipped})
            )?
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
    Ok(())
}

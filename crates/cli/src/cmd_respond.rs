//! `keyward respond plan|execute|undo|list|show|evidence`: containment plans for a
//! compromised identity. Making and showing a plan changes nothing on any platform;
//! `execute` and `undo` do, through the connectors, after a confirmation (`--yes`).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_engine::respond::PlanAsk;
use keyward_policy::Act;
use keyward_respond::execute::{Connectors, ExecuteError};
use keyward_respond::plan::K8sStrategy;
use keyward_respond::{Plan, PlanStatus};

use crate::Outcome;
use crate::output::{cli_actor, now_ms, table};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Make a containment plan for an identity or a finding's identity, store it and show
    /// it. Changes nothing on any platform (a dry run).
    Plan(PlanArgs),
    /// Run a stored plan through the AWS and Kubernetes APIs: forensic snapshot first,
    /// then each step, its effect verified; stops at the first failure.
    Execute(RunArgs),
    /// Undo an executed (or failed) plan's steps, last first.
    Undo(RunArgs),
    /// The stored plans, newest first.
    List {
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// One stored plan with each step's result.
    Show {
        plan: String,
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Write a plan's forensic evidence (the platform state before the first change, the
    /// identity's recent events and graph neighbourhood) and the plan into DIR.
    Evidence {
        plan: String,
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct PlanArgs {
    /// A finding id (`kwf-…`), or an identity: canonical id, ARN or unique name.
    pub target: String,
    /// Also revoke what the identity created or changed at or after this instant (RFC
    /// 3339). Defaults to the finding's first event when a finding is given.
    #[arg(long, value_parser = crate::output::parse_instant)]
    pub since: Option<i64>,
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Never contain identities matching this glob (beyond the built-in break-glass and
    /// Keyward patterns and the stored `respond.protected` setting). Repeatable.
    #[arg(long, value_name = "GLOB")]
    pub protect: Vec<String>,
    /// Contain a Kubernetes service account the blue-green way: a new service account,
    /// deployments moved to it, the old one deleted.
    #[arg(long)]
    pub blue_green: bool,
}

#[derive(clap::Args)]
pub struct RunArgs {
    pub plan: String,
    /// Do it without asking. Without it, the plan is shown and you type its id to go on.
    #[arg(long)]
    pub yes: bool,
    /// The kubeconfig context to act through (default: the current context).
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
}

pub fn run(dir: &Path, cmd: Command) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    match cmd {
        Command::Plan(a) => {
            let plan = {
                let _writing = crate::output::write_lock(&mut engine, dir)?;
                engine.plan_response(&PlanAsk {
                    everywhere: false,
                    target: &a.target,
                    since: a.since,
                    now: now_ms(),
                    actor: &cli_actor(),
                    protect: &a.protect,
                    k8s: if a.blue_green {
                        K8sStrategy::BlueGreen
                    } else {
                        K8sStrategy::Contain
                    },
                })?
            };
            if a.format == "json" {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print_plan(&plan);
                println!(
                    "\ndry run: nothing has changed. Execute it with `keyward respond execute {}`",
                    plan.id
                );
            }
        }
        Command::Execute(a) => return run_plan(&mut engine, &a, false),
        Command::Undo(a) => return run_plan(&mut engine, &a, true),
        Command::List { format } => {
            let plans = engine.response_plans(1_000)?;
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&plans)?);
            } else {
                let mut t = table();
                t.set_header(["plan", "created", "status", "identity", "steps", "finding"]);
                for p in &plans {
                    t.add_row([
                        p.id.clone(),
                        keyward_model::time::format(p.created_at),
                        p.status.as_str().to_owned(),
                        p.identity.clone(),
                        p.steps.len().to_string(),
                        p.finding.clone().unwrap_or_default(),
                    ]);
                }
                println!("{t}");
            }
        }
        Command::Show { plan, format } => {
            let p = stored(&engine, &plan)?;
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                print_plan(&p);
            }
        }
        Command::Evidence { plan, output } => {
            let p = stored(&engine, &plan)?;
            let ev = engine.response_evidence(&p.id)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "plan {} has no evidence yet: it is taken when it is executed",
                    p.id
                )
            })?;
            std::fs::create_dir_all(&output)
                .with_context(|| format!("creating `{}`", output.display()))?;
            let files = crate::output::write_evidence(&output, &p, &ev)?;
            println!(
                "wrote {files} files to `{}` (evidence taken {}, blake3 {})",
                output.display(),
                keyward_model::time::format(ev.taken_at),
                ev.hash
            );
        }
    }
    Ok(Outcome::Clean)
}

fn stored(engine: &Engine, id: &str) -> anyhow::Result<Plan> {
    engine
        .response_plan(id)?
        .ok_or_else(|| anyhow::anyhow!("no plan `{id}` (see `keyward respond list`)"))
}

/// Executes or undoes a stored plan after confirmation.
fn run_plan(engine: &mut Engine, a: &RunArgs, undo: bool) -> anyhow::Result<Outcome> {
    let plan = stored(engine, &a.plan)?;
    if plan.steps.iter().any(|s| s.action.grants_access()) {
        anyhow::bail!(
            "plan {} applies a time-bound access grant: use `keyward access apply|revoke` (run bare, the access would never expire)",
            plan.id
        );
    }
    confirm_and_run(
        engine,
        plan,
        Act::Execute,
        undo,
        a.yes,
        a.kube_context.as_deref(),
    )
}

/// Asks for the plan's id (unless `yes`), then executes or undoes it and prints each step.
pub(crate) fn confirm_and_run(
    engine: &mut Engine,
    mut plan: Plan,
    act: Act,
    undo: bool,
    yes: bool,
    kube_context: Option<&str>,
) -> anyhow::Result<Outcome> {
    let verb = if undo { "undo" } else { "execute" };
    let ready = if undo {
        matches!(
            plan.status,
            PlanStatus::Executed | PlanStatus::Failed | PlanStatus::UndoFailed
        )
    } else {
        matches!(plan.status, PlanStatus::Planned | PlanStatus::Failed)
    };
    if !ready {
        anyhow::bail!(
            "plan {} is {}: nothing to {verb}",
            plan.id,
            plan.status.as_str()
        );
    }
    crate::policy::require_on(engine, act, &plan.identity, |_| {})?;
    if !yes {
        print_plan(&plan);
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "refusing to {verb} plan {} without --yes (stdin is not a terminal)",
                plan.id
            );
        }
        print!("\nType the plan id to {verb} it against the live platforms: ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if line.trim() != plan.id {
            println!("not confirmed: nothing changed");
            return Ok(Outcome::Clean);
        }
    }
    let result = run_through_connectors(engine, &mut plan, undo, kube_context)?;
    print_results(&plan, undo);
    match result {
        Ok(()) => {
            println!("plan {} {}", plan.id, plan.status.as_str());
            Ok(Outcome::Clean)
        }
        Err(e @ ExecuteError::Step { .. }) => {
            eprintln!("error: {e}");
            Ok(Outcome::Broken)
        }
        Err(e) => Err(e.into()),
    }
}

/// Executes (or undoes) `plan` through the connectors from the environment, recording
/// every step through the engine.
pub(crate) fn run_through_connectors(
    engine: &mut Engine,
    plan: &mut Plan,
    undo: bool,
    kube_context: Option<&str>,
) -> anyhow::Result<Result<(), ExecuteError>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let connectors = rt.block_on(Connectors::from_env(kube_context));
    Ok(crate::relay::run_plan(
        engine,
        &rt,
        &connectors,
        plan,
        &cli_actor(),
        undo,
    ))
}

pub(crate) fn print_plan(p: &Plan) {
    println!(
        "plan {}  {}  for {} ({})",
        p.id,
        p.status.as_str(),
        p.identity,
        p.identity_kind
    );
    if let Some(f) = &p.finding {
        println!("  finding: {f}");
    }
    if let Some(s) = p.since {
        println!(
            "  revokes what it created or changed since {}",
            keyward_model::time::format(s)
        );
    }
    println!(
        "  made {} by {}",
        keyward_model::time::format(p.created_at),
        p.created_by
    );
    if p.workloads.is_empty() {
        println!("  workloads using it: none known");
    } else {
        println!(
            "  workloads using it (they lose access): {}",
            p.workloads.join(", ")
        );
    }
    for n in &p.notes {
        println!("  note: {n}");
    }
    if let Some(h) = &p.evidence {
        println!(
            "  evidence: blake3 {h} (`keyward respond evidence {} -o DIR`)",
            p.id
        );
    }
    for s in &p.steps {
        println!("\n  {}. {} {}  [{}]", s.n, s.action.name(), s.target, s.why);
        println!("     precondition: {}", s.precondition);
        for c in &s.command {
            println!("     $ {c}");
        }
        for c in &s.undo {
            println!("     undo: {c}");
        }
        if let Some(tf) = &s.terraform {
            println!("     terraform:");
            for l in tf.lines() {
                println!("       {l}");
            }
        }
        for (what, r) in [("result", &s.result), ("undo", &s.undo_result)] {
            if let Some(r) = r {
                println!(
                    "     {what}: {} {} ({})",
                    if r.ok { "ok" } else { "FAILED" },
                    r.message,
                    keyward_model::time::format(r.at)
                );
                if let Some(v) = &r.verified {
                    println!("       verified: {}", v.observed);
                }
            }
        }
    }
}

pub(crate) fn print_results(p: &Plan, undo: bool) {
    for s in &p.steps {
        let r = if undo { &s.undo_result } else { &s.result };
        let (mark, msg, seen) = match r {
            Some(r) => (
                if r.ok { "ok" } else { "FAILED" },
                r.message.as_str(),
                r.verified
                    .as_ref()
                    .map(|v| v.observed.as_str())
                    .unwrap_or(""),
            ),
            None => ("-", "not run", ""),
        };
        println!(
            "{:>3}. {:<6} {} {}: {msg} {seen}",
            s.n,
            mark,
            s.action.name(),
            s.target
        );
    }
}

/// Reads a response policy file (`--response-policy`).
pub fn load_policy(path: &Path) -> anyhow::Result<keyward_respond::policy::PolicyFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the response policy `{}`", path.display()))?;
    Ok(keyward_respond::policy::PolicyFile::parse(
        &path.display().to_string(),
        &text,
    )?)
}

/// Automatic response for `keyward watch`: plans for the findings a policy matches, and
/// the `auto` ones executed at once through connectors made on first use.
pub struct AutoResponder {
    policy: keyward_respond::policy::PolicyFile,
    rt: tokio::runtime::Runtime,
    connectors: Option<Connectors>,
}

impl AutoResponder {
    pub fn new(policy: keyward_respond::policy::PolicyFile) -> anyhow::Result<Self> {
        Ok(AutoResponder {
            policy,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?,
            connectors: None,
        })
    }

    /// Plans (and for `auto`, executes) the response to `findings`; says what it did on
    /// standard error.
    pub fn on_findings(
        &mut self,
        engine: &mut Engine,
        findings: &[keyward_detect::Finding],
    ) -> anyhow::Result<()> {
        use keyward_respond::policy::Mode;
        for auto in engine.auto_plans(&self.policy, findings, now_ms())? {
            let mut plan = auto.plan;
            if auto.mode != Mode::Auto {
                eprintln!(
                    "response plan {} for {} (policy {}): awaiting approval — `keyward respond execute {}`",
                    plan.id, plan.identity, auto.policy, plan.id
                );
                continue;
            }
            let connectors = match self.connectors.take() {
                Some(c) => c,
                None => self.rt.block_on(Connectors::from_env(None)),
            };
            let actor = format!("auto:{}", auto.policy);
            let result =
                crate::relay::run_plan(engine, &self.rt, &connectors, &mut plan, &actor, false);
            self.connectors = Some(connectors);
            match result {
                Ok(()) => eprintln!(
                    "response plan {} for {} (policy {}): executed, {} steps verified",
                    plan.id,
                    plan.identity,
                    auto.policy,
                    plan.steps.len()
                ),
                Err(e) => eprintln!(
                    "response plan {} for {} (policy {}): {e}",
                    plan.id, plan.identity, auto.policy
                ),
            }
        }
        Ok(())
    }
}

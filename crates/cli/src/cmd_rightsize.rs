//! `keyward rightsize IDENTITY [--days N]`: least privilege from observed use. The actions
//! an IAM role or user called over the window (CloudTrail Keyward stored), what its policies
//! grant but it never used, and the least-privilege policy that would do — as a table,
//! JSON or Terraform. `--execute` puts the proposal as the inline policy
//! `KeywardRightsized` and removes what it replaces, as a stored, audited response plan
//! (`keyward respond undo PLAN` puts everything back); without it, a dry run.

use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_engine::rightsize::Rightsized;
use keyward_respond::action::IamPrincipal;

use crate::Outcome;
use crate::cmd_respond::{confirm_and_run, print_plan};
use crate::output::{cli_actor, now_ms};

#[derive(clap::Args)]
pub struct Args {
    /// The IAM role or user: canonical id, ARN or unique name.
    pub identity: String,
    /// The window of observed use, in days (ending at the newest stored event).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    #[arg(long, default_value = "table", value_parser = ["table", "json", "terraform"])]
    pub format: String,
    /// Store the plan that applies the proposal and run it through the AWS connector
    /// (after confirmation, or --yes).
    #[arg(long)]
    pub execute: bool,
    /// Do not ask before executing.
    #[arg(long, requires = "execute")]
    pub yes: bool,
    /// More identities never to touch (globs, on top of the built-in and stored ones).
    #[arg(long, value_name = "GLOB")]
    pub protect: Vec<String>,
}

pub fn run(dir: &Path, a: Args) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    let r = engine
        .rightsize(&a.identity, a.days)
        .with_context(|| format!("rightsize `{}`", a.identity))?;
    match a.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&r.report)?),
        "terraform" => {
            let role = matches!(r.principal, IamPrincipal::Role(_));
            print!(
                "{}",
                keyward_govern::rightsize::render::terraform(&r.report, role, r.principal.name())
            );
        }
        _ => print_table(&r),
    }
    if !a.execute {
        return Ok(Outcome::Clean);
    }
    let actor = cli_actor();
    let plan = {
        let _writing = crate::output::write_lock(&mut engine, dir)?;
        engine.save_rightsize_plan(&r, &a.protect, &actor, now_ms())?
    };
    if a.format == "table" {
        print_plan(&plan);
    }
    eprintln!(
        "plan {} stored; undo with `keyward respond undo {}`",
        plan.id, plan.id
    );
    confirm_and_run(
        &mut engine,
        plan,
        keyward_policy::Act::Execute,
        false,
        a.yes,
        None,
    )
}

fn print_table(r: &Rightsized) {
    let rep = &r.report;
    println!(
        "{} — {} calls over {} days ({} to {})",
        rep.identity,
        rep.calls,
        rep.days,
        keyward_model::time::format(rep.from),
        keyward_model::time::format(rep.to)
    );
    for (reason, n) in &rep.skipped {
        println!("  not counted: {n} calls ({reason})");
    }
    println!("\nused:");
    for (service, actions) in &rep.used {
        for u in actions {
            let seen = if u.narrowed { " (as called)" } else { "" };
            println!(
                "  {service:<16} {:<40} {:>6} calls  on {}{seen}",
                u.action,
                u.calls,
                u.resources.join(", ")
            );
        }
    }
    if !rep.kept.is_empty() {
        println!("\nkept (use unknown):");
        for k in &rep.kept {
            println!("  {:<40} {}", k.action, k.why);
        }
    }
    println!("\ngranted but unused:");
    if rep.unused.is_empty() {
        println!("  nothing");
    }
    for u in &rep.unused {
        println!("  {:<40} {}", u.action, u.source);
    }
    if !rep.unused_services.is_empty() {
        println!(
            "  services never called: {}",
            rep.unused_services.join(", ")
        );
    }
    println!(
        "\nproposal ({} actions for {} granted patterns; replaces {}):",
        rep.proposed_actions,
        rep.granted_patterns,
        if rep.replaces.is_empty() {
            "nothing".to_owned()
        } else {
            rep.replaces.join(", ")
        }
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&rep.proposal).unwrap_or_default()
    );
    for n in &rep.notes {
        println!("note: {n}");
    }
    for b in &rep.blockers {
        println!("not applicable with --execute: {b}");
    }
}

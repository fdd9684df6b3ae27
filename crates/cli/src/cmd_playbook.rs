//! `keyward playbook list | validate FILE… | run NAME | status [RUN] | approve RUN | tick`:
//! declarative playbooks (built-ins plus `--playbooks DIR`, default `<data dir>/playbooks`)
//! and their runs. Phases of a command that moves runs: load the playbooks → take the
//! playbook lock (one process moves runs at a time) → start / approve / tick through the
//! engine with [`CliEffects`] (the connectors from the environment, webhooks over HTTPS) →
//! print the runs. Dry runs unless `--execute`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_engine::playbook::Effects;
use keyward_engine::playbook::triggers::{Tick, TickReport};
use keyward_model::time::Millis;
use keyward_respond::execute::{Connectors, ExecuteError};
use keyward_respond::playbook::run::{Run, TriggerFacts};
use keyward_respond::playbook::{BUILTIN, Playbook};
use keyward_respond::{Plan, PlanStatus};

use keyward_policy::Act;

use crate::Outcome;
use crate::output::{cli_actor, now_ms, parse_instant, table, ts};

#[derive(clap::Args, Clone)]
pub struct Where {
    /// Directory of playbooks (`*.yaml`, `*.yml`), beside the built-in ones (a file's
    /// playbook replaces a built-in of the same name). Default: `<data dir>/playbooks`.
    #[arg(long, value_name = "DIR", env = "KEYWARD_PLAYBOOKS")]
    pub playbooks: Option<PathBuf>,
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// The playbooks loaded: built-in and from the directory.
    List {
        #[command(flatten)]
        at: Where,
    },
    /// Check playbook files (exit 1 naming the file and line of the first error in each).
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Start a run of a playbook by hand and take it as far as it goes.
    Run {
        name: String,
        /// The run's subject: an identity (id, ARN, name) or one a Terraform resource defines.
        #[arg(long)]
        identity: Option<String>,
        /// Execute its plans and send its notifications (after confirmation, unless --yes).
        /// Without it: a dry run — plans are stored, nothing changes.
        #[arg(long)]
        execute: bool,
        #[arg(long)]
        yes: bool,
        /// The time to act as (RFC 3339): drives waits and schedules in tests and demos.
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
        #[command(flatten)]
        at: Where,
    },
    /// Runs (newest first), or one run's steps.
    Status {
        run: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        at: Where,
    },
    /// Approve a run's pending approval step (not as the one who started it) and go on.
    Approve {
        run: String,
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
        #[command(flatten)]
        at: Where,
    },
    /// Evaluate every trigger once (schedules, findings, events, inventory) and resume the
    /// runs that are due.
    Tick {
        /// Runs this tick starts execute their plans (else: dry runs).
        #[arg(long)]
        execute: bool,
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
        #[command(flatten)]
        at: Where,
    },
}

pub fn run(dir: &Path, config: &crate::config::Config, cmd: Command) -> anyhow::Result<Outcome> {
    match cmd {
        Command::Validate { files } => validate(&files),
        Command::List { at } => {
            let books = load(dir, &at)?;
            list(&books, &at)
        }
        Command::Status { run, limit, at } => {
            let engine = open(dir)?;
            match run {
                Some(id) => {
                    let r = engine
                        .playbook_run(&id)?
                        .with_context(|| format!("no playbook run `{id}`"))?;
                    print_runs(std::slice::from_ref(&r), &at, true)
                }
                None => print_runs(&engine.playbook_runs(limit)?, &at, false),
            }
        }
        Command::Run {
            name,
            identity,
            execute,
            yes,
            now,
            at,
        } => {
            let books = load(dir, &at)?;
            let book = books
                .iter()
                .find(|b| b.name == name)
                .with_context(|| format!("no playbook `{name}` (see `keyward playbook list`)"))?;
            let now = instant(now.as_deref())?;
            let mut engine = open(dir)?;
            let subject = match &identity {
                Some(q) => Some(
                    engine
                        .playbook_subject(q)?
                        .with_context(|| format!("no identity or Terraform resource `{q}`"))?,
                ),
                None => None,
            };
            if let Some(s) = &subject
                && let Err(why) = book.conditions_hold(s, now)
            {
                anyhow::bail!("`{}` does not meet the conditions of {name}: {why}", s.id);
            }
            if execute {
                let on = subject.as_ref().map(|s| s.id.clone());
                match &on {
                    Some(id) => crate::policy::require_on(&mut engine, Act::Execute, id, |_| {})?,
                    None => crate::policy::require(
                        &mut engine,
                        Act::Execute,
                        &keyward_policy::Resource::Estate,
                        &crate::policy::here(),
                    )?,
                };
            }
            if execute && !yes && !confirm(&name, identity.as_deref())? {
                println!("not confirmed: nothing started");
                return Ok(Outcome::Clean);
            }
            let _lock = playbook_lock(&engine)?;
            let actor = cli_actor();
            let facts = TriggerFacts {
                kind: "manual".into(),
                key: format!("manual\n{now}\n{actor}\n{}", now_ms()),
                actor: Some(actor.clone()),
                time: now,
                ..TriggerFacts::default()
            };
            let run = engine
                .playbook_start(book, subject, facts, execute, &actor, now)?
                .context("a run with this id exists already")?;
            let mut fx = CliEffects::new(config.clone())?;
            let run = engine.playbook_advance(&run.id, &mut fx, &actor, now)?;
            finish(&[run], &at)
        }
        Command::Approve { run, now, at } => {
            let now = instant(now.as_deref())?;
            let mut engine = open(dir)?;
            let _lock = playbook_lock(&engine)?;
            let actor = cli_actor();
            let started = engine
                .playbook_run(&run)?
                .with_context(|| format!("no playbook run `{run}`"))?;
            let on = started.subject.as_ref().map(|s| s.id.clone());
            let requester = started.started_by.clone();
            let ask = |s: &mut keyward_policy::Situation| s.requester = Some(requester);
            match &on {
                Some(id) => crate::policy::require_on(&mut engine, Act::Approve, id, ask)?,
                None => {
                    let mut s = crate::policy::here();
                    ask(&mut s);
                    crate::policy::require(
                        &mut engine,
                        Act::Approve,
                        &keyward_policy::Resource::Estate,
                        &s,
                    )?
                }
            };
            engine.playbook_approve(&run, &actor, now)?;
            let mut fx = CliEffects::new(config.clone())?;
            let run = engine.playbook_advance(&run, &mut fx, &actor, now)?;
            finish(&[run], &at)
        }
        Command::Tick { execute, now, at } => {
            let books = load(dir, &at)?;
            let now = instant(now.as_deref())?;
            let mut engine = open(dir)?;
            let _lock = playbook_lock(&engine)?;
            let mut fx = CliEffects::new(config.clone())?;
            let actor = cli_actor();
            let report = engine.playbook_tick(
                &books,
                &mut fx,
                &Tick {
                    now,
                    execute,
                    actor: &actor,
                },
            )?;
            print_tick(&report, &at)
        }
    }
}

fn open(dir: &Path) -> anyhow::Result<Engine> {
    Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))
}

fn instant(s: Option<&str>) -> anyhow::Result<Millis> {
    s.map_or_else(|| Ok(now_ms()), parse_instant)
}

/// One process moves playbook runs at a time, so a step is never carried out twice by a
/// `tick` and a `serve` at once: the store's claim `playbooks` (a lock file under the data
/// directory's `claims/`; on PostgreSQL an advisory lock, so across machines sharing the
/// store). Waits for it; released when dropped.
pub(crate) fn playbook_lock(engine: &Engine) -> anyhow::Result<keyward_engine::WriteLock> {
    let mut told = false;
    loop {
        if let Some(claim) = engine.try_claim("playbooks")? {
            return Ok(claim);
        }
        if !told {
            eprintln!("waiting for another keyward process moving playbook runs…");
            told = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The built-in playbooks, then the directory's (replacing built-ins of the same name).
pub(crate) fn load(dir: &Path, at: &Where) -> anyhow::Result<Vec<Playbook>> {
    let folder = at
        .playbooks
        .clone()
        .unwrap_or_else(|| dir.join("playbooks"));
    load_from(&folder, at.playbooks.is_some())
}

pub(crate) fn load_from(folder: &Path, must_exist: bool) -> anyhow::Result<Vec<Playbook>> {
    let mut books = Vec::new();
    for (file, text) in BUILTIN {
        books.push(Playbook::parse(&format!("built-in {file}"), text)?);
    }
    let entries = match std::fs::read_dir(folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(books),
        Err(e) => {
            return Err(e).with_context(|| format!("reading `{}`", folder.display()));
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    let mut from_files: Vec<Playbook> = Vec::new();
    for p in paths {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading `{}`", p.display()))?;
        let book = Playbook::parse(&p.display().to_string(), &text)?;
        if from_files.iter().any(|b| b.name == book.name) {
            anyhow::bail!(
                "{}: a playbook named `{}` is already loaded from `{}`",
                p.display(),
                book.name,
                folder.display()
            );
        }
        from_files.push(book);
    }
    books.retain(|b| !from_files.iter().any(|f| f.name == b.name));
    books.extend(from_files);
    Ok(books)
}

fn validate(files: &[PathBuf]) -> anyhow::Result<Outcome> {
    let mut bad = 0;
    for f in files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading `{}`", f.display()))?;
        match Playbook::parse(&f.display().to_string(), &text) {
            Ok(b) => println!("{}: ok ({}, {} steps)", f.display(), b.name, b.steps.len()),
            Err(e) => {
                bad += 1;
                eprintln!("error: {e}");
            }
        }
    }
    Ok(if bad == 0 {
        Outcome::Clean
    } else {
        Outcome::Broken
    })
}

fn list(books: &[Playbook], at: &Where) -> anyhow::Result<Outcome> {
    if at.format == "json" {
        println!("{}", serde_json::to_string_pretty(books)?);
        return Ok(Outcome::Clean);
    }
    let mut t = table();
    t.set_header(["NAME", "TRIGGER", "STEPS", "BUILT-IN", "DESCRIPTION"]);
    for b in books {
        let builtin = BUILTIN
            .iter()
            .any(|(_, text)| Playbook::parse("", text).is_ok_and(|x| x == *b));
        t.add_row([
            b.name.clone(),
            b.trigger
                .as_ref()
                .map_or("manual", |tr| tr.kind())
                .to_owned(),
            b.steps
                .iter()
                .map(|s| s.kind())
                .collect::<Vec<_>>()
                .join(" → "),
            if builtin { "yes" } else { "" }.to_owned(),
            b.description.clone(),
        ]);
    }
    println!("{t}");
    Ok(Outcome::Clean)
}

fn confirm(name: &str, identity: Option<&str>) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to execute playbook {name} without --yes (stdin is not a terminal)"
        );
    }
    print!(
        "Execute playbook {name}{} against the live platforms? Type its name: ",
        identity.map(|i| format!(" for {i}")).unwrap_or_default()
    );
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == name)
}

/// Prints runs; exit 1 when one failed.
fn finish(runs: &[Run], at: &Where) -> anyhow::Result<Outcome> {
    print_runs(runs, at, true)?;
    Ok(
        if runs
            .iter()
            .any(|r| r.status == keyward_respond::playbook::run::RunStatus::Failed)
        {
            Outcome::Broken
        } else {
            Outcome::Clean
        },
    )
}

fn print_runs(runs: &[Run], at: &Where, steps: bool) -> anyhow::Result<Outcome> {
    if at.format == "json" {
        println!("{}", serde_json::to_string_pretty(runs)?);
        return Ok(Outcome::Clean);
    }
    if !steps {
        let mut t = table();
        t.set_header(["RUN", "PLAYBOOK", "SUBJECT", "STATUS", "STEP", "STARTED"]);
        for r in runs {
            let step = r
                .current()
                .map(|s| format!("{} {}", s.n, s.spec.kind()))
                .unwrap_or_default();
            t.add_row([
                r.id.clone(),
                r.playbook.clone(),
                r.subject.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
                r.status.as_str().to_owned(),
                step,
                ts(Some(r.started_at)).unwrap_or_default(),
            ]);
        }
        println!("{t}");
        return Ok(Outcome::Clean);
    }
    for r in runs {
        println!(
            "run {} of {} ({}{}): {}{}",
            r.id,
            r.playbook,
            r.trigger.kind,
            if r.execute { "" } else { ", dry run" },
            r.status.as_str(),
            r.reason
                .as_deref()
                .map(|x| format!(" — {x}"))
                .unwrap_or_default()
        );
        if let Some(s) = &r.subject {
            println!(
                "  subject: {} ({} {}){}",
                s.id,
                s.platform,
                s.kind,
                s.terraform
                    .as_deref()
                    .map(|t| format!(", defined by {t}"))
                    .unwrap_or_default()
            );
        }
        let mut t = table();
        t.set_header(["#", "STEP", "STATUS", "PLAN", "MESSAGE"]);
        for s in &r.steps {
            t.add_row([
                s.n.to_string(),
                s.spec.kind().to_owned(),
                s.status.as_str().to_owned(),
                s.plan.clone().unwrap_or_default(),
                s.message.clone(),
            ]);
        }
        println!("{t}");
    }
    Ok(Outcome::Clean)
}

fn print_tick(r: &TickReport, at: &Where) -> anyhow::Result<Outcome> {
    if at.format == "json" {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(Outcome::Clean);
    }
    println!(
        "tick: {} run(s) started, {} advanced",
        r.started.len(),
        r.advanced.len()
    );
    for (book, subject, why) in &r.not_started {
        println!("  {book}: not started for {subject}: {why}");
    }
    if !r.advanced.is_empty() {
        print_runs(&r.advanced, at, true)?;
    }
    Ok(Outcome::Clean)
}

/// The world as the CLI (and `keyward serve`'s scheduler) reaches it: the connectors from
/// the environment, made once on first use, on a runtime of its own.
pub(crate) struct CliEffects {
    rt: tokio::runtime::Runtime,
    connectors: Option<Connectors>,
    /// Rotation's grace period and declared key locations.
    config: crate::config::Config,
}

impl CliEffects {
    pub(crate) fn new(config: crate::config::Config) -> anyhow::Result<CliEffects> {
        Ok(CliEffects {
            config,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?,
            connectors: None,
        })
    }

    fn connectors(&mut self) -> &Connectors {
        let kube_context = std::env::var("KEYWARD_KUBE_CONTEXT").ok();
        self.connectors.get_or_insert_with(|| {
            self.rt
                .block_on(Connectors::from_env(kube_context.as_deref()))
        })
    }

    fn run_plan(
        &mut self,
        engine: &mut Engine,
        mut plan: Plan,
        actor: &str,
        undo: bool,
    ) -> Result<Plan, String> {
        self.connectors();
        let Some(c) = self.connectors.as_ref() else {
            return Err("no connectors".into());
        };
        let result = crate::relay::run_plan(engine, &self.rt, c, &mut plan, actor, undo);
        match result {
            Ok(()) | Err(ExecuteError::Step { .. }) => Ok(plan),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Effects for CliEffects {
    fn execute(&mut self, engine: &mut Engine, plan: Plan, actor: &str) -> Result<Plan, String> {
        self.run_plan(engine, plan, actor, false)
    }

    fn undo(&mut self, engine: &mut Engine, plan: Plan, actor: &str) -> Result<Plan, String> {
        self.run_plan(engine, plan, actor, true)
    }

    fn notify(&mut self, url: &str, body: &serde_json::Value) -> Result<(), String> {
        self.rt.block_on(post_json(url, body))
    }

    fn rotation_plan(&mut self, user: &str, now: Millis, actor: &str) -> Result<Plan, String> {
        let args = crate::cmd_rotate::Args {
            identity: Some(user.to_owned()),
            all: false,
            breach: false,
            concurrency: 1,
            path_prefix: "/".into(),
            resume: None,
            status: None,
            due: false,
            plan: false,
            every_key: false,
            high_days: None,
            standard_days: None,
            as_of: None,
            execute: false,
            yes: false,
            also: Vec::new(),
            namespace: Vec::new(),
            vault_mount: Vec::new(),
            grace_days: None,
            kube_context: std::env::var("KEYWARD_KUBE_CONTEXT").ok(),
            format: "table".into(),
        };
        let found = self
            .rt
            .block_on(crate::cmd_rotate::discover(&args, &self.config))
            .map_err(|e| format!("{e:#}"))?;
        let mut plan = keyward_respond::rotate::plan(&keyward_respond::rotate::Request {
            account: found.account.as_deref(),
            user: &found.user,
            old_key_id: &found.old_key_id,
            locations: &found.locations,
            grace_days: self.config.rotation_grace(None),
            now,
            actor,
        });
        plan.notes.extend(found.notes);
        debug_assert_eq!(plan.status, PlanStatus::Planned);
        Ok(plan)
    }

    fn governed_facts(
        &mut self,
        principal: &keyward_respond::IamPrincipal,
    ) -> Result<std::collections::BTreeMap<String, serde_json::Value>, String> {
        self.rt
            .block_on(crate::cmd_drift::live_facts_from_env(principal))
            .map_err(|e| format!("{e:#}"))
    }
}

/// How long a webhook may take.
const NOTIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// POSTs `body` as JSON; a status other than 2xx is an error naming it.
pub(crate) async fn post_json(url: &str, body: &serde_json::Value) -> Result<(), String> {
    let (status, _) = crate::http::call("POST", url, None, Some(body), NOTIFY_TIMEOUT).await?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

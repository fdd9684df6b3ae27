//! `keyward access grant|list|revoke|expire|review|request|approve|deny`: time-bound access
//! that revokes itself. A grant is a one-step response plan (attach a managed policy, add a
//! user to a group, bind a Kubernetes role to a service account) run through the connectors;
//! its lifetime is a job in the store, so whichever process runs expiry next — `access
//! expire --execute`, or `keyward serve --access-expire` — revokes it (the plan's undo, read
//! back) once `expires_at` has passed, restarts or not. Dry runs unless `--execute`.
//!
//! The model is `keyward_govern::access`; storage and audit, `keyward_engine::access`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_engine::access::{AccessAsk, audit};
use keyward_govern::access::{
    self as model, End, Entitlement, Grant, GrantAsk, GrantState, Grantee, Request, Review,
    ReviewState,
};
use keyward_model::time::{Millis, format as when};
use keyward_respond::playbook::format_duration;
use keyward_respond::{Plan, PlanStatus};
use keyward_store::AuditEntry;

use keyward_policy::{Act, Situation};

use crate::Outcome;
use crate::output::{cli_actor, now_ms, table};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Grant an identity access for a while: a managed policy, an IAM group or a Kubernetes
    /// role. Stored and shown (a dry run) unless --execute; revoked by `access expire`.
    Grant(GrantArgs),
    /// Grants (with their state and expiry), open break-glass reviews, pending requests.
    List {
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Apply a stored planned grant (a dry run's, or an approved request's) after
    /// confirmation; it lasts its duration from now.
    Apply(ApplyArgs),
    /// Revoke a grant before it expires (its plan undone and read back).
    Revoke(RevokeArgs),
    /// Revoke every grant past its expiry (a dry run listing them unless --execute).
    Expire(ExpireArgs),
    /// Close a break-glass grant's post-incident review (by someone other than who broke
    /// the glass).
    Review {
        grant: String,
        #[arg(long)]
        notes: String,
    },
    /// Ask for access (the privileged path): stored, not applied, until someone else
    /// approves it.
    Request(Ask),
    /// Approve a request (not your own): it becomes a grant, applied with --execute.
    Approve(ApproveArgs),
    /// Deny a request, saying why.
    Deny {
        request: String,
        #[arg(long)]
        reason: String,
    },
}

/// What is granted: exactly one of these.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct What {
    /// A managed IAM policy, by ARN, attached to the user or role.
    #[arg(long, value_name = "ARN")]
    pub policy: Option<String>,
    /// An IAM group the user is added to.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// A Kubernetes role bound to the service account: `NAME` (a Role with --namespace, a
    /// ClusterRole without), `role/NAME` or `clusterrole/NAME`.
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
}

#[derive(clap::Args)]
pub struct Ask {
    /// Who receives it: an IAM user or role (ARN, `user/NAME`, `role/NAME`) or a service
    /// account (`NAMESPACE/serviceaccount/NAME`, `system:serviceaccount:NAMESPACE:NAME`), or
    /// a name the inventory knows.
    #[arg(long, value_name = "IDENTITY")]
    pub to: String,
    #[command(flatten)]
    pub what: What,
    /// With --role: bind it by a RoleBinding in this namespace (else a ClusterRoleBinding).
    #[arg(long, requires = "role")]
    pub namespace: Option<String>,
    /// How long: `30m`, `2h`, `1d` (at most 7d; 4h for --break-glass).
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: String,
    /// Why (kept with the grant and in the audit log).
    #[arg(long)]
    pub reason: String,
}

#[derive(clap::Args)]
pub struct GrantArgs {
    #[command(flatten)]
    pub ask: Ask,
    /// Apply it now through the platform's API (else a dry run).
    #[arg(long)]
    pub execute: bool,
    /// With --execute: do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Emergency access, self-granted: at most 4h, alerted at once, and a post-incident
    /// review stays open until `keyward access review GRANT --notes …` closes it.
    #[arg(long)]
    pub break_glass: bool,
    /// With --break-glass: POST the alert (JSON) to this webhook URL.
    #[arg(long, value_name = "URL", requires = "break_glass")]
    pub notify: Option<String>,
    /// The kubeconfig context to act through.
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
}

#[derive(clap::Args)]
pub struct ApplyArgs {
    pub grant: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// With a break-glass grant: POST the alert (JSON) to this webhook URL.
    #[arg(long, value_name = "URL")]
    pub notify: Option<String>,
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
}

#[derive(clap::Args)]
pub struct RevokeArgs {
    pub grant: String,
    /// Revoke it now (else show what would be undone).
    #[arg(long)]
    pub execute: bool,
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
}

#[derive(clap::Args)]
pub struct ExpireArgs {
    /// Expire as of this instant (RFC 3339) instead of now.
    #[arg(long, value_parser = crate::output::parse_instant)]
    pub now: Option<i64>,
    /// Revoke them (else list them).
    #[arg(long)]
    pub execute: bool,
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
}

#[derive(clap::Args)]
pub struct ApproveArgs {
    pub request: String,
    /// Apply the grant now (else it is stored as planned).
    #[arg(long)]
    pub execute: bool,
    #[arg(long)]
    pub yes: bool,
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
}

pub fn run(dir: &Path, cmd: Command) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    match cmd {
        Command::Grant(a) => grant(&mut engine, dir, a),
        Command::List { format } => list(&engine, &format),
        Command::Apply(a) => apply_stored(&mut engine, dir, &a),
        Command::Revoke(a) => revoke(&mut engine, dir, &a),
        Command::Expire(a) => {
            let asof = a.now.unwrap_or_else(now_ms);
            let report = expire_due(
                &mut engine,
                dir,
                asof,
                a.execute,
                &cli_actor(),
                a.kube_context.as_deref(),
            )?;
            Ok(report.print(a.execute, asof))
        }
        Command::Review { grant, notes } => review(&mut engine, dir, &grant, &notes),
        Command::Request(a) => request(&mut engine, dir, &a),
        Command::Approve(a) => approve(&mut engine, dir, a),
        Command::Deny { request, reason } => deny(&mut engine, dir, &request, &reason),
    }
}

fn entitlement(a: &Ask) -> anyhow::Result<Entitlement> {
    Ok(Entitlement::from_parts(
        a.what.policy.as_deref(),
        a.what.group.as_deref(),
        a.what.role.as_deref(),
        a.namespace.as_deref(),
    )?)
}

/// Asks the policy whether the person at the keyboard may `action` on the grantee's
/// access (audited); `situation` adds the case's facts (break-glass, requester, length).
fn allowed(
    engine: &mut Engine,
    action: Act,
    grantee: &Grantee,
    situation: impl FnOnce(&mut Situation),
) -> anyhow::Result<()> {
    crate::policy::require_on(engine, action, &grantee.id(), situation)?;
    Ok(())
}

fn grant(engine: &mut Engine, dir: &Path, a: GrantArgs) -> anyhow::Result<Outcome> {
    let path = if a.break_glass {
        model::Path::BreakGlass
    } else {
        model::Path::Standard
    };
    let duration = model::duration(&a.ask.duration, path)?;
    let actor = cli_actor();
    let now = now_ms();
    let (g, plan) = Grant::new(&GrantAsk {
        grantee: engine.grantee(&a.ask.to)?,
        entitlement: entitlement(&a.ask)?,
        duration,
        reason: &a.ask.reason,
        requester: &actor,
        approver: None,
        request: None,
        break_glass: a.break_glass,
        now,
    })?;
    {
        let _writing = crate::output::write_lock(engine, dir)?;
        let detail = g.describe("planned");
        engine.create_grant(&g, &plan, audit("access.grant", &actor, now, &g, detail))?;
    }
    show(&g);
    crate::cmd_respond::print_plan(&plan);
    if !a.execute {
        println!(
            "\ndry run: nothing has changed (apply it with `keyward access apply {}`)",
            g.id
        );
        return Ok(Outcome::Clean);
    }
    confirm_and_apply(
        engine,
        dir,
        g,
        plan,
        a.yes,
        a.notify.as_deref(),
        a.kube_context.as_deref(),
    )
}

/// `access apply`: a stored planned (or failed) grant applied now.
fn apply_stored(engine: &mut Engine, dir: &Path, a: &ApplyArgs) -> anyhow::Result<Outcome> {
    let g = stored_grant(engine, &a.grant)?;
    match g.state {
        GrantState::Planned | GrantState::Failed => {}
        GrantState::Active | GrantState::Expired | GrantState::Revoked => {
            anyhow::bail!("grant {} is {}: nothing to apply", g.id, g.state.as_str())
        }
    }
    let plan = engine
        .response_plan(&g.plan)?
        .ok_or_else(|| anyhow::anyhow!("grant {}: its plan {} is not stored", g.id, g.plan))?;
    show(&g);
    confirm_and_apply(
        engine,
        dir,
        g,
        plan,
        a.yes,
        a.notify.as_deref(),
        a.kube_context.as_deref(),
    )
}

/// Confirmation (unless `yes`), the break-glass alarm for a break-glass grant, then the plan.
fn confirm_and_apply(
    engine: &mut Engine,
    dir: &Path,
    g: Grant,
    plan: Plan,
    yes: bool,
    notify: Option<&str>,
    kube_context: Option<&str>,
) -> anyhow::Result<Outcome> {
    allowed(engine, Act::Grant, &g.grantee, |s| {
        s.break_glass = g.break_glass;
        s.duration = Some(g.duration);
        s.requester = Some(g.requester.clone());
    })?;
    if !confirmed(&g, yes)? {
        println!("not confirmed: nothing changed");
        return Ok(Outcome::Clean);
    }
    let actor = cli_actor();
    if g.break_glass {
        break_glass(engine, dir, &g, notify, &actor)?;
    }
    apply(engine, dir, g, plan, &actor, kube_context)
}

fn show(g: &Grant) {
    println!(
        "grant {}  {}{}  {} to {}",
        g.id,
        g.state.as_str(),
        if g.break_glass { " (break-glass)" } else { "" },
        g.entitlement.describe(),
        g.grantee.id()
    );
    println!(
        "  for {} (expires {}), asked by {}{}: {}",
        format_duration(g.duration),
        when(g.expires_at),
        g.requester,
        g.approver
            .as_deref()
            .map_or_else(String::new, |a| format!(", approved by {a}")),
        g.reason
    );
}

/// Asks for the grant's id unless `yes`; refuses without a terminal.
fn confirmed(g: &Grant, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to apply grant {} without --yes (stdin is not a terminal)",
            g.id
        );
    }
    print!("\nType the grant id to apply it against the live platform: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == g.id)
}

/// Runs the grant's plan; the grant becomes active (from now, for its duration) or failed.
fn apply(
    engine: &mut Engine,
    dir: &Path,
    g: Grant,
    mut plan: Plan,
    actor: &str,
    kube_context: Option<&str>,
) -> anyhow::Result<Outcome> {
    let result =
        crate::cmd_respond::run_through_connectors(engine, &mut plan, false, kube_context)?;
    crate::cmd_respond::print_results(&plan, false);
    let _writing = crate::output::write_lock(engine, dir)?;
    let failed = result.as_ref().err().map(ToString::to_string);
    let g = engine.grant_applied(g, result.map_err(|e| e.to_string()), actor, now_ms())?;
    match failed {
        None => {
            println!("grant {} active until {}", g.id, when(g.expires_at));
            Ok(Outcome::Clean)
        }
        Some(e) => {
            eprintln!("error: grant {} failed: {e}", g.id);
            Ok(Outcome::Broken)
        }
    }
}

/// The break-glass alarm: a loud line, an `access.break_glass` audit entry, the review it
/// opens, and the webhook when one is given (its failure is said, never fatal: the access is
/// needed now).
fn break_glass(
    engine: &mut Engine,
    dir: &Path,
    g: &Grant,
    notify: Option<&str>,
    actor: &str,
) -> anyhow::Result<()> {
    let now = now_ms();
    eprintln!(
        "keyward: BREAK-GLASS: {actor} grants {} to {} for {} ({}). Audited; post-incident review open until `keyward access review {} --notes …`",
        g.entitlement.describe(),
        g.grantee.id(),
        format_duration(g.duration),
        g.reason,
        g.id
    );
    let review = Review::open(g, now);
    {
        let _writing = crate::output::write_lock(engine, dir)?;
        engine.audit(&audit(
            "access.break_glass",
            actor,
            now,
            g,
            g.describe("break-glass"),
        ))?;
        let opened = AuditEntry {
            at: now,
            actor: actor.to_owned(),
            action: "access.review".into(),
            target: Some(g.id.clone()),
            detail: Some(format!("post-incident review {} opened", review.id)),
            before: None,
            after: Some(review.state.as_str().into()),
        };
        engine.put_review(&review, opened)?;
    }
    let Some(url) = notify else {
        return Ok(());
    };
    let body = serde_json::json!({
        "event": "access.break_glass",
        "grant": g.id,
        "actor": actor,
        "grantee": g.grantee.id(),
        "entitlement": g.entitlement.describe(),
        "duration": format_duration(g.duration),
        "reason": g.reason,
        "at": when(now),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if let Err(e) = rt.block_on(crate::cmd_playbook::post_json(url, &body)) {
        eprintln!("keyward: BREAK-GLASS alert to the webhook failed: {e}");
    }
    Ok(())
}

/// Ends a grant: its plan undone through the connectors and read back (nothing to undo when
/// it never ran), then stored as expired or revoked. `Err` holds why the undo failed: the
/// grant stays as it was, with the error, for the next attempt.
fn end_grant(
    engine: &mut Engine,
    dir: &Path,
    g: &Grant,
    how: End,
    asof: Millis,
    actor: &str,
    kube_context: Option<&str>,
) -> anyhow::Result<Result<(), String>> {
    let plan = engine
        .response_plan(&g.plan)?
        .ok_or_else(|| anyhow::anyhow!("grant {}: its plan {} is not stored", g.id, g.plan))?;
    let undone = match plan.status {
        PlanStatus::Planned | PlanStatus::Undone => Ok(()),
        PlanStatus::Executing
        | PlanStatus::Executed
        | PlanStatus::Failed
        | PlanStatus::UndoFailed => {
            let mut plan = plan;
            let r =
                crate::cmd_respond::run_through_connectors(engine, &mut plan, true, kube_context)?;
            r.map_err(|e| e.to_string())
        }
    };
    let now = now_ms();
    let _writing = crate::output::write_lock(engine, dir)?;
    let failed = undone.as_ref().err().cloned();
    if engine
        .grant_ended(&g.id, how, asof, undone, actor, now)?
        .is_none()
    {
        anyhow::bail!("grant {} is no longer stored", g.id);
    }
    Ok(failed.map_or(Ok(()), Err))
}

fn stored_grant(engine: &Engine, id: &str) -> anyhow::Result<Grant> {
    engine
        .access_grant(id)?
        .ok_or_else(|| anyhow::anyhow!("no grant `{id}` (see `keyward access list`)"))
}

fn revoke(engine: &mut Engine, dir: &Path, a: &RevokeArgs) -> anyhow::Result<Outcome> {
    let g = stored_grant(engine, &a.grant)?;
    if g.state.ended() {
        anyhow::bail!("grant {} is {} already", g.id, g.state.as_str());
    }
    show(&g);
    if !a.execute {
        if let Some(plan) = engine.response_plan(&g.plan)? {
            for s in &plan.steps {
                for c in &s.undo {
                    println!("  undo: {c}");
                }
            }
        }
        println!("\ndry run: nothing has changed (revoke it with --execute)");
        return Ok(Outcome::Clean);
    }
    allowed(engine, Act::Grant, &g.grantee, |s| s.revoke = true)?;
    let actor = cli_actor();
    match end_grant(
        engine,
        dir,
        &g,
        End::Revoked,
        now_ms(),
        &actor,
        a.kube_context.as_deref(),
    )? {
        Ok(()) => {
            println!("grant {} revoked", g.id);
            Ok(Outcome::Clean)
        }
        Err(e) => {
            eprintln!("error: revoking grant {}: {e}", g.id);
            Ok(Outcome::Broken)
        }
    }
}

/// What an expiry run did (or, as a dry run, would do).
pub(crate) struct ExpireReport {
    pub due: Vec<Grant>,
    pub ended: Vec<String>,
    pub failed: Vec<(String, String)>,
}

impl ExpireReport {
    fn print(&self, executed: bool, asof: Millis) -> Outcome {
        if self.due.is_empty() {
            println!("no grant is past its expiry at {}", when(asof));
            return Outcome::Clean;
        }
        for g in &self.due {
            let done = if !executed {
                "would be revoked"
            } else if self.ended.contains(&g.id) {
                "expired: revoked"
            } else {
                "revocation failed"
            };
            println!(
                "{}  {}  {} to {} (expired {})",
                g.id,
                done,
                g.entitlement.describe(),
                g.grantee.id(),
                when(g.expires_at)
            );
        }
        for (id, e) in &self.failed {
            eprintln!("error: {id}: {e}");
        }
        if !executed {
            println!("\ndry run: nothing has changed (revoke them with --execute)");
        }
        if self.failed.is_empty() {
            Outcome::Clean
        } else {
            Outcome::Broken
        }
    }
}

/// Every grant past its expiry at `asof`, revoked when `execute` (shared by `access expire`
/// and `keyward serve --access-expire`). One process expires at a time (`access.lock`).
pub(crate) fn expire_due(
    engine: &mut Engine,
    dir: &Path,
    asof: Millis,
    execute: bool,
    actor: &str,
    kube_context: Option<&str>,
) -> anyhow::Result<ExpireReport> {
    let _lock = expiry_lock(dir)?;
    engine.refresh()?;
    let due = engine.due_grants(asof)?;
    let mut report = ExpireReport {
        due,
        ended: Vec::new(),
        failed: Vec::new(),
    };
    if !execute {
        return Ok(report);
    }
    for g in &report.due {
        match end_grant(engine, dir, g, End::Expired, asof, actor, kube_context)? {
            Ok(()) => report.ended.push(g.id.clone()),
            Err(e) => report.failed.push((g.id.clone(), e)),
        }
    }
    Ok(report)
}

/// `<data dir>/access.lock`, held while expiring.
fn expiry_lock(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("access.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening `{}`", path.display()))?;
    f.lock()
        .with_context(|| format!("locking `{}`", path.display()))?;
    Ok(f)
}

/// `keyward serve --access-expire`: expiry on a thread of its own, with its own engine,
/// every `interval`, executing; what it revoked and what failed go to stderr.
pub(crate) fn spawn_expiry(dir: &Path, interval: std::time::Duration) -> anyhow::Result<()> {
    let data = dir.to_path_buf();
    std::thread::Builder::new()
        .name("keyward-access".into())
        .stack_size(keyward_normalize::depth::STACK)
        .spawn(move || {
            let run = || -> anyhow::Result<()> {
                let mut engine = Engine::open(&data)?;
                engine.set_durable(true)?;
                loop {
                    match expire_due(
                        &mut engine,
                        &data,
                        now_ms(),
                        true,
                        "serve:access-expiry",
                        None,
                    ) {
                        Ok(r) => {
                            if !r.ended.is_empty() {
                                eprintln!(
                                    "keyward: access: {} grant(s) expired and revoked",
                                    r.ended.len()
                                );
                            }
                            for (id, e) in &r.failed {
                                eprintln!(
                                    "keyward: access: revoking {id} failed (retried next tick): {e}"
                                );
                            }
                        }
                        Err(e) => eprintln!("keyward: access expiry: {e:#}"),
                    }
                    std::thread::sleep(interval);
                }
            };
            if let Err(e) = run() {
                eprintln!("keyward: access expiry stopped: {e:#}");
            }
        })
        .context("starting access expiry")?;
    Ok(())
}

fn list(engine: &Engine, format: &str) -> anyhow::Result<Outcome> {
    let grants = engine.access_grants()?;
    let reviews = engine.access_reviews()?;
    let requests = engine.access_requests()?;
    if format == "json" {
        let doc = serde_json::json!({
            "grants": grants,
            "reviews": reviews,
            "requests": requests,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Outcome::Clean);
    }
    let mut t = table();
    t.set_header(["grant", "state", "to", "access", "expires", "by", "reason"]);
    for g in &grants {
        t.add_row([
            g.id.clone(),
            format!(
                "{}{}",
                g.state.as_str(),
                if g.break_glass { " (break-glass)" } else { "" }
            ),
            g.grantee.id(),
            g.entitlement.describe(),
            when(g.expires_at),
            g.requester.clone(),
            g.reason.clone(),
        ]);
    }
    println!("{t}");
    let open: Vec<&Review> = reviews
        .iter()
        .filter(|r| r.state == ReviewState::Open)
        .collect();
    if !open.is_empty() {
        println!(
            "\nopen post-incident reviews (close with `keyward access review GRANT --notes …`):"
        );
        for r in open {
            println!(
                "  {}  break-glass by {} at {} for {}: {}",
                r.grant,
                r.opened_by,
                when(r.opened_at),
                r.grantee,
                r.reason
            );
        }
    }
    let pending: Vec<&Request> = requests
        .iter()
        .filter(|r| r.state == model::RequestState::Pending)
        .collect();
    if !pending.is_empty() {
        println!("\npending requests (`keyward access approve ID` / `deny ID --reason …`):");
        for r in pending {
            println!(
                "  {}  {} to {} for {}, asked by {}: {}",
                r.id,
                r.entitlement.describe(),
                r.grantee.id(),
                format_duration(r.duration),
                r.requester,
                r.reason
            );
        }
    }
    Ok(Outcome::Clean)
}

fn review(engine: &mut Engine, dir: &Path, grant: &str, notes: &str) -> anyhow::Result<Outcome> {
    let actor = cli_actor();
    let now = now_ms();
    let _writing = crate::output::write_lock(engine, dir)?;
    let mut r = engine
        .access_review(grant)?
        .ok_or_else(|| anyhow::anyhow!("grant `{grant}` has no break-glass review"))?;
    // Closing a review signs it off: an approval, never by who broke the glass (the
    // review's own rule says so first; then the policies decide who else may).
    r.close(&actor, notes, now)?;
    crate::policy::require_on(engine, Act::Approve, &r.grantee, |s| {
        s.requester = Some(r.opened_by.clone());
    })?;
    engine.put_review(
        &r,
        AuditEntry {
            at: now,
            actor: actor.clone(),
            action: "access.review".into(),
            target: Some(grant.to_owned()),
            detail: Some(format!(
                "post-incident review {} closed: {}",
                r.id,
                notes.trim()
            )),
            before: Some(ReviewState::Open.as_str().into()),
            after: Some(r.state.as_str().into()),
        },
    )?;
    println!("review of grant {grant} closed by {actor}");
    Ok(Outcome::Clean)
}

fn request(engine: &mut Engine, dir: &Path, a: &Ask) -> anyhow::Result<Outcome> {
    let duration = model::duration(&a.duration, model::Path::Standard)?;
    let actor = cli_actor();
    let grantee = engine.grantee(&a.to)?;
    allowed(engine, Act::Plan, &grantee, |s| s.duration = Some(duration))?;
    let _writing = crate::output::write_lock(engine, dir)?;
    let r = engine.request_access(
        &AccessAsk {
            to: &a.to,
            entitlement: entitlement(a)?,
            duration,
            reason: &a.reason,
        },
        &actor,
        now_ms(),
    )?;
    println!(
        "request {} stored: {} to {} for {} (someone else approves it: `keyward access approve {}`)",
        r.id,
        r.entitlement.describe(),
        r.grantee.id(),
        format_duration(r.duration),
        r.id
    );
    Ok(Outcome::Clean)
}

fn approve(engine: &mut Engine, dir: &Path, a: ApproveArgs) -> anyhow::Result<Outcome> {
    let actor = cli_actor();
    let (g, plan) = {
        let _writing = crate::output::write_lock(engine, dir)?;
        let r = engine.pending_request(&a.request)?;
        r.may_approve(&actor)?;
        allowed(engine, Act::Approve, &r.grantee, |s| {
            s.requester = Some(r.requester.clone());
            s.duration = Some(r.duration);
        })?;
        let (_, g, plan) = engine.approve_request(&a.request, &actor, now_ms())?;
        (g, plan)
    };
    show(&g);
    if !a.execute {
        println!(
            "\napproved: grant {} stored as planned (apply it with `keyward access apply {}`)",
            g.id, g.id
        );
        return Ok(Outcome::Clean);
    }
    confirm_and_apply(engine, dir, g, plan, a.yes, None, a.kube_context.as_deref())
}

fn deny(engine: &mut Engine, dir: &Path, id: &str, reason: &str) -> anyhow::Result<Outcome> {
    let actor = cli_actor();
    let _writing = crate::output::write_lock(engine, dir)?;
    let r = engine.pending_request(id)?;
    // Withdrawing one's own request takes no permission; denying someone else's is an
    // approval decision.
    if r.requester != actor {
        allowed(engine, Act::Approve, &r.grantee, |s| {
            s.requester = Some(r.requester.clone());
        })?;
    }
    let r = engine.deny_request(id, &actor, reason, now_ms())?;
    println!("request {} denied", r.id);
    Ok(Outcome::Clean)
}

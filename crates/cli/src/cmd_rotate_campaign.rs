//! `keyward rotate --all [--breach] [--execute]`, `--resume [CAMPAIGN]`, `--status
//! [CAMPAIGN]`: every IAM user's access key rotated, highest risk first, as a campaign job
//! whose items the engine's `jobs` table keeps (see `keyward_respond::campaign`).
//!
//! Phases: list every user and key live (AWS), read every secret once (Secrets Manager,
//! Kubernetes, Vault/OpenBao KV v2: `vault.rs`) into an index of the key ids each holds, order by the inventory's risk → a
//! dry run shows the order and ends → the campaign and its items are stored → `concurrency`
//! workers take items in order; each item's plan is stored and the item marked `started`
//! before the plan touches anything, then `done` / `failed` after. A resume converges every
//! item a killed process left `started` from what the platforms show now.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::rc::Rc;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keyward_engine::Engine;
use keyward_engine::jobs::Job;
use keyward_model::time::Millis;
use keyward_respond::campaign::{
    self, CAMPAIGN_KIND, Campaign, Decision, ITEM_KIND, Item, ItemState, Live, Recorded,
};
use keyward_respond::execute::{self, Connectors};
use keyward_respond::rotate::{self, SecretLocation, handoff};
use keyward_respond::{Action, Plan, PlanStatus, StepResult};
use keyward_store::AuditEntry;

use crate::Outcome;
use crate::output::{cli_actor, now_ms, table};
use crate::relay::{Relay, RelayRecorder};

mod vault;

/// What a campaign run is asked for.
pub struct Ask<'a> {
    pub breach: bool,
    pub execute: bool,
    pub yes: bool,
    pub concurrency: usize,
    pub json: bool,
    pub path_prefix: &'a str,
    pub namespaces: &'a [String],
    /// KV v2 mounts to search (every one `sys/mounts` lists when empty).
    pub vault_mounts: &'a [String],
    pub grace_days: u32,
    pub kube_context: Option<&'a str>,
    /// Key locations declared in `keyward.yaml`.
    pub config: &'a crate::config::Config,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn open(dir: &Path) -> anyhow::Result<Engine> {
    Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))
}

/// `rotate --all`: a dry run, or a new campaign (or the unfinished one, continued).
pub fn all(dir: &Path, ask: &Ask<'_>) -> anyhow::Result<Outcome> {
    let mut engine = open(dir)?;
    if ask.execute
        && let Some(c) = unfinished(&engine)?
    {
        eprintln!(
            "campaign {} (started {}) is unfinished: continuing it instead of starting another",
            c.id,
            keyward_model::time::format(c.created_at)
        );
        return resume_job(engine, c, ask);
    }
    let rt = runtime()?;
    let connectors = rt.block_on(Connectors::from_env(ask.kube_context));
    let risks = risks(&mut engine, dir)?;
    let items = rt.block_on(discover(&connectors, ask, &risks))?;
    let planned = items
        .iter()
        .filter(|i| i.state == ItemState::Pending)
        .count();
    if !ask.execute {
        if ask.json {
            println!("{}", serde_json::to_string_pretty(&items)?);
        } else {
            print_items(&items);
            println!(
                "\ndry run: {planned} rotation plans would be made ({} users skipped); nothing was stored or changed. Rotate them with `keyward rotate --all{} --execute`",
                items.len() - planned,
                if ask.breach { " --breach" } else { "" }
            );
        }
        return Ok(Outcome::Clean);
    }
    // A campaign rotates across the estate: it needs `rotate` on the estate itself.
    crate::policy::require(
        &mut engine,
        keyward_policy::Act::Rotate,
        &keyward_policy::Resource::Estate,
        &crate::policy::here(),
    )?;
    if !ask.yes {
        print_items(&items);
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "refusing to rotate {planned} keys without --yes (stdin is not a terminal)"
            );
        }
        print!("\nType `rotate {planned}` to rotate {planned} keys against the live platforms: ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if line.trim() != format!("rotate {planned}") {
            println!("not confirmed: nothing changed");
            return Ok(Outcome::Clean);
        }
    }
    let actor = cli_actor();
    let now = now_ms();
    let id = format!("rc-{now:x}");
    let job = Job {
        id: id.clone(),
        kind: CAMPAIGN_KIND.into(),
        parent: None,
        created_at: now,
        updated_at: now,
        status: "running".into(),
        doc: Campaign {
            breach: ask.breach,
            actor: actor.clone(),
            concurrency: ask.concurrency,
            path_prefix: ask.path_prefix.to_owned(),
            total: items.len(),
            finished_at: None,
        },
    };
    {
        let _writing = crate::output::write_lock(&mut engine, dir)?;
        engine.put_job(
            &job,
            Some(audit(
                now,
                &actor,
                "rotate.campaign",
                &id,
                format!(
                    "{} campaign: {planned} keys to rotate, {} users skipped, concurrency {}",
                    if ask.breach { "breach" } else { "rotation" },
                    items.len() - planned,
                    ask.concurrency
                ),
            )),
        )?;
        for item in &items {
            put_item(&mut engine, &id, item, now, None)?;
        }
    }
    drop(rt);
    run_campaign(engine, job, items, connectors_again(ask)?, ask)
}

/// The connectors are made on the runtime that uses them.
fn connectors_again(ask: &Ask<'_>) -> anyhow::Result<(tokio::runtime::Runtime, Connectors)> {
    let rt = runtime()?;
    let c = rt.block_on(Connectors::from_env(ask.kube_context));
    Ok((rt, c))
}

/// `rotate --resume [CAMPAIGN]`.
pub fn resume(dir: &Path, id: Option<&str>, ask: &Ask<'_>) -> anyhow::Result<Outcome> {
    let engine = open(dir)?;
    let job = match id {
        Some(id) => engine
            .job::<Campaign>(id)?
            .filter(|j| j.kind == CAMPAIGN_KIND)
            .with_context(|| format!("no rotation campaign `{id}`"))?,
        None => match unfinished(&engine)? {
            Some(j) => j,
            None => {
                println!("no unfinished rotation campaign: nothing to resume");
                return Ok(Outcome::Clean);
            }
        },
    };
    resume_job(engine, job, ask)
}

fn resume_job(engine: Engine, job: Job<Campaign>, ask: &Ask<'_>) -> anyhow::Result<Outcome> {
    let mut items: Vec<Item> = engine
        .jobs::<Item>(ITEM_KIND, Some(&job.id), usize::MAX >> 1)?
        .into_iter()
        .map(|j| j.doc)
        .collect();
    campaign::order(&mut items);
    run_campaign(engine, job, items, connectors_again(ask)?, ask)
}

/// The newest campaign not finished.
fn unfinished(engine: &Engine) -> anyhow::Result<Option<Job<Campaign>>> {
    Ok(engine
        .jobs::<Campaign>(CAMPAIGN_KIND, None, 1_000)?
        .into_iter()
        .find(|j| j.status != "finished"))
}

/// The risk score (R) per IAM user ARN (canonical: no path) and per `user/NAME`.
struct Risks(BTreeMap<String, f64>);

impl Risks {
    fn of(&self, account: Option<&str>, user: &str) -> f64 {
        let arn = account.map(|a| format!("arn:aws:iam::{a}:user/{user}"));
        arn.and_then(|a| self.0.get(&a))
            .or_else(|| self.0.get(&format!("user/{user}")))
            .copied()
            .unwrap_or(0.0)
    }
}

fn risks(engine: &mut Engine, dir: &Path) -> anyhow::Result<Risks> {
    let _writing = crate::output::write_lock(engine, dir)?;
    let as_of = engine.latest_event_time()?.unwrap_or_else(now_ms);
    let posture = engine.evaluate_posture(as_of, &[])?;
    let mut out = BTreeMap::new();
    for (id, r) in posture.risks {
        if let Some((_, name)) = id.split_once(":user/") {
            let name = name.rsplit('/').next().unwrap_or(name);
            out.entry(format!("user/{name}")).or_insert(r.r);
        }
        out.insert(id, r.r);
    }
    Ok(Risks(out))
}

/// Every user with an Active key, its locations and risk, highest risk first; users with
/// two keys skipped.
async fn discover(c: &Connectors, ask: &Ask<'_>, risks: &Risks) -> anyhow::Result<Vec<Item>> {
    let Some(aws) = &c.aws else {
        let why = c.why_missing("aws");
        anyhow::bail!("rotating access keys needs the AWS connector: {why}");
    };
    let users = aws.users_with_keys(ask.path_prefix).await?;
    let sm = aws.secret_index().await?;
    let kube = match &c.kube {
        Some(k) => Some(k.secret_index(ask.namespaces).await?),
        None => {
            eprintln!(
                "note: Kubernetes Secrets not searched ({}): keys living there will stop working",
                c.why_missing("kubernetes")
            );
            None
        }
    };
    let kv = vault::index(c, ask.vault_mounts).await?;
    let mut items = Vec::new();
    for u in users {
        if !u.keys.iter().any(|k| k.active) {
            continue;
        }
        let account = u.arn.split(':').nth(4).map(str::to_owned);
        let risk = risks.of(account.as_deref(), &u.user);
        let old = u.keys.iter().find(|k| k.active).map(|k| k.id.clone());
        let old = old.unwrap_or_default();
        let mut locations: Vec<SecretLocation> = sm
            .get(&old)
            .into_iter()
            .flatten()
            .map(|s| SecretLocation::Secretsmanager {
                secret_id: s.clone(),
            })
            .collect();
        if let Some(k) = &kube {
            locations.extend(k.get(&old).into_iter().flatten().map(|(ns, name)| {
                SecretLocation::Kubernetes {
                    namespace: ns.clone(),
                    name: name.clone(),
                }
            }));
        }
        locations.extend(kv.locations(&old));
        locations.extend(ask.config.declared_locations(&u.user, &old));
        locations.sort();
        locations.dedup();
        let state = if u.keys.len() >= 2 {
            let listed: Vec<String> = u
                .keys
                .iter()
                .map(|k| format!("{} {}", k.id, if k.active { "Active" } else { "Inactive" }))
                .collect();
            ItemState::Skipped {
                reason: format!(
                    "{} has two access keys ({}), the most IAM allows: delete the one not in use (`aws iam delete-access-key --user-name {} --access-key-id ID`) and run `keyward rotate {}`",
                    u.user,
                    listed.join(", "),
                    u.user,
                    u.user
                ),
            }
        } else {
            ItemState::Pending
        };
        items.push(Item {
            user: u.user,
            account,
            old_key_id: old,
            locations,
            risk,
            first_started: None,
            plans: Vec::new(),
            state,
        });
    }
    campaign::order(&mut items);
    Ok(items)
}

fn print_items(items: &[Item]) {
    let mut t = table();
    t.set_header(["#", "user", "risk", "key", "locations", "plan"]);
    for (n, i) in items.iter().enumerate() {
        let locations: Vec<String> = i.locations.iter().map(ToString::to_string).collect();
        t.add_row([
            (n + 1).to_string(),
            i.user.clone(),
            format!("{:.2}", i.risk),
            i.old_key_id.clone(),
            if locations.is_empty() {
                "(none found)".into()
            } else {
                locations.join(", ")
            },
            match &i.state {
                ItemState::Pending => "rotate".into(),
                ItemState::Skipped { reason } => format!("skip: {reason}"),
                s @ (ItemState::Started { .. }
                | ItemState::Done { .. }
                | ItemState::Failed { .. }) => s.as_str().into(),
            },
        ]);
    }
    println!("{t}");
}

fn audit(at: Millis, actor: &str, action: &str, target: &str, detail: String) -> AuditEntry {
    AuditEntry {
        at,
        actor: actor.to_owned(),
        action: action.into(),
        target: Some(target.to_owned()),
        detail: Some(detail),
        before: None,
        after: None,
    }
}

fn item_id(campaign: &str, user: &str) -> String {
    format!("{campaign}/{user}")
}

/// Writes an item's state (the caller holds the writer lock).
fn put_item(
    engine: &mut Engine,
    campaign: &str,
    item: &Item,
    now: Millis,
    audit: Option<AuditEntry>,
) -> anyhow::Result<()> {
    engine.put_job(
        &Job {
            id: item_id(campaign, &item.user),
            kind: ITEM_KIND.into(),
            parent: Some(campaign.to_owned()),
            created_at: now,
            updated_at: now,
            status: item.state.as_str().into(),
            doc: item.clone(),
        },
        audit,
    )?;
    Ok(())
}

/// Writes an item under the writer lock, with an audit entry when it failed or was skipped.
fn save_item(engine: &Relay, campaign: &str, item: &Item, actor: &str) -> Result<(), String> {
    let (campaign, item, actor) = (campaign.to_owned(), item.clone(), actor.to_owned());
    engine.call(move |e| save_item_here(e, &campaign, &item, &actor))?
}

fn save_item_here(e: &mut Engine, campaign: &str, item: &Item, actor: &str) -> Result<(), String> {
    let _lock = e.write_lock().map_err(|e| e.to_string())?;
    let now = now_ms();
    let entry = match &item.state {
        ItemState::Failed { reason, .. } => Some(audit(
            now,
            actor,
            "rotate.campaign_item",
            &item_id(campaign, &item.user),
            format!("failed: {reason}"),
        )),
        ItemState::Pending
        | ItemState::Started { .. }
        | ItemState::Done { .. }
        | ItemState::Skipped { .. } => None,
    };
    put_item(e, campaign, item, now, entry).map_err(|e| e.to_string())
}

/// What every worker shares.
struct Ctx {
    /// The engine, on the thread that owns it (`crate::relay`).
    engine: Relay,
    connectors: Connectors,
    campaign: String,
    actor: String,
    grace_days: u32,
    bar: ProgressBar,
}

fn run_campaign(
    mut engine: Engine,
    mut job: Job<Campaign>,
    items: Vec<Item>,
    (rt, connectors): (tokio::runtime::Runtime, Connectors),
    ask: &Ask<'_>,
) -> anyhow::Result<Outcome> {
    if connectors.aws.is_none() {
        // Without it nothing can be rotated or seen: the items stay as they are.
        let why = connectors.why_missing("aws");
        anyhow::bail!(
            "campaign {}: rotating access keys needs the AWS connector: {why}",
            job.id
        );
    }
    let started = std::time::Instant::now();
    let todo: VecDeque<Item> = items
        .iter()
        .filter(|i| !i.state.is_final())
        .cloned()
        .collect();
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(todo.len() as u64), target);
    if let Ok(style) = ProgressStyle::with_template(
        "[{elapsed_precise}] {bar:30} {pos}/{len} keys ({per_sec}, eta {eta}) · {msg}",
    ) {
        bar.set_style(style);
    }
    let rotating = todo.len();
    let (campaign, actor) = (job.id.clone(), cli_actor());
    let concurrency = ask.concurrency.max(1);
    // The platform calls on a thread of their own, the store's here (`crate::relay`).
    let done = crate::relay::with_engine(&mut engine, |relay| {
        let ctx = Rc::new(Ctx {
            engine: relay,
            connectors,
            campaign: campaign.clone(),
            actor: actor.clone(),
            grace_days: ask.grace_days,
            bar,
        });
        let queue = Rc::new(RefCell::new(todo));
        let results: Rc<RefCell<Vec<Item>>> = Rc::default();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let mut workers = Vec::new();
            for _ in 0..concurrency {
                let (ctx, queue, results) = (ctx.clone(), queue.clone(), results.clone());
                workers.push(tokio::task::spawn_local(async move {
                    loop {
                        let next = queue.borrow_mut().pop_front();
                        let Some(item) = next else { break };
                        let user = item.user.clone();
                        let item = one(&ctx, item).await;
                        ctx.bar
                            .set_message(format!("{user}: {}", item.state.as_str()));
                        ctx.bar.inc(1);
                        results.borrow_mut().push(item);
                    }
                }));
            }
            for w in workers {
                let _ = w.await;
            }
        });
        ctx.bar.finish_and_clear();
        let done: BTreeMap<String, Item> = results
            .borrow()
            .iter()
            .map(|i| (i.user.clone(), i.clone()))
            .collect();
        done
    })
    .context("starting the connectors' thread")?;
    let all: Vec<Item> = items
        .into_iter()
        .map(|i| done.get(&i.user).cloned().unwrap_or(i))
        .collect();
    let count = |s: &str| all.iter().filter(|i| i.state.as_str() == s).count();
    let (ok, failed, skipped) = (count("done"), count("failed"), count("skipped"));
    let unfinished = count("pending") + count("started");
    let now = now_ms();
    job.updated_at = now;
    if unfinished == 0 {
        job.status = "finished".into();
        job.doc.finished_at = Some(now);
    }
    let secs = started.elapsed().as_secs_f64();
    let summary = format!(
        "campaign {}: {ok} done, {failed} failed, {skipped} skipped of {} ({rotating} rotated or converged in this run in {secs:.1} s, {:.2} rotations/s, concurrency {})",
        job.id,
        all.len(),
        rotating as f64 / secs.max(0.001),
        ask.concurrency
    );
    {
        let _lock = engine.write_lock()?;
        engine.put_job(
            &job,
            Some(audit(
                now,
                &actor,
                "rotate.campaign",
                &job.id,
                summary.clone(),
            )),
        )?;
    }
    if ask.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print_failures(&all);
    }
    eprintln!("{summary}");
    Ok(if ok == all.len() {
        Outcome::Clean
    } else {
        Outcome::Broken
    })
}

fn print_failures(items: &[Item]) {
    for i in items {
        match &i.state {
            ItemState::Failed { reason, fix } => {
                println!("failed  {}: {reason}", i.user);
                for c in fix {
                    println!("        {c}");
                }
            }
            ItemState::Skipped { reason } => println!("skipped {}: {reason}", i.user),
            ItemState::Pending | ItemState::Started { .. } | ItemState::Done { .. } => {}
        }
    }
}

/// One item to its end: a fresh rotation (pending) or convergence (started).
async fn one(ctx: &Ctx, mut item: Item) -> Item {
    let state = match &item.state {
        ItemState::Started { plan, .. } => {
            let plan = plan.clone();
            converge(ctx, &mut item, &plan).await
        }
        ItemState::Pending => rotate_fresh(ctx, &mut item).await,
        s @ (ItemState::Done { .. } | ItemState::Failed { .. } | ItemState::Skipped { .. }) => {
            Ok(s.clone())
        }
    };
    item.state = state.unwrap_or_else(|reason| ItemState::Failed {
        fix: campaign::fix_commands(&item.user, &item.old_key_id),
        reason,
    });
    handoff::forget(&item.user, &item.old_key_id);
    if let Err(e) = save_item(&ctx.engine, &ctx.campaign, &item, &ctx.actor) {
        // The item stays `started` in the store: a resume converges it.
        eprintln!("error: recording {}: {e}", item.user);
    }
    item
}

/// A new plan, stored and the item marked started with it, then executed.
async fn rotate_fresh(ctx: &Ctx, item: &mut Item) -> Result<ItemState, String> {
    let now = now_ms();
    let mut plan = rotate::plan(&rotate::Request {
        account: item.account.as_deref(),
        user: &item.user,
        old_key_id: &item.old_key_id,
        locations: &item.locations,
        grace_days: ctx.grace_days,
        now,
        actor: &ctx.actor,
    });
    plan.notes
        .push(format!("part of rotation campaign {}", ctx.campaign));
    item.plans.push(plan.id.clone());
    item.first_started.get_or_insert(now);
    item.state = ItemState::Started {
        plan: plan.id.clone(),
        at: now,
    };
    {
        let entry = audit(
            now,
            &ctx.actor,
            "respond.plan",
            &plan.id,
            format!(
                "rotate access key {} of {} ({} locations), campaign {}",
                item.old_key_id,
                item.user,
                item.locations.len(),
                ctx.campaign
            ),
        );
        let (plan, item, campaign) = (plan.clone(), item.clone(), ctx.campaign.clone());
        ctx.engine.call(move |e| {
            let _lock = e.write_lock().map_err(|e| e.to_string())?;
            e.save_plan(&plan, entry).map_err(|e| e.to_string())?;
            put_item(e, &campaign, &item, now, None).map_err(|e| e.to_string())
        })??;
    }
    let mut rec = RelayRecorder {
        relay: ctx.engine.clone(),
        actor: ctx.actor.clone(),
    };
    match execute::execute(&mut plan, &ctx.connectors, &mut rec, &now_ms).await {
        Ok(()) => Ok(ItemState::Done {
            new_key_id: new_key_of(&plan).unwrap_or_default(),
            at: now_ms(),
        }),
        Err(e) => {
            let mut fix = vec![format!(
                "keyward respond undo {}  # deletes the unused new key (and puts back what was written)",
                plan.id
            )];
            fix.extend(campaign::fix_commands(&item.user, &item.old_key_id));
            Ok(ItemState::Failed {
                reason: format!("plan {}: {e}", plan.id),
                fix,
            })
        }
    }
}

/// The new key a plan's create step recorded.
fn new_key_of(plan: &Plan) -> Option<String> {
    plan.steps
        .iter()
        .filter(|s| matches!(s.action, Action::CreateAccessKey { .. }))
        .find_map(|s| {
            s.result
                .as_ref()
                .and_then(|r| r.state.get("new_key_id"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        })
}

/// Whether a plan recorded a write as done.
fn wrote(plan: &Plan) -> bool {
    plan.steps.iter().any(|s| {
        matches!(s.action, Action::UpdateSecretValue { .. })
            && s.result.as_ref().is_some_and(|r| r.ok)
    })
}

/// A started item, after a kill: what the platforms show decides (see
/// `keyward_respond::campaign::converge`).
async fn converge(ctx: &Ctx, item: &mut Item, last: &str) -> Result<ItemState, String> {
    let Some(aws) = &ctx.connectors.aws else {
        return Err("the AWS connector is not available".into());
    };
    let mut rec = Recorded::default();
    let mut plans = Vec::new();
    for id in &item.plans {
        let id = id.clone();
        let p = ctx
            .engine
            .call(move |e| e.response_plan(&id).map_err(|e| e.to_string()))??;
        if let Some(p) = p {
            if p.status != PlanStatus::Undone {
                rec.new_keys.extend(new_key_of(&p));
                rec.wrote |= wrote(&p);
            }
            plans.push(p);
        }
    }
    rec.new_keys.sort();
    rec.new_keys.dedup();
    let mut live = Live {
        keys: aws
            .dated_keys(&item.user)
            .await
            .map_err(|e| e.to_string())?,
        held: Vec::new(),
    };
    for l in &item.locations {
        let ids = match l {
            SecretLocation::Secretsmanager { secret_id } => {
                aws.secret_key_ids(secret_id).await.ok().flatten()
            }
            SecretLocation::Kubernetes { namespace, name } => match &ctx.connectors.kube {
                Some(k) => k.secret_key_ids(namespace, name).await.ok().flatten(),
                None => None,
            },
            SecretLocation::Vault { mount, path } => {
                vault::key_ids(&ctx.connectors, mount, path).await
            }
        };
        live.held.push((l.clone(), ids));
    }
    let mut last = plans.into_iter().find(|p| p.id == last);
    match campaign::converge(item, &live, &rec) {
        Decision::Done { new_key_id } => {
            close(ctx, last.as_mut(), "the rotation was found complete")?;
            Ok(ItemState::Done {
                new_key_id,
                at: now_ms(),
            })
        }
        Decision::Rotate => {
            close(ctx, last.as_mut(), "nothing had changed: rotated afresh")?;
            rotate_fresh(ctx, item).await
        }
        Decision::DeleteThenRotate { orphan } => {
            let Some(plan) = last.as_mut() else {
                return Err(format!("no stored plan to undo the unused key {orphan}"));
            };
            delete_orphan(ctx, plan, &orphan).await?;
            rotate_fresh(ctx, item).await
        }
        Decision::Recover { new_key_id, from } => {
            let secret = match &from {
                SecretLocation::Secretsmanager { secret_id } => aws
                    .secret_for_key(secret_id, &new_key_id)
                    .await
                    .map_err(|e| e.to_string()),
                SecretLocation::Kubernetes { namespace, name } => match &ctx.connectors.kube {
                    Some(k) => k.secret_for_key(namespace, name, &new_key_id).await,
                    None => Ok(None),
                }
                .map_err(|e| e.to_string()),
                SecretLocation::Vault { mount, path } => {
                    vault::secret_for_key(&ctx.connectors, mount, path, &new_key_id).await
                }
            }?;
            let Some(secret) = secret else {
                return Err(format!(
                    "{from} holds the new key {new_key_id} but no secret access key next to it"
                ));
            };
            handoff::put(
                &item.user,
                &item.old_key_id,
                handoff::NewKey {
                    id: new_key_id.clone(),
                    secret,
                },
            );
            close(
                ctx,
                last.as_mut(),
                &format!(
                    "its new key {new_key_id} was recovered from {from} and the rotation finished by a new plan"
                ),
            )?;
            rotate_fresh(ctx, item).await
        }
        Decision::Fail { reason, fix } => {
            close(ctx, last.as_mut(), &format!("left to a person: {reason}"))?;
            Ok(ItemState::Failed { reason, fix })
        }
    }
}

/// Marks a plan a killed process left `executing` (or `planned`, killed before it ran) as
/// failed, saying what the resume did, so that nobody executes it later.
fn close(ctx: &Ctx, plan: Option<&mut Plan>, what: &str) -> Result<(), String> {
    let Some(plan) = plan else { return Ok(()) };
    // Executed, failed or undone plans say what happened already.
    if !matches!(plan.status, PlanStatus::Executing | PlanStatus::Planned) {
        return Ok(());
    }
    plan.status = PlanStatus::Failed;
    plan.notes.push(format!(
        "interrupted (the process running it was killed); resumed by campaign {}: {what}",
        ctx.campaign
    ));
    let entry = audit(
        now_ms(),
        &ctx.actor,
        "respond.resume",
        &plan.id,
        format!("interrupted plan for {}: {what}", plan.identity),
    );
    let plan = plan.clone();
    ctx.engine.call(move |e| {
        let _lock = e.write_lock().map_err(|e| e.to_string())?;
        e.save_plan(&plan, entry).map_err(|e| e.to_string())
    })?
}

/// Deletes a new key whose secret died with a killed process, by undoing the plan that made
/// it (its create step's result filled in with the key found live), so that the deletion
/// is an audited undo like any other.
async fn delete_orphan(ctx: &Ctx, plan: &mut Plan, orphan: &str) -> Result<(), String> {
    let now = now_ms();
    for s in &mut plan.steps {
        if matches!(s.action, Action::CreateAccessKey { .. })
            && !s.result.as_ref().is_some_and(|r| r.ok)
        {
            s.result = Some(StepResult {
                at: now,
                ok: true,
                message: format!(
                    "recorded on resume: key {orphan} was created before the process was killed, its secret lost"
                ),
                verified: None,
                state: serde_json::json!({ "new_key_id": orphan }),
            });
        }
    }
    close(
        ctx,
        Some(plan),
        &format!("its unused new key {orphan} is deleted (undo) and the key rotated afresh"),
    )?;
    if plan.status == PlanStatus::Executing || plan.status == PlanStatus::Planned {
        plan.status = PlanStatus::Failed;
    }
    let mut rec = RelayRecorder {
        relay: ctx.engine.clone(),
        actor: ctx.actor.clone(),
    };
    execute::undo(plan, &ctx.connectors, &mut rec, &now_ms)
        .await
        .map_err(|e| {
            format!(
                "deleting the unused key {orphan} (undo of {}): {e}",
                plan.id
            )
        })
}

/// `rotate --status [CAMPAIGN]`.
pub fn status(dir: &Path, id: Option<&str>, json: bool) -> anyhow::Result<Outcome> {
    let engine = open(dir)?;
    let job = match id {
        Some(id) => engine.job::<Campaign>(id)?,
        None => engine
            .jobs::<Campaign>(CAMPAIGN_KIND, None, 1)?
            .into_iter()
            .next(),
    };
    let Some(job) = job else {
        anyhow::bail!(
            "no rotation campaign{}",
            id.map(|i| format!(" `{i}`")).unwrap_or_default()
        );
    };
    let mut items: Vec<Item> = engine
        .jobs::<Item>(ITEM_KIND, Some(&job.id), usize::MAX >> 1)?
        .into_iter()
        .map(|j| j.doc)
        .collect();
    campaign::order(&mut items);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for i in &items {
        *counts.entry(i.state.as_str()).or_default() += 1;
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "campaign": job.id,
                "status": job.status,
                "breach": job.doc.breach,
                "created_at": keyward_model::time::format(job.created_at),
                "updated_at": keyward_model::time::format(job.updated_at),
                "counts": counts,
                "items": items,
            }))?
        );
    } else {
        println!(
            "campaign {}  {}  {} keys  started {}{}",
            job.id,
            job.status,
            items.len(),
            keyward_model::time::format(job.created_at),
            if job.doc.breach { "  (breach)" } else { "" }
        );
        let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        println!("{}", counts.join(", "));
        print_failures(&items);
        if job.status != "finished" {
            println!(
                "unfinished: `keyward rotate --resume {}` converges it",
                job.id
            );
        }
    }
    let all_done = items.iter().all(|i| i.state.as_str() == "done");
    Ok(if all_done {
        Outcome::Clean
    } else {
        Outcome::Broken
    })
}

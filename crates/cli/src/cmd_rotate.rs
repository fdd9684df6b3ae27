//! `keyward rotate <identity> [--execute] [--yes] [--also LOC]… [--grace-days N]`: an IAM
//! user's access key rotated without downtime. Phases: resolve the user and the key →
//! discover where the key lives (Secrets Manager, Kubernetes Secrets, Vault/OpenBao KV v2) →
//! store and audit the
//! plan (a dry run ends here) → execute it like `keyward respond execute`.
//! The new secret access key is never printed or stored: see `keyward_respond::rotate`.
//! `--all` / `--resume` / `--status` (breach rotation campaigns) are in
//! `cmd_rotate_campaign.rs`, `--due` (schedules) in `cmd_rotate_due.rs`.

use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_respond::execute::Connectors;
use keyward_respond::rotate::{self, SecretLocation};
use keyward_store::AuditEntry;

use crate::Outcome;
use crate::cmd_respond::{confirm_and_run, print_plan};
use crate::config::Config;
use crate::output::{cli_actor, now_ms};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["identity", "all", "resume", "status", "due"])))]
pub struct Args {
    /// The IAM user (`NAME`, `user/NAME` or its ARN) or the access key id to rotate.
    pub identity: Option<String>,
    /// Every IAM user with an Active access key, highest risk first, as a campaign
    /// (dry run: the order and the plan count; with --execute: a resumable campaign job).
    #[arg(long)]
    pub all: bool,
    /// With --all: a breach, so every key now (recorded on the campaign).
    #[arg(long, requires = "all")]
    pub breach: bool,
    /// Rotations running at once in a campaign.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,
    /// With --all: only users under this IAM path (`ListUsers --path-prefix`).
    #[arg(long, default_value = "/", value_name = "PATH")]
    pub path_prefix: String,
    /// Finish an unfinished campaign (the newest by default): every item a killed run left
    /// half-done is converged from what the platforms show, nothing rotated twice.
    #[arg(long, value_name = "CAMPAIGN", num_args = 0..=1, default_missing_value = "")]
    pub resume: Option<String>,
    /// A campaign's counts and failures (the newest by default); exit 1 unless every key
    /// was rotated.
    #[arg(long, value_name = "CAMPAIGN", num_args = 0..=1, default_missing_value = "")]
    pub status: Option<String>,
    /// Keys overdue or due soon on their rotation schedule (30 days high-privilege, 90
    /// standard; warned from day 25 / 75), from the inventory.
    #[arg(long)]
    pub due: bool,
    /// With --due: store a dry-run rotation plan per due key (`keyward respond list`).
    #[arg(long, requires = "due")]
    pub plan: bool,
    /// With --due: list every active key, not only the due ones.
    #[arg(long, requires = "due")]
    pub every_key: bool,
    /// Rotation period of high-privilege identities (permission scope ≥ 6), in days
    /// [config rotation.high_privilege_days; default 30].
    #[arg(long, value_parser = clap::value_parser!(u32).range(6..))]
    pub high_days: Option<u32>,
    /// Rotation period of every other identity, in days [config rotation.standard_days;
    /// default 90].
    #[arg(long, value_parser = clap::value_parser!(u32).range(6..))]
    pub standard_days: Option<u32>,
    /// With --due: judge ages as of this time (RFC 3339; default now).
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    /// Run the plan now (after confirmation, unless --yes). Without it: a dry run.
    #[arg(long)]
    pub execute: bool,
    /// Do it without asking.
    #[arg(long)]
    pub yes: bool,
    /// Another place the key lives: `secretsmanager:NAME`, `k8s:NAMESPACE/NAME` or
    /// `vault:MOUNT/PATH` (a Vault/OpenBao KV v2 secret: MOUNT is the mount's path, its first
    /// segment, PATH the secret under it, e.g. `vault:secret/app/creds`; it is written as a
    /// new version, check-and-set, and undone by writing the previous version back).
    /// Repeatable.
    #[arg(long, value_name = "LOC", value_parser = SecretLocation::parse)]
    pub also: Vec<SecretLocation>,
    /// Search Kubernetes Secrets only in this namespace (default: all). Repeatable.
    #[arg(long, value_name = "NS")]
    pub namespace: Vec<String>,
    /// Search Vault/OpenBao KV v2 only under this mount (default: every KV v2 mount
    /// `sys/mounts` lists), for one user's key or a campaign's. Vault is searched when
    /// VAULT_ADDR (or BAO_ADDR) and a token are set. Repeatable.
    #[arg(long, value_name = "MOUNT")]
    pub vault_mount: Vec<String>,
    /// Days between deactivating the old key and deleting it (by `keyward lifecycle run
    /// --execute`) [config rotation.grace_days; default 7].
    #[arg(long)]
    pub grace_days: Option<u32>,
    /// The kubeconfig context to search and write through (default: the current context).
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

/// What discovery found, before the plan is made.
pub(crate) struct Found {
    pub(crate) account: Option<String>,
    pub(crate) user: String,
    pub(crate) old_key_id: String,
    pub(crate) locations: Vec<SecretLocation>,
    pub(crate) notes: Vec<String>,
}

pub fn run(dir: &Path, config: &Config, a: Args) -> anyhow::Result<Outcome> {
    let grace_days = config.rotation_grace(a.grace_days);
    if a.due {
        let as_of = a
            .as_of
            .as_deref()
            .map(crate::output::parse_instant)
            .transpose()?;
        return crate::cmd_rotate_due::run(
            dir,
            &crate::cmd_rotate_due::Ask {
                schedule: keyward_respond::schedule::Schedule {
                    high_days: a
                        .high_days
                        .or(config.rotation.high_privilege_days)
                        .unwrap_or(30),
                    standard_days: a
                        .standard_days
                        .or(config.rotation.standard_days)
                        .unwrap_or(90),
                },
                as_of,
                plan: a.plan,
                json: a.format == "json",
                all: a.every_key,
                grace_days,
                kube_context: a.kube_context.as_deref(),
            },
        );
    }
    if a.all || a.resume.is_some() || a.status.is_some() {
        return campaign(dir, &a, config, grace_days);
    }
    let Some(identity) = a.identity.clone() else {
        anyhow::bail!("name the user or key to rotate, or use --all, --resume, --status or --due");
    };
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let found = rt.block_on(discover(&a, config))?;
    drop(rt);
    let actor = cli_actor();
    let mut plan = rotate::plan(&rotate::Request {
        account: found.account.as_deref(),
        user: &found.user,
        old_key_id: &found.old_key_id,
        locations: &found.locations,
        grace_days,
        now: now_ms(),
        actor: &actor,
    });
    plan.notes.extend(found.notes);
    {
        let _writing = crate::output::write_lock(&mut engine, dir)?;
        engine.save_plan(
            &plan,
            AuditEntry {
                at: plan.created_at,
                actor: actor.clone(),
                action: "respond.plan".into(),
                target: Some(plan.id.clone()),
                detail: Some(format!(
                    "rotate access key {} of {} ({} locations)",
                    found.old_key_id,
                    found.user,
                    found.locations.len()
                )),
                before: None,
                after: None,
            },
        )?;
    }
    if !a.execute {
        if a.format == "json" {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            print_plan(&plan);
            println!(
                "\ndry run: nothing has changed. Rotate with `keyward rotate {} --execute` or `keyward respond execute {}`",
                identity, plan.id
            );
        }
        return Ok(Outcome::Clean);
    }
    confirm_and_run(
        &mut engine,
        plan,
        keyward_policy::Act::Rotate,
        false,
        a.yes,
        a.kube_context.as_deref(),
    )
}

#[cfg(all(feature = "aws", feature = "kubernetes"))]
fn campaign(dir: &Path, a: &Args, config: &Config, grace_days: u32) -> anyhow::Result<Outcome> {
    use crate::cmd_rotate_campaign as c;
    let ask = c::Ask {
        breach: a.breach,
        execute: a.execute || a.resume.is_some(),
        yes: a.yes,
        concurrency: a.concurrency as usize,
        json: a.format == "json",
        path_prefix: &a.path_prefix,
        namespaces: &a.namespace,
        vault_mounts: &a.vault_mount,
        grace_days,
        config,
        kube_context: a.kube_context.as_deref(),
    };
    let named = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    if a.status.is_some() {
        return c::status(dir, named(&a.status).as_deref(), ask.json);
    }
    if a.resume.is_some() {
        return c::resume(dir, named(&a.resume).as_deref(), &ask);
    }
    c::all(dir, &ask)
}

#[cfg(not(all(feature = "aws", feature = "kubernetes")))]
fn campaign(_: &Path, _: &Args, _: &Config, _: u32) -> anyhow::Result<Outcome> {
    anyhow::bail!("rotation campaigns need the `aws` and `kubernetes` features")
}

/// The user, the key to replace (refusing a user with two keys), and where the key lives.
pub(crate) async fn discover(a: &Args, config: &Config) -> anyhow::Result<Found> {
    let connectors = Connectors::from_env(a.kube_context.as_deref()).await;
    discover_with(a, config, &connectors).await
}

#[cfg(feature = "aws")]
async fn discover_with(a: &Args, config: &Config, c: &Connectors) -> anyhow::Result<Found> {
    let Some(aws) = &c.aws else {
        let why = c.why_missing("aws");
        anyhow::bail!("rotating an access key needs the AWS connector: {why}");
    };
    let id = a.identity.as_deref().unwrap_or_default();
    let is_key = (id.starts_with("AKIA") || id.starts_with("ASIA")) && !id.contains('/');
    let user = if is_key {
        aws.key_user(id).await?
    } else {
        id.rsplit(['/', ':']).next().unwrap_or(id).to_owned()
    };
    let keys = aws.access_keys(&user).await?;
    let listed = || {
        keys.iter()
            .map(|k| format!("{} {}", k.id, if k.active { "Active" } else { "Inactive" }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if keys.len() >= 2 {
        anyhow::bail!(
            "`{user}` already has two access keys ({}), the most IAM allows: delete the one not in use (`aws iam delete-access-key --user-name {user} --access-key-id ID`) and rotate again",
            listed()
        );
    }
    let old = match keys.first() {
        Some(k) if is_key && k.id != id => anyhow::bail!("`{user}` has no access key `{id}`"),
        Some(k) if !k.active => anyhow::bail!(
            "the access key of `{user}` ({}) is Inactive: nothing uses it to rotate",
            k.id
        ),
        Some(k) => k.id.clone(),
        None => anyhow::bail!("`{user}` has no access key"),
    };
    let account = aws
        .caller()
        .await
        .ok()
        .and_then(|arn| arn.split(':').nth(4).map(str::to_owned))
        .filter(|a| !a.is_empty());
    let mut locations: Vec<SecretLocation> = aws
        .secrets_containing(&old)
        .await?
        .into_iter()
        .map(|secret_id| SecretLocation::Secretsmanager { secret_id })
        .collect();
    let mut notes = Vec::new();
    kube_locations(a, c, &old, &mut locations, &mut notes).await?;
    vault_locations(a, c, &old, &mut locations, &mut notes).await?;
    locations.extend(a.also.iter().cloned());
    let declared = config.declared_locations(&user, &old);
    if !declared.is_empty() {
        notes.push(format!(
            "{} location(s) declared in {}",
            declared.len(),
            config.source()
        ));
    }
    locations.extend(declared);
    Ok(Found {
        account,
        user,
        old_key_id: old,
        locations,
        notes,
    })
}

#[cfg(not(feature = "aws"))]
async fn discover_with(_: &Args, _: &Config, _: &Connectors) -> anyhow::Result<Found> {
    anyhow::bail!("this keyward was built without the `aws` feature: it cannot rotate keys")
}

#[cfg(all(feature = "aws", feature = "kubernetes"))]
async fn kube_locations(
    a: &Args,
    c: &Connectors,
    key: &str,
    out: &mut Vec<SecretLocation>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    match &c.kube {
        Some(k) => out.extend(
            k.secrets_containing(key, &a.namespace)
                .await?
                .into_iter()
                .map(|(namespace, name)| SecretLocation::Kubernetes { namespace, name }),
        ),
        None => notes.push(kube_not_searched(c)),
    }
    Ok(())
}

#[cfg(all(feature = "aws", not(feature = "kubernetes")))]
async fn kube_locations(
    _: &Args,
    c: &Connectors,
    _: &str,
    _: &mut Vec<SecretLocation>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    notes.push(kube_not_searched(c));
    Ok(())
}

#[cfg(feature = "aws")]
fn kube_not_searched(c: &Connectors) -> String {
    let why = c.why_missing("kubernetes");
    format!("Kubernetes Secrets were not searched ({why}): declare them with --also k8s:NS/NAME")
}

#[cfg(all(feature = "aws", feature = "vault"))]
async fn vault_locations(
    a: &Args,
    c: &Connectors,
    key: &str,
    out: &mut Vec<SecretLocation>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    match &c.vault {
        Some(v) => {
            let (found, unsearched) = v.secrets_containing(key, &a.vault_mount).await?;
            out.extend(found);
            notes.extend(unsearched);
        }
        None => notes.push(vault_not_searched(c)),
    }
    Ok(())
}

#[cfg(all(feature = "aws", not(feature = "vault")))]
async fn vault_locations(
    _: &Args,
    c: &Connectors,
    _: &str,
    _: &mut Vec<SecretLocation>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    notes.push(vault_not_searched(c));
    Ok(())
}

#[cfg(feature = "aws")]
fn vault_not_searched(c: &Connectors) -> String {
    let why = c.why_missing("vault");
    format!(
        "Vault/OpenBao KV was not searched ({why}): declare secrets with --also vault:MOUNT/PATH"
    )
}

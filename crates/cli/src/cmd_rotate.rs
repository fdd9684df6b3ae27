//! `keyward rotate <identity> [--execute] [--yes] [--also LOC]… [--grace-days N]`: an IAM
//! user's access key rotated without downtime. Phases: resolve the user and the key →
//! discover where the key lives (Secrets Manager, Kubernetes Secrets, Vault/OpenBao KV v2) →
//! store and audit the
//! plan (a dry run ends here) → execute it like `keyward respond execute`.
//! The new secret access key is never printed or stored: see `keyward_respond::rotate`.

use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_respond::execute::Connectors;
use keyward_respond::rotate::{self, SecretLocation};
use keyward_store::AuditEntry;

use crate::Outcome;
use crate::cmd_respond::{confirm_and_run, print_plan};
use crate::output::{cli_actor, now_ms};

#[derive(clap::Args)]
pub struct Args {
    /// The IAM user (`NAME`, `user/NAME` or its ARN) or the access key id to rotate.
    pub identity: String,
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
    /// `sys/mounts` lists). Vault is searched when VAULT_ADDR (or BAO_ADDR) and a token are
    /// set. Repeatable.
    #[arg(long, value_name = "MOUNT")]
    pub vault_mount: Vec<String>,
    /// Days between deactivating the old key and deleting it (a step left to a person).
    #[arg(long, default_value_t = 7)]
    pub grace_days: u32,
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

pub fn run(dir: &Path, a: Args) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let found = rt.block_on(discover(&a))?;
    drop(rt);
    let actor = cli_actor();
    let mut plan = rotate::plan(&rotate::Request {
        account: found.account.as_deref(),
        user: &found.user,
        old_key_id: &found.old_key_id,
        locations: &found.locations,
        grace_days: a.grace_days,
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
                a.identity, plan.id
            );
        }
        return Ok(Outcome::Clean);
    }
    confirm_and_run(&mut engine, plan, false, a.yes, a.kube_context.as_deref())
}

/// The user, the key to replace (refusing a user with two keys), and where the key lives.
pub(crate) async fn discover(a: &Args) -> anyhow::Result<Found> {
    let connectors = Connectors::from_env(a.kube_context.as_deref()).await;
    discover_with(a, &connectors).await
}

#[cfg(feature = "aws")]
async fn discover_with(a: &Args, c: &Connectors) -> anyhow::Result<Found> {
    let Some(aws) = &c.aws else {
        let why = c
            .missing
            .iter()
            .find(|(p, _)| *p == "aws")
            .map_or("not configured", |(_, w)| w.as_str());
        anyhow::bail!("rotating an access key needs the AWS connector: {why}");
    };
    let id = a.identity.as_str();
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
    Ok(Found {
        account,
        user,
        old_key_id: old,
        locations,
        notes,
    })
}

#[cfg(not(feature = "aws"))]
async fn discover_with(_: &Args, _: &Connectors) -> anyhow::Result<Found> {
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
    let why = c
        .missing
        .iter()
        .find(|(p, _)| *p == "kubernetes")
        .map_or("not configured", |(_, w)| w.as_str());
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
    let why = c
        .missing
        .iter()
        .find(|(p, _)| *p == "vault")
        .map_or("not configured", |(_, w)| w.as_str());
    format!(
        "Vault/OpenBao KV was not searched ({why}): declare secrets with --also vault:MOUNT/PATH"
    )
}

//! `keyward demo`: ingest the bundled example estate into a temporary store and show what a
//! new user should look at first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use keyward_engine::{Engine, Filter};
use keyward_model::{
    CredentialKind, CredentialStatus, Identity, IdentityKind, Lifecycle, LifecycleConfig, time,
};

use crate::Outcome;
use crate::cmd_ingest::{self, print_summary};
use crate::output::{age, scope};

include!(concat!(env!("OUT_DIR"), "/estate.rs"));

#[derive(clap::Args)]
pub struct Args {
    /// Keep the demo store (and the extracted example files) instead of deleting them.
    #[arg(long)]
    pub keep: bool,
}

fn write_estate(root: &Path) -> anyhow::Result<PathBuf> {
    let estate = root.join("estate");
    for (rel, bytes) in ESTATE {
        let p = estate.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("writing `{}`", p.display()))?;
    }
    Ok(estate)
}

fn section(title: &str, items: &[String]) {
    println!("\n{title} ({})", items.len());
    for i in items.iter().take(12) {
        println!("  {i}");
    }
    if items.len() > 12 {
        println!("  … and {} more", items.len() - 12);
    }
}

/// An identity and its lifecycle state, as `Engine::list` returns them.
type Listed<'a> = (&'a Identity, Lifecycle);

/// The tour, top-down: ingest, the inventory table, the sections a new user should look at
/// first, then what to try next.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let tmp = tempfile::Builder::new().prefix("keyward-demo-").tempdir()?;
    let mut engine = ingest_estate(tmp.path())?;

    // The example data is frozen in time: judge it as of its last event.
    let as_of = engine.latest_event_time()?.unwrap_or(0);
    let lc = LifecycleConfig {
        as_of,
        stale_after_days: 30,
    };
    let all = engine.list(&Filter::default(), lc);
    print_inventory(&all, as_of);

    section(
        "Stale AWS identities: unused for more than 30 days",
        &stale(&all, as_of),
    );
    section(
        "Static access keys: two active keys, or a key older than 90 days",
        &static_keys(&all, as_of),
    );
    section(
        "Shadow service accounts: active in the audit log, absent from the RBAC snapshot",
        &shadow_service_accounts(&all),
    );
    section(
        "IAM principals seen only in CloudTrail (missing from the IAM snapshot)",
        &log_only(&all),
    );
    section(
        "Federated subjects (GitHub Actions OIDC, EKS IRSA) and the roles they assume",
        &federated(&all),
    );
    section(
        "Other AWS accounts acting in this one",
        &external_accounts(&all),
    );
    section("Deleted during the period", &deleted(&all));
    print_longest_chain(&all);
    section(
        "Privilege-escalation paths to admin (technique ids from pathfinding.cloud)",
        &escalations(&engine)?,
    );

    // Ownership: orphans, and one chain drawn in full.
    section(
        "Orphans: owner departed, function or workload gone, or referenced by nothing",
        &orphans(&engine, &all),
    );
    println!(
        "\nOwnership chain of the CI service account (`keyward graph chain jenkins-deploy-sa`):"
    );
    crate::cmd_graph::print_chain(&engine, "jenkins-deploy-sa")?;
    section(
        "Roles trusting other accounts (`graph trusts --allow-account …` to accept some)",
        &foreign_trusts(&engine),
    );

    print_containment_plan(&mut engine)?;

    // Close the store before its directory is kept or deleted.
    drop(engine);
    print_next_steps(tmp, args.keep);
    Ok(Outcome::Clean)
}

/// Writes the example estate under `root`, ingests it into a store beside it and prints
/// the ingest summary.
fn ingest_estate(root: &Path) -> anyhow::Result<Engine> {
    let estate = write_estate(root)?;
    let data = root.join("data");
    println!(
        "Keyward demo: the example estate (one AWS account, one EKS cluster, a week of activity)"
    );
    println!("store: {} (temporary)\n", data.display());
    let mut engine = Engine::open_sqlite(&data)?;
    let ingest_args = cmd_ingest::Args {
        paths: vec![estate],
        format: None,
        cluster: None,
        force: false,
        person_status: Vec::new(),
        no_detect: false,
        detect: Default::default(),
        bus: crate::cmd_worker::BusArgs {
            bus: None,
            bus_stream: keyward_bus::DEFAULT_STREAM.into(),
            bus_partitions: keyward_bus::DEFAULT_PARTITIONS,
        },
        // The example configuration's purposes: the estate's cost-analysis agent.
        intents: crate::config::Config::parse(include_str!("../../../examples/keyward.yaml"))?
            .intents()?,
    };
    let (report, secs) = cmd_ingest::ingest(&mut engine, &ingest_args)?;
    print_summary(&report, secs, engine.inventory().len());
    Ok(engine)
}

/// Identities per kind and lifecycle state.
fn print_inventory(all: &[Listed], as_of: i64) {
    println!(
        "\ninventory as of {} (the last event in the data):",
        time::format(as_of)
    );
    let mut by_kind: BTreeMap<&str, [usize; 5]> = BTreeMap::new();
    for (i, s) in all {
        let slot = match s {
            Lifecycle::Active => 0,
            Lifecycle::Stale => 1,
            Lifecycle::Unknown => 2,
            Lifecycle::Ephemeral => 3,
            Lifecycle::Deleted => 4,
        };
        if let Some(c) = by_kind.entry(i.kind.as_str()).or_default().get_mut(slot) {
            *c += 1;
        }
    }
    let mut t = crate::output::table();
    t.set_header([
        "  kind",
        "active",
        "stale",
        "unknown",
        "ephemeral",
        "deleted",
    ]);
    for (k, c) in &by_kind {
        t.add_row([
            format!("  {k}"),
            c[0].to_string(),
            c[1].to_string(),
            c[2].to_string(),
            c[3].to_string(),
            c[4].to_string(),
        ]);
    }
    println!("{t}");
}

/// Not a short-lived identity (session, pod token, …).
fn durable(i: &Identity) -> bool {
    !i.kind.is_ephemeral()
}

/// The first columns of a section line: kind, name, scope.
fn show(i: &Identity) -> String {
    format!("{:<24} {:<28} {}", i.kind.as_str(), i.name, scope(i))
}

fn stale(all: &[Listed], as_of: i64) -> Vec<String> {
    all.iter()
        .filter(|(i, s)| {
            *s == Lifecycle::Stale && durable(i) && i.kind != IdentityKind::ServiceAccount
        })
        .map(|(i, _)| {
            format!(
                "{}  last used {}",
                show(i),
                if i.last_used.is_some() {
                    format!("{} ago", age(i.last_used, as_of))
                } else {
                    "never".into()
                }
            )
        })
        .collect()
}

fn static_keys(all: &[Listed], as_of: i64) -> Vec<String> {
    all.iter()
        .filter(|(i, _)| {
            i.active_key_count() >= 2
                || i.credentials.iter().any(|c| {
                    c.kind == CredentialKind::AccessKey
                        && c.status == CredentialStatus::Active
                        && c.created.is_some_and(|t| as_of - t > 90 * time::MS_PER_DAY)
                })
        })
        .map(|(i, _)| {
            format!(
                "{}  {}",
                show(i),
                crate::output::credential_summary(i, as_of)
            )
        })
        .collect()
}

fn shadow_service_accounts(all: &[Listed]) -> Vec<String> {
    all.iter()
        .filter(|(i, _)| {
            i.kind == IdentityKind::ServiceAccount
                && i.evidence.dynamic_log
                && !i.evidence.static_config
        })
        .map(|(i, _)| show(i))
        .collect()
}

fn log_only(all: &[Listed]) -> Vec<String> {
    all.iter()
        .filter(|(i, s)| {
            matches!(i.kind, IdentityKind::IamUser | IdentityKind::IamRole)
                && !i.evidence.static_config
                && *s != Lifecycle::Deleted
        })
        .map(|(i, _)| {
            format!(
                "{}  created by {}",
                show(i),
                i.created_by.iter().next().map_or("?", String::as_str)
            )
        })
        .collect()
}

fn federated(all: &[Listed]) -> Vec<String> {
    all.iter()
        .filter(|(i, _)| i.kind == IdentityKind::OidcSubject)
        .map(|(i, _)| {
            format!(
                "{:<60} → {}",
                i.name,
                i.links
                    .iter()
                    .filter(|l| l.contains(":role/"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect()
}

fn external_accounts(all: &[Listed]) -> Vec<String> {
    all.iter()
        .filter(|(i, _)| i.kind == IdentityKind::ExternalAccount)
        .map(|(i, _)| format!("account {}  ({} calls)", i.name, i.event_count))
        .collect()
}

fn deleted(all: &[Listed]) -> Vec<String> {
    all.iter()
        .filter(|(_, s)| *s == Lifecycle::Deleted)
        .map(|(i, _)| {
            format!(
                "{}  deleted {}",
                show(i),
                crate::output::ts(i.deleted).unwrap_or_default()
            )
        })
        .collect()
}

/// The STS session with the longest role chain, if any session was chained.
fn print_longest_chain(all: &[Listed]) {
    if let Some((longest, _)) = all
        .iter()
        .filter(|(i, _)| i.kind == IdentityKind::StsSession)
        .max_by_key(|(i, _)| i.chain.len())
        && !longest.chain.is_empty()
    {
        println!(
            "\nLongest role chain:\n  {} → {}",
            longest.chain.join(" → "),
            longest.id
        );
    }
}

fn escalations(engine: &Engine) -> anyhow::Result<Vec<String>> {
    let as_of = engine
        .latest_event_time()?
        .unwrap_or_else(crate::output::now_ms);
    let (_, escalations) = engine.escalation_paths(None, as_of)?;
    Ok(escalations
        .iter()
        .map(|f| {
            let (id, p) = (&f.from, &f.path);
            let hops: Vec<String> = p
                .steps
                .iter()
                .map(|s| {
                    format!(
                        "{} → {}",
                        s.technique,
                        s.to.rsplit('/').next().unwrap_or(&s.to)
                    )
                })
                .collect();
            format!(
                "{}  {} ⇒ admin",
                id.rsplit('/').next().unwrap_or(id),
                hops.join(" · ")
            )
        })
        .collect())
}

fn orphans(engine: &Engine, all: &[Listed]) -> Vec<String> {
    let coverage = engine.coverage();
    all.iter()
        .filter(|(i, s)| *s != Lifecycle::Deleted && durable(i))
        .filter_map(|(i, _)| {
            let o = engine.owner_info(i, &coverage);
            let reason = o.orphan.as_ref()?.as_str();
            Some(format!(
                "{}  {reason:<16} {}",
                show(i),
                crate::output::owner_cell(&o)
            ))
        })
        .collect()
}

fn foreign_trusts(engine: &Engine) -> Vec<String> {
    keyward_graph::analysis::foreign_trusts(engine.graph(), &[])
        .iter()
        .map(|t| {
            format!(
                "{:<40} trusts {}{}",
                t.role.rsplit('/').next().unwrap_or(&t.role),
                if t.trusted_account == "*" {
                    "anyone".to_owned()
                } else {
                    format!("account {}", t.trusted_account)
                },
                if t.conditions.is_empty() {
                    String::new()
                } else {
                    format!("  if {}", t.conditions.join("; "))
                }
            )
        })
        .collect()
}

/// The containment plan (a dry run) for the identity behind the estate's backdoor key.
fn print_containment_plan(engine: &mut Engine) -> anyhow::Result<()> {
    let Some(f) = engine
        .findings(&Default::default())?
        .into_iter()
        .find(|f| f.rule_id == "kw-aws-backdoor-access-key")
    else {
        return Ok(());
    };
    let plan = engine.plan_response(&keyward_engine::respond::PlanAsk {
        everywhere: false,
        target: &f.id,
        since: None,
        now: crate::output::now_ms(),
        actor: "cli:demo",
        protect: &[],
        k8s: keyward_respond::plan::K8sStrategy::Contain,
    })?;
    println!(
        "\nContainment plan for the backdoor key's creator (`keyward respond plan {}`; a dry run, nothing changes):",
        f.id
    );
    for s in &plan.steps {
        println!(
            "  {}. {:<22} {}  [{}]",
            s.n,
            s.action.name(),
            s.target,
            s.why
        );
        if let Some(c) = s.command.last() {
            println!("     $ {c}");
        }
    }
    Ok(())
}

/// Keeps or deletes the demo store (with `--keep`), then suggests commands to try.
fn print_next_steps(tmp: tempfile::TempDir, keep: bool) {
    if keep {
        let kept = tmp.keep();
        println!(
            "\nkept: store in {}/data, example files in {}/estate",
            kept.display(),
            kept.display()
        );
        println!("try:  export KEYWARD_DATA_DIR={}/data", kept.display());
    } else {
        println!(
            "\nthe demo store is deleted on exit (`keyward demo --keep` keeps it). Next, on your own data:"
        );
    }
    println!("  keyward inventory --state stale            # what nobody uses any more");
    println!("  keyward inventory --kind oidc_subject --format json");
    println!(
        "  keyward show github-actions-deploy         # one identity, its credentials and events"
    );
    println!("  keyward graph paths                        # who can become admin, and how");
    println!("  keyward graph blast-radius terraform-runner  # what a stolen key reaches");
    println!("  keyward inventory --orphaned               # identities nobody answers for");
    println!("  keyward respond plan FINDING-ID            # contain an identity (dry run first)");
}

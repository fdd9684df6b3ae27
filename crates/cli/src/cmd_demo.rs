//! `keyward demo`: ingest the bundled example estate into a temporary store and show what a
//! new user should look at first.

use std::path::PathBuf;

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

fn write_estate(root: &std::path::Path) -> anyhow::Result<PathBuf> {
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

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let tmp = tempfile::Builder::new().prefix("keyward-demo-").tempdir()?;
    let root = tmp.path().to_path_buf();
    let estate = write_estate(&root)?;
    let data = root.join("data");
    println!(
        "Keyward demo: the example estate (one AWS account, one EKS cluster, a week of activity)"
    );
    println!("store: {} (temporary)\n", data.display());
    let mut engine = Engine::open(&data)?;
    let ingest_args = cmd_ingest::Args {
        paths: vec![estate.clone()],
        format: None,
        cluster: None,
        force: false,
        no_detect: false,
        detect: Default::default(),
    };
    let (report, secs) = cmd_ingest::ingest(&mut engine, &ingest_args)?;
    print_summary(&report, secs, engine.inventory().len());

    // The example data is frozen in time: judge it as of its last event.
    let as_of = engine.latest_event_time()?.unwrap_or(0);
    let lc = LifecycleConfig {
        as_of,
        stale_after_days: 30,
    };
    let all = engine.list(&Filter::default(), lc);
    println!(
        "\ninventory as of {} (the last event in the data):",
        time::format(as_of)
    );
    let mut by_kind: std::collections::BTreeMap<&str, [usize; 4]> =
        std::collections::BTreeMap::new();
    for (i, s) in &all {
        let slot = match s {
            Lifecycle::Active => 0,
            Lifecycle::Stale => 1,
            Lifecycle::Ephemeral => 2,
            Lifecycle::Deleted => 3,
        };
        if let Some(c) = by_kind.entry(i.kind.as_str()).or_default().get_mut(slot) {
            *c += 1;
        }
    }
    let mut t = crate::output::table();
    t.set_header(["  kind", "active", "stale", "ephemeral", "deleted"]);
    for (k, c) in &by_kind {
        t.add_row([
            format!("  {k}"),
            c[0].to_string(),
            c[1].to_string(),
            c[2].to_string(),
            c[3].to_string(),
        ]);
    }
    println!("{t}");

    let durable = |i: &Identity| !i.kind.is_ephemeral();
    let show = |i: &Identity| format!("{:<24} {:<28} {}", i.kind.as_str(), i.name, scope(i));
    let stale: Vec<String> = all
        .iter()
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
        .collect();
    section("Stale AWS identities: unused for more than 30 days", &stale);
    let keys: Vec<String> = all
        .iter()
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
        .collect();
    section(
        "Static access keys: two active keys, or a key older than 90 days",
        &keys,
    );
    let shadow: Vec<String> = all
        .iter()
        .filter(|(i, _)| {
            i.kind == IdentityKind::ServiceAccount
                && i.evidence.dynamic_log
                && !i.evidence.static_config
        })
        .map(|(i, _)| show(i))
        .collect();
    section(
        "Shadow service accounts: active in the audit log, absent from the RBAC snapshot",
        &shadow,
    );
    let log_only: Vec<String> = all
        .iter()
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
        .collect();
    section(
        "IAM principals seen only in CloudTrail (missing from the IAM snapshot)",
        &log_only,
    );
    let federated: Vec<String> = all
        .iter()
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
        .collect();
    section(
        "Federated subjects (GitHub Actions OIDC, EKS IRSA) and the roles they assume",
        &federated,
    );
    let external: Vec<String> = all
        .iter()
        .filter(|(i, _)| i.kind == IdentityKind::ExternalAccount)
        .map(|(i, _)| format!("account {}  ({} calls)", i.name, i.event_count))
        .collect();
    section("Other AWS accounts acting in this one", &external);
    let deleted: Vec<String> = all
        .iter()
        .filter(|(_, s)| *s == Lifecycle::Deleted)
        .map(|(i, _)| {
            format!(
                "{}  deleted {}",
                show(i),
                crate::output::ts(i.deleted).unwrap_or_default()
            )
        })
        .collect();
    section("Deleted during the period", &deleted);
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

    let (_, escalations) = engine.escalation_paths(None)?;
    let lines: Vec<String> = escalations
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
        .collect();
    section(
        "Privilege-escalation paths to admin (technique ids from pathfinding.cloud)",
        &lines,
    );

    // Ownership: orphans, and one chain drawn in full.
    let coverage = engine.coverage();
    let orphans: Vec<String> = all
        .iter()
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
        .collect();
    section(
        "Orphans: owner departed, function or workload gone, or referenced by nothing",
        &orphans,
    );
    println!(
        "
Ownership chain of the CI service account (`keyward graph chain jenkins-deploy-sa`):"
    );
    crate::cmd_graph::print_chain(&engine, "jenkins-deploy-sa")?;
    let trusts = keyward_graph::analysis::foreign_trusts(engine.graph(), &[]);
    let lines: Vec<String> = trusts
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
        .collect();
    section(
        "Roles trusting other accounts (`graph trusts --allow-account …` to accept some)",
        &lines,
    );

    if args.keep {
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
    Ok(Outcome::Clean)
}

//! `keyward clusters [list]|merge FROM INTO`: the Kubernetes clusters the inventory holds,
//! the evidence that says two are one, and merging them (audited; `FROM` becomes an alias
//! of `INTO` for later inputs).

use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_store::AuditEntry;

use crate::Outcome;
use crate::output::{cli_actor, now_ms, table};

#[derive(clap::Subcommand)]
pub enum Command {
    /// The clusters, their identities, and which share evidence of being one.
    List,
    /// File cluster FROM's identities, objects and edges under INTO.
    Merge { from: String, into: String },
}

pub fn run(dir: &Path, cmd: Command) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    match cmd {
        Command::List => {
            let mut t = table();
            t.set_header(["cluster", "identities"]);
            for (c, n) in engine.clusters() {
                t.add_row([c, n.to_string()]);
            }
            println!("{t}");
            for j in engine.cluster_evidence()? {
                println!(
                    "`{}` and `{}` are one cluster: {}; `keyward clusters merge {} {}`",
                    j.from,
                    j.into,
                    evidence(&j.evidence),
                    j.from,
                    j.into
                );
            }
        }
        Command::Merge { from, into } => {
            let _writing = crate::output::write_lock(&mut engine, dir)?;
            if !engine.clusters().contains_key(&from) {
                anyhow::bail!("no cluster `{from}` in the inventory");
            }
            let audit = AuditEntry {
                at: now_ms(),
                actor: cli_actor(),
                action: "clusters.merge".into(),
                target: Some(into.clone()),
                detail: Some(format!("merged cluster `{from}` into `{into}`")),
                before: Some(from.clone()),
                after: None,
            };
            let c = engine.merge_clusters(&from, &into, audit)?;
            println!(
                "merged `{from}` into `{into}`: {} identities ({} twins joined), {} objects, {} observed edges, {} findings",
                c.identities, c.twins, c.objects, c.edges, c.findings
            );
        }
    }
    Ok(Outcome::Clean)
}

/// What two clusters share, in words.
pub fn evidence(e: &keyward_engine::SharedEvidence) -> String {
    format!(
        "{} service-account uid(s), {} pod uid(s), {} node name(s) shared",
        e.service_accounts, e.pods, e.nodes
    )
}

//! `keyward migrate --from sqlite:DIR --to postgres://…`: moving up from the embedded store.
//! The SQLite store is copied row for row into an empty PostgreSQL database in one
//! transaction (`keyward_store::sqlite_to_postgres`), then checked: the audit chain verifies
//! on the destination with the same key files (they stay in the data directory), and the
//! inventory, findings and events answer as from the source. Decided by the policies
//! (`manage` on the estate) and audited on both stores.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_store::{AuditEntry, Location};

use crate::Outcome;
use crate::output::{cli_actor, now_ms};

#[derive(clap::Args)]
pub struct Args {
    /// The store to copy: `sqlite:DIR` or a data directory (default: the data directory).
    #[arg(long, value_name = "SQLITE")]
    pub from: Option<String>,
    /// The empty PostgreSQL database to copy into: `postgres://USER@HOST:PORT/DB`.
    #[arg(long, value_name = "URL")]
    pub to: String,
}

fn sqlite_dir(from: Option<&str>, data_dir: &Path) -> anyhow::Result<PathBuf> {
    let Some(from) = from else {
        return Ok(data_dir.to_path_buf());
    };
    match Location::parse(from)? {
        Location::Sqlite(dir) => Ok(dir),
        Location::Postgres(_) => anyhow::bail!("--from names a PostgreSQL store: copy from SQLite"),
    }
}

/// What a store answers, to compare two: identities, findings, events.
fn answers(e: &Engine) -> anyhow::Result<(usize, usize, u64)> {
    let all = keyward_engine::FindingQuery::default();
    Ok((
        e.inventory().len(),
        e.findings(&all)?.len(),
        e.event_count()?,
    ))
}

/// The URL without its password (`postgres://user:secret@host/db` → `postgres://user@host/db`).
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((who, place)) => {
            let user = who.split_once(':').map_or(who, |(u, _)| u);
            format!("{scheme}://{user}@{place}")
        }
        None => url.to_owned(),
    }
}

pub fn run(data_dir: &Path, a: Args) -> anyhow::Result<Outcome> {
    let from = sqlite_dir(a.from.as_deref(), data_dir)?;
    if !matches!(Location::parse(&a.to)?, Location::Postgres(_)) {
        anyhow::bail!("--to must be a PostgreSQL URL (postgres://USER@HOST:PORT/DB)");
    }
    let mut source = Engine::open_sqlite(&from)
        .with_context(|| format!("opening the SQLite store in `{}`", from.display()))?;
    crate::policy::require(
        &mut source,
        keyward_policy::Act::Manage,
        &keyward_policy::Resource::Estate,
        &crate::policy::here(),
    )?;
    let before = answers(&source)?;
    let actor = cli_actor();
    // The copy is one transaction on the destination; the source is only read.
    let copied = {
        let _writing = crate::output::write_lock(&mut source, &from)?;
        keyward_store::sqlite_to_postgres(&from, &a.to)?
    };
    for (table, n) in &copied.tables {
        println!("{table:<18} {n:>10} rows");
    }
    let mut dest = Engine::open_url(&a.to, &from).context("opening the PostgreSQL store")?;
    let verified = dest.audit_verify(&[])?;
    if !verified.ok {
        anyhow::bail!("the copied audit chain does not verify on PostgreSQL: {verified:?}");
    }
    let after = answers(&dest)?;
    if after != before {
        anyhow::bail!(
            "the copy answers differently: identities, findings, events {before:?} in SQLite, {after:?} in PostgreSQL"
        );
    }
    let detail = format!(
        "copied to PostgreSQL: {} identities, {} findings, {} events, {} audit entries",
        before.0,
        before.1,
        before.2,
        copied.rows("audit_log")
    );
    for e in [&mut source, &mut dest] {
        e.audit(&AuditEntry {
            at: now_ms(),
            actor: actor.clone(),
            action: "store.migrate".into(),
            target: Some(redacted(&a.to)),
            detail: Some(detail.clone()),
            before: None,
            after: None,
        })?;
    }
    println!(
        "\n{detail}; the audit chain verifies ({} entries). Run with `--store {}` (or KEYWARD_STORE) \
         and the same data directory (the audit keys stay there).",
        verified.entries,
        redacted(&a.to)
    );
    Ok(Outcome::Clean)
}

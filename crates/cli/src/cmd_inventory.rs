//! `keyward inventory`: list identities with filters, as a table, JSON or CSV.

use std::path::Path;

use anyhow::Context as _;
use keyward_engine::{Engine, Filter};
use keyward_model::{IdentityKind, Lifecycle, LifecycleConfig, Platform};

use crate::Outcome;
use crate::output::{
    age, credential_summary, now_ms, owner_cell, parse_instant, row, scope, table, ts,
};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_parser = parse_platform)]
    pub platform: Option<Platform>,
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<IdentityKind>,
    /// active, stale, unknown (would be stale, but nothing covers the window), ephemeral
    /// or deleted.
    #[arg(long, value_parser = parse_state)]
    pub state: Option<Lifecycle>,
    /// AWS account id (or Kubernetes cluster name).
    #[arg(long)]
    pub account: Option<String>,
    #[arg(long)]
    pub namespace: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Unused for more than this many days counts as stale.
    #[arg(long, default_value_t = 30)]
    pub stale_days: i64,
    /// Compute lifecycle states as of this instant (default: now).
    #[arg(long, value_parser = parse_instant)]
    pub as_of: Option<i64>,
    /// Only identities owned by this person (email, `@handle`) or team.
    #[arg(long)]
    pub owner: Option<String>,
    /// Only orphans (owner departed, function or workload gone, unreferenced).
    #[arg(long)]
    pub orphaned: bool,
    /// List one page of at most this many identities (with `--offset`).
    #[arg(long)]
    pub limit: Option<usize>,
    /// With `--limit`: skip this many identities first.
    #[arg(long, default_value_t = 0, requires = "limit")]
    pub offset: usize,
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    Platform::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Platform::ALL.iter().map(|p| p.as_str()).collect();
        format!("unknown platform `{s}`; one of: {}", all.join(", "))
    })
}

fn parse_kind(s: &str) -> Result<IdentityKind, String> {
    IdentityKind::parse(s).ok_or_else(|| {
        let all: Vec<&str> = IdentityKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind `{s}`; one of: {}", all.join(", "))
    })
}

fn parse_state(s: &str) -> Result<Lifecycle, String> {
    Lifecycle::parse(s).ok_or_else(|| {
        format!("unknown state `{s}`; one of: active, stale, unknown, ephemeral, deleted")
    })
}

pub fn run(dir: &Path, args: Args) -> anyhow::Result<Outcome> {
    // A page without owner filters (which walk every row) is read from the store's query
    // tables when they can answer (see `Engine::open_page`).
    let opened = match args.limit {
        Some(limit) if args.owner.is_none() && !args.orphaned => {
            let page = keyward_engine::Page {
                filter: filter(&args),
                offset: args.offset,
                limit,
            };
            Engine::open_page(dir, &page)
        }
        Some(_) | None => Engine::open(dir),
    };
    let engine = opened.with_context(|| format!("opening the store in `{}`", dir.display()))?;
    let as_of = args.as_of.unwrap_or_else(now_ms);
    print(&engine, &args, as_of)?;
    Ok(Outcome::Clean)
}

fn filter(args: &Args) -> Filter {
    Filter {
        platform: args.platform,
        kind: args.kind,
        state: args.state,
        account: args.account.clone(),
        namespace: args.namespace.clone(),
    }
}

pub fn print(engine: &Engine, args: &Args, as_of: i64) -> anyhow::Result<()> {
    let filter = filter(args);
    let lc = LifecycleConfig {
        as_of,
        stale_after_days: args.stale_days,
    };
    let owners = keyward_engine::OwnerFilter {
        owner: args.owner.clone(),
        orphaned: args.orphaned,
    };
    let listed = match args.limit {
        Some(limit) => engine.page(&filter, lc, &owners, args.offset, limit),
        None => engine.owned(engine.list(&filter, lc), &owners, true),
    };
    let rows: Vec<_> = listed
        .into_iter()
        .map(|(row, o)| (row, o.unwrap_or_default()))
        .collect();
    match args.format {
        OutputFormat::Json => {
            let json: Vec<_> = rows
                .iter()
                .map(|((i, s), o)| row(i, *s, as_of, o))
                .collect();
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        OutputFormat::Csv => {
            // Written whole through `print!`, which escapes control characters.
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "id",
                "platform",
                "kind",
                "name",
                "arn",
                "account",
                "cluster",
                "namespace",
                "subject",
                "created",
                "last_used",
                "first_seen",
                "last_seen",
                "state",
                "evidence",
                "sources",
                "federated",
                "active_keys",
                "event_count",
                "parent",
                "owner",
                "team",
                "owner_confidence",
                "orphan_reason",
            ])?;
            for ((i, s), own) in &rows {
                let o = |v: &Option<String>| v.clone().unwrap_or_default();
                w.write_record([
                    i.id.clone(),
                    i.platform.as_str().into(),
                    i.kind.as_str().into(),
                    i.name.clone(),
                    o(&i.arn),
                    o(&i.account),
                    o(&i.cluster),
                    o(&i.namespace),
                    o(&i.subject),
                    ts(i.created).unwrap_or_default(),
                    ts(i.last_used).unwrap_or_default(),
                    ts(i.first_seen).unwrap_or_default(),
                    ts(i.last_seen).unwrap_or_default(),
                    s.as_str().into(),
                    i.evidence.label().into(),
                    i.sources.iter().cloned().collect::<Vec<_>>().join(";"),
                    i.federated().to_string(),
                    i.active_key_count().to_string(),
                    i.event_count.to_string(),
                    o(&i.parent),
                    o(&own.ownership.owner),
                    o(&own.ownership.team),
                    format!("{:.2}", own.ownership.confidence),
                    own.orphan
                        .as_ref()
                        .map(|r| r.as_str().to_owned())
                        .unwrap_or_default(),
                ])?;
            }
            let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{}", String::from_utf8_lossy(&bytes));
        }
        OutputFormat::Table => {
            let mut t = table();
            t.set_header([
                "KIND",
                "NAME",
                "SCOPE",
                "STATE",
                "LAST USED",
                "CREDENTIALS",
                "EVIDENCE",
                "OWNER",
                "ORPHAN",
                "ID",
            ]);
            for ((i, s), own) in &rows {
                t.add_row([
                    i.kind.as_str().to_owned(),
                    i.name.clone(),
                    scope(i),
                    s.as_str().to_owned(),
                    if i.last_used.is_some() {
                        format!("{} ago", age(i.last_used, as_of))
                    } else {
                        "never".into()
                    },
                    credential_summary(i, as_of),
                    i.evidence.label().to_owned(),
                    owner_cell(own),
                    own.orphan
                        .as_ref()
                        .map(|r| r.as_str().to_owned())
                        .unwrap_or_default(),
                    i.id.clone(),
                ]);
            }
            println!("{t}");
            let from = match args.limit {
                Some(_) => format!(" from row {}", args.offset + 1),
                None => String::new(),
            };
            println!(
                "{} identities{from} (states as of {})",
                rows.len(),
                keyward_model::time::format(as_of)
            );
        }
    }
    Ok(())
}

//! `keyward graph …`: questions answered from the identity graph — `chain` (what an
//! identity is bound to and who owns it), `blast-radius` (what it reaches, or with
//! `--since` what it created), `paths` (privilege escalation to admin), `trusts` (roles
//! trusting accounts outside an allow-list) and `export` (DOT, GraphML, JSON).

use std::path::Path;

use anyhow::{Context as _, bail};
use keyward_engine::{Engine, Escalation, Need};
use keyward_graph::analysis::{BlastOptions, Candidate, Reach, blast_radius, foreign_trusts};
use keyward_graph::export;
use keyward_graph::{EdgeKind, EdgeView, Graph, NodeId};
use serde_json::json;

use crate::Outcome;

#[derive(clap::Subcommand)]
pub enum Command {
    /// The ownership chain of an identity: what it is bound to, and who owns it.
    Chain(ChainArgs),
    /// Everything an identity can reach; with `--since`, what it created since then.
    BlastRadius(BlastArgs),
    /// Privilege-escalation paths to admin-equivalent power (AWS IAM).
    Paths(PathsArgs),
    /// Roles that trust principals of accounts outside the allow-list (or anyone).
    Trusts(TrustsArgs),
    /// Kubernetes: risky RBAC access and workload token posture, per cluster.
    Rbac(RbacArgs),
    /// Write the whole graph for Graphviz, Gephi or other tools.
    Export(ExportArgs),
}

#[derive(clap::Args)]
pub struct ChainArgs {
    /// Canonical id, ARN or unique name.
    pub id: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(clap::Args)]
pub struct BlastArgs {
    /// Canonical id, ARN or unique name.
    pub id: String,
    /// Only identities and credentials actually created at or after this instant
    /// (RFC 3339): what a containment must revoke.
    #[arg(long, value_parser = crate::output::parse_instant)]
    pub since: Option<i64>,
    /// Hops to follow.
    #[arg(long, default_value_t = 6)]
    pub depth: usize,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(clap::Args)]
pub struct TrustsArgs {
    /// Accounts trusted on purpose (repeat, or comma-separate).
    #[arg(
        long = "allow-account",
        value_delimiter = ',',
        env = "KEYWARD_ALLOWED_ACCOUNTS"
    )]
    pub allow: Vec<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(clap::Args)]
pub struct RbacArgs {
    /// Only this cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Dot,
    Graphml,
    Json,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Only these edge kinds (comma-separated: owns, can_assume, …).
    #[arg(long, value_delimiter = ',')]
    pub edges: Vec<String>,
    /// Write here instead of standard output.
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(clap::Args)]
pub struct PathsArgs {
    /// Only paths from this principal (canonical id, ARN or unique name).
    #[arg(long)]
    pub from: Option<String>,
    /// The goal; `admin` (admin-equivalent power) is the one supported.
    #[arg(long, default_value = "admin")]
    pub to: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

pub fn run(dir: &Path, cmd: Command) -> anyhow::Result<Outcome> {
    // Questions about one identity are answered from the store's query tables when they
    // can be (see `Engine::open_about`); the others need the whole graph.
    let engine = match &cmd {
        Command::Chain(a) => Engine::open_about(dir, &a.id, Need::Chain),
        Command::BlastRadius(a) => Engine::open_about(
            dir,
            &a.id,
            Need::Blast {
                since: a.since,
                depth: a.depth,
            },
        ),
        Command::Paths(_) | Command::Trusts(_) | Command::Rbac(_) | Command::Export(_) => {
            Engine::open(dir)
        }
    }
    .with_context(|| format!("opening the store in `{}`", dir.display()))?;
    match cmd {
        Command::Chain(a) => chain(&engine, &a),
        Command::BlastRadius(a) => blast(&engine, &a),
        Command::Paths(a) => paths(&engine, &a),
        Command::Trusts(a) => trusts(&engine, &a),
        Command::Rbac(a) => rbac(&engine, &a),
        Command::Export(a) => export(&engine, &a),
    }
}

fn resolve<'e>(engine: &'e Engine, q: &str) -> anyhow::Result<&'e keyward_model::Identity> {
    match engine.resolve(q) {
        keyward_engine::Resolve::Found(i) => Ok(i),
        keyward_engine::Resolve::NotFound => bail!("no identity matches `{q}`"),
        keyward_engine::Resolve::Ambiguous(many) => {
            let list: Vec<&str> = many.iter().take(10).map(|i| i.id.as_str()).collect();
            bail!(
                "`{q}` matches {} identities; use the id:\n  {}",
                many.len(),
                list.join("\n  ")
            )
        }
    }
}

/// What an identity is bound to, down to permissions: bindings, groups, federation,
/// sessions' roles, then their `can` edges.
fn access(g: &Graph, id: NodeId) -> Reach {
    let opts = BlastOptions {
        since: None,
        max_depth: 4,
        max_nodes: 200,
    };
    let mut r = blast_radius(g, id, opts).root;
    fn keep(r: &mut Reach) {
        r.children.retain(|c| {
            matches!(
                c.via,
                Some(
                    EdgeKind::BoundTo
                        | EdgeKind::MemberOf
                        | EdgeKind::Federates
                        | EdgeKind::SessionOf
                        | EdgeKind::Can
                )
            )
        });
        for c in &mut r.children {
            keep(c);
        }
    }
    keep(&mut r);
    // Group membership is not a blast-radius edge; add the groups themselves.
    for e in g.out_edges(id).filter(|e| e.kind == EdgeKind::MemberOf) {
        let n = g.node(e.to);
        r.children.push(Reach {
            node: g.key(e.to).to_owned(),
            label: n.map(|n| n.label.to_string()).unwrap_or_default(),
            node_kind: n.map_or("", |n| n.kind.as_str()),
            via: Some(EdgeKind::MemberOf),
            actions: Vec::new(),
            conditions: Vec::new(),
            first_seen: e.first_seen,
            last_seen: e.last_seen,
            children: Vec::new(),
        });
    }
    r
}

fn draw(r: &Reach, prefix: &str, last: bool, depth: usize, out: &mut String) {
    let (branch, cont) = if depth == 0 {
        ("", "")
    } else if last {
        ("└─ ", "   ")
    } else {
        ("├─ ", "│  ")
    };
    let what = if r.label.is_empty() || r.label == r.node {
        r.node.clone()
    } else {
        format!("{} [{}]", r.label, r.node_kind)
    };
    let via = r.via.map(|v| format!("{v} → ")).unwrap_or_default();
    let mut notes = Vec::new();
    if !r.actions.is_empty() {
        let shown: Vec<&str> = r.actions.iter().take(8).map(String::as_str).collect();
        let more = r.actions.len().saturating_sub(8);
        notes.push(if more > 0 {
            format!("{} (+{more})", shown.join(", "))
        } else {
            shown.join(", ")
        });
    }
    if !r.conditions.is_empty() {
        notes.push(format!("if {}", r.conditions.join("; ")));
    }
    if let Some(t) = r.last_seen {
        notes.push(format!("seen {}", keyward_model::time::format(t)));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(": {}", notes.join(" · "))
    };
    out.push_str(&format!("{prefix}{branch}{via}{what}{notes}\n"));
    let n = r.children.len();
    for (i, c) in r.children.iter().enumerate() {
        draw(c, &format!("{prefix}{cont}"), i + 1 == n, depth + 1, out);
    }
}

fn hops(c: &Candidate) -> String {
    c.chain
        .iter()
        .map(|h| {
            let arrow = if h.reversed {
                format!("← {} ←", h.edge)
            } else {
                format!("→ {} →", h.edge)
            };
            let src = h
                .source
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let label = if h.label.is_empty() {
                &h.node
            } else {
                &h.label
            };
            format!("{arrow} {label}{src}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Draws an identity's chain as `graph chain` does (for the demo).
pub fn print_chain(engine: &Engine, id: &str) -> anyhow::Result<()> {
    chain(
        engine,
        &ChainArgs {
            id: id.to_owned(),
            format: OutputFormat::Table,
        },
    )
    .map(|_| ())
}

fn chain(engine: &Engine, args: &ChainArgs) -> anyhow::Result<Outcome> {
    let ident = resolve(engine, &args.id)?;
    let g = engine.graph();
    let Some(node) = g.find(&ident.id) else {
        bail!("`{}` is not in the graph", ident.id);
    };
    let info = engine.owner_info(ident, &engine.coverage());
    let tree = access(g, node);
    match args.format {
        OutputFormat::Json => {
            let doc = json!({
                "identity": ident.id,
                "access": tree,
                "ownership": info.ownership,
                "orphan_reason": info.orphan.as_ref().map(|r| r.as_str()),
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Table => {
            let mut out = String::new();
            draw(&tree, "", true, 0, &mut out);
            print!("{out}");
            let own = &info.ownership;
            match (&own.team, own.teams.first()) {
                (Some(t), Some(c)) if c.owner == *t => {
                    println!(
                        "Owned by: team {t} ({:.2})  {} {}",
                        c.confidence,
                        ident.name,
                        hops(c)
                    )
                }
                (Some(t), _) => println!("Owned by: team {t}"),
                (None, _) => println!("Owned by: no team found"),
            }
            let active: Vec<&Candidate> = own.people.iter().collect();
            for (role, c) in ["primary", "secondary"].iter().zip(&active) {
                let gone = if c.departed { " — DEPARTED" } else { "" };
                println!(
                    "  → {role}: {} ({:.2}){gone}  {} {}",
                    c.owner,
                    c.confidence,
                    ident.name,
                    hops(c)
                );
            }
            if own.people.is_empty() {
                println!("  → no person found");
            }
            if let Some(r) = &info.orphan {
                println!("Orphan: {}", r.as_str());
            }
        }
    }
    Ok(Outcome::Clean)
}

fn blast(engine: &Engine, args: &BlastArgs) -> anyhow::Result<Outcome> {
    let ident = resolve(engine, &args.id)?;
    let g = engine.graph();
    let Some(node) = g.find(&ident.id) else {
        bail!("`{}` is not in the graph", ident.id);
    };
    let b = blast_radius(
        g,
        node,
        BlastOptions {
            since: args.since,
            max_depth: args.depth,
            ..BlastOptions::default()
        },
    );
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&b)?),
        OutputFormat::Table => {
            let mut out = String::new();
            draw(&b.root, "", true, 0, &mut out);
            print!("{out}");
            match args.since {
                Some(t) => println!(
                    "{} identities and credentials created since {} (revoke these to contain)",
                    b.identities,
                    keyward_model::time::format(t)
                ),
                None => println!(
                    "reaches {} identities/credentials and {} resources{}",
                    b.identities,
                    b.resources,
                    if b.truncated { " (truncated)" } else { "" }
                ),
            }
        }
    }
    Ok(Outcome::Clean)
}

fn trusts(engine: &Engine, args: &TrustsArgs) -> anyhow::Result<Outcome> {
    let allow: Vec<String> = args
        .allow
        .iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    let found = foreign_trusts(engine.graph(), &allow);
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        OutputFormat::Table => {
            let mut t = crate::output::table();
            t.set_header(["ROLE", "TRUSTS", "ACCOUNT", "CONDITIONS"]);
            for f in &found {
                t.add_row([
                    f.role.clone(),
                    f.trusted.clone(),
                    if f.trusted_account == "*" {
                        "anyone".into()
                    } else {
                        f.trusted_account.clone()
                    },
                    f.conditions.join("; "),
                ]);
            }
            println!("{t}");
            println!(
                "{} trust{} to accounts outside the allow-list ({})",
                found.len(),
                if found.len() == 1 { "" } else { "s" },
                if allow.is_empty() {
                    "empty: use --allow-account".to_owned()
                } else {
                    allow.join(", ")
                }
            );
        }
    }
    Ok(Outcome::Clean)
}

/// One `graph rbac` finding (the JSON shape).
#[derive(serde::Serialize)]
struct RbacRow {
    cluster: String,
    check: &'static str,
    title: &'static str,
    subject: String,
    via: String,
}

fn rbac(engine: &Engine, args: &RbacArgs) -> anyhow::Result<Outcome> {
    use keyward_graph::k8s::{Rbac, risky_access};
    use keyward_graph::k8s_posture::{POSTURE, posture};
    let who = |kind: &str, ns: &Option<String>, name: &str| match ns {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    let mut rows = Vec::new();
    for (cluster, objects) in engine.k8s_objects()? {
        if args.cluster.as_deref().is_some_and(|c| c != cluster) {
            continue;
        }
        for f in risky_access(&Rbac::new(&objects)) {
            let s = &f.grant.subject;
            rows.push(RbacRow {
                cluster: cluster.clone(),
                check: f.check,
                title: f.title,
                subject: who(&s.kind, &s.namespace, &s.name),
                via: format!("{} → {}", f.grant.binding, f.grant.role),
            });
        }
        for f in posture(&objects) {
            let title = POSTURE
                .iter()
                .find(|(id, _)| *id == f.check)
                .map_or("", |(_, t)| *t);
            rows.push(RbacRow {
                cluster: cluster.clone(),
                check: f.check,
                title,
                subject: who(&f.kind, &f.namespace, &f.name),
                via: String::new(),
            });
        }
    }
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        OutputFormat::Table => {
            let mut t = crate::output::table();
            t.set_header(["CLUSTER", "SUBJECT", "FINDING", "VIA", "CHECK"]);
            for r in &rows {
                t.add_row([&r.cluster, &r.subject, r.title, &r.via, r.check]);
            }
            println!("{t}");
            println!(
                "{} findings (checks named after kubescape controls: docs/k8s-rbac-coverage.md)",
                rows.len()
            );
        }
    }
    Ok(Outcome::Clean)
}

fn export(engine: &Engine, args: &ExportArgs) -> anyhow::Result<Outcome> {
    let kinds = args
        .edges
        .iter()
        .map(|k| {
            EdgeKind::parse(k.trim()).ok_or_else(|| {
                anyhow::anyhow!(
                    "`{k}` is not an edge kind (one of: {})",
                    EdgeKind::ALL.map(|k| k.as_str()).join(", ")
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keep = |e: &EdgeView<'_>| kinds.is_empty() || kinds.contains(&e.kind);
    let mut w: Box<dyn std::io::Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating `{}`", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let g = engine.graph();
    match args.format {
        ExportFormat::Dot => export::dot(g, &keep, &mut w)?,
        ExportFormat::Graphml => export::graphml(g, &keep, &mut w)?,
        ExportFormat::Json => export::json(g, &keep, &mut w)?,
    }
    w.flush()?;
    Ok(Outcome::Clean)
}

fn paths(engine: &Engine, args: &PathsArgs) -> anyhow::Result<Outcome> {
    if args.to != "admin" {
        bail!("`--to {}`: only `--to admin` is supported", args.to);
    }
    let from = match &args.from {
        None => None,
        Some(q) => Some(resolve(engine, q)?.id.clone()),
    };
    if engine.iam_snapshots()?.is_empty() {
        println!(
            "no IAM authorization details ingested (aws iam get-account-authorization-details)"
        );
        return Ok(Outcome::Clean);
    }
    // As of the newest event, as posture judges it (replayed logs are judged in their time).
    let as_of = engine
        .latest_event_time()?
        .unwrap_or_else(crate::output::now_ms);
    let (admins, found) = engine.escalation_paths(from.as_deref(), as_of)?;
    let removed = engine.removed_paths(from.as_deref(), as_of)?;
    match args.format {
        OutputFormat::Json => {
            let out: Vec<_> = found.iter().map(Escalation::to_json).collect();
            let mut doc = serde_json::Map::new();
            doc.insert("admin_equivalent".into(), json!(admins));
            doc.insert("paths".into(), json!(out));
            // Present only when a boundary removes something, so estates without
            // boundaries read as before.
            if !removed.is_empty() {
                doc.insert("removed_by_boundaries".into(), removed_json(&removed));
            }
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Table => {
            println!("admin-equivalent principals: {}", admins.len());
            for a in &admins {
                println!("  {a}");
            }
            println!("\nescalation paths to admin: {}", found.len());
            for f in &found {
                println!("\n{}", f.from);
                for s in &f.path.steps {
                    let target = match (s.reaches_admin, s.to == s.from) {
                        (true, true) => "admin (grants itself)".to_owned(),
                        (true, false) => format!("{} ⇒ admin", s.to),
                        (false, _) => s.to.clone(),
                    };
                    let mut notes = Vec::new();
                    if !s.conditional.is_empty() {
                        notes.push(format!(
                            "if {}",
                            s.conditional.iter().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    if s.via_existing_workload {
                        notes.push("if a workload already runs as it".to_owned());
                    }
                    let notes = if notes.is_empty() {
                        String::new()
                    } else {
                        format!("  [{}]", notes.join("; "))
                    };
                    println!("  └─ {:<20} → {target}{notes}", s.technique);
                }
            }
            print_removed(&removed);
            println!(
                "\ntechnique ids follow the pathfinding.cloud catalogue (https://pathfinding.cloud)"
            );
        }
    }
    Ok(Outcome::Clean)
}

type RemovedPaths = [(String, keyward_graph::iam::removed::Removed)];

/// Removed paths as JSON: each with its steps and what stopped which of them.
fn removed_json(removed: &RemovedPaths) -> serde_json::Value {
    removed
        .iter()
        .map(|(account, r)| {
            json!({
                "account": account,
                "from": r.from,
                "steps": r.path.steps.iter().map(|s| json!({
                    "technique": s.technique,
                    "from": s.from,
                    "to": s.to,
                })).collect::<Vec<_>>(),
                "blocked": r.blocked.iter().map(|b| json!({
                    "step": b.step,
                    "action": b.action,
                    "by": b.by,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// Paths boundaries remove, each step with what stopped it.
fn print_removed(removed: &RemovedPaths) {
    if removed.is_empty() {
        return;
    }
    println!(
        "\nremoved by permissions boundaries and Organizations policies: {}",
        removed.len()
    );
    for (_, r) in removed {
        println!("\n{}", r.from);
        if r.path.steps.is_empty() {
            println!("  └─ admin-equivalent by its own policies");
        }
        for b in r.blocked.iter().filter(|b| b.step.is_none()) {
            println!("       ✗ {}: {}", b.action, b.by);
        }
        for (i, s) in r.path.steps.iter().enumerate() {
            println!("  └─ {:<20} → {}", s.technique, s.to);
            for b in r.blocked.iter().filter(|b| b.step == Some(i)) {
                println!("       ✗ {}: {}", b.action, b.by);
            }
        }
        if r.blocked.is_empty() {
            println!("       ✗ what it reaches is no longer admin-equivalent");
        }
    }
}

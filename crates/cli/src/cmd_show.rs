//! `keyward show ID`: everything known about one identity, with its recent events.

use std::path::Path;

use anyhow::{Context as _, bail};
use keyward_engine::{Engine, Resolve};
use keyward_model::{Identity, LifecycleConfig, time};
use serde_json::json;

use crate::Outcome;
use crate::output::{age, now_ms, parse_instant, row, table, ts};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// Canonical id, ARN, or a unique name.
    pub id: String,
    /// How many recent events to show.
    #[arg(long, default_value_t = 20)]
    pub events: usize,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    #[arg(long, default_value_t = 30)]
    pub stale_days: i64,
    #[arg(long, value_parser = parse_instant)]
    pub as_of: Option<i64>,
}

pub fn run(dir: &Path, args: Args) -> anyhow::Result<Outcome> {
    // From the store's query tables when they can answer (see `Engine::open_about`).
    let engine = Engine::open_about(dir, &args.id, keyward_engine::Need::Show)
        .with_context(|| format!("opening the store in `{}`", dir.display()))?;
    let as_of = args.as_of.unwrap_or_else(now_ms);
    show(&engine, &args, as_of)?;
    Ok(Outcome::Clean)
}

pub fn show(engine: &Engine, args: &Args, as_of: i64) -> anyhow::Result<()> {
    let ident = match engine.resolve(&args.id) {
        Resolve::Found(i) => i,
        Resolve::NotFound => bail!("no identity matches `{}`", args.id),
        Resolve::Ambiguous(many) => {
            let list: Vec<&str> = many.iter().take(10).map(|i| i.id.as_str()).collect();
            bail!(
                "`{}` matches {} identities; use the id:\n  {}",
                args.id,
                many.len(),
                list.join("\n  ")
            )
        }
    };
    let state = engine
        .lifecycles(LifecycleConfig {
            as_of,
            stale_after_days: args.stale_days,
        })
        .of(ident);
    let events = engine.recent_events(&ident.id, args.events)?;
    let owner = engine.owner_info(ident, &engine.coverage());
    // Its threat findings (a role's include its sessions'), expected ones too.
    let findings = engine.findings(&keyward_engine::FindingQuery {
        identity: Some(ident.id.clone()),
        kind: Some(keyward_detect::Kind::Threat),
        ..Default::default()
    })?;
    match args.format {
        OutputFormat::Json => {
            let listed: Vec<serde_json::Value> = findings
                .iter()
                .map(|f| {
                    json!({"id": f.id, "rule_id": f.rule_id, "status": f.status.as_str(),
                           "severity": f.severity.as_str(), "count": f.count,
                           "last_seen": time::format(f.last_seen), "summary": f.summary})
                })
                .collect();
            let doc = json!({
                "identity": row(ident, state, as_of, &owner),
                "ownership": owner.ownership,
                "details": ident.details,
                "findings": listed,
                "recent_events": events,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Text => {
            text(ident, state.as_str(), &events, as_of, &owner);
            findings_text(&findings);
        }
    }
    Ok(())
}

/// Its threat findings: alerts, and what its pattern of life made expected.
fn findings_text(findings: &[keyward_detect::Finding]) {
    if findings.is_empty() {
        return;
    }
    println!("threat findings ({}):", findings.len());
    let mut t = table();
    t.set_header(["  STATUS", "SEVERITY", "RULE", "COUNT", "LAST SEEN", "ID"]);
    for f in findings {
        t.add_row([
            format!("  {}", f.status.as_str()),
            f.severity.as_str().to_owned(),
            f.rule_id.clone(),
            f.count.to_string(),
            time::format(f.last_seen),
            f.id.clone(),
        ]);
    }
    println!("{t}");
}

fn line(label: &str, value: impl AsRef<str>) {
    let v = value.as_ref();
    if !v.is_empty() {
        println!("  {label:<16} {v}");
    }
}

fn text(
    i: &Identity,
    state: &str,
    events: &[keyward_model::Event<'_>],
    as_of: i64,
    owner: &keyward_engine::OwnerInfo,
) {
    println!("{}", i.id);
    line(
        "kind",
        format!("{} ({})", i.kind.as_str(), i.platform.as_str()),
    );
    line("name", &i.name);
    line("arn", i.arn.clone().unwrap_or_default());
    line("native id", i.native_id.clone().unwrap_or_default());
    line("account", i.account.clone().unwrap_or_default());
    line("cluster", i.cluster.clone().unwrap_or_default());
    line("namespace", i.namespace.clone().unwrap_or_default());
    line("subject", i.subject.clone().unwrap_or_default());
    line("issuer", i.issuer.clone().unwrap_or_default());
    let used = match i.last_used {
        Some(t) => format!("{} ({} ago)", time::format(t), age(Some(t), as_of)),
        None => "never seen used".into(),
    };
    line("state", format!("{state}; as of {}", time::format(as_of)));
    line("created", ts(i.created).unwrap_or_default());
    line("last used", used);
    if let (Some(a), Some(b)) = (i.first_seen, i.last_seen) {
        line(
            "seen in logs",
            format!(
                "{} .. {} ({} events)",
                time::format(a),
                time::format(b),
                i.event_count
            ),
        );
    }
    line("deleted", ts(i.deleted).unwrap_or_default());
    line(
        "evidence",
        format!(
            "{} ({})",
            i.evidence.label(),
            i.sources.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    );
    line("federated", if i.federated() { "yes" } else { "" });
    line("parent", i.parent.clone().unwrap_or_default());
    line(
        "source identity",
        i.source_identity.clone().unwrap_or_default(),
    );
    let join =
        |s: &std::collections::BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    line("assumed by", join(&i.assumed_by));
    line("created by", join(&i.created_by));
    if !i.chain.is_empty() {
        line("chain", format!("{} → {}", i.chain.join(" → "), i.id));
    }
    line("linked to", join(&i.links));
    line("owner", crate::output::owner_cell(owner));
    if let Some(r) = &owner.orphan {
        line("orphan", r.as_str());
    }
    let kv = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    line("tags", kv(&i.tags));
    line("labels", kv(&i.labels));
    line("annotations", kv(&i.annotations));
    if !i.credentials.is_empty() {
        println!("credentials:");
        let mut t = table();
        t.set_header(["  ID", "KIND", "STATUS", "AGE", "LAST USED", "WHERE"]);
        for c in &i.credentials {
            let place = [
                c.last_used_service.as_deref(),
                c.last_used_region.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
            t.add_row([
                format!("  {}", c.id),
                serde_json::to_value(c.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                serde_json::to_value(c.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                age(c.created, as_of),
                ts(c.last_used).unwrap_or_else(|| "never".into()),
                place,
            ]);
        }
        println!("{t}");
    }
    if !i.details.is_empty() {
        println!("details:");
        for (k, v) in &i.details {
            println!("  {k:<16} {v}");
        }
    }
    if events.is_empty() {
        println!("no events recorded for this identity");
    } else {
        println!("recent events ({}):", events.len());
        let mut t = table();
        t.set_header(["  TIME", "ACTION", "SOURCE IP", "REGION", "TARGET", "ERROR"]);
        for e in events {
            t.add_row([
                format!("  {}", time::format(e.time)),
                e.action.to_string(),
                e.source_ip.as_deref().unwrap_or_default().to_owned(),
                e.region.as_deref().unwrap_or_default().to_owned(),
                e.target.as_deref().unwrap_or_default().to_owned(),
                e.error_code.as_deref().unwrap_or_default().to_owned(),
            ]);
        }
        println!("{t}");
    }
}

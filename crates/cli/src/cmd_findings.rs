//! `keyward findings`: list findings (table, JSON, SARIF, OCSF); `findings resolve` records
//! a verdict; `findings risk` shows every identity's risk score with its factors.

use std::path::Path;

use anyhow::Context as _;
use keyward_detect::{Catalog, Finding, Kind, Severity, Status};
use keyward_engine::{Engine, FindingQuery};
use keyward_model::time;

use crate::Outcome;
use crate::cmd_rules::DetectArgs;
use crate::output::{cli_actor, now_ms, table};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// Only findings last seen at or after this instant (RFC 3339).
    #[arg(long, value_parser = crate::output::parse_instant)]
    pub since: Option<i64>,
    /// Minimum severity: info, low, medium, high, critical.
    #[arg(long, value_parser = crate::output::parse_severity)]
    pub severity: Option<Severity>,
    /// Only findings about this identity (canonical id, ARN or unique name; a role also
    /// matches its sessions).
    #[arg(long)]
    pub identity: Option<String>,
    /// `threat` or `posture`.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<Kind>,
    /// Only these statuses (open, acknowledged, expected, false-positive, resolved;
    /// comma-separated). Expected findings repeat an identity's pattern of life.
    #[arg(long, value_delimiter = ',', value_parser = parse_status)]
    pub status: Vec<Status>,
    /// table, json, sarif or ocsf.
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(clap::Subcommand)]
pub enum Action {
    /// Records a verdict on a finding: resolved (default), false positive, acknowledged,
    /// or reopened. A false positive on a baseline anomaly adapts the identity's baseline.
    Resolve {
        id: String,
        #[arg(long, conflicts_with_all = ["acknowledge", "reopen"])]
        false_positive: bool,
        #[arg(long, conflicts_with = "reopen")]
        acknowledge: bool,
        #[arg(long)]
        reopen: bool,
        /// Why (kept in the finding's history; at most 4,096 bytes).
        #[arg(long, value_parser = parse_note)]
        note: Option<String>,
        /// Who (default: `$USER`).
        #[arg(long, env = "USER", default_value = "unknown")]
        by: String,
    },
    /// One finding in full, with its history.
    Show { id: String },
    /// The narrowest exception that would have kept this finding from being raised (its
    /// rule, on its identity), as YAML for a rule or exceptions file; `--save` keeps it in
    /// the store, applied from the next event on (audited).
    Except {
        id: String,
        /// Save it (otherwise it is only shown).
        #[arg(long)]
        save: bool,
        /// Why (kept with the exception).
        #[arg(long, value_parser = parse_note)]
        note: Option<String>,
        #[command(flatten)]
        detect: DetectArgs,
    },
    /// Every identity's risk score R = P × E × A / T, its tier and the factors.
    Risk {
        #[command(flatten)]
        detect: DetectArgs,
        /// Only the top N.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// table or json (one object per identity: its id, R, tier, factors and why).
        #[arg(long, default_value = "table")]
        format: String,
    },
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| format!("`{s}`: threat or posture"))
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| format!("unknown status `{s}`"))
}

pub fn run(dir: &Path, args: Args) -> anyhow::Result<Outcome> {
    // One identity's findings, listed: from the store's query tables when they can answer
    // (see `Engine::open_about`).
    let opened = match (&args.action, &args.identity) {
        (None, Some(id)) => Engine::open_about(dir, id, keyward_engine::Need::Findings),
        _ => Engine::open(dir),
    };
    let mut engine = opened.with_context(|| format!("opening the store in `{}`", dir.display()))?;
    match args.action {
        Some(Action::Resolve {
            id,
            false_positive,
            acknowledge,
            reopen,
            note,
            by,
        }) => {
            let status = if false_positive {
                Status::FalsePositive
            } else if acknowledge {
                Status::Acknowledged
            } else if reopen {
                Status::Open
            } else {
                Status::Resolved
            };
            let _writing = crate::output::write_lock(&mut engine, dir)?;
            if false_positive {
                // Baselines live in the detector: load them to adapt.
                engine.enable_detection(Catalog::default(), Default::default())?;
            }
            let before = engine
                .finding(&id)?
                .with_context(|| format!("no finding `{id}`"))?
                .status;
            let at = now_ms();
            let f = engine.set_finding_status(&id, status, &by, note.as_deref(), at)?;
            engine.audit(&keyward_store::AuditEntry {
                at,
                actor: cli_actor(),
                action: "finding.status".into(),
                target: Some(id.clone()),
                detail: Some(match &note {
                    Some(n) => format!("by {by}: {n}"),
                    None => format!("by {by}"),
                }),
                before: Some(before.as_str().to_owned()),
                after: Some(status.as_str().to_owned()),
            })?;
            println!("{} is now {} ({})", f.id, f.status.as_str(), f.title);
            if false_positive && f.identity.is_some() {
                eprintln!(
                    "to stop its rule reporting this identity: keyward findings except {} (--save)",
                    f.id
                );
            }
            return Ok(Outcome::Clean);
        }
        Some(Action::Show { id }) => {
            let f = engine
                .finding(&id)?
                .with_context(|| format!("no finding `{id}`"))?;
            println!("{}", serde_json::to_string_pretty(&f)?);
            for c in engine.finding_changes(&id)? {
                println!(
                    "{}  {} by {}{}",
                    time::format(c.at),
                    c.status,
                    c.actor,
                    c.note.map(|n| format!(": {n}")).unwrap_or_default()
                );
            }
            return Ok(Outcome::Clean);
        }
        Some(Action::Except {
            id,
            save,
            note,
            detect,
        }) => return except(&mut engine, dir, &id, save, note, &detect),
        Some(Action::Risk {
            detect,
            top,
            format,
        }) => {
            let _writing = crate::output::write_lock(&mut engine, dir)?;
            let as_of = engine.latest_event_time()?.unwrap_or_else(now_ms);
            let posture = engine.evaluate_posture(as_of, &detect.allow_account)?;
            if format == "json" {
                let rows: Vec<serde_json::Value> = posture
                    .risks
                    .iter()
                    .take(top)
                    .map(|(id, r)| {
                        let mut v = serde_json::to_value(r).unwrap_or_default();
                        if let serde_json::Value::Object(m) = &mut v {
                            m.insert("identity".into(), id.clone().into());
                        }
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(Outcome::Clean);
            }
            anyhow::ensure!(format == "table", "`--format {format}`: table or json");
            let mut t = table();
            t.set_header(["identity", "R", "tier", "P", "E", "A", "T (days)", "why"]);
            for (id, r) in posture.risks.iter().take(top) {
                t.add_row([
                    id.clone(),
                    format!("{:.2}", r.r),
                    r.tier.as_str().to_owned(),
                    format!("{}", r.p),
                    format!("{}", r.e),
                    format!("{}", r.a),
                    format!("{}", r.t),
                    r.why.join("; "),
                ]);
            }
            println!("{t}");
            return Ok(Outcome::Clean);
        }
        None => {}
    }
    let q = FindingQuery {
        since: args.since,
        min_severity: args.severity,
        identity: args.identity,
        kind: args.kind,
        statuses: args.status,
    };
    let findings = engine.findings(&q)?;
    print(&findings, &args.format, &Catalog::builtin())?;
    Ok(Outcome::Clean)
}

/// `findings except`: shows the narrowest exception for a finding, and saves it.
fn except(
    engine: &mut Engine,
    dir: &Path,
    id: &str,
    save: bool,
    note: Option<String>,
    detect: &DetectArgs,
) -> anyhow::Result<Outcome> {
    let f = engine
        .finding(id)?
        .with_context(|| format!("no finding `{id}`"))?;
    let mut e = keyward_detect::exceptions::narrowest(&f)
        .with_context(|| format!("`{id}` is about no identity: no exception can name it"))?;
    if let Some(n) = note {
        e.note = Some(n);
    }
    let file = keyward_detect::exceptions::File {
        exceptions: vec![e.clone()],
    };
    // For an exceptions file (loaded with `--rules`), or, without `rule:`, a rule file.
    print!("{}", serde_saphyr::to_string(&file)?);
    if !save {
        eprintln!("(shown only: pass --save to keep it, or add it to a rules file)");
        return Ok(Outcome::Clean);
    }
    let _writing = crate::output::write_lock(engine, dir)?;
    // Its rule may be one of `--rules`: the detector's catalog knows them.
    engine.enable_detection(detect.catalog(), detect.settings())?;
    let at = now_ms();
    engine.add_exception(
        e.clone(),
        &keyward_store::AuditEntry {
            at,
            actor: cli_actor(),
            action: "exception.add".into(),
            target: e.rule.clone(),
            detail: Some(format!("{} (from {id})", e.name)),
            before: None,
            after: Some(serde_json::to_string(&e)?),
        },
    )?;
    eprintln!(
        "saved: later matches of {} by {} are not reported",
        f.rule_id,
        e.identities.join(", ")
    );
    Ok(Outcome::Clean)
}

pub fn print(findings: &[Finding], format: &str, catalog: &Catalog) -> anyhow::Result<()> {
    match format {
        "json" => println!("{}", serde_json::to_string_pretty(findings)?),
        "sarif" => println!(
            "{}",
            serde_json::to_string_pretty(&keyward_detect::export::sarif(findings, catalog))?
        ),
        "ocsf" => {
            for f in findings {
                println!(
                    "{}",
                    serde_json::to_string(&keyward_detect::export::ocsf(f))?
                );
            }
        }
        "table" => {
            let mut t = table();
            t.set_header([
                "id",
                "severity",
                "kind",
                "status",
                "last seen",
                "rule",
                "identity",
                "summary",
            ]);
            for f in findings {
                t.add_row([
                    f.id.clone(),
                    f.severity.to_string(),
                    f.kind.as_str().to_owned(),
                    f.status.as_str().to_owned(),
                    time::format(f.last_seen),
                    f.rule_id.clone(),
                    f.identity.clone().unwrap_or_default(),
                    f.summary.clone(),
                ]);
            }
            println!("{t}");
            println!("{} findings", findings.len());
        }
        other => anyhow::bail!("unknown format `{other}`: table, json, sarif or ocsf"),
    }
    Ok(())
}

fn parse_note(s: &str) -> Result<String, String> {
    if s.len() > keyward_engine::MAX_NOTE_BYTES {
        return Err(format!("at most {} bytes", keyward_engine::MAX_NOTE_BYTES));
    }
    Ok(s.to_owned())
}

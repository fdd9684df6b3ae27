//! `keyward ingest PATH…`: read inputs into the store; print what happened.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keyward_engine::{Engine, FileStatus, IngestOptions, IngestReport, Progress};
use keyward_normalize::Format;

use crate::Outcome;
use crate::output::{cli_actor, now_ms, table};

#[derive(clap::Args)]
pub struct Args {
    /// Files or directories (walked recursively); `.gz` is read transparently.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Force the input format instead of detecting it.
    #[arg(long, value_parser = parse_format, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Kubernetes cluster name for audit logs and RBAC snapshots (default: from the path,
    /// `…/k8s/<cluster>/…` or `cluster=<name>`, never a generic folder such as `audit/` or
    /// `logs/`; else `default`, said in the summary). Clusters that share service-account
    /// uids or node names are joined after the run.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Re-read files already ingested with the same bytes.
    #[arg(long)]
    pub force: bool,
    /// What a people directory's status means, beyond the default vocabulary
    /// (`on_leave`, `suspended`, `contractor` are active; `terminated`, `inactive`,
    /// `offboarded` departed; see the README): `NAME=active` or `NAME=departed`; repeatable.
    #[arg(long, value_name = "NAME=active|departed", value_parser = parse_person_status)]
    pub person_status: Vec<(String, keyward_normalize::people::PersonStatus)>,
    /// Ingest only: no rules, baselines, posture findings or risk scores.
    #[arg(long)]
    pub no_detect: bool,
    #[command(flatten)]
    pub detect: crate::cmd_rules::DetectArgs,
    /// Publish the records to the bus instead (a gateway): file rows, unchanged files and
    /// dead letters are kept here; `keyward worker` processes take the records in.
    #[command(flatten)]
    pub bus: crate::cmd_worker::BusArgs,
    /// AI agents' declared purposes, from the configuration (`agents:`).
    #[arg(skip)]
    pub intents: keyward_detect::intent::Intents,
}

fn parse_person_status(
    s: &str,
) -> Result<(String, keyward_normalize::people::PersonStatus), String> {
    let (name, meaning) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=active or NAME=departed"))?;
    let key = keyward_normalize::people::status_key(name);
    let meaning = keyward_normalize::people::PersonStatus::parse(meaning)
        .ok_or_else(|| format!("`{meaning}` is neither `active` nor `departed`"))?;
    if key.is_empty() {
        return Err("an empty status name".into());
    }
    Ok((key, meaning))
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
        format!("unknown format `{s}`; one of: {}", all.join(", "))
    })
}

/// A progress bar on a terminal; nothing otherwise.
pub struct Bar {
    bar: ProgressBar,
    files: u64,
}

impl Bar {
    pub fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {human_pos} records ({per_sec}) · {msg}",
        ) {
            bar.set_style(style);
        }
        Bar { bar, files: 0 }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn file_started(&mut self, path: &Path) {
        self.files += 1;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.bar
            .set_message(format!("{} files · {name}", self.files));
    }

    fn records(&mut self, n: u64) {
        self.bar.inc(n);
    }
}

/// What the flags ask of the engine's reading.
fn options(args: &Args) -> IngestOptions {
    IngestOptions {
        format: args.format,
        cluster: args.cluster.clone(),
        force: args.force,
        person_statuses: args.person_status.iter().cloned().collect(),
        ..IngestOptions::default()
    }
}

pub fn ingest(engine: &mut Engine, args: &Args) -> anyhow::Result<(IngestReport, f64)> {
    let opts = options(args);
    if !args.no_detect {
        engine.enable_detection(args.detect.catalog(), args.detect.settings())?;
    }
    let mut bar = Bar::new();
    let start = Instant::now();
    let report = engine.ingest(&args.paths, &opts, &mut bar, now_ms());
    bar.finish();
    let mut report = report?;
    if !args.no_detect {
        // Posture is judged as of the newest event (replayed logs are judged in their time).
        let as_of = engine.latest_event_time()?.unwrap_or_else(now_ms);
        let posture = engine.evaluate_posture(as_of, &args.detect.allow_account)?;
        report.findings.extend(posture.findings);
        report
            .findings
            .extend(engine.evaluate_intent(&args.intents)?);
    }
    Ok((report, start.elapsed().as_secs_f64()))
}

pub fn run(dir: &Path, args: Args) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    let paths: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
    if let Some(bus) = args.bus.config() {
        // A gateway changes nothing the workers hold in memory (file rows and dead letters
        // only): it does not take the writer lock they commit under.
        return publish(engine, &args, &bus, paths);
    }
    let _writing = crate::output::write_lock(&mut engine, dir)?;
    let (report, secs) = ingest(&mut engine, &args)?;
    engine.audit(&audit_entry("ingest", paths.join(" "), &report, now_ms()))?;
    print_summary(&report, secs, engine.inventory().len());
    Ok(if report.rejected > 0 {
        Outcome::Rejected
    } else {
        Outcome::Clean
    })
}

/// `keyward ingest --bus`: the inputs read here, their records published to the bus.
fn publish(
    mut engine: Engine,
    args: &Args,
    bus: &keyward_bus::BusConfig,
    paths: Vec<String>,
) -> anyhow::Result<Outcome> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let publisher = crate::cmd_worker::publisher(bus, &rt)?;
    engine.set_forward(Some(Box::new(publisher)));
    let opts = options(args);
    let mut bar = Bar::new();
    let start = Instant::now();
    let report = engine.ingest(&args.paths, &opts, &mut bar, now_ms());
    bar.finish();
    engine.set_forward(None);
    let report = report?;
    let secs = start.elapsed().as_secs_f64();
    engine.audit(&audit_entry(
        "ingest.bus",
        paths.join(" "),
        &report,
        now_ms(),
    ))?;
    print_summary(&report, secs, engine.inventory().len());
    let accepted: u64 = report.per_source.values().map(|s| s.accepted).sum();
    println!(
        "published {accepted} records to stream {} at {}; `keyward worker` takes them in",
        bus.stream,
        keyward_bus::redact(&bus.url)
    );
    Ok(if report.rejected > 0 {
        Outcome::Rejected
    } else {
        Outcome::Clean
    })
}

/// One audit entry for an ingest run (or a `watch` batch): who, what was read, and the
/// counts after it.
pub fn audit_entry(
    action: &str,
    target: String,
    r: &IngestReport,
    at: i64,
) -> keyward_store::AuditEntry {
    let count = |s: FileStatus| r.files.iter().filter(|f| f.status == s).count();
    let records: u64 = r.per_source.values().map(|s| s.records).sum();
    let accepted: u64 = r.per_source.values().map(|s| s.accepted).sum();
    let mut after = serde_json::json!({
        "files": count(FileStatus::Ingested),
        "unchanged": count(FileStatus::Unchanged),
        "unrecognized": count(FileStatus::Unrecognized),
        "records": records,
        "accepted": accepted,
        "rejected": r.rejected,
        "identities_new": r.identities_new,
        "identities_updated": r.identities_updated,
        "findings": r.findings.len(),
    });
    // Clusters joined on evidence are a state change of this run: the audit entry says so.
    if !r.clusters_merged.is_empty()
        && let Some(o) = after.as_object_mut()
    {
        let joined: Vec<serde_json::Value> = r
            .clusters_merged
            .iter()
            .map(|j| serde_json::json!({"from": j.from, "into": j.into}))
            .collect();
        o.insert("clusters_joined".into(), joined.into());
    }
    keyward_store::AuditEntry {
        at,
        actor: cli_actor(),
        action: action.to_owned(),
        target: Some(target),
        detail: None,
        before: None,
        after: Some(after.to_string()),
    }
}

pub fn print_summary(r: &IngestReport, secs: f64, inventory_size: usize) {
    let count = |s: FileStatus| r.files.iter().filter(|f| f.status == s).count();
    let records: u64 = r.per_source.values().map(|s| s.records).sum();
    let troubled = match (count(FileStatus::Damaged), count(FileStatus::Unreadable)) {
        (0, 0) => String::new(),
        (d, u) => format!(", {d} damaged (read up to the damage), {u} unreadable"),
    };
    println!(
        "ingested {} file(s) in {secs:.2} s: {} read, {} unchanged (already ingested), {} not recognised{troubled}; {records} records ({:.0} records/s)",
        r.files.len(),
        count(FileStatus::Ingested),
        count(FileStatus::Unchanged),
        count(FileStatus::Unrecognized),
        records as f64 / secs.max(1e-9),
    );
    if !r.per_source.is_empty() {
        let mut t = table();
        t.set_header([
            "source",
            "files",
            "records",
            "accepted",
            "rejected",
            "new events",
            "new identities",
            "updated identities",
        ]);
        for (source, s) in &r.per_source {
            t.add_row([
                source.to_string(),
                s.files.to_string(),
                s.records.to_string(),
                s.accepted.to_string(),
                s.rejected.to_string(),
                s.events_new.to_string(),
                s.identities_new.to_string(),
                s.identities_updated.to_string(),
            ]);
        }
        println!("{t}");
    }
    println!(
        "identities: {} new, {} updated; the inventory holds {inventory_size}",
        r.identities_new, r.identities_updated
    );
    print_clusters(r);
    if let Some(d) = &r.detection {
        let count = |k: keyward_detect::Kind, s: keyward_detect::Severity| {
            r.findings
                .iter()
                .filter(|f| f.kind == k && f.severity == s)
                .count()
        };
        let line = |k| {
            use keyward_detect::Severity::*;
            [Critical, High, Medium, Low, Info]
                .iter()
                .map(|&s| format!("{} {}", count(k, s), s.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "detection: {} events checked, {} baselines; threat findings: {}; posture findings: {} (see `keyward findings`)",
            d.events,
            d.baselines,
            line(keyward_detect::Kind::Threat),
            line(keyward_detect::Kind::Posture)
        );
    }
    for f in r
        .files
        .iter()
        .filter(|f| f.status == FileStatus::Unrecognized)
    {
        eprintln!("skipped `{}`: not a recognised input format", f.path);
    }
    if r.warned > 0 {
        println!(
            "warnings: {} record(s) accepted with something to check",
            r.warned
        );
        for (path, d) in &r.warnings {
            eprintln!("warning: {path}:{}: {}", d.line, d.reason);
        }
    }
    if r.rejected > 0 {
        println!("rejected records: {}", r.rejected);
        for (reason, n) in &r.reasons {
            println!("  {n:>6}  {reason}");
        }
        for (path, d) in &r.rejections {
            match d.record {
                Some(rec) => eprintln!("{path}:{} (record {rec}): {}", d.line, d.reason),
                None => eprintln!("{path}:{}: {}", d.line, d.reason),
            }
        }
        if (r.rejections.len() as u64) < r.rejected {
            eprintln!("… see all of them with `keyward dead-letters`");
        }
    }
}

/// Where Kubernetes inputs were filed: names guessed, clusters joined on evidence, and
/// clusters that share evidence under two deliberate names.
fn print_clusters(r: &IngestReport) {
    for (c, o) in &r.clusters {
        if *o == keyward_engine::ClusterOrigin::Guessed {
            println!("cluster name guessed: {c} (no cluster in path; pass --cluster)");
        }
    }
    for j in &r.clusters_merged {
        println!(
            "clusters joined: `{}` into `{}` ({})",
            j.from,
            j.into,
            crate::cmd_clusters::evidence(&j.evidence)
        );
    }
    for j in &r.clusters_shared {
        println!(
            "clusters `{}` and `{}` look like one ({}): `keyward clusters merge {} {}`",
            j.from,
            j.into,
            crate::cmd_clusters::evidence(&j.evidence),
            j.from,
            j.into
        );
    }
}

//! `keyward serve --poll SOURCE`: a directory tree (or one file) or an S3 tree
//! (`s3://BUCKET/PREFIX`, as CloudTrail delivers a trail) taken in on every round, on a
//! thread of its own with an engine of its own on the same store.
//!
//! - **What is new.** A local file is new when its size or modification time is not what
//!   this poller last took in, and it has not been written for [`SETTLE`] (a file still
//!   being written is taken on a later round). An S3 object is new when its key or entity
//!   tag is. Either way the store has the last word: a file whose bytes were ingested
//!   before (by this poller before a restart, by `keyward ingest`) is `unchanged` and
//!   counts nothing twice.
//! - **S3 objects** are downloaded into `DATA/spool/s3/BUCKET/KEY` (the key's path kept, so
//!   the cluster and format are read from it as from a local tree), ingested, and removed.
//! - **A failed round** (the store, the bus, S3 unreachable) marks nothing taken: the next
//!   round tries the same files again.
//! - **With `--bus`** the records are published (a gateway), as `keyward ingest --bus`
//!   does; else they are stored with detection, under the writer lock, and posture is
//!   judged after each round that took something in, as at the end of `keyward ingest`.
//!   Each round that took something in is one audit entry (`ingest.poll`).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use keyward_engine::{Engine, IngestOptions, IngestReport};

use crate::output::now_ms;

/// A local file is taken once it has not been written for this long.
pub const SETTLE: Duration = Duration::from_secs(2);

/// The largest S3 object a poller downloads.
const MAX_OBJECT: u64 = 1 << 30;

/// What a poller watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Local(p) => write!(f, "{}", p.display()),
            Source::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// `--poll`'s value: `s3://BUCKET/PREFIX`, else a local path.
pub fn parse_source(s: &str) -> Result<Source, String> {
    if s.starts_with("s3://") {
        let (bucket, prefix) = parse_s3(s)?;
        return Ok(Source::S3 { bucket, prefix });
    }
    if s.is_empty() {
        return Err("an empty path".into());
    }
    Ok(Source::Local(PathBuf::from(s)))
}

#[cfg(feature = "aws")]
fn parse_s3(s: &str) -> Result<(String, String), String> {
    keyward_respond::aws::parse_s3_url(s).ok_or_else(|| format!("`{s}` names no bucket"))
}

#[cfg(not(feature = "aws"))]
fn parse_s3(s: &str) -> Result<(String, String), String> {
    Err(format!(
        "`{s}`: this build has no AWS support (the `aws` feature)"
    ))
}

/// How the poller's engine keeps what it reads.
pub struct Keeping {
    /// The gateway's bus, or detection with these rules (none: `--no-detect`).
    pub bus: Option<keyward_bus::BusConfig>,
    pub detect: Option<(keyward_detect::Catalog, keyward_detect::Settings)>,
    pub allow_accounts: Vec<String>,
    /// AI agents' declared purposes (`keyward.yaml`), judged after every round.
    pub intents: keyward_detect::intent::Intents,
}

/// Starts the poller thread: a round at once, then one every `interval`.
pub fn spawn(
    dir: &Path,
    sources: Vec<Source>,
    interval: Duration,
    keeping: Keeping,
) -> anyhow::Result<()> {
    let data = dir.to_path_buf();
    std::thread::Builder::new()
        .name("keyward-poll".into())
        .stack_size(keyward_normalize::depth::STACK)
        .spawn(move || {
            if let Err(e) = run(&data, sources, interval, keeping) {
                eprintln!("keyward: poller stopped: {e:#}");
            }
        })
        .context("starting the poller")?;
    Ok(())
}

/// What one source has taken in: local files by (size, modified), objects by entity tag.
#[derive(Default)]
struct Taken {
    files: HashMap<PathBuf, (u64, SystemTime)>,
    objects: HashMap<String, String>,
}

fn run(
    data: &Path,
    sources: Vec<Source>,
    interval: Duration,
    keeping: Keeping,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the poller's async runtime")?;
    let mut engine =
        Engine::open(data).with_context(|| format!("opening the store in `{}`", data.display()))?;
    engine.set_durable(true)?;
    if let Some(bus) = &keeping.bus {
        let publisher = crate::cmd_worker::publisher(bus, &rt)?;
        engine.set_forward(Some(Box::new(publisher)));
    } else if let Some((catalog, settings)) = &keeping.detect {
        engine.enable_detection(catalog.clone(), settings.clone())?;
    }
    let mut taken: Vec<Taken> = sources.iter().map(|_| Taken::default()).collect();
    let spool = data.join("spool");
    loop {
        for (source, taken) in sources.iter().zip(taken.iter_mut()) {
            if let Err(e) = round(&mut engine, data, &rt, &spool, source, taken, &keeping) {
                eprintln!("keyward: poll {source}: {e:#} (tried again next round)");
            }
        }
        std::thread::sleep(interval);
    }
}

/// A file found, and how to recognise it next round.
struct Found {
    path: PathBuf,
    mark: Mark,
}

enum Mark {
    File(PathBuf, (u64, SystemTime)),
    Object(String, String),
}

/// One round over one source: what is new, ingested in one run.
fn round(
    engine: &mut Engine,
    data: &Path,
    rt: &tokio::runtime::Runtime,
    spool: &Path,
    source: &Source,
    taken: &mut Taken,
    keeping: &Keeping,
) -> anyhow::Result<()> {
    let found = match source {
        Source::Local(root) => new_files(root, taken)?,
        Source::S3 { bucket, prefix } => new_objects(rt, spool, bucket, prefix, taken)?,
    };
    if found.is_empty() {
        return Ok(());
    }
    let paths: Vec<PathBuf> = found.iter().map(|f| f.path.clone()).collect();
    let ingested = ingest(engine, data, &paths, keeping);
    if matches!(source, Source::S3 { .. }) {
        for p in &paths {
            let _ = std::fs::remove_file(p);
        }
    }
    let report = ingested?;
    for f in found {
        match f.mark {
            Mark::File(p, m) => {
                taken.files.insert(p, m);
            }
            Mark::Object(k, e) => {
                taken.objects.insert(k, e);
            }
        }
    }
    let accepted: u64 = report.per_source.values().map(|s| s.accepted).sum();
    eprintln!(
        "keyward: poll {source}: {} file(s), {accepted} record(s) {}, {} rejected",
        report.files.len(),
        if keeping.bus.is_some() {
            "published"
        } else {
            "accepted"
        },
        report.rejected
    );
    for (p, d) in &report.rejections {
        eprintln!("{p}:{}: {}", d.line, d.reason);
    }
    Ok(())
}

/// Ingests `paths` (found by walking) as `keyward ingest` would, and audits it.
fn ingest(
    engine: &mut Engine,
    data: &Path,
    paths: &[PathBuf],
    keeping: &Keeping,
) -> anyhow::Result<IngestReport> {
    let opts = IngestOptions {
        walked: true,
        ..IngestOptions::default()
    };
    let target = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    if keeping.bus.is_some() {
        // A gateway changes nothing the workers hold (file rows and dead letters only).
        let report = engine.ingest(paths, &opts, &mut (), now_ms())?;
        let audit = crate::cmd_ingest::audit_entry("ingest.poll", target, &report, now_ms());
        engine.audit(&audit)?;
        return Ok(report);
    }
    let _writing = crate::output::write_lock(engine, data)?;
    let mut report = engine.ingest(paths, &opts, &mut (), now_ms())?;
    if keeping.detect.is_some() {
        let as_of = engine.latest_event_time()?.unwrap_or_else(now_ms);
        let posture = engine.evaluate_posture(as_of, &keeping.allow_accounts)?;
        report.findings.extend(posture.findings);
        report
            .findings
            .extend(engine.evaluate_intent(&keeping.intents)?);
    }
    let audit = crate::cmd_ingest::audit_entry("ingest.poll", target, &report, now_ms());
    engine.audit(&audit)?;
    Ok(report)
}

/// The files under `root` that changed since this poller took them and have settled.
fn new_files(root: &Path, taken: &Taken) -> anyhow::Result<Vec<Found>> {
    let now = SystemTime::now();
    let mut found = Vec::new();
    for path in keyward_sources::discover(std::slice::from_ref(&root.to_path_buf()))? {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue; // gone since the walk
        };
        let Ok(modified) = meta.modified() else {
            continue;
        };
        let mark = (meta.len(), modified);
        let settled = now.duration_since(modified).is_ok_and(|age| age >= SETTLE);
        if settled && taken.files.get(&path) != Some(&mark) {
            found.push(Found {
                path: path.clone(),
                mark: Mark::File(path, mark),
            });
        }
    }
    Ok(found)
}

/// Where an S3 key is spooled: its path under `spool/s3/BUCKET/`, or `None` for a key
/// that would leave it (`..`, absolute) — such an object is skipped, said so.
fn spool_path(spool: &Path, bucket: &str, key: &str) -> Option<PathBuf> {
    let mut p = spool.join("s3").join(bucket);
    let mut parts = 0;
    for c in Path::new(key).components() {
        match c {
            Component::Normal(n) => {
                p.push(n);
                parts += 1;
            }
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (parts > 0).then_some(p)
}

#[cfg(feature = "aws")]
fn new_objects(
    rt: &tokio::runtime::Runtime,
    spool: &Path,
    bucket: &str,
    prefix: &str,
    taken: &Taken,
) -> anyhow::Result<Vec<Found>> {
    let tree = rt.block_on(keyward_respond::aws::S3Tree::from_env(bucket, prefix))?;
    let listed = rt.block_on(tree.list())?;
    let mut found = Vec::new();
    for o in listed {
        if taken.objects.get(&o.key) == Some(&o.etag) {
            continue;
        }
        let Some(path) = spool_path(spool, bucket, &o.key) else {
            eprintln!(
                "keyward: poll s3://{bucket}/: skipped the key {:?}: it would leave the spool",
                o.key
            );
            continue;
        };
        let bytes = rt.block_on(tree.get(&o.key, MAX_OBJECT))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating `{}`", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing `{}`", path.display()))?;
        found.push(Found {
            path,
            mark: Mark::Object(o.key, o.etag),
        });
    }
    Ok(found)
}

#[cfg(not(feature = "aws"))]
fn new_objects(
    _: &tokio::runtime::Runtime,
    _: &Path,
    bucket: &str,
    _: &str,
    _: &Taken,
) -> anyhow::Result<Vec<Found>> {
    anyhow::bail!("s3://{bucket}: this build has no AWS support (the `aws` feature)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(
            parse_source("/var/log/trail").unwrap(),
            Source::Local("/var/log/trail".into())
        );
        assert!(parse_source("").is_err());
        if cfg!(feature = "aws") {
            assert_eq!(
                parse_source("s3://trail/AWSLogs/").unwrap(),
                Source::S3 {
                    bucket: "trail".into(),
                    prefix: "AWSLogs/".into()
                }
            );
            assert!(parse_source("s3://").is_err());
        }
    }

    #[test]
    fn spooled_keys_stay_in_the_spool() {
        let spool = Path::new("/d/spool");
        assert_eq!(
            spool_path(spool, "b", "AWSLogs/1/CloudTrail/x.json.gz"),
            Some(PathBuf::from(
                "/d/spool/s3/b/AWSLogs/1/CloudTrail/x.json.gz"
            ))
        );
        assert_eq!(
            spool_path(spool, "b", "./a//b"),
            Some(PathBuf::from("/d/spool/s3/b/a/b"))
        );
        for bad in ["../x", "a/../../x", "/etc/passwd", ".", ""] {
            assert_eq!(spool_path(spool, "b", bad), None, "{bad}");
        }
    }
}

//! `keyward watch PATH|-`: tails JSON lines (CloudTrail records or Kubernetes audit events),
//! ingests them in small batches with detection on, and prints findings as they fire.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use keyward_engine::{Engine, IngestOptions};
use keyward_normalize::Layout;

use crate::Outcome;
use crate::cmd_rules::DetectArgs;
use crate::output::now_ms;

#[derive(clap::Args)]
pub struct Args {
    /// A file to follow as it grows, or `-` for standard input.
    pub path: PathBuf,
    /// Stop at the end of the input instead of waiting for more.
    #[arg(long)]
    pub once: bool,
    /// `table` (one line per finding) or `json` (one finding per line).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Kubernetes cluster name for audit events.
    #[arg(long)]
    pub cluster: Option<String>,
    /// A response policy (YAML): plans for the findings it matches, executed at once where
    /// it says `execute: auto`. Without it no plan is made.
    #[arg(long, value_name = "FILE")]
    pub response_policy: Option<PathBuf>,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// Lines are handed over in batches of at most this many, or after this pause.
const BATCH_LINES: usize = 2_000;
const PAUSE: Duration = Duration::from_millis(300);

fn reader(path: &Path, once: bool, tx: mpsc::SyncSender<Vec<u8>>) -> anyhow::Result<()> {
    let mut input: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let f =
            std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
        Box::new(BufReader::new(f))
    };
    let follow = !once && path != Path::new("-");
    let mut line = Vec::new();
    loop {
        let n = input.read_until(b'\n', &mut line)?;
        if n == 0 {
            if !follow {
                break;
            }
            std::thread::sleep(PAUSE);
            continue;
        }
        // A line still being written is completed by the next read.
        if line.last() != Some(&b'\n') && follow {
            continue;
        }
        if tx.send(std::mem::take(&mut line)).is_err() {
            break;
        }
    }
    if !line.is_empty() {
        let _ = tx.send(line);
    }
    Ok(())
}

pub fn run(dir: &Path, args: Args) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    engine.enable_detection(args.detect.catalog(), args.detect.settings())?;
    let mut responder = match &args.response_policy {
        Some(p) => Some(crate::cmd_respond::AutoResponder::new(
            crate::cmd_respond::load_policy(p)?,
        )?),
        None => None,
    };
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(BATCH_LINES * 4);
    let path = args.path.clone();
    let once = args.once;
    let handle = std::thread::spawn(move || reader(&path, once, tx));
    let opts = IngestOptions {
        cluster: args.cluster.clone(),
        ..IngestOptions::default()
    };
    let label = format!("watch:{}", args.path.display());
    let mut chunk: Vec<u8> = Vec::new();
    let mut lines = 0usize;
    let mut total = 0u64;
    let mut fired = 0u64;
    let mut rejected = 0u64;
    loop {
        let msg = rx.recv_timeout(PAUSE);
        let done = matches!(msg, Err(mpsc::RecvTimeoutError::Disconnected));
        let idle = msg.is_err();
        if let Ok(l) = msg {
            chunk.extend_from_slice(&l);
            if !l.ends_with(b"\n") {
                chunk.push(b'\n');
            }
            lines += 1;
        }
        if !chunk.is_empty() && (lines >= BATCH_LINES || idle) {
            let report = {
                let _writing = crate::output::write_lock(&mut engine, dir)?;
                let lines = std::mem::take(&mut chunk);
                let report = engine.ingest_body(&label, lines, Layout::Lines, &opts, now_ms())?;
                let target = args.path.display().to_string();
                let audit =
                    crate::cmd_ingest::audit_entry("ingest.watch", target, &report, now_ms());
                engine.audit(&audit)?;
                report
            };
            total += lines as u64;
            rejected += report.rejected;
            for (p, d) in &report.rejections {
                eprintln!("{p}:{}: {}", d.line, d.reason);
            }
            for f in &report.findings {
                fired += 1;
                if args.format == "json" {
                    println!("{}", serde_json::to_string(f)?);
                } else {
                    // Expected findings (the identity's pattern of life) say so.
                    println!(
                        "{}  {:<8} {:<8} {}  {}  {}",
                        keyward_model::time::format(f.last_seen),
                        f.severity.as_str(),
                        f.status.as_str(),
                        f.id,
                        f.rule_id,
                        f.summary
                    );
                }
            }
            if let Some(r) = responder.as_mut() {
                r.on_findings(&mut engine, &report.findings)?;
            }
            chunk.clear();
            lines = 0;
        }
        if done {
            break;
        }
    }
    match handle.join() {
        Ok(r) => r?,
        Err(_) => anyhow::bail!("the input reader stopped unexpectedly"),
    }
    eprintln!("watched {total} lines: {fired} findings opened or extended, {rejected} rejected");
    Ok(if rejected > 0 {
        Outcome::Rejected
    } else {
        Outcome::Clean
    })
}

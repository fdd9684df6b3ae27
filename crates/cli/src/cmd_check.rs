//! `keyward check PATH… [--format text|json|sarif] [--baseline FILE]`: the pull-request
//! check over Terraform, IAM policy documents and Kubernetes manifests
//! (`keyward_govern::check`; rules and flags in `docs/check.md`).
//!
//! Exit status: 0 clean (or every problem in the baseline), 1 a problem not in the
//! baseline, 2 a file that cannot be read or parsed (named with its line on stderr).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use keyward_govern::check::{self, Config, Input, Report, json, sarif};

use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// Files and directories (walked; hidden entries skipped): `.tf`, `.tf.json`,
    /// `terraform show -json` output, IAM policy `.json`, Kubernetes `.yaml`/`.yml`/`.json`.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[arg(long, default_value = "text", value_parser = ["text", "json", "sarif"])]
    pub format: String,
    /// A previous `--format json` or `--format sarif` output: only problems not in it fail.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// An AWS account trust policies may name (repeatable).
    #[arg(long, value_name = "ID")]
    pub allow_account: Vec<String>,
    /// A tag key every IAM role and user needs, case-insensitive (repeatable; default
    /// `owner` and `team`).
    #[arg(long, value_name = "KEY")]
    pub require_tag: Vec<String>,
}

pub fn run(a: Args) -> anyhow::Result<Outcome> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let files = keyward_sources::discover(&a.paths).context("listing the inputs")?;
    // Read every file first: the check borrows them all at once.
    let mut read = Vec::new();
    let mut unreadable = Vec::new();
    for f in &files {
        let label = label(&cwd, f);
        match std::fs::read(f) {
            Ok(bytes) => read.push((label, bytes)),
            Err(e) => unreadable.push(check::InputError {
                file: label,
                line: 1,
                reason: format!("cannot read: {e}"),
            }),
        }
    }
    let inputs: Vec<Input<'_>> = read
        .iter()
        .map(|(path, bytes)| Input { path, bytes })
        .collect();
    let mut cfg = Config {
        allow_accounts: a.allow_account,
        ..Config::default()
    };
    if !a.require_tag.is_empty() {
        cfg.require_tags = a.require_tag;
    }
    let mut report = check::check(&inputs, &cfg);
    report.errors.splice(0..0, unreadable);
    if let Some(b) = &a.baseline {
        report.apply_baseline(&baseline(b)?);
    }
    let version = env!("CARGO_PKG_VERSION");
    match a.format.as_str() {
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(&json::document(&report, version))?
        ),
        "sarif" => println!(
            "{}",
            serde_json::to_string_pretty(&sarif::log(&report, version, a.baseline.is_some()))?
        ),
        _ => text(&report),
    }
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    Ok(if !report.errors.is_empty() {
        Outcome::Rejected
    } else if report.failing().next().is_some() {
        Outcome::Broken
    } else {
        Outcome::Clean
    })
}

/// The path as the report names it: relative to the current directory (the repository
/// root in CI) when under it, `/`-separated.
fn label(cwd: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(cwd).unwrap_or(path);
    let s = rel.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_owned).unwrap_or(s)
}

fn baseline(path: &Path) -> anyhow::Result<BTreeSet<String>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading the baseline `{}`", path.display()))?;
    json::baseline(&bytes).with_context(|| format!("the baseline `{}`", path.display()))
}

fn text(report: &Report) {
    for p in &report.problems {
        let at = match p.column {
            Some(c) => format!("{}:{}:{c}", p.file, p.line),
            None => format!("{}:{}", p.file, p.line),
        };
        let known = if p.baselined { " (in baseline)" } else { "" };
        println!(
            "{at}: {} [{}] {}{known}",
            p.rule.id(),
            p.severity.as_str(),
            p.message
        );
    }
    let failing = report.failing().count();
    println!(
        "{} file(s) checked: {} problem(s), {failing} failing, {} error(s), {} skipped",
        report.files,
        report.problems.len(),
        report.errors.len(),
        report.skipped.len()
    );
}

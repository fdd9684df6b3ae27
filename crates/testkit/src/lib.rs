//! Test support shared by the crates' test suites: where the third-party corpora live, and
//! loaders for the ones several suites read. Never a dependency of shipped code.

pub mod cloudtrail;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `../shared/corpora` beside the checkout (or `KEYWARD_CORPORA`). `None`, after saying the
/// calling test is skipped, when it is not there (a fresh laptop).
pub fn corpora() -> Option<PathBuf> {
    let p = std::env::var_os("KEYWARD_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora"));
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "skipped: corpora not found at {} (set KEYWARD_CORPORA)",
            p.display()
        );
        None
    }
}

/// The entries of a directory, sorted.
pub fn sorted_dir(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Every path of the pathfinding.cloud catalogue, parsed (upstream files repeat a top-level
/// key now and then; the later value is the one meant).
pub fn pathfinding_paths(corpora: &Path) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for dir in sorted_dir(&corpora.join("aws-privesc-pathfinding-cloud/data/paths")) {
        for f in sorted_dir(&dir) {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            let opts = serde_saphyr::options! { duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins };
            out.push(
                serde_saphyr::from_str_with_options(&text, opts)
                    .map_err(|e| format!("{}: {e}", f.display()))?,
            );
        }
    }
    Ok(out)
}

/// Builders for IAM authorization-details fixtures (tests and benchmarks).
pub mod estate;

pub mod iam {
    use serde_json::{Value, json};

    /// The account every fixture lives in.
    pub const ACCT: &str = "111122223333";

    /// `arn:aws:iam::<ACCT>:<kind>/<name>`.
    pub fn arn(kind: &str, name: &str) -> String {
        format!("arn:aws:iam::{ACCT}:{kind}/{name}")
    }

    /// A policy document with these statements.
    pub fn doc(statements: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": statements})
    }
}

/// A small deterministic generator (xorshift64) for benchmarks and generated fixtures, so
/// every run sees the same data.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// An index in `0..n` (`n` > 0).
    pub fn index(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

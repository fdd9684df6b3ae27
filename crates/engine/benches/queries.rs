//! One-identity queries on a store of the generated 1M-identity estate (the graph
//! benchmark's, `keyward_testkit::estate`), through the real `keyward` binary: for each of
//! `show ID`, `graph chain ID`, `graph blast-radius ID`, `findings --identity ID` and a
//! filtered `inventory` page (and, for comparison, the whole filtered inventory), the wall time of the whole process (p50, p99) and its peak
//! resident memory (`/usr/bin/time`'s maximum RSS), over identities drawn at random.
//!
//! ```text
//! cargo build --release -p keyward
//! cargo bench -p keyward-engine --bench queries
//! KEYWARD_BENCH_IDENTITIES=200000 KEYWARD_BENCH_POSTGRES_URL=postgres://… cargo bench -p keyward-engine --bench queries
//! ```
//!
//! The store is written directly: the identities (and one threat finding per 50 of
//! them) through the store's batches, the graph — whose account snapshot edges no stored
//! object would derive — into the query tables with `write_query_tables`. So the queries
//! answered from the tables see the whole generated graph, while one that loads the
//! estate (the whole inventory, for comparison) builds the graph of the identities alone:
//! its figures are a lower bound of a real estate's.
//!
//! Variables: `KEYWARD_BENCH_IDENTITIES` (default 1,000,000; 20,000 without `--bench`),
//! `KEYWARD_BENCH_SAMPLES` (300; 10 without `--bench`), `KEYWARD_BENCH_DIR` (the SQLite
//! store's directory, kept; default a temporary one), `KEYWARD_BENCH_SQLITE=0` (skip
//! SQLite), `KEYWARD_BENCH_POSTGRES_URL` (an empty database to fill as well),
//! `KEYWARD_BENCH_REUSE=1` (a store whose query tables are filled is taken as filled by
//! an earlier run with the same `KEYWARD_BENCH_IDENTITIES`, and only queried), `KEYWARD_BIN`
//! (default `target/release/keyward`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyward_detect::{Finding, Kind, Severity, Status};
use keyward_model::Identity;
use keyward_store::{FindingRow, Store};
use keyward_testkit::Rng;
use keyward_testkit::estate::{build, estate};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A threat finding about `i`, as detection would store it.
fn finding(i: &Identity, n: usize) -> FindingRow {
    let f = Finding {
        id: keyward_detect::finding::finding_id("kw-bench", Some(&i.id), &n.to_string()),
        rule_id: "kw-bench".into(),
        title: "bench".into(),
        severity: Severity::Medium,
        kind: Kind::Threat,
        identity: Some(i.id.clone()),
        attack: Vec::new(),
        events: vec![format!("e{n}")],
        path: Vec::new(),
        first_seen: 1_700_000_000_000,
        last_seen: 1_700_000_000_000 + n as i64,
        count: 1,
        status: Status::Open,
        summary: "generated".into(),
        details: serde_json::json!({}),
    };
    FindingRow {
        id: f.id.clone(),
        rule_id: f.rule_id.clone(),
        kind: "threat".into(),
        severity: f.severity as u8,
        identity: f.identity.clone(),
        status: "open".into(),
        first_seen: f.first_seen,
        last_seen: f.last_seen,
        doc: serde_json::to_string(&f).unwrap(),
    }
}

/// Writes the estate of `n` identities into `store`, unless `reuse` and an earlier run
/// filled it; returns the identities' ids.
fn fill(store: &mut dyn Store, n: usize, reuse: bool) -> Vec<String> {
    if reuse && store.query_tables_filled().unwrap() {
        println!("  estate: kept from an earlier run");
        return estate(n).identities.into_iter().map(|i| i.id).collect();
    }
    let t = Instant::now();
    let e = estate(n);
    let mut g = build(&e);
    let built = t.elapsed();
    for (c, chunk) in e.identities.chunks(50_000).enumerate() {
        let mut batch = store.begin().unwrap();
        let refs: Vec<&Identity> = chunk.iter().collect();
        batch.put_identities(&refs).unwrap();
        for (k, i) in chunk.iter().enumerate().filter(|(k, _)| k % 50 == 0) {
            batch.put_finding(&finding(i, c * 50_000 + k)).unwrap();
        }
        batch.commit().unwrap();
    }
    let stored = t.elapsed();
    keyward_engine::write_query_tables(store, &mut g, &e.identities).unwrap();
    println!(
        "  estate: {} identities, {} nodes, {} edges; generated and built in {:.1} s, \
         identities stored in {:.1} s, query tables in {:.1} s",
        e.identities.len(),
        g.node_count(),
        g.edge_count(),
        built.as_secs_f64(),
        (stored - built).as_secs_f64(),
        (t.elapsed() - stored).as_secs_f64()
    );
    e.identities.iter().map(|i| i.id.clone()).collect()
}

/// Runs `keyward ARGS` under `/usr/bin/time`: its wall time and maximum RSS (bytes).
fn run(bin: &Path, store: &[String], args: &[&str]) -> (Duration, u64) {
    let rss = tempfile::NamedTempFile::new().unwrap();
    let t = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(rss.path())
        .arg(bin)
        .args(store)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let wall = t.elapsed();
    assert!(status.success(), "keyward {args:?} failed");
    let kb: u64 = std::fs::read_to_string(rss.path())
        .unwrap()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (wall, kb * 1024)
}

fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

/// Times every query on the store `store_args` selects.
fn queries(bin: &Path, store_args: &[String], ids: &[String], samples: usize, full: usize) {
    let mut rng = Rng(7);
    let picks: Vec<&str> = (0..samples)
        .map(|_| ids[rng.index(ids.len())].as_str())
        .collect();
    type Args<'a> = Box<dyn Fn(&'a str) -> Vec<&'a str>>;
    let cases: Vec<(&str, Args, usize)> = vec![
        ("show ID", Box::new(|id| vec!["show", id]), samples),
        (
            "graph chain ID",
            Box::new(|id| vec!["graph", "chain", id]),
            samples,
        ),
        (
            "graph blast-radius ID",
            Box::new(|id| vec!["graph", "blast-radius", id]),
            samples,
        ),
        (
            "findings --identity ID",
            Box::new(|id| vec!["findings", "--identity", id]),
            samples,
        ),
        (
            "inventory --platform aws --kind iam_role --limit 50 --offset 1000",
            Box::new(|_| {
                vec![
                    "inventory",
                    "--platform",
                    "aws",
                    "--kind",
                    "iam_role",
                    "--limit",
                    "50",
                    "--offset",
                    "1000",
                ]
            }),
            samples,
        ),
        (
            "inventory --kind sts_session --limit 50 --offset 100000",
            Box::new(|_| {
                vec![
                    "inventory",
                    "--kind",
                    "sts_session",
                    "--limit",
                    "50",
                    "--offset",
                    "100000",
                ]
            }),
            samples,
        ),
        (
            "for comparison, the whole filtered inventory (loads the estate)",
            Box::new(|_| {
                vec![
                    "inventory",
                    "--platform",
                    "aws",
                    "--kind",
                    "iam_role",
                    "--format",
                    "csv",
                ]
            }),
            full,
        ),
    ];
    for (name, args, n) in cases {
        let mut walls = Vec::with_capacity(n);
        let mut peak = Vec::with_capacity(n);
        for id in picks.iter().take(n) {
            let (w, r) = run(bin, store_args, &args(id));
            walls.push(w);
            peak.push(r);
        }
        peak.sort_unstable();
        // A query's first run comes after other queries (the whole inventory among them)
        // and reads what the OS cache let go: said apart, as the cold case.
        let first = walls.first().copied().unwrap_or_default();
        let mut rest = walls.get(1..).unwrap_or_default().to_vec();
        let p99_rest = if rest.is_empty() {
            first
        } else {
            quantile(&mut rest, 0.99)
        };
        let p50 = quantile(&mut walls, 0.5);
        let p99 = quantile(&mut walls, 0.99);
        println!(
            "  {name}: {n} runs, wall p50 {:.1} ms, p99 {:.1} ms (first run {:.1} ms, p99 after it {:.1} ms); max RSS p50 {:.1} MB, max {:.1} MB",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e3,
            p99_rest.as_secs_f64() * 1e3,
            peak[peak.len() / 2] as f64 / 1e6,
            peak[peak.len() - 1] as f64 / 1e6
        );
    }
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let n = env_usize(
        "KEYWARD_BENCH_IDENTITIES",
        if smoke { 20_000 } else { 1_000_000 },
    );
    let samples = env_usize("KEYWARD_BENCH_SAMPLES", if smoke { 10 } else { 300 });
    let full = if smoke { 2 } else { 3 };
    let reuse = std::env::var("KEYWARD_BENCH_REUSE").is_ok_and(|v| v == "1");
    let bin = std::env::var_os("KEYWARD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/keyward")
        });
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("KEYWARD_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().join("sqlite"));
    if std::env::var("KEYWARD_BENCH_SQLITE").map_or(true, |v| v != "0") {
        println!("SQLite ({}):", dir.display());
        let ids = {
            let mut store = keyward_store::SqliteStore::open(&dir).unwrap();
            fill(&mut store, n, reuse)
        };
        if bin.exists() {
            let args = vec!["--data-dir".to_owned(), dir.display().to_string()];
            queries(&bin, &args, &ids, samples, full);
        } else {
            println!(
                "  queries skipped: no binary at {} (KEYWARD_BIN)",
                bin.display()
            );
        }
    }
    if let Some(url) = std::env::var("KEYWARD_BENCH_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
    {
        let keys = temp.path().join("pg-keys");
        println!("PostgreSQL:");
        let ids = {
            let mut store = keyward_store::open(&url, &keys).unwrap();
            fill(store.as_mut(), n, reuse)
        };
        if bin.exists() {
            let args = vec![
                "--data-dir".to_owned(),
                keys.display().to_string(),
                "--store".to_owned(),
                url,
            ];
            queries(&bin, &args, &ids, samples, full);
        }
    }
}

//! Records through the bus: the real `keyward` binary as gateway and workers, a NATS
//! JetStream server of the bench's own and a fresh PostgreSQL database.
//!
//! ```text
//! KEYWARD_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench -p keyward --bench bus
//! KEYWARD_BENCH_EVENTS=400000 … cargo bench -p keyward --bench bus
//! cargo test -p keyward --bench bus      # smoke: 3,000 events, debug build (CI)
//! ```
//!
//! Stages, each on a fresh database and stream, over the same synthetic CloudTrail corpus
//! (`keyward_testkit::cloudtrail`, 1,000 records a file):
//! 1. reference: one `keyward ingest` process straight into PostgreSQL (no bus);
//! 2. gateway: `keyward ingest --bus` publishing (read, normalize, publish, acknowledged);
//! 3. catch-up with 1 and then 2 workers (`keyward worker --drain`) on the published stream;
//! 4. live: one worker running while the gateway publishes; the worker's publish → commit
//!    latency (a finding is committed with its event, so this is event → finding).
//!
//! Needs `KEYWARD_TEST_NATS_SERVER` (the `nats-server` binary) and
//! `KEYWARD_TEST_POSTGRES_URL` (any database on the server: the bench makes its own).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// The scale-out tests' servers: a NATS of the bench's own, fresh databases.
#[allow(dead_code)]
#[path = "../tests/common/servers.rs"]
mod servers;

use servers::{Database, Nats};

/// Bytes under `dir` (what JetStream keeps on disk).
fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            total += if p.is_dir() {
                disk_bytes(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            };
        }
    }
    total
}

/// The size of the database `url` names.
fn database_bytes(url: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query_one("SELECT pg_database_size(current_database())", &[])
        .unwrap()
        .get(0)
}

fn keyward(data: &Path, store: &str, args: &[&str], log: &Path) -> Child {
    let f = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .arg("--data-dir")
        .arg(data)
        .args(["--store", store])
        .args(args)
        .env_remove("KEYWARD_BUS")
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap()
}

fn run(data: &Path, store: &str, args: &[&str], log: &Path) -> f64 {
    let start = Instant::now();
    let status = keyward(data, store, args, log).wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    start.elapsed().as_secs_f64()
}

/// Runs `workers` draining workers at once; seconds until the last ends.
fn drain(data: &Path, store: &str, bus: &[&str], workers: usize, tmp: &Path) -> f64 {
    let args: Vec<&str> = [&["worker"][..], bus, &["--drain", "--rebalance", "1"]].concat();
    let start = Instant::now();
    let mut running: Vec<Child> = (0..workers)
        .map(|n| keyward(data, store, &args, &tmp.join(format!("w{workers}-{n}.log"))))
        .collect();
    for w in &mut running {
        assert!(w.wait().unwrap().success());
    }
    start.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(reference_db) = Database::new("kw_bench_bus") else {
        return;
    };
    let Some(nats) = Nats::start() else { return };
    // `cargo bench` passes `--bench`; `cargo test --bench bus` is a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let events: usize = std::env::var("KEYWARD_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 3_000 } else { 200_000 });
    let tmp = tempfile::tempdir().unwrap();
    let corpus: PathBuf = tmp.path().join("corpus");
    keyward_testkit::cloudtrail::corpus(&corpus, events, 1_000);
    let corpus = corpus.to_str().unwrap().to_owned();
    let url = nats.url();
    println!(
        "{events} CloudTrail events; NATS {url}; PostgreSQL on the machine; 2 vCPUs shared by \
         PostgreSQL, NATS and every keyward process of a stage"
    );
    let rate = |secs: f64| events as f64 / secs;

    let secs = run(
        &tmp.path().join("ref"),
        &reference_db.url,
        &["ingest", &corpus],
        &tmp.path().join("ref.log"),
    );
    println!(
        "reference: keyward ingest into PostgreSQL, one process: {secs:.1} s, {:.0} events/s",
        rate(secs)
    );

    for workers in [1usize, 2] {
        let db = Database::new("kw_bench_bus").expect("checked above");
        let db = db.url.as_str();
        let data = tmp.path().join(format!("catchup{workers}"));
        let stream = format!("BENCH{workers}");
        let bus = ["--bus", url.as_str(), "--bus-stream", stream.as_str()];
        let ingest: Vec<&str> = [&["ingest"][..], &bus, &[corpus.as_str()]].concat();
        let log = tmp.path().join(format!("gateway{workers}.log"));
        let before = disk_bytes(nats.store_dir());
        let secs = run(&data, db, &ingest, &log);
        let queued = disk_bytes(nats.store_dir()).saturating_sub(before);
        println!(
            "gateway (keyward ingest --bus), alone: {secs:.1} s, {:.0} events/s published; \
             JetStream holds {:.0} bytes per event while queued",
            rate(secs),
            queued as f64 / events as f64
        );
        let empty = database_bytes(db);
        let secs = drain(&data, db, &bus, workers, tmp.path());
        let stored = database_bytes(db) - empty;
        println!(
            "catch-up, {workers} worker(s): {secs:.1} s, {:.0} events/s into PostgreSQL \
             ({:.0} bytes per event in the database)",
            rate(secs),
            stored as f64 / events as f64
        );
    }

    // Live: the worker runs while the gateway publishes.
    let live_db = Database::new("kw_bench_bus").expect("checked above");
    let db = live_db.url.as_str();
    let data = tmp.path().join("live");
    let bus = ["--bus", url.as_str(), "--bus-stream", "LIVE"];
    let wlog = tmp.path().join("live-worker.log");
    let args: Vec<&str> = [&["worker"][..], &bus, &["--drain", "--batch", "2000"]].concat();
    let mut worker = keyward(&data, db, &args, &wlog);
    std::thread::sleep(Duration::from_secs(2));
    let start = Instant::now();
    let ingest: Vec<&str> = [&["ingest"][..], &bus, &[corpus.as_str()]].concat();
    run(&data, db, &ingest, &tmp.path().join("live-gateway.log"));
    assert!(worker.wait().unwrap().success());
    let secs = start.elapsed().as_secs_f64();
    let summary = std::fs::read_to_string(&wlog).unwrap_or_default();
    let line = summary
        .lines()
        .find(|l| l.starts_with("took in"))
        .unwrap_or("");
    println!(
        "live, gateway and 1 worker together: {secs:.1} s end to end, {:.0} events/s; {line}",
        rate(secs)
    );
}

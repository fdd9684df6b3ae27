//! Past one machine, with real processes: a NATS JetStream server and PostgreSQL of the
//! test's own, `keyward ingest --bus` as the gateway and `keyward worker` processes.
//!
//! - The example estate answers the same (inventory, findings, graph export) through
//!   SQLite, PostgreSQL, and PostgreSQL + NATS with two workers.
//! - Whatever crashes — the gateway and the workers killed with SIGKILL at random moments,
//!   NATS and PostgreSQL restarted mid-stream — the store ends with the events, findings
//!   and inventory of a clean single-process run: nothing lost, nothing counted twice.
//!
//! Needs `KEYWARD_TEST_NATS_SERVER` (the `nats-server` binary), and
//! `KEYWARD_TEST_POSTGRES_URL` or `KEYWARD_TEST_PG_BIN` (`.ci/run` sets all three); says it
//! was skipped without them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::servers::{Database, Nats, PgCluster};
use common::{estate, text};

/// `keyward --data-dir DATA --store STORE ARGS…` to its end.
fn kw(data: &Path, store: &str, args: &[&str]) -> Output {
    launch(data, store, args, None).wait_with_output().unwrap()
}

/// Starts `keyward --data-dir DATA --store STORE ARGS…`; its output goes to `log` (a
/// long-running worker must never block on a full pipe), or is captured.
fn launch(data: &Path, store: &str, args: &[&str], log: Option<&Path>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyward"));
    cmd.arg("--data-dir")
        .arg(data)
        .args(["--store", store])
        .args(args)
        .env_remove("KEYWARD_DATA_DIR")
        .env_remove("KEYWARD_CONFIG")
        .env_remove("KEYWARD_POLICIES")
        .env_remove("KEYWARD_BUS")
        .stdin(Stdio::null());
    match log {
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap();
            cmd.stdout(f.try_clone().unwrap()).stderr(f);
        }
        None => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
    }
    cmd.spawn().unwrap()
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// What a store answers: the inventory and findings as JSON, the graph export's lines
/// sorted (node order follows arrival, which partitions change).
fn answers(data: &Path, store: &str) -> (String, String, Vec<String>) {
    let inventory = ok(
        &kw(data, store, &["inventory", "--format", "json"]),
        "inventory",
    );
    let findings = ok(
        &kw(data, store, &["findings", "--format", "json"]),
        "findings",
    );
    let graph = ok(
        &kw(data, store, &["graph", "export", "--format", "json"]),
        "graph export",
    );
    let mut lines: Vec<String> = graph.lines().map(str::to_owned).collect();
    lines.sort();
    (inventory, findings, lines)
}

/// Asserts two answers are the same, showing the first lines that differ (both kept in a
/// temporary directory to compare whole).
fn same(got: &str, want: &str, what: &str) {
    if got == want {
        return;
    }
    let kept = tempfile::Builder::new()
        .prefix("keyward-scaleout-")
        .tempdir()
        .map(tempfile::TempDir::keep);
    if let Ok(dir) = &kept {
        let _ = std::fs::write(dir.join("want"), want);
        let _ = std::fs::write(dir.join("got"), got);
    }
    let diff: Vec<String> = got
        .lines()
        .zip(want.lines())
        .filter(|(a, b)| a != b)
        .take(6)
        .map(|(a, b)| format!("- {b}\n+ {a}"))
        .collect();
    panic!(
        "{what} differs ({} lines against {}; both in {kept:?}):\n{}",
        got.lines().count(),
        want.lines().count(),
        diff.join("\n")
    );
}

/// Records a worker's summary says it took in.
fn took(log: &Path) -> u64 {
    let s = std::fs::read_to_string(log).unwrap_or_default();
    s.lines()
        .filter_map(|l| l.strip_prefix("took in "))
        .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn the_example_estate_answers_alike_through_the_bus() {
    let Some(nats) = Nats::start() else { return };
    let (Some(single), Some(one_worker), Some(bused)) = (
        Database::new("kw_so_pg"),
        Database::new("kw_so_one"),
        Database::new("kw_so_two"),
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let estate = estate();
    let estate = estate.to_str().unwrap();

    let sqlite = tmp.path().join("sqlite");
    let sqlite_store = format!("sqlite:{}", sqlite.display());
    ok(
        &kw(&sqlite, &sqlite_store, &["ingest", estate]),
        "ingest (SQLite)",
    );
    let pg = tmp.path().join("pg");
    ok(
        &kw(&pg, &single.url, &["ingest", estate]),
        "ingest (PostgreSQL)",
    );

    let reference = answers(&sqlite, &sqlite_store);
    assert!(reference.1.contains("kw-posture"), "findings were made");
    let got = answers(&pg, &single.url);
    same(&got.0, &reference.0, "the inventory through PostgreSQL");
    same(&got.1, &reference.1, "the findings through PostgreSQL");
    same(
        &got.2.join("\n"),
        &reference.2.join("\n"),
        "the graph through PostgreSQL",
    );

    // One worker takes records in the gateway's order, here in one commit as the single
    // process does (objects' graph edges are derived after each commit, so smaller commits
    // give findings a fuller ownership path): the same answers, findings included.
    let (data, taken) = through_bus(&nats, &one_worker.url, tmp.path(), ("ONE", 1, "5000"));
    assert_eq!(taken, [2369]);
    let got = answers(&data, &one_worker.url);
    same(
        &got.0,
        &reference.0,
        "the inventory through the bus (one worker)",
    );
    same(
        &got.1,
        &reference.1,
        "the findings through the bus (one worker)",
    );
    same(
        &got.2.join("\n"),
        &reference.2.join("\n"),
        "the graph through the bus (one worker)",
    );

    // Two workers share the partitions and commit in the order they run: the same answers
    // again, findings included — those judged on context another partition brings (an
    // owner's departure from the people directory) as well, since retirement is judged
    // again once the context is in (`engine/src/retirement.rs`).
    let (data, taken) = through_bus(&nats, &bused.url, tmp.path(), ("TWO", 2, "40"));
    assert_eq!(taken.iter().sum::<u64>(), 2369, "{taken:?}");
    assert!(
        taken.iter().all(|&n| n > 0),
        "both workers took records: {taken:?}"
    );
    let got = answers(&data, &bused.url);
    same(
        &got.0,
        &reference.0,
        "the inventory through the bus (two workers)",
    );
    same(
        &got.2.join("\n"),
        &reference.2.join("\n"),
        "the graph through the bus (two workers)",
    );
    same(
        &got.1,
        &reference.1,
        "the findings through the bus (two workers)",
    );

    // What the workers kept in the query tables answers as the single process does.
    for id in [
        "arn:aws:iam::111122223333:role/github-actions-deploy",
        "arn:aws:iam::111122223333:user/terraform-runner",
        "k8s:prod-eks/system:serviceaccount:payments:legacy-cron",
    ] {
        for question in [
            &["show", id][..],
            &["graph", "chain", id],
            &["graph", "blast-radius", id],
        ] {
            // The clock's time of asking aside.
            let asked = |o: String| -> String {
                o.lines()
                    .map(|l| l.split("; as of ").next().unwrap_or(l))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let want = asked(ok(
                &kw(&sqlite, &sqlite_store, question),
                "a question (SQLite)",
            ));
            let got = asked(ok(&kw(&data, &bused.url, question), "a question (the bus)"));
            same(
                &got,
                &want,
                &format!("`{}` through the bus", question.join(" ")),
            );
        }
    }
}

/// The estate published to `stream` by `keyward ingest --bus` (as a catch-up: hours close
/// and posture is judged once the stream is empty, as at the end of `keyward ingest`), then
/// taken in by `workers` processes at once, `batch` records a commit (small commits make
/// the second worker take its half of the partitions at the first re-balance while the
/// first is still busy). The data directory, and what each worker took.
fn through_bus(
    nats: &Nats,
    store: &str,
    tmp: &Path,
    (stream, workers, batch): (&str, usize, &str),
) -> (std::path::PathBuf, Vec<u64>) {
    let data = tmp.join(stream);
    let url = nats.url();
    let flags = ["--bus", &url, "--bus-stream", stream];
    let estate = estate();
    let o = kw(
        &data,
        store,
        &[&["ingest"][..], &flags, &[estate.to_str().unwrap()]].concat(),
    );
    let out = ok(&o, "ingest --bus");
    assert!(out.contains("published 2369 records"), "{out}");
    let args = [
        &["worker"][..],
        &flags,
        &["--drain", "--rebalance", "1", "--batch", batch],
    ]
    .concat();
    let logs: Vec<_> = (0..workers)
        .map(|n| tmp.join(format!("{stream}-{n}.log")))
        .collect();
    let mut running: Vec<Child> = logs
        .iter()
        .map(|l| launch(&data, store, &args, Some(l)))
        .collect();
    for w in &mut running {
        assert!(w.wait().unwrap().success());
    }
    (data, logs.iter().map(|l| took(l)).collect())
}

/// `keyward serve --bus` as the ingest gateway: a posted CloudTrail file is answered once
/// its records are on the bus (nothing stored yet but the input's file row), a file in the
/// tree it polls is published as well, and a worker then takes both in.
#[test]
fn serve_is_a_gateway_with_a_bus() {
    let Some(nats) = Nats::start() else { return };
    let Some(db) = Database::new("kw_so_serve") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("gw");
    let o = kw(
        &data,
        &db.url,
        &["token", "create", "--role", "operator", "--name", "gw"],
    );
    let token = ok(&o, "token create").trim().to_owned();
    let url = nats.url();
    let flags = ["--bus", url.as_str(), "--bus-stream", "SERVE"];
    // One day's files: the first posted, the second in a tree the gateway polls.
    let mut day: Vec<_> =
        std::fs::read_dir(estate().join("AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/11"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    day.sort();
    let (file, polled) = (&day[0], &day[1]);
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let dropped = inbox.join(polled.file_name().unwrap());
    std::fs::copy(polled, &dropped).unwrap();
    // Written an hour ago: settled, taken on the first round.
    std::fs::File::options()
        .write(true)
        .open(&dropped)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let poll = ["--poll", inbox.to_str().unwrap(), "--poll-interval", "1"];
    let served = common::serve_with(&data, &["--store", &db.url], &[&flags[..], &poll].concat());
    let body = std::fs::read(file).unwrap();
    let (status, answer) = common::http(served.port, "POST", "/api/ingest", &token, &body);
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let accepted = answer["accepted"].as_u64().unwrap();
    assert!(accepted > 0, "{answer}");
    let events = "SELECT coalesce(sum(n), 0)::BIGINT FROM event_key_chunks";
    assert_eq!(db.count(events), 0, "the gateway stores no event itself");
    // Posting it again publishes the same messages: JetStream keeps one of each.
    let (status, _) = common::http(served.port, "POST", "/api/ingest", &token, &body);
    assert_eq!(status, 200);
    // The polled file published too (its round audited as `ingest.poll`).
    let start = std::time::Instant::now();
    let from_poll = loop {
        let audit = ok(&kw(&data, &db.url, &["audit", "export"]), "audit export");
        let round = audit
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["action"] == "ingest.poll");
        if let Some(r) = round {
            let after: serde_json::Value =
                serde_json::from_str(r["after"].as_str().unwrap()).unwrap();
            break after["accepted"].as_u64().unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no poll round: {audit}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(from_poll > 0);
    assert_eq!(db.count(events), 0, "the gateway stores no event itself");
    let worker = [&["worker"][..], &flags, &["--drain"]].concat();
    let out = ok(&kw(&data, &db.url, &worker), "worker --drain");
    let total = accepted + from_poll;
    assert!(out.contains(&format!("took in {total} records")), "{out}");
    assert_eq!(db.count(events), i64::try_from(total).unwrap());
    drop(served);
}

/// Events stored in a SQLite data directory.
fn sqlite_events(dir: &Path) -> i64 {
    let c = rusqlite::Connection::open(dir.join("keyward.db")).unwrap();
    c.query_row(
        "SELECT coalesce(sum(n), 0) FROM event_key_chunks",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn nothing_is_lost_or_counted_twice_whatever_crashes() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let db = Database::on(&cluster.url(), "kw_chaos");
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    keyward_testkit::cloudtrail::corpus(&corpus, 30_000, 1_000);
    let corpus = corpus.to_str().unwrap().to_owned();

    // The clean run: one process, the embedded store.
    let clean = tmp.path().join("clean");
    let clean_store = format!("sqlite:{}", clean.display());
    ok(
        &kw(&clean, &clean_store, &["ingest", &corpus]),
        "clean ingest",
    );
    let events = sqlite_events(&clean);
    assert_eq!(events, 30_000);

    // The same through the bus, with crashes at random moments.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("chaos seed {seed}");
    let mut rng = keyward_testkit::Rng(seed);
    let mut pause = |lo: u64, hi: u64| {
        std::thread::sleep(Duration::from_millis(lo + rng.below(hi - lo)));
    };
    let data = tmp.path().join("bus");
    let url = nats.url();
    let flags = ["--bus", &url, "--bus-stream", "CHAOS"];
    let worker_args: Vec<&str> = [
        &["worker"][..],
        &flags,
        &[
            "--rebalance",
            "1",
            "--batch",
            "500",
            "--stats-interval",
            "1",
        ],
    ]
    .concat();
    let log = tmp.path().join("workers.log");
    let start_worker = || launch(&data, &db.url, &worker_args, Some(&log));
    let mut workers = [start_worker(), start_worker()];
    let gateway_args: Vec<&str> = [&["ingest"][..], &flags, &[corpus.as_str()]].concat();
    let glog = tmp.path().join("gateway.log");
    let start_gateway = || launch(&data, &db.url, &gateway_args, Some(&glog));
    std::thread::sleep(Duration::from_secs(2));

    // The gateway killed twice mid-stream, then run to its end.
    for _ in 0..2 {
        let mut g = start_gateway();
        pause(300, 1_500);
        g.kill().unwrap();
        g.wait().unwrap();
    }
    let mut gateway = start_gateway();
    pause(200, 1_000);
    workers[0].kill().unwrap();
    workers[0].wait().unwrap();
    workers[0] = start_worker();
    pause(200, 1_000);
    nats.restart(Duration::from_millis(500));
    pause(200, 1_000);
    workers[1].kill().unwrap();
    workers[1].wait().unwrap();
    workers[1] = start_worker();
    pause(200, 1_000);
    cluster.restart();
    pause(200, 1_000);
    workers[0].kill().unwrap();
    workers[0].wait().unwrap();
    workers[0] = start_worker();
    // The gateway must end well; run again as an operator would if a restart cut it off
    // (its file rows are committed only after its records are on the bus).
    let mut runs = 0;
    while !gateway.wait().unwrap().success() {
        runs += 1;
        assert!(runs < 5, "{}", std::fs::read_to_string(&glog).unwrap());
        gateway = start_gateway();
    }
    // Then whoever is left stops, and one worker drains the stream.
    for w in &mut workers {
        w.kill().unwrap();
        w.wait().unwrap();
    }
    let drain: Vec<&str> = [&worker_args[..], &["--drain"]].concat();
    let o = kw(&data, &db.url, &drain);
    ok(&o, "the draining worker");

    let logs = format!(
        "gateway:\n{}\nworkers:\n{}",
        std::fs::read_to_string(&glog).unwrap_or_default(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The restarts were felt: workers started new sessions from the store's checkpoints.
    assert!(
        logs.contains("starting again from the store's checkpoints"),
        "{logs}"
    );
    let stored = db.count("SELECT coalesce(sum(n), 0)::BIGINT FROM event_key_chunks");
    assert_eq!(
        stored, events,
        "events lost or doubled (seed {seed})\n{logs}"
    );
    let reference = answers(&clean, &clean_store);
    let faulted = answers(&data, &db.url);
    same(
        &faulted.1,
        &reference.1,
        &format!("the findings (seed {seed})"),
    );
    same(
        &faulted.0,
        &reference.0,
        &format!("the inventory (seed {seed})"),
    );
}

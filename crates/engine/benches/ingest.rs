//! Ingest throughput on CloudTrail `.json.gz` S3 objects, next to parse-only baselines of
//! the same bytes measured in the same run.
//!
//! ```text
//! taskset -c 0 cargo bench -p keyward-engine --bench ingest
//! KEYWARD_BENCH_EVENTS=1000000 taskset -c 0 cargo bench -p keyward-engine --bench ingest
//! ```
//!
//! Baselines: (a) gunzip only; (b) gunzip + parse into a generic JSON DOM with serde_json,
//! the Rust ecosystem's reference parser; (c) the same with sonic-rs; (d) gunzip + parse
//! every record into the typed struct ingestion itself uses; (e) gunzip + full
//! normalization (events and identity observations) into a sink that drops them. Ingest =
//! gunzip + parse + normalize + inventory + SQLite store (events, identities, file
//! records), committed every 500,000 records, as `keyward ingest` does.
//!
//! The issue's target ratio (ingest with detection / serde_json DOM parse) is printed twice:
//! from the stages as run one after the other, and from runs interleaved (each detection
//! run right after a reference run), which a machine whose speed drifts skews less.
//!
//! For profiling: `KEYWARD_BENCH_ONLY_INGEST` skips the parse-only stages,
//! `KEYWARD_BENCH_ONLY_PLAIN` stops before detection, `KEYWARD_BENCH_ONLY_DETECT` runs only
//! ingest with detection, `KEYWARD_BENCH_ONLY_REFERENCE` runs only the serde_json
//! reference (once), and `KEYWARD_BENCH_RULES=none|builtin` detects with baselines
//! and check state only, or without the Sigma rules.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use keyward_engine::{Engine, IngestOptions};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

/// The allocator the `keyward` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn gunzip(p: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(p).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The reference: gunzip every file and parse it into serde_json's generic DOM. Not
/// inlined, so that callgrind can count its instructions alone
/// (`--toggle-collect='ingest::reference'`).
#[inline(never)]
fn reference(files: &[PathBuf]) -> usize {
    files
        .iter()
        .map(|p| {
            let v: serde_json::Value = serde_json::from_slice(&gunzip(p)).unwrap();
            v["Records"].as_array().map_or(0, Vec::len)
        })
        .sum()
}

/// Counts accepted records and drops them.
struct Count(usize);

impl keyward_normalize::Sink for Count {
    fn accept(&mut self, _: keyward_normalize::Output<'_>) {
        self.0 += 1;
    }
    fn reject(&mut self, d: keyward_model::Diagnostic) {
        panic!("{d:?}");
    }
}

fn best_of(runs: usize, mut f: impl FnMut() -> usize) -> (usize, f64) {
    let mut best = f64::MAX;
    let mut n = 0;
    for _ in 0..runs {
        let start = Instant::now();
        n = f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    (n, best)
}

/// One timed `Engine::ingest` of the corpus into a fresh store, with detection when a
/// catalog is given.
struct Ingested {
    secs: f64,
    identities: usize,
    detection: Option<keyward_engine::DetectionStats>,
    baseline_bytes: usize,
    /// Findings per rule, most first.
    findings: Vec<(String, usize)>,
}

fn ingest_once(
    corpus: &Path,
    events: usize,
    catalog: Option<&keyward_detect::Catalog>,
) -> Ingested {
    let data = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(data.path()).unwrap();
    if let Some(c) = catalog {
        engine
            .enable_detection(c.clone(), Default::default())
            .unwrap();
    }
    let start = Instant::now();
    let report = engine
        .ingest(
            &[corpus.to_path_buf()],
            &IngestOptions::default(),
            &mut (),
            0,
        )
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(report.per_source["cloudtrail"].accepted as usize, events);
    assert_eq!(report.rejected, 0);
    Ingested {
        secs,
        identities: engine.inventory().len(),
        detection: report.detection,
        baseline_bytes: engine.detector().map_or(0, |d| d.baseline_bytes()),
        findings: {
            let mut by: std::collections::BTreeMap<String, usize> = Default::default();
            for f in &report.findings {
                *by.entry(f.rule_id.clone()).or_default() += 1;
            }
            let mut v: Vec<_> = by.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v
        },
    }
}

/// How big and how often: from `--bench` (absent in smoke mode) and the environment.
struct Setup {
    /// `cargo test --benches` runs the benchmark once, small.
    smoke: bool,
    events: usize,
    /// Runs per stage; each stage reports its best.
    runs: usize,
}

impl Setup {
    fn from_env() -> Setup {
        // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, small.
        let smoke = !std::env::args().any(|a| a == "--bench");
        let events: usize = std::env::var("KEYWARD_BENCH_EVENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if smoke { 5_000 } else { 300_000 });
        let runs = if smoke { 1 } else { 3 };
        Setup {
            smoke,
            events,
            runs,
        }
    }

    /// How many (reference, ingest with detection) pairs run: `KEYWARD_BENCH_PAIRS`, 5 by
    /// default, 1 in smoke mode.
    fn pairs(&self) -> usize {
        if self.smoke {
            1
        } else {
            std::env::var("KEYWARD_BENCH_PAIRS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(5)
                .max(1)
        }
    }
}

/// The best time of each parse-only baseline (NaN when skipped).
struct Baselines {
    t_gz: f64,
    t_serde: f64,
    t_dom: f64,
    t_typed: f64,
    t_norm: f64,
}

/// The parse-only stages on the same files: gunzip, the two DOM parses, the typed parse and
/// full normalization into a sink that drops its output. Skipped (NaN) with `only_ingest`.
fn baselines(files: &[PathBuf], setup: &Setup, only_ingest: bool) -> Baselines {
    let (events, runs) = (setup.events, setup.runs);
    let (_, t_gz) = if only_ingest {
        (0, f64::NAN)
    } else {
        best_of(runs, || files.iter().map(|p| gunzip(p).len()).sum())
    };
    let (n_dom, t_dom) = if only_ingest {
        (events, f64::NAN)
    } else {
        best_of(runs, || {
            files
                .iter()
                .map(|p| {
                    let doc = gunzip(p);
                    let v: sonic_rs::Value = sonic_rs::from_slice(&doc).unwrap();
                    v.get("Records")
                        .and_then(|r| r.as_array())
                        .map_or(0, |a| a.len())
                })
                .sum()
        })
    };
    let (n_serde, t_serde) = if only_ingest {
        (events, f64::NAN)
    } else {
        best_of(runs, || reference(files))
    };
    assert_eq!(n_serde, events);
    let (n_typed, t_typed) = if only_ingest {
        (events, f64::NAN)
    } else {
        best_of(runs, || {
            files
                .iter()
                .map(|p| keyward_normalize::cloudtrail::parse_only(&gunzip(p)))
                .sum()
        })
    };
    assert_eq!((n_dom, n_typed), (events, events));
    let (n_norm, t_norm) = if only_ingest {
        (events, f64::NAN)
    } else {
        best_of(runs, || normalize_all(files))
    };
    assert_eq!(n_norm, events);
    Baselines {
        t_gz,
        t_serde,
        t_dom,
        t_typed,
        t_norm,
    }
}

/// Gunzips and normalizes every file into a sink that counts and drops the output.
fn normalize_all(files: &[PathBuf]) -> usize {
    let mut ctx = keyward_normalize::Context::default();
    let mut sink = Count(0);
    for p in files {
        keyward_normalize::normalize_document(
            keyward_normalize::Format::Cloudtrail,
            &gunzip(p),
            &mut ctx,
            &mut sink,
        );
    }
    sink.0
}

/// The rules ingest with detection runs, with how many are built in and how many Sigma.
///
/// Every built-in rule and the 57 SigmaHQ CloudTrail rules (from ../shared/corpora when
/// present). KEYWARD_BENCH_RULES=none|builtin splits the cost: baselines and check state
/// only, or without the Sigma rules.
fn detection_catalog() -> (keyward_detect::Catalog, usize, usize) {
    let rules = std::env::var("KEYWARD_BENCH_RULES").unwrap_or_default();
    let mut catalog = if rules == "none" {
        keyward_detect::Catalog::default()
    } else {
        keyward_detect::Catalog::builtin()
    };
    let sigma = keyward_testkit::corpora().map(|c| c.join("sigma-cloud-rules/rules/cloud/aws"));
    if let Some(d) = &sigma
        && !matches!(rules.as_str(), "none" | "builtin")
    {
        catalog.add_path(d);
    }
    let sigma_rules = catalog
        .rules
        .iter()
        .filter(|r| r.origin.contains("sigma-cloud-rules"))
        .count();
    let builtin_rules = catalog
        .rules
        .iter()
        .filter(|r| r.origin.starts_with("builtin:"))
        .count();
    (catalog, builtin_rules, sigma_rules)
}

/// Ingest with detection, each run right after a run of the serde_json reference.
struct Interleaved {
    /// The reference's best time among the pairs (`f64::MAX` when it did not run).
    t_serde_paired: f64,
    /// Each pair's reference / ingest-with-detection ratio, in percent, sorted.
    pair_ratios: Vec<f64>,
    /// The fastest ingest with detection.
    detected: Ingested,
}

/// The target ratio compares runs made close together: each ingest with detection follows a
/// run of the serde_json reference (not with `only_detect`). Two figures come out: the best
/// of each (a machine whose speed drifts over the minutes between stages does not skew it)
/// and the median of the pairs' own ratios, which one noisy run moves least.
fn interleaved(
    dir: &Path,
    files: &[PathBuf],
    events: usize,
    pairs: usize,
    catalog: &keyward_detect::Catalog,
    only_detect: bool,
) -> Interleaved {
    let mut t_serde_paired = f64::MAX;
    let mut pair_ratios = Vec::new();
    let mut detected: Option<Ingested> = None;
    for _ in 0..pairs {
        let mut t_ref = f64::NAN;
        if !only_detect {
            let start = Instant::now();
            assert_eq!(reference(files), events);
            t_ref = start.elapsed().as_secs_f64();
            t_serde_paired = t_serde_paired.min(t_ref);
        }
        let d = ingest_once(dir, events, Some(catalog));
        pair_ratios.push(100.0 * t_ref / d.secs);
        if detected.as_ref().is_none_or(|b| d.secs < b.secs) {
            detected = Some(d);
        }
    }
    pair_ratios.sort_by(f64::total_cmp);
    Interleaved {
        t_serde_paired,
        pair_ratios,
        detected: detected.unwrap(),
    }
}

fn main() {
    let setup = Setup::from_env();
    let events = setup.events;
    let dir = tempfile::tempdir().unwrap();
    let (files, raw, compressed) = keyward_testkit::cloudtrail::corpus(dir.path(), events, 2_000);
    println!(
        "corpus: {events} events in {} files, {:.1} MB JSON, {:.1} MB gzip ({:.0} bytes/event)",
        files.len(),
        raw as f64 / 1e6,
        compressed as f64 / 1e6,
        raw as f64 / events as f64
    );

    // KEYWARD_BENCH_ONLY_REFERENCE (for instruction counts): run the serde_json reference
    // once and stop; callgrind can then count `reference` alone.
    if std::env::var("KEYWARD_BENCH_ONLY_REFERENCE").is_ok() {
        assert_eq!(reference(&files), events);
        return;
    }
    let only_ingest = std::env::var("KEYWARD_BENCH_ONLY_INGEST").is_ok()
        || std::env::var("KEYWARD_BENCH_ONLY_DETECT").is_ok();
    let base = baselines(&files, &setup, only_ingest);

    // KEYWARD_BENCH_ONLY_DETECT (for profiling): skip every stage but ingest with detection.
    let only_detect = std::env::var("KEYWARD_BENCH_ONLY_DETECT").is_ok();
    let (t_ingest, identities) = if only_detect {
        (f64::NAN, 0)
    } else {
        let plain = (0..setup.runs)
            .map(|_| ingest_once(dir.path(), events, None))
            .min_by(|a, b| a.secs.total_cmp(&b.secs))
            .unwrap();
        (plain.secs, plain.identities)
    };

    let (catalog, builtin_rules, sigma_rules) = detection_catalog();
    // KEYWARD_BENCH_ONLY_PLAIN (for profiling): stop after ingest without detection.
    if std::env::var("KEYWARD_BENCH_ONLY_PLAIN").is_ok() {
        println!("ingest: {:.0} events/s", events as f64 / t_ingest);
        return;
    }
    let run = interleaved(
        dir.path(),
        &files,
        events,
        setup.pairs(),
        &catalog,
        only_detect,
    );
    report(&Report {
        events,
        raw,
        base,
        t_ingest,
        identities,
        builtin_rules,
        sigma_rules,
        only_detect,
        run,
    });
}

/// Everything the benchmark measured, for [`report`].
struct Report {
    events: usize,
    /// Bytes of JSON in the corpus.
    raw: u64,
    base: Baselines,
    /// Ingest without detection (NaN with `only_detect`).
    t_ingest: f64,
    identities: usize,
    builtin_rules: usize,
    sigma_rules: usize,
    only_detect: bool,
    run: Interleaved,
}

/// Prints the stages' rates, the ratios between them, what detection did and the target
/// ratio (as run one after the other, interleaved, and as the median of the pairs).
fn report(r: &Report) {
    let (events, raw, b) = (r.events, r.raw, &r.base);
    let detected = &r.run.detected;
    let t_detect = detected.secs;
    let rate = |t: f64| events as f64 / t;
    println!(
        "{:<44} {:>12} {:>9}",
        "stage (best of runs)", "events/s", "MB/s json"
    );
    for (label, t) in [
        ("gunzip only", b.t_gz),
        ("gunzip + parse to DOM (serde_json::Value)", b.t_serde),
        ("gunzip + parse to DOM (sonic_rs::Value)", b.t_dom),
        ("gunzip + parse to typed record", b.t_typed),
        ("gunzip + normalize (events, observations)", b.t_norm),
        ("ingest: + normalize + inventory + store", r.t_ingest),
        ("ingest + detection (all rules, baselines)", t_detect),
    ] {
        println!(
            "{label:<44} {:>12.0} {:>9.1}",
            rate(t),
            raw as f64 / t / 1e6
        );
    }
    for (label, t) in [
        ("gunzip + serde_json DOM", b.t_serde),
        ("gunzip + sonic-rs DOM", b.t_dom),
        ("gunzip + typed parse", b.t_typed),
        ("gunzip + normalize", b.t_norm),
    ] {
        println!(
            "ingest rate / {label:<24} {:>4.0} %",
            100.0 * t / r.t_ingest
        );
    }
    println!("identities in inventory: {}", r.identities);
    let d = detected.detection.clone().unwrap_or_default();
    println!(
        "detection: {} built-in rules + {} Sigma rules; {} events checked, {} needed the raw record parsed ({:.1} %)",
        r.builtin_rules,
        r.sigma_rules,
        d.events,
        d.parsed,
        100.0 * d.parsed as f64 / d.events.max(1) as f64
    );
    let shown: Vec<String> = detected
        .findings
        .iter()
        .take(6)
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    println!(
        "findings: {} ({})",
        detected.findings.iter().map(|(_, n)| n).sum::<usize>(),
        shown.join(", ")
    );
    // With only detection timed there is nothing to compare it to.
    if !r.only_detect {
        report_target_ratio(r);
    }
    println!(
        "baselines: {} identities, {} bytes in all, {:.0} bytes per baseline",
        d.baselines,
        detected.baseline_bytes,
        detected.baseline_bytes as f64 / d.baselines.max(1) as f64
    );
}

/// The issue's target ratio, ingest with detection / serde_json DOM parse: from the stages
/// run one after the other, from the best of the interleaved runs, and as the median of the
/// pairs' ratios.
fn report_target_ratio(r: &Report) {
    let (events, t_serde) = (r.events, r.base.t_serde);
    let Interleaved {
        t_serde_paired,
        pair_ratios,
        detected,
    } = &r.run;
    let t_detect = detected.secs;
    println!(
        "ingest with detection / gunzip + serde_json DOM {:>4.0} %   / ingest without {:>4.0} %",
        100.0 * t_serde / t_detect,
        100.0 * r.t_ingest / t_detect
    );
    println!(
        "ingest with detection / gunzip + serde_json DOM, runs interleaved {:>4.0} % (reference {:.0} events/s)",
        100.0 * t_serde_paired / t_detect,
        events as f64 / t_serde_paired
    );
    let shown_ratios: Vec<String> = pair_ratios.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "ingest with detection / gunzip + serde_json DOM, median of {} pairs {:>4.0} % (each: {} %)",
        pair_ratios.len(),
        median(pair_ratios),
        shown_ratios.join(", ")
    );
}

/// The middle value of sorted numbers (the mean of the two middle ones for an even count).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

//! Baseline memory at scale, measured: the detector learns from `KEYWARD_BENCH_PRINCIPALS`
//! principals (default 100,000; 500 in smoke mode) with 24 events each over two days
//! (varied endpoints, resources, networks and agents, so every capped set fills as real
//! ones do), then reports the resident-set growth per baseline next to the detector's own
//! accounting (`Detector::baseline_bytes`).
//!
//! KEYWARD_BENCH_PRINCIPALS=100000 cargo bench -p keyward-detect --bench baselines
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::borrow::Cow;
use std::time::Instant;

use keyward_detect::{Catalog, Detector, NoLookup, Settings};
use keyward_model::{Event, SourceKind};

/// The allocator the `keyward` binary uses, so the resident set is the one it would have.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident set size in bytes (Linux `/proc/self/statm`; 0 elsewhere).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let principals: usize = std::env::var("KEYWARD_BENCH_PRINCIPALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 500 } else { 100_000 });
    // No rules: this measures baselines (the check state is tiny next to them).
    let mut d = Detector::new(Catalog::default(), Settings::default()).unwrap();
    let before = rss();
    let start = Instant::now();
    let services = [
        "s3", "ec2", "sts", "iam", "kms", "lambda", "dynamodb", "sqs",
    ];
    let t0: i64 = 1_794_268_800_000;
    let mut n = 0u64;
    for round in 0..24u32 {
        for p in 0..principals {
            let svc = services[(p + round as usize) % services.len()];
            let ip = format!("10.{}.{}.7", p % 250, round % 5);
            let event = Event {
                native_id: Cow::Owned(format!("{p}-{round}")),
                source: SourceKind::Cloudtrail,
                time: t0 + i64::from(round) * 7_200_000 + (p as i64 % 3_600_000),
                action: Cow::Owned(format!("{svc}.amazonaws.com:Get{}", round % 12)),
                actor: Some(Cow::Owned(format!(
                    "arn:aws:iam::111122223333:role/app-{p}"
                ))),
                source_ip: Some(Cow::Owned(ip)),
                user_agent: Some(Cow::Owned(format!("aws-sdk-go/1.{}", round % 4))),
                region: Some(Cow::Borrowed("us-east-1")),
                account: Some(Cow::Borrowed("111122223333")),
                error_code: None,
                target: Some(Cow::Owned(format!(
                    "arn:aws:s3:::bucket-{p}/{}",
                    round % 10
                ))),
                credential: None,
                invoked_by: None,
                shared_id: None,
                stage: 0,
            };
            d.on_event(&event, b"", &Default::default(), &NoLookup);
            n += 1;
        }
        d.close_hours();
        let _ = d.take_findings();
    }
    let secs = start.elapsed().as_secs_f64();
    let grown = rss().saturating_sub(before);
    let count = d.baseline_count();
    println!(
        "{count} baselines from {n} events in {secs:.1} s ({:.0} events/s, detector only, no rules)",
        n as f64 / secs
    );
    println!(
        "resident set grew {:.1} MB: {:.0} bytes per baseline; the detector accounts {:.0} bytes per baseline",
        grown as f64 / 1e6,
        grown as f64 / count.max(1) as f64,
        d.baseline_bytes() as f64 / count.max(1) as f64
    );
    assert_eq!(count, principals);
}

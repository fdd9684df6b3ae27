//! `keyward_model::time::parse` against `jiff` on the timestamp shapes the sources emit:
//! nanoseconds per parse, the median of several interleaved runs, then which shapes each
//! parser accepts (the lenient ones are why a plain `jiff::Timestamp` parse is not enough).
//!
//! taskset -c 0 cargo bench -p keyward-model --bench time
//!
//! Without `--bench` (e.g. `cargo test --bench time`) it runs a few iterations as a smoke test.

use std::hint::black_box;
use std::time::Instant;

use keyward_model::time;

/// The shapes timed: (source, text).
const TIMED: &[(&str, &str)] = &[
    ("CloudTrail", "2026-11-10T08:15:02Z"),
    ("Kubernetes audit", "2026-11-10T08:15:02.123456Z"),
    ("IAM credential report", "2019-08-16 17:27:59+00:00"),
    ("GitHub commit (offset)", "2026-11-10T09:15:02+01:00"),
    ("export, no offset", "2022-11-29 00:09:04.38"),
];

/// Lenient forms `time::parse` accepts, checked for acceptance only: (what, text).
const LENIENT: &[(&str, &str)] = &[
    ("no offset (read as UTC)", "2022-11-29 00:09:04.38"),
    ("date only", "2024-07-30"),
    ("offset without colon", "2024-07-30T21:31:21+0000"),
    ("lowercase t and z", "2024-07-30t21:31:21z"),
    ("comma before the fraction", "2024-07-30T21:31:21,250Z"),
    ("no seconds", "2024-07-30T21:31Z"),
    ("surrounding whitespace", " 2024-07-30T21:31:21Z "),
    ("leap second", "2016-12-31T23:59:60Z"),
];

type Parser = fn(&str) -> Option<i64>;

/// What a drop-in `jiff` call would be: an RFC 3339 / ISO 8601 instant with an offset.
fn jiff_timestamp(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>()
        .ok()
        .map(jiff::Timestamp::as_millisecond)
}

/// What a `jiff` replacement would have to be to accept our shapes: an instant, else a
/// civil date-time (or date) read as UTC.
fn jiff_lenient(s: &str) -> Option<i64> {
    let s = s.trim();
    jiff_timestamp(s).or_else(|| {
        let dt = s.parse::<jiff::civil::DateTime>().ok()?;
        let z = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?;
        Some(z.timestamp().as_millisecond())
    })
}

const PARSERS: &[(&str, Parser)] = &[
    ("time::parse", time::parse),
    ("jiff Timestamp", jiff_timestamp),
    ("jiff lenient", jiff_lenient),
];

/// Nanoseconds per call of `parse` on `text`, over `iters` calls.
fn time_one(parse: Parser, text: &str, iters: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(parse(black_box(text)));
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn show(v: Option<i64>) -> String {
    v.map_or_else(|| "rejected".to_owned(), time::format)
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (iters, runs) = if smoke { (1_000, 1) } else { (2_000_000, 7) };

    // Same answers first: a fast wrong parser is no contest.
    for (what, text) in TIMED {
        let ours = time::parse(text);
        assert!(ours.is_some(), "{what}: ours rejects `{text}`");
        assert_eq!(ours, jiff_lenient(text), "{what}: `{text}`");
    }

    // samples[shape][parser]: one figure per run; parsers and shapes interleave within a
    // run so a noisy moment on the shared host hits all of them alike.
    let mut samples = vec![vec![Vec::with_capacity(runs); PARSERS.len()]; TIMED.len()];
    for _ in 0..runs {
        for ((_, text), per_shape) in TIMED.iter().zip(&mut samples) {
            for ((_, parse), s) in PARSERS.iter().zip(per_shape.iter_mut()) {
                s.push(time_one(*parse, text, iters));
            }
        }
    }

    println!(
        "ns per parse, median of {runs} runs × {iters} parses ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    print!("{:<24} {:<30}", "shape", "text");
    for (name, _) in PARSERS {
        print!(" {name:>15}");
    }
    println!();
    for ((what, text), per_shape) in TIMED.iter().zip(samples) {
        print!("{what:<24} {text:<30}");
        let ours = per_shape.first().cloned().map_or(f64::NAN, median);
        for ((_, parse), s) in PARSERS.iter().zip(per_shape) {
            if parse(text).is_some() {
                let m = median(s);
                print!(" {:>8.1} ({:>3.1}×)", m, m / ours);
            } else {
                print!(" {:>15}", "rejects");
            }
        }
        println!();
    }

    println!("\nlenient forms: what each parser makes of them");
    for (what, text) in LENIENT {
        println!(
            "{what:<26} {:<28} ours {:<24} jiff Timestamp {:<24} jiff lenient {}",
            format!("`{text}`"),
            show(time::parse(text)),
            show(jiff_timestamp(text)),
            show(jiff_lenient(text)),
        );
    }
}

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The action index in front of rule evaluation selects exactly the rules rsigma's own
//! candidate index would have matched, on every event we have: built-in rule examples, the
//! Stratus Red Team detonation logs and Falco's Kubernetes audit and CloudTrail fixtures,
//! with all built-in rules and the 309 SigmaHQ cloud rules loaded.

use std::path::Path;

use keyward_detect::{Catalog, Detector, Settings};
use keyward_model::SourceKind;
use serde_json::Value;

fn records(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Object(mut m) => match m.remove("Records").or_else(|| m.remove("items")) {
            Some(Value::Array(a)) => a,
            Some(other) => vec![other],
            None => vec![Value::Object(m)],
        },
        _ => Vec::new(),
    }
}

fn json_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for p in keyward_testkit::sorted_dir(dir) {
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json" || e == "jsonl") {
            out.push(p);
        }
    }
}

/// All built-in rules (and, with the corpora, the SigmaHQ cloud rules) and every event we
/// have: the rules' examples, the Stratus detonations, Falco's fixtures.
fn catalog_and_events() -> (Catalog, Vec<(SourceKind, Vec<u8>)>) {
    let mut catalog = Catalog::builtin();
    let mut events: Vec<(SourceKind, Vec<u8>)> = Vec::new();
    for (id, file) in &catalog.files {
        let source = catalog.get(id).and_then(|r| r.logsource.source).unwrap();
        for ex in file.examples.iter().chain(&file.negative_examples) {
            for raw in ex.events() {
                events.push((source, serde_json::to_vec(raw).unwrap()));
            }
        }
    }
    let corpora = keyward_testkit::corpora();
    if let Some(root) = &corpora {
        catalog.add_path(&root.join("sigma-cloud-rules"));
        let mut files = Vec::new();
        json_files(&root.join("aws-cloudtrail-stratus-detonations"), &mut files);
        json_files(&root.join("falco-k8s-audit"), &mut files);
        for f in files {
            let Ok(text) = std::fs::read(&f) else {
                continue;
            };
            let name = f.to_string_lossy();
            let k8s = name.contains("falco") && !name.contains("cloudtrail");
            let source = if k8s {
                SourceKind::K8sAudit
            } else {
                SourceKind::Cloudtrail
            };
            let values: Vec<Value> = match serde_json::from_slice::<Value>(&text) {
                Ok(v) => records(v),
                // JSON lines.
                Err(_) => text
                    .split(|b| *b == b'\n')
                    .filter_map(|l| serde_json::from_slice(l).ok())
                    .collect(),
            };
            for v in values {
                events.push((source, serde_json::to_vec(&v).unwrap()));
            }
        }
    } else {
        eprintln!("corpora not found: built-in examples only");
    }
    (catalog, events)
}

/// Rule matches computed ahead for a run of events (`Detector::prepare`, as ingest does for
/// the records it parses ahead) give the same findings as matching each event in turn.
#[test]
fn matching_ahead_changes_nothing() {
    let (catalog, events) = catalog_and_events();
    let normalized: Vec<_> = events
        .iter()
        .filter_map(|(source, raw)| keyward_detect::testing::normalize(*source, raw).ok())
        .collect();
    let mut one = Detector::new(catalog.clone(), Settings::default()).unwrap();
    let mut ahead = Detector::new(catalog, Settings::default()).unwrap();
    for (event, bytes, known) in &normalized {
        one.on_event(event, bytes, known, &keyward_detect::NoLookup);
    }
    for chunk in normalized.chunks(16) {
        let prepared: Vec<_> = chunk
            .iter()
            .map(|(event, bytes, known)| ahead.prepare(event, bytes, known))
            .collect();
        for ((event, bytes, known), p) in chunk.iter().zip(prepared) {
            ahead.on_event_prepared(event, bytes, known, &keyward_detect::NoLookup, Some(p));
        }
    }
    let dump = |d: &mut Detector| {
        let mut v: Vec<String> = d
            .take_findings()
            .iter()
            .map(|f| serde_json::to_string(f).unwrap())
            .collect();
        v.sort();
        v
    };
    let (a, b) = (dump(&mut one), dump(&mut ahead));
    eprintln!("{} events, {} findings", normalized.len(), a.len());
    assert!(a.len() > 50, "{}", a.len());
    assert_eq!(a, b);
}

#[test]
fn prefilter_agrees_with_rsigma() {
    let (catalog, mut events) = catalog_and_events();
    let corpora = keyward_testkit::corpora();
    // The same events with the action in another case: Sigma equality ignores case, and
    // the index must too.
    let variants: Vec<(SourceKind, Vec<u8>)> = events
        .iter()
        .filter_map(|(source, raw)| {
            let mut v: Value = serde_json::from_slice(raw).ok()?;
            let key = if *source == SourceKind::K8sAudit {
                "verb"
            } else {
                "eventName"
            };
            let name = v.get(key)?.as_str()?.to_uppercase();
            v[key] = Value::String(name);
            Some((*source, serde_json::to_vec(&v).unwrap()))
        })
        .collect();
    events.extend(variants);
    let detector = Detector::new(catalog, Settings::default()).unwrap();
    let ct = detector.prefilter_coverage(SourceKind::Cloudtrail);
    let k8s = detector.prefilter_coverage(SourceKind::K8sAudit);
    eprintln!("cloudtrail {ct:?}, kubernetes {k8s:?}");
    eprintln!(
        "always evaluated: {:?} {:?}",
        detector.unindexed_rules(SourceKind::Cloudtrail),
        detector.unindexed_rules(SourceKind::K8sAudit)
    );
    // The index narrows most rules; few run on every event.
    assert!(ct.indexed > 3 * ct.always, "{ct:?}");
    let (mut compared, mut matched) = (0, 0);
    for (source, raw) in &events {
        let Ok((event, bytes, known)) = keyward_detect::testing::normalize(*source, raw) else {
            continue;
        };
        let (indexed, all) = detector.matches_both_ways(&event, &bytes, &known);
        assert_eq!(
            indexed,
            all,
            "{}",
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(300)
                .collect::<String>()
        );
        compared += 1;
        matched += usize::from(!all.is_empty());
    }
    eprintln!("{compared} events compared, {matched} matched a rule");
    assert!(compared > 100, "{compared}");
    if corpora.is_some() {
        assert!(compared > 1000, "{compared}");
        assert!(matched > 100, "{matched}");
    }
}

/// Swaps the case of every ASCII letter in every string of a JSON value.
fn swap_case(v: &mut Value) {
    match v {
        Value::String(s) => {
            *s = s
                .chars()
                .map(|c| {
                    if c.is_ascii_lowercase() {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
        }
        Value::Array(a) => a.iter_mut().for_each(swap_case),
        Value::Object(m) => m.values_mut().for_each(swap_case),
        _ => {}
    }
}

/// The detector's own condition evaluator (`keyward_detect::eval`) decides every rule as
/// rsigma's does, with the same selections, on every event we have and on variants of
/// them: every string's letters in the other case (Sigma compares case-insensitively by
/// default, `|cased` not), and a non-ASCII letter whose lower-casing changes length in
/// front of every string (these go to rsigma's matchers).
#[test]
fn fast_evaluation_agrees_with_rsigma() {
    let (catalog, mut events) = catalog_and_events();
    let variants: Vec<(SourceKind, Vec<u8>)> = events
        .iter()
        .flat_map(|(source, raw)| {
            let v: Value = serde_json::from_slice(raw).unwrap();
            let mut swapped = v.clone();
            swap_case(&mut swapped);
            let mut dotted = v;
            prefix_strings(&mut dotted);
            [swapped, dotted]
                .into_iter()
                .map(|v| (*source, serde_json::to_vec(&v).unwrap()))
        })
        .collect();
    let originals = events
        .iter()
        .filter(|(source, raw)| keyward_detect::testing::normalize(*source, raw).is_ok())
        .count();
    events.extend(variants);
    let detector = Detector::new(catalog, Settings::default()).unwrap();
    let (mut compared, mut matched, mut planned, mut rules, mut taken) = (0, 0, 0, 0, 0);
    for (source, raw) in &events {
        let Ok((event, bytes, known)) = keyward_detect::testing::normalize(*source, raw) else {
            continue;
        };
        taken += 1;
        let results = detector.evaluates_both_ways(&event, &bytes, &known);
        rules = rules.max(results.len());
        planned = planned.max(results.iter().filter(|r| r.1).count());
        for (id, _, fast, theirs) in results {
            assert_eq!(
                fast,
                theirs,
                "rule {id} on {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
            compared += 1;
            matched += usize::from(theirs.is_some());
        }
    }
    eprintln!(
        "{taken} of {} events normalized, {compared} (event, rule) pairs compared, \
         {matched} matched; {planned} of {rules} rules evaluated without rsigma",
        events.len()
    );
    // The variants are normalized too.
    assert!(taken * 10 > originals * 3 * 8, "{taken} of {originals} × 3");
    assert!(matched > 100, "{matched}");
    // Nearly every rule takes the fast path.
    assert!(planned * 10 > rules * 9, "{planned} of {rules}");
}

/// Puts `İ` (whose lower-casing is two characters) in front of every string but times
/// (an event without its time is not normalized).
fn prefix_strings(v: &mut Value) {
    match v {
        Value::String(s) => s.insert(0, 'İ'),
        Value::Array(a) => a.iter_mut().for_each(prefix_strings),
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if !(k.contains("ime") || k.contains("Date")) {
                    prefix_strings(v);
                }
            }
        }
        _ => {}
    }
}

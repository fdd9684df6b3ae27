#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! One reader for files and bodies: a body posted to `/api/ingest` is read exactly as the
//! same bytes in a file are (same records accepted, same rejections on the same lines),
//! with every envelope a file may have.

mod common;

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use common::{call, example, fixture};
use keyward_engine::{Engine, IngestOptions};
use serde_json::{Value, json};

fn estate_cloudtrail() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate/AWSLogs");
    let mut files = keyward_sources::discover(&[root]).unwrap();
    files.retain(|p| p.to_string_lossy().ends_with(".json.gz"));
    assert!(!files.is_empty());
    files
}

/// What `keyward ingest` of `bytes` saved as a file makes of it: (accepted, rejections).
fn as_file(bytes: &[u8], name: &str) -> (u64, Vec<(u64, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let mut engine = Engine::open(&dir.path().join("data")).unwrap();
    let r = engine
        .ingest(&[path], &IngestOptions::default(), &mut (), 0)
        .unwrap();
    let accepted = r.per_source.values().map(|s| s.accepted).sum();
    let rejections = r
        .rejections
        .into_iter()
        .map(|(_, d)| (d.line, d.reason.to_string()))
        .collect();
    (accepted, rejections)
}

fn as_answer(v: &Value) -> (u64, Vec<(u64, String)>) {
    let rejections = v["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (v["accepted"].as_u64().unwrap(), rejections)
}

#[tokio::test]
async fn an_s3_object_posted_is_read_as_the_file_is() {
    let f = fixture(8 << 20).await;
    for path in estate_cloudtrail() {
        let gz = std::fs::read(&path).unwrap();
        let (s, v) = call(
            &f.app,
            "POST",
            "/api/ingest",
            Some(&f.operator),
            Some(gz.clone()),
            &[("content-encoding", "gzip")],
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{}: {v}", path.display());
        let file = as_file(&gz, "object.json.gz");
        assert_eq!(as_answer(&v), file, "{}", path.display());
        assert!(file.0 > 0);
    }
}

/// Every CloudTrail envelope, pretty-printed so records span lines, with one bad record:
/// the body's answer and the file's report agree, line for line.
#[tokio::test]
async fn every_envelope_reads_alike_from_a_body_and_a_file() {
    let f = fixture(8 << 20).await;
    let good = example("kw-aws-cloudtrail-tampering");
    let mut other = good.clone();
    other["eventID"] = json!("envelope-2");
    // A record without `eventTime`: rejected on its own line.
    let mut bad = good.clone();
    bad["eventID"] = json!("envelope-bad");
    bad.as_object_mut().unwrap().remove("eventTime");
    let records = vec![good.clone(), bad, other];
    let lookup: Vec<Value> = records
        .iter()
        .map(|r| json!({"EventId": r["eventID"], "CloudTrailEvent": r.to_string()}))
        .collect();
    let lake: Vec<Value> = records
        .iter()
        .map(|r| json!([{"eventJson": r.to_string()}]))
        .collect();
    for (name, doc) in [
        ("records", json!({"Records": records})),
        ("array", json!(records)),
        ("lookup-events", json!({"Events": lookup})),
        (
            "lake",
            json!({"QueryResultRows": lake, "QueryStatus": "FINISHED"}),
        ),
    ] {
        let body = serde_json::to_vec_pretty(&doc).unwrap();
        let (s, v) = call(
            &f.app,
            "POST",
            "/api/ingest?format=cloudtrail",
            Some(&f.operator),
            Some(body.clone()),
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        let answer = as_answer(&v);
        assert_eq!(answer.0, 2, "{name}: {v}");
        assert_eq!(answer.1.len(), 1, "{name}: {v}");
        assert!(answer.1[0].0 > 1, "{name}: the bad record's own line, {v}");
        assert_eq!(answer, as_file(&body, "doc.json"), "{name}");
    }
}

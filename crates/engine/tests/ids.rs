//! One real identity, one record: an IAM role or user whose ARN has a path
//! (`role/app/reports-exporter`) resolves to one identity wherever its ARN appears — the IAM
//! snapshot, a CloudTrail `CreateRole` answer, assumed-role sessions without the path.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use keyward_engine::{Engine, IngestOptions};

#[test]
fn a_path_in_an_iam_arn_is_one_identity() {
    let estate = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate");
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(dir.path()).unwrap();
    e.ingest(&[estate], &IngestOptions::default(), &mut (), 0)
        .unwrap();
    let ids: Vec<&str> = e
        .inventory()
        .iter()
        .map(|i| i.id.as_str())
        .filter(|id| id.contains("reports-exporter"))
        .filter(|id| id.starts_with("arn:aws:iam::"))
        .collect();
    assert_eq!(ids, vec!["arn:aws:iam::111122223333:role/reports-exporter"]);
    let role = e.inventory().get(ids[0]).unwrap();
    // The path stays in the ARN, and every source that named it is on the one record.
    assert_eq!(
        role.arn.as_deref(),
        Some("arn:aws:iam::111122223333:role/app/reports-exporter")
    );
    assert!(role.sources.len() >= 2, "{:?}", role.sources);
    // No IAM identity is keyed with its path.
    for i in e.inventory().iter() {
        if let Some(rest) = i.id.strip_prefix("arn:aws:iam::") {
            let resource = rest.split_once(':').map_or("", |(_, r)| r);
            if resource.starts_with("role/") || resource.starts_with("user/") {
                assert_eq!(resource.matches('/').count(), 1, "{}", i.id);
            }
        }
    }
}

//! Boundaries in escalation: an SCP that denies IAM to the example estate's account
//! removes its escalation path, `graph paths` names the SCP, and editing the SCP brings
//! the path back.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;

use common::{estate, keyward, text};

const RUNNER: &str = "arn:aws:iam::111122223333:user/terraform-runner";

fn fixtures(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/organizations")
        .join(dir)
}

fn paths(data: &std::path::Path) -> serde_json::Value {
    let o = keyward(data, &["graph", "paths", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn escalates(v: &serde_json::Value) -> bool {
    v["paths"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["from"] == RUNNER)
}

#[test]
fn scp_denying_iam_removes_the_path_and_says_which() {
    let data = tempfile::tempdir().unwrap();
    let ingest = |p: PathBuf| {
        let o = keyward(data.path(), &["ingest", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    ingest(estate());
    let before = paths(data.path());
    assert!(escalates(&before), "{before:#}");
    assert!(before.get("removed_by_boundaries").is_none());

    let out = ingest(fixtures("org"));
    assert!(out.contains("aws-organizations"), "{out}");
    let after = paths(data.path());
    assert!(!escalates(&after), "the SCP removes the path: {after:#}");
    let removed = after["removed_by_boundaries"].as_array().unwrap();
    let runner = removed
        .iter()
        .find(|r| r["from"] == RUNNER)
        .expect("the removed path is reported");
    assert_eq!(runner["steps"][0]["technique"], "iam-019");
    let by = runner["blocked"][0]["by"].as_str().unwrap();
    assert_eq!(
        by,
        "SCP `DenyIAMWrites` (p-denyiam0001) attached to ou-ex12-workload1 denies it"
    );
    let table = keyward(data.path(), &["graph", "paths", "--from", RUNNER]);
    let table = text(&table.stdout);
    assert!(
        table.contains("escalation paths to admin: 0") && table.contains("DenyIAMWrites"),
        "{table}"
    );

    // The SCP edited to deny IAM no more: the path is back.
    ingest(fixtures("edited"));
    let edited = paths(data.path());
    assert!(escalates(&edited), "{edited:#}");
}

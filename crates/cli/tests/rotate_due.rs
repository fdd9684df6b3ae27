//! `keyward rotate --due`: rotation schedules over the bundled estate's credential reports,
//! judged at fixed instants (`--as-of`), so the ages never drift with the wall clock.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{estate, keyward, text};
use serde_json::Value;

fn due(data: &std::path::Path, as_of: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["rotate", "--due", "--as-of", as_of, "--format", "json"];
    args.extend_from_slice(extra);
    let out = keyward(data, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn row<'a>(rows: &'a [Value], user: &str, key: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["user"] == user && r["key_id"] == key)
        .unwrap_or_else(|| panic!("{user} {key} not in {rows:#?}"))
}

#[test]
fn keys_are_due_on_30_or_90_days_by_privilege_with_the_pci_early_warning() {
    let data = tempfile::tempdir().unwrap();
    let out = keyward(data.path(), &["ingest", estate().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let rows = due(data.path(), "2026-12-01T00:00:00Z", &[]);
    // High-privilege (permission scope 8: an escalation path): 30 days.
    let tf = row(&rows, "terraform-runner", "access_key_1");
    assert_eq!(tf["schedule_days"], 30);
    assert_eq!(tf["warn_from_day"], 25);
    assert_eq!(tf["status"], "overdue");
    assert_eq!(tf["deadline"], "2026-04-02T09:31:08Z");
    // Standard (scope 4): 90 days, warned from day 75.
    let rep = row(&rows, "svc-reporting", "access_key_1");
    assert_eq!(rep["schedule_days"], 90);
    assert_eq!(rep["warn_from_day"], 75);
    assert_eq!(rep["status"], "overdue");
    assert_eq!(rep["age_days"], 164);
    assert!(rows.iter().all(|r| r["status"] != "ok"));

    // Day 78 of 90: due soon (PCI DSS's early warning); day 27 of 30 likewise.
    let rows = due(data.path(), "2026-09-05T12:00:00Z", &["--every-key"]);
    let rep = row(&rows, "svc-reporting", "access_key_1");
    assert_eq!(
        (rep["age_days"].as_u64(), &rep["status"]),
        (Some(78), &"due-soon".into())
    );
    let rows = due(data.path(), "2026-03-30T12:00:00Z", &["--every-key"]);
    let tf = row(&rows, "terraform-runner", "access_key_1");
    assert_eq!(
        (tf["age_days"].as_u64(), &tf["status"]),
        (Some(27), &"due-soon".into())
    );
    // Earlier still: ok, listed only with --every-key.
    let rows = due(data.path(), "2026-07-01T00:00:00Z", &["--every-key"]);
    assert_eq!(row(&rows, "svc-reporting", "access_key_1")["status"], "ok");
    let rows = due(data.path(), "2026-07-01T00:00:00Z", &[]);
    assert!(rows.iter().all(|r| r["user"] != "svc-reporting"));

    // The periods are flags.
    let rows = due(
        data.path(),
        "2026-09-05T12:00:00Z",
        &["--standard-days", "60"],
    );
    assert_eq!(
        row(&rows, "svc-reporting", "access_key_1")["status"],
        "overdue"
    );
}

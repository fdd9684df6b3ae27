//! Retirement and re-enabling within the grace period, through the binary on moto
//! (`KEYWARD_TEST_AWS_ENDPOINT` with the `AWS_*` variables of `moto-up`'s env file; skipped
//! without them): a user whose key CloudTrail last saw 100 days ago is retired — a deny-all
//! policy and its key `Inactive`, read back from IAM — while a busy user is left alone; then
//! `keyward enable` within the grace period gives it back exactly what it had.

#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::moto::{DAY, Moto, call};
use common::{keyward, text};
use serde_json::{Value, json};

#[test]
fn an_unused_user_is_retired_and_re_enabled_within_the_grace_period() {
    let Some(m) = Moto::from_env() else { return };
    let now = m.now;
    let tag = now.to_string();
    let (idle, busy) = (format!("old-batch-{tag}"), format!("busy-{tag}"));
    let keys = [m.user_with_key(&idle), m.user_with_key(&busy)];
    let statuses =
        |user: &str| -> Vec<String> { m.keys(user).into_iter().map(|(_, s)| s).collect() };
    let inline = |user: &str| m.inline(user);

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let trail = dir.path().join("trail.json");
    let doc = json!({"Records": [
        call(&idle, &keys[0], now - 100 * DAY, "1"),
        call(&busy, &keys[1], now - DAY / 24, "2"),
    ]});
    std::fs::write(&trail, doc.to_string()).unwrap();
    let ok = |args: &[&str]| {
        let out = keyward(&data, args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    ok(&["ingest", trail.to_str().unwrap()]);
    let planned: Value =
        serde_json::from_str(&ok(&["lifecycle", "plan", "--format", "json"])).unwrap();
    let shown = planned.to_string();
    assert!(shown.contains(&idle), "{shown}");
    assert!(
        !shown.contains(&busy),
        "a busy user is not retired: {shown}"
    );

    ok(&["lifecycle", "run", "--execute", "--yes"]);
    assert_eq!(statuses(&idle), ["Inactive"]);
    assert_eq!(inline(&idle), ["KeywardContainDenyAll"]);
    assert_eq!(statuses(&busy), ["Active"], "the busy user is untouched");

    // Within the grace period: enable gives it back.
    ok(&["enable", &idle, "--yes"]);
    assert_eq!(statuses(&idle), ["Active"]);
    assert!(inline(&idle).is_empty());
}

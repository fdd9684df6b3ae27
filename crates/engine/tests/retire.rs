//! Retirement plans from real CloudTrail: a user unused for 100 days (the logs span the
//! window) is disabled — deny-all and its key `Inactive`, both undo-able — with its
//! deletion proposed after the grace period; an active user is not; a user with a plan is
//! left to it; a key goes with its user.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keyward_engine::retire::RetireAsk;
use keyward_engine::{Engine, IngestOptions};
use keyward_model::time::MS_PER_DAY;
use keyward_respond::Action;

const NOW: i64 = 1_800_000_000_000;
const ACCT: &str = "111122223333";

fn call(user: &str, key: &str, at: i64, id: &str) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": format!("AIDA{}", user.to_uppercase()),
            "arn": format!("arn:aws:iam::{ACCT}:user/{user}"), "accountId": ACCT,
            "accessKeyId": key, "userName": user},
        "eventTime": keyward_model::time::format(at), "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets", "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0", "requestParameters": null, "responseElements": null,
        "eventID": id, "readOnly": true, "eventType": "AwsApiCall", "managementEvent": true,
        "recipientAccountId": ACCT, "eventCategory": "Management"
    })
}

#[test]
fn unused_identities_get_undoable_retirement_plans() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ct.json");
    let doc = serde_json::json!({"Records": [
        call("old-batch", "AKIAOLDBATCH00000001", NOW - 100 * MS_PER_DAY, "e1"),
        call("busy-svc", "AKIABUSYSVC000000001", NOW - MS_PER_DAY, "e2"),
    ]});
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    e.ingest(&[file], &IngestOptions::default(), &mut (), NOW)
        .unwrap();

    let ask = |store| RetireAsk {
        unused_days: 30,
        grace_days: 14,
        workload_gone: true,
        exempt: &[],
        now: NOW,
        actor: "test:lifecycle",
        store,
    };
    let (due, skipped) = e.retirements(&ask(false)).unwrap();
    assert!(
        skipped.is_empty(),
        "{:?}",
        skipped.iter().map(|s| &s.why).collect::<Vec<_>>()
    );
    let ids: Vec<&str> = due.iter().map(|r| r.plan.identity.as_str()).collect();
    assert_eq!(
        ids,
        [format!("arn:aws:iam::{ACCT}:user/old-batch")],
        "the key goes with its user"
    );
    let r = &due[0];
    assert!(r.reason.starts_with("unused for 100 days"), "{}", r.reason);
    let actions: Vec<&str> = r.plan.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(actions, ["deny_all", "deactivate_access_key"]);
    assert!(
        r.plan.steps.iter().all(|s| s.action.reversible()),
        "retirement is undo-able"
    );
    assert!(matches!(&r.plan.steps[1].action,
        Action::DeactivateAccessKey { key_id, .. } if key_id == "AKIAOLDBATCH00000001"));
    let note = r
        .plan
        .notes
        .iter()
        .find(|n| n.starts_with("retire:"))
        .unwrap();
    assert!(
        note.contains("deleted 14 days after this plan runs")
            && note.contains("aws iam delete-user --user-name old-batch"),
        "{note}"
    );
    assert_eq!(r.plan.grace_days, Some(14));
    // `plan` stores nothing; `run` stores the plans, audited, and a second run leaves the
    // identity to its plan.
    assert!(e.response_plans(10).unwrap().is_empty());
    let (stored, _) = e.retirements(&ask(true)).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(e.response_plans(10).unwrap().len(), 1);
    assert!(
        e.audit_log(5)
            .unwrap()
            .iter()
            .any(|a| a.entry.action == "lifecycle.plan")
    );
    let (again, _) = e.retirements(&ask(true)).unwrap();
    assert!(again.is_empty());
}

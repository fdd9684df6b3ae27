#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use keyward_respond::playbook::Playbook;
use keyward_respond::playbook::run::{RunStatus, StepStatus};
use keyward_respond::{Plan, PlanStatus};

use super::triggers::Tick;
use super::*;
use crate::IngestOptions;

const T0: Millis = 1_800_000_000_000;
const HOUR: Millis = 3_600_000;

/// Effects that touch nothing: plans "execute" by being marked executed; notifications are kept.
#[derive(Default)]
struct Fake {
    executed: Vec<String>,
    sent: Vec<serde_json::Value>,
}

impl Effects for Fake {
    fn execute(
        &mut self,
        engine: &mut Engine,
        mut plan: Plan,
        actor: &str,
    ) -> Result<Plan, String> {
        self.executed.push(plan.id.clone());
        plan.status = PlanStatus::Executed;
        let _w = engine.write_lock().map_err(|e| e.to_string())?;
        let audit = crate::respond::step_audit(
            &plan,
            0,
            keyward_respond::execute::Phase::Execute,
            actor,
            T0,
        );
        engine.save_plan(&plan, audit).map_err(|e| e.to_string())?;
        Ok(plan)
    }
    fn undo(&mut self, _: &mut Engine, plan: Plan, _: &str) -> Result<Plan, String> {
        Err(format!("not in tests: {}", plan.id))
    }
    fn notify(&mut self, _url: &str, body: &serde_json::Value) -> Result<(), String> {
        self.sent.push(body.clone());
        Ok(())
    }
    fn rotation_plan(&mut self, user: &str, _: Millis, _: &str) -> Result<Plan, String> {
        Err(format!("no AWS in tests ({user})"))
    }
    fn governed_facts(
        &mut self,
        p: &keyward_respond::IamPrincipal,
    ) -> Result<std::collections::BTreeMap<String, serde_json::Value>, String> {
        Err(format!("no AWS in tests ({})", p.name()))
    }
}

const TF: &str = r#"
resource "aws_iam_role" "payments_api" {
  name = "payments-api"
  tags = { service = "payments", owner = "pay@acme.example", team = "payments", data_class = "pci" }
}
resource "aws_iam_role" "payments_batch" {
  name = "payments-batch"
  tags = { service = "payments", team = "payments" }
}
"#;

fn store(tf: &str) -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pay.tf");
    std::fs::write(&file, tf).unwrap();
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    e.ingest(&[file], &IngestOptions::default(), &mut (), T0)
        .unwrap();
    (dir, e)
}

fn book(text: &str) -> Playbook {
    Playbook::parse("test.yaml", text).unwrap()
}

fn tick(
    e: &mut Engine,
    books: &[Playbook],
    fx: &mut Fake,
    now: Millis,
    execute: bool,
) -> triggers::TickReport {
    e.playbook_tick(
        books,
        fx,
        &Tick {
            now,
            execute,
            actor: "cli:alice",
        },
    )
    .unwrap()
}

#[test]
fn a_new_terraform_service_is_checked_paused_approved_and_notified() {
    let (_d, mut e) = store(TF);
    let b = book(
        r#"
name: onboard
trigger: { inventory: { source: terraform, tags: { service: payments } } }
steps:
  - validate_tags: [owner, team, data_class]
  - wait: 1h
  - approval: {}
  - notify: { url: "http://127.0.0.1:9/hook", message: "${identity.name} of ${identity.tags.team}" }
"#,
    );
    let mut fx = Fake::default();
    let r = tick(&mut e, std::slice::from_ref(&b), &mut fx, T0, true);
    assert_eq!(r.started.len(), 2);
    // The same state twice starts nothing twice.
    assert!(
        tick(&mut e, std::slice::from_ref(&b), &mut fx, T0, true)
            .started
            .is_empty()
    );
    let runs = e.playbook_runs(10).unwrap();
    let batch = runs
        .iter()
        .find(|r| r.subject.as_ref().unwrap().name == "payments-batch")
        .unwrap();
    assert_eq!(batch.status, RunStatus::Stopped);
    let reason = batch.reason.as_deref().unwrap();
    assert!(
        reason.contains("missing required tags: owner, data_class"),
        "{reason}"
    );
    assert!(reason.contains("aws_iam_role.payments_batch"), "{reason}");
    let api = runs
        .iter()
        .find(|r| r.subject.as_ref().unwrap().name == "payments-api")
        .unwrap();
    assert_eq!(api.status, RunStatus::Waiting);
    assert_eq!(api.wake_at(), Some(T0 + HOUR));
    // Not yet due.
    tick(
        &mut e,
        std::slice::from_ref(&b),
        &mut fx,
        T0 + HOUR / 2,
        true,
    );
    assert_eq!(
        e.playbook_run(&api.id).unwrap().unwrap().status,
        RunStatus::Waiting
    );
    tick(&mut e, std::slice::from_ref(&b), &mut fx, T0 + HOUR, true);
    let now = e.playbook_run(&api.id).unwrap().unwrap();
    assert_eq!(now.status, RunStatus::AwaitingApproval);
    // The starter cannot approve their own run.
    let err = e
        .playbook_approve(&api.id, "cli:alice", T0 + HOUR)
        .unwrap_err();
    assert!(err.to_string().contains("someone else"), "{err}");
    e.playbook_approve(&api.id, "cli:bob", T0 + HOUR).unwrap();
    let done = e
        .playbook_advance(&api.id, &mut fx, "cli:bob", T0 + HOUR)
        .unwrap();
    assert_eq!(done.status, RunStatus::Done, "{done:?}");
    assert_eq!(fx.sent.len(), 1);
    assert_eq!(fx.sent[0]["message"], "payments-api of payments");
    // Every step's start and finish is audited with the run id.
    let audited = e
        .audit_log(1000)
        .unwrap()
        .into_iter()
        .filter(|a| {
            a.entry.action == "playbook.step" && a.entry.target.as_deref() == Some(api.id.as_str())
        })
        .count();
    assert!(audited >= 8, "{audited}");
}

#[test]
fn a_schedule_fires_once_per_period_per_subject() {
    let (_d, mut e) = store(TF);
    let b = book(
        r#"
name: daily
trigger: { schedule: { every: 24h, for_each: { source: terraform, name: "payments-*" } } }
conditions: { require_tags: [owner] }
steps:
  - notify: { url: "http://127.0.0.1:9/hook" }
"#,
    );
    let mut fx = Fake::default();
    let books = std::slice::from_ref(&b);
    // First seen: due a day later. The batch role has no owner: never started.
    let r = tick(&mut e, books, &mut fx, T0, true);
    assert!(r.started.is_empty());
    for day in 1..=3 {
        let r = tick(&mut e, books, &mut fx, T0 + day * 24 * HOUR, true);
        assert_eq!(r.started.len(), 1, "day {day}");
        assert!(
            r.not_started
                .iter()
                .any(|(_, s, why)| s == "role/payments-batch" && why.contains("owner"))
        );
        assert!(
            tick(&mut e, books, &mut fx, T0 + day * 24 * HOUR + HOUR, true)
                .started
                .is_empty()
        );
    }
    assert_eq!(fx.sent.len(), 3);
}

#[test]
fn a_connector_step_records_its_plan_and_a_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
        .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate");
    e.ingest(&[root], &IngestOptions::default(), &mut (), T0)
        .unwrap();
    let b = book(
        r#"
name: contain-alice
steps:
  - contain: {}
"#,
    );
    let mut fx = Fake::default();
    let alice = e.playbook_subject("alice").unwrap().unwrap();
    let facts = |key: &str| TriggerFacts {
        kind: "manual".into(),
        key: key.into(),
        time: T0,
        ..Default::default()
    };
    let dry = e
        .playbook_start(&b, Some(alice.clone()), facts("1"), false, "cli:alice", T0)
        .unwrap()
        .unwrap();
    let dry = e
        .playbook_advance(&dry.id, &mut fx, "cli:alice", T0)
        .unwrap();
    assert_eq!(dry.status, RunStatus::Done);
    assert_eq!(dry.steps[0].status, StepStatus::Skipped);
    let plan = dry.steps[0].plan.clone().unwrap();
    assert_eq!(
        e.response_plan(&plan).unwrap().unwrap().status,
        PlanStatus::Planned
    );
    assert!(fx.executed.is_empty());

    let run = e
        .playbook_start(&b, Some(alice), facts("2"), true, "cli:alice", T0 + 1)
        .unwrap()
        .unwrap();
    let run = e
        .playbook_advance(&run.id, &mut fx, "cli:alice", T0 + 1)
        .unwrap();
    assert_eq!(run.status, RunStatus::Done, "{run:?}");
    assert_eq!(fx.executed.len(), 1);
    // A resumed step reads its recorded plan's status: executed, so nothing runs again.
    let mut again = run.clone();
    again.status = RunStatus::Running;
    again.steps[0].status = StepStatus::Running;
    {
        let _w = e.write_lock().unwrap();
        e.save_run(&again, T0 + 2, "test", "playbook.step", "rewound".into())
            .unwrap();
    }
    let resumed = e
        .playbook_advance(&run.id, &mut fx, "cli:alice", T0 + 2)
        .unwrap();
    assert_eq!(resumed.status, RunStatus::Done);
    assert_eq!(fx.executed.len(), 1);
}

#[test]
fn an_event_starts_one_run_with_its_facts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trail.json");
    let record = serde_json::json!({"Records": [{
        "eventVersion": "1.10", "eventTime": "2026-12-06T10:00:00Z",
        "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
        "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15",
        "requestParameters": {"userName": "deployer"},
        "responseElements": {"accessKey": {"accessKeyId": "AKIAEXAMPLENEWKEY001", "status": "Active", "userName": "deployer"}},
        "eventID": "11111111-2222-3333-4444-555555555555", "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDADEPLOYER", "arn": "arn:aws:iam::111122223333:user/deployer",
            "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLEOLDKEY001", "userName": "deployer"}
    }]});
    std::fs::write(&file, record.to_string()).unwrap();
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    e.ingest(&[file], &IngestOptions::default(), &mut (), T0)
        .unwrap();
    let b = book(
        r#"
name: new-key
trigger: { event: { action: CreateAccessKey, source: cloudtrail } }
steps:
  - notify: { url: "http://127.0.0.1:9/hook", message: "${trigger.action} by ${identity.name} (${trigger.event})" }
"#,
    );
    let mut fx = Fake::default();
    let r = tick(&mut e, std::slice::from_ref(&b), &mut fx, T0, true);
    assert_eq!(r.started.len(), 1, "{r:?}");
    assert!(
        tick(&mut e, std::slice::from_ref(&b), &mut fx, T0 + HOUR, true)
            .started
            .is_empty()
    );
    assert_eq!(
        fx.sent[0]["message"],
        "iam.amazonaws.com:CreateAccessKey by deployer (11111111-2222-3333-4444-555555555555)"
    );
    let run = e.playbook_run(&r.started[0]).unwrap().unwrap();
    assert_eq!(
        run.subject.unwrap().id,
        "arn:aws:iam::111122223333:user/deployer"
    );
}

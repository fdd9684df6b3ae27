//! Detection inside ingest, against the real inventory, graph and store:
//! `kw-aws-used-after-retirement` when an IAM user marked retired by a tag acts in
//! CloudTrail (whether the mark comes before or after; an owner's departure alone is no
//! mark), with the estate-wide flags that let the check skip its lookups when nothing is
//! retired; and the staged
//! intake of records parsed ahead, which must find what taking them one by one finds; and
//! a verdict on a finding (resolved, false positive) when the finding fires again.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::path::{Path, PathBuf};

use keyward_engine::{Engine, IngestOptions};

const ACCT: &str = "111122223333";
const RULE: &str = "kw-aws-used-after-retirement";

/// An authorization-details snapshot with one user and its tags.
fn snapshot(dir: &Path, name: &str, tags: &[(&str, &str)]) -> PathBuf {
    let tags: Vec<serde_json::Value> = tags
        .iter()
        .map(|(k, v)| serde_json::json!({"Key": k, "Value": v}))
        .collect();
    let doc = serde_json::json!({
        "UserDetailList": [{
            "Path": "/", "UserName": name, "UserId": "AIDAEXAMPLERETIRED01",
            "Arn": format!("arn:aws:iam::{ACCT}:user/{name}"),
            "CreateDate": "2025-02-06T09:12:40+00:00", "GroupList": [],
            "AttachedManagedPolicies": [], "Tags": tags
        }],
        "GroupDetailList": [], "RoleDetailList": [], "Policies": [], "IsTruncated": false
    });
    let p = dir.join(format!("aws/{ACCT}/iam-authorization-details.json"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, serde_json::to_vec(&doc).unwrap()).unwrap();
    p
}

/// A CloudTrail delivery file in which the user calls `ListBuckets` with its key.
fn activity(dir: &Path, name: &str) -> PathBuf {
    activity_hour(dir, name, 10)
}

/// [`activity`] at `hour` (a distinct event and file per hour).
fn activity_hour(dir: &Path, name: &str, hour: u32) -> PathBuf {
    let doc = serde_json::json!({"Records": [{
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLERETIRED01",
            "arn": format!("arn:aws:iam::{ACCT}:user/{name}"), "accountId": ACCT,
            "accessKeyId": "AKIAEXAMPLERETIRED01", "userName": name},
        "eventTime": format!("2026-11-10T{hour:02}:00:00Z"), "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets", "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2.15.0",
        "requestParameters": null, "responseElements": null,
        "requestID": "7b1c2a66-3d2e-4a59-9a1f-0d9e2c7f4a10",
        "eventID": format!("0f6a3f6e-2b8e-4c57-9d55-3f1b9a0c7e{hour:02}"), "readOnly": true,
        "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": ACCT,
        "eventCategory": "Management"
    }]});
    let p = dir.join(format!(
        "AWSLogs/{ACCT}/CloudTrail/eu-west-1/2026/11/10/{ACCT}_CloudTrail_eu-west-1_20261110T{hour:02}00Z_retired.json.gz"
    ));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(&doc).unwrap()).unwrap();
    std::fs::write(&p, gz.finish().unwrap()).unwrap();
    p
}

fn engine(data: &Path) -> Engine {
    let mut e = Engine::open(data).unwrap();
    e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
        .unwrap();
    e
}

/// Ingests `paths` in one run; the reasons of the rule's findings.
fn run(e: &mut Engine, paths: &[PathBuf]) -> Vec<String> {
    let r = e
        .ingest(paths, &IngestOptions::default(), &mut (), 0)
        .unwrap();
    assert_eq!(r.rejected, 0, "{:?}", r.rejections);
    r.findings
        .iter()
        .filter(|f| f.rule_id == RULE)
        .map(|f| f.summary.clone())
        .collect()
}

#[test]
fn a_user_tagged_retired_that_acts_is_reported() {
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut e = engine(data.path());
    let snap = snapshot(input.path(), "svc-old", &[("keyward:retired", "TRUE")]);
    assert!(run(&mut e, &[snap]).is_empty());
    assert!(e.inventory().any_marked_retired());
    let found = run(&mut e, &[activity(input.path(), "svc-old")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains(&format!(
            "arn:aws:iam::{ACCT}:user/svc-old is marked retired"
        )),
        "{found:?}"
    );
}

/// A verdict survives the next ingest that fires the same finding: a resolved threat
/// reopens (with a change saying why), a false positive stays one while its last sighting
/// moves.
#[test]
fn a_closed_finding_seen_again_keeps_or_reopens_its_verdict() {
    use keyward_detect::finding::Status;
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut e = engine(data.path());
    run(
        &mut e,
        &[snapshot(
            input.path(),
            "svc-old",
            &[("keyward:retired", "TRUE")],
        )],
    );
    let first = e
        .ingest(
            &[activity_hour(input.path(), "svc-old", 10)],
            &IngestOptions::default(),
            &mut (),
            0,
        )
        .unwrap();
    let id = first
        .findings
        .iter()
        .find(|f| f.rule_id == RULE)
        .map(|f| f.id.clone())
        .unwrap();
    let resolved = e
        .set_finding_status(&id, Status::Resolved, "alice", Some("key deleted"), 1)
        .unwrap();
    assert_eq!(resolved.status, Status::Resolved);
    let seen = e.finding(&id).unwrap().unwrap().last_seen;

    // Seen again after it was resolved: open again, and the change is recorded.
    run(&mut e, &[activity_hour(input.path(), "svc-old", 11)]);
    let again = e.finding(&id).unwrap().unwrap();
    assert_eq!(again.status, Status::Open);
    assert!(again.last_seen > seen, "{} {seen}", again.last_seen);
    let changes = e.finding_changes(&id).unwrap();
    assert!(
        changes.iter().any(|c| c.actor == "keyward"
            && c.status == "open"
            && c.note.as_deref() == Some("seen again after it was resolved")),
        "{changes:?}"
    );

    // A false positive stays one.
    e.set_finding_status(&id, Status::FalsePositive, "alice", None, 2)
        .unwrap();
    run(&mut e, &[activity_hour(input.path(), "svc-old", 12)]);
    let kept = e.finding(&id).unwrap().unwrap();
    assert_eq!(kept.status, Status::FalsePositive);
    assert!(kept.last_seen > again.last_seen);
    assert_eq!(
        e.finding_changes(&id)
            .unwrap()
            .iter()
            .filter(|c| c.actor == "keyward")
            .count(),
        1
    );
}

#[test]
fn nothing_retired_nothing_reported_and_a_removed_tag_unmarks() {
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut e = engine(data.path());
    let snap = snapshot(input.path(), "svc-live", &[("keyward:retired", "no")]);
    run(&mut e, &[snap]);
    assert!(!e.inventory().any_marked_retired());
    assert!(!e.graph().any_departed_person());
    assert!(run(&mut e, &[activity(input.path(), "svc-live")]).is_empty());
    // Marked, then a later snapshot (IAM tags come whole) drops the mark again.
    run(
        &mut e,
        &[snapshot(input.path(), "svc-live", &[("retired", "yes")])],
    );
    assert!(e.inventory().any_marked_retired());
    run(&mut e, &[snapshot(input.path(), "svc-live", &[])]);
    assert!(!e.inventory().any_marked_retired());
}

/// An owner's departure is no retirement mark: the user's workload goes on, its use is no
/// threat in itself (the user is an orphan, a posture finding), until someone marks it
/// retired.
#[test]
fn a_user_whose_owner_departed_that_acts_is_an_orphan_not_a_threat() {
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut e = engine(data.path());
    let people = input.path().join("people.csv");
    std::fs::write(
        &people,
        "email,name,team,status,manager,start_date\n\
         bob@acme.example,Bob Lindqvist,platform,departed,,2021-08-02\n\
         alice@acme.example,Alice Moreau,platform,active,,2023-02-06\n",
    )
    .unwrap();
    let snap = snapshot(input.path(), "svc-bob", &[("owner", "bob@acme.example")]);
    run(&mut e, &[people, snap]);
    assert!(e.graph().any_departed_person());
    assert!(!e.inventory().any_marked_retired());
    assert!(run(&mut e, &[activity_hour(input.path(), "svc-bob", 10)]).is_empty());
    let as_of = e.latest_event_time().unwrap().unwrap();
    let posture = e.evaluate_posture(as_of, &[]).unwrap();
    assert!(
        posture
            .findings
            .iter()
            .any(|f| f.rule_id == "kw-posture-orphaned"
                && f.identity.as_deref() == Some(&format!("arn:aws:iam::{ACCT}:user/svc-bob"))),
        "{:?}",
        posture.findings
    );
    // Marked retired: its uses are reported, the one before the mark too.
    let marked = snapshot(
        input.path(),
        "svc-bob",
        &[("owner", "bob@acme.example"), ("keyward:retired", "true")],
    );
    let found = run(&mut e, &[marked]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("marked retired"), "{found:?}");
}

/// Records the engine takes in stages (an S3 delivery file, parsed ahead) give the same
/// findings as the same records taken one by one (a CloudTrail Lake query result): the
/// bundled estate's CloudTrail, with every built-in rule.
#[test]
fn staged_and_one_by_one_detect_the_same() {
    let estate = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate/AWSLogs");
    let mut files = Vec::new();
    let mut stack = vec![estate];
    while let Some(d) = stack.pop() {
        for p in keyward_testkit::sorted_dir(&d) {
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".json.gz") {
                files.push(p);
            }
        }
    }
    assert!(!files.is_empty());
    let mut rows = Vec::new();
    for f in &files {
        let mut text = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(f).unwrap()),
            &mut text,
        )
        .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&text).unwrap();
        for r in doc["Records"].as_array().unwrap() {
            rows.push(serde_json::json!([{"eventJson": r.to_string()}]));
        }
    }
    let findings = |paths: &[PathBuf]| {
        let data = tempfile::tempdir().unwrap();
        let mut e = engine(data.path());
        let r = e
            .ingest(paths, &IngestOptions::default(), &mut (), 0)
            .unwrap();
        assert_eq!(r.rejected, 0, "{:?}", r.rejections);
        let mut v: Vec<String> = r
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{} {} {:?} {} {} {} {:?} {}",
                    f.id,
                    f.rule_id,
                    f.identity,
                    f.count,
                    f.first_seen,
                    f.last_seen,
                    f.events,
                    f.summary
                )
            })
            .collect();
        v.sort();
        v
    };
    let staged = findings(&files);
    let lake = tempfile::tempdir().unwrap();
    let lake_file = lake.path().join("lake-query-results.json");
    std::fs::write(
        &lake_file,
        serde_json::to_vec(
            &serde_json::json!({"QueryStatus": "FINISHED", "QueryResultRows": rows}),
        )
        .unwrap(),
    )
    .unwrap();
    let one_by_one = findings(&[lake_file]);
    eprintln!("{} records, {} findings", rows.len(), staged.len());
    assert!(staged.len() >= 5, "{staged:?}");
    assert_eq!(staged, one_by_one);
}

/// A Kubernetes audit log in which the cert-manager service account lists secrets
/// cluster-wide once on each of `days` (from 2026-11-02), as it does by design.
fn addon_log(dir: &Path, name: &str, days: std::ops::Range<i64>) -> PathBuf {
    const DAY: i64 = 86_400_000;
    let mut out = Vec::new();
    for day in days {
        let t = keyward_model::time::format(1_793_610_000_000 + day * DAY);
        let event = serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": format!("6f1c2a66-3d2e-4a59-9a1f-0d9e2c7f{day:04}"),
            "stage": "ResponseComplete", "requestURI": "/api/v1/secrets?limit=500",
            "verb": "list",
            "user": {"username": "system:serviceaccount:cert-manager:cert-manager"},
            "sourceIPs": ["10.0.3.7"], "userAgent": "cert-manager/v1.14",
            "objectRef": {"resource": "secrets", "apiVersion": "v1"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": t, "stageTimestamp": t
        });
        serde_json::to_writer(&mut out, &event).unwrap();
        out.push(b'\n');
    }
    let p = dir.join(format!("k8s/prod/{name}.jsonl"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, out).unwrap();
    p
}

/// Routine behaviour stored as an open alert while the identity trained becomes expected
/// once it proves routine, with a change saying why; a person reopening it keeps it open.
#[test]
fn an_open_finding_proven_routine_becomes_expected_unless_reopened() {
    use keyward_detect::finding::Status;
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut e = engine(data.path());
    let dumps = |r: &keyward_engine::IngestReport| -> Vec<keyward_detect::Finding> {
        r.findings
            .iter()
            .filter(|f| f.rule_id == "kw-k8s-secret-dump")
            .cloned()
            .collect()
    };
    let ingest = |e: &mut Engine, p: PathBuf| {
        e.ingest(&[p], &IngestOptions::default(), &mut (), 0)
            .unwrap()
    };
    let training = ingest(&mut e, addon_log(input.path(), "weeks-1-2", 0..14));
    let open = dumps(&training);
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].status, Status::Open);
    let id = open[0].id.clone();

    let later = ingest(&mut e, addon_log(input.path(), "week-3", 14..17));
    assert_eq!(dumps(&later).len(), 1);
    let f = e.finding(&id).unwrap().unwrap();
    assert_eq!(f.status, Status::Expected);
    assert_eq!(f.count, 17);
    let changes = e.finding_changes(&id).unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.actor == "keyward" && c.status == "expected"),
        "{changes:?}"
    );

    e.set_finding_status(&id, Status::Open, "alice", Some("not routine"), 3)
        .unwrap();
    ingest(&mut e, addon_log(input.path(), "week-3b", 17..19));
    let kept = e.finding(&id).unwrap().unwrap();
    assert_eq!(kept.status, Status::Open);
    assert_eq!(kept.count, 19);
    // Reopened here, or in another process whose detector never heard of it.
    let mut fresh = engine(data.path());
    ingest(&mut fresh, addon_log(input.path(), "week-3c", 19..21));
    assert_eq!(fresh.finding(&id).unwrap().unwrap().status, Status::Open);
}

/// A key its credential report last saw used two months before is used again from an
/// address the user never used: `kw-aws-dormant-reuse`, raised for the new network; with
/// its owner gone (a retired tag here), raised to high.
#[test]
fn a_dormant_user_used_again_is_reported_by_its_reported_last_use() {
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut e = engine(data.path());
    let report = input
        .path()
        .join(format!("aws/{ACCT}/credential-report.csv"));
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    // The documented columns it needs; the key was last used on 8 September.
    std::fs::write(
        &report,
        format!(
            "user,arn,user_creation_time,password_enabled,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service\n\
             svc-old,arn:aws:iam::{ACCT}:user/svc-old,2024-01-09T10:00:00+00:00,false,true,2024-01-09T10:00:00+00:00,2026-09-08T02:00:00+00:00,eu-west-1,s3\n"
        ),
    )
    .unwrap();
    let found = e
        .ingest(
            &[report, activity(input.path(), "svc-old")],
            &IngestOptions::default(),
            &mut (),
            0,
        )
        .unwrap()
        .findings;
    let dormant: Vec<_> = found
        .iter()
        .filter(|f| f.rule_id == "kw-aws-dormant-reuse")
        .collect();
    assert_eq!(dormant.len(), 1, "{found:?}");
    assert_eq!(dormant[0].severity, keyward_detect::Severity::Medium);
    assert_eq!(dormant[0].details["idle_days"], 63);
    assert_eq!(dormant[0].details["known_from"], "its platform's report");
    assert!(
        dormant[0].summary.contains("203.0.113.0/24"),
        "{}",
        dormant[0].summary
    );

    // The same with its owner gone: high.
    let data = tempfile::tempdir().unwrap();
    let mut e = engine(data.path());
    let snap = snapshot(input.path(), "svc-old", &[("keyward:retired", "TRUE")]);
    let report = input
        .path()
        .join(format!("aws/{ACCT}/credential-report.csv"));
    let found = e
        .ingest(
            &[snap, report, activity(input.path(), "svc-old")],
            &IngestOptions::default(),
            &mut (),
            0,
        )
        .unwrap()
        .findings;
    let dormant = found
        .iter()
        .find(|f| f.rule_id == "kw-aws-dormant-reuse")
        .unwrap();
    assert_eq!(dormant.severity, keyward_detect::Severity::High);
}

/// The narrowest exception for a false positive, saved: later matches are not reported,
/// in this process and after a reopen; saving it is audited.
#[test]
fn a_saved_exception_keeps_later_matches_out() {
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut e = engine(data.path());
    let ingest = |e: &mut Engine, p: PathBuf| {
        e.ingest(&[p], &IngestOptions::default(), &mut (), 0)
            .unwrap()
    };
    let first = ingest(&mut e, addon_log(input.path(), "day-0", 0..1));
    let f = first
        .findings
        .iter()
        .find(|f| f.rule_id == "kw-k8s-secret-dump")
        .unwrap()
        .clone();
    let exception = keyward_detect::exceptions::narrowest(&f).unwrap();
    assert_eq!(exception.identities.len(), 1);
    e.add_exception(
        exception,
        &keyward_store::AuditEntry {
            at: 1,
            actor: "test".into(),
            action: "exception.add".into(),
            target: Some(f.rule_id.clone()),
            detail: None,
            before: None,
            after: None,
        },
    )
    .unwrap();
    let later = ingest(&mut e, addon_log(input.path(), "day-1", 1..2));
    assert!(
        later
            .findings
            .iter()
            .all(|x| x.rule_id != "kw-k8s-secret-dump")
    );
    assert_eq!(e.finding(&f.id).unwrap().unwrap().count, 1);
    assert_eq!(e.stored_exceptions().unwrap().len(), 1);
    assert!(
        e.audit_log(10)
            .unwrap()
            .iter()
            .any(|a| a.entry.action == "exception.add")
    );
    let mut reopened = engine(data.path());
    ingest(&mut reopened, addon_log(input.path(), "day-2", 2..3));
    assert_eq!(reopened.finding(&f.id).unwrap().unwrap().count, 1);
    assert_eq!(reopened.detector().unwrap().excepted, 1);
}

/// The rule's findings as (id, identity, count, first and last seen).
fn retirement_findings(e: &Engine) -> Vec<(String, Option<String>, u64, i64, i64)> {
    e.findings(&keyward_engine::FindingQuery::default())
        .unwrap()
        .into_iter()
        .filter(|f| f.rule_id == RULE)
        .map(|f| (f.id, f.identity, f.count, f.first_seen, f.last_seen))
        .collect()
}

/// A retirement mark that comes after the events it judges (a snapshot read after the
/// CloudTrail, as path order reads `AWSLogs/` before `aws/`, or committed later by another
/// worker) finds what it would have found first: the same finding, each event counted
/// once; a later event is counted as it comes, once.
#[test]
fn a_retirement_learned_after_the_events_finds_the_same() {
    let input = tempfile::tempdir().unwrap();
    let snap = snapshot(input.path(), "svc-old", &[("keyward:retired", "yes")]);
    let acts = [
        activity_hour(input.path(), "svc-old", 10),
        activity_hour(input.path(), "svc-old", 11),
    ];
    let later = activity_hour(input.path(), "svc-old", 12);

    let (first, last, together) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let mut context_first = engine(first.path());
    run(&mut context_first, std::slice::from_ref(&snap));
    let found = run(&mut context_first, &acts);
    assert_eq!(found.len(), 1, "judged as they came: {found:?}");

    let mut context_last = engine(last.path());
    assert!(run(&mut context_last, &acts).is_empty());
    let found = run(&mut context_last, std::slice::from_ref(&snap));
    assert_eq!(
        found.len(),
        1,
        "judged again once the mark is known: {found:?}"
    );

    // One ingest, the CloudTrail first in path order.
    let mut one_run = engine(together.path());
    let all = [acts[0].clone(), acts[1].clone(), snap];
    assert_eq!(run(&mut one_run, &all).len(), 1);

    let want = retirement_findings(&context_first);
    assert_eq!(want.len(), 1, "{want:?}");
    assert_eq!(want[0].2, 2, "both events counted: {want:?}");
    assert_eq!(retirement_findings(&context_last), want);
    assert_eq!(retirement_findings(&one_run), want);

    // Nothing is judged twice by another ingest; a new event counts once.
    for e in [&mut context_first, &mut context_last, &mut one_run] {
        assert!(run(e, &[]).is_empty());
        assert_eq!(run(e, std::slice::from_ref(&later)).len(), 1);
        let got = retirement_findings(e);
        assert_eq!(got[0].2, 3, "{got:?}");
    }
}

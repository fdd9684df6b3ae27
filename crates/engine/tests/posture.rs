//! Posture as an auditor would count it, through ingest and `evaluate_posture`: the
//! administrator wildcard names the policy that grants it; escalation is a path to admin
//! (a lateral move is not, nor a grant that expired before the evaluation's time) and is
//! reported for a group when every member can; an identity is stale only when an activity
//! log covering the period, or the platform's own record of last use, says so; and
//! service-linked roles are left out.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::path::{Path, PathBuf};

use keyward_detect::{Finding, Status};
use keyward_engine::{Engine, FindingQuery, IngestOptions};
use serde_json::{Value, json};

const ACCT: &str = "111122223333";
/// 2026-11-15T00:00:00Z, the evaluation's time.
const NOW: i64 = 1_794_700_800_000;

fn arn(kind: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCT}:{kind}/{name}")
}

fn statement(action: &str, condition: Option<Value>) -> Value {
    let mut st = json!({"Effect": "Allow", "Action": action, "Resource": "*"});
    if let Some(c) = condition {
        st["Condition"] = c;
    }
    json!({"Version": "2012-10-17", "Statement": [st]})
}

fn user(name: &str, groups: &[&str], inline: Option<Value>) -> Value {
    json!({"Path": "/", "UserName": name, "Arn": arn("user", name),
           "CreateDate": "2025-01-06T09:12:40+00:00", "GroupList": groups,
           "UserPolicyList": inline.map(|d| vec![json!({"PolicyName": "own", "PolicyDocument": d})]).unwrap_or_default(),
           "AttachedManagedPolicies": []})
}

fn role(path: &str, name: &str, last_used: Value, trust: &str) -> Value {
    let trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": trust}, "Action": "sts:AssumeRole"}]});
    json!({"Path": path, "RoleName": name, "Arn": format!("arn:aws:iam::{ACCT}:role{path}{name}"),
           "CreateDate": "2022-11-30T17:55:40+00:00", "AssumeRolePolicyDocument": trust,
           "RoleLastUsed": last_used, "RolePolicyList": [],
           "AttachedManagedPolicies": [], "InstanceProfileList": []})
}

/// The account's authorization details.
fn snapshot(dir: &Path) -> PathBuf {
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    let expired = json!({"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}});
    let root = format!("arn:aws:iam::{ACCT}:root");
    let doc = json!({
        "UserDetailList": [
            user("alice", &["admins"], None),
            user("dev", &["devs"], None),
            user("idle", &[], None),
            // May assume a role that is not admin: a lateral move, not an escalation.
            user("hopper", &[], Some(statement("sts:AssumeRole", None))),
            // Could create anyone's keys, until 2020.
            user("expired", &[], Some(statement("iam:CreateAccessKey", Some(expired)))),
        ],
        "GroupDetailList": [
            {"GroupName": "admins", "Arn": arn("group", "admins"), "GroupPolicyList": [],
             "AttachedManagedPolicies": [{"PolicyName": "AdministratorAccess", "PolicyArn": admin}]},
            {"GroupName": "devs", "Arn": arn("group", "devs"), "AttachedManagedPolicies": [],
             "GroupPolicyList": [{"PolicyName": "keys", "PolicyDocument": statement("iam:CreateAccessKey", None)}]},
        ],
        "RoleDetailList": [
            role("/", "old-role", json!({"LastUsedDate": "2026-04-30T03:12:48+00:00", "Region": "us-east-1"}), &root),
            role("/", "plain", json!({}), &root),
            role("/aws-service-role/ecs.amazonaws.com/", "AWSServiceRoleForECS", json!({}), &root),
        ],
        "Policies": [{"PolicyName": "AdministratorAccess", "Arn": admin, "DefaultVersionId": "v1",
            "PolicyVersionList": [{"Document": statement("*", None), "VersionId": "v1", "IsDefaultVersion": true}]}],
    });
    let p = dir.join(format!("aws/{ACCT}/iam-authorization-details.json"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, serde_json::to_vec(&doc).unwrap()).unwrap();
    p
}

/// A cluster's snapshot with one service account, and no audit log.
fn cluster(dir: &Path) -> PathBuf {
    let doc = json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder",
         "namespace": "ci", "uid": "7946b4f4-48c1-4ea9-9414-337f1e00ad83",
         "creationTimestamp": "2025-05-12T16:20:45Z"}}]});
    let p = dir.join("k8s/prod/rbac-snapshot.json");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, serde_json::to_vec(&doc).unwrap()).unwrap();
    p
}

/// A CloudTrail delivery in which alice lists buckets at `time`.
fn trail(dir: &Path, time: &str, n: u32) -> PathBuf {
    let doc = json!({"Records": [{
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEALICE0001",
            "arn": arn("user", "alice"), "accountId": ACCT,
            "accessKeyId": "AKIAEXAMPLEALICE0001", "userName": "alice"},
        "eventTime": time, "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets", "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2.15.0",
        "requestParameters": null, "responseElements": null,
        "requestID": format!("7b1c2a66-3d2e-4a59-9a1f-0d9e2c7f4a{n:02}"),
        "eventID": format!("0f6a3f6e-2b8e-4c57-9d55-3f1b9a0c7e{n:02}"), "readOnly": true,
        "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": ACCT,
        "eventCategory": "Management"
    }]});
    let p = dir.join(format!(
        "AWSLogs/{ACCT}/CloudTrail/eu-west-1/{ACCT}_CloudTrail_eu-west-1_{n:02}_posture.json.gz"
    ));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(&doc).unwrap()).unwrap();
    std::fs::write(&p, gz.finish().unwrap()).unwrap();
    p
}

/// Ingests `paths`, evaluates posture at [`NOW`]; the open posture findings of `rule`.
fn posture(e: &mut Engine, paths: &[PathBuf], rule: &str) -> Vec<Finding> {
    let r = e
        .ingest(paths, &IngestOptions::default(), &mut (), 0)
        .unwrap();
    assert_eq!(r.rejected, 0, "{:?}", r.rejections);
    e.evaluate_posture(NOW, &[]).unwrap();
    let mut found: Vec<Finding> = e
        .findings(&FindingQuery::default())
        .unwrap()
        .into_iter()
        .filter(|f| f.rule_id == rule && f.status == Status::Open)
        .collect();
    found.sort_by(|a, b| a.summary.cmp(&b.summary));
    found
}

fn subjects(found: &[Finding]) -> Vec<String> {
    found
        .iter()
        .map(|f| f.identity.clone().unwrap_or_else(|| f.path[0].clone()))
        .collect()
}

#[test]
fn admin_wildcard_names_the_policy_that_grants_it() {
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut e = Engine::open(data.path()).unwrap();
    let found = posture(
        &mut e,
        &[snapshot(input.path())],
        "kw-posture-admin-wildcard",
    );
    assert_eq!(subjects(&found), [arn("user", "alice")]);
    let by = "group:admins/managed:arn:aws:iam::aws:policy/AdministratorAccess";
    assert!(found[0].summary.contains(by), "{}", found[0].summary);
    assert_eq!(found[0].details["evidence"]["granted_by"], json!([by]));
    assert_eq!(
        found[0].path,
        [
            arn("user", "alice"),
            arn("group", "admins"),
            "iam-policy:arn:aws:iam::aws:policy/AdministratorAccess".to_owned()
        ]
    );
}

/// The commands of every step of a finding's remediation.
fn commands(f: &Finding) -> Vec<String> {
    keyward_detect::remediation::Remediation::of(f)
        .unwrap()
        .steps
        .into_iter()
        .flat_map(|s| s.commands)
        .collect()
}

#[test]
fn admin_wildcard_remediation_is_a_policy_of_what_it_was_seen_doing() {
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut e = Engine::open(data.path()).unwrap();
    let paths = [
        snapshot(input.path()),
        trail(input.path(), "2026-11-10T09:00:00Z", 1),
    ];
    let found = posture(&mut e, &paths, "kw-posture-admin-wildcard");
    assert_eq!(
        commands(&found[0]),
        [
            r#"aws iam put-user-policy --user-name alice --policy-name KeywardObservedUse --policy-document '{"Statement":[{"Action":["s3:ListBuckets"],"Effect":"Allow","Resource":"*"}],"Version":"2012-10-17"}'"#,
            "aws iam remove-user-from-group --group-name admins --user-name alice",
        ]
    );
}

#[test]
fn a_remediation_names_the_terraform_that_defines_the_identity() {
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let tf = input.path().join("infra/iam.tf");
    std::fs::create_dir_all(tf.parent().unwrap()).unwrap();
    std::fs::write(
        &tf,
        "resource \"aws_iam_role\" \"old\" {\n  name = \"old-role\"\n}\n",
    )
    .unwrap();
    let mut e = Engine::open(data.path()).unwrap();
    let found = posture(
        &mut e,
        &[snapshot(input.path()), tf.clone()],
        "kw-posture-stale",
    );
    let stale = found
        .iter()
        .find(|f| f.identity.as_deref() == Some(arn("role", "old-role").as_str()))
        .unwrap();
    let r = keyward_detect::remediation::Remediation::of(stale).unwrap();
    let t = r.terraform.unwrap();
    assert!(
        t.starts_with(&format!(
            "`aws_iam_role.old` ({}:1) defines it",
            tf.display()
        )),
        "{t}"
    );
    assert_eq!(
        commands(stale).first().map(String::as_str),
        Some(
            r#"aws iam put-role-policy --role-name old-role --policy-name KeywardDenyAll --policy-document '{"Statement":[{"Action":"*","Effect":"Deny","Resource":"*"}],"Version":"2012-10-17"}'"#
        )
    );
}

#[test]
fn escalation_is_a_path_to_admin_and_groups_are_subjects() {
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut e = Engine::open(data.path()).unwrap();
    let found = posture(&mut e, &[snapshot(input.path())], "kw-posture-escalation");
    // Not hopper (its only move is to a role that is not admin), not expired (its grant
    // ended in 2020): dev, through its group, and every member of devs.
    assert_eq!(
        subjects(&found),
        [arn("user", "dev"), arn("group", "devs")],
        "{found:#?}"
    );
    assert!(
        found[0].summary.contains("iam-002 → "),
        "{}",
        found[0].summary
    );
    assert!(
        found[1]
            .summary
            .starts_with("every member of group devs can escalate to admin"),
        "{}",
        found[1].summary
    );
    assert!(found[1].identity.is_none());
}

#[test]
fn stale_needs_an_activity_record_covering_the_period() {
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut e = Engine::open(data.path()).unwrap();
    let rule = "kw-posture-stale";
    // No CloudTrail, no audit log: only the roles, whose last use AWS records
    // (`RoleLastUsed`: April for old-role, none for plain), are known to be stale; the
    // service-linked role never is.
    let found = posture(
        &mut e,
        &[snapshot(input.path()), cluster(input.path())],
        rule,
    );
    assert_eq!(
        subjects(&found),
        [arn("role", "old-role"), arn("role", "plain")],
        "{found:#?}"
    );
    // A trail of the account from before the period to its end: the users nobody saw
    // use become stale.
    let found = posture(
        &mut e,
        &[
            trail(input.path(), "2026-10-01T10:00:00Z", 1),
            trail(input.path(), "2026-11-14T20:00:00Z", 2),
        ],
        rule,
    );
    let mut got = subjects(&found);
    got.sort();
    let want = [
        arn("role", "old-role"),
        arn("role", "plain"),
        arn("user", "dev"),
        arn("user", "expired"),
        arn("user", "hopper"),
        arn("user", "idle"),
    ];
    assert_eq!(got, want, "{found:#?}");
    assert!(
        !got.iter().any(|i| i.contains("serviceaccount")),
        "the cluster has no audit log"
    );
}

/// A snapshot ingested alone is judged as of now; its audit log, ingested next, as of its
/// newest event, which is earlier: the posture findings of both stay consistent (first
/// seen no later than last seen) and the ingest succeeds.
#[test]
fn an_evaluation_earlier_than_the_last_keeps_findings_consistent() {
    let estate = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate/k8s/prod-eks");
    let data = tempfile::tempdir().unwrap();
    let mut e = Engine::open(data.path()).unwrap();
    e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
        .unwrap();
    let opts = IngestOptions::default();
    let now = 1_796_515_200_000; // 2026-12-06
    e.ingest(&[estate.join("rbac-snapshot.json")], &opts, &mut (), now)
        .unwrap();
    let first = e.evaluate_posture(now, &[]).unwrap();
    assert!(!first.findings.is_empty());
    e.ingest(&[estate.join("audit.jsonl")], &opts, &mut (), now)
        .unwrap();
    let as_of = e.latest_event_time().unwrap().unwrap();
    assert!(as_of < now);
    e.evaluate_posture(as_of, &[]).unwrap();
    for f in e.findings(&FindingQuery::default()).unwrap() {
        assert!(f.first_seen <= f.last_seen, "{f:?}");
    }
}

/// The risk score's P: 8 only for a path to admin; a step to an identity no more powerful
/// (hopper may assume a plain role) counts as a sensitive write, 6.
#[test]
fn permission_factor_needs_a_path_to_admin() {
    let input = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut e = Engine::open(data.path()).unwrap();
    e.enable_detection(keyward_detect::Catalog::builtin(), Default::default())
        .unwrap();
    e.ingest(
        &[snapshot(input.path())],
        &IngestOptions::default(),
        &mut (),
        0,
    )
    .unwrap();
    let risks = e.evaluate_posture(NOW, &[]).unwrap().risks;
    let p = |who: &str| {
        risks
            .iter()
            .find(|(id, _)| *id == arn("user", who))
            .map(|(_, r)| (r.p, r.why[0].clone()))
            .unwrap()
    };
    let (hop, why) = p("hopper");
    assert_eq!(hop, 6.0, "{why}");
    assert!(why.contains("no admin-equivalent power"), "{why}");
    let (dev, why) = p("dev");
    assert_eq!(dev, 8.0, "{why}");
}

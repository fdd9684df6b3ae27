//! Drift from an approved baseline, on real IAM snapshots: a role gains an administrator
//! policy, an inline policy and a foreign trust; a user joins a group. `drift` names each
//! with the commands that put the approved state back; approving again clears it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use keyward_engine::{Engine, IngestOptions};

const ACCT: &str = "111122223333";

fn snapshot(
    dir: &Path,
    n: u32,
    attached: &[&str],
    inline: &[&str],
    trust_account: &str,
    groups: &[&str],
) -> PathBuf {
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{trust_account}:root")}, "Action": "sts:AssumeRole"}]});
    let doc = serde_json::json!({
        "UserDetailList": [{"Path": "/", "UserName": "ci", "UserId": "AIDACIUSER0000000001",
            "Arn": format!("arn:aws:iam::{ACCT}:user/ci"), "CreateDate": "2025-02-06T09:12:40+00:00",
            "GroupList": groups, "AttachedManagedPolicies": [], "UserPolicyList": []}],
        "RoleDetailList": [{"Path": "/", "RoleName": "app", "RoleId": "AROAAPPROLE000000001",
            "Arn": format!("arn:aws:iam::{ACCT}:role/app"), "CreateDate": "2025-02-06T09:12:40+00:00",
            "AssumeRolePolicyDocument": trust,
            "AttachedManagedPolicies": attached.iter().map(|a| serde_json::json!({"PolicyName": a, "PolicyArn": format!("arn:aws:iam::aws:policy/{a}")})).collect::<Vec<_>>(),
            "RolePolicyList": inline.iter().map(|p| serde_json::json!({"PolicyName": p, "PolicyDocument": {"Version": "2012-10-17", "Statement": []}})).collect::<Vec<_>>(),
            "InstanceProfileList": []}],
        "GroupDetailList": [], "Policies": [], "IsTruncated": false
    });
    let p = dir.join(format!("v{n}/aws/{ACCT}/iam-authorization-details.json"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, serde_json::to_vec(&doc).unwrap()).unwrap();
    p
}

#[test]
fn changes_after_approval_are_drift_with_their_revert_commands() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    let opts = IngestOptions::default();
    let v1 = snapshot(
        dir.path(),
        1,
        &["ReadOnlyAccess"],
        &["s3-logs"],
        ACCT,
        &["builders"],
    );
    e.ingest(&[v1], &opts, &mut (), 1_800_000_000_000).unwrap();
    assert_eq!(
        e.approve_baselines(None, "test:drift", 1_800_000_000_000)
            .unwrap(),
        2
    );
    assert!(e.drift().unwrap().is_empty(), "{:#?}", e.drift().unwrap());

    let v2 = snapshot(
        dir.path(),
        2,
        &["ReadOnlyAccess", "AdministratorAccess"],
        &["s3-logs", "backdoor"],
        "999988887777",
        &["builders", "admins"],
    );
    e.ingest(&[v2], &opts, &mut (), 1_800_000_100_000).unwrap();
    let drifts = e.drift().unwrap();
    let by = |field: &str| {
        drifts
            .iter()
            .find(|d| d.field == field)
            .unwrap_or_else(|| panic!("{field}: {drifts:#?}"))
    };
    let a = by("attached_policies");
    assert_eq!(a.added, ["arn:aws:iam::aws:policy/AdministratorAccess"]);
    assert_eq!(
        a.revert,
        [
            "aws iam detach-role-policy --role-name app --policy-arn arn:aws:iam::aws:policy/AdministratorAccess"
        ]
    );
    let i = by("inline_policies");
    assert_eq!(i.added, ["backdoor"]);
    assert!(
        i.revert
            .iter()
            .any(|c| c == "aws iam delete-role-policy --role-name app --policy-name backdoor")
    );
    let t = by("trust_policy");
    assert!(
        t.revert[0]
            .starts_with("aws iam update-assume-role-policy --role-name app --policy-document '")
    );
    assert!(
        t.revert[0].contains(&format!("arn:aws:iam::{ACCT}:root")),
        "the approved trust: {}",
        t.revert[0]
    );
    let g = by("groups");
    assert_eq!(g.identity, format!("arn:aws:iam::{ACCT}:user/ci"));
    assert_eq!(
        g.revert,
        ["aws iam remove-user-from-group --group-name admins --user-name ci"]
    );
    assert!(
        e.audit_log(5)
            .unwrap()
            .iter()
            .any(|a| a.entry.action == "baseline.approve")
    );

    // Approving what is there now makes it the baseline.
    e.approve_baselines(Some("app"), "test:drift", 1_800_000_200_000)
        .unwrap();
    let left: Vec<String> = e.drift().unwrap().into_iter().map(|d| d.field).collect();
    assert_eq!(left, ["groups"]);
}

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

/// The app role and ci user as Terraform declares them: `attached` policies on the role, the
/// approved trust (this account's root), one inline policy, the `builders` group; and a
/// permissions boundary Terraform alone knows.
fn terraform(dir: &Path, attached: &[&str]) -> keyward_engine::drift_iac::TerraformInput {
    let attachments: String = attached
        .iter()
        .map(|a| {
            format!(
                "resource \"aws_iam_role_policy_attachment\" \"{a}\" {{\n  role       = aws_iam_role.app.name\n  policy_arn = \"arn:aws:iam::aws:policy/{a}\"\n}}\n"
            )
        })
        .collect();
    let tf = format!(
        r#"
resource "aws_iam_role" "app" {{
  name = "app"
  assume_role_policy = jsonencode({{
    Version   = "2012-10-17"
    Statement = [{{ Effect = "Allow", Principal = {{ AWS = "arn:aws:iam::{ACCT}:root" }}, Action = "sts:AssumeRole" }}]
  }})
  permissions_boundary = var.boundary
}}
resource "aws_iam_role_policy" "logs" {{
  name   = "s3-logs"
  role   = aws_iam_role.app.id
  policy = data.aws_iam_policy_document.logs.json
}}
resource "aws_iam_user" "ci" {{ name = "ci" }}
resource "aws_iam_user_group_membership" "ci" {{
  user   = aws_iam_user.ci.name
  groups = ["builders"]
}}
{attachments}"#
    );
    let path = dir.join("infra/iam.tf");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &tf).unwrap();
    keyward_engine::drift_iac::TerraformInput {
        label: "infra".into(),
        files: vec![(path.display().to_string(), tf.into_bytes())],
    }
}

#[test]
fn a_policy_attached_outside_terraform_is_drift_from_a_terraform_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    let opts = IngestOptions::default();
    let observed = snapshot(
        dir.path(),
        1,
        &["ReadOnlyAccess", "AdministratorAccess"],
        &["s3-logs"],
        ACCT,
        &["builders"],
    );
    e.ingest(&[observed], &opts, &mut (), 1_800_000_000_000)
        .unwrap();
    let report = e
        .approve_terraform(
            &terraform(dir.path(), &["ReadOnlyAccess"]),
            Default::default(),
            "test:drift",
            1_800_000_000_000,
        )
        .unwrap();
    assert_eq!(report.source, "terraform:infra");
    assert_eq!(report.approved(), 2, "{report:#?}");
    let role = &report.identities[0];
    assert_eq!(
        role.identity.as_deref(),
        Some("arn:aws:iam::111122223333:role/app")
    );
    assert!(role.in_inventory);
    assert_eq!(
        role.governed,
        ["attached_policies", "inline_policies", "trust_policy"]
    );
    assert!(role.ungoverned["permissions_boundary"].contains("`var.boundary`"));

    let drifts = e.drift().unwrap();
    assert_eq!(drifts.len(), 1, "{drifts:#?}");
    let d = &drifts[0];
    assert_eq!(
        (d.identity.as_str(), d.field.as_str(), d.source.as_str()),
        (
            "arn:aws:iam::111122223333:role/app",
            "attached_policies",
            "terraform:infra"
        )
    );
    assert_eq!(d.added, ["arn:aws:iam::aws:policy/AdministratorAccess"]);
    assert!(
        e.audit_log(1).unwrap()[0]
            .entry
            .detail
            .as_deref()
            .unwrap()
            .contains("2 identities approved from terraform:infra")
    );

    // Live: a boundary Terraform does not tell is left alone; the extra policy is detached.
    let (i, _, b) = e.baselined_principals(Some("app")).unwrap().pop().unwrap();
    assert_eq!(b.source, "terraform:infra");
    let live = serde_json::from_value(serde_json::json!({
        "attached_policies": ["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/AdministratorAccess"],
        "inline_policies": ["s3-logs"],
        "permissions_boundary": "arn:aws:iam::111122223333:policy/boundary",
        "trust_policy": b.facts["trust_policy"].to_string(),
    }))
    .unwrap();
    let plan = e
        .revert_plan(&i, &b, &live, "test", "test:drift", 1)
        .unwrap();
    let commands: Vec<String> = plan.steps.iter().flat_map(|s| s.command.clone()).collect();
    assert_eq!(
        commands,
        [
            "aws iam detach-role-policy --role-name app --policy-arn arn:aws:iam::aws:policy/AdministratorAccess"
        ]
    );
}

#[test]
fn a_name_in_several_accounts_is_ambiguous_until_the_account_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    let opts = IngestOptions::default();
    let here = snapshot(dir.path(), 1, &["ReadOnlyAccess"], &[], ACCT, &[]);
    let other = dir
        .path()
        .join("v2/aws/999988887777/iam-authorization-details.json");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    let text = std::fs::read_to_string(&here)
        .unwrap()
        .replace(ACCT, "999988887777");
    std::fs::write(&other, text).unwrap();
    e.ingest(&[here, other], &opts, &mut (), 1_800_000_000_000)
        .unwrap();
    let tf = terraform(dir.path(), &["ReadOnlyAccess"]);
    let report = e
        .approve_terraform(&tf, Default::default(), "test:drift", 1_800_000_000_000)
        .unwrap();
    assert_eq!(report.approved(), 0);
    assert!(
        report.identities[0]
            .not_approved
            .as_deref()
            .unwrap()
            .starts_with("ambiguous: a role named `app` is in accounts"),
        "{report:#?}"
    );
    assert!(e.baselines_approved().unwrap().is_empty());

    let only = keyward_engine::drift_iac::TerraformApproval {
        identity: Some("app"),
        account: Some("999988887777"),
    };
    let report = e
        .approve_terraform(&tf, only, "test:drift", 1_800_000_000_000)
        .unwrap();
    assert_eq!(report.approved(), 1, "{report:#?}");
    assert_eq!(
        e.baselines_approved().unwrap().keys().collect::<Vec<_>>(),
        ["arn:aws:iam::999988887777:role/app"]
    );
}

#[test]
fn a_baseline_stored_before_sources_came_from_a_snapshot() {
    let b: keyward_engine::drift::Baseline = serde_json::from_str(
        r#"{"approved_at": 1, "approved_by": "cli:alice", "facts": {"groups": ["devs"]}}"#,
    )
    .unwrap();
    assert_eq!(b.source, "snapshot");
    assert!(b.ungoverned.is_empty());
}

//! Privilege escalation against the pathfinding.cloud catalogue (`../shared/corpora`): for
//! every path, an account where a principal holds exactly the path's required permissions
//! (from the catalogue) must show that path to admin; with any one permission removed (the
//! near miss) it must not. Then near misses on the prerequisites themselves.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keyward_graph::iam::authz::Snapshot;
use keyward_graph::iam::escalation::{Analysis, Target, technique};
use serde_json::{Value, json};

use keyward_testkit::iam::{ACCT, arn, doc};

use keyward_testkit::corpora;

fn managed(name: &str, document: Value) -> Value {
    let a = if name == "AdministratorAccess" {
        "arn:aws:iam::aws:policy/AdministratorAccess".to_owned()
    } else {
        arn("policy", name)
    };
    json!({"PolicyName": name, "Arn": a, "DefaultVersionId": "v1",
           "PolicyVersionList": [{"Document": document, "VersionId": "v1", "IsDefaultVersion": true}]})
}

fn attach(name: &str) -> Value {
    let a = if name == "AdministratorAccess" {
        "arn:aws:iam::aws:policy/AdministratorAccess".to_owned()
    } else {
        arn("policy", name)
    };
    json!({"PolicyName": name, "PolicyArn": a})
}

fn trust_service(service: &str) -> Value {
    doc(json!([{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]))
}

fn trust_account() -> Value {
    doc(
        json!([{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")}, "Action": "sts:AssumeRole"}]),
    )
}

fn role(name: &str, trust: Value, policies: &[&str]) -> Value {
    json!({"RoleName": name, "Arn": arn("role", name), "AssumeRolePolicyDocument": trust,
           "RolePolicyList": [], "AttachedManagedPolicies": policies.iter().map(|p| attach(p)).collect::<Vec<_>>()})
}

/// An account for `id` where `attacker` holds `grant` (a policy document).
fn account(id: &str, grant: Value) -> Value {
    let t = technique(id).unwrap_or_else(|| panic!("no technique {id}"));
    let attacker_is_role = matches!(id, "iam-005" | "iam-009");
    let mut users = vec![
        json!({"UserName": "admin-user", "Arn": arn("user", "admin-user"), "GroupList": [], "UserPolicyList": [], "AttachedManagedPolicies": [attach("AdministratorAccess")]}),
    ];
    let mut roles = vec![
        role("admin-role", trust_account(), &["AdministratorAccess"]),
        role("plain-role", trust_account(), &["plain-role-policy"]),
    ];
    if let Target::PassRole(services) | Target::ExistingWorkload(services) = t.target {
        roles.push(role(
            "service-admin",
            trust_service(services[0]),
            &["AdministratorAccess"],
        ));
    }
    if attacker_is_role {
        roles.push(role("attacker", trust_account(), &["attacker-policy"]));
    } else {
        users.push(json!({"UserName": "attacker", "Arn": arn("user", "attacker"), "GroupList": ["devs"], "UserPolicyList": [], "AttachedManagedPolicies": [attach("attacker-policy")]}));
    }
    json!({
        "UserDetailList": users,
        "GroupDetailList": [
            {"GroupName": "devs", "Arn": arn("group", "devs"), "GroupPolicyList": [], "AttachedManagedPolicies": []},
            {"GroupName": "admins", "Arn": arn("group", "admins"), "GroupPolicyList": [], "AttachedManagedPolicies": [attach("AdministratorAccess")]}
        ],
        "RoleDetailList": roles,
        "Policies": [
            managed("AdministratorAccess", doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]))),
            managed("attacker-policy", grant),
            managed("plain-role-policy", doc(json!([{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]))),
        ]
    })
}

fn attacker(id: &str) -> String {
    arn(
        if matches!(id, "iam-005" | "iam-009") {
            "role"
        } else {
            "user"
        },
        "attacker",
    )
}

/// Whether the analysis finds technique `id` taking the attacker to admin power.
fn finds(id: &str, grant: Value) -> bool {
    let snap = Snapshot::new(&account(id, grant));
    let a = Analysis::run(&snap);
    let me = attacker(id);
    a.steps
        .iter()
        .any(|s| s.technique == id && s.from == me && s.reaches_admin)
}

fn allow(actions: &[String]) -> Value {
    doc(json!([{"Effect": "Allow", "Action": actions, "Resource": "*"}]))
}

#[test]
fn every_catalogue_path_and_its_near_misses() {
    let Some(c) = corpora() else { return };
    let paths = keyward_testkit::pathfinding_paths(&c).unwrap();
    let mut checked = 0;
    for y in &paths {
        let id = y["id"].as_str().unwrap();
        let required: Vec<String> = y["permissions"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["permission"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            finds(id, allow(&required)),
            "{id}: not found with {required:?}"
        );
        for i in 0..required.len() {
            let mut fewer = required.clone();
            let gone = fewer.remove(i);
            assert!(
                !finds(id, allow(&fewer)),
                "{id}: still found without {gone}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 65);
}

#[test]
fn prerequisite_near_misses() {
    let all = |a: &[&str]| allow(&a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    // PassRole limited to a role that no service trusts.
    let scoped = doc(json!([
        {"Effect": "Allow", "Action": ["ec2:RunInstances"], "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": arn("role", "plain-role")}]));
    assert!(!finds("ec2-001", scoped));
    let right_role = doc(json!([
        {"Effect": "Allow", "Action": ["ec2:RunInstances"], "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": arn("role", "service-admin")}]));
    assert!(finds("ec2-001", right_role));
    // An explicit deny beats the allow.
    let denied = doc(json!([
        {"Effect": "Allow", "Action": ["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:PassRole", "Resource": "*"}]));
    assert!(!finds("lambda-001", denied));
    // A condition we cannot decide keeps the path, marked conditional.
    let conditional = doc(json!([
        {"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}]));
    let snap = Snapshot::new(&account("iam-002", conditional));
    let a = Analysis::run(&snap);
    let step = a
        .steps
        .iter()
        .find(|s| {
            s.technique == "iam-002"
                && s.from == arn("user", "attacker")
                && s.to == arn("user", "admin-user")
        })
        .unwrap();
    assert!(step.reaches_admin);
    assert!(step.conditional.contains("aws:SourceIp"), "{step:?}");
    // sts:AssumeRole needs the role's trust too: the admin role trusts only EC2 here.
    let mut acct = account("sts-001", all(&["sts:AssumeRole"]));
    for r in acct["RoleDetailList"].as_array_mut().unwrap() {
        r["AssumeRolePolicyDocument"] = trust_service("ec2.amazonaws.com");
    }
    let a = Analysis::run(&Snapshot::new(&acct));
    assert!(
        !a.steps
            .iter()
            .any(|s| s.technique == "sts-001" && s.from == arn("user", "attacker"))
    );
    // A permissions boundary caps what the attacker can do.
    let mut acct = account("iam-007", all(&["iam:PutUserPolicy"]));
    acct["Policies"].as_array_mut().unwrap().push(managed(
        "boundary",
        doc(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])),
    ));
    for u in acct["UserDetailList"].as_array_mut().unwrap() {
        if u["UserName"] == "attacker" {
            u["PermissionsBoundary"] = json!({"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn("policy", "boundary")});
        }
    }
    let a = Analysis::run(&Snapshot::new(&acct));
    assert!(
        !a.steps
            .iter()
            .any(|s| s.technique == "iam-007" && s.from == arn("user", "attacker"))
    );
    assert!(
        finds("iam-007", all(&["iam:PutUserPolicy"])),
        "without the boundary the same permission escalates"
    );
    assert!(
        !a.steps.iter().any(|s| s.from == arn("user", "admin-user")),
        "admins have nothing to escalate to"
    );
}

#[test]
fn multi_hop_path_through_a_role() {
    // attacker may only assume plain-role; plain-role may pass the admin EC2 role to a new
    // instance. The admin role itself trusts no one the attacker controls.
    let mut acct = account("ec2-001", allow(&["sts:AssumeRole".to_owned()]));
    for r in acct["RoleDetailList"].as_array_mut().unwrap() {
        if r["RoleName"] == "admin-role" {
            r["AssumeRolePolicyDocument"] = trust_service("glue.amazonaws.com");
        }
    }
    for p in acct["Policies"].as_array_mut().unwrap() {
        if p["PolicyName"] == "plain-role-policy" {
            p["PolicyVersionList"][0]["Document"] = doc(
                json!([{"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"}]),
            );
        }
    }
    let a = Analysis::run(&Snapshot::new(&acct));
    let path = a.path_to_admin(&arn("user", "attacker")).unwrap();
    let hops: Vec<(&str, &str)> = path
        .steps
        .iter()
        .map(|s| (s.technique, s.to.as_str()))
        .collect();
    let plain = arn("role", "plain-role");
    let service = arn("role", "service-admin");
    assert_eq!(
        hops,
        [("sts-001", plain.as_str()), ("ec2-001", service.as_str())]
    );
    assert!(a.admins.contains(&service) && !a.admins.contains(&plain));
    assert!(a.path_to_admin(&service).unwrap().steps.is_empty());
    assert!(a.path_to_admin(&arn("user", "nobody")).is_none());
}

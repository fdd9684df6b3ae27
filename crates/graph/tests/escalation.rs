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
use keyward_graph::iam::escalation::{Analysis, SET_DEFAULT_VERSION, Step, Target, technique};
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

// One test per escalation class: a positive case and a near miss that looks the same but
// cannot escalate.

/// 2026-11-15T00:00:00Z, the analysis time of the tests that decide time conditions.
const NOW: i64 = 1_794_700_800_000;

/// Adds a group with one managed policy holding `grant`.
fn add_group(acct: &mut Value, name: &str, grant: Value) {
    let policy = format!("{name}-policy");
    acct["Policies"]
        .as_array_mut()
        .unwrap()
        .push(managed(&policy, grant));
    acct["GroupDetailList"].as_array_mut().unwrap().push(json!({"GroupName": name, "Arn": arn("group", name), "GroupPolicyList": [], "AttachedManagedPolicies": [attach(&policy)]}));
}

fn one(actions: &[&str], resource: &str) -> Value {
    doc(json!([{"Effect": "Allow", "Action": actions, "Resource": resource}]))
}

fn steps_from<'a>(a: &'a Analysis, from: &str, technique: &str) -> Vec<&'a Step> {
    a.steps
        .iter()
        .chain(&a.group_steps)
        .filter(|s| s.from == from && s.technique == technique)
        .collect()
}

#[test]
fn class1_joining_a_group_that_holds_more_power() {
    let me = arn("user", "attacker");
    let run = |target: &str| {
        let mut acct = account(
            "iam-013",
            one(&["iam:AddUserToGroup"], &arn("group", target)),
        );
        add_group(&mut acct, "readers", one(&["s3:GetObject"], "*"));
        // Not admin itself, but a member can write itself an admin policy.
        add_group(&mut acct, "writers", one(&["iam:PutUserPolicy"], "*"));
        Analysis::run(&Snapshot::new(&acct))
    };
    for group in ["admins", "writers"] {
        let a = run(group);
        let s = steps_from(&a, &me, "iam-013");
        assert_eq!(s.len(), 1, "{group}: {s:?}");
        assert!(s[0].reaches_admin);
        assert_eq!(s[0].via.as_deref(), Some(arn("group", group).as_str()));
        assert!(a.path_to_admin(&me).is_some());
    }
    // Near miss: the only group it may join grants nothing more.
    let a = run("readers");
    assert!(steps_from(&a, &me, "iam-013").is_empty());
    assert!(a.path_to_admin(&me).is_none());
}

/// An account where the attacker's own policy `attacker-policy` has a second version.
fn versioned(default: Value, other: Value) -> Value {
    let mut acct = account("iam-001", default.clone());
    for p in acct["Policies"].as_array_mut().unwrap() {
        if p["PolicyName"] == "attacker-policy" {
            p["PolicyVersionList"] = json!([
                {"Document": default, "VersionId": "v2", "IsDefaultVersion": true},
                {"Document": other, "VersionId": "v1", "IsDefaultVersion": false}]);
            p["DefaultVersionId"] = json!("v2");
        }
    }
    acct
}

#[test]
fn class2_setting_a_more_privileged_policy_version_as_default() {
    let me = arn("user", "attacker");
    let own = arn("policy", "attacker-policy");
    let set_own = one(&["iam:SetDefaultPolicyVersion"], &own);
    let admin = doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]));
    let a = Analysis::run(&Snapshot::new(&versioned(set_own.clone(), admin.clone())));
    let s = steps_from(&a, &me, SET_DEFAULT_VERSION);
    assert_eq!(s.len(), 1, "{:?}", a.steps);
    assert!(s[0].reaches_admin);
    assert_eq!(s[0].via.as_deref(), Some(own.as_str()));
    // Near misses: the old version grants less; the permission is on another policy.
    let weak = one(&["s3:GetObject"], "*");
    let a = Analysis::run(&Snapshot::new(&versioned(set_own, weak)));
    assert!(steps_from(&a, &me, SET_DEFAULT_VERSION).is_empty());
    let elsewhere = one(
        &["iam:SetDefaultPolicyVersion"],
        &arn("policy", "plain-role-policy"),
    );
    let a = Analysis::run(&Snapshot::new(&versioned(elsewhere, admin)));
    assert!(steps_from(&a, &me, SET_DEFAULT_VERSION).is_empty());
    assert!(a.path_to_admin(&me).is_none());
}

#[test]
fn class3_writing_policies_of_an_assumable_role_or_an_own_group() {
    let me = arn("user", "attacker");
    let plain = arn("role", "plain-role");
    for (id, action) in [
        ("iam-014", "iam:AttachRolePolicy"),
        ("iam-017", "iam:PutRolePolicy"),
    ] {
        let grant = one(&[action, "sts:AssumeRole"], &plain);
        let a = Analysis::run(&Snapshot::new(&account(id, grant.clone())));
        let s = steps_from(&a, &me, id);
        assert!(s.iter().any(|s| s.to == plain && s.reaches_admin), "{id}");
        // Near miss: the role does not trust the attacker's account.
        let mut acct = account(id, grant);
        for r in acct["RoleDetailList"].as_array_mut().unwrap() {
            r["AssumeRolePolicyDocument"] = trust_service("ec2.amazonaws.com");
        }
        let a = Analysis::run(&Snapshot::new(&acct));
        assert!(steps_from(&a, &me, id).is_empty(), "{id}");
    }
    for (id, action) in [
        ("iam-010", "iam:AttachGroupPolicy"),
        ("iam-011", "iam:PutGroupPolicy"),
    ] {
        let a = Analysis::run(&Snapshot::new(&account(
            id,
            one(&[action], &arn("group", "devs")),
        )));
        let s = steps_from(&a, &me, id);
        assert_eq!(s.len(), 1, "{id}");
        assert_eq!(s[0].via.as_deref(), Some(arn("group", "devs").as_str()));
        // Near miss: a group the attacker is not a member of.
        let mut acct = account(id, one(&[action], &arn("group", "readers")));
        add_group(&mut acct, "readers", one(&["s3:GetObject"], "*"));
        let a = Analysis::run(&Snapshot::new(&acct));
        assert!(steps_from(&a, &me, id).is_empty(), "{id}");
    }
}

/// An account where the attacker holds nothing of its own and `grant` comes with a
/// group: `devs` (its own) or `readers` (another).
fn through_group(group: &str, grant: Value) -> Value {
    let mut acct = account("iam-007", one(&["s3:ListAllMyBuckets"], "*"));
    add_group(&mut acct, "readers", one(&["s3:GetObject"], "*"));
    let policy = managed("group-grant", grant);
    acct["Policies"].as_array_mut().unwrap().push(policy);
    for g in acct["GroupDetailList"].as_array_mut().unwrap() {
        if g["GroupName"] == group {
            g["AttachedManagedPolicies"]
                .as_array_mut()
                .unwrap()
                .push(attach("group-grant"));
        }
    }
    acct
}

#[test]
fn class4_power_held_through_groups() {
    let me = arn("user", "attacker");
    let grant = one(&["iam:PutUserPolicy"], &me);
    let a = Analysis::run(&Snapshot::new(&through_group("devs", grant.clone())));
    assert!(steps_from(&a, &me, "iam-007")[0].reaches_admin);
    // Near miss: the same grant on a group it is not in.
    let a = Analysis::run(&Snapshot::new(&through_group("readers", grant)));
    assert!(steps_from(&a, &me, "iam-007").is_empty());
    assert!(a.path_to_admin(&me).is_none());
    // Admin through a group: admin-equivalent, nothing to escalate.
    let mut acct = account("iam-007", one(&["s3:ListAllMyBuckets"], "*"));
    acct["UserDetailList"][1]["GroupList"] = json!(["admins"]);
    let a = Analysis::run(&Snapshot::new(&acct));
    assert!(a.admins.contains(&me));
}

#[test]
fn class5_groups_are_escalation_subjects() {
    let devs = arn("group", "devs");
    let me = arn("user", "attacker");
    // Every member of devs can create a key for the admin user.
    let a = Analysis::run(&Snapshot::new(&through_group(
        "devs",
        one(&["iam:CreateAccessKey"], "*"),
    )));
    let s = steps_from(&a, &devs, "iam-002");
    assert!(
        s.iter()
            .any(|s| s.to == arn("user", "admin-user") && s.reaches_admin)
    );
    assert_eq!(a.path_to_admin(&devs).unwrap().steps.len(), 1);
    assert!(a.admin_groups.contains(&arn("group", "admins")));
    assert!(
        a.path_to_admin(&arn("group", "admins"))
            .unwrap()
            .steps
            .is_empty()
    );
    // Near miss: a grant on one member's own user is not something every member can do.
    let a = Analysis::run(&Snapshot::new(&through_group(
        "devs",
        one(&["iam:PutUserPolicy"], &me),
    )));
    assert!(steps_from(&a, &devs, "iam-007").is_empty());
    assert!(a.path_to_admin(&devs).is_none());
    assert!(
        a.path_to_admin(&me).is_some(),
        "the member itself still can"
    );
    // …while a grant on every user is.
    let a = Analysis::run(&Snapshot::new(&through_group(
        "devs",
        one(&["iam:PutUserPolicy"], &arn("user", "*")),
    )));
    assert_eq!(steps_from(&a, &devs, "iam-007").len(), 1);
}

fn timed(action: &str, op: &str, key: &str, value: &str) -> Value {
    doc(
        json!([{"Effect": "Allow", "Action": action, "Resource": "*",
                "Condition": {op: {key: value}}}]),
    )
}

#[test]
fn class6_time_conditions_are_decided_at_analysis_time() {
    let me = arn("user", "attacker");
    let expired = [
        ("DateLessThan", "aws:CurrentTime", "2020-01-01T00:00:00Z"),
        // iam-vulnerable's fp5: a token issued before 2020 is long expired.
        ("DateLessThan", "aws:TokenIssueTime", "2020-01-01T00:00:01Z"),
        ("NumericLessThan", "aws:EpochTime", "1577836800"),
    ];
    for (op, key, value) in expired {
        let acct = account("iam-002", timed("iam:CreateAccessKey", op, key, value));
        let a = Analysis::run_at(&Snapshot::new(&acct), NOW);
        assert!(steps_from(&a, &me, "iam-002").is_empty(), "{op} {key}");
        // Without an analysis time the same grant stays, conditional on the key.
        let a = Analysis::run(&Snapshot::new(&acct));
        let s = steps_from(&a, &me, "iam-002");
        assert!(s[0].conditional.contains(key), "{op} {key}: {s:?}");
    }
    // Positive: a grant that started in the past holds, unconditionally.
    let acct = account(
        "iam-002",
        timed(
            "iam:CreateAccessKey",
            "DateGreaterThan",
            "aws:CurrentTime",
            "2020-01-01T00:00:00Z",
        ),
    );
    let a = Analysis::run_at(&Snapshot::new(&acct), NOW);
    let s = steps_from(&a, &me, "iam-002");
    assert!(s[0].reaches_admin && s[0].conditional.is_empty(), "{s:?}");
    // A token issued less than a day ago may or may not be older than 12 hours: open.
    let recent = account(
        "iam-002",
        timed(
            "iam:CreateAccessKey",
            "DateGreaterThan",
            "aws:TokenIssueTime",
            "2026-11-14T12:00:00Z",
        ),
    );
    let a = Analysis::run_at(&Snapshot::new(&recent), NOW);
    assert!(
        steps_from(&a, &me, "iam-002")[0]
            .conditional
            .contains("aws:TokenIssueTime")
    );
}

#[test]
fn class7_service_linked_roles_are_not_starting_points_or_targets() {
    let slr = |name: &str, policy: &str| {
        json!({"RoleName": name, "Path": "/aws-service-role/ecs.amazonaws.com/",
               "Arn": format!("arn:aws:iam::{ACCT}:role/aws-service-role/ecs.amazonaws.com/{name}"),
               "AssumeRolePolicyDocument": trust_account(), "RolePolicyList": [],
               "AttachedManagedPolicies": [attach(policy)]})
    };
    let mut acct = account("iam-002", one(&["sts:AssumeRole"], "*"));
    let grant = one(&["iam:CreateAccessKey"], "*");
    acct["Policies"]
        .as_array_mut()
        .unwrap()
        .push(managed("slr-policy", grant));
    let roles = acct["RoleDetailList"].as_array_mut().unwrap();
    roles.push(slr("AWSServiceRoleForECS", "slr-policy"));
    roles.push(slr("AWSServiceRoleForAdmin", "AdministratorAccess"));
    let a = Analysis::run(&Snapshot::new(&acct));
    assert!(
        !a.steps
            .iter()
            .any(|s| s.from.contains("AWSServiceRole") || s.to.contains("AWSServiceRole")),
        "{:?}",
        a.steps
    );
    // Near miss: the same role outside the service-role path does escalate, and is a
    // target of sts:AssumeRole.
    let plain = json!({"RoleName": "ecs-like", "Arn": arn("role", "ecs-like"),
        "AssumeRolePolicyDocument": trust_account(), "RolePolicyList": [],
        "AttachedManagedPolicies": [attach("slr-policy")]});
    acct["RoleDetailList"].as_array_mut().unwrap().push(plain);
    let a = Analysis::run(&Snapshot::new(&acct));
    assert!(!steps_from(&a, &arn("role", "ecs-like"), "iam-002").is_empty());
    assert!(
        steps_from(&a, &arn("user", "attacker"), "sts-001")
            .iter()
            .any(|s| s.to == arn("role", "ecs-like"))
    );
}

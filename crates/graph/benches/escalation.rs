//! Privilege-escalation analysis over a generated account of N IAM principals.
//!
//! ```text
//! taskset -c 0 cargo bench -p keyward-graph --bench escalation            # 5,000 principals
//! KEYWARD_BENCH_PRINCIPALS=20000 taskset -c 0 cargo bench -p keyward-graph --bench escalation
//! ```
//!
//! The account looks like a real one: most principals are workload roles with narrow
//! service permissions, some CI users and roles with broad ones, a few admins, and a
//! sprinkling of risky grants (PassRole, IAM writes) that create escalation paths.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Instant;

use keyward_graph::iam::authz::Snapshot;
use keyward_graph::iam::escalation::Analysis;
use keyward_graph::{EdgeKind, derive};
use serde_json::{Value, json};

use keyward_testkit::iam::{ACCT, arn, doc};

fn account(n: usize) -> Value {
    let services = [
        "lambda.amazonaws.com",
        "ec2.amazonaws.com",
        "ecs-tasks.amazonaws.com",
        "glue.amazonaws.com",
    ];
    let mut roles = Vec::new();
    let mut users = Vec::new();
    let mut policies = vec![
        json!({"PolicyName": "AdministratorAccess", "Arn": "arn:aws:iam::aws:policy/AdministratorAccess", "DefaultVersionId": "v1",
        "PolicyVersionList": [{"Document": doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}])), "VersionId": "v1", "IsDefaultVersion": true}]}),
    ];
    for i in 0..n {
        let name = format!("p{i}");
        let statements = match i % 100 {
            0 => json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]),
            1..=3 => {
                json!([{"Effect": "Allow", "Action": ["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"}])
            }
            4 => {
                json!([{"Effect": "Allow", "Action": ["iam:CreateAccessKey", "iam:ListUsers"], "Resource": "*"}])
            }
            5 => {
                json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn("role", &format!("p{}", i + 95))}])
            }
            6..=15 => {
                json!([{"Effect": "Allow", "Action": ["ec2:Describe*", "s3:Get*", "s3:List*", "cloudwatch:*", "logs:*"], "Resource": "*"}])
            }
            _ => json!([
                {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"], "Resource": format!("arn:aws:dynamodb:us-east-1:{ACCT}:table/t{i}")},
                {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:ReceiveMessage"], "Resource": format!("arn:aws:sqs:us-east-1:{ACCT}:q{i}")},
                {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*", "Condition": {"StringEquals": {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}}}]),
        };
        let inline = json!([{"PolicyName": "main", "PolicyDocument": doc(statements)}]);
        if i % 5 == 4 {
            users.push(json!({"UserName": name, "Arn": arn("user", &name), "GroupList": [], "UserPolicyList": inline, "AttachedManagedPolicies": []}));
        } else {
            let trust = doc(
                json!([{"Effect": "Allow", "Principal": {"Service": services[i % services.len()]}, "Action": "sts:AssumeRole"},
                                   {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")}, "Action": "sts:AssumeRole"}]),
            );
            roles.push(json!({"RoleName": name, "Arn": arn("role", &name), "AssumeRolePolicyDocument": trust, "RolePolicyList": inline, "AttachedManagedPolicies": []}));
        }
    }
    policies.truncate(1);
    json!({"UserDetailList": users, "GroupDetailList": [], "RoleDetailList": roles, "Policies": policies})
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("KEYWARD_BENCH_PRINCIPALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 300 } else { 5_000 });
    let doc = account(n);
    let start = Instant::now();
    let snap = Snapshot::new(&doc);
    let indexed = start.elapsed();
    let analysis = Analysis::run(&snap);
    let total = start.elapsed();
    let escalating = analysis
        .steps
        .iter()
        .filter(|s| s.reaches_admin)
        .map(|s| &s.from)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    println!(
        "{n} principals: index {:.3} s, analysis end to end {:.3} s",
        indexed.as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "{} admin-equivalent, {} escalation steps, {escalating} principals with a step to admin",
        analysis.admins.len(),
        analysis.steps.len()
    );
    // Everything the graph derives from the account: group membership, effective
    // permissions by resource, trust evaluated per principal, and escalation (run again).
    let start = Instant::now();
    let snap = Snapshot::new(&doc);
    let edges = derive::account_edges(ACCT, &snap, &derive::Names::default());
    let t = start.elapsed();
    let count = |k: EdgeKind| edges.iter().filter(|e| e.kind == k).count();
    println!(
        "graph edges end to end (effective permissions + trust + escalation): {:.3} s, \
         {} edges ({} can, {} can_assume)",
        t.as_secs_f64(),
        edges.len(),
        count(EdgeKind::Can),
        count(EdgeKind::CanAssume)
    );
}
